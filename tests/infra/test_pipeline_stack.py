"""The pipeline stack: role policy, the SageMaker Pipeline built from the definition, the schedule,
and the step code asset the jobs unpack."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import aws_cdk as cdk
import jsonschema
import pytest
from aws_cdk.assertions import Match, Template

from stacks import pipeline_definition as definition
from stacks.daily_schedule import start_execution_input
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
        "ReadWriteRunsResultsAndStoredVersions",
        "ReadAndReplacePublicationsAndRunHistory",
        "UseDataKey",
        "QueryInOwnWorkgroup",
        "ReadSourceAndRegisterPublishedPartitions",
        "DropSupersededVersions",
        "WriteJobLogs",
        "PullJobImage",
        "RunStepJobs",
        "PublishJobAndGateMetrics",
        "PassOwnRoleToJobs",
    }
    source = resolve(statements["ReadSource"]["Resource"], {})
    assert source == "arn:aws:s3:::forecast-dev-data-123456789012-ap-northeast-1/applications/*"
    assert statements["ReadSource"]["Action"] == "s3:GetObject"
    written = sorted(resolve(statements["ReadWriteRunsResultsAndStoredVersions"]["Resource"], {}))
    assert [w.rsplit("/", 2)[-2] for w in written] == [
        "athena-results",
        "forecast_accuracy_versions",
        "forecast_metrics_versions",
        "forecasts_versions",
        "runs",
    ]
    pointer = statements["ReadAndReplacePublicationsAndRunHistory"]
    assert sorted(pointer["Action"]) == ["s3:GetObject", "s3:PutObject"]
    replaced = [arn.rsplit("/", 2)[-2] for arn in resolve(pointer["Resource"], {})]
    assert replaced == ["publications", "run_history"]
    glue = resolve(statements["ReadSourceAndRegisterPublishedPartitions"]["Resource"], {})
    assert all("forecast_dev" in arn or arn.endswith(":catalog") for arn in glue)
    registered = statements["ReadSourceAndRegisterPublishedPartitions"]["Action"]
    assert not [action for action in registered if "Delete" in action or "Update" in action]
    dropped = statements["DropSupersededVersions"]
    assert dropped["Action"] == "glue:BatchDeletePartition"
    assert sorted(arn.split(":")[-1] for arn in resolve(dropped["Resource"], {})) == [
        "catalog",
        "database/forecast_dev",
        "table/forecast_dev/forecast_accuracy_versions",
        "table/forecast_dev/forecast_metrics_versions",
        "table/forecast_dev/forecasts_versions",
    ]
    assert statements["PassOwnRoleToJobs"]["Condition"] == {
        "StringEquals": {"iam:PassedToService": "sagemaker.amazonaws.com"}
    }
    image_repo = resolve(statements["PullJobImage"]["Resource"], {})
    assert image_repo == (
        "arn:aws:ecr:ap-northeast-1:123456789012:repository/"
        "cdk-hnb659fds-container-assets-123456789012-ap-northeast-1"
    )
    logs = resolve(statements["WriteJobLogs"]["Resource"], {})
    assert logs == (
        "arn:aws:logs:ap-northeast-1:123456789012:log-group:/aws/sagemaker/TrainingJobs:*"
    )


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
    assert (
        "123456789012.dkr.ecr.ap-northeast-1.amazonaws.com/"
        "cdk-hnb659fds-container-assets-123456789012-ap-northeast-1:"
    ) in text
    assert '"AWS_REGION":"ap-northeast-1"' in text.replace(" ", "")


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


def test_schedule_passes_its_scheduled_time_as_execution_date() -> None:
    prod = _template(synth_stacks(environment("prod", schedule={"enabled": True})))
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
                    "RetryPolicy": {"MaximumEventAgeInSeconds": 21600, "MaximumRetryAttempts": 10},
                    "DeadLetterConfig": {"Arn": Match.any_value()},
                }
            ),
        },
    )
    (schedule,) = prod.find_resources("AWS::Scheduler::Schedule").values()
    target = schedule["Properties"]["Target"]
    assert resolve(target["Arn"], {}) == (
        "arn:aws:scheduler:::aws-sdk:sagemaker:startPipelineExecution"
    )
    sent = json.loads(target["Input"])
    assert sent == start_execution_input("forecast-prod-daily")
    assert sent["PipelineParameters"] == [
        {"Name": "ExecutionDate", "Value": "<aws.scheduler.scheduled-time>"}
    ]
    assert sent["ClientRequestToken"] == (
        "scheduled-forecast-prod-daily-<aws.scheduler.scheduled-time>"
    )


def test_schedule_can_be_switched_off_per_environment(dev_stacks: dict[str, cdk.Stack]) -> None:
    _template(dev_stacks).has_resource_properties("AWS::Scheduler::Schedule", {"State": "DISABLED"})


def test_schedule_may_only_start_this_pipeline(dev_stacks: dict[str, cdk.Stack]) -> None:
    statements = _policy_statements(_template(dev_stacks), "ScheduleRole")
    start = [s for s in statements if s["Action"] == "sagemaker:StartPipelineExecution"]
    assert len(start) == 1
    assert resolve(start[0]["Resource"], {}).endswith(":pipeline/forecast-dev-daily")


def test_the_job_image_is_built_from_the_job_package(dev_stacks: dict[str, cdk.Stack]) -> None:
    """`cdk deploy` builds the image from pipeline_code/ (Dockerfile inside) for x86_64."""
    assembly = cdk.Stage.of(dev_stacks["pipeline"]).synth()
    manifest = json.loads(
        (Path(assembly.directory) / "Forecast-dev-Pipeline.assets.json").read_text()
    )
    (image,) = manifest["dockerImages"].values()
    assert image["source"].get("dockerFile") in (None, "Dockerfile")
    assert image["source"]["platform"] == "linux/amd64"
    staged = Path(assembly.directory) / image["source"]["directory"]
    assert (staged / "Dockerfile").is_file() and (staged / "steps" / "extract.py").is_file()
    assert not list(staged.rglob("__pycache__"))
    zipped = [f for f in manifest["files"].values() if f["source"].get("packaging") == "zip"]
    assert zipped == [], "the step code ships in the image, not as a zip"


def test_prod_runs_six_warm_pooled_jobs_on_one_configuration() -> None:
    """One cold start a run: every job matches the previous one's warm pool (same role, image,
    instance, volume and network settings) and every job keeps its instance."""
    prod = _deployed_definition(_template(synth_stacks(environment("prod"))))
    steps = [s for s in prod["Steps"] if s["Type"] == "Training"]
    (gate,) = [s for s in prod["Steps"] if s["Type"] == "Condition"]
    steps += [s for s in gate["Arguments"]["IfSteps"] if s["Type"] == "Training"]
    assert [s["Name"] for s in steps] == [
        "Extract", "PreProc", "Train", "TrainEvaluation", "Predict", "PostProc"
    ]  # fmt: skip

    def shared(arguments: dict[str, Any]) -> tuple[Any, ...]:
        resources = {
            k: v for k, v in arguments["ResourceConfig"].items() if k != "KeepAlivePeriodInSeconds"
        }
        return (
            resources,
            arguments["RoleArn"],
            arguments["AlgorithmSpecification"]["TrainingImage"],
            arguments.get("VpcConfig"),
            arguments.get("EnableNetworkIsolation"),
            arguments.get("EnableInterContainerTrafficEncryption"),
        )

    assert len({json.dumps(shared(s["Arguments"]), sort_keys=True) for s in steps}) == 1
    assert shared(steps[0]["Arguments"])[0]["InstanceType"] == "ml.m5.xlarge"
    keep_alive = [s["Arguments"]["ResourceConfig"].get("KeepAlivePeriodInSeconds") for s in steps]
    assert len(set(keep_alive)) == 1 and keep_alive[0] > 0
    assert "pip install" not in json.dumps(prod)


def test_first_deploy_asks_for_the_quota_the_definition_needs() -> None:
    """docs/first-deploy.md's quota figure is `quota_needed` for prod with the backfill's default
    concurrency (bench/wall_time.py prints the same)."""
    from rerun.cli import DEFAULT_CONCURRENCY
    from stacks.pipeline_definition import environment_settings, quota_needed

    needed = quota_needed(environment_settings(environment("prod")), DEFAULT_CONCURRENCY)
    doc = (Path(__file__).resolve().parents[2] / "docs" / "first-deploy.md").read_text()
    rows = [line for line in doc.splitlines() if "for training job usage` (e.g." in line]
    assert len(rows) == 1 and f"**{needed}** with one instance and `CONCURRENCY=2`" in rows[0]
    assert f"--desired-value {needed}" in doc
