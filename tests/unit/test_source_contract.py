"""The source contract's counting rules, run by the real SQL in DuckDB over Parquet files: time
zones, name folding, one count per application, rows that cannot be counted, and the volume of
a day against its nearby same weekdays."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from pipeline_code import source_contract, tables
from pipeline_code.errors import StepError
from pipeline_code.source_contract import SourceFile, SourceScan
from pipeline_code.steps import extract

START, END = dt.date(2025, 3, 1), dt.date(2025, 3, 31)
# "Ridge Wagon" in full-width letters and an ideographic space, as Japanese input may give it.
FULL_WIDTH = "".join("\u3000" if c == " " else chr(ord(c) + 0xFEE0) for c in "Ridge Wagon")


def _write(lake: Path, day: dt.date, name: str, rows: list[tuple], aware: bool = False) -> None:
    """A source file of `rows` (application_id, applied_at text, car_model) in dt=`day`."""
    stamps = pa.array(
        [dt.datetime.fromisoformat(at) for _, at, _ in rows],
        pa.timestamp("us", tz="UTC" if aware else None),
    )
    frame = pa.table(
        {
            "application_id": [i for i, _, _ in rows],
            "applied_at": stamps,
            "car_model": [m for _, _, m in rows],
            "plan": ["3y"] * len(rows),
            "channel": ["web"] * len(rows),
            "prefecture": ["Tokyo"] * len(rows),
        }
    )
    folder = lake / "applications" / f"dt={day}"
    folder.mkdir(parents=True, exist_ok=True)
    pq.write_table(frame, folder / name)


def _figures(lake: Path) -> tuple[dict[tuple[str, dt.date], float], dict, dict]:
    """Counts per (series, day), the contract's figures and each day's applications."""
    scan = source_contract.scan_source(str(lake / "applications"), tables.APPLICATIONS, START, END)
    engine = extract.LocalEngine([f.uri for f in scan.files], "db", "applications")
    try:
        source = extract.QuerySource("db", "applications", START, END, "Asia/Tokyo")
        source, found, totals = extract.query_figures(engine, scan, source)
        counts = engine.query(extract.build_query(extract.COUNTS_SQL, source))
    finally:
        engine.close()
    by_key = {(r.series_id, pd.Timestamp(r.ds).date()): r.y for r in counts.itertuples(index=False)}
    return by_key, found, totals


def test_aware_timestamps_are_instants_and_naive_ones_are_local_time(tmp_path: Path) -> None:
    # 15:30 UTC on the 30th is 00:30 on the 31st in Tokyo; 14:30 UTC is 23:30 on the 30th.
    aware = [("a1", "2025-03-30 15:30:00", "Nova"), ("a3", "2025-03-30 14:30:00", "Nova")]
    _write(tmp_path, END, "aware.parquet", aware, aware=True)
    # A naive 00:30 is already Tokyo time.
    _write(tmp_path, END, "naive.parquet", [("a2", "2025-03-31 00:30:00", "Nova")])
    counts, _, _ = _figures(tmp_path)
    assert counts == {("Nova", dt.date(2025, 3, 30)): 1.0, ("Nova", END): 2.0}


def test_a_day_whose_every_file_is_aware_is_converted_by_day(tmp_path: Path) -> None:
    _write(tmp_path, END, "aware.parquet", [("a1", "2025-03-30 15:30:00", "Nova")], aware=True)
    scan = source_contract.scan_source(
        str(tmp_path / "applications"), tables.APPLICATIONS, START, END
    )
    assert scan.aware_by_day() == ([END], [])
    assert _figures(tmp_path)[0] == {("Nova", END): 1.0}


def test_spellings_of_one_name_fold_into_its_most_used_one(tmp_path: Path) -> None:
    spellings = [
        "Ridge Wagon",
        "Ridge Wagon",
        "Ridge Wagon ",
        FULL_WIDTH,
        "RIDGE WAGON",
        "Ridge\u200bWagon".replace("\u200b", " \u200b"),
        "Ridge Wagon\x00",
        "\tRidge  Wagon\n",
    ]
    rows = [(f"a{i}", "2025-03-31 10:00:00", name) for i, name in enumerate(spellings)]
    _write(tmp_path, END, "part-0.parquet", rows)
    counts, found, _ = _figures(tmp_path)
    assert counts == {("Ridge Wagon", END): float(len(spellings))}
    assert sorted(found["folded_names"]["Ridge Wagon"]) == sorted(set(spellings) - {"Ridge Wagon"})


def test_the_most_used_spelling_names_the_series_whatever_its_case() -> None:
    spellings = pd.DataFrame(
        {"raw_name": ["NOVA EV", "Nova EV", "nova ev ", None], "row_count": [50, 3, 1, 9]}
    )
    folded = source_contract.fold_names(spellings)
    assert folded.variants == {"Nova EV": "NOVA EV", "nova ev ": "NOVA EV"}


@pytest.mark.parametrize(
    ("raw", "normal"),
    [
        (FULL_WIDTH, "Ridge Wagon"),
        ("  Ridge\u00a0Wagon\u3000", "Ridge Wagon"),
        ("Ridge\u200b\ufeffWagon", "RidgeWagon"),
        ("Ridge\x00 Wagon\x07", "Ridge Wagon"),
        ("Ridge\t\nWagon", "Ridge Wagon"),
        ("ｶﾞ", "ガ"),  # half-width katakana and its voicing mark compose
        ("e\u0301", "é"),
        ("🚗 Kei", "🚗 Kei"),
        ("\u200b \x00", ""),
    ],
)
def test_normalise_name(raw: str, normal: str) -> None:
    assert source_contract.normalise_name(raw) == normal


def test_each_application_counts_once_a_day_and_repeats_are_reported(tmp_path: Path) -> None:
    _write(
        tmp_path,
        END,
        "part-0.parquet",
        [
            ("a1", "2025-03-31 10:00:00", "Nova"),
            ("a1", "2025-03-31 10:00:00", "Nova"),
            ("a2", "2025-03-31 11:00:00", "Nova"),
        ],
    )
    _write(tmp_path, END, "part-1.parquet", [("a1", "2025-03-31 10:00:00", "Nova")])  # again
    counts, found, totals = _figures(tmp_path)
    assert counts == {("Nova", END): 2.0}
    assert totals == {END: 2}
    assert found["repeated_rows"] == 2
    assert found["rows_read"] == 4


def test_rows_that_cannot_be_counted_are_named_by_file(tmp_path: Path) -> None:
    _write(
        tmp_path,
        END,
        "part-0.parquet",
        [
            ("a1", "2025-03-31 10:00:00", "  "),
            ("", "2025-03-31 10:00:00", "Nova"),
            ("  ", "2025-03-31 10:00:00", "Nova"),
            ("a2", "2025-02-28 10:00:00", "Nova"),
            ("a3", "1900-01-01 00:00:00", "Nova"),
            ("a4", "9999-12-31 23:59:59", "Nova"),
            ("a5", "2026-03-31 10:00:00", "Nova"),  # a year ahead
            ("a6", "2025-03-31 10:00:00", "Nova"),
        ],
    )
    counts, found, _ = _figures(tmp_path)
    assert counts == {("Nova", END): 1.0}
    assert found["blank_names"]["rows"] == 1 and found["blank_ids"]["rows"] == 2
    outside = found["outside_window"]
    assert outside["rows"] == 4
    assert (outside["first"], outside["last"]) == ("1900-01-01 00:00:00", "9999-12-31 23:59:59")
    scan = SourceScan(table_root=str(tmp_path), files=[], first_day=START)
    lines = "\n".join(source_contract.warnings(found, scan, [], []))
    assert (
        "2 rows without an application_id were not counted (in dt=2025-03-31/part-0.parquet"
        in lines
    )
    assert "4 rows have an applied_at outside their window 2025-03-01..2025-03-31" in lines
    assert "column applied_at, in dt=2025-03-31/part-0.parquet (4)" in lines


def _steady_totals(days: int = 60, level: int = 400) -> dict[dt.date, int]:
    return {END - dt.timedelta(days=i): level + 10 * (i % 7) for i in range(days)}


def test_a_day_far_below_its_weekdays_is_low_and_a_quiet_small_day_is_not() -> None:
    totals = _steady_totals()
    totals[END - dt.timedelta(days=10)] = 0  # files that hold no rows
    totals[END - dt.timedelta(days=20)] = 80  # a fifth of a load
    low = source_contract.low_days(totals, list(totals), 0.5)
    assert [d.day for d in low] == [END - dt.timedelta(days=20), END - dt.timedelta(days=10)]
    assert "holds 0 applications, 0% of the median" in low[1].describe()
    small = {day: 4 for day in totals} | {END - dt.timedelta(days=10): 1}
    assert source_contract.low_days(small, list(small), 0.5) == []  # Poisson noise at 4 a day


def test_a_calendar_event_is_not_judged_by_volume() -> None:
    totals = _steady_totals()
    holiday = END - dt.timedelta(days=12)
    totals[holiday] = 20
    assert source_contract.low_days(totals, list(totals), 0.5, frozenset({holiday})) == []


def test_a_low_execution_day_fails_the_run_naming_it() -> None:
    totals = _steady_totals() | {END: 80}
    low = source_contract.low_days(totals, list(totals), 0.5)
    with pytest.raises(StepError, match=rf"the execution date {END} holds 80 applications, 2\d%"):
        source_contract.check_execution_day_volume(low, END, 0.5)


def test_missing_days_start_at_the_tables_first_partition() -> None:
    present = [END - dt.timedelta(days=i) for i in range(1, 10)]
    scan = SourceScan(
        table_root="/lake/applications",
        files=[SourceFile(f"/lake/{day}.parquet", day, aware=False) for day in [*present, END]],
        first_day=END - dt.timedelta(days=12),
    )
    assert source_contract.missing_days(scan, START, END) == [
        END - dt.timedelta(days=12),
        END - dt.timedelta(days=11),
        END - dt.timedelta(days=10),
    ]
    assert source_contract.day_ranges(source_contract.missing_days(scan, START, END)) == (
        "2025-03-19..2025-03-21 (3 days)"
    )


def test_too_many_recent_unknown_days_fail_naming_them() -> None:
    scan = SourceScan(table_root="/lake/applications", first_day=START)
    absent = [dt.date(2025, 3, 27), dt.date(2025, 3, 28)]
    with pytest.raises(StepError, match=r"2 of the last 28 days have no partition .*03-27..2025"):
        source_contract.check_recent_days(scan, END, absent, [], 1, 28)
    with pytest.raises(StepError, match=r"3 of the last 28 days .* or far fewer rows"):
        source_contract.check_recent_days(scan, END, absent, [dt.date(2025, 3, 20)], 2, 28)
    source_contract.check_recent_days(scan, END, absent, [], 2, 28)
