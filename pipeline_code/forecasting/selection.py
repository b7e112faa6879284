"""One series at a time: rolling-origin backtest, choice of model, and the forecast.

The functions here are pure and their arguments and results are small picklable dataclasses, so
`parallel.map_series` can spread them over processes.

Backtest layout: `folds` consecutive, non-overlapping test windows of `horizon` steps end at the
last observation; each fold fits on at most `fit_window` observations before its cutoff. The
model with the lowest mean MASE over the folds is chosen (ties: the earlier candidate in the
settings, so cheaper and simpler models win). Prediction intervals come from the chosen model's
backtest errors (empirical quantiles, see `metrics.interval_offsets`): they are calibrated by
construction, unlike model-based intervals, which assume the model is right. The backtest's own
intervals use the errors of the *other* folds only, so its coverage is an honest estimate.

After the choice, the chosen model is fitted once more on the latest window (the same window
`fit_window` gives a fold whose cutoff is the last observation) and kept in `SeriesModel.fitted`;
`predict_series` forecasts from it without refitting.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field

import numpy as np

from pipeline_code.forecasting import candidates as cand
from pipeline_code.forecasting.frequency import ForecastSettings
from pipeline_code.forecasting.holiday_calendar import holiday_matrix
from pipeline_code.forecasting.metrics import interval_offsets, mase_scale

MIN_TRAIN = 8  # fewest observations a backtest fold trains on


@dataclass(frozen=True)
class SeriesData:
    series_id: str
    y: np.ndarray
    start: dt.date | None = None  # date of y[0]; places holidays (None: undated, no holidays)


@dataclass(frozen=True)
class SeriesBacktest:
    """Backtest of the chosen model and of the seasonal-naive benchmark, arrays (folds, horizon)."""

    cutoffs: np.ndarray  # index of each fold's first forecast step (= training length)
    actual: np.ndarray
    scales: np.ndarray  # MASE denominator of each fold's history, (folds,)
    forecast: np.ndarray
    lower: np.ndarray
    upper: np.ndarray
    benchmark_forecast: np.ndarray
    benchmark_lower: np.ndarray
    benchmark_upper: np.ndarray

    @property
    def n_folds(self) -> int:
        return len(self.cutoffs)


@dataclass(frozen=True)
class SeriesModel:
    """What predict needs for one series: the fitted chosen model and its backtest errors."""

    series_id: str
    model: str
    errors: np.ndarray  # actual - forecast of the chosen model in the backtest, (folds, horizon)
    candidate_mase: dict[str, float] = field(default_factory=dict)
    n_observations: int = 0  # length of the series the model was fitted on
    # The chosen model fitted on the latest window; None when it could not fit that window.
    fitted: cand.FittedModel | None = None


@dataclass(frozen=True)
class SeriesTraining:
    model: SeriesModel
    backtest: SeriesBacktest | None  # None when the history is too short to backtest


@dataclass(frozen=True)
class SeriesForecast:
    series_id: str
    model: str
    yhat: np.ndarray
    lower: np.ndarray
    upper: np.ndarray


# --- inputs


def _holidays(series: SeriesData, settings: ForecastSettings, length: int) -> np.ndarray | None:
    if series.start is None or not settings.holiday_country or settings.frequency != "D":
        return None
    return holiday_matrix(series.start, length, settings.holiday_country)


def _window_start(cutoff: int, settings: ForecastSettings) -> int:
    return max(0, cutoff - settings.fit_window)


def _fit_input(
    y: np.ndarray, cutoff: int, settings: ForecastSettings, holidays: np.ndarray | None
) -> cand.FitInput:
    """The fitting window ending at `cutoff`."""
    first = _window_start(cutoff, settings)
    return cand.FitInput(
        history=y[first:cutoff],
        season_length=settings.season_length,
        extra_season_lengths=settings.extra_season_lengths,
        holidays_history=None if holidays is None else holidays[first:cutoff],
    )


def _candidate_input(
    y: np.ndarray,
    cutoff: int,
    horizon: int,
    settings: ForecastSettings,
    holidays: np.ndarray | None,
) -> cand.CandidateInput:
    """The fitting window ending at `cutoff` and the regressors of the steps after it."""
    first = _window_start(cutoff, settings)
    return cand.CandidateInput(
        history=y[first:cutoff],
        horizon=horizon,
        season_length=settings.season_length,
        extra_season_lengths=settings.extra_season_lengths,
        holidays_history=None if holidays is None else holidays[first:cutoff],
        holidays_future=None if holidays is None else holidays[cutoff : cutoff + horizon],
    )


def _postprocess(forecast: np.ndarray, settings: ForecastSettings) -> np.ndarray:
    """Demand cannot be negative: clip point forecasts of counts at zero."""
    return np.maximum(forecast, 0.0) if settings.nonnegative else forecast


def fold_cutoffs(n: int, settings: ForecastSettings) -> np.ndarray:
    """Cutoffs of the folds that fit in a history of n (fewer folds for short series)."""
    min_train = max(MIN_TRAIN, 2 * min(settings.season_length, cand.MAX_STATE_SEASON))
    folds = min(settings.backtest_folds, max(0, (n - min_train) // settings.horizon))
    return np.array([n - settings.horizon * (folds - k) for k in range(folds)], dtype=int)


# --- training


def _fold_forecasts(
    series: SeriesData, settings: ForecastSettings, cutoffs: np.ndarray
) -> list[dict[str, np.ndarray]]:
    holidays = _holidays(series, settings, len(series.y))
    per_fold = []
    for cutoff in cutoffs:
        inp = _candidate_input(series.y, int(cutoff), settings.horizon, settings, holidays)
        forecasts = cand.run_candidates(settings.candidates, inp)
        per_fold.append({k: _postprocess(v, settings) for k, v in forecasts.items()})
    return per_fold


def _mean_mase(
    name: str, per_fold: list[dict[str, np.ndarray]], actual: np.ndarray, scales: np.ndarray
) -> float:
    if not all(name in fold for fold in per_fold):
        return float("inf")
    forecast = np.stack([fold[name] for fold in per_fold])
    return float(np.mean(np.mean(np.abs(actual - forecast), axis=1) / scales))


def choose_model(candidate_mase: dict[str, float], order: tuple[str, ...]) -> str:
    """Lowest backtest MASE; ties go to the candidate listed first."""
    finite = [name for name in order if np.isfinite(candidate_mase.get(name, np.inf))]
    if not finite:
        return cand.BENCHMARK
    return min(finite, key=lambda name: (candidate_mase[name], order.index(name)))


def _leave_one_fold_out_bounds(
    errors: np.ndarray, forecast: np.ndarray, level: float, fallback: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """Interval of each fold from the other folds' errors (`fallback` errors with one fold)."""
    lower = np.empty_like(forecast)
    upper = np.empty_like(forecast)
    for k in range(len(errors)):
        others = np.delete(errors, k, axis=0) if len(errors) > 1 else fallback
        low, high = interval_offsets(others, level)
        lower[k], upper[k] = forecast[k] + low, forecast[k] + high
    return lower, upper


def _bounds(
    forecast: np.ndarray, lower: np.ndarray, upper: np.ndarray, settings: ForecastSettings
) -> tuple[np.ndarray, np.ndarray]:
    """Order the bounds around the point forecast; clip them at zero for counts."""
    lower = np.minimum(lower, forecast)
    upper = np.maximum(upper, forecast)
    if settings.nonnegative:
        lower, upper = np.maximum(lower, 0.0), np.maximum(upper, 0.0)
    return lower, upper


def _in_sample_errors(y: np.ndarray, season_length: int) -> np.ndarray:
    """Seasonal differences: the errors seasonal naive would have made one cycle ahead."""
    lag = season_length if len(y) > season_length else 1
    return (y[lag:] - y[:-lag]) if len(y) > lag else np.zeros(0)


def fit_latest(
    series: SeriesData, name: str, settings: ForecastSettings
) -> cand.FittedModel | None:
    """Model `name` fitted on the latest window, as Predict forecasts it; None if it cannot fit."""
    y = np.asarray(series.y, dtype=float)
    holidays = _holidays(series, settings, len(y))
    try:
        return cand.fit_candidate(name, _fit_input(y, len(y), settings, holidays))
    except Exception:  # predict falls back to seasonal naive, as a failed backtest fit drops out
        return None


def train_series(series: SeriesData, settings: ForecastSettings) -> SeriesTraining:
    """Backtest every candidate on one series, choose the best and fit it on the latest window.

    Picklable in and out, no side effects.
    """
    y = np.asarray(series.y, dtype=float)
    cutoffs = fold_cutoffs(len(y), settings)
    if len(cutoffs) == 0:
        errors = _in_sample_errors(y, settings.season_length)[None, :]
        fitted = fit_latest(series, cand.BENCHMARK, settings)
        model = SeriesModel(series.series_id, cand.BENCHMARK, errors, {}, len(y), fitted)
        return SeriesTraining(model=model, backtest=None)

    per_fold = _fold_forecasts(series, settings, cutoffs)
    actual = np.stack([y[c : c + settings.horizon] for c in cutoffs])
    scales = np.array([mase_scale(y[:c], settings.mase_season_length) for c in cutoffs])
    names = tuple(dict.fromkeys((*settings.candidates, cand.BENCHMARK)))
    scores = {name: _mean_mase(name, per_fold, actual, scales) for name in names}
    chosen = choose_model(scores, settings.candidates)

    level = settings.interval_level
    fallback = _in_sample_errors(y[: cutoffs[0]], settings.season_length)
    bands = {}
    for name in (chosen, cand.BENCHMARK):
        forecast = np.stack([fold[name] for fold in per_fold])
        lower, upper = _leave_one_fold_out_bounds(actual - forecast, forecast, level, fallback)
        bands[name] = (forecast, *_bounds(forecast, lower, upper, settings))

    backtest = SeriesBacktest(
        cutoffs=cutoffs,
        actual=actual,
        scales=scales,
        forecast=bands[chosen][0],
        lower=bands[chosen][1],
        upper=bands[chosen][2],
        benchmark_forecast=bands[cand.BENCHMARK][0],
        benchmark_lower=bands[cand.BENCHMARK][1],
        benchmark_upper=bands[cand.BENCHMARK][2],
    )
    errors = (actual - bands[chosen][0]).astype(np.float32)
    finite_scores = {k: v for k, v in scores.items() if np.isfinite(v)}
    fitted = fit_latest(series, chosen, settings)
    model = SeriesModel(series.series_id, chosen, errors, finite_scores, len(y), fitted)
    return SeriesTraining(model=model, backtest=backtest)


# --- prediction


def _stored_forecast(
    model: SeriesModel, horizon: int, holidays_future: np.ndarray | None
) -> np.ndarray | None:
    """The stored fitted model's forecast; None when there is none or it is not usable."""
    if model.fitted is None:
        return None
    try:
        forecast = model.fitted.forecast(horizon, holidays_future)
    except Exception:  # as in the backtest, a model that cannot forecast drops out
        return None
    return forecast if cand.usable_forecast(forecast, horizon) else None


def predict_series(
    series: SeriesData,
    model: SeriesModel,
    settings: ForecastSettings,
    horizon: int | None = None,
    level: float | None = None,
) -> SeriesForecast:
    """Forecast `horizon` steps past the data from the fitted chosen model (no refit).

    `series` must be the data Train fitted on (the fit ends at its last observation). A chosen
    model that could not fit the latest window (rare: it fitted every backtest fold) or cannot
    forecast falls back to seasonal naive of that window, and the result says so in `model`.
    """
    horizon = horizon or settings.horizon
    level = settings.interval_level if level is None else level
    y = np.asarray(series.y, dtype=float)
    if model.fitted is not None and len(y) != model.n_observations:
        raise ValueError(
            f"series {series.series_id}: {len(y)} observations, but its model was fitted on "
            f"{model.n_observations}"
        )
    holidays = _holidays(series, settings, len(y) + horizon)
    future = None if holidays is None else holidays[len(y) : len(y) + horizon]
    name, forecast = model.model, _stored_forecast(model, horizon, future)
    if forecast is None:
        window = y[_window_start(len(y), settings) :]
        name = cand.BENCHMARK
        forecast = cand.seasonal_naive(window, horizon, settings.season_length)
    yhat = _postprocess(forecast, settings)
    low, high = interval_offsets(model.errors, level)
    lower, upper = _bounds(yhat, yhat + low, yhat + high, settings)
    return SeriesForecast(series.series_id, name, yhat, lower, upper)
