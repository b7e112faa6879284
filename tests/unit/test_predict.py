from __future__ import annotations

import datetime as dt
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from statsmodels.tsa.forecasting.theta import ThetaModel
from statsmodels.tsa.holtwinters import ExponentialSmoothing
from statsmodels.tsa.seasonal import MSTL

from pipeline_code import storage
from pipeline_code.errors import StepError
from pipeline_code.forecasting import candidates as cand
from pipeline_code.forecasting import selection
from pipeline_code.forecasting.artifacts import load_models
from pipeline_code.forecasting.series_table import series_from_frame
from pipeline_code.steps import predict, train
from tests.unit.forecast_data import refit_forecast, series_frame

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


def _series_uri(lake: Path) -> str:
    return str(lake / "runs" / "ex-1" / "preproc" / "series.parquet")


def _train(lake: Path, frame: pd.DataFrame, date: dt.date = END) -> None:
    storage.write_table(frame, _series_uri(lake))
    train.main([*_common(lake, date), "--horizon", "14", "--backtest-folds", "2"])


def _forecasts(lake: Path) -> pd.DataFrame:
    return pd.read_parquet(lake / "runs" / "ex-1" / "predict" / "forecasts.parquet")


def test_forecasts_cover_the_horizon_after_the_execution_date(tmp_path: Path) -> None:
    _train(tmp_path, series_frame(3, 100, END))
    predict.main([*_common(tmp_path), "--horizon", "21", "--interval-level", "0.9"])
    out = _forecasts(tmp_path)
    assert list(out.columns) == list(predict.COLUMNS)
    assert len(out) == 3 * 21
    for _, group in out.groupby("series_id"):
        assert group["target_date"].tolist() == [END + dt.timedelta(days=k) for k in range(1, 22)]
    assert (out["yhat"] >= 0).all() and (out["yhat_lower"] >= 0).all()
    assert (out["yhat_lower"] <= out["yhat"]).all() and (out["yhat"] <= out["yhat_upper"]).all()
    models = load_models((tmp_path / "runs" / "ex-1" / "train" / "models.pkl").read_bytes()).models
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
    storage.write_table(series_frame(1, 100, END), _series_uri(tmp_path))
    with pytest.raises(StepError, match=r"models\.pkl does not exist"):
        predict.main(_common(tmp_path))


def test_series_without_a_model_is_a_step_error(tmp_path: Path) -> None:
    _train(tmp_path, series_frame(2, 100, END))
    storage.write_table(series_frame(3, 100, END), _series_uri(tmp_path))
    with pytest.raises(StepError, match=r"no model for \['car02'\]"):
        predict.main(_common(tmp_path))


def test_corrupt_models_file_is_a_step_error(tmp_path: Path) -> None:
    storage.write_table(series_frame(1, 100, END), _series_uri(tmp_path))
    storage.write_bytes(b"not a pickle", str(tmp_path / "runs" / "ex-1" / "train" / "models.pkl"))
    with pytest.raises(StepError, match="not a models file"):
        predict.main(_common(tmp_path))


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
    trained = load_models((lake / "runs" / "ex-1" / "train" / "models.pkl").read_bytes())
    settings = trained.settings
    skip = (date - END).days
    steps = skip + horizon
    expected = {}
    for s in series_from_frame(pd.read_parquet(_series_uri(lake)), date):
        model = trained.models[s.series_id]
        forecast = refit_forecast(s.y, s.start, model.model, settings, steps, model.effects)
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
    storage.write_table(series_frame(2, 101, END), _series_uri(tmp_path))
    with pytest.raises(StepError, match="differ in length"):
        predict.main(_common(tmp_path))
