"""The pipeline definition: schema, shape, gate, placeholders and the job's entry command."""

from __future__ import annotations

import ast
import copy
import fnmatch
import json
import os
import re
import subprocess
import sys
import zipfile
from pathlib import Path
from typing import Any

import jsonschema
import pytest

from pipeline_code.calendar_spec import MAX_COMPANY_DAYS
from pipeline_code.definition import (
    EVALUATION_DIR,
    FAIL_STEP,
    GATE_STEP,
    PLACEHOLDERS,
    STEP_MODULES,
    DefinitionSettings,
    build_definition,
    container_entrypoint,
    substitute_placeholders,
)
from pipeline_code.steps import train
from tests.pipeline_schema import SCHEMA_PATH, extended_schema

REPO_ROOT = Path(__file__).resolve().parents[2]
SETTINGS = DefinitionSettings(pipeline_name="demand-forecast-test", max_mase=1.25)


@pytest.fixture(scope="module")
def definition_json() -> str:
    return build_definition(SETTINGS)


@pytest.fixture(scope="module")
def definition(definition_json: str) -> dict[str, Any]:
    return json.loads(definition_json)


def processing_steps(definition: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """Every processing step, including those inside the condition's branches."""
    found: dict[str, dict[str, Any]] = {}

    def visit(steps: list[dict[str, Any]]) -> None:
        for step in steps:
            if step["Type"] == "Processing":
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
    broken["Steps"][0]["Arguments"]["AppSpecification"]["ContainerArguments"].append({"Bad": 1})
    assert not jsonschema.Draft7Validator(schema).is_valid(broken)


# --- shape ---------------------------------------------------------------------------------------


def test_six_processing_steps_run_the_step_modules(definition: dict[str, Any]) -> None:
    steps = processing_steps(definition)
    assert set(steps) == set(STEP_MODULES)
    for name, step in steps.items():
        entrypoint = step["Arguments"]["AppSpecification"]["ContainerEntrypoint"]
        assert f"python3 -m pipeline_code.steps.{STEP_MODULES[name]} " in entrypoint[2]


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
    }


def test_every_step_gets_the_common_arguments(definition: dict[str, Any]) -> None:
    for name, step in processing_steps(definition).items():
        arguments = step["Arguments"]["AppSpecification"]["ContainerArguments"]
        pairs = dict(zip(arguments[0:10:2], arguments[1:10:2], strict=True))
        assert pairs == {
            "--execution-date": {"Get": "Parameters.ExecutionDate"},
            "--start-time": {"Get": "Execution.StartDateTime"},
            "--timezone": "Asia/Tokyo",
            "--execution-id": {"Get": "Execution.PipelineExecutionId"},
            "--data-root": f"s3://{PLACEHOLDERS['data_bucket']}",
        }, name


def test_every_processing_step_retries_aws_faults_with_backoff(definition: dict[str, Any]) -> None:
    for name, step in processing_steps(definition).items():
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
    for step in processing_steps(definition).values():
        assert step.get("CacheConfig", {"Enabled": False})["Enabled"] is False


def test_evaluation_lands_in_the_run_folder_where_the_gate_reads_it(
    definition: dict[str, Any],
) -> None:
    evaluation = processing_steps(definition)["TrainEvaluation"]
    [output] = evaluation["Arguments"]["ProcessingOutputConfig"]["Outputs"]
    assert output["S3Output"]["LocalPath"] == EVALUATION_DIR
    assert output["S3Output"]["S3Uri"] == {
        "Std:Join": {
            "On": "/",
            "Values": [
                f"s3://{PLACEHOLDERS['data_bucket']}/runs",
                {"Get": "Execution.PipelineExecutionId"},
                "evaluation",
            ],
        }
    }
    [property_file] = evaluation["PropertyFiles"]
    assert property_file["OutputName"] == output["OutputName"]
    assert property_file["FilePath"] == "evaluation.json"
    arguments = evaluation["Arguments"]["AppSpecification"]["ContainerArguments"]
    assert arguments[arguments.index("--output-dir") + 1] == EVALUATION_DIR


def test_gate_compares_both_metrics_with_the_parameters(definition: dict[str, Any]) -> None:
    conditions = gate_step(definition)["Arguments"]["Conditions"]
    compared = {
        (c["LeftValue"]["Std:JsonGet"]["Path"], c["Type"], c["RightValue"]["Get"])
        for c in conditions
    }
    assert compared == {
        ("overall.mase", "LessThanOrEqualTo", "Parameters.MaxMase"),
        ("overall.relative_mase", "LessThanOrEqualTo", "Parameters.MaxRelativeMase"),
    }


def test_fail_message_carries_the_metrics_and_thresholds(definition: dict[str, Any]) -> None:
    [fail] = gate_step(definition)["Arguments"]["ElseSteps"]
    values = fail["Arguments"]["ErrorMessage"]["Std:Join"]["Values"]
    read = [v["Std:JsonGet"]["Path"] for v in values if isinstance(v, dict) and "Std:JsonGet" in v]
    got = [v["Get"] for v in values if isinstance(v, dict) and "Get" in v]
    assert read == ["overall.mase", "overall.relative_mase"]
    assert {"Parameters.MaxMase", "Parameters.MaxRelativeMase"} <= set(got)


# --- placeholders --------------------------------------------------------------------------------


def test_every_placeholder_appears_and_none_contains_another(definition_json: str) -> None:
    for name, placeholder in PLACEHOLDERS.items():
        assert placeholder in definition_json, name
        others = [p for other, p in PLACEHOLDERS.items() if other != name]
        assert not any(placeholder in other for other in others), name


def test_placeholders_sit_where_a_string_replacement_is_safe(definition: dict[str, Any]) -> None:
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
        "image_uri": "354813040037.dkr.ecr.ap-northeast-1.amazonaws.com/sklearn:1.4-2",
        "code_uri": "s3://cdk-assets-123456789012/abc123.zip",
        "data_bucket": "forecast-data-dev",
        "glue_database": "forecasting_dev",
        "athena_workgroup": "forecasting-dev",
    }
    replaced = substitute_placeholders(definition_json, values)
    assert "PLACEHOLDER" not in replaced
    data_root = processing_steps(json.loads(replaced))["Extract"]["Arguments"]["AppSpecification"]
    assert "s3://forecast-data-dev" in data_root["ContainerArguments"]
    with pytest.raises(KeyError, match="unknown placeholder names"):
        substitute_placeholders(definition_json, {"bucket": "x"})


def test_a_custom_image_needs_no_image_placeholder_nor_pip_install() -> None:
    settings = DefinitionSettings(
        pipeline_name="p", image_uri="123.dkr.ecr.x/forecast:1", install_requirements=False
    )
    definition = json.loads(build_definition(settings))
    for step in processing_steps(definition).values():
        app = step["Arguments"]["AppSpecification"]
        assert app["ImageUri"] == "123.dkr.ecr.x/forecast:1"
        assert "pip install" not in app["ContainerEntrypoint"][2]


def test_bad_settings_are_named() -> None:
    with pytest.raises(ValueError, match="interval_level"):
        DefinitionSettings(pipeline_name="p", interval_level=80)


# --- the job's entry command ---------------------------------------------------------------------


def asset_excludes() -> list[str]:
    """The stack's exclude patterns for the code asset, so the test zips what is deployed.

    Read from the stack's source rather than imported: importing aws_cdk starts a node process.
    """
    stack = REPO_ROOT / "stacks" / "pipeline_stack.py"
    if stack.exists():
        for node in ast.parse(stack.read_text()).body:
            if isinstance(node, ast.Assign) and any(
                isinstance(target, ast.Name) and target.id == "ASSET_EXCLUDES"
                for target in node.targets
            ):
                return list(ast.literal_eval(node.value))
    return ["**/__pycache__"]


def excluded(relative: Path, patterns: list[str]) -> bool:
    """The asset's exclude globs, for the patterns it uses (a name or `**/name` at any depth)."""
    for pattern in patterns:
        pattern = pattern.removeprefix("**/")
        if any(fnmatch.fnmatch(part, pattern) for part in relative.parts):
            return True
    return False


def zip_like_the_cdk_asset(package: Path, target: Path) -> Path:
    """A directory asset's zip: the folder's files at the zip root, no folder of its own."""
    patterns = asset_excludes()
    with zipfile.ZipFile(target, "w", zipfile.ZIP_DEFLATED) as archive:
        for path in sorted(package.rglob("*")):
            relative = path.relative_to(package)
            if path.is_file() and not excluded(relative, patterns):
                archive.write(path, relative.as_posix())
    return target


def run_entrypoint(
    entrypoint: list[str], arguments: list[str], input_dir: Path, code_dir: Path
) -> subprocess.CompletedProcess[str]:
    environment = {
        **os.environ,
        "PIPELINE_CODE_INPUT_DIR": str(input_dir),
        "PIPELINE_CODE_DIR": str(code_dir),
        # `python3` in the job image has the requirements; here the test's interpreter does.
        "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}",
        "PYTHONPATH": "",
    }
    return subprocess.run(
        [*entrypoint, *arguments],
        env=environment,
        cwd=input_dir,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


@pytest.mark.parametrize("module", sorted(STEP_MODULES.values()))
def test_entrypoint_unpacks_the_code_zip_and_runs_the_step(tmp_path: Path, module: str) -> None:
    if not (REPO_ROOT / "pipeline_code" / "steps" / f"{module}.py").exists():
        pytest.skip(f"pipeline_code/steps/{module}.py does not exist yet")
    # The container runs `python3`; the test puts its interpreter's folder first on PATH.
    if not (Path(sys.executable).parent / "python3").exists():
        pytest.skip("no python3 next to the test interpreter")
    input_dir = tmp_path / "input" / "code"
    input_dir.mkdir(parents=True)
    zip_like_the_cdk_asset(REPO_ROOT / "pipeline_code", input_dir / "5f0e1d2c3b4a.zip")
    code_dir = tmp_path / "code"
    entrypoint = container_entrypoint(module, install_requirements=False)
    result = run_entrypoint(entrypoint, ["--help"], input_dir, code_dir)
    assert result.returncode == 0, result.stderr
    assert "--execution-id" in result.stdout
    assert (code_dir / "pipeline_code" / "steps" / f"{module}.py").exists()


def test_entrypoint_runs_a_probe_module_with_the_container_arguments(tmp_path: Path) -> None:
    """Arguments arrive intact (spaces included) and the step runs from the unpacked code."""
    package = tmp_path / "asset"
    (package / "steps").mkdir(parents=True)
    (package / "__init__.py").write_text("")
    (package / "steps" / "__init__.py").write_text("")
    (package / "steps" / "probe.py").write_text(
        "import json, sys, pipeline_code\n"
        "print(json.dumps({'argv': sys.argv[1:], 'package': pipeline_code.__file__}))\n"
    )
    (package / "requirements.txt").write_text("")
    input_dir = tmp_path / "input"
    input_dir.mkdir()
    zip_like_the_cdk_asset(package, input_dir / "asset.zip")
    code_dir = tmp_path / "code"
    entrypoint = container_entrypoint("probe", install_requirements=False)
    result = run_entrypoint(entrypoint, ["--a", "x y", "--b", ""], input_dir, code_dir)
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout)
    assert report["argv"] == ["--a", "x y", "--b", ""]
    assert report["package"].startswith(str(code_dir / "pipeline_code"))


def test_entrypoint_refuses_a_zip_with_the_wrong_layout(tmp_path: Path) -> None:
    input_dir = tmp_path / "input"
    input_dir.mkdir()
    with zipfile.ZipFile(input_dir / "asset.zip", "w") as archive:
        archive.writestr("pipeline_code/steps/__init__.py", "")
    entrypoint = container_entrypoint("extract", install_requirements=False)
    result = run_entrypoint(entrypoint, [], input_dir, tmp_path / "code")
    assert result.returncode == 2
    assert "must hold the pipeline_code folder's files at its root" in result.stderr


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
    steps = processing_steps(json.loads(build_definition(settings)))
    for name, step in steps.items():
        arguments = step["Arguments"]["AppSpecification"]["ContainerArguments"]
        assert len(arguments) <= 100, name
        for item in arguments:
            assert len(item if isinstance(item, str) else json.dumps(item)) <= 256, (name, item)
    train = steps["Train"]["Arguments"]["AppSpecification"]["ContainerArguments"]
    start = train.index("--company-days") + 1
    assert tuple(train[start : start + MAX_COMPANY_DAYS]) == LONGEST_COMPANY_DAYS
    assert train[train.index("--breaks") + 1] == "year_end,golden_week,obon"


def test_the_train_step_reads_the_calendar_the_definition_passes() -> None:
    settings = DefinitionSettings(
        pipeline_name="p",
        holiday_country=None,
        calendar_breaks=(),
        company_days=("2026-03-01+14:spring_campaign",),
    )
    steps = processing_steps(json.loads(build_definition(settings)))
    arguments = steps["Train"]["Arguments"]["AppSpecification"]["ContainerArguments"]
    calendar = [a for a in arguments if isinstance(a, str)]
    start = calendar.index("--holiday-country")
    args = train.parse_args(["--execution-id", "x", "--data-root", "/tmp", *calendar[start:]])
    built = train.build_calendar(args)
    assert built.country is None and built.breaks == ()
    assert [str(c) for c in built.company_days] == ["2026-03-01+14:spring_campaign"]


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
