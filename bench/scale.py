"""Scale-out of the forecasting steps: the sharded Train + Predict path on N simulated instances.

The synthetic daily series of `throughput.py` are split as a multi-instance job splits them
(`shards.Share`: rank r of N takes the buckets b with b % N == r) and run through the same
phases the steps run (`forecasting.batch`):

1. the leader pools the calendar events' effects over all series (PreProc);
2. each instance trains its share (`train_share`, Train) in a process of its own, started fresh
   (spawn: it holds its share only) and pinned to one core with `os.sched_setaffinity`, with one
   worker: N instances on N cores, so the speed-up is not borrowed from idle cores;
   and writes its buckets' models and backtest summaries into a scratch lake (`train.write_share`);
3. the leader runs the TrainEvaluation step itself over those files, in a fresh process pinned
   likewise: it calibrates the intervals and scores every series, one bucket at a time;
4. each instance forecasts its share (Predict), pinned likewise.

Prints per N each instance's share, compute time (wall and CPU) and peak resident memory (of
the instance's own process: VmHWM), the phase wall times, the speed-up over N = 1, and whether
the forecasts equal those of N = 1 exactly; then the measured costs per series and the
projection table of the README (wall time and instance-hours for 10k to 1M series on three
instance types). Two options measure the leader's steps beyond what this machine can train:
`--leader-series` runs TrainEvaluation over the measured backtest summaries copied to that
many series, `--extract-series` writes a source table of that many car models (`--extract-days`
days of Poisson applications), runs Extract over it with DuckDB (the SQL Athena runs on AWS) and
PreProc on 1 and on 2 instances over its buckets, then projects 1M series on 16 instances.

    .venv/bin/python bench/scale.py                        # 2000 series, N = 1 and 2
    .venv/bin/python bench/scale.py --series 1000 --leader-series 100000 1000000 \
        --extract-series 10000 100000 --extract-days 1095 365

Needs as many cores as the largest N. Timings are noisy on a shared machine: the load average
is printed at the start and the end.
"""

from __future__ import annotations

import argparse
import datetime as dt
import multiprocessing as mp
import os
import queue
import resource
import sys
import tempfile
import time
from contextlib import redirect_stdout
from dataclasses import dataclass
from functools import partial
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from throughput import synthetic_series

from pipeline_code import bucket_files, run_folder, storage
from pipeline_code.forecasting import (
    ForecastSettings,
    SeriesData,
    SeriesModel,
    daily_settings,
    map_series,
    predict_series,
)
from pipeline_code.forecasting.backtest_table import BacktestSummary
from pipeline_code.forecasting.batch import pool_events, train_share
from pipeline_code.forecasting.event_effects import PooledEvents
from pipeline_code.forecasting.metrics import IntervalCalibration
from pipeline_code.run_context import RunContext
from pipeline_code.shards import BUCKETS, Share
from pipeline_code.steps import evaluate, extract, preproc, train

EXECUTION = "scale-bench"


@dataclass(frozen=True)
class InstanceResult:
    rank: int
    series: int
    seconds: float  # compute inside the instance, start-up excluded
    cpu_seconds: float  # of that, the CPU time the instance got (less sensitive to load)
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


def _context(lake: str, series: list[SeriesData]) -> RunContext:
    """The scratch run folder of series that all end on the same day."""
    first = series[0]
    end = first.start + dt.timedelta(days=len(first.y) - 1) if first.start else dt.date.today()
    return RunContext(end, EXECUTION, lake)


def _train_instance(
    rank: int,
    core: int,
    series: list[SeriesData],
    settings: ForecastSettings,
    pool: PooledEvents,
    lake: str,
    results: mp.Queue,
) -> None:
    _pin(core)
    started, cpu = time.perf_counter(), time.process_time()
    trainings = train_share(series, settings, pool, workers=1)
    train.write_share(_context(lake, series), settings, series, trainings)
    seconds = time.perf_counter() - started
    payload = [t.model for t in trainings]
    results.put(
        InstanceResult(rank, len(series), seconds, time.process_time() - cpu, _peak_mb(), payload)
    )


def _evaluate_instance(
    rank: int, core: int, lake: str, execution_date: dt.date, n: int, results: mp.Queue
) -> None:
    """The TrainEvaluation step, run over the files the Train instances left."""
    _pin(core)
    ctx = RunContext(execution_date, EXECUTION, lake)
    started, cpu = time.perf_counter(), time.process_time()
    with redirect_stdout(None):
        evaluate.run(
            ctx,
            evaluate.parse_args(
                [
                    "--execution-date",
                    execution_date.isoformat(),
                    "--execution-id",
                    EXECUTION,
                    "--data-root",
                    lake,
                ]
            ),
        )
    seconds = time.perf_counter() - started
    calibration = IntervalCalibration.from_json(
        storage.read_json(ctx.path(*run_folder.CALIBRATION))
    )
    results.put(
        InstanceResult(rank, n, seconds, time.process_time() - cpu, _peak_mb(), calibration)
    )


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
    started, cpu = time.perf_counter(), time.process_time()
    forecast = partial(_forecast_one, settings=settings, calibration=calibration)
    forecasts = map_series(forecast, pairs, workers=1)
    seconds = time.perf_counter() - started
    payload = {pair[0].series_id: f for pair, f in zip(pairs, forecasts, strict=True)}
    results.put(
        InstanceResult(rank, len(pairs), seconds, time.process_time() - cpu, _peak_mb(), payload)
    )


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
    collected = []  # before join: the queue must drain
    while len(collected) < len(processes):
        try:
            collected.append(results.get(timeout=5))
        except queue.Empty:
            if any(p.exitcode not in (None, 0) for p in processes):
                sys.exit("an instance failed; its traceback is above")
    for process in processes:
        process.join()
        if process.exitcode != 0:
            sys.exit(f"an instance exited with code {process.exitcode}")
    return sorted(collected, key=lambda r: r.rank), time.perf_counter() - started


@dataclass(frozen=True)
class ScaleRun:
    count: int
    train_wall: float
    evaluate_wall: float
    predict_wall: float
    train: list[InstanceResult]
    evaluation: InstanceResult
    predict: list[InstanceResult]
    forecasts: dict[str, np.ndarray]
    summary_bytes: int
    summary: BacktestSummary  # every bucket's, one table each

    @property
    def wall(self) -> float:
        return self.train_wall + self.evaluate_wall + self.predict_wall

    @property
    def compute(self) -> float:
        """Slowest instance of each phase plus the leader's evaluation: start-up excluded."""
        train = max(r.seconds for r in self.train)
        predict = max(r.seconds for r in self.predict)
        return train + self.evaluation.seconds + predict

    @property
    def cpu(self) -> float:
        """As `compute`, in CPU seconds: what the instances' shares cost, whatever the load."""
        train = max(r.cpu_seconds for r in self.train)
        predict = max(r.cpu_seconds for r in self.predict)
        return train + self.evaluation.cpu_seconds + predict


def _write_preproc_index(ctx: RunContext, ids: pd.DataFrame) -> None:
    """The series index and data-quality counters PreProc's instances leave, one file a bucket."""
    bucket_files.write_index(ctx, ids)
    parts = bucket_files.split_by_bucket(ids)
    for bucket in range(BUCKETS):
        rows = parts.get(bucket, ids.iloc[0:0])
        report = preproc.bucket_quality(preproc.Quality(), rows)
        storage.write_json(report, ctx.path(*run_folder.preproc_quality_bucket(bucket)))


def _folder_bytes(lake: str, folder: tuple[str, str]) -> int:
    return sum(p.stat().st_size for p in Path(lake, run_folder.RUNS, EXECUTION, *folder).iterdir())


def run_count(
    count: int, series: list[SeriesData], settings: ForecastSettings, pool: PooledEvents
) -> ScaleRun:
    shares = [Share(rank, count) for rank in range(count)]
    with tempfile.TemporaryDirectory(prefix="scale-bench-") as lake:
        ctx = _context(lake, series)
        ids = pd.DataFrame({"series_id": [s.series_id for s in series]})
        _write_preproc_index(ctx, ids)
        parts = [[s for s in series if share.owns(s.series_id)] for share in shares]
        trained, train_wall = run_instances(
            _train_instance,
            [(part, settings, pool, lake) for part in parts],
        )
        evaluated, evaluate_wall = run_instances(
            _evaluate_instance, [(lake, ctx.execution_date, len(series))]
        )
        summary_bytes = sum(
            _folder_bytes(lake, folder)
            for folder in (run_folder.BACKTEST_SCORES, run_folder.CALIBRATION_POINTS)
        )
        summary = _read_summary(evaluate.backtest_files(ctx))
    calibration = evaluated[0].payload
    pairs = [
        list(zip(part, r.payload, strict=True)) for part, r in zip(parts, trained, strict=True)
    ]
    predicted, predict_wall = run_instances(
        _predict_instance, [(p, settings, calibration) for p in pairs]
    )
    forecasts = {sid: f for r in predicted for sid, f in r.payload.items()}
    return ScaleRun(
        count,
        train_wall,
        evaluate_wall,
        predict_wall,
        trained,
        evaluated[0],
        predicted,
        forecasts,
        summary_bytes,
        summary,
    )


def _read_summary(files: list[evaluate.BucketFiles]) -> BacktestSummary:
    """The bucket files' summaries as one: points renumbered to the concatenated scores."""
    parts = [evaluate.read_summary(f) for f in files]
    offsets = np.cumsum([0] + [len(p.scores) for p in parts])
    scores = pd.concat([p.scores for p in parts], ignore_index=True)
    points = pd.concat(
        [
            p.points.assign(series=p.points["series"] + o)
            for p, o in zip(parts, offsets, strict=False)
        ],
        ignore_index=True,
    )
    return BacktestSummary(scores, points)


def write_replicated_summary(ctx: RunContext, summary: BacktestSummary, copies: int) -> int:
    """`copies` of every series' summary under new ids, written as Train writes them (one pair
    of files per bucket, and the series index); returns the number of series."""
    n = len(summary.scores)
    scores = pd.concat(
        [
            summary.scores.assign(series_id=summary.scores["series_id"] + f"~{c}")
            for c in range(copies)
        ],
        ignore_index=True,
    )
    points = pd.concat(
        [summary.points.assign(series=summary.points["series"] + c * n) for c in range(copies)],
        ignore_index=True,
    )
    index = bucket_files.series_index(scores)
    _write_preproc_index(ctx, scores)
    series_bucket = bucket_files.buckets_of(scores["series_id"]).to_numpy()
    point_bucket = series_bucket[points["series"].to_numpy()]
    order = np.argsort(point_bucket, kind="stable")
    points, point_bucket = points.iloc[order], point_bucket[order]
    bounds = np.searchsorted(point_bucket, np.arange(BUCKETS + 1))
    for bucket in bucket_files.index_buckets(index):
        own = np.flatnonzero(series_bucket == bucket)
        local = np.full(len(scores), -1, dtype=np.int32)
        local[own] = np.arange(len(own), dtype=np.int32)
        rows = points.iloc[bounds[bucket] : bounds[bucket + 1]]
        rows = rows.assign(series=local[rows["series"].to_numpy()])
        storage.write_table(
            scores.iloc[own].reset_index(drop=True),
            ctx.path(*run_folder.backtest_scores_bucket(bucket)),
        )
        storage.write_table(
            rows.reset_index(drop=True), ctx.path(*run_folder.calibration_points_bucket(bucket))
        )
    return len(scores)


def leader_at_scale(base: ScaleRun, target: int, execution_date: dt.date) -> InstanceResult:
    """The TrainEvaluation step over `target` series' summaries (the measured ones, replicated),
    in a fresh process pinned to one core: its time and peak memory where every instance's
    Train could not run here."""
    copies = max(1, round(target / len(base.summary.scores)))
    with tempfile.TemporaryDirectory(prefix="scale-bench-leader-") as lake:
        ctx = RunContext(execution_date, EXECUTION, lake)
        n = write_replicated_summary(ctx, base.summary, copies)
        evaluated, _ = run_instances(_evaluate_instance, [(lake, execution_date, n)])
    leader = evaluated[0]
    print(
        f"\n== TrainEvaluation on the leader over {n} series' backtest summaries ({copies} copies "
        f"of the measured ones): {leader.seconds:.1f} s ({leader.seconds / n * 1000:.3f} ms a "
        f"series), peak RSS {leader.peak_mb:.0f} MB"
    )
    return leader


def print_run(run: ScaleRun, base: ScaleRun | None) -> None:
    print(f"\n== N = {run.count} instance(s), one core and one worker each")
    phases = (("Train", run.train), ("Evaluate", [run.evaluation]), ("Predict", run.predict))
    for phase, results in phases:
        for r in results:
            print(
                f"   {phase:<8} instance {r.rank + 1} of {run.count}: {r.series:6d} series  "
                f"{r.seconds:8.1f} s ({r.cpu_seconds:.1f} s CPU)  peak RSS {r.peak_mb:6.0f} MB"
            )
    print(
        f"   phases (wall, process start-up included): Train {run.train_wall:.1f} s, "
        f"TrainEvaluation on the leader {run.evaluate_wall:.1f} s, Predict {run.predict_wall:.1f} s"
    )
    line = (
        f"   total wall {run.wall:.1f} s, compute (slowest instance a phase) {run.compute:.1f} s "
        f"({run.cpu:.1f} s CPU)"
    )
    if base is not None:
        same = run.forecasts.keys() == base.forecasts.keys() and all(
            np.array_equal(run.forecasts[k], base.forecasts[k]) for k in base.forecasts
        )
        line += (
            f"; speed-up over N=1: wall {base.wall / run.wall:.2f}x, "
            f"compute {base.compute / run.compute:.2f}x, CPU {base.cpu / run.cpu:.2f}x; "
            f"forecasts identical to N=1: {same}"
        )
    print(line)


def print_costs(base: ScaleRun, pool_seconds: float, n: int) -> None:
    """The per-series figures the README's projection is computed from (N = 1, one core)."""
    train = sum(r.seconds for r in base.train) / n
    predict = sum(r.seconds for r in base.predict) / n
    print("\n== measured cost per series (N = 1, one core)")
    print(f"   Train {train * 1000:.1f} ms, Predict {predict * 1000:.2f} ms (per instance, split)")
    print(
        f"   leader: event pool {pool_seconds / n * 1000:.2f} ms, TrainEvaluation "
        f"{base.evaluation.seconds / n * 1000:.2f} ms (peak RSS {base.evaluation.peak_mb:.0f} MB); "
        f"backtest summary on disk {base.summary_bytes / n:.0f} bytes"
    )


RAW_ROW_BYTES = 240  # what one source row took in pandas memory when Extract read rows


def _extract_instance(
    rank: int, core: int, lake: str, execution_date: dt.date, lookback: int, results: mp.Queue
) -> None:
    """The Extract step over the source table in `lake` (DuckDB), pinned to one core."""
    _pin(core)
    started, cpu = time.perf_counter(), time.process_time()
    with redirect_stdout(None):
        extract.main(
            [
                *("--execution-date", execution_date.isoformat()),
                *("--execution-id", EXECUTION, "--data-root", lake),
                *("--lookback-days", str(lookback), "--database", "bench"),
                *("--holiday-country", "none", "--breaks", "none"),
            ]
        )
    seconds = time.perf_counter() - started
    results.put(InstanceResult(rank, 0, seconds, time.process_time() - cpu, _peak_mb(), None))


def _preproc_instance(
    rank: int, core: int, lake: str, execution_date: dt.date, count: int, results: mp.Queue
) -> None:
    """PreProc as instance `rank` of `count`: its own buckets of the counts only. Its payload is
    the resident memory before the step, the process's imports."""
    _pin(core)
    base_mb = _peak_mb()
    started, cpu = time.perf_counter(), time.process_time()
    with redirect_stdout(None):
        out = preproc.run(
            RunContext(execution_date, EXECUTION, lake),
            56,
            28,
            events=preproc.parse_args(
                [
                    *("--execution-date", "x", "--execution-id", "x", "--data-root", "x"),
                    *("--holiday-country", "none", "--breaks", "none"),
                ]
            ),
            share=Share(rank, count),
        )
    seconds = time.perf_counter() - started
    results.put(
        InstanceResult(rank, len(out), seconds, time.process_time() - cpu, _peak_mb(), base_mb)
    )


def write_source(lake: str, count: int, days: int, end: dt.date, rate: float = 0.5) -> int:
    """A source table of `count` car models over `days` days ending at `end`: Poisson
    applications a day, each model's rate drawn around `rate`; returns the rows written."""
    rng = np.random.default_rng(7)
    rates = rng.lognormal(np.log(rate), 0.8, count)
    names = pa.array([f"model {i:07d}" for i in range(count)])
    written = 0
    for back in range(days):
        day = end - dt.timedelta(days=back)
        per_model = rng.poisson(rates)
        n = int(per_model.sum())
        models = np.repeat(np.arange(count, dtype=np.int32), per_model)
        at = np.datetime64(day) + rng.integers(0, 86_400_000_000, n).astype("timedelta64[us]")
        table = pa.table(
            {
                "application_id": pa.array(np.arange(written, written + n)).cast(pa.string()),
                "applied_at": pa.array(at, pa.timestamp("us")),
                "car_model": pa.DictionaryArray.from_arrays(pa.array(models), names),
                "plan": pa.array(["3y"] * n),
                "channel": pa.array(["web"] * n),
                "prefecture": pa.array(["Tokyo"] * n),
            }
        )
        folder = Path(lake, "applications", f"dt={day}")
        folder.mkdir(parents=True)
        pq.write_table(table, folder / "part-0.parquet")
        written += n
    return written


def scanned_bytes(lake: str) -> int:
    """The bytes of the four columns the queries read, as Athena bills a scan (compressed)."""
    columns = {"application_id", "applied_at", "car_model", "dt"}
    total = 0
    for path in Path(lake, "applications").rglob("*.parquet"):
        meta = pq.ParquetFile(path).metadata
        for g in range(meta.num_row_groups):
            group = meta.row_group(g)
            for c in range(group.num_columns):
                if group.column(c).path_in_schema in columns:
                    total += group.column(c).total_compressed_size
    return total


@dataclass(frozen=True)
class ExtractScale:
    series: int
    rows: int
    scanned: int
    extract: InstanceResult
    preproc: dict[int, list[InstanceResult]]  # instance count: each instance's result


def extract_at_scale(count: int, days: int, instances: list[int]) -> ExtractScale:
    """Extract (DuckDB, one core) over a source of `count` models, then PreProc on each of N
    instances (one core each) over its buckets of the counts."""
    end = dt.date(2026, 11, 30)
    with tempfile.TemporaryDirectory(prefix="scale-bench-extract-") as lake:
        rows = write_source(lake, count, days, end)
        scanned = scanned_bytes(lake)
        [done], _ = run_instances(_extract_instance, [(lake, end, days)])
        preprocs = {}
        for n in instances:
            preprocs[n], _ = run_instances(_preproc_instance, [(lake, end, n)] * n)
            for folder in ("series", "series_index", "event_statistics", "quality"):
                for path in Path(lake, run_folder.RUNS, EXECUTION, "preproc", folder).glob("*"):
                    path.unlink()
    result = ExtractScale(count, rows, scanned, done, preprocs)
    print_extract_scale(result, days)
    return result


def print_extract_scale(run: ExtractScale, days: int) -> None:
    e = run.extract
    print(
        f"\n== Extract + PreProc over {run.series:,} models x {days} days ({run.rows:,} source "
        f"rows, {run.scanned / 1e6:.0f} MB of the queried columns)"
    )
    print(
        f"   Extract (DuckDB, 1 core): {e.seconds:.1f} s ({e.cpu_seconds:.1f} s CPU), peak RSS "
        f"{e.peak_mb:.0f} MB; reading the rows into pandas would have taken about "
        f"{run.rows * RAW_ROW_BYTES / 1e6:.0f} MB"
    )
    for n, results in run.preproc.items():
        for r in results:
            print(
                f"   PreProc instance {r.rank + 1} of {n}: {r.series:7,} series  "
                f"{r.seconds:6.1f} s "
                f"({r.cpu_seconds:.1f} s CPU)  peak RSS {r.peak_mb:5.0f} MB"
            )


ATHENA_DOLLARS_PER_TB = 5.0  # https://aws.amazon.com/athena/pricing/ (SQL queries, per TB)


def print_extract_projection(
    runs: list[ExtractScale], target: int, days: int, instances: int, extract_days: list[int]
) -> None:
    """Extract + PreProc for `target` series over `days` days on `instances` instances. PreProc's
    CPU time is fitted as a cost per series plus one per series-day (two runs of other shapes
    separate them), divided by the instances; its memory is one bucket's rows at a time, so it
    scales with the series per bucket x days, whatever the instances. Athena's scan is paid per
    byte, the aggregates' and the counts' queries each reading the window."""
    shapes = [
        (r.series, r.series * d, r.preproc[1][0]) for r, d in zip(runs, extract_days, strict=True)
    ]
    if len(shapes) > 1:
        a = np.array([[series, cells] for series, cells, _ in shapes], dtype=float)
        cpu = [r.cpu_seconds for *_, r in shapes]  # CPU time: what load on the machine moves least
        per_series, per_cell = np.linalg.lstsq(a, cpu, rcond=None)[0]
    else:
        per_series, per_cell = 0.0, shapes[0][2].cpu_seconds / shapes[0][1]
    seconds = (target * per_series + target * days * per_cell) / instances
    _, cells, largest = max(shapes, key=lambda shape: shape[1] / shape[0])
    base = float(largest.payload)
    memory = base + (largest.peak_mb - base) * (target * days) / cells
    run = max(runs, key=lambda r: r.series)
    run_days = extract_days[runs.index(run)]
    scanned = run.scanned * (target / run.series) * (days / run_days) * 2
    print(
        f"\n== projection for {target:,} series x {days} days on {instances} instances: PreProc "
        f"{per_series * 1000:.2f} ms a series + {per_cell * 1e6:.2f} us a series-day, "
        f"{seconds / 60:.1f} min on each instance, at most about {memory:,.0f} MB (one bucket "
        f"of {target // BUCKETS:,} series at a time); Athena scans about {scanned / 1e9:.0f} GB "
        f"a run (${scanned / 1e12 * ATHENA_DOLLARS_PER_TB:.2f} at ${ATHENA_DOLLARS_PER_TB:.0f}/TB)"
    )


INSTANCE_TYPES = (("ml.m5.xlarge", 4), ("ml.m5.4xlarge", 16), ("ml.c5.9xlarge", 36))
PROJECTED_COUNTS = (1, 4, 16)
PROJECTED_SERIES = (10_000, 100_000, 1_000_000)


def _figure(value: float) -> str:
    """Two or three significant digits, never in exponent form."""
    return f"{value:.0f}" if value >= 100 else f"{value:.1f}" if value >= 1 else f"{value:.2f}"


def print_projection(base: ScaleRun, pool_seconds: float, leaders: list[InstanceResult]) -> None:
    """The README's table: Train + Predict split over every vCPU of every instance, plus the
    leader's event pool and TrainEvaluation (a line through its measured runs), one core."""
    n = base.train[0].series
    per_vcpu = (base.train[0].seconds + base.predict[0].seconds) / n
    runs = [(n, base.evaluation.seconds)] + [(r.series, r.seconds) for r in leaders]
    sizes, seconds = zip(*runs, strict=True)
    slope, fixed = np.polyfit(sizes, seconds, 1) if len(runs) > 1 else (seconds[0] / n, 0.0)
    print(
        f"\n== projection: wall = series x {per_vcpu * 1000:.1f} ms / (vCPUs x instances) + "
        f"series x {pool_seconds / n * 1000:.2f} ms + {fixed:.1f} s + series x "
        f"{slope * 1000:.3f} ms (leader: event pool, TrainEvaluation)"
    )
    header = " | ".join(f"{name} ({vcpus} vCPU) x1 / x4 / x16" for name, vcpus in INSTANCE_TYPES)
    print(f"| series | {header} |")
    print("|---|" + "---|" * len(INSTANCE_TYPES))
    for series in PROJECTED_SERIES:
        leader = series * pool_seconds / n + fixed + series * slope
        cells = []
        for _, vcpus in INSTANCE_TYPES:
            walls = [series * per_vcpu / (vcpus * count) + leader for count in PROJECTED_COUNTS]
            hours = [
                count * wall / 3600 for count, wall in zip(PROJECTED_COUNTS, walls, strict=True)
            ]
            minutes = " / ".join(_figure(w / 60) for w in walls)
            cells.append(f"{minutes} min; {' / '.join(_figure(h) for h in hours)} instance-h")
        print(f"| {series:,} | " + " | ".join(cells) + " |")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--series", type=int, default=2000, help="synthetic daily series")
    parser.add_argument("--instances", type=int, nargs="+", default=[1, 2])
    parser.add_argument("--horizon", type=int, default=28)
    parser.add_argument("--folds", type=int, default=3)
    parser.add_argument(
        "--extract-series",
        type=int,
        nargs="*",
        default=[],
        help="also run Extract (DuckDB) and PreProc on 1 and 2 instances over a source of this "
        "many car models",
    )
    parser.add_argument(
        "--extract-days",
        type=int,
        nargs="*",
        default=[365],
        help="days of source for each of --extract-series (the last repeats)",
    )
    parser.add_argument(
        "--leader-series",
        type=int,
        nargs="*",
        default=[],
        help="also run TrainEvaluation over this many series (the measured summaries, copied)",
    )
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
    if base is not None and base.count == 1:
        leaders = [
            leader_at_scale(base, target, _context("", series).execution_date)
            for target in args.leader_series
        ]
        print_projection(base, pool_seconds, leaders)
    days = [
        args.extract_days[min(i, len(args.extract_days) - 1)]
        for i in range(len(args.extract_series))
    ]
    extracts = [
        extract_at_scale(count, d, [1, 2])
        for count, d in zip(args.extract_series, days, strict=True)
    ]
    if extracts:
        print_extract_projection(extracts, 1_000_000, 1095, 16, days)
    print(f"\nload average at the end {os.getloadavg()[0]:.1f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
