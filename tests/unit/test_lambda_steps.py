"""`pipeline.compute: lambda`: the Lambda steps of the definition, the image's Lambda handler
that runs a step, the worker pool where Lambda has no semaphores, and the local runner's Lambda
steps."""

from __future__ import annotations

import dataclasses
import json
import multiprocessing.synchronize
import os
import signal
import sys
import time
from pathlib import Path
from typing import Any

import jsonschema
import pytest

from local_run.runner import RunRequest, execute
from pipeline_code import lambda_handler
from pipeline_code.calendar_spec import MAX_COMPANY_DAYS
from pipeline_code.forecasting import parallel
from pipeline_code.lambda_handler import (
    EventError,
    LocalContext,
    StepFailed,
    StepTimedOut,
    handle,
    step_call,
)
from stacks.pipeline_definition import (
    LAMBDA_STEP_MAX_SECONDS,
    PLACEHOLDERS,
    STEP_MODULES,
    DefinitionSettings,
    build_definition,
)
from tests.pipeline_schema import SCHEMA_PATH, extended_schema

SETTINGS = DefinitionSettings(pipeline_name="p", compute="lambda")
SYNCHRONOUS_PAYLOAD_BYTES = 6 * 1024 * 1024
"""Lambda's limit on a synchronous invocation's request
(https://docs.aws.amazon.com/lambda/latest/dg/gettingstarted-limits.html); botocore's model of
Invoke gives the Payload no maximum."""


def flat_steps(definition: dict[str, Any]) -> dict[str, dict[str, Any]]:
    steps: dict[str, dict[str, Any]] = {}
    for step in definition["Steps"]:
        steps[step["Name"]] = step
        for branch in ("IfSteps", "ElseSteps"):
            for inner in (
                step.get("Arguments", {}).get(branch, []) if step["Type"] == "Condition" else []
            ):
                steps[inner["Name"]] = inner
    return steps


@pytest.fixture(scope="module")
def definitions() -> dict[str, dict[str, Any]]:
    return {
        compute: json.loads(build_definition(dataclasses.replace(SETTINGS, compute=compute)))
        for compute in ("training", "lambda")
    }


# --- the definition ------------------------------------------------------------------------------


def test_the_lambda_definition_validates_against_the_published_schema(
    definitions: dict[str, dict[str, Any]],
) -> None:
    if not SCHEMA_PATH.is_file():
        pytest.skip(f"the pipeline definition schema is not present at {SCHEMA_PATH}")
    schema = extended_schema(json.loads(SCHEMA_PATH.read_text()))
    errors = list(jsonschema.Draft7Validator(schema).iter_errors(definitions["lambda"]))
    assert not errors, [error.message for error in errors[:5]]


def test_each_step_invokes_its_own_function_in_the_jobs_order(
    definitions: dict[str, dict[str, Any]],
) -> None:
    jobs, functions = (flat_steps(definitions[c]) for c in ("training", "lambda"))
    for name, module in STEP_MODULES.items():
        assert functions[name]["Type"] == "Lambda"
        assert functions[name]["FunctionArn"] == PLACEHOLDERS[f"function_{module}"]
        assert functions[name].get("DependsOn") == jobs[name].get("DependsOn"), name
    assert [s["Type"] for s in definitions["lambda"]["Steps"]].count("Training") == 0
    assert functions["QualityGate"]["Arguments"] == jobs["QualityGate"]["Arguments"] | {
        "IfSteps": functions["QualityGate"]["Arguments"]["IfSteps"],
        "ElseSteps": functions["QualityGate"]["Arguments"]["ElseSteps"],
    }


def _as_job_argument(value: Any) -> Any:
    """A Lambda input as the job's argument writes it: a bare parameter joined into text."""
    if (
        isinstance(value, dict)
        and value.get("Get", "").startswith("Parameters.")
        and value["Get"] != "Parameters.ExecutionDate"
    ):
        return {"Std:Join": {"On": "", "Values": [value]}}
    return value


def test_each_function_gets_the_jobs_very_arguments_as_flat_primitive_inputs(
    definitions: dict[str, dict[str, Any]],
) -> None:
    """Lambda step inputs must be one flat mapping of primitives (or pipeline variables): the
    step-types page, "Inputs and outputs"."""
    jobs, functions = (flat_steps(definitions[c]) for c in ("training", "lambda"))
    for name, module in STEP_MODULES.items():
        inputs = functions[name]["Arguments"]
        assert inputs["step"] == module
        for key, value in inputs.items():
            plain = isinstance(value, str | int | float) and not isinstance(value, bool)
            variable = isinstance(value, dict) and set(value) == {"Get"}
            assert plain or variable, (name, key, value)
        arguments = [_as_job_argument(inputs[f"arg_{i:03d}"]) for i in range(len(inputs) - 1)]
        container = jobs[name]["Arguments"]["AlgorithmSpecification"]["ContainerArguments"]
        assert arguments == container, name


def test_the_largest_inputs_stay_far_below_the_invocation_payload_limit() -> None:
    settings = dataclasses.replace(
        SETTINGS,
        company_days=tuple(
            f"2026-01-{1 + i % 28:02d}+366:{'x' * 32}" for i in range(MAX_COMPANY_DAYS)
        ),
    )
    for step in flat_steps(json.loads(build_definition(settings))).values():
        if step["Type"] == "Lambda":
            assert len(json.dumps(step["Arguments"]).encode()) < SYNCHRONOUS_PAYLOAD_BYTES / 100


@pytest.mark.parametrize(
    ("change", "named"),
    [
        ({"instance_count": 2}, "instance_count must be 1"),
        ({"lambda_timeout_seconds": LAMBDA_STEP_MAX_SECONDS + 1}, "lambda_timeout_seconds must be"),
        ({"lambda_memory_mb": 10241}, "lambda_memory_mb must be 128-10240"),
        ({"compute": "fargate"}, "compute must be training or lambda"),
    ],
)
def test_settings_lambda_cannot_serve_are_refused_naming_the_key(
    change: dict[str, Any], named: str
) -> None:
    with pytest.raises(ValueError, match=named):
        dataclasses.replace(SETTINGS, **change)


def test_training_mode_keeps_instances_and_long_runs() -> None:
    settings = DefinitionSettings(pipeline_name="p", instance_count=4, lambda_timeout_seconds=900)
    assert settings.compute == "training"


# --- the handler ---------------------------------------------------------------------------------


def event(module: str, *arguments: Any) -> dict[str, Any]:
    return {"step": module, **{f"arg_{i:03d}": value for i, value in enumerate(arguments)}}


def test_the_event_becomes_the_jobs_command_line() -> None:
    call = step_call(event("train", "--horizon", 28, "--interval-level", 0.8))
    assert call.command == [
        sys.executable, "-m", "pipeline_code.steps.train", "--horizon", "28", "--interval-level",
        "0.8",
    ]  # fmt: skip


@pytest.mark.parametrize(
    ("bad", "named"),
    [
        ({"step": "../train"}, "event.step"),
        ({"step": "nothere"}, "no step pipeline_code.steps.nothere"),
        (event("train") | {"args": "x"}, "unknown keys ['args']"),
        (event("train", "a") | {"arg_002": "c"}, "arg_001 is missing"),
        (event("train", {"Get": "Parameters.Horizon"}), "event.arg_000"),
        (event("train", None), "event.arg_000"),
        (["train"], "the event must be the step's inputs"),
    ],
)
def test_an_event_that_is_not_a_steps_inputs_is_named(bad: Any, named: str) -> None:
    with pytest.raises(EventError, match=named.replace("[", r"\[").replace("]", r"\]")):
        step_call(bad)


def test_a_step_that_succeeds_returns_its_time_and_memory() -> None:
    result = handle(event("extract", "--help"), LocalContext(60))
    assert result["step"] == "extract"
    assert result["seconds"] > 0 and result["peak_memory_mb"] > 10


def fake_step(monkeypatch: pytest.MonkeyPatch, code: str) -> None:
    """Every step runs `code` instead, to play a step that fails or takes long."""
    monkeypatch.setattr(
        lambda_handler.StepCall, "command", property(lambda self: [sys.executable, "-c", code])
    )


def test_a_failing_step_fails_the_invocation_with_its_one_line(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    fake_step(
        monkeypatch,
        "import sys; print('working', file=sys.stderr);"
        " print('ERROR Train: no series left (runs/x)', file=sys.stderr); sys.exit(1)",
    )
    with pytest.raises(StepFailed) as failed:
        handle(event("train"), LocalContext(60))
    assert str(failed.value) == "ERROR Train: no series left (runs/x)"
    assert "working" in capsys.readouterr().err, "the step's output reaches the function's log"


def test_a_step_without_its_own_error_line_is_named_with_its_exit_code(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    fake_step(monkeypatch, "import sys; sys.exit(2)")
    with pytest.raises(StepFailed, match="ERROR train: exited with code 2"):
        handle(event("train"), LocalContext(60))


def test_a_step_near_the_functions_timeout_is_stopped_and_says_to_switch_to_training(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    fake_step(monkeypatch, "import time; time.sleep(60)")
    context = LocalContext(lambda_handler.STOP_MARGIN_SECONDS + 1)
    with pytest.raises(StepTimedOut) as stopped:
        handle(event("train"), context)
    message = str(stopped.value)
    assert message.startswith("ERROR train: stopped after 1 s")
    assert "set pipeline.compute to training" in message and "\n" not in message
    assert context.get_remaining_time_in_millis() > 5000, "stopped before Lambda would have"


def test_stopping_a_step_stops_its_worker_processes_too(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    marker = tmp_path / "worker.pid"
    fake_step(
        monkeypatch,
        "import subprocess, sys, time;"
        " worker = subprocess.Popen([sys.executable, '-c', 'import time; time.sleep(600)'],"
        " stderr=subprocess.DEVNULL);"
        f" open({str(marker)!r}, 'w').write(str(worker.pid)); time.sleep(60)",
    )
    with pytest.raises(StepTimedOut):
        handle(event("train"), LocalContext(lambda_handler.STOP_MARGIN_SECONDS + 2))
    worker = int(marker.read_text())
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline and Path(f"/proc/{worker}").exists():
        if Path(f"/proc/{worker}/stat").read_text().split()[2] == "Z":
            break  # killed, waiting for its parent to reap it
        time.sleep(0.1)
    stat = Path(f"/proc/{worker}/stat")
    alive = stat.exists() and stat.read_text().split()[2] != "Z"
    if alive:
        os.kill(worker, signal.SIGKILL)
    assert not alive, "the worker ran on after its step was stopped"


def test_a_step_near_the_functions_memory_warns(capsys: pytest.CaptureFixture[str]) -> None:
    handle(event("extract", "--help"), LocalContext(60, memory_limit_in_mb=16))
    assert "WARNING extract: one process peaked at" in capsys.readouterr().err


def test_the_local_invocation_reports_a_failure_as_the_function_would(tmp_path: Path) -> None:
    code = lambda_handler.main([json.dumps({"step": "nothere"}), "--timeout-seconds", "60"])
    assert code == 1


# --- workers without semaphores ------------------------------------------------------------------


def square(value: int) -> int:
    if value < 0:
        raise ValueError(f"negative {value}")
    return value * value


@pytest.fixture
def no_semaphores(monkeypatch: pytest.MonkeyPatch) -> None:
    """This machine as AWS Lambda: no /dev/shm, so no semaphore can be made (and no pool)."""

    def refuse(*args: Any, **kwargs: Any) -> None:
        raise OSError(38, "Function not implemented")

    monkeypatch.setattr(multiprocessing.synchronize.SemLock, "__init__", refuse)
    monkeypatch.setattr(parallel, "ProcessPoolExecutor", refuse)


@pytest.mark.usefixtures("no_semaphores")
def test_without_semaphores_the_series_go_to_workers_over_pipes_in_order() -> None:
    assert not parallel.semaphores_work()
    done: list[int] = []
    items = list(range(200))
    assert parallel.map_series(square, items, workers=2, on_done=done.append) == [
        value * value for value in items
    ]
    assert sum(done) == len(items)


@pytest.mark.usefixtures("no_semaphores")
def test_without_semaphores_a_workers_error_reaches_the_caller() -> None:
    with pytest.raises(ValueError, match="negative -1"):
        parallel.map_series(square, [1, 2, -1, 3] * 20, workers=2)


def test_this_machine_makes_semaphores_so_the_pool_runs_here() -> None:
    assert parallel.semaphores_work()


# --- the local runner ----------------------------------------------------------------------------


def lambda_definition(*arguments: Any) -> dict[str, Any]:
    return {
        "Version": "2020-12-01",
        "Parameters": [{"Name": "Horizon", "Type": "Integer", "DefaultValue": 28}],
        "Steps": [
            {
                "Name": "Extract",
                "Type": "Lambda",
                "FunctionArn": "arn:aws:lambda:us-east-1:000000000000:function:f",
                "Arguments": event("extract", "--data-root", "s3://bucket", *arguments),
            }
        ],
    }


def run(definition: dict[str, Any], lake: Path) -> Any:
    return execute(
        RunRequest(
            definition=definition,
            lake=lake,
            execution_id="local-test",
            start_time="2026-12-01T00:00:00.000Z",
            parameter_values={},
            lambda_timeout_seconds=60,
        )
    )


def test_the_local_runner_invokes_the_handler_with_resolved_inputs(tmp_path: Path) -> None:
    outcome = run(lambda_definition({"Get": "Parameters.Horizon"}, "--help"), tmp_path)
    assert outcome.succeeded, outcome.failure
    assert [(s.name, s.kind, s.status) for s in outcome.steps] == [
        ("Extract", "Lambda", "Succeeded")
    ]
    log = (tmp_path / "runs" / "local-test" / "logs" / "Extract.log").read_text()
    assert "-m pipeline_code.lambda_handler" in log
    assert f'"arg_001": "{tmp_path}", "arg_002": 28' in log, "the bucket is the lake"


def test_the_local_runner_fails_the_run_with_the_functions_error(tmp_path: Path) -> None:
    outcome = run(lambda_definition("--no-such-option"), tmp_path)
    assert outcome.failed_step == "Extract"
    assert "ERROR extract: exited with code 2" in (outcome.failure or "")


def test_the_local_run_refuses_lambda_steps_on_several_instances(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from local_run.cli import main

    arguments = ["run", "--lake", str(tmp_path), "--date", "2026-11-30"]
    code = main([*arguments, "--compute", "lambda", "--instance-count", "2"])
    assert code == 2
    error = capsys.readouterr().err
    assert "instance_count must be 1" in error and "--compute" in error
    assert not any(tmp_path.iterdir()), "refused before any work"
