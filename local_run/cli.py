"""`python -m local_run`: run the pipeline definition on this machine.

    python -m local_run run --lake .lake --date 2025-01-31 --demo
    python -m local_run run --lake .lake --date 2025-01-31 --param MaxMase=1.2
    python -m local_run run --lake .lake --date 2025-01-31 --definition pipeline.json
    python -m local_run run --lake .lake --date 2025-01-31 --instance-count 3
    python -m local_run definition > pipeline.json

Exit codes: 0 success, 1 a step failed (its one-line reason is printed; another run publishing
the same date is one), 2 bad input (arguments, definition, a --lake that is not a folder),
3 the quality gate failed (the FailStep was reached), 4 the lake cannot be written (disk full,
read-only, permissions). Nothing is published unless the run succeeds.
"""

from __future__ import annotations

import argparse
import datetime as dt
import sys
from pathlib import Path
from typing import NoReturn

from local_run import summary
from local_run.demo import ensure_demo_data
from local_run.expressions import DefinitionError
from local_run.runner import (
    RunRequest,
    StepRecord,
    execute,
    load_definition,
    new_execution_id,
    start_datetime,
    typed_parameters,
)
from pipeline_code import shards
from pipeline_code.errors import describe_os_error
from pipeline_code.identifiers import ExecutionIdError, date_range_problem, validate_execution_id
from stacks import pipeline_definition

EXIT_STEP_FAILED = 1
EXIT_BAD_INPUT = 2
EXIT_GATE_FAILED = 3
EXIT_LAKE_UNWRITABLE = 4

LOCAL_PIPELINE_NAME = "forecast-local"


def local_definition(instance_count: int = 1) -> str:
    """The definition as deployed, built with the default settings (placeholders included) and
    `instance_count` instances per job (the runner runs each instance as a process)."""
    settings = pipeline_definition.DefinitionSettings(
        pipeline_name=LOCAL_PIPELINE_NAME, instance_count=instance_count
    )
    return pipeline_definition.build_definition(settings)


def _date(text: str) -> dt.date:
    try:
        value = dt.date.fromisoformat(text)
    except ValueError as err:
        raise argparse.ArgumentTypeError(f"--date {text!r} is not a YYYY-MM-DD date") from err
    problem = date_range_problem(value)
    if problem:
        raise argparse.ArgumentTypeError(problem)
    return value


def _execution_id(text: str) -> str:
    try:
        return validate_execution_id(text)
    except ExecutionIdError as err:
        raise argparse.ArgumentTypeError(str(err)) from err


def _parameter(text: str) -> tuple[str, str]:
    name, separator, value = text.partition("=")
    if not separator or not name:
        raise argparse.ArgumentTypeError(f"--param {text!r} is not Name=Value")
    return name, value


class _Parser(argparse.ArgumentParser):
    """Bad arguments end like every other failure: one line naming the problem, exit code 2."""

    def error(self, message: str) -> NoReturn:
        self.exit(EXIT_BAD_INPUT, f"ERROR {message} (see {self.prog} --help)\n")


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = _Parser(
        prog="python -m local_run",
        description=__doc__.split("\n")[0],
        epilog=__doc__[__doc__.index("Exit codes") :],
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    commands = parser.add_subparsers(dest="command", required=True)
    run = commands.add_parser("run", help="execute the pipeline for one execution date")
    run.add_argument(
        "--lake", type=Path, required=True, help="the local folder standing in for the data bucket"
    )
    run.add_argument("--date", type=_date, required=True, help="execution date, YYYY-MM-DD")
    run.add_argument(
        "--demo", action="store_true", help="fill the lake with demo data first (if missing)"
    )
    run.add_argument(
        "--demo-models", type=int, default=30, help="car models in generated demo data"
    )
    run.add_argument("--demo-years", type=float, default=3.0, help="years of generated demo data")
    run.add_argument("--definition", type=Path, help="a definition JSON (default: build it now)")
    run.add_argument(
        "--instance-count",
        type=_instance_count,
        default=None,
        help="instances per job of the built definition, each run as a process (default 1)",
    )
    run.add_argument(
        "--param",
        type=_parameter,
        action="append",
        default=[],
        metavar="NAME=VALUE",
        help="override a pipeline parameter, e.g. MaxMase=1.2 (repeatable)",
    )
    run.add_argument(
        "--execution-id",
        type=_execution_id,
        help="the execution id, one path segment (default: a new local id)",
    )
    run.add_argument("--no-report", action="store_true", help="skip the HTML report")
    show = commands.add_parser("definition", help="print the definition the local run builds")
    show.add_argument("--out", type=Path, help="write it to this file instead")
    return parser.parse_args(argv)


def _instance_count(text: str) -> int:
    try:
        count = int(text)
    except ValueError:
        count = 0
    if not 1 <= count <= shards.BUCKETS:
        raise argparse.ArgumentTypeError(
            f"--instance-count {text!r} is not a whole number from 1 to {shards.BUCKETS}"
        )
    return count


def _read_definition(path: Path | None, instance_count: int | None) -> dict:
    if path is not None and instance_count is not None:
        raise DefinitionError(
            "--instance-count", "applies to the built definition, not to --definition"
        )
    if path is None:
        return load_definition(local_definition(instance_count or 1), "the built definition")
    if not path.is_file():
        raise DefinitionError(str(path), "no such definition file")
    return load_definition(path.read_text(), str(path))


def _parameter_values(args: argparse.Namespace) -> dict[str, str]:
    values = dict(args.param)
    if "ExecutionDate" in values:
        raise DefinitionError("--param", "set the execution date with --date, not ExecutionDate=")
    values["ExecutionDate"] = args.date.isoformat()
    return values


def _print_progress(record: StepRecord) -> None:
    if record.status == "Executing":
        print(f"  {record.name:<18} running ...", flush=True)
    else:
        detail = (
            f"  {record.detail.splitlines()[0]}"
            if record.kind == "Condition" and record.detail
            else ""
        )
        print(
            f"  {record.name:<18} {record.status:<10} {record.seconds:6.1f} s{detail}", flush=True
        )


def _write_report(lake: Path, date: dt.date, execution_id: str) -> Path | None:
    """The report is a view of a successful run; failing to draw it does not undo the run."""
    try:
        return summary.write_run_report(lake, date, execution_id)
    except (OSError, ValueError, KeyError) as err:
        print(f"WARNING the report was not written: {err}", file=sys.stderr)
        return None


class LakeError(ValueError):
    """--lake names something that cannot be the lake folder."""


def _prepare_lake(path: Path) -> Path:
    lake = path.resolve()
    if lake.exists() and not lake.is_dir():
        raise LakeError(f"--lake {path}: is not a folder")
    lake.mkdir(parents=True, exist_ok=True)
    return lake


def run_command(args: argparse.Namespace) -> int:
    lake = _prepare_lake(args.lake)
    definition = _read_definition(args.definition, args.instance_count)
    parameter_values = _parameter_values(args)
    typed_parameters(definition, parameter_values)  # bad --param: fail before any work
    if args.demo:
        print(ensure_demo_data(lake, args.date, args.demo_years, args.demo_models), flush=True)
    request = RunRequest(
        definition=definition,
        lake=lake,
        execution_id=args.execution_id or new_execution_id(),
        start_time=start_datetime(),
        parameter_values=parameter_values,
        pipeline_name=LOCAL_PIPELINE_NAME,
        on_step=_print_progress,
    )
    print(f"execution {request.execution_id} for {args.date} (lake {lake})", flush=True)
    outcome = execute(request)
    report = None
    if outcome.succeeded and not args.no_report:
        report = _write_report(lake, args.date, outcome.execution_id)
    print(summary.render(lake, args.date, outcome, report))
    if outcome.succeeded:
        return 0
    return EXIT_GATE_FAILED if outcome.gate_failed else EXIT_STEP_FAILED


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    try:
        if args.command == "definition":
            text = local_definition()
            if args.out:
                args.out.write_text(text)
            else:
                print(text)
            return 0
        return run_command(args)
    except (DefinitionError, KeyError, LakeError) as err:
        print(f"ERROR {err}", file=sys.stderr)
        return EXIT_BAD_INPUT
    except OSError as err:
        print(f"ERROR the lake: {describe_os_error(err)}", file=sys.stderr)
        return EXIT_LAKE_UNWRITABLE
