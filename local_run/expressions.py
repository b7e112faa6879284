"""The definition's expression language, evaluated locally: Get, Std:Join, Std:JsonGet, conditions.

Values follow the pipeline service's rules as far as a local run needs them:

- `{"Get": "Parameters.<name>"}`: the execution's parameter value (typed: str, int, float, bool).
- `{"Get": "Execution.<variable>"}`: PipelineExecutionId, StartDateTime, PipelineName, ...
- `{"Std:Join": {"On": sep, "Values": [...]}}`: the values as text, joined.
- `{"Std:JsonGet": {"S3Uri": <uri or expression>, "Path": p}}`: a value from a JSON file a step
  wrote to the data bucket (`p` like `overall.mase` or `folds[0].mase`).

Anything else raises DefinitionError naming where in the definition it sits.
"""

from __future__ import annotations

import math
import operator
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any


class DefinitionError(ValueError):
    """The definition holds something the local runner cannot evaluate; names the place."""

    def __init__(self, where: str, problem: str) -> None:
        super().__init__(f"{where}: {problem}")
        self.where = where


@dataclass(frozen=True)
class Scope:
    """What expressions can read during one execution."""

    parameters: Mapping[str, Any]
    execution: Mapping[str, str]
    # (s3:// URI, where in the definition) -> the parsed JSON file at that URI
    read_json: Callable[[str, str], Any]


_STEP_REFERENCE = re.compile(r"^Steps\.(?P<step>[A-Za-z0-9_-]+)\.")


def referenced_steps(node: Any) -> set[str]:
    """Names of the steps whose properties or files an expression tree reads (data dependencies)."""
    found: set[str] = set()
    if isinstance(node, dict):
        reference = node.get("Get")
        if isinstance(reference, str):
            match = _STEP_REFERENCE.match(reference)
            if match:
                found.add(match.group("step"))
        for value in node.values():
            found |= referenced_steps(value)
    elif isinstance(node, list):
        for value in node:
            found |= referenced_steps(value)
    return found


def resolve(value: Any, scope: Scope, where: str) -> Any:
    """A literal stays itself; an expression becomes its value."""
    if isinstance(value, (str, int, float, bool)) or value is None:
        return value
    if isinstance(value, list):
        return [resolve(item, scope, f"{where}[{i}]") for i, item in enumerate(value)]
    if not isinstance(value, dict):
        raise DefinitionError(where, f"unexpected value {value!r}")
    if set(value) == {"Get"}:
        return _get(value["Get"], scope, where)
    if set(value) == {"Std:Join"}:
        return _join(value["Std:Join"], scope, f"{where}.Std:Join")
    if set(value) == {"Std:JsonGet"}:
        return _json_get(value["Std:JsonGet"], scope, f"{where}.Std:JsonGet")
    raise DefinitionError(where, f"unknown expression with keys {sorted(value)}")


def as_text(value: Any) -> str:
    """How a value reads inside a Join or an argument list."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if value is None:
        return ""
    return str(value)


def resolve_text(value: Any, scope: Scope, where: str) -> str:
    return as_text(resolve(value, scope, where))


def _get(reference: Any, scope: Scope, where: str) -> Any:
    if not isinstance(reference, str):
        raise DefinitionError(where, f"Get expects a string, got {reference!r}")
    kind, _, name = reference.partition(".")
    if kind == "Parameters":
        if name not in scope.parameters:
            raise DefinitionError(
                where, f"unknown parameter {name!r} (defined: {sorted(scope.parameters)})"
            )
        return scope.parameters[name]
    if kind == "Execution":
        if name not in scope.execution:
            raise DefinitionError(where, f"unknown execution variable {name!r}")
        return scope.execution[name]
    raise DefinitionError(where, f"the local runner does not support Get {reference!r}")


def _join(arguments: Any, scope: Scope, where: str) -> str:
    if not isinstance(arguments, dict) or not isinstance(arguments.get("Values"), list):
        raise DefinitionError(where, "Std:Join needs an object with a Values list")
    separator = arguments.get("On", "")
    values = arguments["Values"]
    return str(separator).join(
        resolve_text(item, scope, f"{where}.Values[{i}]") for i, item in enumerate(values)
    )


def _json_get(arguments: Any, scope: Scope, where: str) -> Any:
    if not isinstance(arguments, dict) or "Path" not in arguments or "S3Uri" not in arguments:
        raise DefinitionError(where, "Std:JsonGet needs an S3Uri and a Path")
    uri = resolve_text(arguments["S3Uri"], scope, f"{where}.S3Uri")
    document = scope.read_json(uri, f"{where}.S3Uri")
    return json_path_value(document, str(arguments["Path"]), where)


_PATH_PART = re.compile(r"([^.\[\]]+)|\[(\d+)\]")


def json_path_value(document: Any, path: str, where: str) -> Any:
    """`a.b[0].c` in a parsed JSON document; a missing key names the path and the key."""
    value = document
    for key, index in _PATH_PART.findall(path):
        try:
            value = value[int(index)] if index else value[key]
        except (KeyError, IndexError, TypeError) as err:
            raise DefinitionError(where, f"JSON path {path!r} not found in the JSON file") from err
    return value


# --- conditions ----------------------------------------------------------------------------------

_COMPARISONS: Mapping[str, Callable[[Any, Any], bool]] = {
    "Equals": operator.eq,
    "NotEquals": operator.ne,
    "GreaterThan": operator.gt,
    "GreaterThanOrEqualTo": operator.ge,
    "LessThan": operator.lt,
    "LessThanOrEqualTo": operator.le,
}


def all_conditions_hold(conditions: Any, scope: Scope, where: str) -> bool:
    """A ConditionStep's list: every condition must hold (the service ANDs them)."""
    if not isinstance(conditions, list):
        raise DefinitionError(where, "Conditions must be a list")
    return all(
        condition_holds(condition, scope, f"{where}[{i}]") for i, condition in enumerate(conditions)
    )


def condition_holds(condition: Any, scope: Scope, where: str) -> bool:
    if not isinstance(condition, dict) or "Type" not in condition:
        raise DefinitionError(where, "a condition must be an object with a Type")
    kind = condition["Type"]
    if kind in _COMPARISONS:
        left = resolve(condition.get("LeftValue"), scope, f"{where}.LeftValue")
        right = resolve(condition.get("RightValue"), scope, f"{where}.RightValue")
        return _compare(kind, left, right, where)
    if kind == "Not":
        return not condition_holds(condition.get("Expression"), scope, f"{where}.Expression")
    if kind == "Or":
        return any(
            condition_holds(inner, scope, f"{where}.Conditions[{i}]")
            for i, inner in enumerate(condition.get("Conditions", []))
        )
    if kind == "In":
        value = resolve(condition.get("QueryValue"), scope, f"{where}.QueryValue")
        candidates = resolve(condition.get("Values", []), scope, f"{where}.Values")
        return value in candidates
    raise DefinitionError(where, f"unknown condition type {kind!r}")


def _compare(kind: str, left: Any, right: Any, where: str) -> bool:
    if kind in ("Equals", "NotEquals"):
        return _COMPARISONS[kind](left, right)
    if not (_is_number(left) and _is_number(right)) and type(left) is not type(right):
        raise DefinitionError(
            where, f"{kind} cannot compare {left!r} ({type(left).__name__}) with {right!r}"
        )
    if _is_number(left) and math.isnan(left):
        # NaN compares false with everything, which is how a NaN metric fails a gate.
        return False
    return _COMPARISONS[kind](left, right)


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)
