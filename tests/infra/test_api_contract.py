"""Every request the deployed stacks make of AWS, checked against botocore's service models: the
pipeline's job steps (CreateTrainingJob; another job type by its own create call), with compute
lambda its Lambda steps (Invoke) and the step functions (CreateFunction), the pipeline
(CreatePipeline) and the schedule's StartPipelineExecution, with Scheduler's context attributes
filled as the service fills them. A planted violation of each kind must be caught."""

from __future__ import annotations

import copy
import json
import re
from typing import Any

import aws_cdk as cdk
import pytest
from aws_cdk.assertions import Template

from tests.infra.api_contract import (
    EXPRESSION_MAX_CHARS,
    SCHEDULER_CONTEXT,
    as_scheduler_sends,
    definition_violations,
    input_shape,
    job_steps,
    lambda_payload_bytes,
    schedule_target_violations,
    violations,
)
from tests.infra.cfn import (
    deployed_definition_body,
    deployed_pipeline_properties,
    resolve,
    resource_types,
)
from tests.infra.conftest import SynthesizedApp, environment, synth_stacks


@pytest.fixture(scope="module", params=["dev", "prod"])
def pipeline_template(request: pytest.FixtureRequest) -> Template:
    stacks: dict[str, cdk.Stack] = synth_stacks(environment(request.param))
    return Template.from_stack(stacks["pipeline"])


@pytest.fixture(scope="module")
def prod_definition() -> dict[str, Any]:
    template = Template.from_stack(synth_stacks(environment("prod"))["pipeline"])
    return json.loads(deployed_definition_body(template))


def _schedule_target(template: Template) -> dict[str, Any]:
    (schedule,) = template.find_resources("AWS::Scheduler::Schedule").values()
    return schedule["Properties"]["Target"]


def test_every_job_step_is_within_its_create_calls_limits(pipeline_template: Template) -> None:
    definition = json.loads(deployed_definition_body(pipeline_template))
    assert len(list(job_steps(definition["Steps"]))) == 6
    assert definition_violations(definition) == []


def test_the_create_pipeline_request_is_within_the_limits(pipeline_template: Template) -> None:
    properties = deployed_pipeline_properties(pipeline_template)
    request = {
        "PipelineName": properties["PipelineName"],
        "PipelineDisplayName": properties["PipelineDisplayName"],
        "PipelineDescription": properties["PipelineDescription"],
        "PipelineDefinition": properties["PipelineDefinition"]["PipelineDefinitionBody"],
        "RoleArn": properties["RoleArn"],
        "ClientRequestToken": "cloudformation-0123456789abcdef0123",
    }
    assert violations(input_shape("sagemaker", "CreatePipeline"), request, "CreatePipeline") == []


def test_the_scheduled_start_is_within_the_api_limits(pipeline_template: Template) -> None:
    target = _schedule_target(pipeline_template)
    sent = json.loads(as_scheduler_sends(target["Input"]))
    assert schedule_target_violations(resolve(target["Arn"], {}), sent) == []


def test_retries_of_one_occurrence_share_a_token_and_days_do_not() -> None:
    template = Template.from_stack(synth_stacks(environment("prod"))["pipeline"])
    target_input = _schedule_target(template)["Input"]

    def token(**changes: str) -> str:
        context = {**SCHEDULER_CONTEXT, **changes}
        return json.loads(as_scheduler_sends(target_input, context))["ClientRequestToken"]

    first = token()
    retried = token(**{"<aws.scheduler.execution-id>": "k81jd0sl3mzp2q7w"})
    retried_again = token(**{"<aws.scheduler.attempt-number>": "3"})
    next_day = token(**{"<aws.scheduler.scheduled-time>": "2026-11-29T18:00:00Z"})
    assert first == retried == retried_again
    assert next_day != first
    assert "forecast-prod-daily" in first


# -- the checks catch what the service would reject -----------------------------------------------


def _first_job(definition: dict[str, Any]) -> dict[str, Any]:
    step, _ = next(job_steps(definition["Steps"]))
    return step["Arguments"]


@pytest.mark.parametrize(
    ("plant", "expected"),
    [
        (
            lambda a: a["AlgorithmSpecification"]["ContainerEntrypoint"].append("x" * 257),
            r"ContainerEntrypoint\[3\]: 257 characters, at most 256",
        ),
        (
            lambda a: a["AlgorithmSpecification"]["ContainerArguments"].extend(["--x"] * 100),
            r"ContainerArguments: \d+ items, at most 100",
        ),
        (
            lambda a: a["ResourceConfig"].update(InstanceType="ml.x9.huge"),
            r"InstanceType: 'ml.x9.huge' is not one of",
        ),
        (
            lambda a: a["ResourceConfig"].update(VolumeSizeInGB=-1),
            r"VolumeSizeInGB: -1 is outside 0..",
        ),
        (
            lambda a: a["ResourceConfig"].update(KeepAlivePeriodInSeconds=86400),
            r"KeepAlivePeriodInSeconds: 86400 is outside 0..",
        ),
        (lambda a: a.update(Colour="blue"), r"Arguments.Colour: unknown member"),
        (lambda a: a.pop("RoleArn"), r"Arguments.RoleArn: required member missing"),
        (lambda a: a.update(RoleArn="not-an-arn"), r"RoleArn: 'not-an-arn' does not match"),
        (
            lambda a: a["Environment"].update({"K": "v" * 600}),
            r"Environment.K: 600 characters, at most 512",
        ),
    ],
)
def test_a_planted_violation_is_caught(
    prod_definition: dict[str, Any], plant: Any, expected: str
) -> None:
    broken = copy.deepcopy(prod_definition)
    plant(_first_job(broken))
    found = definition_violations(broken)
    assert any(re.search(expected, problem) for problem in found), found


def test_pipeline_expressions_are_left_to_the_service(prod_definition: dict[str, Any]) -> None:
    arguments = _first_job(copy.deepcopy(prod_definition))
    arguments["AlgorithmSpecification"]["ContainerArguments"][1] = {
        "Get": "Parameters.ExecutionDate"
    }
    assert violations(input_shape("sagemaker", "CreateTrainingJob"), arguments, "A") == [
        "A.TrainingJobName: required member missing"
    ]


def test_an_unknown_step_type_is_reported(prod_definition: dict[str, Any]) -> None:
    broken = copy.deepcopy(prod_definition)
    broken["Steps"][0]["Type"] = "Teleport"
    assert any("no API model known" in p for p in definition_violations(broken))


def test_the_schedulers_execution_id_is_too_short_for_a_token() -> None:
    request = {
        "PipelineName": "forecast-prod-daily",
        "ClientRequestToken": as_scheduler_sends("<aws.scheduler.execution-id>"),
    }
    found = schedule_target_violations(
        "arn:aws:scheduler:::aws-sdk:sagemaker:startPipelineExecution", request
    )
    assert found == ["Target.Input.ClientRequestToken: 16 characters, at least 32 allowed"]


def test_a_target_naming_no_real_action_is_reported() -> None:
    found = schedule_target_violations("arn:aws:scheduler:::aws-sdk:sagemaker:startPipeline", {})
    assert found == ["Target.Arn: sagemaker has no action 'startPipeline'"]


# -- compute lambda: the Lambda steps' invocations and the functions' creation --------------------


@pytest.fixture(scope="module")
def lambda_template(prod_lambda: SynthesizedApp) -> Template:
    return Template.from_stack(prod_lambda.stacks["pipeline"])


@pytest.fixture(scope="module")
def lambda_definition(lambda_template: Template) -> dict[str, Any]:
    return json.loads(deployed_definition_body(lambda_template))


def test_every_lambda_step_is_within_invokes_limits(lambda_definition: dict[str, Any]) -> None:
    steps = [step for step, _ in job_steps(lambda_definition["Steps"])]
    assert [step["Type"] for step in steps] == ["Lambda"] * 6
    assert definition_violations(lambda_definition) == []


def test_the_lambda_mode_create_pipeline_request_is_within_the_limits(
    lambda_template: Template,
) -> None:
    test_the_create_pipeline_request_is_within_the_limits(lambda_template)


def test_every_function_is_within_create_functions_limits(lambda_template: Template) -> None:
    """The functions' properties as CloudFormation passes them to CreateFunction (Tags are a
    list in the template and a map in the API, so they are left out)."""
    shape = input_shape("lambda", "CreateFunction")
    types = resource_types(lambda_template)
    functions = lambda_template.find_resources("AWS::Lambda::Function")
    assert len(functions) == 6
    for logical_id, function in functions.items():
        properties = resolve(function["Properties"], {}, types=types)
        request = {k: v for k, v in properties.items() if k in shape.members and k != "Tags"}
        assert set(properties) - set(request) == {"Tags"}
        assert violations(shape, request, logical_id) == []


def _first_lambda_step(definition: dict[str, Any]) -> dict[str, Any]:
    step, _ = next(job_steps(definition["Steps"]))
    return step  # type: ignore[return-value]


_FUNCTION_ARN = "arn:aws:lambda:ap-northeast-1:123456789012:function:"


@pytest.mark.parametrize(
    ("plant", "expected"),
    [
        (
            lambda s: s.update(FunctionArn=_FUNCTION_ARN + "f" * 65),
            r"FunctionArn: the name 'f+' has 65 characters, at most 64",
        ),
        (
            lambda s: s.update(FunctionArn=_FUNCTION_ARN + "no spaces"),
            r"Invoke.FunctionName: .* does not match the pattern",
        ),
        (
            lambda s: s.update(FunctionArn=_FUNCTION_ARN + "f" * 250),
            r"Invoke.FunctionName: \d+ characters, at most 256",
        ),
        (
            lambda s: s["Arguments"].update(arg_999="x" * 1_000_001),
            r"Arguments: up to \d+ bytes, over the Event payload limit of 1000000",
        ),
        (
            lambda s: s["Arguments"].update(arg_999="x" * 6_000_001),
            r"over the RequestResponse payload limit of 6000000",
        ),
        (
            lambda s: s["Arguments"].update(arg_000={"nested": "value"}),
            r"Arguments.arg_000: \{'nested': 'value'\} is not a primitive value",
        ),
        (lambda s: s.pop("FunctionArn"), r"FunctionArn: expected the function's ARN"),
    ],
)
def test_a_planted_lambda_step_violation_is_caught(
    lambda_definition: dict[str, Any], plant: Any, expected: str
) -> None:
    broken = copy.deepcopy(lambda_definition)
    plant(_first_lambda_step(broken))
    found = definition_violations(broken)
    assert any(re.search(expected, problem) for problem in found), found


def test_a_pipeline_expression_counts_at_a_parameters_longest_value() -> None:
    """Expressions are sized at the longest value they can take, not at their JSON."""
    plain = lambda_payload_bytes({"arg_000": "x"})
    expression = lambda_payload_bytes({"arg_000": {"Get": "Parameters.ExecutionDate"}})
    assert expression - plain == EXPRESSION_MAX_CHARS - 1
