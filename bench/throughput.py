"""Throughput of the forecasting path on synthetic daily demand: fit + backtest, then predict.

N series of three years' daily history (Poisson counts with a weekly cycle, a yearly swing, a
trend, Japanese holidays and a spread of volumes, some sparse) go through `train_all` (the
steps' phases: pooled event effects, `train_share` spread over every core with `map_series`,
interval calibration on the backtest table) and
`predict_series`, as the Train and Predict steps run them (without the Parquet reading and
writing). Prints per N: wall time of each phase, series/s,
peak resident memory of this process and of its worker processes (getrusage), the chosen models,
the backtest MASE of the chosen models against seasonal naive, and the backtest interval coverage
against the nominal level.

    .venv/bin/python bench/throughput.py                   # N = 100, 1000, 10000
    .venv/bin/python bench/throughput.py --sizes 1000 --workers 2

Target: 10,000 series in under 15 minutes on 2 cores. Timings are noisy when other jobs share the
machine; the load average is printed with each run.
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import resource
import sys
import time
from collections import Counter
from functools import partial
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from pipeline_code.forecasting import (
    SeriesData,
    SeriesModel,
    daily_settings,
    map_series,
    predict_series,
    resolve_workers,
)
from pipeline_code.forecasting.batch import train_all
from pipeline_code.forecasting.event_calendar import EventCalendar
from pipeline_code.forecasting.metrics import IntervalCalibration, inside_interval, mean_mase

HISTORY_DAYS = 3 * 365
START = dt.date(2023, 1, 1)


def holiday_columns(start: dt.date, days: int) -> np.ndarray:
    """0/1 columns: a public holiday outside the year end, the year end (Dec 29 - Jan 3)."""
    calendar = EventCalendar(breaks=("year_end",))
    codes = calendar.codes(start, days)
    names = [calendar.describe(int(code)) for code in codes]
    year_end = np.array(["year_end" in name for name in names], dtype=float)
    holiday = np.array(["holiday" in name for name in names], dtype=float) * (1 - year_end)
    return np.column_stack([holiday, year_end])


def synthetic_series(n: int, days: int = HISTORY_DAYS, seed: int = 0) -> list[SeriesData]:
    """Seeded daily counts; volumes from ~0.5 to ~200 a day, so some series are sparse."""
    rng = np.random.default_rng(seed)
    t = np.arange(days)
    holidays = holiday_columns(START, days)
    weekday = (START.weekday() + t) % 7
    level = np.exp(rng.uniform(np.log(0.5), np.log(200.0), n))[:, None]
    weekly = 1.0 + rng.uniform(0.1, 0.6, (n, 1)) * np.isin(weekday, [5, 6])[None, :]
    yearly = 1.0 + rng.uniform(0.0, 0.3, (n, 1)) * np.sin(2 * np.pi * t / 365.25)[None, :]
    trend = 1.0 + rng.uniform(-0.3, 0.6, (n, 1)) * (t / days)[None, :]
    holiday = 1.0 + rng.uniform(-0.5, 0.5, (n, 1)) * holidays[:, 0] - 0.6 * holidays[:, 1]
    rate = np.maximum(level * weekly * yearly * trend * holiday, 0.01)
    counts = rng.poisson(rate).astype(float)
    return [SeriesData(f"car{i:05d}", counts[i], START) for i in range(n)]


def peak_memory_mb() -> tuple[float, float]:
    """Peak resident set size (MB) of this process and of its largest finished child."""
    self_kb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    children_kb = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    return self_kb / 1024, children_kb / 1024


def _predict_pair(
    pair: tuple[SeriesData, SeriesModel], settings, calibration: IntervalCalibration
) -> object:
    return predict_series(pair[0], pair[1], settings, calibration=calibration)


def backtest_summary(trainings: list) -> dict[str, float]:
    scored = [t.backtest for t in trainings if t.backtest is not None]
    mase = [mean_mase(b.actual, b.forecast, b.scales) for b in scored]
    snaive = [mean_mase(b.actual, b.benchmark_forecast, b.scales) for b in scored]
    inside = np.concatenate([inside_interval(b.actual, b.lower, b.upper).ravel() for b in scored])
    return {
        "mase": float(np.mean(mase)),
        "snaive_mase": float(np.mean(snaive)),
        "coverage": float(np.mean(inside)),
    }


def run_size(n: int, workers: int, horizon: int, folds: int) -> None:
    settings = daily_settings(horizon=horizon, backtest_folds=folds)
    series = synthetic_series(n)
    load = os.getloadavg()[0]
    started = time.perf_counter()
    run = train_all(series, settings, workers)
    trainings = run.trainings
    trained_at = time.perf_counter()
    pairs = list(zip(series, [t.model for t in trainings], strict=True))
    predict = partial(_predict_pair, settings=settings, calibration=run.calibration)
    forecasts = map_series(predict, pairs, workers)
    finished = time.perf_counter()
    assert len(forecasts) == n
    total = finished - started
    summary = backtest_summary(trainings)
    own_mb, child_mb = peak_memory_mb()
    chosen = Counter(t.model.model for t in trainings)
    print(
        f"\n== N={n} series x {HISTORY_DAYS} days, horizon {horizon}, {folds} folds, "
        f"{workers} workers (load average at start {load:.1f})"
    )
    print(
        f"   fit+backtest {trained_at - started:8.1f}s   predict {finished - trained_at:6.1f}s   "
        f"total {total:8.1f}s   {n / total:7.1f} series/s"
    )
    print(f"   peak RSS: main {own_mb:.0f} MB, largest worker {child_mb:.0f} MB")
    print(
        f"   backtest MASE chosen {summary['mase']:.4f} vs seasonal naive "
        f"{summary['snaive_mase']:.4f} (relative {summary['mase'] / summary['snaive_mase']:.3f})"
    )
    print(
        f"   backtest interval coverage {summary['coverage']:.3f} "
        f"(nominal {settings.interval_level:.2f})"
    )
    print(f"   chosen models {dict(chosen.most_common())}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[100, 1000, 10000])
    parser.add_argument("--workers", type=int, default=0, help="processes; 0 = every core")
    parser.add_argument("--horizon", type=int, default=28)
    parser.add_argument("--folds", type=int, default=3)
    args = parser.parse_args(argv)
    workers = resolve_workers(args.workers)
    for n in args.sizes:
        run_size(n, workers, args.horizon, args.folds)
    return 0


if __name__ == "__main__":
    sys.exit(main())
