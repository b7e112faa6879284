from __future__ import annotations

import datetime as dt
from pathlib import Path

import boto3
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from local_run import demo_data
from pipeline_code import storage, tables
from pipeline_code.errors import StepError, run_entry_point
from pipeline_code.run_context import RunContext
from pipeline_code.steps import extract
from tests.unit import moto_server
from tests.unit.moto_server import set_athena_results

# The moto fixtures, made visible to this module's tests.
_moto = moto_server._moto
_moto_server = moto_server._moto_server
aws = moto_server.aws

END = dt.date(2025, 3, 31)


@pytest.fixture(scope="module")
def small_lake(tmp_path_factory: pytest.TempPathFactory) -> Path:
    lake = tmp_path_factory.mktemp("lake")
    demo_data.write_small_demo_applications(lake, END)
    return lake


def _ctx(root: str | Path, day: dt.date = END) -> RunContext:
    return RunContext(execution_date=day, execution_id="exec-1", data_root=str(root))


def _run_local(lake: Path, day: dt.date = END, lookback: int = 90) -> pd.DataFrame:
    extract.run(_ctx(lake, day), lookback, "forecast_demo", "primary", "applications")
    return storage.read_table(str(lake / "runs" / "exec-1" / "extract" / "data.parquet"))


def _write_partition(lake: Path, day: str, frame: pd.DataFrame) -> None:
    folder = lake / "applications" / f"dt={day}"
    folder.mkdir(parents=True)
    pq.write_table(pa.Table.from_pandas(frame, preserve_index=False), folder / "part-0.parquet")


# --- the SQL ---------------------------------------------------------------------------------


def test_build_query_fills_validated_parameters() -> None:
    sql = extract.build_query("db_1", "applications", dt.date(2025, 1, 1), dt.date(2025, 3, 31))
    assert "{{" not in sql
    assert "FROM db_1.applications" in sql
    assert "dt BETWEEN '2025-01-01' AND '2025-03-31'" in sql


@pytest.mark.parametrize("name", ["db; DROP TABLE x", "a.b", "", "1db", "db'--"])
def test_build_query_rejects_unsafe_identifiers(name: str) -> None:
    with pytest.raises(StepError, match=r"Extract: database .* not a valid identifier"):
        extract.build_query(name, "applications", END, END)


def test_render_sql_rejects_unknown_or_missing_placeholders() -> None:
    with pytest.raises(StepError, match=r"missing \['b'\]"):
        extract.render_sql("select {{a}}, {{b}}", {"a": "1"})
    with pytest.raises(StepError, match=r"unused \['c'\]"):
        extract.render_sql("select {{a}}", {"a": "1", "c": "2"})


def test_duckdb_translation_keeps_partition_filter() -> None:
    sql = extract.to_duckdb_sql(extract.build_query("db", "applications", END, END))
    assert "dt BETWEEN '2025-03-31' AND '2025-03-31'" in sql
    assert "CAST('2025-03-31' AS DATE)" in sql


def test_lookback_window_is_inclusive_and_positive() -> None:
    assert extract.lookback_window(END, 1) == (END, END)
    assert extract.lookback_window(END, 7) == (END - dt.timedelta(days=6), END)
    with pytest.raises(StepError, match="lookback-days"):
        extract.lookback_window(END, 0)


# --- local path ------------------------------------------------------------------------------


def test_local_extract_counts_applications_per_model_and_day(small_lake: Path) -> None:
    result = _run_local(small_lake, lookback=90)
    expected = demo_data.demo_daily_counts(END, years=1.0, n_models=4, seed=7)
    expected = expected[(expected["y"] > 0) & (expected["ds"] > END - dt.timedelta(days=90))]
    pd.testing.assert_frame_equal(
        result, expected.sort_values(["series_id", "ds"]).reset_index(drop=True)
    )
    assert result["ds"].min() >= END - dt.timedelta(days=89)
    assert result["ds"].max() == END
    assert result["y"].dtype == "float64"
    assert isinstance(result["ds"].iloc[0], dt.date)


def test_execution_date_without_data_fails(small_lake: Path) -> None:
    later = END + dt.timedelta(days=1)
    with pytest.raises(StepError) as err:
        _run_local(small_lake, day=later)
    assert err.value.step == "Extract"
    assert f"no data for the execution date {later}" in str(err.value)


def test_empty_window_fails(small_lake: Path) -> None:
    with pytest.raises(StepError, match="Extract: the extract is empty"):
        _run_local(small_lake, day=dt.date(2020, 1, 31), lookback=30)


def test_lake_without_source_files_fails(tmp_path: Path) -> None:
    with pytest.raises(StepError, match="Extract: source table applications has no Parquet files"):
        _run_local(tmp_path)


def test_missing_source_column_fails(tmp_path: Path) -> None:
    frame = pd.DataFrame(
        {"application_id": ["a"], "applied_at": [pd.Timestamp(END)], "model_name": ["X"]}
    )
    _write_partition(tmp_path, END.isoformat(), frame)
    with pytest.raises(StepError, match=r"Extract: .*column 'car_model' is missing"):
        _run_local(tmp_path)


def test_mistyped_source_column_fails(tmp_path: Path) -> None:
    frame = pd.DataFrame({"applied_at": ["2025-03-31 10:00:00"], "car_model": ["X"]})
    _write_partition(tmp_path, END.isoformat(), frame)
    with pytest.raises(StepError, match=r"Extract: .*column 'applied_at' has type string"):
        _run_local(tmp_path)


def test_entry_point_reports_step_error_and_exit_code(
    small_lake: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    argv = [
        "--execution-date",
        "2030-01-01",
        "--execution-id",
        "exec-cli",
        "--data-root",
        str(small_lake),
        "--database",
        "forecast_demo",
    ]
    assert run_entry_point(extract.main, argv) == 1
    assert "ERROR Extract: " in capsys.readouterr().err


# --- AWS path (moto) -------------------------------------------------------------------------

DATABASE = "forecast_demo"
COLUMNS = [("series_id", "varchar"), ("ds", "date"), ("y", "double")]


def _aws_source(column_types: dict[str, str] | None = None) -> None:
    """Bucket, Glue database and applications table, and an Athena workgroup."""
    boto3.client("s3").create_bucket(Bucket="data")
    boto3.client("s3").create_bucket(Bucket="athena-results")
    glue = boto3.client("glue")
    glue.create_database(DatabaseInput={"Name": DATABASE})
    table_input = tables.glue_table_input(tables.APPLICATIONS, "s3://data/applications/")
    if column_types:
        for column in table_input["StorageDescriptor"]["Columns"]:
            column["Type"] = column_types.get(column["Name"], column["Type"])
    glue.create_table(DatabaseName=DATABASE, TableInput=table_input)
    boto3.client("athena").create_work_group(
        Name="forecast",
        Configuration={"ResultConfiguration": {"OutputLocation": "s3://athena-results/q/"}},
    )


def _run_aws() -> pd.DataFrame:
    extract.run(_ctx("s3://data"), 30, DATABASE, "forecast", "applications")
    return storage.read_table("s3://data/runs/exec-1/extract/data.parquet")


def test_aws_extract_runs_the_sql_in_athena_and_writes_the_run_folder(aws: str) -> None:
    _aws_source()
    set_athena_results(
        aws,
        COLUMNS,
        [
            ["Nova EV", "2025-03-30", "4.0"],
            ["Nova EV", "2025-03-31", "2.0"],
            ["Umi Kei", END.isoformat(), "1.0"],
        ],
    )
    result = _run_aws()
    assert result.to_dict("list") == {
        "series_id": ["Nova EV", "Nova EV", "Umi Kei"],
        "ds": [dt.date(2025, 3, 30), END, END],
        "y": [4.0, 2.0, 1.0],
    }
    athena = boto3.client("athena")
    query_id = athena.list_query_executions(WorkGroup="forecast")["QueryExecutionIds"][0]
    sent = athena.get_query_execution(QueryExecutionId=query_id)["QueryExecution"]["Query"]
    assert "dt BETWEEN '2025-03-02' AND '2025-03-31'" in sent


def test_aws_execution_date_without_data_fails(aws: str) -> None:
    _aws_source()
    set_athena_results(aws, COLUMNS, [["Nova EV", "2025-03-30", "4.0"]])
    with pytest.raises(StepError, match=f"Extract: no data for the execution date {END}"):
        _run_aws()
    assert not storage.exists("s3://data/runs/exec-1/extract/data.parquet")


def test_aws_empty_result_fails(aws: str) -> None:
    _aws_source()
    set_athena_results(aws, COLUMNS, [])
    with pytest.raises(StepError, match="Extract: the extract is empty"):
        _run_aws()


def test_aws_mistyped_source_column_fails_before_querying(aws: str) -> None:
    _aws_source({"applied_at": "string"})
    with pytest.raises(StepError, match="column 'applied_at' has type string"):
        _run_aws()
    assert boto3.client("athena").list_query_executions()["QueryExecutionIds"] == []


def test_aws_missing_source_table_fails(aws: str) -> None:
    boto3.client("glue").create_database(DatabaseInput={"Name": DATABASE})
    with pytest.raises(StepError, match=f"source table {DATABASE}.applications does not exist"):
        _run_aws()
