from __future__ import annotations

import datetime as dt
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from pipeline_code import storage
from pipeline_code.errors import StepError, run_entry_point
from pipeline_code.forecasting import candidates as cand
from pipeline_code.forecasting.artifacts import (
    FORMAT_VERSION,
    TrainedModels,
    dump_models,
    load_models,
)
from pipeline_code.forecasting.event_calendar import CompanyDays, EventCalendar
from pipeline_code.steps import train
from tests.unit.forecast_data import series_frame

END = dt.date(2025, 6, 30)


def _args(lake: Path, *extra: str) -> list[str]:
    common = ["--execution-date", END.isoformat(), "--execution-id", "ex-1"]
    return [*common, "--data-root", str(lake), "--workers", "1", *extra]


def _write_series(lake: Path, frame: pd.DataFrame) -> None:
    storage.write_table(frame, str(lake / "runs" / "ex-1" / "preproc" / "series.parquet"))


def _run(lake: Path, *extra: str) -> None:
    train.main(_args(lake, "--horizon", "14", "--backtest-folds", "2", *extra))


def test_train_writes_models_and_backtest_for_every_series(tmp_path: Path) -> None:
    _write_series(tmp_path, series_frame(3, 120, END))
    _run(tmp_path)
    run_dir = tmp_path / "runs" / "ex-1" / "train"
    trained = load_models((run_dir / "models.pkl").read_bytes())
    assert sorted(trained.models) == ["car00", "car01", "car02"]
    assert trained.settings.horizon == 14 and trained.settings.season_length == 7
    assert trained.execution_date == END
    for model in trained.models.values():  # the fitted choice, not just its name
        assert isinstance(model.fitted, cand.FittedModel) and model.n_observations == 120
        assert np.isfinite(model.fitted.forecast(30)).all()

    backtest = pd.read_parquet(run_dir / "backtest.parquet")
    assert list(backtest.columns) == list(train.BACKTEST_COLUMNS)
    assert len(backtest) == 3 * 2 * 2 * 14  # series x roles x folds x steps
    assert set(backtest.loc[backtest["role"] == "benchmark", "model"]) == {"snaive"}
    chosen = backtest[backtest["role"] == "chosen"].groupby("series_id")["model"].first()
    assert chosen.to_dict() == {sid: m.model for sid, m in trained.models.items()}
    # the last fold's last step is the execution date; each target is cutoff + step days
    assert backtest["target_date"].max() == END
    gap = pd.to_datetime(backtest["target_date"]) - pd.to_datetime(backtest["cutoff"])
    assert (gap.dt.days == backtest["step"]).all()


def test_train_actuals_in_backtest_are_the_input_values(tmp_path: Path) -> None:
    frame = series_frame(1, 80, END)
    _write_series(tmp_path, frame)
    _run(tmp_path)
    backtest = pd.read_parquet(tmp_path / "runs" / "ex-1" / "train" / "backtest.parquet")
    merged = backtest.merge(
        frame, left_on=["series_id", "target_date"], right_on=["series_id", "ds"]
    )
    assert len(merged) == len(backtest)
    assert (merged["y_x"] == merged["y_y"]).all()


def test_train_without_series_file_is_a_step_error(tmp_path: Path) -> None:
    with pytest.raises(StepError, match="does not exist"):
        _run(tmp_path)


def test_train_rejects_gaps_and_unknown_candidates(tmp_path: Path) -> None:
    _write_series(tmp_path, series_frame(2, 60, END).drop(index=[7]))
    with pytest.raises(StepError, match="gaps"):
        _run(tmp_path)
    _write_series(tmp_path, series_frame(2, 60, END))
    with pytest.raises(StepError, match="unknown candidates"):
        _run(tmp_path, "--candidates", "snaive,prophet")


def test_train_fails_when_no_series_can_be_backtested(tmp_path: Path) -> None:
    _write_series(tmp_path, series_frame(2, 20, END))
    with pytest.raises(StepError, match="long enough"):
        _run(tmp_path)


def test_entry_point_turns_bad_input_into_exit_code_1(tmp_path: Path, capsys) -> None:
    assert run_entry_point(train.main, _args(tmp_path)) == 1
    assert "ERROR Train:" in capsys.readouterr().err


def test_models_file_round_trip_keeps_the_fitted_models(tmp_path: Path) -> None:
    _write_series(tmp_path, series_frame(3, 120, END))
    _run(tmp_path)
    data = (tmp_path / "runs" / "ex-1" / "train" / "models.pkl").read_bytes()
    trained = load_models(data)
    again = load_models(dump_models(trained))
    assert again.settings == trained.settings and again.format_version == FORMAT_VERSION
    for sid, model in trained.models.items():
        copy = again.models[sid]
        assert (copy.model, copy.candidate_mase) == (model.model, model.candidate_mase)
        assert type(copy.fitted) is type(model.fitted)
    assert len(data) < 3 * 4096  # a few kilobytes per series at most


def test_models_file_of_another_format_version_is_refused() -> None:
    old = TrainedModels(settings=None, execution_date=END, format_version=FORMAT_VERSION - 1)
    with pytest.raises(ValueError, match="format version"):
        load_models(dump_models(old))


def test_train_builds_the_calendar_from_its_arguments(tmp_path: Path) -> None:
    _write_series(tmp_path, series_frame(2, 120, END))
    _run(
        tmp_path,
        *("--holiday-country", "none", "--breaks", "year_end,obon"),
        *("--company-days", "2025-03-01+3:spring_sale", "2025-05-10:launch"),
    )
    trained = load_models((tmp_path / "runs" / "ex-1" / "train" / "models.pkl").read_bytes())
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


def test_backtest_adds_a_fold_a_year_back_and_flags_event_days(tmp_path: Path) -> None:
    end = dt.date(2025, 5, 10)  # the recent folds and the fold a year back hold Golden Week
    _write_series(tmp_path, series_frame(1, 500, end))
    train.main(
        [
            *("--execution-date", end.isoformat(), "--execution-id", "ex-1"),
            *("--data-root", str(tmp_path), "--workers", "1", "--horizon", "14"),
            *("--backtest-folds", "2"),
        ]
    )
    backtest = pd.read_parquet(tmp_path / "runs" / "ex-1" / "train" / "backtest.parquet")
    chosen = backtest[backtest["role"] == "chosen"]
    cutoffs = chosen.groupby("fold_kind")["cutoff"].agg(["min", "max", "nunique"])
    assert cutoffs.loc["recent", "nunique"] == 2 and cutoffs.loc["seasonal", "nunique"] == 1
    # 52 weeks before the latest fold: the same season and the same weekdays a year back
    assert (cutoffs.loc["recent", "max"] - cutoffs.loc["seasonal", "min"]).days == 364
    flagged = set(chosen.loc[chosen["event_day"], "target_date"])
    assert {dt.date(2024, 5, 3), dt.date(2025, 5, 3), dt.date(2025, 4, 29)} <= flagged
    assert not flagged & {dt.date(2024, 5, 8), dt.date(2025, 5, 8), dt.date(2025, 4, 28)}
