"""The event pool from per-bucket statistics: added up over any split of the series into buckets
and instances, it is the pool of all the series at once."""

from __future__ import annotations

import datetime as dt
from dataclasses import replace

import numpy as np
import pytest

from local_run.demo_data import demo_daily_counts
from pipeline_code import shards
from pipeline_code.forecasting import daily_settings
from pipeline_code.forecasting import event_pool as event_pool_module
from pipeline_code.forecasting.event_effects import REST_DAY, WEEKDAY, EventPriors, spread_rows
from pipeline_code.forecasting.event_pool import bucket_statistics, combine
from pipeline_code.forecasting.selection import pool_events
from pipeline_code.forecasting.series_table import series_from_frame

END = dt.date(2026, 5, 20)


@pytest.fixture(scope="module")
def series():
    counts = demo_daily_counts(END, years=2.0, n_models=24, seed=5)
    return series_from_frame(counts, END, "1D")


def _settings():
    return daily_settings(horizon=28)


def _by_bucket(series) -> list[list]:
    buckets: dict[int, list] = {}
    for s in series:
        buckets.setdefault(shards.bucket_of(s.series_id), []).append(s)
    return [buckets[b] for b in sorted(buckets)]


def _assert_same(a: EventPriors, b: EventPriors) -> None:
    assert a.preference == pytest.approx(b.preference, abs=1e-12)
    for ref in (REST_DAY, WEEKDAY):
        pa, pb = a.pool(ref), b.pool(ref)
        assert pa.by_code.keys() == pb.by_code.keys() and pa.day_codes == pb.day_codes
        for code in pa.by_code:
            for before in (None, END.toordinal() - 200):
                assert pa.log_ratio(code, before) == pytest.approx(
                    pb.log_ratio(code, before), abs=1e-12
                )
        assert [e for e, _ in pa.spreads] == [e for e, _ in pb.spreads]
        np.testing.assert_allclose([s for _, s in pa.spreads], [s for _, s in pb.spreads])


def test_the_buckets_statistics_add_up_to_the_pool_of_all_series(series) -> None:
    settings = _settings()
    whole = pool_events(series, settings)
    parts = [bucket_statistics(bucket, settings) for bucket in _by_bucket(series)]
    assert len(parts) > 5
    _assert_same(combine(parts, settings), whole)
    assert whole.pool(REST_DAY).spreads, "the demo's events have spreads to compare"


def test_past_the_sample_size_the_spreads_come_from_the_first_buckets_only(
    series, monkeypatch: pytest.MonkeyPatch
) -> None:
    settings = _settings()
    parts = [bucket_statistics(bucket, settings) for bucket in _by_bucket(series)]
    monkeypatch.setattr(event_pool_module, "SPREAD_SAMPLE_SERIES", 10)
    sampled = combine(parts, settings)
    taken = np.cumsum([0] + [p.series for p in parts])[:-1] < 10
    assert 1 < taken.sum() < len(parts)
    # The later buckets' spread rows emptied: the same result, so they were never read.
    emptied = [
        part if keep else replace(part, spreads={k: spread_rows([]) for k in part.spreads})
        for part, keep in zip(parts, taken, strict=True)
    ]
    _assert_same(combine(emptied, settings), sampled)
    # Their pooled sums still count.
    whole = pool_events(series, settings)
    code = next(iter(whole.rest_day.by_code))
    assert sampled.rest_day.log_ratio(code) == pytest.approx(whole.rest_day.log_ratio(code))
