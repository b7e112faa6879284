"""Names and columns of the lake's tables: one definition shared by step code and the CDK stacks.

Types are Glue/Athena type names; `arrow_schema` gives the matching pyarrow schema, so a file the
steps write is read by Athena with the columns the Glue table declares.

- `applications`: the source (demo schema), one row per application, partitioned by `dt`.
- `forecasts`: what PostProc publishes from `predict/forecasts.parquet`, partitioned by
  `execution_date`.
- `forecast_metrics`: the backtest scores TrainEvaluation writes to `evaluation/metrics.parquet`
  and PostProc publishes, partitioned by `execution_date`. One row per series (the chosen model's
  scores) plus one row whose `series_id` is `OVERALL_SERIES_ID` with the scores over all series.

`execution_id` in the published tables is added by PostProc; the run-folder files lack it.
"""

from __future__ import annotations

from dataclasses import dataclass

import pyarrow as pa


@dataclass(frozen=True)
class Column:
    name: str
    glue_type: str  # string | double | bigint | date | timestamp
    comment: str


@dataclass(frozen=True)
class Table:
    name: str
    columns: tuple[Column, ...]
    partition_key: str  # a string partition column, value 'YYYY-MM-DD'
    comment: str

    @property
    def column_names(self) -> list[str]:
        return [column.name for column in self.columns]


_ARROW_TYPES: dict[str, pa.DataType] = {
    "string": pa.string(),
    "double": pa.float64(),
    "bigint": pa.int64(),
    "date": pa.date32(),
    # Millisecond precision: what Athena's Parquet reader handles for every engine version.
    "timestamp": pa.timestamp("ms"),
}


def arrow_schema(table: Table) -> pa.Schema:
    """The pyarrow schema of the table's data columns (the partition column lives in the path)."""
    return pa.schema([pa.field(c.name, _ARROW_TYPES[c.glue_type]) for c in table.columns])


OVERALL_SERIES_ID = "__overall__"
"""`series_id` of the forecast_metrics row that scores all series together."""

APPLICATIONS = Table(
    name="applications",
    columns=(
        Column("application_id", "string", "unique id of the application"),
        Column("applied_at", "timestamp", "when the application was submitted (local time)"),
        Column("car_model", "string", "the car model applied for; the forecast series"),
        Column("plan", "string", "subscription plan (contract length)"),
        Column("channel", "string", "web, app, dealer or partner"),
        Column("prefecture", "string", "the applicant's prefecture"),
    ),
    partition_key="dt",
    comment="car-subscription applications, one row per application",
)

FORECASTS = Table(
    name="forecasts",
    columns=(
        Column("series_id", "string", "the series forecast (car model)"),
        Column("target_date", "date", "the day forecast"),
        Column("yhat", "double", "point forecast of daily applications"),
        Column("yhat_lower", "double", "lower bound of the prediction interval"),
        Column("yhat_upper", "double", "upper bound of the prediction interval"),
        Column("model", "string", "the model that produced the forecast"),
        Column("execution_id", "string", "the pipeline execution that published the row"),
    ),
    partition_key="execution_date",
    comment="daily forecasts per series, one partition per execution date",
)

FORECAST_METRICS = Table(
    name="forecast_metrics",
    columns=(
        Column("series_id", "string", f"the series scored, or '{OVERALL_SERIES_ID}' for all"),
        Column("model", "string", "the model chosen for the series (or 'all' for the overall row)"),
        Column("mase", "double", "mean absolute scaled error of the backtest"),
        Column("smape", "double", "symmetric mean absolute percentage error, 0..200"),
        Column("mae", "double", "mean absolute error"),
        Column("coverage", "double", "share of actuals inside the prediction interval, 0..1"),
        Column("snaive_mase", "double", "MASE of the seasonal-naive benchmark on the same folds"),
        Column("n_folds", "bigint", "number of rolling-origin backtest folds"),
        Column("n_points", "bigint", "number of forecast points scored"),
        Column("execution_id", "string", "the pipeline execution that published the row"),
    ),
    partition_key="execution_date",
    comment="backtest scores per series and overall, one partition per execution date",
)

ALL_TABLES: tuple[Table, ...] = (APPLICATIONS, FORECASTS, FORECAST_METRICS)


def glue_table_input(table: Table, location: str) -> dict[str, object]:
    """A Glue `TableInput` (boto3 create_table) for a Parquet table at `location`, partitioned
    by its string partition key."""
    return {
        "Name": table.name,
        "Description": table.comment,
        "TableType": "EXTERNAL_TABLE",
        "Parameters": {"classification": "parquet", "EXTERNAL": "TRUE"},
        "PartitionKeys": [{"Name": table.partition_key, "Type": "string"}],
        "StorageDescriptor": {
            "Columns": [
                {"Name": c.name, "Type": c.glue_type, "Comment": c.comment} for c in table.columns
            ],
            "Location": location,
            "InputFormat": "org.apache.hadoop.hive.ql.io.parquet.MapredParquetInputFormat",
            "OutputFormat": "org.apache.hadoop.hive.ql.io.parquet.MapredParquetOutputFormat",
            "SerdeInfo": {
                "SerializationLibrary": (
                    "org.apache.hadoop.hive.ql.io.parquet.serde.ParquetHiveSerDe"
                ),
            },
        },
    }
