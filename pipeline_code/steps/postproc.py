"""PostProc: publish the run's forecasts and backtest metrics as the `execution_date=<date>`
partition of the tables `forecasts` and `forecast_metrics` (columns in `pipeline_code.tables`).

Publishing is atomic and idempotent per execution date:

1. Both tables are read and validated first; bad input raises StepError before anything is
   written, so the published partitions stay exactly as they were.
2. Each table's rows are written under a fresh version folder that no reader looks at yet.
3. The partition is switched to the new folder in one step, then older versions are deleted.

Locally (`--data-root` is the lake folder) a partition is a symlink
`<lake>/<table>/execution_date=<date>` -> `.versions/execution_date=<date>/<version>/`, replaced
with `os.replace` of a temporary symlink (atomic rename). Readers glob
`<lake>/<table>/execution_date=*/*.parquet`.

On AWS the files go to `s3://<bucket>/<table>/execution_date=<date>/<version>/part-0.parquet`
and the Glue partition's location is created or updated to that prefix; Athena reads a partition
through its location, so the switch is the single Glue call.

Re-running a date replaces that date's partition and leaves every other date untouched.
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import re
import shutil
import sys
import uuid
from dataclasses import dataclass
from pathlib import Path

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from pipeline_code import storage, tables
from pipeline_code.errors import StepError, run_entry_point
from pipeline_code.run_context import RunContext, add_common_arguments, context_from

STEP = "PostProc"
FORECASTS_INPUT = ("predict", "forecasts.parquet")
METRICS_INPUT = ("evaluation", "metrics.parquet")
VERSIONS_DIR = ".versions"
PART_FILE = "part-0.parquet"
_SAFE_NAME = re.compile(r"^[A-Za-z0-9._-]+$")


@dataclass(frozen=True)
class Publication:
    """One table's validated rows for one execution date."""

    table: tables.Table
    rows: pa.Table
    execution_date: dt.date

    @property
    def partition(self) -> str:
        return f"{self.table.partition_key}={self.execution_date.isoformat()}"


# --- validation ------------------------------------------------------------------------------


def _require_columns(frame: pd.DataFrame, required: list[str], what: str) -> None:
    missing = [column for column in required if column not in frame.columns]
    if missing:
        raise StepError(STEP, f"{what} lacks columns {missing}; got {list(frame.columns)}")


def validate_forecasts(frame: pd.DataFrame, execution_id: str) -> pd.DataFrame:
    """The forecasts as the published table wants them, or StepError naming what is wrong."""
    what = "predict/forecasts.parquet"
    if frame.empty:
        raise StepError(STEP, f"{what} is empty: nothing to publish")
    value_columns = ["yhat", "yhat_lower", "yhat_upper"]
    _require_columns(frame, ["series_id", "target_date", *value_columns, "model"], what)
    out = frame.copy()
    for column in value_columns:
        numeric = pd.to_numeric(out[column], errors="coerce")
        bad = numeric.isna()
        if bad.any():
            raise StepError(STEP, f"{what} has {int(bad.sum())} NaN or non-numeric {column} values")
        out[column] = numeric.astype("float64")
    outside = (out["yhat_lower"] > out["yhat"]) | (out["yhat"] > out["yhat_upper"])
    if outside.any():
        first = out[outside].iloc[0]
        raise StepError(
            STEP,
            f"{what} has {int(outside.sum())} rows without yhat_lower <= yhat <= yhat_upper, "
            f"e.g. {first['series_id']} {first['target_date']}",
        )
    out["target_date"] = pd.to_datetime(out["target_date"], errors="coerce")
    if out["target_date"].isna().any() or out["series_id"].isna().any():
        raise StepError(STEP, f"{what} has rows with a missing series_id or target_date")
    out["target_date"] = out["target_date"].dt.date
    if out.duplicated(["series_id", "target_date"]).any():
        raise StepError(STEP, f"{what} has more than one row per (series_id, target_date)")
    return out.assign(execution_id=execution_id)


def validate_metrics(frame: pd.DataFrame, execution_id: str) -> pd.DataFrame:
    """The metrics with the forecast_metrics columns; absent metric columns are published empty
    (NULL), so a scorer that adds or drops a metric does not block the forecasts."""
    what = "evaluation/metrics.parquet"
    if frame.empty:
        raise StepError(STEP, f"{what} is empty: nothing to publish")
    _require_columns(frame, ["series_id"], what)
    out = frame.assign(execution_id=execution_id)
    for column in tables.FORECAST_METRICS.columns:
        if column.name not in out.columns:
            out[column.name] = None
        elif column.glue_type in ("double", "bigint"):
            out[column.name] = pd.to_numeric(out[column.name], errors="coerce")
    if out["series_id"].isna().any():
        raise StepError(STEP, f"{what} has rows without a series_id")
    return out


def to_arrow(frame: pd.DataFrame, table: tables.Table) -> pa.Table:
    """The table's columns, in order, with its declared types (extra columns are left out)."""
    schema = tables.arrow_schema(table)
    try:
        return pa.Table.from_pandas(frame[schema.names], schema=schema, preserve_index=False)
    except (pa.ArrowInvalid, pa.ArrowTypeError) as err:
        raise StepError(STEP, f"rows for table {table.name} do not fit its columns: {err}") from err


def prepare(ctx: RunContext) -> list[Publication]:
    """Read and validate both inputs; nothing is published unless both are good."""
    frames = {}
    for name, parts in (("forecasts", FORECASTS_INPUT), ("metrics", METRICS_INPUT)):
        uri = ctx.path(*parts)
        if not storage.exists(uri):
            raise StepError(STEP, f"input {uri} does not exist")
        frames[name] = storage.read_table(uri)
    forecasts = validate_forecasts(frames["forecasts"], ctx.execution_id)
    metrics = validate_metrics(frames["metrics"], ctx.execution_id)
    return [
        Publication(tables.FORECASTS, to_arrow(forecasts, tables.FORECASTS), ctx.execution_date),
        Publication(
            tables.FORECAST_METRICS,
            to_arrow(metrics, tables.FORECAST_METRICS),
            ctx.execution_date,
        ),
    ]


def new_version(execution_id: str) -> str:
    """A folder name no earlier attempt used: a retry of the same execution never writes into
    the folder readers are looking at."""
    if not _SAFE_NAME.match(execution_id):
        raise StepError(STEP, f"execution id {execution_id!r} is not usable in a path")
    return f"{execution_id}-{uuid.uuid4().hex[:8]}"


# --- local: symlink switch -------------------------------------------------------------------


def publish_local(lake: Path, publication: Publication, version: str) -> Path:
    """Write the version folder, switch the partition symlink to it, delete older versions."""
    table_dir = lake / publication.table.name
    versions = table_dir / VERSIONS_DIR / publication.partition
    target = versions / version
    target.mkdir(parents=True, exist_ok=False)
    pq.write_table(publication.rows, target / PART_FILE)
    live = table_dir / publication.partition
    _move_aside_real_directory(live, versions)
    temporary = table_dir / f".{publication.partition}.{version}.tmp"
    # A relative link keeps the lake relocatable (copy or mount it anywhere).
    temporary.symlink_to(Path(VERSIONS_DIR) / publication.partition / version)
    os.replace(temporary, live)
    _remove_other_versions(versions, keep=version)
    return live


def _move_aside_real_directory(live: Path, versions: Path) -> None:
    """A partition written by other tools is a real folder, which a symlink cannot replace
    atomically; it becomes an old version first (readers briefly see no partition)."""
    if live.is_dir() and not live.is_symlink():
        live.rename(versions / f"moved-{uuid.uuid4().hex[:8]}")


def _remove_other_versions(versions: Path, keep: str) -> None:
    for entry in versions.iterdir():
        if entry.name != keep:
            shutil.rmtree(entry, ignore_errors=True)


# --- AWS: fresh S3 prefix, then the Glue partition's location ---------------------------------


def _bucket(data_root: str) -> str:
    return data_root[len("s3://") :].split("/", 1)[0]


def publish_aws(
    data_root: str, database: str, publication: Publication, version: str, glue_client=None
) -> str:
    """Write s3://<bucket>/<table>/<partition>/<version>/, point the Glue partition at it,
    then delete the date's older prefixes. Returns the new location."""
    import awswrangler as wr
    import boto3

    glue = glue_client or boto3.client("glue")
    name = publication.table.name
    partition_root = storage.join(data_root, name, publication.partition)
    location = storage.join(partition_root, version) + "/"
    wr.s3.to_parquet(
        publication.rows.to_pandas(date_as_object=True),
        path=location + PART_FILE,
        dataset=False,
        index=False,
    )
    _point_partition(glue, database, publication, location)
    stale = [
        uri for uri in wr.s3.list_objects(partition_root + "/") if not uri.startswith(location)
    ]
    if stale:
        wr.s3.delete_objects(stale)
    return location


def _point_partition(glue, database: str, publication: Publication, location: str) -> None:
    """Create the partition, or update its location: the one call that switches readers."""
    name = publication.table.name
    try:
        table = glue.get_table(DatabaseName=database, Name=name)["Table"]
    except glue.exceptions.EntityNotFoundException as err:
        raise StepError(
            STEP, f"Glue table {database}.{name} does not exist (is the data stack deployed?)"
        ) from err
    descriptor = {**table["StorageDescriptor"], "Location": location}
    values = [publication.execution_date.isoformat()]
    partition_input = {"Values": values, "StorageDescriptor": descriptor}
    try:
        glue.update_partition(
            DatabaseName=database,
            TableName=name,
            PartitionValueList=values,
            PartitionInput=partition_input,
        )
    except glue.exceptions.EntityNotFoundException:
        glue.create_partition(DatabaseName=database, TableName=name, PartitionInput=partition_input)


# --- entry point -----------------------------------------------------------------------------


def run(ctx: RunContext, database: str) -> list[str]:
    """Validate, then publish both tables; returns the published locations."""
    publications = prepare(ctx)
    version = new_version(ctx.execution_id)
    published = []
    for publication in publications:
        if ctx.is_local:
            location = str(publish_local(Path(ctx.data_root), publication, version))
        else:
            location = publish_aws(ctx.data_root, database, publication, version)
        published.append(location)
        print(f"{STEP}: {publication.rows.num_rows} rows -> {publication.table.name} {location}")
    return published


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description="Publish forecasts and metrics by date.")
    add_common_arguments(parser)
    parser.add_argument("--database", required=True, help="Glue database of the published tables")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    run(context_from(args), args.database)


if __name__ == "__main__":
    sys.exit(run_entry_point(main))
