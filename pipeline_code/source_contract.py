"""The source contract: what Extract checks about the source table before anything is counted.

Data that looks valid can still be wrong, and a forecast built on it is published without a word.
So, per file and per day, before counting:

1. **Partition folders.** Every folder under the table is `dt=YYYY-MM-DD` with a real date. Any
   other folder (`dt=2026-11-19.bak`, `dt=2026-11-2`) is refused by path and not read: Athena's
   partition projection does not read it either, and a stray copy read as data double counts.
2. **File schemas.** Every data file in the look-back window has the table's columns with the
   table's types; the first files that differ are named with what differs. Files whose names start
   with `_` or `.` are not data (Hive's rule, which Athena follows).
3. **One count per application.** Rows are counted once per `application_id`: a load delivered
   twice (a second file, or the same rows twice in a file) is reported, not counted twice.
4. **Names normalised once.** `car_model` is Unicode NFKC-normalised and trimmed before counting,
   so `"Ridge Wagon "` and `"Ridge Wagon"` are one series whose counts add up; every rewritten
   name is listed in the data-quality summary.
5. **One time zone.** `applied_at` is read in the source time zone (`--source-timezone`): a naive
   timestamp is local time there, a time-zone-aware one (Parquet `isAdjustedToUTC`) is an instant
   converted to it. The day an application falls on never depends on the host's time zone.
6. **Missing days.** A day without a partition is unknown, not a day of zero demand. More than
   `--max-missing-days` missing days among the last `--missing-days-window` days fails the run,
   naming them; older missing days are reported and left for PreProc to impute.

`scan_source` does 1, 2 and finds the days present (reading only file footers); `count_applications`
does 3-5 on the rows the Extract query returned; `check_missing_days` does 6. Each returns what it
found for `extract/data_quality.json`.
"""

from __future__ import annotations

import datetime as dt
import posixpath
import re
import unicodedata
from collections.abc import Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

import pandas as pd
import pyarrow as pa
import pyarrow.fs as pafs
import pyarrow.parquet as pq

from pipeline_code import storage, tables
from pipeline_code.errors import StepError, one_line

STEP = "Extract"
# Raw rows the Extract query returns (sql/extract.sql), one per application row read.
ROW_COLUMNS = ("application_id", "applied_at", "series_id", "source_file")
_DATE_FOLDER = re.compile(r"^(?P<key>[A-Za-z_][A-Za-z0-9_]*)=(?P<value>\d{4}-\d{2}-\d{2})$")
_MAX_NAMED = 5  # files or folders named in one message; the count says how many more
_FOOTER_READERS = 16  # footers are small reads: on S3 the latency, not the bytes, is the cost


@dataclass(frozen=True)
class SourceFile:
    uri: str  # as the query engine names it in "$path": s3://bucket/key or a local path
    day: dt.date
    aware: bool  # applied_at is stored as an instant (timestamp with a time zone)


@dataclass
class SourceScan:
    """What the table's folders hold for the window: files, days present, refused folders."""

    table_root: str
    files: list[SourceFile] = field(default_factory=list)
    refused_folders: list[str] = field(default_factory=list)
    first_day: dt.date | None = None  # the table's first partition, inside or before the window

    @property
    def days(self) -> set[dt.date]:
        return {source.day for source in self.files}

    @property
    def aware_files(self) -> set[str]:
        return {source.uri for source in self.files if source.aware}


# --- 1 and 2: folders and file schemas --------------------------------------------------------


def _uri(root: str, path: str) -> str:
    return f"s3://{path}" if storage.is_s3(root) else path


def _list(fs: pafs.FileSystem, path: str) -> list[pafs.FileInfo]:
    return fs.get_file_info(pafs.FileSelector(path, recursive=False, allow_not_found=True))


def scan_source(table_root: str, table: tables.Table, start: dt.date, end: dt.date) -> SourceScan:
    """Check every partition folder's name and every window file's schema; raise StepError
    naming the files that differ from the table."""
    fs, root = storage._filesystem(table_root.rstrip("/"))
    # Listed, never looked up by name: on S3 a HEAD of `<bucket>/<table>` asks for s3:GetObject
    # on a key outside the table's prefix, which the role rightly lacks (403, not 404).
    on_s3 = storage.is_s3(table_root)
    is_folder = on_s3 or fs.get_file_info(root).type == pafs.FileType.Directory
    entries = _list(fs, root) if is_folder else []
    if not is_folder or (on_s3 and not entries):
        raise StepError(
            STEP, f"source table {table.name}: {table_root} is not a folder holding files"
        )
    scan = SourceScan(table_root=table_root)
    in_window: list[tuple[pafs.FileInfo, dt.date]] = []
    present: list[dt.date] = []
    for entry in entries:
        if entry.base_name.startswith(("_", ".")):
            continue  # Hive's hidden files and folders: never data
        day = _partition_day(entry, table.partition_key)
        if day is None:
            scan.refused_folders.append(_uri(table_root, entry.path))
            continue
        present.append(day)
        if start <= day <= end:
            in_window.append((entry, day))
    scan.first_day = min(present, default=None)
    candidates = [
        (info, day)
        for folder, day in in_window
        for info in _list(fs, folder.path)
        if info.type == pafs.FileType.File and not info.base_name.startswith(("_", "."))
    ]
    with ThreadPoolExecutor(max_workers=_FOOTER_READERS) as pool:
        checked = list(pool.map(lambda item: _check_file(fs, table_root, table, *item), candidates))
    problems = [problem for _, problem in checked if problem]
    if problems:
        more = (
            f"; and {len(problems) - _MAX_NAMED} more files" if len(problems) > _MAX_NAMED else ""
        )
        raise StepError(
            STEP,
            f"{len(problems)} source files do not match table {table.name}: "
            + "; ".join(problems[:_MAX_NAMED])
            + more,
        )
    scan.files = sorted((source for source, _ in checked if source), key=lambda s: s.uri)
    return scan


def _partition_day(entry: pafs.FileInfo, key: str) -> dt.date | None:
    match = _DATE_FOLDER.match(entry.base_name)
    if entry.type != pafs.FileType.Directory or not match or match.group("key") != key:
        return None
    try:
        return dt.date.fromisoformat(match.group("value"))
    except ValueError:
        return None


def _check_file(
    fs: pafs.FileSystem, table_root: str, table: tables.Table, info: pafs.FileInfo, day: dt.date
) -> tuple[SourceFile | None, str | None]:
    uri = _uri(table_root, info.path)
    try:
        schema = pq.read_schema(info.path, filesystem=fs)
    except (pa.ArrowException, OSError) as err:
        return None, f"{uri} is not a readable Parquet file ({one_line(err)})"
    differences = schema_differences(schema, table)
    if differences:
        return None, f"{uri}: " + ", ".join(differences)
    applied_at = schema.field("applied_at").type if "applied_at" in schema.names else None
    aware = isinstance(applied_at, pa.TimestampType) and applied_at.tz is not None
    return SourceFile(uri=uri, day=day, aware=aware), None


def _type_matches(kind: pa.DataType, glue_type: str) -> bool:
    if pa.types.is_dictionary(kind):
        kind = kind.value_type
    checks = {
        "string": lambda: pa.types.is_string(kind) or pa.types.is_large_string(kind),
        "timestamp": lambda: pa.types.is_timestamp(kind),
        "date": lambda: pa.types.is_date(kind),
        "bigint": lambda: pa.types.is_integer(kind),
        "double": lambda: pa.types.is_floating(kind),
    }
    return checks[glue_type]()


def schema_differences(schema: pa.Schema, table: tables.Table) -> list[str]:
    """How a file's schema differs from the table's columns (names and types); extra columns are
    allowed (Athena ignores them)."""
    differences = []
    for column in table.columns:
        if column.name not in schema.names:
            differences.append(f"column {column.name!r} is missing")
        elif not _type_matches(schema.field(column.name).type, column.glue_type):
            actual = schema.field(column.name).type
            differences.append(f"column {column.name!r} is {actual}, expected {column.glue_type}")
    return differences


# --- 3, 4 and 5: counting -----------------------------------------------------------------------


def normalise_name(name: str) -> str:
    """NFKC first (full-width letters and spaces become plain ones), then trim."""
    return unicodedata.normalize("NFKC", name).strip()


def count_applications(
    rows: pd.DataFrame, scan: SourceScan, source_timezone: str, start: dt.date, end: dt.date
) -> tuple[pd.DataFrame, dict[str, Any]]:
    """Daily applications per normalised car model (`series_id, ds, y`) and what was done."""
    missing = [column for column in ROW_COLUMNS if column not in rows.columns]
    if missing:
        raise StepError(STEP, f"query result lacks columns {missing}; got {list(rows.columns)}")
    found: dict[str, Any] = {"rows_read": len(rows)}
    frame = rows[list(ROW_COLUMNS)].copy()
    frame["series_id"], found["normalised_names"] = _normalise_names(frame["series_id"])
    frame["ds"] = _local_days(frame, scan.aware_files, source_timezone)
    incomplete = (
        frame["application_id"].isna()
        | frame["series_id"].isna()
        | (frame["series_id"] == "")
        | frame["ds"].isna()
    )
    found["incomplete_rows"] = int(incomplete.sum())
    found["incomplete_files"] = _top_files(frame.loc[incomplete, "source_file"])
    frame = frame[~incomplete]
    frame, found["duplicates"] = _count_once(frame)
    outside = (frame["ds"] < pd.Timestamp(start)) | (frame["ds"] > pd.Timestamp(end))
    found["outside_window_rows"] = int(outside.sum())
    frame = frame[~outside]
    counts = frame.groupby(["series_id", "ds"], sort=True).size().rename("y").reset_index()
    counts["ds"] = counts["ds"].dt.date
    counts["y"] = counts["y"].astype("float64")
    found["rows_counted"] = len(frame)
    return counts, found


def _normalise_names(names: pd.Series) -> tuple[pd.Series, dict[str, str]]:
    distinct = [name for name in names.dropna().unique() if isinstance(name, str)]
    mapping = {name: normalise_name(name) for name in distinct}
    changed = {name: normal for name, normal in sorted(mapping.items()) if name != normal}
    return names.map(mapping), changed


def _local_days(frame: pd.DataFrame, aware_files: set[str], timezone: str) -> pd.Series:
    """The calendar day of each applied_at in the source time zone, as a midnight timestamp.

    Both engines hand back a naive wall clock: the stored one for naive files, UTC's for aware
    files (DuckDB runs with TimeZone=UTC; Athena reads instants as UTC). Which one a row has is
    known from its file's schema, so no host setting enters.
    """
    stamps = pd.to_datetime(frame["applied_at"], errors="coerce")
    if stamps.dt.tz is not None:
        stamps = stamps.dt.tz_convert("UTC").dt.tz_localize(None)
    aware = frame["source_file"].isin(aware_files).to_numpy()
    local = pd.Series(pd.NaT, index=frame.index, dtype="datetime64[ns]")
    if aware.any():
        utc = stamps[aware].dt.tz_localize("UTC").dt.tz_convert(timezone)
        local[aware] = utc.dt.tz_localize(None)
    if (~aware).any():
        local[~aware] = stamps[~aware]
    # A naive wall clock is already local time in the source zone: its date is the day.
    return local.dt.normalize()


def _count_once(frame: pd.DataFrame) -> tuple[pd.DataFrame, dict[str, Any]]:
    """Keep the first row of each application_id (in file order, so the first delivery wins)."""
    frame = frame.sort_values(["source_file"], kind="stable")
    repeated = frame.duplicated("application_id", keep="first")
    kept = frame[~repeated]
    extra = frame[repeated]
    first = kept.set_index("application_id").loc[extra["application_id"], ["series_id", "ds"]]
    conflicting = int(
        (
            (first["series_id"].to_numpy() != extra["series_id"].to_numpy())
            | (first["ds"].to_numpy() != extra["ds"].to_numpy())
        ).sum()
    )
    return kept, {
        "rows": int(repeated.sum()),
        "conflicting": conflicting,
        "files": _top_files(extra["source_file"]),
    }


def _top_files(files: pd.Series) -> dict[str, int]:
    return {str(k): int(v) for k, v in files.value_counts().head(_MAX_NAMED).items()}


# --- 6: missing days ---------------------------------------------------------------------------


def missing_days(scan: SourceScan, start: dt.date, end: dt.date) -> list[dt.date]:
    """Days of the window without any data file, from the table's first partition on (days before
    the table starts are not missing: there is no history yet)."""
    if scan.first_day is None:
        return []
    first = max(start, scan.first_day)
    present = scan.days
    return [
        first + dt.timedelta(days=i)
        for i in range((end - first).days + 1)
        if first + dt.timedelta(days=i) not in present
    ]


def day_ranges(days: Iterable[dt.date]) -> str:
    """`2026-11-14..2026-11-18 (5 days), 2026-11-20` for messages."""
    ordered = sorted(days)
    pieces: list[str] = []
    i = 0
    while i < len(ordered):
        j = i
        while j + 1 < len(ordered) and ordered[j + 1] - ordered[j] == dt.timedelta(days=1):
            j += 1
        if i == j:
            pieces.append(ordered[i].isoformat())
        else:
            pieces.append(f"{ordered[i]}..{ordered[j]} ({j - i + 1} days)")
        i = j + 1
    return ", ".join(pieces)


def check_missing_days(
    scan: SourceScan, start: dt.date, end: dt.date, max_missing: int, recent_window: int
) -> list[dt.date]:
    """All missing days of the window; StepError when too many are recent."""
    if end not in scan.days:
        raise StepError(
            STEP,
            f"no data for the execution date {end}: partition dt={end} has no data files "
            f"under {scan.table_root} (has the day's load landed?)",
        )
    absent = missing_days(scan, start, end)
    recent_start = end - dt.timedelta(days=recent_window - 1)
    recent = [day for day in absent if day >= recent_start]
    if len(recent) > max_missing:
        raise StepError(
            STEP,
            f"{len(recent)} of the last {recent_window} days have no partition under "
            f"{scan.table_root}: {day_ranges(recent)}; at most {max_missing} may be missing "
            "(a missing day is not a day of zero demand: load them, then re-run this date)",
        )
    return absent


def warnings(found: dict[str, Any], scan: SourceScan, absent: list[dt.date]) -> list[str]:
    """One line per check that found something, for the summary and Slack."""
    lines = []
    if scan.refused_folders:
        lines.append(
            f"{len(scan.refused_folders)} folders are not dt=YYYY-MM-DD partitions and were not "
            f"read: {', '.join(scan.refused_folders[:_MAX_NAMED])}"
        )
    duplicates = found["duplicates"]
    if duplicates["rows"]:
        files = ", ".join(
            posixpath.basename(posixpath.dirname(f)) + "/" + posixpath.basename(f)
            for f in duplicates["files"]
        )
        lines.append(
            f"{duplicates['rows']} rows repeat an application_id already read and were counted "
            f"once ({duplicates['conflicting']} with another model or day); repeats in {files}"
        )
    if found["normalised_names"]:
        names = ", ".join(f"{k!r} -> {v!r}" for k, v in list(found["normalised_names"].items()))
        lines.append(f"car_model names normalised (NFKC, trimmed): {names}")
    if found["incomplete_rows"]:
        lines.append(
            f"{found['incomplete_rows']} rows without application_id, car_model or applied_at "
            f"were not counted (files: {', '.join(found['incomplete_files'])})"
        )
    if absent:
        lines.append(
            f"{len(absent)} days of the window have no partition and are imputed, not read as "
            f"zero: {day_ranges(absent)}"
        )
    return lines
