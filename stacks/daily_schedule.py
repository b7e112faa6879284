"""The daily start: an EventBridge Scheduler cron (with time zone) calling SageMaker's
StartPipelineExecution through Scheduler's universal target, with its own role, retry policy and
dead-letter queue. Its scheduled time becomes `ExecutionDate`, from which every step derives the
same data day."""

from __future__ import annotations

import aws_cdk as cdk
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kms as kms
from aws_cdk import aws_scheduler as scheduler
from aws_cdk import aws_scheduler_targets as targets
from constructs import Construct

from stacks.config import EnvironmentConfig
from stacks.dead_letter_queue import dead_letter_queue
from stacks.pipeline_events import pipeline_arn

SCHEDULED_TIME = scheduler.ContextAttribute.scheduled_time
"""Scheduler's context attribute for the occurrence's time, e.g. 2026-11-28T18:00:00Z (20 chars)."""
MAX_EVENT_AGE = cdk.Duration.hours(6)
RETRY_ATTEMPTS = 10
# The logical id of the schedule as first deployed (a CfnSchedule at Schedule/Schedule). Kept, so
# that an update does not replace the schedule: a replacement would be created under the same
# name before the old one is deleted, and fail.
SCHEDULE_LOGICAL_ID = "Schedule15669BF1"


def start_execution_input(pipeline_name: str) -> dict[str, object]:
    """The StartPipelineExecution request the schedule sends. Scheduler replaces the
    `<aws.scheduler.*>` context attributes at each invocation.

    The idempotency token is built from the pipeline and the scheduled time: the same for every
    retry of one occurrence (so a retried invocation never starts a second execution) and new each
    day. Scheduler's execution id cannot serve: it is 16 characters (the API wants 32-128) and new
    for every attempt. The pipeline name is cut so the token stays within 128 characters.
    """
    return {
        "PipelineName": pipeline_name,
        "PipelineExecutionDescription": "Scheduled daily run",
        "PipelineParameters": [{"Name": "ExecutionDate", "Value": SCHEDULED_TIME}],
        "ClientRequestToken": f"scheduled-{pipeline_name[:90]}-{SCHEDULED_TIME}",
    }


class DailySchedule(Construct):
    """Starts the pipeline on `config.schedule` (cron and time zone; disabled where it is off)."""

    def __init__(
        self, scope: Construct, construct_id: str, *, config: EnvironmentConfig, key: kms.IKey
    ) -> None:
        super().__init__(scope, construct_id)
        self.dead_letter_queue = dead_letter_queue(
            self,
            "DeadLetterQueue",
            holds="the schedule's start requests that failed after their retries",
            key=key,
            queue_name=config.resource_name("schedule-dlq"),
        )
        self.role = self._role()
        self.schedule = scheduler.Schedule(
            self,
            "Schedule",
            schedule_name=config.resource_name("daily"),
            description=f"Starts {config.pipeline_name} every day",
            schedule=scheduler.ScheduleExpression.expression(
                config.schedule.cron, cdk.TimeZone.of(config.schedule.timezone)
            ),
            enabled=config.schedule.enabled,
            time_window=scheduler.TimeWindow.off(),
            target=self._target(config.pipeline_name),
        )
        cfn_schedule = self.schedule.node.default_child
        assert isinstance(cfn_schedule, scheduler.CfnSchedule)
        cfn_schedule.override_logical_id(SCHEDULE_LOGICAL_ID)
        # The target granted the start and the dead-letter queue; the queue's key is ours to add.
        self.role.add_to_policy(
            iam.PolicyStatement(
                actions=["kms:GenerateDataKey", "kms:Decrypt"], resources=[key.key_arn]
            )
        )

    def _role(self) -> iam.Role:
        """Assumable by Scheduler for this account only (the target adds its permissions)."""
        return iam.Role(
            self,
            "Role",
            assumed_by=iam.ServicePrincipal(
                "scheduler.amazonaws.com",
                conditions={"StringEquals": {"aws:SourceAccount": cdk.Stack.of(self).account}},
            ),
            description="Lets EventBridge Scheduler start the forecast pipeline",
        )

    def _target(self, pipeline_name: str) -> targets.Universal:
        stack = cdk.Stack.of(self)
        return targets.Universal(
            service="sagemaker",
            action="startPipelineExecution",
            input=scheduler.ScheduleTargetInput.from_object(start_execution_input(pipeline_name)),
            role=self.role,
            # Only this pipeline (the default would be every resource of the action).
            policy_statements=[
                iam.PolicyStatement(
                    actions=["sagemaker:StartPipelineExecution"],
                    resources=[pipeline_arn(stack, pipeline_name)],
                )
            ],
            dead_letter_queue=self.dead_letter_queue,
            max_event_age=MAX_EVENT_AGE,
            retry_attempts=RETRY_ATTEMPTS,
        )
