"""Pipeline stack: the job image (built by `cdk deploy` from `pipeline_code/Dockerfile`), the
least-privilege SageMaker role, the SageMaker Pipeline built from `stacks.pipeline_definition`, and
the daily schedule that starts it (`stacks.daily_schedule`)."""

from __future__ import annotations

import json
from pathlib import Path

import aws_cdk as cdk
from aws_cdk import aws_ecr_assets as ecr_assets
from aws_cdk import aws_iam as iam
from aws_cdk import aws_sagemaker as sagemaker
from constructs import Construct

from pipeline_code import tables
from stacks import pipeline_definition
from stacks.config import EnvironmentConfig
from stacks.daily_schedule import DailySchedule
from stacks.data_stack import ATHENA_RESULTS_PREFIX, RUNS_PREFIX, DataStack
from stacks.nag import acknowledge_wildcard_resources

REPO = Path(__file__).resolve().parents[1]
JOB_IMAGE_CONTEXT = REPO / "pipeline_code"
"""The Docker build context of the job image: the job package, with its Dockerfile."""


def definition_settings(config: EnvironmentConfig) -> pipeline_definition.DefinitionSettings:
    """The definition's settings from the environment: every `pipeline.*` key under its own name
    (a key the definition does not know fails here), plus the schedule's zone and the calendar."""
    return pipeline_definition.DefinitionSettings(
        pipeline_name=config.pipeline_name,
        timezone=config.schedule.timezone,
        holiday_country=config.calendar.holiday_country,
        calendar_breaks=config.calendar.breaks,
        company_days=config.calendar.company_day_arguments,
        **config.pipeline.model_dump(),
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
        self.image = ecr_assets.DockerImageAsset(
            self,
            "JobImage",
            directory=str(JOB_IMAGE_CONTEXT),
            # SageMaker's ml.* instances of the configured families are x86_64.
            platform=ecr_assets.Platform.LINUX_AMD64,
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
        self.schedule = DailySchedule(self, "Schedule", config=config, key=data.key)
        cdk.CfnOutput(self, "PipelineName", value=config.pipeline_name)

    def _definition_body(self) -> str:
        built = pipeline_definition.build_definition(definition_settings(self.config))
        # Compact: the body is stored in the template and counts towards its size limit.
        body = json.dumps(json.loads(built), separators=(",", ":"))
        return pipeline_definition.substitute_placeholders(
            body,
            {
                "role_arn": self.role.role_arn,
                "image_uri": self.image.image_uri,
                "region": self.region,
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
            description="Runs the forecast pipeline's step jobs; nothing else",
        )
        statements = self._role_statements(role)
        for statement in statements:
            role.add_to_policy(statement)
        acknowledge_wildcard_resources(
            role.node.find_child("DefaultPolicy"),
            [r for statement in statements for r in statement.resources if "*" in r],
            "Wildcards stop at object keys under the pipeline's own bucket prefixes, the"
            " training jobs SageMaker Pipelines names 'pipelines-*' per execution, the log"
            " streams of the jobs' own log group, and ecr:GetAuthorizationToken and"
            " cloudwatch:PutMetricData (namespace-conditioned), which have no resource-level"
            " permission.",
        )
        return role

    def _role_statements(self, role: iam.Role) -> list[iam.PolicyStatement]:
        return [
            *self._bucket_statements(),
            self._key_statement(),
            self._athena_statement(),
            self._glue_statement(),
            self._drop_versions_statement(),
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
            *(f"{tables.versions_of(table).name}/" for table in tables.PUBLISHED_TABLES),
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
                sid="ReadWriteRunsResultsAndStoredVersions",
                actions=[
                    "s3:GetObject",
                    "s3:PutObject",
                    "s3:DeleteObject",
                    "s3:AbortMultipartUpload",
                    "s3:ListMultipartUploadParts",
                ],
                resources=[self._bucket_objects(prefix) for prefix in read_write],
            ),
            iam.PolicyStatement(
                # Replaced, never deleted: the row readers of both published views go by.
                sid="ReadAndReplacePublications",
                actions=["s3:GetObject", "s3:PutObject"],
                resources=[self._bucket_objects(f"{tables.PUBLICATIONS.name}/")],
            ),
        ]

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

    def _glue_resources(self, stored: tuple[tables.Table, ...]) -> list[str]:
        """Glue authorises a table or partition action on the catalog and the database as well
        as the table."""
        database = self.data.database_name
        return [
            self.format_arn(service="glue", resource="catalog"),
            self.format_arn(service="glue", resource="database", resource_name=database),
            *(
                self.format_arn(
                    service="glue", resource="table", resource_name=f"{database}/{table.name}"
                )
                for table in stored
            ),
        ]

    def _glue_statement(self) -> iam.PolicyStatement:
        return iam.PolicyStatement(
            sid="ReadSourceAndRegisterPublishedPartitions",
            actions=[
                "glue:GetDatabase",
                "glue:GetTable",
                "glue:GetPartition",
                "glue:GetPartitions",
                "glue:BatchGetPartition",
                "glue:CreatePartition",
                "glue:BatchCreatePartition",
            ],
            resources=self._glue_resources(tables.STORED_TABLES),
        )

    def _drop_versions_statement(self) -> iam.PolicyStatement:
        """PostProc deletes the superseded versions of a date it publishes: only from the stored
        versions tables."""
        return iam.PolicyStatement(
            sid="DropSupersededVersions",
            actions=["glue:BatchDeletePartition"],
            resources=self._glue_resources(tuple(map(tables.versions_of, tables.PUBLISHED_TABLES))),
        )

    def _log_statements(self) -> list[iam.PolicyStatement]:
        group = self.format_arn(
            service="logs",
            resource="log-group",
            resource_name="/aws/sagemaker/TrainingJobs",
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
                # IAM names a log group `...:log-group:NAME:*`; the same ARN covers its streams.
                resources=[f"{group}:*"],
            )
        ]

    def _image_statements(self) -> list[iam.PolicyStatement]:
        return [
            iam.PolicyStatement(
                sid="PullJobImage",
                actions=[
                    "ecr:BatchGetImage",
                    "ecr:GetDownloadUrlForLayer",
                    "ecr:BatchCheckLayerAvailability",
                ],
                resources=[self.image.repository.repository_arn],
            ),
            iam.PolicyStatement(
                sid="EcrLogin",
                actions=["ecr:GetAuthorizationToken"],
                resources=["*"],
            ),
        ]

    def _job_statements(self, role: iam.Role) -> list[iam.PolicyStatement]:
        jobs = self.format_arn(
            service="sagemaker", resource="training-job", resource_name="pipelines-*"
        )
        return [
            iam.PolicyStatement(
                sid="RunStepJobs",
                actions=[
                    "sagemaker:CreateTrainingJob",
                    "sagemaker:DescribeTrainingJob",
                    "sagemaker:StopTrainingJob",
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
            # Training jobs publish their instance metrics; the action has no resource-level
            # permission, so the namespace condition is what scopes it.
            iam.PolicyStatement(
                sid="PublishJobMetrics",
                actions=["cloudwatch:PutMetricData"],
                resources=["*"],
                conditions={
                    "StringEquals": {"cloudwatch:namespace": "/aws/sagemaker/TrainingJobs"}
                },
            ),
        ]
