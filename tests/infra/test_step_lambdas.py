"""`pipeline.compute: lambda`: the six step functions from the job image, their roles, the
definition's Lambda steps invoking them, and the pipeline role allowed to invoke exactly those.
prod with compute lambda is synthesized once (`prod_lambda`, cdk-nag enabled) and its written
templates go through cfn-lint."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from aws_cdk.assertions import Template

from pipeline_code import lambda_handler
from stacks import pipeline_definition as definition
from stacks.config import ConfigError
from stacks.python_function import LOG_RETENTION
from stacks.step_lambdas import EPHEMERAL_STORAGE_MIB, HANDLER
from tests.infra.api_contract import job_steps
from tests.infra.cfn import deployed_definition_body, resolve, resource_types
from tests.infra.conftest import REPO, SynthesizedApp, environment

LAMBDA_RESERVED_KEYS = frozenset(
    {
        "_HANDLER",
        "_X_AMZN_TRACE_ID",
        "AWS_DEFAULT_REGION",
        "AWS_REGION",
        "AWS_EXECUTION_ENV",
        "AWS_LAMBDA_FUNCTION_NAME",
        "AWS_LAMBDA_FUNCTION_MEMORY_SIZE",
        "AWS_LAMBDA_FUNCTION_VERSION",
        "AWS_LAMBDA_INITIALIZATION_TYPE",
        "AWS_LAMBDA_LOG_GROUP_NAME",
        "AWS_LAMBDA_LOG_STREAM_NAME",
        "AWS_ACCESS_KEY",
        "AWS_ACCESS_KEY_ID",
        "AWS_SECRET_ACCESS_KEY",
        "AWS_SESSION_TOKEN",
        "AWS_LAMBDA_RUNTIME_API",
        "LAMBDA_TASK_ROOT",
        "LAMBDA_RUNTIME_DIR",
    }
)
"""Keys Lambda sets itself and refuses in a function's configuration
(https://docs.aws.amazon.com/lambda/latest/dg/configuration-envvars.html#configuration-envvars-runtime)."""

FORBIDDEN_FOR_FUNCTIONS = ("sagemaker:", "iam:PassRole", "ecr:")


@pytest.fixture(scope="module")
def template(prod_lambda: SynthesizedApp) -> Template:
    return Template.from_stack(prod_lambda.stacks["pipeline"])


@pytest.fixture(scope="module")
def functions(template: Template) -> dict[str, dict[str, Any]]:
    """The step functions by logical id."""
    return template.find_resources("AWS::Lambda::Function")


def _resolved(template: Template, node: Any) -> Any:
    return resolve(node, {}, types=resource_types(template))


def _function_arn(template: Template, logical_id: str) -> str:
    return _resolved(template, {"Fn::GetAtt": [logical_id, "Arn"]})


def _policy_of(template: Template, role_logical_id: str) -> list[dict[str, Any]]:
    policies = template.find_resources("AWS::IAM::Policy")
    (policy,) = [
        p for p in policies.values() if p["Properties"]["Roles"] == [{"Ref": role_logical_id}]
    ]
    return policy["Properties"]["PolicyDocument"]["Statement"]


def _actions(statement: dict[str, Any]) -> list[str]:
    action = statement["Action"]
    return action if isinstance(action, list) else [action]


def _resources(statement: dict[str, Any]) -> list[Any]:
    resource = statement["Resource"]
    return resource if isinstance(resource, list) else [resource]


def _lambda_steps(template: Template) -> list[dict[str, Any]]:
    body = json.loads(deployed_definition_body(template))
    return [dict(step) for step, _ in job_steps(body["Steps"])]


# -- the functions -------------------------------------------------------------------------------


def test_six_functions_one_per_step_named_for_the_environment(
    functions: dict[str, dict[str, Any]],
) -> None:
    names = sorted(f["Properties"]["FunctionName"] for f in functions.values())
    assert names == sorted(
        f"forecast-prod-step-{module}" for module in definition.STEP_MODULES.values()
    )
    assert all(len(name) <= 64 for name in names)


def test_functions_run_the_job_image_with_the_handler(
    prod_lambda: SynthesizedApp, template: Template, functions: dict[str, dict[str, Any]]
) -> None:
    """The very image the training jobs would run (the stack's one Docker image asset), on
    x86_64 as it is built, entered through Lambda's runtime interface client."""
    pipeline = prod_lambda.stacks["pipeline"]
    image_uri = _resolved(template, pipeline.resolve(pipeline.image.image_uri))  # type: ignore[attr-defined]
    manifest = json.loads((prod_lambda.assembly / "Forecast-prod-Pipeline.assets.json").read_text())
    (image,) = manifest["dockerImages"].values()
    assert image["source"]["platform"] == "linux/amd64"
    for function in functions.values():
        properties = function["Properties"]
        assert properties["PackageType"] == "Image"
        assert _resolved(template, properties["Code"]["ImageUri"]) == image_uri
        assert properties["Architectures"] == ["x86_64"]
        assert properties["ImageConfig"] == {
            "EntryPoint": ["/usr/local/bin/python3", "-m", "awslambdaric"],
            "Command": [HANDLER],
        }
        assert "Runtime" not in properties and "Handler" not in properties


def test_the_image_has_what_the_entry_point_names() -> None:
    """The official Python image keeps its interpreter at /usr/local/bin (the entry point is an
    absolute path, as Lambda asks), and the job image's pins include the runtime interface
    client."""
    job_image = REPO / "pipeline_code"
    (base,) = [
        line.split()[1]
        for line in (job_image / "Dockerfile").read_text().splitlines()
        if line.startswith("FROM ")
    ]
    assert base.startswith("public.ecr.aws/docker/library/python:"), base
    pins = (job_image / "requirements.txt").read_text().splitlines()
    assert any(line.startswith("awslambdaric==") for line in pins)


def test_the_handler_named_is_the_images_handler() -> None:
    from pipeline_code import lambda_handler

    module, _, function = HANDLER.rpartition(".")
    assert module == lambda_handler.__name__ and callable(getattr(lambda_handler, function))


def test_memory_time_and_storage_are_the_configured_ones(
    prod_lambda: SynthesizedApp, functions: dict[str, dict[str, Any]]
) -> None:
    pipeline = prod_lambda.config.pipeline
    assert (pipeline.lambda_memory_mb, pipeline.lambda_timeout_seconds) == (3008, 540)
    for function in functions.values():
        properties = function["Properties"]
        assert properties["MemorySize"] == 3008
        assert properties["Timeout"] == 540
        assert properties["EphemeralStorage"] == {"Size": EPHEMERAL_STORAGE_MIB}


def test_environment_sets_no_reserved_key(functions: dict[str, dict[str, Any]]) -> None:
    for function in functions.values():
        variables = function["Properties"]["Environment"]["Variables"]
        assert variables == {"PYTHONUNBUFFERED": "1", "HOME": "/tmp"}
        assert not set(variables) & LAMBDA_RESERVED_KEYS


def test_each_function_logs_to_its_own_group_kept_as_the_others(
    template: Template, functions: dict[str, dict[str, Any]]
) -> None:
    groups = template.find_resources("AWS::Logs::LogGroup")
    used = [f["Properties"]["LoggingConfig"]["LogGroup"]["Ref"] for f in functions.values()]
    assert len(set(used)) == 6 and set(used) <= set(groups)
    days = {"THREE_MONTHS": 90}[LOG_RETENTION.name]
    assert all(groups[g]["Properties"]["RetentionInDays"] == days for g in used)
    for function in functions.values():
        group = groups[function["Properties"]["LoggingConfig"]["LogGroup"]["Ref"]]
        name = function["Properties"]["FunctionName"]
        assert group["Properties"]["LogGroupName"] == f"/aws/lambda/{name}"


# -- the roles -----------------------------------------------------------------------------------


def test_each_function_has_its_own_lambda_role_without_sagemaker_passrole_or_ecr(
    template: Template, functions: dict[str, dict[str, Any]]
) -> None:
    roles = template.find_resources("AWS::IAM::Role")
    seen = set()
    for function in functions.values():
        properties = function["Properties"]
        role_id = properties["Role"]["Fn::GetAtt"][0]
        seen.add(role_id)
        trust = roles[role_id]["Properties"]["AssumeRolePolicyDocument"]["Statement"]
        assert [s["Principal"] for s in trust] == [{"Service": "lambda.amazonaws.com"}]
        assert "ManagedPolicyArns" not in roles[role_id]["Properties"]
        statements = _policy_of(template, role_id)
        actions = [a for s in statements for a in _actions(s)]
        assert not [a for a in actions if a.startswith(FORBIDDEN_FOR_FUNCTIONS)], actions
        assert all("*" not in a for a in actions)
        (logs,) = [s for s in statements if s["Sid"] == "WriteOwnLogs"]
        own_group = properties["LoggingConfig"]["LogGroup"]["Ref"]
        assert logs["Resource"] == {"Fn::GetAtt": [own_group, "Arn"]}
        (metrics,) = [s for s in statements if "cloudwatch:PutMetricData" in _actions(s)]
        assert metrics["Condition"] == {
            "StringEquals": {"cloudwatch:namespace": ["Forecast/forecast-prod-daily"]}
        }
    assert len(seen) == 6


def test_the_pipeline_role_may_invoke_exactly_the_six_functions(
    template: Template, functions: dict[str, dict[str, Any]]
) -> None:
    statements = _policy_of(template, _pipeline_role_id(template))
    invoke = [s for s in statements if "lambda:InvokeFunction" in _actions(s)]
    assert len(invoke) == 1 and _actions(invoke[0]) == ["lambda:InvokeFunction"]
    allowed = {_resolved(template, r) for r in _resources(invoke[0])}
    assert allowed == {_function_arn(template, logical_id) for logical_id in functions}
    assert all("*" not in arn for arn in allowed)


def test_the_pipeline_role_keeps_only_the_gates_read_and_no_job_permission(
    template: Template,
) -> None:
    """No training jobs, no role to pass, no image to pull: SageMaker invokes the functions
    and reads evaluation.json for the gate's JsonGet (docs/iam.md), nothing else."""
    statements = {s["Sid"]: s for s in _policy_of(template, _pipeline_role_id(template))}
    assert set(statements) == {"InvokeStepLambdas", "ReadGateEvaluation", "DecryptGateEvaluation"}
    read = statements["ReadGateEvaluation"]
    assert _actions(read) == ["s3:GetObject"]
    assert _resolved(template, read["Resource"]) == (
        "arn:aws:s3:::forecast-prod-data-123456789012-ap-northeast-1/runs/*/evaluation/"
        "evaluation.json"
    )
    assert _actions(statements["DecryptGateEvaluation"]) == ["kms:Decrypt"]
    actions = [a for s in statements.values() for a in _actions(s)]
    assert not [a for a in actions if a.startswith((*FORBIDDEN_FOR_FUNCTIONS, "logs:"))]


def _pipeline_role_id(template: Template) -> str:
    (pipeline,) = template.find_resources("AWS::SageMaker::Pipeline").values()
    return pipeline["Properties"]["RoleArn"]["Fn::GetAtt"][0]


# -- the definition ------------------------------------------------------------------------------


def test_the_definition_has_six_lambda_steps_invoking_their_own_function(
    template: Template, functions: dict[str, dict[str, Any]]
) -> None:
    steps = _lambda_steps(template)
    assert [s["Name"] for s in steps] == list(definition.STEP_MODULES)
    assert {s["Type"] for s in steps} == {"Lambda"}
    by_arn = {
        _function_arn(template, logical_id): f["Properties"]["FunctionName"]
        for logical_id, f in functions.items()
    }
    for step in steps:
        module = definition.STEP_MODULES[step["Name"]]
        assert by_arn[step["FunctionArn"]] == f"forecast-prod-step-{module}"
        assert step["Arguments"][lambda_handler.STEP_KEY] == module
    text = json.dumps(steps)
    assert [p for p in definition.PLACEHOLDERS.values() if p in text] == []


def test_the_pipeline_waits_for_the_roles_policy(template: Template) -> None:
    (pipeline,) = template.find_resources("AWS::SageMaker::Pipeline").values()
    policies = template.find_resources("AWS::IAM::Policy")
    role_policy = [
        k
        for k, p in policies.items()
        if p["Properties"]["Roles"] == [{"Ref": _pipeline_role_id(template)}]
    ]
    assert set(role_policy) <= set(pipeline["DependsOn"])


# -- what synth refuses, and the checks of every template ---------------------------------------


@pytest.mark.parametrize(
    ("overrides", "expected"),
    [
        (
            {"instance_count": 2},
            "environments.prod.pipeline.instance_count: expected 1 with compute lambda (one"
            " function runs each step), or compute training, got 2",
        ),
        (
            {"lambda_timeout_seconds": 700},
            "environments.prod.pipeline.lambda_timeout_seconds: expected at most 600 with compute"
            " lambda (the longest a SageMaker Lambda step waits), or compute training, got 700",
        ),
    ],
)
def test_synth_refuses_what_a_lambda_step_cannot_run(
    overrides: dict[str, Any], expected: str
) -> None:
    """Refused while the configuration is read (app.py prints the one line), before any stack;
    the same settings under compute training are fine."""
    with pytest.raises(ConfigError) as refused:
        environment("prod", pipeline={"compute": "lambda", **overrides})
    assert str(refused.value) == expected
    environment("prod", pipeline={"compute": "training", **overrides})


def test_the_definition_refuses_them_too() -> None:
    """A second guard for what builds settings without the configuration."""
    with pytest.raises(ValueError, match=r"instance_count must be 1"):
        definition.DefinitionSettings(pipeline_name="p", compute="lambda", instance_count=2)


def test_cdk_nag_reports_no_finding(prod_lambda: SynthesizedApp) -> None:
    """The synthesis itself fails on an unacknowledged finding (test_nag_is_enforced); the
    report it wrote lists none."""
    report = json.loads((prod_lambda.assembly / "validation-report.json").read_text())
    found = [v for plugin in report.get("pluginReports", []) for v in plugin.get("violations", [])]
    assert found == []


@pytest.mark.slow
def test_cfn_lint_finds_no_errors(prod_lambda: SynthesizedApp) -> None:
    templates = sorted(map(str, Path(prod_lambda.assembly).glob("*.template.json")))
    assert len(templates) == 3
    result = subprocess.run(
        [str(Path(sys.executable).parent / "cfn-lint"), *templates],
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert result.returncode == 0, result.stdout + result.stderr
