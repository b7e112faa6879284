"""The six step functions of `pipeline.compute: lambda`: one container-image Lambda function per
step, from the very image the training jobs run (`PipelineStack.image`), each with a role of its
own that holds the step code's data permissions (`stacks.pipeline_role.StepDataAccess`) and may
write to its own log group, and nothing else.

The image has no ENTRYPOINT of its own (a training job names its command); each function sets
Lambda's Python runtime interface client as the entry point and the image's handler
(`pipeline_code.lambda_handler.handle`) as the command, which runs the step's module with the
step's arguments exactly as its job would.

The roles hold no ECR permission: Lambda pulls a function's image itself, with the repository
policy's grant to the Lambda service, which the CDK bootstrap's asset repository carries
(`LambdaECRImageRetrievalPolicy`; https://docs.aws.amazon.com/lambda/latest/dg/images-create.html,
https://docs.aws.amazon.com/lambda/latest/dg/configuration-images.html#configuration-images-permissions).
"""

from __future__ import annotations

from collections.abc import Mapping

import aws_cdk as cdk
from aws_cdk import aws_ecr_assets as ecr_assets
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_logs as logs
from constructs import Construct

from pipeline_code import lambda_handler
from stacks.config import EnvironmentConfig
from stacks.data_stack import DataStack
from stacks.nag import acknowledge_wildcard_resources
from stacks.pipeline_definition import STEP_MODULES, metrics_namespace
from stacks.pipeline_role import StepDataAccess
from stacks.python_function import LOG_RETENTION, depend_only_on, role_writing_to

# The job image is built for linux/amd64 (the training instances' architecture); the functions
# run the same image, so they run on x86_64 too.
ARCHITECTURE = lambda_.Architecture.X86_64
# The image's own statement of how a function starts (`pipeline_code.lambda_handler`).
ENTRYPOINT = list(lambda_handler.LAMBDA_ENTRYPOINT)
HANDLER = lambda_handler.HANDLER
EPHEMERAL_STORAGE_MIB = 1024
"""/tmp of each function. The steps keep their tables in memory and write only to the run folder
in S3, so /tmp holds no data: only what libraries cache under HOME and any temporary file they
spill. Twice Lambda's 512 MB default leaves room for that at a negligible price, and a fixed size
keeps a run's cost independent of the data."""
ENVIRONMENT: Mapping[str, str] = {
    # The step's output reaches the function's log as it is written, as in a job's log.
    "PYTHONUNBUFFERED": "1",
    # The image's filesystem is read-only under Lambda except /tmp; libraries that cache under
    # the home directory write there. (Lambda sets AWS_REGION itself: a reserved key.)
    "HOME": "/tmp",
}
FUNCTION_NAME_MAX = 64
"""Lambda's limit on a function name (https://docs.aws.amazon.com/lambda/latest/dg/API_CreateFunction.html)."""


def function_name(config: EnvironmentConfig, module: str) -> str:
    """`forecast-<env>-step-<module>`: the environment's step function for one step module."""
    name = config.resource_name(f"step-{module}")
    if len(name) > FUNCTION_NAME_MAX:
        raise ValueError(f"{name}: longer than Lambda's {FUNCTION_NAME_MAX}-character limit")
    return name


class StepLambdas(Construct):
    """One function per step, by step module (`functions["extract"]`, ...)."""

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        config: EnvironmentConfig,
        data: DataStack,
        bucket_name: str,
        image: ecr_assets.DockerImageAsset,
    ) -> None:
        super().__init__(scope, construct_id)
        self._config = config
        self._image = image
        self._data_access = StepDataAccess(self, data=data, bucket_name=bucket_name)
        self.functions: dict[str, lambda_.DockerImageFunction] = {
            module: self._function(step, module) for step, module in STEP_MODULES.items()
        }

    def _function(self, step: str, module: str) -> lambda_.DockerImageFunction:
        config = self._config
        name = function_name(config, module)
        log_group = logs.LogGroup(
            self,
            f"{step}Logs",
            # Lambda's own naming, so that an operator (or a message linking to a failed step's
            # log) finds the group from the function's name.
            log_group_name=f"/aws/lambda/{name}",
            retention=LOG_RETENTION,
            removal_policy=cdk.RemovalPolicy.DESTROY,
        )
        role = role_writing_to(
            self,
            f"{step}Role",
            f"Runs the forecast pipeline's {step} step; nothing else",
            log_group,
        )
        statements = [
            *self._data_access.statements(),
            # TrainEvaluation publishes the gate's figures; no instance metrics here.
            StepDataAccess.metrics_statement(
                "PublishGateMetrics", [metrics_namespace(config.pipeline_name)]
            ),
        ]
        for statement in statements:
            role.add_to_policy(statement)
        policy = role.node.find_child("DefaultPolicy")
        acknowledge_wildcard_resources(
            policy,
            [r for statement in statements for r in statement.resources if "*" in r],
            "Wildcards stop at object keys under the pipeline's own bucket prefixes, and"
            " cloudwatch:PutMetricData (namespace-conditioned), which has no resource-level"
            " permission.",
        )
        function = lambda_.DockerImageFunction(
            self,
            step,
            function_name=name,
            description=(
                f"{config.pipeline_name} {step}: python -m pipeline_code.steps.{module} in the"
                " job image"
            ),
            code=lambda_.DockerImageCode.from_ecr(
                self._image.repository,
                tag_or_digest=self._image.image_tag,
                entrypoint=ENTRYPOINT,
                cmd=[HANDLER],
            ),
            architecture=ARCHITECTURE,
            memory_size=config.pipeline.lambda_memory_mb,
            timeout=cdk.Duration.seconds(config.pipeline.lambda_timeout_seconds),
            ephemeral_storage_size=cdk.Size.mebibytes(EPHEMERAL_STORAGE_MIB),
            environment=dict(ENVIRONMENT),
            role=role,
            log_group=log_group,
            # The Lambda step waits for the function (a synchronous invocation): its error goes
            # back to the step, so there is no asynchronous retry or dead-letter queue to set.
            # No reserved concurrency: each execution runs one step at a time, and a new
            # account's concurrency quota leaves nothing to reserve.
        )
        depend_only_on(function, [policy])
        return function
