"""What a person needs to act on a pipeline execution that ended: built from the event plus a
few SageMaker reads (the ExecutionDate parameter, the failed steps, the execution's reason).

Every SageMaker read is best effort: a missing permission or a throttled call degrades the
message ("could not be read") instead of losing it, because the alert matters more than its
details.
"""

from __future__ import annotations

import datetime as dt
import logging
from dataclasses import dataclass
from typing import Any, Protocol
from urllib.parse import quote
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from botocore.exceptions import BotoCoreError, ClientError
from pipeline_events import PipelineExecutionEvent, execution_id, pipeline_name_from_arn

logger = logging.getLogger(__name__)

EXECUTION_DATE_PARAMETER = "ExecutionDate"
DATE_PLACEHOLDER = "YYYY-MM-DD"

# Log group of each job kind a pipeline step can run, keyed by the step metadata key that
# list_pipeline_execution_steps uses, with the ARN resource type that precedes the job name.
_JOB_LOG_GROUPS = {
    "ProcessingJob": ("processing-job/", "/aws/sagemaker/ProcessingJobs"),
    "TrainingJob": ("training-job/", "/aws/sagemaker/TrainingJobs"),
    "TransformJob": ("transform-job/", "/aws/sagemaker/TransformJobs"),
}
_MAX_STEPS = 1000  # a six-step pipeline fits in one page; the bound only stops a runaway listing


class SageMakerReader(Protocol):
    """The read calls used here (a boto3 SageMaker client satisfies it); the steps are listed
    through botocore's paginator of ListPipelineExecutionSteps."""

    def list_pipeline_parameters_for_execution(self, **kwargs: Any) -> dict[str, Any]: ...

    def get_paginator(self, operation_name: str) -> Any: ...

    def describe_pipeline_execution(self, **kwargs: Any) -> dict[str, Any]: ...


@dataclass(frozen=True)
class ExecutionDate:
    """The data day of the execution, and how it was obtained."""

    date: str  # YYYY-MM-DD, or "" when it could not be determined
    note: str  # empty when the parameter was a plain date


@dataclass(frozen=True)
class FailedStep:
    name: str
    reason: str
    job_name: str
    logs_url: str
    log_group: str = ""


@dataclass(frozen=True)
class ExecutionReport:
    environment: str
    pipeline_name: str
    status: str
    execution_arn: str
    execution_id: str
    display_name: str
    region: str
    start_time: str
    end_time: str
    execution_date: ExecutionDate
    failed_steps: tuple[FailedStep, ...]
    failure_reason: str  # execution-level reason, used when no step is marked Failed
    execution_url: str
    execution_logs_url: str
    rerun_command: str


@dataclass(frozen=True)
class ReportSettings:
    environment: str
    pipeline_name: str
    schedule_timezone: str
    rerun_command_template: str
    studio_domain_id: str


def build_report(
    event: PipelineExecutionEvent, sagemaker: SageMakerReader, settings: ReportSettings
) -> ExecutionReport:
    region = event.region
    exec_id = execution_id(event.execution_arn)
    pipeline = _pipeline_name(event, settings.pipeline_name)
    date = read_execution_date(
        sagemaker, event.execution_arn, event.start_time, settings.schedule_timezone
    )
    failed_steps: tuple[FailedStep, ...] = ()
    failure_reason = ""
    if event.status == "Failed":
        failed_steps = tuple(find_failed_steps(sagemaker, event.execution_arn, region))
        if not failed_steps:
            failure_reason = read_execution_failure_reason(sagemaker, event.execution_arn)
    return ExecutionReport(
        environment=settings.environment,
        pipeline_name=pipeline,
        status=event.status,
        execution_arn=event.execution_arn,
        execution_id=exec_id,
        display_name=event.display_name,
        region=region,
        start_time=event.start_time,
        end_time=event.end_time,
        execution_date=date,
        failed_steps=failed_steps,
        failure_reason=failure_reason,
        execution_url=studio_execution_url(settings.studio_domain_id, region, pipeline, exec_id),
        # Training jobs are named pipelines-<execution id>-<step>-<suffix>, so one stream-name
        # prefix lists the logs of every job of this execution; Lambda steps (compute lambda)
        # log per function, which each failed step links to.
        execution_logs_url=(
            logs_url(region, "/aws/sagemaker/TrainingJobs", f"pipelines-{exec_id}")
            if exec_id and region and not _ran_as_functions(failed_steps)
            else ""
        ),
        rerun_command=rerun_command(
            settings.rerun_command_template, settings.environment, date.date, pipeline
        ),
    )


def _pipeline_name(event: PipelineExecutionEvent, configured: str) -> str:
    """The configured name keeps its capitals; ARNs may carry the name lower-cased."""
    from_arn = pipeline_name_from_arn(event.pipeline_arn or event.execution_arn)
    if configured and (not from_arn or from_arn.lower() == configured.lower()):
        return configured
    if configured:
        logger.warning(
            "event is for another pipeline than the configured one",
            extra={"event_pipeline": from_arn, "configured_pipeline": configured},
        )
    return from_arn or configured


# --- execution date -------------------------------------------------------------------------


def read_execution_date(
    sagemaker: SageMakerReader, execution_arn: str, start_time: str, timezone: str
) -> ExecutionDate:
    try:
        response = sagemaker.list_pipeline_parameters_for_execution(
            PipelineExecutionArn=execution_arn
        )
    except (ClientError, BotoCoreError) as err:
        logger.warning(
            "could not read the execution's parameters",
            extra={"error": _error_code(err), "execution_arn": execution_arn},
        )
        return ExecutionDate("", f"could not be read ({_error_code(err)})")
    raw = ""
    for parameter in response.get("PipelineParameters", []):
        if parameter.get("Name") == EXECUTION_DATE_PARAMETER:
            raw = str(parameter.get("Value") or "").strip()
    return execution_date_from(raw, start_time, timezone)


def execution_date_from(raw: str, start_time: str, timezone: str) -> ExecutionDate:
    """The pipeline's own rule (pipeline_code.run_context.resolve_execution_date), restated here
    because the function ships without pipeline_code: a plain date is the day; a timestamp means
    the day before its local date in the schedule's time zone; empty means the same rule applied
    to the execution's start time."""
    if len(raw) == 10:
        try:
            return ExecutionDate(dt.date.fromisoformat(raw).isoformat(), "")
        except ValueError:
            return ExecutionDate("", f"{EXECUTION_DATE_PARAMETER} {raw!r} is not a date")
    source = f"the scheduled time {raw}" if raw else f"the start time {start_time}"
    stamp_text = raw or start_time
    if not stamp_text:
        return ExecutionDate("", f"{EXECUTION_DATE_PARAMETER} was empty and no start time is known")
    try:
        stamp = dt.datetime.fromisoformat(stamp_text.replace("Z", "+00:00"))
    except ValueError:
        return ExecutionDate("", f"{EXECUTION_DATE_PARAMETER} {stamp_text!r} is not a timestamp")
    if stamp.tzinfo is None:
        stamp = stamp.replace(tzinfo=dt.UTC)
    zone_name = timezone or "UTC"
    try:
        zone: dt.tzinfo = ZoneInfo(zone_name)
    except (ZoneInfoNotFoundError, ValueError):
        zone, zone_name = dt.UTC, f"UTC, time zone {timezone!r} unknown here"
    day = stamp.astimezone(zone).date() - dt.timedelta(days=1)
    prefix = "" if raw else f"{EXECUTION_DATE_PARAMETER} was empty: "
    return ExecutionDate(day.isoformat(), f"{prefix}derived from {source} ({zone_name})")


# --- failed steps ---------------------------------------------------------------------------


def find_failed_steps(
    sagemaker: SageMakerReader, execution_arn: str, region: str
) -> list[FailedStep]:
    pages = sagemaker.get_paginator("list_pipeline_execution_steps").paginate(
        PipelineExecutionArn=execution_arn,
        SortOrder="Ascending",
        PaginationConfig={"MaxItems": _MAX_STEPS},
    )
    try:
        summaries = [step for page in pages for step in page.get("PipelineExecutionSteps", [])]
    except (ClientError, BotoCoreError) as err:
        logger.warning(
            "could not list the execution's steps",
            extra={"error": _error_code(err), "execution_arn": execution_arn},
        )
        return [FailedStep("(could not be read)", _error_code(err), "", "")]
    return [_failed_step(step, region) for step in summaries if step.get("StepStatus") == "Failed"]


def _failed_step(step: dict[str, Any], region: str) -> FailedStep:
    metadata = step.get("Metadata") or {}
    # A FailStep (the evaluation gate) carries its message in Metadata.Fail.ErrorMessage.
    reason = step.get("FailureReason") or (metadata.get("Fail") or {}).get("ErrorMessage") or ""
    job_name, log_group = _job_of(metadata)
    return FailedStep(
        name=str(step.get("StepDisplayName") or step.get("StepName") or "?"),
        reason=str(reason),
        job_name=job_name,
        logs_url=(
            logs_url(region, log_group, _stream_prefix(log_group, job_name, step))
            if job_name and region
            else ""
        ),
        log_group=log_group,
    )


def _stream_prefix(log_group: str, job_name: str, step: dict[str, Any]) -> str:
    """A job's streams start with its name; a function's with the UTC day it ran
    (`YYYY/MM/DD/[version]...`), which narrows the list to the failing run's day."""
    if not log_group.startswith("/aws/lambda/"):
        return f"{job_name}/"
    started = step.get("StartTime")
    if isinstance(started, dt.datetime):
        return started.astimezone(dt.UTC).strftime("%Y/%m/%d/")
    return ""


def _job_of(metadata: dict[str, Any]) -> tuple[str, str]:
    """(job or function name, log group) behind a step, or ("", "") for steps without one. A
    Lambda step's function logs to Lambda's default group, `/aws/lambda/<function name>`
    (https://docs.aws.amazon.com/lambda/latest/dg/monitoring-cloudwatchlogs.html)."""
    for key, (arn_marker, log_group) in _JOB_LOG_GROUPS.items():
        arn = str((metadata.get(key) or {}).get("Arn") or "")
        if arn_marker in arn:
            return arn.split(arn_marker, 1)[1], log_group
    function_arn = str((metadata.get("Lambda") or {}).get("Arn") or "")
    if ":function:" in function_arn:
        name = function_arn.split(":function:", 1)[1].split(":", 1)[0]
        return name, f"/aws/lambda/{name}"
    return "", ""


def _ran_as_functions(failed_steps: tuple[FailedStep, ...]) -> bool:
    return any(step.log_group.startswith("/aws/lambda/") for step in failed_steps)


def read_execution_failure_reason(sagemaker: SageMakerReader, execution_arn: str) -> str:
    try:
        response = sagemaker.describe_pipeline_execution(PipelineExecutionArn=execution_arn)
    except (ClientError, BotoCoreError) as err:
        logger.warning(
            "could not describe the execution",
            extra={"error": _error_code(err), "execution_arn": execution_arn},
        )
        return ""
    return str(response.get("FailureReason") or "")


def _error_code(err: Exception) -> str:
    if isinstance(err, ClientError):
        return str(err.response.get("Error", {}).get("Code") or type(err).__name__)
    return type(err).__name__


# --- links and commands ---------------------------------------------------------------------


def _console_fragment(value: str) -> str:
    """The CloudWatch console's hash-route encoding: percent-encoded twice, then % written as $."""
    return quote(quote(value, safe=""), safe="").replace("%", "$")


def logs_url(region: str, log_group: str, stream_prefix: str) -> str:
    """CloudWatch Logs console: the log group's streams whose names start with stream_prefix."""
    return (
        f"https://{region}.console.aws.amazon.com/cloudwatch/home?region={region}"
        f"#logsV2:log-groups/log-group/{_console_fragment(log_group)}"
        f"$3FlogStreamNameFilter$3D{_console_fragment(stream_prefix)}"
    )


def studio_execution_url(domain_id: str, region: str, pipeline: str, exec_id: str) -> str:
    """The execution's page in SageMaker Studio; Studio URLs need the domain, so no domain, no
    link (the message then shows the CLI command that lists the steps instead)."""
    if not (domain_id and region and pipeline and exec_id):
        return ""
    return (
        f"https://studio-{domain_id}.studio.{region}.sagemaker.aws"
        f"/pipelines/{quote(pipeline, safe='')}/executions/{quote(exec_id, safe='')}"
    )


def rerun_command(template: str, environment: str, date: str, pipeline: str) -> str:
    values = {"env": environment, "date": date or DATE_PLACEHOLDER, "pipeline": pipeline}
    try:
        return template.format_map(values)
    except (KeyError, IndexError, ValueError):
        # A typo in the configured template must not cost the alert; show it unformatted.
        logger.warning(
            "RERUN_COMMAND_TEMPLATE has unknown placeholders", extra={"template": template}
        )
        return template
