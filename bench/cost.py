"""Dollars per daily run on AWS, priced from the deployed definition at list prices.

For an environment of cdk.json (instance type, count, keep-alive, look-back) and its region, a run
costs:

- **instance time**: every job's instances from start-up to end, at the training price of the
  instance type (all instances of a multi-instance job are billed while the job runs, also those
  that exit at once), plus PostProc's warm pool waiting out its keep-alive after the run (the
  warm pools between jobs are handed on, so the start-up minutes already hold them). Start-up
  minutes come from bench/wall_time.py's model of the definition (cold 7.5, warm 0.5) and are all
  counted as billed: an upper bound (provisioning before a job's download is not billed);
- the jobs' ML storage volume (`volume_size_gb`) for the same instance time;
- **Athena**: Extract's three queries over the look-back window: the aggregates and the counts
  each scan it, the names one column of it; priced as twice the bytes of the source's Parquet
  files in the window (an upper bound: Athena reads only the columns a query names), each query
  at least 10 MB;
- **S3 requests**: one PUT per file a run writes and, as an assumption, three GET-class requests
  (HEAD, GET, LIST) per file read back;
- **KMS**: one request per S3 request on the data bucket, the upper bound without the bucket's
  S3 Bucket Key (which is on, and cuts this to a few requests per run);
- CloudWatch's PutMetricData of the gate's figures.

Fixed monthly costs (keys, dashboard, alarms, custom metrics, the Slack secret) are printed apart,
with their share per daily run.

Sizes: the demo (measured: a local run of the same definition on the demo data, its step times,
source bytes and run-folder files), and 10k / 100k / 1M series with the instance types and counts
of the README's "Many series, many instances" projection. Their compute follows the README's
measured rates: Train + Predict 238.8 ms per series per vCPU (98.6% of it Train), TrainEvaluation
5.4 s + 0.046 ms per series on the leader, PreProc 4.7 us per series and day
of the look-back on one core of every instance (each cleans its share of the buckets, the event
pool's sums included); Extract (Athena does the counting) and PostProc keep their demo times
(their growth is not modelled). Bytes scanned and files grow with the series (files up to the
buckets).

With `pipeline.compute: lambda` the same run costs the six functions instead of the instances:
each step's billed duration (its Lambda start, counted as billed, an upper bound: only the
init phase of a start is billed; and its compute, the step's CPU time in a local run of the
lambda definition on the function's vCPUs, as bench/wall_time.py models it) x the function's
memory (`pipeline.lambda_memory_mb`) at the x86 price per GB-second (the image is
linux/amd64), one request per step, and ephemeral storage beyond the
free 512 MB (the functions' `stacks.step_lambdas.EPHEMERAL_STORAGE_MIB`); Athena, S3, KMS and
CloudWatch as above (the same queries and files). Priced only at the scales `lambda` serves
(`LAMBDA_SCALES`, within the largest size bench/lambda_fit.py prints for the function's
memory); their compute follows the same measured rates as the training rows, on the function's
vCPUs (memory / 1,769 MB, at most the cores it sees), beside the training rows of the same size.

    .venv/bin/python bench/cost.py [--env prod] [--date 2026-11-26]

Prices: bench/prices.json, with their source pages and the date they were entered.
"""

from __future__ import annotations

import argparse
import dataclasses
import datetime as dt
import json
import os
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "bench"))

import pyarrow.parquet as pq  # noqa: E402
from lambda_fit import Sampler, lambda_cores, lambda_vcpus, sample_seconds  # noqa: E402
from wall_time import (  # noqa: E402
    COLD_START_MINUTES,
    LAMBDA_COLD_START_SECONDS,
    WARM_START_MINUTES,
    lambda_seconds,
    run_demo,
    starts,
)

from pipeline_code import run_folder, shards, tables  # noqa: E402
from stacks.config import load_environment  # noqa: E402
from stacks.pipeline_definition import build_definition  # noqa: E402
from stacks.step_lambdas import EPHEMERAL_STORAGE_MIB  # noqa: E402

PRICES = Path(__file__).resolve().parent / "prices.json"
DEMO_MODELS = 30
TRAIN_PREDICT_MS_PER_SERIES_VCPU = 238.8
TRAIN_SHARE = 0.986
EVALUATION_SECONDS = 5.4
EVALUATION_MS_PER_SERIES = 0.046
PREPROC_US_PER_SERIES_DAY = 4.7  # bench/scale.py --extract-series 10000 100000
ATHENA_SCANS = 2  # the aggregates' and the counts' queries read the window; names one column
GET_CLASS_PER_FILE = 3
DAYS_PER_MONTH = 30
SCALES = (
    # (series, instance type, instances): the README's projection ("Many series, many instances")
    (10_000, "ml.m5.xlarge", 1),
    (100_000, "ml.m5.4xlarge", 4),
    (1_000_000, "ml.c5.9xlarge", 16),
)
LAMBDA_SCALES = (1_000,)
"""Sizes priced in both modes: within what 4,096 MB functions serve (bench/lambda_fit.py)."""
FREE_EPHEMERAL_MB = 512


@dataclass(frozen=True)
class DemoRun:
    series: int
    step_seconds: dict[str, float]
    source_bytes: int  # the applications files of the look-back window
    files: int  # files the run wrote (run folder and published tables)
    bucket_files: int  # of which per bucket of series
    buckets: int  # buckets the demo's series occupy


@dataclass(frozen=True)
class Scenario:
    label: str
    series: int
    instance_type: str
    instances: int
    step_seconds: dict[str, float]
    source_bytes: float
    files: float


def measure_demo(
    definition_text: str, date: dt.date, lookback_days: int, on_step: Any = None
) -> DemoRun:
    """A local run of the definition on the demo data: step times, source bytes, files."""
    with tempfile.TemporaryDirectory(prefix="cost-") as folder:
        lake = Path(folder)
        step_seconds = run_demo(lake, definition_text, date, DEMO_MODELS, on_step)
        first = date - dt.timedelta(days=lookback_days - 1)
        source = [
            path
            for path in (lake / tables.APPLICATIONS.name).glob("dt=*/*.parquet")
            if first.isoformat() <= path.parent.name.removeprefix("dt=") <= date.isoformat()
        ]
        written = [
            path
            for folder_name in (run_folder.RUNS, "run_history", ".publications")
            for path in (lake / folder_name).rglob("*")
            if path.is_file() and "logs" not in path.parts
        ]
        per_bucket = [path for path in written if path.name.startswith("bucket=")]
        buckets = {path.name for path in per_bucket}
        (index,) = (lake / run_folder.RUNS).glob(
            "*/" + run_folder.relative(run_folder.SERIES_INDEX)
        )
        series = sum(pq.read_metadata(part).num_rows for part in index.glob("*.parquet"))
        return DemoRun(
            series=series,
            step_seconds=step_seconds,
            source_bytes=sum(path.stat().st_size for path in source),
            files=len(written),
            bucket_files=len(per_bucket),
            buckets=len(buckets),
        )


def scaled_steps(
    demo: DemoRun, series: int, vcpus: float, instances: int, lookback: int
) -> dict[str, float]:
    """Each job's compute seconds at `series`, by the README's measured rates."""
    per_instance = series * TRAIN_PREDICT_MS_PER_SERIES_VCPU / 1000 / (vcpus * instances)
    return {
        "Extract": demo.step_seconds.get("Extract", 0.0),
        "PreProc": series * lookback * PREPROC_US_PER_SERIES_DAY / 1e6 / instances,
        "Train": per_instance * TRAIN_SHARE,
        "TrainEvaluation": EVALUATION_SECONDS + series * EVALUATION_MS_PER_SERIES / 1000,
        "Predict": per_instance * (1 - TRAIN_SHARE),
        "PostProc": demo.step_seconds.get("PostProc", 0.0),
    }


def scaled_files(demo: DemoRun, series: int) -> float:
    kinds = demo.bucket_files / max(demo.buckets, 1)
    return demo.files - demo.bucket_files + kinds * min(series, shards.BUCKETS)


def run_cost(
    scenario: Scenario, definition: dict[str, Any], settings: Any, prices: dict[str, Any]
) -> dict[str, float]:
    """Dollars of one run, by part."""
    startup = {
        name: (WARM_START_MINUTES if warm else COLD_START_MINUTES) * 60
        for name, warm, _ in starts(definition)
    }
    job_seconds = sum(
        seconds + scenario.step_seconds.get(name, 0.0) for name, seconds in startup.items()
    )
    idle_seconds = settings.keep_alive_seconds  # PostProc's pool after the run
    instance_hours = scenario.instances * (job_seconds + idle_seconds) / 3600
    hourly = prices["sagemaker_training_per_hour"][scenario.instance_type]
    storage = (
        instance_hours
        * settings.volume_size_gb
        * prices["sagemaker_training_storage_gb_month"]
        / (DAYS_PER_MONTH * 24)
    )
    return {
        "wall_minutes": job_seconds / 60,
        "instance_hours": instance_hours,
        "instances": instance_hours * hourly,
        "ml_storage": storage,
        **data_costs(scenario, prices),
    }


def data_costs(scenario: Scenario, prices: dict[str, Any]) -> dict[str, float]:
    """What a run costs beyond its compute, the same in both modes: Athena, S3, KMS, metrics."""
    minimum = prices["athena_min_bytes_per_query"]
    scanned = ATHENA_SCANS * max(scenario.source_bytes, minimum) + minimum  # names: one column
    puts = scenario.files
    gets = scenario.files * GET_CLASS_PER_FILE
    return {
        "athena": scanned / 1e12 * prices["athena_per_tb_scanned"],
        "s3_requests": puts / 1000 * prices["s3_put_per_1000"]
        + gets / 1000 * prices["s3_get_per_1000"],
        "kms_requests": (puts + gets) / 10_000 * prices["kms_per_10000_requests"],
        "cloudwatch": 1 / 1000 * prices["cloudwatch_put_metric_data_per_1000"],
    }


def lambda_run_cost(
    scenario: Scenario,
    definition: dict[str, Any],
    memory_mb: int,
    ephemeral_mb: int,
    prices: dict[str, Any],
) -> dict[str, float]:
    """Dollars of one run with compute lambda, by part."""
    wall = lambda_seconds(definition, scenario.step_seconds)
    billed = sum(LAMBDA_COLD_START_SECONDS + scenario.step_seconds.get(name, 0.0) for name in wall)
    extra_storage_gb = max(ephemeral_mb - FREE_EPHEMERAL_MB, 0) / 1024
    return {
        "wall_minutes": sum(wall.values()) / 60,
        "gb_seconds": billed * memory_mb / 1024,
        "lambda_duration": billed * memory_mb / 1024 * prices["lambda_per_gb_second_x86"],
        "lambda_requests": len(wall) / 1e6 * prices["lambda_per_million_requests"],
        "lambda_ephemeral": billed * extra_storage_gb * prices["lambda_ephemeral_per_gb_second"],
        **data_costs(scenario, prices),
    }


def fixed_monthly(prices: dict[str, Any]) -> dict[str, float]:
    """What the deployed environment costs per month whether it runs or not."""
    return {
        "KMS keys (data, alerts)": 2 * prices["kms_key_per_month"],
        "CloudWatch dashboard": prices["cloudwatch_dashboard_per_month"],
        "CloudWatch alarms (8)": 8 * prices["cloudwatch_alarm_per_month"],
        "custom metrics (6)": 6 * prices["cloudwatch_custom_metric_per_month"],
        "Slack webhook secret": prices["secrets_manager_secret_per_month"],
    }


def print_table(rows: list[tuple[Scenario, dict[str, float]]]) -> None:
    print(
        "| series | instances | wall min | instance-h | instances $ | storage $ | Athena $"
        " | S3 $ | KMS $ | **total $** |"
    )
    print("|---|---|---|---|---|---|---|---|---|---|")
    for scenario, cost in rows:
        total = sum(v for k, v in cost.items() if k not in ("wall_minutes", "instance_hours"))
        print(
            f"| {scenario.label} | {scenario.instance_type} x{scenario.instances}"
            f" | {cost['wall_minutes']:.1f} | {cost['instance_hours']:.2f}"
            f" | {cost['instances']:.3f} | {cost['ml_storage']:.4f} | {cost['athena']:.5f}"
            f" | {cost['s3_requests']:.5f} | {cost['kms_requests']:.5f} | **{total:.2f}** |"
        )


def print_lambda_table(rows: list[tuple[Scenario, dict[str, float]]], memory_mb: int) -> None:
    print(
        "| series | function | wall min | GB-s | duration $ | requests $ | ephemeral $ | Athena $"
        " | S3 $ | KMS $ | **total $** |"
    )
    print("|---|---|---|---|---|---|---|---|---|---|---|")
    for scenario, cost in rows:
        total = sum(v for k, v in cost.items() if k not in ("wall_minutes", "gb_seconds"))
        print(
            f"| {scenario.label} | {memory_mb} MB x6 | {cost['wall_minutes']:.1f}"
            f" | {cost['gb_seconds']:.0f} | {cost['lambda_duration']:.4f}"
            f" | {cost['lambda_requests']:.6f} | {cost['lambda_ephemeral']:.5f}"
            f" | {cost['athena']:.5f} | {cost['s3_requests']:.5f} | {cost['kms_requests']:.5f}"
            f" | **{total:.3f}** |"
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--env", default="prod", help="environment in cdk.json")
    parser.add_argument("--date", type=dt.date.fromisoformat, default=dt.date(2026, 11, 26))
    args = parser.parse_args()

    os.environ.setdefault("JSII_SILENCE_WARNING_END_OF_LIFE_NODE_VERSION", "20")
    from stacks.pipeline_definition import environment_settings

    catalogue = json.loads(PRICES.read_text())
    context = json.loads((REPO / "cdk.json").read_text())["context"]
    config = load_environment(context["environments"], args.env)
    prices = catalogue["regions"][config.region]
    settings = dataclasses.replace(environment_settings(config), compute="training")
    text = build_definition(settings)
    definition = json.loads(text)
    lambda_text = build_definition(dataclasses.replace(settings, compute="lambda"))
    lambda_definition = json.loads(lambda_text)
    print(f"load average before the demo runs: {' '.join(f'{v:.2f}' for v in os.getloadavg())}")
    demo = measure_demo(text, args.date, settings.lookback_days)
    sampler = Sampler()
    with sampler:
        lambda_demo = measure_demo(lambda_text, args.date, settings.lookback_days, sampler.on_step)
    # The function's own vCPUs: its steps' CPU time, not this shared machine's wall time.
    lambda_demo = dataclasses.replace(
        lambda_demo,
        step_seconds={
            name: sample_seconds(step, settings.lambda_memory_mb)
            for name, step in sampler.steps.items()
        },
    )
    print(f"load average after: {' '.join(f'{v:.2f}' for v in os.getloadavg())}")

    scenarios = [
        Scenario(
            f"demo ({demo.series})",
            demo.series,
            settings.instance_type,
            settings.instance_count,
            demo.step_seconds,
            demo.source_bytes,
            demo.files,
        )
    ]
    scales = [(n, settings.instance_type, 1) for n in LAMBDA_SCALES] + list(SCALES)
    for series, instance_type, instances in scales:
        ratio = series / demo.series
        scenarios.append(
            Scenario(
                f"{series:,}",
                series,
                instance_type,
                instances,
                scaled_steps(
                    demo,
                    series,
                    catalogue["vcpus"][instance_type],
                    instances,
                    settings.lookback_days,
                ),
                demo.source_bytes * ratio,
                scaled_files(demo, series),
            )
        )
    print(f"{args.env} in {config.region}: keep-alive {settings.keep_alive_seconds} s,")
    print(f"volume {settings.volume_size_gb} GB, look-back {settings.lookback_days} days")
    print(
        f"demo measured: {demo.series} series, source {demo.source_bytes / 1e6:.1f} MB in the"
        f" window, {demo.files} files written ({demo.bucket_files} per bucket over"
        f" {demo.buckets} buckets); steps {', '.join(f'{k} {v:.0f} s' for k, v in demo.step_seconds.items())}"  # noqa: E501
    )
    print()
    print_table([(s, run_cost(s, definition, settings, prices)) for s in scenarios])
    memory = settings.lambda_memory_mb
    vcpus = min(lambda_vcpus(memory), lambda_cores(memory))
    lambda_scenarios = [
        Scenario(
            f"demo ({lambda_demo.series})",
            lambda_demo.series,
            "lambda",
            1,
            lambda_demo.step_seconds,
            lambda_demo.source_bytes,
            lambda_demo.files,
        )
    ] + [
        Scenario(
            f"{series:,}",
            series,
            "lambda",
            1,
            scaled_steps(lambda_demo, series, vcpus, 1, settings.lookback_days),
            lambda_demo.source_bytes * series / lambda_demo.series,
            scaled_files(lambda_demo, series),
        )
        for series in LAMBDA_SCALES
    ]
    print(
        f"\ncompute lambda: six functions of {memory} MB ({vcpus:.2f} vCPUs for Train and Predict),"
        f" ephemeral storage {EPHEMERAL_STORAGE_MIB} MB; demo measured with the lambda"
        f" definition: steps {', '.join(f'{k} {v:.1f} s' for k, v in lambda_demo.step_seconds.items())}"  # noqa: E501
    )
    print_lambda_table(
        [
            (
                s,
                lambda_run_cost(s, lambda_definition, memory, EPHEMERAL_STORAGE_MIB, prices),
            )
            for s in lambda_scenarios
        ],
        memory,
    )
    print()
    monthly = fixed_monthly(prices)
    print(
        "fixed per month: "
        + ", ".join(f"{k} {v:.2f}" for k, v in monthly.items())
        + f"; total {sum(monthly.values()):.2f} $ ({sum(monthly.values()) / DAYS_PER_MONTH:.2f}"
        " $ per daily run)"
    )
    print(f"prices: bench/prices.json, entered {catalogue['entered']}: {catalogue['status']}")


if __name__ == "__main__":
    main()
