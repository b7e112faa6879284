"""Render the Slack message the handler builds for a failed execution, as the README shows it.

    python lambda/slack_notifier/render_example.py docs/slack_message_example.json

(without an argument it prints the JSON.)

The event is the AWS documentation's sample execution status change event with its status set
to Failed; SageMaker's answers (the ExecutionDate parameter, the failed step) are canned below,
as a scheduled run whose PreProc step failed would return them. Nothing is sent anywhere.
tests/unit/test_slack_notifier.py checks that the committed file matches this output.
"""

from __future__ import annotations

import datetime as dt
import json
import sys
from pathlib import Path
from typing import Any

import botocore.session
from botocore.paginate import Paginator

sys.path.insert(0, str(Path(__file__).resolve().parent))

from handler import Dependencies, Settings, payload_for
from pipeline_events import parse_invocation

_LIST_STEPS = "ListPipelineExecutionSteps"
EXECUTION_ARN = (
    "arn:aws:sagemaker:us-east-1:123456789012:pipeline/myPipeline-123/execution/p4jn9xou8a8s"
)

# The AWS sample "SageMaker Model Building Pipeline Execution Status Change" event, with
# currentPipelineExecutionStatus Succeeded replaced by Failed.
FAILED_EXECUTION_EVENT: dict[str, Any] = {
    "version": "0",
    "id": "315c1398-40ff-a850-213b-158f73kd93ir",
    "detail-type": "SageMaker Model Building Pipeline Execution Status Change",
    "source": "aws.sagemaker",
    "account": "123456789012",
    "time": "2021-03-15T16:10:11Z",
    "region": "us-east-1",
    "resources": [
        "arn:aws:sagemaker:us-east-1:123456789012:pipeline/myPipeline-123",
        EXECUTION_ARN,
    ],
    "detail": {
        "pipelineExecutionDisplayName": "SomeDisplayName",
        "currentPipelineExecutionStatus": "Failed",
        "previousPipelineExecutionStatus": "Executing",
        "executionStartTime": "2021-03-15T16:03:13Z",
        "executionEndTime": "2021-03-15T16:10:10Z",
        "pipelineExecutionDescription": "SomeDescription",
        "pipelineArn": "arn:aws:sagemaker:us-east-1:123456789012:pipeline/myPipeline-123",
        "pipelineExecutionArn": EXECUTION_ARN,
    },
}

EXAMPLE_ENV = {
    "SLACK_SECRET_ARN": "arn:aws:secretsmanager:us-east-1:123456789012:secret:slack-webhook-prod",
    "ENVIRONMENT_NAME": "prod",
    "PIPELINE_NAME": "myPipeline-123",
    "AWS_REGION": "us-east-1",
    "SCHEDULE_TIMEZONE": "Asia/Tokyo",
    "STUDIO_DOMAIN_ID": "d-example12345",
}


class CannedSageMaker:
    """What SageMaker answers for a scheduled run (03:00 Tokyo) whose PreProc step failed."""

    def list_pipeline_parameters_for_execution(self, **_: Any) -> dict[str, Any]:
        return {"PipelineParameters": [{"Name": "ExecutionDate", "Value": "2021-03-15T18:00:00Z"}]}

    def get_paginator(self, operation_name: str) -> Paginator:
        """botocore's own paginator, paging through the canned answer below."""
        session = botocore.session.get_session()
        config = session.get_paginator_model("sagemaker").get_paginator(_LIST_STEPS)
        model = session.get_service_model("sagemaker").operation_model(_LIST_STEPS)
        return Paginator(self.list_pipeline_execution_steps, config, model)

    def list_pipeline_execution_steps(self, **_: Any) -> dict[str, Any]:
        start = dt.datetime(2021, 3, 15, 16, 3, 14, tzinfo=dt.UTC)
        return {
            "PipelineExecutionSteps": [
                {
                    "StepName": "Extract",
                    "StepStatus": "Succeeded",
                    "StartTime": start,
                    "Metadata": {
                        "TrainingJob": {
                            "Arn": "arn:aws:sagemaker:us-east-1:123456789012:training-job/"
                            "pipelines-p4jn9xou8a8s-extract-a1b2c3d4e5"
                        }
                    },
                },
                {
                    "StepName": "PreProc",
                    "StepStatus": "Failed",
                    "StartTime": start + dt.timedelta(minutes=4),
                    "FailureReason": (
                        "AlgorithmError: StepError: PreProc: no rows for 2021-03-15 in "
                        "extract/data.parquet (the source table has no partition dt=2021-03-15), "
                        "exit code: 1"
                    ),
                    "Metadata": {
                        "TrainingJob": {
                            "Arn": "arn:aws:sagemaker:us-east-1:123456789012:training-job/"
                            "pipelines-p4jn9xou8a8s-preproc-tmgxry49ug"
                        }
                    },
                },
            ]
        }

    def describe_pipeline_execution(self, **_: Any) -> dict[str, Any]:
        return {"FailureReason": ""}


class NoSecrets:
    def get_secret_value(self, **_: Any) -> dict[str, Any]:
        raise AssertionError("rendering the example reads no secret")


def render() -> dict[str, Any]:
    (notification,) = parse_invocation(FAILED_EXECUTION_EVENT)
    payload = payload_for(
        notification,
        Dependencies(sagemaker=CannedSageMaker(), secrets=NoSecrets()),
        Settings.from_env(EXAMPLE_ENV),
    )
    assert payload is not None
    return payload


def rendered_text() -> str:
    return json.dumps(render(), indent=2, ensure_ascii=False) + "\n"


def main(argv: list[str]) -> None:
    text = rendered_text()
    if argv:
        Path(argv[0]).write_text(text, encoding="utf-8")
    else:
        sys.stdout.write(text)


if __name__ == "__main__":
    main(sys.argv[1:])
