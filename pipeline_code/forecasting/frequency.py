"""What a series' sampling frequency decides: season lengths, scoring period and candidate set.

Daily demand has a weekly cycle (m=7) and reacts to calendar events (public holidays, the
year-end break, Golden Week, Obon), so its backtest adds a fold at the same season a year back;
weekly data has a yearly cycle of ~52 weeks, too long for in-model seasonal states, so its models
work on seasonally adjusted data; hourly data has a daily (24) and a weekly (168) cycle.
`scoring_season_length` is the period of the MASE denominator; the M4 competition scores weekly
data with m=1, so the weekly profile does too, while models still use 52.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import numpy as np
import pandas as pd

from pipeline_code.forecasting.event_calendar import EventCalendar


@dataclass(frozen=True)
class ForecastSettings:
    """Everything the per-series functions need besides the series itself."""

    horizon: int
    season_length: int
    candidates: tuple[str, ...]
    backtest_folds: int = 3
    fit_window: int = 364  # recent observations each fit sees: cheaper, and adapts to drift
    interval_level: float = 0.8
    scoring_season_length: int | None = None  # None: same as season_length
    extra_season_lengths: tuple[int, ...] = ()  # further cycles (hourly: the week)
    calendar: EventCalendar | None = None  # known events; needs dated daily series
    seasonal_folds: int = 0  # extra folds a year back, two years back, ... (where data reaches)
    seasonal_lag: int = 364  # steps between a seasonal fold and the forecast (52 weeks)
    nonnegative: bool = True  # counts: forecasts and bounds are clipped at 0
    frequency: str = "D"

    @property
    def mase_season_length(self) -> int:
        return self.scoring_season_length or self.season_length

    def with_overrides(self, **changes: object) -> ForecastSettings:
        """A copy with the given fields changed; None values are ignored."""
        return replace(self, **{k: v for k, v in changes.items() if v is not None})


DAILY_CANDIDATES = ("snaive", "ets", "ets_damped", "theta", "comb")
WEEKLY_CANDIDATES = ("naive", "ets", "ets_damped", "theta", "comb")
HOURLY_CANDIDATES = ("snaive", "snaive_week", "ets", "theta", "mstl", "comb")


def daily_settings(horizon: int = 28, **overrides: object) -> ForecastSettings:
    base = ForecastSettings(
        horizon=horizon,
        season_length=7,
        candidates=DAILY_CANDIDATES,
        fit_window=364,
        calendar=EventCalendar(),
        seasonal_folds=1,
        frequency="D",
    )
    return base.with_overrides(**overrides)


def weekly_settings(horizon: int = 13, **overrides: object) -> ForecastSettings:
    base = ForecastSettings(
        horizon=horizon,
        season_length=52,
        scoring_season_length=1,
        candidates=WEEKLY_CANDIDATES,
        fit_window=520,
        frequency="W",
    )
    return base.with_overrides(**overrides)


def hourly_settings(horizon: int = 48, **overrides: object) -> ForecastSettings:
    base = ForecastSettings(
        horizon=horizon,
        season_length=24,
        extra_season_lengths=(168,),
        candidates=HOURLY_CANDIDATES,
        fit_window=24 * 7 * 4,
        frequency="H",
    )
    return base.with_overrides(**overrides)


_PROFILES = {"D": daily_settings, "W": weekly_settings, "H": hourly_settings}


def settings_for_frequency(frequency: str, **overrides: object) -> ForecastSettings:
    """Settings of a frequency code ("D", "W" or "H"); overrides replace single fields."""
    try:
        profile = _PROFILES[frequency.upper()[:1]]
    except KeyError as err:
        raise ValueError(f"unsupported frequency {frequency!r}; expected D, W or H") from err
    return profile(**overrides)


def infer_frequency(ds: pd.Series) -> str:
    """The frequency code of a datetime column, from the most common step between rows."""
    stamps = pd.to_datetime(pd.Series(ds).drop_duplicates().sort_values())
    if len(stamps) < 2:
        return "D"  # a single day: the pipeline's native frequency
    step = pd.Series(np.diff(stamps.to_numpy())).mode().iloc[0]
    if step == pd.Timedelta(hours=1):
        return "H"
    if step == pd.Timedelta(days=1):
        return "D"
    if step == pd.Timedelta(days=7):
        return "W"
    raise ValueError(f"unsupported step between observations: {step}")
