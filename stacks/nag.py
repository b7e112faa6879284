"""cdk-nag's AwsSolutions pack on every stack, and the one way to acknowledge a finding."""

from __future__ import annotations

from typing import Any

import aws_cdk as cdk
from cdk_nag import AwsSolutionsChecks
from constructs import IConstruct


def enable_nag(app: cdk.App) -> None:
    """Synthesis fails on any finding that is not acknowledged with a reason."""
    cdk.Validations.of(app).add_plugins(AwsSolutionsChecks(app))


def acknowledge(scope: IConstruct, rule: str, reason: str) -> None:
    """Acknowledge one cdk-nag finding on one construct; the reason must say why it is safe."""
    cdk.Validations.of(scope).acknowledge(cdk.Acknowledgment(id=rule, reason=reason))


def acknowledge_wildcard_resources(policy: IConstruct, resources: list[str], reason: str) -> None:
    """Acknowledge AwsSolutions-IAM5 for exactly these wildcard resources of `policy`, so that
    any wildcard added later is still reported."""
    stack = cdk.Stack.of(policy)
    for resource in resources:
        finding = _flatten_reference(stack.resolve(resource))
        acknowledge(policy, f"AwsSolutions-IAM5[Resource::{finding}]", reason)


def _flatten_reference(node: Any) -> str:
    """cdk-nag's own rendering of a CloudFormation value in a finding id."""
    if isinstance(node, str):
        return node.replace("${", "<").replace("}", ">")
    if "Fn::Join" in node:
        delimiter, items = node["Fn::Join"]
        return delimiter.join(_flatten_reference(item) for item in items)
    if "Fn::Sub" in node:
        return _flatten_reference(node["Fn::Sub"])
    if "Fn::GetAtt" in node:
        resource, attribute = node["Fn::GetAtt"]
        return f"<{_flatten_reference(resource)}.{_flatten_reference(attribute)}>"
    if "Fn::ImportValue" in node:
        return _flatten_reference(node["Fn::ImportValue"])
    if "Ref" in node:
        return f"<{_flatten_reference(node['Ref'])}>"
    raise ValueError(f"cannot name a finding for {node!r}")
