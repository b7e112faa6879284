"""Small synthetic daily series for the forecasting and step tests (seeded, fast)."""

from __future__ import annotations

import datetime as dt

import numpy as np
import pandas as pd

from pipeline_code.forecasting import ForecastSettings
from pipeline_code.forecasting import candidates as cand
from pipeline_code.forecasting.event_effects import adjusted_history, factors

WEEKLY_PROFILE = np.array([0.6, 0.9, 1.0, 1.0, 1.1, 1.6, 1.8])


def weekly_series(
    n: int, level: float = 40.0, noise: float = 3.0, seed: int = 0, drift: float = 0.0
) -> np.ndarray:
    """A strong weekly cycle around a slowly wandering level, plus noise (never negative)."""
    rng = np.random.default_rng(seed)
    wander = np.cumsum(rng.normal(0.0, drift, n)) if drift else np.zeros(n)
    cycle = WEEKLY_PROFILE[np.arange(n) % 7]
    return np.maximum(0.0, (level + wander) * cycle + rng.normal(0.0, noise, n))


def series_frame(
    n_series: int, n_days: int, end: dt.date, seed: int = 0, prefix: str = "car"
) -> pd.DataFrame:
    """Long table `series_id, ds, y` as PreProc writes it, every series ending at `end`."""
    days = [end - dt.timedelta(days=i) for i in range(n_days - 1, -1, -1)]
    parts = [
        pd.DataFrame(
            {
                "series_id": f"{prefix}{i:02d}",
                "ds": days,
                "y": weekly_series(n_days, level=20.0 + 5 * i, seed=seed + i),
            }
        )
        for i in range(n_series)
    ]
    return pd.concat(parts, ignore_index=True)


def refit_forecast(
    y: np.ndarray,
    start: dt.date | None,
    name: str,
    settings: ForecastSettings,
    horizon: int,
    effects: dict[int, float],
) -> np.ndarray:
    """Model `name` fitted from scratch on the latest event-adjusted window, forecast `horizon`
    steps and multiplied by the events' `effects`: what Predict must give from the stored fit."""
    n = len(y)
    first = max(0, n - settings.fit_window)
    codes = None
    if start is not None and settings.calendar is not None and settings.frequency == "D":
        codes = settings.calendar.codes(start, n + horizon)
    history = y if codes is None else adjusted_history(y, codes[:n], effects)
    inp = cand.CandidateInput(
        history[first:], horizon, settings.season_length, settings.extra_season_lengths
    )
    forecast = cand.run_candidates((name,), inp)[name]
    if codes is not None:
        forecast = forecast * factors(codes[n:], effects)
    return np.maximum(forecast, 0.0)
