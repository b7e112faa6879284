"""A small resolver of CloudFormation intrinsics, for tests that need a synthesized value as the
deployed resource would see it (with made-up names for what CloudFormation would fill in)."""

from __future__ import annotations

import re
from typing import Any

from aws_cdk.assertions import Template

FAKE_ACCOUNT = "123456789012"


def resolve(node: Any, refs: dict[str, str], region: str = "ap-northeast-1") -> Any:
    """Resolve Ref, Fn::GetAtt, Fn::Join, Fn::Sub and Fn::ImportValue; `refs` names resources
    by logical id (a missing one becomes `<logical id>-resolved`)."""
    pseudo = {
        "AWS::AccountId": FAKE_ACCOUNT,
        "AWS::Region": region,
        "AWS::Partition": "aws",
        "AWS::URLSuffix": "amazonaws.com",
    }

    def name(ref: str) -> str:
        return pseudo.get(ref) or refs.get(ref) or f"{ref.lower()}-resolved"

    def visit(value: Any) -> Any:
        if isinstance(value, list):
            return [visit(item) for item in value]
        if not isinstance(value, dict):
            return value
        if "Ref" in value:
            return name(value["Ref"])
        if "Fn::GetAtt" in value:
            logical_id, attribute = value["Fn::GetAtt"]
            if attribute == "Arn":
                return f"arn:aws:service:{region}:{FAKE_ACCOUNT}:{name(logical_id)}"
            return f"{name(logical_id)}-{attribute.lower()}"
        if "Fn::Join" in value:
            delimiter, items = value["Fn::Join"]
            return delimiter.join(str(visit(item)) for item in items)
        if "Fn::Sub" in value:
            return re.sub(r"\$\{([^}]+)\}", lambda m: name(m.group(1)), value["Fn::Sub"])
        if "Fn::ImportValue" in value:
            return f"import-{visit(value['Fn::ImportValue'])}".lower()
        return {key: visit(item) for key, item in value.items()}

    return visit(node)


def deployed_definition_body(template: Template) -> str:
    """The pipeline's definition JSON as SageMaker receives it, tokens resolved."""
    (pipeline,) = template.find_resources("AWS::SageMaker::Pipeline").values()
    return resolve(pipeline["Properties"]["PipelineDefinition"]["PipelineDefinitionBody"], {})
