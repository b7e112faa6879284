"""The pipeline definition: schema, shape, gate, placeholders and the job's entry command."""

from __future__ import annotations

import contextlib
import copy
import dataclasses
import importlib
import io
import json
import os
import re
from pathlib import Path
from typing import Any

import jsonschema
import pytest

from pipeline_code.calendar_spec import MAX_COMPANY_DAYS
from pipeline_code.forecasting.parallel import resolve_workers
from pipeline_code.steps import forecast_options, train
from stacks.pipeline_definition import (
    FAIL_STEP,
    GATE_STEP,
    PARAMETERS,
    PLACEHOLDERS,
    STEP_MODULES,
    DefinitionSettings,
    build_definition,
    quota_needed,
    substitute_placeholders,
    warm_pool_key,
)
from tests.pipeline_schema import SCHEMA_PATH, extended_schema

REPO_ROOT = Path(__file__).resolve().parents[2]
SETTINGS = DefinitionSettings(pipeline_name="demand-forecast-test", max_mase=1.25)


@pytest.fixture(scope="module")
def definition_json() -> str:
    return build_definition(SETTINGS)


@pytest.fixture(scope="module")
def definition(definition_json: str) -> dict[str, Any]:
    return json.loads(definition_json)


def job_steps(definition: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """Every job step, including those inside the condition's branches, in execution order."""
    found: dict[str, dict[str, Any]] = {}

    def visit(steps: list[dict[str, Any]]) -> None:
        for step in steps:
            if step["Type"] == "Training":
                found[step["Name"]] = step
            if step["Type"] == "Condition":
                visit(step["Arguments"].get("IfSteps", []))
                visit(step["Arguments"].get("ElseSteps", []))

    visit(definition["Steps"])
    return found


def gate_step(definition: dict[str, Any]) -> dict[str, Any]:
    return next(step for step in definition["Steps"] if step["Name"] == GATE_STEP)


# --- schema --------------------------------------------------------------------------------------


def test_definition_validates_against_the_published_schema(definition: dict[str, Any]) -> None:
    if not SCHEMA_PATH.exists():
        pytest.skip(f"the pipeline definition schema is not present at {SCHEMA_PATH}")
    schema = extended_schema(json.loads(SCHEMA_PATH.read_text()))
    errors = [
        f"{list(error.absolute_path)}: {error.message[:200]}"
        for error in jsonschema.Draft7Validator(schema).iter_errors(definition)
    ]
    assert errors == []


def test_the_extended_schema_still_rejects_a_broken_definition(definition: dict[str, Any]) -> None:
    if not SCHEMA_PATH.exists():
        pytest.skip(f"the pipeline definition schema is not present at {SCHEMA_PATH}")
    schema = extended_schema(json.loads(SCHEMA_PATH.read_text()))
    broken = copy.deepcopy(definition)
    broken["Steps"][0]["Arguments"]["AlgorithmSpecification"]["ContainerArguments"].append(
        {"Bad": 1}
    )
    assert not jsonschema.Draft7Validator(schema).is_valid(broken)


# --- shape ---------------------------------------------------------------------------------------


def test_six_training_job_steps_run_the_step_modules(definition: dict[str, Any]) -> None:
    steps = job_steps(definition)
    assert set(steps) == set(STEP_MODULES)
    for name, step in steps.items():
        entrypoint = step["Arguments"]["AlgorithmSpecification"]["ContainerEntrypoint"]
        assert entrypoint == ["python3", "-m", f"pipeline_code.steps.{STEP_MODULES[name]}"]
        assert "InputDataConfig" not in step["Arguments"], "code and packages are in the image"


def test_every_job_knows_its_region(definition: dict[str, Any]) -> None:
    for step in job_steps(definition).values():
        environment = step["Arguments"]["Environment"]
        assert environment["AWS_REGION"] == environment["AWS_DEFAULT_REGION"]
        assert environment["AWS_REGION"] == PLACEHOLDERS["region"]


def step_options(module: str) -> set[str]:
    """The options a step's entry point accepts, read from its --help."""
    step = importlib.import_module(f"pipeline_code.steps.{module}")
    output = io.StringIO()
    with contextlib.redirect_stdout(output), pytest.raises(SystemExit):
        step.parse_args(["--help"])
    return set(re.findall(r"^\s+(--[a-z][a-z-]*)", output.getvalue(), re.M))


def passed_options(step: dict[str, Any]) -> dict[str, Any]:
    arguments = step["Arguments"]["AlgorithmSpecification"]["ContainerArguments"]
    return {
        value: json.dumps(arguments[i + 1], sort_keys=True)
        for i, value in enumerate(arguments)
        if isinstance(value, str) and value.startswith("--")
    }


def test_every_step_receives_the_settings_it_shares_with_another(
    definition: dict[str, Any],
) -> None:
    """An option two steps accept (the horizon, the interval level, the calendar, ...) is a
    shared setting: the definition must pass it to every step that takes it, with the same
    value, or the steps drift apart on a default. A list option with no items (no company days)
    is passed to none of them."""
    with_company_days = json.loads(
        build_definition(DefinitionSettings(pipeline_name="p", company_days=("2026-03-01:sale",)))
    )
    definitions = [job_steps(definition), job_steps(with_company_days)]
    options = {name: step_options(STEP_MODULES[name]) for name in definitions[0]}
    shared = {
        option
        for option in set().union(*options.values())
        if sum(option in accepted for accepted in options.values()) > 1
    } - {"--help", "--workers"}
    assert {"--horizon", "--interval-level", "--execution-id", "--data-root"} <= shared
    assert {"--season-length", "--holiday-country", "--breaks", "--company-days"} <= shared
    for option in sorted(shared):
        passed = []
        for steps in definitions:
            values = {
                name: passed_options(steps[name]).get(option)
                for name, accepted in options.items()
                if option in accepted
            }
            assert len(set(values.values())) == 1, (option, values)
            passed.append(None not in values.values())
        assert passed[1], option  # every shared option reaches its steps in the fuller one


def test_training_chain_runs_in_order_and_the_gate_guards_publishing(
    definition: dict[str, Any],
) -> None:
    top = {step["Name"]: step for step in definition["Steps"]}
    assert list(top) == ["Extract", "PreProc", "Train", "TrainEvaluation", GATE_STEP]
    assert top["PreProc"]["DependsOn"] == ["Extract"]
    assert top["Train"]["DependsOn"] == ["PreProc"]
    assert top["TrainEvaluation"]["DependsOn"] == ["Train"]
    gate = gate_step(definition)["Arguments"]
    assert [step["Name"] for step in gate["IfSteps"]] == ["Predict", "PostProc"]
    assert gate["IfSteps"][1]["DependsOn"] == ["Predict"]
    assert [(step["Name"], step["Type"]) for step in gate["ElseSteps"]] == [(FAIL_STEP, "Fail")]


def test_parameters_are_the_per_run_knobs(definition: dict[str, Any]) -> None:
    parameters = {p["Name"]: (p["Type"], p.get("DefaultValue")) for p in definition["Parameters"]}
    assert parameters == {
        "ExecutionDate": ("String", ""),
        "MaxMase": ("Float", 1.25),
        "MaxRelativeMase": ("Float", 1.0),
        "Horizon": ("Integer", 28),
        "MaxSeriesRelativeMase": ("Float", 1.5),
    }
    # Every parameter is explained where `python -m local_run run --help` lists them.
    assert set(parameters) == set(PARAMETERS)


def test_every_step_gets_the_common_arguments(definition: dict[str, Any]) -> None:
    for name, step in job_steps(definition).items():
        arguments = step["Arguments"]["AlgorithmSpecification"]["ContainerArguments"]
        pairs = dict(zip(arguments[0:10:2], arguments[1:10:2], strict=True))
        assert pairs == {
            "--execution-date": {"Get": "Parameters.ExecutionDate"},
            "--start-time": {"Get": "Execution.StartDateTime"},
            "--timezone": "Asia/Tokyo",
            "--execution-id": {"Get": "Execution.PipelineExecutionId"},
            "--data-root": f"s3://{PLACEHOLDERS['data_bucket']}",
        }, name


def test_every_processing_step_retries_aws_faults_with_backoff(definition: dict[str, Any]) -> None:
    for name, step in job_steps(definition).items():
        policies = step["RetryPolicies"]
        covered = {kind for policy in policies for kind in policy["ExceptionType"]}
        assert {
            "Step.SERVICE_FAULT",
            "Step.THROTTLING",
            "SageMaker.CAPACITY_ERROR",
            "SageMaker.JOB_INTERNAL_ERROR",
        } <= covered, name
        assert all(policy["BackoffRate"] > 1 and policy["MaxAttempts"] > 1 for policy in policies)


def test_caching_is_off(definition: dict[str, Any]) -> None:
    for step in job_steps(definition).values():
        assert step.get("CacheConfig", {"Enabled": False})["Enabled"] is False


EVALUATION_URI = {
    "Std:Join": {
        "On": "/",
        "Values": [
            f"s3://{PLACEHOLDERS['data_bucket']}/runs",
            {"Get": "Execution.PipelineExecutionId"},
            "evaluation",
            "evaluation.json",
        ],
    }
}


def test_the_gate_reads_the_evaluation_from_the_run_folder_after_the_evaluation(
    definition: dict[str, Any],
) -> None:
    gate = gate_step(definition)
    assert gate["DependsOn"] == ["TrainEvaluation"]
    for condition in gate["Arguments"]["Conditions"]:
        assert condition["LeftValue"]["Std:JsonGet"]["S3Uri"] == EVALUATION_URI
    arguments = job_steps(definition)["TrainEvaluation"]["Arguments"]
    assert "OutputDataConfig" in arguments  # training jobs need one; the file is not in it
    assert "--output-dir" not in arguments["AlgorithmSpecification"]["ContainerArguments"]


# --- one cold start: warm pools ------------------------------------------------------------------


def test_every_job_matches_the_previous_ones_warm_pool(definition: dict[str, Any]) -> None:
    steps = list(job_steps(definition).values())
    assert [s["Name"] for s in steps] == list(STEP_MODULES)
    first = warm_pool_key(steps[0]["Arguments"])
    assert first["ResourceConfig.InstanceType"] == "ml.m5.large" and first["RoleArn"]
    assert all(warm_pool_key(step["Arguments"]) == first for step in steps)
    images = {s["Arguments"]["AlgorithmSpecification"]["TrainingImage"] for s in steps}
    assert images == {PLACEHOLDERS["image_uri"]}
    keep_alive = [s["Arguments"]["ResourceConfig"].get("KeepAlivePeriodInSeconds") for s in steps]
    # Every job keeps its instance: the next step's job, or the next date's Extract in a
    # backfill, starts on it.
    assert keep_alive == [300] * 6


def test_the_quota_holds_every_execution_in_flight_and_one_lingering_pool() -> None:
    settings = DefinitionSettings(pipeline_name="p", instance_count=4)
    assert quota_needed(settings, concurrency=2) == 12
    assert quota_needed(DefinitionSettings(pipeline_name="p"), concurrency=1) == 2


def test_warm_pools_can_be_switched_off() -> None:
    settings = DefinitionSettings(pipeline_name="p", keep_alive_seconds=0)
    steps = job_steps(json.loads(build_definition(settings)))
    assert all(
        "KeepAlivePeriodInSeconds" not in s["Arguments"]["ResourceConfig"] for s in steps.values()
    )


def test_keep_alive_beyond_the_services_limit_is_refused() -> None:
    with pytest.raises(ValueError, match="keep_alive_seconds must be 0-3600"):
        DefinitionSettings(pipeline_name="p", keep_alive_seconds=3601)


def test_nothing_is_installed_when_a_job_starts(definition_json: str) -> None:
    assert "pip install" not in definition_json and "pip3 install" not in definition_json


def test_building_the_definition_opens_no_connection(monkeypatch: pytest.MonkeyPatch) -> None:
    """The build is offline: no SDK telemetry, no credential or metadata lookups."""
    import socket

    def refuse(*args: Any, **kwargs: Any) -> None:
        raise AssertionError(f"the definition build opened a connection: {args}")

    monkeypatch.setattr(socket.socket, "connect", refuse)
    monkeypatch.setattr(socket, "create_connection", refuse)
    assert json.loads(build_definition(DefinitionSettings(pipeline_name="offline")))["Steps"]


def test_gate_compares_both_metrics_with_the_parameters(definition: dict[str, Any]) -> None:
    conditions = gate_step(definition)["Arguments"]["Conditions"]
    compared = {
        (c["LeftValue"]["Std:JsonGet"]["Path"], c["Type"], c["RightValue"]["Get"])
        for c in conditions
    }
    assert compared == {
        ("overall.mase", "LessThanOrEqualTo", "Parameters.MaxMase"),
        ("overall.relative_mase", "LessThanOrEqualTo", "Parameters.MaxRelativeMase"),
        (
            "overall.largest_series_relative_mase",
            "LessThanOrEqualTo",
            "Parameters.MaxSeriesRelativeMase",
        ),
    }


def test_fail_message_carries_the_metrics_and_thresholds(definition: dict[str, Any]) -> None:
    [fail] = gate_step(definition)["Arguments"]["ElseSteps"]
    values = fail["Arguments"]["ErrorMessage"]["Std:Join"]["Values"]
    read = [v["Std:JsonGet"]["Path"] for v in values if isinstance(v, dict) and "Std:JsonGet" in v]
    got = [v["Get"] for v in values if isinstance(v, dict) and "Get" in v]
    assert read == [
        "overall.mase",
        "overall.relative_mase",
        "overall.largest_series_relative_mase",
    ]
    assert {
        "Parameters.MaxMase",
        "Parameters.MaxRelativeMase",
        "Parameters.MaxSeriesRelativeMase",
    } <= set(got)


# --- placeholders --------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def lambda_definition_json() -> str:
    return build_definition(dataclasses.replace(SETTINGS, compute="lambda"))


def test_every_placeholder_appears_and_none_contains_another(
    definition_json: str, lambda_definition_json: str
) -> None:
    """The jobs' role and image in the training definition, the functions in the Lambda one."""
    for name, placeholder in PLACEHOLDERS.items():
        where = lambda_definition_json if name.startswith("function_") else definition_json
        assert placeholder in where, name
        others = [p for other, p in PLACEHOLDERS.items() if other != name]
        assert not any(placeholder in other for other in others), name


@pytest.mark.parametrize("compute", ["training", "lambda"])
def test_placeholders_sit_where_a_string_replacement_is_safe(
    compute: str, definition: dict[str, Any], lambda_definition_json: str
) -> None:
    if compute == "lambda":
        definition = json.loads(lambda_definition_json)
    strings: list[str] = []

    def collect(node: Any) -> None:
        if isinstance(node, str):
            strings.append(node)
        elif isinstance(node, dict):
            for value in node.values():
                collect(value)
        elif isinstance(node, list):
            for value in node:
                collect(value)

    collect(definition)
    bucket = PLACEHOLDERS["data_bucket"]
    for name, placeholder in PLACEHOLDERS.items():
        holders = [s for s in strings if placeholder in s]
        if name == "data_bucket":
            assert all(re.fullmatch(rf"s3://{bucket}(/.*)?", s) for s in holders), holders
        else:
            assert all(s == placeholder for s in holders), (name, holders)


def test_substitution_replaces_every_placeholder(definition_json: str) -> None:
    values = {
        "role_arn": "arn:aws:iam::123456789012:role/pipeline",
        "image_uri": "123456789012.dkr.ecr.ap-northeast-1.amazonaws.com/jobs:abc123",
        "region": "ap-northeast-1",
        "data_bucket": "forecast-data-dev",
        "glue_database": "forecasting_dev",
        "athena_workgroup": "forecasting-dev",
    }
    replaced = substitute_placeholders(definition_json, values)
    assert "PLACEHOLDER" not in replaced
    data_root = job_steps(json.loads(replaced))["Extract"]["Arguments"]["AlgorithmSpecification"]
    assert "s3://forecast-data-dev" in data_root["ContainerArguments"]
    with pytest.raises(KeyError, match="unknown placeholder names"):
        substitute_placeholders(definition_json, {"bucket": "x"})


def test_bad_settings_are_named() -> None:
    with pytest.raises(ValueError, match="interval_level"):
        DefinitionSettings(pipeline_name="p", interval_level=80)


# --- the calendar in the Train job's arguments ---------------------------------------------------

LONGEST_COMPANY_DAYS = tuple(
    f"2026-{1 + i % 12:02d}-01+366:{chr(ord('a') + i % 26)}{'x' * 31}"
    for i in range(MAX_COMPANY_DAYS)
)


def test_the_largest_calendar_keeps_every_job_within_the_argument_limits() -> None:
    """SageMaker: at most 100 ContainerArguments of at most 256 characters each."""
    settings = DefinitionSettings(
        pipeline_name="p", company_days=LONGEST_COMPANY_DAYS, holiday_country="JP"
    )
    steps = job_steps(json.loads(build_definition(settings)))
    for name, step in steps.items():
        arguments = step["Arguments"]["AlgorithmSpecification"]["ContainerArguments"]
        assert len(arguments) <= 100, name
        for item in arguments:
            assert len(item if isinstance(item, str) else json.dumps(item)) <= 256, (name, item)
    train = steps["Train"]["Arguments"]["AlgorithmSpecification"]["ContainerArguments"]
    start = train.index("--company-days") + 1
    assert tuple(train[start : start + MAX_COMPANY_DAYS]) == LONGEST_COMPANY_DAYS
    assert train[train.index("--breaks") + 1] == "year_end,golden_week,obon"


@pytest.mark.parametrize("step_name", ["PreProc", "Train"])
def test_the_steps_pooling_and_shrinking_event_effects_read_the_same_calendar(
    step_name: str,
) -> None:
    settings = DefinitionSettings(
        pipeline_name="p",
        holiday_country=None,
        calendar_breaks=(),
        company_days=("2026-03-01+14:spring_campaign",),
        season_length=14,
        rest_day="friday",
    )
    steps = job_steps(json.loads(build_definition(settings)))
    arguments = steps[step_name]["Arguments"]["AlgorithmSpecification"]["ContainerArguments"]
    calendar = [a for a in arguments if isinstance(a, str)]
    start = calendar.index("--season-length")
    step = importlib.import_module(f"pipeline_code.steps.{STEP_MODULES[step_name]}")
    args = step.parse_args(["--execution-id", "x", "--data-root", "/tmp", *calendar[start:]])
    built = forecast_options.event_settings(args, "D", step_name)
    assert built.season_length == 14
    assert built.calendar is not None
    assert built.calendar.country is None and built.calendar.breaks == ()
    assert [str(c) for c in built.calendar.company_days] == ["2026-03-01+14:spring_campaign"]
    assert built.calendar.rest_day == 4 and built.calendar.rest_day_name == "friday"


@pytest.mark.parametrize(
    ("company_days", "message"),
    [
        ((*LONGEST_COMPANY_DAYS, "2026-01-01:one_more"), "at most 40 company_days"),
        (("2026-13-01:sale",), "YYYY-MM-DD"),
    ],
)
def test_a_calendar_beyond_the_limits_is_refused(
    company_days: tuple[str, ...], message: str
) -> None:
    with pytest.raises(ValueError, match=message):
        DefinitionSettings(pipeline_name="p", company_days=company_days)


def test_every_job_runs_as_many_workers_as_its_instance_has_vcpus() -> None:
    """No job is given a worker count: Train and Predict default to `--workers 0`, every core
    the container may use, so a larger instance type is used in full."""
    steps = job_steps(json.loads(build_definition(DefinitionSettings(pipeline_name="p"))))
    assert all("--workers" not in passed_options(step) for step in steps.values())
    for name in ("Train", "Predict"):
        workers = [a for a in step_options(STEP_MODULES[name]) if a == "--workers"]
        assert workers, f"{name} takes --workers"
    assert (
        train.parse_args(
            ["--execution-date", "2026-01-01", "--execution-id", "e", "--data-root", "."]
        ).workers
        == 0
    )
    assert resolve_workers(0) == len(os.sched_getaffinity(0))
