"""A small resolver of CloudFormation intrinsics, for tests that need a synthesized value as the
deployed resource would see it (with made-up names for what CloudFormation would fill in)."""

from __future__ import annotations

import re
from typing import Any

from aws_cdk.assertions import Template

FAKE_ACCOUNT = "123456789012"


_ARN_FORMATS = {
    "AWS::IAM::Role": "arn:aws:iam::{account}:role/{name}",
    "AWS::SQS::Queue": "arn:aws:sqs:{region}:{account}:{name}",
    "AWS::KMS::Key": "arn:aws:kms:{region}:{account}:key/{name}",
    "AWS::Lambda::Function": "arn:aws:lambda:{region}:{account}:function:{name}",
}
"""How an `Fn::GetAtt [X, Arn]` looks for a resource of these types; others get a generic ARN."""


def resolve(
    node: Any,
    refs: dict[str, str],
    region: str = "ap-northeast-1",
    types: dict[str, str] | None = None,
    exports: dict[str, str] | None = None,
) -> Any:
    """Resolve Ref, Fn::GetAtt, Fn::Join, Fn::Sub and Fn::ImportValue; `refs` names resources
    by logical id (a missing one becomes `<logical id>-resolved`), `types` gives their resource
    types where an ARN's shape matters, `exports` the values other stacks export by name."""
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
                arn = _ARN_FORMATS.get((types or {}).get(logical_id, ""))
                if arn:
                    return arn.format(region=region, account=FAKE_ACCOUNT, name=name(logical_id))
                return f"arn:aws:service:{region}:{FAKE_ACCOUNT}:{name(logical_id)}"
            return f"{name(logical_id)}-{attribute.lower()}"
        if "Fn::Join" in value:
            delimiter, items = value["Fn::Join"]
            return delimiter.join(str(visit(item)) for item in items)
        if "Fn::Sub" in value:
            return re.sub(r"\$\{([^}]+)\}", lambda m: name(m.group(1)), value["Fn::Sub"])
        if "Fn::ImportValue" in value:
            export = visit(value["Fn::ImportValue"])
            return (exports or {}).get(export) or f"import-{export}".lower()
        return {key: visit(item) for key, item in value.items()}

    return visit(node)


def exported_values(template: Template, region: str = "ap-northeast-1") -> dict[str, str]:
    """The stack's exports by name, resolved: what another stack's Fn::ImportValue receives."""
    types = resource_types(template)
    outputs = template.to_json().get("Outputs", {})
    return {
        resolve(output["Export"]["Name"], {}, region): resolve(output["Value"], {}, region, types)
        for output in outputs.values()
        if "Export" in output
    }


def resource_types(template: Template) -> dict[str, str]:
    resources = template.to_json().get("Resources", {})
    return {logical_id: resource["Type"] for logical_id, resource in resources.items()}


def deployed_pipeline_properties(template: Template) -> dict[str, Any]:
    """The AWS::SageMaker::Pipeline's properties as CloudFormation passes them, tokens resolved."""
    (pipeline,) = template.find_resources("AWS::SageMaker::Pipeline").values()
    return resolve(pipeline["Properties"], {}, types=resource_types(template))


def deployed_definition_body(template: Template) -> str:
    """The pipeline's definition JSON as SageMaker receives it, tokens resolved."""
    properties = deployed_pipeline_properties(template)
    return properties["PipelineDefinition"]["PipelineDefinitionBody"]
