"""The forecasting path in its phases, as the steps run them over one or many instances:

1. `pool_events` over ALL series (the prior of every series' event effects; the steps compute the
   same from per-bucket statistics, `event_pool`);
2. `train_share`: the per-series work on any share of the series (Train, on every instance);
3. the interval calibration over ALL backtest points (TrainEvaluation, once: Train summarizes
   each bucket's backtest, `backtest_table.summarize`, and the step counts the points bucket by
   bucket into `metrics.CalibrationCounts`).

`train_all` chains them over one list of series, for the benchmarks and tests, calibrating the
whole backtest table with the same counts (`backtest_calibration`, `calibrated_frame`).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, replace
from functools import partial

import pandas as pd

from pipeline_code.forecasting.backtest_table import (
    backtest_calibration,
    backtest_frame,
    calibrated_frame,
)
from pipeline_code.forecasting.event_effects import EventPriors
from pipeline_code.forecasting.frequency import ForecastSettings
from pipeline_code.forecasting.metrics import IntervalCalibration
from pipeline_code.forecasting.parallel import map_series
from pipeline_code.forecasting.selection import (
    SeriesData,
    SeriesTraining,
    calibrated_backtest,
    pool_events,
    train_series,
)

__all__ = ["TrainingRun", "pool_events", "train_all", "train_share"]


@dataclass(frozen=True)
class TrainingRun:
    trainings: list[SeriesTraining]  # in the order of the series, intervals calibrated
    calibration: IntervalCalibration
    backtest: pd.DataFrame  # the calibrated backtest table


def train_share(
    series: list[SeriesData],
    settings: ForecastSettings,
    pool: EventPriors,
    workers: int,
    on_done: Callable[[int], None] | None = None,
) -> list[SeriesTraining]:
    """Train every series of a share in worker processes; intervals not yet calibrated."""
    train = partial(train_series, settings=settings, pool=pool)
    return map_series(train, series, workers, on_done)


def train_all(series: list[SeriesData], settings: ForecastSettings, workers: int) -> TrainingRun:
    """Pool the event effects, train every series, calibrate the intervals on all backtests."""
    pool = pool_events(series, settings)
    trainings = train_share(series, settings, pool, workers)
    backtest = backtest_frame(trainings, series, settings)
    calibration = backtest_calibration(backtest)
    calibrated = [
        replace(t, backtest=calibrated_backtest(t.backtest, calibration, settings))
        if t.backtest is not None
        else t
        for t in trainings
    ]
    return TrainingRun(calibrated, calibration, calibrated_frame(backtest, calibration))
