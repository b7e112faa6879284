"""Scale-out of the forecasting steps: the sharded Train + Predict path on N simulated instances.

The synthetic daily series of `throughput.py` are split as a multi-instance job splits them
(`shards.Share`: rank r of N takes the buckets b with b % N == r) and run through the same
phases the steps run (`forecasting.batch`):

1. the leader pools the calendar events' effects over all series (PreProc);
2. each instance trains its share (`train_share`, Train) in a process of its own, started fresh
   (spawn: it holds its share only) and pinned to one core with `os.sched_setaffinity`, with one
   worker: N instances on N cores, so the speed-up is not borrowed from idle cores;
3. the leader calibrates the intervals over all backtest rows (TrainEvaluation);
4. each instance forecasts its share (Predict), pinned likewise.

Prints per N each instance's share, compute time and peak resident memory (of the instance's
own process: VmHWM), the phase wall times, the speed-up over N = 1, and whether the forecasts
equal those of N = 1 exactly; then the measured costs per series that the README's
projection uses (seconds of one core per series for the per-instance phases and for the
leader's, backtest bytes per series held by the leader).

    .venv/bin/python bench/scale.py                        # 2000 series, N = 1 and 2
    .venv/bin/python bench/scale.py --series 500 --instances 1 2

Needs as many cores as the largest N. Timings are noisy on a shared machine: the load average
is printed at the start and the end.
"""

from __future__ import annotations

import argparse
import multiprocessing as mp
import os
import resource
import sys
import time
from dataclasses import dataclass
from functools import partial
from pathlib import Path

import numpy as np
import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from throughput import synthetic_series

from pipeline_code.forecasting import (
    ForecastSettings,
    SeriesData,
    SeriesModel,
    daily_settings,
    map_series,
    predict_series,
)
from pipeline_code.forecasting.backtest_table import (
    backtest_calibration,
    backtest_frame,
    calibrated_frame,
)
from pipeline_code.forecasting.batch import pool_events, train_share
from pipeline_code.forecasting.event_effects import PooledEvents
from pipeline_code.forecasting.metrics import IntervalCalibration
from pipeline_code.shards import Share


@dataclass(frozen=True)
class InstanceResult:
    rank: int
    series: int
    seconds: float  # compute inside the instance, start-up excluded
    peak_mb: float
    payload: object


def _peak_mb() -> float:
    """This process's own peak resident memory: VmHWM of its address space. (getrusage's
    ru_maxrss would also count the parent's memory at the fork before the spawn's exec.)"""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def _pin(core: int) -> None:
    os.sched_setaffinity(0, {core})


def _train_instance(
    rank: int,
    core: int,
    series: list[SeriesData],
    settings: ForecastSettings,
    pool: PooledEvents,
    results: mp.Queue,
) -> None:
    _pin(core)
    started = time.perf_counter()
    trainings = train_share(series, settings, pool, workers=1)
    backtest = backtest_frame(trainings, series, settings)
    seconds = time.perf_counter() - started
    payload = (backtest, [t.model for t in trainings])
    results.put(InstanceResult(rank, len(series), seconds, _peak_mb(), payload))


def _forecast_one(
    pair: tuple[SeriesData, SeriesModel],
    settings: ForecastSettings,
    calibration: IntervalCalibration,
) -> np.ndarray:
    forecast = predict_series(pair[0], pair[1], settings, calibration=calibration)
    return np.concatenate([forecast.yhat, forecast.lower, forecast.upper])


def _predict_instance(
    rank: int,
    core: int,
    pairs: list[tuple[SeriesData, SeriesModel]],
    settings: ForecastSettings,
    calibration: IntervalCalibration,
    results: mp.Queue,
) -> None:
    _pin(core)
    started = time.perf_counter()
    forecast = partial(_forecast_one, settings=settings, calibration=calibration)
    forecasts = map_series(forecast, pairs, workers=1)
    seconds = time.perf_counter() - started
    payload = {pair[0].series_id: f for pair, f in zip(pairs, forecasts, strict=True)}
    results.put(InstanceResult(rank, len(pairs), seconds, _peak_mb(), payload))


def run_instances(target, shares: list[tuple]) -> tuple[list[InstanceResult], float]:
    """One fresh process per instance, all at once; their results by rank and the phase's wall
    time (process start-up included)."""
    context = mp.get_context("spawn")
    results: mp.Queue = context.Queue()
    started = time.perf_counter()
    processes = [
        context.Process(target=target, args=(rank, rank, *share, results))
        for rank, share in enumerate(shares)
    ]
    for process in processes:
        process.start()
    collected = [results.get() for _ in processes]  # before join: the queue must drain
    for process in processes:
        process.join()
        if process.exitcode != 0:
            sys.exit(f"an instance exited with code {process.exitcode}")
    return sorted(collected, key=lambda r: r.rank), time.perf_counter() - started


@dataclass(frozen=True)
class ScaleRun:
    count: int
    train_wall: float
    calibrate_seconds: float
    predict_wall: float
    train: list[InstanceResult]
    predict: list[InstanceResult]
    forecasts: dict[str, np.ndarray]
    backtest_bytes: int

    @property
    def wall(self) -> float:
        return self.train_wall + self.calibrate_seconds + self.predict_wall

    @property
    def compute(self) -> float:
        """Slowest instance of each phase plus the leader's calibration: start-up excluded."""
        train = max(r.seconds for r in self.train)
        predict = max(r.seconds for r in self.predict)
        return train + self.calibrate_seconds + predict


def run_count(
    count: int, series: list[SeriesData], settings: ForecastSettings, pool: PooledEvents
) -> ScaleRun:
    shares = [[s for s in series if Share(rank, count).owns(s.series_id)] for rank in range(count)]
    trained, train_wall = run_instances(
        _train_instance, [(share, settings, pool) for share in shares]
    )
    started = time.perf_counter()
    frames = [r.payload[0] for r in trained if len(r.payload[0])]
    backtest = pd.concat(frames, ignore_index=True)
    calibration = backtest_calibration(backtest)
    calibrated_frame(backtest, calibration)  # what TrainEvaluation scores
    calibrate_seconds = time.perf_counter() - started
    pairs = [
        list(zip(share, r.payload[1], strict=True))
        for share, r in zip(shares, trained, strict=True)
    ]
    predicted, predict_wall = run_instances(
        _predict_instance, [(p, settings, calibration) for p in pairs]
    )
    forecasts = {sid: f for r in predicted for sid, f in r.payload.items()}
    return ScaleRun(
        count,
        train_wall,
        calibrate_seconds,
        predict_wall,
        trained,
        predicted,
        forecasts,
        int(backtest.memory_usage(deep=True).sum()),
    )


def print_run(run: ScaleRun, base: ScaleRun | None) -> None:
    print(f"\n== N = {run.count} instance(s), one core and one worker each")
    for phase, results in (("Train", run.train), ("Predict", run.predict)):
        for r in results:
            print(
                f"   {phase:<8} instance {r.rank + 1} of {run.count}: {r.series:6d} series  "
                f"{r.seconds:8.1f} s  peak RSS {r.peak_mb:6.0f} MB"
            )
    print(
        f"   phases (wall, process start-up included): Train {run.train_wall:.1f} s, "
        f"calibration on the leader {run.calibrate_seconds:.1f} s, Predict {run.predict_wall:.1f} s"
    )
    line = f"   total wall {run.wall:.1f} s, compute (slowest instance a phase) {run.compute:.1f} s"
    if base is not None:
        same = run.forecasts.keys() == base.forecasts.keys() and all(
            np.array_equal(run.forecasts[k], base.forecasts[k]) for k in base.forecasts
        )
        line += (
            f"; speed-up over N=1: wall {base.wall / run.wall:.2f}x, "
            f"compute {base.compute / run.compute:.2f}x; forecasts identical to N=1: {same}"
        )
    print(line)


def print_costs(base: ScaleRun, pool_seconds: float, n: int) -> None:
    """The per-series figures the README's projection is computed from (N = 1, one core)."""
    train = sum(r.seconds for r in base.train) / n
    predict = sum(r.seconds for r in base.predict) / n
    print("\n== measured cost per series (N = 1, one core)")
    print(f"   Train {train * 1000:.1f} ms, Predict {predict * 1000:.2f} ms (per instance, split)")
    print(
        f"   leader: event pool {pool_seconds / n * 1000:.2f} ms, calibration "
        f"{base.calibrate_seconds / n * 1000:.2f} ms; backtest held by the leader "
        f"{base.backtest_bytes / n / 1024:.1f} KiB"
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--series", type=int, default=2000, help="synthetic daily series")
    parser.add_argument("--instances", type=int, nargs="+", default=[1, 2])
    parser.add_argument("--horizon", type=int, default=28)
    parser.add_argument("--folds", type=int, default=3)
    args = parser.parse_args(argv)
    cores = len(os.sched_getaffinity(0))
    if max(args.instances) > cores:
        sys.exit(f"N = {max(args.instances)} needs as many cores; this process may use {cores}")
    settings = daily_settings(horizon=args.horizon, backtest_folds=args.folds)
    series = synthetic_series(args.series)
    print(
        f"{args.series} series x {len(series[0].y)} days, horizon {args.horizon}, "
        f"{args.folds} folds + 1 a year back; load average at start {os.getloadavg()[0]:.1f}"
    )
    started = time.perf_counter()
    pool = pool_events(series, settings)
    pool_seconds = time.perf_counter() - started
    print(f"event pool on the leader (PreProc): {pool_seconds:.1f} s")
    base = None
    for count in args.instances:
        run = run_count(count, series, settings, pool)
        print_run(run, base)
        base = base or run
    if base is not None and base.count == 1:
        print_costs(base, pool_seconds, args.series)
    print(f"\nload average at the end {os.getloadavg()[0]:.1f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
