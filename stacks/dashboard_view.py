"""The dashboard's Athena view: its SQL, its declared columns (with the QuickSight type each
becomes) and its Glue `TableInput` (encoded as `stacks.glue_views` encodes every view)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from stacks import glue_views

VIEW_NAME = "forecast_dashboard"
SQL_PATH = Path(__file__).parent / "sql" / "dashboard_view.sql"
ATHENA_CATALOG = glue_views.ATHENA_CATALOG


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
    ViewColumn(
        "series_kind",
        "varchar",
        "string",
        "STRING",
        "'series' for one car model, 'total' for the sum of all (leave it out when summing)",
    ),
    *(
        ViewColumn(
            f"yhat_{days}d_ahead",
            "double",
            "double",
            "DECIMAL",
            f"what the publication of {days} day{'s' if days > 1 else ''} before the day forecast"
            " for it",
        )
        for days in (1, 7, 28)
    ),
)


def view_sql() -> str:
    """The view's query as stored in the view: comment lines dropped (they document the file,
    not the view) and no trailing semicolon (Athena rejects one inside a view)."""
    lines = SQL_PATH.read_text().splitlines()
    kept = [line for line in lines if not line.lstrip().startswith("--")]
    return "\n".join(kept).strip().rstrip(";").rstrip()


def table_input(database: str) -> dict[str, object]:
    return glue_views.view_table_input(
        VIEW_NAME,
        "Latest forecasts per series next to daily actual applications",
        view_sql(),
        COLUMNS,
        database,
    )
