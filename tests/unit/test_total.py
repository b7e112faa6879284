"""The total across series: partial sums that add up, an interval from the total's own errors."""

from __future__ import annotations

import datetime as dt

import numpy as np
import pandas as pd
import pytest

from pipeline_code.forecasting import total
from pipeline_code.forecasting.metrics import interval_offsets
from pipeline_code.forecasting.selection import SeriesData

CUTOFFS = (dt.date(2025, 1, 31), dt.date(2025, 2, 28))
DAYS = 28


def _rows(series_id: str, errors: np.ndarray, level: float = 100.0, kinds=None) -> pd.DataFrame:
    """Backtest rows of one series (chosen and benchmark), two folds of DAYS steps, forecast
    `level` every day and actual `level + errors`; seasonal naive forecasts `level + 5`."""
    errors = np.asarray(errors, dtype=float).reshape(len(CUTOFFS), DAYS)
    kinds = np.zeros(DAYS, dtype=np.int64) if kinds is None else np.asarray(kinds)
    frames = []
    for fold, cutoff in enumerate(CUTOFFS):
        common = {
            "series_id": series_id,
            "cutoff": cutoff,
            "step": np.arange(1, DAYS + 1),
            "target_date": [cutoff + dt.timedelta(days=k) for k in range(1, DAYS + 1)],
            "event_kind": kinds,
            "y": level + errors[fold],
        }
        frames.append(pd.DataFrame({**common, "role": "chosen", "yhat": level}))
        frames.append(pd.DataFrame({**common, "role": "benchmark", "yhat": level + 5.0}))
    return pd.concat(frames, ignore_index=True)


def _history(length: int = 70) -> pd.DataFrame:
    """A total history whose seasonal (7-day) differences are all 14: MASE scale 14."""
    return total.history_parts(
        [SeriesData("a", np.arange(length, dtype=float) * 2.0, dt.date(2024, 11, 20))], 7
    )


def test_the_partial_sums_of_any_split_add_up_to_the_sums_of_all() -> None:
    rng = np.random.default_rng(1)
    rows = [_rows(sid, rng.integers(-20, 20, 2 * DAYS)) for sid in "abcde"]
    whole = total.backtest_parts(pd.concat(rows, ignore_index=True))
    for split in ([rows[:2], rows[2:]], [rows[:1], rows[1:4], rows[4:]]):
        parts = [total.backtest_parts(pd.concat(part, ignore_index=True)) for part in split]
        added = total.add_parts(parts, list(total.BACKTEST_KEYS))
        pd.testing.assert_frame_equal(added, whole)
    assert (whole["n_series"] == 5).all() and len(whole) == 2 * DAYS
    first = whole.iloc[0]
    assert first["yhat"] == 500.0 and first["snaive"] == 525.0
    assert first["y"] == sum(r["y"].iloc[0] for r in rows)


def test_the_interval_comes_from_the_totals_errors_not_the_series() -> None:
    """Two series whose errors cancel: each series errs by up to 30, the total never. Series'
    intervals (or their sum) would be wide; the total's is as narrow as its own errors."""
    rng = np.random.default_rng(2)
    swing = rng.uniform(-30, 30, 2 * DAYS)
    noise = rng.uniform(-2, 2, 2 * DAYS)
    backtest = total.backtest_parts(
        pd.concat([_rows("a", swing + noise), _rows("b", -swing)], ignore_index=True)
    )
    fit = total.fit_total(backtest, _history(), level=0.8)
    assert fit is not None
    low, high = fit.interval.ordinary
    expected = interval_offsets(noise / 200.0, 0.8)
    assert (low, high) == pytest.approx(expected)
    series_low, series_high = interval_offsets(swing / 100.0, 0.8)
    assert high - low < (series_high - series_low) / 5  # far narrower than one series' own
    lower, upper = fit.interval.bounds(np.array([200.0]), np.array([False]))
    assert upper[0] - lower[0] == pytest.approx(200.0 * (high - low))
    assert fit.scores["coverage"] >= 0.8


def test_event_days_get_their_own_offsets_when_the_backtest_holds_enough() -> None:
    kinds = np.zeros(DAYS, dtype=np.int64)
    kinds[10:16] = 1  # six days of a break in each fold
    errors = np.tile(np.where(kinds != 0, 40.0, 1.0) * np.resize([1, -1], DAYS), 2)
    backtest = total.backtest_parts(_rows("a", errors, kinds=kinds))
    interval = total.fit_total(backtest, _history(), level=0.8).interval
    assert interval.event_days == 12
    assert interval.event[1] == pytest.approx(0.4) and interval.ordinary[1] == pytest.approx(0.01)
    lower, upper = interval.bounds(np.array([100.0, 100.0]), np.array([False, True]))
    assert upper.tolist() == pytest.approx([101.0, 140.0])
    assert lower.tolist() == pytest.approx([99.0, 60.0])


def test_few_event_days_share_the_offsets_of_every_day() -> None:
    kinds = np.zeros(DAYS, dtype=np.int64)
    kinds[3] = 1  # one break day a fold: two days in all, too few for offsets of their own
    backtest = total.backtest_parts(_rows("a", np.tile(np.arange(DAYS) - 14.0, 2), kinds=kinds))
    interval = total.fit_total(backtest, _history(), level=0.8).interval
    every = interval_offsets(np.tile(np.arange(DAYS) - 14.0, 2) / 100.0, 0.8)
    assert interval.event == pytest.approx(every)


def test_mase_is_scaled_by_the_totals_own_history() -> None:
    backtest = total.backtest_parts(_rows("a", np.full(2 * DAYS, 7.0)))
    fit = total.fit_total(backtest, _history(), level=0.8)
    # |error| 7 (model) and 2 (seasonal naive, forecasting 105) over the total's scale of 14
    assert fit.scores["mase"] == pytest.approx(0.5)
    assert fit.scores["snaive_mase"] == pytest.approx(2.0 / 14.0)
    assert fit.scores["n_folds"] == 2 and fit.scores["n_points"] == 2 * DAYS


def test_points_of_a_few_series_only_are_not_the_total() -> None:
    """A series with an odd end adds points at cutoffs no other series has: partial sums."""
    rows = [_rows(sid, np.zeros(2 * DAYS)) for sid in "abc"]
    odd = _rows("d", np.full(2 * DAYS, 50.0))
    odd["cutoff"] = odd["cutoff"] - dt.timedelta(days=3)
    backtest = total.backtest_parts(pd.concat([*rows, odd], ignore_index=True))
    points = total.total_points(backtest)
    assert (points["n_series"] == 3).all() and len(points) == 2 * DAYS


def test_the_interval_round_trips_through_json() -> None:
    interval = total.TotalInterval(0.8, (-0.1, 0.2), (-0.3, 0.4), points=56, event_days=6)
    assert total.TotalInterval.from_json(interval.to_json()) == interval


def test_the_total_forecast_sums_every_series_per_day() -> None:
    forecasts = pd.DataFrame(
        {
            "series_id": ["a", "a", "b", "b"],
            "target_date": [dt.date(2025, 3, 1), dt.date(2025, 3, 2)] * 2,
            "yhat": [1.25, 2.0, 3.5, 0.0],
            "event_kind": [0, 3, 0, 3],
        }
    )
    interval = total.TotalInterval(0.8, (-0.1, 0.1), (-0.5, 0.5))
    out = total.total_forecast(forecasts, interval)
    assert out["yhat"].tolist() == [4.75, 2.0]
    assert out["yhat_upper"].tolist() == pytest.approx([4.75 * 1.1, 3.0])
    assert out["yhat_lower"].tolist() == pytest.approx([4.75 * 0.9, 1.0])
