"""Extract: daily applications per series for the look-back window, counted by the query engine
and written split by bucket of series (`extract/counts/<attempt>/bucket=N/`, located by
`extract/counts.json`), and what the source contract found (`extract/data_quality.json`).

The SQL is in `pipeline_code/sql/` (Athena/Trino dialect). On AWS (`--data-root s3://...`)
Athena runs it and UNLOADs the counts; locally sqlglot transpiles the same SQL to DuckDB, which
reads the lake's Hive-partitioned Parquet (`<lake>/<table>/dt=YYYY-MM-DD/*.parquet`) and COPYs
the counts in the same layout. No row reaches Python: three queries return

1. the distinct car_model spellings (`extract_names.sql`), which `source_contract.fold_names`
   folds into series names;
2. aggregates per day, per file and over the window (`extract_quality.sql`): the contract's
   figures and each day's applications, which the volume check reads;
3. the counts (`extract.sql`), one per series and day, with the series' bucket.

Before querying, the source is checked (`pipeline_code.source_contract`): partition folder names,
every window file's schema (footers only), missing days. After the aggregates: the execution
date must hold countable rows and a usual volume, and at most `--max-missing-days` recent days
may be unknown. The counts go to a new attempt folder each time, because UNLOAD neither
overwrites nor cleans up after a failure; `counts.json`, written last, names the folder to read.
In a multi-instance job only the leader instance extracts; the others exit at once.

    python -m pipeline_code.steps.extract --execution-date 2025-06-30 --execution-id local-1 \
        --data-root .lake --lookback-days 730 --database forecast_demo
"""

from __future__ import annotations

import argparse
import datetime as dt
import re
import sys
import uuid
from collections.abc import Iterable
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import pandas as pd

from pipeline_code import run_folder, shards, source_contract, storage, tables
from pipeline_code.errors import StepError, one_line, run_entry_point
from pipeline_code.run_context import RunContext, add_common_arguments, context_from
from pipeline_code.steps.forecast_options import (
    add_event_arguments,
    build_calendar,
    default_event_options,
)

STEP = "Extract"
SQL_DIR = Path(__file__).resolve().parent.parent / "sql"
NAMES_SQL = "extract_names.sql"
COUNTS_SQL = "extract.sql"
QUALITY_SQL = "extract_quality.sql"
ROWS_SQL = "source_rows.sql"
MAX_QUERY_BYTES = 262144
"""Athena's StartQueryExecution takes a QueryString of at most this many bytes of UTF-8
(https://docs.aws.amazon.com/athena/latest/ug/service-limits.html, "Query string length"; the
same number is botocore's maximum length of the field, which a test reads)."""

_PLACEHOLDER = re.compile(r"\{\{\s*([A-Za-z_]+)\s*\}\}")
_IDENTIFIER = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")

# The source columns the SQL reads, with the Glue types it accepts for each.
REQUIRED_SOURCE_COLUMNS: dict[str, frozenset[str]] = {
    "application_id": frozenset({"string", "varchar"}),
    "car_model": frozenset({"string", "varchar"}),
    "applied_at": frozenset({"timestamp", "date"}),
    "dt": frozenset({"string", "varchar"}),
}


def lookback_window(execution_date: dt.date, lookback_days: int) -> tuple[dt.date, dt.date]:
    """The inclusive date range of `lookback_days` days ending at the execution date."""
    if lookback_days < 1:
        raise StepError(STEP, f"--lookback-days must be at least 1, got {lookback_days}")
    return execution_date - dt.timedelta(days=lookback_days - 1), execution_date


def validate_identifier(value: str, what: str) -> str:
    """Identifiers go into SQL text, so only plain names are allowed (no quoting, no injection)."""
    if not _IDENTIFIER.match(value or ""):
        raise StepError(
            STEP, f"{what} {value!r} is not a valid identifier ([A-Za-z_][A-Za-z0-9_]*)"
        )
    return value


def render_sql(template: str, values: dict[str, str]) -> str:
    """Fill `{{name}}` placeholders; each placeholder needs a value, each value a placeholder."""
    used = set(_PLACEHOLDER.findall(template))
    missing = used - values.keys()
    unused = values.keys() - used
    if missing or unused:
        raise StepError(
            STEP,
            f"SQL placeholders do not match the parameters: missing {sorted(missing)}, "
            f"unused {sorted(unused)}",
        )
    return _PLACEHOLDER.sub(lambda match: values[match.group(1)], template)


def _quoted(items: Iterable[str]) -> str:
    """A SQL list of string literals; `''` (matching nothing) when empty."""
    return ", ".join("'" + item.replace("'", "''") + "'" for item in items) or "''"


def _variant_rows(variants: dict[str, str]) -> str:
    """VALUES rows for source_rows.sql: the spelling as hex of its UTF-8 bytes (a NUL or a
    zero-width space cannot break the SQL text), the series name as a literal (already clean).
    The first row, two empty strings, keeps the list valid when nothing folds."""
    rows = [("", "")] + [(raw.encode("utf-8").hex(), series) for raw, series in variants.items()]
    return ", ".join(f"({_quoted([raw])}, {_quoted([series])})" for raw, series in rows)


@dataclass(frozen=True)
class QuerySource:
    """What every query of one run is over: the table, the window and how to read its rows."""

    database: str
    table: str
    start: dt.date
    end: dt.date
    timezone: str = "Asia/Tokyo"
    aware_days: tuple[dt.date, ...] = ()
    aware_files: tuple[str, ...] = ()
    variants: tuple[tuple[str, str], ...] = ()

    def values(self) -> dict[str, str]:
        return {
            "database": validate_identifier(self.database, "database"),
            "table": validate_identifier(self.table, "table"),
            # date.isoformat() of a real date can only be YYYY-MM-DD: safe inside quotes.
            "start_date": self.start.isoformat(),
            "end_date": self.end.isoformat(),
        }

    def row_values(self) -> dict[str, str]:
        """The values of source_rows.sql beyond the table and window."""
        return {
            "scan_from": f"{self.start - dt.timedelta(days=1)} 00:00:00",
            "scan_until": f"{self.end + dt.timedelta(days=2)} 00:00:00",
            "timezone": self.timezone.replace("'", "''"),
            "aware_days": _quoted(day.isoformat() for day in self.aware_days),
            "aware_files": _quoted(self.aware_files),
            "variants": _variant_rows(dict(self.variants)),
        }


def build_query(name: str, source: QuerySource) -> str:
    """One of the SQL files in the Athena dialect, with validated parameters filled in; the
    counting queries get the shared source rows (`source_rows.sql`) after their WITH. Comment
    lines are left out."""
    template = _without_comments((SQL_DIR / name).read_text())
    values = source.values()
    if "{{source_rows}}" in template:
        rows = _without_comments((SQL_DIR / ROWS_SQL).read_text())
        template = template.replace("{{source_rows}}", rows)
        values |= source.row_values()
        if name == COUNTS_SQL:
            values["bucket_mask"] = str(shards.BUCKETS - 1)
    sql = render_sql(template, values)
    size = len(sql.encode("utf-8"))
    if size > MAX_QUERY_BYTES:
        raise StepError(
            STEP,
            f"the query {name} is {size} bytes, more than Athena's {MAX_QUERY_BYTES}: "
            f"{len(source.variants)} car_model spellings fold into other names and "
            f"{len(source.aware_files)} files mix time zones; clean the source's names",
        )
    return sql


def _without_comments(sql: str) -> str:
    """The SQL without its comment lines: their placeholders are documentation, and the text
    sent is shorter."""
    return "\n".join(line for line in sql.splitlines() if not line.lstrip().startswith("--"))


def to_duckdb_sql(athena_sql: str) -> str:
    import sqlglot

    return sqlglot.transpile(athena_sql, read="trino", write="duckdb")[0]


def unload_statement(select_sql: str, folder: str) -> str:
    """Athena: the counts as Parquet under `folder`, one `bucket=N/` partition a bucket."""
    return (
        f"UNLOAD ({select_sql}) TO '{folder.rstrip('/')}/' "
        "WITH (format = 'PARQUET', compression = 'SNAPPY', partitioned_by = ARRAY['bucket'])"
    )


def copy_statement(select_sql: str, folder: str) -> str:
    """DuckDB: the same layout as `unload_statement`'s."""
    target = folder.replace("'", "''")
    return f"COPY ({select_sql}) TO '{target}' (FORMAT PARQUET, PARTITION_BY (bucket))"


def check_source_columns(column_types: dict[str, str], table: str) -> None:
    """Raise naming every required source column that is missing or of the wrong type."""
    problems = []
    for column, accepted in REQUIRED_SOURCE_COLUMNS.items():
        actual = column_types.get(column)
        if actual is None:
            problems.append(f"column {column!r} is missing")
        elif actual.lower() not in accepted:
            problems.append(
                f"column {column!r} has type {actual}, expected {' or '.join(accepted)}"
            )
    if problems:
        raise StepError(STEP, f"source table {table}: " + "; ".join(problems))


# --- local: DuckDB over the lake --------------------------------------------------------------

# Trino functions the SQL uses that DuckDB names otherwise (sqlglot passes them through).
_DUCKDB_MACROS = (
    "CREATE MACRO from_base(digits, radix) AS "
    "CASE WHEN radix = 16 THEN CAST('0x' || digits AS BIGINT) END",
    "CREATE MACRO with_timezone(stamp, zone) AS timezone(zone, stamp)",
    "CREATE MACRO at_timezone(stamp, zone) AS timezone(zone, stamp)",
)


def _duckdb_to_glue_type(duckdb_type: str) -> str:
    upper = duckdb_type.upper()
    if upper.startswith("TIMESTAMP"):
        return "timestamp"
    return {
        "VARCHAR": "string",
        "DATE": "date",
        "DOUBLE": "double",
        "FLOAT": "float",
        "BIGINT": "bigint",
        "INTEGER": "int",
        "BOOLEAN": "boolean",
    }.get(upper, upper.lower())


class LocalEngine:
    """DuckDB over the checked files of the lake's table, as `<database>.<table>`, with the file
    each row came from as `"$path"` (as Athena names it)."""

    def __init__(self, files: list[str], database: str, table: str) -> None:
        import duckdb

        self.files, self.table = files, table
        listed = ", ".join("'" + path.replace("'", "''") + "'" for path in files)
        self.con = duckdb.connect()
        # Timestamps with a time zone come back as UTC wall clock, whatever the host's zone.
        self.con.execute("SET TimeZone = 'UTC'")
        for macro in _DUCKDB_MACROS:
            self.con.execute(macro)
        self.con.execute(f'CREATE SCHEMA "{database}"')
        # dt stays a string, as in Glue; DuckDB would otherwise guess DATE from its values.
        self.con.execute(
            f'CREATE VIEW "{database}"."{table}" AS SELECT * EXCLUDE (filename), '
            f'filename AS "$path" FROM read_parquet([{listed}], hive_partitioning = true, '
            "union_by_name = true, filename = true, hive_types = {'dt': 'VARCHAR'})"
        )
        described = self.con.execute(f'DESCRIBE "{database}"."{table}"').fetchall()
        check_source_columns(
            {name: _duckdb_to_glue_type(kind) for name, kind, *_ in described}, table
        )

    def query(self, athena_sql: str) -> pd.DataFrame:
        return self._run(to_duckdb_sql(athena_sql)).df()

    def unload(self, athena_sql: str, folder: str) -> None:
        Path(folder).parent.mkdir(parents=True, exist_ok=True)
        self._run(copy_statement(to_duckdb_sql(athena_sql), folder))

    def _run(self, sql: str) -> Any:
        import duckdb

        try:
            return self.con.execute(sql)
        except duckdb.Error as err:
            raise StepError(STEP, self._failure(err)) from err

    def _failure(self, err: Exception) -> str:
        """The file a failed query could not read, found by reading each file's columns alone;
        the engine's own message when no single file fails."""
        import duckdb

        columns = ", ".join(REQUIRED_SOURCE_COLUMNS)
        for path in self.files:
            try:
                self.con.execute(
                    f"SELECT count({columns.replace(', ', '), count(')}) FROM read_parquet("
                    f"'{path.replace(chr(39), chr(39) * 2)}', hive_partitioning = true, "
                    "hive_types = {'dt': 'VARCHAR'})"
                ).fetchall()
            except duckdb.Error as file_err:
                return f"cannot read source file {path}: {one_line(file_err)}"
        return f"query over the local table {self.table} failed: {one_line(err)}"

    def close(self) -> None:
        self.con.close()


# --- AWS: Athena through awswrangler ----------------------------------------------------------


def source_column_types_aws(database: str, table: str) -> dict[str, str]:
    import awswrangler as wr

    types = wr.catalog.get_table_types(database=database, table=table)
    if types is None:
        raise StepError(STEP, f"source table {database}.{table} does not exist in the Glue catalog")
    return types


def source_location_aws(database: str, table: str) -> str:
    """Where the source table's files are: the contract reads their folders and footers."""
    import awswrangler as wr

    check_source_columns(source_column_types_aws(database, table), f"{database}.{table}")
    return wr.catalog.get_table_location(database=database, table=table).rstrip("/")


class AthenaEngine:
    """Athena in the environment's workgroup; its results go to the workgroup's location."""

    def __init__(self, database: str, table: str, workgroup: str) -> None:
        self.database, self.table, self.workgroup = database, table, workgroup

    def query(self, athena_sql: str) -> pd.DataFrame:
        import awswrangler as wr

        try:
            # Aggregates are small (names, days, files), so a plain query beats CTAS: no
            # temporary table, no Glue write permissions needed.
            return wr.athena.read_sql_query(
                athena_sql, database=self.database, workgroup=self.workgroup, ctas_approach=False
            )
        except wr.exceptions.QueryFailed as err:
            raise StepError(STEP, self._failure(err)) from err

    def unload(self, athena_sql: str, folder: str) -> None:
        import awswrangler as wr

        statement = unload_statement(athena_sql, folder)
        try:
            execution = wr.athena.start_query_execution(
                statement, database=self.database, workgroup=self.workgroup, wait=True
            )
        except wr.exceptions.QueryFailed as err:
            raise StepError(STEP, self._failure(err)) from err
        state = execution.get("Status", {}).get("State")
        if state != "SUCCEEDED":
            reason = execution.get("Status", {}).get("StateChangeReason", "no reason given")
            raise StepError(STEP, self._failure(f"UNLOAD ended {state}: {reason}"))

    def _failure(self, err: object) -> str:
        # Athena names the file it could not read (HIVE_CURSOR_ERROR ... s3://...) itself.
        return f"Athena query over {self.database}.{self.table} failed: {one_line(err)}"

    def close(self) -> None:
        pass


# --- the result ------------------------------------------------------------------------------


@dataclass(frozen=True)
class SourceRules:
    """The source contract's settings (cdk.json `pipeline.source_timezone`, ...)."""

    timezone: str = "Asia/Tokyo"
    max_missing_days: int = 2
    missing_days_window: int = 28
    min_day_volume_ratio: float = 0.5


def _top_files(files: pd.DataFrame, column: str) -> dict[str, int]:
    named = files[files[column] > 0].sort_values([column, "source_file"], ascending=[False, True])
    named = named.head(5)
    return {str(f): int(n) for f, n in zip(named["source_file"], named[column], strict=True)}


def _repeats_by_day(days: pd.DataFrame) -> dict[str, int]:
    """The partitions where rows repeat an application of the same day, most repeats first."""
    repeats = (days["counted_rows"] - days["applications"]).astype(int)
    found = sorted(
        (
            (int(n), pd.Timestamp(d).date().isoformat())
            for d, n in zip(days["ds"], repeats, strict=True)
            if n > 0
        ),
        reverse=True,
    )
    return {day: n for n, day in found[:5]}


def _stamp(value: Any) -> str | None:
    return None if pd.isna(value) else pd.Timestamp(value).isoformat(sep=" ")


def read_figures(
    aggregates: pd.DataFrame, start: dt.date, end: dt.date
) -> tuple[dict[str, Any], dict[dt.date, int]]:
    """The contract's figures from extract_quality.sql's rows, and each day's applications."""
    level = aggregates["level"]
    [window] = aggregates[level == "window"].to_dict("records") or [{}]
    days = aggregates[(level == "day") & aggregates["ds"].notna()]
    totals = {
        pd.Timestamp(day).date(): int(n)
        for day, n in zip(days["ds"], days["applications"], strict=True)
        if n
    }
    files = aggregates[level == "file"]
    applications = int(window.get("applications") or 0)
    counted_rows = int(window.get("counted_rows") or 0)
    found = {
        "window": [start.isoformat(), end.isoformat()],
        "rows_read": int(window.get("row_count") or 0),
        "rows_counted": counted_rows,
        "applications": applications,
        "repeated_rows": max(counted_rows - applications, 0),
        "counted_on_several_days": max(sum(totals.values()) - applications, 0),
        "repeats_by_day": _repeats_by_day(days),
        **{
            key: {"rows": int(window.get(key) or 0), "files": _top_files(files, key)}
            for key in ("blank_ids", "blank_names", "no_times")
        },
        "outside_window": {
            "rows": int(window.get("outside") or 0),
            "first": _stamp(window.get("outside_first")),
            "last": _stamp(window.get("outside_last")),
            "files": _top_files(files, "outside"),
        },
        "day_applications": {day.isoformat(): n for day, n in sorted(totals.items())},
    }
    return found, totals


def query_figures(
    engine: LocalEngine | AthenaEngine, scan: source_contract.SourceScan, source: QuerySource
) -> tuple[QuerySource, dict[str, Any], dict[dt.date, int]]:
    """Fold the names, then read the contract's aggregates: the query source with the folding
    and the time zones filled in, the figures found and each day's applications."""
    names = source_contract.fold_names(engine.query(build_query(NAMES_SQL, source)))
    aware_days, aware_files = scan.aware_by_day()
    source = replace(
        source,
        aware_days=tuple(aware_days),
        aware_files=tuple(aware_files),
        variants=tuple(names.variants.items()),
    )
    aggregates = engine.query(build_query(QUALITY_SQL, source))
    found, totals = read_figures(aggregates, source.start, source.end)
    found["folded_names"] = names.folded
    return source, found, totals


def event_days(args: argparse.Namespace, start: dt.date, end: dt.date) -> frozenset[dt.date]:
    """The calendar's event days in the window: expected to differ, so not judged by volume."""
    calendar = build_calendar(args, STEP)
    codes = calendar.codes(start, (end - start).days + 1)
    return frozenset(start + dt.timedelta(days=int(i)) for i in codes.nonzero()[0])


def check_execution_day_counted(totals: dict[dt.date, int], end: dt.date) -> None:
    if not totals:
        raise StepError(STEP, "the extract is empty: no applications in the look-back window")
    if end not in totals:
        raise StepError(
            STEP,
            f"no data for the execution date {end}: partition dt={end} has no countable rows "
            "(has the day's load landed?)",
        )


def new_attempt_folder(ctx: RunContext) -> str:
    """A folder no earlier attempt of this step wrote to: UNLOAD refuses to overwrite."""
    stamp = dt.datetime.now(dt.UTC).strftime("%Y%m%dT%H%M%SZ")
    return ctx.path(*run_folder.EXTRACT_COUNTS, f"{stamp}-{uuid.uuid4().hex[:8]}")


def run(
    ctx: RunContext,
    lookback_days: int,
    database: str,
    workgroup: str,
    table: str,
    rules: SourceRules | None = None,
    events: argparse.Namespace | None = None,
) -> str:
    """Check the source, count the window for ctx's date; returns the counts' folder."""
    rules = rules or SourceRules()
    start, end = lookback_window(ctx.execution_date, lookback_days)
    source = QuerySource(database, table, start, end, rules.timezone)
    source.values()  # identifiers checked before anything is read
    if ctx.is_local:
        table_root = storage.join(ctx.data_root, table)
    else:
        table_root = source_location_aws(database, table)
    # The contract is the declared source table's columns (pipeline_code.tables).
    scan = source_contract.scan_source(table_root, tables.APPLICATIONS, start, end)
    if scan.first_day is None:
        raise StepError(STEP, f"source table {table} has no partitions under {table_root}")
    source_contract.check_execution_day(scan, end)
    absent = source_contract.missing_days(scan, start, end)
    # Missing partitions alone may already be too many: no query is run then.
    source_contract.check_recent_days(
        scan, end, absent, [], rules.max_missing_days, rules.missing_days_window
    )
    engine = (
        LocalEngine([f.uri for f in scan.files], database, table)
        if ctx.is_local
        else AthenaEngine(database, table, workgroup)
    )
    try:
        source, found, totals = query_figures(engine, scan, source)
        check_execution_day_counted(totals, end)
        calendar_days = event_days(events or default_event_options(), start, end)
        low = source_contract.low_days(totals, scan.days, rules.min_day_volume_ratio, calendar_days)
        source_contract.check_execution_day_volume(low, end, rules.min_day_volume_ratio)
        source_contract.check_recent_days(
            scan,
            end,
            absent,
            [day.day for day in low],
            rules.max_missing_days,
            rules.missing_days_window,
        )
        folder = new_attempt_folder(ctx)
        engine.unload(build_query(COUNTS_SQL, source), folder)
    finally:
        engine.close()
    report = _quality_report(ctx, rules, scan, found, absent, low)
    storage.write_json(report, ctx.path(*run_folder.EXTRACT_QUALITY))
    storage.write_json(
        {"folder": folder, "buckets": shards.BUCKETS}, ctx.path(*run_folder.COUNTS_MANIFEST)
    )
    print(
        f"{STEP}: {found['rows_counted']} rows counted as {found['applications']} applications, "
        f"{start}..{end} -> {folder}"
    )
    return folder


def _quality_report(
    ctx: RunContext,
    rules: SourceRules,
    scan: source_contract.SourceScan,
    found: dict,
    absent: list[dt.date],
    low: list[source_contract.LowDay],
) -> dict:
    return {
        "step": STEP,
        "execution_date": ctx.execution_date.isoformat(),
        "execution_id": ctx.execution_id,
        "source_timezone": rules.timezone,
        "files_checked": len(scan.files),
        "files_with_aware_timestamps": len(scan.aware_files),
        "refused_folders": scan.refused_folders,
        "missing_days": [day.isoformat() for day in absent],
        "partial_days": [
            {"day": d.day.isoformat(), "applications": d.applications, "expected": d.expected}
            for d in low
        ],
        **found,
        "warnings": source_contract.warnings(found, scan, absent, low),
    }


def unknown_days(source_quality: dict[str, Any]) -> frozenset[dt.date]:
    """The days Extract found without a partition or far too low: unknown, not zero."""
    days = [*source_quality.get("missing_days", [])]
    days += [item["day"] for item in source_quality.get("partial_days", [])]
    return frozenset(dt.date.fromisoformat(day) for day in days)


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    add_common_arguments(parser)
    parser.add_argument("--lookback-days", type=int, default=730, help="days of history to read")
    parser.add_argument("--database", required=True, help="Glue database of the source table")
    parser.add_argument("--workgroup", default="primary", help="Athena workgroup (AWS only)")
    parser.add_argument("--table", default=tables.APPLICATIONS.name, help="source table name")
    parser.add_argument(
        "--source-timezone", default="Asia/Tokyo", help="the zone naive applied_at values are in"
    )
    parser.add_argument(
        "--max-missing-days", type=int, default=2, help="unknown recent days tolerated"
    )
    parser.add_argument(
        "--missing-days-window", type=int, default=28, help="how many recent days are checked"
    )
    parser.add_argument(
        "--min-day-volume-ratio",
        type=float,
        default=0.5,
        help="a day below this share of its weekday's recent median is partial",
    )
    add_event_arguments(parser)
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> None:
    if shards.skip_unless_leader(STEP):
        return
    args = parse_args(argv)
    rules = SourceRules(
        args.source_timezone,
        args.max_missing_days,
        args.missing_days_window,
        args.min_day_volume_ratio,
    )
    _check_rules(rules)
    ctx = context_from(args)
    run(ctx, args.lookback_days, args.database, args.workgroup, args.table, rules, args)


def _check_rules(rules: SourceRules) -> None:
    try:
        ZoneInfo(rules.timezone)
    except (ZoneInfoNotFoundError, ValueError) as err:
        raise StepError(STEP, f"--source-timezone {rules.timezone!r} is not a time zone") from err
    if rules.max_missing_days < 0 or rules.missing_days_window < 1:
        raise StepError(STEP, "--max-missing-days must be >= 0 and --missing-days-window >= 1")
    if not 0 <= rules.min_day_volume_ratio < 1:
        raise StepError(STEP, "--min-day-volume-ratio must be at least 0 and below 1")


if __name__ == "__main__":
    sys.exit(run_entry_point(main))
