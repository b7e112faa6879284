from __future__ import annotations

import datetime as dt
from dataclasses import replace

import numpy as np
import pandas as pd
import pytest
from statsmodels.tsa.forecasting.theta import ThetaModel
from statsmodels.tsa.holtwinters import ExponentialSmoothing

from pipeline_code.forecasting import (
    SeriesData,
    daily_settings,
    infer_frequency,
    map_series,
    predict_series,
    settings_for_frequency,
    train_series,
)
from pipeline_code.forecasting import candidates as cand
from pipeline_code.forecasting.event_calendar import NO_EVENTS, EventCalendar
from pipeline_code.forecasting.metrics import (
    coverage,
    interval_offsets,
    mase_scale,
    smape,
)
from pipeline_code.forecasting.selection import choose_model, fold_cutoffs
from pipeline_code.forecasting.series_table import SeriesTableError, series_from_frame
from tests.unit.forecast_data import WEEKLY_PROFILE, refit_forecast, series_frame, weekly_series

START = dt.date(2024, 1, 1)


# --- metrics


def test_coverage_counts_actuals_inside_bounds_inclusive() -> None:
    actual = np.array([1.0, 2.0, 3.0, 4.0])
    lower = np.array([0.0, 2.0, 3.5, 0.0])
    upper = np.array([1.0, 3.0, 4.0, 3.0])
    assert coverage(actual, lower, upper) == 0.5


def test_smape_scores_zero_over_zero_as_perfect_and_matches_definition() -> None:
    assert smape(np.array([0.0, 100.0]), np.array([0.0, 110.0])) == pytest.approx(
        (0.0 + 200 * 10 / 210) / 2
    )


def test_mase_scale_is_seasonal_difference_mae_and_never_zero() -> None:
    assert mase_scale(np.array([1.0, 2.0, 1.0, 4.0]), 2) == pytest.approx(1.0)  # |0|, |2|
    assert mase_scale(np.zeros(30), 7) == 1.0
    assert mase_scale(np.full(30, 5.0), 7) == 5.0


def test_interval_offsets_are_empirical_quantiles_widened_for_few_errors() -> None:
    errors = np.arange(1.0, 101.0)  # 1..100
    low, high = interval_offsets(errors, 0.8)
    assert 9.0 <= low <= 11.0 and 90.0 <= high <= 92.0
    few_low, few_high = interval_offsets(np.arange(1.0, 11.0), 0.8)
    assert few_high == 10.0 and few_low == 1.0  # 10 errors: the conformal level reaches the max
    assert interval_offsets(np.array([]), 0.8) == (0.0, 0.0)


# --- frequency


def test_settings_follow_the_frequency() -> None:
    weekly = settings_for_frequency("W")
    assert (weekly.season_length, weekly.mase_season_length, weekly.horizon) == (52, 1, 13)
    hourly = settings_for_frequency("H")
    assert (hourly.season_length, hourly.extra_season_lengths) == (24, (168,))
    assert settings_for_frequency("D", horizon=14).horizon == 14
    with pytest.raises(ValueError):
        settings_for_frequency("Q")


def test_infer_frequency_from_timestamps() -> None:
    assert infer_frequency(pd.Series(pd.date_range("2024-01-01", periods=50, freq="h"))) == "H"
    assert infer_frequency(pd.Series(pd.date_range("2024-01-01", periods=50, freq="D"))) == "D"
    assert infer_frequency(pd.Series(pd.date_range("2024-01-01", periods=50, freq="W"))) == "W"


# --- candidates and selection


def test_ets_and_theta_beat_seasonal_naive_on_a_noisy_weekly_series() -> None:
    y = weekly_series(400, noise=4.0, seed=3)
    trained = train_series(SeriesData("a", y, START), daily_settings(backtest_folds=3))
    scores = trained.model.candidate_mase
    assert scores["ets"] < scores["snaive"]
    assert scores["theta"] < scores["snaive"]
    assert scores["ets_damped"] < scores["snaive"]


def test_selection_picks_the_lowest_backtest_mase() -> None:
    y = weekly_series(300, seed=5, drift=0.5)
    settings = daily_settings()
    trained = train_series(SeriesData("a", y, START), settings)
    scores = {k: v for k, v in trained.model.candidate_mase.items() if k in settings.candidates}
    assert trained.model.model == min(scores, key=scores.get)
    assert set(scores) == set(settings.candidates)


def test_choose_model_breaks_ties_by_candidate_order_and_skips_failures() -> None:
    order = ("snaive", "ets", "theta")
    assert choose_model({"snaive": 1.0, "ets": 0.5, "theta": 0.5}, order) == "ets"
    assert choose_model({"snaive": 1.0, "ets": np.inf}, order) == "snaive"
    assert choose_model({}, order) == cand.BENCHMARK


def test_folds_end_at_the_last_observation_and_shrink_for_short_series() -> None:
    settings = daily_settings(horizon=28, backtest_folds=3)
    assert fold_cutoffs(400, settings).tolist() == [316, 344, 372]
    assert fold_cutoffs(60, settings).tolist() == [32]  # room for one fold only
    assert fold_cutoffs(30, settings).tolist() == []


def test_a_combination_averages_its_members_computed_even_when_not_candidates() -> None:
    inp = cand.CandidateInput(weekly_series(100), horizon=7, season_length=7)
    forecasts = cand.run_candidates(("snaive", "comb"), inp)
    assert {"snaive", "comb", "ets", "ets_damped", "theta"} <= set(forecasts)
    comb = np.mean([forecasts["ets"], forecasts["ets_damped"], forecasts["theta"]], axis=0)
    np.testing.assert_allclose(forecasts["comb"], comb)


def test_every_candidate_forecasts_through_a_known_event() -> None:
    """Demand on a working-day holiday is half a Sunday's; each candidate's forecast of one is
    about that, whatever the holiday's weekday."""
    n = 364 * 2
    calendar = EventCalendar(breaks=())
    holiday = calendar.codes(START, n + 28) == 1  # public holidays on working days
    half_a_sunday = 0.5 * 40.0 * WEEKLY_PROFILE[6]  # weekly_series' level is 40
    y = np.where(holiday, half_a_sunday, weekly_series(n + 28, noise=1.0, seed=1))
    series = SeriesData("a", y[:n], START)
    day = int(np.flatnonzero(holiday[n:])[0])
    for name in daily_settings().candidates:
        settings = daily_settings(candidates=(name,), calendar=calendar)
        model = train_series(series, settings).model
        assert model.effects[1] == pytest.approx(0.5, abs=0.08), name
        forecast = predict_series(series, model, settings, horizon=28)
        assert forecast.yhat[day] == pytest.approx(y[n + day], rel=0.25), name


def test_backtest_interval_coverage_is_near_nominal_on_stationary_noise() -> None:
    rng = np.random.default_rng(7)
    settings = daily_settings(candidates=("snaive", "ets"), calendar=NO_EVENTS)
    inside = []
    for i in range(25):
        y = 50.0 + rng.normal(0.0, 5.0, 240)
        bt = train_series(SeriesData(f"s{i}", y, START), settings).backtest
        assert bt is not None
        inside.append((bt.actual >= bt.lower) & (bt.actual <= bt.upper))
    assert 0.72 <= float(np.mean(inside)) <= 0.88


def test_forecast_bounds_are_ordered_and_nonnegative_for_sparse_counts() -> None:
    rng = np.random.default_rng(2)
    y = rng.poisson(0.3, 200).astype(float)
    settings = daily_settings()
    model = train_series(SeriesData("a", y, START), settings).model
    forecast = predict_series(SeriesData("a", y, START), model, settings, level=0.9)
    assert len(forecast.yhat) == 28
    assert (forecast.yhat >= 0).all() and (forecast.lower >= 0).all()
    assert (forecast.lower <= forecast.yhat).all() and (forecast.yhat <= forecast.upper).all()


def test_wider_level_gives_wider_intervals() -> None:
    y = weekly_series(200, seed=4)
    settings = daily_settings()
    model = train_series(SeriesData("a", y, START), settings).model
    narrow = predict_series(SeriesData("a", y, START), model, settings, level=0.5)
    wide = predict_series(SeriesData("a", y, START), model, settings, level=0.95)
    assert (wide.upper - wide.lower >= narrow.upper - narrow.lower).all()
    assert (wide.upper - wide.lower > narrow.upper - narrow.lower).any()


def test_too_short_series_gets_seasonal_naive_without_backtest() -> None:
    y = weekly_series(20)
    trained = train_series(SeriesData("a", y, START), daily_settings())
    assert trained.backtest is None and trained.model.model == "snaive"
    forecast = predict_series(SeriesData("a", y, START), trained.model, daily_settings())
    np.testing.assert_allclose(forecast.yhat[:7], y[-7:])


def test_weekly_and_hourly_profiles_run_end_to_end() -> None:
    rng = np.random.default_rng(0)
    t = np.arange(24 * 7 * 5)
    hourly = 100 + 30 * np.sin(2 * np.pi * t / 24) + 10 * (t % 168 < 24) + rng.normal(0, 3, len(t))
    settings = settings_for_frequency("H", backtest_folds=2)
    trained = train_series(SeriesData("h", hourly), settings)
    assert (
        trained.model.candidate_mase[trained.model.model] < trained.model.candidate_mase["snaive"]
    )
    weekly = 1000 + np.cumsum(rng.normal(0, 10, 300))
    trained = train_series(SeriesData("w", weekly), settings_for_frequency("W"))
    assert trained.backtest is not None and trained.backtest.actual.shape == (3, 13)


def test_map_series_in_processes_keeps_order() -> None:
    assert map_series(abs, [-3, 2, -1, 0, 5], workers=2) == [3, 2, 1, 0, 5]
    assert map_series(abs, [-1], workers=0) == [1]


# --- series table


def _table() -> pd.DataFrame:
    return series_frame(2, 30, dt.date(2025, 1, 31))


def test_series_table_splits_sorted_series_with_their_start_day() -> None:
    series = series_from_frame(_table().sample(frac=1.0, random_state=0), dt.date(2025, 1, 31))
    assert [s.series_id for s in series] == ["car00", "car01"]
    assert series[0].start == dt.date(2025, 1, 2) and len(series[0].y) == 30
    expected = _table().query("series_id == 'car01'")["y"].to_numpy()
    np.testing.assert_allclose(series[1].y, expected)


@pytest.mark.parametrize(
    ("breakage", "message"),
    [
        (lambda f: f.drop(index=5), "gaps"),
        (lambda f: pd.concat([f, f.iloc[[3]]]), "more than one row"),
        (lambda f: f.assign(y=f["y"].where(f.index != 4)), "missing"),
        (lambda f: f.drop(columns="y"), "lacks columns"),
        (lambda f: f.iloc[0:0], "empty"),
    ],
)
def test_series_table_rejects_contract_breaks(breakage, message: str) -> None:
    with pytest.raises(SeriesTableError, match=message):
        series_from_frame(breakage(_table()), dt.date(2025, 1, 31))


def test_series_table_rejects_rows_after_the_execution_date() -> None:
    with pytest.raises(SeriesTableError, match="after the execution date"):
        series_from_frame(_table(), dt.date(2025, 1, 30))


def test_holt_winters_forecast_from_states_continues_the_cycle_and_damped_trend() -> None:
    y = weekly_series(200, noise=0.0)  # an exact weekly cycle
    fitted = cand.CANDIDATES["ets"](cand.FitInput(y, season_length=7))
    np.testing.assert_allclose(fitted.forecast(21), y[-7:].tolist() * 3, atol=0.5)
    trend = 10.0 + 0.5 * np.arange(100.0)
    forecast = cand.CANDIDATES["ets_damped"](cand.FitInput(trend, season_length=1)).forecast(10)
    steps = np.diff(np.r_[trend[-1], forecast])
    assert (steps > 0).all() and (np.diff(steps) <= 1e-9).all()  # rising, never faster


# --- fitted models


def _profile_inputs() -> list[tuple[str, cand.FitInput]]:
    """A fitting window per profile (daily with a holiday dip, weekly, hourly)."""
    rng = np.random.default_rng(11)
    n = 364
    holidays = EventCalendar().codes(START, n) != 0
    daily = weekly_series(n, seed=2, drift=0.3) * np.where(holidays, 0.6, 1.0)
    weeks = np.arange(300)
    weekly = 500 + 80 * np.sin(2 * np.pi * weeks / 52) + np.cumsum(rng.normal(0, 5, 300))
    hours = np.arange(24 * 7 * 4)
    hourly = 100 + 30 * np.sin(2 * np.pi * hours / 24) + 15 * (hours % 168 < 24)
    hourly = hourly + rng.normal(0, 3, len(hours))
    return [
        ("daily", cand.FitInput(daily, 7)),
        ("weekly", cand.FitInput(weekly, 52)),
        ("hourly", cand.FitInput(hourly, 24, (168,))),
    ]


PROFILE_INPUTS = _profile_inputs()


def _fold(data: cand.FitInput, horizon: int) -> cand.CandidateInput:
    return cand.CandidateInput(data.history, horizon, data.season_length, data.extra_season_lengths)


@pytest.mark.parametrize(("profile", "data"), PROFILE_INPUTS, ids=lambda p: p)
def test_every_fitted_model_forecasts_what_the_backtest_forecasts(
    profile: str, data: cand.FitInput
) -> None:
    horizon = {"daily": 28, "weekly": 13, "hourly": 48}[profile]
    backtest = cand.run_candidates(cand.known_candidates(), _fold(data, horizon))
    for name, expected in backtest.items():
        fitted = cand.fit_candidate(name, data)
        np.testing.assert_array_equal(fitted.forecast(horizon), expected, err_msg=name)
    assert set(backtest) == _applicable(profile)


def _applicable(profile: str) -> set[str]:
    """The candidates that fit each profile's series."""
    return {
        "daily": {"snaive", "naive", "ets", "ets_damped", "theta", "comb"},
        "weekly": {"snaive", "naive", "ets", "ets_damped", "theta", "comb"},
        "hourly": set(cand.known_candidates()),
    }[profile]


@pytest.mark.parametrize(("profile", "data"), PROFILE_INPUTS, ids=lambda p: p)
def test_a_longer_forecast_starts_with_the_shorter_one(profile: str, data: cand.FitInput) -> None:
    for name in sorted(_applicable(profile)):
        fitted = cand.fit_candidate(name, data)
        short, long = fitted.forecast(5), fitted.forecast(75)
        assert long.shape == (75,) and np.isfinite(long).all(), name
        np.testing.assert_allclose(long[:5], short, rtol=1e-12, atol=1e-12, err_msg=name)


@pytest.mark.parametrize("seasonal", ["multiplicative", "additive", "none"])
def test_theta_closed_form_equals_statsmodels_forecast(seasonal: str) -> None:
    rng = np.random.default_rng(3)
    t = np.arange(150)
    cycle = {"multiplicative": 20.0, "additive": 20.0, "none": 0.0}[seasonal]
    y = 100 + 0.3 * t + cycle * np.sin(2 * np.pi * t / 7) + rng.normal(0, 2, len(t))
    if seasonal == "additive":
        y = y - 150  # negative values: statsmodels switches to an additive decomposition
    fitted = cand.CANDIDATES["theta"](cand.FitInput(y, 7))
    with cand.quiet_fitting():
        results = ThetaModel(y, period=7, deseasonalize=True).fit()
    for horizon in (1, 7, 30):
        np.testing.assert_allclose(
            fitted.forecast(horizon), results.forecast(horizon), rtol=1e-13, atol=1e-10
        )


def test_holt_winters_final_states_give_the_textbook_forecast() -> None:
    y = weekly_series(200, seed=8, drift=0.5)
    with cand.quiet_fitting():
        results = ExponentialSmoothing(
            y,
            trend="add",
            damped_trend=True,
            seasonal="add",
            seasonal_periods=7,
            initialization_method="heuristic",
        ).fit(use_brute=False)
    fitted = cand.HoltWinters.from_results(results)
    phi = results.params["damping_trend"]
    steps = np.arange(1, 31)
    expected = (
        results.level[-1]
        + results.trend[-1] * np.cumsum(phi**steps)
        + np.asarray(results.season)[len(results.season) - 7 + (steps - 1) % 7]
    )
    np.testing.assert_allclose(fitted.forecast(30), expected, rtol=1e-13)
    assert set(fitted.smoothing) == {"smoothing_level", "smoothing_trend", "smoothing_seasonal"}


def test_a_removed_long_cycle_continues_beyond_one_cycle() -> None:
    weekly = PROFILE_INPUTS[1][1].history
    adjustment = cand.seasonally_adjust(weekly, 52)
    seasonal = weekly / adjustment.adjusted  # multiplicative: the decomposed factors
    future = adjustment.cycle.future(130)
    n = len(weekly)
    np.testing.assert_allclose(future, seasonal[n - 52 + np.arange(130) % 52])
    np.testing.assert_allclose(future[:52], future[52:104])


@pytest.mark.parametrize(("profile", "data"), PROFILE_INPUTS, ids=lambda p: p)
def test_train_stores_the_fitted_choice_and_predict_equals_a_refit(
    profile: str, data: cand.FitInput
) -> None:
    settings = settings_for_frequency(profile[0].upper(), backtest_folds=2)
    series = SeriesData("s", data.history, START if profile == "daily" else None)
    model = train_series(series, settings).model
    assert model.fitted is not None and model.n_observations == len(data.history)
    for horizon in (settings.horizon, settings.horizon + 9, 3):
        forecast = predict_series(series, model, settings, horizon=horizon)
        assert forecast.model == model.model
        expected = refit_forecast(
            series.y, series.start, model.model, settings, horizon, model.effects, model.reference
        )
        np.testing.assert_array_equal(forecast.yhat, expected)


def test_every_candidate_as_the_choice_predicts_like_a_refit() -> None:
    daily = PROFILE_INPUTS[0][1].history
    series = SeriesData("s", daily, START)
    for name in daily_settings().candidates:
        settings = daily_settings(candidates=(name,), backtest_folds=1)
        model = train_series(series, settings).model
        assert model.model == name and model.fitted is not None
        forecast = predict_series(series, model, settings, horizon=40)
        expected = refit_forecast(
            series.y, START, name, settings, 40, model.effects, model.reference
        )
        np.testing.assert_array_equal(forecast.yhat, expected)


def test_predict_falls_back_to_seasonal_naive_when_the_choice_could_not_fit() -> None:
    y = weekly_series(200, seed=1)
    settings = daily_settings(calendar=NO_EVENTS)
    model = replace(train_series(SeriesData("a", y, START), settings).model, fitted=None)
    forecast = predict_series(SeriesData("a", y, START), model, settings, horizon=10)
    assert forecast.model == "snaive"
    np.testing.assert_array_equal(forecast.yhat, np.resize(y[-7:], 10))


def test_predict_refuses_data_other_than_the_fitted_series() -> None:
    y = weekly_series(200, seed=1)
    model = train_series(SeriesData("a", y, START), daily_settings()).model
    with pytest.raises(ValueError, match="fitted on 200"):
        predict_series(SeriesData("a", y[:-1], START), model, daily_settings())
