"""The dashboard's Athena view: its SQL, its declared columns and its Glue encoding.

The view is a Glue table of type VIRTUAL_VIEW, which is what Athena's own `CREATE VIEW` writes:
`ViewOriginalText` carries `/* Presto View: <base64 JSON> */`, the JSON holding the SQL and the
columns with their Trino types. Athena compares those types with what the SQL returns and calls
the view stale on any mismatch, so the columns are declared once here and tested against the SQL.
"""

from __future__ import annotations

import base64
import json
from dataclasses import dataclass
from pathlib import Path

VIEW_NAME = "forecast_dashboard"
SQL_PATH = Path(__file__).parent / "sql" / "dashboard_view.sql"
ATHENA_CATALOG = "awsdatacatalog"


@dataclass(frozen=True)
class ViewColumn:
    name: str
    trino_type: str  # as the view's SQL returns it
    glue_type: str  # the Hive name Glue stores
    quicksight_type: str  # the data set's input column type
    comment: str


COLUMNS: tuple[ViewColumn, ...] = (
    ViewColumn("series_id", "varchar", "string", "STRING", "the series (car model)"),
    ViewColumn("ds", "date", "date", "DATETIME", "the day"),
    ViewColumn("y", "bigint", "bigint", "INTEGER", "actual applications; null for future days"),
    ViewColumn("yhat", "double", "double", "DECIMAL", "latest point forecast"),
    ViewColumn("yhat_lower", "double", "double", "DECIMAL", "lower prediction bound"),
    ViewColumn("yhat_upper", "double", "double", "DECIMAL", "upper prediction bound"),
    ViewColumn("model", "varchar", "string", "STRING", "the model that forecast the series"),
    ViewColumn(
        "forecast_execution_date",
        "varchar",
        "string",
        "STRING",
        "execution date (YYYY-MM-DD) of the forecasts shown",
    ),
)


def view_sql() -> str:
    """The view's query as stored in the view: comment lines dropped (they document the file,
    not the view) and no trailing semicolon (Athena rejects one inside a view)."""
    lines = SQL_PATH.read_text().splitlines()
    kept = [line for line in lines if not line.lstrip().startswith("--")]
    return "\n".join(kept).strip().rstrip(";").rstrip()


def presto_view_json(database: str) -> dict[str, object]:
    return {
        "originalSql": view_sql(),
        "catalog": ATHENA_CATALOG,
        "schema": database,
        "columns": [{"name": c.name, "type": c.trino_type} for c in COLUMNS],
    }


def view_original_text(database: str) -> str:
    """`ViewOriginalText` in the encoding Athena reads: the JSON, base64, in a comment."""
    payload = json.dumps(presto_view_json(database), separators=(",", ":"))
    return f"/* Presto View: {base64.b64encode(payload.encode()).decode()} */"


VIEW_EXPANDED_TEXT = "/* Presto View */"
