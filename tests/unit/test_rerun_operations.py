"""What an operator meets around a re-run: one-line AWS errors with their own exit codes, the dry
run, skipping dates already done, confirmation of long backfills, the history command, and the
Makefile's arguments.

The AWS failures are botocore's own, produced for real: an unknown AWS_PROFILE, an empty
credential chain, a closed local port as the endpoint, and a local HTTP server answering as STS
and SageMaker answer a bad token, a missing permission or throttling.
"""

from __future__ import annotations

import datetime as dt
import http.server
import io
import json
import os
import socket
import subprocess
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import boto3
import pytest

from rerun import cli as rerun
from rerun.session import AwsClients, aws_clients
from tests.unit.test_rerun import (
    ENVIRONMENTS,
    PIPELINE,
    REGION,
    FakeClock,
    SimulatedSageMaker,
    moto_clients,
    recorded_executions,
    run,
)
from tests.unit.test_rerun import sagemaker as sagemaker  # the fixture

REPO = Path(__file__).resolve().parents[2]


# -- AWS failures, produced for real -------------------------------------------------------------


@pytest.fixture
def cdk_json(tmp_path: Path) -> Path:
    path = tmp_path / "cdk.json"
    path.write_text(json.dumps({"context": {"environments": ENVIRONMENTS}}))
    return path


@pytest.fixture
def no_aws_setup(monkeypatch: pytest.MonkeyPatch) -> None:
    """An operator's machine with nothing configured: no keys, files, profile or metadata."""
    for name in list(os.environ):
        if name.startswith("AWS_"):
            monkeypatch.delenv(name)
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", os.devnull)
    monkeypatch.setenv("AWS_CONFIG_FILE", os.devnull)
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")


def _one_attempt(region: str) -> AwsClients:
    # The command's own clients, with one attempt so that refused requests are not retried.
    return aws_clients(region, max_attempts=1)


def _run_real(args: list[str], cdk_json: Path, capsys: pytest.CaptureFixture[str]) -> tuple:
    code = rerun.main(
        [*args, "--cdk-json", str(cdk_json)],
        client_factory=_one_attempt,
        clock=_Today(),
        stdin=io.StringIO(),
    )
    captured = capsys.readouterr()
    return code, captured.out, captured.err


class _Today:
    def today(self) -> dt.date:
        return dt.date(2026, 11, 25)

    def sleep(self, seconds: float) -> None:
        raise AssertionError("nothing may start")


def _closed_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


class _Answers(http.server.BaseHTTPRequestHandler):
    """Answers STS and SageMaker requests as AWS does when it refuses them."""

    sts_error: tuple[int, str] | None = None
    sagemaker_error: tuple[int, str] | None = None

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
        if b"Action=GetCallerIdentity" in body:
            self._sts()
        else:
            self._sagemaker()

    def _send(self, status: int, content_type: str, payload: bytes) -> None:
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        self.wfile.write(payload)

    def _sts(self) -> None:
        if self.sts_error:
            status, code = self.sts_error
            payload = (
                "<ErrorResponse><Error><Type>Sender</Type>"
                f"<Code>{code}</Code><Message>refused: {code}</Message></Error>"
                "<RequestId>r-1</RequestId></ErrorResponse>"
            )
            self._send(status, "text/xml", payload.encode())
            return
        payload = (
            "<GetCallerIdentityResponse><GetCallerIdentityResult>"
            "<Arn>arn:aws:iam::123456789012:user/operator</Arn><UserId>AID</UserId>"
            "<Account>123456789012</Account></GetCallerIdentityResult>"
            "<ResponseMetadata><RequestId>r-2</RequestId></ResponseMetadata>"
            "</GetCallerIdentityResponse>"
        )
        self._send(200, "text/xml", payload.encode())

    def _sagemaker(self) -> None:
        status, code = self.sagemaker_error or (400, "ValidationException")
        payload = json.dumps({"__type": code, "message": f"refused: {code}"}).encode()
        self._send(status, "application/x-amz-json-1.1", payload)

    def log_message(self, *args: Any) -> None:
        pass


@pytest.fixture
def refusing_aws(monkeypatch: pytest.MonkeyPatch) -> Iterator[type[_Answers]]:
    answers = type("Answers", (_Answers,), {})
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), answers)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    monkeypatch.setenv("AWS_ENDPOINT_URL", f"http://127.0.0.1:{server.server_address[1]}")
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "AKIAEXAMPLE")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "not-a-real-secret")
    yield answers
    server.shutdown()


def _assert_one_line(err: str, expected: str) -> None:
    assert err.count("\n") == 1 and "Traceback" not in err, err
    assert err.startswith("error: ") and expected in err, err


RERUN = ["--env", "prod", "--date", "2026-11-20"]


@pytest.mark.usefixtures("no_aws_setup")
def test_an_unknown_profile_is_one_line_with_its_own_exit_code(
    cdk_json: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("AWS_PROFILE", "nonexistent")
    code, _, err = _run_real(RERUN, cdk_json, capsys)
    assert code == 4
    _assert_one_line(err, "The config profile (nonexistent) could not be found")


@pytest.mark.usefixtures("no_aws_setup")
def test_no_credentials_is_one_line_with_its_own_exit_code(
    cdk_json: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, _, err = _run_real(RERUN, cdk_json, capsys)
    assert code == 3
    _assert_one_line(err, "no AWS credentials (Unable to locate credentials)")


@pytest.mark.usefixtures("no_aws_setup")
def test_an_unreachable_endpoint_is_one_line_with_its_own_exit_code(
    cdk_json: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "AKIAEXAMPLE")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "not-a-real-secret")
    monkeypatch.setenv("AWS_ENDPOINT_URL", f"http://127.0.0.1:{_closed_port()}")
    code, _, err = _run_real(RERUN, cdk_json, capsys)
    assert code == 5
    _assert_one_line(err, f"cannot reach AWS in {REGION}")


@pytest.mark.parametrize(
    ("sts_error", "sagemaker_error", "exit_code", "expected"),
    [
        (
            (403, "InvalidClientTokenId"),
            None,
            3,
            "AWS refused the credentials (InvalidClientTokenId",
        ),
        ((403, "SignatureDoesNotMatch"), None, 3, "AWS refused the credentials"),
        ((403, "ExpiredToken"), None, 3, "wrong or expired"),
        (None, (400, "AccessDeniedException"), 6, "access denied for DescribePipeline"),
        (None, (400, "ThrottlingException"), 7, "AWS throttled DescribePipeline after retries"),
        (None, (500, "InternalFailure"), 9, "DescribePipeline failed: InternalFailure"),
    ],
)
@pytest.mark.usefixtures("no_aws_setup")
def test_refusals_are_one_line_each_with_its_own_exit_code(
    cdk_json: Path,
    capsys: pytest.CaptureFixture[str],
    refusing_aws: type[_Answers],
    sts_error: tuple[int, str] | None,
    sagemaker_error: tuple[int, str] | None,
    exit_code: int,
    expected: str,
) -> None:
    refusing_aws.sts_error = sts_error
    refusing_aws.sagemaker_error = sagemaker_error
    code, _, err = _run_real(RERUN, cdk_json, capsys)
    assert code == exit_code
    _assert_one_line(err, expected)


@pytest.mark.usefixtures("no_aws_setup")
def test_history_fails_in_one_line_too(
    cdk_json: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("AWS_PROFILE", "nonexistent")
    code, _, err = _run_real(["history", "--env", "prod"], cdk_json, capsys)
    assert code == 4
    _assert_one_line(err, "could not be found")


@pytest.mark.usefixtures("no_aws_setup")
def test_a_dry_run_without_credentials_still_shows_the_plan_and_starts_nothing(
    cdk_json: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, _ = _run_real(
        ["--env", "prod", "--from", "2026-11-01", "--to", "2026-11-03", "--dry-run"],
        cdk_json,
        capsys,
    )
    assert code == 0
    assert f"pipeline {PIPELINE}  account unknown  region {REGION}" in out
    assert "would start 3 execution(s)" in out and "2026-11-01..2026-11-03" in out
    assert "note: account: no AWS credentials" in out


# -- dry run, skipping, confirmation (moto) --------------------------------------------------------


def _started(sagemaker: SimulatedSageMaker, days: list[str], status: str = "Succeeded") -> None:
    """Executions of earlier runs of these days, ended with `status`."""
    client = boto3.client("sagemaker", region_name=REGION)
    for day in days:
        client.start_pipeline_execution(
            PipelineName=PIPELINE,
            PipelineParameters=[{"Name": "ExecutionDate", "Value": day}],
            PipelineExecutionDisplayName=f"earlier-{day}",
        )
    for execution in sagemaker.executions():
        if execution.pipeline_execution_display_name.removeprefix("earlier-") in days:
            execution.pipeline_execution_status = status


def test_a_dry_run_lists_dates_pipeline_account_and_region_and_starts_nothing(
    sagemaker: SimulatedSageMaker, capsys: pytest.CaptureFixture[str]
) -> None:
    args = ["--env", "prod", "--from", "2026-11-01", "--to", "2026-11-20", "--dry-run"]
    assert run(args, sagemaker) == 0
    out = capsys.readouterr().out
    assert f"pipeline {PIPELINE}  account 123456789012  region {REGION}" in out
    assert "would start 20 execution(s), one per data day:\n  2026-11-01..2026-11-20" in out
    assert recorded_executions() == []


def test_a_backfill_skips_days_whose_latest_execution_succeeded_unless_forced(
    sagemaker: SimulatedSageMaker, capsys: pytest.CaptureFixture[str]
) -> None:
    _started(sagemaker, ["2026-11-02", "2026-11-03"])
    _started(sagemaker, ["2026-11-04"], status="Failed")
    args = ["--env", "prod", "--from", "2026-11-01", "--to", "2026-11-05", "--wait"]

    assert run(args, sagemaker) == 0
    out = capsys.readouterr().out
    assert "starting 3 execution(s)" in out and "  2026-11-01\n  2026-11-04..2026-11-05" in out
    assert "skipped 2 day(s) whose latest execution succeeded" in out
    rerun_days = [
        e["ExecutionDate"]
        for e in recorded_executions()
        if e["PipelineExecutionDisplayName"].startswith("rerun-")
    ]
    assert rerun_days == [["2026-11-01"], ["2026-11-04"], ["2026-11-05"]]

    assert run([*args, "--force", "--dry-run"], sagemaker) == 0
    assert "would start 5 execution(s)" in capsys.readouterr().out


def test_a_single_date_runs_even_when_it_succeeded_before(
    sagemaker: SimulatedSageMaker, capsys: pytest.CaptureFixture[str]
) -> None:
    _started(sagemaker, ["2026-11-20"])
    assert run(["--env", "prod", "--date", "2026-11-20"], sagemaker) == 0
    assert "starting 1 execution(s)" in capsys.readouterr().out


class _Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


@pytest.mark.parametrize(
    ("stdin", "expected_code", "started"),
    [
        (io.StringIO(""), 8, 0),  # piped, no --yes: refused in one line
        (_Terminal("n\n"), 8, 0),
        (_Terminal("y\n"), 0, 6),
    ],
)
def test_more_than_a_handful_of_dates_needs_confirmation(
    sagemaker: SimulatedSageMaker,
    capsys: pytest.CaptureFixture[str],
    stdin: io.StringIO,
    expected_code: int,
    started: int,
) -> None:
    args = ["--env", "prod", "--from", "2026-11-01", "--to", "2026-11-06", "--concurrency", "6"]
    assert run(args, sagemaker, stdin=stdin) == expected_code
    assert len(recorded_executions()) == started
    err = capsys.readouterr().err
    if expected_code:
        assert err.count("\n") == 1 and "Traceback" not in err


def test_five_dates_need_no_confirmation_and_yes_skips_it(sagemaker: SimulatedSageMaker) -> None:
    args = ["--env", "prod", "--from", "2026-11-01", "--to", "2026-11-05"]
    assert run([*args, "--concurrency", "5"], sagemaker, stdin=io.StringIO()) == 0
    args = ["--env", "prod", "--from", "2026-10-01", "--to", "2026-10-09", "--concurrency", "9"]
    assert run([*args, "--yes"], sagemaker, stdin=io.StringIO()) == 0
    assert len(recorded_executions()) == 14


def test_credentials_of_another_account_are_refused(
    sagemaker: SimulatedSageMaker, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    environments = json.loads(json.dumps(ENVIRONMENTS))
    environments["prod"]["account"] = "210987654321"
    sagemaker.cdk_json.write_text(json.dumps({"context": {"environments": environments}}))
    assert run(["--env", "prod", "--date", "2026-11-20"], sagemaker) == 3
    assert "credentials are for account 123456789012, but environment prod is in account" in (
        capsys.readouterr().err
    )
    assert recorded_executions() == []


# -- history (moto) --------------------------------------------------------------------------------


def _evaluation(passed: bool, mase: float) -> dict[str, Any]:
    return {
        "overall": {
            "mase": mase,
            "relative_mase": mase / 1.2,
            "largest_series_relative_mase": 0.9,
            "n_series": 30,
        },
        "gate": {"passed": passed, "message": "passed" if passed else "MASE above"},
    }


def test_history_lists_each_execution_with_its_day_status_duration_reason_and_gate(
    sagemaker: SimulatedSageMaker, capsys: pytest.CaptureFixture[str]
) -> None:
    client = boto3.client("sagemaker", region_name=REGION)
    gate_failed = "Step GateFailed failed: Quality gate failed, nothing was published: MASE 2.4"
    sagemaker.fail("2026-11-19", gate_failed)
    for value in ("2026-11-18", "2026-11-19", "2026-11-20T18:00:00Z", "2026-10-01"):
        client.start_pipeline_execution(
            PipelineName=PIPELINE,
            PipelineParameters=[{"Name": "ExecutionDate", "Value": value}],
        )
    executions = {rerun.short_id(e.arn): e for e in sagemaker.executions()}
    by_day = {e.pipeline_parameters[0]["Value"]: rerun.short_id(e.arn) for e in executions.values()}
    for execution in executions.values():
        execution.pipeline_execution_status = "Executing"
    sagemaker.advance()
    sagemaker.advance()  # each ends as planned
    for execution_id in by_day.values():
        start = dt.datetime(2026, 11, 21, 3, 0, tzinfo=dt.UTC)
        executions[execution_id].start_time = start
        executions[execution_id].creation_time = start
        executions[execution_id].last_modified_time = start + dt.timedelta(minutes=12, seconds=5)
    bucket = f"forecast-prod-data-123456789012-{REGION}"
    s3 = boto3.client("s3", region_name=REGION)
    s3.create_bucket(Bucket=bucket, CreateBucketConfiguration={"LocationConstraint": REGION})
    for day, passed, mase in (("2026-11-18", True, 0.8), ("2026-11-19", False, 2.4)):
        key = f"runs/{by_day[day]}/evaluation/evaluation.json"
        s3.put_object(Bucket=bucket, Key=key, Body=json.dumps(_evaluation(passed, mase)).encode())

    args = ["history", "--env", "prod", "--from", "2026-11-15", "--to", "2026-11-21"]
    assert run(args, sagemaker) == 0

    out = capsys.readouterr().out
    rows = {line.split()[0]: line for line in out.splitlines()[2:]}
    assert set(rows) == {"2026-11-18", "2026-11-19", "2026-11-20"}  # 2026-10-01 is outside
    assert "Succeeded" in rows["2026-11-18"] and "0:12:05" in rows["2026-11-18"]
    assert "passed MASE 0.800 rel 0.667 largest 0.900 series 30" in rows["2026-11-18"]
    assert "Failed" in rows["2026-11-19"] and gate_failed in rows["2026-11-19"]
    assert "failed MASE 2.400" in rows["2026-11-19"]
    # A scheduled timestamp is read as the pipeline reads it: the day before, in Tokyo.
    assert by_day["2026-11-20T18:00:00Z"] in rows["2026-11-20"]
    assert rows["2026-11-20"].split()[6] == "-"  # no figures in its run folder
    assert [line.split()[0] for line in out.splitlines()[2:]] == sorted(rows, reverse=True)


def test_history_reads_executions_through_botocores_paginators(
    sagemaker: SimulatedSageMaker, capsys: pytest.CaptureFixture[str]
) -> None:
    client = boto3.client("sagemaker", region_name=REGION)
    for day in ("2026-11-18", "2026-11-19"):
        client.start_pipeline_execution(
            PipelineName=PIPELINE, PipelineParameters=[{"Name": "ExecutionDate", "Value": day}]
        )
    paginated: list[str] = []

    def recording(region: str) -> AwsClients:
        clients = moto_clients(region)
        real = clients.sagemaker.get_paginator

        def get_paginator(operation: str) -> Any:
            paginated.append(operation)
            return real(operation)

        clients.sagemaker.get_paginator = get_paginator
        return clients

    code = rerun.main(
        ["history", "--env", "prod", "--cdk-json", str(sagemaker.cdk_json)],
        client_factory=recording,
        clock=FakeClock(sagemaker),
    )
    assert code == 0
    # No data bucket in this account: the rows are listed, their figures marked unreadable.
    assert capsys.readouterr().out.count("unreadable (NoSuchBucket)") == 2
    assert paginated == [
        "list_pipeline_executions",
        "list_pipeline_parameters_for_execution",
        "list_pipeline_parameters_for_execution",
    ]


# -- the Makefile --------------------------------------------------------------------------------


def _make(*args: str) -> subprocess.CompletedProcess[str]:
    """`make -n`'s commands, whitespace collapsed per line."""
    result = subprocess.run(
        ["make", "--no-print-directory", "-n", *args],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=60,
    )
    result.stdout = "\n".join(" ".join(line.split()) for line in result.stdout.splitlines())
    return result


def test_make_rerun_without_date_stops_with_one_line() -> None:
    result = _make("rerun", "ENV=prod")
    assert result.returncode != 0
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and "DATE is required" in lines[0], result.stderr


def test_make_rerun_and_backfill_pass_the_dates_and_flags() -> None:
    rerun_lines = _make("rerun", "ENV=prod", "DATE=2026-11-20", "DRY_RUN=1").stdout
    assert "-m rerun --env prod --date 2026-11-20 --dry-run" in rerun_lines
    backfill = _make("backfill", "ENV=prod", "FROM=2026-11-01", "TO=2026-11-20", "YES=1", "FORCE=1")
    assert "--from 2026-11-01 --to 2026-11-20" in backfill.stdout
    assert "--yes" in backfill.stdout and "--force" in backfill.stdout
    missing = _make("backfill", "ENV=prod", "FROM=2026-11-01")
    assert missing.returncode != 0 and "FROM and TO are required" in missing.stderr


def test_make_diff_passes_only_arguments_cdk_diff_accepts() -> None:
    (line,) = [line for line in _make("diff", "ENV=prod").stdout.splitlines() if " diff" in line]
    assert line.split()[1:] == ["diff", "-c", "env=prod"]
