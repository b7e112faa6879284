"""Names and columns of the lake's tables: one definition shared by step code and the CDK stacks.

Types are Glue/Athena type names; `arrow_schema` gives the matching pyarrow schema, so a file the
steps write is read by Athena with the columns the Glue table declares.

- `applications`: the source (demo schema), one row per application, partitioned by `dt`.
- `forecasts`: what PostProc publishes from `predict/forecasts/`, by `execution_date`: one row
  per series and target day, plus the rows whose `series_id` is `TOTAL_SERIES_ID`, the total
  across series (its yhat the sum of the series' yhat; its interval from its own backtest).
- `forecast_accuracy`: earlier publications scored against the actuals each run is the first to
  observe (`pipeline_code/accuracy.py`), by the scoring run's `execution_date`.
- `forecast_metrics`: the backtest scores TrainEvaluation writes to `evaluation/metrics.parquet`
  and PostProc publishes, by `execution_date`. One row per series (the chosen model's scores)
  plus one row whose `series_id` is `OVERALL_SERIES_ID` with the scores over all series (their
  mean) and one whose `series_id` is `TOTAL_SERIES_ID`, the total's own backtest scores.

A sum or mean over series must leave out the reserved ids (`RESERVED_SERIES_IDS`).

`execution_id` in the published tables is added by PostProc; the run-folder files lack it.

- `run_history`: one row per execution that reached the quality gate, passed or not: the gate's
  figures and thresholds, and whether the run was published (`pipeline_code/run_history.py`).
  Partitioned by `execution_date`; a day re-run three times has three rows.

On AWS the two published tables are Athena views, so that both switch in one write: each stored
version of a date lives in `<table>_versions` (partitioned by `execution_date` and `version`),
`publications` holds one row per date naming the version readers see, and each view joins the
two (`stacks/glue_views.py`). Locally the lake's partition folders play the views.
"""

from __future__ import annotations

from dataclasses import dataclass

import pyarrow as pa


@dataclass(frozen=True)
class Column:
    name: str
    glue_type: str  # string | double | bigint | boolean | date | timestamp
    comment: str


@dataclass(frozen=True)
class Table:
    name: str
    columns: tuple[Column, ...]
    partition_keys: tuple[str, ...]  # string partition columns; the first is the date 'YYYY-MM-DD'
    comment: str

    @property
    def column_names(self) -> list[str]:
        return [column.name for column in self.columns]

    @property
    def partition_key(self) -> str:
        """The date partition column."""
        return self.partition_keys[0]


_ARROW_TYPES: dict[str, pa.DataType] = {
    "string": pa.string(),
    "double": pa.float64(),
    "bigint": pa.int64(),
    "date": pa.date32(),
    "boolean": pa.bool_(),
    # Millisecond precision: what Athena's Parquet reader handles for every engine version.
    "timestamp": pa.timestamp("ms"),
}


def arrow_schema(table: Table) -> pa.Schema:
    """The pyarrow schema of the table's data columns (the partition column lives in the path)."""
    return pa.schema([pa.field(c.name, _ARROW_TYPES[c.glue_type]) for c in table.columns])


OVERALL_SERIES_ID = "__overall__"
"""`series_id` of the forecast_metrics row that scores all series together."""
TOTAL_SERIES_ID = "__total__"
"""`series_id` of the total across series, in `forecasts` (its rows) and `forecast_metrics`."""
RESERVED_SERIES_IDS = (OVERALL_SERIES_ID, TOTAL_SERIES_ID)
"""Ids no source series may take: rows that are not one series."""

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
    partition_keys=("dt",),
    comment="car-subscription applications, one row per application",
)

FORECASTS = Table(
    name="forecasts",
    columns=(
        Column(
            "series_id",
            "string",
            f"the series forecast (car model), or '{TOTAL_SERIES_ID}' for the sum of all series",
        ),
        Column("target_date", "date", "the day forecast"),
        Column("yhat", "double", "point forecast of daily applications"),
        Column("yhat_lower", "double", "lower bound of the prediction interval"),
        Column("yhat_upper", "double", "upper bound of the prediction interval"),
        Column("model", "string", "the model that produced the forecast"),
        Column("execution_id", "string", "the pipeline execution that published the row"),
    ),
    partition_keys=("execution_date",),
    comment="daily forecasts per series, one partition per execution date",
)

FORECAST_METRICS = Table(
    name="forecast_metrics",
    columns=(
        Column(
            "series_id",
            "string",
            f"the series scored, '{OVERALL_SERIES_ID}' for their mean, '{TOTAL_SERIES_ID}' for "
            "the total",
        ),
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
    partition_keys=("execution_date",),
    comment="backtest scores per series and overall, one partition per execution date",
)

FORECAST_ACCURACY = Table(
    name="forecast_accuracy",
    columns=(
        Column("forecast_date", "date", "the execution date of the publication scored"),
        Column("series_id", "string", "the series scored"),
        Column("target_date", "date", "the day forecast, now observed"),
        Column("horizon_step", "bigint", "days between the publication and the target day"),
        Column("actual", "double", "daily applications observed on the target day"),
        Column("yhat", "double", "the published point forecast"),
        Column("yhat_lower", "double", "the published interval's lower bound"),
        Column("yhat_upper", "double", "the published interval's upper bound"),
        Column("abs_error", "double", "|actual - yhat|"),
        Column(
            "scaled_error",
            "double",
            "abs_error / the series' seasonal-naive MASE scale on its history up to the"
            " publication (null where that scale is 0)",
        ),
        Column("inside", "boolean", "whether the actual fell inside the published interval"),
        Column("model", "string", "the model that produced the forecast"),
        Column("backtest_mase", "double", "the backtest MASE published with the forecast"),
        Column("execution_id", "string", "the pipeline execution that scored the row"),
    ),
    partition_keys=("execution_date",),
    comment="earlier publications scored on the days each run is the first to observe, one"
    " partition per scoring run's execution date",
)

PUBLISHED_TABLES: tuple[Table, ...] = (FORECASTS, FORECAST_METRICS, FORECAST_ACCURACY)
"""The tables readers see; published together, one execution date at a time."""

VERSION_KEY = "version"


def versions_of(table: Table) -> Table:
    """The stored table behind a published one on AWS: every version written for a date, of
    which `publications` names the one readers see."""
    return Table(
        name=f"{table.name}_versions",
        columns=table.columns,
        partition_keys=(table.partition_key, VERSION_KEY),
        comment=f"every stored version of {table.name}; read it through the view {table.name}",
    )


PUBLICATIONS = Table(
    name="publications",
    columns=(
        Column(VERSION_KEY, "string", "the stored version readers of this date see"),
        Column("execution_id", "string", "the pipeline execution that published it"),
        Column("published_at", "timestamp", "when it was published (UTC)"),
    ),
    partition_keys=("execution_date",),
    comment="one row per execution date: which version of the published tables readers see",
)

RUN_HISTORY = Table(
    name="run_history",
    columns=(
        Column("execution_id", "string", "the pipeline execution"),
        Column("outcome", "string", "gate_failed, gate_passed (not yet published) or published"),
        Column("gate_passed", "boolean", "whether the backtest met every gate threshold"),
        Column("gate_message", "string", "the gate's verdict in words: each broken threshold"),
        Column("mase", "double", "overall MASE of the backtest"),
        Column("relative_mase", "double", "overall MASE / seasonal-naive MASE"),
        Column(
            "largest_series_relative_mase",
            "double",
            "the worst relative MASE among the largest series",
        ),
        Column("coverage", "double", "share of actuals inside the calibrated intervals"),
        Column("smape", "double", "overall sMAPE, 0..200"),
        Column("n_series", "bigint", "number of series forecast"),
        Column("max_mase", "double", "the gate's MASE threshold for this run"),
        Column("max_relative_mase", "double", "the gate's relative MASE threshold"),
        Column(
            "max_series_relative_mase", "double", "the gate's threshold for each largest series"
        ),
        Column("evaluated_at", "timestamp", "when TrainEvaluation decided the gate (UTC)"),
        Column("published_at", "timestamp", "when PostProc published the run (UTC); null if not"),
    ),
    partition_keys=("execution_date",),
    comment="one row per pipeline execution that reached the quality gate, passed or failed",
)

STORED_TABLES: tuple[Table, ...] = (
    APPLICATIONS,
    *(versions_of(table) for table in PUBLISHED_TABLES),
    PUBLICATIONS,
)
"""The Glue tables with files behind them (the published tables are views over them)."""

PARQUET_INPUT_FORMAT = "org.apache.hadoop.hive.ql.io.parquet.MapredParquetInputFormat"
PARQUET_OUTPUT_FORMAT = "org.apache.hadoop.hive.ql.io.parquet.MapredParquetOutputFormat"
PARQUET_SERDE = "org.apache.hadoop.hive.ql.io.parquet.serde.ParquetHiveSerDe"


def storage_descriptor(table: Table, location: str) -> dict[str, object]:
    """A Glue `StorageDescriptor` for the table's Parquet files at `location` (a table's or a
    partition's)."""
    return {
        "Columns": [
            {"Name": c.name, "Type": c.glue_type, "Comment": c.comment} for c in table.columns
        ],
        "Location": location,
        "InputFormat": PARQUET_INPUT_FORMAT,
        "OutputFormat": PARQUET_OUTPUT_FORMAT,
        "SerdeInfo": {"SerializationLibrary": PARQUET_SERDE},
    }


def glue_table_input(
    table: Table, location: str, parameters: dict[str, str] | None = None
) -> dict[str, object]:
    """The Glue `TableInput` of a stored table: what the data stack deploys (CloudFormation's
    `TableInput` has the same shape as the Glue API's) and what tests create in moto."""
    return {
        "Name": table.name,
        "Description": table.comment,
        "TableType": "EXTERNAL_TABLE",
        "Parameters": {
            "classification": "parquet",
            "parquet.compression": "SNAPPY",
            **(parameters or {}),
        },
        "PartitionKeys": [
            {"Name": key, "Type": "string", "Comment": _PARTITION_COMMENTS[key]}
            for key in table.partition_keys
        ],
        "StorageDescriptor": storage_descriptor(table, location),
    }


_PARTITION_COMMENTS = {
    "dt": "YYYY-MM-DD",
    "execution_date": "YYYY-MM-DD",
    VERSION_KEY: "<execution id>-<8 hex>: one publish attempt",
}
