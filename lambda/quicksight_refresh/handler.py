"""Refreshes the dashboard's SPICE data set when the forecast pipeline succeeds.

EventBridge invokes this function with the pipeline's `Succeeded` status change. The function
starts one full SPICE ingestion for the execution and follows it to completion:

- Idempotent: the ingestion id is derived from the pipeline execution id, so a repeated event
  joins the ingestion the first one started instead of starting another.
- Quota guard: QuickSight allows a fixed number of ingestions per data set in any 24 hours
  (8 on Standard, 32 on Enterprise, counted back from now). The function starts one only while
  fewer than MAX_INGESTIONS_PER_DAY - 1 ingestions of any kind were created in the last 24
  hours, so one is always left for the scheduled fallback refresh. A skipped refresh is announced
  on the alerts topic; the fallback refresh then brings the dashboard up to date.
- Failure: an ingestion that fails, is cancelled or is still running when the function's time
  runs out, and any error calling AWS, is published to the alerts topic and then raised, so the
  invocation counts as failed and its event lands on the dead-letter queue.

Environment: DATASET_ID, ALERTS_TOPIC_ARN, MAX_INGESTIONS_PER_DAY, TIMEZONE (for the times in
messages) and FALLBACK_REFRESH_TIME (HH:MM, named in the skip notice). The account id comes
from the function's own ARN.

Handler: handler.lambda_handler. Logs go through the standard `logging` module; Lambda writes
them as JSON (the function's logging format). AWS clients, the clock and sleep come in as
`Dependencies`, which tests replace.
"""

from __future__ import annotations

import json
import logging
import os
import re
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from functools import cache
from typing import Any, Protocol
from zoneinfo import ZoneInfo

import boto3
from botocore.exceptions import ClientError

logger = logging.getLogger(__name__)

EXECUTION_STATUS_CHANGE = "SageMaker Model Building Pipeline Execution Status Change"
SUCCEEDED = "Succeeded"
COMPLETED = "COMPLETED"
FAILED_STATES = frozenset({"FAILED", "CANCELLED"})
QUOTA_WINDOW = timedelta(hours=24)
# Kept free for the scheduled fallback refresh (see the module docstring).
RESERVED_FOR_SCHEDULE = 1
POLL_SECONDS = 15
# Time kept back at the end of the invocation to publish the alert before Lambda stops us.
DEADLINE_MARGIN_SECONDS = 30
INGESTION_ID_PREFIX = "pipeline-"
MAX_INGESTION_ID_LENGTH = 128  # QuickSight's limit; the id matches ^[a-zA-Z0-9-_]+$


class LambdaContext(Protocol):
    invoked_function_arn: str

    def get_remaining_time_in_millis(self) -> int: ...


def _utc_now() -> datetime:
    return datetime.now(UTC)


@dataclass
class Dependencies:
    """The outside world, replaceable in tests."""

    quicksight: Any
    sns: Any
    sleep: Callable[[float], None] = field(default=time.sleep)
    now: Callable[[], datetime] = field(default=_utc_now)


@cache
def _default_dependencies() -> Dependencies:
    # Created once per container: client creation costs more than the calls themselves.
    return Dependencies(quicksight=boto3.client("quicksight"), sns=boto3.client("sns"))


class RefreshError(RuntimeError):
    """The ingestion did not complete; the message is what the alert says."""


@dataclass(frozen=True)
class Settings:
    account_id: str
    dataset_id: str
    alerts_topic_arn: str
    max_ingestions_per_day: int
    timezone: str
    fallback_refresh_time: str

    @classmethod
    def load(cls, env: Mapping[str, str], context: LambdaContext) -> Settings:
        return cls(
            # arn:aws:lambda:<region>:<account>:function:<name>
            account_id=context.invoked_function_arn.split(":")[4],
            dataset_id=env["DATASET_ID"],
            alerts_topic_arn=env["ALERTS_TOPIC_ARN"],
            max_ingestions_per_day=int(env["MAX_INGESTIONS_PER_DAY"]),
            timezone=env["TIMEZONE"],
            fallback_refresh_time=env["FALLBACK_REFRESH_TIME"],
        )

    @property
    def event_quota(self) -> int:
        """How many ingestions may exist in the window before this function stops starting one."""
        return max(self.max_ingestions_per_day - RESERVED_FOR_SCHEDULE, 0)


def succeeded_execution_arn(event: Mapping[str, Any]) -> str | None:
    """The execution ARN of a pipeline success event, or None for any other event."""
    detail = event.get("detail") or {}
    if event.get("detail-type") != EXECUTION_STATUS_CHANGE:
        return None
    if detail.get("currentPipelineExecutionStatus") != SUCCEEDED:
        return None
    arn = detail.get("pipelineExecutionArn")
    return arn if isinstance(arn, str) and arn else None


def ingestion_id_for(execution_arn: str) -> str:
    """A valid ingestion id that is the same for every event about one execution."""
    # arn:aws:sagemaker:<region>:<account>:pipeline/<name>/execution/<execution id>
    execution_id = execution_arn.rsplit("/", 1)[-1]
    safe = re.sub(r"[^A-Za-z0-9_-]", "-", execution_id)
    return (INGESTION_ID_PREFIX + safe)[:MAX_INGESTION_ID_LENGTH]


def _error_code(err: ClientError) -> str:
    return str(err.response.get("Error", {}).get("Code", ""))


def describe(qs: Any, settings: Settings, ingestion_id: str) -> dict[str, Any] | None:
    try:
        response = qs.describe_ingestion(
            AwsAccountId=settings.account_id,
            DataSetId=settings.dataset_id,
            IngestionId=ingestion_id,
        )
    except ClientError as err:
        if _error_code(err) == "ResourceNotFoundException":
            return None
        raise
    return dict(response["Ingestion"])


def ingestions_in_window(qs: Any, settings: Settings, at: datetime) -> int:
    """Ingestions of the data set created in the 24 hours before `at`, whatever started them."""
    since = at - QUOTA_WINDOW
    pages = qs.get_paginator("list_ingestions").paginate(
        AwsAccountId=settings.account_id,
        DataSetId=settings.dataset_id,
        PaginationConfig={"PageSize": 100},
    )
    return sum(1 for page in pages for ing in page.get("Ingestions", []) if _created(ing) >= since)


def _created(ingestion: Mapping[str, Any]) -> datetime:
    created = ingestion["CreatedTime"]
    if isinstance(created, datetime):
        return created if created.tzinfo else created.replace(tzinfo=UTC)
    return datetime.fromtimestamp(float(created), tz=UTC)


def start(qs: Any, settings: Settings, ingestion_id: str) -> bool:
    """Create the ingestion; False when an identical event created it first."""
    try:
        qs.create_ingestion(
            AwsAccountId=settings.account_id,
            DataSetId=settings.dataset_id,
            IngestionId=ingestion_id,
            IngestionType="FULL_REFRESH",
        )
    except ClientError as err:
        if _error_code(err) == "ResourceExistsException":
            return False
        raise
    return True


def follow(
    qs: Any,
    settings: Settings,
    ingestion_id: str,
    budget_seconds: float,
    sleep: Callable[[float], None],
) -> dict[str, Any]:
    """Poll until the ingestion completes; raise RefreshError on failure or when time runs out.

    SPICE ingestions of this data set take a minute or two, well within one invocation.
    """
    polls_left = max(int(budget_seconds // POLL_SECONDS), 0)
    while True:
        ingestion = describe(qs, settings, ingestion_id)
        if ingestion is None:
            raise RefreshError(f"ingestion {ingestion_id} disappeared while being followed")
        status = ingestion.get("IngestionStatus", "")
        if status == COMPLETED:
            return ingestion
        if status in FAILED_STATES:
            error = ingestion.get("ErrorInfo") or {}
            raise RefreshError(
                f"ingestion {ingestion_id} ended {status}:"
                f" {error.get('Type', 'no error type')} {error.get('Message', '')}".rstrip()
            )
        if polls_left == 0:
            raise RefreshError(
                f"ingestion {ingestion_id} still {status or 'unknown'} when this invocation ran"
                " out of time; check it in QuickSight"
            )
        polls_left -= 1
        sleep(POLL_SECONDS)


def publish(sns: Any, settings: Settings, subject: str, message: str) -> None:
    sns.publish(TopicArn=settings.alerts_topic_arn, Subject=subject[:100], Message=message)


def _local(at: datetime, settings: Settings) -> str:
    return at.astimezone(ZoneInfo(settings.timezone)).strftime("%Y-%m-%d %H:%M %Z")


def refresh(
    deps: Dependencies, settings: Settings, execution_arn: str, budget_seconds: float
) -> dict[str, Any]:
    """Start (or join) the execution's ingestion and follow it; returns a summary."""
    qs = deps.quicksight
    ingestion_id = ingestion_id_for(execution_arn)
    if describe(qs, settings, ingestion_id) is not None:
        logger.info("ingestion %s exists already: following it", ingestion_id)
    else:
        at = deps.now()
        recent = ingestions_in_window(qs, settings, at)
        if recent >= settings.event_quota:
            publish(
                deps.sns,
                settings,
                "Dashboard refresh skipped: SPICE quota",
                _skip_notice(settings, execution_arn, recent, at),
            )
            logger.warning("skipped: %d ingestions in the last 24 hours", recent)
            return {"status": "skipped", "ingestion_id": ingestion_id, "recent": recent}
        started = start(qs, settings, ingestion_id)
        logger.info("ingestion %s %s", ingestion_id, "started" if started else "already started")
    ingestion = follow(qs, settings, ingestion_id, budget_seconds, deps.sleep)
    rows = (ingestion.get("RowInfo") or {}).get("RowsIngested")
    logger.info("ingestion %s completed: %s rows", ingestion_id, rows)
    return {"status": "completed", "ingestion_id": ingestion_id, "rows": rows}


def _skip_notice(settings: Settings, execution_arn: str, recent: int, at: datetime) -> str:
    return (
        f"Pipeline execution {execution_arn} succeeded at about {_local(at, settings)}, but data"
        f" set {settings.dataset_id} already has {recent} SPICE ingestions in the last 24 hours"
        f" (limit for event refreshes: {settings.event_quota} of"
        f" {settings.max_ingestions_per_day}). The dashboard updates at the scheduled refresh,"
        f" {settings.fallback_refresh_time} {settings.timezone}."
    )


def _budget_seconds(context: LambdaContext) -> float:
    return context.get_remaining_time_in_millis() / 1000 - DEADLINE_MARGIN_SECONDS


def lambda_handler(event: Mapping[str, Any], context: LambdaContext) -> dict[str, Any]:
    return handle(event, context, _default_dependencies())


def handle(event: Mapping[str, Any], context: LambdaContext, deps: Dependencies) -> dict[str, Any]:
    """Refresh for a success event; alert on the topic and raise when the refresh fails."""
    execution_arn = succeeded_execution_arn(event)
    if execution_arn is None:
        # The rule only matches successes; anything else is logged, not acted on.
        logger.warning("ignored event: %s", json.dumps(event, default=str)[:1000])
        return {"status": "ignored"}
    settings = Settings.load(os.environ, context)
    try:
        return refresh(deps, settings, execution_arn, _budget_seconds(context))
    except Exception as err:
        publish(
            deps.sns,
            settings,
            "Dashboard refresh failed",
            f"The SPICE refresh of data set {settings.dataset_id} after pipeline execution"
            f" {execution_arn} failed: {err}",
        )
        raise
