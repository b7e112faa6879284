"""Extract: daily applications per car model for the look-back window, into `extract/data.parquet`,
and what the source contract found, into `extract/data_quality.json`.

The query is `pipeline_code/sql/extract.sql` (Athena/Trino dialect). On AWS (`--data-root s3://...`)
Athena runs it through awswrangler; locally sqlglot transpiles the same SQL to DuckDB, which reads
the lake's Hive-partitioned Parquet (`<lake>/<table>/dt=YYYY-MM-DD/*.parquet`).

Before querying, the source is checked (`pipeline_code.source_contract`): partition folder names,
every window file's schema, missing days. The query returns the raw rows; they are counted here,
once per application_id, per normalised car model and per day in the source time zone. The result
must hold the execution date itself: a missing day usually means the day's load has not landed,
and forecasting from a stale day would publish a wrong forecast silently. In a multi-instance
job, only the leader instance extracts; the others exit at once.

    python -m pipeline_code.steps.extract --execution-date 2025-06-30 --execution-id local-1 \
        --data-root .lake --lookback-days 730 --database forecast_demo
"""

from __future__ import annotations

import argparse
import datetime as dt
import re
import sys
from dataclasses import dataclass
from pathlib import Path
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import pandas as pd

from pipeline_code import run_folder, shards, source_contract, storage, tables
from pipeline_code.errors import StepError, run_entry_point
from pipeline_code.run_context import RunContext, add_common_arguments, context_from

STEP = "Extract"
SQL_PATH = Path(__file__).resolve().parent.parent / "sql" / "extract.sql"

_PLACEHOLDER = re.compile(r"\{\{\s*([A-Za-z_]+)\s*\}\}")
_IDENTIFIER = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")

# The source columns the SQL reads, with the Glue types it accepts for each.
REQUIRED_SOURCE_COLUMNS: dict[str, frozenset[str]] = {
    "application_id": frozenset({"string", "varchar"}),
    "car_model": frozenset({"string", "varchar"}),
    "applied_at": frozenset({"timestamp", "date"}),
    "dt": frozenset({"string", "varchar"}),
}
OUTPUT_COLUMNS = ("series_id", "ds", "y")


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


def build_query(database: str, table: str, start: dt.date, end: dt.date) -> str:
    """The extract SQL in the Athena dialect, with validated parameters filled in."""
    values = {
        "database": validate_identifier(database, "database"),
        "table": validate_identifier(table, "table"),
        # date.isoformat() of a real date can only be YYYY-MM-DD: safe inside quotes.
        "start_date": start.isoformat(),
        "end_date": end.isoformat(),
    }
    return render_sql(SQL_PATH.read_text(), values)


def to_duckdb_sql(athena_sql: str) -> str:
    import sqlglot

    return sqlglot.transpile(athena_sql, read="trino", write="duckdb")[0]


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


def _local_connection(files: list[str], database: str, table: str):  # -> DuckDBPyConnection
    """A DuckDB connection where `<database>.<table>` is the checked files of the lake's table,
    with the file each row came from as `"$path"` (as Athena names it)."""
    import duckdb

    listed = ", ".join("'" + path.replace("'", "''") + "'" for path in files)
    con = duckdb.connect()
    # Timestamps with a time zone come back as UTC wall clock, whatever the host's zone.
    con.execute("SET TimeZone = 'UTC'")
    con.execute(f'CREATE SCHEMA "{database}"')
    # dt stays a string, as in Glue; DuckDB would otherwise guess DATE from its values.
    con.execute(
        f'CREATE VIEW "{database}"."{table}" AS SELECT * EXCLUDE (filename), '
        f'filename AS "$path" FROM read_parquet([{listed}], hive_partitioning = true, '
        "union_by_name = true, filename = true, hive_types = {'dt': 'VARCHAR'})"
    )
    return con


def query_local(files: list[str], database: str, table: str, athena_sql: str) -> pd.DataFrame:
    import duckdb

    if not files:
        return pd.DataFrame(columns=list(source_contract.ROW_COLUMNS))
    con = _local_connection(files, database, table)
    try:
        described = con.execute(f'DESCRIBE "{database}"."{table}"').fetchall()
        check_source_columns(
            {name: _duckdb_to_glue_type(kind) for name, kind, *_ in described}, table
        )
        return con.execute(to_duckdb_sql(athena_sql)).df()
    except duckdb.Error as err:
        raise StepError(STEP, f"query over the local table {table} failed: {err}") from err
    finally:
        con.close()


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


def query_athena(database: str, table: str, workgroup: str, athena_sql: str) -> pd.DataFrame:
    import awswrangler as wr

    try:
        # The result is small (models x days), so a plain query beats CTAS: no temporary table,
        # no Glue write permissions needed.
        return wr.athena.read_sql_query(
            athena_sql, database=database, workgroup=workgroup, ctas_approach=False
        )
    except wr.exceptions.QueryFailed as err:
        raise StepError(STEP, f"Athena query over {database}.{table} failed: {err}") from err


# --- the result ------------------------------------------------------------------------------


@dataclass(frozen=True)
class SourceRules:
    """The source contract's settings (cdk.json `pipeline.source_timezone`, ...)."""

    timezone: str = "Asia/Tokyo"
    max_missing_days: int = 2
    missing_days_window: int = 28


def count_result(
    rows: pd.DataFrame,
    scan: source_contract.SourceScan,
    rules: SourceRules,
    start: dt.date,
    end: dt.date,
) -> tuple[pd.DataFrame, dict]:
    """Counted series (`series_id, ds, y`) and what the contract found on the way."""
    counts, found = source_contract.count_applications(rows, scan, rules.timezone, start, end)
    if counts.empty:
        raise StepError(STEP, "the extract is empty: no applications in the look-back window")
    if not (counts["ds"] == end).any():
        raise StepError(
            STEP,
            f"no data for the execution date {end}: partition dt={end} has no countable rows "
            "(has the day's load landed?)",
        )
    return counts.sort_values(["series_id", "ds"]).reset_index(drop=True), found


def run(
    ctx: RunContext,
    lookback_days: int,
    database: str,
    workgroup: str,
    table: str,
    rules: SourceRules | None = None,
) -> str:
    """Check the source, extract and count the window for ctx's date; returns the URI written."""
    rules = rules or SourceRules()
    start, end = lookback_window(ctx.execution_date, lookback_days)
    athena_sql = build_query(database, table, start, end)
    if ctx.is_local:
        table_root = storage.join(ctx.data_root, table)
    else:
        table_root = source_location_aws(database, table)
    # The contract is the declared source table's columns (pipeline_code.tables).
    scan = source_contract.scan_source(table_root, tables.APPLICATIONS, start, end)
    if scan.first_day is None:
        raise StepError(STEP, f"source table {table} has no partitions under {table_root}")
    absent = source_contract.check_missing_days(
        scan, start, end, rules.max_missing_days, rules.missing_days_window
    )
    if ctx.is_local:
        rows = query_local([f.uri for f in scan.files], database, table, athena_sql)
    else:
        rows = query_athena(database, table, workgroup, athena_sql)
    result, found = count_result(rows, scan, rules, start, end)
    uri = ctx.path(*run_folder.EXTRACT_DATA)
    storage.write_table(result, uri)
    storage.write_json(
        _quality_report(ctx, rules, scan, found, absent), ctx.path(*run_folder.EXTRACT_QUALITY)
    )
    print(
        f"{STEP}: {len(result)} rows, {result['series_id'].nunique()} series, "
        f"{start}..{end} -> {uri}"
    )
    return uri


def _quality_report(
    ctx: RunContext,
    rules: SourceRules,
    scan: source_contract.SourceScan,
    found: dict,
    absent: list[dt.date],
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
        **found,
        "warnings": source_contract.warnings(found, scan, absent),
    }


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
        "--max-missing-days", type=int, default=2, help="missing recent days tolerated"
    )
    parser.add_argument(
        "--missing-days-window", type=int, default=28, help="how many recent days are checked"
    )
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> None:
    if shards.skip_unless_leader(STEP):
        return
    args = parse_args(argv)
    rules = SourceRules(args.source_timezone, args.max_missing_days, args.missing_days_window)
    _check_rules(rules)
    run(context_from(args), args.lookback_days, args.database, args.workgroup, args.table, rules)


def _check_rules(rules: SourceRules) -> None:
    try:
        ZoneInfo(rules.timezone)
    except (ZoneInfoNotFoundError, ValueError) as err:
        raise StepError(STEP, f"--source-timezone {rules.timezone!r} is not a time zone") from err
    if rules.max_missing_days < 0 or rules.missing_days_window < 1:
        raise StepError(STEP, "--max-missing-days must be >= 0 and --missing-days-window >= 1")


if __name__ == "__main__":
    sys.exit(run_entry_point(main))
