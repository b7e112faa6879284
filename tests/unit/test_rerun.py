"""The re-run / backfill command against moto's SageMaker API.

Starts go through the real boto3 client and moto. Moto's executions finish the moment they start
and never report a failure reason, so `SimulatedSageMaker` patches moto's backend: executions start
as Executing and advance one poll at a time to the outcome planned for their date. The command's
sleeps are the clock's, which advances that simulation instead of waiting.
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import boto3
import pytest
from moto import mock_aws
from moto.sagemaker import models as sagemaker_models
from moto.sagemaker.exceptions import ValidationError as ValidationException

from rerun import cli as rerun
from rerun.session import AwsClients

REGION = "ap-northeast-1"  # prod's region in cdk.json
PIPELINE = "forecast-prod-daily"
TODAY = dt.date(2026, 11, 25)
ROLE_ARN = "arn:aws:iam::123456789012:role/forecast-prod-pipeline"


def _environment(region: str) -> dict[str, Any]:
    return {
        "region": region,
        "schedule": {"cron": "cron(0 3 * * ? *)", "timezone": "Asia/Tokyo"},
        "pipeline": {"max_mase": 1.5},
    }


# The tests' own cdk.json keeps them independent of the repository's settings; one test checks
# the command finds the repository's cdk.json by default.
ENVIRONMENTS = {"dev": _environment(REGION), "prod": _environment(REGION)}


def moto_clients(region: str) -> AwsClients:
    return AwsClients(
        sagemaker=boto3.client("sagemaker", region_name=region),
        sts=boto3.client("sts", region_name=region),
        s3=boto3.client("s3", region_name=region),
    )


def _backend() -> Any:
    return sagemaker_models.sagemaker_backends["123456789012"][REGION]


def _execution_date(execution: Any) -> str:
    return next(p["Value"] for p in execution.pipeline_parameters if p["Name"] == "ExecutionDate")


class SimulatedSageMaker:
    """Moto's pipeline executions, made to run for `polls_to_finish` polls, then end as planned."""

    def __init__(self, cdk_json: Path, polls_to_finish: int = 2) -> None:
        self.cdk_json = cdk_json  # the configuration the command under test reads
        self.polls_to_finish = polls_to_finish
        self.plan: dict[str, tuple[str, str]] = {}  # date -> (final status, failure reason)
        self.ticks: dict[str, int] = {}
        self.max_in_flight = 0
        self.refused_display_names: set[str] = set()

    def fail(self, day: str, reason: str) -> None:
        self.plan[day] = ("Failed", reason)

    def executions(self) -> list[Any]:
        return list(_backend().pipelines[PIPELINE].pipeline_executions.values())

    def in_flight(self) -> int:
        return sum(e.pipeline_execution_status == "Executing" for e in self.executions())

    def on_start(self) -> None:
        self.max_in_flight = max(self.max_in_flight, self.in_flight())

    def advance(self) -> None:
        """One poll interval passes: running executions move on, some finish."""
        for execution in self.executions():
            if execution.pipeline_execution_status != "Executing":
                continue
            self.ticks[execution.arn] = self.ticks.get(execution.arn, 0) + 1
            if self.ticks[execution.arn] >= self.polls_to_finish:
                status, reason = self.plan.get(_execution_date(execution), ("Succeeded", ""))
                execution.pipeline_execution_status = status
                execution.pipeline_execution_failure_reason = reason or None


class FakeClock:
    def __init__(self, sagemaker: SimulatedSageMaker) -> None:
        self.sagemaker = sagemaker
        self.sleeps: list[float] = []
        self.interrupt_on_sleep: int | None = None

    def today(self) -> dt.date:
        return TODAY

    def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        if self.interrupt_on_sleep == len(self.sleeps):
            raise KeyboardInterrupt
        self.sagemaker.advance()


@pytest.fixture
def sagemaker(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Iterator[SimulatedSageMaker]:
    cdk_json = tmp_path / "cdk.json"
    cdk_json.write_text(json.dumps({"context": {"environments": ENVIRONMENTS}}))
    simulated = SimulatedSageMaker(cdk_json)
    backend_class = sagemaker_models.SageMakerModelBackend
    real_start = backend_class.start_pipeline_execution
    real_describe = backend_class.describe_pipeline_execution

    def start(self: Any, *args: Any, **kwargs: Any) -> dict[str, str]:
        display_name = args[1]  # moto's responses pass the request's fields positionally
        if display_name in simulated.refused_display_names:
            raise ValidationException(f"refused {display_name}")
        response = real_start(self, *args, **kwargs)
        execution = self.pipelines[PIPELINE].pipeline_executions[response["PipelineExecutionArn"]]
        execution.pipeline_execution_status = "Executing"
        simulated.on_start()
        return response

    def describe(self: Any, pipeline_execution_arn: str) -> dict[str, Any]:
        response = real_describe(self, pipeline_execution_arn)
        execution = self.pipelines[PIPELINE].pipeline_executions[pipeline_execution_arn]
        response["FailureReason"] = execution.pipeline_execution_failure_reason or ""
        return response

    monkeypatch.setattr(backend_class, "start_pipeline_execution", start)
    monkeypatch.setattr(backend_class, "describe_pipeline_execution", describe)
    with mock_aws():
        boto3.client("sagemaker", region_name=REGION).create_pipeline(
            PipelineName=PIPELINE,
            RoleArn=ROLE_ARN,
            PipelineDefinition=json.dumps({"Version": "2020-12-01", "Steps": []}),
        )
        yield simulated


def run(
    args: list[str],
    sagemaker: SimulatedSageMaker,
    clock: FakeClock | None = None,
    repository_cdk_json: bool = False,
    stdin: Any = None,
) -> int:
    regions: list[str] = []
    if not repository_cdk_json:
        args = [*args, "--cdk-json", str(sagemaker.cdk_json)]

    def client_factory(region: str) -> AwsClients:
        regions.append(region)
        return moto_clients(region)

    code = rerun.main(
        args, client_factory=client_factory, clock=clock or FakeClock(sagemaker), stdin=stdin
    )
    assert regions in ([], [REGION])
    return code


def recorded_executions() -> list[dict[str, Any]]:
    """What moto recorded, through the API: one dict per execution with its ExecutionDate."""
    client = boto3.client("sagemaker", region_name=REGION)
    summaries = client.list_pipeline_executions(PipelineName=PIPELINE)["PipelineExecutionSummaries"]
    for summary in summaries:
        parameters = client.list_pipeline_parameters_for_execution(
            PipelineExecutionArn=summary["PipelineExecutionArn"]
        )["PipelineParameters"]
        summary["ExecutionDate"] = [p["Value"] for p in parameters if p["Name"] == "ExecutionDate"]
    return sorted(summaries, key=lambda s: s["ExecutionDate"])


def test_one_date_starts_one_execution_with_that_date_and_waits_for_success(
    sagemaker: SimulatedSageMaker, capsys: pytest.CaptureFixture[str]
) -> None:
    # The repository's own cdk.json, found by default: prod's pipeline and region.
    assert (
        run(
            ["--env", "prod", "--date", "2026-11-20", "--wait"], sagemaker, repository_cdk_json=True
        )
        == 0
    )

    [execution] = recorded_executions()
    assert execution["ExecutionDate"] == ["2026-11-20"]
    assert execution["PipelineExecutionDisplayName"] == "rerun-2026-11-20"
    assert execution["PipelineExecutionStatus"] == "Succeeded"
    [fake] = sagemaker.executions()
    assert 32 <= len(fake.client_request_token) <= 128
    out = capsys.readouterr().out
    arn = execution["PipelineExecutionArn"]
    assert f"2026-11-20  {rerun.short_id(arn)}" in out  # progress lines
    assert any(
        "2026-11-20" in line and "Succeeded" in line and arn in line for line in out.split("\n")
    )


def test_a_backfill_starts_each_date_once_and_never_exceeds_the_concurrency(
    sagemaker: SimulatedSageMaker,
) -> None:
    args = ["--env", "prod", "--from", "2026-11-01", "--to", "2026-11-07", "--concurrency", "3"]
    args.append("--yes")
    assert run([*args, "--wait"], sagemaker) == 0

    executions = recorded_executions()
    assert [e["ExecutionDate"] for e in executions] == [[f"2026-11-0{d}"] for d in range(1, 8)]
    assert [e["PipelineExecutionDisplayName"] for e in executions] == [
        f"rerun-2026-11-0{d}" for d in range(1, 8)
    ]
    assert {e["PipelineExecutionStatus"] for e in executions} == {"Succeeded"}
    assert sagemaker.max_in_flight == 3  # the limit is used, and never exceeded
    tokens = {e.client_request_token for e in sagemaker.executions()}
    assert len(tokens) == 7


def test_a_failed_date_is_reported_with_its_reason_and_fails_the_command(
    sagemaker: SimulatedSageMaker, capsys: pytest.CaptureFixture[str]
) -> None:
    reason = "Step TrainEvaluation failed: overall MASE 2.31 above 1.5"
    sagemaker.fail("2026-11-02", reason)

    code = run(["--env", "prod", "--from", "2026-11-01", "--to", "2026-11-03", "--wait"], sagemaker)

    assert code == 1
    table = capsys.readouterr().out.split("\n\n")[-1]
    rows = {line.split()[0]: line for line in table.splitlines()[1:]}
    assert "Failed" in rows["2026-11-02"] and reason in rows["2026-11-02"]
    assert "Succeeded" in rows["2026-11-01"] and "Succeeded" in rows["2026-11-03"]


def test_without_wait_it_waits_only_for_slots_and_returns_once_the_last_date_started(
    sagemaker: SimulatedSageMaker,
) -> None:
    clock = FakeClock(sagemaker)
    args = ["--env", "prod", "--from", "2026-11-01", "--to", "2026-11-03", "--concurrency", "1"]

    assert run([*args, "--poll-seconds", "5"], sagemaker, clock) == 0

    statuses = [e["PipelineExecutionStatus"] for e in recorded_executions()]
    assert statuses == ["Succeeded", "Succeeded", "Executing"]
    assert sagemaker.max_in_flight == 1
    assert set(clock.sleeps) == {5.0}


def test_ctrl_c_stops_starting_dates_and_lists_what_was_started(
    sagemaker: SimulatedSageMaker, capsys: pytest.CaptureFixture[str]
) -> None:
    clock = FakeClock(sagemaker)
    clock.interrupt_on_sleep = 1
    args = ["--env", "prod", "--from", "2026-11-01", "--to", "2026-11-04", "--concurrency", "2"]

    assert run([*args, "--wait"], sagemaker, clock) == 130

    assert [e["ExecutionDate"] for e in recorded_executions()] == [["2026-11-01"], ["2026-11-02"]]
    out = capsys.readouterr().out
    for execution in recorded_executions():
        assert execution["PipelineExecutionArn"] in out
    assert "2026-11-04  NotStarted" in out


def test_a_refused_start_is_reported_and_the_other_dates_still_run(
    sagemaker: SimulatedSageMaker, capsys: pytest.CaptureFixture[str]
) -> None:
    sagemaker.refused_display_names.add("rerun-2026-11-02")

    code = run(["--env", "prod", "--from", "2026-11-01", "--to", "2026-11-03"], sagemaker)

    assert code == 1
    assert [e["ExecutionDate"] for e in recorded_executions()] == [["2026-11-01"], ["2026-11-03"]]
    assert "refused rerun-2026-11-02" in capsys.readouterr().out


def test_the_client_retries_throttling_adaptively() -> None:
    client = rerun.sagemaker_client(REGION)
    assert client.meta.config.retries["mode"] == "adaptive"
    assert client.meta.region_name == REGION


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--from", "2026-11-10", "--to", "2026-11-01"], "--from 2026-11-10 is after --to"),
        (["--date", "2026-11-26"], "2026-11-26 is in the future"),
        (["--from", "2025-01-01", "--to", "2026-11-20"], "backfill at most 366 days"),
        (["--from", "2026-11-01"], "both --from DAY and --to DAY"),
        (["--date", "2026-11-20", "--to", "2026-11-21"], "either --date or --from/--to"),
        (["--date", "2026-11-20", "--concurrency", "0"], "--concurrency must be at least 1"),
        ([], "give --date DAY"),
    ],
)
def test_bad_dates_are_rejected_before_anything_starts(
    sagemaker: SimulatedSageMaker,
    capsys: pytest.CaptureFixture[str],
    args: list[str],
    message: str,
) -> None:
    assert run(["--env", "prod", *args], sagemaker) == 2
    assert message in capsys.readouterr().err
    assert recorded_executions() == []


def test_a_malformed_date_is_rejected_by_the_parser(
    sagemaker: SimulatedSageMaker, capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit) as exit_info:
        run(["--env", "prod", "--date", "20/11/2026"], sagemaker)
    assert exit_info.value.code == 2
    assert "'20/11/2026' is not a date of the form YYYY-MM-DD" in capsys.readouterr().err


def test_an_unknown_environment_is_rejected_naming_the_known_ones(
    sagemaker: SimulatedSageMaker, capsys: pytest.CaptureFixture[str]
) -> None:
    assert run(["--env", "staging", "--date", "2026-11-20"], sagemaker) == 2
    err = capsys.readouterr().err
    assert "unknown environment 'staging'" in err and "prod" in err
    assert recorded_executions() == []


def test_a_pipeline_that_is_not_deployed_is_reported_plainly(
    sagemaker: SimulatedSageMaker, capsys: pytest.CaptureFixture[str]
) -> None:
    assert run(["--env", "dev", "--date", "2026-11-20"], sagemaker) == 2
    assert "pipeline forecast-dev-daily not found in ap-northeast-1" in capsys.readouterr().err


def test_dates_to_run_is_inclusive_and_allows_today() -> None:
    days = rerun.dates_to_run(dt.date(2026, 11, 24), TODAY, TODAY)
    assert days == [dt.date(2026, 11, 24), TODAY]
    assert len(rerun.dates_to_run(dt.date(2025, 11, 25), TODAY, TODAY)) == 366


def test_names_and_tokens_fit_sagemakers_limits() -> None:
    day = dt.date(2026, 11, 20)
    assert rerun.display_name(day) == "rerun-2026-11-20"
    tokens = {rerun.client_request_token(day) for _ in range(3)}
    assert len(tokens) == 3 and all(32 <= len(t) <= 128 for t in tokens)
    arn = f"arn:aws:sagemaker:{REGION}:123456789012:pipeline/{PIPELINE}/execution/abc123"
    assert rerun.short_id(arn) == "abc123"
