"""A model of one daily run's wall time on AWS: instance start-ups from the deployed definition,
compute from a local demo run.

For each job step of the definition built for an environment (cdk.json), in execution order, it
says whether the job starts cold or on the previous job's warm pool, and why, by SageMaker's
documented matching rules: a training job reuses a warm pool when the previous job kept one
(`KeepAlivePeriodInSeconds` > 0, a warm-pool quota above 0) and its role, instance type and
count, volume size and key, VPC and network settings are identical
(https://docs.aws.amazon.com/sagemaker/latest/dg/train-warm-pools.html). Each step's compute is
its wall time in a local demo run of the same definition. The totals are printed with warm pools
on and off (`keep_alive_seconds` 0), beside the original system's six cold-starting jobs.

Start-up figures (minutes), and where they come from:
- cold start 7.5 (5-10): instance provisioning and image pull per job, as the original system
  reports (six chained jobs spent close to an hour starting up);
- warm start 0.5: AWS's warm-pool guidance targets starts "under 20 seconds"
  (https://aws.amazon.com/blogs/machine-learning/best-practices-for-amazon-sagemaker-training-managed-warm-pools/);
  30 s leaves room for the image's Python start-up.

With `pipeline.compute: lambda` (the same definition built with compute `lambda`) each step is a
SageMaker Lambda step invoking its own function, built from the job image. A step costs:
- a Lambda start: each of the six steps is a separate function, so each starts cold on its first
  invocation of a run (a day after the last run no sandbox is left: Lambda ends idle execution
  environments after an unspecified idle time, observed in minutes,
  https://docs.aws.amazon.com/lambda/latest/dg/lambda-runtime-environment.html). Assumed 5 s
  (1-10 s) for the container image: Lambda loads an image's blocks lazily from a shared,
  deduplicated cache, so its cold start does not grow with the image's size ("as low as 50 ms";
  Brooker et al., On-demand Container Loading in AWS Lambda, USENIX ATC 2023,
  https://arxiv.org/abs/2305.13162, and
  https://aws.amazon.com/blogs/compute/optimizing-lambda-functions-packaged-as-container-images/);
  third-party benchmarks find container images start no slower than zip packages once the
  libraries are large, NumPy and pandas among them
  (https://fourtheorem.com/optimise-python-data-science-aws-lambda/,
  https://aaronstuyvenberg.com/posts/containers-on-lambda). The 5 s is this model's own
  assumption, not a published figure; it covers the handler's
  runtime start and the first reads of the lazily loaded libraries; a warm start (the next date
  of a back-to-back backfill) is taken as 0;
- the SageMaker Lambda step's own overhead (scheduling the step, invoking the function, seeing
  its result): not documented, assumed 10 s (5-20 s) per step;
- the step's compute: measured in a local run of the lambda definition on the demo data, where
  each step runs in the image's Lambda handler, which starts the step's module in a child
  process, so it includes that child's Python start-up and imports, as on Lambda. The total
  uses the step's CPU time on the function's vCPUs (`lambda_fit.sample_seconds`: the serial
  part on one vCPU, the workers' over the function's share), since on a shared 2-core machine
  the wall time mostly measures the other users; the local wall times are printed beside it.
  Neither counts waiting for S3 or Athena on AWS.

A year's backfill (365 dates) runs `rerun.cli.DEFAULT_CONCURRENCY` executions at a time, each
slot refilled at the backfill's next status check (on average half of
`rerun.cli.DEFAULT_POLL_SECONDS` after a date ends). Training: the first dates start cold; a
later date's first job starts on the previous date's PostProc pool when the warm-pool rules above
let it (PostProc kept a pool longer than the gap, and it matches Extract). Lambda: the first
dates start each function cold (one sandbox per execution in flight); later dates find them
warm, since a function is invoked again within a few minutes, back to back.

    .venv/bin/python bench/wall_time.py [--env prod] [--date 2026-11-26]
"""

from __future__ import annotations

import argparse
import dataclasses
import datetime as dt
import json
import math
import os
import sys
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

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
from rerun.cli import DEFAULT_CONCURRENCY, DEFAULT_POLL_SECONDS  # noqa: E402
from stacks.config import load_environment  # noqa: E402
from stacks.pipeline_definition import build_definition, quota_needed, warm_pool_key  # noqa: E402

COLD_START_MINUTES = 7.5
COLD_START_RANGE = (5.0, 10.0)
WARM_START_MINUTES = 0.5
ORIGINAL_MINUTES = 60
LAMBDA_COLD_START_SECONDS = 5.0
LAMBDA_COLD_START_RANGE = (1.0, 10.0)
LAMBDA_STEP_OVERHEAD_SECONDS = 10.0
LAMBDA_STEP_OVERHEAD_RANGE = (5.0, 20.0)
BACKFILL_DATES = 365
TARGET_LAMBDA_MINUTES = 3.0


def job_steps(steps: list[dict[str, Any]], kind: str = "Training") -> Iterator[dict[str, Any]]:
    """Steps of `kind` in the order a passing run executes them (the gate's IfSteps after the
    rest)."""
    for step in steps:
        if step["Type"] == kind:
            yield step
        elif step["Type"] == "Condition":
            yield from job_steps(step["Arguments"]["IfSteps"], kind)


def starts(definition: dict[str, Any]) -> list[tuple[str, bool, str]]:
    """(step, warm?, why) for each job step."""
    result: list[tuple[str, bool, str]] = []
    previous: dict[str, Any] | None = None
    for step in job_steps(definition["Steps"]):
        arguments = step["Arguments"]
        if previous is None:
            result.append((step["Name"], False, "first job of the run: nothing to reuse"))
        else:
            warm, why = reuses_pool(previous, arguments)
            result.append((step["Name"], warm, why))
        previous = arguments
    return result


def reuses_pool(previous: dict[str, Any], arguments: dict[str, Any]) -> tuple[bool, str]:
    """Whether a job starts on the warm pool the previous job kept, and why."""
    kept = previous["ResourceConfig"].get("KeepAlivePeriodInSeconds")
    if not kept:
        return False, "the previous job kept no warm pool"
    differing = [
        name
        for name, value in warm_pool_key(arguments).items()
        if warm_pool_key(previous)[name] != value
    ]
    if differing:
        return False, f"differs in {', '.join(differing)}"
    return True, f"matches the previous job, kept {kept} s"


def next_date_starts_warm(definition: dict[str, Any], gap_seconds: float) -> tuple[bool, str]:
    """Whether a backfill's next date starts its first job on this date's last job's pool,
    `gap_seconds` after this date ended."""
    jobs = [step["Arguments"] for step in job_steps(definition["Steps"])]
    warm, why = reuses_pool(jobs[-1], jobs[0])
    kept = jobs[-1]["ResourceConfig"].get("KeepAlivePeriodInSeconds") or 0
    if warm and kept < gap_seconds:
        return False, f"the last job's pool ({kept} s) ends before the next date starts"
    return warm, why.replace("the previous job", "the previous date's last job")


def run_demo(
    lake: Path,
    definition_text: str,
    date: dt.date,
    models: int = 30,
    on_step: Callable[[StepRecord], None] | None = None,
) -> dict[str, float]:
    """Each step's wall time in a local run of the definition on demo data written to `lake`
    (a benchmark fails at a failed run)."""
    ensure_demo_data(lake, date, years=3, models=models)
    outcome = execute(
        RunRequest(
            definition=load_definition(definition_text, "built"),
            lake=lake,
            execution_id=new_execution_id(),
            start_time=f"{date + dt.timedelta(days=1)}T00:00:00.000Z",
            parameter_values={"ExecutionDate": date.isoformat()},
            on_step=on_step or (lambda record: None),
        )
    )
    if not outcome.succeeded:
        sys.exit(f"the demo run failed at {outcome.failed_step}: {outcome.failure}")
    return {record.name: record.seconds for record in outcome.steps}


def demo_compute_seconds(definition_text: str, date: dt.date) -> dict[str, float]:
    """Each step's wall time in a local run of the definition on the demo data."""
    with tempfile.TemporaryDirectory(prefix="wall-time-") as folder:
        return run_demo(Path(folder), definition_text, date)


def lambda_demo_compute(
    definition_text: str, date: dt.date, memory_mb: int
) -> tuple[dict[str, float], dict[str, float]]:
    """Each Lambda step's local wall time in a demo run of the lambda definition, and its time
    on a function of `memory_mb` from the CPU time it took (bench/lambda_fit.py): what the
    function would take with its own vCPUs, whatever else this shared machine runs."""
    from lambda_fit import Sampler, sample_seconds

    sampler = Sampler()
    with tempfile.TemporaryDirectory(prefix="wall-time-") as folder, sampler:
        wall = run_demo(Path(folder), definition_text, date, on_step=sampler.on_step)
    projected = {name: sample_seconds(s, memory_mb) for name, s in sampler.steps.items()}
    return wall, projected


def training_minutes(
    definition: dict[str, Any], compute: dict[str, float], first_warm: bool = False
) -> float:
    """A run's wall time: each job's start-up and compute (the first job warm when a backfill's
    previous date left it a pool)."""
    total = 0.0
    for index, (name, warm, _) in enumerate(starts(definition)):
        warm = warm or (index == 0 and first_warm)
        total += (WARM_START_MINUTES if warm else COLD_START_MINUTES) + compute.get(name, 0) / 60
    return total


def print_model(title: str, definition: dict[str, Any], compute: dict[str, float]) -> float:
    print(f"\n{title}")
    print("| step | start | why | start-up min | compute min (demo) |")
    print("|---|---|---|---|---|")
    for name, warm, why in starts(definition):
        startup = WARM_START_MINUTES if warm else COLD_START_MINUTES
        minutes = compute.get(name, 0.0) / 60
        print(f"| {name} | {'warm' if warm else 'cold'} | {why} | {startup:.1f} | {minutes:.2f} |")
    total = training_minutes(definition, compute)
    cold = sum(1 for _, warm, _ in starts(definition) if not warm)
    low = total + cold * (COLD_START_RANGE[0] - COLD_START_MINUTES)
    high = total + cold * (COLD_START_RANGE[1] - COLD_START_MINUTES)
    print(f"total: {total:.1f} min ({low:.1f}-{high:.1f} with cold starts of 5-10 min),"
          f" {cold} cold start(s)")  # fmt: skip
    return total


def lambda_step_names(definition: dict[str, Any]) -> list[str]:
    """The Lambda steps in the order a passing run executes them: one function each."""
    return [step["Name"] for step in job_steps(definition["Steps"], "Lambda")]


def lambda_start_seconds(warm: bool, cold_start: float = LAMBDA_COLD_START_SECONDS) -> float:
    return 0.0 if warm else cold_start


def lambda_seconds(
    definition: dict[str, Any],
    compute: dict[str, float],
    warm: bool = False,
    cold_start: float = LAMBDA_COLD_START_SECONDS,
    overhead: float = LAMBDA_STEP_OVERHEAD_SECONDS,
) -> dict[str, float]:
    """Each Lambda step's wall time: its function's start, the step's overhead, its compute."""
    return {
        name: lambda_start_seconds(warm, cold_start) + overhead + compute.get(name, 0.0)
        for name in lambda_step_names(definition)
    }


def print_lambda_model(
    title: str, definition: dict[str, Any], compute: dict[str, float], local: dict[str, float]
) -> float:
    print(f"\n{title}")
    print(
        "| step | start | why | start s | step overhead s | compute s, local wall"
        " | compute s on the function (CPU) | total s |"
    )
    print("|---|---|---|---|---|---|---|---|")
    steps = lambda_seconds(definition, compute)
    for name, seconds in steps.items():
        print(
            f"| {name} | cold | its own function, first invocation of the run"
            f" | {LAMBDA_COLD_START_SECONDS:.0f} | {LAMBDA_STEP_OVERHEAD_SECONDS:.0f}"
            f" | {local.get(name, 0.0):.1f} | {compute.get(name, 0.0):.1f} | {seconds:.1f} |"
        )
    with_local = sum(lambda_seconds(definition, local).values()) / 60
    print(f"(with the local wall times as compute instead: {with_local:.1f} min)")
    total = sum(steps.values()) / 60
    low = sum(lambda_seconds(definition, compute, False, *_lows()).values()) / 60
    high = sum(lambda_seconds(definition, compute, False, *_highs()).values()) / 60
    print(
        f"total: {total:.1f} min ({low:.1f}-{high:.1f} with cold starts of"
        f" {LAMBDA_COLD_START_RANGE[0]:.0f}-{LAMBDA_COLD_START_RANGE[1]:.0f} s and step overheads"
        f" of {LAMBDA_STEP_OVERHEAD_RANGE[0]:.0f}-{LAMBDA_STEP_OVERHEAD_RANGE[1]:.0f} s),"
        f" {len(steps)} cold starts; target {TARGET_LAMBDA_MINUTES:.0f} min:"
        f" {'met' if high <= TARGET_LAMBDA_MINUTES else 'met at the assumed figures' if total <= TARGET_LAMBDA_MINUTES else 'missed'}"  # noqa: E501
    )
    return total


def _lows() -> tuple[float, float]:
    return LAMBDA_COLD_START_RANGE[0], LAMBDA_STEP_OVERHEAD_RANGE[0]


def _highs() -> tuple[float, float]:
    return LAMBDA_COLD_START_RANGE[1], LAMBDA_STEP_OVERHEAD_RANGE[1]


def backfill_hours(
    first_minutes: float,
    later_minutes: float,
    dates: int,
    concurrency: int,
    gap_minutes: float,
) -> float:
    """A backfill's wall time: `concurrency` dates at a time, the first wave at `first_minutes`
    a date, every later one at `later_minutes`, each wave waiting `gap_minutes` for its slot."""
    waves = math.ceil(dates / concurrency)
    return (first_minutes + (waves - 1) * later_minutes + waves * gap_minutes) / 60


def print_backfill(
    settings: Any,
    pooled: dict[str, Any],
    cold: dict[str, Any],
    lam: dict[str, Any],
    compute: dict[str, float],
    lambda_compute: dict[str, float],
) -> None:
    gap = DEFAULT_POLL_SECONDS / 2
    print(
        f"\na year's backfill: {BACKFILL_DATES} dates, {DEFAULT_CONCURRENCY} at a time"
        f" (rerun.cli.DEFAULT_CONCURRENCY), each slot refilled on average {gap:.0f} s after a"
        f" date ends (status checks every {DEFAULT_POLL_SECONDS:.0f} s)"
    )
    print("| mode | first dates, min each | later dates, min each | why | backfill |")
    print("|---|---|---|---|---|")
    for label, definition in (
        (f"training, keep_alive_seconds {settings.keep_alive_seconds}", pooled),
        ("training, keep_alive_seconds 0", cold),
    ):
        warm, why = next_date_starts_warm(definition, gap)
        first = training_minutes(definition, compute)
        later = training_minutes(definition, compute, first_warm=warm)
        hours = backfill_hours(first, later, BACKFILL_DATES, DEFAULT_CONCURRENCY, gap / 60)
        print(
            f"| {label} | {first:.1f} | {later:.1f} | first job {'warm' if warm else 'cold'}:"
            f" {why} | **{hours:.1f} h** ({hours / 24:.2f} days) |"
        )
    first = sum(lambda_seconds(lam, lambda_compute).values()) / 60
    later = sum(lambda_seconds(lam, lambda_compute, warm=True).values()) / 60
    hours = backfill_hours(first, later, BACKFILL_DATES, DEFAULT_CONCURRENCY, gap / 60)
    print(
        f"| lambda | {first:.1f} | {later:.1f} | each function warm: invoked again within"
        f" minutes | **{hours:.1f} h** |"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--env", default="prod", help="environment in cdk.json")
    parser.add_argument("--date", type=dt.date.fromisoformat, default=dt.date(2026, 11, 26))
    args = parser.parse_args()

    os.environ.setdefault("JSII_SILENCE_WARNING_END_OF_LIFE_NODE_VERSION", "20")
    from stacks.pipeline_definition import environment_settings

    context = json.loads((REPO / "cdk.json").read_text())["context"]
    config = load_environment(context["environments"], args.env)
    settings = environment_settings(config)
    pooled_text = build_definition(dataclasses.replace(settings, compute="training"))
    cold_text = build_definition(
        dataclasses.replace(settings, compute="training", keep_alive_seconds=0)
    )
    lambda_text = build_definition(dataclasses.replace(settings, compute="lambda"))
    print(f"load average before the demo runs: {_load()}")
    compute = demo_compute_seconds(pooled_text, args.date)
    lambda_local, lambda_compute = lambda_demo_compute(
        lambda_text, args.date, settings.lambda_memory_mb
    )
    print(f"load average after: {_load()}")

    pooled = print_model(
        f"{args.env}: compute training, keep_alive_seconds {settings.keep_alive_seconds}"
        " (warm-pool quota > 0)",
        json.loads(pooled_text),
        compute,
    )
    cold = print_model(
        f"{args.env}: compute training, keep_alive_seconds 0 (or a warm-pool quota of 0)",
        json.loads(cold_text),
        compute,
    )
    lam = print_lambda_model(
        f"{args.env}: compute lambda ({settings.lambda_memory_mb} MB functions; compute from a"
        " local run of the lambda definition)",
        json.loads(lambda_text),
        lambda_compute,
        lambda_local,
    )
    print(
        f"\noriginal system: ~{ORIGINAL_MINUTES} min (six cold-starting jobs, pip install in each)"
    )
    print(
        f"modeled: {pooled:.1f} min with warm pools, {cold:.1f} min without;"
        f" {lam:.1f} min with compute lambda"
    )
    print_backfill(
        settings,
        json.loads(pooled_text),
        json.loads(cold_text),
        json.loads(lambda_text),
        compute,
        lambda_compute,
    )
    quota = quota_needed(settings, DEFAULT_CONCURRENCY)
    print(
        f"\nafter the run PostProc's instance waits up to {settings.keep_alive_seconds} s in its"
        " warm pool (billed; a backfill's next date starts on it)"
    )
    print(
        f"quotas: '{settings.instance_type} for training job usage' and '... for training warm"
        f" pool usage' at least {quota} ({settings.instance_count} instance(s) x (backfill"
        f" concurrency {DEFAULT_CONCURRENCY} + 1)); docs/first-deploy.md step 1.5"
    )


def _load() -> str:
    return " ".join(f"{value:.2f}" for value in os.getloadavg())


if __name__ == "__main__":
    main()
