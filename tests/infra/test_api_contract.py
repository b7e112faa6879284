"""Every request the deployed stacks make of AWS, checked against botocore's service models: the
pipeline's job steps (CreateTrainingJob; another job type by its own create call), the pipeline
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
    SCHEDULER_CONTEXT,
    as_scheduler_sends,
    definition_violations,
    input_shape,
    job_steps,
    schedule_target_violations,
    violations,
)
from tests.infra.cfn import deployed_definition_body, deployed_pipeline_properties, resolve
from tests.infra.conftest import environment, synth_stacks


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
