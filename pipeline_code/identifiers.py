"""What an execution id and an execution date may be, checked where they enter a step or a run.

The execution id names the run folder `runs/<execution-id>/` and the version folders PostProc
publishes, so it must stay one plain path segment: `../forecasts/execution_date=...` or an absolute
path would let a step write outside its run folder. SageMaker's ids (`p4jn9xou8a8s`) and the local
runner's (`local-20261129T010203-a1b2c3`) both fit the pattern.

The execution date must leave room for the look-back window before it and the forecast horizon
after it inside the dates Python and Parquet handle, so a date such as `0001-01-01` is refused here
with a message instead of an overflow deep in a step.
"""

from __future__ import annotations

import datetime as dt
import re

EXECUTION_ID_PATTERN = r"[A-Za-z0-9][A-Za-z0-9._-]{0,127}"
_EXECUTION_ID = re.compile(EXECUTION_ID_PATTERN)

MIN_EXECUTION_DATE = dt.date(1970, 1, 1)
MAX_EXECUTION_DATE = dt.date(2999, 12, 31)


class ExecutionIdError(ValueError):
    """The execution id is not one safe path segment."""


def validate_execution_id(value: str) -> str:
    """The id unchanged, or ExecutionIdError naming it and the rule it breaks."""
    if not isinstance(value, str) or not _EXECUTION_ID.fullmatch(value) or ".." in value:
        raise ExecutionIdError(
            f"execution id {value!r} is not allowed: it must match {EXECUTION_ID_PATTERN} "
            "and contain no '..' (it names the run folder)"
        )
    return value


def date_in_range(value: dt.date) -> bool:
    return MIN_EXECUTION_DATE <= value <= MAX_EXECUTION_DATE


def date_range_problem(value: dt.date) -> str | None:
    """None for a usable execution date, else why not."""
    if date_in_range(value):
        return None
    return (
        f"execution date {value.isoformat()} is outside the supported range "
        f"{MIN_EXECUTION_DATE.isoformat()}..{MAX_EXECUTION_DATE.isoformat()}"
    )
