"""Forecast accuracy measures and the empirical prediction-interval calibration.

Definitions follow the M4 competition: sMAPE in 0..200 with a 0/0 term scored 0 (demand counts
have zeros), MASE scaled by the in-sample mean absolute seasonal difference.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np


def mase_scale(history: np.ndarray, season_length: int) -> float:
    """In-sample MAE of the seasonal-naive forecast: the MASE denominator.

    A history without any seasonal change (e.g. all zeros) has scale 0; it falls back to the lag-1
    MAE, then the mean absolute value, then 1.0, so the MASE stays finite and comparable.
    """
    x = np.asarray(history, dtype=float)
    for lag in (season_length, 1):
        if len(x) > lag:
            scale = float(np.mean(np.abs(x[lag:] - x[:-lag])))
            if scale > 0:
                return scale
    level = float(np.mean(np.abs(x))) if len(x) else 0.0
    return level if level > 0 else 1.0


def absolute_errors(actual: np.ndarray, forecast: np.ndarray) -> np.ndarray:
    return np.abs(np.asarray(actual, dtype=float) - np.asarray(forecast, dtype=float))


def smape_terms(actual: np.ndarray, forecast: np.ndarray) -> np.ndarray:
    """200|y-f|/(|y|+|f|) per point; a point with y == f == 0 counts as a perfect 0."""
    y = np.asarray(actual, dtype=float)
    f = np.asarray(forecast, dtype=float)
    denominator = np.abs(y) + np.abs(f)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(denominator == 0, 0.0, 200.0 * np.abs(y - f) / denominator)


def inside_interval(actual: np.ndarray, lower: np.ndarray, upper: np.ndarray) -> np.ndarray:
    """Per point, whether the actual is inside [lower, upper], bounds included."""
    y = np.asarray(actual, dtype=float)
    return (y >= np.asarray(lower, dtype=float)) & (y <= np.asarray(upper, dtype=float))


def mean_mase(actual: np.ndarray, forecast: np.ndarray, scales: np.ndarray) -> float:
    """MASE averaged over rows: `actual` and `forecast` are (rows, points), each row scaled by
    its own `scales` entry (a series, or a backtest fold of one series)."""
    row_mae = np.mean(absolute_errors(actual, forecast), axis=1)
    return float(np.mean(row_mae / np.asarray(scales, dtype=float)))


def mae(actual: np.ndarray, forecast: np.ndarray) -> float:
    return float(np.mean(absolute_errors(actual, forecast)))


def smape(actual: np.ndarray, forecast: np.ndarray) -> float:
    """Mean of `smape_terms`."""
    return float(np.mean(smape_terms(actual, forecast)))


def coverage(actual: np.ndarray, lower: np.ndarray, upper: np.ndarray) -> float:
    """Share of actuals inside [lower, upper], bounds included."""
    return float(np.mean(inside_interval(actual, lower, upper)))


def interval_offsets(errors: np.ndarray, level: float) -> tuple[float, float]:
    """Offsets (low, high) to add to a point forecast for a central interval of `level`.

    `errors` are past out-of-sample errors (actual - forecast). The quantile levels are widened
    by the split-conformal finite-sample correction, so a handful of backtest errors does not
    give an interval that is too narrow. No errors: a zero-width interval.
    """
    e = np.asarray(errors, dtype=float).ravel()
    e = e[np.isfinite(e)]
    if e.size == 0:
        return 0.0, 0.0
    tail = (1.0 - level) / 2.0
    n = e.size
    upper_q = min(1.0, math.ceil((n + 1) * (1.0 - tail)) / n)
    lower_q = max(0.0, 1.0 - upper_q)
    low, high = np.quantile(e, [lower_q, upper_q])
    return float(low), float(high)


# --- calibration of the intervals across series

CALIBRATION_STEP_REACH = 3  # an ordinary day's step pools the steps up to 3 either side
MIN_CALIBRATION_POINTS = 20  # fewer backtest points in a class: leave its intervals as they are
MIN_EVENT_POINTS = 60  # backtest points an event needs for a factor of its own


@dataclass(frozen=True)
class IntervalCalibration:
    """Factors on each series' interval offsets: per horizon step (ordinary days) and on events.

    A series' own backtest has too few errors to tell step 1 from step 28 or event days from
    the rest; the backtests of all series together do. The factor of a class is the smallest
    that makes `level` of that class's backtest points fall inside their widened intervals. Event
    days share one factor, and an event with enough backtest points has its own: a holiday's
    errors and a closure's differ in more than their level.
    """

    step_factors: tuple[float, ...] = (1.0,)  # step 1, 2, ...; the last one holds beyond
    event_factor: float = 1.0
    code_factors: dict[int, float] = field(default_factory=dict)  # event code: its own factor

    def factors(self, steps: np.ndarray, codes: np.ndarray) -> np.ndarray:
        """The factor of each forecast day: `steps` are 1-based, `codes` its event codes."""
        codes = np.asarray(codes)
        by_step = np.asarray(self.step_factors, dtype=float)
        ordinary = by_step[np.minimum(np.asarray(steps) - 1, len(by_step) - 1)]
        out = np.where(codes != 0, self.event_factor, ordinary)
        for code, factor in self.code_factors.items():
            out = np.where(codes == code, factor, out)
        return out


NO_CALIBRATION = IntervalCalibration()


def needed_factors(errors: np.ndarray, low: np.ndarray, high: np.ndarray) -> np.ndarray:
    """Per point, the smallest factor on its offsets (low <= 0 <= high) that covers its error."""
    with np.errstate(divide="ignore", invalid="ignore"):
        above = np.where(high > 0, errors / high, np.inf)
        below = np.where(low < 0, errors / low, np.inf)
    return np.where(errors > 0, above, np.where(errors < 0, below, 0.0))


def _conformal_quantile(values: np.ndarray, level: float) -> float:
    n = values.size
    q = min(1.0, math.ceil((n + 1) * level) / n)
    factor = float(np.quantile(values, q, method="higher"))
    return factor if np.isfinite(factor) else float(np.max(values[np.isfinite(values)], initial=1))


def calibrate_intervals(
    steps: np.ndarray, codes: np.ndarray, needed: np.ndarray, level: float, horizon: int
) -> IntervalCalibration:
    """Factors per step of ordinary days (neighbouring steps pooled), for events, per event."""
    steps, codes, needed = (np.asarray(a).ravel() for a in (steps, codes, needed))
    events = codes != 0
    ordinary_steps, ordinary_needed = steps[~events], needed[~events]
    step_factors = []
    for step in range(1, horizon + 1):
        near = np.abs(ordinary_steps - step) <= CALIBRATION_STEP_REACH
        enough = near.sum() >= MIN_CALIBRATION_POINTS
        step_factors.append(_conformal_quantile(ordinary_needed[near], level) if enough else 1.0)
    event_needed = needed[events]
    event_factor = (
        _conformal_quantile(event_needed, level)
        if event_needed.size >= MIN_CALIBRATION_POINTS
        else 1.0
    )
    code_factors = {}
    for code in np.unique(codes[events]):
        own = needed[codes == code]
        if own.size >= MIN_EVENT_POINTS:
            code_factors[int(code)] = _conformal_quantile(own, level)
    return IntervalCalibration(tuple(step_factors), event_factor, code_factors)
