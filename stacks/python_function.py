"""The one way this project deploys a Lambda function (`PythonFunction`): the newest Python runtime
the pinned CDK knows, on arm64, handler `handler.lambda_handler`, Lambda's built-in JSON logging
(the code logs with the standard `logging` module), a log group of its own, and a role that may
write only there (instead of the managed AWSLambdaBasicExecutionRole, whose log permissions cover
every log group)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path

import aws_cdk as cdk
from aws_cdk import aws_iam as iam
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_logs as logs
from aws_cdk import aws_sqs as sqs
from constructs import Construct, IConstruct

# Python 3.14 is the newest runtime aws-cdk-lib 2.275 knows, which cdk-nag's AwsSolutions-L1
# asks for; the functions use its standard library and the boto3 it provides.
RUNTIME = lambda_.Runtime.PYTHON_3_14
ARCHITECTURE = lambda_.Architecture.ARM_64
HANDLER = "handler.lambda_handler"
LOG_RETENTION = logs.RetentionDays.THREE_MONTHS
MEMORY_MB = 256
EXCLUDES = ("__pycache__", "*.pyc")


class PythonFunction(lambda_.Function):
    """A function from one folder under lambda/ (its `handler.py` defines `lambda_handler`).

    The role `<prefix>Role` and the log group `<prefix>Logs` are created beside the function, in
    the same scope (`prefix`: `id_prefix`, by default the function's id). The role may write to
    that log group, and do what `statements` allow; nothing else.
    """

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        code_dir: Path,
        description: str,
        role_description: str,
        timeout: cdk.Duration,
        environment: Mapping[str, str],
        statements: Sequence[iam.PolicyStatement] = (),
        exclude: Sequence[str] = (),
        reserved_concurrent_executions: int | None = None,
        retry_attempts: int | None = None,
        dead_letter_queue: sqs.IQueue | None = None,
        id_prefix: str | None = None,
    ) -> None:
        prefix = id_prefix or construct_id
        log_group = logs.LogGroup(
            scope,
            f"{prefix}Logs",
            retention=LOG_RETENTION,
            removal_policy=cdk.RemovalPolicy.DESTROY,
        )
        role = role_writing_to(scope, f"{prefix}Role", role_description, log_group)
        for statement in statements:
            role.add_to_policy(statement)
        super().__init__(
            scope,
            construct_id,
            description=description,
            runtime=RUNTIME,
            architecture=ARCHITECTURE,
            handler=HANDLER,
            code=lambda_.Code.from_asset(str(code_dir), exclude=[*EXCLUDES, *exclude]),
            timeout=timeout,
            memory_size=MEMORY_MB,
            role=role,
            log_group=log_group,
            logging_format=lambda_.LoggingFormat.JSON,
            application_log_level_v2=lambda_.ApplicationLogLevel.INFO,
            environment=dict(environment),
            reserved_concurrent_executions=reserved_concurrent_executions,
            retry_attempts=retry_attempts,
            dead_letter_queue=dead_letter_queue,
        )
        self.function_role = role

    @property
    def default_policy(self) -> IConstruct:
        """The role's inline policy, which holds every `add_to_policy` statement."""
        return self.function_role.node.find_child("DefaultPolicy")

    def depend_only_on_policies(self, extra_policies: Sequence[IConstruct] = ()) -> None:
        """Make the function wait for the policies its first invocation needs, and drop its
        DependsOn on the role: the role's GetAtt already orders that (cfn-lint W3005), while a
        separate iam.Policy would otherwise not be waited for."""
        depend_only_on(self, [self.default_policy, *extra_policies])


def depend_only_on(function: lambda_.Function, policies: Sequence[IConstruct]) -> None:
    """Set the function's DependsOn to exactly these policies (see `depend_only_on_policies`)."""
    cfn_function = function.node.default_child
    assert isinstance(cfn_function, cdk.CfnResource)
    stack = cdk.Stack.of(function)
    logical_ids = []
    for policy in policies:
        cfn_policy = policy.node.default_child
        assert isinstance(cfn_policy, cdk.CfnResource)
        logical_ids.append(stack.get_logical_id(cfn_policy))
    cfn_function.add_override("DependsOn", logical_ids)


def role_writing_to(
    scope: Construct, construct_id: str, description: str, log_group: logs.ILogGroup
) -> iam.Role:
    role = iam.Role(
        scope,
        construct_id,
        assumed_by=iam.ServicePrincipal("lambda.amazonaws.com"),
        description=description,
    )
    role.add_to_policy(
        iam.PolicyStatement(
            sid="WriteOwnLogs",
            actions=["logs:CreateLogStream", "logs:PutLogEvents"],
            resources=[log_group.log_group_arn],
        )
    )
    return role
