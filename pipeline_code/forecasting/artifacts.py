"""`train/models.pkl`: the settings and every series' fitted chosen model, as Train leaves them.

Each `SeriesModel` holds the chosen model's name, its backtest errors (for the intervals), its
calendar events' effects and the model fitted on the latest window (`candidates.FittedModel`):
final states, one cycle of seasonal factors and a few coefficients, not statsmodels results
objects, which carry the data and the whole filter and are tied to the library version. A fitted
model is a few hundred bytes (models.pkl: about 0.7 MB for 1,000 daily series), and Predict
forecasts from it without refitting. `calibration` widens every series' intervals per horizon
step and on event days.
"""

from __future__ import annotations

import datetime as dt
import pickle
from dataclasses import dataclass, field

from pipeline_code.forecasting.frequency import ForecastSettings
from pipeline_code.forecasting.metrics import NO_CALIBRATION, IntervalCalibration
from pipeline_code.forecasting.selection import SeriesModel

FORMAT_VERSION = 4  # 2: SeriesModel.fitted; 3: event effects, interval calibration; 4: per kind


@dataclass(frozen=True)
class TrainedModels:
    settings: ForecastSettings
    execution_date: dt.date
    models: dict[str, SeriesModel] = field(default_factory=dict)
    calibration: IntervalCalibration = NO_CALIBRATION
    format_version: int = FORMAT_VERSION


def dump_models(trained: TrainedModels) -> bytes:
    return pickle.dumps(trained, protocol=pickle.HIGHEST_PROTOCOL)


def load_models(data: bytes) -> TrainedModels:
    """Unpickle models.pkl (written by this project's Train step: trusted input)."""
    trained = pickle.loads(data)
    if not isinstance(trained, TrainedModels) or trained.format_version != FORMAT_VERSION:
        raise ValueError("models.pkl is not a TrainedModels of this format version")
    return trained
