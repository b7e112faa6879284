"""The Slack notifier (lambda/slack_notifier): events in, Block Kit out, posted to a local HTTP
server that plays Slack.

AWS: Secrets Manager runs on moto. SageMaker runs on moto for ListPipelineParametersForExecution
and DescribePipelineExecution; moto does not implement ListPipelineExecutionSteps, so the steps
come from a stub (`StepsStub`, or `MotoWithSteps` which adds canned steps to a moto client).
"""

from __future__ import annotations

import copy
import importlib
import json
import logging
import sys
import threading
import traceback
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from types import ModuleType
from typing import Any

import boto3
import pytest
from botocore.exceptions import ClientError
from moto import mock_aws

from pipeline_code import run_context
from tests.unit.aws_paginators import paginator

REPO_ROOT = Path(__file__).resolve().parents[2]
NOTIFIER_DIR = REPO_ROOT / "lambda" / "slack_notifier"
SAMPLES_DIR = REPO_ROOT.parent / "shared" / "aws-samples" / "events"
EXAMPLE_FILE = REPO_ROOT / "docs" / "slack_message_example.json"

REGION = "us-east-1"
EXECUTION_ARN = (
    f"arn:aws:sagemaker:{REGION}:123456789012:pipeline/daily-forecast-prod/execution/abc123def456"
)
PIPELINE_ARN = f"arn:aws:sagemaker:{REGION}:123456789012:pipeline/daily-forecast-prod"
JOB_ARN = (
    f"arn:aws:sagemaker:{REGION}:123456789012:training-job/pipelines-abc123def456-preproc-x1y2z3"
)
SECRET_NAME = "slack-webhook-test"
WEBHOOK_PATH = "/services/T0000/B0000/s3cr3tT0kenValue"

_MODULES = (
    "handler",
    "pipeline_events",
    "execution_report",
    "slack_message",
    "slack_webhook",
    "data_quality",
    "render_example",
)


def _load_notifier() -> dict[str, ModuleType]:
    """Import the function's modules by their Lambda names without leaving those generic names
    (handler, ...) in sys.modules, where they could clash with another function's modules."""
    saved = {name: sys.modules.pop(name) for name in _MODULES if name in sys.modules}
    sys.path.insert(0, str(NOTIFIER_DIR))
    try:
        return {name: importlib.import_module(name) for name in _MODULES}
    finally:
        sys.path.remove(str(NOTIFIER_DIR))
        for name in _MODULES:
            sys.modules.pop(name, None)
        sys.modules.update(saved)


_notifier = _load_notifier()
handler = _notifier["handler"]
slack_webhook = _notifier["slack_webhook"]
execution_report = _notifier["execution_report"]
render_example = _notifier["render_example"]


def _shared_sample(name: str) -> dict[str, Any]:
    path = SAMPLES_DIR / name
    if not path.is_file():
        pytest.skip(
            f"AWS sample events not found at {SAMPLES_DIR} (the shared folder beside the "
            "repository is not part of a plain clone); the inline-event tests cover the logic"
        )
    return json.loads(path.read_text(encoding="utf-8"))


# --- events -------------------------------------------------------------------------------


def sns_envelope(message: dict[str, Any] | str, subject: str | None = None) -> dict[str, Any]:
    """What an SNS subscription hands the function: the message as a string in Records[0].Sns."""
    sns: dict[str, Any] = {
        "Type": "Notification",
        "MessageId": "95df01b4-ee98-5cb9-9903-4c221d41eb5e",
        "TopicArn": f"arn:aws:sns:{REGION}:123456789012:forecast-alerts-prod",
        "Message": message if isinstance(message, str) else json.dumps(message),
        "Timestamp": "2024-05-02T03:10:11.000Z",
        "MessageAttributes": {},
    }
    if subject is not None:
        sns["Subject"] = subject
    return {"Records": [{"EventSource": "aws:sns", "EventVersion": "1.0", "Sns": sns}]}


def wrap_like_sample(message: dict[str, Any]) -> dict[str, Any]:
    """The AWS SNS-to-Lambda sample envelope carrying `message`, as the derived sample is built."""
    envelope = copy.deepcopy(_shared_sample("sns_to_lambda_event.json"))
    sns = envelope["Records"][0]["Sns"]
    sns["Message"] = json.dumps(message, separators=(",", ":"))
    sns.pop("Subject", None)
    sns["MessageAttributes"] = {}
    return envelope


def execution_event(status: str = "Failed", arn: str = EXECUTION_ARN) -> dict[str, Any]:
    return {
        "version": "0",
        "id": "0d9c7a8e-1111-2222-3333-444455556666",
        "detail-type": "SageMaker Model Building Pipeline Execution Status Change",
        "source": "aws.sagemaker",
        "account": "123456789012",
        "time": "2024-05-01T18:20:11Z",
        "region": REGION,
        "resources": [PIPELINE_ARN, arn],
        "detail": {
            "pipelineExecutionDisplayName": "execution-1714586400",
            "currentPipelineExecutionStatus": status,
            "previousPipelineExecutionStatus": "Executing",
            "executionStartTime": "2024-05-01T18:00:05Z",
            "executionEndTime": "2024-05-01T18:20:10Z",
            "pipelineArn": PIPELINE_ARN,
            "pipelineExecutionArn": arn,
        },
    }


def step_event(status: str = "Failed") -> dict[str, Any]:
    detail: dict[str, Any] = {
        "metadata": {"trainingJob": {"arn": JOB_ARN}},
        "stepStartTime": "2024-05-01T18:04:00Z",
        "stepEndTime": "2024-05-01T18:20:09Z",
        "stepName": "PreProc",
        "stepType": "Processing",
        "previousStepStatus": "Executing",
        "currentStepStatus": status,
        "pipelineArn": PIPELINE_ARN,
        "pipelineExecutionArn": EXECUTION_ARN,
    }
    if status == "Failed":
        detail["failureReason"] = "AlgorithmError: StepError: PreProc: no rows, exit code: 1"
    return {
        "version": "0",
        "id": "ea37ccbb-0000-1111-2222-333344445555",
        "detail-type": "SageMaker Model Building Pipeline Execution Step Status Change",
        "source": "aws.sagemaker",
        "account": "123456789012",
        "time": "2024-05-01T18:20:10Z",
        "region": REGION,
        "resources": [PIPELINE_ARN, EXECUTION_ARN],
        "detail": detail,
    }


def alarm_message(state: str = "ALARM") -> dict[str, Any]:
    return {
        "AlarmName": "forecast-prod-no-successful-run",
        "AlarmDescription": "No successful pipeline execution in the last 26 hours",
        "AWSAccountId": "123456789012",
        "NewStateValue": state,
        "NewStateReason": "Threshold Crossed: 1 datapoint [0.0 (01/05/24 18:00:00)] was less "
        "than the threshold (1.0).",
        "StateChangeTime": "2024-05-01T20:00:00.000+0000",
        "Region": "US East (N. Virginia)",
        "AlarmArn": f"arn:aws:cloudwatch:{REGION}:123456789012:alarm:"
        "forecast-prod-no-successful-run",
        "OldStateValue": "OK",
        "Trigger": {
            "MetricName": "ExecutionSucceeded",
            "Namespace": "AWS/Sagemaker/ModelBuildingPipeline",
        },
    }


# --- SageMaker stubs ----------------------------------------------------------------------

FAILED_PREPROC = {
    "StepName": "PreProc",
    "StepStatus": "Failed",
    "FailureReason": "AlgorithmError: StepError: PreProc: no rows for 2024-05-01, exit code: 1",
    "Metadata": {"TrainingJob": {"Arn": JOB_ARN}},
}


@dataclass
class StepsStub:
    """SageMaker reads with canned answers (moto has no ListPipelineExecutionSteps)."""

    execution_date: str = "2024-05-01T18:00:00Z"
    steps: list[dict[str, Any]] = field(default_factory=lambda: [FAILED_PREPROC])
    failure_reason: str = ""
    error: str = ""  # when set, every call raises a ClientError with this code
    calls: list[str] = field(default_factory=list)

    def _maybe_fail(self, operation: str) -> None:
        self.calls.append(operation)
        if self.error:
            raise ClientError({"Error": {"Code": self.error, "Message": "no"}}, operation)

    def list_pipeline_parameters_for_execution(self, **_: Any) -> dict[str, Any]:
        self._maybe_fail("ListPipelineParametersForExecution")
        return {"PipelineParameters": [{"Name": "ExecutionDate", "Value": self.execution_date}]}

    def get_paginator(self, operation: str) -> Any:
        assert operation == "list_pipeline_execution_steps"
        return paginator(
            "sagemaker", "ListPipelineExecutionSteps", self.list_pipeline_execution_steps
        )

    def list_pipeline_execution_steps(self, **_: Any) -> dict[str, Any]:
        self._maybe_fail("ListPipelineExecutionSteps")
        return {"PipelineExecutionSteps": self.steps}

    def describe_pipeline_execution(self, **_: Any) -> dict[str, Any]:
        self._maybe_fail("DescribePipelineExecution")
        return {"FailureReason": self.failure_reason}


class MotoWithSteps:
    """A moto SageMaker client plus the one call moto lacks."""

    def __init__(self, client: Any, steps: list[dict[str, Any]]) -> None:
        self._client = client
        self._steps = steps

    def list_pipeline_parameters_for_execution(self, **kwargs: Any) -> dict[str, Any]:
        return self._client.list_pipeline_parameters_for_execution(**kwargs)

    def describe_pipeline_execution(self, **kwargs: Any) -> dict[str, Any]:
        return self._client.describe_pipeline_execution(**kwargs)

    def get_paginator(self, operation: str) -> Any:
        assert operation == "list_pipeline_execution_steps"
        return paginator(
            "sagemaker", "ListPipelineExecutionSteps", self.list_pipeline_execution_steps
        )

    def list_pipeline_execution_steps(self, **_: Any) -> dict[str, Any]:
        return {"PipelineExecutionSteps": self._steps}


class CountingSecrets:
    def __init__(self, client: Any) -> None:
        self._client = client
        self.calls = 0

    def get_secret_value(self, **kwargs: Any) -> dict[str, Any]:
        self.calls += 1
        return self._client.get_secret_value(**kwargs)


# --- a local Slack ------------------------------------------------------------------------

HANG = "hang"
Reply = tuple[int, str, dict[str, str]] | str


class FakeSlack:
    """Answers POSTs with scripted replies; the last reply repeats for ever."""

    def __init__(self) -> None:
        self.replies: list[Reply] = [(200, "ok", {})]
        self.requests: list[dict[str, Any]] = []
        self.paths: list[str] = []
        self.release = threading.Event()
        fake = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length", "0"))
                fake.requests.append(json.loads(self.rfile.read(length)))
                fake.paths.append(self.path)
                reply = fake.replies[min(len(fake.requests), len(fake.replies)) - 1]
                if reply == HANG:
                    fake.release.wait(10)  # never answers within the client's timeout
                    return
                status, body, headers = reply
                self.send_response(status)
                for key, value in headers.items():
                    self.send_header(key, value)
                self.send_header("Content-Type", "text/html")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body.encode())

            def log_message(self, *_: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.thread = threading.Thread(
            target=self.server.serve_forever, kwargs={"poll_interval": 0.02}, daemon=True
        )

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}{WEBHOOK_PATH}"

    def __enter__(self) -> FakeSlack:
        self.thread.start()
        return self

    def __exit__(self, *_: Any) -> None:
        self.release.set()
        self.server.shutdown()
        self.server.server_close()


@dataclass
class FakeContext:
    remaining_ms: list[int] = field(default_factory=lambda: [60_000])
    aws_request_id: str = "req-1"

    def get_remaining_time_in_millis(self) -> int:
        # Each call consumes one value; the last one stays (time stands still in these tests).
        return self.remaining_ms.pop(0) if len(self.remaining_ms) > 1 else self.remaining_ms[0]


# --- fixtures -----------------------------------------------------------------------------


@pytest.fixture
def slack() -> Iterator[FakeSlack]:
    with FakeSlack() as fake:
        yield fake


@pytest.fixture
def aws(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    for key, value in {
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_SESSION_TOKEN": "testing",
        "AWS_DEFAULT_REGION": REGION,
    }.items():
        monkeypatch.setenv(key, value)
    with mock_aws():
        yield


@pytest.fixture
def secrets(aws: None, slack: FakeSlack) -> CountingSecrets:
    client = boto3.client("secretsmanager", region_name=REGION)
    client.create_secret(Name=SECRET_NAME, SecretString=json.dumps({"webhook_url": slack.url}))
    return CountingSecrets(client)


@pytest.fixture(autouse=True)
def _fresh_secret_cache() -> Iterator[None]:
    handler._secret_cache.clear()
    yield
    handler._secret_cache.clear()


@dataclass
class Harness:
    slack: FakeSlack
    secrets: CountingSecrets
    sagemaker: Any
    sleeps: list[float]
    env: dict[str, str]

    def settings(self) -> Any:
        return handler.Settings.from_env(self.env)

    def run(self, event: dict[str, Any], context: FakeContext | None = None) -> dict[str, int]:
        deps = handler.Dependencies(
            sagemaker=self.sagemaker, secrets=self.secrets, sleep=self.sleeps.append
        )
        return handler.handle(event, context or FakeContext(), deps, self.settings())

    def posted_text(self, index: int = -1) -> str:
        """Everything Slack would render of one posted message, as one string."""
        return json.dumps(self.slack.requests[index], ensure_ascii=False)


@pytest.fixture
def harness(slack: FakeSlack, secrets: CountingSecrets) -> Harness:
    env = {
        "SLACK_SECRET_ARN": SECRET_NAME,
        "ENVIRONMENT_NAME": "prod",
        "PIPELINE_NAME": "daily-forecast-prod",
        "AWS_REGION": REGION,
        "SCHEDULE_TIMEZONE": "Asia/Tokyo",
        # Long enough that a loaded machine never turns an answered post into a retry; the tests
        # of a Slack that never answers set their own short timeout.
        "SLACK_TIMEOUT_SECONDS": "5",
    }
    return Harness(slack, secrets, StepsStub(), [], env)


def logged(caplog: pytest.LogCaptureFixture) -> str:
    """Every record with all its fields: what Lambda's JSON log format writes (message, extra=
    fields, exception)."""
    return "\n".join(json.dumps(vars(record), default=str) for record in caplog.records)


def assert_no_webhook(text: str, slack: FakeSlack) -> None:
    assert slack.url not in text
    assert WEBHOOK_PATH not in text
    assert "s3cr3tT0kenValue" not in text


# --- the message --------------------------------------------------------------------------


def test_failed_execution_posts_one_message_with_what_a_person_needs(
    harness: Harness, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO)
    result = harness.run(sns_envelope(execution_event("Failed")))

    assert result == {"posted": 1, "ignored": 0}
    assert len(harness.slack.requests) == 1
    assert harness.slack.paths == [WEBHOOK_PATH]
    payload = harness.slack.requests[0]
    assert payload["text"].startswith("[prod] daily-forecast-prod: execution Failed")
    text = harness.posted_text()
    for expected in (
        "*Environment*\\nprod",
        "*Pipeline*\\ndaily-forecast-prod",
        # Scheduled 2024-05-01T18:00Z = 2024-05-02 03:00 Tokyo: the data day is the 1st.
        "*Execution date*\\n2024-05-01",
        "derived from the scheduled time 2024-05-01T18:00:00Z (Asia/Tokyo)",
        "*Status*\\nFailed",
        "*Failed step:* `PreProc`",
        "StepError: PreProc: no rows for 2024-05-01",
        "make rerun ENV=prod DATE=2024-05-01",
        "$252Faws$252Fsagemaker$252FTrainingJobs$3FlogStreamNameFilter$3D"
        "pipelines-abc123def456-preproc-x1y2z3",
        "logStreamNameFilter$3Dpipelines-abc123def456|",
        f"list-pipeline-execution-steps --pipeline-execution-arn {EXECUTION_ARN}",
    ):
        assert expected in text, expected
    assert payload["blocks"][0]["type"] == "header"
    assert caplog.records
    assert_no_webhook(logged(caplog), harness.slack)


def test_studio_link_when_a_domain_is_configured(harness: Harness) -> None:
    harness.env["STUDIO_DOMAIN_ID"] = "d-abc123"
    harness.run(sns_envelope(execution_event("Failed")))
    assert (
        f"https://studio-d-abc123.studio.{REGION}.sagemaker.aws/pipelines/daily-forecast-prod/"
        "executions/abc123def456|Execution in SageMaker Studio" in harness.posted_text()
    )


def test_step_failed_then_execution_failed_gives_one_message(harness: Harness) -> None:
    result_step = harness.run(sns_envelope(step_event("Failed")))
    result_execution = harness.run(sns_envelope(execution_event("Failed")))

    assert result_step == {"posted": 0, "ignored": 1}
    assert result_execution == {"posted": 1, "ignored": 0}
    assert len(harness.slack.requests) == 1
    assert "*Failed step:* `PreProc`" in harness.posted_text()


def test_statuses_posted_by_default_and_on_request(harness: Harness) -> None:
    for status in ("Executing", "Succeeded", "Stopping"):
        assert harness.run(sns_envelope(execution_event(status))) == {"posted": 0, "ignored": 1}
    assert harness.slack.requests == []

    harness.run(sns_envelope(execution_event("Stopped")))
    assert "execution Stopped" in harness.slack.requests[-1]["text"]
    assert harness.sagemaker.calls == ["ListPipelineParametersForExecution"]  # no step lookup

    harness.env["NOTIFY_STATUSES"] = "Failed,Stopped,Succeeded"
    harness.run(sns_envelope(execution_event("Succeeded")))
    assert ":white_check_mark:" in harness.posted_text()


def test_gate_failure_reason_comes_from_the_fail_step(harness: Harness) -> None:
    harness.sagemaker = StepsStub(
        steps=[
            {
                "StepName": "CheckEvaluation",
                "StepStatus": "Succeeded",
                "Metadata": {"Condition": {"Outcome": "False"}},
            },
            {
                "StepName": "GateFailed",
                "StepStatus": "Failed",
                "Metadata": {"Fail": {"ErrorMessage": "mase 1.31 > max_mase 1.2"}},
            },
        ]
    )
    harness.run(sns_envelope(execution_event("Failed")))
    text = harness.posted_text()
    assert "*Failed step:* `GateFailed`" in text
    assert "mase 1.31 &gt; max_mase 1.2" in text  # Slack's control characters escaped


def test_a_failed_lambda_step_links_its_functions_log_of_that_day(harness: Harness) -> None:
    """With compute lambda a step is a function: its reason is the handler's line, its logs are
    the function's log group, narrowed to the day the step ran (UTC)."""
    import datetime as dt

    function = "forecast-prod-train"
    harness.sagemaker = StepsStub(
        steps=[
            {
                "StepName": "Train",
                "StepStatus": "Failed",
                "StartTime": dt.datetime(2024, 5, 1, 18, 3, tzinfo=dt.UTC),
                "FailureReason": "ERROR train: stopped after 585 s, near the Lambda function's"
                " 600 s limit; ... set pipeline.compute to training",
                "Metadata": {
                    "Lambda": {
                        "Arn": f"arn:aws:lambda:ap-northeast-1:123456789012:function:{function}"
                    }
                },
            }
        ]
    )
    harness.run(sns_envelope(execution_event("Failed")))
    text = harness.posted_text()
    assert "*Failed step:* `Train`" in text and f"(function `{function}`)" in text
    assert "set pipeline.compute to training" in text
    assert f"$252Faws$252Flambda$252F{function}$3FlogStreamNameFilter$3D2024$252F05$252F01" in text
    assert "TrainingJobs" not in text, "no link to training-job logs nobody wrote"


def test_execution_failure_without_a_failed_step_uses_the_execution_reason(
    harness: Harness,
) -> None:
    harness.sagemaker = StepsStub(
        steps=[], failure_reason="Parameter ExecutionDate: invalid", execution_date=""
    )
    harness.run(sns_envelope(execution_event("Failed")))
    text = harness.posted_text()
    assert "Parameter ExecutionDate: invalid" in text
    assert "ExecutionDate was empty: derived from the start time 2024-05-01T18:00:05Z" in text


def test_sagemaker_errors_degrade_the_message_but_do_not_lose_it(harness: Harness) -> None:
    harness.sagemaker = StepsStub(error="AccessDeniedException")
    assert harness.run(sns_envelope(execution_event("Failed"))) == {"posted": 1, "ignored": 0}
    text = harness.posted_text()
    assert "could not be read (AccessDeniedException)" in text
    assert "make rerun ENV=prod DATE=YYYY-MM-DD" in text


def test_alarm_notification_names_the_alarm_and_its_reason(harness: Harness) -> None:
    event = sns_envelope(alarm_message(), subject='ALARM: "forecast-prod-no-successful-run"')
    assert harness.run(event) == {"posted": 1, "ignored": 0}
    text = harness.posted_text()
    assert "[prod] ALARM: forecast-prod-no-successful-run" in text
    assert "Threshold Crossed: 1 datapoint" in text
    assert "No successful pipeline execution in the last 26 hours" in text
    assert "#alarmsV2:alarm/forecast-prod-no-successful-run|" in text
    assert "OK → ALARM" in text
    assert harness.sagemaker.calls == []


def test_message_of_unknown_shape_is_forwarded_as_text(harness: Harness) -> None:
    harness.run(sns_envelope("deploy test <b>", subject="Manual test"))
    text = harness.posted_text()
    assert "[prod] Manual test" in text
    assert "deploy test &lt;b&gt;" in text


def test_direct_eventbridge_invocation_is_accepted(harness: Harness) -> None:
    assert harness.run(execution_event("Failed")) == {"posted": 1, "ignored": 0}


def test_execution_date_rule_matches_the_pipeline() -> None:
    cases = [
        ("2024-05-01", "2024-05-03T00:00:00Z", "Asia/Tokyo"),
        ("2024-05-01T18:00:00Z", "", "Asia/Tokyo"),
        ("2024-05-01T14:59:59Z", "", "Asia/Tokyo"),
        ("2024-05-01T23:30:00+00:00", "", "Europe/Berlin"),
        ("", "2024-05-01T00:30:00Z", "UTC"),
    ]
    for raw, start, zone in cases:
        expected = run_context.resolve_execution_date(raw, start, zone).isoformat()
        assert execution_report.execution_date_from(raw, start, zone).date == expected, raw


# --- the moto-backed path -----------------------------------------------------------------


def test_execution_date_read_from_sagemaker_on_moto(harness: Harness) -> None:
    client = boto3.client("sagemaker", region_name=REGION)
    client.create_pipeline(
        PipelineName="daily-forecast-prod",
        RoleArn="arn:aws:iam::123456789012:role/pipeline",
        PipelineDefinition=json.dumps(
            {"Version": "2020-12-01", "Parameters": [{"Name": "ExecutionDate", "Type": "String"}]}
        ),
    )
    arn = client.start_pipeline_execution(
        PipelineName="daily-forecast-prod",
        PipelineParameters=[{"Name": "ExecutionDate", "Value": "2024-04-28"}],
    )["PipelineExecutionArn"]
    harness.sagemaker = MotoWithSteps(client, [FAILED_PREPROC])

    harness.run(sns_envelope(execution_event("Failed", arn=arn)))

    text = harness.posted_text()
    assert '*Execution date*\\n2024-04-28"' in text  # a plain date needs no note
    assert "make rerun ENV=prod DATE=2024-04-28" in text
    assert "*Failed step:* `PreProc`" in text


def test_secret_is_read_once_and_may_be_a_bare_url(harness: Harness) -> None:
    harness.run(sns_envelope(execution_event("Failed")))
    harness.run(sns_envelope(execution_event("Failed")))
    assert harness.secrets.calls == 1

    handler._secret_cache.clear()
    client = boto3.client("secretsmanager", region_name=REGION)
    client.put_secret_value(SecretId=SECRET_NAME, SecretString=harness.slack.url)
    harness.run(sns_envelope(execution_event("Failed")))
    assert len(harness.slack.requests) == 3


def test_unusable_secret_raises_without_showing_it(harness: Harness) -> None:
    client = boto3.client("secretsmanager", region_name=REGION)
    client.put_secret_value(SecretId=SECRET_NAME, SecretString='{"url": "hooks-s3cr3tT0kenValue"}')
    with pytest.raises(handler.WebhookSecretError) as raised:
        harness.run(sns_envelope(execution_event("Failed")))
    assert "webhook_url" in str(raised.value)
    assert "s3cr3tT0kenValue" not in str(raised.value)


# --- HTTP behaviour -----------------------------------------------------------------------


def _logs_and_error(
    harness: Harness, caplog: pytest.LogCaptureFixture, expected: type[BaseException]
) -> pytest.ExceptionInfo[BaseException]:
    caplog.set_level(logging.INFO)
    with pytest.raises(expected) as raised:
        harness.run(sns_envelope(execution_event("Failed")))
    assert any(record.levelno == logging.ERROR for record in caplog.records)
    assert_no_webhook(logged(caplog), harness.slack)
    assert_no_webhook(str(raised.value), harness.slack)
    # What Lambda logs for an unhandled error: the whole chain, causes included.
    assert_no_webhook("".join(traceback.format_exception(raised.value)), harness.slack)
    return raised


def test_429_honours_retry_after(harness: Harness) -> None:
    harness.slack.replies = [(429, "rate_limited", {"Retry-After": "1"}), (200, "ok", {})]
    harness.run(sns_envelope(execution_event("Failed")))
    assert len(harness.slack.requests) == 2
    assert harness.sleeps == [1.0]
    assert harness.slack.requests[0] == harness.slack.requests[1]


def test_500_is_retried_with_backoff(harness: Harness) -> None:
    harness.slack.replies = [(500, "internal_error", {}), (200, "ok", {})]
    harness.run(sns_envelope(execution_event("Failed")))
    assert len(harness.slack.requests) == 2
    assert harness.sleeps == [0.5]


def test_500_for_ever_raises_after_bounded_retries(
    harness: Harness, caplog: pytest.LogCaptureFixture
) -> None:
    harness.slack.replies = [(500, "internal_error", {})]
    raised = _logs_and_error(harness, caplog, slack_webhook.SlackUnavailableError)
    attempts = slack_webhook.RetryPolicy().max_attempts
    assert len(harness.slack.requests) == attempts
    assert harness.sleeps == [0.5, 1.0, 2.0, 4.0, 8.0]
    assert "HTTP 500 'internal_error'" in str(raised.value)


@pytest.mark.parametrize(
    ("status", "answer"),
    [(404, "channel_not_found"), (403, "invalid_token"), (400, "invalid_payload")],
)
def test_client_errors_are_not_retried_and_name_slacks_answer(
    harness: Harness, caplog: pytest.LogCaptureFixture, status: int, answer: str
) -> None:
    harness.slack.replies = [(status, answer, {})]
    raised = _logs_and_error(harness, caplog, slack_webhook.SlackRejectedError)
    assert len(harness.slack.requests) == 1
    assert harness.sleeps == []
    assert f"HTTP {status} '{answer}'" in str(raised.value)
    # A gone token or channel may mean a replaced secret: read it again next time.
    assert (SECRET_NAME in handler._secret_cache) is (status == 400)


def test_no_answer_times_out_and_raises(harness: Harness, caplog: pytest.LogCaptureFixture) -> None:
    harness.slack.replies = [HANG]
    harness.env["SLACK_TIMEOUT_SECONDS"] = "0.05"
    raised = _logs_and_error(harness, caplog, slack_webhook.SlackUnavailableError)
    assert isinstance(raised.value, slack_webhook.SlackUnavailableError)
    # Counted by the client: a request that timed out may not have reached the fake's handler.
    assert raised.value.attempts == slack_webhook.RetryPolicy().max_attempts
    assert 1 <= len(harness.slack.requests) <= raised.value.attempts
    assert "timed out" in str(raised.value)


def test_retry_after_beyond_the_remaining_time_raises_without_waiting(harness: Harness) -> None:
    harness.slack.replies = [(429, "rate_limited", {"Retry-After": "30"})]
    with pytest.raises(slack_webhook.SlackUnavailableError, match="remaining"):
        harness.run(sns_envelope(execution_event("Failed")), FakeContext([10_000]))
    assert len(harness.slack.requests) == 1
    assert harness.sleeps == []


def test_no_time_left_makes_no_attempt(harness: Harness) -> None:
    with pytest.raises(slack_webhook.SlackUnavailableError, match="no time left"):
        harness.run(sns_envelope(execution_event("Failed")), FakeContext([300]))
    assert harness.slack.requests == []


def test_non_http_webhook_url_is_refused() -> None:
    with pytest.raises(slack_webhook.SlackPostError, match="not an http"):
        slack_webhook.post("file:///etc/passwd", {}, remaining_seconds=lambda: 10.0)


# --- the AWS documentation samples --------------------------------------------------------


def test_sample_execution_event_through_the_derived_sns_envelope(harness: Harness) -> None:
    event = _shared_sample("DERIVED_sns_to_lambda_wrapping_pipeline_status_event.json")
    # The sample reports Succeeded, which is not posted by default.
    assert harness.run(event) == {"posted": 0, "ignored": 1}

    harness.env["NOTIFY_STATUSES"] = "Failed,Stopped,Succeeded"
    harness.env["PIPELINE_NAME"] = "myPipeline-123"
    assert harness.run(event) == {"posted": 1, "ignored": 0}
    text = harness.posted_text()
    assert "[prod] myPipeline-123: execution Succeeded" in text
    assert "Execution `p4jn9xou8a8s`" in text
    assert "*Failed step:*" not in text


def test_sample_execution_event_set_to_failed(harness: Harness) -> None:
    sample = copy.deepcopy(_shared_sample("sagemaker_pipeline_execution_status_change.json"))
    sample["detail"]["currentPipelineExecutionStatus"] = "Failed"
    harness.env["PIPELINE_NAME"] = "myPipeline-123"
    harness.sagemaker = StepsStub(execution_date="2021-03-15")

    assert harness.run(wrap_like_sample(sample)) == {"posted": 1, "ignored": 0}
    text = harness.posted_text()
    for expected in (
        "*Environment*\\nprod",
        "*Pipeline*\\nmyPipeline-123",
        "*Execution date*\\n2021-03-15",
        "*Status*\\nFailed",
        "*Failed step:* `PreProc`",
        "make rerun ENV=prod DATE=2021-03-15",
        "logStreamNameFilter$3Dpipelines-p4jn9xou8a8s|",
    ):
        assert expected in text, expected


def test_sample_step_events_are_not_posted(harness: Harness) -> None:
    sample = _shared_sample("sagemaker_pipeline_execution_step_status_change.json")
    failed = copy.deepcopy(sample)
    failed["detail"]["currentStepStatus"] = "Failed"
    failed["detail"]["failureReason"] = "ClientError: something broke"
    for event in (sample, failed):
        assert harness.run(wrap_like_sample(event)) == {"posted": 0, "ignored": 1}
    assert harness.slack.requests == []


def test_sample_plain_sns_message_is_forwarded(harness: Harness) -> None:
    event = _shared_sample("sns_to_lambda_event.json")
    assert harness.run(event) == {"posted": 1, "ignored": 0}
    text = harness.posted_text()
    assert "[prod] TestInvoke" in text
    assert "Hello from SNS!" in text


# --- the rendered example -----------------------------------------------------------------


def test_committed_example_matches_the_handlers_output() -> None:
    assert EXAMPLE_FILE.is_file(), "run lambda/slack_notifier/render_example.py to create it"
    assert json.loads(EXAMPLE_FILE.read_text(encoding="utf-8")) == render_example.render(), (
        "docs/slack_message_example.json is stale: run "
        "python lambda/slack_notifier/render_example.py docs/slack_message_example.json"
    )


def test_example_event_is_the_aws_sample_with_status_failed() -> None:
    sample = copy.deepcopy(_shared_sample("sagemaker_pipeline_execution_status_change.json"))
    sample["detail"]["currentPipelineExecutionStatus"] = "Failed"
    assert sample == render_example.FAILED_EXECUTION_EVENT


# --- a successful run with data-quality warnings -------------------------------------------

DATA_BUCKET = "forecast-prod-data"


def _summary(harness: Harness, warnings: list[str] | None) -> Any:
    """A data bucket in moto holding this execution's data-quality summary (None: no summary)."""
    s3 = boto3.client("s3", region_name="us-east-1")
    s3.create_bucket(Bucket=DATA_BUCKET)
    if warnings is not None:
        key = "runs/abc123def456/preproc/data_quality.json"
        s3.put_object(Bucket=DATA_BUCKET, Key=key, Body=json.dumps({"warnings": warnings}))
    harness.env["DATA_BUCKET"] = DATA_BUCKET
    return s3


def _run_with_s3(harness: Harness, s3: Any, event: dict[str, Any]) -> dict[str, int]:
    deps = handler.Dependencies(
        sagemaker=harness.sagemaker, secrets=harness.secrets, sleep=harness.sleeps.append, s3=s3
    )
    return handler.handle(event, FakeContext(), deps, harness.settings())


def test_a_success_with_warnings_is_posted_with_them_though_successes_are_not(
    harness: Harness,
) -> None:
    warning = "12 rows repeat an application_id already read and were counted once"
    s3 = _summary(harness, [warning, "Nova EV: 2000 on 2024-05-01 is far above its median"])
    assert "Succeeded" not in harness.env.get("NOTIFY_STATUSES", "Failed,Stopped")
    assert _run_with_s3(harness, s3, sns_envelope(execution_event("Succeeded"))) == {
        "posted": 1,
        "ignored": 0,
    }
    text = harness.posted_text()
    assert "execution Succeeded" in text
    assert "*Data-quality warnings*" in text
    assert warning in text and "Nova EV: 2000 on 2024-05-01" in text


def test_realized_accuracy_warnings_are_posted_beside_the_data_quality_ones(
    harness: Harness,
) -> None:
    s3 = _summary(harness, ["3 rows repeat an application_id"])
    drift = "realized accuracy: series Nova EV: MASE 2.40 over the last 28 scored points is 3.0x"
    s3.put_object(
        Bucket=DATA_BUCKET,
        Key="runs/abc123def456/postproc/accuracy.json",
        Body=json.dumps({"warnings": [drift], "skipped": []}),
    )
    assert _run_with_s3(harness, s3, sns_envelope(execution_event("Succeeded")))["posted"] == 1
    text = harness.posted_text()
    assert "3 rows repeat an application_id" in text and drift in text


def test_a_success_without_warnings_stays_quiet(harness: Harness) -> None:
    s3 = _summary(harness, [])
    result = _run_with_s3(harness, s3, sns_envelope(execution_event("Succeeded")))
    assert result == {"posted": 0, "ignored": 1}
    s3_without_summary = _summary(harness, None)
    result = _run_with_s3(harness, s3_without_summary, sns_envelope(execution_event("Succeeded")))
    assert result == {"posted": 0, "ignored": 1}
    assert harness.slack.requests == []


def test_an_unreadable_summary_is_itself_posted_as_a_warning(harness: Harness) -> None:
    harness.env["DATA_BUCKET"] = "a-bucket-that-does-not-exist"
    s3 = boto3.client("s3", region_name=REGION)
    assert _run_with_s3(harness, s3, sns_envelope(execution_event("Succeeded")))["posted"] == 1
    assert "could not be read (NoSuchBucket)" in harness.posted_text()


def test_a_failure_never_reads_the_summary(harness: Harness) -> None:
    class NoReads:
        def get_object(self, **kwargs: Any) -> dict[str, Any]:
            raise AssertionError("read")

    harness.env["DATA_BUCKET"] = DATA_BUCKET
    assert _run_with_s3(harness, NoReads(), sns_envelope(execution_event("Failed")))["posted"] == 1
    assert "Data-quality warnings" not in harness.posted_text()
