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
# Distinct calendar days a class of event days needs for a factor of its own. All series see
# the same holiday on the same day and share its estimated effect, so their errors on that day
# move together: a class's evidence is its number of days, not of points (27 series on 3
# holidays are 3 draws, whose 80% quantiles spread from 0.6 to 1.5 on the demo data).
MIN_EVENT_DAYS = 5


@dataclass(frozen=True)
class IntervalCalibration:
    """Factors on each series' interval offsets: per horizon step (ordinary days) and on events.

    A series' own backtest has too few errors to tell step 1 from step 28 or event days from
    the rest; the backtests of all series together do. The factor of a class is the smallest
    that makes `level` of that class's backtest points fall inside their widened intervals.
    Event days are calibrated per kind (a break, a single public holiday, a company day: their
    errors differ in more than their level); a kind with too few days takes the factor of all
    event days, and with too few of those, the ordinary factor of its step.
    """

    step_factors: tuple[float, ...] = (1.0,)  # step 1, 2, ...; the last one holds beyond
    event_factor: float | None = None  # all event days together; None: too few days
    kind_factors: dict[int, float] = field(default_factory=dict)  # event kind: its own factor

    def factors(self, steps: np.ndarray, kinds: np.ndarray) -> np.ndarray:
        """The factor of each forecast day: `steps` are 1-based, `kinds` its event kinds."""
        kinds = np.asarray(kinds)
        by_step = np.asarray(self.step_factors, dtype=float)
        out = by_step[np.minimum(np.asarray(steps) - 1, len(by_step) - 1)]
        if self.event_factor is not None:
            out = np.where(kinds != 0, self.event_factor, out)
        for kind, factor in self.kind_factors.items():
            out = np.where(kinds == kind, factor, out)
        return out

    def to_json(self) -> dict[str, object]:
        """A JSON object (floats round-trip exactly through Python's json)."""
        return {
            "step_factors": list(self.step_factors),
            "event_factor": self.event_factor,
            "kind_factors": {str(kind): factor for kind, factor in self.kind_factors.items()},
        }

    @classmethod
    def from_json(cls, data: dict) -> IntervalCalibration:
        return cls(
            step_factors=tuple(float(f) for f in data["step_factors"]),
            event_factor=None if data["event_factor"] is None else float(data["event_factor"]),
            kind_factors={int(k): float(v) for k, v in data["kind_factors"].items()},
        )


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


def _step_factors(
    steps: np.ndarray, needed: np.ndarray, level: float, horizon: int
) -> tuple[float, ...]:
    """Per step of ordinary days, from the points of the neighbouring steps."""
    factors = []
    for step in range(1, horizon + 1):
        near = np.abs(steps - step) <= CALIBRATION_STEP_REACH
        enough = near.sum() >= MIN_CALIBRATION_POINTS
        factors.append(_conformal_quantile(needed[near], level) if enough else 1.0)
    return tuple(factors)


def _event_class_factor(needed: np.ndarray, days: np.ndarray, level: float) -> float | None:
    """The factor of one class of event days; None when it has too few days or points."""
    if needed.size < MIN_CALIBRATION_POINTS or np.unique(days).size < MIN_EVENT_DAYS:
        return None
    return _conformal_quantile(needed, level)


def calibrate_intervals(
    steps: np.ndarray,
    kinds: np.ndarray,
    days: np.ndarray,
    needed: np.ndarray,
    level: float,
    horizon: int,
) -> IntervalCalibration:
    """Factors per step of ordinary days, for all event days, per kind of event day.

    Each point is one backtest day of one series: its horizon step, its event kind (0: an
    ordinary day), its calendar day (any id that is equal for the same date across series) and
    the factor its interval needed (`needed_factors`).
    """
    steps, kinds, days, needed = (np.asarray(a).ravel() for a in (steps, kinds, days, needed))
    events = kinds != 0
    step_factors = _step_factors(steps[~events], needed[~events], level, horizon)
    event_factor = _event_class_factor(needed[events], days[events], level)
    kind_factors = {}
    for kind in np.unique(kinds[events]):
        own = kinds == kind
        factor = _event_class_factor(needed[own], days[own], level)
        if factor is not None:
            kind_factors[int(kind)] = factor
    return IntervalCalibration(step_factors, event_factor, kind_factors)
