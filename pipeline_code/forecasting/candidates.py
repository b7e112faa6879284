"""Candidate models: each fits a history and returns a fitted model that forecasts any horizon.

All are statsmodels models or simple benchmarks. A candidate is a fit: it gets the fitting window
(`FitInput`) and returns a `FittedModel`, a small picklable object holding only what the forecast
needs (final states, one cycle of seasonal factors, a few coefficients). `forecast(horizon)`
continues from the end of the fitting window, so Train can store the fitted models and Predict
forecast from them without refitting. A fit raises `NotApplicable` when the series does not suit
it (too short), and any other exception is treated the same way by the
caller, so one odd series never stops a run.

Seasonality is handled one way for every exponential-smoothing candidate: a short cycle (up to
`MAX_STATE_SEASON` steps) is a seasonal state of the Holt-Winters model; a longer one (weekly data's
52) would need dozens of noisy states, so the series is seasonally adjusted by classical
decomposition when an autocorrelation test finds the cycle (as the M4 benchmarks do), modelled
without seasonality and re-seasonalised.

Calendar events are not a candidate's business: the candidates fit an event-adjusted history and
`selection` puts the events into every candidate's forecast (`event_effects.with_events`).
"""

from __future__ import annotations

import warnings
from collections.abc import Callable
from contextlib import contextmanager
from dataclasses import dataclass, field

import numpy as np
from statsmodels.tools.sm_exceptions import ConvergenceWarning, ValueWarning
from statsmodels.tsa.forecasting.theta import ThetaModel, ThetaModelResults
from statsmodels.tsa.holtwinters import ExponentialSmoothing, HoltWintersResults
from statsmodels.tsa.seasonal import MSTL, seasonal_decompose
from statsmodels.tsa.stattools import acf

MAX_STATE_SEASON = 24


class NotApplicable(Exception):
    """The candidate cannot forecast this history."""


@dataclass(frozen=True)
class FitInput:
    """The fitting window of one series and what its fits need to know about it."""

    history: np.ndarray
    season_length: int
    extra_season_lengths: tuple[int, ...] = ()


@dataclass(frozen=True)
class CandidateInput:
    """A backtest fold: the fitting window plus the forecast steps after it."""

    history: np.ndarray
    horizon: int
    season_length: int
    extra_season_lengths: tuple[int, ...] = ()

    def fit_input(self) -> FitInput:
        return FitInput(self.history, self.season_length, self.extra_season_lengths)


@contextmanager
def quiet_fitting():
    """Optimiser warnings are expected on short or flat windows; the backtest judges the fit."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        warnings.simplefilter("ignore", ValueWarning)
        warnings.simplefilter("ignore", RuntimeWarning)
        warnings.simplefilter("ignore", FutureWarning)
        yield


# --- fitted models


class FittedModel:
    """A model fitted on a window; forecasts `horizon` steps after the window's last step."""

    def forecast(self, horizon: int) -> np.ndarray:
        """Point forecast of the steps after the fitting window."""
        raise NotImplementedError


@dataclass(frozen=True)
class RepeatedCycle(FittedModel):
    """The last observed cycle (or last value), repeated: seasonal naive."""

    values: np.ndarray

    def forecast(self, horizon: int) -> np.ndarray:
        return np.resize(self.values, horizon).astype(float)


@dataclass(frozen=True)
class SeasonalCycle:
    """One cycle of seasonal factors; `values[0]` belongs to the step after the fitting window."""

    values: np.ndarray
    multiplicative: bool = False

    def future(self, horizon: int) -> np.ndarray:
        return np.resize(self.values, horizon)

    def reseasonalise(self, forecast: np.ndarray) -> np.ndarray:
        if self.multiplicative:
            return forecast * self.future(len(forecast))
        return forecast + self.future(len(forecast))


NO_CYCLE = SeasonalCycle(np.zeros(1))  # adds zero: the identity adjustment


@dataclass(frozen=True)
class Reseasonalised(FittedModel):
    """A model of the seasonally adjusted series, with the removed cycle put back."""

    base: FittedModel
    cycle: SeasonalCycle

    def forecast(self, horizon: int) -> np.ndarray:
        return self.cycle.reseasonalise(self.base.forecast(horizon))


@dataclass(frozen=True)
class HoltWinters(FittedModel):
    """Final states of an additive Holt-Winters fit; `smoothing` is kept for the record only."""

    level: float
    trend: float | None  # None: no trend component
    phi: float  # damping of the trend (1: undamped)
    season: np.ndarray  # the last m seasonal states, oldest first (empty: no seasonality)
    smoothing: dict[str, float] = field(default_factory=dict)

    @classmethod
    def from_results(cls, results: HoltWintersResults) -> HoltWinters:
        model = results.model
        params = results.params
        trend = float(results.trend[-1]) if model.trend is not None else None
        phi = float(params["damping_trend"]) if model.damped_trend else 1.0
        season = np.zeros(0)
        if model.seasonal is not None:
            m = int(model.seasonal_periods)
            season = np.asarray(results.season, dtype=float)[-m:].copy()
        smoothing = {
            name: float(params[name])
            for name in ("smoothing_level", "smoothing_trend", "smoothing_seasonal")
            if np.isfinite(params.get(name, np.nan))
        }
        return cls(float(results.level[-1]), trend, phi, season, smoothing)

    def forecast(self, horizon: int) -> np.ndarray:
        """l_n + (phi + ... + phi^h) b_n + s_{n+h-m(k+1)}: the textbook formula.

        statsmodels' `forecast()` reruns the whole filter (about half the cost of a fit) and takes
        each season's state from one update earlier; the latest states are used here.
        """
        steps = np.arange(1, horizon + 1)
        forecast = np.full(horizon, self.level)
        if self.trend is not None:
            forecast += self.trend * np.cumsum(self.phi**steps)
        if len(self.season):
            forecast += self.season[(steps - 1) % len(self.season)]
        return forecast


@dataclass(frozen=True)
class Theta(FittedModel):
    """statsmodels' Theta forecast (theta = 2) in closed form, from the fit's parameters.

    Half the OLS slope b0 times h - 1 + (1 - (1 - alpha)^n) / alpha, plus the SES forecast,
    re-seasonalised: `ThetaModelResults.forecast`, for any horizon.
    """

    b0: float
    alpha: float
    n_observations: int
    ses_forecast: float
    cycle: SeasonalCycle

    @classmethod
    def from_results(cls, results: ThetaModelResults, n_observations: int) -> Theta:
        model = results.model
        period = int(model.period)
        components = results.forecast_components(period)
        cycle = NO_CYCLE
        if model.deseasonalize:
            cycle = SeasonalCycle(
                np.asarray(components["seasonal"], dtype=float),
                multiplicative=model.method.startswith("mul"),
            )
        return cls(
            b0=float(results.params["b0"]),
            alpha=float(results.params["alpha"]),
            n_observations=n_observations,
            ses_forecast=float(components["ses"].iloc[0]),
            cycle=cycle,
        )

    def forecast(self, horizon: int) -> np.ndarray:
        # The same operations in the same order as statsmodels, so the results are identical.
        h = np.arange(1, horizon + 1, dtype=np.float64) - 1
        if self.alpha > 0:
            h += 1 / self.alpha - ((1 - self.alpha) ** self.n_observations / self.alpha)
        forecast = 0.5 * (self.b0 * h) + self.ses_forecast * np.ones(horizon)
        return self.cycle.reseasonalise(forecast)


@dataclass(frozen=True)
class MultiSeasonal(FittedModel):
    """Trend model of the adjusted series plus each removed cycle, repeated."""

    trend: FittedModel
    cycles: tuple[np.ndarray, ...]  # the last full cycle of each seasonal component

    def forecast(self, horizon: int) -> np.ndarray:
        future_cycles = sum(np.resize(cycle, horizon) for cycle in self.cycles)
        return self.trend.forecast(horizon) + future_cycles


@dataclass(frozen=True)
class Combination(FittedModel):
    """Equal-weight average of its members' forecasts."""

    parts: tuple[FittedModel, ...]

    def forecast(self, horizon: int) -> np.ndarray:
        return np.mean([part.forecast(horizon) for part in self.parts], axis=0)


# --- benchmarks


def seasonal_naive(history: np.ndarray, horizon: int, season_length: int) -> np.ndarray:
    """Repeat the last observed cycle (the last value when the history is shorter)."""
    return last_cycle(history, season_length).forecast(horizon)


def last_cycle(history: np.ndarray, season_length: int) -> RepeatedCycle:
    if season_length <= 1 or len(history) < season_length:
        return RepeatedCycle(np.asarray(history[-1:], dtype=float).copy())
    return RepeatedCycle(np.asarray(history[-season_length:], dtype=float).copy())


def _snaive(data: FitInput) -> FittedModel:
    return last_cycle(data.history, data.season_length)


def _snaive_week(data: FitInput) -> FittedModel:
    if not data.extra_season_lengths:
        raise NotApplicable("no second season length")
    longest = max(data.extra_season_lengths)
    if len(data.history) < longest:
        raise NotApplicable("history shorter than the long cycle")
    return last_cycle(data.history, longest)


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
    cycle: SeasonalCycle


def seasonally_adjust(history: np.ndarray, season_length: int) -> SeasonalAdjustment:
    """Remove a cycle of `season_length` if the test finds one (else an identity adjustment)."""
    if not has_seasonality(history, season_length):
        return SeasonalAdjustment(history, NO_CYCLE)
    multiplicative = bool(np.min(history) > 0)
    model = "multiplicative" if multiplicative else "additive"
    seasonal = seasonal_decompose(history, model=model, period=season_length).seasonal
    # The decomposed cycle is periodic, so its last full cycle starts where the future does.
    cycle = SeasonalCycle(np.asarray(seasonal[-season_length:], dtype=float), multiplicative)
    if multiplicative:
        return SeasonalAdjustment(history / seasonal, cycle)
    return SeasonalAdjustment(history - seasonal, cycle)


# --- exponential smoothing


def _holt_winters(
    history: np.ndarray, trend: bool, damped: bool, seasonal_periods: int | None
) -> HoltWinters:
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
        return HoltWinters.from_results(model.fit(use_brute=False))


def _exponential_smoothing(data: FitInput, trend: bool, damped: bool) -> FittedModel:
    history, m = data.history, data.season_length
    if len(history) < 4:
        raise NotApplicable("too short for exponential smoothing")
    if 1 < m <= MAX_STATE_SEASON and len(history) >= 2 * m:
        return _holt_winters(history, trend, damped, seasonal_periods=m)
    adjustment = seasonally_adjust(history, m)
    base = _holt_winters(adjustment.adjusted, trend, damped, None)
    return Reseasonalised(base, adjustment.cycle)


def _ets(data: FitInput) -> FittedModel:
    """Level + seasonality: SES with a seasonal state (ETS A,N,A)."""
    return _exponential_smoothing(data, trend=False, damped=False)


def _ets_damped(data: FitInput) -> FittedModel:
    """Damped additive trend + seasonality (ETS A,Ad,A)."""
    return _exponential_smoothing(data, trend=True, damped=True)


def _naive(data: FitInput) -> FittedModel:
    """Last value of the seasonally adjusted series, re-seasonalised (M4's Naive2)."""
    adjustment = seasonally_adjust(data.history, data.season_length)
    return Reseasonalised(last_cycle(adjustment.adjusted, 1), adjustment.cycle)


# --- theta


def _theta(data: FitInput) -> FittedModel:
    """statsmodels' Theta method (SES with drift) with its own seasonality test and adjustment."""
    history, m = data.history, data.season_length
    if len(history) < 4:
        raise NotApplicable("too short for theta")
    seasonal = m > 1 and len(history) >= 2 * m
    with quiet_fitting():
        model = ThetaModel(history, period=m if seasonal else 1, deseasonalize=seasonal)
        return Theta.from_results(model.fit(), len(history))


# --- multiple seasonality


def _mstl(data: FitInput) -> FittedModel:
    """MSTL decomposition over all cycles; damped ETS on the adjusted series, cycles repeated."""
    periods = tuple(
        p
        for p in (data.season_length, *data.extra_season_lengths)
        if p > 1 and len(data.history) >= 2 * p
    )
    if len(periods) < 2:
        raise NotApplicable("needs two cycles of at least two periods each")
    with quiet_fitting():
        result = MSTL(data.history, periods=periods).fit()
    seasonal = np.asarray(result.seasonal).reshape(len(data.history), -1)
    adjusted = data.history - seasonal.sum(axis=1)
    cycles = tuple(seasonal[-p:, i].copy() for i, p in enumerate(periods))
    trend = _holt_winters(adjusted, trend=True, damped=True, seasonal_periods=None)
    return MultiSeasonal(trend, cycles)


# --- registry

Fit = Callable[[FitInput], FittedModel]

CANDIDATES: dict[str, Fit] = {
    "snaive": _snaive,
    "snaive_week": _snaive_week,
    "naive": _naive,
    "ets": _ets,
    "ets_damped": _ets_damped,
    "theta": _theta,
    "mstl": _mstl,
}

# Equal-weight averages of other candidates: they cost no extra fit and often beat each member.
COMBINATIONS: dict[str, tuple[str, ...]] = {
    "comb": ("ets", "ets_damped", "theta"),
}

BENCHMARK = "snaive"  # the model every choice must beat; always computed


def known_candidates() -> tuple[str, ...]:
    return (*CANDIDATES, *COMBINATIONS)


def fit_candidate(name: str, data: FitInput) -> FittedModel:
    """The fitted model of one candidate or combination; raises when it cannot fit."""
    parts = COMBINATIONS.get(name)
    if parts:
        return Combination(tuple(CANDIDATES[part](data) for part in parts))
    return CANDIDATES[name](data)


def run_candidates(names: tuple[str, ...], inp: CandidateInput) -> dict[str, np.ndarray]:
    """Forecasts of every named candidate that can forecast this input (and of the benchmark).

    Components of a combination are computed even when not candidates themselves; a combination
    exists only when all its components succeeded, and averages their forecasts (no extra fit).
    """
    needed: list[str] = [BENCHMARK]
    for name in names:
        for part in COMBINATIONS.get(name, (name,)):
            if part not in needed:
                needed.append(part)
    data = inp.fit_input()
    forecasts: dict[str, np.ndarray] = {}
    for name in needed:
        try:
            forecast = CANDIDATES[name](data).forecast(inp.horizon)
        except Exception:  # a candidate that fails on this series simply drops out
            continue
        if usable_forecast(forecast, inp.horizon):
            forecasts[name] = forecast
    for name in names:
        parts = COMBINATIONS.get(name)
        if parts and all(p in forecasts for p in parts):
            forecasts[name] = np.mean([forecasts[p] for p in parts], axis=0)
    return forecasts


def usable_forecast(forecast: np.ndarray, horizon: int) -> bool:
    return forecast.shape == (horizon,) and bool(np.all(np.isfinite(forecast)))
