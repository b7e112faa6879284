"""The dashboard stack: built only where QuickSight is enabled; the view, QuickSight's data
source, SPICE data set and fallback schedule; the success rule and its least-privilege function.
The app under test runs cdk-nag, and its dashboard template passes cfn-lint."""

from __future__ import annotations

import base64
import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import aws_cdk as cdk
import pytest
from aws_cdk import aws_sns as sns
from aws_cdk.assertions import Match, Template

from stacks import dashboard_view
from stacks.app_builder import build_app
from stacks.config import EnvironmentConfig
from stacks.dashboard_stack import DashboardStack
from stacks.data_stack import DataStack
from tests.infra.conftest import environment, new_app, synth_stacks

PRINCIPAL = "arn:aws:quicksight:ap-northeast-1:123456789012:group/default/forecast-readers"


def _enabled(**quicksight: Any) -> EnvironmentConfig:
    return environment(
        "prod",
        quicksight={
            "enabled": True,
            "principal_arn": PRINCIPAL,
            "timezone": "Asia/Tokyo",
            "refresh_time": "07:30",
            "max_ingestions_per_day": 8,
            **quicksight,
        },
    )


def _build(config: EnvironmentConfig) -> tuple[cdk.App, DashboardStack]:
    """The app as `app.py` builds it, cdk-nag included, with QuickSight enabled."""
    app = new_app()
    dashboard = build_app(app, config)["dashboard"]
    assert isinstance(dashboard, DashboardStack)
    return app, dashboard


@pytest.fixture(scope="module")
def built() -> tuple[cdk.App, DashboardStack, Template]:
    app, dashboard = _build(_enabled())
    app.synth()  # cdk-nag runs here: any unacknowledged finding raises
    return app, dashboard, Template.from_stack(dashboard)


@pytest.fixture(scope="module")
def template(built: tuple[cdk.App, DashboardStack, Template]) -> Template:
    return built[2]


def test_dev_leaves_quicksight_off_by_default() -> None:
    assert not environment("dev").quicksight.enabled


@pytest.mark.parametrize("name", ["dev", "prod"])
def test_no_dashboard_where_quicksight_is_off(name: str) -> None:
    stacks = synth_stacks(environment(name, quicksight={"enabled": False}))
    assert not any(isinstance(stack, DashboardStack) for stack in stacks.values())


def test_the_stack_refuses_a_disabled_config() -> None:
    app = new_app()
    config = environment("dev")
    data = DataStack(app, "Data", config=config)
    topic = sns.Topic(cdk.Stack(app, "Alerts"), "Alerts")
    with pytest.raises(ValueError, match="quicksight"):
        DashboardStack(
            app, "Dashboard", config=config, data=data, pipeline_name="p", alerts_topic=topic
        )


def test_the_view_is_a_presto_view_over_the_published_tables(template: Template) -> None:
    views = template.find_resources(
        "AWS::Glue::Table", {"Properties": {"TableInput": {"TableType": "VIRTUAL_VIEW"}}}
    )
    [view] = views.values()
    table_input = view["Properties"]["TableInput"]
    assert view["Properties"]["DatabaseName"] == "forecast_prod"
    assert table_input["Name"] == dashboard_view.VIEW_NAME
    assert table_input["Parameters"] == {"presto_view": "true", "comment": "Presto View"}
    assert table_input["ViewExpandedText"] == "/* Presto View */"
    encoded = table_input["ViewOriginalText"].removeprefix("/* Presto View: ").removesuffix(" */")
    payload = json.loads(base64.b64decode(encoded))
    assert payload["schema"] == "forecast_prod"
    assert payload["originalSql"] == dashboard_view.view_sql()
    assert [c["Name"] for c in table_input["StorageDescriptor"]["Columns"]] == [
        c["name"] for c in payload["columns"]
    ]


def test_the_data_source_is_athena_on_the_workgroup(template: Template) -> None:
    template.has_resource_properties(
        "AWS::QuickSight::DataSource",
        {
            "Type": "ATHENA",
            "DataSourceParameters": {"AthenaParameters": {"WorkGroup": "forecast-prod-workgroup"}},
            "Permissions": [
                {"Principal": PRINCIPAL, "Actions": Match.array_with(["quicksight:PassDataSource"])}
            ],
        },
    )


def test_the_data_set_is_spice_on_the_view_for_the_principal(template: Template) -> None:
    template.has_resource_properties(
        "AWS::QuickSight::DataSet",
        {
            "DataSetId": "forecast-prod-dashboard",
            "ImportMode": "SPICE",
            "PhysicalTableMap": {
                "view": {
                    "RelationalTable": {
                        "Catalog": "awsdatacatalog",
                        "Schema": "forecast_prod",
                        "Name": dashboard_view.VIEW_NAME,
                        "InputColumns": [
                            {"Name": c.name, "Type": c.quicksight_type}
                            for c in dashboard_view.COLUMNS
                        ],
                        "DataSourceArn": Match.any_value(),
                    }
                }
            },
            "Permissions": [
                {
                    "Principal": PRINCIPAL,
                    "Actions": Match.array_with(
                        ["quicksight:DescribeDataSet", "quicksight:CreateIngestion"]
                    ),
                }
            ],
        },
    )
    # Its first ingestion needs the view.
    [data_set] = template.find_resources("AWS::QuickSight::DataSet").values()
    assert data_set["DependsOn"] == [_logical_id(template, "AWS::Glue::Table")]


def test_the_fallback_refresh_is_daily_in_the_configured_zone_and_time(template: Template) -> None:
    template.has_resource_properties(
        "AWS::QuickSight::RefreshSchedule",
        {
            "DataSetId": "forecast-prod-dashboard",
            "Schedule": {
                "RefreshType": "FULL_REFRESH",
                "ScheduleFrequency": {
                    "Interval": "DAILY",
                    "TimeOfTheDay": "07:30",
                    "TimeZone": "Asia/Tokyo",
                },
                "ScheduleId": Match.any_value(),
            },
        },
    )


def test_the_rule_matches_only_this_pipelines_successes(template: Template) -> None:
    [rule] = template.find_resources("AWS::Events::Rule").values()
    pattern = rule["Properties"]["EventPattern"]
    assert pattern["source"] == ["aws.sagemaker"]
    assert pattern["detail-type"] == ["SageMaker Model Building Pipeline Execution Status Change"]
    assert pattern["detail"]["currentPipelineExecutionStatus"] == ["Succeeded"]
    [arn] = pattern["detail"]["pipelineArn"]
    assert arn["Fn::Join"][1][-1] == ":pipeline/forecast-prod-daily"
    [target] = rule["Properties"]["Targets"]
    assert target["Arn"] == {"Fn::GetAtt": [_logical_id(template, "AWS::Lambda::Function"), "Arn"]}
    assert "DeadLetterConfig" in target


def test_the_function_is_configured_from_the_quicksight_block(template: Template) -> None:
    template.has_resource_properties(
        "AWS::Lambda::Function",
        {
            "Handler": "handler.lambda_handler",
            "Timeout": 600,
            "DeadLetterConfig": Match.object_like({"TargetArn": Match.any_value()}),
            "LoggingConfig": {
                "LogGroup": Match.any_value(),
                "LogFormat": "JSON",
                "ApplicationLogLevel": "INFO",
            },
            "Environment": {
                "Variables": {
                    "DATASET_ID": "forecast-prod-dashboard",
                    "ALERTS_TOPIC_ARN": Match.any_value(),
                    "MAX_INGESTIONS_PER_DAY": "8",
                    "TIMEZONE": "Asia/Tokyo",
                    "FALLBACK_REFRESH_TIME": "07:30",
                }
            },
        },
    )
    template.has_resource_properties("AWS::Lambda::EventInvokeConfig", {"MaximumRetryAttempts": 0})
    template.has_resource_properties("AWS::Logs::LogGroup", {"RetentionInDays": Match.any_value()})


def _statements(template: Template) -> list[dict[str, Any]]:
    return [
        statement
        for policy in template.find_resources("AWS::IAM::Policy").values()
        for statement in policy["Properties"]["PolicyDocument"]["Statement"]
    ]


def _actions(statement: dict[str, Any]) -> list[str]:
    actions = statement["Action"]
    return actions if isinstance(actions, list) else [actions]


def test_iam_is_least_privilege_without_wildcard_actions(template: Template) -> None:
    statements = _statements(template)
    actions = sorted(action for s in statements for action in _actions(s))
    assert not [action for action in actions if "*" in action]
    assert actions == sorted(
        [
            "logs:CreateLogStream",
            "logs:PutLogEvents",
            "sns:Publish",
            "kms:Decrypt",
            "kms:GenerateDataKey",
            "sqs:SendMessage",
            "quicksight:ListIngestions",
            "quicksight:CreateIngestion",
            "quicksight:DescribeIngestion",
        ]
    )
    template.resource_properties_count_is(
        "AWS::IAM::Role", {"ManagedPolicyArns": Match.any_value()}, 0
    )
    quicksight = [s for s in statements if _actions(s)[0].startswith("quicksight:")]
    resources = json.dumps([s["Resource"] for s in quicksight])
    assert resources.count("dataset/forecast-prod-dashboard") == 3
    assert "dataset/*" not in resources


def test_every_template_passes_cfn_lint_with_the_dashboard_on(
    built: tuple[cdk.App, DashboardStack, Template], tmp_path: Path
) -> None:
    app, _, _ = built
    templates = []
    for stack in app.node.children:
        if isinstance(stack, cdk.Stack):
            path = tmp_path / f"{stack.stack_name}.template.json"
            path.write_text(json.dumps(Template.from_stack(stack).to_json()))
            templates.append(str(path))
    assert any(name.endswith("Dashboard.template.json") for name in templates)
    result = subprocess.run(
        [str(Path(sys.executable).parent / "cfn-lint"), *templates],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stdout + result.stderr


def _logical_id(template: Template, resource_type: str) -> str:
    [logical_id] = template.find_resources(resource_type).keys()
    return logical_id
