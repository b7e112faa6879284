"""What every Lambda function of this project shares: the current Python runtime on arm64, a log
group of its own, and a role that may write only there (instead of the managed
AWSLambdaBasicExecutionRole, whose log permissions cover every log group)."""

from __future__ import annotations

import aws_cdk as cdk
from aws_cdk import aws_iam as iam
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_logs as logs
from constructs import Construct, IConstruct

# The newest runtime this CDK version knows, which cdk-nag's AwsSolutions-L1 asks for.
RUNTIME = lambda_.Runtime.PYTHON_3_14
ARCHITECTURE = lambda_.Architecture.ARM_64
LOG_RETENTION = logs.RetentionDays.THREE_MONTHS


def role_and_log_group(
    scope: Construct, prefix: str, description: str
) -> tuple[iam.Role, logs.LogGroup]:
    """`<prefix>Logs` and `<prefix>Role`, the role allowed to write to that log group only."""
    log_group = logs.LogGroup(
        scope,
        f"{prefix}Logs",
        retention=LOG_RETENTION,
        removal_policy=cdk.RemovalPolicy.DESTROY,
    )
    role = iam.Role(
        scope,
        f"{prefix}Role",
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
    return role, log_group


def default_policy(role: iam.IRole | None) -> IConstruct:
    assert isinstance(role, iam.Role)
    return role.node.find_child("DefaultPolicy")


def depend_only_on_policies(function: lambda_.Function, policies: list[IConstruct]) -> None:
    """Make the function wait for the policies its first invocation needs, and drop its
    DependsOn on the role: the role's GetAtt already orders that (cfn-lint W3005), while a
    separate iam.Policy would otherwise not be waited for."""
    cfn_function = function.node.default_child
    assert isinstance(cfn_function, cdk.CfnResource)
    stack = cdk.Stack.of(function)
    logical_ids = []
    for policy in policies:
        cfn_policy = policy.node.default_child
        assert isinstance(cfn_policy, cdk.CfnResource)
        logical_ids.append(stack.get_logical_id(cfn_policy))
    cfn_function.add_override("DependsOn", logical_ids)
