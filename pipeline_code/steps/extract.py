"""Extract: daily applications per car model for the look-back window, into `extract/data.parquet`.

The query is `pipeline_code/sql/extract.sql` (Athena/Trino dialect). On AWS (`--data-root s3://...`)
Athena runs it through awswrangler; locally sqlglot transpiles the same SQL to DuckDB, which reads
the lake's Hive-partitioned Parquet (`<lake>/<table>/dt=YYYY-MM-DD/*.parquet`).

Before querying, the source table's columns are checked against what the SQL needs, so a changed
source schema fails with a message naming the column rather than a SQL error deep in the engine.
After querying, the result must be non-empty and must hold rows for the execution date itself: a
missing day usually means the day's load has not landed, and forecasting from a stale day would
publish a wrong forecast silently.

    python -m pipeline_code.steps.extract --execution-date 2025-06-30 --execution-id local-1 \
        --data-root .lake --lookback-days 730 --database forecast_demo
"""

from __future__ import annotations

import argparse
import datetime as dt
import re
import sys
from pathlib import Path

import pandas as pd

from pipeline_code import storage, tables
from pipeline_code.errors import StepError, run_entry_point
from pipeline_code.run_context import RunContext, add_common_arguments, context_from

STEP = "Extract"
SQL_PATH = Path(__file__).resolve().parent.parent / "sql" / "extract.sql"
OUTPUT = ("extract", "data.parquet")

_PLACEHOLDER = re.compile(r"\{\{\s*([A-Za-z_]+)\s*\}\}")
_IDENTIFIER = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")

# The source columns the SQL reads, with the Glue types it accepts for each.
REQUIRED_SOURCE_COLUMNS: dict[str, frozenset[str]] = {
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


def _local_connection(lake: str, database: str, table: str):  # -> duckdb.DuckDBPyConnection
    """A DuckDB connection where `<database>.<table>` is the lake's Hive-partitioned table."""
    import duckdb

    table_dir = Path(lake) / table
    if not any(table_dir.glob("*/*.parquet")):
        raise StepError(STEP, f"source table {table} has no Parquet files under {table_dir}")
    pattern = str(table_dir / "*" / "*.parquet").replace("'", "''")
    con = duckdb.connect()
    con.execute(f'CREATE SCHEMA "{database}"')
    # dt stays a string, as in Glue; DuckDB would otherwise guess DATE from its values.
    con.execute(
        f'CREATE VIEW "{database}"."{table}" AS SELECT * FROM read_parquet('
        f"'{pattern}', hive_partitioning = true, union_by_name = true, "
        "hive_types = {'dt': 'VARCHAR'})"
    )
    return con


def query_local(lake: str, database: str, table: str, athena_sql: str) -> pd.DataFrame:
    import duckdb

    con = _local_connection(lake, database, table)
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


def query_athena(database: str, table: str, workgroup: str, athena_sql: str) -> pd.DataFrame:
    import awswrangler as wr

    check_source_columns(source_column_types_aws(database, table), f"{database}.{table}")
    try:
        # The result is small (models x days), so a plain query beats CTAS: no temporary table,
        # no Glue write permissions needed.
        return wr.athena.read_sql_query(
            athena_sql, database=database, workgroup=workgroup, ctas_approach=False
        )
    except wr.exceptions.QueryFailed as err:
        raise StepError(STEP, f"Athena query over {database}.{table} failed: {err}") from err


# --- the result ------------------------------------------------------------------------------


def normalise_result(frame: pd.DataFrame, execution_date: dt.date) -> pd.DataFrame:
    """Check the query result and give it the series contract types: str, date, float."""
    missing = [column for column in OUTPUT_COLUMNS if column not in frame.columns]
    if missing:
        raise StepError(STEP, f"query result lacks columns {missing}; got {list(frame.columns)}")
    if frame.empty:
        raise StepError(STEP, "the extract is empty: no applications in the look-back window")
    out = frame[list(OUTPUT_COLUMNS)].copy()
    try:
        out["ds"] = pd.to_datetime(out["ds"]).dt.date
        out["y"] = pd.to_numeric(out["y"]).astype("float64")
    except (ValueError, TypeError) as err:
        raise StepError(STEP, f"query result has mistyped ds or y: {err}") from err
    out["series_id"] = out["series_id"].astype(str)
    if not (out["ds"] == execution_date).any():
        raise StepError(
            STEP,
            f"no data for the execution date {execution_date}: partition "
            f"dt={execution_date} has no rows (has the day's load landed?)",
        )
    return out.sort_values(["series_id", "ds"]).reset_index(drop=True)


def run(ctx: RunContext, lookback_days: int, database: str, workgroup: str, table: str) -> str:
    """Extract the window for ctx's date; returns the URI written."""
    start, end = lookback_window(ctx.execution_date, lookback_days)
    athena_sql = build_query(database, table, start, end)
    if ctx.is_local:
        frame = query_local(ctx.data_root, database, table, athena_sql)
    else:
        frame = query_athena(database, table, workgroup, athena_sql)
    result = normalise_result(frame, ctx.execution_date)
    uri = ctx.path(*OUTPUT)
    storage.write_table(result, uri)
    print(
        f"{STEP}: {len(result)} rows, {result['series_id'].nunique()} series, "
        f"{start}..{end} -> {uri}"
    )
    return uri


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    add_common_arguments(parser)
    parser.add_argument("--lookback-days", type=int, default=730, help="days of history to read")
    parser.add_argument("--database", required=True, help="Glue database of the source table")
    parser.add_argument("--workgroup", default="primary", help="Athena workgroup (AWS only)")
    parser.add_argument("--table", default=tables.APPLICATIONS.name, help="source table name")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    run(context_from(args), args.lookback_days, args.database, args.workgroup, args.table)


if __name__ == "__main__":
    sys.exit(run_entry_point(main))
