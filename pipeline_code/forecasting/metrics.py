"""Forecast accuracy measures and the empirical prediction-interval calibration.

Definitions follow the M4 competition: sMAPE in 0..200 with a 0/0 term scored 0 (demand counts
have zeros), MASE scaled by the in-sample mean absolute seasonal difference.
"""

from __future__ import annotations

import math

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


def mae(actual: np.ndarray, forecast: np.ndarray) -> float:
    return float(np.mean(np.abs(np.asarray(actual, float) - np.asarray(forecast, float))))


def smape(actual: np.ndarray, forecast: np.ndarray) -> float:
    """Mean of 200|y-f|/(|y|+|f|); a term with y == f == 0 counts as a perfect 0."""
    y = np.asarray(actual, dtype=float)
    f = np.asarray(forecast, dtype=float)
    denominator = np.abs(y) + np.abs(f)
    with np.errstate(invalid="ignore", divide="ignore"):
        terms = np.where(denominator == 0, 0.0, 200.0 * np.abs(y - f) / denominator)
    return float(np.mean(terms))


def coverage(actual: np.ndarray, lower: np.ndarray, upper: np.ndarray) -> float:
    """Share of actuals inside [lower, upper], bounds included."""
    y = np.asarray(actual, dtype=float)
    inside = (y >= np.asarray(lower, float)) & (y <= np.asarray(upper, float))
    return float(np.mean(inside))


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
