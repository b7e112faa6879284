"""Per-series statistical forecasting: candidates, rolling-origin selection, intervals.

`train_series` and `predict_series` handle one series and are pure; `map_series` spreads them
over processes. `ForecastSettings` (built with `settings_for_frequency`) carries the horizon, the
season lengths taken from the data's frequency, and the candidate set.
"""

from pipeline_code.forecasting.frequency import (
    ForecastSettings,
    daily_settings,
    hourly_settings,
    infer_frequency,
    settings_for_frequency,
    weekly_settings,
)
from pipeline_code.forecasting.parallel import map_series, resolve_workers
from pipeline_code.forecasting.selection import (
    SeriesBacktest,
    SeriesData,
    SeriesForecast,
    SeriesModel,
    SeriesTraining,
    predict_series,
    train_series,
)

__all__ = [
    "ForecastSettings",
    "SeriesBacktest",
    "SeriesData",
    "SeriesForecast",
    "SeriesModel",
    "SeriesTraining",
    "daily_settings",
    "hourly_settings",
    "infer_frequency",
    "map_series",
    "predict_series",
    "resolve_workers",
    "settings_for_frequency",
    "train_series",
    "weekly_settings",
]
