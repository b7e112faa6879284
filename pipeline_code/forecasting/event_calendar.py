"""The calendar of known events: which events fall on each day, as one integer code per day.

Events: public holidays of a country (`holidays`), seasonal breaks (the year-end closure
29 December - 3 January, Golden Week 29 April - 5 May, Obon 13-16 August) and company days from
the configuration (campaign launches and the like, `YYYY-MM-DD:name` or `YYYY-MM-DD+N:name` for
N days from that date). A public holiday on a Saturday or Sunday is its own event: a weekend is
already quiet for offices and busy for private customers, so it moves demand less than one on a
working day.

A public holiday on a working day is a day off, whatever its weekday: demand on it looks like a
Sunday's, not like the weekday's it replaces (a Wednesday holiday and a Monday one are both
Sunday-like, though a Wednesday is quieter than a Monday for private customers). So its effect is
measured against the nearest Sunday (`reference_offsets`); every other event day is measured
against its own weekday.

A day's code is a bit mask of its events (0: an ordinary day), so a day with two events (New
Year's Day is a holiday inside the year-end break) has its own code and its own effect: effects
of overlapping events are rarely the product of the single ones.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from functools import lru_cache

import holidays
import numpy as np

from pipeline_code.calendar_spec import (
    BREAKS,
    DEFAULT_BREAKS,
    DEFAULT_COUNTRY,
    CompanyDays,
    parse_company_days,
)

__all__ = [
    "BREAKS",
    "EVENT_KINDS",
    "NO_EVENTS",
    "CompanyDays",
    "EventCalendar",
    "parse_company_days",
]

PUBLIC_HOLIDAY = "public_holiday"
WEEKEND_HOLIDAY = "weekend_holiday"

# Kinds of event day, for what needs more days than one event has (the interval calibration).
# A day takes the first kind that has one of its events: a holiday inside a break is a break
# day (New Year's Day is part of the closure), a campaign on a holiday is a company day.
BREAK_DAY, COMPANY_DAY, HOLIDAY = 1, 2, 3  # 0: an ordinary day
EVENT_KINDS = {BREAK_DAY: "break", COMPANY_DAY: "company_day", HOLIDAY: "public_holiday"}


@dataclass(frozen=True)
class EventCalendar:
    """Which events the forecasts know; hashable, so day codes are cached per calendar."""

    country: str | None = DEFAULT_COUNTRY  # `holidays` country code; None: no public holidays
    breaks: tuple[str, ...] = DEFAULT_BREAKS
    company_days: tuple[CompanyDays, ...] = ()

    def __post_init__(self) -> None:
        unknown = sorted(set(self.breaks) - set(BREAKS))
        if unknown:
            raise ValueError(f"unknown breaks {unknown}; known: {sorted(BREAKS)}")
        if self.country:
            try:
                holidays.country_holidays(self.country, years=2000)
            except NotImplementedError as err:
                raise ValueError(f"unknown holiday country {self.country!r}") from err

    @property
    def event_names(self) -> tuple[str, ...]:
        """Every event, in bit order: bit i of a day's code is event i."""
        company = tuple(dict.fromkeys(c.name for c in self.company_days))
        holiday = (PUBLIC_HOLIDAY, WEEKEND_HOLIDAY) if self.country else ()
        return (*holiday, *self.breaks, *company)

    @property
    def empty(self) -> bool:
        return not self.event_names

    def describe(self, code: int) -> str:
        """A code as its events' names joined by '+' ('' for an ordinary day)."""
        return "+".join(name for i, name in enumerate(self.event_names) if code >> i & 1)

    def kinds(self, codes: np.ndarray) -> np.ndarray:
        """The kind of each day's events (`EVENT_KINDS`; 0: an ordinary day) from its code."""
        codes = np.asarray(codes, dtype=np.int64)
        out = np.zeros(codes.shape, dtype=np.int64)
        for kind in sorted(EVENT_KINDS, reverse=True):  # the first kind is written last: it wins
            out = np.where(codes & self._kind_mask(kind) != 0, kind, out)
        return out

    def _kind_mask(self, kind: int) -> int:
        names = self.event_names
        members = {
            BREAK_DAY: set(self.breaks),
            COMPANY_DAY: {c.name for c in self.company_days},
            HOLIDAY: {PUBLIC_HOLIDAY, WEEKEND_HOLIDAY},
        }[kind]
        return sum(1 << bit for bit, name in enumerate(names) if name in members)

    def codes(self, start: dt.date, length: int) -> np.ndarray:
        """Event code of each of `length` days from `start` (read-only, cached)."""
        return _codes(self, start, length)

    def reference_offsets(self, start: dt.date, length: int) -> np.ndarray:
        """Per day, the offset in days to the day whose ordinary demand its event is measured
        against: the nearest Sunday for a public holiday on a working day (Monday -1 ... Wednesday
        -3, Thursday +3, Friday +2), 0 (the day itself) for every other day (read-only, cached)."""
        return _reference_offsets(self, start, length)


NO_EVENTS = EventCalendar(country=None, breaks=())  # a calendar that knows no event


def _in_break(days: list[dt.date], span: tuple[tuple[int, int], tuple[int, int]]) -> np.ndarray:
    first, last = span
    keys = [(d.month, d.day) for d in days]
    if first <= last:
        return np.array([first <= k <= last for k in keys])
    return np.array([k >= first or k <= last for k in keys])  # wraps over the new year


@lru_cache(maxsize=16)
def _public_holidays(country: str, first_year: int, last_year: int) -> frozenset[dt.date]:
    return frozenset(holidays.country_holidays(country, years=range(first_year, last_year + 1)))


# Monday..Sunday: the offset in days to the nearest Sunday (a working day's only).
_TO_REST_DAY = np.array([-1, -2, -3, 3, 2, 0, 0])


@lru_cache(maxsize=256)
def _reference_offsets(calendar: EventCalendar, start: dt.date, length: int) -> np.ndarray:
    offsets = np.zeros(length, dtype=np.int64)
    if PUBLIC_HOLIDAY in calendar.event_names:
        bit = 1 << calendar.event_names.index(PUBLIC_HOLIDAY)
        weekdays = (start.weekday() + np.arange(length)) % 7
        on_holiday = calendar.codes(start, length) & bit != 0
        offsets = np.where(on_holiday, _TO_REST_DAY[weekdays], 0)
    offsets.setflags(write=False)
    return offsets


@lru_cache(maxsize=256)
def _codes(calendar: EventCalendar, start: dt.date, length: int) -> np.ndarray:
    days = [start + dt.timedelta(days=i) for i in range(length)]
    codes = np.zeros(length, dtype=np.int64)
    if not days:
        return codes
    names = calendar.event_names
    flags: dict[str, np.ndarray] = {}
    if calendar.country:
        public = _public_holidays(calendar.country, days[0].year, days[-1].year)
        holiday = np.array([d in public for d in days])
        weekend = np.array([d.weekday() >= 5 for d in days])
        flags[PUBLIC_HOLIDAY] = holiday & ~weekend
        flags[WEEKEND_HOLIDAY] = holiday & weekend
    for name in calendar.breaks:
        flags[name] = _in_break(days, BREAKS[name])
    ordinal = np.array([d.toordinal() for d in days])
    for company in calendar.company_days:
        first = company.start.toordinal()
        inside = (ordinal >= first) & (ordinal < first + company.days)
        flags[company.name] = flags.get(company.name, np.zeros(length, bool)) | inside
    for bit, name in enumerate(names):
        codes |= flags[name].astype(np.int64) << bit
    codes.setflags(write=False)
    return codes
