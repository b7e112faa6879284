"""The source contract: what Extract checks about the source table before anything is counted.

Data that looks valid can still be wrong, and a forecast built on it is published without a word.
So, per file and per day, before counting:

1. **Partition folders.** Every folder under the table is `dt=YYYY-MM-DD` with a real date. Any
   other folder (`dt=2026-11-19.bak`, `dt=2026-11-2`) is refused by path and not read: Athena's
   partition projection does not read it either, and a stray copy read as data double counts.
2. **File schemas.** Every data file in the look-back window has the table's columns with the
   table's types; the first files that differ are named with what differs. Files whose names start
   with `_` or `.` are not data (Hive's rule, which Athena follows).
3. **One count per application.** A day's count is its distinct non-blank `application_id`s:
   a load delivered twice (a second file, or the same rows twice in a file) is reported, not
   counted twice. Rows without an id, a name or a time are not counted and are named by file.
4. **Names folded once.** `car_model` spellings that mean one name (NFKC, case, surrounding and
   invisible whitespace, control characters: `fold_names`) are one series, named by its most
   used spelling; every folded spelling is listed. The folding runs over the distinct names,
   the SQL applies it to the rows.
5. **One time zone.** `applied_at` is read in the source time zone (`--source-timezone`): a naive
   timestamp is local time there, a time-zone-aware one (Parquet `isAdjustedToUTC`) is an instant
   converted to it. The day an application falls on never depends on the host's time zone. A row
   outside the window (a year ahead, 1900, 9999-12-31) is not counted and is named by file.
6. **Missing days.** A day without a partition is unknown, not a day of zero demand.
7. **Volume.** A day whose files hold far fewer applications than the same weekday over the
   weeks before (`--min-day-volume-ratio`) is a missing or partial day too, whether or not its
   files exist: on the execution date it fails the run; earlier it is imputed, with a warning.
   More than `--max-missing-days` unknown days among the last `--missing-days-window` fail the
   run, naming them; older ones are reported and left for PreProc to impute.

`scan_source` does 1, 2 and finds the days present (reading only file footers); `fold_names` does
4 over the distinct names; the SQL (`pipeline_code/sql/`) does 3 and 5 and counts; `low_days`
and the checks below do 6 and 7 on the SQL's daily totals. No step reads the rows into Python.
"""

from __future__ import annotations

import datetime as dt
import re
import unicodedata
from collections.abc import Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.fs as pafs
import pyarrow.parquet as pq

from pipeline_code import storage, tables
from pipeline_code.errors import StepError, one_line

STEP = "Extract"
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

    def aware_by_day(self) -> tuple[list[dt.date], list[str]]:
        """Where applied_at is an instant: the days whose every file stores it so, and the files
        that do on days whose files differ (short lists for the SQL text)."""
        days: dict[dt.date, list[SourceFile]] = {}
        for source in self.files:
            days.setdefault(source.day, []).append(source)
        whole = sorted(day for day, files in days.items() if all(f.aware for f in files))
        mixed = sorted(
            f.uri
            for files in days.values()
            if not all(f.aware for f in files)
            for f in files
            if f.aware
        )
        return whole, mixed


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


# --- 3 and 4: names ------------------------------------------------------------------------------

_LINE_BREAKS = "\t\n\x0b\f\r"


def normalise_name(name: str) -> str:
    """The name a spelling means: NFKC (full-width letters and spaces become plain ones), every
    space or line break one plain space, control and format characters (NUL, zero-width space,
    byte-order mark) gone, runs of spaces one, the ends trimmed. Case is kept: `fold_names`
    folds it when choosing the series' name."""
    kept = []
    for char in unicodedata.normalize("NFKC", name):
        category = unicodedata.category(char)
        if char in _LINE_BREAKS or category.startswith("Z"):
            kept.append(" ")
        elif category not in ("Cc", "Cf"):
            kept.append(char)
    return re.sub(" {2,}", " ", "".join(kept)).strip(" ")


@dataclass(frozen=True)
class FoldedNames:
    """The spellings that fold into another series name ('' for a blank one), and per series the
    spellings folded into it."""

    variants: dict[str, str]
    folded: dict[str, list[str]]


def fold_names(spellings: pd.DataFrame) -> FoldedNames:
    """Fold `raw_name, row_count` (every spelling read) into series names: spellings equal after
    `normalise_name` and case folding are one series, named by its most used normalised
    spelling (the alphabetically first on a tie), so a few rows in capitals never rename it."""
    counts: dict[str, int] = {}
    for raw, rows in zip(spellings["raw_name"], spellings["row_count"], strict=True):
        if isinstance(raw, str):
            counts[raw] = counts.get(raw, 0) + int(rows)
    normal = {raw: normalise_name(raw) for raw in counts}
    usage: dict[str, dict[str, int]] = {}
    for raw, rows in counts.items():
        if normal[raw]:
            spelled = usage.setdefault(normal[raw].casefold(), {})
            spelled[normal[raw]] = spelled.get(normal[raw], 0) + rows
    name_of_key = {
        key: min(spelled, key=lambda name: (-spelled[name], name)) for key, spelled in usage.items()
    }
    variants = {}
    for raw in sorted(counts):
        series = name_of_key[normal[raw].casefold()] if normal[raw] else ""
        if series != raw:
            variants[raw] = series
    folded: dict[str, list[str]] = {}
    for raw, series in variants.items():
        if series:
            folded.setdefault(series, []).append(raw)
    return FoldedNames(variants, folded)


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


def check_execution_day(scan: SourceScan, end: dt.date) -> None:
    if end not in scan.days:
        raise StepError(
            STEP,
            f"no data for the execution date {end}: partition dt={end} has no data files "
            f"under {scan.table_root} (has the day's load landed?)",
        )


def check_recent_days(
    scan: SourceScan,
    end: dt.date,
    absent: list[dt.date],
    low: list[dt.date],
    max_missing: int,
    recent_window: int,
) -> None:
    """StepError when more than `max_missing` of the last `recent_window` days are unknown: no
    partition (`absent`) or far too few rows (`low`)."""
    recent_start = end - dt.timedelta(days=recent_window - 1)
    recent = sorted(day for day in [*absent, *low] if day >= recent_start)
    if len(recent) <= max_missing:
        return
    what = f"have no partition under {scan.table_root}"
    if any(day in low for day in recent):
        what += " or far fewer rows than the same weekday before"
    raise StepError(
        STEP,
        f"{len(recent)} of the last {recent_window} days {what}: {day_ranges(recent)}; at most "
        f"{max_missing} may be missing (a missing day is not a day of zero demand: load them, "
        "then re-run this date)",
    )


# --- 7: volume ---------------------------------------------------------------------------------

VOLUME_WEEKS = 4  # this many same weekdays either side of a day give its expected level
VOLUME_MIN_REFERENCES = 3  # fewer such weekdays: the day is not judged
VOLUME_NOISE = 4.0  # and it must be this many deviations below it (chance, or the weeks' own)


@dataclass(frozen=True)
class LowDay:
    """A day whose applications are far below the median of its nearby same weekdays."""

    day: dt.date
    applications: int
    expected: float

    def describe(self) -> str:
        share = self.applications / self.expected if self.expected else 0.0
        return (
            f"{self.day} holds {self.applications} applications, {share:.0%} of the median "
            f"{self.expected:g} of the nearest same weekdays"
        )


def low_days(
    totals: dict[dt.date, int],
    present: Iterable[dt.date],
    min_ratio: float,
    event_days: frozenset[dt.date] = frozenset(),
) -> list[LowDay]:
    """The days with files (`present`) whose counted applications (`totals`; absent = 0) are
    below `min_ratio` x the median of the nearest VOLUME_WEEKS same weekdays before and as many
    after (before only, for the last days), and below it by more than VOLUME_NOISE deviations:
    the larger of its square root (counts vary by that much by chance) and the robust deviation
    of those weekdays (a small business's weeks vary by more), in day order.

    Both sides, so that a lasting change of level is not a run of partial days. A calendar event
    (a holiday, a break, a company day) is expected to differ and is neither judged nor another
    day's reference; nor is a day without files. Too few references: the day is not judged."""
    days = set(present)
    usable = days - event_days
    found = []
    for day in sorted(usable):
        reference = [
            totals.get(other, 0)
            for side in (-1, 1)
            for other in _nearest_weekdays(day, side, usable)
        ]
        if len(reference) < VOLUME_MIN_REFERENCES:
            continue
        expected = float(np.median(reference))
        spread = max(
            np.sqrt(expected), 1.4826 * float(np.median(np.abs(np.subtract(reference, expected))))
        )
        count = totals.get(day, 0)
        if count < min_ratio * expected and count < expected - VOLUME_NOISE * spread:
            found.append(LowDay(day, count, expected))
    return found


def _nearest_weekdays(day: dt.date, side: int, usable: set[dt.date]) -> list[dt.date]:
    """Up to VOLUME_WEEKS usable same weekdays on one side of `day`, nearest first, looking at
    most three times as far (a month of holidays does not leave a day unjudged)."""
    candidates = (day + dt.timedelta(weeks=side * w) for w in range(1, 3 * VOLUME_WEEKS + 1))
    return [other for other in candidates if other in usable][:VOLUME_WEEKS]


def check_execution_day_volume(low: list[LowDay], end: dt.date, min_ratio: float) -> None:
    """A low execution day is a partial load: forecasting from it would publish a wrong forecast."""
    for found in low:
        if found.day == end:
            raise StepError(
                STEP,
                f"the execution date {found.describe()} (pipeline.min_day_volume_ratio "
                f"{min_ratio:g}): is the day's load complete? Load it, then re-run this date",
            )


# --- what was found, in words ------------------------------------------------------------------


def _files(named: dict[str, int]) -> str:
    return ", ".join(f"{_short(uri)} ({rows})" for uri, rows in named.items())


def _short(uri: str) -> str:
    """`dt=2026-11-30/part-0.parquet`: the partition and the file, enough to find it."""
    parts = uri.rstrip("/").split("/")
    return "/".join(parts[-2:])


def _names(items: list[tuple[str, str]]) -> str:
    shown = ", ".join(f"{raw!r} -> {series!r}" for raw, series in items[: _MAX_NAMED * 2])
    more = len(items) - _MAX_NAMED * 2
    return shown + (f" and {more} more" if more > 0 else "")


def warnings(
    found: dict[str, Any], scan: SourceScan, absent: list[dt.date], low: list[LowDay]
) -> list[str]:
    """One line per check that found something, for the summary and Slack."""
    lines = []
    if scan.refused_folders:
        lines.append(
            f"{len(scan.refused_folders)} folders are not dt=YYYY-MM-DD partitions and were not "
            f"read: {', '.join(scan.refused_folders[:_MAX_NAMED])}"
        )
    if found["repeated_rows"]:
        days = ", ".join(f"dt={day} ({n})" for day, n in found["repeats_by_day"].items())
        lines.append(
            f"{found['repeated_rows']} rows repeat an application_id already read and were "
            f"counted once ({found['counted_on_several_days']} applications appear on more "
            f"than one day and count on each); repeats in {days or 'no single day'}"
        )
    folded = [(raw, series) for series, raws in found["folded_names"].items() for raw in raws]
    if folded:
        lines.append(
            "car_model spellings folded into one series name (NFKC, case, invisible and "
            f"surrounding whitespace, control characters): {_names(folded)}"
        )
    for key, what in (
        ("blank_ids", "without an application_id"),
        ("blank_names", "without a car_model"),
        ("no_times", "without an applied_at"),
    ):
        if found[key]["rows"]:
            where = _files(found[key]["files"])
            lines.append(f"{found[key]['rows']} rows {what} were not counted (in {where})")
    outside = found["outside_window"]
    if outside["rows"]:
        lines.append(
            f"{outside['rows']} rows have an applied_at outside their window "
            f"{found['window'][0]}..{found['window'][1]} (from {outside['first']} to "
            f"{outside['last']}) and were not counted (column applied_at, in "
            f"{_files(outside['files'])})"
        )
    if absent:
        lines.append(
            f"{len(absent)} days of the window have no partition and are imputed, not read as "
            f"zero: {day_ranges(absent)}"
        )
    for day in low:
        lines.append(f"{day.describe()}: a partial load; imputed, not read as demand")
    return lines
