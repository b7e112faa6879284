"""The backtest table: one row per series, role, fold and horizon step; its summary and its
calibration.

Train builds the table of its share and keeps its `summarize`d form per bucket of series:

- `scores`, one row per series: everything TrainEvaluation reports that does not depend on the
  interval calibration (MASE, sMAPE, MAE, seasonal naive's MASE, folds, volume);
- `points`, one row per backtest point of the chosen model: the few numbers the calibration and
  the coverage need (the series' row in `scores`, horizon step, kind of event, calendar day, and
  the factor its raw interval needed to cover it, `metrics.needed_factors`).

TrainEvaluation then counts the points of every bucket into `metrics.CalibrationCounts` (a size
that does not grow with the series: the same factors for any split) and scores coverage bucket
by bucket, so no instance ever holds every series' backtest. `batch.train_all`, the benchmarks'
path, calibrates the whole table with the same counts (`backtest_calibration`) and widens the
chosen rows' intervals (`calibrated_frame`).

    series_id, model, role ("chosen" | "benchmark"), fold, fold_kind ("recent" | "seasonal"),
    event_day, event_kind, cutoff (last training day), target_date, step, y, yhat, yhat_lower,
    yhat_upper, offset_low, offset_high (chosen rows; NaN on benchmark rows), scale (the fold's
    MASE denominator), interval_level, nonnegative

Series without a start date (undated data, no calendar) have no rows.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from pipeline_code.forecasting.frequency import ForecastSettings
from pipeline_code.forecasting.metrics import (
    CalibrationCounts,
    IntervalCalibration,
    absolute_errors,
    needed_factors,
    smape_terms,
)
from pipeline_code.forecasting.selection import (
    SeriesData,
    SeriesTraining,
    calibrated_bounds,
    event_kinds,
)

COLUMNS = (
    "series_id",
    "model",
    "role",
    "fold",
    "fold_kind",
    "event_day",
    "event_kind",
    "cutoff",
    "target_date",
    "step",
    "y",
    "yhat",
    "yhat_lower",
    "yhat_upper",
    "offset_low",
    "offset_high",
    "scale",
    "interval_level",
    "nonnegative",
)


def _rows_of(
    training: SeriesTraining, series: SeriesData, settings: ForecastSettings
) -> list[pd.DataFrame]:
    """Backtest rows of one series: the chosen model's and the benchmark's."""
    bt = training.backtest
    if bt is None or series.start is None:
        return []
    folds, horizon = bt.actual.shape
    step = np.tile(np.arange(1, horizon + 1), folds)
    cutoff = np.repeat(bt.cutoffs, horizon)
    first = np.datetime64(series.start, "D")
    common = {
        "series_id": series.series_id,
        "fold": np.repeat(np.arange(folds), horizon),
        "fold_kind": np.repeat(np.where(bt.seasonal, "seasonal", "recent"), horizon),
        "event_day": bt.event_codes.ravel() != 0,
        "event_kind": event_kinds(bt.event_codes, settings).ravel().astype(np.int64),
        "cutoff": first + (cutoff - 1).astype("timedelta64[D]"),
        "target_date": first + (cutoff + step - 1).astype("timedelta64[D]"),
        "step": step,
        "y": bt.actual.ravel(),
        "scale": np.repeat(bt.scales, horizon),
        "interval_level": settings.interval_level,
        "nonnegative": settings.nonnegative,
    }
    shape = bt.actual.shape
    chosen = pd.DataFrame(
        {
            **common,
            "model": training.model.model,
            "role": "chosen",
            "yhat": bt.forecast.ravel(),
            "yhat_lower": bt.lower.ravel(),
            "yhat_upper": bt.upper.ravel(),
            "offset_low": np.broadcast_to(bt.offset_low, shape).ravel(),
            "offset_high": np.broadcast_to(bt.offset_high, shape).ravel(),
        }
    )
    benchmark = pd.DataFrame(
        {
            **common,
            "model": "snaive",
            "role": "benchmark",
            "yhat": bt.benchmark_forecast.ravel(),
            "yhat_lower": bt.benchmark_lower.ravel(),
            "yhat_upper": bt.benchmark_upper.ravel(),
            "offset_low": np.nan,
            "offset_high": np.nan,
        }
    )
    return [chosen, benchmark]


def backtest_frame(
    trainings: list[SeriesTraining], series: list[SeriesData], settings: ForecastSettings
) -> pd.DataFrame:
    """The uncalibrated backtest rows of `trainings` (in the order of `series`)."""
    parts = [
        part for tr, s in zip(trainings, series, strict=True) for part in _rows_of(tr, s, settings)
    ]
    if not parts:
        return pd.DataFrame(columns=list(COLUMNS))
    frame = pd.concat(parts, ignore_index=True)[list(COLUMNS)]
    for column in ("cutoff", "target_date"):
        frame[column] = frame[column].dt.date
    return frame


SCORE_COLUMNS = (
    "series_id", "model", "mase", "smape", "mae", "snaive_mase", "n_folds", "n_points",
    "volume", "recent_folds", "recent_mase", "seasonal_folds", "seasonal_mase", "interval_level",
)  # fmt: skip
"""`scores`: per series, the chosen model's scores (`mase`, `smape`, `mae` over its backtest
points), seasonal naive's MASE on the same folds, the mean absolute actual (`volume`: which
series are the largest), the folds and MASE per kind of fold (NaN MASE: no fold of that kind)."""
POINT_COLUMNS = ("series", "step", "event_kind", "day", "needed")
"""`points`: per chosen-model point, its series' row in `scores`, horizon step, kind of event
(0: an ordinary day), calendar day (days since 1970-01-01) and needed factor."""


@dataclass(frozen=True)
class BacktestSummary:
    scores: pd.DataFrame
    points: pd.DataFrame


def _day_ids(target_dates: pd.Series) -> np.ndarray:
    """One id per calendar day (days since 1970-01-01)."""
    days = pd.to_datetime(target_dates).to_numpy().astype("datetime64[D]")
    return days.astype(np.int64)


def _scaled_errors(rows: pd.DataFrame) -> np.ndarray:
    with np.errstate(divide="ignore", invalid="ignore"):  # a zero scale shows as inf / NaN
        return absolute_errors(rows["y"], rows["yhat"]) / rows["scale"].to_numpy(dtype=float)


def _fold_kind_scores(chosen: pd.DataFrame, kind: str, index: pd.Index) -> pd.DataFrame:
    rows = chosen[chosen["fold_kind"] == kind]
    grouped = pd.DataFrame(
        {"series_id": rows["series_id"], "fold": rows["fold"], "mase": _scaled_errors(rows)}
    ).groupby("series_id", sort=True)
    return pd.DataFrame(
        {
            f"{kind}_folds": grouped["fold"].nunique().reindex(index, fill_value=0),
            f"{kind}_mase": grouped["mase"].mean().reindex(index),
        }
    )


def _mean_or_nan(grouped: pd.api.typing.DataFrameGroupBy, columns: list[str]) -> pd.DataFrame:
    """Means per group; NaN where a group has a missing or infinite value (a bad forecast or
    scale must show, not be skipped)."""
    means = grouped[columns].mean()
    finite = grouped[columns].agg(lambda v: bool(np.isfinite(v.to_numpy(dtype=float)).all()))
    return means.where(finite.astype(bool))


def series_scores(frame: pd.DataFrame) -> pd.DataFrame:
    """`SCORE_COLUMNS`, one row per series of the table, sorted by series_id."""
    chosen = frame[frame["role"] == "chosen"]
    benchmark = frame[frame["role"] == "benchmark"]
    terms = pd.DataFrame(
        {
            "series_id": chosen["series_id"],
            "model": chosen["model"],
            "fold": chosen["fold"],
            "mase": _scaled_errors(chosen),
            "smape": smape_terms(chosen["y"], chosen["yhat"]),
            "mae": absolute_errors(chosen["y"], chosen["yhat"]),
            "volume": np.abs(chosen["y"].to_numpy(dtype=float)),
            "interval_level": chosen["interval_level"],
        }
    )
    grouped = terms.groupby("series_id", sort=True)
    scores = _mean_or_nan(grouped, ["mase", "smape", "mae", "volume"])
    scores["model"] = grouped["model"].first()
    scores["interval_level"] = grouped["interval_level"].first().astype(float)
    scores["n_folds"] = grouped["fold"].nunique().astype("int64")
    scores["n_points"] = grouped.size().astype("int64")
    benchmark_mase = pd.DataFrame(
        {"series_id": benchmark["series_id"], "mase": _scaled_errors(benchmark)}
    ).groupby("series_id")
    scores["snaive_mase"] = _mean_or_nan(benchmark_mase, ["mase"])["mase"]
    for kind in ("recent", "seasonal"):
        scores = scores.join(_fold_kind_scores(chosen, kind, scores.index))
    return scores.reset_index()[list(SCORE_COLUMNS)]


def calibration_points(frame: pd.DataFrame, series_ids: pd.Series) -> pd.DataFrame:
    """`POINT_COLUMNS`, one row per chosen-model point of the table; `series` is the position of
    the point's series in `series_ids` (the order of `series_scores`)."""
    chosen = frame[frame["role"] == "chosen"]
    y = chosen["y"].to_numpy(dtype=float)
    needed = needed_factors(
        y - chosen["yhat"].to_numpy(dtype=float),
        chosen["offset_low"].to_numpy(dtype=float),
        chosen["offset_high"].to_numpy(dtype=float),
    )
    # Counts' intervals stop at zero: no factor covers a negative actual there.
    needed = np.where(chosen["nonnegative"].to_numpy(dtype=bool) & (y < 0), np.inf, needed)
    rows = pd.Series(np.arange(len(series_ids), dtype=np.int32), index=series_ids.to_numpy())
    return pd.DataFrame(
        {
            "series": rows.reindex(chosen["series_id"]).to_numpy(dtype=np.int32),
            "step": chosen["step"].to_numpy(dtype=np.int16),
            "event_kind": chosen["event_kind"].to_numpy(dtype=np.int16),
            "day": _day_ids(chosen["target_date"]).astype(np.int32),
            "needed": needed,
        }
    )


def summarize(frame: pd.DataFrame) -> BacktestSummary:
    """The table's per-series scores and calibration points (empty tables for no rows)."""
    if frame.empty:
        return BacktestSummary(
            pd.DataFrame(columns=list(SCORE_COLUMNS)), pd.DataFrame(columns=list(POINT_COLUMNS))
        )
    scores = series_scores(frame)
    return BacktestSummary(scores, calibration_points(frame, scores["series_id"]))


def count_points(counts: CalibrationCounts, points: pd.DataFrame, level: float) -> None:
    """Add `points` to the calibration's counts."""
    counts.add(
        points["step"].to_numpy(dtype=np.int64),
        points["event_kind"].to_numpy(dtype=np.int64),
        points["day"].to_numpy(dtype=np.int64),
        points["needed"].to_numpy(dtype=float),
        level,
    )


def covered(points: pd.DataFrame, calibration: IntervalCalibration) -> np.ndarray:
    """Per point, whether its calibrated interval holds the actual: exactly when the factor
    its raw interval needed is at most the one the calibration gives its class."""
    widen = calibration.factors(
        points["step"].to_numpy(dtype=np.int64), points["event_kind"].to_numpy(dtype=np.int64)
    )
    return points["needed"].to_numpy(dtype=float) <= widen


def backtest_calibration(frame: pd.DataFrame) -> IntervalCalibration:
    """Factors that make the chosen model's intervals cover the nominal level per horizon step
    and per kind of event day, over every series' backtest points (`metrics.CalibrationCounts`;
    an event's day counts once however many series saw it)."""
    chosen = frame[frame["role"] == "chosen"]
    if chosen.empty:
        return IntervalCalibration()
    series_ids = pd.Series(sorted(pd.unique(chosen["series_id"])))
    counts = CalibrationCounts()
    level = float(chosen["interval_level"].iloc[0])
    count_points(counts, calibration_points(frame, series_ids), level)
    return counts.calibration()


def calibrated_frame(frame: pd.DataFrame, calibration: IntervalCalibration) -> pd.DataFrame:
    """The backtest with the chosen rows' intervals widened by `calibration`."""
    out = frame.copy()
    chosen = (out["role"] == "chosen").to_numpy()
    if not chosen.any():
        return out
    rows = out.loc[chosen]
    widen = calibration.factors(
        rows["step"].to_numpy(dtype=np.int64), rows["event_kind"].to_numpy(dtype=np.int64)
    )
    lower, upper = calibrated_bounds(
        rows["yhat"].to_numpy(dtype=float),
        rows["offset_low"].to_numpy(dtype=float),
        rows["offset_high"].to_numpy(dtype=float),
        widen,
        bool(rows["nonnegative"].iloc[0]),
    )
    out.loc[chosen, "yhat_lower"] = lower
    out.loc[chosen, "yhat_upper"] = upper
    return out
