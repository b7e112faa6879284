"""The backtest summary Train writes per bucket and the calibration counted from it."""

from __future__ import annotations

import datetime as dt
import math

import numpy as np
import pandas as pd
import pytest

from local_run.demo_data import demo_daily_counts
from pipeline_code.forecasting import SeriesData, daily_settings
from pipeline_code.forecasting.backtest_table import (
    backtest_calibration,
    backtest_frame,
    calibrated_frame,
    summarize,
)
from pipeline_code.forecasting.batch import pool_events, train_share
from pipeline_code.forecasting.event_calendar import BREAK_DAY, HOLIDAY
from pipeline_code.forecasting.metrics import (
    MIN_CALIBRATION_POINTS,
    CalibrationCounts,
    calibrate_intervals,
    inside_interval,
)
from pipeline_code.steps import evaluate


def _points(n: int, seed: int) -> tuple[np.ndarray, ...]:
    """Steps, kinds, days and needed factors: heavy-tailed, with exact zeros and uncoverable
    points, as real backtests have."""
    rng = np.random.default_rng(seed)
    steps = rng.integers(1, 29, n)
    kinds = rng.choice([0, HOLIDAY, BREAK_DAY], size=n, p=[0.8, 0.12, 0.08])
    days = rng.integers(0, 60, n)
    needed = np.abs(rng.standard_cauchy(n))
    needed[rng.random(n) < 0.05] = 0.0
    needed[rng.random(n) < 0.01] = np.inf
    return steps, kinds, days, needed


def _counted(parts: list[np.ndarray], points: tuple[np.ndarray, ...]) -> CalibrationCounts:
    """Counts built as instances build them: one per part, merged."""
    total = CalibrationCounts()
    for part in parts:
        counts = CalibrationCounts()
        counts.add(*(a[part] for a in points), 0.8)
        total.merge(counts)
    return total


def test_the_calibration_is_the_same_for_any_split_and_order_of_the_points() -> None:
    points = _points(20_000, seed=1)
    whole = calibrate_intervals(*points, 0.8, 28)
    rng = np.random.default_rng(2)
    for parts in (3, 7, 64):
        order = rng.permutation(20_000)
        split = np.array_split(order, parts)
        assert _counted(split, points).calibration() == whole
    assert whole.kind_factors.keys() == {HOLIDAY, BREAK_DAY}


def _exact_quantile(values: np.ndarray, level: float) -> float:
    n = values.size
    q = min(1.0, math.ceil((n + 1) * level) / n)
    return float(np.quantile(values, q, method="higher"))


@pytest.mark.parametrize("seed", [3, 4, 5])
def test_a_factor_is_the_exact_quantile_rounded_up_by_less_than_a_thousandth(seed: int) -> None:
    steps, kinds, days, needed = _points(5000, seed)
    calibration = calibrate_intervals(steps, kinds, days, needed, 0.8, 28)
    own = kinds == HOLIDAY
    exact = _exact_quantile(needed[own], 0.8)
    assert exact <= calibration.kind_factors[HOLIDAY] <= exact * 1.001
    near = (kinds == 0) & (np.abs(steps - 10) <= 3)  # step 10 pools steps 7..13
    exact = _exact_quantile(needed[near], 0.8)
    assert exact <= calibration.step_factors[9] <= exact * 1.001


def test_a_factor_that_is_a_power_of_two_is_exact() -> None:
    n = MIN_CALIBRATION_POINTS
    calibration = calibrate_intervals(
        np.ones(n), np.zeros(n), np.arange(n), np.full(n, 2.0), 0.8, 1
    )
    assert calibration.step_factors == (2.0,)


def test_a_class_most_of_whose_points_no_factor_covers_takes_its_widest_finite_factor() -> None:
    n = 40
    needed = np.where(np.arange(n) < 5, np.arange(n) * 0.9, np.inf)  # finite: 0 .. 3.6
    calibration = calibrate_intervals(np.ones(n), np.zeros(n), np.arange(n), needed, 0.8, 1)
    assert calibration.step_factors == (3.6,)


def test_counts_at_another_interval_level_are_refused() -> None:
    counts = CalibrationCounts()
    counts.add(np.ones(3), np.zeros(3), np.arange(3), np.ones(3), 0.8)
    with pytest.raises(ValueError, match=r"interval level 0\.9"):
        counts.add(np.ones(3), np.zeros(3), np.arange(3), np.ones(3), 0.9)


def test_coverage_from_the_summary_is_that_of_the_calibrated_intervals() -> None:
    """TrainEvaluation scores coverage from the summary's needed factors; the benchmarks from
    the calibrated rows' bounds: per series, the same figure."""
    frame = demo_daily_counts(dt.date(2025, 12, 20), years=2.0, n_models=6)
    series = [
        SeriesData(sid, rows["y"].to_numpy(), rows["ds"].iloc[0])
        for sid, rows in frame.groupby("series_id")
    ]
    settings = daily_settings()
    trainings = train_share(series, settings, pool_events(series, settings), workers=1)
    rows = backtest_frame(trainings, series, settings)
    calibration = backtest_calibration(rows)
    assert calibration.step_factors != (1.0,) * len(calibration.step_factors)

    from_summary = evaluate.per_series_metrics(summarize(rows), calibration)
    chosen = calibrated_frame(rows, calibration).query("role == 'chosen'")
    inside = inside_interval(chosen["y"], chosen["yhat_lower"], chosen["yhat_upper"])
    from_bounds = pd.Series(inside, index=chosen.index).groupby(chosen["series_id"]).mean()
    np.testing.assert_allclose(
        from_summary.set_index("series_id")["coverage"], from_bounds.sort_index()
    )
    assert 0.6 < from_bounds.mean() < 0.95
