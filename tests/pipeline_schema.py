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
    """Std:Join and Std:JsonGet as argument values, as the SDK writes them."""
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
                "properties": {"PropertyFile": value, "Path": {"type": "string"}},
                "required": ["PropertyFile", "Path"],
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
    values (it defines a Join but references it nowhere), a processing step's `PropertyFiles`
    (what JsonGet reads), `AppManaged` on processing inputs/outputs, and a retry policy's
    `ExceptionType` as a list (the API's form). Everything else is validated as published.
    """
    schema = copy.deepcopy(schema)
    definitions = schema["definitions"]
    for kind in ("String", "Integer", "Float", "Boolean"):
        definitions[f"{kind}ArgumentValue"]["oneOf"].extend(_argument_functions())
    definitions["ProcessingStep"]["properties"]["PropertyFiles"] = {
        "type": "array",
        "items": {
            "type": "object",
            "properties": {
                "PropertyFileName": {"type": "string"},
                "OutputName": {"type": "string"},
                "FilePath": {"type": "string"},
            },
            "required": ["PropertyFileName", "OutputName", "FilePath"],
            "additionalProperties": False,
        },
    }
    processing = definitions["ProcessingArgs"]["properties"]
    processing["ProcessingInputs"]["items"]["properties"]["AppManaged"] = {"type": "boolean"}
    outputs = processing["ProcessingOutputConfig"]["properties"]["Outputs"]
    outputs["items"]["properties"]["AppManaged"] = {"type": "boolean"}
    exception_type = definitions["RetryPolicy"]["properties"]["ExceptionType"]
    definitions["RetryPolicy"]["properties"]["ExceptionType"] = {
        "type": "array",
        "items": exception_type,
        "minItems": 1,
    }
    return schema
