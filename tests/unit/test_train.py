from __future__ import annotations

import datetime as dt
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from pipeline_code import run_folder
from pipeline_code.errors import StepError, run_entry_point
from pipeline_code.forecasting import backtest_table
from pipeline_code.forecasting import candidates as cand
from pipeline_code.forecasting.artifacts import (
    FORMAT_VERSION,
    TrainedModels,
    dump_models,
    load_models,
)
from pipeline_code.forecasting.batch import train_all
from pipeline_code.forecasting.event_calendar import CompanyDays, EventCalendar
from pipeline_code.run_context import RunContext
from pipeline_code.shards import Share
from pipeline_code.steps import train
from pipeline_code.steps.forecast_options import series_of
from tests.unit.forecast_data import series_frame, write_preproc, write_run_table

END = dt.date(2025, 6, 30)


def _args(lake: Path, *extra: str) -> list[str]:
    common = ["--execution-date", END.isoformat(), "--execution-id", "ex-1"]
    return [*common, "--data-root", str(lake), "--workers", "1", *extra]


def _write_series(lake: Path, frame: pd.DataFrame, *options: str, end: dt.date = END) -> None:
    """The series as PreProc leaves them, its event pool built with `options`."""
    write_preproc(lake, frame, end, "ex-1", *options)


def _models(lake: Path) -> TrainedModels:
    """Every bucket's models file, merged."""
    files = sorted((lake / "runs" / "ex-1" / "train" / "models").glob("bucket=*.pkl"))
    parts = [load_models(path.read_bytes()) for path in files]
    merged = {sid: m for part in parts for sid, m in part.models.items()}
    return TrainedModels(parts[0].settings, parts[0].execution_date, merged)


def _summary(lake: Path, folder: tuple[str, str]) -> pd.DataFrame:
    """Every bucket's file of a backtest summary folder, concatenated."""
    files = sorted(lake.joinpath("runs", "ex-1", *folder).glob("bucket=*.parquet"))
    return pd.concat([pd.read_parquet(path) for path in files], ignore_index=True)


def _backtest_rows(frame: pd.DataFrame, end: dt.date, *extra: str) -> pd.DataFrame:
    """The backtest rows Train's settings give `frame`'s series (the table it summarizes)."""
    common = ["--execution-date", end.isoformat(), "--execution-id", "ex-1", "--data-root", "."]
    args = train.parse_args([*common, *extra])
    series, frequency = series_of(frame, end, "Train", "test series")
    return train_all(series, train.build_settings(args, frequency), workers=1).backtest


def _run(lake: Path, *extra: str) -> None:
    train.main(_args(lake, "--horizon", "14", "--backtest-folds", "2", *extra))


def test_train_writes_models_and_backtest_for_every_series(tmp_path: Path) -> None:
    _write_series(tmp_path, series_frame(3, 120, END))
    _run(tmp_path)
    trained = _models(tmp_path)
    assert sorted(trained.models) == ["car00", "car01", "car02"]
    assert trained.settings.horizon == 14 and trained.settings.season_length == 7
    assert trained.execution_date == END
    for model in trained.models.values():  # the fitted choice, not just its name
        assert isinstance(model.fitted, cand.FittedModel) and model.n_observations == 120
        assert np.isfinite(model.fitted.forecast(30)).all()

    scores = _summary(tmp_path, run_folder.BACKTEST_SCORES).set_index("series_id")
    assert list(scores.reset_index().columns) == list(backtest_table.SCORE_COLUMNS)
    assert scores["model"].to_dict() == {sid: m.model for sid, m in trained.models.items()}
    assert (scores["n_folds"] == 2).all() and (scores["n_points"] == 2 * 14).all()
    assert (scores["snaive_mase"] > 0).all() and (scores["recent_folds"] == 2).all()
    points = _summary(tmp_path, run_folder.CALIBRATION_POINTS)
    assert list(points.columns) == list(backtest_table.POINT_COLUMNS)
    assert len(points) == 3 * 2 * 14  # series x folds x steps of the chosen model
    # the last fold's last step is the execution date
    assert points["day"].max() == (END - dt.date(1970, 1, 1)).days
    assert sorted(points["step"].unique()) == list(range(1, 15))


def test_backtest_rows_hold_the_input_values_at_cutoff_plus_step(tmp_path: Path) -> None:
    frame = series_frame(1, 80, END)
    backtest = _backtest_rows(frame, END, "--horizon", "14", "--backtest-folds", "2")
    assert list(backtest.columns) == list(backtest_table.COLUMNS)
    assert len(backtest) == 2 * 2 * 14  # roles x folds x steps
    assert set(backtest.loc[backtest["role"] == "benchmark", "model"]) == {"snaive"}
    assert backtest["target_date"].max() == END
    gap = pd.to_datetime(backtest["target_date"]) - pd.to_datetime(backtest["cutoff"])
    assert (gap.dt.days == backtest["step"]).all()
    merged = backtest.merge(
        frame, left_on=["series_id", "target_date"], right_on=["series_id", "ds"]
    )
    assert len(merged) == len(backtest)
    assert (merged["y_x"] == merged["y_y"]).all()


def test_train_without_series_file_is_a_step_error(tmp_path: Path) -> None:
    with pytest.raises(StepError, match=r"64 of 64 bucket files missing: .*series_index"):
        _run(tmp_path)


def test_train_rejects_gaps_and_unknown_candidates(tmp_path: Path) -> None:
    write_run_table(tmp_path, series_frame(2, 60, END).drop(index=[7]), run_folder.series_bucket)
    with pytest.raises(StepError, match="gaps"):
        _run(tmp_path)
    _write_series(tmp_path, series_frame(2, 60, END))
    with pytest.raises(StepError, match="unknown candidates"):
        _run(tmp_path, "--candidates", "snaive,prophet")


def test_series_too_short_for_a_fold_get_a_model_and_no_backtest_rows(tmp_path: Path) -> None:
    _write_series(tmp_path, series_frame(2, 20, END))
    _run(tmp_path)  # TrainEvaluation, which sees every series, fails when no series has rows
    assert {m.model for m in _models(tmp_path).models.values()} == {"snaive"}
    assert _summary(tmp_path, run_folder.BACKTEST_SCORES).empty
    assert _summary(tmp_path, run_folder.CALIBRATION_POINTS).empty


def test_each_instance_trains_the_series_of_its_own_buckets_only(tmp_path: Path) -> None:
    frame = series_frame(6, 120, END)
    _write_series(tmp_path, frame)
    share = Share(rank=2, count=3)
    train.run(RunContext(END, "ex-1", str(tmp_path)), train.parse_args(_args(tmp_path)), share)
    models = _models(tmp_path).models
    owned = {sid for sid in frame["series_id"].unique() if share.owns(sid)}
    assert set(models) == owned and 0 < len(owned) < 6
    files = (tmp_path / "runs" / "ex-1" / "train" / "models").glob("*.pkl")
    assert {int(path.stem.split("=")[1]) % 3 for path in files} == {2}


def test_a_pool_of_another_calendar_is_refused_naming_the_options(tmp_path: Path) -> None:
    _write_series(tmp_path, series_frame(2, 120, END), "--breaks", "obon")
    with pytest.raises(
        StepError, match=r"event_statistics/bucket=000.pkl was pooled for .* --breaks"
    ):
        _run(tmp_path)


def test_entry_point_turns_bad_input_into_exit_code_1(tmp_path: Path, capsys) -> None:
    assert run_entry_point(train.main, _args(tmp_path)) == 1
    assert "ERROR Train:" in capsys.readouterr().err


def test_models_file_round_trip_keeps_the_fitted_models(tmp_path: Path) -> None:
    _write_series(tmp_path, series_frame(3, 120, END))
    _run(tmp_path)
    files = list((tmp_path / "runs" / "ex-1" / "train" / "models").glob("*.pkl"))
    data = files[0].read_bytes()
    trained = load_models(data)
    again = load_models(dump_models(trained))
    assert again.settings == trained.settings and again.format_version == FORMAT_VERSION
    for sid, model in trained.models.items():
        copy = again.models[sid]
        assert (copy.model, copy.candidate_mase) == (model.model, model.candidate_mase)
        assert type(copy.fitted) is type(model.fitted)
    assert len(data) < len(trained.models) * 4096  # a few kilobytes per series at most


def test_models_file_of_another_format_version_is_refused() -> None:
    old = TrainedModels(settings=None, execution_date=END, format_version=FORMAT_VERSION - 1)
    with pytest.raises(ValueError, match="format version"):
        load_models(dump_models(old))


def test_train_builds_the_calendar_from_its_arguments(tmp_path: Path) -> None:
    calendar = (
        *("--holiday-country", "none", "--breaks", "year_end,obon"),
        *("--company-days", "2025-03-01+3:spring_sale", "2025-05-10:launch"),
    )
    _write_series(tmp_path, series_frame(2, 120, END), *calendar)
    _run(tmp_path, *calendar)
    trained = _models(tmp_path)
    assert trained.settings.calendar == EventCalendar(
        country=None,
        breaks=("year_end", "obon"),
        company_days=(
            CompanyDays(dt.date(2025, 3, 1), 3, "spring_sale"),
            CompanyDays(dt.date(2025, 5, 10), 1, "launch"),
        ),
    )


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (("--company-days", "2025-02-30:sale"), "2025-02-30 is not a date"),
        (("--company-days", "2025-03-01:Big Sale"), "YYYY-MM-DD:name"),
        (("--breaks", "summer"), "unknown breaks"),
        (("--holiday-country", "XX"), "unknown holiday country"),
    ],
)
def test_a_bad_calendar_argument_is_a_step_error_naming_it(
    tmp_path: Path, extra: tuple[str, ...], message: str
) -> None:
    _write_series(tmp_path, series_frame(1, 60, END))
    with pytest.raises(StepError, match=message):
        _run(tmp_path, *extra)


def test_the_fold_a_year_back_tests_the_forecasts_own_days_and_flags_event_days() -> None:
    end = dt.date(2025, 4, 25)  # the next 14 days hold Golden Week, and so did those a year back
    backtest = _backtest_rows(
        series_frame(1, 500, end), end, "--horizon", "14", "--backtest-folds", "2"
    )
    chosen = backtest[backtest["role"] == "chosen"]
    folds = chosen.groupby("fold_kind")["cutoff"].nunique()
    assert folds["recent"] == 2 and folds["seasonal"] == 1
    # the forecast's days, 52 weeks earlier: the same season and the same weekdays
    forecast_days = [end + dt.timedelta(days=d) for d in range(1, 15)]
    seasonal = chosen.loc[chosen["fold_kind"] == "seasonal", "target_date"]
    assert sorted(seasonal) == [day - dt.timedelta(days=364) for day in forecast_days]
    flagged = set(chosen.loc[chosen["event_day"], "target_date"])
    assert {dt.date(2024, 4, 29), dt.date(2024, 5, 3), dt.date(2024, 5, 6)} <= flagged
    assert not flagged & {dt.date(2024, 4, 27), dt.date(2024, 5, 8), dt.date(2025, 4, 25)}
