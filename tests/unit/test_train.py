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
        no_holidays = np.zeros((30, 2))
        assert np.isfinite(model.fitted.forecast(30, no_holidays)).all()

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
