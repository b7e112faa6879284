"""The monitoring rules' event patterns, as synthesized, against the AWS documentation's sample
SageMaker events, matched by moto's implementation of EventBridge pattern matching.

The samples are used verbatim except for what identifies the pipeline (patched to this
pipeline's ARN, or left alone to stand for another pipeline) and the status being tested.
"""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

import pytest
from aws_cdk.assertions import Template
from moto.events.models import EventPattern

from tests.infra.cfn import FAKE_ACCOUNT, resolve
from tests.infra.conftest import environment, synth_stacks

REPO = Path(__file__).resolve().parents[2]
SAMPLES = REPO.parent / "shared" / "aws-samples" / "events"
EXECUTION_SAMPLE = SAMPLES / "sagemaker_pipeline_execution_status_change.json"
STEP_SAMPLE = SAMPLES / "sagemaker_pipeline_execution_step_status_change.json"
REGION = "ap-northeast-1"  # the region of both environments in cdk.json

pytestmark = pytest.mark.skipif(
    not SAMPLES.is_dir(),
    reason=f"the shared AWS sample events are not beside this clone ({SAMPLES})",
)

Patterns = dict[str, EventPattern]


def _patterns(env: str) -> Patterns:
    """The synthesized rules' patterns by rule name suffix, intrinsics resolved with the test
    account, as EventBridge would hold them once deployed."""
    template = Template.from_stack(synth_stacks(environment(env))["monitoring"])
    patterns = {}
    for rule in template.find_resources("AWS::Events::Rule").values():
        name = rule["Properties"]["Name"].removeprefix(f"forecast-{env}-")
        resolved = resolve(rule["Properties"]["EventPattern"], {}, region=REGION)
        patterns[name] = EventPattern.load(json.dumps(resolved))
    assert sorted(patterns) == ["execution-ended", "step-failed"]
    return patterns


@pytest.fixture(scope="module")
def dev() -> Patterns:
    return _patterns("dev")  # notify_on_success: true


@pytest.fixture(scope="module")
def prod() -> Patterns:
    return _patterns("prod")  # notify_on_success: false


def _pipeline_arn(env: str) -> str:
    return f"arn:aws:sagemaker:{REGION}:{FAKE_ACCOUNT}:pipeline/forecast-{env}-daily"


def _sample(path: Path, *, env: str | None, status: str | None = None) -> dict[str, Any]:
    """The sample event; with `env`, moved to that environment's pipeline (ARN everywhere it
    appears, account and region); with `status`, the current status replaced."""
    event = json.loads(path.read_text())
    if env is not None:
        sample_arn = event["detail"]["pipelineArn"]
        text = json.dumps(event).replace(sample_arn, _pipeline_arn(env))
        event = json.loads(text)
        event["account"] = FAKE_ACCOUNT
        event["region"] = REGION
    if status is not None:
        key = (
            "currentPipelineExecutionStatus"
            if "currentPipelineExecutionStatus" in event["detail"]
            else "currentStepStatus"
        )
        event["detail"][key] = status
    return event


def test_samples_are_the_documented_events() -> None:
    execution = json.loads(EXECUTION_SAMPLE.read_text())
    step = json.loads(STEP_SAMPLE.read_text())
    assert execution["detail-type"] == "SageMaker Model Building Pipeline Execution Status Change"
    assert step["detail-type"] == "SageMaker Model Building Pipeline Execution Step Status Change"
    assert execution["detail"]["currentPipelineExecutionStatus"] == "Succeeded"
    assert step["detail"]["currentStepStatus"] == "Succeeded"


@pytest.mark.parametrize("status", ["Failed", "Stopped"])
def test_execution_failures_of_this_pipeline_match(
    dev: Patterns, prod: Patterns, status: str
) -> None:
    for env, patterns in (("dev", dev), ("prod", prod)):
        event = _sample(EXECUTION_SAMPLE, env=env, status=status)
        assert patterns["execution-ended"].matches_event(event)
        assert not patterns["step-failed"].matches_event(event)


def test_success_reaches_the_notifier_in_every_environment(dev: Patterns, prod: Patterns) -> None:
    # The sample as published is a Succeeded event. Where successes are not posted (prod), the
    # notifier still needs it to post a success that had data-quality warnings.
    assert dev["execution-ended"].matches_event(_sample(EXECUTION_SAMPLE, env="dev"))
    assert prod["execution-ended"].matches_event(_sample(EXECUTION_SAMPLE, env="prod"))


@pytest.mark.parametrize("status", ["Executing", "Stopping"])
def test_execution_still_running_does_not_match(dev: Patterns, status: str) -> None:
    assert not dev["execution-ended"].matches_event(
        _sample(EXECUTION_SAMPLE, env="dev", status=status)
    )


def test_failed_step_of_this_pipeline_matches(prod: Patterns) -> None:
    event = _sample(STEP_SAMPLE, env="prod", status="Failed")
    event["detail"]["failureReason"] = "ClientError: AlgorithmError: see job logs"
    assert prod["step-failed"].matches_event(event)
    assert not prod["execution-ended"].matches_event(event)


@pytest.mark.parametrize("status", ["Succeeded", "Executing", "Stopped"])
def test_step_that_did_not_fail_does_not_match(prod: Patterns, status: str) -> None:
    assert not prod["step-failed"].matches_event(_sample(STEP_SAMPLE, env="prod", status=status))


@pytest.mark.parametrize("sample", [EXECUTION_SAMPLE, STEP_SAMPLE])
def test_another_pipelines_failure_does_not_match(prod: Patterns, sample: Path) -> None:
    # Untouched ARN: the documentation's own pipeline, myPipeline-123.
    event = _sample(sample, env=None, status="Failed")
    assert not any(pattern.matches_event(event) for pattern in prod.values())


@pytest.mark.parametrize("sample", [EXECUTION_SAMPLE, STEP_SAMPLE])
def test_the_other_environments_pipeline_does_not_match(
    dev: Patterns, prod: Patterns, sample: Path
) -> None:
    assert not any(
        pattern.matches_event(_sample(sample, env="dev", status="Failed"))
        for pattern in prod.values()
    )
    assert not any(
        pattern.matches_event(_sample(sample, env="prod", status="Failed"))
        for pattern in dev.values()
    )


def test_event_from_another_source_does_not_match(prod: Patterns) -> None:
    event = _sample(EXECUTION_SAMPLE, env="prod", status="Failed")
    forged = copy.deepcopy(event)
    forged["source"] = "custom.forecast"
    assert prod["execution-ended"].matches_event(event)
    assert not prod["execution-ended"].matches_event(forged)
