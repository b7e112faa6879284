"""The calendar events' pooled effects, from statistics each bucket of series computes alone.

PreProc runs on every instance, each over its own buckets of series, and no instance sees all
series; yet every series' event effects shrink toward one pool over all of them. So each bucket
writes `bucket_statistics`: its event days summed by code and date (`DaySums`, which add up), its
series' preferences for the rest-day reference (a sum and a count) and per series and code the
sums the spread between series is estimated from (`SpreadRows`). `combine` adds the buckets'
statistics up in bucket order, so the pool is the same for any instance count and equals
`selection.pool_events` over all the series at once.

The spreads need each series' rows; past SPREAD_SAMPLE_SERIES series, they come from the
buckets in bucket order until that many series are in (a fixed sample, the same for any instance
count: the buckets are a hash of the series' names), so every Train instance reads a bounded
amount whatever the number of series.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import numpy as np

from pipeline_code.forecasting import ForecastSettings, SeriesData
from pipeline_code.forecasting.event_effects import (
    EMPTY_PRIORS,
    REST_DAY,
    WEEKDAY,
    DaySums,
    EventPriors,
    PooledEvents,
    SpreadRows,
    chosen_reference,
    day_sums,
    spread_rows,
    spreads_from_rows,
)

SPREAD_SAMPLE_SERIES = 20_000
REFERENCES = (REST_DAY, WEEKDAY)


@dataclass(frozen=True)
class EventStatistics:
    """One bucket's share of the pool, for each reference a working-day holiday may have."""

    sums: dict[str, DaySums]
    spreads: dict[str, SpreadRows]  # series keyed by their position in `preferences`
    preferences: np.ndarray  # each series' own preference for the rest day

    @property
    def series(self) -> int:
        return len(self.preferences)


def bucket_statistics(series: list[SeriesData], settings: ForecastSettings) -> EventStatistics:
    """The statistics of `series` (one bucket's) that `combine` adds up."""
    from pipeline_code.forecasting.selection import own_events

    owned = []
    for s in series:
        days = own_events(s, settings)
        if days is not None and s.start is not None:
            owned.append((s.start.toordinal(), days))
    return EventStatistics(
        sums={ref: day_sums([(first, o.days(ref)) for first, o in owned]) for ref in REFERENCES},
        spreads={ref: spread_rows([o.days(ref) for _, o in owned]) for ref in REFERENCES},
        preferences=np.array([o.preference for _, o in owned], dtype=float),
    )


def combine(parts: list[EventStatistics], settings: ForecastSettings) -> EventPriors:
    """The pooled effects with either reference, the pooled preference and the spreads between
    series, from every bucket's statistics in bucket order."""
    calendar = settings.calendar
    count = sum(part.series for part in parts)
    if not count or calendar is None:
        return EMPTY_PRIORS
    coarser = calendar.coarser_masks()
    pools = {
        ref: PooledEvents.from_sums(DaySums.concat([p.sums[ref] for p in parts]), coarser)
        for ref in REFERENCES
    }
    preference = float(sum(p.preferences.sum() for p in parts) / count)
    priors = EventPriors(pools[REST_DAY], pools[WEEKDAY], preference)
    chosen = _chosen_rows(_spread_sample(parts), priors)
    return EventPriors(
        replace(pools[REST_DAY], spreads=spreads_from_rows(chosen, pools[REST_DAY])),
        replace(pools[WEEKDAY], spreads=spreads_from_rows(chosen, pools[WEEKDAY])),
        preference,
    )


def _spread_sample(parts: list[EventStatistics]) -> list[EventStatistics]:
    taken, count = [], 0
    for part in parts:
        if count >= SPREAD_SAMPLE_SERIES:
            break
        taken.append(part)
        count += part.series
    return taken


def _chosen_rows(parts: list[EventStatistics], priors: EventPriors) -> SpreadRows:
    """Each series' rows measured with the reference it chooses, keyed apart across buckets."""
    rows, first = [], 0
    for part in parts:
        rest = np.array(
            [chosen_reference(p, priors) == REST_DAY for p in part.preferences], dtype=bool
        )
        for ref, keep in ((REST_DAY, rest), (WEEKDAY, ~rest)):
            taken = part.spreads[ref].of_series(keep)
            rows.append(replace(taken, series=taken.series + first))
        first += part.series
    return SpreadRows.concat(rows)
