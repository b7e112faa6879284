"""Realized accuracy: scoring published forecasts on the days that have since arrived."""

from __future__ import annotations

import datetime as dt

import numpy as np
import pandas as pd
import pytest

from pipeline_code import accuracy

D = dt.date(2026, 5, 10)


def day(offset: int) -> dt.date:
    return D + dt.timedelta(days=offset)


def test_a_run_scores_the_days_since_the_latest_earlier_publication() -> None:
    assert accuracy.days_to_score(D, [day(-1), day(-5)]) == [D]
    assert accuracy.days_to_score(D, [day(-3), day(-10), day(2)]) == [day(-2), day(-1), D]
    assert accuracy.days_to_score(D, [D, day(1)]) == []  # nothing published before D
    assert accuracy.days_to_score(D, []) == []


def history(values: list[float], series: str = "a", last: dt.date = D) -> pd.DataFrame:
    days = [last - dt.timedelta(days=len(values) - 1 - i) for i in range(len(values))]
    return pd.DataFrame({"series_id": series, "ds": days, "y": values})


def test_the_scale_is_the_series_history_up_to_the_publication() -> None:
    values = [float(v) for v in range(1, 22)] + [100.0]  # a jump after the publication
    scales = accuracy.scales_at(history(values), [day(-1), D], season_length=7)
    at = scales.set_index("forecast_date")["scale"]
    assert at[day(-1)] == pytest.approx(7.0)  # y_t - y_{t-7} = 7 on every day up to D-1
    assert at[D] > 7.0


def test_a_publication_is_scored_by_hand() -> None:
    forecasts = pd.DataFrame(
        {
            "series_id": ["a", "a", "b"],
            "target_date": [day(-1), D, D],
            "yhat": [10.0, 12.0, 5.0],
            "yhat_lower": [8.0, 9.0, 4.0],
            "yhat_upper": [12.0, 14.0, 6.0],
            "model": ["ets", "ets", "theta"],
        }
    )
    actuals = pd.DataFrame({"series_id": ["a", "b", "c"], "ds": [D, D, D], "y": [15.0, 5.5, 3.0]})
    scales = pd.DataFrame({"series_id": ["a", "b"], "forecast_date": day(-3), "scale": [2.0, 0.0]})
    rows = accuracy.score_publication(day(-3), forecasts, actuals, scales, pd.Series({"a": 0.8}))
    assert list(rows.columns) == list(accuracy.ROW_COLUMNS)
    a, b = rows.iloc[0], rows.iloc[1]
    assert (a.series_id, a.target_date, a.horizon_step, a.actual) == ("a", D, 3, 15.0)
    assert a.abs_error == 3.0 and a.scaled_error == 1.5 and not a.inside
    assert a.backtest_mase == 0.8
    assert b.inside and np.isnan(b.scaled_error)  # a zero scale scales nothing
    assert np.isnan(b.backtest_mase)
    assert len(rows) == 2  # day -1 has no actual here, series c no forecast


def scored(series: str, errors: list[float], inside: list[bool], promised: float) -> pd.DataFrame:
    n = len(errors)
    return pd.DataFrame(
        {
            "forecast_date": [day(-i - 1) for i in range(n)],
            "series_id": series,
            "target_date": [day(-i) for i in range(n)],
            "actual": 10.0,
            "yhat": [10.0 + e for e in errors],
            "scaled_error": [abs(e) for e in errors],
            "inside": inside,
            "backtest_mase": promised,
        }
    )


def test_the_promise_check_warns_on_a_series_that_drifted_and_not_on_one_that_held() -> None:
    rows = pd.concat(
        [
            scored("steady", [0.8, -0.8] * 10, [True] * 16 + [False] * 4, promised=0.8),
            scored("drifted", [3.0] * 20, [False] * 20, promised=0.8),
        ]
    )
    check = accuracy.promise_check(accuracy.window_sums(rows), level=0.8)
    by_series = check.set_index("series_id", drop=False)
    assert by_series.loc["steady", "ratio"] == pytest.approx(1.0)
    assert by_series.loc["steady", "coverage"] == pytest.approx(0.8)
    assert by_series.loc["drifted", "ratio"] == pytest.approx(3.75)
    assert by_series.loc["drifted", "bias"] == pytest.approx(0.3)
    overall = check[check["series_id"].isna()].iloc[0]
    assert overall["points"] == 40
    warnings = accuracy.promise_warnings(check, accuracy.PromiseSettings())
    assert warnings[0].startswith("realized accuracy: series drifted: interval coverage 0% over")
    assert any(
        line.startswith("realized accuracy: series drifted: MASE 3.00 over the last 20 scored")
        and "3.8x the backtest's 0.80 (limit 1.5x)" in line
        for line in warnings
    )
    assert any("series drifted: interval coverage 0%" in line for line in warnings)
    assert not any("steady" in line for line in warnings)


def test_too_few_points_say_too_little_to_warn() -> None:
    rows = scored("new", [5.0] * 5, [False] * 5, promised=0.5)
    check = accuracy.promise_check(accuracy.window_sums(rows), level=0.8)
    assert accuracy.promise_warnings(check, accuracy.PromiseSettings(min_points=14)) == []
    assert accuracy.promise_warnings(check, accuracy.PromiseSettings(min_points=5))


def test_the_window_keeps_the_trailing_days_only() -> None:
    rows = scored("a", [1.0] * 40, [True] * 40, promised=1.0)
    kept = accuracy.trailing(rows, D, window_days=28)
    assert len(kept) == 28
    assert min(kept["target_date"]) == day(-27)


def test_no_scored_rows_give_an_empty_check_and_no_warning() -> None:
    empty = pd.DataFrame(columns=["series_id", *accuracy.SUM_COLUMNS])
    check = accuracy.promise_check(empty, level=0.8)
    assert check["points"].tolist() == [0]
    assert accuracy.promise_warnings(check, accuracy.PromiseSettings()) == []


def test_a_publication_with_nothing_to_score_on_the_days_leaves_an_empty_bucket(tmp_path) -> None:
    """No actual on the day (the source delivered nothing): the bucket is written without rows,
    and the day's forecast is not failed by it."""
    from pipeline_code import accuracy_files, run_folder, storage
    from pipeline_code.run_context import RunContext

    past = accuracy_files.Publication(day(-1), "exec-past")
    forecasts = pd.DataFrame(
        {"series_id": ["a"], "target_date": [D], "yhat": [1.0], "yhat_lower": [0.0],
         "yhat_upper": [2.0], "model": ["ets"]}
    )  # fmt: skip
    storage.write_table(forecasts, past.run_path(str(tmp_path), *run_folder.forecasts_bucket(3)))
    ctx = RunContext(execution_date=D, execution_id="exec-now", data_root=str(tmp_path))
    plan = accuracy_files.ScoringPlan(days=[D], window_days=28, scored=[past], window=[])
    no_actuals = pd.DataFrame(columns=["series_id", "ds", "y"])
    accuracy_files.score_bucket(ctx, 3, history([1.0] * 20), plan, no_actuals, season_length=7)
    assert storage.read_table(ctx.path(*run_folder.accuracy_bucket(3))).empty
