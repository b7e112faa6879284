"""Requests checked against the AWS API models that botocore ships: what the service would reject.

botocore's own ParamValidator checks types, required members and minimum lengths, but not maximum
lengths, patterns or enums, and the pipeline definition's public JSON schema has no limits at all.
`violations` walks a request against its operation's input shape and reports every member the
service would refuse: unknown or missing members, list and map sizes, string lengths, patterns,
enums and numeric ranges. Pipeline expressions (`Get`, `Std:Join`, `Std:JsonGet`) are resolved by
SageMaker at run time and skipped here.
"""

from __future__ import annotations

import functools
import json
import re
from collections.abc import Iterator, Mapping
from typing import Any

import botocore.session
from botocore.model import Shape

PIPELINE_EXPRESSIONS = frozenset({"Get", "Std:Join", "Std:JsonGet"})

JOB_OPERATIONS: Mapping[str, tuple[str, str]] = {
    "Processing": ("CreateProcessingJob", "ProcessingJobName"),
    "Training": ("CreateTrainingJob", "TrainingJobName"),
    "Transform": ("CreateTransformJob", "TransformJobName"),
    "Tuning": ("CreateHyperParameterTuningJob", "HyperParameterTuningJobName"),
}
"""A job step's type -> its create call and the job-name member the service fills in."""

_STEPS_WITHOUT_A_JOB = frozenset({"Condition", "Fail"})

SERVICE_JOB_NAME = "pipelines-0a1b2c3d4e5f-Extract-Ab12Cd34Ef"
"""A job name of the form SageMaker Pipelines gives the jobs it starts."""


@functools.cache
def input_shape(service: str, operation: str) -> Shape:
    model = botocore.session.get_session().get_service_model(service)
    return model.operation_model(operation).input_shape


def violations(shape: Shape, value: Any, where: str) -> list[str]:
    """Every way `value` breaks `shape`, each naming its place (`where`)."""
    if is_pipeline_expression(value):
        return []
    check = {
        "structure": _structure,
        "list": _list,
        "map": _map,
        "string": _string,
        "integer": _number,
        "long": _number,
        "float": _number,
        "double": _number,
        "boolean": _boolean,
    }.get(shape.type_name)
    return check(shape, value, where) if check else []


def is_pipeline_expression(value: Any) -> bool:
    return isinstance(value, dict) and len(value) == 1 and next(iter(value)) in PIPELINE_EXPRESSIONS


def _structure(shape: Any, value: Any, where: str) -> list[str]:
    if not isinstance(value, dict):
        return [f"{where}: expected a structure, got {type(value).__name__}"]
    problems = [f"{where}.{name}: unknown member" for name in value if name not in shape.members]
    problems += [
        f"{where}.{name}: required member missing"
        for name in shape.required_members
        if name not in value
    ]
    for name, member in value.items():
        if name in shape.members:
            problems += violations(shape.members[name], member, f"{where}.{name}")
    return problems


def _size(shape: Shape, count: int, where: str, unit: str) -> list[str]:
    low, high = shape.metadata.get("min"), shape.metadata.get("max")
    if low is not None and count < low:
        return [f"{where}: {count} {unit}, at least {low} allowed"]
    if high is not None and count > high:
        return [f"{where}: {count} {unit}, at most {high} allowed"]
    return []


def _list(shape: Any, value: Any, where: str) -> list[str]:
    if not isinstance(value, list):
        return [f"{where}: expected a list, got {type(value).__name__}"]
    problems = _size(shape, len(value), where, "items")
    for i, item in enumerate(value):
        problems += violations(shape.member, item, f"{where}[{i}]")
    return problems


def _map(shape: Any, value: Any, where: str) -> list[str]:
    if not isinstance(value, dict):
        return [f"{where}: expected a map, got {type(value).__name__}"]
    problems = _size(shape, len(value), where, "entries")
    for key, item in value.items():
        problems += violations(shape.key, key, f"{where} key {key!r}")
        problems += violations(shape.value, item, f"{where}.{key}")
    return problems


def _string(shape: Shape, value: Any, where: str) -> list[str]:
    if not isinstance(value, str):
        return [f"{where}: expected a string, got {type(value).__name__}"]
    problems = _size(shape, len(value), where, "characters")
    pattern = shape.metadata.get("pattern")
    if pattern and not _compiled(pattern).fullmatch(value):
        problems.append(f"{where}: {_short(value)} does not match the pattern {pattern}")
    if shape.enum and value not in shape.enum:
        problems.append(f"{where}: {value!r} is not one of {sorted(shape.enum)}")
    return problems


def _number(shape: Shape, value: Any, where: str) -> list[str]:
    integral = shape.type_name in ("integer", "long")
    kinds = (int,) if integral else (int, float)
    if isinstance(value, bool) or not isinstance(value, kinds):
        return [f"{where}: expected a number, got {value!r}"]
    low, high = shape.metadata.get("min"), shape.metadata.get("max")
    if (low is not None and value < low) or (high is not None and value > high):
        return [f"{where}: {value} is outside {low}..{high}"]
    return []


def _boolean(shape: Shape, value: Any, where: str) -> list[str]:
    return [] if isinstance(value, bool) else [f"{where}: expected true or false, got {value!r}"]


@functools.cache
def _compiled(pattern: str) -> re.Pattern[str]:
    # The models' patterns are Java regular expressions; the ones SageMaker and Scheduler use are
    # also valid Python ones (a pattern Python cannot read fails the test loudly here).
    return re.compile(pattern, re.DOTALL)


def _short(value: str) -> str:
    return repr(value if len(value) <= 80 else value[:77] + "...")


# -- the pipeline definition --------------------------------------------------------------------


def job_steps(steps: list[Any], where: str = "Steps") -> Iterator[tuple[Mapping[str, Any], str]]:
    """Every step that starts a job, including those inside a ConditionStep's branches."""
    for i, step in enumerate(steps):
        place = f"{where}[{i}]({step.get('Name')})"
        kind = step.get("Type")
        if kind == "Condition":
            arguments = step.get("Arguments", {})
            yield from job_steps(arguments.get("IfSteps", []), f"{place}.IfSteps")
            yield from job_steps(arguments.get("ElseSteps", []), f"{place}.ElseSteps")
        elif kind not in _STEPS_WITHOUT_A_JOB:
            yield step, place


def definition_violations(definition: Mapping[str, Any]) -> list[str]:
    """Every job step's Arguments against its create call, and every Lambda step's invocation
    against Lambda's Invoke, as SageMaker will send them."""
    problems = []
    for step, where in job_steps(definition.get("Steps", [])):
        if step.get("Type") == "Lambda":
            problems += lambda_step_violations(step, where)
            continue
        if step.get("Type") not in JOB_OPERATIONS:
            problems.append(f"{where}: no API model known for step type {step.get('Type')!r}")
            continue
        operation, job_name = JOB_OPERATIONS[step["Type"]]
        request = {job_name: SERVICE_JOB_NAME, **step["Arguments"]}
        problems += violations(input_shape("sagemaker", operation), request, f"{where}.Arguments")
    return problems


# -- Lambda steps -------------------------------------------------------------------------------

LAMBDA_FUNCTION_NAME_MAX = 64
"""Invoke's FunctionName: the model's length limit is the full ARN's; "if you specify only the
function name, it is limited to 64 characters in length"
(https://docs.aws.amazon.com/lambda/latest/dg/API_Invoke.html)."""
LAMBDA_PAYLOAD_MAX_BYTES = {"RequestResponse": 6_000_000, "Event": 1_000_000}
"""Invoke's payload limit by invocation type, 6 MB synchronous and 1 MB asynchronous
(https://docs.aws.amazon.com/lambda/latest/dg/API_Invoke.html,
https://docs.aws.amazon.com/lambda/latest/dg/gettingstarted-limits.html), in decimal
megabytes to be safe. botocore's model gives the Payload blob no maximum, so the limit is
written here. SageMaker does not document which type its Lambda step uses; both must hold."""
EXPRESSION_MAX_CHARS = 1024
"""The longest text a pipeline expression in a Lambda step's inputs can become: a pipeline
parameter's value (StartPipelineExecution's Parameter.Value is at most 1024 characters in
botocore's model); the execution variables used (execution id, start time) are far shorter."""
_PRIMITIVES = (str, int, float)


def _function_name(function_arn: str) -> str:
    """The name inside `arn:aws:lambda:<region>:<account>:function:<name>[:qualifier]`."""
    parts = function_arn.split(":")
    return parts[6] if len(parts) >= 7 and parts[5] == "function" else function_arn


def lambda_payload_bytes(inputs: Mapping[str, Any]) -> int:
    """The largest the step's event can be: its inputs as JSON, every pipeline expression
    taken at EXPRESSION_MAX_CHARS characters."""
    widest = {
        key: "x" * EXPRESSION_MAX_CHARS if is_pipeline_expression(value) else value
        for key, value in inputs.items()
    }
    return len(json.dumps(widest).encode())


def lambda_step_violations(step: Mapping[str, Any], where: str) -> list[str]:
    """A Lambda step's invocation against Lambda's Invoke: the function ARN (botocore's
    FunctionName pattern and length, and the name's own limit), the inputs (flat primitives,
    the step-types page's "Inputs and outputs") and the payload size."""
    function_arn = step.get("FunctionArn")
    if not isinstance(function_arn, str):
        return [f"{where}.FunctionArn: expected the function's ARN, got {function_arn!r}"]
    inputs = step.get("Arguments") or {}
    payload = lambda_payload_bytes(inputs)
    problems = [
        f"{where}.Arguments: up to {payload} bytes, over the {kind} payload limit of {limit}"
        for kind, limit in LAMBDA_PAYLOAD_MAX_BYTES.items()
        if payload > limit
    ]
    return problems + _invoke_violations(function_arn, inputs, where)


def _invoke_violations(function_arn: str, inputs: Mapping[str, Any], where: str) -> list[str]:
    request = {"FunctionName": function_arn, "Payload": b"{}"}
    problems = violations(input_shape("lambda", "Invoke"), request, f"{where}.Invoke")
    name = _function_name(function_arn)
    if len(name) > LAMBDA_FUNCTION_NAME_MAX:
        problems.append(
            f"{where}.FunctionArn: the name {name!r} has {len(name)} characters,"
            f" at most {LAMBDA_FUNCTION_NAME_MAX} allowed"
        )
    for key, value in inputs.items():
        flat = isinstance(value, _PRIMITIVES) and not isinstance(value, bool)
        if not (flat or is_pipeline_expression(value)):
            problems.append(f"{where}.Arguments.{key}: {value!r} is not a primitive value")
    return problems


# -- the schedule -------------------------------------------------------------------------------

SCHEDULER_CONTEXT = {
    "<aws.scheduler.schedule-arn>": (
        "arn:aws:scheduler:ap-northeast-1:123456789012:schedule/default/forecast-prod-daily"
    ),
    "<aws.scheduler.scheduled-time>": "2026-11-28T18:00:00Z",
    "<aws.scheduler.execution-id>": "d32c5kddcf5bb8c3",
    "<aws.scheduler.attempt-number>": "1",
}
"""The values EventBridge Scheduler puts in place of its context attributes, as documented
(https://docs.aws.amazon.com/scheduler/latest/UserGuide/managing-schedule-context-attributes.html)."""

_SDK_TARGET = re.compile(r"arn:aws:scheduler:::aws-sdk:(?P<service>[a-z0-9]+):(?P<action>\w+)")


def as_scheduler_sends(target_input: str, context: Mapping[str, str] = SCHEDULER_CONTEXT) -> str:
    for attribute, value in context.items():
        target_input = target_input.replace(attribute, value)
    return target_input


def schedule_target_violations(target_arn: str, request: Mapping[str, Any]) -> list[str]:
    """A universal (aws-sdk) target's input against the API call it names."""
    match = _SDK_TARGET.fullmatch(target_arn)
    if not match:
        return [f"Target.Arn: {target_arn!r} is not a universal aws-sdk target"]
    model = botocore.session.get_session().get_service_model(match["service"])
    operations = {name[0].lower() + name[1:]: name for name in model.operation_names}
    if match["action"] not in operations:
        return [f"Target.Arn: {match['service']} has no action {match['action']!r}"]
    shape = model.operation_model(operations[match["action"]]).input_shape
    return violations(shape, dict(request), "Target.Input")
