"""The calendar's configurable parts, in the standard library only: the CDK app validates them at
synth (stacks/config.py) and the Train step parses the same text from its arguments.

Seasonal breaks are named date spans that recur every year; company days are dated items,
`YYYY-MM-DD:name` for one day or `YYYY-MM-DD+N:name` for N days from that date. Each item is one
job argument, so the limits here keep the Train job within SageMaker's 100 container arguments
of at most 256 characters.
"""

from __future__ import annotations

import datetime as dt
import re
from dataclasses import dataclass

# (first month, first day), (last month, last day); a break may wrap over the new year.
BREAKS: dict[str, tuple[tuple[int, int], tuple[int, int]]] = {
    "year_end": ((12, 29), (1, 3)),
    "golden_week": ((4, 29), (5, 5)),
    "obon": ((8, 13), (8, 16)),
}
DEFAULT_BREAKS = tuple(BREAKS)
DEFAULT_COUNTRY = "JP"
# The weekly day off of most customers and offices: a working-day holiday may look like it.
REST_DAYS = ("monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday")
DEFAULT_REST_DAY = "sunday"
MAX_COMPANY_DAYS = 40  # items
MAX_COMPANY_DAY_SPAN = 366  # days one item may cover
COMPANY_DAY_NAME = r"[a-z][a-z0-9_]{0,31}"
COUNTRY_CODE = r"[A-Z]{2}"
_COMPANY_DAY = re.compile(rf"(\d{{4}}-\d{{2}}-\d{{2}})(?:\+(\d{{1,3}}))?:({COMPANY_DAY_NAME})")


@dataclass(frozen=True)
class CompanyDays:
    """`days` consecutive days from `start` that carry the company event `name`."""

    start: dt.date
    days: int
    name: str

    def __post_init__(self) -> None:
        if not 1 <= self.days <= MAX_COMPANY_DAY_SPAN:
            raise ValueError(f"the span must be 1 to {MAX_COMPANY_DAY_SPAN} days, got {self.days}")
        if not re.fullmatch(COMPANY_DAY_NAME, self.name):
            raise ValueError(f"the name {self.name!r} must match {COMPANY_DAY_NAME}")

    def __str__(self) -> str:
        span = f"+{self.days}" if self.days != 1 else ""
        return f"{self.start.isoformat()}{span}:{self.name}"


def rest_day_number(name: str) -> int:
    """0 (Monday) .. 6 (Sunday) for a day's English name; ValueError names the known ones."""
    key = name.strip().lower()
    if key not in REST_DAYS:
        raise ValueError(f"rest day {name!r} is not one of {', '.join(REST_DAYS)}")
    return REST_DAYS.index(key)


def parse_company_days(text: str) -> CompanyDays:
    """`YYYY-MM-DD:name` (one day) or `YYYY-MM-DD+N:name` (N days); ValueError says why not."""
    match = _COMPANY_DAY.fullmatch(text.strip())
    if not match:
        raise ValueError(
            f"company day {text!r} is not YYYY-MM-DD:name or YYYY-MM-DD+N:name "
            f"(name matching {COMPANY_DAY_NAME})"
        )
    day, span, name = match.groups()
    try:
        start = dt.date.fromisoformat(day)
    except ValueError as err:
        raise ValueError(f"company day {text!r}: {day} is not a date") from err
    try:
        return CompanyDays(start, int(span) if span else 1, name)
    except ValueError as err:
        raise ValueError(f"company day {text!r}: {err}") from err
