"""Realized accuracy: earlier publications' forecasts scored against the actuals that have since
arrived, and the backtest's promise checked against them.

A run of data day D scores the target days it is the first to observe: the days after the latest
date published before D, up to D (`days_to_score`). Every earlier publication whose horizon
reaches one of those days is scored there, series by series (`score_publication`): the actual,
the forecast and its interval, the absolute error, the error scaled by the series'
seasonal-naive scale as it stood at the publication (the in-sample scale MASE divides by,
computed on the history up to that date), and whether the actual fell inside the interval.
Published forecasts are only read, never rewritten.

Over a trailing window of scored days, `promise_check` compares per series and overall the
realized MASE with the backtest MASE each scored forecast was published with, the realized
interval coverage with the nominal level, and the bias (mean signed error over mean actual);
`promise_warnings` words the breaches. A warning, never a failure: the forecast of the day is
published either way.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable
from dataclasses import dataclass

import numpy as np
import pandas as pd

from pipeline_code.forecasting.metrics import mase_scale
from pipeline_code.tables import TOTAL_SERIES_ID

ROW_COLUMNS = (
    "forecast_date",
    "series_id",
    "target_date",
    "horizon_step",
    "actual",
    "yhat",
    "yhat_lower",
    "yhat_upper",
    "abs_error",
    "scaled_error",
    "inside",
    "model",
    "backtest_mase",
)


@dataclass(frozen=True)
class PromiseSettings:
    window_days: int = 28
    """Trailing scored days the promise is checked over."""
    max_mase_ratio: float = 1.5
    """Warn when realized MASE exceeds the promised (backtest) MASE by more than this factor."""
    coverage_band: float = 0.10
    """Warn when realized coverage leaves nominal +- this (0.10: 10 points)."""
    min_points: int = 14
    """A series is judged on at least this many scored points; fewer say too little."""


def days_to_score(execution_date: dt.date, published_dates: Iterable[dt.date]) -> list[dt.date]:
    """The target days this run is the first to observe: after the latest publication before
    the execution date, up to the execution date. None without an earlier publication."""
    earlier = [day for day in published_dates if day < execution_date]
    if not earlier:
        return []
    first = max(earlier) + dt.timedelta(days=1)
    return [first + dt.timedelta(days=i) for i in range((execution_date - first).days + 1)]


def scales_at(history: pd.DataFrame, dates: Iterable[dt.date], season_length: int) -> pd.DataFrame:
    """Each series' MASE scale on its history up to each date: `series_id, forecast_date,
    scale` (NaN where the series had no history by then)."""
    rows = []
    for series_id, frame in history.groupby("series_id", sort=True):
        days = pd.to_datetime(frame["ds"]).dt.date.to_numpy()
        values = frame["y"].to_numpy(dtype=float)
        for date in dates:
            known = values[days <= date]
            scale = mase_scale(known, season_length) if len(known) > 1 else np.nan
            rows.append((series_id, date, scale))
    return pd.DataFrame(rows, columns=["series_id", "forecast_date", "scale"])


def score_publication(
    forecast_date: dt.date,
    forecasts: pd.DataFrame,
    actuals: pd.DataFrame,
    scales: pd.DataFrame,
    backtest_mase: pd.Series,
) -> pd.DataFrame:
    """Rows of `ROW_COLUMNS` for one publication's forecasts on the days `actuals` holds.

    `forecasts`: series_id, target_date, yhat, yhat_lower, yhat_upper, model;
    `actuals`: series_id, ds, y (observed days only: an unknown day is not scored);
    `scales`: series_id, forecast_date, scale; `backtest_mase`: by series_id, as published.
    A series missing on either side is not scored on that day.
    """
    left = forecasts.assign(target_date=pd.to_datetime(forecasts["target_date"]).dt.date)
    right = actuals.rename(columns={"ds": "target_date", "y": "actual"})
    right = right.assign(target_date=pd.to_datetime(right["target_date"]).dt.date)
    rows = left.merge(
        right[["series_id", "target_date", "actual"]], on=["series_id", "target_date"]
    )
    if rows.empty:
        return pd.DataFrame(columns=list(ROW_COLUMNS))
    rows["forecast_date"] = forecast_date
    rows["horizon_step"] = [(day - forecast_date).days for day in rows["target_date"]]
    rows["abs_error"] = (rows["actual"] - rows["yhat"]).abs()
    scale = scales[scales["forecast_date"] == forecast_date].set_index("series_id")["scale"]
    with np.errstate(divide="ignore", invalid="ignore"):
        scaled = rows["abs_error"].to_numpy() / rows["series_id"].map(scale).to_numpy(dtype=float)
    rows["scaled_error"] = np.where(np.isfinite(scaled), scaled, np.nan)
    rows["inside"] = (rows["yhat_lower"] <= rows["actual"]) & (rows["actual"] <= rows["yhat_upper"])
    rows["backtest_mase"] = rows["series_id"].map(backtest_mase).astype(float)
    return rows[list(ROW_COLUMNS)].reset_index(drop=True)


# --- the promise ------------------------------------------------------------------------------


def latest_scores(rows: pd.DataFrame, scored_on: str) -> pd.DataFrame:
    """Each (publication, series, target day) once, as its latest scoring left it: after a
    backfill two runs may have scored the same day."""
    ordered = rows.sort_values(scored_on, kind="stable")
    return ordered.drop_duplicates(["forecast_date", "series_id", "target_date"], keep="last")


def trailing(rows: pd.DataFrame, execution_date: dt.date, window_days: int) -> pd.DataFrame:
    """The scored rows whose target day lies in the window ending at the execution date."""
    first = execution_date - dt.timedelta(days=window_days - 1)
    days = pd.to_datetime(rows["target_date"]).dt.date
    return rows[(days >= first) & (days <= execution_date)]


SUM_COLUMNS = (
    "points", "sum_scaled", "n_scaled", "sum_inside", "sum_signed", "sum_actual", "sum_promised",
    "n_promised",
)  # fmt: skip
"""Per-series sums of scored rows: they add up over buckets, runs and series."""


def window_sums(rows: pd.DataFrame) -> pd.DataFrame:
    """`series_id` and the `SUM_COLUMNS` of each series' scored rows."""
    scaled = rows["scaled_error"].astype(float)
    promised = rows["backtest_mase"].astype(float)
    parts = pd.DataFrame(
        {
            "series_id": rows["series_id"],
            "points": 1,
            "sum_scaled": scaled.fillna(0.0),
            "n_scaled": scaled.notna().astype(int),
            "sum_inside": rows["inside"].astype(int),
            "sum_signed": (rows["yhat"] - rows["actual"]).astype(float),
            "sum_actual": rows["actual"].astype(float),
            "sum_promised": promised.fillna(0.0),
            "n_promised": promised.notna().astype(int),
        }
    )
    return parts.groupby("series_id", sort=True, as_index=False).sum()


def promise_check(sums: pd.DataFrame, level: float) -> pd.DataFrame:
    """Per series and overall (`series_id` None, all points pooled): realized MASE, promised
    MASE, their ratio, coverage against `level`, bias and the number of points."""
    sums = sums.astype({column: float for column in SUM_COLUMNS})
    overall = sums[list(SUM_COLUMNS)].sum().to_frame().T.assign(series_id=None)
    table = pd.concat([sums, overall], ignore_index=True)
    with np.errstate(divide="ignore", invalid="ignore"):
        realized = table["sum_scaled"] / table["n_scaled"]
        promised = table["sum_promised"] / table["n_promised"]
        figures = pd.DataFrame(
            {
                "series_id": table["series_id"],
                "points": table["points"].astype(int),
                "realized_mase": realized,
                "promised_mase": promised,
                "ratio": np.where(promised > 0, realized / promised, np.nan),
                "coverage": table["sum_inside"] / table["points"],
                "nominal": level,
                "bias": np.where(
                    table["sum_actual"] > 0, table["sum_signed"] / table["sum_actual"], np.nan
                ),
            }
        )
    return figures.reset_index(drop=True)


def promise_warnings(check: pd.DataFrame, settings: PromiseSettings) -> list[str]:
    """One line per breach, the furthest past its limit first: a series (or all series) whose
    realized MASE is worse than promised by more than the factor, or whose coverage left the
    band."""
    judged = check[check["points"] >= settings.min_points]
    lines: list[tuple[float, str]] = []
    for row in judged.itertuples(index=False):
        who = (
            "all series"
            if row.series_id is None
            else "the total across series"
            if row.series_id == TOTAL_SERIES_ID
            else f"series {row.series_id}"
        )
        if np.isfinite(row.ratio) and row.ratio > settings.max_mase_ratio:
            lines.append(
                (
                    row.ratio / settings.max_mase_ratio,
                    f"realized accuracy: {who}: MASE {row.realized_mase:.2f} over the last"
                    f" {row.points} scored points is {row.ratio:.1f}x the backtest's"
                    f" {row.promised_mase:.2f} (limit {settings.max_mase_ratio:g}x)",
                )
            )
        off = row.coverage - row.nominal
        if abs(off) > settings.coverage_band:
            lines.append(
                (
                    abs(off) / settings.coverage_band,
                    f"realized accuracy: {who}: interval coverage {row.coverage:.0%} over the last"
                    f" {row.points} scored points, nominal {row.nominal:.0%} (band"
                    f" +-{settings.coverage_band:.0%})",
                )
            )
    return [text for _, text in sorted(lines, key=lambda item: -item[0])]
