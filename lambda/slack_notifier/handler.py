"""Forward pipeline failures and alarms from the alerts SNS topic to Slack.

Handler: handler.lambda_handler (code directory lambda/slack_notifier, Python 3.14 runtime,
standard library and the runtime's boto3 only). Logs go through the standard `logging` module
(fields passed with `extra=`); Lambda writes them as JSON (the function's logging format). AWS
clients and sleep come in as `Dependencies`, which tests replace.

One failure, one message. SageMaker emits a step-level Failed event and, once the running
steps have finished, one execution-level Failed event for the same execution. Only the
execution-level event is posted, enriched with the failed step(s) read from
ListPipelineExecutionSteps; step-level events are logged and dropped. Why this rule:
- the execution event is the one terminal event per execution (Failed, Stopped or Succeeded), so
  it always comes, exactly once per outcome, and also covers failures no step reports (a bad
  parameter, a stop);
- the step event can arrive before or after it, and a parallel branch can fail a second step, so
  deduplicating by execution ARN would need state (a table) and a wait, for no gain.

Environment:
- SLACK_SECRET_ARN         secret holding the webhook URL, bare or as {"webhook_url": "..."}
- ENVIRONMENT_NAME         e.g. dev, prod
- PIPELINE_NAME            the SageMaker pipeline's name (keeps its capitals; ARNs may not)
- RERUN_COMMAND_TEMPLATE   placeholders {env} {date} {pipeline}; default DEFAULT_RERUN_TEMPLATE
- NOTIFY_STATUSES          execution statuses to post, comma-separated; default "Failed,Stopped"
- SCHEDULE_TIMEZONE        the schedule's time zone, to derive the date as the pipeline does
- DATA_BUCKET              optional; with it a Succeeded execution's data-quality warnings are
                           read (data_quality.py) and a success with warnings is posted even
                           when Succeeded is not in NOTIFY_STATUSES
- STUDIO_DOMAIN_ID         optional; with it the message links to the execution in Studio
- SLACK_TIMEOUT_SECONDS    per-attempt HTTP timeout; default 5
- SECRET_CACHE_SECONDS     how long a fetched webhook URL is reused; default 300
- AWS_REGION               set by Lambda
"""

from __future__ import annotations

import json
import logging
import os
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import cache
from typing import Any, Protocol

import boto3
import data_quality
import slack_message
import slack_webhook
from execution_report import ReportSettings, SageMakerReader, build_report, rerun_command
from pipeline_events import (
    AlarmNotification,
    Notification,
    PipelineExecutionEvent,
    PipelineStepEvent,
    execution_id,
    parse_invocation,
)

DEFAULT_RERUN_TEMPLATE = "make rerun ENV={env} DATE={date}"
DEFAULT_NOTIFY_STATUSES = ("Failed", "Stopped")

logger = logging.getLogger(__name__)


# --- configuration ------------------------------------------------------------------------


@dataclass(frozen=True)
class Settings:
    secret_id: str
    environment: str
    pipeline_name: str
    region: str
    rerun_template: str
    notify_statuses: frozenset[str]
    schedule_timezone: str
    studio_domain_id: str
    slack_timeout_seconds: float
    secret_cache_seconds: float
    data_bucket: str = ""

    @classmethod
    def from_env(cls, env: dict[str, str] | None = None) -> Settings:
        env = dict(os.environ if env is None else env)
        secret_id = env.get("SLACK_SECRET_ARN", "").strip()
        if not secret_id:
            raise RuntimeError("SLACK_SECRET_ARN is not set: no way to find the Slack webhook")
        statuses = env.get("NOTIFY_STATUSES", ",".join(DEFAULT_NOTIFY_STATUSES))
        return cls(
            secret_id=secret_id,
            environment=env.get("ENVIRONMENT_NAME", "") or "unknown-env",
            pipeline_name=env.get("PIPELINE_NAME", ""),
            region=env.get("AWS_REGION", ""),
            rerun_template=env.get("RERUN_COMMAND_TEMPLATE", "") or DEFAULT_RERUN_TEMPLATE,
            notify_statuses=frozenset(s.strip() for s in statuses.split(",") if s.strip()),
            schedule_timezone=env.get("SCHEDULE_TIMEZONE", "") or "UTC",
            studio_domain_id=env.get("STUDIO_DOMAIN_ID", ""),
            slack_timeout_seconds=float(env.get("SLACK_TIMEOUT_SECONDS", "") or 5),
            secret_cache_seconds=float(env.get("SECRET_CACHE_SECONDS", "") or 300),
            data_bucket=env.get("DATA_BUCKET", "").strip(),
        )

    def report_settings(self) -> ReportSettings:
        return ReportSettings(
            environment=self.environment,
            pipeline_name=self.pipeline_name,
            schedule_timezone=self.schedule_timezone,
            rerun_command_template=self.rerun_template,
            studio_domain_id=self.studio_domain_id,
        )


# --- the webhook secret -------------------------------------------------------------------


class SecretsReader(Protocol):
    def get_secret_value(self, **kwargs: Any) -> dict[str, Any]: ...


class WebhookSecretError(RuntimeError):
    """The secret exists but does not hold a usable webhook URL (its value is never shown)."""


@dataclass
class _CachedSecret:
    value: str
    fetched_at: float


_secret_cache: dict[str, _CachedSecret] = {}


def webhook_url(secrets: SecretsReader, secret_id: str, max_age_seconds: float) -> str:
    """The webhook URL, fetched once per container and then reused for max_age_seconds, so a
    burst of alerts costs one Secrets Manager call and a rotated URL is picked up soon."""
    cached = _secret_cache.get(secret_id)
    now = time.monotonic()
    if cached and now - cached.fetched_at < max_age_seconds:
        return cached.value
    response = secrets.get_secret_value(SecretId=secret_id)
    url = _url_from_secret(str(response.get("SecretString") or ""))
    _secret_cache[secret_id] = _CachedSecret(url, now)
    return url


def forget_webhook_url(secret_id: str) -> None:
    """Drop the cached URL: after Slack says the token or channel is gone, the next attempt
    should read the secret again in case it was just replaced."""
    _secret_cache.pop(secret_id, None)


def _url_from_secret(value: str) -> str:
    value = value.strip()
    if value.startswith("{"):
        try:
            document = json.loads(value)
        except ValueError:
            raise WebhookSecretError("the secret looks like JSON but does not parse") from None
        value = str(document.get("webhook_url") or "").strip() if isinstance(document, dict) else ""
        if not value:
            raise WebhookSecretError('the secret\'s JSON has no "webhook_url" key')
    if not value.startswith(("https://", "http://")):
        raise WebhookSecretError("the secret does not hold an http(s) URL")
    return value


# --- wiring ---------------------------------------------------------------------------------


@dataclass
class Dependencies:
    """The outside world, replaceable in tests."""

    sagemaker: SageMakerReader
    secrets: SecretsReader
    sleep: Callable[[float], None] = field(default=time.sleep)
    s3: data_quality.ObjectReader | None = None


@cache
def _default_dependencies() -> Dependencies:
    # Created once per container: client creation costs more than the calls themselves.
    return Dependencies(
        sagemaker=boto3.client("sagemaker"),
        secrets=boto3.client("secretsmanager"),
        s3=boto3.client("s3"),
    )


class LambdaContext(Protocol):
    aws_request_id: str

    def get_remaining_time_in_millis(self) -> int: ...


def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, int]:
    return handle(event, context, _default_dependencies())


def handle(
    event: dict[str, Any],
    context: LambdaContext,
    deps: Dependencies,
    settings: Settings | None = None,
) -> dict[str, int]:
    """Post one message per notification worth posting; raise if a post fails.

    SNS invokes the function with one record per invocation, so raising on a failed post never
    makes Lambda's retry repeat a message that already went out.
    """
    settings = settings or Settings.from_env()
    counts = {"posted": 0, "ignored": 0}
    for notification in parse_invocation(event):
        payload = payload_for(notification, deps, settings)
        if payload is None:
            counts["ignored"] += 1
            continue
        _post(payload, context, deps, settings)
        counts["posted"] += 1
    return counts


def payload_for(
    notification: Notification, deps: Dependencies, settings: Settings
) -> dict[str, Any] | None:
    if isinstance(notification, PipelineExecutionEvent):
        return _execution_payload(notification, deps, settings)
    if isinstance(notification, PipelineStepEvent):
        # See the module docstring: the execution-level event reports this failure.
        logger.info(
            "step event not posted: the execution event reports failures",
            extra={
                "execution_arn": notification.execution_arn,
                "step": notification.step_name,
                "step_status": notification.status,
            },
        )
        return None
    if isinstance(notification, AlarmNotification):
        logger.info(
            "alarm notification",
            extra={"alarm": notification.name, "state": notification.new_state},
        )
        hint = rerun_command(
            settings.rerun_template, settings.environment, "", settings.pipeline_name
        )
        return slack_message.alarm_message(notification, settings.environment, hint)
    logger.info(
        "message of unknown shape, forwarded as text", extra={"topic": notification.topic_arn}
    )
    return slack_message.other_message(notification, settings.environment)


def _execution_payload(
    event: PipelineExecutionEvent, deps: Dependencies, settings: Settings
) -> dict[str, Any] | None:
    log_fields = {"execution_arn": event.execution_arn, "status": event.status}
    warnings = _success_warnings(event, deps, settings)
    if event.status not in settings.notify_statuses and not warnings:
        logger.info("execution status not configured for notification", extra=log_fields)
        return None
    logger.info("execution event", extra={**log_fields, "warnings": len(warnings)})
    report = build_report(event, deps.sagemaker, settings.report_settings())
    return slack_message.execution_message(report, warnings)


def _success_warnings(
    event: PipelineExecutionEvent, deps: Dependencies, settings: Settings
) -> list[str]:
    """A successful run's data-quality warnings (none for other outcomes or without a bucket)."""
    if event.status != "Succeeded" or not settings.data_bucket or deps.s3 is None:
        return []
    return data_quality.read_warnings(
        deps.s3, settings.data_bucket, execution_id(event.execution_arn)
    )


def _post(
    payload: dict[str, Any], context: LambdaContext, deps: Dependencies, settings: Settings
) -> None:
    url = webhook_url(deps.secrets, settings.secret_id, settings.secret_cache_seconds)
    policy = slack_webhook.RetryPolicy(timeout_seconds=settings.slack_timeout_seconds)
    try:
        slack_webhook.post(
            url,
            payload,
            remaining_seconds=lambda: context.get_remaining_time_in_millis() / 1000,
            policy=policy,
            sleep=deps.sleep,
        )
    except slack_webhook.SlackRejectedError as err:
        if err.status in (403, 404, 410):
            forget_webhook_url(settings.secret_id)
        logger.error(
            "Slack rejected the message",
            extra={"http_status": err.status, "slack_error": err.slack_error},
        )
        raise
    except slack_webhook.SlackPostError as err:
        logger.error("Slack post failed", extra={"error": str(err)})
        raise
