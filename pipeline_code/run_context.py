"""The arguments every step shares, and the one rule that turns them into an execution date.

A scheduled run passes EventBridge Scheduler's `<aws.scheduler.scheduled-time>` (a UTC timestamp)
as `ExecutionDate`; a manual re-run passes a plain date. The data day ("execution date") is:

- `YYYY-MM-DD`: that date, as given.
- an ISO timestamp: the calendar day before the timestamp's local date in the configured time zone
  (a run scheduled for 03:00 Asia/Tokyo on the 27th forecasts from the 26th, the last full day).
- empty: the same rule applied to the pipeline execution's start time.

Every step gets the same raw values (the parameter and the execution's start time, which is fixed
for the whole execution), so every step resolves the same date.
"""

from __future__ import annotations

import argparse
import datetime as dt
import re
from dataclasses import dataclass
from zoneinfo import ZoneInfo

from pipeline_code import storage
from pipeline_code.identifiers import date_range_problem, validate_execution_id


class ExecutionDateError(ValueError):
    """The ExecutionDate parameter cannot be read as a date or a timestamp."""


def resolve_execution_date(raw: str, start_time: str, timezone: str) -> dt.date:
    """Apply the documented rule; raises ExecutionDateError naming the bad value."""
    value = (raw or "").strip() or (start_time or "").strip()
    if not value:
        raise ExecutionDateError("ExecutionDate is empty and no execution start time was given")
    if len(value) == 10:
        try:
            return dt.date.fromisoformat(value)
        except ValueError as err:
            raise ExecutionDateError(f"ExecutionDate {value!r} is not a YYYY-MM-DD date") from err
    stamp = parse_timestamp(value)
    local_day = stamp.astimezone(ZoneInfo(timezone)).date()
    return local_day - dt.timedelta(days=1)


_TIMESTAMP = re.compile(
    r"(?P<date>\d{4}-\d{2}-\d{2})[T ](?P<time>\d{2}:\d{2}(:\d{2})?)(\.(?P<fraction>\d+))?"
    r"(?P<zone>Z|[+-]\d{2}:?\d{2})?"
)


def parse_timestamp(value: str) -> dt.datetime:
    """An ISO 8601 timestamp with any number of fractional-second digits and `Z`, an offset or
    nothing (UTC), read the same on every Python: Scheduler and SageMaker differ in precision."""
    match = _TIMESTAMP.fullmatch(value)
    if not match:
        raise ExecutionDateError(
            f"ExecutionDate {value!r} is neither YYYY-MM-DD nor an ISO timestamp"
        )
    fraction = (match["fraction"] or "")[:6].ljust(6, "0")
    zone = match["zone"] or "Z"
    offset = "+00:00" if zone == "Z" else f"{zone[:3]}:{zone[-2:]}"
    try:
        return dt.datetime.fromisoformat(f"{match['date']}T{match['time']}.{fraction}{offset}")
    except ValueError as err:
        raise ExecutionDateError(
            f"ExecutionDate {value!r} is not a valid timestamp: {err}"
        ) from err


@dataclass(frozen=True)
class RunContext:
    """Where a step reads and writes, and for which day."""

    execution_date: dt.date
    execution_id: str
    data_root: str  # s3://bucket or a local lake folder

    def __post_init__(self) -> None:
        # Checked where a step's arguments become a context: every step, before any file access.
        validate_execution_id(self.execution_id)
        problem = date_range_problem(self.execution_date)
        if problem:
            raise ExecutionDateError(problem)

    @property
    def run_dir(self) -> str:
        return storage.join(self.data_root, "runs", self.execution_id)

    def path(self, *parts: str) -> str:
        """A file in this run's folder, e.g. ctx.path("extract", "counts.json")."""
        return storage.join(self.run_dir, *parts)

    @property
    def is_local(self) -> bool:
        return not storage.is_s3(self.data_root)


def add_common_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--execution-date", default="", help="YYYY-MM-DD, ISO timestamp or empty")
    parser.add_argument("--start-time", default="", help="the pipeline execution's start time")
    parser.add_argument("--timezone", default="UTC", help="time zone of the schedule")
    parser.add_argument("--execution-id", required=True, help="the pipeline execution's id")
    parser.add_argument("--data-root", required=True, help="s3://bucket or a local lake folder")


def context_from(args: argparse.Namespace) -> RunContext:
    return RunContext(
        execution_date=resolve_execution_date(args.execution_date, args.start_time, args.timezone),
        execution_id=args.execution_id,
        data_root=args.data_root.rstrip("/"),
    )
