"""One series at a time: rolling-origin backtest, choice of model, and the forecast.

The functions here are pure and their arguments and results are small picklable dataclasses, so
`parallel.map_series` can spread them over processes.

Backtest layout: `folds` consecutive, non-overlapping test windows of `horizon` steps end at the
last observation ("recent" folds), plus `seasonal_folds` windows starting `seasonal_lag` steps
(52 weeks) before the forecast's first day, two lags before, ... where the history reaches
("seasonal" folds: the days the forecast covers, a year back, so the error of the breaks and
holidays ahead counts in the choice and the gate). Each fold fits on
at most `fit_window` observations before its cutoff. The model with the lowest mean MASE over the
folds is chosen (ties: the earlier candidate in the settings, so cheaper and simpler models win).

Calendar events (daily series with a calendar): every fold and the final fit see the history
adjusted for events, and every candidate forecasts an event day as its reference day (the day
itself; for a working-day holiday, the nearest rest day or its own weekday, as the series'
history and the pool choose) times the event's effect; effects come from the days before the
cutoff, the series' own shrunk toward the pool of all series (`event_effects`). Each model keeps
its effects with their source, and `series_effects` lists them for a report. Seasonal naive as
the gate's benchmark stays plain.

Prediction intervals come from the chosen model's backtest errors, divided by the day's
"difficulty" (its point forecast relative to the forecast's typical day, to the power 0.75:
demand's spread grows with its level, though less than in proportion, as counts' noise is
partly Poisson; so a weekend day, a holiday at weekend level and a quiet break day each get a
band of their own size), as empirical
quantiles (see `metrics.interval_offsets`), then widened by the factors of an
`IntervalCalibration` fitted on all series' backtests per horizon step and for event days. The
backtest's own intervals use the errors of the *other* folds only. On a working-day holiday the
two references (rest day, own weekday) may disagree; the data often cannot tell them apart, so
before calibration the band is widened toward the other reference's forecast by their gap
(`widened_to_other_reference`), in the backtest and in the forecast alike.

After the choice, the chosen model is fitted once more on the latest window (the same window
`fit_window` gives a fold whose cutoff is the last observation) and kept in `SeriesModel.fitted`;
`predict_series` forecasts from it without refitting.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field, replace

import numpy as np

from pipeline_code.forecasting import candidates as cand
from pipeline_code.forecasting.event_calendar import EventCalendar
from pipeline_code.forecasting.event_effects import (
    EMPTY_PRIORS,
    REST_DAY,
    WEEKDAY,
    EffectSource,
    EventDays,
    EventPriors,
    PooledEvents,
    adjusted_history,
    chosen_reference,
    effect_sources,
    factors,
    reference_positions,
    rest_preference,
    shrunk_effects,
    with_events,
)
from pipeline_code.forecasting.frequency import ForecastSettings
from pipeline_code.forecasting.metrics import (
    NO_CALIBRATION,
    IntervalCalibration,
    interval_offsets,
    mase_scale,
    mean_mase,
)

MIN_TRAIN = 8  # fewest observations a backtest fold trains on


@dataclass(frozen=True)
class SeriesData:
    series_id: str
    y: np.ndarray
    start: dt.date | None = None  # date of y[0]; places events (None: undated, no events)


@dataclass(frozen=True)
class SeriesBacktest:
    """Backtest of the chosen model and of the seasonal-naive benchmark, arrays (folds, horizon)."""

    cutoffs: np.ndarray  # index of each fold's first forecast step (= training length)
    actual: np.ndarray
    scales: np.ndarray  # MASE denominator of each fold's history, (folds,)
    forecast: np.ndarray
    lower: np.ndarray
    upper: np.ndarray
    benchmark_forecast: np.ndarray
    benchmark_lower: np.ndarray
    benchmark_upper: np.ndarray
    seasonal: np.ndarray  # (folds,) True: a fold at the same season a year (or more) back
    event_codes: np.ndarray  # each day's calendar event code (0: an ordinary day)
    # The chosen model's interval offsets before calibration (low <= 0 <= high)
    offset_low: np.ndarray
    offset_high: np.ndarray

    @property
    def n_folds(self) -> int:
        return len(self.cutoffs)


@dataclass(frozen=True)
class SeriesModel:
    """What predict needs for one series: the fitted chosen model and its backtest errors."""

    series_id: str
    model: str
    # (actual - forecast) / difficulty of the chosen model in the backtest, (folds, horizon)
    errors: np.ndarray
    candidate_mase: dict[str, float] = field(default_factory=dict)
    n_observations: int = 0  # length of the series the model was fitted on
    # The chosen model fitted on the latest window; None when it could not fit that window.
    fitted: cand.FittedModel | None = None
    effects: dict[int, float] = field(default_factory=dict)  # event code: multiplicative effect
    # What a working-day holiday is measured against: REST_DAY (the nearest rest day) or WEEKDAY
    reference: str = REST_DAY
    # event code: the effect with its pooled and own parts (what a report shows)
    effect_sources: dict[int, EffectSource] = field(default_factory=dict)
    # event code: its effect measured with the other reference (empty: the references never
    # differ); widens the intervals of the days where the two references disagree
    other_reference_effects: dict[int, float] = field(default_factory=dict)


@dataclass(frozen=True)
class SeriesTraining:
    model: SeriesModel
    backtest: SeriesBacktest | None  # None when the history is too short to backtest


@dataclass(frozen=True)
class SeriesForecast:
    series_id: str
    model: str
    yhat: np.ndarray
    lower: np.ndarray
    upper: np.ndarray


# --- inputs


DIFFICULTY_POWER = 0.75  # errors grow with the day's level, less than in proportion
LEVEL_PSEUDO_COUNT = 0.5  # added to both levels of a difficulty ratio (counts: half a unit)


@dataclass(frozen=True)
class SeriesEvents:
    """The calendar seen by one series: day codes over history and future, its event days."""

    codes: np.ndarray  # event code of every day from y[0] to the end of the longest forecast
    offsets: np.ndarray  # each of those days' offset to its reference day (0: itself)
    own: EventDays
    pool: PooledEvents
    first_day: int  # ordinal of y[0]
    reference_day: str = REST_DAY  # what a working-day holiday is measured against
    # The same calendar measured with the other reference (None: the references never differ)
    alternative: SeriesEvents | None = None

    def effects(self, cutoff: int, horizon: int) -> dict[int, float]:
        """Effects of the events up to `cutoff + horizon`, from days before `cutoff` only."""
        return shrunk_effects(
            self.own.before(cutoff),
            self.pool,
            self.codes[: cutoff + horizon],
            self.first_day + cutoff,
        )

    def window(self, y: np.ndarray, cutoff: int, effects: dict[int, float]) -> np.ndarray:
        return adjusted_history(y[:cutoff], self.codes[:cutoff], effects)

    def future(self, cutoff: int, horizon: int, effects: dict[int, float]) -> np.ndarray:
        return factors(self.codes[cutoff : cutoff + horizon], effects)

    def reference(self, cutoff: int, horizon: int, reach: int) -> np.ndarray:
        """Each forecast day's reference day, as an index into a forecast of `reach` days."""
        return reference_positions(self.offsets[cutoff : cutoff + horizon], reach)


def series_calendar(
    series: SeriesData, settings: ForecastSettings, length: int, reference: str = REST_DAY
) -> tuple[np.ndarray, np.ndarray] | None:
    """Event codes of `length` days from the series' first day and each day's offset to its
    reference day (`reference` REST_DAY: a working-day holiday's nearest rest day; WEEKDAY: every
    day its own); None when events do not apply."""
    calendar = settings.calendar
    if series.start is None or calendar is None or calendar.empty or settings.frequency != "D":
        return None
    codes = calendar.codes(series.start, length)
    offsets = calendar.reference_offsets(series.start, length)
    return codes, (offsets if reference == REST_DAY else np.zeros_like(offsets))


def forecast_reach(horizon: int, settings: ForecastSettings) -> int:
    """Days a candidate forecasts so that every forecast day's reference day is among them."""
    return max(horizon, settings.season_length)


@dataclass(frozen=True)
class OwnEvents:
    """A series' event days measured with each reference, and how much better the rest day
    fits its working-day holidays (`event_effects.rest_preference`)."""

    rest_day: EventDays
    weekday: EventDays
    preference: float

    def days(self, reference: str) -> EventDays:
        return self.rest_day if reference == REST_DAY else self.weekday


def own_events(series: SeriesData, settings: ForecastSettings) -> OwnEvents | None:
    """The series' own event days with their baselines, with either reference."""
    days = series_calendar(series, settings, len(series.y))
    if days is None:
        return None
    codes, offsets = days
    y = np.asarray(series.y, dtype=float)
    rest = EventDays.of(y, codes, settings.season_length, offsets)
    weekday = EventDays.of(y, codes, settings.season_length)
    return OwnEvents(rest, weekday, rest_preference(rest, weekday, offsets != 0))


def pool_events(series: list[SeriesData], settings: ForecastSettings) -> EventPriors:
    """The effects pooled over all series with either reference, the pooled preference for the
    rest day, and how far series stray from the pool: the prior of each series' own effects.
    PreProc computes the same from its buckets' statistics (`event_pool`)."""
    from pipeline_code.forecasting.event_pool import bucket_statistics, combine

    return combine([bucket_statistics(series, settings)], settings)


EFFECTS_AHEAD = 366  # days after the data whose events get an effect stored with the model


def other_reference(reference: str) -> str:
    return WEEKDAY if reference == REST_DAY else REST_DAY


def _series_events(
    series: SeriesData,
    settings: ForecastSettings,
    priors: EventPriors,
    horizon: int,
    with_alternative: bool = True,
) -> SeriesEvents | None:
    """The series' calendar with the reference its history and the pool choose; its codes reach
    a year past the data, so that the effects stored with the model cover every event of any
    horizon Predict may be asked for within a year. With `with_alternative`, the calendar
    measured with the other reference too, where the two differ on some day."""
    own = own_events(series, settings)
    if own is None or series.start is None:
        return None
    reference = chosen_reference(own.preference, priors)
    length = len(series.y) + max(horizon, EFFECTS_AHEAD)
    events = _events_with_reference(series, settings, own, priors, length, reference)
    if not with_alternative:
        return events
    other_days = other_reference(reference)
    other = _events_with_reference(series, settings, own, priors, length, other_days)
    # The references differ exactly on the days the rest day's offsets move (WEEKDAY: none)
    rest = events if reference == REST_DAY else other
    return replace(events, alternative=other) if np.any(rest.offsets) else events


def _events_with_reference(
    series: SeriesData,
    settings: ForecastSettings,
    own: OwnEvents,
    priors: EventPriors,
    length: int,
    reference: str,
) -> SeriesEvents:
    days = series_calendar(series, settings, length, reference)
    assert days is not None and series.start is not None
    codes, offsets = days
    return SeriesEvents(
        codes,
        offsets,
        own.days(reference),
        priors.pool(reference),
        series.start.toordinal(),
        reference,
    )


def _window_start(cutoff: int, settings: ForecastSettings) -> int:
    return max(0, cutoff - settings.fit_window)


@dataclass(frozen=True)
class FoldInput:
    """A fold's (or the final fit's) adjusted fitting window and its future event factors."""

    candidate: cand.CandidateInput  # forecasts `forecast_reach` days
    raw_window: np.ndarray  # the unadjusted window: the benchmark's input
    future_factors: np.ndarray  # effect of each forecast day (1: ordinary)
    reference: np.ndarray  # each forecast day's reference day: an index into a candidate's days
    effects: dict[int, float]
    # (future factors, reference) with the other reference day (None: no day differs)
    alternative: tuple[np.ndarray, np.ndarray] | None = None

    def with_events(self, forecast: np.ndarray) -> np.ndarray:
        """A candidate's event-free forecast with its events, over the horizon."""
        return with_events(forecast, self.future_factors, self.reference)

    def with_other_reference(self, forecast: np.ndarray) -> np.ndarray | None:
        """The same with the other reference day and its effects (None: no day differs)."""
        if self.alternative is None:
            return None
        return with_events(forecast, *self.alternative)


def fold_input(
    y: np.ndarray,
    cutoff: int,
    horizon: int,
    settings: ForecastSettings,
    events: SeriesEvents | None,
) -> FoldInput:
    """The fitting window ending at `cutoff` (event-adjusted) and the event factors after it."""
    first = _window_start(cutoff, settings)
    alternative = None
    if events:
        reach = forecast_reach(horizon, settings)
        effects = events.effects(cutoff, horizon)
        history = events.window(y, cutoff, effects)
        future = events.future(cutoff, horizon, effects)
        reference = events.reference(cutoff, horizon, reach)
        if events.alternative is not None:
            other = events.alternative
            other_effects = other.effects(cutoff, horizon)
            alternative = (
                other.future(cutoff, horizon, other_effects),
                other.reference(cutoff, horizon, reach),
            )
    else:
        reach, effects, history = horizon, {}, y[:cutoff]
        future, reference = np.ones(horizon), np.arange(horizon)
    candidate = cand.CandidateInput(
        history=history[first:cutoff],
        horizon=reach,
        season_length=settings.season_length,
        extra_season_lengths=settings.extra_season_lengths,
    )
    return FoldInput(candidate, y[first:cutoff], future, reference, effects, alternative)


def _postprocess(forecast: np.ndarray, settings: ForecastSettings) -> np.ndarray:
    """Demand cannot be negative: clip point forecasts of counts at zero."""
    return np.maximum(forecast, 0.0) if settings.nonnegative else forecast


def _min_train(settings: ForecastSettings) -> int:
    return max(MIN_TRAIN, 2 * min(settings.season_length, cand.MAX_STATE_SEASON))


def fold_cutoffs(n: int, settings: ForecastSettings) -> np.ndarray:
    """Cutoffs of the recent folds that fit in a history of n (fewer folds for short series)."""
    folds = min(settings.backtest_folds, max(0, (n - _min_train(settings)) // settings.horizon))
    return np.array([n - settings.horizon * (folds - k) for k in range(folds)], dtype=int)


def seasonal_cutoffs(n: int, settings: ForecastSettings, recent: np.ndarray) -> np.ndarray:
    """Cutoffs `seasonal_lag`, 2 lags, ... before the forecast's own, where the history reaches:
    each such fold tests the very days the forecast is about to cover, a year (two, ...) earlier
    on the same weekdays, so a run before the year end backtests a year end.

    A seasonal fold's window must end before the first recent fold starts and leave enough
    history to fit on.
    """
    if not len(recent):
        return np.zeros(0, dtype=int)
    cutoffs = [n - k * settings.seasonal_lag for k in range(1, settings.seasonal_folds + 1)]
    usable = [
        c for c in cutoffs if c >= _min_train(settings) and c + settings.horizon <= int(recent[0])
    ]
    return np.array(sorted(usable), dtype=int)


# --- training


@dataclass(frozen=True)
class _FoldResult:
    forecasts: dict[str, np.ndarray]  # event-aware candidates
    event_free: dict[str, np.ndarray]  # the candidates' own forecasts, over the horizon
    benchmark: np.ndarray  # plain seasonal naive
    # event-aware candidates with the other reference day (empty: no day differs)
    other_reference: dict[str, np.ndarray] = field(default_factory=dict)


def _fold_forecasts(
    y: np.ndarray, settings: ForecastSettings, cutoffs: np.ndarray, events: SeriesEvents | None
) -> list[_FoldResult]:
    per_fold = []
    for cutoff in cutoffs:
        inp = fold_input(y, int(cutoff), settings.horizon, settings, events)
        forecasts = cand.run_candidates(settings.candidates, inp.candidate)
        benchmark = cand.seasonal_naive(inp.raw_window, settings.horizon, settings.season_length)
        others = {k: inp.with_other_reference(v) for k, v in forecasts.items()}
        per_fold.append(
            _FoldResult(
                {k: _postprocess(inp.with_events(v), settings) for k, v in forecasts.items()},
                {k: v[: settings.horizon] for k, v in forecasts.items()},
                _postprocess(benchmark, settings),
                {k: _postprocess(v, settings) for k, v in others.items() if v is not None},
            )
        )
    return per_fold


def _mean_mase(
    name: str, per_fold: list[_FoldResult], actual: np.ndarray, scales: np.ndarray
) -> float:
    if not all(name in fold.forecasts for fold in per_fold):
        return float("inf")
    forecast = np.stack([fold.forecasts[name] for fold in per_fold])
    return mean_mase(actual, forecast, scales)


def choose_model(candidate_mase: dict[str, float], order: tuple[str, ...]) -> str:
    """Lowest backtest MASE; ties go to the candidate listed first."""
    finite = [name for name in order if np.isfinite(candidate_mase.get(name, np.inf))]
    if not finite:
        return cand.BENCHMARK
    return min(finite, key=lambda name: (candidate_mase[name], order.index(name)))


def _leave_one_fold_out_offsets(
    errors: np.ndarray, level: float, fallback: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """Interval offsets of each fold from the other folds' errors (`fallback` with one fold)."""
    low = np.empty(len(errors))
    high = np.empty(len(errors))
    for k in range(len(errors)):
        others = np.delete(errors, k, axis=0) if len(errors) > 1 else fallback
        low[k], high[k] = interval_offsets(others, level)
    return low[:, None], high[:, None]


def interval_bounds(
    forecast: np.ndarray, lower: np.ndarray, upper: np.ndarray, nonnegative: bool
) -> tuple[np.ndarray, np.ndarray]:
    """Order the bounds around the point forecast; clip them at zero for counts."""
    lower = np.minimum(lower, forecast)
    upper = np.maximum(upper, forecast)
    if nonnegative:
        lower, upper = np.maximum(lower, 0.0), np.maximum(upper, 0.0)
    return lower, upper


def _bounds(
    forecast: np.ndarray, lower: np.ndarray, upper: np.ndarray, settings: ForecastSettings
) -> tuple[np.ndarray, np.ndarray]:
    return interval_bounds(forecast, lower, upper, settings.nonnegative)


def difficulty(
    forecast: np.ndarray, event_free: np.ndarray, season_length: int, nonnegative: bool = True
) -> np.ndarray:
    """How large each day's errors are expected to be, relative to a typical day of the forecast.

    Demand's spread grows with its level, so a day's difficulty is its point forecast relative to
    the forecast's typical day, to DIFFICULTY_POWER: a weekend above a mid-week day, a working-day
    holiday (demand at weekend level or above) above both, a quiet break below. The typical day
    is the mean of the event-free forecast (the candidate's own, before `with_events`) over whole
    cycles, and LEVEL_PSEUDO_COUNT keeps a day forecast at zero from getting a zero-width
    interval. `forecast` and `event_free` are (..., horizon). Data that may be negative (not
    counts) have no level to scale by: their difficulty is the events' change alone.
    """
    forecast = np.asarray(forecast, dtype=float)
    event_free = np.asarray(event_free, dtype=float)
    if not nonnegative:
        with np.errstate(divide="ignore", invalid="ignore"):
            change = np.where(event_free != 0, forecast / event_free, 1.0)
        return np.power(np.maximum(change, 1e-3), DIFFICULTY_POWER)
    level = np.maximum(forecast, 0.0)
    horizon = level.shape[-1]
    whole = horizon - horizon % season_length if horizon >= season_length else horizon
    typical = np.mean(np.maximum(event_free, 0.0)[..., :whole], axis=-1, keepdims=True)
    ratio = (level + LEVEL_PSEUDO_COUNT) / (typical + LEVEL_PSEUDO_COUNT)
    return np.power(ratio, DIFFICULTY_POWER)


def _in_sample_errors(y: np.ndarray, season_length: int) -> np.ndarray:
    """Seasonal differences: the errors seasonal naive would have made one cycle ahead."""
    lag = season_length if len(y) > season_length else 1
    return (y[lag:] - y[:-lag]) if len(y) > lag else np.zeros(0)


def fit_latest(
    series: SeriesData,
    name: str,
    settings: ForecastSettings,
    pool: EventPriors = EMPTY_PRIORS,
) -> cand.FittedModel | None:
    """Model `name` fitted on the latest window, as Predict forecasts it; None if it cannot fit."""
    y = np.asarray(series.y, dtype=float)
    events = _series_events(series, settings, pool, settings.horizon, with_alternative=False)
    inp = fold_input(y, len(y), settings.horizon, settings, events)
    try:
        return cand.fit_candidate(name, inp.candidate.fit_input())
    except Exception:  # predict falls back to seasonal naive, as a failed backtest fit drops out
        return None


def _latest_effects(
    y: np.ndarray, settings: ForecastSettings, events: SeriesEvents | None
) -> dict[int, EffectSource]:
    """Effects as of the last observation, for every event the pool or the series knows."""
    if events is None:
        return {}
    known = np.array(sorted({*events.pool.day_codes, *np.unique(events.codes).tolist()}))
    return effect_sources(events.own, events.pool, known, events.first_day + len(y))


def _backtest_band(
    actual: np.ndarray, forecast: np.ndarray, scale: np.ndarray, level: float, fallback: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """Offsets (low, high) of each fold's interval, from the other folds' scaled errors."""
    low, high = _leave_one_fold_out_offsets((actual - forecast) / scale, level, fallback)
    return low * scale, high * scale


def widened_to_other_reference(
    low: np.ndarray, high: np.ndarray, gap: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """Interval offsets (low <= 0 <= high) widened toward the other reference's forecast.

    Whether a working-day holiday follows the rest day or its own weekday is a choice the data
    often cannot make (in a business whose weekdays differ little, the two fit past holidays
    almost equally), and where the two disagree, the day's forecast is as uncertain as their
    gap: `gap` (the other reference's forecast minus the chosen one's) is added in quadrature
    on its own side. Days where the references agree (every ordinary day, most Monday
    holidays) keep their offsets, so the calibration still sees them as they are.
    """
    low, high, gap = (np.asarray(a, dtype=float) for a in (low, high, gap))
    return (
        -np.hypot(np.minimum(low, 0.0), np.minimum(gap, 0.0)),
        np.hypot(np.maximum(high, 0.0), np.maximum(gap, 0.0)),
    )


def train_series(
    series: SeriesData, settings: ForecastSettings, pool: EventPriors = EMPTY_PRIORS
) -> SeriesTraining:
    """Backtest every candidate on one series, choose the best and fit it on the latest window.

    `pool`: the effects of calendar events pooled over all series (`pool_events`). Picklable in
    and out, no side effects.
    """
    y = np.asarray(series.y, dtype=float)
    events = _series_events(series, settings, pool, settings.horizon)
    sources = _latest_effects(y, settings, events)
    effects = {code: source.effect for code, source in sources.items()}
    reference = events.reference_day if events is not None else REST_DAY
    other_effects = {
        code: source.effect
        for code, source in _latest_effects(y, settings, events and events.alternative).items()
    }
    recent = fold_cutoffs(len(y), settings)
    if len(recent) == 0:
        errors = _in_sample_errors(y, settings.season_length)[None, :]
        fitted = fit_latest(series, cand.BENCHMARK, settings, pool)
        model = SeriesModel(
            series.series_id, cand.BENCHMARK, errors, {}, len(y), fitted, effects, reference,
            sources, other_effects,
        )  # fmt: skip
        return SeriesTraining(model=model, backtest=None)

    seasonal = seasonal_cutoffs(len(y), settings, recent)
    cutoffs = np.concatenate([seasonal, recent])
    per_fold = _fold_forecasts(y, settings, cutoffs, events)
    actual = np.stack([y[c : c + settings.horizon] for c in cutoffs])
    scales = np.array([mase_scale(y[:c], settings.mase_season_length) for c in cutoffs])
    names = tuple(dict.fromkeys(settings.candidates))
    scores = {name: _mean_mase(name, per_fold, actual, scales) for name in names}
    benchmark = np.stack([fold.benchmark for fold in per_fold])
    scores[BENCHMARK_SCORE] = mean_mase(actual, benchmark, scales)
    chosen = choose_model(scores, settings.candidates)

    level = settings.interval_level
    fallback = _in_sample_errors(y[: cutoffs[0]], settings.season_length)
    forecast = np.stack([fold.forecasts[chosen] for fold in per_fold])
    event_free = np.stack([fold.event_free[chosen] for fold in per_fold])
    scale = difficulty(forecast, event_free, settings.season_length, settings.nonnegative)
    low, high = _backtest_band(actual, forecast, scale, level, fallback)
    other = np.stack(
        [fold.other_reference.get(chosen, fold.forecasts[chosen]) for fold in per_fold]
    )
    low, high = widened_to_other_reference(low, high, other - forecast)
    lower, upper = _bounds(forecast, forecast + low, forecast + high, settings)
    bench_low, bench_high = _backtest_band(actual, benchmark, np.ones_like(scale), level, fallback)
    bench_lower, bench_upper = _bounds(
        benchmark, benchmark + bench_low, benchmark + bench_high, settings
    )

    backtest = SeriesBacktest(
        cutoffs=cutoffs,
        actual=actual,
        scales=scales,
        forecast=forecast,
        lower=lower,
        upper=upper,
        benchmark_forecast=benchmark,
        benchmark_lower=bench_lower,
        benchmark_upper=bench_upper,
        seasonal=np.isin(cutoffs, seasonal),
        event_codes=_fold_event_codes(events, cutoffs, settings),
        offset_low=np.minimum(low, 0.0),
        offset_high=np.maximum(high, 0.0),
    )
    errors = ((actual - forecast) / scale).astype(np.float32)
    finite_scores = {k: v for k, v in scores.items() if np.isfinite(v)}
    fitted = fit_latest(series, chosen, settings, pool)
    model = SeriesModel(
        series.series_id, chosen, errors, finite_scores, len(y), fitted, effects, reference,
        sources, other_effects,
    )  # fmt: skip
    return SeriesTraining(model=model, backtest=backtest)


BENCHMARK_SCORE = "snaive_plain"  # seasonal naive without calendar effects: the gate's yardstick


def _fold_event_codes(
    events: SeriesEvents | None, cutoffs: np.ndarray, settings: ForecastSettings
) -> np.ndarray:
    if events is None:
        return np.zeros((len(cutoffs), settings.horizon), dtype=np.int64)
    return np.stack([events.codes[c : c + settings.horizon] for c in cutoffs])


def event_kinds(codes: np.ndarray, settings: ForecastSettings) -> np.ndarray:
    """Each day's kind of event (0: none), the classes of the interval calibration."""
    if settings.calendar is None:  # no calendar: every code is 0
        return np.zeros(np.shape(codes), dtype=np.int64)
    return settings.calendar.kinds(codes)


def calibrated_backtest(
    backtest: SeriesBacktest, calibration: IntervalCalibration, settings: ForecastSettings
) -> SeriesBacktest:
    """The backtest with its chosen model's intervals widened by the calibration's factors."""
    steps = np.broadcast_to(np.arange(1, backtest.actual.shape[1] + 1), backtest.actual.shape)
    widen = calibration.factors(steps, event_kinds(backtest.event_codes, settings))
    lower, upper = calibrated_bounds(
        backtest.forecast, backtest.offset_low, backtest.offset_high, widen, settings.nonnegative
    )
    return replace(backtest, lower=lower, upper=upper)


def calibrated_bounds(
    forecast: np.ndarray,
    offset_low: np.ndarray,
    offset_high: np.ndarray,
    widen: np.ndarray,
    nonnegative: bool,
) -> tuple[np.ndarray, np.ndarray]:
    """A backtest interval from its raw offsets (low <= 0 <= high) widened by `widen`."""
    return interval_bounds(
        forecast, forecast + widen * offset_low, forecast + widen * offset_high, nonnegative
    )


# --- prediction


def _stored_forecast(model: SeriesModel, horizon: int) -> np.ndarray | None:
    """The stored fitted model's forecast; None when there is none or it is not usable."""
    if model.fitted is None:
        return None
    try:
        forecast = model.fitted.forecast(horizon)
    except Exception:  # as in the backtest, a model that cannot forecast drops out
        return None
    return forecast if cand.usable_forecast(forecast, horizon) else None


def predict_series(
    series: SeriesData,
    model: SeriesModel,
    settings: ForecastSettings,
    horizon: int | None = None,
    level: float | None = None,
    calibration: IntervalCalibration = NO_CALIBRATION,
) -> SeriesForecast:
    """Forecast `horizon` steps past the data from the fitted chosen model (no refit).

    `series` must be the data Train fitted on (the fit ends at its last observation). A chosen
    model that could not fit the latest window (rare: it fitted every backtest fold) or cannot
    forecast falls back to seasonal naive of that window, and the result says so in `model`.
    Event effects are the ones Train stored with the model; intervals are widened by
    `calibration` (Train's, from all series' backtests).
    """
    horizon = horizon or settings.horizon
    level = settings.interval_level if level is None else level
    y = np.asarray(series.y, dtype=float)
    if model.fitted is not None and len(y) != model.n_observations:
        raise ValueError(
            f"series {series.series_id}: {len(y)} observations, but its model was fitted on "
            f"{model.n_observations}"
        )
    days = series_calendar(series, settings, len(y) + horizon, model.reference)
    if days is None:
        reach, future_codes = horizon, np.zeros(horizon, dtype=np.int64)
        reference = np.arange(horizon)
    else:
        codes, offsets = days
        reach, future_codes = forecast_reach(horizon, settings), codes[len(y) :]
        reference = reference_positions(offsets[len(y) :], reach)
    future = factors(future_codes, model.effects)
    name, forecast = model.model, _stored_forecast(model, reach)
    if forecast is None:
        window = y[_window_start(len(y), settings) :]
        if days is not None:
            window = adjusted_history(y, days[0][: len(y)], model.effects)[-len(window) :]
        name = cand.BENCHMARK
        forecast = cand.seasonal_naive(window, reach, settings.season_length)
    yhat = _postprocess(with_events(forecast, future, reference), settings)
    low, high = interval_offsets(model.errors, level)
    widen = calibration.factors(np.arange(1, horizon + 1), event_kinds(future_codes, settings))
    event_free = forecast[:horizon]
    scale = difficulty(yhat, event_free, settings.season_length, settings.nonnegative)
    gap = _other_reference_gap(series, model, settings, forecast, yhat, future_codes, reach)
    low_offset, high_offset = widened_to_other_reference(scale * low, scale * high, gap)
    lower, upper = _bounds(yhat, yhat + widen * low_offset, yhat + widen * high_offset, settings)
    return SeriesForecast(series.series_id, name, yhat, lower, upper)


def _other_reference_gap(
    series: SeriesData,
    model: SeriesModel,
    settings: ForecastSettings,
    forecast: np.ndarray,
    yhat: np.ndarray,
    future_codes: np.ndarray,
    reach: int,
) -> np.ndarray:
    """Per forecast day, the other reference's forecast minus `yhat` (0: none stored)."""
    if not model.other_reference_effects:
        return np.zeros(len(yhat))
    n = len(series.y)
    days = series_calendar(series, settings, n + len(yhat), other_reference(model.reference))
    if days is None:
        return np.zeros(len(yhat))
    reference = reference_positions(days[1][n:], reach)
    other = with_events(forecast, factors(future_codes, model.other_reference_effects), reference)
    return _postprocess(other, settings) - yhat


# --- explanation


@dataclass(frozen=True)
class SeriesEffect:
    """One calendar event's effect on a series' forecast, as a report shows it."""

    code: int
    event: str  # the event's name(s), a break day's position: "public_holiday+golden_week day 6"
    effect: float  # what the forecast uses: demand on the day / its reference day's
    pooled: float  # the effect pooled over all series
    own: float | None  # the series' own estimate (None: it never saw the event)
    source: str  # "own" where its own days outweigh the pool, else "pooled"
    reference: str  # a working-day holiday's reference: "rest_day" or "weekday"


def series_effects(model: SeriesModel, calendar: EventCalendar) -> list[SeriesEffect]:
    """The event effects a series' forecast uses, each with its source (pooled or own), in code
    order; a reference of "rest_day" means the calendar's rest day (`calendar.rest_day_name`)."""
    return [
        SeriesEffect(
            code,
            calendar.describe(code),
            source.effect,
            source.pooled,
            source.own,
            source.source,
            model.reference,
        )
        for code, source in sorted(model.effect_sources.items())
    ]
