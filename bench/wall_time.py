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

    .venv/bin/python bench/wall_time.py [--env prod] [--date 2026-11-26]
"""

from __future__ import annotations

import argparse
import dataclasses
import datetime as dt
import json
import os
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from local_run.demo import ensure_demo_data  # noqa: E402
from local_run.runner import RunRequest, execute, load_definition, new_execution_id  # noqa: E402
from rerun.cli import DEFAULT_CONCURRENCY  # noqa: E402
from stacks.config import load_environment  # noqa: E402
from stacks.pipeline_definition import build_definition, quota_needed, warm_pool_key  # noqa: E402

COLD_START_MINUTES = 7.5
COLD_START_RANGE = (5.0, 10.0)
WARM_START_MINUTES = 0.5
ORIGINAL_MINUTES = 60


def job_steps(steps: list[dict[str, Any]]) -> Iterator[dict[str, Any]]:
    """Job steps in the order a passing run executes them (the gate's IfSteps after the rest)."""
    for step in steps:
        if step["Type"] == "Training":
            yield step
        elif step["Type"] == "Condition":
            yield from job_steps(step["Arguments"]["IfSteps"])


def starts(definition: dict[str, Any]) -> list[tuple[str, bool, str]]:
    """(step, warm?, why) for each job step."""
    result: list[tuple[str, bool, str]] = []
    previous: dict[str, Any] | None = None
    for step in job_steps(definition["Steps"]):
        arguments = step["Arguments"]
        if previous is None:
            result.append((step["Name"], False, "first job of the run: nothing to reuse"))
        elif not previous["ResourceConfig"].get("KeepAlivePeriodInSeconds"):
            result.append((step["Name"], False, "the previous job kept no warm pool"))
        else:
            differing = [
                name
                for name, value in warm_pool_key(arguments).items()
                if warm_pool_key(previous)[name] != value
            ]
            if differing:
                result.append((step["Name"], False, f"differs in {', '.join(differing)}"))
            else:
                kept = previous["ResourceConfig"]["KeepAlivePeriodInSeconds"]
                result.append((step["Name"], True, f"matches the previous job, kept {kept} s"))
        previous = arguments
    return result


def run_demo(lake: Path, definition_text: str, date: dt.date, models: int = 30) -> dict[str, float]:
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
        )
    )
    if not outcome.succeeded:
        sys.exit(f"the demo run failed at {outcome.failed_step}: {outcome.failure}")
    return {record.name: record.seconds for record in outcome.steps}


def demo_compute_seconds(definition_text: str, date: dt.date) -> dict[str, float]:
    """Each step's wall time in a local run of the definition on the demo data."""
    with tempfile.TemporaryDirectory(prefix="wall-time-") as folder:
        return run_demo(Path(folder), definition_text, date)


def print_model(title: str, definition: dict[str, Any], compute: dict[str, float]) -> float:
    print(f"\n{title}")
    print("| step | start | why | start-up min | compute min (demo) |")
    print("|---|---|---|---|---|")
    total = 0.0
    for name, warm, why in starts(definition):
        startup = WARM_START_MINUTES if warm else COLD_START_MINUTES
        minutes = compute.get(name, 0.0) / 60
        total += startup + minutes
        print(f"| {name} | {'warm' if warm else 'cold'} | {why} | {startup:.1f} | {minutes:.2f} |")
    cold = sum(1 for _, warm, _ in starts(definition) if not warm)
    low = total + cold * (COLD_START_RANGE[0] - COLD_START_MINUTES)
    high = total + cold * (COLD_START_RANGE[1] - COLD_START_MINUTES)
    print(f"total: {total:.1f} min ({low:.1f}-{high:.1f} with cold starts of 5-10 min),"
          f" {cold} cold start(s)")  # fmt: skip
    return total


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
    pooled_text = build_definition(settings)
    cold_text = build_definition(dataclasses.replace(settings, keep_alive_seconds=0))
    compute = demo_compute_seconds(pooled_text, args.date)

    pooled = print_model(
        f"{args.env}: keep_alive_seconds {settings.keep_alive_seconds} (warm-pool quota > 0)",
        json.loads(pooled_text),
        compute,
    )
    cold = print_model(
        f"{args.env}: keep_alive_seconds 0 (or a warm-pool quota of 0)",
        json.loads(cold_text),
        compute,
    )
    print(
        f"\noriginal system: ~{ORIGINAL_MINUTES} min (six cold-starting jobs, pip install in each)"
    )
    print(f"modeled: {pooled:.1f} min with warm pools, {cold:.1f} min without")
    quota = quota_needed(settings, DEFAULT_CONCURRENCY)
    print(
        f"after the run PostProc's instance waits up to {settings.keep_alive_seconds} s in its"
        " warm pool (billed; a backfill's next date starts on it)"
    )
    print(
        f"quotas: '{settings.instance_type} for training job usage' and '... for training warm"
        f" pool usage' at least {quota} ({settings.instance_count} instance(s) x (backfill"
        f" concurrency {DEFAULT_CONCURRENCY} + 1)); docs/first-deploy.md step 1.5"
    )


if __name__ == "__main__":
    main()
