"""The dashboard view's SQL: valid Athena (Trino) SQL, selecting exactly the declared columns,
encoded in the view the way Athena reads it, and returning each series' latest forecasts next
to its actuals when run (transpiled to DuckDB) over a tiny local lake."""

from __future__ import annotations

import base64
import json
from datetime import date, datetime, timedelta

import duckdb
import pyarrow as pa
import pytest
import sqlglot
from sqlglot import exp

from pipeline_code import tables
from stacks import dashboard_view

TODAY = date.today()


def _parsed() -> exp.Expression:
    return sqlglot.parse_one(dashboard_view.view_sql(), read="trino")


def test_the_view_sql_parses_as_trino() -> None:
    statements = sqlglot.parse(dashboard_view.view_sql(), read="trino")
    assert len(statements) == 1 and isinstance(statements[0], exp.Select)


def test_the_view_selects_exactly_the_declared_columns_in_order() -> None:
    assert _parsed().named_selects == [column.name for column in dashboard_view.COLUMNS]


def test_the_view_reads_only_the_lake_tables_by_unqualified_name() -> None:
    parsed = _parsed()
    ctes = {cte.alias for cte in parsed.find_all(exp.CTE)}
    sources = {table.name for table in parsed.find_all(exp.Table)} - ctes
    assert sources == {tables.FORECASTS.name, tables.APPLICATIONS.name}
    assert all(not table.db for table in parsed.find_all(exp.Table))


def test_the_view_uses_only_existing_columns_of_its_tables() -> None:
    known = {
        *tables.FORECASTS.column_names,
        tables.FORECASTS.partition_key,
        *tables.APPLICATIONS.column_names,
        tables.APPLICATIONS.partition_key,
    }
    parsed = _parsed()
    aliases = {alias.alias for alias in parsed.find_all(exp.Alias)}
    referenced = {column.name for column in parsed.find_all(exp.Column)}
    assert referenced - known - aliases == set()


def test_the_glue_encoding_is_the_presto_view_athena_writes() -> None:
    text = dashboard_view.table_input("forecast_prod")["ViewOriginalText"]
    assert text.startswith("/* Presto View: ") and text.endswith(" */")
    payload = json.loads(base64.b64decode(text.removeprefix("/* Presto View: ")[:-3]))
    assert payload["originalSql"] == dashboard_view.view_sql()
    assert payload["catalog"] == "awsdatacatalog" and payload["schema"] == "forecast_prod"
    assert payload["columns"] == [
        {"name": column.name, "type": column.trino_type} for column in dashboard_view.COLUMNS
    ]
    assert not payload["originalSql"].rstrip().endswith(";")
    assert "--" not in payload["originalSql"]


# -- the view run over a local lake ------------------------------------------------------------


def _forecasts(execution_date: date, series: dict[str, float], days: int = 3) -> pa.Table:
    rows = [
        {
            "series_id": series_id,
            "target_date": execution_date + timedelta(days=offset),
            "yhat": level,
            "yhat_lower": level - 1,
            "yhat_upper": level + 1,
            "model": "ets",
            "execution_id": f"exec-{execution_date}",
            "execution_date": execution_date.isoformat(),
        }
        for series_id, level in series.items()
        for offset in range(days)
    ]
    schema = tables.arrow_schema(tables.FORECASTS).append(pa.field("execution_date", pa.string()))
    return pa.Table.from_pylist(rows, schema=schema)


def _applications(counts: dict[tuple[str, date], int]) -> pa.Table:
    rows = [
        {
            "application_id": f"{model}-{day}-{n}",
            "applied_at": datetime.combine(day, datetime.min.time())
            + timedelta(hours=9, minutes=n),
            "car_model": model,
            "plan": "12m",
            "channel": "web",
            "prefecture": "Tokyo",
            "dt": day.isoformat(),
        }
        for (model, day), count in counts.items()
        for n in range(count)
    ]
    schema = tables.arrow_schema(tables.APPLICATIONS).append(pa.field("dt", pa.string()))
    return pa.Table.from_pylist(rows, schema=schema)


@pytest.fixture
def rows() -> dict[tuple[str, date], tuple]:
    older = TODAY - timedelta(days=2)
    latest = TODAY
    forecasts = pa.concat_tables(
        [
            # An older run for both series, then a newer one for `aqua` only: `aqua` shows the
            # newer forecasts, `yaris` keeps its only ones.
            _forecasts(older, {"aqua": 10.0, "yaris": 5.0}),
            _forecasts(latest, {"aqua": 20.0, tables.TOTAL_SERIES_ID: 25.0}),
        ]
    )
    applications = _applications(
        {
            ("aqua", TODAY - timedelta(days=1)): 3,
            ("aqua", TODAY): 2,
            ("yaris", older): 4,
            ("yaris", TODAY - timedelta(days=500)): 9,  # beyond the view's history window
        }
    )
    return _run_view(forecasts, applications)


def _run_view(forecasts: pa.Table, applications: pa.Table) -> dict[tuple[str, date], dict]:
    """The view's rows by (series, day), the SQL transpiled to DuckDB over the two tables."""
    sql = sqlglot.transpile(dashboard_view.view_sql(), read="trino", write="duckdb")[0]
    connection = duckdb.connect()
    connection.register("forecasts", forecasts)
    connection.register("applications", applications)
    result = connection.execute(sql)
    names = [d[0] for d in result.description]
    return {(r[0], r[1]): dict(zip(names, r, strict=True)) for r in result.fetchall()}


def test_each_series_shows_its_latest_forecasts_only(rows: dict) -> None:
    aqua = {ds: row for (series, ds), row in rows.items() if series == "aqua" and row["yhat"]}
    assert {row["yhat"] for row in aqua.values()} == {20.0}
    assert {row["forecast_execution_date"] for row in aqua.values()} == {TODAY.isoformat()}
    yaris = [row for (series, _), row in rows.items() if series == "yaris" and row["yhat"]]
    assert {row["yhat"] for row in yaris} == {5.0} and len(yaris) == 3


def test_actuals_are_daily_counts_joined_by_series_and_day(rows: dict) -> None:
    assert rows[("aqua", TODAY)]["y"] == 2 and rows[("aqua", TODAY)]["yhat"] == 20.0
    yesterday = rows[("aqua", TODAY - timedelta(days=1))]
    assert yesterday["y"] == 3 and yesterday["yhat"] is None  # before the latest run
    older = TODAY - timedelta(days=2)
    assert rows[("yaris", older)]["y"] == 4 and rows[("yaris", older)]["yhat"] == 5.0
    future = rows[("aqua", TODAY + timedelta(days=2))]
    assert future["y"] is None and future["yhat_upper"] == 21.0


def test_history_beyond_the_window_is_left_out(rows: dict) -> None:
    assert ("yaris", TODAY - timedelta(days=500)) not in rows
    series = [key for key, row in rows.items() if row["series_kind"] == "series"]
    assert len(series) == 3 + 3 + 1  # aqua forecasts, yaris forecasts, aqua's actual of yesterday


def test_the_total_is_its_own_row_set_with_every_models_actuals(rows: dict) -> None:
    total = {ds: row for (sid, ds), row in rows.items() if sid == tables.TOTAL_SERIES_ID}
    assert {row["series_kind"] for row in total.values()} == {"total"}
    assert {key[0] for key, row in rows.items() if row["series_kind"] == "total"} == {
        tables.TOTAL_SERIES_ID
    }
    older = TODAY - timedelta(days=2)
    assert total[TODAY]["y"] == 2 and total[TODAY]["yhat"] == 25.0
    assert total[TODAY - timedelta(days=1)]["y"] == 3 and total[older]["y"] == 4
    # summing the series' rows of a day never includes the total
    series = [
        row for (_, ds), row in rows.items() if ds == TODAY and row["series_kind"] == "series"
    ]
    assert sum(row["y"] or 0 for row in series) == 2
    assert sum(row["yhat"] or 0 for row in series) == 20.0 + 5.0


def test_each_day_shows_what_was_forecast_for_it_1_7_and_28_days_ahead() -> None:
    day = TODAY - timedelta(days=1)
    forecasts = pa.concat_tables(
        [
            _forecasts(day - timedelta(days=28), {"aqua": 28.0}, days=29),
            _forecasts(day - timedelta(days=7), {"aqua": 7.0}, days=8),
            _forecasts(day - timedelta(days=1), {"aqua": 1.0}, days=2),
            _forecasts(day - timedelta(days=3), {"aqua": 3.0}, days=4),  # 3 days ahead: not shown
        ]
    )
    found = _run_view(forecasts, _applications({("aqua", day): 5}))
    row = found[("aqua", day)]
    assert row["y"] == 5
    assert (row["yhat_1d_ahead"], row["yhat_7d_ahead"], row["yhat_28d_ahead"]) == (1.0, 7.0, 28.0)
    before = found[("aqua", day - timedelta(days=1))]  # 27, 6, 0 and 2 days after them
    assert (before["yhat_1d_ahead"], before["yhat_7d_ahead"], before["yhat_28d_ahead"]) == (
        None,
        None,
        None,
    )
