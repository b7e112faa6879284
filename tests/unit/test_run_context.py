"""The rule that turns ExecutionDate (a date, a scheduled time or nothing) into the data day."""

from __future__ import annotations

import argparse
import datetime as dt
import re

import pytest

from pipeline_code.run_context import (
    ExecutionDateError,
    add_common_arguments,
    context_from,
    parse_timestamp,
    resolve_execution_date,
)

TOKYO = "Asia/Tokyo"


def test_a_plain_date_is_taken_as_given() -> None:
    assert resolve_execution_date("2026-11-26", "2026-11-27T05:00:00Z", TOKYO) == dt.date(
        2026, 11, 26
    )


def test_scheduled_time_gives_the_day_before_in_the_schedule_time_zone() -> None:
    # 03:00 in Tokyo on the 27th is 18:00 UTC on the 26th: the data day is the 26th.
    assert resolve_execution_date("2026-11-26T18:00:00Z", "", TOKYO) == dt.date(2026, 11, 26)


@pytest.mark.parametrize(
    ("scheduled_utc", "expected"),
    [
        ("2026-11-26T14:59:59Z", dt.date(2026, 11, 25)),  # 23:59:59 on the 26th in Tokyo
        ("2026-11-26T15:00:00Z", dt.date(2026, 11, 26)),  # 00:00:00 on the 27th in Tokyo
    ],
)
def test_the_day_boundary_is_local_midnight(scheduled_utc: str, expected: dt.date) -> None:
    assert resolve_execution_date(scheduled_utc, "", TOKYO) == expected


def test_the_same_instant_gives_another_day_in_another_zone() -> None:
    assert resolve_execution_date("2026-11-26T15:00:00Z", "", "UTC") == dt.date(2026, 11, 25)


def test_an_offset_timestamp_is_converted_not_truncated() -> None:
    assert resolve_execution_date("2026-11-27T03:00:00+09:00", "", TOKYO) == dt.date(2026, 11, 26)


def test_empty_parameter_falls_back_to_the_execution_start_time() -> None:
    assert resolve_execution_date("", "2026-11-26T18:30:12.345Z", TOKYO) == dt.date(2026, 11, 26)
    assert resolve_execution_date("  ", "2026-11-26T18:30:12.345Z", TOKYO) == dt.date(2026, 11, 26)


@pytest.mark.parametrize(
    "start_time",
    [
        "2026-11-26T18:30:12Z",
        "2026-11-26T18:30:12.3Z",
        "2026-11-26T18:30:12.345Z",
        "2026-11-26T18:30:12.3456789Z",
        "2026-11-26T18:30:12.345678912+00:00",
        "2026-11-27T03:30:12.1234567+09:00",
        "2026-11-27T03:30:12.12+0900",
        "2026-11-26T13:30:12.5-05:00",
        "2026-11-26T18:30:12.345",
        "2026-11-26 18:30",
    ],
)
def test_start_times_of_any_precision_and_zone_give_the_same_day(start_time: str) -> None:
    assert resolve_execution_date("", start_time, TOKYO) == dt.date(2026, 11, 26)


def test_fractions_beyond_microseconds_are_cut_not_rounded() -> None:
    stamp = parse_timestamp("2026-11-26T23:59:59.9999999Z")
    assert stamp == dt.datetime(2026, 11, 26, 23, 59, 59, 999999, tzinfo=dt.UTC)


@pytest.mark.parametrize(
    "raw", ["2026-11-26T25:00:00Z", "2026-11-26T18:00:00+9", "2026-11-26T18:00:00.Z"]
)
def test_malformed_timestamps_are_named(raw: str) -> None:
    with pytest.raises(ExecutionDateError, match=re.escape(repr(raw))):
        resolve_execution_date(raw, "", TOKYO)


@pytest.mark.parametrize("raw", ["2026-13-01", "yesterday", "2026/11/26", "26-11-2026T00:00"])
def test_unreadable_values_are_named_in_the_error(raw: str) -> None:
    with pytest.raises(ExecutionDateError, match=repr(raw).replace("/", "/")):
        resolve_execution_date(raw, "", TOKYO)


def test_nothing_to_resolve_from_is_an_error() -> None:
    with pytest.raises(ExecutionDateError, match="empty"):
        resolve_execution_date("", "", TOKYO)


def test_context_places_the_run_folder_under_the_execution_id() -> None:
    parser = argparse.ArgumentParser()
    add_common_arguments(parser)
    args = parser.parse_args(
        [
            "--execution-date", "2026-11-26T18:00:00Z",
            "--timezone", TOKYO,
            "--execution-id", "abc123",
            "--data-root", "s3://bucket/",
        ]
    )  # fmt: skip
    ctx = context_from(args)
    assert ctx.execution_date == dt.date(2026, 11, 26)
    assert ctx.run_dir == "s3://bucket/runs/abc123"
    assert ctx.path("extract", "data.parquet") == "s3://bucket/runs/abc123/extract/data.parquet"
    assert not ctx.is_local
