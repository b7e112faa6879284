"""Pipeline stack: the step code asset, the least-privilege SageMaker role, the SageMaker
Pipeline built from `pipeline_code.definition`, and the daily Scheduler schedule that starts it."""

from __future__ import annotations

import json
from pathlib import Path

import aws_cdk as cdk
from aws_cdk import aws_iam as iam
from aws_cdk import aws_s3_assets as s3_assets
from aws_cdk import aws_sagemaker as sagemaker
from aws_cdk import aws_scheduler as scheduler
from aws_cdk import aws_sqs as sqs
from constructs import Construct

from pipeline_code import definition as pipeline_definition
from pipeline_code import tables
from stacks.config import EnvironmentConfig
from stacks.data_stack import ATHENA_RESULTS_PREFIX, RUNS_PREFIX, DataStack
from stacks.nag import acknowledge, acknowledge_wildcard_resources

REPO = Path(__file__).resolve().parents[1]
SKLEARN_IMAGE_VERSION = "1.4-2"
# What the jobs never run: the definition builder, the local runner, operator tools, caches.
ASSET_EXCLUDES = [
    "local",
    "definition.py",
    "rerun.py",
    "Dockerfile",
    "**/__pycache__",
    ".ruff_cache",
    "ruff.toml",
    "*.pyc",
    "README.md",
]


def default_image_uri(region: str, instance_type: str) -> str:
    """The region's prebuilt SageMaker scikit-learn image (Python 3.10), from the SDK's tables."""
    from sagemaker import image_uris

    return image_uris.retrieve(
        "sklearn", region=region, version=SKLEARN_IMAGE_VERSION, instance_type=instance_type
    )


def definition_settings(config: EnvironmentConfig) -> pipeline_definition.DefinitionSettings:
    pipeline = config.pipeline
    return pipeline_definition.DefinitionSettings(
        pipeline_name=config.pipeline_name,
        timezone=config.schedule.timezone,
        lookback_days=pipeline.lookback_days,
        horizon_days=pipeline.horizon_days,
        max_mase=pipeline.max_mase,
        max_relative_mase=pipeline.max_relative_mase,
        interval_level=pipeline.interval_level,
        backtest_folds=pipeline.backtest_folds,
        instance_type=pipeline.instance_type,
        image_uri=pipeline.image_uri,
        install_requirements=pipeline.image_uri is None,
        source_timezone=pipeline.source_timezone,
        max_missing_days=pipeline.max_missing_days,
        missing_days_window=pipeline.missing_days_window,
        outlier_threshold=pipeline.outlier_threshold,
        gate_largest_series=pipeline.gate_largest_series,
        max_series_relative_mase=pipeline.max_series_relative_mase,
    )


class PipelineStack(cdk.Stack):
    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        config: EnvironmentConfig,
        data: DataStack,
        **kwargs: object,
    ) -> None:
        super().__init__(scope, construct_id, **kwargs)
        self.config = config
        self.data = data
        self.bucket_name = config.data_bucket_name(self.account)
        self.image_uri = config.pipeline.image_uri or default_image_uri(
            config.region, config.pipeline.instance_type
        )
        self.code = s3_assets.Asset(
            self, "StepCode", path=str(REPO / "pipeline_code"), exclude=ASSET_EXCLUDES
        )
        self.pipeline_arn = self.format_arn(
            service="sagemaker", resource="pipeline", resource_name=config.pipeline_name
        )
        self.role = self._pipeline_role()
        self.definition_body = self._definition_body()
        self.pipeline = sagemaker.CfnPipeline(
            self,
            "Pipeline",
            pipeline_name=config.pipeline_name,
            pipeline_display_name=config.pipeline_name,
            pipeline_description=(
                f"Daily demand forecast ({config.name}): extract, train, gate, predict, publish"
            ),
            role_arn=self.role.role_arn,
            pipeline_definition={"PipelineDefinitionBody": self.definition_body},
        )
        # The jobs need the role's policy, which CloudFormation would otherwise attach later.
        self.pipeline.node.add_dependency(self.role.node.find_child("DefaultPolicy"))
        self.schedule = DailySchedule(
            self, "Schedule", config=config, pipeline_arn=self.pipeline_arn, data=data
        )
        cdk.CfnOutput(self, "PipelineName", value=config.pipeline_name)

    def _definition_body(self) -> str:
        built = pipeline_definition.build_definition(definition_settings(self.config))
        # Compact: the body is stored in the template and counts towards its size limit.
        body = json.dumps(json.loads(built), separators=(",", ":"))
        return pipeline_definition.substitute_placeholders(
            body,
            {
                "role_arn": self.role.role_arn,
                "image_uri": self.image_uri,
                "code_uri": self.code.s3_object_url,
                "data_bucket": self.bucket_name,
                "glue_database": self.data.database_name,
                "athena_workgroup": self.data.workgroup.name or "",
            },
        )

    def _pipeline_role(self) -> iam.Role:
        """One role for the pipeline (it starts the jobs) and the jobs (they do the work)."""
        role = iam.Role(
            self,
            "PipelineRole",
            role_name=self.config.resource_name("pipeline"),
            assumed_by=iam.ServicePrincipal("sagemaker.amazonaws.com"),
            description="Runs the forecast pipeline's processing jobs; nothing else",
        )
        statements = self._role_statements(role)
        for statement in statements:
            role.add_to_policy(statement)
        acknowledge_wildcard_resources(
            role.node.find_child("DefaultPolicy"),
            [r for statement in statements for r in statement.resources if "*" in r],
            "Wildcards stop at object keys under the pipeline's own bucket prefixes, the"
            " processing jobs SageMaker Pipelines names 'pipelines-*' per execution, their log"
            " streams, and ecr:GetAuthorizationToken, which has no resource-level permission.",
        )
        return role

    def _role_statements(self, role: iam.Role) -> list[iam.PolicyStatement]:
        return [
            *self._bucket_statements(),
            self._code_statement(),
            self._key_statement(),
            self._athena_statement(),
            self._glue_statement(),
            self._roll_back_statement(),
            *self._log_statements(),
            *self._image_statements(),
            *self._job_statements(role),
        ]

    def _bucket_objects(self, prefix: str) -> str:
        return f"arn:{self.partition}:s3:::{self.bucket_name}/{prefix}*"

    def _bucket_statements(self) -> list[iam.PolicyStatement]:
        read_only = [f"{tables.APPLICATIONS.name}/"]
        read_write = [
            RUNS_PREFIX,
            ATHENA_RESULTS_PREFIX,
            f"{tables.FORECASTS.name}/",
            f"{tables.FORECAST_METRICS.name}/",
        ]
        return [
            iam.PolicyStatement(
                sid="ListOwnPrefixes",
                actions=["s3:ListBucket", "s3:GetBucketLocation"],
                resources=[f"arn:{self.partition}:s3:::{self.bucket_name}"],
            ),
            iam.PolicyStatement(
                sid="ReadSource",
                actions=["s3:GetObject"],
                resources=[self._bucket_objects(prefix) for prefix in read_only],
            ),
            iam.PolicyStatement(
                sid="ReadWriteRunsResultsAndPublishedTables",
                actions=[
                    "s3:GetObject",
                    "s3:PutObject",
                    "s3:DeleteObject",
                    "s3:AbortMultipartUpload",
                    "s3:ListMultipartUploadParts",
                ],
                resources=[self._bucket_objects(prefix) for prefix in read_write],
            ),
        ]

    def _code_statement(self) -> iam.PolicyStatement:
        return iam.PolicyStatement(
            sid="ReadStepCode",
            actions=["s3:GetObject"],
            resources=[self.code.bucket.arn_for_objects(self.code.s3_object_key)],
        )

    def _key_statement(self) -> iam.PolicyStatement:
        return iam.PolicyStatement(
            sid="UseDataKey",
            actions=["kms:Decrypt", "kms:Encrypt", "kms:GenerateDataKey", "kms:DescribeKey"],
            resources=[self.data.key.key_arn],
        )

    def _athena_statement(self) -> iam.PolicyStatement:
        workgroup = self.format_arn(
            service="athena", resource="workgroup", resource_name=self.data.workgroup.name
        )
        return iam.PolicyStatement(
            sid="QueryInOwnWorkgroup",
            actions=[
                "athena:StartQueryExecution",
                "athena:GetQueryExecution",
                "athena:GetQueryResults",
                "athena:StopQueryExecution",
                "athena:GetWorkGroup",
            ],
            resources=[workgroup],
        )

    def _glue_statement(self) -> iam.PolicyStatement:
        database = self.data.database_name
        return iam.PolicyStatement(
            sid="ReadSourceAndManagePublishedPartitions",
            actions=[
                "glue:GetDatabase",
                "glue:GetTable",
                "glue:GetPartition",
                "glue:GetPartitions",
                "glue:BatchGetPartition",
                "glue:CreatePartition",
                "glue:UpdatePartition",
                "glue:BatchCreatePartition",
            ],
            resources=[
                self.format_arn(service="glue", resource="catalog"),
                self.format_arn(service="glue", resource="database", resource_name=database),
                *(
                    self.format_arn(
                        service="glue", resource="table", resource_name=f"{database}/{table.name}"
                    )
                    for table in tables.ALL_TABLES
                ),
            ],
        )

    def _roll_back_statement(self) -> iam.PolicyStatement:
        """PostProc deletes a partition it created when the other table's switch fails (the date
        had none before): only on the two published tables. Glue authorises a partition action
        on the catalog and the database as well as the table."""
        database = self.data.database_name
        return iam.PolicyStatement(
            sid="RollBackPublishedPartitions",
            actions=["glue:DeletePartition"],
            resources=[
                self.format_arn(service="glue", resource="catalog"),
                self.format_arn(service="glue", resource="database", resource_name=database),
                *(
                    self.format_arn(
                        service="glue", resource="table", resource_name=f"{database}/{table.name}"
                    )
                    for table in (tables.FORECASTS, tables.FORECAST_METRICS)
                ),
            ],
        )

    def _log_statements(self) -> list[iam.PolicyStatement]:
        group = self.format_arn(
            service="logs",
            resource="log-group",
            resource_name="/aws/sagemaker/ProcessingJobs",
            arn_format=cdk.ArnFormat.COLON_RESOURCE_NAME,
        )
        return [
            iam.PolicyStatement(
                sid="WriteJobLogs",
                actions=[
                    "logs:CreateLogGroup",
                    "logs:CreateLogStream",
                    "logs:PutLogEvents",
                    "logs:DescribeLogStreams",
                ],
                resources=[group, f"{group}:log-stream:pipelines-*"],
            )
        ]

    def _image_statements(self) -> list[iam.PolicyStatement]:
        registry, _, repository_and_tag = self.image_uri.partition("/")
        account, _, _, region = registry.split(".")[:4]
        repository = repository_and_tag.split(":")[0].split("@")[0]
        return [
            iam.PolicyStatement(
                sid="PullJobImage",
                actions=[
                    "ecr:BatchGetImage",
                    "ecr:GetDownloadUrlForLayer",
                    "ecr:BatchCheckLayerAvailability",
                ],
                resources=[
                    cdk.Arn.format(
                        cdk.ArnComponents(
                            service="ecr",
                            account=account,
                            region=region,
                            resource="repository",
                            resource_name=repository,
                        ),
                        self,
                    )
                ],
            ),
            iam.PolicyStatement(
                sid="EcrLogin",
                actions=["ecr:GetAuthorizationToken"],
                resources=["*"],
            ),
        ]

    def _job_statements(self, role: iam.Role) -> list[iam.PolicyStatement]:
        jobs = self.format_arn(
            service="sagemaker", resource="processing-job", resource_name="pipelines-*"
        )
        return [
            iam.PolicyStatement(
                sid="RunProcessingJobs",
                actions=[
                    "sagemaker:CreateProcessingJob",
                    "sagemaker:DescribeProcessingJob",
                    "sagemaker:StopProcessingJob",
                    "sagemaker:AddTags",
                ],
                resources=[jobs],
            ),
            iam.PolicyStatement(
                sid="PassOwnRoleToJobs",
                actions=["iam:PassRole"],
                resources=[role.role_arn],
                conditions={"StringEquals": {"iam:PassedToService": "sagemaker.amazonaws.com"}},
            ),
        ]


class DailySchedule(Construct):
    """EventBridge Scheduler cron (with time zone) starting the pipeline; its scheduled time
    becomes `ExecutionDate`, from which every step derives the same data day."""

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        config: EnvironmentConfig,
        pipeline_arn: str,
        data: DataStack,
    ) -> None:
        super().__init__(scope, construct_id)
        self.dead_letter_queue = sqs.Queue(
            self,
            "DeadLetterQueue",
            queue_name=config.resource_name("schedule-dlq"),
            encryption=sqs.QueueEncryption.KMS,
            encryption_master_key=data.key,
            enforce_ssl=True,
            retention_period=cdk.Duration.days(14),
        )
        acknowledge(
            self.dead_letter_queue,
            "AwsSolutions-SQS3",
            "This queue is the schedule target's dead-letter queue; it needs none of its own.",
        )
        role = iam.Role(
            self,
            "Role",
            assumed_by=iam.ServicePrincipal(
                "scheduler.amazonaws.com",
                conditions={"StringEquals": {"aws:SourceAccount": cdk.Stack.of(self).account}},
            ),
            description="Lets EventBridge Scheduler start the forecast pipeline",
        )
        role.add_to_policy(
            iam.PolicyStatement(
                actions=["sagemaker:StartPipelineExecution"], resources=[pipeline_arn]
            )
        )
        role.add_to_policy(
            iam.PolicyStatement(
                actions=["sqs:SendMessage"], resources=[self.dead_letter_queue.queue_arn]
            )
        )
        role.add_to_policy(
            iam.PolicyStatement(
                actions=["kms:GenerateDataKey", "kms:Decrypt"], resources=[data.key.key_arn]
            )
        )
        self.schedule = scheduler.CfnSchedule(
            self,
            "Schedule",
            name=config.resource_name("daily"),
            description=f"Starts {config.pipeline_name} every day",
            schedule_expression=config.schedule.cron,
            schedule_expression_timezone=config.schedule.timezone,
            state="ENABLED" if config.schedule.enabled else "DISABLED",
            flexible_time_window=scheduler.CfnSchedule.FlexibleTimeWindowProperty(mode="OFF"),
            target=scheduler.CfnSchedule.TargetProperty(
                arn="arn:aws:scheduler:::aws-sdk:sagemaker:startPipelineExecution",
                role_arn=role.role_arn,
                input=json.dumps(start_execution_input(config.pipeline_name)),
                retry_policy=scheduler.CfnSchedule.RetryPolicyProperty(
                    maximum_event_age_in_seconds=6 * 3600, maximum_retry_attempts=10
                ),
                dead_letter_config=scheduler.CfnSchedule.DeadLetterConfigProperty(
                    arn=self.dead_letter_queue.queue_arn
                ),
            ),
        )


def start_execution_input(pipeline_name: str) -> dict[str, object]:
    """The StartPipelineExecution request the schedule sends. Scheduler fills the
    `<aws.scheduler.*>` context attributes at each invocation; the execution id makes the
    request idempotent, so a retried invocation never starts a second execution."""
    return {
        "PipelineName": pipeline_name,
        "PipelineExecutionDescription": "Scheduled daily run",
        "PipelineParameters": [
            {"Name": "ExecutionDate", "Value": "<aws.scheduler.scheduled-time>"},
        ],
        "ClientRequestToken": "<aws.scheduler.execution-id>",
    }
