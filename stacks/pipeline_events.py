"""What the stacks know of the SageMaker pipeline's EventBridge events: their detail-types, the
pipeline's ARN as the events carry it, and the pattern matching one execution outcome."""

from __future__ import annotations

import aws_cdk as cdk
from aws_cdk import aws_events as events

EXECUTION_STATUS_CHANGE = "SageMaker Model Building Pipeline Execution Status Change"
STEP_STATUS_CHANGE = "SageMaker Model Building Pipeline Execution Step Status Change"


def pipeline_arn(stack: cdk.Stack, pipeline_name: str) -> str:
    """The pipeline's ARN in `stack`'s account and region. SageMaker writes the name in lower
    case in the ARNs of its events; the project's pipeline names are lower case already, so this
    is also the ARN the pipeline is created with."""
    return stack.format_arn(
        service="sagemaker", resource="pipeline", resource_name=pipeline_name.lower()
    )


def execution_status_pattern(
    stack: cdk.Stack, pipeline_name: str, statuses: list[str]
) -> events.EventPattern:
    """This pipeline's executions ending in one of `statuses`."""
    return events.EventPattern(
        source=["aws.sagemaker"],
        detail_type=[EXECUTION_STATUS_CHANGE],
        detail={
            "pipelineArn": [pipeline_arn(stack, pipeline_name)],
            "currentPipelineExecutionStatus": statuses,
        },
    )


def step_status_pattern(
    stack: cdk.Stack, pipeline_name: str, statuses: list[str]
) -> events.EventPattern:
    """This pipeline's steps reaching one of `statuses`."""
    return events.EventPattern(
        source=["aws.sagemaker"],
        detail_type=[STEP_STATUS_CHANGE],
        detail={
            "pipelineArn": [pipeline_arn(stack, pipeline_name)],
            "currentStepStatus": statuses,
        },
    )
