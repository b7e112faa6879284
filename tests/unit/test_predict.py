from __future__ import annotations

import datetime as dt
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from statsmodels.tsa.forecasting.theta import ThetaModel
from statsmodels.tsa.holtwinters import ExponentialSmoothing
from statsmodels.tsa.seasonal import MSTL

from pipeline_code import bucket_files, run_folder, shards, storage
from pipeline_code.errors import StepError
from pipeline_code.forecasting import candidates as cand
from pipeline_code.forecasting import selection
from pipeline_code.forecasting.artifacts import load_models
from pipeline_code.forecasting.selection import SeriesModel
from pipeline_code.forecasting.series_table import series_from_frame
from pipeline_code.run_context import RunContext
from pipeline_code.steps import evaluate, predict, train
from tests.unit.forecast_data import refit_forecast, series_frame, write_preproc

END = dt.date(2025, 6, 30)


def _common(lake: Path, date: dt.date = END) -> list[str]:
    return [
        "--execution-date",
        date.isoformat(),
        "--execution-id",
        "ex-1",
        "--data-root",
        str(lake),
        "--workers",
        "1",
    ]


def _run_dir(lake: Path) -> Path:
    return lake / "runs" / "ex-1"


def _read_folder(folder: Path) -> pd.DataFrame:
    files = sorted(folder.glob("bucket=*.parquet"))
    return pd.concat([pd.read_parquet(path) for path in files], ignore_index=True)


def _train(lake: Path, frame: pd.DataFrame, date: dt.date = END) -> None:
    """PreProc's series, Train, and TrainEvaluation's calibration, as a run leaves them."""
    write_preproc(lake, frame, date)
    train.main([*_common(lake, date), "--horizon", "14", "--backtest-folds", "2"])
    evaluate.main(_common(lake, date)[:-2])  # without --workers


def _forecasts(lake: Path) -> pd.DataFrame:
    return _read_folder(_run_dir(lake) / "predict" / "forecasts")


def _models(lake: Path) -> dict[str, SeriesModel]:
    files = (_run_dir(lake) / "train" / "models").glob("bucket=*.pkl")
    return {sid: m for path in files for sid, m in load_models(path.read_bytes()).models.items()}


def test_forecasts_cover_the_horizon_after_the_execution_date(tmp_path: Path) -> None:
    _train(tmp_path, series_frame(3, 100, END))
    predict.main([*_common(tmp_path), "--horizon", "21", "--interval-level", "0.9"])
    out = _forecasts(tmp_path)
    assert list(out.columns) == list(predict.FILE_COLUMNS)
    assert len(out) == 3 * 21
    for _, group in out.groupby("series_id"):
        assert group["target_date"].tolist() == [END + dt.timedelta(days=k) for k in range(1, 22)]
    assert (out["yhat"] >= 0).all() and (out["yhat_lower"] >= 0).all()
    assert (out["yhat_lower"] <= out["yhat"]).all() and (out["yhat"] <= out["yhat_upper"]).all()
    models = _models(tmp_path)
    chosen = out.groupby("series_id")["model"].first().to_dict()
    assert chosen == {sid: m.model for sid, m in models.items()}


def test_series_ending_before_the_execution_date_still_forecasts_the_target_dates(
    tmp_path: Path,
) -> None:
    later = END + dt.timedelta(days=3)  # the data stops three days before the run's date
    _train(tmp_path, series_frame(2, 100, END), date=later)
    predict.main([*_common(tmp_path, later), "--horizon", "7"])
    out = _forecasts(tmp_path)
    assert out["target_date"].min() == later + dt.timedelta(days=1)
    assert out["target_date"].max() == later + dt.timedelta(days=7)


def test_missing_models_is_a_step_error(tmp_path: Path) -> None:
    write_preproc(tmp_path, series_frame(1, 100, END), END)
    with pytest.raises(StepError, match=r"1 of 1 bucket files missing: .*bucket=\d{3}.pkl.*Train"):
        predict.main(_common(tmp_path))


def test_a_bucket_without_its_models_file_is_a_step_error(tmp_path: Path) -> None:
    _train(tmp_path, series_frame(2, 100, END))
    write_preproc(tmp_path, series_frame(3, 100, END), END)  # car02: never trained
    untrained = f"bucket={shards.bucket_of('car02'):03d}.pkl"
    with pytest.raises(StepError, match=rf"1 of 3 bucket files missing: .*{untrained}"):
        predict.main(_common(tmp_path))


def test_series_without_a_model_is_a_step_error(tmp_path: Path) -> None:
    _train(tmp_path, series_frame(2, 100, END))
    write_preproc(tmp_path, series_frame(2, 100, END, prefix="van"), END)
    ctx = RunContext(END, "ex-1", str(tmp_path))
    for bucket in bucket_files.index_buckets(bucket_files.read_index(ctx, "test")):
        path = _run_dir(tmp_path).joinpath(*run_folder.models_bucket(bucket))
        path.write_bytes(next((_run_dir(tmp_path) / "train" / "models").glob("*.pkl")).read_bytes())
    with pytest.raises(StepError, match=r"no model for \['van00', 'van01'\]"):
        predict.main(_common(tmp_path))


def test_corrupt_models_file_is_a_step_error(tmp_path: Path) -> None:
    write_preproc(tmp_path, series_frame(1, 100, END), END)
    path = _run_dir(tmp_path).joinpath(*run_folder.models_bucket(shards.bucket_of("car00")))
    storage.write_bytes(b"not a pickle", str(path))
    with pytest.raises(StepError, match="not a models file"):
        predict.main(_common(tmp_path))


def test_missing_calibration_is_a_step_error(tmp_path: Path) -> None:
    _train(tmp_path, series_frame(1, 100, END))
    _run_dir(tmp_path).joinpath(*run_folder.CALIBRATION).unlink()
    with pytest.raises(StepError, match=r"calibration.json does not exist"):
        predict.main(_common(tmp_path))


def test_instances_forecast_their_shares_as_one_instance_does_whatever_train_ran_on(
    tmp_path: Path,
) -> None:
    """Models are stored per bucket: Predict on 3 instances after Train on 1 (a retry with
    another count) forecasts each series once, exactly as one instance does."""
    _train(tmp_path, series_frame(6, 100, END))
    ctx = RunContext(END, "ex-1", str(tmp_path))
    args = predict.parse_args(_common(tmp_path))
    whole = predict.run(ctx, args)
    parts = [predict.run(ctx, args, shards.Share(rank, 3)) for rank in range(3)]
    assert sum(len(part) > 0 for part in parts) >= 2  # the split gives more than one instance work
    combined = pd.concat([p for p in parts if len(p)], ignore_index=True)
    combined = combined.sort_values(["series_id", "target_date"])
    pd.testing.assert_frame_equal(
        combined.reset_index(drop=True),
        whole.sort_values(["series_id", "target_date"]).reset_index(drop=True),
        check_exact=True,
    )


def test_bad_interval_level_is_a_step_error(tmp_path: Path) -> None:
    _train(tmp_path, series_frame(1, 100, END))
    with pytest.raises(StepError, match="interval-level"):
        predict.main([*_common(tmp_path), "--interval-level", "80"])


def _forbid_fitting(monkeypatch: pytest.MonkeyPatch) -> None:
    """Every fitting routine of the candidates raises: Predict must not need any."""

    def no_fit(*args: object, **kwargs: object) -> None:
        raise AssertionError("Predict fitted a model")

    for owner, name in (
        (ExponentialSmoothing, "fit"),
        (ThetaModel, "fit"),
        (MSTL, "fit"),
        (cand, "seasonal_decompose"),
        (cand, "fit_candidate"),
        (selection, "fit_latest"),
    ):
        monkeypatch.setattr(owner, name, no_fit)


def _refit_forecasts(lake: Path, date: dt.date, horizon: int) -> dict[str, np.ndarray]:
    """Each chosen model fitted from scratch on the data (ending at END), at the target dates."""
    files = sorted((_run_dir(lake) / "train" / "models").glob("*.pkl"))
    settings = load_models(files[0].read_bytes()).settings
    models = _models(lake)
    skip = (date - END).days
    steps = skip + horizon
    expected = {}
    for s in series_from_frame(_read_folder(_run_dir(lake) / "preproc" / "series"), date):
        model = models[s.series_id]
        forecast = refit_forecast(
            s.y, s.start, model.model, settings, steps, model.effects, model.reference
        )
        expected[s.series_id] = forecast[skip:]
    return expected


@pytest.mark.parametrize("days_after_data", [0, 3])
def test_predict_forecasts_from_the_stored_fit_as_a_refit_would(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, days_after_data: int
) -> None:
    date = END + dt.timedelta(days=days_after_data)
    _train(tmp_path, series_frame(4, 150, END), date=date)
    with monkeypatch.context() as patched:
        _forbid_fitting(patched)
        predict.main([*_common(tmp_path, date), "--horizon", "20"])  # Train's horizon is 14
    out = _forecasts(tmp_path)
    expected = _refit_forecasts(tmp_path, date, 20)
    assert set(out["model"]) - {"snaive"}  # fitted models, not only the fallback
    for sid, group in out.groupby("series_id"):
        np.testing.assert_array_equal(group["yhat"].to_numpy(), expected[sid])


def test_predict_refuses_data_of_another_length_than_trained(tmp_path: Path) -> None:
    _train(tmp_path, series_frame(2, 100, END))
    write_preproc(tmp_path, series_frame(2, 101, END), END)
    with pytest.raises(StepError, match="differ in length"):
        predict.main(_common(tmp_path))
