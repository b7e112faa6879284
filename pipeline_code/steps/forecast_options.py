"""The forecasting options PreProc and Train share, and the settings and series built from them.

PreProc computes the calendar events' pooled effects over all series, Train the per-series
effects shrunk toward that pool: both need the same frequency, cycle and calendar. Both steps
take `--season-length`, `--holiday-country`, `--breaks` and `--company-days` from the definition
(one value for both, which a test of the definition holds), and both build them into settings
with `event_settings`; Train adds its training options on top.
"""

from __future__ import annotations

import argparse
import datetime as dt

import pandas as pd

from pipeline_code.calendar_spec import DEFAULT_REST_DAY, rest_day_number
from pipeline_code.errors import StepError
from pipeline_code.forecasting import (
    ForecastSettings,
    SeriesData,
    infer_frequency,
    settings_for_frequency,
)
from pipeline_code.forecasting.event_calendar import BREAKS, EventCalendar, parse_company_days
from pipeline_code.forecasting.series_table import SeriesTableError, series_from_frame

FREQUENCY_STEP = {"D": "1D", "W": "7D", "H": "1h"}


def add_event_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--season-length", type=int, default=None, help="cycle in steps (default: frequency's, 7)"
    )
    parser.add_argument(
        "--holiday-country", default="JP", help="holidays country code; 'none' to disable"
    )
    parser.add_argument(
        "--breaks",
        default=",".join(BREAKS),
        help=f"comma-separated seasonal breaks of {sorted(BREAKS)}; 'none' for none",
    )
    parser.add_argument(
        "--rest-day",
        default=DEFAULT_REST_DAY,
        help="the weekly day off a working-day holiday may be measured against (monday..sunday)",
    )
    parser.add_argument(
        "--company-days",
        nargs="*",
        default=[],
        help="company events, each YYYY-MM-DD:name or YYYY-MM-DD+N:name (N days)",
    )


def default_event_options() -> argparse.Namespace:
    """The options' defaults, as a step run without them gets them."""
    parser = argparse.ArgumentParser()
    add_event_arguments(parser)
    return parser.parse_args([])


def build_calendar(args: argparse.Namespace, step: str) -> EventCalendar:
    """The calendar of known events from --holiday-country, --breaks, --company-days and
    --rest-day."""
    country = args.holiday_country.strip()
    breaks = tuple(
        b.strip() for b in args.breaks.split(",") if b.strip().lower() not in ("", "none")
    )
    try:
        company_days = tuple(parse_company_days(item) for item in args.company_days)
        return EventCalendar(
            country=country if country.lower() not in ("", "none") else None,
            breaks=breaks,
            company_days=company_days,
            rest_day=rest_day_number(args.rest_day),
        )
    except ValueError as err:
        raise StepError(step, f"calendar: {err}") from err


def event_settings(args: argparse.Namespace, frequency: str, step: str) -> ForecastSettings:
    """The frequency's profile with the options' cycle and calendar."""
    if (args.season_length or 1) < 1:
        raise StepError(step, "--season-length must be >= 1")
    return settings_for_frequency(frequency, season_length=args.season_length).with_overrides(
        calendar=build_calendar(args, step)
    )


def series_of(
    frame: pd.DataFrame, execution_date: dt.date, step: str, where: str
) -> tuple[list[SeriesData], str]:
    """The checked series of a `series_id, ds, y` table and their frequency code."""
    try:
        frequency = infer_frequency(frame["ds"]) if "ds" in frame.columns else "D"
        return series_from_frame(frame, execution_date, FREQUENCY_STEP[frequency]), frequency
    except (SeriesTableError, ValueError) as err:
        raise StepError(step, f"{where}: {err}") from err
