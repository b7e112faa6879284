"""The total across series: its backtest from additive partial sums, its interval and scores.

The total's point forecast is the sum of the series' forecasts, so it equals what a BI tool sums.
Its interval cannot be a sum of the series' intervals (their errors are neither independent nor
perfectly correlated: a holiday or a campaign moves them together), so it is fitted on the
total's own backtest errors.

Sums add, whatever the split: Train writes per bucket of series the partial sums of its
backtest (`backtest_parts`, one row per fold cutoff and horizon step: the chosen models' and
seasonal naive's forecasts and the actuals, summed over the bucket's backtested series) and of
its history (`history_parts`, one row per day). TrainEvaluation adds every bucket's parts
(`add_parts`, in bucket order, so the floating-point sums are the same for any instance count)
and fits the total (`fit_total`):

- Which points: a fold cutoff is one backtest fold of the total. A point enters when at least
  half of the most series seen at any point were forecast at it; a point of a few series with an
  odd end or a short history is a partial sum, not the total.
- The interval: the total's relative errors `(actual - forecast) / forecast` of those points,
  their split-conformal quantiles at the interval level (`metrics.interval_offsets`), one pair
  for ordinary days and one for calendar event days when the backtest holds at least
  `MIN_EVENT_DAYS` of them (else every point gives both). Relative, because the total's errors
  grow with its level (a quiet break day errs by less than a busy Monday in absolute terms), and
  one pair per class, because the total has one backtest point per day: four folds of 28 days
  are too few to tell step 1 from step 28.
- Scores: MASE of the summed forecasts and of seasonal naive's sums, each fold scaled by the
  in-sample seasonal MAE of the total's own history before its cutoff (the total's scale, not a
  mean of the series' scales), sMAPE, MAE and the in-sample coverage of the fitted interval.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from pipeline_code.forecasting.metrics import (
    MIN_CALIBRATION_POINTS,
    MIN_EVENT_DAYS,
    absolute_errors,
    interval_offsets,
    mase_scale,
    smape_terms,
)
from pipeline_code.forecasting.selection import SeriesData

MODEL_NAME = "sum_of_series"
"""`model` of the total's rows: the sum of each series' chosen model."""
BACKTEST_KEYS = ("cutoff", "step", "target_date", "event_kind")
BACKTEST_SUMS = ("y", "yhat", "snaive", "n_series")
BACKTEST_PART_COLUMNS = (*BACKTEST_KEYS, *BACKTEST_SUMS)
"""A bucket's backtest partial sums: per fold cutoff (last training day) and horizon step, the
target day and its event kind (the same for every series: one calendar), and the sums over the
bucket's series of the actuals, the chosen forecasts, seasonal naive's forecasts and the count
of series."""
HISTORY_PART_COLUMNS = ("ds", "y", "n_series", "season_length")
"""A bucket's history partial sums: per day, the series' values summed and counted; the MASE
season length (the same on every row) so that the total is scaled as the series are."""
LEVEL_FLOOR = 1.0
"""A forecast below one unit is divided by one: relative errors of an empty total stay finite."""


def backtest_parts(rows: pd.DataFrame) -> pd.DataFrame:
    """The partial sums of a bucket's backtest table (`backtest_table.backtest_frame`)."""
    if rows.empty:
        return pd.DataFrame(columns=list(BACKTEST_PART_COLUMNS))
    keys = list(BACKTEST_KEYS)
    chosen = rows[rows["role"] == "chosen"].set_index(["series_id", *keys])
    benchmark = rows[rows["role"] == "benchmark"].set_index(["series_id", *keys])
    points = pd.DataFrame(
        {
            "y": chosen["y"].astype(float),
            "yhat": chosen["yhat"].astype(float),
            "snaive": benchmark["yhat"].reindex(chosen.index).astype(float),
            "n_series": 1,
        }
    ).reset_index()
    return add_parts([points], keys)


def history_parts(series: list[SeriesData], season_length: int) -> pd.DataFrame:
    """The partial sums of a bucket's series per day (dated series only)."""
    frames = [
        pd.DataFrame(
            {
                "ds": pd.date_range(s.start, periods=len(s.y), freq="D").date,
                "y": np.asarray(s.y, dtype=float),
                "n_series": 1,
            }
        )
        for s in series
        if s.start is not None and len(s.y)
    ]
    if not frames:
        return pd.DataFrame(columns=list(HISTORY_PART_COLUMNS))
    summed = add_parts(frames, ["ds"])
    return summed.assign(season_length=int(season_length))[list(HISTORY_PART_COLUMNS)]


def add_parts(parts: list[pd.DataFrame], keys: list[str]) -> pd.DataFrame:
    """Parts summed per key, sorted by key; rows are added in the order given (the bucket
    order), so the result does not depend on which instance wrote which part."""
    present = [part for part in parts if len(part)]
    if not present:
        return parts[0].iloc[0:0] if parts else pd.DataFrame()
    frame = pd.concat(present, ignore_index=True)
    values = [c for c in frame.columns if c not in keys and c != "season_length"]
    summed = frame.groupby(keys, sort=True)[values].sum().reset_index()
    summed["n_series"] = summed["n_series"].astype("int64")
    if "season_length" in frame.columns:
        summed["season_length"] = int(frame["season_length"].max())
    return summed


@dataclass(frozen=True)
class TotalInterval:
    """Relative offsets (low <= 0 <= high) of the total's interval, per class of day."""

    level: float
    ordinary: tuple[float, float]
    event: tuple[float, float]
    points: int = 0
    event_days: int = 0

    def bounds(self, yhat: np.ndarray, event_day: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Lower and upper bounds around the summed forecasts (clipped at zero: counts)."""
        yhat = np.asarray(yhat, dtype=float)
        event_day = np.asarray(event_day, dtype=bool)
        low = np.where(event_day, self.event[0], self.ordinary[0])
        high = np.where(event_day, self.event[1], self.ordinary[1])
        level = np.maximum(yhat, 0.0)
        lower = np.clip(yhat + level * low, 0.0, yhat)
        upper = np.maximum(yhat + level * high, yhat)
        return lower, upper

    def to_json(self) -> dict[str, Any]:
        return {
            "level": self.level,
            "ordinary": list(self.ordinary),
            "event": list(self.event),
            "points": self.points,
            "event_days": self.event_days,
        }

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> TotalInterval:
        low, high = (float(v) for v in data["ordinary"])
        event_low, event_high = (float(v) for v in data["event"])
        return cls(
            level=float(data["level"]),
            ordinary=(low, high),
            event=(event_low, event_high),
            points=int(data.get("points", 0)),
            event_days=int(data.get("event_days", 0)),
        )


@dataclass(frozen=True)
class TotalFit:
    interval: TotalInterval
    scores: dict[str, float | int]  # mase, snaive_mase, smape, mae, coverage, n_folds, n_points
    backtest: pd.DataFrame  # the points used, with lower and upper


def total_points(backtest: pd.DataFrame) -> pd.DataFrame:
    """The points that are the total (see the module docstring), in key order."""
    if backtest.empty:
        return backtest
    enough = backtest["n_series"] * 2 >= int(backtest["n_series"].max())
    return backtest[enough].reset_index(drop=True)


def relative_errors(points: pd.DataFrame) -> np.ndarray:
    forecast = points["yhat"].to_numpy(dtype=float)
    return (points["y"].to_numpy(dtype=float) - forecast) / np.maximum(forecast, LEVEL_FLOOR)


def _offsets(errors: np.ndarray, level: float) -> tuple[float, float]:
    low, high = interval_offsets(errors, level)
    return min(low, 0.0), max(high, 0.0)


def fit_interval(points: pd.DataFrame, level: float) -> TotalInterval:
    """The relative offsets of ordinary and event days from the total's backtest points."""
    errors = relative_errors(points)
    event_day = points["event_kind"].to_numpy(dtype=np.int64) != 0
    every = _offsets(errors, level)
    ordinary = (
        _offsets(errors[~event_day], level)
        if (~event_day).sum() >= MIN_CALIBRATION_POINTS
        else every
    )
    event_days = int(pd.unique(points.loc[event_day, "target_date"]).size)
    event = _offsets(errors[event_day], level) if event_days >= MIN_EVENT_DAYS else every
    return TotalInterval(float(level), ordinary, event, len(points), event_days)


def _fold_mase(points: pd.DataFrame, forecast: str, scales: pd.Series) -> float:
    errors = absolute_errors(points["y"], points[forecast])
    per_fold = pd.Series(errors).groupby(points["cutoff"].to_numpy()).mean()
    return float((per_fold / scales.reindex(per_fold.index)).mean())


def fold_scales(points: pd.DataFrame, history: pd.DataFrame) -> pd.Series:
    """Per fold cutoff, the in-sample seasonal MAE of the total's history up to it."""
    season = int(history["season_length"].iloc[0]) if len(history) else 7
    days = pd.to_datetime(history["ds"])
    values = history["y"].to_numpy(dtype=float)
    scales = {}
    for cutoff in pd.unique(points["cutoff"]):
        before = values[(days <= pd.Timestamp(cutoff)).to_numpy()]
        scales[cutoff] = mase_scale(before, season)
    return pd.Series(scales, dtype=float)


def fit_total(backtest: pd.DataFrame, history: pd.DataFrame, level: float) -> TotalFit | None:
    """The total's interval and backtest scores; None when no series was backtested."""
    points = total_points(backtest)
    if points.empty:
        return None
    interval = fit_interval(points, level)
    lower, upper = interval.bounds(
        points["yhat"].to_numpy(dtype=float), points["event_kind"].to_numpy() != 0
    )
    points = points.assign(yhat_lower=lower, yhat_upper=upper)
    y = points["y"].to_numpy(dtype=float)
    scales = fold_scales(points, history)
    scores: dict[str, float | int] = {
        "mase": _fold_mase(points, "yhat", scales),
        "snaive_mase": _fold_mase(points, "snaive", scales),
        "smape": float(np.mean(smape_terms(y, points["yhat"]))),
        "mae": float(np.mean(absolute_errors(y, points["yhat"]))),
        "coverage": float(np.mean((y >= lower) & (y <= upper))),
        "n_folds": int(pd.unique(points["cutoff"]).size),
        "n_points": len(points),
    }
    return TotalFit(interval, scores, points)


def total_forecast(forecasts: pd.DataFrame, interval: TotalInterval) -> pd.DataFrame:
    """The total's rows from every series' forecasts (`series_id, target_date, yhat,
    event_kind`): per target day, the sum of the series' yhat and its interval."""
    summed = (
        forecasts.groupby("target_date", sort=True)
        .agg(yhat=("yhat", "sum"), event_kind=("event_kind", "max"))
        .reset_index()
    )
    lower, upper = interval.bounds(
        summed["yhat"].to_numpy(dtype=float), summed["event_kind"].to_numpy() != 0
    )
    return summed.assign(yhat_lower=lower, yhat_upper=upper, model=MODEL_NAME)
