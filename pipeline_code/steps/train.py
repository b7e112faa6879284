"""Train: backtest the candidate models on this instance's share of the series, choose one per
series and fit it.

Reads the series' bucket files of this instance's share (`preproc/series/bucket=NNN.parquet`,
rank r of n owns the buckets b with b % n == r: `shards`) and every bucket's sums of the calendar
events' effects (`preproc/event_statistics/`), which it adds up into the pool over all series
(`forecasting.event_pool`: the same on every instance). Writes, per bucket of its share,
`train/models/bucket=NNN.pkl` (settings, and per series the chosen model fitted on the latest
window and its backtest errors, see `forecasting.artifacts`) and the summary of its backtest
(`forecasting.backtest_table`): `train/backtest_scores/bucket=NNN.parquet`, the per-series
scores, and `train/calibration_points/bucket=NNN.parquet`, what the interval calibration needs
of each point (TrainEvaluation calibrates over every series); and the bucket's partial sums for
the total across series (`forecasting.total`): `train/total_backtest/bucket=NNN.parquet`, the
backtest summed per fold and step, and `train/total_history/bucket=NNN.parquet`, the series
summed per day. The benchmark is seasonal naive
on the same folds, without calendar effects, for the gate's relative MASE.

Series are processed in parallel worker processes (`--workers 0`: every core). Season lengths
and the candidate set come from the data's frequency (daily: weekly cycle, a fold a year back,
and the calendar of `--holiday-country`, `--breaks` and `--company-days`); `--season-length`
overrides the cycle. The cycle and calendar must be the ones PreProc pooled the effects with.
"""

from __future__ import annotations

import argparse
import pickle
import sys
import time
from collections import Counter

import pandas as pd

from pipeline_code import bucket_files, run_folder, shards, storage
from pipeline_code.errors import StepError, run_entry_point
from pipeline_code.forecasting import ForecastSettings, SeriesData, SeriesTraining
from pipeline_code.forecasting.artifacts import EventPool, TrainedModels, dump_models, load_pool
from pipeline_code.forecasting.backtest_table import backtest_frame, summarize
from pipeline_code.forecasting.batch import train_share
from pipeline_code.forecasting.candidates import known_candidates
from pipeline_code.forecasting.event_effects import EventPriors
from pipeline_code.forecasting.event_pool import combine
from pipeline_code.forecasting.total import backtest_parts, history_parts
from pipeline_code.progress import Progress
from pipeline_code.run_context import RunContext, add_common_arguments, context_from
from pipeline_code.shards import Share, bucket_of
from pipeline_code.steps.forecast_options import (
    add_event_arguments,
    event_settings,
    series_of,
)

STEP = "Train"


def load_series(
    ctx: RunContext, step: str, share: Share
) -> tuple[list[SeriesData], str, list[int]]:
    """The checked series of this share, their frequency code and the share's buckets."""
    index = bucket_files.read_index(ctx, step)
    buckets = bucket_files.index_buckets(index, share)
    if not buckets:
        return [], "D", []
    frame = bucket_files.read_buckets(ctx, step, run_folder.series_bucket, buckets, "PreProc")
    series, frequency = series_of(
        frame, ctx.execution_date, step, ctx.path(*run_folder.SERIES) + f" (buckets {buckets})"
    )
    expected = set(index.loc[index["bucket"].isin(buckets), "series_id"])
    if {s.series_id for s in series} != expected:
        raise StepError(step, f"{ctx.path(*run_folder.SERIES)}: bucket files differ from the index")
    return series, frequency, buckets


def build_settings(args: argparse.Namespace, frequency: str) -> ForecastSettings:
    candidates = tuple(c.strip() for c in args.candidates.split(",") if c.strip()) or None
    unknown = sorted(set(candidates or ()) - set(known_candidates()))
    if unknown:
        raise StepError(STEP, f"unknown candidates {unknown}; known: {known_candidates()}")
    if args.horizon < 1 or args.backtest_folds < 1:
        raise StepError(STEP, "--horizon, --backtest-folds and --season-length must be >= 1")
    if args.seasonal_folds is not None and args.seasonal_folds < 0:
        raise StepError(STEP, "--seasonal-folds must be >= 0")
    if not 0 < args.interval_level < 1:
        raise StepError(STEP, "--interval-level must be between 0 and 1")
    return event_settings(args, frequency, STEP).with_overrides(
        horizon=args.horizon,
        backtest_folds=args.backtest_folds,
        seasonal_folds=args.seasonal_folds,
        fit_window=args.fit_window,
        interval_level=args.interval_level,
        candidates=candidates,
    )


def load_event_pool(ctx: RunContext, settings: ForecastSettings) -> EventPriors:
    """The events' pooled effects over all series: every bucket's statistics added up in bucket
    order (`forecasting.event_pool`), the same on every instance."""
    uris = bucket_files.bucket_uris(
        ctx, STEP, run_folder.event_statistics_bucket, range(shards.BUCKETS), "PreProc"
    )
    return combine([_bucket_pool(uri, settings).statistics for uri in uris], settings)


def _bucket_pool(uri: str, settings: ForecastSettings) -> EventPool:
    try:
        pool = load_pool(storage.read_bytes(uri))
    except (ValueError, pickle.UnpicklingError, AttributeError, EOFError) as err:
        raise StepError(STEP, f"{uri} is not an event pool of this code version: {err}") from err
    if not pool.matches(settings):
        raise StepError(
            STEP,
            f"{uri} was pooled for frequency {pool.frequency}, cycle {pool.season_length} and "
            f"calendar {pool.calendar}, not this step's {settings.frequency}, "
            f"{settings.season_length}, {settings.calendar}: PreProc and Train must get the same "
            "--season-length, --holiday-country, --breaks and --company-days",
        )
    return pool


def write_backtest_summary(ctx: RunContext, bucket: int, rows: pd.DataFrame) -> None:
    """The summary of one bucket's backtest rows. A bucket whose series are all too short for a
    fold still gets its (empty) files, so TrainEvaluation finds every bucket."""
    summary = summarize(rows)
    storage.write_table(summary.scores, ctx.path(*run_folder.backtest_scores_bucket(bucket)))
    storage.write_table(summary.points, ctx.path(*run_folder.calibration_points_bucket(bucket)))


def write_share(
    ctx: RunContext,
    settings: ForecastSettings,
    series: list[SeriesData],
    trainings: list[SeriesTraining],
) -> None:
    """One models file and one backtest summary per bucket of the share. The backtest table,
    the bulkiest form of the results, exists for one bucket at a time."""
    by_bucket: dict[int, list[int]] = {}
    for position, s in enumerate(series):
        by_bucket.setdefault(bucket_of(s.series_id), []).append(position)
    for bucket, positions in sorted(by_bucket.items()):
        models = {series[i].series_id: trainings[i].model for i in positions}
        trained = TrainedModels(settings, ctx.execution_date, models)
        storage.write_bytes(dump_models(trained), ctx.path(*run_folder.models_bucket(bucket)))
        rows = backtest_frame(
            [trainings[i] for i in positions], [series[i] for i in positions], settings
        )
        write_backtest_summary(ctx, bucket, rows)
        write_total_parts(
            ctx, bucket, rows, [series[i] for i in positions], settings.mase_season_length
        )


def write_total_parts(
    ctx: RunContext,
    bucket: int,
    rows: pd.DataFrame,
    series: list[SeriesData],
    season_length: int,
) -> None:
    """The bucket's share of the total across series: sums that TrainEvaluation adds up.
    `season_length`: the MASE denominator's, as the series are scored."""
    storage.write_table(backtest_parts(rows), ctx.path(*run_folder.total_backtest_bucket(bucket)))
    storage.write_table(
        history_parts(series, season_length),
        ctx.path(*run_folder.total_history_bucket(bucket)),
    )


def run(ctx: RunContext, args: argparse.Namespace, share: Share | None = None) -> None:
    share = share or shards.current_share()
    series, frequency, buckets = load_series(ctx, STEP, share)
    if not series:
        print(f"{STEP}: {share.label}: no series in its share of buckets, nothing to train")
        return
    settings = build_settings(args, frequency)
    pool = load_event_pool(ctx, settings)
    started = time.perf_counter()
    progress = Progress(STEP, len(series))
    trainings = train_share(series, settings, pool, args.workers, progress.advance)
    elapsed = time.perf_counter() - started
    write_share(ctx, settings, series, trainings)
    chosen = Counter(t.model.model for t in trainings)
    unscored = sum(t.backtest is None for t in trainings)
    print(
        f"{STEP}: {share.label}, {len(buckets)} buckets: {len(series)} series in {elapsed:.1f}s "
        f"({len(series) / elapsed:.1f} series/s); chosen models {dict(chosen.most_common())}; "
        f"{unscored} too short for a backtest fold (seasonal naive, not in the backtest)"
    )


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description="Backtest candidates and choose per series.")
    add_common_arguments(parser)
    add_event_arguments(parser)
    parser.add_argument("--horizon", type=int, default=28, help="steps forecast (days)")
    parser.add_argument("--backtest-folds", type=int, default=3, help="rolling-origin folds")
    parser.add_argument(
        "--seasonal-folds",
        type=int,
        default=None,
        help="folds a year back, two years back, ... (default: frequency's; daily 1)",
    )
    parser.add_argument(
        "--fit-window", type=int, default=None, help="observations per fit (default: frequency's)"
    )
    parser.add_argument("--interval-level", type=float, default=0.8, help="nominal coverage")
    parser.add_argument("--workers", type=int, default=0, help="processes; 0 = all cores")
    parser.add_argument(
        "--candidates", default="", help="comma-separated candidates (default: frequency's set)"
    )
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    run(context_from(args), args)


if __name__ == "__main__":
    sys.exit(run_entry_point(main))
