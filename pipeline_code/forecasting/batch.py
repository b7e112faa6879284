"""All series of a run at once: what needs every series (the pooled event effects before the
per-series work, the interval calibration after it) around the per-series `train_series`.

The Train step and the benchmarks call `train_all`, so they run the same path.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, replace
from functools import partial

import numpy as np

from pipeline_code.forecasting.frequency import ForecastSettings
from pipeline_code.forecasting.metrics import (
    IntervalCalibration,
    calibrate_intervals,
    needed_factors,
)
from pipeline_code.forecasting.parallel import map_series
from pipeline_code.forecasting.selection import (
    SeriesData,
    SeriesTraining,
    calibrated_backtest,
    event_kinds,
    pool_events,
    train_series,
)


@dataclass(frozen=True)
class TrainingRun:
    trainings: list[SeriesTraining]  # in the order of the series
    calibration: IntervalCalibration


def interval_calibration(
    trainings: list[SeriesTraining], series: list[SeriesData], settings: ForecastSettings
) -> IntervalCalibration:
    """Factors that make the backtests' intervals cover `interval_level` per step and on events.

    `series` in the order of `trainings`: their first days date the backtests' points, so the
    calibration counts an event's days once however many series saw them.
    """
    steps, kinds, days, needed = [], [], [], []
    for training, data in zip(trainings, series, strict=True):
        bt = training.backtest
        if bt is None:
            continue
        folds, horizon = bt.actual.shape
        steps.append(np.tile(np.arange(1, horizon + 1), folds))
        kinds.append(event_kinds(bt.event_codes, settings).ravel())
        days.append(_backtest_days(bt.cutoffs, horizon, data.start).ravel())
        needed.append(
            needed_factors(bt.actual - bt.forecast, bt.offset_low, bt.offset_high).ravel()
        )
    if not steps:
        return IntervalCalibration()
    return calibrate_intervals(
        np.concatenate(steps),
        np.concatenate(kinds),
        np.concatenate(days),
        np.concatenate(needed),
        settings.interval_level,
        settings.horizon,
    )


def _backtest_days(cutoffs: np.ndarray, horizon: int, start: dt.date | None) -> np.ndarray:
    """Ordinal date of each backtest point, (folds, horizon); undated series (no events): -1."""
    if start is None:
        return np.full((len(cutoffs), horizon), -1, dtype=np.int64)
    return start.toordinal() + np.asarray(cutoffs)[:, None] + np.arange(horizon)[None, :]


def train_all(series: list[SeriesData], settings: ForecastSettings, workers: int) -> TrainingRun:
    """Pool the event effects, train every series in worker processes, calibrate the intervals."""
    pool = pool_events(series, settings)
    trainings = map_series(partial(train_series, settings=settings, pool=pool), series, workers)
    calibration = interval_calibration(trainings, series, settings)
    calibrated = [
        replace(t, backtest=calibrated_backtest(t.backtest, calibration, settings))
        if t.backtest is not None
        else t
        for t in trainings
    ]
    return TrainingRun(calibrated, calibration)
