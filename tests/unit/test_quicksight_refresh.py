"""The SPICE refresh function (lambda/quicksight_refresh): success event in, one ingestion
started and followed, alerts on the topic.

AWS: SNS runs on moto (an SQS queue subscribed to the topic receives the alerts). moto
implements QuickSight's CreateIngestion but neither DescribeIngestion nor ListIngestions and
keeps no ingestions, so `QuickSightStub` sends CreateIngestion to moto (which checks the request)
and keeps the ingestions itself, with statuses a test scripts.
"""

from __future__ import annotations

import importlib.util
import json
import os
import sys
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from types import ModuleType
from typing import Any

import boto3
import pytest
from botocore.exceptions import ClientError
from moto import mock_aws

from tests.unit.aws_paginators import paginator

HANDLER_PATH = Path(__file__).resolve().parents[2] / "lambda" / "quicksight_refresh" / "handler.py"
REGION = "ap-northeast-1"
ACCOUNT = "123456789012"
DATASET_ID = "forecast-prod-dashboard"
PIPELINE_ARN = f"arn:aws:sagemaker:{REGION}:{ACCOUNT}:pipeline/forecast-prod-daily"
EXECUTION_ARN = f"{PIPELINE_ARN}/execution/k3v9x0abc123"
NOW = datetime(2026, 3, 2, 4, 30, tzinfo=UTC)


def _load_handler() -> ModuleType:
    # `lambda` is a keyword, so the function's folder cannot be imported as a package.
    spec = importlib.util.spec_from_file_location("quicksight_refresh_handler", HANDLER_PATH)
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


def _client_error(code: str, operation: str) -> ClientError:
    return ClientError({"Error": {"Code": code, "Message": code}}, operation)


@dataclass
class QuickSightStub:
    """QuickSight ingestions: CreateIngestion on moto, the rest kept here."""

    moto: Any
    # Statuses each new ingestion reports on successive DescribeIngestion calls (last repeats).
    script: list[str] = field(default_factory=lambda: ["INITIALIZED", "RUNNING", "COMPLETED"])
    ingestions: dict[str, dict[str, Any]] = field(default_factory=dict)
    statuses: dict[str, list[str]] = field(default_factory=dict)
    describes: dict[str, int] = field(default_factory=dict)
    created: list[str] = field(default_factory=list)

    def add_past(self, ingestion_id: str, created: datetime, status: str = "COMPLETED") -> None:
        self.ingestions[ingestion_id] = {"IngestionId": ingestion_id, "CreatedTime": created}
        self.statuses[ingestion_id] = [status]
        self.describes[ingestion_id] = 0

    def create_ingestion(self, **kwargs: Any) -> dict[str, Any]:
        ingestion_id = kwargs["IngestionId"]
        if ingestion_id in self.ingestions:
            raise _client_error("ResourceExistsException", "CreateIngestion")
        response = self.moto.create_ingestion(**kwargs)
        self.created.append(ingestion_id)
        self.add_past(ingestion_id, NOW)
        self.statuses[ingestion_id] = list(self.script)
        return response

    def describe_ingestion(self, **kwargs: Any) -> dict[str, Any]:
        assert kwargs["AwsAccountId"] == ACCOUNT and kwargs["DataSetId"] == DATASET_ID
        ingestion_id = kwargs["IngestionId"]
        if ingestion_id not in self.ingestions:
            raise _client_error("ResourceNotFoundException", "DescribeIngestion")
        statuses = self.statuses[ingestion_id]
        index = min(self.describes[ingestion_id], len(statuses) - 1)
        self.describes[ingestion_id] += 1
        status = statuses[index]
        ingestion = {**self.ingestions[ingestion_id], "IngestionStatus": status}
        if status == "FAILED":
            ingestion["ErrorInfo"] = {"Type": "SOURCE_TABLE_NOT_FOUND", "Message": "no view"}
        if status == "COMPLETED":
            ingestion["RowInfo"] = {"RowsIngested": 1234}
        return {"Ingestion": ingestion}

    def get_paginator(self, operation: str) -> Any:
        assert operation == "list_ingestions"
        return paginator("quicksight", "ListIngestions", self.list_ingestions)

    def list_ingestions(self, **kwargs: Any) -> dict[str, Any]:
        assert kwargs["MaxResults"] == 100  # the page size the function asks for
        # Two per page whatever was asked, to exercise pagination.
        ordered = sorted(self.ingestions.values(), key=lambda i: i["CreatedTime"], reverse=True)
        start = int(kwargs.get("NextToken", "0"))
        page = ordered[start : start + 2]
        response: dict[str, Any] = {"Ingestions": page}
        if start + 2 < len(ordered):
            response["NextToken"] = str(start + 2)
        return response


@dataclass
class Context:
    remaining_ms: int = 600_000
    invoked_function_arn: str = f"arn:aws:lambda:{REGION}:{ACCOUNT}:function:refresh"

    def get_remaining_time_in_millis(self) -> int:
        return self.remaining_ms


@dataclass
class World:
    handler: ModuleType
    quicksight: QuickSightStub
    sns: Any
    queue_url: str
    sqs: Any

    def run(self, event: dict[str, Any], context: Context | None = None) -> dict[str, Any]:
        deps = self.handler.Dependencies(
            quicksight=self.quicksight, sns=self.sns, sleep=lambda seconds: None, now=lambda: NOW
        )
        return self.handler.handle(event, context or Context(), deps)

    def alerts(self) -> list[dict[str, str]]:
        messages = self.sqs.receive_message(QueueUrl=self.queue_url, MaxNumberOfMessages=10)
        return [json.loads(m["Body"]) for m in messages.get("Messages", [])]


def success_event(execution_arn: str = EXECUTION_ARN, status: str = "Succeeded") -> dict:
    return {
        "source": "aws.sagemaker",
        "detail-type": "SageMaker Model Building Pipeline Execution Status Change",
        "region": REGION,
        "detail": {
            "pipelineArn": PIPELINE_ARN,
            "pipelineExecutionArn": execution_arn,
            "currentPipelineExecutionStatus": status,
            "previousPipelineExecutionStatus": "Executing",
        },
    }


@pytest.fixture
def world(monkeypatch: pytest.MonkeyPatch) -> Iterator[World]:
    monkeypatch.setenv("AWS_DEFAULT_REGION", REGION)
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    with mock_aws():
        sns = boto3.client("sns", region_name=REGION)
        sqs = boto3.client("sqs", region_name=REGION)
        topic_arn = sns.create_topic(Name="forecast-prod-alerts")["TopicArn"]
        queue_url = sqs.create_queue(QueueName="alerts-inbox")["QueueUrl"]
        queue_arn = sqs.get_queue_attributes(QueueUrl=queue_url, AttributeNames=["QueueArn"])[
            "Attributes"
        ]["QueueArn"]
        sns.subscribe(TopicArn=topic_arn, Protocol="sqs", Endpoint=queue_arn)

        handler = _load_handler()
        stub = QuickSightStub(moto=boto3.client("quicksight", region_name=REGION))
        for key, value in {
            "DATASET_ID": DATASET_ID,
            "ALERTS_TOPIC_ARN": topic_arn,
            "MAX_INGESTIONS_PER_DAY": "8",
            "TIMEZONE": "Asia/Tokyo",
            "FALLBACK_REFRESH_TIME": "06:00",
        }.items():
            monkeypatch.setenv(key, value)
        yield World(handler=handler, quicksight=stub, sns=sns, queue_url=queue_url, sqs=sqs)


def test_a_success_starts_one_full_ingestion_and_follows_it_to_completion(world: World) -> None:
    result = world.run(success_event())

    assert result == {
        "status": "completed",
        "ingestion_id": "pipeline-k3v9x0abc123",
        "rows": 1234,
    }
    assert world.quicksight.created == ["pipeline-k3v9x0abc123"]
    assert world.quicksight.describes["pipeline-k3v9x0abc123"] >= 3  # followed to COMPLETED
    assert world.alerts() == []


def test_a_repeated_event_joins_the_ingestion_instead_of_starting_another(world: World) -> None:
    world.run(success_event())
    again = world.run(success_event())

    assert again["status"] == "completed"
    assert world.quicksight.created == ["pipeline-k3v9x0abc123"]


def test_a_create_race_lost_to_a_twin_event_joins_the_existing_ingestion(world: World) -> None:
    handler = world.handler
    ingestion_id = handler.ingestion_id_for(EXECUTION_ARN)
    settings = handler.Settings.load(dict(os.environ), Context())
    world.quicksight.add_past(ingestion_id, NOW, status="COMPLETED")

    assert handler.start(world.quicksight, settings, ingestion_id) is False


def test_ingestion_ids_are_valid_and_stable_per_execution() -> None:
    handler = _load_handler()
    weird = f"{PIPELINE_ARN}/execution/a.b:c" + "x" * 200
    ingestion_id = handler.ingestion_id_for(weird)
    assert ingestion_id == handler.ingestion_id_for(weird)
    assert len(ingestion_id) <= 128
    assert ingestion_id.replace("-", "").replace("_", "").isalnum()


def test_the_quota_guard_leaves_the_last_slot_to_the_scheduled_refresh(world: World) -> None:
    # 7 ingestions in the last 24 hours (the limit is 8, one is kept for the schedule), plus
    # older ones that no longer count.
    for hour in range(7):
        world.quicksight.add_past(f"recent-{hour}", NOW - timedelta(hours=hour, minutes=5))
    for day in range(2, 5):
        world.quicksight.add_past(f"old-{day}", NOW - timedelta(days=day))

    result = world.run(success_event())

    assert result["status"] == "skipped" and result["recent"] == 7
    assert world.quicksight.created == []
    [notice] = world.alerts()
    assert notice["Subject"] == "Dashboard refresh skipped: SPICE quota"
    assert "06:00 Asia/Tokyo" in notice["Message"] and "7 SPICE ingestions" in notice["Message"]


def test_below_the_guard_the_refresh_goes_ahead(world: World) -> None:
    for hour in range(6):
        world.quicksight.add_past(f"recent-{hour}", NOW - timedelta(hours=hour))
    world.quicksight.add_past("just-outside", NOW - timedelta(hours=24, seconds=1))

    assert world.run(success_event())["status"] == "completed"
    assert world.quicksight.created == ["pipeline-k3v9x0abc123"]


def test_a_failed_ingestion_is_alerted_and_raised(world: World) -> None:
    world.quicksight.script = ["INITIALIZED", "RUNNING", "FAILED"]

    with pytest.raises(world.handler.RefreshError, match="FAILED: SOURCE_TABLE_NOT_FOUND"):
        world.run(success_event())

    [alert] = world.alerts()
    assert alert["Subject"] == "Dashboard refresh failed"
    assert EXECUTION_ARN in alert["Message"] and "SOURCE_TABLE_NOT_FOUND" in alert["Message"]


def test_an_ingestion_outlasting_the_invocation_is_alerted_and_raised(world: World) -> None:
    world.quicksight.script = ["RUNNING"]
    # 90 s left: 60 s after the margin, i.e. four polls, then the function gives up.
    with pytest.raises(world.handler.RefreshError, match="still RUNNING"):
        world.run(success_event(), Context(remaining_ms=90_000))

    assert world.quicksight.describes["pipeline-k3v9x0abc123"] == 5
    [alert] = world.alerts()
    assert alert["Subject"] == "Dashboard refresh failed"


def test_an_aws_error_is_alerted_and_raised(world: World, monkeypatch: pytest.MonkeyPatch) -> None:
    def denied(**kwargs: Any) -> dict:
        raise _client_error("AccessDeniedException", "ListIngestions")

    monkeypatch.setattr(world.quicksight, "list_ingestions", denied)
    with pytest.raises(ClientError, match="AccessDenied"):
        world.run(success_event())

    [alert] = world.alerts()
    assert "AccessDeniedException" in alert["Message"]


@pytest.mark.parametrize(
    "event",
    [
        success_event(status="Failed"),
        {**success_event(), "detail-type": "Something else"},
        {"detail": {}},
    ],
)
def test_other_events_are_ignored(world: World, event: dict) -> None:
    assert world.run(event) == {"status": "ignored"}
    assert world.quicksight.created == [] and world.alerts() == []
