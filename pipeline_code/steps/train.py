"""Train: backtest the candidate models on every series, choose one per series and fit it.

Reads `preproc/series.parquet`; writes `train/models.pkl` (settings, and per series the chosen
model fitted on the latest window and its backtest errors, see `forecasting.artifacts`) and
`train/backtest.parquet`, one row per series, role, fold and horizon step:

    series_id, model, role ("chosen" | "benchmark"), fold, cutoff (last training day),
    target_date, step, y, yhat, yhat_lower, yhat_upper, scale (the fold's MASE denominator),
    interval_level

`fold_kind` says whether a fold is one of the recent folds or a fold at the same season a year
back; `event_day` flags the days with a calendar event. The benchmark rows are seasonal naive on
the same folds, without calendar effects, for the gate's relative MASE. Series are
processed in parallel worker processes (`--workers 0`: every core). Season lengths and the
candidate set come from the data's frequency (daily: weekly cycle, a fold a year back, and the
calendar of `--holiday-country`, `--breaks` and `--company-days`); `--season-length` overrides the
cycle.
"""

from __future__ import annotations

import argparse
import sys
import time
from collections import Counter

import numpy as np
import pandas as pd

from pipeline_code import run_folder, storage
from pipeline_code.errors import StepError, run_entry_point
from pipeline_code.forecasting import (
    ForecastSettings,
    SeriesData,
    SeriesTraining,
    infer_frequency,
    settings_for_frequency,
)
from pipeline_code.forecasting.artifacts import TrainedModels, dump_models
from pipeline_code.forecasting.batch import train_all
from pipeline_code.forecasting.candidates import known_candidates
from pipeline_code.forecasting.event_calendar import BREAKS, EventCalendar, parse_company_days
from pipeline_code.forecasting.series_table import SeriesTableError, series_from_frame
from pipeline_code.run_context import RunContext, add_common_arguments, context_from

STEP = "Train"
_FREQUENCY_STEP = {"D": "1D", "W": "7D", "H": "1h"}


def load_series(ctx: RunContext, step: str) -> tuple[list[SeriesData], str]:
    """The checked series of the run and their frequency code; bad input raises StepError."""
    uri = ctx.path(*run_folder.SERIES)
    if not storage.exists(uri):
        raise StepError(step, f"input {uri} does not exist (did PreProc run?)")
    frame = storage.read_table(uri)
    try:
        frequency = infer_frequency(frame["ds"]) if "ds" in frame.columns else "D"
        series = series_from_frame(frame, ctx.execution_date, _FREQUENCY_STEP[frequency])
    except (SeriesTableError, ValueError) as err:
        raise StepError(step, f"{uri}: {err}") from err
    return series, frequency


def build_settings(args: argparse.Namespace, frequency: str) -> ForecastSettings:
    candidates = tuple(c.strip() for c in args.candidates.split(",") if c.strip()) or None
    unknown = sorted(set(candidates or ()) - set(known_candidates()))
    if unknown:
        raise StepError(STEP, f"unknown candidates {unknown}; known: {known_candidates()}")
    if args.horizon < 1 or args.backtest_folds < 1 or (args.season_length or 1) < 1:
        raise StepError(STEP, "--horizon, --backtest-folds and --season-length must be >= 1")
    if args.seasonal_folds is not None and args.seasonal_folds < 0:
        raise StepError(STEP, "--seasonal-folds must be >= 0")
    if not 0 < args.interval_level < 1:
        raise StepError(STEP, "--interval-level must be between 0 and 1")
    return settings_for_frequency(
        frequency,
        horizon=args.horizon,
        season_length=args.season_length,
        backtest_folds=args.backtest_folds,
        seasonal_folds=args.seasonal_folds,
        fit_window=args.fit_window,
        interval_level=args.interval_level,
        candidates=candidates,
    ).with_overrides(calendar=build_calendar(args))


def build_calendar(args: argparse.Namespace) -> EventCalendar:
    """The calendar of known events from --holiday-country, --breaks and --company-days."""
    country = args.holiday_country.strip()
    breaks = tuple(
        b.strip() for b in args.breaks.split(",") if b.strip().lower() not in ("", "none")
    )
    try:
        company_days = tuple(parse_company_days(item) for item in args.company_days)
        return EventCalendar(
            country=country if country.lower() not in ("", "none") else None,
            breaks=breaks,
            company_days=company_days,
        )
    except ValueError as err:
        raise StepError(STEP, f"calendar: {err}") from err


def _rows_of(training: SeriesTraining, series: SeriesData, level: float) -> list[pd.DataFrame]:
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
        "cutoff": first + (cutoff - 1).astype("timedelta64[D]"),
        "target_date": first + (cutoff + step - 1).astype("timedelta64[D]"),
        "step": step,
        "y": bt.actual.ravel(),
        "scale": np.repeat(bt.scales, horizon),
        "interval_level": level,
    }
    chosen = pd.DataFrame(
        {
            **common,
            "model": training.model.model,
            "role": "chosen",
            "yhat": bt.forecast.ravel(),
            "yhat_lower": bt.lower.ravel(),
            "yhat_upper": bt.upper.ravel(),
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
        }
    )
    return [chosen, benchmark]


BACKTEST_COLUMNS = (
    "series_id",
    "model",
    "role",
    "fold",
    "fold_kind",
    "event_day",
    "cutoff",
    "target_date",
    "step",
    "y",
    "yhat",
    "yhat_lower",
    "yhat_upper",
    "scale",
    "interval_level",
)


def backtest_frame(
    trainings: list[SeriesTraining], series: list[SeriesData], level: float
) -> pd.DataFrame:
    parts = [
        part for tr, s in zip(trainings, series, strict=True) for part in _rows_of(tr, s, level)
    ]
    if not parts:
        return pd.DataFrame(columns=list(BACKTEST_COLUMNS))
    frame = pd.concat(parts, ignore_index=True)[list(BACKTEST_COLUMNS)]
    for column in ("cutoff", "target_date"):
        frame[column] = frame[column].dt.date
    return frame


def run(ctx: RunContext, args: argparse.Namespace) -> TrainedModels:
    series, frequency = load_series(ctx, STEP)
    settings = build_settings(args, frequency)
    started = time.perf_counter()
    trained_run = train_all(series, settings, args.workers)
    trainings = trained_run.trainings
    elapsed = time.perf_counter() - started
    backtest = backtest_frame(trainings, series, settings.interval_level)
    if backtest.empty:
        raise StepError(STEP, "no series is long enough for one backtest fold")
    trained = TrainedModels(
        settings=settings,
        execution_date=ctx.execution_date,
        models={t.model.series_id: t.model for t in trainings},
        calibration=trained_run.calibration,
    )
    storage.write_bytes(dump_models(trained), ctx.path(*run_folder.MODELS))
    storage.write_table(backtest, ctx.path(*run_folder.BACKTEST))
    chosen = Counter(t.model.model for t in trainings)
    unscored = sum(t.backtest is None for t in trainings)
    print(
        f"{STEP}: {len(series)} series in {elapsed:.1f}s ({len(series) / elapsed:.1f} series/s); "
        f"chosen models {dict(chosen.most_common())}; {unscored} too short for a backtest fold "
        "(seasonal naive, not in the backtest)"
    )
    return trained


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description="Backtest candidates and choose per series.")
    add_common_arguments(parser)
    parser.add_argument("--horizon", type=int, default=28, help="steps forecast (days)")
    parser.add_argument(
        "--season-length", type=int, default=None, help="cycle in steps (default: frequency's, 7)"
    )
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
    parser.add_argument(
        "--holiday-country", default="JP", help="holidays country code; 'none' to disable"
    )
    parser.add_argument(
        "--breaks",
        default=",".join(BREAKS),
        help=f"comma-separated seasonal breaks of {sorted(BREAKS)}; 'none' for none",
    )
    parser.add_argument(
        "--company-days",
        nargs="*",
        default=[],
        help="company events, each YYYY-MM-DD:name or YYYY-MM-DD+N:name (N days)",
    )
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    run(context_from(args), args)


if __name__ == "__main__":
    sys.exit(run_entry_point(main))
