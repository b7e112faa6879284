"""The published views `forecasts` and `forecast_metrics`: valid Athena (Trino) SQL selecting the
declared columns, encoded as Athena reads a view, and, run (transpiled to DuckDB) over the S3
layout PostProc writes, showing exactly the version each date's `publications` row names."""

from __future__ import annotations

import base64
import datetime as dt
import json
from pathlib import Path

import duckdb
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import sqlglot
from sqlglot import exp

from pipeline_code import publication, tables
from stacks import glue_views

DAY = dt.date(2026, 11, 28)
OTHER_DAY = dt.date(2026, 11, 27)


@pytest.mark.parametrize("table", tables.PUBLISHED_TABLES, ids=lambda t: t.name)
def test_the_view_reads_its_versions_and_publications_and_selects_the_declared_columns(
    table: tables.Table,
) -> None:
    parsed = sqlglot.parse_one(glue_views.published_view_sql(table), read="trino")
    assert isinstance(parsed, exp.Select)
    assert parsed.named_selects == [c.name for c in glue_views.published_view_columns(table)]
    assert {t.name for t in parsed.find_all(exp.Table)} == {
        f"{table.name}_versions",
        "publications",
    }
    assert all(not t.db for t in parsed.find_all(exp.Table))


def test_the_view_is_encoded_as_athena_writes_a_view() -> None:
    table_input = glue_views.published_view_input(tables.FORECASTS, "forecast_prod")
    assert table_input["TableType"] == "VIRTUAL_VIEW"
    text = str(table_input["ViewOriginalText"])
    payload = json.loads(base64.b64decode(text.removeprefix("/* Presto View: ")[:-3]))
    assert payload["originalSql"] == glue_views.published_view_sql(tables.FORECASTS)
    assert payload["schema"] == "forecast_prod"
    assert payload["columns"][:3] == [
        {"name": "series_id", "type": "varchar"},
        {"name": "target_date", "type": "date"},
        {"name": "yhat", "type": "double"},
    ]
    assert payload["columns"][-1] == {"name": "execution_date", "type": "varchar"}


# -- the views run over the layout PostProc writes ----------------------------------------------


def _rows(table: tables.Table, execution_id: str, value: float) -> pa.Table:
    schema = tables.arrow_schema(table)
    row = {}
    for field in schema:
        if field.name == "execution_id":
            row[field.name] = execution_id
        elif pa.types.is_floating(field.type):
            row[field.name] = value
        elif pa.types.is_integer(field.type):
            row[field.name] = 3
        elif pa.types.is_date(field.type):
            row[field.name] = DAY + dt.timedelta(days=1)
        elif pa.types.is_boolean(field.type):
            row[field.name] = True
        else:
            row[field.name] = "A"
    return pa.Table.from_pylist([row, row], schema=schema)


def _write_version(root: Path, day: dt.date, execution_id: str, value: float) -> str:
    version = f"{execution_id}-0000beef"
    for table in tables.PUBLISHED_TABLES:
        folder = Path(publication.version_location(str(root), table, day, version))
        folder.mkdir(parents=True)
        pq.write_table(_rows(table, execution_id, value), folder / "part-0.parquet")
    return version


def _point(root: Path, day: dt.date, version: str, execution_id: str) -> None:
    pointer = Path(publication.pointer_uri(str(root), day))
    pointer.parent.mkdir(parents=True, exist_ok=True)
    row = {
        "version": version,
        "execution_id": execution_id,
        "published_at": dt.datetime(2026, 1, 1),
    }
    pq.write_table(
        pa.Table.from_pylist([row], schema=tables.arrow_schema(tables.PUBLICATIONS)), pointer
    )


def _query(root: Path, table: tables.Table) -> list[dict[str, object]]:
    con = duckdb.connect()
    for stored in publication.AWS_TABLES:
        pattern = root / stored.name / "**" / "*.parquet"
        con.sql(
            f"CREATE VIEW {stored.name} AS SELECT * FROM "
            f"read_parquet('{pattern}', hive_partitioning = true, hive_types_autocast = false)"
        )
    sql = sqlglot.transpile(glue_views.published_view_sql(table), read="trino", write="duckdb")[0]
    return con.sql(sql).df().to_dict("records")


def test_each_date_shows_the_version_its_publications_row_names(tmp_path: Path) -> None:
    old = _write_version(tmp_path, DAY, "exec-1", 1.0)
    _point(tmp_path, DAY, old, "exec-1")
    other = _write_version(tmp_path, OTHER_DAY, "exec-0", 9.0)
    _point(tmp_path, OTHER_DAY, other, "exec-0")
    # A newer version written but not yet pointed at is invisible in both views.
    new = _write_version(tmp_path, DAY, "exec-2", 2.0)
    for table in tables.PUBLISHED_TABLES:
        shown = {(r["execution_date"], r["execution_id"]) for r in _query(tmp_path, table)}
        assert shown == {(str(DAY), "exec-1"), (str(OTHER_DAY), "exec-0")}
    # Replacing the one row switches both views.
    _point(tmp_path, DAY, new, "exec-2")
    for table in tables.PUBLISHED_TABLES:
        rows = _query(tmp_path, table)
        assert {(r["execution_date"], r["execution_id"]) for r in rows} == {
            (str(DAY), "exec-2"),
            (str(OTHER_DAY), "exec-0"),
        }
        assert list(rows[0]) == [c.name for c in glue_views.published_view_columns(table)]
        assert len(rows) == 4
