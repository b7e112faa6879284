from __future__ import annotations

import datetime as dt
import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from pipeline_code import bucket_files, run_folder, storage
from pipeline_code.errors import StepError
from pipeline_code.forecasting import metrics
from pipeline_code.forecasting.backtest_table import summarize
from pipeline_code.forecasting.event_calendar import HOLIDAY
from pipeline_code.forecasting.metrics import NO_CALIBRATION
from pipeline_code.run_context import RunContext
from pipeline_code.steps import evaluate, train
from pipeline_code.tables import FORECAST_METRICS, OVERALL_SERIES_ID, TOTAL_SERIES_ID
from tests.unit.forecast_data import write_preproc_quality


def _rows(series_id: str, role: str, model: str, y, yhat, lower, upper, scale=2.0):
    """Backtest rows as Train writes them; the chosen rows' offsets give back their bounds (a
    backtest this small has too few points for the calibration to change them)."""
    n = len(y)
    chosen = role == "chosen"
    return pd.DataFrame(
        {
            "event_kind": 0,
            "offset_low": np.asarray(lower, float) - np.asarray(yhat, float) if chosen else np.nan,
            "offset_high": np.asarray(upper, float) - np.asarray(yhat, float) if chosen else np.nan,
            "nonnegative": True,
            "series_id": series_id,
            "model": model,
            "role": role,
            "fold": np.arange(n) // 2,
            "cutoff": dt.date(2025, 1, 1),
            "target_date": [dt.date(2025, 1, 2 + i) for i in range(n)],
            "step": np.arange(n) % 2 + 1,
            "y": np.asarray(y, float),
            "yhat": np.asarray(yhat, float),
            "yhat_lower": np.asarray(lower, float),
            "yhat_upper": np.asarray(upper, float),
            "scale": scale,
            "interval_level": 0.8,
            "fold_kind": "recent",
            "event_day": False,
        }
    )


def _backtest() -> pd.DataFrame:
    """Two series, two folds of two steps; errors chosen so every metric is known by hand."""
    y = [10, 10, 10, 10]
    return pd.concat(
        [
            # A: |errors| 1,1,1,1 over scale 2 -> MASE 0.5; 3 of 4 inside -> coverage 0.75
            _rows("A", "chosen", "ets", y, [11, 9, 11, 9], [9, 8, 11.5, 8], [12, 10, 12, 10]),
            _rows("A", "benchmark", "snaive", y, [12, 8, 12, 8], [0] * 4, [20] * 4),  # 1.0
            # B: errors 0 -> MASE 0; all inside
            _rows("B", "chosen", "theta", y, y, [9] * 4, [11] * 4),
            _rows("B", "benchmark", "snaive", y, [14, 14, 14, 14], [0] * 4, [20] * 4),  # 2.0
        ],
        ignore_index=True,
    )


def _args(lake: Path, *extra: str) -> list[str]:
    return [
        "--execution-date",
        "2025-01-10",
        "--execution-id",
        "ex-1",
        "--data-root",
        str(lake),
        *extra,
    ]


def _setup(lake: Path, frame: pd.DataFrame) -> None:
    """The backtest summary Train writes for the rows' series, and the series index."""
    ctx = RunContext(dt.date(2025, 1, 10), "ex-1", str(lake))
    bucket_files.write_index(ctx, frame)
    write_preproc_quality(ctx, frame)
    rows = bucket_files.split_by_bucket(frame)
    for bucket in rows:
        train.write_backtest_summary(ctx, bucket, rows[bucket])
        train.write_total_parts(ctx, bucket, rows[bucket], [], 7)


def _summary_files(lake: Path, folder: tuple[str, str]) -> list[Path]:
    return sorted(lake.joinpath("runs", "ex-1", *folder).glob("*.parquet"))


def test_metrics_per_series_and_overall(tmp_path: Path) -> None:
    _setup(tmp_path, _backtest())
    evaluate.main(_args(tmp_path))
    report = json.loads((tmp_path / "runs" / "ex-1" / "evaluation" / "evaluation.json").read_text())
    assert "per_series" not in report  # kept small: per-series scores are in metrics.parquet
    metrics = pd.read_parquet(tmp_path / "runs" / "ex-1" / "evaluation" / "metrics.parquet")
    a, b = (metrics[metrics["series_id"] == s].iloc[0] for s in ("A", "B"))
    assert (a["model"], a["mase"], a["coverage"], a["snaive_mase"]) == ("ets", 0.5, 0.75, 1.0)
    assert (b["model"], b["mase"], b["coverage"], b["snaive_mase"]) == ("theta", 0.0, 1.0, 2.0)
    overall = report["overall"]
    assert overall["mase"] == pytest.approx(0.25)
    assert overall["snaive_mase"] == pytest.approx(1.5)
    assert overall["relative_mase"] == pytest.approx(0.25 / 1.5)
    assert overall["coverage"] == pytest.approx(0.875)
    assert overall["smape"] == pytest.approx(np.mean([200 / 21, 200 / 19]) / 2)
    assert overall["n_series"] == 2 and overall["interval_level"] == 0.8
    assert report["gate"]["passed"] is True and report["gate"]["reasons"] == []
    # the same report in the run folder, for PostProc and people
    in_run = tmp_path / "runs" / "ex-1" / "evaluation" / "evaluation.json"
    assert json.loads(in_run.read_text()) == report


def test_metrics_parquet_has_the_forecast_metrics_columns_and_overall_row(tmp_path: Path) -> None:
    _setup(tmp_path, _backtest())
    evaluate.main(_args(tmp_path))
    metrics = pd.read_parquet(tmp_path / "runs" / "ex-1" / "evaluation" / "metrics.parquet")
    expected = [c for c in FORECAST_METRICS.column_names if c != "execution_id"]
    assert list(metrics.columns) == expected
    overall = metrics[metrics["series_id"] == OVERALL_SERIES_ID].iloc[0]
    assert overall["model"] == "all" and overall["n_points"] == 8 and overall["n_folds"] == 2
    a = metrics[metrics["series_id"] == "A"].iloc[0]
    assert a["mae"] == 1.0 and a["n_points"] == 4


def test_failed_gate_is_reported_not_raised(tmp_path: Path) -> None:
    _setup(tmp_path, _backtest())
    thresholds = ("--max-mase", "0.1", "--max-relative-mase", "0.1", "--min-coverage", "0.9")
    evaluate.main(_args(tmp_path, *thresholds))
    gate = json.loads((tmp_path / "runs" / "ex-1" / "evaluation" / "evaluation.json").read_text())[
        "gate"
    ]
    assert gate["passed"] is False
    assert (gate["max_mase"], gate["max_relative_mase"], gate["min_coverage"]) == (0.1, 0.1, 0.9)
    assert len(gate["reasons"]) == 3
    assert "MASE 0.2500 is above the maximum 0.1000" in gate["message"]


def test_model_worse_than_seasonal_naive_fails_the_relative_gate(tmp_path: Path) -> None:
    frame = _backtest()
    swap = {"chosen": "benchmark", "benchmark": "chosen"}
    _setup(tmp_path, frame.assign(role=frame["role"].map(swap)))
    evaluate.main(_args(tmp_path, "--max-mase", "5"))
    report = json.loads((tmp_path / "runs" / "ex-1" / "evaluation" / "evaluation.json").read_text())
    assert report["overall"]["relative_mase"] == pytest.approx(6.0)
    assert report["gate"]["passed"] is False
    assert report["gate"]["reasons"][0].startswith("relative MASE")


def test_missing_backtest_is_a_step_error(tmp_path: Path) -> None:
    with pytest.raises(StepError, match=r"64 of 64 bucket files missing: .*preproc/quality"):
        evaluate.main(_args(tmp_path))


@pytest.mark.parametrize(
    ("breakage", "message"),
    [
        (lambda f: f.assign(yhat=f["yhat"].where(f.index != 2)), "missing/infinite"),
        (lambda f: f.assign(scale=0.0), "missing/infinite"),
        (lambda f: f[f["role"] == "chosen"], r"series \['[AB]'\] have missing/infinite scores"),
    ],
)
def test_bad_backtest_is_a_step_error(tmp_path: Path, breakage, message: str) -> None:
    _setup(tmp_path, breakage(_backtest()))
    with pytest.raises(StepError, match=message):
        evaluate.main(_args(tmp_path))


@pytest.mark.parametrize(
    ("folder", "column"),
    [(run_folder.BACKTEST_SCORES, "snaive_mase"), (run_folder.CALIBRATION_POINTS, "needed")],
)
def test_a_summary_file_without_a_column_is_a_step_error_naming_it(
    tmp_path: Path, folder: tuple[str, str], column: str
) -> None:
    _setup(tmp_path, _backtest())
    path = _summary_files(tmp_path, folder)[0]
    storage.write_table(pd.read_parquet(path).drop(columns=column), str(path))
    with pytest.raises(StepError, match=rf"{path.name} lacks columns \['{column}'\]"):
        evaluate.main(_args(tmp_path))


def test_points_of_unknown_series_are_a_step_error(tmp_path: Path) -> None:
    _setup(tmp_path, _backtest())
    path = _summary_files(tmp_path, run_folder.CALIBRATION_POINTS)[0]
    points = pd.read_parquet(path)
    storage.write_table(points.assign(series=points["series"] + 5), str(path))
    with pytest.raises(StepError, match="points of unknown series"):
        evaluate.main(_args(tmp_path))


def test_series_too_short_for_a_backtest_leave_no_rows_to_evaluate(tmp_path: Path) -> None:
    frame = _backtest()
    _setup(tmp_path, frame)
    empty = summarize(frame.iloc[0:0])
    for folder, table in (
        (run_folder.BACKTEST_SCORES, empty.scores),
        (run_folder.CALIBRATION_POINTS, empty.points),
    ):
        for path in _summary_files(tmp_path, folder):
            storage.write_table(table, str(path))
    with pytest.raises(StepError, match="no series is long enough for one backtest fold"):
        evaluate.main(_args(tmp_path))


def test_a_missing_bucket_file_fails_naming_it(tmp_path: Path) -> None:
    _setup(tmp_path, _backtest())
    first = _summary_files(tmp_path, run_folder.CALIBRATION_POINTS)[0]
    first.unlink()
    with pytest.raises(StepError, match=rf"1 of 2 bucket files missing: .*{first.name}.*Train"):
        evaluate.main(_args(tmp_path))


def test_the_intervals_are_calibrated_over_all_series_and_the_calibration_written(
    tmp_path: Path,
) -> None:
    """56 points a step, every error twice its interval's offset: each step's factor is 2, the
    chosen rows' intervals double and then cover everything."""
    n = 28
    y = np.full(n, 10.0)
    frames = []
    for i in range(4):
        errors = np.where(np.arange(n) % 2 == 0, 2.0, -2.0) * (1 + i / 4)
        yhat = y - errors
        chosen = _rows(
            f"S{i}", "chosen", "ets", y, yhat, yhat - np.abs(errors) / 2, yhat + np.abs(errors) / 2
        )
        frames += [chosen, _rows(f"S{i}", "benchmark", "snaive", y, y + 5, y, y + 9)]
    _setup(tmp_path, pd.concat(frames, ignore_index=True))
    report = evaluate.run(
        evaluate.context_from(evaluate.parse_args(_args(tmp_path))),
        evaluate.parse_args(_args(tmp_path)),
    )
    calibration = json.loads(
        (tmp_path / "runs" / "ex-1" / "evaluation" / "calibration.json").read_text()
    )
    assert calibration["step_factors"] == [2.0, 2.0]
    assert report["overall"]["coverage"] == 1.0  # 0.0 before the calibration


def _with_a_large_series_worse_than_seasonal_naive() -> pd.DataFrame:
    """A and B as above; C is ten times larger and worse than its seasonal naive (relative MASE
    1.2), while the averages still pass: overall relative MASE (0.5 + 0 + 3) / (1 + 2 + 2.5)."""
    y = [100, 100, 100, 100]
    return pd.concat(
        [
            _backtest(),
            _rows("C", "chosen", "ets", y, [106, 94, 106, 94], [90] * 4, [110] * 4),  # MASE 3
            _rows("C", "benchmark", "snaive", y, [105, 95, 105, 95], [0] * 4, [200] * 4),  # 2.5
        ],
        ignore_index=True,
    )


def test_one_large_broken_series_fails_the_gate_though_the_average_passes(tmp_path: Path) -> None:
    _setup(tmp_path, _with_a_large_series_worse_than_seasonal_naive())
    extra = ["--largest-series", "2", "--max-series-relative-mase", "1.1"]
    evaluate.main(_args(tmp_path, *extra))
    report = json.loads((tmp_path / "runs" / "ex-1" / "evaluation" / "evaluation.json").read_text())
    assert report["overall"]["relative_mase"] < 1.0
    assert report["overall"]["largest_series_relative_mase"] == pytest.approx(1.2)
    assert [s["series_id"] for s in report["gate"]["largest_series"]] == ["C", "A"]
    assert report["gate"]["passed"] is False
    assert report["gate"]["reasons"] == [
        "series C (among the largest) has relative MASE 1.2000, above the maximum 1.1000"
    ]


def test_the_largest_series_check_passes_when_each_beats_its_seasonal_naive(
    tmp_path: Path,
) -> None:
    _setup(tmp_path, _backtest())
    evaluate.main(_args(tmp_path, "--max-series-relative-mase", "1.0"))
    report = json.loads((tmp_path / "runs" / "ex-1" / "evaluation" / "evaluation.json").read_text())
    assert report["overall"]["largest_series_relative_mase"] == pytest.approx(0.5)
    assert report["gate"]["passed"] is True


def _with_folds(frame: pd.DataFrame) -> pd.DataFrame:
    """Fold 0 a year back (a seasonal fold), fold 1 recent; the first step of each is an event."""
    return frame.assign(
        fold_kind=np.where(frame["fold"] == 0, "seasonal", "recent"),
        event_day=frame["step"] == 1,
        event_kind=np.where(frame["step"] == 1, HOLIDAY, 0),
    )


def test_the_report_says_which_folds_and_scores_event_days_apart(tmp_path: Path) -> None:
    _setup(tmp_path, _with_folds(_backtest()))
    evaluate.main(_args(tmp_path))
    report = json.loads((tmp_path / "runs" / "ex-1" / "evaluation" / "evaluation.json").read_text())
    folds = report["backtest"]["folds"]
    assert folds["recent"]["folds"] == 1 and folds["seasonal"]["folds"] == 1
    # A's errors are 1 everywhere (scale 2), B's 0: MASE 0.25 on either kind of fold
    assert folds["recent"]["mase"] == pytest.approx(0.25)
    assert folds["seasonal"]["mase"] == pytest.approx(0.25)
    # A: events (step 1) 11 in [9, 12], 11 in [11.5, 12] is not: 1 of 2; B's all inside
    assert report["backtest"]["coverage_event_days"] == pytest.approx(3 / 4)
    assert report["backtest"]["coverage_other_days"] == pytest.approx(4 / 4)
    assert report["backtest"]["event_points"] == 4
    assert report["gate"]["message"] == (
        "passed (backtest: 1 recent folds + 1 at the same season a year or more back)"
    )


def test_a_backtest_of_recent_folds_only_says_so(tmp_path: Path) -> None:
    _setup(tmp_path, _backtest())
    evaluate.main(_args(tmp_path))
    report = json.loads((tmp_path / "runs" / "ex-1" / "evaluation" / "evaluation.json").read_text())
    assert report["backtest"]["folds"]["recent"]["folds"] == 2
    assert report["backtest"]["folds"]["seasonal"] == {"folds": 0, "mase": None}
    assert report["backtest"]["coverage_event_days"] is None
    assert report["gate"]["message"] == "passed (backtest: 2 recent folds)"


def test_the_step_scores_with_the_forecasting_metrics() -> None:
    """TrainEvaluation and the benchmarks score with the same functions: per series, the step's
    figures are `forecasting.metrics` applied to that series' chosen rows."""
    rng = np.random.default_rng(5)
    y = rng.poisson(4.0, 8).astype(float)
    yhat = y + rng.normal(0, 2, 8)
    y[0] = yhat[0] = 0.0  # a 0/0 point: sMAPE scores it 0
    frame = pd.concat(
        [
            _rows("A", "chosen", "ets", y, yhat, yhat - 1.5, yhat + 1.5, scale=1.7),
            _rows("A", "benchmark", "snaive", y, y[::-1], y - 9, y + 9, scale=1.7),
        ],
        ignore_index=True,
    )
    per_series = evaluate.per_series_metrics(summarize(frame), NO_CALIBRATION)
    scores = per_series.set_index("series_id").loc["A"]
    assert scores["mase"] == pytest.approx(metrics.mean_mase(y[None, :], yhat[None, :], [1.7]))
    assert scores["smape"] == pytest.approx(metrics.smape(y, yhat))
    assert scores["mae"] == pytest.approx(metrics.mae(y, yhat))
    assert scores["coverage"] == pytest.approx(metrics.coverage(y, yhat - 1.5, yhat + 1.5))


def test_a_run_without_series_is_a_step_error_naming_why(tmp_path: Path) -> None:
    ctx = RunContext(dt.date(2025, 1, 10), "ex-1", str(tmp_path))
    empty = pd.DataFrame({"series_id": pd.Series([], dtype=object)})
    bucket_files.write_index(ctx, empty)
    write_preproc_quality(ctx, empty)
    with pytest.raises(StepError, match=r"PreProc: nothing left to model: every series is set"):
        evaluate.main(_args(tmp_path))


def test_the_total_is_scored_on_its_own_backtest_and_its_interval_written(tmp_path: Path) -> None:
    _setup(tmp_path, _backtest())
    report = evaluate.run(
        RunContext(dt.date(2025, 1, 10), "ex-1", str(tmp_path)),
        evaluate.parse_args(_args(tmp_path)),
    )
    published = pd.read_parquet(tmp_path / "runs" / "ex-1" / "evaluation" / "metrics.parquet")
    row = published[published["series_id"] == TOTAL_SERIES_ID].iloc[0]
    # totals per day: actual 20; forecasts 21, 19, 21, 19 (A's errors; B's are 0): MAE 1
    assert (row["model"], row["mae"], row["n_points"]) == ("sum_of_series", 1.0, 4)
    # seasonal naive sums: 26, 22, 26, 22 -> MAE 4; no history given: scale 1
    assert (row["mase"], row["snaive_mase"]) == (1.0, 4.0)
    assert report["total"]["relative_mase"] == 0.25
    written = json.loads(
        (tmp_path / "runs" / "ex-1" / "evaluation" / "total_calibration.json").read_text()
    )
    relative = (20.0 - np.array([21.0, 19.0, 21.0, 19.0])) / np.array([21.0, 19.0, 21.0, 19.0])
    assert written["ordinary"] == pytest.approx(list(metrics.interval_offsets(relative, 0.8)))
    overall = published[published["series_id"] == OVERALL_SERIES_ID].iloc[0]
    assert overall["mase"] == pytest.approx(0.25)  # the mean of the series, the total left out


def test_a_series_with_a_reserved_id_is_refused(tmp_path: Path) -> None:
    frame = _backtest()
    frame.loc[frame["series_id"] == "B", "series_id"] = TOTAL_SERIES_ID
    _setup(tmp_path, frame)
    with pytest.raises(StepError, match=r"series \['__total__'\] take an id reserved"):
        evaluate.main(_args(tmp_path))
