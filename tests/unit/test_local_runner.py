"""The local runner on small hand-made definitions, with stand-in step modules in a temp package."""

from __future__ import annotations

import json
import math
import os
import sys
import textwrap
from pathlib import Path
from typing import Any

import pytest

from local_run import cli
from local_run.expressions import (
    DefinitionError,
    Scope,
    all_conditions_hold,
    condition_holds,
    json_path_value,
    resolve,
)
from local_run.runner import (
    RunRequest,
    execute,
    instance_cores,
    load_definition,
    run_instances,
    step_module,
    typed_parameters,
)
from stacks.pipeline_definition import (
    STEP_MODULES,
    DefinitionSettings,
    build_definition,
    container_entrypoint,
)

BUCKET = "s3://forecast-data-dev"


def scope(parameters: dict[str, Any] | None = None, files: dict[str, Any] | None = None) -> Scope:
    files = files or {}
    return Scope(
        parameters=parameters or {},
        execution={"PipelineExecutionId": "exec-1", "StartDateTime": "2025-01-02T03:00:00.000Z"},
        read_json=lambda uri, where: files[uri],
    )


EVALUATION_URI = {
    "Std:Join": {
        "On": "/",
        "Values": [
            f"{BUCKET}/runs",
            {"Get": "Execution.PipelineExecutionId"},
            "evaluation",
            "evaluation.json",
        ],
    }
}


def json_get(path: str) -> dict[str, Any]:
    return {"Std:JsonGet": {"S3Uri": EVALUATION_URI, "Path": path}}


# --- expressions ---------------------------------------------------------------------------------


def test_join_renders_parameters_execution_variables_and_nested_joins() -> None:
    expression = {
        "Std:Join": {
            "On": "/",
            "Values": [
                "s3://b/runs",
                {"Get": "Execution.PipelineExecutionId"},
                {"Std:Join": {"On": "", "Values": [{"Get": "Parameters.MaxMase"}]}},
                {"Get": "Parameters.Enabled"},
            ],
        }
    }
    value = resolve(expression, scope({"MaxMase": 1.5, "Enabled": True}), "here")
    assert value == "s3://b/runs/exec-1/1.5/true"


def test_json_get_reads_the_file_at_the_resolved_uri_by_path() -> None:
    uri = f"{BUCKET}/runs/exec-1/evaluation/evaluation.json"
    files = {uri: {"overall": {"mase": 0.8}, "folds": [{"mase": 0.7}]}}
    assert resolve(json_get("overall.mase"), scope(files=files), "x") == 0.8
    assert resolve(json_get("folds[0].mase"), scope(files=files), "x") == 0.7
    with pytest.raises(DefinitionError, match=r"x\.Std:JsonGet: JSON path 'overall\.missing'"):
        resolve(json_get("overall.missing"), scope(files=files), "x")


@pytest.mark.parametrize(
    ("expression", "problem"),
    [
        ({"Get": "Parameters.Nope"}, "unknown parameter 'Nope'"),
        ({"Get": "Execution.Nope"}, "unknown execution variable 'Nope'"),
        ({"Get": "Steps.A.TrainingJobArn"}, "does not support Get"),
        ({"Std:JsonGet": {"Path": "a"}}, "needs an S3Uri and a Path"),
        ({"Std:Split": {}}, "unknown expression with keys"),
        ({"Std:Join": {"On": ""}}, "needs an object with a Values list"),
    ],
)
def test_unknown_expressions_name_the_place(expression: dict[str, Any], problem: str) -> None:
    with pytest.raises(DefinitionError, match=r"Steps\[Gate\]\.Conditions\[0\]") as raised:
        resolve(expression, scope(), "Steps[Gate].Conditions[0]")
    assert problem in str(raised.value)


def binary(kind: str, left: Any, right: Any) -> dict[str, Any]:
    return {"Type": kind, "LeftValue": left, "RightValue": right}


@pytest.mark.parametrize(
    ("condition", "expected"),
    [
        (binary("Equals", json_get("gate.passed"), True), True),
        (
            binary("LessThanOrEqualTo", json_get("overall.mase"), {"Get": "Parameters.MaxMase"}),
            True,
        ),
        (binary("LessThan", json_get("overall.mase"), 0.8), False),
        (binary("GreaterThan", json_get("overall.mase"), 0.5), True),
        (binary("GreaterThanOrEqualTo", 2, 2.0), True),
        ({"Type": "Not", "Expression": binary("Equals", json_get("gate.passed"), True)}, False),
        ({"Type": "Or", "Conditions": [binary("Equals", 1, 2), binary("Equals", 2, 2)]}, True),
        ({"Type": "In", "QueryValue": "b", "Values": ["a", "b"]}, True),
    ],
)
def test_conditions(condition: dict[str, Any], expected: bool) -> None:
    files = {
        f"{BUCKET}/runs/exec-1/evaluation/evaluation.json": {
            "overall": {"mase": 0.8},
            "gate": {"passed": True},
        }
    }
    assert condition_holds(condition, scope({"MaxMase": 1.0}, files), "c") is expected


def test_all_conditions_must_hold() -> None:
    conditions = [binary("Equals", 1, 1), binary("Equals", 1, 2)]
    assert all_conditions_hold(conditions, scope(), "Conditions") is False
    assert all_conditions_hold(conditions[:1], scope(), "Conditions") is True


def test_a_nan_metric_fails_every_ordering_comparison() -> None:
    for kind in ("LessThan", "LessThanOrEqualTo", "GreaterThan", "GreaterThanOrEqualTo"):
        assert condition_holds(binary(kind, math.nan, 1.0), scope(), "c") is False


def test_bad_conditions_name_the_place() -> None:
    with pytest.raises(DefinitionError, match=r"c: unknown condition type 'Xor'"):
        condition_holds({"Type": "Xor"}, scope(), "c")
    with pytest.raises(DefinitionError, match="LessThan cannot compare 'a'"):
        condition_holds(binary("LessThan", "a", 1), scope(), "c")


def test_json_path_value_walks_keys_and_indexes() -> None:
    assert json_path_value({"a": [{"b": 3}]}, "a[0].b", "x") == 3


# --- parameters ----------------------------------------------------------------------------------

PARAMETERS = [
    {"Name": "ExecutionDate", "Type": "String", "DefaultValue": ""},
    {"Name": "MaxMase", "Type": "Float", "DefaultValue": 1.5},
    {"Name": "Horizon", "Type": "Integer", "DefaultValue": 28},
    {"Name": "Publish", "Type": "Boolean", "DefaultValue": True},
]


def test_parameters_take_defaults_and_typed_overrides() -> None:
    definition = {"Parameters": PARAMETERS}
    values = typed_parameters(definition, {"MaxMase": "0.9", "Horizon": "7", "Publish": "false"})
    assert values == {"ExecutionDate": "", "MaxMase": 0.9, "Horizon": 7, "Publish": False}


@pytest.mark.parametrize(
    ("values", "problem"),
    [
        ({"Nope": "1"}, "unknown parameters ['Nope']"),
        ({"Horizon": "seven"}, "Parameters.Horizon: 'seven' is not a valid Integer"),
        ({"Publish": "yes"}, "Parameters.Publish: 'yes' is not a valid Boolean"),
    ],
)
def test_bad_parameter_values_are_named(values: dict[str, str], problem: str) -> None:
    with pytest.raises(DefinitionError) as raised:
        typed_parameters({"Parameters": PARAMETERS}, values)
    assert problem in str(raised.value)


# --- the real definition -------------------------------------------------------------------------


def test_every_step_module_is_read_from_the_built_definition() -> None:
    definition = load_definition(build_definition(DefinitionSettings(pipeline_name="p")), "built")
    modules = {}
    steps = list(definition["Steps"])
    while steps:
        step = steps.pop(0)
        if step["Type"] == "Condition":
            steps += step["Arguments"]["IfSteps"] + step["Arguments"]["ElseSteps"]
        if step["Type"] == "Training":
            entrypoint = step["Arguments"]["AlgorithmSpecification"]["ContainerEntrypoint"]
            modules[step["Name"]] = step_module(entrypoint, step["Name"])
    assert modules == {
        name: f"pipeline_code.steps.{module}" for name, module in STEP_MODULES.items()
    }


def test_local_stand_ins_replace_the_database_placeholders() -> None:
    text = load_definition(build_definition(DefinitionSettings(pipeline_name="p")), "built")
    assert "PLACEHOLDER_GLUE_DATABASE" not in json.dumps(text)


# --- execution with stand-in steps ---------------------------------------------------------------

SCORE_STEP = """
import argparse, json, pathlib, sys
parser = argparse.ArgumentParser()
parser.add_argument("--data-root"); parser.add_argument("--execution-id")
parser.add_argument("--execution-date"); parser.add_argument("--score", type=float)
args = parser.parse_args()
if args.score < 0:
    print("Score: the score must not be negative", file=sys.stderr)
    sys.exit(1)
run = pathlib.Path(args.data_root, "runs", args.execution_id)
run.mkdir(parents=True, exist_ok=True)
(run / "scored.txt").write_text(args.execution_date)
(run / "evaluation").mkdir()
(run / "evaluation" / "evaluation.json").write_text(json.dumps({"overall": {"mase": args.score}}))
"""

PUBLISH_STEP = """
import argparse, pathlib
parser = argparse.ArgumentParser()
parser.add_argument("--data-root"); parser.add_argument("--execution-id")
parser.add_argument("--execution-date")
args = parser.parse_args()
scored = pathlib.Path(args.data_root, "runs", args.execution_id, "scored.txt").read_text()
target = pathlib.Path(args.data_root, "published", f"execution_date={args.execution_date}")
target.mkdir(parents=True, exist_ok=True)
(target / "result.txt").write_text(f"{scored} {args.execution_id}")
"""


@pytest.fixture
def stand_in_repo(tmp_path: Path) -> Path:
    """A repository root whose pipeline_code.steps holds the stand-in steps."""
    steps = tmp_path / "repo" / "pipeline_code" / "steps"
    steps.mkdir(parents=True)
    (steps.parent / "__init__.py").write_text("")
    (steps / "__init__.py").write_text("")
    (steps / "score.py").write_text(textwrap.dedent(SCORE_STEP))
    (steps / "publish.py").write_text(textwrap.dedent(PUBLISH_STEP))
    return tmp_path / "repo"


def common_arguments() -> list[Any]:
    return [
        "--data-root",
        BUCKET,
        "--execution-id",
        {"Get": "Execution.PipelineExecutionId"},
        "--execution-date",
        {"Get": "Parameters.ExecutionDate"},
    ]


def training(name: str, module: str, container_arguments: list[Any]) -> dict[str, Any]:
    return {
        "Name": name,
        "Type": "Training",
        "Arguments": {
            "AlgorithmSpecification": {
                "TrainingImage": "image",
                "TrainingInputMode": "File",
                "ContainerEntrypoint": container_entrypoint(module),
                "ContainerArguments": common_arguments() + container_arguments,
            },
        },
    }


def gated_definition() -> dict[str, Any]:
    """Score -> Gate(mase <= MaxMase) -> Publish | Fail, listed out of order on purpose."""
    score = training(
        "Score",
        "score",
        ["--score", {"Std:Join": {"On": "", "Values": [{"Get": "Parameters.Score"}]}}],
    )
    gate = {
        "Name": "Gate",
        "Type": "Condition",
        # The file the gate reads names no step: the order is explicit, as in the real definition.
        "DependsOn": ["Score"],
        "Arguments": {
            "Conditions": [
                binary("LessThanOrEqualTo", json_get("overall.mase"), {"Get": "Parameters.MaxMase"})
            ],
            "IfSteps": [training("Publish", "publish", [])],
            "ElseSteps": [
                {
                    "Name": "GateFailed",
                    "Type": "Fail",
                    "Arguments": {
                        "ErrorMessage": {
                            "Std:Join": {
                                "On": "",
                                "Values": [
                                    "MASE ",
                                    json_get("overall.mase"),
                                    " above ",
                                    {"Get": "Parameters.MaxMase"},
                                ],
                            }
                        }
                    },
                }
            ],
        },
    }
    return {
        "Version": "2020-12-01",
        "Parameters": [
            {"Name": "ExecutionDate", "Type": "String", "DefaultValue": ""},
            {"Name": "MaxMase", "Type": "Float", "DefaultValue": 1.0},
            {"Name": "Score", "Type": "Float", "DefaultValue": 0.5},
        ],
        "Steps": [gate, score],
    }


def run_cli(
    definition: dict[str, Any], lake: Path, repo: Path, *extra: str, monkeypatch: pytest.MonkeyPatch
) -> int:
    path = lake.parent / "definition.json"
    path.write_text(json.dumps(definition))
    lake.mkdir(parents=True, exist_ok=True)
    monkeypatch.setattr("local_run.runner.REPO_ROOT", repo)
    return cli.main(
        [
            "run",
            "--lake",
            str(lake),
            "--date",
            "2025-03-01",
            "--definition",
            str(path),
            "--no-report",
            *extra,
        ]
    )


def test_a_passing_gate_runs_the_branch_and_publishes(tmp_path: Path, stand_in_repo: Path) -> None:
    lake = tmp_path / "lake"
    request = RunRequest(
        definition=gated_definition(),
        lake=lake,
        execution_id="exec-ok",
        start_time="2025-03-02T00:00:00.000Z",
        parameter_values={"ExecutionDate": "2025-03-01"},
        repo_root=stand_in_repo,
    )
    outcome = execute(request)
    assert outcome.succeeded, outcome.failure
    assert [(s.name, s.status) for s in outcome.steps] == [
        ("Score", "Succeeded"),
        ("Gate", "Succeeded"),
        ("Publish", "Succeeded"),
    ]
    # The step wrote its evaluation to the lake, where the gate's JsonGet read it.
    evaluation = lake / "runs" / "exec-ok" / "evaluation" / "evaluation.json"
    assert json.loads(evaluation.read_text()) == {"overall": {"mase": 0.5}}
    published = lake / "published" / "execution_date=2025-03-01" / "result.txt"
    assert published.read_text() == "2025-03-01 exec-ok"
    assert (lake / "runs" / "exec-ok" / "logs" / "Score.log").exists()


def test_a_failing_gate_exits_non_zero_with_the_fail_message(
    tmp_path: Path,
    stand_in_repo: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    lake = tmp_path / "lake"
    code = run_cli(
        gated_definition(),
        lake,
        stand_in_repo,
        "--param",
        "MaxMase=0.25",
        monkeypatch=monkeypatch,
    )
    output = capsys.readouterr().out
    assert code == cli.EXIT_GATE_FAILED
    assert "MASE 0.5 above 0.25" in output
    assert "Failed at GateFailed; nothing was published" in output
    assert not (lake / "published").exists()


def test_a_failing_step_exits_non_zero_with_its_stderr(
    tmp_path: Path,
    stand_in_repo: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    lake = tmp_path / "lake"
    code = run_cli(
        gated_definition(), lake, stand_in_repo, "--param", "Score=-1", monkeypatch=monkeypatch
    )
    output = capsys.readouterr().out
    assert code == cli.EXIT_STEP_FAILED
    assert "Score: the score must not be negative" in output
    assert "Failed at Score" in output
    assert not (lake / "published").exists()


def test_an_unsupported_step_type_is_a_clear_error(
    tmp_path: Path,
    stand_in_repo: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    definition = gated_definition()
    definition["Steps"].append({"Name": "Notify", "Type": "Callback", "Arguments": {}})
    code = run_cli(definition, tmp_path / "lake", stand_in_repo, monkeypatch=monkeypatch)
    assert code == cli.EXIT_BAD_INPUT
    assert "Steps[Notify]: step type 'Callback' is not supported" in capsys.readouterr().err


def test_dependency_cycles_and_unknown_dependencies_are_named(
    tmp_path: Path, stand_in_repo: Path
) -> None:
    definition = gated_definition()
    score = next(step for step in definition["Steps"] if step["Name"] == "Score")
    score["DependsOn"] = ["Missing"]
    request = RunRequest(
        definition=definition,
        lake=tmp_path / "lake",
        execution_id="e",
        start_time="",
        parameter_values={},
        repo_root=stand_in_repo,
    )
    with pytest.raises(DefinitionError, match=r"Steps\[Score\]: depends on steps .*'Missing'"):
        execute(request)
    score["DependsOn"] = ["Gate"]
    with pytest.raises(DefinitionError, match="circular dependencies"):
        execute(request)


def test_a_definition_without_a_data_root_is_refused(tmp_path: Path) -> None:
    definition = {"Parameters": [], "Steps": [training("Score", "score", [])]}
    definition["Steps"][0]["Arguments"]["AlgorithmSpecification"]["ContainerArguments"] = []
    request = RunRequest(
        definition=definition, lake=tmp_path, execution_id="e", start_time="", parameter_values={}
    )
    with pytest.raises(DefinitionError, match="no job or Lambda step passes --data-root"):
        execute(request)


def test_a_job_with_inputs_is_refused(tmp_path: Path, stand_in_repo: Path) -> None:
    definition = gated_definition()
    score = next(step for step in definition["Steps"] if step["Name"] == "Score")
    score["Arguments"]["InputDataConfig"] = [{"ChannelName": "train"}]
    request = RunRequest(
        definition=definition,
        lake=tmp_path / "lake",
        execution_id="e",
        start_time="",
        parameter_values={"ExecutionDate": "2025-03-01"},
        repo_root=stand_in_repo,
    )
    with pytest.raises(DefinitionError, match=r"Steps\[Score\]\.Arguments\.InputDataConfig"):
        execute(request)


def test_bad_date_is_refused(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as raised:
        cli.main(["run", "--lake", "/tmp/none", "--date", "2025-02-30"])
    assert raised.value.code == 2
    assert "--date '2025-02-30' is not a YYYY-MM-DD date" in capsys.readouterr().err


@pytest.mark.parametrize("cores", [1, 2, 3, 8, 36])
@pytest.mark.parametrize("count", [1, 2, 3, 16])
def test_each_local_instance_gets_cores_of_its_own_while_there_are_enough(
    cores: int, count: int
) -> None:
    available = list(range(100, 100 + cores))
    shares = [instance_cores(rank, count, available) for rank in range(count)]
    assert all(share and share <= set(available) for share in shares)
    if count <= cores:
        assert set().union(*shares) == set(available)
        assert sum(len(share) for share in shares) == cores  # no core in two instances
        assert max(map(len, shares)) - min(map(len, shares)) <= 1
    else:
        assert all(len(share) == 1 for share in shares)


def test_a_local_instance_runs_on_its_own_cores(tmp_path: Path) -> None:
    """What `--workers 0` sees inside each instance: its own cores, not the machine's."""
    command = [sys.executable, "-c", "import os; print(sorted(os.sched_getaffinity(0)))"]
    available = sorted(os.sched_getaffinity(0))
    count = min(2, len(available))
    results = run_instances(command, count, dict(os.environ), tmp_path)
    seen = [json.loads(result.stdout) for result in results]
    assert seen == [sorted(instance_cores(rank, count, available)) for rank in range(count)]


def test_local_instances_run_unpinned_where_the_os_cannot_pin(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """macOS has no sched_setaffinity: the instances still run, sharing the cores."""
    monkeypatch.delattr(os, "sched_setaffinity")
    command = [sys.executable, "-c", "print('ran')"]
    results = run_instances(command, 2, dict(os.environ), tmp_path)
    assert [(r.returncode, r.stdout.strip()) for r in results] == [(0, "ran"), (0, "ran")]
