"""The pipeline's executions as the operator thinks of them: by data day.

SageMaker lists executions by start time; the data day each one computed is its `ExecutionDate`
parameter read with the pipeline's own rule (`run_context.resolve_execution_date`: a plain date
as given, a scheduled timestamp as the day before its local date). Every list call goes through
botocore's paginators, so a pipeline with years of daily runs is read whole.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from pipeline_code.run_context import ExecutionDateError, resolve_execution_date

EXECUTION_DATE_PARAMETER = "ExecutionDate"
SUCCEEDED = "Succeeded"
IN_FLIGHT = frozenset({"Executing", "Stopping"})


@dataclass(frozen=True)
class Execution:
    arn: str
    status: str
    start: dt.datetime
    data_day: dt.date | None  # None: the parameter could not be read as a date

    @property
    def execution_id(self) -> str:
        return self.arn.rsplit("/", 1)[-1]


def _utc(value: Any) -> dt.datetime:
    stamp = value if isinstance(value, dt.datetime) else dt.datetime.fromisoformat(str(value))
    return stamp if stamp.tzinfo else stamp.replace(tzinfo=dt.UTC)


def execution_date_parameter(sagemaker: Any, execution_arn: str) -> str:
    pages = sagemaker.get_paginator("list_pipeline_parameters_for_execution").paginate(
        PipelineExecutionArn=execution_arn
    )
    for page in pages:
        for parameter in page.get("PipelineParameters", []):
            if parameter["Name"] == EXECUTION_DATE_PARAMETER:
                return str(parameter["Value"])
    return ""


def data_day_of(raw: str, start: dt.datetime, timezone: str) -> dt.date | None:
    try:
        return resolve_execution_date(raw, start.isoformat(), timezone)
    except ExecutionDateError:
        return None


def list_executions(
    sagemaker: Any, pipeline_name: str, timezone: str, created_after: dt.date | None = None
) -> list[Execution]:
    """Every execution of the pipeline (started after `created_after`, when given), newest
    first, each with its data day."""
    arguments: dict[str, Any] = {
        "PipelineName": pipeline_name,
        "SortBy": "CreationTime",
        "SortOrder": "Descending",
    }
    if created_after is not None:
        arguments["CreatedAfter"] = dt.datetime.combine(created_after, dt.time(), dt.UTC)
    pages = sagemaker.get_paginator("list_pipeline_executions").paginate(**arguments)
    found = []
    for page in pages:
        for summary in page.get("PipelineExecutionSummaries", []):
            start = _utc(summary["StartTime"])
            raw = execution_date_parameter(sagemaker, summary["PipelineExecutionArn"])
            found.append(
                Execution(
                    arn=summary["PipelineExecutionArn"],
                    status=str(summary.get("PipelineExecutionStatus", "")),
                    start=start,
                    data_day=data_day_of(raw, start, timezone),
                )
            )
    return sorted(found, key=lambda execution: execution.start, reverse=True)


def latest_by_day(executions: Iterable[Execution]) -> dict[dt.date, Execution]:
    """Each data day's most recently started execution."""
    latest: dict[dt.date, Execution] = {}
    for execution in executions:
        day = execution.data_day
        if day is not None and (day not in latest or execution.start > latest[day].start):
            latest[day] = execution
    return latest


def covered_days(executions: Iterable[Execution]) -> dict[dt.date, Execution]:
    """Days a backfill should leave alone: the latest execution succeeded, or is still
    running (a second one would only wait for its publish lock)."""
    return {
        day: execution
        for day, execution in latest_by_day(executions).items()
        if execution.status == SUCCEEDED or execution.status in IN_FLIGHT
    }
