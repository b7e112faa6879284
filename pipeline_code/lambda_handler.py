"""The job image's Lambda entry point: one pipeline step, run exactly as its training job runs
it, inside the function's time.

With `pipeline.compute: lambda` every step is a SageMaker Lambda step invoking its own function,
built from this image (`python -m awslambdaric pipeline_code.lambda_handler.handle`). The event
is the step's inputs (`stacks.pipeline_definition.lambda_inputs`): the step's module under `step`
and its arguments under `arg_000`, `arg_001`, ... in order. `handle` runs
`python -m pipeline_code.steps.<module> <arguments>` as a child process, the very command a
training job runs, so a step's code does not know where it runs. The child's output goes to the
function's log as it comes.

A run ends one of three ways:
- the step succeeds: `handle` returns its time and the largest process's peak memory;
- the step fails: `StepFailed` carries its one `ERROR <step>: ...` line, which Lambda returns as
  the error message and SageMaker shows as the step's failure reason;
- the step nears the function's timeout: it is stopped `STOP_MARGIN_SECONDS` before, and
  `StepTimedOut` says to run the environment with `pipeline.compute: training`.

`python -m pipeline_code.lambda_handler EVENT_JSON --timeout-seconds N` invokes `handle` the same
way on this machine (the local runner's Lambda steps).
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import os
import re
import resource
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Mapping
from dataclasses import dataclass
from typing import IO, Any, Protocol

LAMBDA_ENTRYPOINT = ("/usr/local/bin/python3", "-m", "awslambdaric")
HANDLER = "pipeline_code.lambda_handler.handle"
"""How a function from the job image starts: the runtime interface client, given this handler
(the stack sets both as the function's image configuration). Lambda wants the entry point's
absolute path (https://docs.aws.amazon.com/lambda/latest/dg/images-create.html, "Container image
settings"); the image's base, the official python:3.11-slim, keeps its interpreter there."""
STEP_KEY = "step"
ARGUMENT_KEY = re.compile(r"arg_(\d{3})")
"""The event's argument keys, `arg_000` onwards in order (`argument_key`)."""


def argument_key(index: int) -> str:
    return f"arg_{index:03d}"


_MODULE = re.compile(r"[a-z][a-z_]*")
STOP_MARGIN_SECONDS = 15
"""Time kept back from the function's limit to stop the step and report why (the function must
return before Lambda ends it, or the reason is lost)."""
MEMORY_WARNING_SHARE = 0.8


class StepFailed(Exception):
    """The step ended with an error; the message is its one-line reason."""


class StepTimedOut(Exception):
    """The step was stopped before the function's time ran out."""


class EventError(ValueError):
    """The event is not a step's inputs; the message names the key."""


class LambdaContext(Protocol):
    """What `handle` reads of the Lambda context object."""

    memory_limit_in_mb: Any

    def get_remaining_time_in_millis(self) -> int: ...


@dataclass(frozen=True)
class StepCall:
    module: str
    arguments: list[str]

    @property
    def command(self) -> list[str]:
        return [sys.executable, "-m", f"pipeline_code.steps.{self.module}", *self.arguments]


def step_call(event: Mapping[str, Any]) -> StepCall:
    """The step's module and arguments from the Lambda step's inputs."""
    if not isinstance(event, Mapping):
        raise EventError(f"the event must be the step's inputs, got {type(event).__name__}")
    module = event.get(STEP_KEY)
    if not isinstance(module, str) or not _MODULE.fullmatch(module):
        raise EventError(f"event.{STEP_KEY}: expected a step module name, got {module!r}")
    if importlib.util.find_spec(f"pipeline_code.steps.{module}") is None:
        raise EventError(f"event.{STEP_KEY}: no step pipeline_code.steps.{module} in this image")
    unknown = sorted(key for key in event if key != STEP_KEY and not ARGUMENT_KEY.fullmatch(key))
    if unknown:
        raise EventError(f"event: unknown keys {unknown}; expected {STEP_KEY} and arg_NNN")
    keys = sorted(key for key in event if key != STEP_KEY)
    expected = [argument_key(i) for i in range(len(keys))]
    if keys != expected:
        missing = sorted(set(expected) - set(keys))
        raise EventError(
            f"event: the arguments must be arg_000 onwards without gaps; {missing[0]} is missing"
        )
    return StepCall(module, [_text(key, event[key]) for key in keys])


def _text(key: str, value: Any) -> str:
    """An argument as the job would get it: text. Numbers come as numbers from the pipeline's
    numeric parameters."""
    if isinstance(value, bool) or not isinstance(value, str | int | float):
        raise EventError(f"event.{key}: expected text or a number, got {value!r}")
    return value if isinstance(value, str) else str(value)


def handle(event: Mapping[str, Any], context: LambdaContext) -> dict[str, Any]:
    """Run the step the event names; raise with its reason when it fails or runs out of time."""
    call = step_call(event)
    budget = context.get_remaining_time_in_millis() / 1000 - STOP_MARGIN_SECONDS
    started = time.monotonic()
    # A session of its own, so that stopping the step stops its worker processes too.
    process = subprocess.Popen(
        call.command, stderr=subprocess.PIPE, text=True, start_new_session=True
    )
    errors = _ErrorLines(process.stderr, sys.stderr)
    try:
        process.wait(timeout=max(budget, 0))
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)
        process.wait()
        raise StepTimedOut(_timed_out(call.module, time.monotonic() - started, context)) from None
    finally:
        errors.join()
    seconds = time.monotonic() - started
    if process.returncode != 0:
        raise StepFailed(
            errors.last or f"ERROR {call.module}: exited with code {process.returncode}"
        )
    peak_mb = _peak_child_memory_mb()
    _warn_near_memory_limit(call.module, peak_mb, context)
    return {"step": call.module, "seconds": round(seconds, 1), "peak_memory_mb": peak_mb}


def _timed_out(module: str, seconds: float, context: LambdaContext) -> str:
    limit = round(seconds + context.get_remaining_time_in_millis() / 1000)
    return (
        f"ERROR {module}: stopped after {seconds:.0f} s, near the Lambda function's {limit} s"
        " limit; this data needs more time than a Lambda step has: set pipeline.compute to"
        " training for this environment in cdk.json and deploy"
    )


def _peak_child_memory_mb() -> int:
    """The largest peak resident memory of any process the step ran (Linux counts kilobytes)."""
    return round(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024)


def _warn_near_memory_limit(module: str, peak_mb: int, context: LambdaContext) -> None:
    limit = int(context.memory_limit_in_mb)
    if peak_mb >= MEMORY_WARNING_SHARE * limit:
        print(
            f"WARNING {module}: one process peaked at {peak_mb} MB of the function's {limit} MB;"
            " raise pipeline.lambda_memory_mb, or set pipeline.compute to training",
            file=sys.stderr,
        )


class _ErrorLines:
    """Passes the step's standard error on as it comes, keeping its last `ERROR` line."""

    def __init__(self, source: IO[str] | None, sink: IO[str]) -> None:
        self.last = ""
        self._thread = threading.Thread(target=self._copy, args=(source, sink), daemon=True)
        self._thread.start()

    def _copy(self, source: IO[str] | None, sink: IO[str]) -> None:
        if source is None:
            return
        for line in source:
            sink.write(line)
            sink.flush()
            if line.startswith("ERROR "):
                self.last = line.strip()

    def join(self) -> None:
        self._thread.join()


@dataclass
class LocalContext:
    """A Lambda context on this machine: the function's memory and a deadline from now."""

    timeout_seconds: float
    memory_limit_in_mb: int = 10240

    def __post_init__(self) -> None:
        self._deadline = time.monotonic() + self.timeout_seconds

    def get_remaining_time_in_millis(self) -> int:
        return max(0, int((self._deadline - time.monotonic()) * 1000))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Invoke the step handler with an event here.")
    parser.add_argument("event", help="the Lambda step's inputs as JSON")
    parser.add_argument("--timeout-seconds", type=float, required=True)
    parser.add_argument("--memory-mb", type=int, default=10240)
    args = parser.parse_args(argv)
    context = LocalContext(args.timeout_seconds, args.memory_mb)
    try:
        result = handle(json.loads(args.event), context)
    except (StepFailed, StepTimedOut, EventError) as err:
        # What Lambda would return as the error message, on the line a job's failure takes.
        message = str(err)
        print(message if message.startswith("ERROR ") else f"ERROR {message}", file=sys.stderr)
        return 1
    print(json.dumps(result))
    return 0


if __name__ == "__main__":
    sys.exit(main())
