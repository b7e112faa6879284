from __future__ import annotations

import datetime as dt
import os
from pathlib import Path

import boto3
import duckdb
import numpy as np
import pandas as pd
import pyarrow.parquet as pq
import pytest

from pipeline_code import (
    accuracy_files,
    bucket_files,
    publication,
    run_folder,
    shards,
    storage,
    tables,
)
from pipeline_code.errors import StepError
from pipeline_code.forecasting.total import TotalInterval
from pipeline_code.run_context import RunContext
from pipeline_code.steps import postproc
from tests.unit import moto_server

# The moto fixtures, made visible to this module's tests.
_moto = moto_server._moto
_moto_server = moto_server._moto_server
aws = moto_server.aws

DAY = dt.date(2025, 3, 31)
OTHER_DAY = dt.date(2025, 3, 30)
DATABASE = "forecast_demo"


def _forecasts(level: float = 5.0) -> pd.DataFrame:
    targets = [DAY + dt.timedelta(days=i) for i in range(1, 4)]
    return pd.DataFrame(
        {
            "series_id": ["A"] * 3 + ["B"] * 3,
            "target_date": targets * 2,
            "yhat": [level] * 6,
            "yhat_lower": [level - 2] * 6,
            "yhat_upper": [level + 2] * 6,
            "model": ["ets"] * 3 + ["snaive"] * 3,
            "event_kind": [0, 1, 0] * 2,  # the second target day is a break day
        }
    )


TOTAL_INTERVAL = TotalInterval(level=0.8, ordinary=(-0.1, 0.2), event=(-0.5, 0.5), points=84)


def _metrics() -> pd.DataFrame:
    return pd.DataFrame(
        {
            "series_id": ["A", "B", tables.OVERALL_SERIES_ID],
            "model": ["ets", "snaive", "all"],
            "mase": [0.8, 1.0, 0.9],
            "smape": [20.0, 25.0, 22.5],
            "mae": [1.0, 1.5, 1.25],
            "coverage": [0.9, 0.8, 0.85],
            "snaive_mase": [1.0, 1.0, 1.0],
            "n_folds": [3, 3, 3],
            "n_points": [84, 84, 168],
        }
    )


def _stage(
    root: str, day: dt.date, run_id: str, forecasts: pd.DataFrame, metrics: pd.DataFrame
) -> RunContext:
    """Put a run's inputs into its run folder."""
    ctx = RunContext(execution_date=day, execution_id=run_id, data_root=root)
    bucket_files.write_index(ctx, _forecasts())  # the run's series: A and B
    parts = bucket_files.split_by_bucket(forecasts)
    bucket_files.write_buckets(ctx, parts, run_folder.forecasts_bucket)
    storage.write_table(metrics, ctx.path(*run_folder.METRICS))
    storage.write_json(TOTAL_INTERVAL.to_json(), ctx.path(*run_folder.TOTAL_CALIBRATION))
    for bucket in bucket_files.split_by_bucket(_forecasts()):  # nothing earlier to score
        storage.write_table(accuracy_files.no_rows(), ctx.path(*run_folder.accuracy_bucket(bucket)))
    return ctx


def _publish(root: str, day: dt.date, run_id: str, forecasts=None, metrics=None) -> list[str]:
    forecasts = _forecasts() if forecasts is None else forecasts
    metrics = _metrics() if metrics is None else metrics
    return postproc.run(_stage(root, day, run_id, forecasts, metrics), DATABASE)


def _snapshot(lake: Path) -> dict[str, bytes | str]:
    """What a reader sees: each partition's link, where it resolves, and its files' bytes."""
    state: dict[str, bytes | str] = {}
    for table in ("forecasts", "forecast_metrics"):
        for link in sorted((lake / table).glob("execution_date=*")):
            key = str(link.relative_to(lake))
            state[key] = os.readlink(link) if link.is_symlink() else "folder"
            state[key + " ->"] = str(link.resolve())
            for path in sorted(link.glob("*.parquet")):
                state[str(path.relative_to(lake))] = path.read_bytes()
    return state


def _read_local(lake: Path, table: str) -> pd.DataFrame:
    pattern = str(lake / table / "execution_date=*" / "*.parquet")
    query = f"SELECT * FROM read_parquet('{pattern}', hive_partitioning = true)"
    return duckdb.sql(query).df()


# --- local -----------------------------------------------------------------------------------


def test_local_publish_is_readable_by_partition_glob(tmp_path: Path) -> None:
    _publish(str(tmp_path), DAY, "exec-1")
    forecasts = _read_local(tmp_path, "forecasts")
    metrics = _read_local(tmp_path, "forecast_metrics")
    assert len(forecasts) == 6 + 3  # two series and their total, three days each
    assert set(forecasts["execution_id"]) == {"exec-1"}
    assert forecasts["execution_date"].astype(str).unique().tolist() == [DAY.isoformat()]
    assert list(metrics.columns[:-1]) == tables.FORECAST_METRICS.column_names
    assert (tmp_path / "forecasts" / f"execution_date={DAY}").is_symlink()


def test_rerun_replaces_only_that_dates_partition(tmp_path: Path) -> None:
    _publish(str(tmp_path), OTHER_DAY, "exec-0", forecasts=_forecasts(level=9.0))
    other = {k: v for k, v in _snapshot(tmp_path).items() if str(OTHER_DAY) in k}
    _publish(str(tmp_path), DAY, "exec-1")
    _publish(str(tmp_path), DAY, "exec-2", forecasts=_forecasts(level=7.0))
    forecasts = _read_local(tmp_path, "forecasts")
    today = forecasts[forecasts["execution_date"].astype(str) == DAY.isoformat()]
    assert today["yhat"].tolist() == [7.0] * 6 + [14.0] * 3  # A, B, then their total
    assert set(today["execution_id"]) == {"exec-2"}
    assert {k: v for k, v in _snapshot(tmp_path).items() if str(OTHER_DAY) in k} == other
    store = tmp_path / ".publications" / f"execution_date={DAY}"
    assert len(list(store.iterdir())) == 2  # current and its version: the superseded one is gone


def test_same_date_twice_gives_the_same_rows(tmp_path: Path) -> None:
    _publish(str(tmp_path), DAY, "exec-1")
    first = _read_local(tmp_path, "forecasts")
    _publish(str(tmp_path), DAY, "exec-1")
    pd.testing.assert_frame_equal(_read_local(tmp_path, "forecasts"), first)


def test_real_partition_folder_is_replaced_by_the_switch(tmp_path: Path) -> None:
    legacy = tmp_path / "forecasts" / f"execution_date={DAY}"
    legacy.mkdir(parents=True)
    storage.write_table(_forecasts(level=1.0), str(legacy / "old.parquet"))
    _publish(str(tmp_path), DAY, "exec-1")
    assert legacy.is_symlink()
    assert _read_local(tmp_path, "forecasts")["yhat"].tolist() == [5.0] * 6 + [10.0] * 3


def _nan_yhat() -> pd.DataFrame:
    return _forecasts().assign(yhat=[np.nan] + [5.0] * 5)


def _bound_above_yhat() -> pd.DataFrame:
    return _forecasts().assign(yhat_lower=[6.0] + [3.0] * 5)


BAD_INPUTS = [
    (_forecasts().iloc[0:0], _metrics(), "2 of 2 bucket files missing: .* Predict"),
    (
        _forecasts()[lambda f: f["series_id"] == "A"],
        _metrics(),
        rf"1 of 2 .*bucket={shards.bucket_of('B'):03d}.parquet",
    ),
    (_forecasts().drop(columns="yhat_upper"), _metrics(), r"lacks columns \['yhat_upper'\]"),
    (_nan_yhat(), _metrics(), "1 NaN or non-numeric yhat values"),
    (_bound_above_yhat(), _metrics(), "without yhat_lower <= yhat <= yhat_upper"),
    (pd.concat([_forecasts(), _forecasts()]), _metrics(), "more than one row per"),
    (_forecasts(), _metrics().iloc[0:0], "metrics.parquet is empty"),
    (_forecasts(), _metrics().drop(columns="series_id"), r"lacks columns \['series_id'\]"),
]


@pytest.mark.parametrize(("forecasts", "metrics", "problem"), BAD_INPUTS)
def test_bad_input_fails_and_leaves_the_published_partition(
    tmp_path: Path, forecasts: pd.DataFrame, metrics: pd.DataFrame, problem: str
) -> None:
    _publish(str(tmp_path), DAY, "exec-1")
    before = _snapshot(tmp_path)
    with pytest.raises(StepError, match=problem) as err:
        _publish(str(tmp_path), DAY, "exec-2", forecasts=forecasts, metrics=metrics)
    assert err.value.step == "PostProc"
    assert _snapshot(tmp_path) == before


def test_missing_input_fails(tmp_path: Path) -> None:
    ctx = RunContext(execution_date=DAY, execution_id="exec-1", data_root=str(tmp_path))
    missing = r"PostProc: 64 of 64 bucket files missing: .*series_index/bucket=000.parquet"
    with pytest.raises(StepError, match=missing):
        postproc.run(ctx, DATABASE)


def test_a_series_of_the_run_without_forecasts_fails_and_publishes_nothing(
    tmp_path: Path,
) -> None:
    ctx = _stage(str(tmp_path), DAY, "exec-1", _forecasts(), _metrics())
    b_file = ctx.path(*run_folder.forecasts_bucket(shards.bucket_of("B")))
    storage.write_table(_forecasts().iloc[0:0], b_file)  # B's file present, B's rows lost
    with pytest.raises(StepError, match=r"no forecasts for 1 series of the run, e.g. \['B'\]"):
        postproc.run(ctx, DATABASE)
    assert not (tmp_path / "forecasts").exists()


def test_forecasts_are_published_by_series_and_date_whatever_the_bucket_order(
    tmp_path: Path,
) -> None:
    _publish(str(tmp_path), DAY, "exec-1", forecasts=_forecasts().iloc[::-1])
    published = _read_local(tmp_path, "forecasts")
    keys = list(zip(published["series_id"], published["target_date"], strict=True))
    assert keys == sorted(keys)


def test_the_total_is_the_sum_of_the_series_with_its_own_interval(tmp_path: Path) -> None:
    forecasts = _forecasts()
    b = forecasts["series_id"] == "B"
    forecasts.loc[b, "yhat"] = [1.5, 2.25, 3.0]
    forecasts.loc[b, "yhat_lower"], forecasts.loc[b, "yhat_upper"] = 0.0, 9.0
    _publish(str(tmp_path), DAY, "exec-1", forecasts=forecasts)
    published = _read_local(tmp_path, "forecasts")
    total = published[published["series_id"] == tables.TOTAL_SERIES_ID]
    series = published[published["series_id"] != tables.TOTAL_SERIES_ID]
    sums = series.groupby("target_date")["yhat"].sum()
    assert total.set_index("target_date")["yhat"].tolist() == sums.tolist() == [6.5, 7.25, 8.0]
    assert set(total["model"]) == {"sum_of_series"}
    # ordinary days: -10% / +20% of the total; the break day (the second): -50% / +50%
    assert total["yhat_lower"].tolist() == pytest.approx([6.5 * 0.9, 7.25 * 0.5, 8.0 * 0.9])
    assert total["yhat_upper"].tolist() == pytest.approx([6.5 * 1.2, 7.25 * 1.5, 8.0 * 1.2])


def test_a_series_named_as_the_total_is_refused(tmp_path: Path) -> None:
    forecasts = _forecasts()
    forecasts.loc[forecasts["series_id"] == "B", "series_id"] = tables.TOTAL_SERIES_ID
    ctx = _stage(str(tmp_path), DAY, "exec-1", forecasts, _metrics())
    bucket_files.write_index(ctx, forecasts)
    with pytest.raises(StepError, match="reserved for rows that are not one series"):
        postproc.run(ctx, DATABASE)
    assert not (tmp_path / "forecasts").exists()


def test_missing_metric_columns_are_published_as_null(tmp_path: Path) -> None:
    _publish(str(tmp_path), DAY, "exec-1", metrics=_metrics()[["series_id", "model", "mase"]])
    metrics = _read_local(tmp_path, "forecast_metrics")
    assert metrics["coverage"].isna().all()
    assert metrics["mase"].tolist() == [0.8, 1.0, 0.9]


# --- AWS (moto) ------------------------------------------------------------------------------


def _aws_tables() -> None:
    boto3.client("s3").create_bucket(Bucket="data")
    glue = boto3.client("glue")
    glue.create_database(DatabaseInput={"Name": DATABASE})
    for table in publication.AWS_TABLES:
        location = f"s3://data/{table.name}/"
        glue.create_table(
            DatabaseName=DATABASE, TableInput=tables.glue_table_input(table, location)
        )


def _version_location(table: str, day: dt.date, version: str) -> str:
    partition = boto3.client("glue").get_partition(
        DatabaseName=DATABASE, TableName=f"{table}_versions", PartitionValues=[str(day), version]
    )
    return partition["Partition"]["StorageDescriptor"]["Location"]


def _aws_view(table: str, day: dt.date) -> pd.DataFrame | None:
    """What a reader of the view `table` sees for the day: the version the date's
    `publications` row names, found through its registered Glue partition (the view's join)."""
    s3 = boto3.client("s3")
    row = publication.read_pointer(s3, publication.pointer_uri("s3://data", day))
    if row is None:
        return None
    location = _version_location(table, day, row["version"])
    return storage.read_table(location + "part-0.parquet")


def every_table(execution_id: str | None) -> dict[str, str | None]:
    """Every published table held by the one execution (None: no partition)."""
    return {table.name: execution_id for table in tables.PUBLISHED_TABLES}


def _aws_live(day: dt.date = DAY) -> dict[str, str | None]:
    """Which execution each view shows for the day (a version without rows: the execution its
    `publications` row names)."""
    pointer = publication.read_pointer(
        boto3.client("s3"), publication.pointer_uri("s3://data", day)
    )
    live = {}
    for table in tables.PUBLISHED_TABLES:
        rows = _aws_view(table.name, day)
        if rows is None:
            live[table.name] = None
        elif rows.empty:
            live[table.name] = pointer["execution_id"] if pointer else None
        else:
            live[table.name] = ",".join(sorted(rows["execution_id"].unique()))
    return live


def _keys(prefix: str = "") -> list[str]:
    listing = boto3.client("s3").list_objects_v2(Bucket="data", Prefix=prefix)
    return sorted(item["Key"] for item in listing.get("Contents", []))


def _versions(table: str, day: dt.date) -> set[str]:
    catalog = publication.GlueCatalog(boto3.client("glue"), DATABASE, day)
    return catalog.versions(tables.versions_of(getattr(tables, table.upper())))


def test_aws_publish_writes_a_version_and_points_the_date_at_it(aws: str) -> None:
    _aws_tables()
    [forecasts_at, metrics_at, accuracy_at] = _publish("s3://data", DAY, "exec-1")
    assert forecasts_at.startswith(f"s3://data/forecasts_versions/execution_date={DAY}/version=")
    pointer = publication.read_pointer(
        boto3.client("s3"), publication.pointer_uri("s3://data", DAY)
    )
    assert pointer is not None and pointer["execution_id"] == "exec-1"
    assert forecasts_at.endswith(f"version={pointer['version']}/")
    assert metrics_at == _version_location("forecast_metrics", DAY, pointer["version"])
    assert accuracy_at == _version_location("forecast_accuracy", DAY, pointer["version"])
    published = _aws_view("forecasts", DAY)
    # pyarrow adds the partition columns it reads from the hive-style path.
    assert published.columns.tolist() == [
        *tables.FORECASTS.column_names,
        "execution_date",
        "version",
    ]
    assert len(published) == 6 + 3  # two series and their total
    assert _aws_view("forecast_metrics", DAY)["n_folds"].tolist() == [3] * 3
    glue = boto3.client("glue")
    registered = glue.get_partition(
        DatabaseName=DATABASE, TableName="publications", PartitionValues=[str(DAY)]
    )
    assert registered["Partition"]["StorageDescriptor"]["Location"] == (
        f"s3://data/publications/execution_date={DAY}/"
    )


def test_aws_rerun_switches_the_date_and_keeps_only_the_replaced_version(aws: str) -> None:
    _aws_tables()
    _publish("s3://data", OTHER_DAY, "exec-0")
    other_keys = _keys(f"forecasts_versions/execution_date={OTHER_DAY}/")
    _publish("s3://data", DAY, "exec-1")
    _publish("s3://data", DAY, "exec-2", forecasts=_forecasts(level=7.0))
    assert _aws_live() == every_table("exec-2")
    assert _aws_view("forecasts", DAY)["yhat"].tolist() == [7.0] * 6 + [14.0] * 3
    # The replaced version stays, so that queries already reading it finish.
    assert len(_versions("forecasts", DAY)) == 2
    _publish("s3://data", DAY, "exec-3")
    versions = _versions("forecasts", DAY)
    assert len(versions) == 2 and not any(v.startswith("exec-1-") for v in versions)
    assert _versions("forecast_metrics", DAY) == versions
    assert {key.split("/")[2] for key in _keys(f"forecasts_versions/execution_date={DAY}/")} == {
        f"version={v}" for v in versions
    }
    assert _aws_live(OTHER_DAY) == every_table("exec-0")
    assert _keys(f"forecasts_versions/execution_date={OTHER_DAY}/") == other_keys


def test_aws_bad_input_leaves_the_date_and_its_files(aws: str) -> None:
    _aws_tables()
    _publish("s3://data", DAY, "exec-1")
    published = [_keys(prefix) for prefix in ("forecasts_", "forecast_metrics_", "publications/")]
    with pytest.raises(StepError, match=r"PostProc: .*NaN or non-numeric yhat"):
        _publish("s3://data", DAY, "exec-2", forecasts=_nan_yhat())
    assert _aws_live() == every_table("exec-1")
    assert [_keys(p) for p in ("forecasts_", "forecast_metrics_", "publications/")] == published


def test_aws_missing_glue_table_fails(aws: str) -> None:
    boto3.client("s3").create_bucket(Bucket="data")
    boto3.client("glue").create_database(DatabaseInput={"Name": DATABASE})
    with pytest.raises(StepError, match=f"Glue table {DATABASE}.forecasts_versions does not exist"):
        _publish("s3://data", DAY, "exec-1")


def _metrics_with_a_null_count() -> pd.DataFrame:
    """A bigint column with a null: pandas holds it as float64 with NaN."""
    metrics = _metrics()
    metrics["n_folds"] = pd.Series([3, None, 3], dtype="float64")
    return metrics


@pytest.mark.parametrize("where", ["aws", "local"])
def test_published_files_carry_the_tables_arrow_schema_on_both_paths(
    where: str, request: pytest.FixtureRequest, tmp_path: Path
) -> None:
    if where == "aws":
        request.getfixturevalue("aws")
        _aws_tables()
        root = "s3://data"
    else:
        root = str(tmp_path)
    published = _publish(root, DAY, "exec-1", metrics=_metrics_with_a_null_count())
    [forecasts_at, metrics_at, accuracy_at] = published
    for table, location in (
        (tables.FORECASTS, forecasts_at),
        (tables.FORECAST_METRICS, metrics_at),
        (tables.FORECAST_ACCURACY, accuracy_at),
    ):
        fs, path = storage._filesystem(location.rstrip("/") + "/" + postproc.PART_FILE)
        schema = pq.read_schema(path, filesystem=fs)
        assert schema.names == tables.arrow_schema(table).names
        assert [f.type for f in schema] == [f.type for f in tables.arrow_schema(table)], location
    fs, path = storage._filesystem(metrics_at.rstrip("/") + "/" + postproc.PART_FILE)
    n_folds = pq.read_table(path, filesystem=fs).column("n_folds")
    assert str(n_folds.type) == "int64" and n_folds.to_pylist() == [3, None, 3]
