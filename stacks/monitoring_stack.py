"""Monitoring stack: pipeline events and alarms go to one encrypted SNS topic, which feeds the
Slack notifier (and, when configured, an e-mail address).

    SageMaker events --(2 rules, this pipeline only)--> alerts topic --> Slack notifier --> Slack
    CloudWatch alarms ----------------------------------^           \\--> e-mail (optional)

Every hop that can drop a message has a dead-letter queue, and every dead-letter queue has an
alarm on the same topic. Alarm windows are explained in docs/monitoring.md.

The stack also draws the operators' CloudWatch dashboard (`forecast-<env>-operations`,
`stacks/operations_dashboard.py`).
"""

from __future__ import annotations

from pathlib import Path

import aws_cdk as cdk
import jsii
from aws_cdk import aws_cloudwatch as cloudwatch
from aws_cdk import aws_cloudwatch_actions as cloudwatch_actions
from aws_cdk import aws_events as events
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kms as kms
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_secretsmanager as secretsmanager
from aws_cdk import aws_sns as sns
from aws_cdk import aws_sns_subscriptions as subscriptions
from aws_cdk import aws_sqs as sqs
from constructs import Construct

from pipeline_code import run_folder
from stacks.config import EnvironmentConfig
from stacks.data_stack import DataStack
from stacks.dead_letter_queue import dead_letter_queue
from stacks.nag import acknowledge_wildcard_resources
from stacks.operations_dashboard import PIPELINE_METRICS_NAMESPACE, operations_dashboard
from stacks.pipeline_events import (
    execution_status_pattern,
    pipeline_arn,
    step_status_pattern,
)
from stacks.pipeline_stack import PipelineStack
from stacks.python_function import PythonFunction

REPO = Path(__file__).resolve().parents[1]
NOTIFIER_CODE = REPO / "lambda" / "slack_notifier"
# render_example.py renders the README's sample message; the function never imports it.
NOTIFIER_EXCLUDES = ["render_example.py"]
# Slack retries (slack_webhook.RetryPolicy) take at most about 45 s, SageMaker reads a few more.
NOTIFIER_TIMEOUT = cdk.Duration.seconds(90)
NOTIFIER_RETRY_ATTEMPTS = 2

# How long EventBridge keeps retrying delivery to the topic before the dead-letter queue.
TARGET_MAX_EVENT_AGE = cdk.Duration.hours(6)
TARGET_RETRY_ATTEMPTS = 20
# Period of the "something went wrong" alarms: SQS reports queue depth every five minutes.
FAST_ALARM_PERIOD = cdk.Duration.minutes(5)

# KMS actions a service needs to write to (and SNS to deliver from) a KMS-encrypted topic or
# queue: a data key to encrypt with, and Decrypt to read it back.
SERVICE_KEY_ACTIONS = ["kms:GenerateDataKey", "kms:Decrypt"]
NOTIFIER_SAGEMAKER_ACTIONS = [
    "sagemaker:DescribePipelineExecution",
    "sagemaker:ListPipelineExecutionSteps",
    "sagemaker:ListPipelineParametersForExecution",
]


def notify_statuses(config: EnvironmentConfig) -> list[str]:
    """Execution statuses that reach the topic (and that the notifier posts)."""
    statuses = ["Failed", "Stopped"]
    if config.monitoring.notify_on_success:
        statuses.append("Succeeded")
    return statuses


def forwarded_statuses(config: EnvironmentConfig) -> list[str]:
    """Execution statuses the rule sends to the topic: the posted ones, and Succeeded always, so
    the notifier can post a success that had data-quality warnings (it drops the others)."""
    statuses = notify_statuses(config)
    return statuses if "Succeeded" in statuses else [*statuses, "Succeeded"]


def dead_man_window_hours(config: EnvironmentConfig) -> int:
    """Hours without a successful execution after which the dead-man's switch goes off.

    A day's run may succeed as late as `success_deadline_hours` after its scheduled time, and the
    previous day's as early as its scheduled time, so two on-time successes are at most
    24 + deadline hours apart: a shorter window would go off on healthy days.
    """
    return 24 + config.monitoring.success_deadline_hours


class MonitoringStack(cdk.Stack):
    """Rules, alerts topic, Slack notifier and alarms of one environment's pipeline."""

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        config: EnvironmentConfig,
        data: DataStack,
        pipeline: PipelineStack,
        **kwargs: object,
    ) -> None:
        super().__init__(scope, construct_id, **kwargs)
        self.config = config
        # Names, not tokens, cross from the other stacks; the dependencies order deploys. The
        # alerts have a key of their own (see _alerts_key), so nothing else is read from `data`.
        self.add_stack_dependency(data)
        self.add_stack_dependency(pipeline)
        self.pipeline_name = config.pipeline_name
        self.data_bucket = config.data_bucket_name(self.account)
        self.pipeline_arn = pipeline_arn(self, self.pipeline_name)
        self.alerts_key = self._alerts_key()
        self.alerts_topic = self._alerts_topic()
        self.target_dead_letter_queue = self._dead_letter_queue(
            "RuleTargetDeadLetters", "alerts-rules-dlq", "the rules' deliveries to the topic"
        )
        self.rules = self._rules()
        self._allow_rules_to_publish()
        self._allow_alarms_to_publish()
        self.slack_secret = secretsmanager.Secret.from_secret_name_v2(
            self, "SlackWebhookSecret", config.monitoring.slack_secret_name
        )
        self.notifier_dead_letter_queue = self._dead_letter_queue(
            "NotifierDeadLetters", "slack-notifier-dlq", "failed Slack notifier invocations"
        )
        self.subscription_dead_letter_queue = self._dead_letter_queue(
            "SubscriptionDeadLetters",
            "alerts-subscription-dlq",
            "messages SNS could not hand to the Slack notifier",
        )
        self.notifier = self._notifier()
        self.alerts_topic.add_subscription(
            subscriptions.LambdaSubscription(
                self.notifier, dead_letter_queue=self.subscription_dead_letter_queue
            )
        )
        if config.monitoring.alarm_email:
            self.alerts_topic.add_subscription(
                subscriptions.EmailSubscription(config.monitoring.alarm_email)
            )
        self.alarms = self._alarms(pipeline)
        self.dashboard = operations_dashboard(
            self,
            config=config,
            notifier=self.notifier,
            queues=[
                _queue_name(queue)
                for queue in (
                    pipeline.schedule.dead_letter_queue,
                    self.target_dead_letter_queue,
                    self.subscription_dead_letter_queue,
                    self.notifier_dead_letter_queue,
                )
            ],
        )
        cdk.CfnOutput(self, "AlertsTopicArn", value=self.alerts_topic.topic_arn)

    # -- topic and its key ---------------------------------------------------------------------

    def _alerts_key(self) -> kms.Key:
        """A key of its own: EventBridge and CloudWatch must be able to use it, which the data
        key should not allow, and the AWS-managed SNS key cannot allow at all."""
        removal = cdk.RemovalPolicy.RETAIN if self.config.retain_data else cdk.RemovalPolicy.DESTROY
        key = kms.Key(
            self,
            "AlertsKey",
            alias=f"alias/{self.config.resource_name('alerts')}",
            description=f"Encrypts the {self.config.name} forecast pipeline's alerts and their"
            " dead-letter queues",
            enable_key_rotation=True,
            removal_policy=removal,
        )
        # No aws:SourceArn condition here: the services use the key while acting for the topic
        # or a queue, and those resources' own policies are where the senders are limited.
        key.add_to_resource_policy(
            iam.PolicyStatement(
                sid="AlertSendersEncryptAndSnsDelivers",
                principals=[
                    iam.ServicePrincipal("events.amazonaws.com"),
                    iam.ServicePrincipal("cloudwatch.amazonaws.com"),
                    iam.ServicePrincipal("sns.amazonaws.com"),
                ],
                actions=SERVICE_KEY_ACTIONS,
                resources=["*"],
            )
        )
        return key

    def _alerts_topic(self) -> sns.Topic:
        return sns.Topic(
            self,
            "AlertsTopic",
            topic_name=self.config.resource_name("alerts"),
            display_name=f"Forecast pipeline alerts ({self.config.name})",
            master_key=self.alerts_key,
            enforce_ssl=True,
        )

    def _allow_rules_to_publish(self) -> None:
        self.alerts_topic.add_to_resource_policy(
            iam.PolicyStatement(
                sid="PipelineRulesPublish",
                principals=[iam.ServicePrincipal("events.amazonaws.com")],
                actions=["sns:Publish"],
                resources=[self.alerts_topic.topic_arn],
                conditions={"ArnEquals": {"aws:SourceArn": [rule.rule_arn for rule in self.rules]}},
            )
        )

    def _allow_alarms_to_publish(self) -> None:
        # A name prefix rather than each alarm's ARN: the policy then exists before the alarms,
        # so an alarm that starts in ALARM can already notify.
        self.alerts_topic.add_to_resource_policy(
            iam.PolicyStatement(
                sid="EnvironmentAlarmsPublish",
                principals=[iam.ServicePrincipal("cloudwatch.amazonaws.com")],
                actions=["sns:Publish"],
                resources=[self.alerts_topic.topic_arn],
                conditions={
                    "StringEquals": {"aws:SourceAccount": self.account},
                    "ArnLike": {"aws:SourceArn": self._alarm_arn("*")},
                },
            )
        )

    def _alarm_arn(self, suffix: str) -> str:
        return self.format_arn(
            service="cloudwatch",
            resource="alarm",
            resource_name=self.config.resource_name(suffix),
            arn_format=cdk.ArnFormat.COLON_RESOURCE_NAME,
        )

    def _dead_letter_queue(self, construct_id: str, name: str, holds: str) -> sqs.Queue:
        """Encrypted with the alerts key, named (an alarm watches each by name)."""
        return dead_letter_queue(
            self,
            construct_id,
            holds=holds,
            key=self.alerts_key,
            queue_name=self.config.resource_name(name),
        )

    # -- rules ---------------------------------------------------------------------------------

    def _rules(self) -> list[events.Rule]:
        target = _TopicTarget(self.alerts_topic, self.target_dead_letter_queue)
        execution = events.Rule(
            self,
            "ExecutionStatusRule",
            rule_name=self.config.resource_name("execution-ended"),
            description=f"{self.pipeline_name}: execution ended "
            + ", ".join(forwarded_statuses(self.config)),
            event_pattern=execution_status_pattern(
                self, self.pipeline_name, forwarded_statuses(self.config)
            ),
            targets=[target],
        )
        step = events.Rule(
            self,
            "StepFailedRule",
            rule_name=self.config.resource_name("step-failed"),
            description=f"{self.pipeline_name}: a step failed",
            event_pattern=step_status_pattern(self, self.pipeline_name, ["Failed"]),
            targets=[target],
        )
        rules = [execution, step]
        self._allow_rules_to_dead_letter(rules)
        return rules

    def _allow_rules_to_dead_letter(self, rules: list[events.Rule]) -> None:
        self.target_dead_letter_queue.add_to_resource_policy(
            iam.PolicyStatement(
                sid="PipelineRulesDeadLetter",
                principals=[iam.ServicePrincipal("events.amazonaws.com")],
                actions=["sqs:SendMessage"],
                resources=[self.target_dead_letter_queue.queue_arn],
                conditions={"ArnEquals": {"aws:SourceArn": [rule.rule_arn for rule in rules]}},
            )
        )

    # -- Slack notifier ------------------------------------------------------------------------

    def _notifier(self) -> PythonFunction:
        statements = self._notifier_statements()
        function = PythonFunction(
            self,
            "Notifier",
            code_dir=NOTIFIER_CODE,
            exclude=NOTIFIER_EXCLUDES,
            description=f"Posts {self.pipeline_name} failures and alarms to Slack",
            role_description="Posts the forecast pipeline's alerts to Slack",
            timeout=NOTIFIER_TIMEOUT,
            statements=statements,
            # Reserving caps parallel posts to Slack, but a new account has nothing to reserve.
            reserved_concurrent_executions=self.config.monitoring.notifier_reserved_concurrency,
            environment=self._notifier_environment(),
        )
        acknowledge_wildcard_resources(
            function.default_policy,
            [r for statement in statements for r in statement.resources if "*" in r],
            "Execution ARNs end in an id SageMaker assigns per run; the wildcard covers the"
            " executions of this one pipeline, which the notifier reads to describe a failure."
            " The run-folder wildcard matches only each run's data_quality.json and"
            " accuracy.json; the key wildcard"
            " is narrowed by condition to the data key's alias, used through S3.",
        )
        function.depend_only_on_policies()
        self._on_failure_to_queue(function)
        return function

    def _notifier_environment(self) -> dict[str, str]:
        config = self.config
        return {
            # The name, not the partial ARN from_secret_name_v2 builds: Secrets Manager misreads
            # a partial ARN whose name ends in a hyphen and six characters. Never the value.
            "SLACK_SECRET_ARN": config.monitoring.slack_secret_name,
            "ENVIRONMENT_NAME": config.name,
            "PIPELINE_NAME": self.pipeline_name,
            "SCHEDULE_TIMEZONE": config.schedule.timezone,
            "NOTIFY_STATUSES": ",".join(notify_statuses(config)),
            "DATA_BUCKET": self.data_bucket,
        }

    def _notifier_statements(self) -> list[iam.PolicyStatement]:
        return [
            # Secrets Manager appends "-" and six random characters to a secret's ARN;
            # "??????" matches exactly those, so no other secret's name can match.
            iam.PolicyStatement(
                sid="ReadSlackWebhook",
                actions=["secretsmanager:GetSecretValue"],
                resources=[f"{self.slack_secret.secret_arn}-??????"],
            ),
            iam.PolicyStatement(
                sid="ReadPipelineExecutions",
                actions=NOTIFIER_SAGEMAKER_ACTIONS,
                resources=[f"{self.pipeline_arn}/execution/*"],
            ),
            # Lambda sends failed invocations to the on-failure destination as this role.
            iam.PolicyStatement(
                sid="SendFailedInvocations",
                actions=["sqs:SendMessage"],
                resources=[self.notifier_dead_letter_queue.queue_arn],
            ),
            iam.PolicyStatement(
                sid="EncryptFailedInvocations",
                actions=SERVICE_KEY_ACTIONS,
                resources=[self.alerts_key.key_arn],
            ),
            *self._data_quality_statements(),
        ]

    def _data_quality_statements(self) -> list[iam.PolicyStatement]:
        """Read a run's data-quality and accuracy summaries, and nothing else of the data bucket.
        The data key is named by its alias (a name crosses stacks, not a token) and used only
        through S3."""
        runs = f"arn:{self.partition}:s3:::{self.data_bucket}/{run_folder.RUNS}/*"
        return [
            iam.PolicyStatement(
                sid="ReadRunDataQuality",
                actions=["s3:GetObject"],
                resources=[
                    f"{runs}/{run_folder.relative(run_folder.DATA_QUALITY)}",
                    f"{runs}/{run_folder.relative(run_folder.ACCURACY_SUMMARY)}",
                ],
            ),
            iam.PolicyStatement(
                sid="DecryptRunDataQuality",
                actions=["kms:Decrypt"],
                resources=[self.format_arn(service="kms", resource="key", resource_name="*")],
                conditions={
                    "ForAnyValue:StringEquals": {
                        "kms:ResourceAliases": f"alias/{self.config.resource_name('data')}"
                    },
                    "StringEquals": {"kms:ViaService": f"s3.{self.region}.amazonaws.com"},
                },
            ),
        ]

    def _on_failure_to_queue(self, function: PythonFunction) -> None:
        """Lambda retries a failed post twice, then records the event in the queue. Written as
        the L1 resource because lambda_destinations.SqsDestination would grant the role
        kms:ReEncrypt* and kms:GenerateDataKey* as well."""
        invoke_config = lambda_.CfnEventInvokeConfig(
            self,
            "NotifierAsyncInvokeConfig",
            function_name=function.function_name,
            qualifier="$LATEST",
            maximum_retry_attempts=NOTIFIER_RETRY_ATTEMPTS,
            destination_config=lambda_.CfnEventInvokeConfig.DestinationConfigProperty(
                on_failure=lambda_.CfnEventInvokeConfig.OnFailureProperty(
                    destination=self.notifier_dead_letter_queue.queue_arn
                )
            ),
        )
        # Lambda checks the role's permission on the destination when the config is created.
        invoke_config.node.add_dependency(function.default_policy)

    # -- alarms --------------------------------------------------------------------------------

    def _alarms(self, pipeline: PipelineStack) -> list[cloudwatch.Alarm]:
        schedule_queue = pipeline.schedule.dead_letter_queue
        queues = [
            ("Schedule", schedule_queue, "the schedule could not start a run"),
            (
                "RuleTarget",
                self.target_dead_letter_queue,
                "EventBridge could not deliver a pipeline event to the alerts topic",
            ),
            (
                "Subscription",
                self.subscription_dead_letter_queue,
                "SNS could not hand an alert to the Slack notifier",
            ),
            (
                "Notifier",
                self.notifier_dead_letter_queue,
                "the Slack notifier failed on an alert after its retries",
            ),
        ]
        alarms = [self._queue_alarm(label, queue, meaning) for label, queue, meaning in queues]
        alarms.append(self._notifier_errors_alarm())
        alarms.extend(self._failed_invocations_alarm(rule) for rule in self.rules)
        if self.config.schedule.enabled:
            alarms.append(self._dead_man_alarm())
        topic_policy = self.alerts_topic.node.find_child("Policy")
        action = cloudwatch_actions.SnsAction(self.alerts_topic)
        for alarm in alarms:
            alarm.add_alarm_action(action)
            alarm.add_ok_action(action)
            alarm.node.add_dependency(topic_policy)
        return alarms

    def _alarm(
        self,
        construct_id: str,
        suffix: str,
        metric: cloudwatch.Metric,
        description: str,
    ) -> cloudwatch.Alarm:
        """Goes off when one period's value is above zero; no data means nothing happened."""
        return cloudwatch.Alarm(
            self,
            construct_id,
            alarm_name=self.config.resource_name(suffix),
            alarm_description=description,
            metric=metric,
            threshold=0,
            comparison_operator=cloudwatch.ComparisonOperator.GREATER_THAN_THRESHOLD,
            evaluation_periods=1,
            treat_missing_data=cloudwatch.TreatMissingData.NOT_BREACHING,
        )

    def _queue_alarm(self, label: str, queue: sqs.Queue, meaning: str) -> cloudwatch.Alarm:
        queue_name = _queue_name(queue)
        metric = cloudwatch.Metric(
            namespace="AWS/SQS",
            metric_name="ApproximateNumberOfMessagesVisible",
            dimensions_map={"QueueName": queue_name},
            statistic=cloudwatch.Stats.MAXIMUM,
            period=FAST_ALARM_PERIOD,
        )
        return self._alarm(
            f"{label}DeadLettersAlarm",
            f"{queue_name.removeprefix(self.config.resource_name(''))}-messages",
            metric,
            f"Messages in {queue_name}: {meaning}. Read them, fix the cause, then purge the"
            " queue (see docs/monitoring.md).",
        )

    def _notifier_errors_alarm(self) -> cloudwatch.Alarm:
        return self._alarm(
            "NotifierErrorsAlarm",
            "slack-notifier-errors",
            self.notifier.metric_errors(statistic=cloudwatch.Stats.SUM, period=FAST_ALARM_PERIOD),
            "The Slack notifier failed (Slack rejected or did not answer, or the webhook secret"
            " is missing); Slack may be missing alerts. See the function's log group.",
        )

    def _failed_invocations_alarm(self, rule: events.Rule) -> cloudwatch.Alarm:
        label = rule.node.id.removesuffix("Rule")
        metric = cloudwatch.Metric(
            namespace="AWS/Events",
            metric_name="FailedInvocations",
            dimensions_map={"RuleName": rule.rule_name},
            statistic=cloudwatch.Stats.SUM,
            period=FAST_ALARM_PERIOD,
        )
        return self._alarm(
            f"{label}FailedInvocationsAlarm",
            f"{_rule_suffix(rule)}-rule-failed-invocations",
            metric,
            f"EventBridge failed to deliver events of rule {_rule_suffix(rule)} to the alerts"
            " topic; they are in the rules' dead-letter queue.",
        )

    def _dead_man_alarm(self) -> cloudwatch.Alarm:
        """No successful execution within the window (see dead_man_window_hours): the schedule
        did not fire, the run failed, or it is still running past its deadline.

        Hourly periods, all of which must be empty: one success anywhere in the window keeps the
        alarm OK. No data is breaching, because silence is exactly what this alarm looks for.
        """
        hours = dead_man_window_hours(self.config)
        metric = cloudwatch.Metric(
            namespace=PIPELINE_METRICS_NAMESPACE,
            metric_name="ExecutionSucceeded",
            dimensions_map={"PipelineName": self.pipeline_name},
            statistic=cloudwatch.Stats.SUM,
            period=cdk.Duration.hours(1),
        )
        return cloudwatch.Alarm(
            self,
            "NoSuccessfulExecutionAlarm",
            alarm_name=self.config.resource_name("no-successful-execution"),
            alarm_description=(
                f"{self.pipeline_name} has not succeeded in the last {hours} hours (one day plus"
                f" the {self.config.monitoring.success_deadline_hours} h deadline after the"
                f" {self.config.schedule.cron} {self.config.schedule.timezone} schedule)."
                " Check the schedule's dead-letter queue and the last execution; re-run the"
                " missing date."
            ),
            metric=metric,
            threshold=1,
            comparison_operator=cloudwatch.ComparisonOperator.LESS_THAN_THRESHOLD,
            evaluation_periods=hours,
            datapoints_to_alarm=hours,
            treat_missing_data=cloudwatch.TreatMissingData.BREACHING,
        )


@jsii.implements(events.IRuleTarget)
class _TopicTarget:
    """The alerts topic as a rule target, with retries and a dead-letter queue.

    events_targets.SnsTopic would also add an unconditioned sns:Publish for EventBridge to the
    topic policy; the stack writes that statement itself, limited to its own rules."""

    def __init__(self, topic: sns.ITopic, dead_letter_queue: sqs.IQueue) -> None:
        self.topic = topic
        self.dead_letter_queue = dead_letter_queue

    def bind(self, _rule: events.IRule, _id: str | None = None) -> events.RuleTargetConfig:
        return events.RuleTargetConfig(
            arn=self.topic.topic_arn,
            dead_letter_config=events.CfnRule.DeadLetterConfigProperty(
                arn=self.dead_letter_queue.queue_arn
            ),
            retry_policy=events.CfnRule.RetryPolicyProperty(
                maximum_event_age_in_seconds=int(TARGET_MAX_EVENT_AGE.to_seconds()),
                maximum_retry_attempts=TARGET_RETRY_ATTEMPTS,
            ),
        )


def _queue_name(queue: sqs.Queue) -> str:
    """The queue's configured name as a plain string, so that no export crosses stacks."""
    cfn_queue = queue.node.default_child
    assert isinstance(cfn_queue, sqs.CfnQueue)
    name = cfn_queue.queue_name
    if not name or cdk.Token.is_unresolved(name):
        raise ValueError(f"{queue.node.path}: the alarm needs a queue with a fixed name")
    return name


def _rule_suffix(rule: events.Rule) -> str:
    """The rule's configured name without the forecast-<env>- prefix."""
    cfn_rule = rule.node.default_child
    assert isinstance(cfn_rule, events.CfnRule) and cfn_rule.name
    return cfn_rule.name.split("-", 2)[2]
