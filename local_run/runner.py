"""Execute a pipeline definition JSON on this machine, step by step, as the service would.

Each TrainingStep runs its real entry point, `python -m pipeline_code.steps.<module>` (read from
the step's ContainerEntrypoint), in a subprocess with the step's resolved ContainerArguments and
Environment. Each LambdaStep runs its function's handler (`pipeline_code.lambda_handler`, the job
image's Lambda entry point) in a subprocess, with the step's resolved inputs as the event and the
function's timeout; the handler runs the same entry point. The working tree's `pipeline_code`
and this interpreter's packages stand in for the job image's copy of them. The data bucket
(whatever `s3://<bucket>` the steps' `--data-root` names) maps onto the lake folder, so a
`Std:JsonGet` by S3 URI reads the file the step wrote there.
A job's model artifacts (empty here) and warm pools have no local counterpart.

Steps run in a topological order of their DependsOn and data references. A ConditionStep runs its
IfSteps or ElseSteps; a FailStep ends the execution as failed with its resolved message.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import graphlib
import json
import os
import re
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from typing import Any

from local_run.expressions import (
    DefinitionError,
    Scope,
    all_conditions_hold,
    referenced_steps,
    resolve,
    resolve_text,
)
from local_run.lake import LakeMapping
from pipeline_code import lambda_handler, progress, shards
from stacks import pipeline_definition

REPO_ROOT = Path(pipeline_definition.__file__).resolve().parent.parent

LOCAL_STAND_INS: Mapping[str, str] = {
    "glue_database": "forecast_local",
    "athena_workgroup": "primary",
    # Local steps call no AWS API; any valid region name keeps a stray client well-formed.
    "region": "us-east-1",
}
"""Deploy-time placeholders a local run fills in (a definition built without the CDK keeps them)."""

_STEP_MODULE = re.compile(r"-m\s+(pipeline_code\.steps\.[A-Za-z_]\w*)")
_STDERR_TAIL_LINES = 30
_POLL_SECONDS = 0.5


@dataclass
class StepRecord:
    name: str
    kind: str
    status: str  # Executing | Succeeded | Failed
    seconds: float = 0.0
    detail: str = ""


@dataclass
class RunOutcome:
    execution_id: str
    parameters: dict[str, Any]
    steps: list[StepRecord] = field(default_factory=list)
    failed_step: str | None = None
    failure: str | None = None
    gate_failed: bool = False  # a FailStep was reached

    @property
    def succeeded(self) -> bool:
        return self.failed_step is None


@dataclass(frozen=True)
class RunRequest:
    definition: Mapping[str, Any]
    lake: Path
    execution_id: str
    start_time: str
    parameter_values: Mapping[str, str]  # raw text, typed by the definition's Parameters
    pipeline_name: str = "local"
    # Looked up when the request is made, so tests can point it at a stand-in package.
    repo_root: Path = field(default_factory=lambda: REPO_ROOT)
    on_step: Callable[[StepRecord], None] = lambda record: None
    lambda_timeout_seconds: float = 600
    """A Lambda step's function timeout (`pipeline.lambda_timeout_seconds`): the definition names
    only the function."""
    on_progress: Callable[[str, str], None] = lambda step, text: None
    """Called with a step's name and its newest progress ('2,400/10,000 series (24%), about 3 min
    left', summed over its instances) while it runs, at most every `progress.EVERY_SECONDS`."""


class StepFailed(Exception):
    """A step ended the execution; the outcome already records why."""


def new_execution_id(now: dt.datetime | None = None) -> str:
    now = now or dt.datetime.now(dt.UTC)
    return f"local-{now:%Y%m%dT%H%M%S}-{os.urandom(3).hex()}"


def start_datetime(now: dt.datetime | None = None) -> str:
    """The execution's start time as an ISO timestamp in UTC (what START_DATETIME carries)."""
    now = now or dt.datetime.now(dt.UTC)
    return now.astimezone(dt.UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def load_definition(text: str, source: str) -> dict[str, Any]:
    """Parse a definition and fill in the placeholders a local run has stand-ins for."""
    text = pipeline_definition.substitute_placeholders(text, LOCAL_STAND_INS)
    try:
        parsed = json.loads(text)
    except json.JSONDecodeError as err:
        raise DefinitionError(source, f"not valid JSON: {err}") from err
    if not isinstance(parsed, dict) or not isinstance(parsed.get("Steps"), list):
        raise DefinitionError(source, "a pipeline definition needs a Steps list")
    return parsed


def typed_parameters(definition: Mapping[str, Any], values: Mapping[str, str]) -> dict[str, Any]:
    """Defaults from the definition, overridden by `values` (text, converted to each type)."""
    declared = {p["Name"]: p for p in definition.get("Parameters", [])}
    unknown = sorted(set(values) - set(declared))
    if unknown:
        raise DefinitionError(
            "Parameters", f"unknown parameters {unknown}; defined: {sorted(declared)}"
        )
    parameters: dict[str, Any] = {}
    for name, declaration in declared.items():
        kind = declaration.get("Type", "String")
        if name in values:
            parameters[name] = _parse_parameter(name, kind, values[name])
        elif "DefaultValue" in declaration:
            parameters[name] = declaration["DefaultValue"]
        else:
            raise DefinitionError(f"Parameters.{name}", "has no default; pass --param")
    return parameters


def _parse_parameter(name: str, kind: str, text: str) -> Any:
    parsers: dict[str, Callable[[str], Any]] = {
        "String": str,
        "Integer": int,
        "Float": float,
        "Boolean": _parse_boolean,
    }
    if kind not in parsers:
        raise DefinitionError(f"Parameters.{name}", f"unknown parameter type {kind!r}")
    try:
        return parsers[kind](text)
    except ValueError as err:
        raise DefinitionError(f"Parameters.{name}", f"{text!r} is not a valid {kind}") from err


def _parse_boolean(text: str) -> bool:
    lowered = text.strip().lower()
    if lowered not in ("true", "false"):
        raise ValueError(text)
    return lowered == "true"


def execute(request: RunRequest) -> RunOutcome:
    """Run the whole definition; the outcome says which step failed, if any, and why."""
    parameters = typed_parameters(request.definition, request.parameter_values)
    outcome = RunOutcome(execution_id=request.execution_id, parameters=parameters)
    execution = _Execution(request, parameters, outcome)
    # A failed step has recorded itself in the outcome; stopping is all that is left.
    with contextlib.suppress(StepFailed):
        execution.run_steps(request.definition["Steps"], "Steps")
    return outcome


class _Execution:
    """One execution's state: parameter values and finished steps."""

    def __init__(
        self, request: RunRequest, parameters: dict[str, Any], outcome: RunOutcome
    ) -> None:
        self.request = request
        self.outcome = outcome
        self.finished: set[str] = set()
        self.scope = Scope(
            parameters=parameters,
            execution=self._execution_variables(),
            read_json=self._read_json,
        )
        self.lake = LakeMapping(self._data_bucket(request.definition), request.lake)

    # -- scope ------------------------------------------------------------------------------------

    def _execution_variables(self) -> dict[str, str]:
        request = self.request
        return {
            "PipelineExecutionId": request.execution_id,
            "PipelineExecutionArn": (
                "arn:aws:sagemaker:local:000000000000:pipeline/"
                f"{request.pipeline_name}/execution/{request.execution_id}"
            ),
            "PipelineName": request.pipeline_name,
            "StartDateTime": request.start_time,
            "CurrentDateTime": start_datetime(),
        }

    def _read_json(self, uri: str, where: str) -> Any:
        """A JSON file in the data bucket, from the lake."""
        if not self.lake.covers(uri):
            raise DefinitionError(
                where, f"{uri!r} is outside the data bucket {self.lake.bucket_uri}"
            )
        location = self.lake.to_local(uri)
        if not location.is_file():
            raise DefinitionError(where, f"{uri} was not written (local {location})")
        return json.loads(location.read_text())

    def _data_bucket(self, definition: Mapping[str, Any]) -> str:
        """The `s3://<bucket>` the steps' --data-root names: that bucket is the lake."""
        for step, where in _job_steps(definition["Steps"], "Steps"):
            arguments = [value for _, value in step_arguments(step, where)]
            for i, value in enumerate(arguments[:-1]):
                if value == "--data-root":
                    root = resolve_text(arguments[i + 1], self.scope, f"{where} --data-root")
                    match = re.fullmatch(r"(s3://[^/]+)/?", root)
                    if not match:
                        raise DefinitionError(where, f"--data-root {root!r} is not s3://<bucket>")
                    return match.group(1)
        raise DefinitionError("Steps", "no job or Lambda step passes --data-root s3://<bucket>")

    # -- steps ------------------------------------------------------------------------------------

    def run_steps(self, steps: list[Any], where: str) -> None:
        for step, step_where in _in_dependency_order(steps, where, self.finished):
            self._run_step(step, step_where)
            self.finished.add(step["Name"])

    def _run_step(self, step: Mapping[str, Any], where: str) -> None:
        kind = step.get("Type")
        runners: dict[str, Callable[[Mapping[str, Any], str], None]] = {
            "Training": self._run_training,
            "Lambda": self._run_lambda,
            "Condition": self._run_condition,
            "Fail": self._run_fail,
        }
        if kind not in runners:
            raise DefinitionError(where, f"step type {kind!r} is not supported by the local runner")
        runners[kind](step, where)

    def _run_condition(self, step: Mapping[str, Any], where: str) -> None:
        arguments = step.get("Arguments", {})
        record = self._begin(step["Name"], "Condition")
        holds = all_conditions_hold(
            arguments.get("Conditions", []), self.scope, f"{where}.Arguments.Conditions"
        )
        self._end(record, "Succeeded", f"evaluated to {str(holds).lower()}")
        branch = "IfSteps" if holds else "ElseSteps"
        self.run_steps(arguments.get(branch, []), f"{where}.Arguments.{branch}")

    def _run_fail(self, step: Mapping[str, Any], where: str) -> None:
        record = self._begin(step["Name"], "Fail")
        message = resolve_text(
            step.get("Arguments", {}).get("ErrorMessage", ""),
            self.scope,
            f"{where}.Arguments.ErrorMessage",
        )
        self._end(record, "Failed", message)
        self.outcome.failed_step = step["Name"]
        self.outcome.failure = message
        self.outcome.gate_failed = True
        raise StepFailed(step["Name"])

    def _run_training(self, step: Mapping[str, Any], where: str) -> None:
        name = step["Name"]
        arguments = step.get("Arguments", {})
        algorithm = arguments.get("AlgorithmSpecification", {})
        module = step_module(
            algorithm.get("ContainerEntrypoint", []), f"{where}.AlgorithmSpecification"
        )
        self._check_inputs(arguments, where)
        command = [
            sys.executable,
            "-m",
            module,
            *self._arguments(algorithm.get("ContainerArguments", []), where),
        ]
        count = instance_count(arguments, where)
        self._run_command(name, "Training", command, count, self._environment(arguments, where))

    def _run_lambda(self, step: Mapping[str, Any], where: str) -> None:
        """A Lambda step: the step's function handler, with the step's resolved inputs as its
        event and the function's timeout, in a process of its own (the function's sandbox)."""
        event = {
            key: self._lambda_input(value, f"{where}.Arguments.{key}")
            for key, value in step.get("Arguments", {}).items()
        }
        command = [
            sys.executable,
            "-m",
            "pipeline_code.lambda_handler",
            json.dumps(event),
            "--timeout-seconds",
            str(self.request.lambda_timeout_seconds),
        ]
        self._run_command(step["Name"], "Lambda", command, 1, self._environment({}, where))

    def _lambda_input(self, value: Any, where: str) -> Any:
        """An input as the service passes it: resolved, a number staying a number."""
        resolved = resolve(value, self.scope, where)
        return self.lake.map_argument(resolved) if isinstance(resolved, str) else resolved

    def _run_command(
        self, name: str, kind: str, command: list[str], count: int, environment: dict[str, str]
    ) -> None:
        record = self._begin(name, kind)
        started = time.monotonic()
        relay = _ProgressRelay(name, count, self.request.on_progress)
        results = run_instances(command, count, environment, self.request.repo_root, relay.read)
        for rank, result in enumerate(results):
            self._write_log(name if count == 1 else f"{name}-algo-{rank + 1}", command, result)
        failed = [(rank, r) for rank, r in enumerate(results) if r.returncode != 0]
        if failed:
            rank, result = failed[0]
            which = "" if count == 1 else f" (instance algo-{rank + 1} of {count})"
            self._end(record, "Failed", _tail(result.stderr), started)
            self.outcome.failed_step = name
            self.outcome.failure = (
                f"{name}{which} exited with code {result.returncode}:\n{_tail(result.stderr)}"
            )
            raise StepFailed(name)
        self._end(record, "Succeeded", "", started)

    def _arguments(self, arguments: list[Any], where: str) -> list[str]:
        """Resolved, with data bucket URIs mapped to lake paths."""
        return [
            self.lake.map_argument(
                resolve_text(
                    value,
                    self.scope,
                    f"{where}.Arguments.AlgorithmSpecification.ContainerArguments[{i}]",
                )
            )
            for i, value in enumerate(arguments)
        ]

    def _check_inputs(self, arguments: Mapping[str, Any], where: str) -> None:
        """Steps read data through --data-root and have their code in the image: no inputs."""
        if arguments.get("InputDataConfig"):
            raise DefinitionError(
                f"{where}.Arguments.InputDataConfig",
                "the local runner supports no job inputs: steps read their data through"
                " --data-root",
            )

    def _environment(self, arguments: Mapping[str, Any], where: str) -> dict[str, str]:
        environment = dict(os.environ)
        for key, value in arguments.get("Environment", {}).items():
            environment[key] = resolve_text(
                value, self.scope, f"{where}.Arguments.Environment.{key}"
            )
        python_path = [str(self.request.repo_root), environment.get("PYTHONPATH", "")]
        environment["PYTHONPATH"] = os.pathsep.join(part for part in python_path if part)
        return environment

    def _write_log(
        self, step: str, command: list[str], result: subprocess.CompletedProcess[str]
    ) -> None:
        logs = self.request.lake / "runs" / self.request.execution_id / "logs"
        logs.mkdir(parents=True, exist_ok=True)
        (logs / f"{step}.log").write_text(
            f"$ {' '.join(command)}\n--- stdout\n{result.stdout}\n--- stderr\n{result.stderr}"
        )

    # -- progress ---------------------------------------------------------------------------------

    def _begin(self, name: str, kind: str) -> StepRecord:
        record = StepRecord(name=name, kind=kind, status="Executing")
        self.outcome.steps.append(record)
        self.request.on_step(record)
        return record

    def _end(
        self, record: StepRecord, status: str, detail: str, started: float | None = None
    ) -> None:
        record.status = status
        record.detail = detail
        record.seconds = time.monotonic() - started if started is not None else 0.0
        self.request.on_step(record)


def instance_count(arguments: Mapping[str, Any], where: str) -> int:
    count = arguments.get("ResourceConfig", {}).get("InstanceCount", 1)
    if not isinstance(count, int) or isinstance(count, bool) or count < 1:
        raise DefinitionError(
            f"{where}.Arguments.ResourceConfig.InstanceCount", "must be a whole number >= 1"
        )
    return count


def run_instances(
    command: list[str],
    count: int,
    environment: Mapping[str, str],
    cwd: Path,
    on_output: Callable[[int, str], None] | None = None,
) -> list[subprocess.CompletedProcess[str]]:
    """Run the job's entry point as `count` processes at once, each with the resource
    configuration SageMaker would give its instance and its own cores (`instance_cores`: a
    step's `--workers 0` then means its instance's vCPUs, as on SageMaker); returns when every
    one has ended (a job fails when any of its instances does). While they run, `on_output` gets
    each instance's new standard output (rank, text) about once a second."""
    pinning = count > 1 and hasattr(os, "sched_setaffinity")  # elsewhere instances share cores
    available = sorted(os.sched_getaffinity(0)) if pinning else []
    with tempfile.TemporaryDirectory(prefix="local-job-") as folder:
        running = []
        for rank in range(count):
            config_dir = Path(folder) / f"algo-{rank + 1}"
            config_dir.mkdir()
            variables = dict(environment)
            if count > 1:
                config = shards.resource_config(shards.Share(rank=rank, count=count))
                (config_dir / shards.RESOURCE_CONFIG).write_text(json.dumps(config))
                variables[shards.CONFIG_DIR_ENV] = str(config_dir)
            output = (config_dir / "stdout").open("w+"), (config_dir / "stderr").open("w+")
            pin = (
                partial(os.sched_setaffinity, 0, instance_cores(rank, count, available))
                if pinning
                else None
            )
            process = subprocess.Popen(
                command,
                cwd=cwd,
                preexec_fn=pin,
                env=variables,
                stdout=output[0],
                stderr=output[1],
                text=True,
            )
            running.append((process, output))
        _follow(running, on_output or (lambda rank, text: None))
        results = []
        for process, (stdout, stderr) in running:
            stdout.seek(0)
            stderr.seek(0)
            code, out, err = process.returncode, stdout.read(), stderr.read()
            results.append(subprocess.CompletedProcess(command, code, out, err))
            stdout.close()
            stderr.close()
        return results


def _follow(running: list[Any], on_output: Callable[[int, str], None]) -> None:
    """Wait for every process, passing on what each adds to its standard output meanwhile."""
    readers = [open(stdout.name) for _, (stdout, _) in running]  # noqa: SIM115
    try:
        while True:
            unfinished = [process for process, _ in running if process.poll() is None]
            if unfinished:
                with contextlib.suppress(subprocess.TimeoutExpired):
                    unfinished[0].wait(timeout=_POLL_SECONDS)
            for rank, reader in enumerate(readers):
                text = reader.read()
                if text:
                    on_output(rank, text)
            if not unfinished:
                return
    finally:
        for reader in readers:
            reader.close()


class _ProgressRelay:
    """Turns the instances' progress lines into one figure per step for the console: done and
    total summed over the instances, the time left of the slowest."""

    def __init__(self, step: str, count: int, show: Callable[[str, str], None]) -> None:
        self.step, self.show = step, show
        self.latest: list[progress.Reading | None] = [None] * count
        self.pending = [""] * count
        self.last_shown = 0.0

    def read(self, rank: int, text: str) -> None:
        lines = (self.pending[rank] + text).split("\n")
        self.pending[rank] = lines.pop()  # an unfinished line waits for the rest
        readings = [r for r in map(progress.parse, lines) if r is not None]
        if not readings:
            return
        self.latest[rank] = readings[-1]
        now = time.monotonic()
        if now - self.last_shown >= progress.EVERY_SECONDS:
            self.last_shown = now
            self.show(self.step, self._summary())

    def _summary(self) -> str:
        seen = [r for r in self.latest if r is not None]
        lefts = [r.left_seconds for r in seen if r.left_seconds is not None]
        line = progress.format_line(
            self.step,
            sum(r.done for r in seen),
            sum(r.total for r in seen),
            seen[0].unit,
            max(lefts) if lefts else None,
        )
        return line.split(": ", 1)[1]


def instance_cores(rank: int, count: int, available: list[int]) -> set[int]:
    """The cores of instance `rank` of `count`: a part of `available` of its own, or one core
    shared with others when there are fewer cores than instances."""
    if count > len(available):
        return {available[rank % len(available)]}
    share, extra = divmod(len(available), count)
    first = rank * share + min(rank, extra)
    return set(available[first : first + share + (rank < extra)])


def step_module(entrypoint: list[Any], where: str) -> str:
    """The `pipeline_code.steps.<module>` a ContainerEntrypoint runs."""
    command = " ".join(part for part in entrypoint if isinstance(part, str))
    match = _STEP_MODULE.search(command)
    if match:
        return match.group(1)
    raise DefinitionError(
        where, "ContainerEntrypoint does not run `python -m pipeline_code.steps.<module>`"
    )


def _tail(text: str) -> str:
    return "\n".join(text.rstrip().splitlines()[-_STDERR_TAIL_LINES:])


def step_arguments(step: Mapping[str, Any], where: str) -> list[tuple[str, Any]]:
    """(where, value) of each argument a job or Lambda step passes to its entry point, in order:
    a job's ContainerArguments, a Lambda step's `arg_NNN` inputs."""
    arguments = step.get("Arguments", {})
    if step.get("Type") == "Lambda":
        keys = sorted(key for key in arguments if lambda_handler.ARGUMENT_KEY.fullmatch(key))
        return [(f"{where}.Arguments.{key}", arguments[key]) for key in keys]
    listed = arguments.get("AlgorithmSpecification", {}).get("ContainerArguments", [])
    return [(f"{where}.ContainerArguments[{i}]", value) for i, value in enumerate(listed)]


def _job_steps(steps: list[Any], where: str) -> Iterator[tuple[Mapping[str, Any], str]]:
    for i, step in enumerate(steps):
        step_where = f"{where}[{step.get('Name', i)}]"
        if step.get("Type") in ("Training", "Lambda"):
            yield step, step_where
        if step.get("Type") == "Condition":
            for branch in ("IfSteps", "ElseSteps"):
                yield from _job_steps(
                    step.get("Arguments", {}).get(branch, []), f"{step_where}.Arguments.{branch}"
                )


def _in_dependency_order(
    steps: list[Any], where: str, finished: set[str]
) -> list[tuple[Mapping[str, Any], str]]:
    """Steps ordered so each runs after its DependsOn and the steps whose data it reads.

    Dependencies on steps outside this list (a branch step reading a top-level step) must have
    run already; a missing or circular dependency is a definition error.
    """
    by_name: dict[str, tuple[Mapping[str, Any], str]] = {}
    for i, step in enumerate(steps):
        if not isinstance(step, dict) or "Name" not in step:
            raise DefinitionError(f"{where}[{i}]", "a step needs a Name")
        by_name[step["Name"]] = (step, f"{where}[{step['Name']}]")
    waiting = {
        name: _dependencies(step, step_where) for name, (step, step_where) in by_name.items()
    }
    for name, needs in waiting.items():
        unknown = needs - set(by_name) - finished
        if unknown:
            raise DefinitionError(
                by_name[name][1], f"depends on steps that do not run before it: {sorted(unknown)}"
            )
    graph = {name: needs & set(by_name) for name, needs in waiting.items()}
    try:
        order = list(graphlib.TopologicalSorter(graph).static_order())
    except graphlib.CycleError as err:
        raise DefinitionError(
            where, f"circular dependencies among {sorted(set(err.args[1]))}"
        ) from err
    return [by_name[name] for name in order]


def _dependencies(step: Mapping[str, Any], where: str) -> set[str]:
    depends_on = step.get("DependsOn", [])
    if not isinstance(depends_on, list):
        raise DefinitionError(f"{where}.DependsOn", "must be a list of step names")
    # A ConditionStep's branches are separate lists; only its own arguments count here.
    arguments = dict(step.get("Arguments", {}))
    if step.get("Type") == "Condition":
        arguments = {"Conditions": arguments.get("Conditions", [])}
    own = {**step, "Arguments": arguments}
    return set(depends_on) | (referenced_steps(own) - {step["Name"]})
