"""Effects of calendar events on one series, shrunk toward the effect pooled over all series.

An event's effect is multiplicative: the ratio of demand on its days to its reference day's
ordinary demand (the mean of the reference weekday's ordinary days up to three weeks either side,
the "baseline"). The reference is the day itself, except for a public holiday on a working day,
whose reference is the nearest Sunday (`EventCalendar.reference_offsets`). Ratios pool across
series of any size, where additive effects would not.

A series' own estimate of an event is the ratio of its sums, `(Y + 0.5) / (B + 0.5)` over the
event's past days; it is combined with the pooled ratio (all series' sums) in log space, each
weighted by its precision: the own estimate's variance is the Poisson part `1 / Y` plus day-to-day
over-dispersion divided by the number of days, the pooled one's a fixed spread of how differently
series react. A series that has never seen an event (a model launched in spring at the year end)
gets the pooled effect; a big series with years of history, nearly its own.

Candidates fit the event-adjusted history (event days replaced by their own weekday's baseline)
and a future event day is forecast as the candidate's forecast of its reference day times the
effect (`with_events`), so every candidate and every backtest fold knows the calendar. A fold's
effects use only days before its cutoff, its own and the pool's.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

BASELINE_REACH = 3  # cycles either side that the baseline of an event day averages
DAY_DISPERSION = 0.1  # day-to-day variance of log demand beyond Poisson (gamma-Poisson counts)
POOLED_SPREAD = 0.2  # standard deviation of log effects between series around the pooled one
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
class PooledEvents:
    """Sums of demand and baseline over every series' event days, by code and date.

    Cumulative over dates (day ordinals), so a backtest fold asks for the pool before its cutoff.
    """

    by_code: dict[int, tuple[np.ndarray, np.ndarray, np.ndarray]]  # code: (days, cum y, cum b)

    @classmethod
    def from_series(cls, parts: list[tuple[int, EventDays]]) -> PooledEvents:
        """`parts`: (ordinal of the series' first day, its event days) for every series."""
        if not parts:
            return cls({})
        codes = np.concatenate([p.codes for _, p in parts])
        days = np.concatenate([first + p.index for first, p in parts])
        y = np.concatenate([p.y for _, p in parts])
        b = np.concatenate([p.baseline for _, p in parts])
        by_code = {}
        for code in np.unique(codes):
            mask = codes == code
            order = np.argsort(days[mask], kind="stable")
            by_code[int(code)] = (
                days[mask][order],
                np.cumsum(y[mask][order]),
                np.cumsum(b[mask][order]),
            )
        return cls(by_code)

    def ratio(self, code: int, before_day: int | None = None) -> float:
        """Pooled effect of `code` from days before `before_day` (None: all); 1.0 if never seen."""
        if code not in self.by_code:
            return NO_EFFECT
        days, cum_y, cum_b = self.by_code[code]
        n = len(days) if before_day is None else int(np.searchsorted(days, before_day))
        if n == 0 or cum_b[n - 1] <= 0:
            return NO_EFFECT
        return float((cum_y[n - 1] + 0.5) / (cum_b[n - 1] + 0.5))


EMPTY_POOL = PooledEvents({})


def shrunk_effects(
    own: EventDays, pool: PooledEvents, codes: np.ndarray, before_day: int | None
) -> dict[int, float]:
    """Effect of every non-zero code in `codes`: own estimate and pooled one, precision-weighted."""
    effects = {}
    for code in np.unique(codes[codes != 0]):
        prior = np.log(pool.ratio(int(code), before_day))
        mask = own.codes == code
        n_days = int(mask.sum())
        if n_days == 0:
            effects[int(code)] = float(np.exp(prior))
            continue
        total_y, total_b = float(own.y[mask].sum()), float(own.baseline[mask].sum())
        estimate = np.log((total_y + 0.5) / (total_b + 0.5))
        own_precision = 1.0 / (1.0 / (total_y + 0.5) + DAY_DISPERSION / n_days)
        prior_precision = 1.0 / POOLED_SPREAD**2
        combined = (own_precision * estimate + prior_precision * prior) / (
            own_precision + prior_precision
        )
        effects[int(code)] = float(np.exp(combined))
    return effects


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
