"""Candidate models: each turns a history into a point forecast of `horizon` steps.

All are statsmodels models or simple benchmarks. A candidate gets a `CandidateInput` and returns
an array; it raises `NotApplicable` when the series does not suit it (too short, no dates for
holidays), and any other exception is treated the same way by the caller, so one odd series
never stops a run.

Seasonality is handled one way for every exponential-smoothing candidate: a short cycle (up to
`MAX_STATE_SEASON` steps) is a seasonal state of the Holt-Winters model; a longer one (weekly data's
52) would need dozens of noisy states, so the series is seasonally adjusted by classical
decomposition when an autocorrelation test finds the cycle (as the M4 benchmarks do), modelled
without seasonality and re-seasonalised.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable
from contextlib import contextmanager
from dataclasses import dataclass

import numpy as np
from statsmodels.tools.sm_exceptions import ConvergenceWarning, ValueWarning
from statsmodels.tsa.forecasting.theta import ThetaModel
from statsmodels.tsa.holtwinters import ExponentialSmoothing, HoltWintersResults
from statsmodels.tsa.seasonal import MSTL, seasonal_decompose
from statsmodels.tsa.stattools import acf

MAX_STATE_SEASON = 24


class NotApplicable(Exception):
    """The candidate cannot forecast this history."""


@dataclass(frozen=True)
class CandidateInput:
    history: np.ndarray
    horizon: int
    season_length: int
    extra_season_lengths: tuple[int, ...] = ()
    holidays_history: np.ndarray | None = None  # (len(history), k) 0/1 regressors
    holidays_future: np.ndarray | None = None  # (horizon, k)


@contextmanager
def quiet_fitting():
    """Optimiser warnings are expected on short or flat windows; the backtest judges the fit."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        warnings.simplefilter("ignore", ValueWarning)
        warnings.simplefilter("ignore", RuntimeWarning)
        warnings.simplefilter("ignore", FutureWarning)
        yield


# --- benchmarks


def seasonal_naive(history: np.ndarray, horizon: int, season_length: int) -> np.ndarray:
    """Repeat the last observed cycle (the last value when the history is shorter)."""
    if season_length <= 1 or len(history) < season_length:
        return np.repeat(history[-1], horizon).astype(float)
    return np.resize(history[-season_length:], horizon).astype(float)


def _snaive(inp: CandidateInput) -> np.ndarray:
    return seasonal_naive(inp.history, inp.horizon, inp.season_length)


def _snaive_week(inp: CandidateInput) -> np.ndarray:
    if not inp.extra_season_lengths:
        raise NotApplicable("no second season length")
    longest = max(inp.extra_season_lengths)
    if len(inp.history) < longest:
        raise NotApplicable("history shorter than the long cycle")
    return seasonal_naive(inp.history, inp.horizon, longest)


# --- seasonal adjustment


def has_seasonality(history: np.ndarray, season_length: int) -> bool:
    """M4's 90% autocorrelation test at the seasonal lag (needs three full cycles)."""
    n = len(history)
    if season_length <= 1 or n < 3 * season_length or np.ptp(history) == 0:
        return False
    nlags = max(season_length, int(10 * np.log10(n)))
    r = acf(history, nlags=min(nlags, n - 1), fft=True)[1:]
    limit = 1.645 * np.sqrt((1 + 2 * np.sum(r[: season_length - 1] ** 2)) / n)
    return bool(abs(r[season_length - 1]) > limit)


@dataclass(frozen=True)
class SeasonalAdjustment:
    """Classical decomposition: adjusted series plus the cycle to put back on forecasts."""

    adjusted: np.ndarray
    future_cycle: np.ndarray
    multiplicative: bool

    def reseasonalise(self, forecast: np.ndarray) -> np.ndarray:
        if self.multiplicative:
            return forecast * self.future_cycle
        return forecast + self.future_cycle


def seasonally_adjust(history: np.ndarray, season_length: int, horizon: int) -> SeasonalAdjustment:
    """Remove a cycle of `season_length` if the test finds one (else an identity adjustment)."""
    if not has_seasonality(history, season_length):
        return SeasonalAdjustment(history, np.zeros(horizon), multiplicative=False)
    multiplicative = bool(np.min(history) > 0)
    model = "multiplicative" if multiplicative else "additive"
    seasonal = seasonal_decompose(history, model=model, period=season_length).seasonal
    future = np.resize(seasonal[-season_length:], horizon)
    if multiplicative:
        return SeasonalAdjustment(history / seasonal, future, multiplicative=True)
    return SeasonalAdjustment(history - seasonal, future, multiplicative=False)


# --- exponential smoothing


def _holt_winters(
    history: np.ndarray, horizon: int, trend: bool, damped: bool, seasonal_periods: int | None
) -> np.ndarray:
    """Additive Holt-Winters; heuristic initial states and a local optimiser: a few ms a fit."""
    kwargs = {
        "trend": "add" if trend else None,
        "damped_trend": damped and trend,
        "seasonal": "add" if seasonal_periods else None,
        "seasonal_periods": seasonal_periods,
    }
    with quiet_fitting():
        try:
            model = ExponentialSmoothing(history, initialization_method="heuristic", **kwargs)
        except ValueError:
            # The heuristic needs 10 observations and two cycles; short windows estimate them.
            model = ExponentialSmoothing(history, initialization_method="estimated", **kwargs)
        return holt_winters_forecast(model.fit(use_brute=False), horizon)


def holt_winters_forecast(results: HoltWintersResults, horizon: int) -> np.ndarray:
    """The additive Holt-Winters forecast from the final states of a fit.

    l_n + (phi + ... + phi^h) b_n + s_{n+h-m(k+1)}: the textbook formula. statsmodels'
    `forecast()` reruns the whole filter (about half the cost of a fit) and takes each season's
    state from one update earlier; the latest states are used here.
    """
    model = results.model
    steps = np.arange(1, horizon + 1)
    forecast = np.full(horizon, float(results.level[-1]))
    if model.trend is not None:
        phi = float(results.params["damping_trend"]) if model.damped_trend else 1.0
        forecast += float(results.trend[-1]) * np.cumsum(phi**steps)
    if model.seasonal is not None:
        m = int(model.seasonal_periods)
        season = np.asarray(results.season, dtype=float)
        forecast += season[len(season) - m + (steps - 1) % m]
    return forecast


def _exponential_smoothing(inp: CandidateInput, trend: bool, damped: bool) -> np.ndarray:
    history, m = inp.history, inp.season_length
    if len(history) < 4:
        raise NotApplicable("too short for exponential smoothing")
    if 1 < m <= MAX_STATE_SEASON and len(history) >= 2 * m:
        return _holt_winters(history, inp.horizon, trend, damped, seasonal_periods=m)
    adjustment = seasonally_adjust(history, m, inp.horizon)
    forecast = _holt_winters(adjustment.adjusted, inp.horizon, trend, damped, None)
    return adjustment.reseasonalise(forecast)


def _ets(inp: CandidateInput) -> np.ndarray:
    """Level + seasonality: SES with a seasonal state (ETS A,N,A)."""
    return _exponential_smoothing(inp, trend=False, damped=False)


def _ets_damped(inp: CandidateInput) -> np.ndarray:
    """Damped additive trend + seasonality (ETS A,Ad,A)."""
    return _exponential_smoothing(inp, trend=True, damped=True)


def _naive(inp: CandidateInput) -> np.ndarray:
    """Last value of the seasonally adjusted series, re-seasonalised (M4's Naive2)."""
    adjustment = seasonally_adjust(inp.history, inp.season_length, inp.horizon)
    return adjustment.reseasonalise(np.repeat(adjustment.adjusted[-1], inp.horizon))


# --- theta


def _theta(inp: CandidateInput) -> np.ndarray:
    """statsmodels' Theta method (SES with drift) with its own seasonality test and adjustment."""
    history, m = inp.history, inp.season_length
    if len(history) < 4:
        raise NotApplicable("too short for theta")
    seasonal = m > 1 and len(history) >= 2 * m
    with quiet_fitting():
        model = ThetaModel(history, period=m if seasonal else 1, deseasonalize=seasonal)
        return np.asarray(model.fit().forecast(inp.horizon), dtype=float)


# --- holidays


def holiday_effects(history: np.ndarray, regressors: np.ndarray, season_length: int) -> np.ndarray:
    """Additive effect of each holiday regressor, by least squares on the history.

    The regression controls for the seasonal cycle (one dummy per position) and a slowly moving
    level (a piecewise-linear trend with a knot every four cycles), so a holiday's effect is its
    departure from what that weekday would have had. Regressors absent from the history get 0.
    """
    n = len(history)
    present = regressors.sum(axis=0) > 0
    effects = np.zeros(regressors.shape[1])
    if not present.any():
        return effects
    position = np.arange(n) % max(season_length, 1)
    seasonal_dummies = (position[:, None] == np.arange(max(season_length, 1))).astype(float)
    t = np.arange(n, dtype=float)
    knots = np.arange(4 * season_length, n, 4 * season_length, dtype=float)
    hinges = np.maximum(t[:, None] - knots[None, :], 0.0) / max(n, 1)
    design = np.column_stack([seasonal_dummies, t / max(n, 1), hinges, regressors[:, present]])
    coefficients, *_ = np.linalg.lstsq(design, history, rcond=None)
    effects[present] = coefficients[-int(present.sum()) :]
    return effects


def _ets_holiday(inp: CandidateInput) -> np.ndarray:
    """ETS (A,N,A) on holiday-adjusted data, with the holiday effects added back to the forecast."""
    if inp.holidays_history is None or inp.holidays_future is None:
        raise NotApplicable("no holiday calendar (series without dates)")
    effects = holiday_effects(inp.history, inp.holidays_history, inp.season_length)
    if not np.any(effects):
        raise NotApplicable("no holidays in the fitting window")
    adjusted = inp.history - inp.holidays_history @ effects
    base = _ets(CandidateInput(adjusted, inp.horizon, inp.season_length))
    return base + inp.holidays_future @ effects


# --- multiple seasonality


def _mstl(inp: CandidateInput) -> np.ndarray:
    """MSTL decomposition over all cycles; damped ETS on the adjusted series, cycles repeated."""
    periods = tuple(
        p
        for p in (inp.season_length, *inp.extra_season_lengths)
        if p > 1 and len(inp.history) >= 2 * p
    )
    if len(periods) < 2:
        raise NotApplicable("needs two cycles of at least two periods each")
    with quiet_fitting():
        result = MSTL(inp.history, periods=periods).fit()
    seasonal = np.asarray(result.seasonal).reshape(len(inp.history), -1)
    adjusted = inp.history - seasonal.sum(axis=1)
    future_cycles = sum(np.resize(seasonal[-p:, i], inp.horizon) for i, p in enumerate(periods))
    trend = _holt_winters(adjusted, inp.horizon, trend=True, damped=True, seasonal_periods=None)
    return trend + future_cycles


# --- registry

Candidate = Callable[[CandidateInput], np.ndarray]

CANDIDATES: dict[str, Candidate] = {
    "snaive": _snaive,
    "snaive_week": _snaive_week,
    "naive": _naive,
    "ets": _ets,
    "ets_damped": _ets_damped,
    "theta": _theta,
    "ets_holiday": _ets_holiday,
    "mstl": _mstl,
}

# Equal-weight averages of other candidates: they cost no extra fit and often beat each member.
COMBINATIONS: dict[str, tuple[str, ...]] = {
    "comb": ("ets", "ets_damped", "theta"),
}

BENCHMARK = "snaive"  # the model every choice must beat; always computed


def known_candidates() -> tuple[str, ...]:
    return (*CANDIDATES, *COMBINATIONS)


def run_candidates(names: tuple[str, ...], inp: CandidateInput) -> dict[str, np.ndarray]:
    """Forecasts of every named candidate that can forecast this input (and of the benchmark).

    Components of a combination are computed even when not candidates themselves; a combination
    exists only when all its components succeeded.
    """
    needed: list[str] = [BENCHMARK]
    for name in names:
        for part in COMBINATIONS.get(name, (name,)):
            if part not in needed:
                needed.append(part)
    forecasts: dict[str, np.ndarray] = {}
    for name in needed:
        try:
            forecast = CANDIDATES[name](inp)
        except Exception:  # a candidate that fails on this series simply drops out
            continue
        if forecast.shape == (inp.horizon,) and np.all(np.isfinite(forecast)):
            forecasts[name] = forecast
    for name in names:
        parts = COMBINATIONS.get(name)
        if parts and all(p in forecasts for p in parts):
            forecasts[name] = np.mean([forecasts[p] for p in parts], axis=0)
    return forecasts
