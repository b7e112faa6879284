"""The public JSON schema of SageMaker pipeline definitions (beside the clone, in ../shared),
and the few constructs it lacks that the SDK writes and the service accepts."""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

SCHEMA_PATH = (
    Path(__file__).resolve().parents[1].parent
    / "shared"
    / "aws-samples"
    / "schema"
    / "pipeline-definition.schema.json"
)


def _argument_functions() -> list[dict[str, Any]]:
    """Std:Join and Std:JsonGet (of a JSON file by S3 URI) as argument values, as the SDK writes
    them."""
    value = {"$ref": "#/definitions/StringArgumentValue"}
    join = {
        "type": "object",
        "properties": {
            "Std:Join": {
                "type": "object",
                "properties": {"On": {"type": "string"}, "Values": {"type": "array"}},
                "required": ["On", "Values"],
                "additionalProperties": False,
            }
        },
        "required": ["Std:Join"],
        "additionalProperties": False,
    }
    json_get = {
        "type": "object",
        "properties": {
            "Std:JsonGet": {
                "type": "object",
                "properties": {"S3Uri": value, "Path": {"type": "string"}},
                "required": ["S3Uri", "Path"],
                "additionalProperties": False,
            }
        },
        "required": ["Std:JsonGet"],
        "additionalProperties": False,
    }
    return [join, json_get]


def extended_schema(schema: dict[str, Any]) -> dict[str, Any]:
    """The published schema plus exactly the constructs it lacks and the SDK and service use.

    The schema (last changed 2025-04) predates or omits: `Std:Join`/`Std:JsonGet` as argument
    values (it defines a Join but references it nowhere), a training job's `ContainerEntrypoint`
    and `ContainerArguments`, `Environment`, `ProfilerConfig` and the warm pool's
    `ResourceConfig.KeepAlivePeriodInSeconds` (all CreateTrainingJob members, which
    tests/infra/test_api_contract.py checks against the API model), and a retry policy's
    `ExceptionType` as a list (the API's form), and a Lambda step among a condition's branch
    steps (AWS's own example runs one there: aws/amazon-sagemaker-examples,
    sagemaker-pipelines/tabular/lambda-step/sagemaker-pipelines-lambda-step.ipynb,
    `if_steps=[step_create_model, step_deploy_lambda]`). Everything else is validated as
    published; a Lambda step itself is validated as the schema defines it.
    """
    schema = copy.deepcopy(schema)
    definitions = schema["definitions"]
    string = {"$ref": "#/definitions/StringArgumentValue"}
    strings = {"type": "array", "items": string, "minItems": 1}
    for kind in ("String", "Integer", "Float", "Boolean"):
        definitions[f"{kind}ArgumentValue"]["oneOf"].extend(_argument_functions())
    training = definitions["TrainingStep"]["properties"]["Arguments"]["properties"]
    algorithm = training["AlgorithmSpecification"]["properties"]
    algorithm["ContainerEntrypoint"] = strings
    algorithm["ContainerArguments"] = strings
    training["ResourceConfig"]["properties"]["KeepAlivePeriodInSeconds"] = {
        "$ref": "#/definitions/IntegerArgumentValue"
    }
    training["Environment"] = {"type": "object", "additionalProperties": string}
    training["ProfilerConfig"] = {
        "type": "object",
        "properties": {"DisableProfiler": {"type": "boolean"}},
        "additionalProperties": False,
    }
    condition = definitions["ConditionStep"]["properties"]["Arguments"]["properties"]
    for branch in ("IfSteps", "ElseSteps"):
        condition[branch]["items"]["oneOf"].append({"$ref": "#/definitions/LambdaStep"})
    exception_type = definitions["RetryPolicy"]["properties"]["ExceptionType"]
    definitions["RetryPolicy"]["properties"]["ExceptionType"] = {
        "type": "array",
        "items": exception_type,
        "minItems": 1,
    }
    return schema
