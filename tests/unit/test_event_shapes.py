"""Event shapes learned from the data: each day of a break its own effect, bridge days, a
holiday's reference (rest day or own weekday) and sign per series, the configurable rest day,
and the effects' sources as a report reads them.

Each forecast test states a law of demand in its synthetic series and checks the forecast
follows it; none of these laws is the demo generator's, and each was failed by the calendar's
former mechanism (one effect per break, no bridge days, holidays always measured against
Sundays, a fixed spread between series).
"""

from __future__ import annotations

import datetime as dt
from dataclasses import replace

import numpy as np
import pytest

from pipeline_code.forecasting import SeriesData, daily_settings, predict_series, train_series
from pipeline_code.forecasting.event_calendar import EventCalendar
from pipeline_code.forecasting.selection import (
    other_reference,
    pool_events,
    series_effects,
    widened_to_other_reference,
)

PROFILE = np.array([10.0, 8.0, 5.0, 8.0, 10.0, 20.0, 20.0])  # Monday first: quiet mid-week
START = dt.date(2023, 8, 1)


def _days(end: dt.date) -> list[dt.date]:
    return [START + dt.timedelta(days=i) for i in range((end - START).days + 1)]


def _series(
    end: dt.date, shape, levels: tuple[float, ...] = (1.0, 1.5, 2.0, 3.0), seed: int = 0
) -> list[SeriesData]:
    """Poisson series, one per level, of `level * PROFILE[weekday] * shape(day, i)`."""
    days = _days(end)
    weekday = np.array([d.weekday() for d in days])
    rng = np.random.default_rng(seed)
    out = []
    for i, level in enumerate(levels):
        factor = np.array([shape(d, i) for d in days])
        out.append(SeriesData(f"s{i}", rng.poisson(level * PROFILE[weekday] * factor), START))
    return out


def _settings():
    # one recent fold: the tests are about the events, not the choice of model
    return daily_settings(horizon=28, candidates=("ets",), backtest_folds=1)


def _forecast(series: list[SeriesData], index: int, end: dt.date):
    settings = _settings()
    pool = pool_events(series, settings)
    model = train_series(series[index], settings, pool).model
    days = [end + dt.timedelta(days=i) for i in range(1, 29)]
    return predict_series(series[index], model, settings), days, model


def _level(day: dt.date, level: float) -> float:
    return level * PROFILE[day.weekday()]


def _ratio(forecast, days: list[dt.date], day: dt.date) -> float:
    """A day's forecast over the forecast of the same weekday a week or two later (ordinary)."""
    later = day + dt.timedelta(days=14)
    return float(forecast.yhat[days.index(day)] / forecast.yhat[days.index(later)])


def test_only_the_low_days_of_a_break_are_forecast_low() -> None:
    """The year end's first working day (29 December) is ordinary, its middle days are at 30%
    and 3 January at 70%; none is a public holiday, so one effect for the span's ordinary days
    would be wrong on every one of them."""
    shape_of = {(12, 30): 0.3, (12, 31): 0.3, (1, 2): 0.3, (1, 3): 0.7}

    def shape(day: dt.date, _: int) -> float:
        return shape_of.get((day.month, day.day), 1.0)

    end = dt.date(2025, 12, 20)
    series = _series(end, shape)
    forecast, days, _ = _forecast(series, 3, end)
    assert _ratio(forecast, days, dt.date(2025, 12, 29)) == pytest.approx(1.0, abs=0.15)
    assert _ratio(forecast, days, dt.date(2025, 12, 30)) == pytest.approx(0.3, abs=0.1)
    assert _ratio(forecast, days, dt.date(2025, 12, 31)) == pytest.approx(0.3, abs=0.1)


def test_a_bridge_day_gets_its_own_effect() -> None:
    """Half the customers take a bridge day off (a working day between a holiday and another day
    off); Monday 10 August 2026, between a Sunday and Mountain Day, is one."""
    calendar = EventCalendar()

    def shape(day: dt.date, _: int) -> float:
        code = int(calendar.codes(day, 1)[0])
        return 0.5 if calendar.describe(code) == "bridge_day" else 1.0

    end = dt.date(2026, 8, 1)
    series = _series(end, shape, levels=(2.0, 3.0, 4.0, 6.0))
    forecast, days, _ = _forecast(series, 3, end)
    bridge = dt.date(2026, 8, 10)
    assert _ratio(forecast, days, bridge) == pytest.approx(0.5, abs=0.12)
    assert calendar.describe(int(calendar.codes(bridge, 1)[0])) == "bridge_day"


def test_holidays_that_lift_their_own_weekday_are_measured_against_it() -> None:
    """Holidays at 1.5 times their own weekday's demand (most past ones are Mondays): a Tuesday
    and a Wednesday holiday ahead are 1.5 times a Tuesday and a Wednesday, not a Monday holiday's
    ratio to the Sunday applied to a Sunday. The data choose the weekday reference."""
    holidays = EventCalendar()

    def shape(day: dt.date, _: int) -> float:
        code = holidays.describe(int(holidays.codes(day, 1)[0]))
        return 1.5 if code == "public_holiday" else 1.0

    end = dt.date(2026, 9, 15)
    series = _series(end, shape)
    forecast, days, model = _forecast(series, 3, end)
    for day in (dt.date(2026, 9, 21), dt.date(2026, 9, 22), dt.date(2026, 9, 23)):
        assert _ratio(forecast, days, day) == pytest.approx(1.5, abs=0.2), day
    assert model.reference == "weekday"


def test_holidays_at_the_rest_days_level_keep_the_rest_day_reference() -> None:
    holidays = EventCalendar()

    def shape(day: dt.date, _: int) -> float:
        code = holidays.describe(int(holidays.codes(day, 1)[0]))
        return 20.0 / PROFILE[day.weekday()] if code == "public_holiday" else 1.0

    end = dt.date(2026, 9, 15)
    forecast, days, model = _forecast(_series(end, shape), 3, end)
    assert model.reference == "rest_day"
    for day in (dt.date(2026, 9, 21), dt.date(2026, 9, 22), dt.date(2026, 9, 23)):
        assert forecast.yhat[days.index(day)] == pytest.approx(
            _level(day, 3.0) * 20.0 / PROFILE[day.weekday()], rel=0.15
        )


def test_an_interval_widens_toward_the_other_references_forecast_only_where_they_differ() -> None:
    low, high = np.array([-2.0, -2.0, -2.0]), np.array([3.0, 3.0, 3.0])
    wide_low, wide_high = widened_to_other_reference(low, high, np.array([0.0, 4.0, -1.5]))
    np.testing.assert_allclose(wide_low, [-2.0, -2.0, -2.5])
    np.testing.assert_allclose(wide_high, [3.0, 5.0, 3.0])


def test_a_mid_week_holidays_interval_holds_the_forecast_of_either_reference() -> None:
    """Holidays at the rest day's level: measured against its own weekday, a Wednesday holiday
    (own level 5) would be forecast at about half of what the rest day (20) gives. Where the two
    references disagree the interval spans both forecasts; where they agree (ordinary days) it
    is the interval the chosen reference alone gives."""
    holidays = EventCalendar()

    def shape(day: dt.date, _: int) -> float:
        code = holidays.describe(int(holidays.codes(day, 1)[0]))
        return 20.0 / PROFILE[day.weekday()] if code == "public_holiday" else 1.0

    end = dt.date(2026, 9, 10)
    series = _series(end, shape)
    forecast, days, model = _forecast(series, 3, end)
    assert model.other_reference_effects  # the references differ on working-day holidays
    other = replace(
        model,
        reference=other_reference(model.reference),
        effects=model.other_reference_effects,
        other_reference_effects={},
    )
    settings = _settings()
    alone = predict_series(series[3], replace(model, other_reference_effects={}), settings)
    other_forecast = predict_series(series[3], other, settings).yhat
    wednesday = days.index(dt.date(2026, 9, 23))
    assert abs(other_forecast[wednesday] / forecast.yhat[wednesday] - 1.0) > 0.3
    assert forecast.lower[wednesday] < alone.lower[wednesday]
    both = np.stack([forecast.yhat, other_forecast])
    assert (forecast.lower <= both.min(axis=0) + 1e-9).all()
    assert (forecast.upper >= both.max(axis=0) - 1e-9).all()
    same = np.isclose(other_forecast, forecast.yhat)
    assert same.sum() > 20  # every ordinary day
    np.testing.assert_allclose(forecast.lower[same], alone.lower[same])
    np.testing.assert_allclose(forecast.upper[same], alone.upper[same])


def test_small_series_keep_the_sign_of_their_holidays_when_series_differ() -> None:
    """Half the series are lifted 1.6x on holidays (online demand), half cut to 0.5x (dealers
    closed). The spread between series is learned from the data, so a small series' own
    holidays are not pulled to the pool's middle."""
    holidays = EventCalendar()

    def shape(day: dt.date, i: int) -> float:
        code = holidays.describe(int(holidays.codes(day, 1)[0]))
        return (1.6 if i % 2 == 0 else 0.5) if code == "public_holiday" else 1.0

    end = dt.date(2026, 9, 15)
    levels = (0.15, 0.15, 1.0, 1.0, 2.0, 2.0, 3.0, 3.0)
    series = _series(end, shape, levels=levels, seed=2)
    settings = _settings()
    pool = pool_events(series, settings)
    code = int(holidays.codes(dt.date(2026, 9, 22), 1)[0])
    lifted = train_series(series[0], settings, pool).model.effects[code]
    cut = train_series(series[1], settings, pool).model.effects[code]
    assert lifted > 1.3 and cut < 0.62, (lifted, cut)


def test_the_rest_day_is_configurable() -> None:
    """With Friday as the rest day, Thursday and Friday are the weekend, and a working-day
    holiday's reference is the nearest Friday."""
    friday = EventCalendar(rest_day=4)
    sunday = EventCalendar()
    vernal = dt.date(2026, 3, 20)  # a Friday holiday
    assert friday.describe(int(friday.codes(vernal, 1)[0])) == "weekend_holiday"
    assert sunday.describe(int(sunday.codes(vernal, 1)[0])) == "public_holiday"
    culture = dt.date(2026, 11, 3)  # a Tuesday holiday: Friday is 3 days ahead
    assert friday.reference_offsets(culture, 1)[0] == 3
    assert sunday.reference_offsets(culture, 1)[0] == -2
    aged = dt.date(2026, 9, 21)  # a Monday holiday: the Friday before
    assert friday.reference_offsets(aged, 1)[0] == -3
    with pytest.raises(ValueError, match="rest_day must be 0"):
        EventCalendar(rest_day=7)


def test_each_effect_names_its_source() -> None:
    """A report reads which effect a series uses and whether the pool's or its own: Obon's
    middle days are at 30% for the big series alone, so the series differ, the big one keeps
    its own effect and a small one, with little evidence, the pool's."""

    def shape(day: dt.date, i: int) -> float:
        return 0.3 if i == 3 and (day.month, day.day) in ((8, 14), (8, 15)) else 1.0

    end = dt.date(2026, 8, 5)
    series = _series(end, shape, levels=(0.2, 2.0, 5.0, 30.0))
    settings = _settings()
    pool = pool_events(series, settings)
    small = series_effects(train_series(series[0], settings, pool).model, settings.calendar)
    big = series_effects(train_series(series[3], settings, pool).model, settings.calendar)
    small_obon = {e.event: e for e in small if e.event.startswith("obon")}
    big_obon = {e.event: e for e in big if e.event.startswith("obon")}
    assert {"obon day 2", "obon day 3"} <= set(small_obon)
    assert small_obon["obon day 2"].source == "pooled"
    assert big_obon["obon day 2"].source == "own"
    assert big_obon["obon day 2"].effect == pytest.approx(0.3, abs=0.06)
    assert all(e.reference in ("rest_day", "weekday") for e in big)
