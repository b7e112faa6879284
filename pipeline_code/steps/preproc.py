"""PreProc: turn the extract into clean daily series, one row per (series_id, ds), ending at the
execution date. Reads `extract/data.parquet`; writes the series one file per bucket of series
(`preproc/series/bucket=NNN.parquet`, `shards.bucket_of`), so that each instance of a
multi-instance Train or Predict reads its share as whole files, the index of every series and
its bucket (`preproc/series_index.parquet`), the calendar events' effects pooled over all series
(`preproc/event_pool.pkl`: the pool needs every series, and one computation of it makes the
result the same for any instance count) and `preproc/data_quality.json` (how many rows and
series each rule touched). Only the leader instance runs it; others exit at once.

The pool is computed with the settings Train builds from the same `--season-length`,
`--holiday-country`, `--breaks` and `--company-days` (`steps.forecast_options`).

The rules, in the order applied:

1. Rows without a series_id or with an unreadable ds are dropped (`invalid_key_rows`).
2. Rows dated after the execution date are dropped (`future_rows`): the run must not see
   the future, and a re-run of an old date must give what that day's run gave.
3. Exact duplicate rows are dropped (`exact_duplicate_rows`): a load delivered twice.
4. y that is not a number (`non_numeric_y`), NaN (`nan_y`) or negative (`negative_y`) is
   unknown: a count cannot be negative, and a missing value is not a zero. Such a row is dropped;
   if it leaves its day with no known value, that day is imputed by linear interpolation between
   the series' neighbouring known days (`imputed_days`).
5. Remaining rows with the same (series_id, ds) are summed (`summed_key_rows` rows merged): they
   are partial counts of one day (e.g. from late-arriving partitions).
6. Each series runs from its first row to the execution date; days with no row are filled with 0
   (`zero_filled_days`), because the extract emits no row for a day without applications. A day
   the source has no partition for (Extract's `missing_days`) is unknown, not zero: it is imputed
   like an unknown value (`missing_source_days`).
6b. A series whose execution-date value is an extreme upward outlier against its own last
   `OUTLIER_HISTORY_DAYS` days (above median + `--outlier-threshold` x robust scale) is capped to
   that bound for fitting and listed in `outliers` (`capped_outliers`); the source keeps the raw
   value, which the dashboard's actuals show.
7. Series are set aside (listed in `set_aside`, left out of the series):
   - `too_short`: fewer than `--min-history-days` days of history; backtests need a few seasons.
   - `stopped`: no application in the last `--stopped-days` days (the model is no longer offered);
     its forecast would be a flat zero that clutters the dashboard and costs a training slot.

If nothing usable is left (every y unknown, every series set aside) the step fails naming why.

data_quality.json is the run's data-quality summary: PreProc's counters, Extract's source checks
(`source`, from `extract/data_quality.json`) and one line per finding in `warnings`.
"""

from __future__ import annotations

import argparse
import datetime as dt
import sys
from dataclasses import dataclass, field
from typing import Any

import pandas as pd

from pipeline_code import bucket_files, run_folder, shards, storage
from pipeline_code.errors import StepError, run_entry_point
from pipeline_code.forecasting.artifacts import EventPool, dump_pool
from pipeline_code.forecasting.selection import pool_events
from pipeline_code.run_context import RunContext, add_common_arguments, context_from
from pipeline_code.steps.forecast_options import (
    add_event_arguments,
    default_event_options,
    event_settings,
    series_of,
)

STEP = "PreProc"
OUTLIER_HISTORY_DAYS = 56
COLUMNS = ("series_id", "ds", "y")


@dataclass
class Quality:
    """Counters of every rule, written as data_quality.json."""

    counts: dict[str, int] = field(default_factory=dict)
    set_aside: dict[str, list[str]] = field(default_factory=dict)
    outliers: list[dict[str, Any]] = field(default_factory=list)

    def add(self, rule: str, n: int) -> None:
        self.counts[rule] = self.counts.get(rule, 0) + int(n)


def _check_columns(frame: pd.DataFrame) -> None:
    missing = [column for column in COLUMNS if column not in frame.columns]
    if missing:
        raise StepError(STEP, f"extract lacks columns {missing}; got {list(frame.columns)}")
    if frame.empty:
        raise StepError(STEP, "the extract is empty: no rows to build series from")


def drop_invalid_keys(frame: pd.DataFrame, quality: Quality) -> pd.DataFrame:
    out = frame[list(COLUMNS)].copy()
    out["ds"] = pd.to_datetime(out["ds"], errors="coerce")
    series = out["series_id"].astype("string").str.strip()
    out["series_id"] = series
    bad = out["ds"].isna() | series.isna() | (series == "")
    quality.add("invalid_key_rows", bad.sum())
    out = out[~bad].copy()
    out["series_id"] = out["series_id"].astype(str)
    return out


def drop_future(frame: pd.DataFrame, execution_date: dt.date, quality: Quality) -> pd.DataFrame:
    future = frame["ds"] > pd.Timestamp(execution_date)
    quality.add("future_rows", future.sum())
    return frame[~future]


def drop_exact_duplicates(frame: pd.DataFrame, quality: Quality) -> pd.DataFrame:
    # Compare y as text so that 'abc' duplicates and NaN duplicates are found like numbers.
    keys = frame.assign(_y=frame["y"].astype(str)).drop(columns="y")
    duplicated = keys.duplicated()
    quality.add("exact_duplicate_rows", duplicated.sum())
    return frame[~duplicated.to_numpy()]


def mark_unknown_values(frame: pd.DataFrame, quality: Quality) -> pd.DataFrame:
    """y becomes float; NaN, non-numeric and negative values become NaN (unknown)."""
    raw = frame["y"]
    numeric = pd.to_numeric(raw, errors="coerce").astype("float64")
    # pandas counts None and NaN as missing (notna False), so this is only real text.
    non_numeric = numeric.isna() & raw.notna()
    quality.add("non_numeric_y", non_numeric.sum())
    quality.add("nan_y", (numeric.isna() & ~non_numeric).sum())
    negative = numeric < 0
    quality.add("negative_y", negative.sum())
    out = frame.copy()
    out["y"] = numeric.mask(negative)
    return out


def sum_same_key(frame: pd.DataFrame, quality: Quality) -> pd.DataFrame:
    """One row per (series_id, ds); a day whose every value is unknown stays NaN."""
    grouped = frame.groupby(["series_id", "ds"], sort=True)["y"]
    sizes = grouped.size()
    quality.add("summed_key_rows", int((sizes - 1).clip(lower=0).sum()))
    return grouped.sum(min_count=1).reset_index()


def fill_days(
    frame: pd.DataFrame,
    execution_date: dt.date,
    quality: Quality,
    missing_days: frozenset[dt.date] = frozenset(),
) -> pd.DataFrame:
    """Every day from a series' first row to the execution date: gaps 0, unknown days imputed;
    days the source has no partition for are unknown."""
    end = pd.Timestamp(execution_date)
    unknown_days = pd.DatetimeIndex(sorted(pd.Timestamp(day) for day in missing_days))
    pieces = []
    for series_id, rows in frame.groupby("series_id", sort=True):
        days = pd.date_range(rows["ds"].min(), end, freq="D")
        y = rows.set_index("ds")["y"].reindex(days)
        absent = ~days.isin(rows["ds"])
        not_loaded = absent & days.isin(unknown_days)
        quality.add("missing_source_days", not_loaded.sum())
        quality.add("zero_filled_days", (absent & ~not_loaded).sum())
        y[absent & ~not_loaded] = 0.0
        unknown = y.isna()
        quality.add("imputed_days", unknown.sum())
        if unknown.any():
            # Ends with no known neighbour take the nearest known value.
            y = y.interpolate(method="linear", limit_direction="both")
        pieces.append(pd.DataFrame({"series_id": series_id, "ds": days, "y": y.to_numpy()}))
    return pd.concat(pieces, ignore_index=True)


def cap_outliers(
    frame: pd.DataFrame, execution_date: dt.date, threshold: float, quality: Quality
) -> pd.DataFrame:
    """Cap each series' execution-date value that is far above its own recent history.

    The bound is median + threshold x scale over the previous OUTLIER_HISTORY_DAYS days; the scale
    is the larger of the robust standard deviation (1.4826 MAD) and the Poisson one (sqrt of the
    median, at least 1), so a small model's ordinary day-to-day noise is never an outlier.
    """
    end = pd.Timestamp(execution_date)
    history_start = end - pd.Timedelta(days=OUTLIER_HISTORY_DAYS)
    out = frame.copy()
    for series_id, rows in out.groupby("series_id", sort=True):
        today = rows.index[rows["ds"] == end]
        past = rows.loc[(rows["ds"] >= history_start) & (rows["ds"] < end), "y"].dropna()
        if len(today) != 1 or len(past) < 14:
            continue
        median = float(past.median())
        scale = max(1.4826 * float((past - median).abs().median()), max(median, 1.0) ** 0.5)
        bound = round(median + threshold * scale, 3)  # the value reported is the value used
        value = float(out.at[today[0], "y"])
        if value > bound:
            out.at[today[0], "y"] = bound
            quality.outliers.append(
                {
                    "series_id": series_id,
                    "ds": execution_date.isoformat(),
                    "value": value,
                    "median": median,
                    "capped_to": bound,
                }
            )
    quality.add("capped_outliers", len(quality.outliers))
    return out


def set_aside(
    frame: pd.DataFrame,
    execution_date: dt.date,
    min_history_days: int,
    stopped_days: int,
    quality: Quality,
) -> pd.DataFrame:
    """Drop series too short to model or no longer selling; record which and why."""
    stats = frame.groupby("series_id").agg(days=("ds", "size"), first=("ds", "min"))
    recent_start = pd.Timestamp(execution_date) - pd.Timedelta(days=stopped_days - 1)
    recent = frame[frame["ds"] >= recent_start].groupby("series_id")["y"].sum()
    too_short = sorted(stats.index[stats["days"] < min_history_days])
    stopped = sorted(s for s in recent.index[recent <= 0] if s not in too_short)
    quality.set_aside = {"too_short": too_short, "stopped": stopped}
    quality.add("too_short_series", len(too_short))
    quality.add("stopped_series", len(stopped))
    return frame[~frame["series_id"].isin(too_short + stopped)]


def _fail_if_unusable(known_rows: int, total_rows: int, counts: dict[str, int]) -> None:
    if known_rows > 0:
        return
    if counts.get("negative_y", 0) == total_rows:
        raise StepError(STEP, f"all {total_rows} y values in the window are negative")
    raise StepError(
        STEP,
        f"no usable y value in the window: all {total_rows} are NaN, non-numeric or negative",
    )


def clean(
    frame: pd.DataFrame,
    execution_date: dt.date,
    min_history_days: int,
    stopped_days: int,
    missing_days: frozenset[dt.date] = frozenset(),
    outlier_threshold: float = 20.0,
) -> tuple[pd.DataFrame, Quality]:
    """Apply the rules in the module docstring; returns the series and the rule counters."""
    _check_columns(frame)
    quality = Quality()
    quality.add("input_rows", len(frame))
    rows = drop_invalid_keys(frame, quality)
    rows = drop_future(rows, execution_date, quality)
    if rows.empty:
        raise StepError(STEP, f"no rows on or before the execution date {execution_date}")
    rows = drop_exact_duplicates(rows, quality)
    rows = mark_unknown_values(rows, quality)
    _fail_if_unusable(int(rows["y"].notna().sum()), len(rows), quality.counts)
    # Series with no known value at all cannot be imputed: they are dropped as unusable.
    known_series = rows.loc[rows["y"].notna(), "series_id"].unique()
    unusable = sorted(set(rows["series_id"]) - set(known_series))
    rows = rows[rows["series_id"].isin(known_series)]
    daily = fill_days(sum_same_key(rows, quality), execution_date, quality, missing_days)
    daily = cap_outliers(daily, execution_date, outlier_threshold, quality)
    kept = set_aside(daily, execution_date, min_history_days, stopped_days, quality)
    quality.set_aside["no_known_value"] = unusable
    if kept.empty:
        raise StepError(
            STEP,
            f"nothing left to model: every series is set aside ({quality.set_aside}); "
            f"--min-history-days is {min_history_days}, --stopped-days is {stopped_days}",
        )
    out = kept.assign(ds=kept["ds"].dt.date, y=kept["y"].astype("float64"))
    quality.add("output_rows", len(out))
    return out.reset_index(drop=True), quality


def quality_report(
    quality: Quality, ctx: RunContext, series: pd.DataFrame, source: dict[str, Any] | None = None
) -> dict[str, Any]:
    source = source or {}
    warnings = [*source.get("warnings", []), *_outlier_warnings(quality.outliers)]
    return {
        "step": STEP,
        "execution_date": ctx.execution_date.isoformat(),
        "execution_id": ctx.execution_id,
        "series_out": int(series["series_id"].nunique()),
        "counts": quality.counts,
        "set_aside": quality.set_aside,
        "outliers": quality.outliers,
        "source": source,
        "warnings": warnings,
    }


def _outlier_warnings(outliers: list[dict[str, Any]]) -> list[str]:
    return [
        f"{o['series_id']}: {o['value']:g} on {o['ds']} is far above its median {o['median']:g} "
        f"of the last {OUTLIER_HISTORY_DAYS} days; capped to {o['capped_to']:g} for fitting"
        for o in outliers
    ]


def read_source_quality(ctx: RunContext) -> dict[str, Any]:
    """Extract's findings; absent when Extract was replaced by a query of the user's own."""
    uri = ctx.path(*run_folder.EXTRACT_QUALITY)
    return storage.read_json(uri) if storage.exists(uri) else {}


def write_series(ctx: RunContext, series: pd.DataFrame, events: argparse.Namespace) -> EventPool:
    """The series' bucket files, their index and the event effects pooled over all of them."""
    where = ctx.path(*run_folder.SERIES)
    data, frequency = series_of(series, ctx.execution_date, STEP, where)
    settings = event_settings(events, frequency, STEP)
    pool = EventPool.for_settings(settings, pool_events(data, settings))
    bucket_files.write_buckets(ctx, bucket_files.split_by_bucket(series), run_folder.series_bucket)
    storage.write_table(bucket_files.series_index(series), ctx.path(*run_folder.SERIES_INDEX))
    storage.write_bytes(dump_pool(pool), ctx.path(*run_folder.EVENT_POOL))
    return pool


def run(
    ctx: RunContext,
    min_history_days: int,
    stopped_days: int,
    outlier_threshold: float = 20.0,
    events: argparse.Namespace | None = None,
) -> pd.DataFrame:
    if min_history_days < 1 or stopped_days < 1:
        raise StepError(STEP, "--min-history-days and --stopped-days must be at least 1")
    if not outlier_threshold > 0:
        raise StepError(STEP, "--outlier-threshold must be above 0")
    in_uri = ctx.path(*run_folder.EXTRACT_DATA)
    if not storage.exists(in_uri):
        raise StepError(STEP, f"input {in_uri} does not exist (did Extract run?)")
    source = read_source_quality(ctx)
    missing = frozenset(dt.date.fromisoformat(day) for day in source.get("missing_days", []))
    series, quality = clean(
        storage.read_table(in_uri),
        ctx.execution_date,
        min_history_days,
        stopped_days,
        missing,
        outlier_threshold,
    )
    write_series(ctx, series, events or default_event_options())
    report = quality_report(quality, ctx, series, source)
    storage.write_json(report, ctx.path(*run_folder.DATA_QUALITY))
    for warning in report["warnings"]:
        print(f"WARNING {STEP}: {warning}")
    print(f"{STEP}: {series['series_id'].nunique()} series, {len(series)} rows; {quality.counts}")
    return series


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description="Clean the extract into daily series.")
    add_common_arguments(parser)
    parser.add_argument(
        "--min-history-days", type=int, default=56, help="shorter series are set aside"
    )
    parser.add_argument(
        "--stopped-days", type=int, default=28, help="series with no data this long are set aside"
    )
    parser.add_argument(
        "--outlier-threshold",
        type=float,
        default=20.0,
        help="execution-date values above median + this x robust scale are capped",
    )
    add_event_arguments(parser)
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> None:
    if shards.skip_unless_leader(STEP):
        return
    args = parse_args(argv)
    ctx = context_from(args)
    run(ctx, args.min_history_days, args.stopped_days, args.outlier_threshold, args)


if __name__ == "__main__":
    sys.exit(run_entry_point(main))
