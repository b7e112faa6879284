"""The backtest table: one row per series, role, fold and horizon step, and its calibration.

Train writes it per bucket of series before the intervals are calibrated: each chosen-model row
carries what the calibration needs (the raw interval offsets of the chosen model, the day's kind
of event, the target date). TrainEvaluation reads every bucket, fits the `IntervalCalibration`
over all points (`backtest_calibration`: quantiles, so the result does not depend on how the
series were split) and widens the chosen rows' intervals with it (`calibrated_frame`) before
scoring. `batch.train_all`, the benchmarks' path, calls the same functions.

    series_id, model, role ("chosen" | "benchmark"), fold, fold_kind ("recent" | "seasonal"),
    event_day, event_kind, cutoff (last training day), target_date, step, y, yhat, yhat_lower,
    yhat_upper, offset_low, offset_high (chosen rows; NaN on benchmark rows), scale (the fold's
    MASE denominator), interval_level, nonnegative

Series without a start date (undated data, no calendar) have no rows.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from pipeline_code.forecasting.frequency import ForecastSettings
from pipeline_code.forecasting.metrics import (
    IntervalCalibration,
    calibrate_intervals,
    needed_factors,
)
from pipeline_code.forecasting.selection import (
    SeriesData,
    SeriesTraining,
    calibrated_bounds,
    event_kinds,
)

COLUMNS = (
    "series_id",
    "model",
    "role",
    "fold",
    "fold_kind",
    "event_day",
    "event_kind",
    "cutoff",
    "target_date",
    "step",
    "y",
    "yhat",
    "yhat_lower",
    "yhat_upper",
    "offset_low",
    "offset_high",
    "scale",
    "interval_level",
    "nonnegative",
)


def _rows_of(
    training: SeriesTraining, series: SeriesData, settings: ForecastSettings
) -> list[pd.DataFrame]:
    """Backtest rows of one series: the chosen model's and the benchmark's."""
    bt = training.backtest
    if bt is None or series.start is None:
        return []
    folds, horizon = bt.actual.shape
    step = np.tile(np.arange(1, horizon + 1), folds)
    cutoff = np.repeat(bt.cutoffs, horizon)
    first = np.datetime64(series.start, "D")
    common = {
        "series_id": series.series_id,
        "fold": np.repeat(np.arange(folds), horizon),
        "fold_kind": np.repeat(np.where(bt.seasonal, "seasonal", "recent"), horizon),
        "event_day": bt.event_codes.ravel() != 0,
        "event_kind": event_kinds(bt.event_codes, settings).ravel().astype(np.int64),
        "cutoff": first + (cutoff - 1).astype("timedelta64[D]"),
        "target_date": first + (cutoff + step - 1).astype("timedelta64[D]"),
        "step": step,
        "y": bt.actual.ravel(),
        "scale": np.repeat(bt.scales, horizon),
        "interval_level": settings.interval_level,
        "nonnegative": settings.nonnegative,
    }
    shape = bt.actual.shape
    chosen = pd.DataFrame(
        {
            **common,
            "model": training.model.model,
            "role": "chosen",
            "yhat": bt.forecast.ravel(),
            "yhat_lower": bt.lower.ravel(),
            "yhat_upper": bt.upper.ravel(),
            "offset_low": np.broadcast_to(bt.offset_low, shape).ravel(),
            "offset_high": np.broadcast_to(bt.offset_high, shape).ravel(),
        }
    )
    benchmark = pd.DataFrame(
        {
            **common,
            "model": "snaive",
            "role": "benchmark",
            "yhat": bt.benchmark_forecast.ravel(),
            "yhat_lower": bt.benchmark_lower.ravel(),
            "yhat_upper": bt.benchmark_upper.ravel(),
            "offset_low": np.nan,
            "offset_high": np.nan,
        }
    )
    return [chosen, benchmark]


def backtest_frame(
    trainings: list[SeriesTraining], series: list[SeriesData], settings: ForecastSettings
) -> pd.DataFrame:
    """The uncalibrated backtest rows of `trainings` (in the order of `series`)."""
    parts = [
        part for tr, s in zip(trainings, series, strict=True) for part in _rows_of(tr, s, settings)
    ]
    if not parts:
        return pd.DataFrame(columns=list(COLUMNS))
    frame = pd.concat(parts, ignore_index=True)[list(COLUMNS)]
    for column in ("cutoff", "target_date"):
        frame[column] = frame[column].dt.date
    return frame


def _day_ids(target_dates: pd.Series) -> np.ndarray:
    """One id per calendar day (days since 1970-01-01)."""
    days = pd.to_datetime(target_dates).to_numpy().astype("datetime64[D]")
    return days.astype(np.int64)


def backtest_calibration(frame: pd.DataFrame) -> IntervalCalibration:
    """Factors that make the chosen model's intervals cover the nominal level per horizon step
    and per kind of event day, over every series' backtest points (`metrics.calibrate_intervals`;
    an event's day counts once however many series saw it)."""
    chosen = frame[frame["role"] == "chosen"]
    if chosen.empty:
        return IntervalCalibration()
    errors = chosen["y"].to_numpy(dtype=float) - chosen["yhat"].to_numpy(dtype=float)
    needed = needed_factors(
        errors,
        chosen["offset_low"].to_numpy(dtype=float),
        chosen["offset_high"].to_numpy(dtype=float),
    )
    steps = chosen["step"].to_numpy(dtype=np.int64)
    return calibrate_intervals(
        steps,
        chosen["event_kind"].to_numpy(dtype=np.int64),
        _day_ids(chosen["target_date"]),
        needed,
        float(chosen["interval_level"].iloc[0]),
        int(steps.max()),
    )


def calibrated_frame(frame: pd.DataFrame, calibration: IntervalCalibration) -> pd.DataFrame:
    """The backtest with the chosen rows' intervals widened by `calibration`."""
    out = frame.copy()
    chosen = (out["role"] == "chosen").to_numpy()
    if not chosen.any():
        return out
    rows = out.loc[chosen]
    widen = calibration.factors(
        rows["step"].to_numpy(dtype=np.int64), rows["event_kind"].to_numpy(dtype=np.int64)
    )
    lower, upper = calibrated_bounds(
        rows["yhat"].to_numpy(dtype=float),
        rows["offset_low"].to_numpy(dtype=float),
        rows["offset_high"].to_numpy(dtype=float),
        widen,
        bool(rows["nonnegative"].iloc[0]),
    )
    out.loc[chosen, "yhat_lower"] = lower
    out.loc[chosen, "yhat_upper"] = upper
    return out
