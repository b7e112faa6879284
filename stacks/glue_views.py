"""Glue tables and Athena views as CloudFormation resources: the encoding Athena itself writes
for a view, and the two published views, `forecasts` and `forecast_metrics`, over their stored
versions.

A view is a Glue table of type VIRTUAL_VIEW, which is what Athena's own `CREATE VIEW` writes:
`ViewOriginalText` carries `/* Presto View: <base64 JSON> */`, the JSON holding the SQL and the
columns with their Trino types. Athena compares those types with what the SQL returns and calls
the view stale on any mismatch, so each view's columns are declared once and tested against its
SQL.

Why the published tables are views: Glue has no transaction across two tables, but a reader of
both views reads one `publications` row per date, which PostProc replaces with one S3 write. So
both tables switch to a new execution together, or neither does (`pipeline_code.publication`).
"""

from __future__ import annotations

import base64
import json
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol

import aws_cdk as cdk
from constructs import Construct

from pipeline_code import tables

ATHENA_CATALOG = "awsdatacatalog"
VIEW_EXPANDED_TEXT = "/* Presto View */"
TRINO_TYPES = {
    "string": "varchar",
    "double": "double",
    "bigint": "bigint",
    "boolean": "boolean",
    "date": "date",
    "timestamp": "timestamp(3)",
}


class ViewColumnLike(Protocol):
    @property
    def name(self) -> str: ...
    @property
    def trino_type(self) -> str: ...
    @property
    def glue_type(self) -> str: ...
    @property
    def comment(self) -> str: ...


@dataclass(frozen=True)
class ViewColumn:
    name: str
    trino_type: str  # as the view's SQL returns it
    glue_type: str  # the Hive name Glue stores
    comment: str


def view_original_text(sql: str, columns: Sequence[ViewColumnLike], database: str) -> str:
    """`ViewOriginalText` in the encoding Athena reads: the JSON, base64, in a comment."""
    payload = {
        "originalSql": sql,
        "catalog": ATHENA_CATALOG,
        "schema": database,
        "columns": [{"name": c.name, "type": c.trino_type} for c in columns],
    }
    encoded = base64.b64encode(json.dumps(payload, separators=(",", ":")).encode()).decode()
    return f"/* Presto View: {encoded} */"


def view_table_input(
    name: str, description: str, sql: str, columns: Sequence[ViewColumnLike], database: str
) -> dict[str, object]:
    """The Glue `TableInput` of an Athena view."""
    return {
        "Name": name,
        "Description": description,
        "TableType": "VIRTUAL_VIEW",
        "Parameters": {"presto_view": "true", "comment": "Presto View"},
        "ViewOriginalText": view_original_text(sql, columns, database),
        "ViewExpandedText": VIEW_EXPANDED_TEXT,
        "PartitionKeys": [],
        "StorageDescriptor": {
            "Columns": [
                {"Name": c.name, "Type": c.glue_type, "Comment": c.comment} for c in columns
            ],
            "SerdeInfo": {},
        },
    }


# --- the published views --------------------------------------------------------------------


def published_view_columns(table: tables.Table) -> tuple[ViewColumn, ...]:
    """The table's columns, then its date partition column as Athena returns it (varchar)."""
    data = (
        ViewColumn(c.name, TRINO_TYPES[c.glue_type], c.glue_type, c.comment) for c in table.columns
    )
    date = ViewColumn(table.partition_key, "varchar", "string", "YYYY-MM-DD")
    return (*data, date)


def published_view_sql(table: tables.Table) -> str:
    """Each date's rows of the version `publications` names; table names unqualified (the view
    lives in the tables' database)."""
    key, version = table.partition_key, tables.VERSION_KEY
    selected = ", ".join(f"v.{column.name}" for column in published_view_columns(table))
    return (
        f"SELECT {selected}\n"
        f"FROM {tables.versions_of(table).name} AS v\n"
        f"JOIN {tables.PUBLICATIONS.name} AS p\n"
        f"    ON v.{key} = p.{key} AND v.{version} = p.{version}"
    )


def published_view_input(table: tables.Table, database: str) -> dict[str, object]:
    return view_table_input(
        table.name,
        table.comment,
        published_view_sql(table),
        published_view_columns(table),
        database,
    )


def glue_table_resource(
    scope: Construct, construct_id: str, database: str, table_input: dict[str, object]
) -> cdk.CfnResource:
    """An `AWS::Glue::Table` from a Glue-API-shaped `TableInput` (CloudFormation's has the same
    shape), so a table or view is declared once for the stacks and the tests."""
    stack = cdk.Stack.of(scope)
    return cdk.CfnResource(
        scope,
        construct_id,
        type="AWS::Glue::Table",
        properties={
            "CatalogId": stack.account,
            "DatabaseName": database,
            "TableInput": table_input,
        },
    )
