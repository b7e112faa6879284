"""The pipeline's role and the step code's data permissions, built once for every role that runs
the steps.

`StepDataAccess` holds what the step code itself needs of the data (bucket prefixes, the data key,
the Athena workgroup, the Glue tables, PutMetricData in the environment's namespace), wherever it
runs. With `pipeline.compute: training` the pipeline role is both the role SageMaker Pipelines
assumes and the role of the jobs it starts, so it holds those statements and the jobs' own needs
(image, logs, training jobs). With `pipeline.compute: lambda` each step function has its own role
with the same data statements (`stacks.step_lambdas`), and the pipeline role may only invoke
those six functions and read the gate's evaluation file.

Every AWS call the steps make is checked against these policies in
`tests/infra/test_iam_coverage.py`; what SageMaker itself does with the pipeline role is listed,
with its documentation, in `docs/iam.md`.
"""

from __future__ import annotations

from collections.abc import Sequence

import aws_cdk as cdk
from aws_cdk import aws_iam as iam
from constructs import Construct

from pipeline_code import run_folder, tables
from stacks.config import EnvironmentConfig
from stacks.data_stack import ATHENA_RESULTS_PREFIX, RUNS_PREFIX, DataStack
from stacks.nag import acknowledge_wildcard_resources
from stacks.pipeline_definition import metrics_namespace

JOB_METRICS_NAMESPACE = "/aws/sagemaker/TrainingJobs"
"""Where SageMaker training jobs put their instance metrics, with the job's role."""


class StepDataAccess:
    """The step code's permissions on the environment's data, as fresh statements for each role
    that runs the steps (a statement belongs to one policy)."""

    def __init__(self, scope: Construct, *, data: DataStack, bucket_name: str) -> None:
        self._stack = cdk.Stack.of(scope)
        self._data = data
        self._bucket_name = bucket_name

    def statements(self) -> list[iam.PolicyStatement]:
        """Everything but PutMetricData, whose namespaces differ by role (`metrics_statement`)."""
        return [
            *self._bucket_statements(),
            self._key_statement(),
            self._athena_statement(),
            self._glue_statement(),
            self._drop_versions_statement(),
        ]

    @staticmethod
    def metrics_statement(sid: str, namespaces: Sequence[str]) -> iam.PolicyStatement:
        """PutMetricData has no resource-level permission, so the namespace condition is what
        scopes it."""
        return iam.PolicyStatement(
            sid=sid,
            actions=["cloudwatch:PutMetricData"],
            resources=["*"],
            conditions={"StringEquals": {"cloudwatch:namespace": list(namespaces)}},
        )

    def evaluation_read_statements(self) -> list[iam.PolicyStatement]:
        """Reading one execution's evaluation.json through S3, as the gate's JsonGet does."""
        evaluation = run_folder.relative(run_folder.EVALUATION)
        return [
            iam.PolicyStatement(
                sid="ReadGateEvaluation",
                actions=["s3:GetObject"],
                resources=[
                    f"arn:{self._stack.partition}:s3:::{self._bucket_name}/{RUNS_PREFIX}*/{evaluation}"
                ],
            ),
            iam.PolicyStatement(
                sid="DecryptGateEvaluation",
                actions=["kms:Decrypt"],
                resources=[self._data.key.key_arn],
            ),
        ]

    def _bucket_objects(self, prefix: str) -> str:
        return f"arn:{self._stack.partition}:s3:::{self._bucket_name}/{prefix}*"

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
                resources=[f"arn:{self._stack.partition}:s3:::{self._bucket_name}"],
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
                # Replaced, never deleted: the row readers of both published views go by, and
                # each execution's run_history row (TrainEvaluation writes it, PostProc
                # replaces it).
                sid="ReadAndReplacePublicationsAndRunHistory",
                actions=["s3:GetObject", "s3:PutObject"],
                resources=[
                    self._bucket_objects(f"{tables.PUBLICATIONS.name}/"),
                    self._bucket_objects(f"{tables.RUN_HISTORY.name}/"),
                ],
            ),
        ]

    def _key_statement(self) -> iam.PolicyStatement:
        return iam.PolicyStatement(
            sid="UseDataKey",
            actions=["kms:Decrypt", "kms:Encrypt", "kms:GenerateDataKey", "kms:DescribeKey"],
            resources=[self._data.key.key_arn],
        )

    def _athena_statement(self) -> iam.PolicyStatement:
        workgroup = self._stack.format_arn(
            service="athena", resource="workgroup", resource_name=self._data.workgroup.name
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
        database = self._data.database_name
        return [
            self._stack.format_arn(service="glue", resource="catalog"),
            self._stack.format_arn(service="glue", resource="database", resource_name=database),
            *(
                self._stack.format_arn(
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


class PipelineRole(iam.Role):
    """The role SageMaker Pipelines assumes. With compute `training` the jobs run with it too;
    with compute `lambda` (`step_function_arns` given) it invokes those functions only."""

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        config: EnvironmentConfig,
        data: DataStack,
        bucket_name: str,
        image_repository_arn: str,
        step_function_arns: Sequence[str] = (),
    ) -> None:
        invokes_functions = config.pipeline.compute == "lambda"
        if invokes_functions != bool(step_function_arns):
            raise ValueError(
                f"PipelineRole: compute {config.pipeline.compute} needs"
                f" {'the step functions ARNs' if invokes_functions else 'no step functions'}"
            )
        super().__init__(
            scope,
            construct_id,
            role_name=config.resource_name("pipeline"),
            assumed_by=iam.ServicePrincipal("sagemaker.amazonaws.com"),
            description=(
                "Invokes the forecast pipeline's step functions and reads the gate's evaluation;"
                " nothing else"
                if invokes_functions
                else "Runs the forecast pipeline's step jobs; nothing else"
            ),
        )
        self._stack = cdk.Stack.of(self)
        self._data_access = StepDataAccess(self, data=data, bucket_name=bucket_name)
        self._image_repository_arn = image_repository_arn
        self._metric_namespaces = [
            JOB_METRICS_NAMESPACE,
            metrics_namespace(config.pipeline_name),
        ]
        statements = (
            self._invoke_statements(step_function_arns)
            if invokes_functions
            else self._job_role_statements()
        )
        for statement in statements:
            self.add_to_policy(statement)
        acknowledge_wildcard_resources(
            self.node.find_child("DefaultPolicy"),
            [r for statement in statements for r in statement.resources if "*" in r],
            "Wildcards stop at one file of each execution's run folder (the gate's"
            " evaluation.json), which SageMaker reads for the gate."
            if invokes_functions
            else "Wildcards stop at object keys under the pipeline's own bucket prefixes, the"
            " training jobs SageMaker Pipelines names 'pipelines-*' per execution, the log"
            " streams of the jobs' own log group, and ecr:GetAuthorizationToken and"
            " cloudwatch:PutMetricData (namespace-conditioned), which have no resource-level"
            " permission.",
        )

    def _invoke_statements(self, function_arns: Sequence[str]) -> list[iam.PolicyStatement]:
        """What SageMaker Pipelines does with the role when every step is a Lambda step: invoke
        the step's function, and read evaluation.json for the gate (docs/iam.md)."""
        return [
            iam.PolicyStatement(
                sid="InvokeStepLambdas",
                actions=["lambda:InvokeFunction"],
                resources=list(function_arns),
            ),
            *self._data_access.evaluation_read_statements(),
        ]

    def _job_role_statements(self) -> list[iam.PolicyStatement]:
        return [
            *self._data_access.statements(),
            *self._log_statements(),
            *self._image_statements(),
            *self._job_statements(),
        ]

    def _log_statements(self) -> list[iam.PolicyStatement]:
        group = self._stack.format_arn(
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
                resources=[self._image_repository_arn],
            ),
            iam.PolicyStatement(
                sid="EcrLogin",
                actions=["ecr:GetAuthorizationToken"],
                resources=["*"],
            ),
        ]

    def _job_statements(self) -> list[iam.PolicyStatement]:
        jobs = self._stack.format_arn(
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
                resources=[self.role_arn],
                conditions={"StringEquals": {"iam:PassedToService": "sagemaker.amazonaws.com"}},
            ),
            # Training jobs publish their instance metrics, and TrainEvaluation the gate's
            # figures to the environment's own namespace.
            StepDataAccess.metrics_statement("PublishJobAndGateMetrics", self._metric_namespaces),
        ]
