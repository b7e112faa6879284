"""What Train leaves for Predict and PreProc leaves for Train, as pickles of this project's own
classes (trusted input, written by the same code version).

`train/models/bucket=NNN.pkl` (`TrainedModels`): the settings and each series' fitted chosen
model of one bucket of series. Each `SeriesModel` holds the chosen model's name, its backtest
errors (for the intervals), its calendar events' effects (with each one's source, pooled or its
own: `selection.series_effects` lists them for a report, and the reference its working-day
holidays are measured against) and the model fitted on the latest
window (`candidates.FittedModel`): final states, one cycle of seasonal factors and a few
coefficients, not statsmodels results objects, which carry the data and the whole filter and are
tied to the library version. A fitted model is a few hundred bytes (about 0.7 MB for 1,000 daily
series), and Predict forecasts from it without refitting. The interval calibration is not here:
it needs every series' backtest, and TrainEvaluation writes it (`evaluation/calibration.json`).

`preproc/event_statistics/bucket=NNN.pkl` (`EventPool`): one bucket's share of the calendar
events' pooled effects (`event_pool.EventStatistics`: sums Train adds up over every bucket), with
the frequency, cycle and calendar they were computed for, so Train can refuse statistics that do
not match its own settings.
"""

from __future__ import annotations

import datetime as dt
import pickle
from dataclasses import dataclass, field
from typing import TypeVar

from pipeline_code.forecasting.event_calendar import EventCalendar
from pipeline_code.forecasting.event_pool import EventStatistics
from pipeline_code.forecasting.frequency import ForecastSettings
from pipeline_code.forecasting.selection import SeriesModel

# 2: fitted; 3: event effects, calibration; 4: per kind; 5: per bucket; 6: holiday effects
# measured against Sundays; 7: break days by position, bridge days, the reference per series,
# each effect's source (pooled or own); 8: each effect measured with the other reference too;
# 9: pooled sums count series-days (pools from buckets)
FORMAT_VERSION = 9
T = TypeVar("T")


@dataclass(frozen=True)
class TrainedModels:
    settings: ForecastSettings
    execution_date: dt.date
    models: dict[str, SeriesModel] = field(default_factory=dict)
    format_version: int = FORMAT_VERSION


@dataclass(frozen=True)
class EventPool:
    """One bucket's share of the event pool (`event_pool.bucket_statistics`) and the settings it
    was computed with, which Train's must match."""

    frequency: str
    season_length: int
    calendar: EventCalendar | None
    statistics: EventStatistics
    format_version: int = FORMAT_VERSION

    @classmethod
    def for_settings(cls, settings: ForecastSettings, statistics: EventStatistics) -> EventPool:
        return cls(settings.frequency, settings.season_length, settings.calendar, statistics)

    def matches(self, settings: ForecastSettings) -> bool:
        """Computed with the frequency, cycle and calendar of `settings`."""
        return (self.frequency, self.season_length, self.calendar) == (
            settings.frequency,
            settings.season_length,
            settings.calendar,
        )


def dump_models(trained: TrainedModels) -> bytes:
    return pickle.dumps(trained, protocol=pickle.HIGHEST_PROTOCOL)


def load_models(data: bytes) -> TrainedModels:
    """Unpickle a models file (written by this project's Train step: trusted input)."""
    return _load(data, TrainedModels, "a models file")


def dump_pool(pool: EventPool) -> bytes:
    return pickle.dumps(pool, protocol=pickle.HIGHEST_PROTOCOL)


def load_pool(data: bytes) -> EventPool:
    """Unpickle a bucket's event statistics (written by this project's PreProc step: trusted
    input)."""
    return _load(data, EventPool, "an event statistics file")


def _load(data: bytes, cls: type[T], what: str) -> T:
    loaded = pickle.loads(data)
    if not isinstance(loaded, cls) or getattr(loaded, "format_version", None) != FORMAT_VERSION:
        raise ValueError(f"{what} is not a {cls.__name__} of this format version")
    return loaded
