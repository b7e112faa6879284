"""PreProc: turn Extract's counts into clean daily series, one row per (series_id, ds), ending at
the execution date. Runs on every instance of the job, each over its own buckets of series
(`shards.Share.buckets`): it reads only those buckets' counts (`extract/counts/<attempt>/bucket=N/`,
the folder `extract/counts.json` names) and writes per bucket the series
(`preproc/series/bucket=NNN.parquet`), their index (`preproc/series_index/`), the bucket's share
of the calendar events' pooled effects (`preproc/event_statistics/`: sums that Train adds up over
every bucket, `forecasting.event_pool`, so the pool is the same for any instance count) and its
data-quality counters (`preproc/quality/`, merged into `preproc/data_quality.json` with
Extract's findings by TrainEvaluation). Every bucket of the share gets its files, empty or not, so
a lost instance shows up as missing files.

The statistics are computed with the settings Train builds from the same `--season-length`,
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
   the source has no partition for, or far too few rows (Extract's `missing_days` and
   `partial_days`), is unknown, not zero: its counts are dropped and it is imputed like an
   unknown value (`missing_source_days`, `partial_source_days`).
6b. A day far above its series' own previous `OUTLIER_HISTORY_DAYS` days (above their median +
   `--outlier-threshold` x robust scale), on any day of the window, is an outlier: for fitting
   it takes the median of the same weekday over the `OUTLIER_WEEKS` weeks before (an ordinary
   day, so one spike moves the forecast by little), and is listed in `outliers`
   (`capped_outliers`; a warning for those of the last `OUTLIER_WARN_DAYS` days). The source
   keeps the raw value, which the dashboard's actuals show.
7. Series are set aside (listed in `set_aside`, left out of the series):
   - `too_short`: fewer than `--min-history-days` days of history; backtests need a few seasons.
   - `stopped`: no application in the last `--stopped-days` days (the model is no longer offered);
     its forecast would be a flat zero that clutters the dashboard and costs a training slot.

If a bucket's rows hold no usable value at all the step fails naming why; if no bucket has a
series left (every series set aside), TrainEvaluation fails naming why when it merges the
buckets' counters into data_quality.json, the run's data-quality summary: the counters, Extract's
source checks (`source`, from `extract/data_quality.json`) and one line per finding in `warnings`.
"""

from __future__ import annotations

import argparse
import datetime as dt
import sys
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from pipeline_code import bucket_files, run_folder, shards, storage
from pipeline_code.errors import StepError, run_entry_point
from pipeline_code.forecasting.artifacts import EventPool, dump_pool
from pipeline_code.forecasting.event_pool import bucket_statistics
from pipeline_code.run_context import RunContext, add_common_arguments, context_from
from pipeline_code.steps.forecast_options import (
    add_event_arguments,
    default_event_options,
    event_settings,
    series_of,
)

STEP = "PreProc"
OUTLIER_HISTORY_DAYS = 56
OUTLIER_MIN_HISTORY = 28  # known days before a day that it takes to judge it
OUTLIER_WEEKS = 8  # same weekdays whose median replaces an outlier
OUTLIER_WARN_DAYS = 28  # outliers this recent get a warning line; older ones are counted
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
    partial_days: frozenset[dt.date] = frozenset(),
) -> pd.DataFrame:
    """Every day from a series' first row to the execution date: gaps 0, unknown days imputed;
    days the source has no partition for, or only part of its rows, are unknown."""
    end = pd.Timestamp(execution_date)
    not_loaded_days = pd.DatetimeIndex(sorted(pd.Timestamp(day) for day in missing_days))
    partial = pd.DatetimeIndex(sorted(pd.Timestamp(day) for day in partial_days))
    pieces = []
    for series_id, rows in frame.groupby("series_id", sort=True):
        days = pd.date_range(rows["ds"].min(), end, freq="D")
        y = rows.set_index("ds")["y"].reindex(days)
        absent = ~days.isin(rows["ds"])
        not_loaded = absent & days.isin(not_loaded_days)
        cut = days.isin(partial)
        quality.add("missing_source_days", not_loaded.sum())
        quality.add("partial_source_days", cut.sum())
        quality.add("zero_filled_days", (absent & ~not_loaded & ~cut).sum())
        y[absent & ~not_loaded] = 0.0
        y[cut] = np.nan
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
    """Replace each day far above its series' own previous OUTLIER_HISTORY_DAYS days by the
    median of the same weekday over the OUTLIER_WEEKS weeks before it.

    "Far above": above their median + threshold x scale, the scale the larger of the robust
    standard deviation (interquartile range / 1.349) and the Poisson one (sqrt of the median, at
    least 1), so a small model's ordinary noise is never an outlier; a day with fewer than
    OUTLIER_MIN_HISTORY known days before it is not judged. All series at once, as a matrix
    of days x series.
    """
    wide = frame.pivot(index="ds", columns="series_id", values="y").sort_index()
    past = wide.shift(1).rolling(OUTLIER_HISTORY_DAYS, min_periods=OUTLIER_MIN_HISTORY)
    median = past.median()
    spread = (past.quantile(0.75) - past.quantile(0.25)) / 1.349
    scale = np.maximum(spread, np.sqrt(median.clip(lower=1.0)))
    bound = median + threshold * scale
    flagged = wide > bound
    if not flagged.to_numpy().any():
        quality.add("capped_outliers", 0)
        return frame
    ordinary = wide.mask(flagged)
    weekday_median = pd.concat(
        [
            ordinary.iloc[offset::7].shift(1).rolling(OUTLIER_WEEKS, min_periods=1).median()
            for offset in range(7)
        ]
    ).sort_index()
    replacement = weekday_median.fillna(median).round(3)  # the value reported is the value used
    recent_start = pd.Timestamp(execution_date) - pd.Timedelta(days=OUTLIER_WARN_DAYS - 1)
    found = flagged.stack()
    for ds, series_id in found[found].index:
        quality.outliers.append(
            {
                "series_id": series_id,
                "ds": ds.date().isoformat(),
                "value": float(wide.at[ds, series_id]),
                "median": float(median.at[ds, series_id]),
                "capped_to": float(replacement.at[ds, series_id]),
                "recent": bool(ds >= recent_start),
            }
        )
    quality.add("capped_outliers", int(found.sum()))
    capped = wide.mask(flagged, replacement)
    out = capped.stack().rename("y").reset_index()
    # The pivot's rows outside a series' own days (before its first) are not days of it.
    keys = frame[["series_id", "ds"]]
    return keys.merge(out, on=["series_id", "ds"], how="left")[["series_id", "ds", "y"]]


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


def clean_rows(
    frame: pd.DataFrame,
    execution_date: dt.date,
    min_history_days: int,
    stopped_days: int,
    missing_days: frozenset[dt.date] = frozenset(),
    outlier_threshold: float = 20.0,
    partial_days: frozenset[dt.date] = frozenset(),
) -> tuple[pd.DataFrame, Quality]:
    """Apply the rules in the module docstring to one bucket's rows (or all of them); the series
    left may be none: other buckets may hold some."""
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
    daily = fill_days(
        sum_same_key(rows, quality), execution_date, quality, missing_days, partial_days
    )
    daily = cap_outliers(daily, execution_date, outlier_threshold, quality)
    kept = set_aside(daily, execution_date, min_history_days, stopped_days, quality)
    quality.set_aside["no_known_value"] = unusable
    out = kept.assign(ds=kept["ds"].dt.date, y=kept["y"].astype("float64"))
    quality.add("output_rows", len(out))
    return out.reset_index(drop=True), quality


def check_something_left(series_out: int, set_aside: dict[str, list[str]], args: str) -> None:
    if series_out == 0:
        raise StepError(
            STEP, f"nothing left to model: every series is set aside ({set_aside}); {args}"
        )


def clean(
    frame: pd.DataFrame,
    execution_date: dt.date,
    min_history_days: int,
    stopped_days: int,
    **days_and_threshold: Any,
) -> tuple[pd.DataFrame, Quality]:
    """`clean_rows` (the same options) over rows that are the whole run's: fails when no series
    is left."""
    out, quality = clean_rows(
        frame, execution_date, min_history_days, stopped_days, **days_and_threshold
    )
    check_something_left(
        out["series_id"].nunique(),
        quality.set_aside,
        f"--min-history-days is {min_history_days}, --stopped-days is {stopped_days}",
    )
    return out, quality


def bucket_quality(quality: Quality, series: pd.DataFrame) -> dict[str, Any]:
    """One bucket's counters, set-aside series and outliers, which `merge_quality` adds up."""
    return {
        "series_out": int(series["series_id"].nunique()),
        "counts": quality.counts,
        "set_aside": quality.set_aside,
        "outliers": quality.outliers,
    }


def merge_quality(
    parts: list[dict[str, Any]], ctx: RunContext, source: dict[str, Any]
) -> dict[str, Any]:
    """The run's data_quality.json from every bucket's counters and Extract's findings."""
    counts: dict[str, int] = {}
    set_aside: dict[str, list[str]] = {}
    outliers: list[dict[str, Any]] = []
    for part in parts:
        for rule, n in part["counts"].items():
            counts[rule] = counts.get(rule, 0) + int(n)
        for reason, ids in part["set_aside"].items():
            set_aside.setdefault(reason, []).extend(ids)
        outliers.extend(part["outliers"])
    set_aside = {reason: sorted(ids) for reason, ids in sorted(set_aside.items())}
    outliers.sort(key=lambda o: (o["ds"], o["series_id"]))
    recent = [o for o in outliers if o.get("recent", True)]
    return {
        "step": STEP,
        "execution_date": ctx.execution_date.isoformat(),
        "execution_id": ctx.execution_id,
        "series_out": sum(int(part["series_out"]) for part in parts),
        "counts": counts,
        "set_aside": set_aside,
        "outliers": outliers,
        "source": source,
        "warnings": [*source.get("warnings", []), *_outlier_warnings(recent)],
    }


def write_data_quality(ctx: RunContext, step: str) -> dict[str, Any]:
    """Merge every bucket's counters with Extract's findings into data_quality.json (run by the
    first step after PreProc that runs once); fails when no bucket has a series left."""
    uris = bucket_files.bucket_uris(
        ctx, step, run_folder.preproc_quality_bucket, range(shards.BUCKETS), STEP
    )
    report = merge_quality([storage.read_json(uri) for uri in uris], ctx, read_source_quality(ctx))
    storage.write_json(report, ctx.path(*run_folder.DATA_QUALITY))
    for warning in report["warnings"]:
        print(f"WARNING {STEP}: {warning}")
    check_something_left(
        report["series_out"],
        report["set_aside"],
        "see PreProc's --min-history-days and --stopped-days",
    )
    return report


def quality_report(
    quality: Quality, ctx: RunContext, series: pd.DataFrame, source: dict[str, Any] | None = None
) -> dict[str, Any]:
    return merge_quality([bucket_quality(quality, series)], ctx, source or {})


def _outlier_warnings(outliers: list[dict[str, Any]]) -> list[str]:
    return [
        f"{o['series_id']}: {o['value']:g} on {o['ds']} is far above its median {o['median']:g} "
        f"of the {OUTLIER_HISTORY_DAYS} days before; {o['capped_to']:g} (the median of its "
        "weekday) is used for fitting"
        for o in outliers
    ]


def read_source_quality(ctx: RunContext) -> dict[str, Any]:
    """Extract's findings; absent when Extract was replaced by a query of the user's own."""
    uri = ctx.path(*run_folder.EXTRACT_QUALITY)
    return storage.read_json(uri) if storage.exists(uri) else {}


def counts_folder(ctx: RunContext) -> str:
    """The attempt folder Extract's counts.json names."""
    uri = ctx.path(*run_folder.COUNTS_MANIFEST)
    if not storage.exists(uri):
        raise StepError(STEP, f"input {uri} does not exist (did Extract run?)")
    return str(storage.read_json(uri)["folder"])


def read_counts(folder: str, bucket: int) -> pd.DataFrame:
    """One bucket's counts: every data file of its folder (none: no series in the bucket). The
    engines name their files themselves (UNLOAD without a suffix); `_` and `.` files are not
    data, as for Athena."""
    where = storage.join(folder, run_folder.counts_bucket(bucket))
    names = [n for n in storage.list_names(where) if not n.startswith(("_", "."))]
    frames = [storage.read_table(storage.join(where, name)) for name in names]
    frames = [frame for frame in frames if len(frame)]
    if not frames:
        return pd.DataFrame({"series_id": [], "ds": [], "y": []})
    return pd.concat(frames, ignore_index=True)[list(COLUMNS)]


def write_bucket(
    ctx: RunContext,
    bucket: int,
    series: pd.DataFrame,
    quality: dict[str, Any],
    events: argparse.Namespace,
) -> None:
    """The bucket's series, index, share of the event pool and data-quality counters."""
    where = ctx.path(*run_folder.series_bucket(bucket))
    data, frequency = (
        series_of(series, ctx.execution_date, STEP, where) if len(series) else ([], "D")
    )
    settings = event_settings(events, frequency, STEP)
    statistics = EventPool.for_settings(settings, bucket_statistics(data, settings))
    storage.write_table(series, where)
    storage.write_table(
        bucket_files.series_index(series), ctx.path(*run_folder.series_index_bucket(bucket))
    )
    storage.write_bytes(
        dump_pool(statistics), ctx.path(*run_folder.event_statistics_bucket(bucket))
    )
    storage.write_json(quality, ctx.path(*run_folder.preproc_quality_bucket(bucket)))


def write_series(ctx: RunContext, series: pd.DataFrame, events: argparse.Namespace) -> None:
    """Clean series of the whole run written as PreProc's instances leave them: every bucket's
    files (for a run whose series come from elsewhere, and for tests and benchmarks)."""
    parts = bucket_files.split_by_bucket(series) if len(series) else {}
    empty = series.iloc[0:0]
    for bucket in range(shards.BUCKETS):
        rows = parts.get(bucket, empty)
        write_bucket(ctx, bucket, rows, bucket_quality(Quality(), rows), events)


def run(
    ctx: RunContext,
    min_history_days: int,
    stopped_days: int,
    outlier_threshold: float = 20.0,
    events: argparse.Namespace | None = None,
    share: shards.Share | None = None,
) -> list[str]:
    """Clean this instance's buckets; returns the ids of the series kept."""
    if min_history_days < 1 or stopped_days < 1:
        raise StepError(STEP, "--min-history-days and --stopped-days must be at least 1")
    if not outlier_threshold > 0:
        raise StepError(STEP, "--outlier-threshold must be above 0")
    share = share or shards.current_share()
    folder = counts_folder(ctx)
    source = read_source_quality(ctx)
    missing = frozenset(dt.date.fromisoformat(day) for day in source.get("missing_days", []))
    partial = frozenset(
        dt.date.fromisoformat(item["day"]) for item in source.get("partial_days", [])
    )
    kept: list[str] = []
    rows = 0
    for bucket in share.buckets:  # one bucket in memory at a time
        counts = read_counts(folder, bucket)
        if len(counts):
            series, quality = clean_rows(
                counts,
                ctx.execution_date,
                min_history_days,
                stopped_days,
                missing,
                outlier_threshold,
                partial,
            )
        else:
            series, quality = counts.assign(y=counts["y"].astype("float64")), Quality()
        report = bucket_quality(quality, series)
        write_bucket(ctx, bucket, series, report, events or default_event_options())
        for warning in _outlier_warnings([o for o in quality.outliers if o["recent"]]):
            print(f"WARNING {STEP}: {warning}")
        kept.extend(pd.unique(series["series_id"]))
        rows += len(series)
        del counts, series
    print(f"{STEP}: {share.label}, {len(share.buckets)} buckets: {len(kept)} series, {rows} rows")
    return sorted(kept)


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
    args = parse_args(argv)
    ctx = context_from(args)
    run(ctx, args.min_history_days, args.stopped_days, args.outlier_threshold, args)


if __name__ == "__main__":
    sys.exit(run_entry_point(main))
