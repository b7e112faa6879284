"""The pipeline stack: role policy, the SageMaker Pipeline built from the definition, the schedule,
and the step code asset the jobs unpack."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import zipfile
from pathlib import Path
from typing import Any

import aws_cdk as cdk
import jsonschema
import pytest
from aws_cdk.assertions import Match, Template

from pipeline_code import definition
from stacks.pipeline_stack import start_execution_input
from tests.infra.cfn import deployed_definition_body, resolve
from tests.infra.conftest import environment, synth_stacks
from tests.pipeline_schema import SCHEMA_PATH, extended_schema


def _template(stacks: dict[str, cdk.Stack]) -> Template:
    return Template.from_stack(stacks["pipeline"])


def _policy_statements(template: Template, role_logical_prefix: str) -> list[dict[str, Any]]:
    policies = template.find_resources("AWS::IAM::Policy")
    (policy,) = [p for k, p in policies.items() if k.startswith(role_logical_prefix)]
    return policy["Properties"]["PolicyDocument"]["Statement"]


def _deployed_definition(template: Template) -> dict[str, Any]:
    return json.loads(deployed_definition_body(template))


def test_role_has_no_wildcard_action_and_no_managed_policy(
    dev_stacks: dict[str, cdk.Stack],
) -> None:
    template = _template(dev_stacks)
    roles = template.find_resources("AWS::IAM::Role")
    assert all("ManagedPolicyArns" not in role["Properties"] for role in roles.values())
    for prefix in ("PipelineRole", "ScheduleRole"):
        for statement in _policy_statements(template, prefix):
            actions = (
                statement["Action"]
                if isinstance(statement["Action"], list)
                else [statement["Action"]]
            )
            assert all("*" not in action for action in actions), statement


def test_role_is_scoped_to_the_pipelines_own_resources(dev_stacks: dict[str, cdk.Stack]) -> None:
    statements = {s["Sid"]: s for s in _policy_statements(_template(dev_stacks), "PipelineRole")}
    assert set(statements) >= {
        "ReadSource",
        "ReadWriteRunsResultsAndPublishedTables",
        "ReadStepCode",
        "UseDataKey",
        "QueryInOwnWorkgroup",
        "ReadSourceAndManagePublishedPartitions",
        "RollBackPublishedPartitions",
        "WriteJobLogs",
        "PullJobImage",
        "RunProcessingJobs",
        "PassOwnRoleToJobs",
    }
    source = resolve(statements["ReadSource"]["Resource"], {})
    assert source == "arn:aws:s3:::forecast-dev-data-123456789012-ap-northeast-1/applications/*"
    assert statements["ReadSource"]["Action"] == "s3:GetObject"
    written = sorted(resolve(statements["ReadWriteRunsResultsAndPublishedTables"]["Resource"], {}))
    assert [w.rsplit("/", 2)[-2] for w in written] == [
        "athena-results",
        "forecast_metrics",
        "forecasts",
        "runs",
    ]
    glue = resolve(statements["ReadSourceAndManagePublishedPartitions"]["Resource"], {})
    assert all("forecast_dev" in arn or arn.endswith(":catalog") for arn in glue)
    assert "glue:DeleteTable" not in statements["ReadSourceAndManagePublishedPartitions"]["Action"]
    roll_back = statements["RollBackPublishedPartitions"]
    assert roll_back["Action"] == "glue:DeletePartition"
    assert sorted(arn.split(":")[-1] for arn in resolve(roll_back["Resource"], {})) == [
        "catalog",
        "database/forecast_dev",
        "table/forecast_dev/forecast_metrics",
        "table/forecast_dev/forecasts",
    ]
    assert statements["PassOwnRoleToJobs"]["Condition"] == {
        "StringEquals": {"iam:PassedToService": "sagemaker.amazonaws.com"}
    }
    image_repo = resolve(statements["PullJobImage"]["Resource"], {})
    assert image_repo == "arn:aws:ecr:ap-northeast-1:354813040037:repository/sagemaker-scikit-learn"


def test_pipeline_resource_uses_the_role_and_the_environment_name(
    dev_stacks: dict[str, cdk.Stack],
) -> None:
    _template(dev_stacks).has_resource_properties(
        "AWS::SageMaker::Pipeline",
        {
            "PipelineName": "forecast-dev-daily",
            "RoleArn": {"Fn::GetAtt": [Match.string_like_regexp("PipelineRole"), "Arn"]},
        },
    )


def test_deployed_definition_has_no_placeholder_left(dev_stacks: dict[str, cdk.Stack]) -> None:
    text = json.dumps(_deployed_definition(_template(dev_stacks)))
    leftovers = [p for p in definition.PLACEHOLDERS.values() if p in text]
    assert leftovers == []
    assert "s3://forecast-dev-data-123456789012-ap-northeast-1" in text
    assert "sagemaker-scikit-learn:1.4-2-cpu-py3" in text


def test_deployed_definition_validates_against_the_public_schema(
    dev_stacks: dict[str, cdk.Stack],
) -> None:
    if not SCHEMA_PATH.exists():
        pytest.skip(f"the pipeline definition schema is not beside this clone ({SCHEMA_PATH})")
    schema = extended_schema(json.loads(SCHEMA_PATH.read_text()))
    errors = [
        f"{list(error.absolute_path)}: {error.message[:200]}"
        for error in jsonschema.Draft7Validator(schema).iter_errors(
            _deployed_definition(_template(dev_stacks))
        )
    ]
    assert errors == []


def test_custom_image_is_used_as_given_and_skips_the_install() -> None:
    image = "111122223333.dkr.ecr.eu-west-1.amazonaws.com/forecast-jobs:2026.11"
    stacks = synth_stacks(environment("dev", pipeline={"image_uri": image}))
    deployed = _deployed_definition(_template(stacks))
    specs = [
        step["Arguments"]["AppSpecification"]
        for step in deployed["Steps"]
        if step["Type"] == "Processing"
    ]
    assert {spec["ImageUri"] for spec in specs} == {image}
    assert all("pip install" not in spec["ContainerEntrypoint"][2] for spec in specs)
    statements = {s["Sid"]: s for s in _policy_statements(_template(stacks), "PipelineRole")}
    assert resolve(statements["PullJobImage"]["Resource"], {}) == (
        "arn:aws:ecr:eu-west-1:111122223333:repository/forecast-jobs"
    )


def test_schedule_passes_its_scheduled_time_as_execution_date() -> None:
    prod = _template(synth_stacks(environment("prod")))
    prod.has_resource_properties(
        "AWS::Scheduler::Schedule",
        {
            "Name": "forecast-prod-daily",
            "ScheduleExpression": "cron(0 3 * * ? *)",
            "ScheduleExpressionTimezone": "Asia/Tokyo",
            "State": "ENABLED",
            "FlexibleTimeWindow": {"Mode": "OFF"},
            "Target": Match.object_like(
                {
                    "Arn": "arn:aws:scheduler:::aws-sdk:sagemaker:startPipelineExecution",
                    "RetryPolicy": {"MaximumEventAgeInSeconds": 21600, "MaximumRetryAttempts": 10},
                    "DeadLetterConfig": {"Arn": Match.any_value()},
                }
            ),
        },
    )
    (schedule,) = prod.find_resources("AWS::Scheduler::Schedule").values()
    sent = json.loads(schedule["Properties"]["Target"]["Input"])
    assert sent == start_execution_input("forecast-prod-daily")
    assert sent["PipelineParameters"] == [
        {"Name": "ExecutionDate", "Value": "<aws.scheduler.scheduled-time>"}
    ]


def test_schedule_can_be_switched_off_per_environment(dev_stacks: dict[str, cdk.Stack]) -> None:
    _template(dev_stacks).has_resource_properties("AWS::Scheduler::Schedule", {"State": "DISABLED"})


def test_schedule_may_only_start_this_pipeline(dev_stacks: dict[str, cdk.Stack]) -> None:
    statements = _policy_statements(_template(dev_stacks), "ScheduleRole")
    start = [s for s in statements if s["Action"] == "sagemaker:StartPipelineExecution"]
    assert len(start) == 1
    assert resolve(start[0]["Resource"], {}).endswith(":pipeline/forecast-dev-daily")


def _staged_code_asset(stacks: dict[str, cdk.Stack], into: Path) -> Path:
    """Zip the staged step-code asset the way the CDK CLI publishes a directory asset."""
    assembly = cdk.Stage.of(stacks["pipeline"]).synth()
    manifest = json.loads(
        (Path(assembly.directory) / "Forecast-dev-Pipeline.assets.json").read_text()
    )
    (source,) = [
        Path(assembly.directory) / f["source"]["path"]
        for f in manifest["files"].values()
        if f["source"].get("packaging") == "zip"
    ]
    archive = into / "3f1a9c.zip"  # SageMaker keeps the object's own name
    with zipfile.ZipFile(archive, "w") as zf:
        for path in sorted(source.rglob("*")):
            zf.write(path, path.relative_to(source).as_posix())
    return archive


@pytest.mark.slow
def test_synthesized_step_commands_find_the_shipped_code(tmp_path: Path) -> None:
    stacks = synth_stacks(environment("dev"))
    archive = _staged_code_asset(stacks, tmp_path)
    names = zipfile.ZipFile(archive).namelist()
    assert "requirements.txt" in names and "steps/extract.py" in names
    assert not any(n.startswith("local/") or n == "definition.py" for n in names)
    deployed = _deployed_definition(_template(stacks))
    env = {
        **os.environ,
        "PIPELINE_CODE_INPUT_DIR": str(tmp_path),
        "PIPELINE_CODE_DIR": str(tmp_path / "code"),
        "PYTHONPATH": "",
        # `python3` with the requirements installed, as in the job after its install line.
        "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}",
    }
    for step in deployed["Steps"]:
        if step["Type"] != "Processing":
            continue
        entrypoint = step["Arguments"]["AppSpecification"]["ContainerEntrypoint"]
        # The install line needs the registry; the job image has pip and network access to it.
        script = entrypoint[2].replace("python3 -m pip install", "true")
        result = subprocess.run(
            [entrypoint[0], entrypoint[1], script, entrypoint[3], "--help"],
            env=env,
            capture_output=True,
            text=True,
            cwd=tmp_path,
            timeout=120,
        )
        assert result.returncode == 0, (step["Name"], result.stderr)
        assert "--execution-id" in result.stdout
