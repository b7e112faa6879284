"""The calendar of events, the effects estimated from it and the interval calibration."""

from __future__ import annotations

import datetime as dt
import json

import numpy as np
import pytest

from local_run.demo_data import demo_daily_counts
from pipeline_code.forecasting import SeriesData, daily_settings, predict_series, train_series
from pipeline_code.forecasting.batch import train_all
from pipeline_code.forecasting.event_calendar import (
    BREAK_DAY,
    COMPANY_DAY,
    HOLIDAY,
    CompanyDays,
    EventCalendar,
    parse_company_days,
)
from pipeline_code.forecasting.event_effects import (
    EventDays,
    PooledEvents,
    adjusted_history,
    reference_positions,
    shrunk_effects,
    weekday_baseline,
)
from pipeline_code.forecasting.metrics import (
    IntervalCalibration,
    calibrate_intervals,
    needed_factors,
)
from pipeline_code.forecasting.selection import (
    DIFFICULTY_POWER,
    LEVEL_PSEUDO_COUNT,
    difficulty,
    pool_events,
)
from tests.unit.forecast_data import weekly_series

# --- the calendar


def _events_of(calendar: EventCalendar, day: dt.date) -> str:
    return calendar.describe(int(calendar.codes(day, 1)[0]))


@pytest.mark.parametrize(
    ("day", "events"),
    [
        (dt.date(2025, 12, 26), ""),
        (dt.date(2025, 12, 29), "year_end day 1"),
        (dt.date(2026, 1, 1), "public_holiday+year_end day 4"),
        (dt.date(2026, 1, 2), "bridge_day+year_end day 5"),  # between New Year and a Saturday
        (dt.date(2026, 1, 3), "year_end day 6"),  # a bank holiday, not a public one
        (dt.date(2026, 1, 4), ""),
        (dt.date(2026, 1, 12), "public_holiday"),  # Coming of Age Day, a Monday
        (dt.date(2025, 11, 23), "weekend_holiday"),  # Labour Thanksgiving Day on a Sunday
        (dt.date(2026, 5, 1), "golden_week day 3"),
        (dt.date(2026, 8, 10), "bridge_day"),  # Monday between a Sunday and Mountain Day
        (dt.date(2026, 5, 4), "public_holiday+golden_week day 6"),
        (dt.date(2026, 8, 11), "public_holiday"),  # Mountain Day
        (dt.date(2026, 8, 14), "obon day 2"),
        (dt.date(2026, 3, 2), "spring_sale"),
        (dt.date(2026, 3, 4), ""),
    ],
)
def test_each_day_carries_its_events(day: dt.date, events: str) -> None:
    calendar = EventCalendar(company_days=(parse_company_days("2026-03-01+3:spring_sale"),))
    assert _events_of(calendar, day) == events


def test_codes_of_a_range_are_the_codes_of_its_days() -> None:
    calendar = EventCalendar()
    start = dt.date(2025, 12, 20)
    codes = calendar.codes(start, 30)
    assert [int(calendar.codes(start + dt.timedelta(days=i), 1)[0]) for i in range(30)] == (
        codes.tolist()
    )


def test_a_calendar_without_country_or_breaks_knows_no_event() -> None:
    calendar = EventCalendar(country=None, breaks=("obon",))
    assert _events_of(calendar, dt.date(2026, 1, 1)) == ""
    assert _events_of(calendar, dt.date(2026, 8, 14)) == "obon day 2"


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("2026-03-01", "YYYY-MM-DD:name"),
        ("2026-02-29:sale", "2026-02-29 is not a date"),
        ("2026-03-01+0:sale", "span must be 1 to 366"),
        ("2026-03-01:Sale", "YYYY-MM-DD:name"),
    ],
)
def test_a_bad_company_day_says_what_is_wrong(text: str, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        parse_company_days(text)


def test_company_days_read_back_as_they_are_written() -> None:
    item = CompanyDays(dt.date(2026, 3, 1), 14, "spring_campaign")
    assert str(item) == "2026-03-01+14:spring_campaign"
    assert parse_company_days(str(item)) == item
    assert str(parse_company_days("2026-07-01:launch")) == "2026-07-01:launch"


@pytest.mark.parametrize(
    ("day", "offset"),
    [
        (dt.date(2026, 1, 12), -1),  # Coming of Age Day, a Monday: the day before
        (dt.date(2026, 11, 3), -2),  # Culture Day, a Tuesday
        (dt.date(2026, 9, 23), -3),  # Autumnal Equinox Day, a Wednesday
        (dt.date(2026, 4, 29), -3),  # Showa Day, a Wednesday, inside Golden Week
        (dt.date(2026, 3, 20), 2),  # Vernal Equinox Day, a Friday: the Sunday after
        (dt.date(2026, 5, 3), 0),  # Constitution Day on a Sunday: measured against Sundays
        (dt.date(2026, 5, 1), 0),  # a Golden Week working day: against its own weekday
        (dt.date(2026, 11, 4), 0),  # an ordinary day
    ],
)
def test_a_working_day_holiday_is_measured_against_the_nearest_sunday(
    day: dt.date, offset: int
) -> None:
    assert EventCalendar().reference_offsets(day, 1)[0] == offset
    assert (day + dt.timedelta(days=offset)).weekday() in ((6,) if offset else range(7))
    assert not EventCalendar(country=None).reference_offsets(day, 1).any()


def test_reference_days_stay_inside_the_days_they_index() -> None:
    offsets = np.array([-1, 0, 3, 0, 0, 0, 2, 0])
    # day 0's Sunday is a cycle later, day 6's a cycle earlier, the others as given
    np.testing.assert_array_equal(reference_positions(offsets, 8), [6, 1, 5, 3, 4, 5, 1, 7])
    # too few days for a cycle either way: the day itself
    np.testing.assert_array_equal(reference_positions(np.array([-1, 2]), 2), [0, 1])


def test_unknown_breaks_and_countries_are_refused() -> None:
    with pytest.raises(ValueError, match="unknown breaks"):
        EventCalendar(breaks=("summer",))
    with pytest.raises(ValueError, match="unknown holiday country"):
        EventCalendar(country="XX")


# --- effects

START = dt.date(2023, 1, 2)  # a Monday


def test_the_baseline_of_an_event_day_is_its_weekday_in_the_weeks_around_it() -> None:
    y = np.tile(np.arange(1.0, 8.0), 8)  # Monday 1 ... Sunday 7, eight weeks
    codes = np.zeros(len(y), dtype=np.int64)
    codes[24] = 1  # a Thursday (4), its neighbours too: 3 weeks either side
    y_event = y.copy()
    y_event[24] = 100.0
    baseline = weekday_baseline(y_event, codes)
    assert baseline[24] == pytest.approx(4.0)
    np.testing.assert_allclose(adjusted_history(y_event, codes, {1: 25.0}), y)


def test_the_baseline_of_a_working_day_holiday_is_the_sundays_around_it() -> None:
    y = np.tile(np.arange(1.0, 8.0), 8)  # Monday 1 ... Sunday 7, eight weeks
    codes = np.zeros(len(y), dtype=np.int64)
    codes[23] = 1  # a Wednesday holiday at Sunday level
    y[23] = 7.0
    offsets = np.zeros(len(y), dtype=np.int64)
    offsets[23] = -3
    assert weekday_baseline(y, codes, 7, offsets)[23] == pytest.approx(7.0)
    assert weekday_baseline(y, codes)[23] == pytest.approx(3.0)  # its own weekday


def _holidays_at_sunday_level(start: dt.date, end: dt.date) -> list[SeriesData]:
    """Eight series whose working-day holidays have a Sunday's demand (Poisson counts)."""
    profile = np.array([10.0, 8.0, 5.0, 8.0, 10.0, 20.0, 20.0])  # Monday first
    n = (end - start).days + 1
    holiday = EventCalendar().codes(start, n) & 1 != 0  # public_holiday: a working-day holiday
    weekday = (start.weekday() + np.arange(n)) % 7
    rng = np.random.default_rng(0)
    return [
        SeriesData(
            f"s{i}", rng.poisson((1.0 + i / 4) * np.where(holiday, 20.0, profile[weekday])), start
        )
        for i in range(8)
    ]


def test_holidays_at_sunday_level_are_forecast_at_sunday_level_whatever_their_weekday() -> None:
    """Most past holidays are Mondays; demand on a holiday is a Sunday's. A Tuesday and a
    Wednesday holiday ahead get Sunday's level too, not a Monday holiday's ratio to its weekday
    applied to a quiet mid-week day."""
    end = dt.date(2026, 9, 15)  # the forecast from Wednesday 16 September
    series = _holidays_at_sunday_level(dt.date(2023, 9, 18), end)
    settings = daily_settings(horizon=28)
    pool = pool_events(series, settings)
    forecast = predict_series(series[4], train_series(series[4], settings, pool).model, settings)
    days = [end + dt.timedelta(days=i) for i in range(1, 29)]
    for day in (dt.date(2026, 9, 21), dt.date(2026, 9, 22), dt.date(2026, 9, 23)):
        assert _events_of(EventCalendar(), day) == "public_holiday"
        assert forecast.yhat[days.index(day)] == pytest.approx(2.0 * 20.0, rel=0.12), day


def test_a_horizon_without_a_sunday_still_forecasts_its_holidays_from_one() -> None:
    """Three days ahead, all holidays: their Sunday lies past the horizon, and the forecast is
    the one a 28-day horizon gives them."""
    series = _holidays_at_sunday_level(dt.date(2023, 9, 18), dt.date(2026, 9, 20))
    settings = daily_settings(horizon=28)
    model = train_series(series[4], settings, pool_events(series, settings)).model
    short = predict_series(series[4], model, settings, horizon=3)
    long = predict_series(series[4], model, settings, horizon=28)
    np.testing.assert_allclose(short.yhat, long.yhat[:3])
    assert short.yhat == pytest.approx(2.0 * 20.0, rel=0.12)


def test_a_series_that_never_saw_an_event_gets_the_pooled_effect() -> None:
    calendar = EventCalendar()
    n = 3 * 364
    codes = calendar.codes(START, n)
    year_end = (
        codes == codes[np.flatnonzero(codes)][0] * 0 + calendar.codes(dt.date(2023, 12, 29), 1)[0]
    )
    y = np.where(year_end, 0.25, 1.0) * weekly_series(n, level=50, noise=1.0)
    pool = PooledEvents.from_series([(START.toordinal(), EventDays.of(y, codes))])
    code = int(calendar.codes(dt.date(2023, 12, 29), 1)[0])
    assert pool.ratio(code) == pytest.approx(0.25, abs=0.03)
    # a model launched in spring: no year end in its history
    launched = dt.date(2025, 4, 1)
    short_codes = calendar.codes(launched, 300)
    own = EventDays.of(weekly_series(200, level=50), short_codes[:200])
    effects = shrunk_effects(own, pool, short_codes, None)
    assert effects[code] == pytest.approx(pool.ratio(code))


def test_a_long_series_keeps_its_own_effect_a_short_one_leans_on_the_pool() -> None:
    codes = np.zeros(700, dtype=np.int64)
    codes[50::35] = 1  # an event every five weeks, on varying weekdays
    big = weekly_series(700, level=200, noise=2.0) * np.where(codes == 1, 0.5, 1.0)
    pool = PooledEvents(
        {1: (np.array([0]), np.array([90.0]), np.array([100.0]), np.array([1]), np.array([1]))}
    )  # 0.9
    own_big = shrunk_effects(EventDays.of(big, codes), pool, codes, None)[1]
    assert own_big == pytest.approx(0.5, abs=0.05)
    small = np.where(codes == 1, 0.0, 1.0) * weekly_series(700, level=0.5, noise=0.0, seed=3)
    own_small = shrunk_effects(EventDays.of(small[:80], codes[:80]), pool, codes, None)[1]
    assert 0.5 < own_small < 0.9  # one event day, with 0 demand: pulled toward the pool


def test_the_pool_before_a_day_uses_only_earlier_days() -> None:
    sums = (
        np.array([10, 20]),
        np.array([5.0, 25.0]),
        np.array([10.0, 30.0]),
        np.array([1, 2]),
        np.array([1, 2]),
    )
    pool = PooledEvents({1: sums})
    assert pool.ratio(1, before_day=15) == pytest.approx(5.5 / 10.5)
    assert pool.ratio(1, before_day=10) == 1.0  # nothing before: no effect
    assert pool.ratio(1) == pytest.approx(25.5 / 30.5)
    assert pool.ratio(2) == 1.0


def test_a_fold_never_sees_its_own_test_days() -> None:
    """The effects and the adjusted window of a fold use the days before its cutoff only (one
    candidate: the last fold's errors must not change which model the folds show)."""
    settings = daily_settings(horizon=28, backtest_folds=2, candidates=("ets",))
    n = 3 * 364
    y = weekly_series(n, level=30, seed=5)
    other = y.copy()
    other[n - 28 :] *= 3.0  # the last fold's test days differ
    first = train_series(SeriesData("a", y, START), settings).backtest
    second = train_series(SeriesData("a", other, START), settings).backtest
    assert first is not None and second is not None
    np.testing.assert_array_equal(first.forecast, second.forecast)


def test_a_series_with_a_few_days_is_forecast_with_the_pooled_effects() -> None:
    settings = daily_settings()
    calendar = settings.calendar
    n = 3 * 364
    codes = calendar.codes(START, n)
    y = weekly_series(n, level=40, noise=1.0)
    year_end = calendar.describe  # names of the codes
    factor = np.array([0.25 if "year_end" in year_end(int(c)) else 1.0 for c in codes])
    long_series = SeriesData("old", y * factor, START)
    start = dt.date(2025, 12, 10)
    short = SeriesData("new", np.full(10, 20.0), start)  # ends 2025-12-19
    pool = pool_events([long_series, short], settings)
    model = train_series(short, settings, pool).model
    forecast = predict_series(short, model, settings)
    future = calendar.codes(dt.date(2025, 12, 20), 28)
    on_break = np.array(["year_end" in year_end(int(c)) for c in future])
    assert forecast.yhat[future == 0] == pytest.approx(20.0)
    assert forecast.yhat[on_break].max() < 0.5 * 20.0  # the pooled year-end effect applies


# --- intervals


def test_needed_factors_are_the_smallest_that_cover_each_error() -> None:
    errors = np.array([2.0, -3.0, 0.0, 1.0])
    low, high = np.full(4, -1.5), np.array([1.0, 1.0, 1.0, 0.0])
    np.testing.assert_allclose(needed_factors(errors, low, high), [2.0, 2.0, 0.0, np.inf])


def _calibration_sample(
    kind_days: dict[int, int], n: int = 6000, seed: int = 0
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Backtest points: steps, kinds, days, errors, needed factors of 80% unit-normal offsets.

    Ordinary errors widen with the step (sd 1 + step/28); holidays err twice as wide, breaks
    half as wide, company days like ordinary days; each kind's points fall on `kind_days` days,
    a week apart (each day its own occurrence).
    """
    rng = np.random.default_rng(seed)
    steps = rng.integers(1, 29, n)
    kinds = rng.choice([0, HOLIDAY, BREAK_DAY, COMPANY_DAY], size=n, p=[0.75, 0.12, 0.08, 0.05])
    days = rng.integers(0, 10_000, n)  # ordinary days: many
    for kind, count in kind_days.items():
        days = np.where(kinds == kind, 20_000 + 1000 * kind + 7 * rng.integers(0, count, n), days)
    spread = np.select(
        [kinds == HOLIDAY, kinds == BREAK_DAY, kinds == COMPANY_DAY],
        [2.0, 0.5, 1.0],
        1 + steps / 28,
    )
    errors = rng.normal(0.0, spread)
    low, high = np.full(n, -1.2816), np.full(n, 1.2816)  # 80% of a unit normal
    return steps, kinds, days, errors, needed_factors(errors, low, high)


def test_calibration_gives_each_kind_of_event_day_and_each_step_its_own_factor() -> None:
    steps, kinds, days, errors, needed = _calibration_sample({HOLIDAY: 12, BREAK_DAY: 8})
    calibration = calibrate_intervals(steps, kinds, days, needed, 0.8, 28)
    assert calibration.kind_factors[HOLIDAY] == pytest.approx(2.0, rel=0.12)
    assert calibration.kind_factors[BREAK_DAY] == pytest.approx(0.5, rel=0.15)
    assert calibration.step_factors[0] == pytest.approx(1 + 4 / 28, rel=0.15)
    assert calibration.step_factors[-1] == pytest.approx(1 + 25 / 28, rel=0.15)
    widen = calibration.factors(steps, kinds)
    inside = np.abs(errors) <= widen * 1.2816
    for kind in (0, HOLIDAY, BREAK_DAY):
        assert inside[kinds == kind].mean() == pytest.approx(0.8, abs=0.03), kind


def test_a_kind_with_too_few_days_takes_the_factor_of_all_event_days() -> None:
    # Company days: 300 points, but all on 2 days (one campaign seen by every series).
    steps, kinds, days, _, needed = _calibration_sample({HOLIDAY: 12, BREAK_DAY: 8, COMPANY_DAY: 2})
    calibration = calibrate_intervals(steps, kinds, days, needed, 0.8, 28)
    assert (kinds == COMPANY_DAY).sum() > 200
    assert COMPANY_DAY not in calibration.kind_factors
    assert calibration.event_factor is not None
    assert 0.5 < calibration.event_factor < 2.0  # all kinds together
    widen = calibration.factors(steps, kinds)
    by_step = np.asarray(calibration.step_factors)[steps - 1]
    weight = calibration.event_weight
    all_event_days = calibration.event_factor**weight * by_step ** (1 - weight)
    company = kinds == COMPANY_DAY
    np.testing.assert_allclose(widen[company], all_event_days[company])


def _occurrence_sample(event_days: list[list[int]], spreads: list[float], seed: int = 0):
    """Backtest points of 27 series: 28 steps of ordinary days (unit-normal errors) and the
    event days of each occurrence (consecutive calendar days), all of one kind, whose errors
    have that occurrence's spread; needed factors of 80% unit-normal offsets."""
    rng = np.random.default_rng(seed)
    ordinary_days = np.arange(1000, 1280)
    days = np.concatenate([np.repeat(ordinary_days, 27), *(np.repeat(d, 27) for d in event_days)])
    kinds = np.where(days < 1000, HOLIDAY, 0)
    steps = np.where(kinds == 0, (days - 1000) % 28 + 1, 5)
    spread = np.ones(len(days))
    start = 27 * len(ordinary_days)
    for occurrence, sd in zip(event_days, spreads, strict=True):
        spread[start : start + 27 * len(occurrence)] = sd
        start += 27 * len(occurrence)
    errors = rng.normal(0.0, spread)
    low, high = np.full(len(days), -1.2816), np.full(len(days), 1.2816)
    return steps, kinds, days, needed_factors(errors, low, high)


def test_an_event_factor_the_occurrences_disagree_on_leans_on_the_ordinary_days() -> None:
    # One four-day break forecast well (errors 0.4 wide) and two holidays forecast badly (1.6):
    # all event days together need less than ordinary days, but only because of the one break.
    occurrences = [[100, 101, 102, 103], [200], [300]]
    steps, kinds, days, needed = _occurrence_sample(occurrences, [0.4, 1.6, 1.6])
    calibration = calibrate_intervals(steps, kinds, days, needed, 0.8, 28)
    ordinary = np.asarray(calibration.step_factors)[4]
    assert calibration.event_factor < 0.85 * ordinary  # what the points alone say
    widen = calibration.factors(np.array([5]), np.array([HOLIDAY]))[0]
    assert widen == pytest.approx(ordinary, rel=0.05)


def test_an_event_factor_the_occurrences_agree_on_is_kept() -> None:
    # Six holidays on their own days, each forecast well: their factor is theirs.
    occurrences = [[100], [200], [300], [400], [500], [600]]
    steps, kinds, days, needed = _occurrence_sample(occurrences, [0.5] * 6)
    calibration = calibrate_intervals(steps, kinds, days, needed, 0.8, 28)
    assert calibration.event_factor < 0.7
    widen = calibration.factors(np.array([5]), np.array([HOLIDAY]))[0]
    assert widen == pytest.approx(calibration.event_factor, rel=0.05)


def test_a_kind_seen_once_leans_on_all_event_days_as_far_as_other_occurrences_stray() -> None:
    # A six-day break seen once, forecast well: on its own, its factor is well below the others.
    # Holidays on six days of their own: alike (0.9 each) or each its own (0.5 to 2.0). Their
    # spread is the noise of one occurrence, so the break's factor, one draw, is trusted less.
    break_days = list(range(100, 106))
    alike = _occurrence_sample(
        [break_days, *([d] for d in range(200, 800, 100))], [0.4] + [0.9] * 6
    )
    unlike = _occurrence_sample(
        [break_days, *([d] for d in range(200, 800, 100))], [0.4, 0.5, 2.0, 0.6, 1.8, 0.5, 2.0]
    )
    weights = []
    for steps, kinds, days, needed in (alike, unlike):
        kinds = np.where(np.isin(days, break_days), BREAK_DAY, kinds)
        calibration = calibrate_intervals(steps, kinds, days, needed, 0.8, 28)
        assert calibration.kind_factors[BREAK_DAY] < 0.75 * calibration.event_factor
        weights.append(calibration.kind_weights[BREAK_DAY])
    assert weights[0] > 0.6
    assert weights[1] < 0.3


def test_the_calibration_round_trips_through_json_with_its_weights() -> None:
    occurrences = [[100, 101, 102, 103], [200], [300]]
    steps, kinds, days, needed = _occurrence_sample(occurrences, [0.4, 1.6, 1.6])
    calibration = calibrate_intervals(steps, kinds, days, needed, 0.8, 28)
    assert calibration.event_weight < 1.0
    assert (
        IntervalCalibration.from_json(json.loads(json.dumps(calibration.to_json()))) == calibration
    )


def test_event_days_too_few_for_any_factor_take_the_ordinary_factor_of_their_step() -> None:
    steps, kinds, days, _, needed = _calibration_sample({HOLIDAY: 2, BREAK_DAY: 1, COMPANY_DAY: 1})
    calibration = calibrate_intervals(steps, kinds, days, needed, 0.8, 28)
    assert calibration.event_factor is None and calibration.kind_factors == {}
    one_holiday_a_step = np.array([HOLIDAY] * 28)
    widen = calibration.factors(np.arange(1, 29), one_holiday_a_step)
    np.testing.assert_array_equal(widen, calibration.step_factors)


def test_a_days_difficulty_is_its_forecast_level_relative_to_a_typical_day() -> None:
    week = np.array([8.0, 8.0, 8.0, 8.0, 8.0, 15.0, 15.0])  # a typical day: 10
    forecast = np.tile(week, 4)
    plain = difficulty(forecast, forecast, 7)
    expected = ((15.0 + LEVEL_PSEUDO_COUNT) / (10.0 + LEVEL_PSEUDO_COUNT)) ** DIFFICULTY_POWER
    assert plain[5] == pytest.approx(expected)  # a weekend day errs more than a typical day
    assert plain[0] < 1.0 < plain[5]
    # A holiday that doubles a Monday is as hard as a weekend day at the same level, and the
    # typical day is the forecast without its events.
    holiday = forecast.copy()
    holiday[7] = 15.0
    with_holiday = difficulty(holiday, forecast, 7)
    assert with_holiday[7] == pytest.approx(plain[5])
    np.testing.assert_allclose(np.delete(with_holiday, 7), np.delete(plain, 7))
    # Folds are rows; a day forecast at zero keeps some spread.
    rows = difficulty(np.stack([forecast, np.zeros(28)]), np.stack([forecast, np.zeros(28)]), 7)
    np.testing.assert_allclose(rows[0], plain)
    assert (rows[1] > 0).all()
    # Data that may be negative have no level: the events' change of the day alone.
    change = np.ones(28)
    change[7] = 15.0 / 8.0
    np.testing.assert_allclose(
        difficulty(-holiday, -forecast, 7, nonnegative=False), change**DIFFICULTY_POWER
    )


def test_intervals_hold_on_busy_and_quiet_weekdays_alike() -> None:
    """Counts whose spread grows with the weekday's level: every weekday is covered near the
    nominal level, and Predict's band is wider on the busy days."""
    rng = np.random.default_rng(3)
    profile = np.array([0.8, 0.8, 0.8, 0.8, 1.0, 1.5, 1.5])  # Monday first
    n = 2 * 364
    series = []
    for i in range(24):
        rate = (5.0 + 4.0 * i) * profile[np.arange(n) % 7]
        y = rng.poisson(rate * rng.gamma(8.0, 1 / 8.0, n)).astype(float)
        series.append(SeriesData(f"s{i}", y, START))
    settings = daily_settings(calendar=EventCalendar(country=None, breaks=()))
    run = train_all(series, settings, workers=1)
    inside, weekday = [], []
    for training in run.trainings:
        bt = training.backtest
        assert bt is not None
        inside.append(((bt.actual >= bt.lower) & (bt.actual <= bt.upper)).ravel())
        weekday.append(((bt.cutoffs[:, None] + np.arange(28)) % 7).ravel())
    inside_all, weekday_all = np.concatenate(inside), np.concatenate(weekday)
    by_weekday = [inside_all[weekday_all == d].mean() for d in range(7)]
    assert max(by_weekday) - min(by_weekday) < 0.12, by_weekday  # one band for all: 0.25
    assert 0.75 <= inside_all.mean() <= 0.85
    big = series[-1]
    forecast = predict_series(big, run.trainings[-1].model, settings, calibration=run.calibration)
    width = forecast.upper - forecast.lower
    days = (len(big.y) + np.arange(28)) % 7
    assert width[days == 6].mean() > 1.3 * width[days == 0].mean()


@pytest.mark.parametrize(
    ("day", "kind"),
    [
        (dt.date(2026, 1, 13), 0),
        (dt.date(2026, 1, 12), HOLIDAY),  # Coming of Age Day
        (dt.date(2025, 11, 23), HOLIDAY),  # on a Sunday
        (dt.date(2025, 12, 30), BREAK_DAY),
        (dt.date(2026, 1, 1), BREAK_DAY),  # New Year's Day: a holiday inside the break
        (dt.date(2026, 3, 20), COMPANY_DAY),  # a campaign on the spring equinox holiday
        (dt.date(2026, 5, 4), BREAK_DAY),  # a holiday in Golden Week, also a campaign day
    ],
)
def test_each_day_has_one_kind_of_event(day: dt.date, kind: int) -> None:
    calendar = EventCalendar(
        company_days=(
            parse_company_days("2026-03-20:launch"),
            parse_company_days("2026-05-04:launch"),
        )
    )
    assert int(calendar.kinds(calendar.codes(day, 1))[0]) == kind


def test_a_run_on_demo_data_covers_event_and_other_days_at_the_nominal_level() -> None:
    frame = demo_daily_counts(dt.date(2025, 12, 20), years=2.0, n_models=8)
    series = [
        SeriesData(sid, rows["y"].to_numpy(), rows["ds"].iloc[0])
        for sid, rows in frame.groupby("series_id")
    ]
    run = train_all(series, daily_settings(), workers=1)
    inside, events = [], []
    for training in run.trainings:
        bt = training.backtest
        assert bt is not None and bt.seasonal.any()  # two years: a fold a year back
        inside.append(((bt.actual >= bt.lower) & (bt.actual <= bt.upper)).ravel())
        events.append(bt.event_codes.ravel() != 0)
    inside_all, events_all = np.concatenate(inside), np.concatenate(events)
    assert events_all.sum() >= 20
    assert 0.72 <= inside_all[events_all].mean() <= 0.92
    assert 0.72 <= inside_all[~events_all].mean() <= 0.88
