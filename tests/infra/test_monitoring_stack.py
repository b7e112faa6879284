"""The monitoring stack: rules for this pipeline only, the encrypted alerts topic and who may
publish to it, the Slack notifier's wiring, and the alarms (the dead-man's switch only where the
schedule runs)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import aws_cdk as cdk
import pytest
from aws_cdk.assertions import Template

from stacks.monitoring_stack import NOTIFIER_SAGEMAKER_ACTIONS, dead_man_window_hours
from stacks.pipeline_events import EXECUTION_STATUS_CHANGE, STEP_STATUS_CHANGE
from tests.infra.cfn import resolve
from tests.infra.conftest import environment, synth_stacks

PROD_EMAIL = "forecast-oncall@example.com"


@pytest.fixture(scope="module")
def dev(dev_stacks: dict[str, cdk.Stack]) -> Template:
    return Template.from_stack(dev_stacks["monitoring"])


@pytest.fixture(scope="module")
def prod() -> Template:
    """Prod in steady state: its schedule switched on after the first successful run."""
    config = environment("prod", schedule={"enabled": True})
    return Template.from_stack(synth_stacks(config)["monitoring"])


@pytest.fixture(scope="module")
def prod_with_email() -> Template:
    config = environment(
        "prod",
        monitoring={"alarm_email": PROD_EMAIL, "success_deadline_hours": 3},
        schedule={"enabled": True},
    )
    return Template.from_stack(synth_stacks(config)["monitoring"])


def _one(template: Template, resource_type: str, logical_prefix: str = "") -> tuple[str, Any]:
    found = [
        (logical_id, resource)
        for logical_id, resource in template.find_resources(resource_type).items()
        if logical_id.startswith(logical_prefix)
    ]
    assert len(found) == 1, [logical_id for logical_id, _ in found]
    return found[0]


def _rule(template: Template, prefix: str) -> tuple[str, dict[str, Any]]:
    logical_id, rule = _one(template, "AWS::Events::Rule", prefix)
    return logical_id, rule["Properties"]


def _as_list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else [value]


def _alarms(template: Template) -> dict[str, dict[str, Any]]:
    return {
        alarm["Properties"]["AlarmName"]: alarm["Properties"]
        for alarm in template.find_resources("AWS::CloudWatch::Alarm").values()
    }


def _topic_statements(template: Template) -> list[dict[str, Any]]:
    _, policy = _one(template, "AWS::SNS::TopicPolicy")
    return policy["Properties"]["PolicyDocument"]["Statement"]


# -- rules ---------------------------------------------------------------------------------


def test_execution_rule_matches_this_pipeline_and_the_configured_statuses(
    dev: Template, prod: Template
) -> None:
    for template, env, statuses in (
        (dev, "dev", ["Failed", "Stopped", "Succeeded"]),  # dev: notify_on_success true
        # prod: successes reach the notifier, which posts only those with data-quality warnings
        (prod, "prod", ["Failed", "Stopped", "Succeeded"]),
    ):
        _, rule = _rule(template, "ExecutionStatusRule")
        assert resolve(rule["EventPattern"], {}) == {
            "source": ["aws.sagemaker"],
            "detail-type": [EXECUTION_STATUS_CHANGE],
            "detail": {
                "pipelineArn": [
                    f"arn:aws:sagemaker:ap-northeast-1:123456789012:pipeline/forecast-{env}-daily"
                ],
                "currentPipelineExecutionStatus": statuses,
            },
        }
        assert rule["State"] == "ENABLED"


def test_step_rule_matches_failed_steps_of_this_pipeline(dev: Template) -> None:
    _, rule = _rule(dev, "StepFailedRule")
    assert resolve(rule["EventPattern"], {}) == {
        "source": ["aws.sagemaker"],
        "detail-type": [STEP_STATUS_CHANGE],
        "detail": {
            "pipelineArn": [
                "arn:aws:sagemaker:ap-northeast-1:123456789012:pipeline/forecast-dev-daily"
            ],
            "currentStepStatus": ["Failed"],
        },
    }


def test_rule_targets_are_the_topic_with_retries_and_a_dead_letter_queue(dev: Template) -> None:
    topic_id, _ = _one(dev, "AWS::SNS::Topic")
    dlq_id, _ = _one(dev, "AWS::SQS::Queue", "RuleTargetDeadLetters")
    for prefix in ("ExecutionStatusRule", "StepFailedRule"):
        _, rule = _rule(dev, prefix)
        (target,) = rule["Targets"]
        assert target["Arn"] == {"Ref": topic_id}
        assert target["DeadLetterConfig"] == {"Arn": {"Fn::GetAtt": [dlq_id, "Arn"]}}
        assert target["RetryPolicy"] == {
            "MaximumEventAgeInSeconds": 6 * 3600,
            "MaximumRetryAttempts": 20,
        }
        assert "RoleArn" not in target  # the topic policy authorises EventBridge


def test_only_the_rules_may_dead_letter_into_their_queue(dev: Template) -> None:
    dlq_id, _ = _one(dev, "AWS::SQS::Queue", "RuleTargetDeadLetters")
    policies = [
        policy["Properties"]["PolicyDocument"]["Statement"]
        for policy in dev.find_resources("AWS::SQS::QueuePolicy").values()
        if policy["Properties"]["Queues"] == [{"Ref": dlq_id}]
    ]
    (statements,) = policies
    (allow,) = [s for s in statements if s["Effect"] == "Allow"]
    assert allow["Principal"] == {"Service": "events.amazonaws.com"}
    assert allow["Action"] == "sqs:SendMessage"
    rule_ids = sorted(dev.find_resources("AWS::Events::Rule"))
    assert allow["Condition"] == {
        "ArnEquals": {"aws:SourceArn": [{"Fn::GetAtt": [r, "Arn"]} for r in rule_ids]}
    }


# -- topic, key, topic policy --------------------------------------------------------------


def test_topic_is_encrypted_with_its_own_rotating_customer_managed_key(dev: Template) -> None:
    key_id, key = _one(dev, "AWS::KMS::Key")
    assert key["Properties"]["EnableKeyRotation"] is True
    dev.has_resource_properties(
        "AWS::SNS::Topic",
        {"TopicName": "forecast-dev-alerts", "KmsMasterKeyId": {"Fn::GetAtt": [key_id, "Arn"]}},
    )
    dev.has_resource_properties("AWS::KMS::Alias", {"AliasName": "alias/forecast-dev-alerts"})


def test_key_lets_the_alert_senders_use_it_with_explicit_actions(dev: Template) -> None:
    _, key = _one(dev, "AWS::KMS::Key")
    statements = key["Properties"]["KeyPolicy"]["Statement"]
    services = [s for s in statements if "Service" in s["Principal"]]
    (statement,) = services
    assert sorted(statement["Principal"]["Service"]) == [
        "cloudwatch.amazonaws.com",
        "events.amazonaws.com",
        "sns.amazonaws.com",
    ]
    assert sorted(statement["Action"]) == ["kms:Decrypt", "kms:GenerateDataKey"]


def test_topic_policy_allows_only_these_rules_and_this_environments_alarms(
    dev: Template,
) -> None:
    allows = [s for s in _topic_statements(dev) if s["Effect"] == "Allow"]
    by_service = {s["Principal"]["Service"]: s for s in allows}
    assert sorted(by_service) == ["cloudwatch.amazonaws.com", "events.amazonaws.com"]
    assert len(allows) == 2
    assert all(s["Action"] == "sns:Publish" for s in allows)

    rule_ids = sorted(dev.find_resources("AWS::Events::Rule"))
    assert by_service["events.amazonaws.com"]["Condition"] == {
        "ArnEquals": {"aws:SourceArn": [{"Fn::GetAtt": [r, "Arn"]} for r in rule_ids]}
    }
    alarms = resolve(by_service["cloudwatch.amazonaws.com"]["Condition"], {})
    assert alarms == {
        "StringEquals": {"aws:SourceAccount": "123456789012"},
        "ArnLike": {
            "aws:SourceArn": "arn:aws:cloudwatch:ap-northeast-1:123456789012:alarm:forecast-dev-*"
        },
    }


def test_topic_policy_denies_publishing_without_tls(dev: Template) -> None:
    (deny,) = [s for s in _topic_statements(dev) if s["Effect"] == "Deny"]
    assert deny["Condition"] == {"Bool": {"aws:SecureTransport": "false"}}
    assert deny["Principal"] == "*"
    assert "sns:Publish" in _as_list(deny["Action"])


def test_every_alarm_name_is_covered_by_the_topic_policy(prod: Template) -> None:
    names = list(_alarms(prod))
    assert names
    assert all(name.startswith("forecast-prod-") for name in names)


def test_dead_letter_queues_are_kms_encrypted_and_tls_only(dev: Template) -> None:
    key_id, _ = _one(dev, "AWS::KMS::Key")
    queues = dev.find_resources("AWS::SQS::Queue")
    assert sorted(q["Properties"]["QueueName"] for q in queues.values()) == [
        "forecast-dev-alerts-rules-dlq",
        "forecast-dev-alerts-subscription-dlq",
        "forecast-dev-slack-notifier-dlq",
    ]
    for queue in queues.values():
        assert queue["Properties"]["KmsMasterKeyId"] == {"Fn::GetAtt": [key_id, "Arn"]}
    for policy in dev.find_resources("AWS::SQS::QueuePolicy").values():
        statements = policy["Properties"]["PolicyDocument"]["Statement"]
        assert any(
            s["Effect"] == "Deny" and s["Condition"] == {"Bool": {"aws:SecureTransport": "false"}}
            for s in statements
        )


# -- Slack notifier ------------------------------------------------------------------------


def test_notifier_runtime_environment_and_concurrency(dev: Template, prod: Template) -> None:
    for template, env, statuses in (
        (dev, "dev", "Failed,Stopped,Succeeded"),
        (prod, "prod", "Failed,Stopped"),
    ):
        _, function = _one(template, "AWS::Lambda::Function")
        props = function["Properties"]
        assert props["Runtime"] == "python3.14"
        assert props["Handler"] == "handler.lambda_handler"
        assert 60 <= props["Timeout"] <= 90
        # Unreserved by default: a new account's concurrency quota of 10 leaves none to reserve.
        assert "ReservedConcurrentExecutions" not in props
        assert resolve(props["Environment"]["Variables"], {}) == {
            "SLACK_SECRET_ARN": f"forecast/{env}/slack-webhook",
            "ENVIRONMENT_NAME": env,
            "PIPELINE_NAME": f"forecast-{env}-daily",
            "SCHEDULE_TIMEZONE": "Asia/Tokyo",
            "NOTIFY_STATUSES": statuses,
            "DATA_BUCKET": f"forecast-{env}-data-123456789012-ap-northeast-1",
        }
        assert "hooks.slack.com" not in json.dumps(props)


def test_notifier_concurrency_can_be_reserved_per_environment() -> None:
    config = environment("prod", monitoring={"notifier_reserved_concurrency": 2})
    template = Template.from_stack(synth_stacks(config)["monitoring"])
    _, function = _one(template, "AWS::Lambda::Function")
    assert function["Properties"]["ReservedConcurrentExecutions"] == 2


def test_notifier_retries_twice_then_sends_to_its_dead_letter_queue(dev: Template) -> None:
    function_id, _ = _one(dev, "AWS::Lambda::Function")
    dlq_id, _ = _one(dev, "AWS::SQS::Queue", "NotifierDeadLetters")
    _, config = _one(dev, "AWS::Lambda::EventInvokeConfig")
    assert config["Properties"] == {
        "FunctionName": {"Ref": function_id},
        "Qualifier": "$LATEST",
        "MaximumRetryAttempts": 2,
        "DestinationConfig": {"OnFailure": {"Destination": {"Fn::GetAtt": [dlq_id, "Arn"]}}},
    }


def test_notifier_is_subscribed_with_a_subscription_dead_letter_queue(dev: Template) -> None:
    function_id, _ = _one(dev, "AWS::Lambda::Function")
    topic_id, _ = _one(dev, "AWS::SNS::Topic")
    dlq_id, _ = _one(dev, "AWS::SQS::Queue", "SubscriptionDeadLetters")
    dev.has_resource_properties(
        "AWS::SNS::Subscription",
        {
            "Protocol": "lambda",
            "TopicArn": {"Ref": topic_id},
            "Endpoint": {"Fn::GetAtt": [function_id, "Arn"]},
            "RedrivePolicy": {"deadLetterTargetArn": {"Fn::GetAtt": [dlq_id, "Arn"]}},
        },
    )
    dev.has_resource_properties(
        "AWS::Lambda::Permission",
        {"Principal": "sns.amazonaws.com", "SourceArn": {"Ref": topic_id}},
    )


def test_notifier_role_is_least_privilege(dev: Template) -> None:
    _, role = _one(dev, "AWS::IAM::Role")
    assert "ManagedPolicyArns" not in role["Properties"]
    _, policy = _one(dev, "AWS::IAM::Policy")
    statements = {s["Sid"]: s for s in policy["Properties"]["PolicyDocument"]["Statement"]}
    for statement in statements.values():
        assert all("*" not in action for action in _as_list(statement["Action"])), statement
    assert statements["ReadSlackWebhook"]["Action"] == "secretsmanager:GetSecretValue"
    assert resolve(statements["ReadSlackWebhook"]["Resource"], {}) == (
        "arn:aws:secretsmanager:ap-northeast-1:123456789012:secret:forecast/dev/slack-webhook-??????"
    )
    assert sorted(_as_list(statements["ReadPipelineExecutions"]["Action"])) == sorted(
        NOTIFIER_SAGEMAKER_ACTIONS
    )
    assert resolve(statements["ReadPipelineExecutions"]["Resource"], {}) == (
        "arn:aws:sagemaker:ap-northeast-1:123456789012:pipeline/forecast-dev-daily/execution/*"
    )
    log_group_id, _ = _one(dev, "AWS::Logs::LogGroup")
    assert statements["WriteOwnLogs"]["Resource"] == {"Fn::GetAtt": [log_group_id, "Arn"]}
    dlq_id, _ = _one(dev, "AWS::SQS::Queue", "NotifierDeadLetters")
    assert statements["SendFailedInvocations"]["Resource"] == {"Fn::GetAtt": [dlq_id, "Arn"]}
    runs = "arn:aws:s3:::forecast-dev-data-123456789012-ap-northeast-1/runs/*"
    assert sorted(resolve(r, {}) for r in statements["ReadRunDataQuality"]["Resource"]) == [
        f"{runs}/postproc/accuracy.json",
        f"{runs}/preproc/data_quality.json",
    ]
    assert statements["ReadRunDataQuality"]["Action"] == "s3:GetObject"
    decrypt = statements["DecryptRunDataQuality"]
    assert decrypt["Action"] == "kms:Decrypt"
    assert decrypt["Condition"] == {
        "ForAnyValue:StringEquals": {"kms:ResourceAliases": "alias/forecast-dev-data"},
        "StringEquals": {"kms:ViaService": "s3.ap-northeast-1.amazonaws.com"},
    }
    assert set(statements) == {
        "WriteOwnLogs",
        "ReadSlackWebhook",
        "ReadPipelineExecutions",
        "SendFailedInvocations",
        "EncryptFailedInvocations",
        "ReadRunDataQuality",
        "DecryptRunDataQuality",
    }


def test_notifier_logs_to_its_own_group_with_retention(dev: Template) -> None:
    log_group_id, log_group = _one(dev, "AWS::Logs::LogGroup")
    assert log_group["Properties"]["RetentionInDays"] == 90
    dev.has_resource_properties(
        "AWS::Lambda::Function", {"LoggingConfig": {"LogGroup": {"Ref": log_group_id}}}
    )


def test_notifier_asset_leaves_out_the_example_renderer(dev_stacks: dict[str, cdk.Stack]) -> None:
    assembly = cdk.Stage.of(dev_stacks["monitoring"]).synth()
    manifest = json.loads(
        (Path(assembly.directory) / "Forecast-dev-Monitoring.assets.json").read_text()
    )
    (source,) = [
        Path(assembly.directory) / f["source"]["path"]
        for f in manifest["files"].values()
        if f["source"].get("packaging") == "zip"
    ]
    names = {path.name for path in source.rglob("*")}
    assert "handler.py" in names
    assert "render_example.py" not in names
    assert "__pycache__" not in names


# -- alarms ---------------------------------------------------------------------------------


def test_every_dead_letter_queue_has_an_alarm(prod: Template) -> None:
    alarms = _alarms(prod)
    queues = {
        props["Dimensions"][0]["Value"]: props
        for props in alarms.values()
        if props["MetricName"] == "ApproximateNumberOfMessagesVisible"
    }
    assert sorted(queues) == [
        "forecast-prod-alerts-rules-dlq",
        "forecast-prod-alerts-subscription-dlq",
        "forecast-prod-schedule-dlq",  # the pipeline stack's schedule DLQ, by name
        "forecast-prod-slack-notifier-dlq",
    ]
    for props in queues.values():
        assert props["Namespace"] == "AWS/SQS"
        assert props["Dimensions"][0]["Name"] == "QueueName"
        assert props["Statistic"] == "Maximum"
        assert props["ComparisonOperator"] == "GreaterThanThreshold"
        assert props["Threshold"] == 0


def test_notifier_errors_and_failed_rule_deliveries_have_alarms(prod: Template) -> None:
    alarms = _alarms(prod)
    function_id, _ = _one(prod, "AWS::Lambda::Function")
    errors = alarms["forecast-prod-slack-notifier-errors"]
    assert errors["MetricName"] == "Errors"
    assert errors["Namespace"] == "AWS/Lambda"
    assert errors["Dimensions"] == [{"Name": "FunctionName", "Value": {"Ref": function_id}}]
    assert errors["Statistic"] == "Sum"

    failed = [p for p in alarms.values() if p["MetricName"] == "FailedInvocations"]
    assert sorted(p["Dimensions"][0]["Value"]["Ref"] for p in failed) == sorted(
        prod.find_resources("AWS::Events::Rule")
    )
    assert all(p["Namespace"] == "AWS/Events" and p["Threshold"] == 0 for p in failed)


def test_every_alarm_notifies_the_alerts_topic(prod: Template) -> None:
    topic_id, _ = _one(prod, "AWS::SNS::Topic")
    policy_id, _ = _one(prod, "AWS::SNS::TopicPolicy")
    alarms = prod.find_resources("AWS::CloudWatch::Alarm")
    assert len(alarms) == 8
    for alarm in alarms.values():
        assert alarm["Properties"]["AlarmActions"] == [{"Ref": topic_id}]
        assert alarm["Properties"]["OKActions"] == [{"Ref": topic_id}]
        # Created after the topic policy, so that a first ALARM can already be published.
        assert policy_id in alarm["DependsOn"]


def test_dead_mans_switch_watches_the_success_metric_over_a_day_plus_the_deadline(
    prod: Template,
) -> None:
    switch = _alarms(prod)["forecast-prod-no-successful-execution"]
    assert switch["Namespace"] == "AWS/Sagemaker/ModelBuildingPipeline"
    assert switch["MetricName"] == "ExecutionSucceeded"
    assert switch["Dimensions"] == [{"Name": "PipelineName", "Value": "forecast-prod-daily"}]
    assert switch["Statistic"] == "Sum"
    assert switch["Period"] == 3600
    assert switch["EvaluationPeriods"] == 30 == switch["DatapointsToAlarm"]
    assert switch["ComparisonOperator"] == "LessThanThreshold"
    assert switch["Threshold"] == 1
    assert switch["TreatMissingData"] == "breaching"


def test_dead_mans_switch_window_follows_the_configured_deadline(
    prod_with_email: Template,
) -> None:
    switch = _alarms(prod_with_email)["forecast-prod-no-successful-execution"]
    assert switch["EvaluationPeriods"] == 27 == switch["DatapointsToAlarm"]
    assert dead_man_window_hours(environment("prod")) == 30


def test_the_first_prod_deploy_has_no_dead_mans_switch_to_go_off_before_any_run() -> None:
    """cdk.json's prod ships with the schedule off: no run could have succeeded yet, and an
    alarm on silence would fire the moment it is created."""
    first_deploy = Template.from_stack(synth_stacks(environment("prod"))["monitoring"])
    assert "forecast-prod-no-successful-execution" not in _alarms(first_deploy)


def test_no_dead_mans_switch_where_the_schedule_is_off(dev: Template) -> None:
    assert environment("dev").schedule.enabled is False
    assert "forecast-dev-no-successful-execution" not in _alarms(dev)
    assert len(_alarms(dev)) == 7


def test_email_subscription_only_when_configured(
    dev: Template, prod: Template, prod_with_email: Template
) -> None:
    for template in (dev, prod):
        assert not [
            s
            for s in template.find_resources("AWS::SNS::Subscription").values()
            if s["Properties"]["Protocol"] == "email"
        ]
    topic_id, _ = _one(prod_with_email, "AWS::SNS::Topic")
    prod_with_email.has_resource_properties(
        "AWS::SNS::Subscription",
        {"Protocol": "email", "Endpoint": PROD_EMAIL, "TopicArn": {"Ref": topic_id}},
    )


# -- the operations dashboard -----------------------------------------------------------------


def _dashboard(template: Template) -> dict[str, Any]:
    (dashboard,) = template.find_resources("AWS::CloudWatch::Dashboard").values()
    assert dashboard["Properties"]["DashboardName"] == "forecast-prod-operations"
    return json.loads(resolve(dashboard["Properties"]["DashboardBody"], {}))


def _widget(body: dict[str, Any], title: str) -> dict[str, Any]:
    (widget,) = [w for w in body["widgets"] if w["properties"].get("title") == title]
    return widget["properties"]


def _series(widget: dict[str, Any]) -> list[tuple[str, str, dict[str, str], dict[str, Any]]]:
    """(namespace, metric, dimensions, options) of each line, CloudWatch's array form read."""
    found = []
    for line in widget["metrics"]:
        *names, options = line if isinstance(line[-1], dict) else (*line, {})
        namespace, metric, *pairs = names
        found.append((namespace, metric, dict(zip(pairs[::2], pairs[1::2], strict=True)), options))
    return found


def test_the_dashboard_shows_executions_per_day_and_their_duration(prod: Template) -> None:
    body = _dashboard(prod)
    pipeline = {"PipelineName": "forecast-prod-daily"}
    executions = _series(_widget(body, "Executions per day"))
    assert [(m, o["stat"], o["period"]) for _, m, _, o in executions] == [
        ("ExecutionSucceeded", "Sum", 86400),
        ("ExecutionFailed", "Sum", 86400),
        ("ExecutionStopped", "Sum", 86400),
    ]
    assert {(n, tuple(d.items())) for n, _, d, _ in executions} == {
        ("AWS/Sagemaker/ModelBuildingPipeline", tuple(pipeline.items()))
    }
    durations = _series(_widget(body, "Execution duration per day (ms)"))
    assert {m for _, m, _, _ in durations} == {"ExecutionDuration"}


def test_the_dashboard_shows_each_steps_duration(prod: Template) -> None:
    steps = _series(_widget(_dashboard(prod), "Step duration per day (ms, longest)"))
    assert [d for _, m, d, _ in steps if m == "StepDuration"] == [
        {"PipelineName": "forecast-prod-daily", "StepName": step}
        for step in ("Extract", "PreProc", "Train", "TrainEvaluation", "Predict", "PostProc")
    ]


def test_the_dashboard_shows_the_gates_figures_from_the_roles_namespace(
    prod: Template,
) -> None:
    body = _dashboard(prod)
    gate = _widget(body, "Quality gate: backtest figures")
    assert [(n, m) for n, m, _, _ in _series(gate)] == [
        ("Forecast/forecast-prod-daily", "GateMASE"),
        ("Forecast/forecast-prod-daily", "GateRelativeMASE"),
        ("Forecast/forecast-prod-daily", "GateLargestSeriesRelativeMASE"),
    ]
    config = environment("prod").pipeline
    assert [a["value"] for a in gate["annotations"]["horizontal"]] == [
        config.max_mase,
        config.max_relative_mase,
        config.max_series_relative_mase,
    ]
    size = _series(_widget(body, "Series and gate outcome"))
    assert [m for _, m, _, _ in size] == ["SeriesCount", "GatePassed"]
    coverage = _series(_widget(body, "Interval coverage"))
    assert [m for _, m, _, _ in coverage] == ["GateCoverage"]


def test_the_dashboard_shows_notifier_errors_and_every_dead_letter_queue(prod: Template) -> None:
    body = _dashboard(prod)
    (errors,) = _series(_widget(body, "Slack notifier errors per hour"))
    assert errors[:2] == ("AWS/Lambda", "Errors") and errors[3]["stat"] == "Sum"
    depth = _series(_widget(body, "Dead-letter queues: messages waiting"))
    assert {
        d["QueueName"] for _, m, d, _ in depth if m == "ApproximateNumberOfMessagesVisible"
    } == {
        "forecast-prod-schedule-dlq",
        "forecast-prod-alerts-rules-dlq",
        "forecast-prod-slack-notifier-dlq",
        "forecast-prod-alerts-subscription-dlq",
    }
