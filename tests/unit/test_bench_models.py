"""The pure parts of the wall-time and Lambda-size models in bench/ (the benchmarks print the
figures; these check the rules they apply)."""

from __future__ import annotations

import dataclasses
import json
import sys
from pathlib import Path

import pytest

from stacks.pipeline_definition import DefinitionSettings, build_definition

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "bench"))

import lambda_fit
import wall_time

SETTINGS = DefinitionSettings(pipeline_name="bench-test", keep_alive_seconds=300)


@pytest.fixture(scope="module")
def pooled() -> dict:
    return json.loads(build_definition(SETTINGS))


def test_a_backfills_next_date_starts_on_the_last_jobs_pool(pooled: dict) -> None:
    warm, why = wall_time.next_date_starts_warm(pooled, gap_seconds=15)
    assert warm, why
    late, why = wall_time.next_date_starts_warm(pooled, gap_seconds=301)
    assert not late and "ends before" in why


def test_without_keep_alive_every_date_starts_cold() -> None:
    cold = json.loads(build_definition(dataclasses.replace(SETTINGS, keep_alive_seconds=0)))
    warm, why = wall_time.next_date_starts_warm(cold, gap_seconds=15)
    assert not warm and "no warm pool" in why
    compute = {"Train": 60.0}
    assert wall_time.training_minutes(cold, compute, first_warm=False) == pytest.approx(
        6 * wall_time.COLD_START_MINUTES + 1.0
    )


def test_a_warm_first_job_saves_one_cold_start(pooled: dict) -> None:
    cold_first = wall_time.training_minutes(pooled, {})
    warm_first = wall_time.training_minutes(pooled, {}, first_warm=True)
    assert cold_first - warm_first == pytest.approx(
        wall_time.COLD_START_MINUTES - wall_time.WARM_START_MINUTES
    )


def test_lambda_steps_are_the_six_functions_in_run_order() -> None:
    definition = json.loads(build_definition(dataclasses.replace(SETTINGS, compute="lambda")))
    names = wall_time.lambda_step_names(definition)
    assert names == ["Extract", "PreProc", "Train", "TrainEvaluation", "Predict", "PostProc"]
    cold = wall_time.lambda_seconds(
        definition, {"Train": 30.0}, warm=False, cold_start=4, overhead=10
    )
    warm = wall_time.lambda_seconds(
        definition, {"Train": 30.0}, warm=True, cold_start=4, overhead=10
    )
    assert cold["Train"] == 44 and warm["Train"] == 40 and cold["Extract"] == 14


def test_backfill_counts_waves_of_concurrent_dates() -> None:
    # 5 dates two at a time: 3 waves, the first at the first dates' time.
    hours = wall_time.backfill_hours(10, 4, dates=5, concurrency=2, gap_minutes=1)
    assert hours == pytest.approx((10 + 2 * 4 + 3 * 1) / 60)


def test_lambda_cpu_and_cores_follow_memory() -> None:
    assert lambda_fit.lambda_vcpus(1769) == pytest.approx(1.0)
    assert lambda_fit.lambda_vcpus(10240) == pytest.approx(10240 / 1769)
    assert [lambda_fit.lambda_cores(m) for m in (128, 3008, 3009, 4096, 8846, 10240)] == [
        2,
        2,
        3,
        3,
        6,
        6,
    ]


def test_worker_cpu_spreads_over_the_functions_share_of_cores() -> None:
    line = lambda_fit.Line
    train = lambda_fit.StepModel(
        serial_cpu=line(2.0, 0.0),
        worker_cpu=line(0.0, 0.1),
        serial_mb=line(200.0, 0.0),
        worker_mb=line(100.0, 0.0),
        parallel=True,
    )
    # 4,096 MB: 2.32 vCPUs over 3 cores; 1,024 MB: less than one vCPU for everything.
    assert train.seconds(1000, 4096) == pytest.approx(2.0 + 100 / (4096 / 1769))
    assert train.seconds(1000, 1024) == pytest.approx((2.0 + 100) / (1024 / 1769))
    assert train.memory_mb(1000, 4096) == pytest.approx(200 + 3 * 100)


def test_largest_served_is_bounded_by_the_binding_step() -> None:
    line = lambda_fit.Line
    slow = lambda_fit.StepModel(line(0, 0.1), line(0, 0), line(100, 0), line(0, 0), False)
    big = lambda_fit.StepModel(line(0, 0.001), line(0, 0), line(100, 1.0), line(0, 0), False)
    served, binding = lambda_fit.largest_served(
        {"Slow": slow, "Big": big}, memory_mb=4096, timeout_seconds=600, time_share=0.8,
        memory_share=0.8,
    )  # fmt: skip
    # time: 0.1 s a series within 480 s -> 4,800; memory: 100 + n within 3,276.8 -> 3,176
    assert (served, binding) == (3176, "Big's memory")
    served, binding = lambda_fit.largest_served(
        {"Slow": slow}, memory_mb=4096, timeout_seconds=600, time_share=0.8, memory_share=0.8
    )
    assert (served, binding) == (4800, "Slow's time")


def test_athena_steps_are_not_judged_against_the_function() -> None:
    line = lambda_fit.Line
    heavy = lambda_fit.StepModel(line(0, 10.0), line(0, 0), line(0, 100.0), line(0, 0), False)
    light = lambda_fit.StepModel(line(0, 0.1), line(0, 0), line(0, 0), line(0, 0), False)
    served, _ = lambda_fit.largest_served({"Extract": heavy, "Train": light}, 4096, 600, 0.8, 0.8)
    assert served == 4800


def test_fit_line_through_measured_points() -> None:
    fitted = lambda_fit.fit_line([30, 300, 3000], [3.0 + 0.01 * n for n in (30, 300, 3000)])
    assert fitted.a == pytest.approx(3.0) and fitted.b == pytest.approx(0.01)


def test_a_measured_steps_cpu_time_on_a_function() -> None:
    step = lambda_fit.StepSample(cpu_seconds=10.0, serial_cpu=4.0, workers=2)
    assert lambda_fit.sample_seconds(step, 4096) == pytest.approx(4.0 + 6.0 / (4096 / 1769))
    alone = lambda_fit.StepSample(cpu_seconds=3.0, serial_cpu=3.0, workers=0)
    assert lambda_fit.sample_seconds(alone, 10240) == pytest.approx(3.0)
