"""The source contract's counting rules, on rows as the Extract query returns them."""

from __future__ import annotations

import datetime as dt

import pandas as pd
import pytest

from pipeline_code import source_contract
from pipeline_code.errors import StepError
from pipeline_code.source_contract import SourceFile, SourceScan

START, END = dt.date(2025, 3, 1), dt.date(2025, 3, 31)
# "Ridge Wagon" in full-width letters and an ideographic space, as Japanese input may give it.
FULL_WIDTH = "".join("\u3000" if c == " " else chr(ord(c) + 0xFEE0) for c in "Ridge Wagon")
NAIVE, AWARE = "/lake/applications/dt=2025-03-31/naive.parquet", "/lake/aware.parquet"


def _scan(days: list[dt.date] | None = None) -> SourceScan:
    files = [SourceFile(NAIVE, END, aware=False), SourceFile(AWARE, END, aware=True)]
    files += [SourceFile(f"/lake/{day}.parquet", day, aware=False) for day in days or []]
    return SourceScan(table_root="/lake/applications", files=files, first_day=START)


def _rows(*rows: tuple[str, str, str, str]) -> pd.DataFrame:
    frame = pd.DataFrame(rows, columns=list(source_contract.ROW_COLUMNS))
    frame["applied_at"] = pd.to_datetime(frame["applied_at"])
    return frame


def _count(frame: pd.DataFrame) -> tuple[dict[tuple[str, dt.date], float], dict]:
    counts, found = source_contract.count_applications(frame, _scan(), "Asia/Tokyo", START, END)
    return {(r.series_id, r.ds): r.y for r in counts.itertuples()}, found


def test_aware_timestamps_are_instants_and_naive_ones_are_local_time() -> None:
    counts, _ = _count(
        _rows(
            # 15:30 UTC on the 30th is 00:30 on the 31st in Tokyo.
            ("a1", "2025-03-30 15:30:00", "Nova", AWARE),
            # A naive 00:30 is already Tokyo time.
            ("a2", "2025-03-31 00:30:00", "Nova", NAIVE),
            # 14:30 UTC on the 30th is 23:30 on the 30th in Tokyo.
            ("a3", "2025-03-30 14:30:00", "Nova", AWARE),
        )
    )
    assert counts == {("Nova", dt.date(2025, 3, 30)): 1.0, ("Nova", END): 2.0}


def test_names_are_nfkc_normalised_and_trimmed_before_counting() -> None:
    counts, found = _count(
        _rows(
            ("a1", "2025-03-31 10:00:00", "Ridge Wagon", NAIVE),
            ("a2", "2025-03-31 11:00:00", "Ridge Wagon ", NAIVE),
            ("a3", "2025-03-31 12:00:00", FULL_WIDTH, NAIVE),
        )
    )
    assert counts == {("Ridge Wagon", END): 3.0}
    assert found["normalised_names"] == {
        "Ridge Wagon ": "Ridge Wagon",
        FULL_WIDTH: "Ridge Wagon",
    }


def test_each_application_counts_once_and_conflicts_are_counted() -> None:
    counts, found = _count(
        _rows(
            ("a1", "2025-03-31 10:00:00", "Nova", NAIVE),
            ("a1", "2025-03-31 10:00:00", "Nova", NAIVE),
            ("a1", "2025-03-31 10:00:00", "Umi", AWARE),  # same id, another model: a conflict
            ("a2", "2025-03-31 11:00:00", "Nova", NAIVE),
        )
    )
    assert counts == {("Nova", END): 2.0}
    assert found["duplicates"]["rows"] == 2
    assert found["duplicates"]["conflicting"] == 1


def test_rows_without_a_key_and_outside_the_window_are_not_counted() -> None:
    counts, found = _count(
        _rows(
            ("a1", "2025-03-31 10:00:00", "  ", NAIVE),
            ("a2", "2025-02-28 10:00:00", "Nova", NAIVE),
            ("a3", "2025-03-31 10:00:00", "Nova", NAIVE),
        )
    )
    assert counts == {("Nova", END): 1.0}
    assert (found["incomplete_rows"], found["outside_window_rows"]) == (1, 1)


def test_missing_days_start_at_the_tables_first_partition() -> None:
    present = [END - dt.timedelta(days=i) for i in range(1, 10)]
    scan = _scan(present)
    scan.first_day = END - dt.timedelta(days=12)
    assert source_contract.missing_days(scan, START, END) == [
        END - dt.timedelta(days=12),
        END - dt.timedelta(days=11),
        END - dt.timedelta(days=10),
    ]
    assert source_contract.day_ranges(source_contract.missing_days(scan, START, END)) == (
        "2025-03-19..2025-03-21 (3 days)"
    )


def test_too_many_recent_missing_days_fail_naming_them() -> None:
    scan = _scan([END - dt.timedelta(days=i) for i in (1, 2, 5)])
    scan.first_day = END - dt.timedelta(days=5)
    with pytest.raises(StepError, match=r"2 of the last 28 days .*2025-03-27..2025-03-28"):
        source_contract.check_missing_days(scan, START, END, max_missing=1, recent_window=28)
    assert source_contract.check_missing_days(scan, START, END, 2, 28) == [
        dt.date(2025, 3, 27),
        dt.date(2025, 3, 28),
    ]
