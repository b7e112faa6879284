"""Progress of a step's long loop: `done/total` and the time left, at most every few seconds.

The lines go to standard output, so on SageMaker they are in the job's log (CloudWatch) and
locally the runner relays the newest one to the console while the step runs. One format, parsed
back by `parse`:

    PROGRESS Train: 2,400/10,000 series (24%), about 3 min left
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable
from dataclasses import dataclass

PREFIX = "PROGRESS "
EVERY_SECONDS = 5.0
_LINE = re.compile(
    r"PROGRESS (?P<step>[^:]+): (?P<done>[\d,]+)/(?P<total>[\d,]+) (?P<unit>\w+)"
    r" \(\d+%\)(?:, about (?P<left>.+) left)?$"
)


@dataclass(frozen=True)
class Reading:
    """One progress line, parsed."""

    step: str
    done: int
    total: int
    unit: str
    left_seconds: float | None


def duration(seconds: float) -> str:
    """Seconds for people: '40 s', '3 min', '1.5 h'."""
    if seconds < 90:
        return f"{max(1, round(seconds))} s"
    if seconds < 90 * 60:
        return f"{round(seconds / 60)} min"
    return f"{seconds / 3600:.1f} h"


def format_line(step: str, done: int, total: int, unit: str, left_seconds: float | None) -> str:
    percent = 100 * done // total if total else 100
    left = f", about {duration(left_seconds)} left" if left_seconds is not None else ""
    return f"{PREFIX}{step}: {done:,}/{total:,} {unit} ({percent}%){left}"


def parse(line: str) -> Reading | None:
    """The reading of a progress line; None for any other line."""
    match = _LINE.match(line.strip())
    if not match:
        return None
    left = match["left"]
    return Reading(
        step=match["step"],
        done=int(match["done"].replace(",", "")),
        total=int(match["total"].replace(",", "")),
        unit=match["unit"],
        left_seconds=_seconds(left) if left else None,
    )


def _seconds(text: str) -> float | None:
    number, _, unit = text.partition(" ")
    scale = {"s": 1, "min": 60, "h": 3600}.get(unit)
    try:
        return float(number) * scale if scale else None
    except ValueError:
        return None


class Progress:
    """Counts finished items and prints a line when `every` seconds have passed since the last
    one (and always for the last item), with the time left from the rate so far."""

    def __init__(
        self,
        step: str,
        total: int,
        unit: str = "series",
        every: float = EVERY_SECONDS,
        clock: Callable[[], float] = time.monotonic,
        emit: Callable[[str], None] | None = None,
    ) -> None:
        self.step, self.total, self.unit, self.every = step, total, unit, every
        self.clock = clock
        self.emit = emit or (lambda line: print(line, flush=True))
        self.done = 0
        self.started = clock()
        self.last_shown = self.started

    def advance(self, count: int = 1) -> None:
        self.done += count
        now = self.clock()
        if self.done < self.total and now - self.last_shown < self.every:
            return
        self.last_shown = now
        elapsed = now - self.started
        left = elapsed / self.done * (self.total - self.done) if self.done < self.total else None
        self.emit(format_line(self.step, self.done, self.total, self.unit, left))
