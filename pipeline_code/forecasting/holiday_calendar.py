"""Holiday regressors for daily series: public holidays and the year-end closing period.

Japanese firms close from 29 December to 3 January although only 1 January is a public holiday,
so that period gets its own column: its effect differs from that of a single public holiday.
"""

from __future__ import annotations

import datetime as dt
from functools import lru_cache

import holidays
import numpy as np

HOLIDAY_COLUMNS = ("public_holiday", "year_end")


@lru_cache(maxsize=32)
def _public_holidays(country: str, first_year: int, last_year: int) -> frozenset[dt.date]:
    calendar = holidays.country_holidays(country, years=range(first_year, last_year + 1))
    return frozenset(calendar.keys())


def _is_year_end(day: dt.date) -> bool:
    return (day.month == 12 and day.day >= 29) or (day.month == 1 and day.day <= 3)


def holiday_matrix(start: dt.date, length: int, country: str) -> np.ndarray:
    """0/1 matrix (length x 2): public holiday outside the year end, year-end period."""
    days = [start + dt.timedelta(days=i) for i in range(length)]
    if not days:
        return np.zeros((0, len(HOLIDAY_COLUMNS)))
    public = _public_holidays(country, days[0].year, days[-1].year)
    year_end = np.array([_is_year_end(d) for d in days], dtype=float)
    holiday = np.array([d in public for d in days], dtype=float) * (1.0 - year_end)
    return np.column_stack([holiday, year_end])
