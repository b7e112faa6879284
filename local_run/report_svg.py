"""Charts of the local report as inline SVG: history, forecast, interval band and the calendar's
event days shaded and named. Hand-drawn SVG rather than matplotlib: a chart takes about a
millisecond and a few kilobytes, so a report of many series is drawn in seconds, and the page
needs nothing from the network."""

from __future__ import annotations

import datetime as dt
import html
import math
from dataclasses import dataclass

import numpy as np

HISTORY = "#555555"
FORECAST = "#1f63b4"
BAND = "#1f63b4"
EVENT = "#f2c46d"
GRID = "#e4e4e4"
LABEL_GAP = 11  # pixels between two event names (they are written vertically, 9 px high)


@dataclass(frozen=True)
class EventSpan:
    """Consecutive days that carry the same event name (a break, a holiday, a company day)."""

    first: dt.date
    last: dt.date
    name: str
    detail: str  # every event of the span's days, for the tooltip

    @property
    def label(self) -> str:
        days = self.first.isoformat()
        if self.last != self.first:
            days += f" .. {self.last.isoformat()}"
        return f"{self.name} ({days})" + (f": {self.detail}" if self.detail else "")


@dataclass(frozen=True)
class Line:
    """A chart's data: history up to the execution date and the forecast after it."""

    history_days: np.ndarray  # datetime64[D]
    history: np.ndarray
    forecast_days: np.ndarray  # datetime64[D]
    yhat: np.ndarray
    lower: np.ndarray
    upper: np.ndarray


@dataclass(frozen=True)
class Frame:
    """Where a chart draws: pixel box and the data ranges it maps."""

    width: int
    height: int
    left: int = 46
    right: int = 8
    top: int = 22
    bottom: int = 20
    first_day: int = 0  # days since 1970-01-01
    last_day: int = 1
    top_value: float = 1.0

    def x(self, day: np.ndarray | float) -> np.ndarray:
        span = max(self.last_day - self.first_day, 1)
        inner = self.width - self.left - self.right
        return self.left + (np.asarray(day, dtype=float) - self.first_day) / span * inner

    def y(self, value: np.ndarray | float) -> np.ndarray:
        inner = self.height - self.top - self.bottom
        return self.top + inner * (1 - np.asarray(value, dtype=float) / self.top_value)


def nice_step(top: float, ticks: int = 4) -> float:
    """A round step (1, 2, 2.5, 5 times a power of ten) giving about `ticks` grid lines."""
    raw = max(top, 1e-9) / ticks
    power = 10 ** math.floor(math.log10(raw))
    for factor in (1, 2, 2.5, 5, 10):
        if factor * power >= raw:
            return factor * power
    return 10 * power


def _points(xs: np.ndarray, ys: np.ndarray) -> str:
    return " ".join(f"{x:.1f},{y:.1f}" for x, y in zip(xs, ys, strict=True))


def _day_numbers(days: np.ndarray) -> np.ndarray:
    return np.asarray(days, dtype="datetime64[D]").astype(np.int64)


def _tick_label(value: float) -> str:
    if value >= 10_000:
        return f"{value / 1000:,.0f}k"
    return f"{value:,.0f}" if value >= 10 or value == 0 else f"{value:.1f}"


def _y_axis(frame: Frame) -> list[str]:
    step = nice_step(frame.top_value)
    parts = []
    for value in np.arange(0, frame.top_value + step / 2, step):
        if value > frame.top_value:
            break
        y = float(frame.y(value))
        parts.append(
            f'<line x1="{frame.left}" x2="{frame.width - frame.right}" y1="{y:.1f}" '
            f'y2="{y:.1f}" stroke="{GRID}"/>'
            f'<text x="{frame.left - 4}" y="{y + 3:.1f}" text-anchor="end">'
            f"{_tick_label(float(value))}</text>"
        )
    return parts


def _x_axis(frame: Frame) -> list[str]:
    """A label at the first of every month (with its year in January and at the start)."""
    first = dt.date(1970, 1, 1) + dt.timedelta(days=frame.first_day)
    last = dt.date(1970, 1, 1) + dt.timedelta(days=frame.last_day)
    month = dt.date(first.year, first.month, 1)
    parts, labelled = [], False
    while month <= last:
        if month >= first:
            x = float(frame.x((month - dt.date(1970, 1, 1)).days))
            text = month.strftime("%b %Y" if month.month == 1 or not labelled else "%b")
            labelled = True
            bottom = frame.height - frame.bottom
            parts.append(
                f'<line x1="{x:.1f}" x2="{x:.1f}" y1="{frame.top}" y2="{bottom}" '
                f'stroke="{GRID}"/><text x="{x + 2:.1f}" y="{bottom + 13}">{text}</text>'
            )
        month = dt.date(month.year + month.month // 12, month.month % 12 + 1, 1)
    return parts


def _events(frame: Frame, events: list[EventSpan]) -> list[str]:
    """Shaded event days, each named: vertically at the top, with the full name on hover."""
    parts = []
    epoch = dt.date(1970, 1, 1)
    bottom = frame.height - frame.bottom
    last_label = -math.inf
    for span in events:
        first, last = (span.first - epoch).days, (span.last - epoch).days
        if last < frame.first_day or first > frame.last_day:
            continue
        x0 = float(frame.x(max(first, frame.first_day) - 0.5))
        x1 = float(frame.x(min(last, frame.last_day) + 0.5))
        middle = (x0 + x1) / 2
        # A name that would overprint the previous one is left to the tooltip.
        label = ""
        if middle - last_label >= LABEL_GAP:
            last_label = middle
            label = (
                f'<text class="ev" transform="translate({middle + 3:.1f},{frame.top + 3}) '
                f'rotate(90)">{html.escape(span.name)}</text>'
            )
        parts.append(
            f"<g><title>{html.escape(span.label)}</title>"
            f'<rect x="{x0:.1f}" y="{frame.top}" width="{max(x1 - x0, 1.5):.1f}" '
            f'height="{bottom - frame.top}" fill="{EVENT}" fill-opacity="0.35"/>{label}</g>'
        )
    return parts


def chart(line: Line, events: list[EventSpan], title: str, width: int, height: int) -> str:
    """One chart as an `<svg>` element."""
    history_x = _day_numbers(line.history_days)
    forecast_x = _day_numbers(line.forecast_days)
    every_x = np.concatenate([history_x, forecast_x])
    values = np.concatenate([line.history, line.upper, line.yhat])
    finite = values[np.isfinite(values)]
    top = float(finite.max()) if finite.size else 1.0
    top = nice_step(top * 1.08) * math.ceil(top * 1.08 / nice_step(top * 1.08)) or 1.0
    frame = Frame(
        width,
        height,
        first_day=int(every_x.min()) if every_x.size else 0,
        last_day=int(every_x.max()) if every_x.size else 1,
        top_value=top,
    )
    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" '
        f'viewBox="0 0 {width} {height}" role="img" aria-label="{html.escape(title)}">',
        f'<text class="title" x="{frame.left}" y="14">{html.escape(title)}</text>',
        *_y_axis(frame),
        *_x_axis(frame),
        *_events(frame, events),
    ]
    if forecast_x.size:
        band_x = np.concatenate([frame.x(forecast_x), frame.x(forecast_x[::-1])])
        band_y = np.concatenate([frame.y(line.upper), frame.y(line.lower[::-1])])
        parts.append(
            f'<polygon points="{_points(band_x, band_y)}" fill="{BAND}" fill-opacity="0.18"/>'
        )
    if history_x.size:
        parts.append(
            f'<polyline points="{_points(frame.x(history_x), frame.y(line.history))}" '
            f'fill="none" stroke="{HISTORY}" stroke-width="1"/>'
        )
        cut = float(frame.x(history_x.max() + 0.5))
        parts.append(
            f'<line x1="{cut:.1f}" x2="{cut:.1f}" y1="{frame.top}" '
            f'y2="{frame.height - frame.bottom}" stroke="#888" stroke-dasharray="2,3"/>'
        )
    if forecast_x.size:
        parts.append(
            f'<polyline points="{_points(frame.x(forecast_x), frame.y(line.yhat))}" '
            f'fill="none" stroke="{FORECAST}" stroke-width="1.8"/>'
        )
    parts.append("</svg>")
    return "".join(parts)
