"""The calendar of known events: which events fall on each day, as one integer code per day.

Events: public holidays of a country (`holidays`), bridge days (working days squeezed between
a public holiday and another day off: many take them off), seasonal breaks (the year-end closure
29 December - 3 January, Golden Week 29 April - 5 May, Obon 13-16 August) and company days from
the configuration (campaign launches and the like, `YYYY-MM-DD:name` or `YYYY-MM-DD+N:name` for
N days from that date). A public holiday on the weekend (the rest day and the day before it) is
its own event: a weekend is already quiet for offices and busy for private customers, so it moves
demand less than one on a working day.

A public holiday on a working day is a day off: for some businesses its demand looks like the
rest day's (Sunday by default, `rest_day`), for others like its own weekday's. Which one is
learned per series (`event_effects.reference_choice`); `reference_offsets` gives, per day, the
offset to the nearest rest day for a working-day holiday, the reference when a series measures
its holidays against the rest day.

A day's code is a bit mask of its events (0: an ordinary day), so a day with two events (New
Year's Day is a holiday inside the year-end break) has its own code and its own effect: effects
of overlapping events are rarely the product of the single ones. A break day's code also holds
its position in the break (`POSITION_SHIFT`): the days of a break differ (the eve, the middle,
the return to work), so each has its own effect, pooled toward the whole break's where the data
are few (`coarser_masks`).
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
    REST_DAYS,
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
BRIDGE_DAY = "bridge_day"
SUNDAY = 6
MAX_BRIDGE = 1  # working days between a holiday and another day off that make a bridge
# A break day's position (1 = its first day) sits above every event bit (at most 3 + breaks +
# 40 company names), so masks of events never see it.
POSITION_SHIFT = 56
POSITION_MASK = 0xF << POSITION_SHIFT

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
    rest_day: int = SUNDAY  # 0 Monday .. 6 Sunday: the weekly day off

    def __post_init__(self) -> None:
        if self.rest_day not in range(7):
            raise ValueError(f"rest_day must be 0 (Monday) to 6 (Sunday), got {self.rest_day}")
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
        holiday = (PUBLIC_HOLIDAY, WEEKEND_HOLIDAY, BRIDGE_DAY) if self.country else ()
        return (*holiday, *self.breaks, *company)

    @property
    def empty(self) -> bool:
        return not self.event_names

    def describe(self, code: int) -> str:
        """A code as its events' names joined by '+' and a break day's position ("day 2");
        '' for an ordinary day."""
        names = "+".join(name for i, name in enumerate(self.event_names) if code >> i & 1)
        position = (code & POSITION_MASK) >> POSITION_SHIFT
        return f"{names} day {position}" if position else names

    @property
    def rest_day_name(self) -> str:
        return REST_DAYS[self.rest_day]

    def coarser_masks(self) -> tuple[int, ...]:
        """Bits to clear, in turn, to get a code's coarser events: first the bridge, then whether
        a break day is a public holiday on a working day or on the weekend (a break's days are
        fixed dates, so New Year's Day on a Thursday for the first time is first New Year's Day),
        then a break day's position (the whole break). A code without a break keeps its holiday
        bits: clearing them would leave no event."""
        bridge = self._bits({BRIDGE_DAY})
        holiday = self._bits({PUBLIC_HOLIDAY, WEEKEND_HOLIDAY})
        return tuple(mask for mask in (bridge, holiday, POSITION_MASK) if mask)

    def holiday_mask(self) -> int:
        """The bits of public holidays and bridge days, whose effects may differ by series."""
        return self._bits({PUBLIC_HOLIDAY, WEEKEND_HOLIDAY, BRIDGE_DAY})

    def _bits(self, members: set[str]) -> int:
        return sum(1 << bit for bit, name in enumerate(self.event_names) if name in members)

    def kinds(self, codes: np.ndarray) -> np.ndarray:
        """The kind of each day's events (`EVENT_KINDS`; 0: an ordinary day) from its code."""
        codes = np.asarray(codes, dtype=np.int64)
        out = np.zeros(codes.shape, dtype=np.int64)
        for kind in sorted(EVENT_KINDS, reverse=True):  # the first kind is written last: it wins
            out = np.where(codes & self._kind_mask(kind) != 0, kind, out)
        return out

    def kind_masks(self) -> tuple[int, ...]:
        """The event bits of each kind, in `EVENT_KINDS` order (a day's first kind wins)."""
        return tuple(self._kind_mask(kind) for kind in sorted(EVENT_KINDS))

    def _kind_mask(self, kind: int) -> int:
        names = self.event_names
        members = {
            BREAK_DAY: set(self.breaks),
            COMPANY_DAY: {c.name for c in self.company_days},
            HOLIDAY: {PUBLIC_HOLIDAY, WEEKEND_HOLIDAY, BRIDGE_DAY},
        }[kind]
        return sum(1 << bit for bit, name in enumerate(names) if name in members)

    def codes(self, start: dt.date, length: int) -> np.ndarray:
        """Event code of each of `length` days from `start` (read-only, cached)."""
        return _codes(self, start, length)

    def reference_offsets(self, start: dt.date, length: int) -> np.ndarray:
        """Per day, the offset in days to the nearest rest day for a public holiday on a working
        day (with Sunday: Monday -1 ... Wednesday -3, Thursday +3, Friday +2), 0 (the day itself)
        for every other day (read-only, cached): the reference of a series whose holidays look
        like its rest days."""
        return _reference_offsets(self, start, length)


NO_EVENTS = EventCalendar(country=None, breaks=())  # a calendar that knows no event


def _in_break(days: list[dt.date], span: tuple[tuple[int, int], tuple[int, int]]) -> np.ndarray:
    first, last = span
    keys = [(d.month, d.day) for d in days]
    if first <= last:
        return np.array([first <= k <= last for k in keys])
    return np.array([k >= first or k <= last for k in keys])  # wraps over the new year


def _break_position(
    days: list[dt.date], span: tuple[tuple[int, int], tuple[int, int]]
) -> np.ndarray:
    """Each day's position in the break `span` (1: its first day), for the days inside it."""
    (month, day), _ = span
    out = []
    for d in days:
        first = dt.date(d.year, month, day)
        if first > d:  # a break that wraps over the new year began the year before
            first = dt.date(d.year - 1, month, day)
        out.append((d - first).days + 1)
    return np.array(out, dtype=np.int64)


def _days_off(calendar: EventCalendar, days: list[dt.date]) -> tuple[np.ndarray, ...]:
    """Public holidays, weekend days and bridge days of `days`. A bridge day is a working day in
    a run of at most MAX_BRIDGE working days between two days off, one of them a public holiday;
    the runs are found on days padded by a week either side, so a range's edges do not cut one."""
    assert calendar.country is not None
    pad = 7
    wide = [days[0] + dt.timedelta(days=i) for i in range(-pad, len(days) + pad)]
    public = _public_holidays(calendar.country, wide[0].year, wide[-1].year)
    holiday = np.array([d in public for d in wide])
    weekend = np.isin([d.weekday() for d in wide], list(_weekend(calendar.rest_day)))
    off = holiday | weekend
    bridge = np.zeros(len(wide), dtype=bool)
    i = 0
    while i < len(wide):
        if off[i]:
            i += 1
            continue
        end = i
        while end < len(wide) and not off[end]:
            end += 1
        run = end - i
        bounded = i > 0 and end < len(wide)
        if bounded and run <= MAX_BRIDGE and (holiday[i - 1] or holiday[end]):
            bridge[i:end] = True
        i = end
    inner = slice(pad, pad + len(days))
    return holiday[inner], weekend[inner], bridge[inner]


@lru_cache(maxsize=16)
def _public_holidays(country: str, first_year: int, last_year: int) -> frozenset[dt.date]:
    return frozenset(holidays.country_holidays(country, years=range(first_year, last_year + 1)))


def _to_rest_day(rest_day: int) -> np.ndarray:
    """Monday..Sunday: the offset in days to the nearest rest day (ties: the one after)."""
    ahead = (rest_day - np.arange(7)) % 7
    return np.where(ahead <= 3, ahead, ahead - 7)


def _weekend(rest_day: int) -> set[int]:
    """The weekdays of the weekend: the rest day and the day before it."""
    return {rest_day, (rest_day - 1) % 7}


@lru_cache(maxsize=256)
def _reference_offsets(calendar: EventCalendar, start: dt.date, length: int) -> np.ndarray:
    offsets = np.zeros(length, dtype=np.int64)
    if PUBLIC_HOLIDAY in calendar.event_names:
        bit = 1 << calendar.event_names.index(PUBLIC_HOLIDAY)
        weekdays = (start.weekday() + np.arange(length)) % 7
        on_holiday = calendar.codes(start, length) & bit != 0
        offsets = np.where(on_holiday, _to_rest_day(calendar.rest_day)[weekdays], 0)
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
        holiday, weekend, bridge = _days_off(calendar, days)
        flags[PUBLIC_HOLIDAY] = holiday & ~weekend
        flags[WEEKEND_HOLIDAY] = holiday & weekend
        flags[BRIDGE_DAY] = bridge
    position = np.zeros(length, dtype=np.int64)
    for name in calendar.breaks:
        flags[name] = _in_break(days, BREAKS[name])
        position = np.where(flags[name], _break_position(days, BREAKS[name]), position)
    ordinal = np.array([d.toordinal() for d in days])
    for company in calendar.company_days:
        first = company.start.toordinal()
        inside = (ordinal >= first) & (ordinal < first + company.days)
        flags[company.name] = flags.get(company.name, np.zeros(length, bool)) | inside
    for bit, name in enumerate(names):
        codes |= flags[name].astype(np.int64) << bit
    codes |= position << POSITION_SHIFT
    codes.setflags(write=False)
    return codes
