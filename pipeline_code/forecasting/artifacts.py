"""`train/models.pkl`: the settings and the chosen model of every series, as Train leaves them.

Fitted statsmodels results are not stored: they are large and tied to the library version,
while refitting one chosen model per series costs milliseconds. Predict refits on the same data
with the same settings, so it reproduces the model Train selected.
"""

from __future__ import annotations

import datetime as dt
import pickle
from dataclasses import dataclass, field

from pipeline_code.forecasting.frequency import ForecastSettings
from pipeline_code.forecasting.selection import SeriesModel

FORMAT_VERSION = 1


@dataclass(frozen=True)
class TrainedModels:
    settings: ForecastSettings
    execution_date: dt.date
    models: dict[str, SeriesModel] = field(default_factory=dict)
    format_version: int = FORMAT_VERSION


def dump_models(trained: TrainedModels) -> bytes:
    return pickle.dumps(trained, protocol=pickle.HIGHEST_PROTOCOL)


def load_models(data: bytes) -> TrainedModels:
    """Unpickle models.pkl (written by this project's Train step: trusted input)."""
    trained = pickle.loads(data)
    if not isinstance(trained, TrainedModels) or trained.format_version != FORMAT_VERSION:
        raise ValueError("models.pkl is not a TrainedModels of this format version")
    return trained
