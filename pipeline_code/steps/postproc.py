"""PostProc: publish the run's forecasts and backtest metrics as the `execution_date=<date>`
partition of the tables `forecasts` and `forecast_metrics` (columns in `pipeline_code.tables`).

Publishing is one step for both tables, by one writer per date, and idempotent per date:

1. Both tables are read and validated first; bad input raises StepError before anything is
   written, so the published partitions stay exactly as they were.
2. The date's lock is taken: a second publisher of the same date fails, naming the first, and
   publishes nothing.
3. Both tables' rows are written under a fresh version that no reader looks at yet.
4. Both tables are switched to it together, then older versions are deleted.

How the switch and the lock work, locally (one symlink rename, `flock`) and on AWS (S3
conditional writes, one `publications` object replaced), is in `pipeline_code.publication`.
Re-running a date replaces that date's partitions and leaves every other date untouched.

Only the leader instance runs this step (others exit at once). The forecasts are read from the
file of every bucket in the run's series index (`predict/forecasts/bucket=NNN.parquet`), and every
series of the index must have forecasts: a missing file (a lost Predict instance) or a missing
series fails the step before anything is published, never a partial forecast.

`forecasts` also gets the total across series (`series_id` `__total__`): per target day the sum
of every series' yhat, with the interval TrainEvaluation fitted on the total's own backtest
(`evaluation/total_calibration.json`, `forecasting.total`).
"""

from __future__ import annotations

import argparse
import re
import sys
import uuid
from pathlib import Path

import pandas as pd
import pyarrow as pa

from pipeline_code import (
    accuracy,
    accuracy_files,
    bucket_files,
    publication,
    run_folder,
    run_history,
    shards,
    storage,
    tables,
)
from pipeline_code.errors import StepError, one_line, run_entry_point
from pipeline_code.forecasting.artifacts import load_models
from pipeline_code.forecasting.total import TotalInterval, total_forecast
from pipeline_code.run_context import RunContext, add_common_arguments, context_from

STEP = "PostProc"
PART_FILE = publication.PART_FILE
_SAFE_NAME = re.compile(r"^[A-Za-z0-9._-]+$")


Publication = publication.Publication


# --- validation ------------------------------------------------------------------------------


def _require_columns(frame: pd.DataFrame, required: list[str], what: str) -> None:
    missing = [column for column in required if column not in frame.columns]
    if missing:
        raise StepError(STEP, f"{what} lacks columns {missing}; got {list(frame.columns)}")


def validate_forecasts(frame: pd.DataFrame, execution_id: str) -> pd.DataFrame:
    """The forecasts as the published table wants them, or StepError naming what is wrong."""
    what = run_folder.relative(run_folder.FORECASTS)
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
    what = run_folder.relative(run_folder.METRICS)
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


def read_forecasts(ctx: RunContext) -> pd.DataFrame:
    """Every bucket's forecasts, sorted by series and date; every series of the run must be in."""
    index = bucket_files.read_index(ctx, STEP)
    buckets = bucket_files.index_buckets(index)
    frame = bucket_files.read_buckets(ctx, STEP, run_folder.forecasts_bucket, buckets, "Predict")
    if "series_id" in frame.columns:
        missing = sorted(set(index["series_id"]) - set(frame["series_id"]))
        if missing:
            raise StepError(
                STEP,
                f"{run_folder.relative(run_folder.FORECASTS)} has no forecasts for "
                f"{len(missing)} series of the run, e.g. {missing[:5]}",
            )
        frame = frame.sort_values(["series_id", "target_date"], kind="stable")
    return frame.reset_index(drop=True)


def read_metrics(ctx: RunContext) -> pd.DataFrame:
    uri = ctx.path(*run_folder.METRICS)
    if not storage.exists(uri):
        raise StepError(STEP, f"input {uri} does not exist")
    return storage.read_table(uri)


def read_accuracy(ctx: RunContext) -> pd.DataFrame:
    """The earlier publications Predict scored, every bucket's (a missing file fails: Predict
    writes one per bucket, rows or not)."""
    buckets = bucket_files.index_buckets(bucket_files.read_index(ctx, STEP))
    bucket_files.bucket_uris(ctx, STEP, run_folder.accuracy_bucket, buckets, "Predict")
    return accuracy_files.read_scored(ctx, buckets).assign(execution_id=ctx.execution_id)


def load_total_interval(ctx: RunContext) -> TotalInterval:
    uri = ctx.path(*run_folder.TOTAL_CALIBRATION)
    if not storage.exists(uri):
        raise StepError(STEP, f"input {uri} does not exist (did TrainEvaluation run?)")
    try:
        return TotalInterval.from_json(storage.read_json(uri))
    except (ValueError, KeyError, TypeError) as err:
        raise StepError(STEP, f"{uri} is not the total's interval: {err}") from err


def with_total(forecasts: pd.DataFrame, interval: TotalInterval) -> pd.DataFrame:
    """The series' validated forecasts followed by the total's rows (`tables.TOTAL_SERIES_ID`):
    per target day the sum of every series' yhat, with the interval fitted on the total's
    backtest. Each day's `event_kind` (Predict's) says which of its offsets apply."""
    what = run_folder.relative(run_folder.FORECASTS)
    _require_columns(forecasts, ["event_kind"], what)
    reserved = forecasts["series_id"].isin(tables.RESERVED_SERIES_IDS)
    if reserved.any():
        raise StepError(
            STEP,
            f"{what} has rows of series {sorted(set(forecasts.loc[reserved, 'series_id']))}, "
            "an id reserved for rows that are not one series",
        )
    total = total_forecast(forecasts, interval)
    total = total.assign(
        series_id=tables.TOTAL_SERIES_ID, execution_id=forecasts["execution_id"].iloc[0]
    )
    both = pd.concat([forecasts, total[forecasts.columns]], ignore_index=True)
    return both.sort_values(["series_id", "target_date"], kind="stable", ignore_index=True)


def prepare(ctx: RunContext) -> list[Publication]:
    """Read and validate every input; nothing is published unless all are good."""
    forecasts = validate_forecasts(read_forecasts(ctx), ctx.execution_id)
    forecasts = with_total(forecasts, load_total_interval(ctx))
    metrics = validate_metrics(read_metrics(ctx), ctx.execution_id)
    scored = pd.concat([read_accuracy(ctx), read_total_accuracy(ctx)], ignore_index=True)
    scored["execution_id"] = ctx.execution_id
    return [
        Publication(tables.FORECASTS, to_arrow(forecasts, tables.FORECASTS), ctx.execution_date),
        Publication(
            tables.FORECAST_METRICS,
            to_arrow(metrics, tables.FORECAST_METRICS),
            ctx.execution_date,
        ),
        Publication(
            tables.FORECAST_ACCURACY,
            to_arrow(scored, tables.FORECAST_ACCURACY),
            ctx.execution_date,
        ),
    ]


def _season_length(ctx: RunContext, buckets: list[int]) -> int:
    """The season MASE scales by, as Train chose it for the run's series."""
    uri = ctx.path(*run_folder.models_bucket(buckets[0]))
    return load_models(storage.read_bytes(uri)).settings.mase_season_length


def read_total_accuracy(ctx: RunContext) -> pd.DataFrame:
    uri = ctx.path(*run_folder.TOTAL_ACCURACY)
    return storage.read_table(uri) if storage.exists(uri) else accuracy_files.no_rows()


def check_promise(ctx: RunContext, args: argparse.Namespace) -> None:
    """Warn (never fail) where realized accuracy breaks the backtest's promise."""
    settings = accuracy.PromiseSettings(
        window_days=args.accuracy_window,
        max_mase_ratio=args.accuracy_max_ratio,
        coverage_band=args.accuracy_coverage_band,
        min_points=args.accuracy_min_points,
    )
    buckets = bucket_files.index_buckets(bucket_files.read_index(ctx, STEP))
    try:
        season = _season_length(ctx, buckets)
        total_window = accuracy_files.score_total(
            ctx, buckets, args.horizon, args.accuracy_window, season
        )[1]
        summary = accuracy_files.summarize(
            ctx, buckets, args.interval_level, settings, total_window
        )
    except (OSError, ValueError, KeyError, StepError) as err:
        print(f"WARNING {STEP}: realized accuracy not checked: {one_line(err)}")
        return
    for line in [*summary["warnings"], *summary["skipped"]]:
        print(f"WARNING {STEP}: {line}")


def new_version(execution_id: str) -> str:
    """A folder name no earlier attempt used: a retry of the same execution never writes into
    the folder readers are looking at."""
    if not _SAFE_NAME.match(execution_id):
        raise StepError(STEP, f"execution id {execution_id!r} is not usable in a path")
    return f"{execution_id}-{uuid.uuid4().hex[:8]}"


def publish_aws(
    data_root: str,
    database: str,
    publications: list[Publication],
    version: str,
    execution_id: str,
    glue_client=None,
    s3_client=None,
) -> list[str]:
    """Under the date's lock: write both tables as a new version, then point the date's
    `publications` row at it (the one switch), then delete versions older than the replaced
    one. Returns the new locations."""
    import boto3

    glue = glue_client or boto3.client("glue")
    s3 = s3_client or boto3.client("s3")
    execution_date = publications[0].execution_date
    catalog = publication.GlueCatalog(glue, database, execution_date)
    for table in publication.AWS_TABLES:
        catalog.require(table)
    pointer = publication.pointer_uri(data_root, execution_date)
    with publication.s3_lock(s3, publication.lock_uri(data_root, execution_date), execution_id):
        live = publication.read_pointer(s3, pointer)
        locations = []
        for item in publications:
            location = publication.version_location(data_root, item.table, execution_date, version)
            storage.write_arrow(item.rows, location + PART_FILE)
            catalog.add_partition(
                tables.versions_of(item.table), [execution_date.isoformat(), version], location
            )
            locations.append(location)
        catalog.add_partition(
            tables.PUBLICATIONS,
            [execution_date.isoformat()],
            publication.pointer_partition(data_root, execution_date),
        )
        publication.switch_aws(s3, pointer, version, execution_id)
        kept = {version, live[tables.VERSION_KEY]} if live else {version}
        _delete_superseded_versions(data_root, catalog, publications, kept)
    return locations


def _delete_superseded_versions(
    data_root: str,
    catalog: publication.GlueCatalog,
    publications: list[Publication],
    kept: set[str],
) -> None:
    """Best effort: the publication is complete; what is left over is deleted next time."""
    import awswrangler as wr

    for item in publications:
        stored = tables.versions_of(item.table)
        root = storage.join(data_root, stored.name, item.partition) + "/"
        keep = tuple(f"{root}{tables.VERSION_KEY}={version}/" for version in kept)
        try:
            catalog.drop_versions(stored, catalog.versions(stored) - kept)
            stale = [uri for uri in wr.s3.list_objects(root) if not uri.startswith(keep)]
            if stale:
                wr.s3.delete_objects(stale)
        except Exception as err:  # the publication stands; say what is left behind
            print(f"WARNING {STEP}: older versions under {root} were not deleted: {err}")


# --- entry point -----------------------------------------------------------------------------


def run(ctx: RunContext, database: str) -> list[str]:
    """Validate, then publish the tables as one; returns the published locations."""
    publications = prepare(ctx)
    version = new_version(ctx.execution_id)
    if ctx.is_local:
        lake = Path(ctx.data_root)
        with publication.local_lock(lake, ctx.execution_date, ctx.execution_id):
            paths = publication.publish_local(lake, publications, version, ctx.execution_id)
        published = [str(path) for path in paths]
    else:
        published = publish_aws(ctx.data_root, database, publications, version, ctx.execution_id)
    for item, location in zip(publications, published, strict=True):
        print(f"{STEP}: {item.rows.num_rows} rows -> {item.table.name} {location}")
    return published


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description="Publish forecasts and metrics by date.")
    add_common_arguments(parser)
    parser.add_argument("--database", required=True, help="Glue database of the published tables")
    parser.add_argument("--interval-level", type=float, default=0.8, help="nominal coverage")
    parser.add_argument("--horizon", type=int, default=28, help="days each run forecasts")
    parser.add_argument("--accuracy-window", type=int, default=28, help="scored days judged")
    parser.add_argument(
        "--accuracy-max-ratio", type=float, default=1.5, help="realized / backtest MASE allowed"
    )
    parser.add_argument(
        "--accuracy-coverage-band", type=float, default=0.1, help="coverage off nominal allowed"
    )
    parser.add_argument(
        "--accuracy-min-points", type=int, default=14, help="scored points a series needs"
    )
    return parser.parse_args(argv)


def record_publication(ctx: RunContext) -> None:
    """Mark the execution's `run_history` row published. Best effort: the forecasts are
    published already, and failing the step now would report a published run as failed."""
    try:
        report = storage.read_json(ctx.path(*run_folder.EVALUATION))
        run_history.record_published(ctx, report)
    except Exception as err:
        print(f"WARNING {STEP}: run_history not marked published: {one_line(err)}")


def main(argv: list[str] | None = None) -> None:
    if shards.skip_unless_leader(STEP):
        return
    args = parse_args(argv)
    ctx = context_from(args)
    check_promise(ctx, args)
    run(ctx, args.database)
    record_publication(ctx)


if __name__ == "__main__":
    sys.exit(run_entry_point(main))
