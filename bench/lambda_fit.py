"""How many series `pipeline.compute: lambda` serves: each step's time and memory against the
series count, measured in local runs of the lambda definition, projected onto Lambda's vCPUs.

For each size it writes a lake (the demo generator up to its 320 models; beyond, the Poisson
source of bench/scale.py, `write_source`, three years at about 2 applications a model-day),
runs the environment's definition built with `compute: lambda` through the local runner (each
step in the image's Lambda handler, as a Lambda function runs it) and samples the process tree
every `SAMPLE_SECONDS`:

- **CPU**: the step's whole CPU time (user + system of every process, from getrusage of the
  finished children), and of it the serial part, the CPU of the handler and the step's own
  process; the rest is the workers' (Train and Predict map the series over one worker per
  core, forked over pipes on Lambda);
- **memory**: the proportional set size (PSS: shared pages split between the processes sharing
  them, so a sum counts them once, as the function's memory limit does) of the handler and the
  step's process, and of its largest worker; plus the handler's own figure (peak RSS of the
  largest process, its return value).

Projected step time on a function of M MB: serial CPU / min(1, vCPUs) + workers' CPU /
min(vCPUs, cores), where vCPUs = M / 1769 (at most 6) is Lambda's CPU share and cores the cores
the function sees (the step's worker count). A Lambda vCPU is taken as fast as one core of this
machine. Projected memory: the serial processes' peak + cores x the largest worker's peak. Each
figure is fitted by least squares as a + b x series over the sizes, and the largest series count
is the largest at which every step's projected time stays within `--time-share` of the
function's timeout and its memory within `--memory-share` of the function's memory.

Sources: 1,769 MB = one vCPU's worth of CPU and 128-10,240 MB
(https://docs.aws.amazon.com/lambda/latest/dg/configuration-memory.html); up to 6 vCPUs at
10,240 MB (https://aws.amazon.com/blogs/aws/new-for-aws-lambda-functions-with-up-to-10-gb-of-memory-and-6-vcpus/);
the cores a function sees at each memory size, measured by https://github.com/rwnx/lambda-cpuinfo
(2 up to 3,008 MB, 3 to 5,307, 4 to 7,076, 5 to 8,845, 6 above); the Lambda step waits at most
600 s (`stacks.pipeline_definition.LAMBDA_STEP_MAX_SECONDS`).

    nice -n 5 .venv/bin/python bench/lambda_fit.py [--env prod] [--sizes 30 300 1000 3000] \
        [--save runs.json]                    # --replay runs.json: project again, no runs

Extract runs DuckDB locally where Athena does the counting on AWS: its local time and memory are
printed but not judged against the function's limits (the function waits for Athena's queries;
their time grows with the bytes scanned, see docs/benchmarks.md for Extract at 10k and 100k
series).
"""

from __future__ import annotations

import argparse
import dataclasses
import datetime as dt
import json
import os
import resource
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "bench"))

from local_run.demo import ensure_demo_data  # noqa: E402
from local_run.runner import (  # noqa: E402
    RunRequest,
    StepRecord,
    execute,
    load_definition,
    new_execution_id,
)
from stacks.config import load_environment  # noqa: E402
from stacks.pipeline_definition import LAMBDA_STEP_MAX_SECONDS, build_definition  # noqa: E402

SAMPLE_SECONDS = 0.2
DEMO_MAX_MODELS = 320
SOURCE_RATE = 2.0  # applications a model-day of the synthetic source (the demo's mean is 7.8)
MB_PER_VCPU = 1769
MAX_VCPUS = 6.0
CORES_BY_MEMORY = ((3008, 2), (5307, 3), (7076, 4), (8845, 5), (10240, 6))
LENIENT_GATE = {"MaxMase": "100", "MaxRelativeMase": "100", "MaxSeriesRelativeMase": "100"}
"""The synthetic source is Poisson noise around a flat rate: the gate is not what is measured."""
ATHENA_STEPS = {"Extract"}
"""Steps whose row work Athena does on AWS (DuckDB locally): not judged against the function's
limits, since the function only waits for the queries."""
CLOCK_TICKS = os.sysconf("SC_CLK_TCK")
PAGE_KB = os.sysconf("SC_PAGE_SIZE") // 1024


# -- Lambda's resources and the projection (pure) --------------------------------------------------


def lambda_vcpus(memory_mb: int) -> float:
    """Lambda's CPU share at `memory_mb`: one vCPU per 1,769 MB, at most 6."""
    return min(memory_mb / MB_PER_VCPU, MAX_VCPUS)


def lambda_cores(memory_mb: int) -> int:
    """The cores a function of `memory_mb` sees (its step's worker count)."""
    for upper, cores in CORES_BY_MEMORY:
        if memory_mb <= upper:
            return cores
    return CORES_BY_MEMORY[-1][1]


def function_seconds(serial_cpu: float, worker_cpu: float, parallel: bool, memory_mb: int) -> float:
    """A step's time on a function of `memory_mb` from its CPU time: the serial part on one
    vCPU at most, the workers' part spread over the function's vCPUs (at most its cores)."""
    vcpus = lambda_vcpus(memory_mb)
    serial = max(serial_cpu, 0.0) / min(1.0, vcpus)
    share = min(vcpus, lambda_cores(memory_mb)) if parallel else min(1.0, vcpus)
    return serial + max(worker_cpu, 0.0) / share


def sample_seconds(sample: StepSample, memory_mb: int) -> float:
    """One measured step's time on a function of `memory_mb`."""
    serial = min(sample.serial_cpu, sample.cpu_seconds)
    return function_seconds(serial, sample.cpu_seconds - serial, sample.workers > 0, memory_mb)


@dataclass(frozen=True)
class Line:
    """a + b x series."""

    a: float
    b: float

    def at(self, series: float) -> float:
        return self.a + self.b * series


def fit_line(xs: list[float], ys: list[float]) -> Line:
    """Least squares; one point gives a line through the origin."""
    if len(xs) == 1:
        return Line(0.0, ys[0] / xs[0])
    n = len(xs)
    mx, my = sum(xs) / n, sum(ys) / n
    sxx = sum((x - mx) ** 2 for x in xs)
    b = sum((x - mx) * (y - my) for x, y in zip(xs, ys, strict=True)) / sxx
    return Line(my - b * mx, b)


@dataclass(frozen=True)
class StepModel:
    """A step's measured growth with the series."""

    serial_cpu: Line
    worker_cpu: Line
    serial_mb: Line
    worker_mb: Line
    parallel: bool  # it ran workers

    def seconds(self, series: float, memory_mb: int) -> float:
        return function_seconds(
            self.serial_cpu.at(series), self.worker_cpu.at(series), self.parallel, memory_mb
        )

    def memory_mb(self, series: float, memory_mb: int) -> float:
        workers = lambda_cores(memory_mb) if self.parallel else 0
        return self.serial_mb.at(series) + workers * max(self.worker_mb.at(series), 0.0)


def largest_served(
    models: dict[str, StepModel],
    memory_mb: int,
    timeout_seconds: float,
    time_share: float,
    memory_share: float,
    ceiling: int = 10_000_000,
) -> tuple[int, str]:
    """The largest series count at which every step stays within the shares of the function's
    timeout and memory, and the step and limit that bind there."""

    def fits(series: int) -> str | None:
        for name, model in models.items():
            if name in ATHENA_STEPS:
                continue
            if model.seconds(series, memory_mb) > time_share * timeout_seconds:
                return f"{name}'s time"
            if model.memory_mb(series, memory_mb) > memory_share * memory_mb:
                return f"{name}'s memory"
        return None

    if fits(1) is not None:
        return 0, fits(1) or ""
    low, high = 1, ceiling
    if fits(high) is None:
        return high, "none within the ceiling"
    while high - low > 1:
        middle = (low + high) // 2
        if fits(middle) is None:
            low = middle
        else:
            high = middle
    return low, fits(high) or ""


# -- measuring ------------------------------------------------------------------------------------


@dataclass
class StepSample:
    cpu_seconds: float = 0.0
    serial_cpu: float = 0.0
    serial_mb: float = 0.0
    worker_mb: float = 0.0
    workers: int = 0
    handler: dict = field(default_factory=dict)
    wall: float = 0.0


def _children() -> dict[int, list[int]]:
    tree: dict[int, list[int]] = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            stat = Path(f"/proc/{entry}/stat").read_text()
        except OSError:
            continue
        parent = int(stat.rsplit(")", 1)[1].split()[1])
        tree.setdefault(parent, []).append(int(entry))
    return tree


def _descendants(root: int) -> list[tuple[int, int]]:
    """(pid, depth) below `root`."""
    tree, found, stack = _children(), [], [(root, 0)]
    while stack:
        pid, depth = stack.pop()
        for child in tree.get(pid, []):
            found.append((child, depth + 1))
            stack.append((child, depth + 1))
    return found


def _pss_mb(pid: int) -> float:
    try:
        for line in Path(f"/proc/{pid}/smaps_rollup").read_text().splitlines():
            if line.startswith("Pss:"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    return 0.0


def _cpu_seconds(pid: int) -> float:
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / CLOCK_TICKS  # utime, stime


class Sampler:
    """Samples this process's descendants while a step runs: the handler (depth 1) and the
    step's process (depth 2) are serial, their descendants the step's workers."""

    def __init__(self) -> None:
        self.steps: dict[str, StepSample] = {}
        self.current: str | None = None
        self._serial_cpu: dict[int, float] = {}
        self._usage = 0.0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, daemon=True)

    def on_step(self, record: StepRecord) -> None:
        if record.kind != "Lambda":  # the gate's condition runs in the runner
            return
        usage = resource.getrusage(resource.RUSAGE_CHILDREN)
        cpu = usage.ru_utime + usage.ru_stime
        if record.status == "Executing":
            self.steps[record.name] = StepSample()
            self._serial_cpu = {}
            self._usage = cpu
            self.current = record.name
        else:
            sample = self.steps[record.name]
            sample.cpu_seconds = cpu - self._usage
            sample.serial_cpu = sum(self._serial_cpu.values())
            sample.wall = record.seconds
            self.current = None

    def _loop(self) -> None:
        root = os.getpid()
        while not self._stop.wait(SAMPLE_SECONDS):
            name = self.current
            if name is None:
                continue
            serial_mb, worker_mb, workers = 0.0, 0.0, 0
            for pid, depth in _descendants(root):
                if depth <= 2:
                    serial_mb += _pss_mb(pid)
                    self._serial_cpu[pid] = max(self._serial_cpu.get(pid, 0.0), _cpu_seconds(pid))
                else:
                    worker_mb = max(worker_mb, _pss_mb(pid))
                    workers += 1
            sample = self.steps.get(name)
            if sample is not None and name == self.current:
                sample.serial_mb = max(sample.serial_mb, serial_mb)
                sample.worker_mb = max(sample.worker_mb, worker_mb)
                sample.workers = max(sample.workers, workers)

    def __enter__(self) -> Sampler:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()


def write_lake(lake: Path, series: int, date: dt.date) -> str:
    if series <= DEMO_MAX_MODELS:
        ensure_demo_data(lake, date, years=3, models=series)
        return "demo generator"
    from scale import write_source

    lake.mkdir(parents=True, exist_ok=True)
    rows = write_source(str(lake), series, 3 * 365 + 1, date, rate=SOURCE_RATE)
    return f"Poisson source, {rows:,} rows"


def handler_results(lake: Path, execution_id: str) -> dict[str, dict]:
    """Each step's handler result: the last stdout line of its log."""
    results = {}
    for log in (lake / "runs" / execution_id / "logs").glob("*.log"):
        text = log.read_text().split("--- stderr")[0]
        lines = [line for line in text.splitlines() if line.startswith("{")]
        if lines:
            results[log.stem] = json.loads(lines[-1])
    return results


def measure(definition_text: str, series: int, date: dt.date) -> dict[str, StepSample]:
    with tempfile.TemporaryDirectory(prefix="lambda-fit-") as folder:
        lake = Path(folder) / "lake"
        started = time.monotonic()
        source = write_lake(lake, series, date)
        print(f"  {series} series: {source}, written in {time.monotonic() - started:.0f} s")
        sampler = Sampler()
        execution_id = new_execution_id()
        values = {"ExecutionDate": date.isoformat()}
        if series > DEMO_MAX_MODELS:
            values.update(LENIENT_GATE)
        with sampler:
            outcome = execute(
                RunRequest(
                    definition=load_definition(definition_text, "built"),
                    lake=lake,
                    execution_id=execution_id,
                    start_time=f"{date + dt.timedelta(days=1)}T00:00:00.000Z",
                    parameter_values=values,
                    lambda_timeout_seconds=4 * 3600,  # measure past the limit, judge after
                    on_step=sampler.on_step,
                )
            )
        if not outcome.succeeded:
            sys.exit(
                f"the run at {series} series failed at {outcome.failed_step}: {outcome.failure}"
            )
        for name, result in handler_results(lake, execution_id).items():
            if name in sampler.steps:
                sampler.steps[name].handler = result
        return sampler.steps


def load_average() -> str:
    return " ".join(f"{value:.2f}" for value in os.getloadavg())


def print_measurements(series: int, steps: dict[str, StepSample]) -> None:
    print(f"\n{series} series (load average {load_average()})")
    print(
        "| step | wall s | CPU s | serial CPU s | workers | handler s | handler peak MB"
        " | serial PSS MB | largest worker PSS MB |"
    )
    print("|---|---|---|---|---|---|---|---|---|")
    for name, s in steps.items():
        print(
            f"| {name} | {s.wall:.1f} | {s.cpu_seconds:.1f} | {s.serial_cpu:.1f} | {s.workers}"
            f" | {s.handler.get('seconds', float('nan')):.1f}"
            f" | {s.handler.get('peak_memory_mb', 0)} | {s.serial_mb:.0f} | {s.worker_mb:.0f} |"
        )


def step_models(runs: dict[int, dict[str, StepSample]]) -> dict[str, StepModel]:
    sizes = sorted(runs)
    names = list(runs[sizes[0]])
    models = {}
    for name in names:
        points = [runs[n][name] for n in sizes]
        xs = [float(n) for n in sizes]
        models[name] = StepModel(
            serial_cpu=fit_line(xs, [min(p.serial_cpu, p.cpu_seconds) for p in points]),
            worker_cpu=fit_line(xs, [max(p.cpu_seconds - p.serial_cpu, 0.0) for p in points]),
            serial_mb=fit_line(xs, [p.serial_mb for p in points]),
            worker_mb=fit_line(xs, [p.worker_mb for p in points]),
            parallel=any(p.workers > 0 for p in points),
        )
    return models


def print_projection(
    models: dict[str, StepModel], memories: list[int], timeout: int, args: argparse.Namespace
) -> None:
    print("\nfitted (a + b x series): CPU s serial / workers; PSS MB serial / per worker")
    for name, m in models.items():
        print(
            f"  {name}: CPU {m.serial_cpu.a:.2f} + {m.serial_cpu.b * 1000:.3f} ms/series"
            f" / {m.worker_cpu.a:.2f} + {m.worker_cpu.b * 1000:.3f} ms/series;"
            f" PSS {m.serial_mb.a:.0f} + {m.serial_mb.b * 1000:.1f} KB/series"
            f" / {m.worker_mb.a:.0f} + {m.worker_mb.b * 1000:.1f} KB/series"
            f"{' (workers)' if m.parallel else ''}"
        )
    for memory in memories:
        served, binding = largest_served(
            models, memory, timeout, args.time_share, args.memory_share
        )
        vcpus, cores = lambda_vcpus(memory), lambda_cores(memory)
        print(
            f"\n{memory} MB ({vcpus:.2f} vCPUs, {cores} cores seen), timeout {timeout} s:"
            f" **{served:,} series** with every step within {args.time_share:.0%} of"
            f" {timeout} s and {args.memory_share:.0%} of {memory} MB (binding: {binding})"
        )
        print("(Extract: DuckDB's work, done by Athena on AWS, not judged)")
        print("| step | s at that size | MB at that size | s at 1,000 | s at 10,000 |")
        print("|---|---|---|---|---|")
        for name, m in models.items():
            print(
                f"| {name} | {m.seconds(served, memory):.0f} | {m.memory_mb(served, memory):.0f}"
                f" | {m.seconds(1000, memory):.0f} | {m.seconds(10_000, memory):.0f} |"
            )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--env", default="prod", help="environment in cdk.json")
    parser.add_argument("--date", type=dt.date.fromisoformat, default=dt.date(2026, 11, 26))
    parser.add_argument("--sizes", type=int, nargs="+", default=[30, 300, 1000, 3000])
    parser.add_argument("--time-share", type=float, default=0.8)
    parser.add_argument("--memory-share", type=float, default=0.8)
    parser.add_argument(
        "--memories", type=int, nargs="*", default=None, help="MB; default: the env's and 10240"
    )
    parser.add_argument("--save", type=Path, help="write the measurements to this JSON file")
    parser.add_argument(
        "--replay", type=Path, help="project from measurements saved with --save instead"
    )
    args = parser.parse_args()

    os.environ.setdefault("JSII_SILENCE_WARNING_END_OF_LIFE_NODE_VERSION", "20")
    from stacks.pipeline_definition import environment_settings

    context = json.loads((REPO / "cdk.json").read_text())["context"]
    settings = environment_settings(load_environment(context["environments"], args.env))
    text = build_definition(dataclasses.replace(settings, compute="lambda"))
    timeout = min(settings.lambda_timeout_seconds, LAMBDA_STEP_MAX_SECONDS)
    memories = args.memories or sorted({settings.lambda_memory_mb, 10240})
    print(
        f"{args.env}, compute lambda: look-back {settings.lookback_days} days; this machine"
        f" {len(os.sched_getaffinity(0))} cores; load average {load_average()}"
    )
    runs: dict[int, dict[str, StepSample]] = {}
    if args.replay:
        saved = json.loads(args.replay.read_text())
        runs = {
            int(n): {k: StepSample(**v) for k, v in steps.items()} for n, steps in saved.items()
        }
        print(f"measurements replayed from {args.replay}")
    for series in [] if args.replay else sorted(args.sizes):
        runs[series] = measure(text, series, args.date)
        print_measurements(series, runs[series])
        if args.save:
            args.save.write_text(
                json.dumps(
                    {n: {k: dataclasses.asdict(v) for k, v in r.items()} for n, r in runs.items()},
                    indent=1,
                )
            )
    print_projection(step_models(runs), memories, timeout, args)
    print(f"\nload average at the end {load_average()}")


if __name__ == "__main__":
    main()
