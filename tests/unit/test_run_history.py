"""The `run_history` rows: written by TrainEvaluation for every gated run, passed or failed, and
marked published by PostProc; with the table's Arrow schema on S3 (moto) and locally."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import boto3
import pyarrow.parquet as pq
import pytest

from pipeline_code import run_history, run_metrics, storage, tables
from pipeline_code.run_context import RunContext
from tests.unit import moto_server

_moto = moto_server._moto
_moto_server = moto_server._moto_server
aws = moto_server.aws

DAY = dt.date(2026, 11, 20)
EVALUATED = dt.datetime(2026, 11, 21, 3, 10, tzinfo=dt.UTC)
PUBLISHED = dt.datetime(2026, 11, 21, 3, 14, tzinfo=dt.UTC)


def _report(passed: bool) -> dict:
    return {
        "overall": {
            "mase": 0.81,
            "relative_mase": 0.7,
            "largest_series_relative_mase": 0.95,
            "coverage": 0.8,
            "smape": 22.0,
            "n_series": 30,
        },
        "gate": {
            "passed": passed,
            "max_mase": 1.5,
            "max_relative_mase": 1.0,
            "max_series_relative_mase": 1.5,
            "message": "passed" if passed else "MASE 0.8100 is above the maximum 0.5000",
        },
    }


def _read(uri: str) -> dict:
    fs, path = storage._filesystem(uri)
    table = pq.read_table(path, filesystem=fs, partitioning=None)
    assert table.schema == tables.arrow_schema(tables.RUN_HISTORY)
    return table.to_pylist()[0]


@pytest.mark.parametrize("where", ["local", "aws"])
def test_a_gated_run_gets_its_row_and_publishing_marks_it(
    where: str, request: pytest.FixtureRequest, tmp_path: Path
) -> None:
    if where == "aws":
        request.getfixturevalue("aws")
        boto3.client("s3").create_bucket(Bucket="data")
        root = "s3://data"
    else:
        root = str(tmp_path)
    ctx = RunContext(execution_date=DAY, execution_id="exec-7", data_root=root)

    uri = run_history.record_gate(ctx, _report(passed=True), now=EVALUATED)
    assert uri == f"{root}/run_history/execution_date=2026-11-20/exec-7.parquet"
    row = _read(uri)
    assert row["outcome"] == "gate_passed" and row["published_at"] is None
    assert row["n_series"] == 30 and row["max_mase"] == 1.5

    run_history.record_published(ctx, _report(passed=True), now=PUBLISHED)
    row = _read(uri)
    assert row["outcome"] == "published"
    assert row["evaluated_at"] == EVALUATED.replace(tzinfo=None)
    assert row["published_at"] == PUBLISHED.replace(tzinfo=None)


def test_a_run_the_gate_stopped_has_its_figures_and_reasons(tmp_path: Path) -> None:
    ctx = RunContext(execution_date=DAY, execution_id="exec-8", data_root=str(tmp_path))
    row = _read(run_history.record_gate(ctx, _report(passed=False), now=EVALUATED))
    assert row["outcome"] == "gate_failed" and row["gate_passed"] is False
    assert row["mase"] == 0.81 and "above the maximum" in row["gate_message"]


def test_publishing_a_run_without_a_row_builds_it_from_the_evaluation(tmp_path: Path) -> None:
    ctx = RunContext(execution_date=DAY, execution_id="exec-9", data_root=str(tmp_path))
    row = _read(run_history.record_published(ctx, _report(passed=True), now=PUBLISHED))
    assert row["outcome"] == "published" and row["mase"] == 0.81


def test_the_gate_metrics_reach_cloudwatch_in_the_namespace_given(aws: str) -> None:
    report = _report(passed=False)
    assert run_metrics.publish_gate_metrics(report, "Forecast/forecast-prod-daily", now=EVALUATED)
    cloudwatch = boto3.client("cloudwatch")
    found = cloudwatch.list_metrics(Namespace="Forecast/forecast-prod-daily")["Metrics"]
    assert {m["MetricName"] for m in found} == {*run_metrics.GATE_METRICS, "GatePassed"}
    stats = cloudwatch.get_metric_statistics(
        Namespace="Forecast/forecast-prod-daily",
        MetricName="GateMASE",
        StartTime=EVALUATED - dt.timedelta(minutes=5),
        EndTime=EVALUATED + dt.timedelta(minutes=5),
        Period=300,
        Statistics=["Maximum"],
    )
    assert [point["Maximum"] for point in stats["Datapoints"]] == [0.81]


def test_a_refused_metric_put_warns_and_does_not_fail_the_step(
    capsys: pytest.CaptureFixture[str],
) -> None:
    class Refusing:
        def put_metric_data(self, **_: object) -> None:
            raise RuntimeError("AccessDenied: not in this namespace")

    assert not run_metrics.publish_gate_metrics(_report(True), "Forecast/x", client=Refusing())
    assert "WARNING TrainEvaluation: no gate metrics in Forecast/x" in capsys.readouterr().out
