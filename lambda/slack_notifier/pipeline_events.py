"""Typed views of what arrives on the alerts topic.

The topic carries three kinds of message: EventBridge events from SageMaker Pipelines (execution
and step status changes), CloudWatch alarm state changes, and anything else someone publishes
(a test message, say). Each SNS record is parsed into one of the data classes below; the handler
decides what to do with it. Parsing never calls AWS and never raises on an unknown shape: an
unknown message becomes `OtherMessage`, so a surprise on the topic cannot block the alerts
behind it.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

EXECUTION_STATUS_CHANGE = "SageMaker Model Building Pipeline Execution Status Change"
STEP_STATUS_CHANGE = "SageMaker Model Building Pipeline Execution Step Status Change"

# Step metadata keys (as the step event spells them) of the job kinds that write CloudWatch logs.
_JOB_METADATA_KEYS = ("processingJob", "trainingJob", "transformJob")


@dataclass(frozen=True)
class PipelineExecutionEvent:
    """`SageMaker Model Building Pipeline Execution Status Change`."""

    execution_arn: str
    pipeline_arn: str
    status: str
    previous_status: str
    start_time: str
    end_time: str
    display_name: str
    region: str


@dataclass(frozen=True)
class PipelineStepEvent:
    """`SageMaker Model Building Pipeline Execution Step Status Change`."""

    execution_arn: str
    step_name: str
    step_type: str
    status: str
    failure_reason: str  # only set by SageMaker when status is Failed
    job_arn: str  # ARN of the processing/training/transform job behind the step, if any


@dataclass(frozen=True)
class AlarmNotification:
    """The JSON document CloudWatch publishes to SNS when an alarm changes state."""

    name: str
    description: str
    new_state: str
    old_state: str
    reason: str
    state_change_time: str
    alarm_arn: str

    @property
    def region(self) -> str:
        # AlarmArn is arn:aws:cloudwatch:<region>:<account>:alarm:<name>; the "Region" field of the
        # message is a display name ("US East (N. Virginia)"), useless for building a console URL.
        parts = self.alarm_arn.split(":")
        return parts[3] if len(parts) > 3 else ""


@dataclass(frozen=True)
class OtherMessage:
    """Anything else published to the topic; forwarded as plain text."""

    subject: str
    text: str
    topic_arn: str


Notification = PipelineExecutionEvent | PipelineStepEvent | AlarmNotification | OtherMessage


def parse_invocation(event: dict[str, Any]) -> list[Notification]:
    """The notifications in one Lambda invocation.

    An SNS subscription delivers `{"Records": [{"Sns": {...}}]}`; an EventBridge rule targeting
    the function directly delivers the bare event. Both are accepted so the wiring can change
    without touching the code.
    """
    records = event.get("Records")
    if isinstance(records, list):
        return [_parse_sns_record(record) for record in records]
    return [_parse_message(event, subject="", topic_arn="")]


def _parse_sns_record(record: dict[str, Any]) -> Notification:
    sns = record.get("Sns") or {}
    raw = sns.get("Message") or ""
    subject = sns.get("Subject") or ""
    topic_arn = sns.get("TopicArn") or ""
    try:
        message = json.loads(raw)
    except (TypeError, ValueError):
        return OtherMessage(subject=subject, text=str(raw), topic_arn=topic_arn)
    if not isinstance(message, dict):
        return OtherMessage(subject=subject, text=str(raw), topic_arn=topic_arn)
    return _parse_message(message, subject=subject, topic_arn=topic_arn, raw=str(raw))


def _parse_message(
    message: dict[str, Any], *, subject: str, topic_arn: str, raw: str | None = None
) -> Notification:
    detail_type = message.get("detail-type")
    detail = _mapping(message.get("detail"))
    if detail_type == EXECUTION_STATUS_CHANGE:
        return _execution_event(message, detail)
    if detail_type == STEP_STATUS_CHANGE:
        return _step_event(detail)
    if "AlarmName" in message and "NewStateValue" in message:
        return _alarm(message)
    text = raw if raw is not None else json.dumps(message, sort_keys=True)
    return OtherMessage(subject=subject, text=text, topic_arn=topic_arn)


def _execution_event(message: dict[str, Any], detail: dict[str, Any]) -> PipelineExecutionEvent:
    execution_arn = _text(detail, "pipelineExecutionArn")
    return PipelineExecutionEvent(
        execution_arn=execution_arn,
        pipeline_arn=_text(detail, "pipelineArn"),
        status=_text(detail, "currentPipelineExecutionStatus"),
        previous_status=_text(detail, "previousPipelineExecutionStatus"),
        start_time=_text(detail, "executionStartTime"),
        end_time=_text(detail, "executionEndTime"),
        display_name=_text(detail, "pipelineExecutionDisplayName"),
        region=str(message.get("region") or arn_region(execution_arn)),
    )


def _step_event(detail: dict[str, Any]) -> PipelineStepEvent:
    metadata = _mapping(detail.get("metadata"))
    job_arn = ""
    for key in _JOB_METADATA_KEYS:
        job = _mapping(metadata.get(key))
        if job.get("arn"):
            job_arn = str(job["arn"])
            break
    return PipelineStepEvent(
        execution_arn=_text(detail, "pipelineExecutionArn"),
        step_name=_text(detail, "stepName"),
        step_type=_text(detail, "stepType"),
        status=_text(detail, "currentStepStatus"),
        failure_reason=_text(detail, "failureReason"),
        job_arn=job_arn,
    )


def _alarm(message: dict[str, Any]) -> AlarmNotification:
    return AlarmNotification(
        name=_text(message, "AlarmName"),
        description=_text(message, "AlarmDescription"),
        new_state=_text(message, "NewStateValue"),
        old_state=_text(message, "OldStateValue"),
        reason=_text(message, "NewStateReason"),
        state_change_time=_text(message, "StateChangeTime"),
        alarm_arn=_text(message, "AlarmArn"),
    )


def _mapping(value: Any) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}


def _text(mapping: dict[str, Any], key: str) -> str:
    value = mapping.get(key)
    return "" if value is None else str(value)


def arn_region(arn: str) -> str:
    parts = arn.split(":")
    return parts[3] if len(parts) > 3 else ""


def execution_id(execution_arn: str) -> str:
    """The id at the end of arn:...:pipeline/<name>/execution/<id>."""
    _, sep, tail = execution_arn.rpartition("/execution/")
    return tail if sep else ""


def pipeline_name_from_arn(arn: str) -> str:
    """The name in arn:...:pipeline/<name>[/execution/<id>]."""
    _, sep, tail = arn.partition(":pipeline/")
    return tail.split("/", 1)[0] if sep else ""
