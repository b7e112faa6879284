"""Pipeline stack, the wiring of four parts: the job image (built by `cdk deploy` from
`pipeline_code/Dockerfile`), the least-privilege role (`stacks.pipeline_role`), the SageMaker
Pipeline built from `stacks.pipeline_definition`, and the daily schedule that starts it
(`stacks.daily_schedule`). With `pipeline.compute: lambda`, a fifth: the six step functions from
the same image (`stacks.step_lambdas`), which the definition's Lambda steps invoke."""

from __future__ import annotations

import json
from pathlib import Path

import aws_cdk as cdk
from aws_cdk import aws_ecr_assets as ecr_assets
from aws_cdk import aws_sagemaker as sagemaker
from constructs import Construct

from stacks import pipeline_definition
from stacks.config import EnvironmentConfig
from stacks.daily_schedule import DailySchedule
from stacks.data_stack import DataStack
from stacks.pipeline_role import PipelineRole
from stacks.step_lambdas import StepLambdas

REPO = Path(__file__).resolve().parents[1]
JOB_IMAGE_CONTEXT = REPO / "pipeline_code"
"""The Docker build context of the job image: the job package, with its Dockerfile."""


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
        self.step_lambdas = (
            StepLambdas(
                self,
                "StepLambdas",
                config=config,
                data=data,
                bucket_name=self.bucket_name,
                image=self.image,
            )
            if config.pipeline.compute == "lambda"
            else None
        )
        self.role = PipelineRole(
            self,
            "PipelineRole",
            config=config,
            data=data,
            bucket_name=self.bucket_name,
            image_repository_arn=self.image.repository.repository_arn,
            step_function_arns=list(self._functions_by_module().values()),
        )
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

    def _functions_by_module(self) -> dict[str, str]:
        """The step functions' ARNs by step module; none with compute training."""
        if self.step_lambdas is None:
            return {}
        return {
            module: function.function_arn
            for module, function in self.step_lambdas.functions.items()
        }

    def _definition_body(self) -> str:
        built = pipeline_definition.build_definition(
            pipeline_definition.environment_settings(self.config)
        )
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
                **{
                    f"function_{module}": arn for module, arn in self._functions_by_module().items()
                },
            },
        )
