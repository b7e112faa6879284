from __future__ import annotations

import datetime as dt
from pathlib import Path

import boto3
import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from local_run import demo_data
from pipeline_code import shards, storage, tables
from pipeline_code.errors import StepError, run_entry_point
from pipeline_code.run_context import RunContext
from pipeline_code.steps import extract, preproc
from tests.unit import moto_server
from tests.unit.athena_answers import FIGURES, NAMES
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


def _counts(folder: str) -> pd.DataFrame:
    """Every bucket's counts in an attempt folder, sorted as the series are."""
    frames = [preproc.read_counts(folder, bucket) for bucket in range(shards.BUCKETS)]
    counts = pd.concat([f for f in frames if len(f)], ignore_index=True)
    counts["ds"] = pd.to_datetime(counts["ds"]).dt.date
    return counts.sort_values(["series_id", "ds"]).reset_index(drop=True)


def _run_local(lake: Path, day: dt.date = END, lookback: int = 90) -> pd.DataFrame:
    folder = extract.run(_ctx(lake, day), lookback, "forecast_demo", "primary", "applications")
    return _counts(folder)


def _applications(n: int, day: dt.date = END, model: str = "X", first_id: int = 1) -> pd.DataFrame:
    """n applications of one model on one day, with every column of the source table."""
    return pd.DataFrame(
        {
            "application_id": [f"A{first_id + i:06d}" for i in range(n)],
            "applied_at": pd.to_datetime([f"{day} 10:00:00"] * n).astype("datetime64[ms]"),
            "car_model": [model] * n,
            "plan": ["3y"] * n,
            "channel": ["web"] * n,
            "prefecture": ["Tokyo"] * n,
        }
    )


def _write_partition(lake: Path, day: str, frame: pd.DataFrame) -> None:
    folder = lake / "applications" / f"dt={day}"
    folder.mkdir(parents=True)
    pq.write_table(pa.Table.from_pandas(frame, preserve_index=False), folder / "part-0.parquet")


# --- the SQL ---------------------------------------------------------------------------------


def _source(database: str = "db_1", table: str = "applications") -> extract.QuerySource:
    return extract.QuerySource(database, table, dt.date(2025, 1, 1), END)


def test_build_query_fills_validated_parameters() -> None:
    for name in (extract.NAMES_SQL, extract.QUALITY_SQL, extract.COUNTS_SQL):
        sql = extract.build_query(name, _source())
        assert "{{" not in sql
        assert "FROM db_1.applications" in sql
        assert "dt BETWEEN '2025-01-01' AND '2025-03-31'" in sql


@pytest.mark.parametrize("name", ["db; DROP TABLE x", "a.b", "", "1db", "db'--"])
def test_build_query_rejects_unsafe_identifiers(name: str) -> None:
    with pytest.raises(StepError, match=r"Extract: database .* not a valid identifier"):
        extract.build_query(extract.COUNTS_SQL, _source(database=name))


def test_render_sql_rejects_unknown_or_missing_placeholders() -> None:
    with pytest.raises(StepError, match=r"missing \['b'\]"):
        extract.render_sql("select {{a}}, {{b}}", {"a": "1"})
    with pytest.raises(StepError, match=r"unused \['c'\]"):
        extract.render_sql("select {{a}}", {"a": "1", "c": "2"})


def test_duckdb_translation_keeps_partition_filter() -> None:
    sql = extract.to_duckdb_sql(extract.build_query(extract.COUNTS_SQL, _source("db")))
    assert "dt BETWEEN '2025-01-01' AND '2025-03-31'" in sql
    assert '"$path" AS source_file' in sql


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


def test_a_window_before_the_table_starts_fails_naming_the_day(small_lake: Path) -> None:
    with pytest.raises(StepError, match="Extract: no data for the execution date 2020-01-31"):
        _run_local(small_lake, day=dt.date(2020, 1, 31), lookback=30)


def test_lake_without_source_files_fails(tmp_path: Path) -> None:
    with pytest.raises(StepError, match=r"Extract: source table applications: .* is not a folder"):
        _run_local(tmp_path)
    (tmp_path / "applications").mkdir()
    with pytest.raises(StepError, match="Extract: source table applications has no partitions"):
        _run_local(tmp_path)


def test_missing_source_column_fails(tmp_path: Path) -> None:
    frame = pd.DataFrame(
        {"application_id": ["a"], "applied_at": [pd.Timestamp(END)], "model_name": ["X"]}
    )
    _write_partition(tmp_path, END.isoformat(), frame)
    with pytest.raises(
        StepError, match=r"Extract: 1 source files .*part-0.parquet: column 'car_model' is missing"
    ):
        _run_local(tmp_path)


def test_mistyped_source_column_fails(tmp_path: Path) -> None:
    frame = _applications(1).assign(applied_at="2025-03-31 10:00:00")
    _write_partition(tmp_path, END.isoformat(), frame)
    with pytest.raises(
        StepError, match=r"Extract: .*column 'applied_at' is string, expected timestamp"
    ):
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


def _aws_source(column_types: dict[str, str] | None = None, days: int = 30) -> None:
    """Bucket, Glue database and applications table with one small file a day for the window,
    and an Athena workgroup."""
    boto3.client("s3").create_bucket(Bucket="data")
    boto3.client("s3").create_bucket(Bucket="athena-results")
    glue = boto3.client("glue")
    glue.create_database(DatabaseInput={"Name": DATABASE})
    table_input = tables.glue_table_input(tables.APPLICATIONS, "s3://data/applications/")
    if column_types:
        for column in table_input["StorageDescriptor"]["Columns"]:
            column["Type"] = column_types.get(column["Name"], column["Type"])
    glue.create_table(DatabaseName=DATABASE, TableInput=table_input)
    for i in range(days):
        day = END - dt.timedelta(days=i)
        storage.write_table(_applications(1, day, first_id=i), _s3_file(day))
    boto3.client("athena").create_work_group(
        Name="forecast",
        Configuration={"ResultConfiguration": {"OutputLocation": "s3://athena-results/q/"}},
    )


def _s3_file(day: dt.date) -> str:
    return f"s3://data/applications/dt={day}/part-0.parquet"


def _day_row(day: dt.date, applications: int) -> list[str]:
    counts = [str(applications), "0", "0", "0", "0", "", "", str(applications), str(applications)]
    return ["day", day.isoformat(), "", *counts]


def _queue_answers(aws: str, days: dict[dt.date, int], spellings: dict[str, int]) -> None:
    """What Athena answers to the names and the figures queries, in that order."""
    set_athena_results(aws, NAMES, [[name, str(n)] for name, n in spellings.items()])
    total = sum(days.values())
    window = ["window", "", "", str(total + 1), "0", "0", "0", "1"]
    window += ["1999-01-01 00:00:00.000", "1999-01-01 00:00:00.000", str(total), str(total)]
    set_athena_results(aws, FIGURES, [window, *(_day_row(d, n) for d, n in days.items())])


def _run_aws() -> str:
    return extract.run(_ctx("s3://data"), 30, DATABASE, "forecast", "applications")


def _sent_queries() -> list[str]:
    athena = boto3.client("athena")
    ids = athena.list_query_executions(WorkGroup="forecast")["QueryExecutionIds"]
    queries = [athena.get_query_execution(QueryExecutionId=i)["QueryExecution"] for i in ids]
    ordered = sorted(queries, key=lambda q: q["Status"]["SubmissionDateTime"])
    return [q["Query"] for q in ordered]


def test_aws_extract_counts_in_athena_and_unloads_them_by_bucket(aws: str) -> None:
    _aws_source()
    days = {END - dt.timedelta(days=i): 20 for i in range(30)}
    _queue_answers(aws, days, {"Nova EV": 500, "Umi Kei ": 10, "Umi Kei": 90})
    folder = _run_aws()
    assert folder.startswith("s3://data/runs/exec-1/extract/counts/")
    manifest = storage.read_json("s3://data/runs/exec-1/extract/counts.json")
    assert manifest == {"folder": folder, "buckets": shards.BUCKETS}
    quality = storage.read_json("s3://data/runs/exec-1/extract/data_quality.json")
    assert quality["folded_names"] == {"Umi Kei": ["Umi Kei "]}
    assert quality["outside_window"]["rows"] == 1
    assert quality["files_checked"] == 30
    names, figures, unload = _sent_queries()
    assert "dt BETWEEN '2025-03-02' AND '2025-03-31'" in names
    assert "('556d69204b656920', 'Umi Kei')" in figures  # the spelling's UTF-8 bytes, as hex
    assert unload.startswith("UNLOAD (WITH source AS")
    assert unload.endswith(
        f"TO '{folder}/' WITH (format = 'PARQUET', compression = 'SNAPPY', "
        "partitioned_by = ARRAY['bucket'])"
    )


def test_aws_execution_date_without_data_fails(aws: str) -> None:
    _aws_source()
    _queue_answers(aws, {END - dt.timedelta(days=1): 1}, {"Nova EV": 1})
    with pytest.raises(StepError, match=f"Extract: no data for the execution date {END}"):
        _run_aws()
    assert not storage.exists("s3://data/runs/exec-1/extract/counts.json")
    assert len(_sent_queries()) == 2  # nothing unloaded


def test_aws_a_file_with_another_schema_is_named_before_querying(aws: str) -> None:
    _aws_source()
    bad = _applications(1).assign(car_model=[7])
    storage.write_table(bad, "s3://data/applications/dt=2025-03-20/part-1.parquet")
    with pytest.raises(
        StepError,
        match=r"s3://data/applications/dt=2025-03-20/part-1.parquet: column 'car_model' is int64",
    ):
        _run_aws()
    assert boto3.client("athena").list_query_executions()["QueryExecutionIds"] == []


def test_aws_missing_recent_days_fail_naming_them(aws: str) -> None:
    _aws_source()
    for i in range(3, 8):
        boto3.client("s3").delete_object(
            Bucket="data", Key=_s3_file(END - dt.timedelta(days=i))[len("s3://data/") :]
        )
    with pytest.raises(
        StepError, match=r"5 of the last 28 days .*2025-03-24..2025-03-28 \(5 days\)"
    ):
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


# --- faults a careful operator tries -----------------------------------------------------------


def _steady_lake(lake: Path, days: int = 100, per_day: int = 300) -> None:
    """`per_day` applications a day over six models for `days` days ending at END."""
    rng = np.random.default_rng(1)
    for i in range(days):
        day = END - dt.timedelta(days=i)
        n = int(rng.poisson(per_day))
        frame = _applications(n, day, first_id=i * 10_000)
        frame["car_model"] = [f"Model {j % 6}" for j in range(n)]
        _write_partition(lake, day.isoformat(), frame)


def _empty_day(lake: Path, day: dt.date) -> None:
    path = lake / "applications" / f"dt={day}" / "part-0.parquet"
    table = pq.read_table(path)
    pq.write_table(table.slice(0, 0), path)


def test_recent_days_whose_files_hold_no_rows_are_refused(tmp_path: Path) -> None:
    _steady_lake(tmp_path)
    for back in (3, 4, 5):
        _empty_day(tmp_path, END - dt.timedelta(days=back))
    with pytest.raises(
        StepError,
        match=r"3 of the last 28 days have no partition .* or far fewer rows .*"
        r"2025-03-26..2025-03-28 \(3 days\)",
    ):
        _run_local(tmp_path)


def test_an_execution_day_with_a_fifth_of_its_rows_is_refused(tmp_path: Path) -> None:
    _steady_lake(tmp_path)
    path = tmp_path / "applications" / f"dt={END}" / "part-0.parquet"
    table = pq.read_table(path)
    pq.write_table(table.slice(0, table.num_rows // 5), path)
    with pytest.raises(StepError, match=rf"the execution date {END} holds \d+ applications, 20%"):
        _run_local(tmp_path)
    assert not list(tmp_path.glob("runs/*/extract/counts.json"))


def test_an_earlier_partial_day_is_imputed_with_a_warning(tmp_path: Path) -> None:
    _steady_lake(tmp_path)
    day = END - dt.timedelta(days=9)
    path = tmp_path / "applications" / f"dt={day}" / "part-0.parquet"
    table = pq.read_table(path)
    pq.write_table(table.slice(0, table.num_rows // 5), path)
    _run_local(tmp_path)
    quality = storage.read_json(str(tmp_path / "runs/exec-1/extract/data_quality.json"))
    assert [d["day"] for d in quality["partial_days"]] == [day.isoformat()]
    assert any(f"{day} holds" in line and "imputed" in line for line in quality["warnings"])
    assert extract.unknown_days(quality) == frozenset({day})


def test_blank_application_ids_are_not_counted_and_named(tmp_path: Path) -> None:
    _steady_lake(tmp_path)
    path = tmp_path / "applications" / f"dt={END}" / "part-0.parquet"
    frame = pq.read_table(path).to_pandas()
    frame.loc[frame.index[:5], "application_id"] = ["", " ", "  ", "", "\t"]
    pq.write_table(pa.Table.from_pandas(frame, preserve_index=False), path)
    counts = _run_local(tmp_path)
    assert counts.loc[counts["ds"] == END, "y"].sum() == len(frame) - 5
    quality = storage.read_json(str(tmp_path / "runs/exec-1/extract/data_quality.json"))
    assert any(
        line.startswith("5 rows without an application_id were not counted")
        and f"dt={END}/part-0.parquet (5)" in line
        for line in quality["warnings"]
    )
