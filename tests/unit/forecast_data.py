"""Small synthetic daily series for the forecasting and step tests (seeded, fast)."""

from __future__ import annotations

import argparse
import datetime as dt
from pathlib import Path

import numpy as np
import pandas as pd

from pipeline_code import bucket_files, run_folder, shards, storage
from pipeline_code.forecasting import ForecastSettings
from pipeline_code.forecasting import candidates as cand
from pipeline_code.forecasting.event_effects import (
    adjusted_history,
    factors,
    reference_positions,
)
from pipeline_code.run_context import RunContext
from pipeline_code.steps import preproc
from pipeline_code.steps.forecast_options import add_event_arguments

WEEKLY_PROFILE = np.array([0.6, 0.9, 1.0, 1.0, 1.1, 1.6, 1.8])


def weekly_series(
    n: int, level: float = 40.0, noise: float = 3.0, seed: int = 0, drift: float = 0.0
) -> np.ndarray:
    """A strong weekly cycle around a slowly wandering level, plus noise (never negative)."""
    rng = np.random.default_rng(seed)
    wander = np.cumsum(rng.normal(0.0, drift, n)) if drift else np.zeros(n)
    cycle = WEEKLY_PROFILE[np.arange(n) % 7]
    return np.maximum(0.0, (level + wander) * cycle + rng.normal(0.0, noise, n))


def series_frame(
    n_series: int, n_days: int, end: dt.date, seed: int = 0, prefix: str = "car"
) -> pd.DataFrame:
    """Long table `series_id, ds, y` as PreProc writes it, every series ending at `end`."""
    days = [end - dt.timedelta(days=i) for i in range(n_days - 1, -1, -1)]
    parts = [
        pd.DataFrame(
            {
                "series_id": f"{prefix}{i:02d}",
                "ds": days,
                "y": weekly_series(n_days, level=20.0 + 5 * i, seed=seed + i),
            }
        )
        for i in range(n_series)
    ]
    return pd.concat(parts, ignore_index=True)


def refit_forecast(
    y: np.ndarray,
    start: dt.date | None,
    name: str,
    settings: ForecastSettings,
    horizon: int,
    effects: dict[int, float],
    reference: str = "rest_day",
) -> np.ndarray:
    """Model `name` fitted from scratch on the latest event-adjusted window, forecast `horizon`
    steps, each event day from its reference day's forecast (`reference`: "rest_day" or
    "weekday") times the events' `effects`: what Predict must give from the stored fit."""
    n = len(y)
    first = max(0, n - settings.fit_window)
    codes = None
    if start is not None and settings.calendar is not None and settings.frequency == "D":
        codes = settings.calendar.codes(start, n + horizon)
        offsets = settings.calendar.reference_offsets(start, n + horizon)[n:]
        if reference != "rest_day":
            offsets = np.zeros_like(offsets)
    history = y if codes is None else adjusted_history(y, codes[:n], effects)
    reach = horizon if codes is None else max(horizon, settings.season_length)
    inp = cand.CandidateInput(
        history[first:], reach, settings.season_length, settings.extra_season_lengths
    )
    forecast = cand.run_candidates((name,), inp)[name]
    if codes is not None:
        forecast = forecast[reference_positions(offsets, reach)] * factors(codes[n:], effects)
    return np.maximum(forecast[:horizon], 0.0)


def write_run_table(
    lake: Path, frame: pd.DataFrame, bucket_file, execution_id: str = "ex-1"
) -> None:
    """A per-series table of a run as the steps leave it: one file per bucket of its series, and
    the run's series index listing them (what PreProc writes beside the series)."""
    ctx = RunContext(dt.date(2025, 1, 1), execution_id, str(lake))
    bucket_files.write_buckets(ctx, bucket_files.split_by_bucket(frame), bucket_file)
    bucket_files.write_index(ctx, frame)


def write_preproc_quality(ctx: RunContext, frame: pd.DataFrame) -> None:
    """PreProc's per-bucket data-quality files for the series of `frame` (nothing found)."""
    parts = bucket_files.split_by_bucket(frame) if len(frame) else {}
    for bucket in range(shards.BUCKETS):
        rows = parts.get(bucket, frame.iloc[0:0])
        report = preproc.bucket_quality(preproc.Quality(), rows)
        storage.write_json(report, ctx.path(*run_folder.preproc_quality_bucket(bucket)))


def write_preproc(
    lake: Path, frame: pd.DataFrame, end: dt.date, execution_id: str = "ex-1", *options: str
) -> None:
    """The series of a run as PreProc leaves them: bucket files, index and event pool."""
    ctx = RunContext(end, execution_id, str(lake))
    parser = argparse.ArgumentParser()
    add_event_arguments(parser)
    preproc.write_series(ctx, frame, parser.parse_args(list(options)))
