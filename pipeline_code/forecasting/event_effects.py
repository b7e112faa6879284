"""Effects of calendar events on one series, shrunk toward the effect pooled over all series.

An event's effect is multiplicative: the ratio of demand on its days to its reference day's
ordinary demand (the mean of the reference weekday's ordinary days up to three weeks either side,
the "baseline"). Effects may be below or above 1. Ratios pool across series of any size, where
additive effects would not.

What is learned from the data, and how:

- **Each day of a break its own effect.** A break day's code holds its position in the break and
  whether it is a public holiday or a bridge day (`EventCalendar`), so Golden Week's working days
  and its holidays, the year end's eve and its return to work, each have their own effect. The
  pooled effect of such a day is its own sums shrunk toward the coarser code's (the same day
  without the bridge, then the whole break of the same holiday status) by the evidence: a day
  seen on few dates leans on the whole break, a day never seen gets it.
- **The reference of a working-day holiday, per series.** Measured against the nearest rest day
  (Sunday by default) or against its own weekday: `rest_preference` scores how much better one
  effect per event fits the series' past working-day holidays with the rest day, and
  `chosen_reference` adds the pooled preference (the mean over series) as the prior, so a series
  with little evidence follows the pool and one with clear evidence its own.
- **Per-series effects.** A series' own estimate of an event is the ratio of its sums,
  `(Y + 0.5) / (B + 0.5)` over the event's past days; it is combined with the pooled ratio in log
  space, each weighted by its precision: the own estimate's variance is the Poisson part `1 / Y`
  plus day-to-day over-dispersion divided by the number of days, the pooled one's the spread of
  the event's effects between series, estimated from the series themselves (`estimate_spreads`):
  where all series react alike, a small series takes the pool's effect; where some series are
  lifted on holidays and others cut, each keeps its own sign.

`effect_sources` returns each effect with its pooled part, its own part and the own part's
weight, which the models file keeps so a report can say whether an effect is the pool's or the
series' own.

Candidates fit the event-adjusted history (event days replaced by their own weekday's baseline)
and a future event day is forecast as the candidate's forecast of its reference day times the
effect (`with_events`), so every candidate and every backtest fold knows the calendar. A fold's
effects use only days before its cutoff, its own and the pool's; the choice of reference and
the spreads between series are made once on the whole history (a small look-ahead in the
backtest, as for any hyper-parameter).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from pipeline_code.forecasting.event_calendar import POSITION_MASK

BASELINE_REACH = 3  # cycles either side that the baseline of an event day averages
DAY_DISPERSION = 0.1  # day-to-day variance of log demand beyond Poisson (gamma-Poisson counts)
POOLED_SPREAD = 0.2  # standard deviation of log effects between series, before it is estimated
MIN_SPREAD, MAX_SPREAD = 0.1, 1.0  # bounds of the estimated spread between series
MIN_SPREAD_SERIES = 3  # series that must have seen an event to estimate its spread
# How far a break day's pooled log effect strays from the whole break's: the eve and the middle
# of a break differ widely.
PARENT_SPREAD = 0.5
COMMON_DAY_VARIANCE = 0.02  # log variance of a date's shock shared by all series (weather, news)
NO_EFFECT = 1.0


def weekday_baseline(
    y: np.ndarray, codes: np.ndarray, season_length: int = 7, offsets: np.ndarray | None = None
) -> np.ndarray:
    """Mean of the ordinary days at the same position within BASELINE_REACH cycles (nan: none).

    With `offsets`, a day's position is its reference day's (`t + offset`, moved by a cycle where
    that falls outside `y`), and the reference day itself counts when it is ordinary.
    """
    ordinary = codes == 0
    values = np.where(ordinary, y, 0.0)
    total = np.zeros(len(y))
    count = np.zeros(len(y))
    for k in range(1, BASELINE_REACH + 1):
        shift = k * season_length
        if shift >= len(y):
            break
        total[shift:] += values[:-shift]
        count[shift:] += ordinary[:-shift]
        total[:-shift] += values[shift:]
        count[:-shift] += ordinary[shift:]
    if offsets is not None and np.any(offsets):
        # An event day is never ordinary, so adding the position's own day only counts a
        # reference day other than the event day itself.
        at = reference_positions(np.asarray(offsets), len(y), season_length)
        total, count = total[at] + values[at], count[at] + ordinary[at]
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(count > 0, total / np.maximum(count, 1), np.nan)


def reference_positions(offsets: np.ndarray, length: int, season_length: int = 7) -> np.ndarray:
    """Index of each day's reference day among `length` days: `i + offset`, a cycle later where
    that is before the first day, a cycle earlier where past the last (the day itself where
    neither is among them)."""
    at = np.arange(len(offsets)) + offsets
    at = np.where(at < 0, at + season_length, at)
    at = np.where(at >= length, at - season_length, at)
    return np.where((at >= 0) & (at < length), at, np.arange(len(offsets))).astype(np.int64)


def with_events(
    forecast: np.ndarray, event_factors: np.ndarray, reference: np.ndarray
) -> np.ndarray:
    """An event-free forecast with its events: each day's reference day's forecast times the
    day's effect. `reference` indexes `forecast` (`reference_positions`)."""
    return np.asarray(forecast, dtype=float)[reference] * event_factors


@dataclass(frozen=True)
class EventDays:
    """A series' event days with a baseline: their code, day index, demand and baseline."""

    codes: np.ndarray
    index: np.ndarray
    y: np.ndarray
    baseline: np.ndarray

    @classmethod
    def of(
        cls,
        y: np.ndarray,
        codes: np.ndarray,
        season_length: int = 7,
        offsets: np.ndarray | None = None,
    ) -> EventDays:
        """`offsets`: each day's offset to its reference day (None: every day its own)."""
        baseline = weekday_baseline(y, codes, season_length, offsets)
        keep = (codes != 0) & np.isfinite(baseline)
        return cls(codes[keep], np.flatnonzero(keep), y[keep], baseline[keep])

    def before(self, cutoff: int) -> EventDays:
        keep = self.index < cutoff
        return EventDays(self.codes[keep], self.index[keep], self.y[keep], self.baseline[keep])


@dataclass(frozen=True)
class DaySums:
    """Event days summed by code and date: how many series-days, their demand and baseline."""

    codes: np.ndarray
    days: np.ndarray  # day ordinals
    n: np.ndarray
    y: np.ndarray
    baseline: np.ndarray

    def columns(self) -> tuple[np.ndarray, ...]:
        return self.codes, self.days, self.n, self.y, self.baseline

    @classmethod
    def concat(cls, parts: list[DaySums]) -> DaySums:
        if not parts:
            return day_sums([])
        return cls(
            *(np.concatenate(column) for column in zip(*(p.columns() for p in parts), strict=False))
        )


def day_sums(parts: list[tuple[int, EventDays]]) -> DaySums:
    """The event days of `parts` ((ordinal of a series' first day, its event days)) summed by
    code and date: rows that add up, so a pool is the same from one list or from many."""
    if not parts:
        empty = np.zeros(0, dtype=np.int64)
        return DaySums(empty, empty, empty, np.zeros(0), np.zeros(0))
    codes = np.concatenate([p.codes for _, p in parts]).astype(np.int64)
    days = np.concatenate([first + p.index for first, p in parts]).astype(np.int64)
    keys, at = np.unique(np.stack([codes, days], axis=1), axis=0, return_inverse=True)
    at = at.reshape(-1)

    def summed(values: np.ndarray) -> np.ndarray:
        return np.bincount(at, weights=values, minlength=len(keys))

    y = np.concatenate([p.y for _, p in parts])
    b = np.concatenate([p.baseline for _, p in parts])
    n = np.bincount(at, minlength=len(keys)).astype(np.int64)
    return DaySums(keys[:, 0], keys[:, 1], n, summed(y), summed(b))


@dataclass(frozen=True)
class PooledEvents:
    """Sums of demand and baseline over every series' event days, by code and date, for one
    choice of reference day.

    Cumulative over dates (day ordinals), so a backtest fold asks for the pool before its cutoff.
    Each day also counts toward its coarser codes (`coarser`: bit masks cleared in turn,
    `EventCalendar.coarser_masks`: the bridge, a break day's holiday status, its position), and
    a code's pooled effect is its own sums shrunk toward its coarser code's effect by their
    evidence: a break's fifth day seen on two dates leans on the whole break, New Year's Day on
    a weekend for the first time gets the New Year's Days seen before.
    """

    # code: (days, cum y, cum b, cum distinct days, cum series-days)
    by_code: dict[int, tuple[np.ndarray, ...]]
    coarser: tuple[int, ...] = ()
    spreads: tuple[tuple[int, float], ...] = ()  # (event, spread), `estimate_spreads`
    day_codes: frozenset[int] = frozenset()  # the codes days had (not only their coarser ones)

    @classmethod
    def from_series(
        cls, parts: list[tuple[int, EventDays]], coarser: tuple[int, ...] = ()
    ) -> PooledEvents:
        """`parts`: (ordinal of the series' first day, its event days) for every series."""
        return cls.from_sums(day_sums(parts), coarser)

    @classmethod
    def from_sums(cls, sums: DaySums, coarser: tuple[int, ...] = ()) -> PooledEvents:
        """From the sums of every series' event days by code and date (`day_sums`), which add up
        over any split of the series: concatenated in any order, they give the same pool."""
        codes, days, n, y, b = sums.columns()
        if not len(codes):
            return cls({}, coarser)
        groups = [codes]
        for mask in coarser:
            stripped = groups[-1] & ~mask
            groups.append(np.where(stripped & ~POSITION_MASK != 0, stripped, groups[-1]))
        by_code: dict[int, tuple[np.ndarray, ...]] = {}
        for code in np.unique(np.concatenate(groups)):
            if code == 0:
                continue
            mask = np.zeros(len(codes), dtype=bool)
            for group in groups:
                mask |= group == code
            order = np.lexsort((codes[mask], days[mask]))
            sorted_days = days[mask][order]
            new_day = np.ones(len(sorted_days), dtype=bool)
            new_day[1:] = sorted_days[1:] != sorted_days[:-1]
            by_code[int(code)] = (
                sorted_days,
                np.cumsum(y[mask][order]),
                np.cumsum(b[mask][order]),
                np.cumsum(new_day),
                np.cumsum(n[mask][order]),
            )
        return cls(by_code, coarser, day_codes=frozenset(np.unique(codes).tolist()))

    def _parent(self, code: int) -> int:
        for mask in self.coarser:
            # the coarser code must still name an event, not only a break day's position
            if code & mask and code & ~mask & ~POSITION_MASK:
                return code & ~mask
        return 0

    def log_ratio(self, code: int, before_day: int | None = None) -> float:
        """Pooled log effect of `code` from days before `before_day` (None: all): its own sums
        shrunk toward its coarser code's effect; 0 (no effect) where neither was seen."""
        parent = self._parent(code)
        prior = self.log_ratio(parent, before_day) if parent else None
        sums = self._sums(code, before_day)
        if sums is None:
            return prior if prior is not None else 0.0
        n, total_y, total_b, dates = sums
        estimate = float(np.log((total_y + 0.5) / (total_b + 0.5)))
        if prior is None:
            return estimate
        variance = 1.0 / (total_y + 0.5) + DAY_DISPERSION / n + COMMON_DAY_VARIANCE / dates
        weight = PARENT_SPREAD**2 / (PARENT_SPREAD**2 + variance)
        return weight * estimate + (1.0 - weight) * prior

    def _sums(self, code: int, before_day: int | None) -> tuple[int, float, float, int] | None:
        if code not in self.by_code:
            return None
        days, cum_y, cum_b, cum_dates, cum_n = self.by_code[code]
        n = len(days) if before_day is None else int(np.searchsorted(days, before_day))
        if n == 0 or cum_b[n - 1] <= 0:
            return None
        return int(cum_n[n - 1]), float(cum_y[n - 1]), float(cum_b[n - 1]), int(cum_dates[n - 1])

    def ratio(self, code: int, before_day: int | None = None) -> float:
        """Pooled effect of `code` from days before `before_day` (None: all); 1.0 if never seen."""
        return float(np.exp(self.log_ratio(code, before_day)))

    def event_of(self, code: int) -> int:
        """The code's coarsest event: its break position and bridge cleared."""
        for mask in self.coarser:
            if code & ~mask:
                code &= ~mask
        return code

    def spread(self, code: int) -> float:
        """How far one series' log effect of `code` strays from the pooled one, typically."""
        event = self.event_of(code)
        for known, spread in self.spreads:
            if known == event:
                return spread
        return POOLED_SPREAD


EMPTY_POOL = PooledEvents({})

REST_DAY, WEEKDAY = "rest_day", "weekday"  # the references a working-day holiday may have


@dataclass(frozen=True)
class EventPriors:
    """What all series tell one series about its events: the pooled effects measured with each
    reference (`REST_DAY`: a working-day holiday against the nearest rest day; `WEEKDAY`: against
    its own weekday) and the pooled preference for the rest day (the mean over series of
    `rest_preference`), the prior of each series' own choice."""

    rest_day: PooledEvents = EMPTY_POOL
    weekday: PooledEvents = EMPTY_POOL
    preference: float = 0.0

    def pool(self, reference: str) -> PooledEvents:
        return self.rest_day if reference == REST_DAY else self.weekday


EMPTY_PRIORS = EventPriors()


def rest_preference(rest: EventDays, weekday: EventDays, referenced: np.ndarray) -> float:
    """How much better one effect per event fits the series' working-day holidays measured
    against the rest day than against their own weekday: the drop in the sum of squared,
    variance-scaled deviations of the holidays' log ratios from their event's mean (> 0: the rest
    day fits better). `referenced`: per day of the series, True where the references differ."""
    days = np.intersect1d(rest.index[referenced[rest.index]], weekday.index)
    if len(days) < 2:
        return 0.0
    at_rest = np.searchsorted(rest.index, days)
    at_weekday = np.searchsorted(weekday.index, days)
    codes, y = rest.codes[at_rest], rest.y[at_rest]
    return _misfit(y, weekday.baseline[at_weekday], codes) - _misfit(
        y, rest.baseline[at_rest], codes
    )


def _misfit(y: np.ndarray, baseline: np.ndarray, codes: np.ndarray) -> float:
    """Sum over days of (log ratio - its event's weighted mean log ratio)^2 / its variance."""
    ratio = np.log((y + 0.5) / (baseline + 0.5))
    weight = 1.0 / (1.0 / (y + 0.5) + 1.0 / (baseline + 0.5) + DAY_DISPERSION)
    total = 0.0
    for code in np.unique(codes):
        mask = codes == code
        mean = np.average(ratio[mask], weights=weight[mask])
        total += float(np.sum(weight[mask] * (ratio[mask] - mean) ** 2))
    return total


def chosen_reference(own_preference: float, priors: EventPriors) -> str:
    """The series' own evidence plus the pooled preference (worth one typical series): the rest
    day where they favour it or are silent, its own weekday otherwise."""
    return REST_DAY if own_preference + priors.preference >= 0 else WEEKDAY


@dataclass(frozen=True)
class SpreadRows:
    """Per series and code, the sums of its event days: what `estimate_spreads` needs of each
    series, small enough to gather from every bucket of series."""

    series: np.ndarray  # any key that tells series apart
    codes: np.ndarray
    y: np.ndarray
    baseline: np.ndarray
    n: np.ndarray

    def columns(self) -> tuple[np.ndarray, ...]:
        return self.series, self.codes, self.y, self.baseline, self.n

    @classmethod
    def concat(cls, parts: list[SpreadRows]) -> SpreadRows:
        if not parts:
            return spread_rows([])
        return cls(
            *(np.concatenate(column) for column in zip(*(p.columns() for p in parts), strict=False))
        )

    def of_series(self, keep: np.ndarray) -> SpreadRows:
        """The rows of the series for which `keep` (indexed by series key) is True."""
        mask = keep[self.series]
        return SpreadRows(*(column[mask] for column in self.columns()))


def spread_rows(parts: list[EventDays], first_key: int = 0) -> SpreadRows:
    """Each part's (series') sums per code; its key is `first_key` + its position."""
    columns: list[list[float]] = [[], [], [], [], []]
    for i, part in enumerate(parts):
        for code in np.unique(part.codes):
            days = part.codes == code
            row = (
                first_key + i,
                int(code),
                part.y[days].sum(),
                part.baseline[days].sum(),
                days.sum(),
            )
            for column, value in zip(columns, row, strict=True):
                column.append(value)
    kinds = (np.int64, np.int64, float, float, np.int64)
    return SpreadRows(*(np.asarray(c, dtype=k) for c, k in zip(columns, kinds, strict=True)))


def estimate_spreads(parts: list[EventDays], pool: PooledEvents) -> tuple[tuple[int, float], ...]:
    return spreads_from_rows(spread_rows(parts), pool)


def spreads_from_rows(rows: SpreadRows, pool: PooledEvents) -> tuple[tuple[int, float], ...]:
    """Per event (a code with its break position and bridge cleared: "obon", "public_holiday"),
    the standard deviation of the series' log effects around the pooled ones beyond what their
    own noise explains (method of moments, precision-weighted), between MIN_SPREAD and
    MAX_SPREAD: where series react alike, a small series leans on the pool; where some lift and
    others cut, each keeps more of its own. An event seen by fewer than MIN_SPREAD_SERIES series
    keeps POOLED_SPREAD."""
    by_event: dict[int, list[tuple[int, float, float, float]]] = {}
    for key, code, total_y, total_b, n in zip(*rows.columns(), strict=True):
        by_event.setdefault(pool.event_of(int(code)), []).append(
            (
                int(key),
                float(np.log((total_y + 0.5) / (total_b + 0.5))),
                1.0 / (total_y + 0.5) + DAY_DISPERSION / int(n),
                pool.log_ratio(int(code)),
            )
        )
    out = []
    for event, items in sorted(by_event.items()):
        if len({i for i, *_ in items}) < MIN_SPREAD_SERIES:
            continue
        _, estimates, variances, pooled = (np.array(column) for column in zip(*items, strict=True))
        deviation = (estimates - pooled) ** 2 - variances
        spread = POOLED_SPREAD
        for _ in range(3):  # the weights depend on the spread: a few fixed-point steps
            weight = 1.0 / (variances + spread**2) ** 2
            spread = float(np.sqrt(max(np.sum(weight * deviation) / np.sum(weight), 0.0)))
            spread = min(max(spread, MIN_SPREAD), MAX_SPREAD)
        out.append((event, spread))
    return tuple(out)


@dataclass(frozen=True)
class EffectSource:
    """One event's effect on a series and where it comes from: the pooled effect, the series'
    own estimate (None: the series never saw the event) and the own estimate's weight."""

    effect: float
    pooled: float
    own: float | None
    own_weight: float

    @property
    def source(self) -> str:
        """'own' where the series' own days outweigh the pool, else 'pooled'."""
        return "own" if self.own_weight >= 0.5 else "pooled"


def effect_sources(
    own: EventDays, pool: PooledEvents, codes: np.ndarray, before_day: int | None
) -> dict[int, EffectSource]:
    """Every non-zero code in `codes`: own estimate and pooled one combined in log space by
    precision (Poisson count plus day-to-day dispersion for the own, the event's spread between
    series for the pool)."""
    out = {}
    for code in np.unique(codes[codes != 0]):
        prior = pool.log_ratio(int(code), before_day)
        mask = own.codes == code
        n_days = int(mask.sum())
        if n_days == 0:
            out[int(code)] = EffectSource(float(np.exp(prior)), float(np.exp(prior)), None, 0.0)
            continue
        total_y, total_b = float(own.y[mask].sum()), float(own.baseline[mask].sum())
        estimate = np.log((total_y + 0.5) / (total_b + 0.5))
        own_precision = 1.0 / (1.0 / (total_y + 0.5) + DAY_DISPERSION / n_days)
        prior_precision = 1.0 / pool.spread(int(code)) ** 2
        weight = own_precision / (own_precision + prior_precision)
        combined = weight * estimate + (1.0 - weight) * prior
        out[int(code)] = EffectSource(
            float(np.exp(combined)), float(np.exp(prior)), float(np.exp(estimate)), float(weight)
        )
    return out


def shrunk_effects(
    own: EventDays, pool: PooledEvents, codes: np.ndarray, before_day: int | None
) -> dict[int, float]:
    """Effect of every non-zero code in `codes`: own estimate and pooled one, precision-weighted."""
    return {code: s.effect for code, s in effect_sources(own, pool, codes, before_day).items()}


def factors(codes: np.ndarray, effects: dict[int, float]) -> np.ndarray:
    """The multiplicative effect of each day (1 on ordinary days and unknown codes)."""
    out = np.ones(len(codes))
    for code, effect in effects.items():
        out[codes == code] = effect
    return out


def adjusted_history(y: np.ndarray, codes: np.ndarray, effects: dict[int, float]) -> np.ndarray:
    """The history as if no event had happened: event days get their weekday baseline.

    Where an event day has no ordinary neighbour of its weekday, its demand divided by the effect.
    The baseline only uses days of `y`, so a fold's adjusted window never sees its test days.
    """
    events = codes != 0
    if not events.any():
        return y
    baseline = weekday_baseline(y, codes)
    scaled = y / np.maximum(factors(codes, effects), 1e-6)
    return np.where(events, np.where(np.isfinite(baseline), baseline, scaled), y)
