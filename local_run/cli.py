"""`python -m local_run`: run the pipeline definition on this machine.

    python -m local_run run --lake .lake --date 2025-01-31 --demo
    python -m local_run run --lake .lake --date 2025-01-31 --env prod
    python -m local_run run --lake .lake --date 2025-01-31 --param MaxMase=1.2
    python -m local_run run --lake .lake --date 2025-01-31 --definition pipeline.json
    python -m local_run run --lake .lake --date 2025-01-31 --instance-count 3
    python -m local_run definition --env prod > pipeline.json
    python -m local_run clean --lake .lake

The definition is built from an environment of cdk.json (--env, default dev) with the same code
`cdk synth` uses, so a local run tries exactly the settings that deploy.

--demo generates demo data only into a lake folder that is absent or empty, or that the demo
created itself; `clean` removes only what the demo and local runs wrote in such a folder.

Exit codes: 0 success, 1 a step failed (its one-line reason is printed; another run publishing
the same date is one), 2 bad input (arguments, definition, environment, a --lake that is missing,
not a folder, or not the demo's), 3 the quality gate failed (the FailStep was reached), 4 the lake
cannot be written (disk full, read-only, permissions). Nothing is published unless the run
succeeds.
"""

from __future__ import annotations

import argparse
import dataclasses
import datetime as dt
import json
import sys
from pathlib import Path
from typing import NoReturn

from local_run import demo_lake, summary
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
from stacks.config import ConfigError, EnvironmentConfig, load_environment

EXIT_STEP_FAILED = 1
EXIT_BAD_INPUT = 2
EXIT_GATE_FAILED = 3
EXIT_LAKE_UNWRITABLE = 4

DEFAULT_ENV = "dev"
DEFAULT_CDK_JSON = Path(__file__).resolve().parents[1] / "cdk.json"


def load_local_environment(name: str, cdk_json: Path = DEFAULT_CDK_JSON) -> EnvironmentConfig:
    """An environment of cdk.json, checked as synth checks it (ConfigError names a bad key)."""
    try:
        environments = json.loads(cdk_json.read_text())["context"]["environments"]
    except (OSError, ValueError, KeyError, TypeError) as err:
        raise ConfigError(f"{cdk_json}: cannot read context.environments ({err})") from None
    return load_environment(environments, name)


def local_settings(
    config: EnvironmentConfig, instance_count: int | None = None, compute: str | None = None
) -> pipeline_definition.DefinitionSettings:
    """The environment's definition settings, with `instance_count` instances per job (the
    runner runs each instance as a process) and `compute` if given; settings that cannot go
    together (compute lambda on more than one instance) fail naming the option."""
    settings = pipeline_definition.environment_settings(config)
    changes = {"instance_count": instance_count, "compute": compute}
    try:
        return dataclasses.replace(
            settings, **{key: value for key, value in changes.items() if value is not None}
        )
    except ValueError as err:
        raise DefinitionError("--compute/--instance-count", str(err)) from None


def local_definition(
    config: EnvironmentConfig, instance_count: int | None = None, compute: str | None = None
) -> str:
    """The definition as `cdk synth` builds it for the environment (placeholders included),
    with the local run's overrides (`local_settings`)."""
    return pipeline_definition.build_definition(local_settings(config, instance_count, compute))


def _date(text: str) -> dt.date:
    try:
        value = dt.date.fromisoformat(text)
    except ValueError as err:
        raise argparse.ArgumentTypeError(f"--date {text!r} is not a YYYY-MM-DD date") from err
    problem = date_range_problem(value)
    if problem:
        raise argparse.ArgumentTypeError(problem)
    today = dt.datetime.now(dt.UTC).date()
    if value > today:
        # As `rerun` refuses it: a data day that has not happened has no data, so a run of it
        # would forecast from a history that ends too early.
        raise argparse.ArgumentTypeError(
            f"--date {value} is in the future (today is {today} in UTC); it has no data yet"
        )
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


def _parameters_help() -> str:
    lines = ["pipeline parameters (--param NAME=VALUE; defaults from the environment):"]
    for name, meaning in pipeline_definition.PARAMETERS.items():
        if name != "ExecutionDate":  # set with --date
            lines.append(f"  {name:<22} {meaning}")
    return "\n".join(lines)


def _add_environment_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--env",
        help=f"build the definition from this environment of cdk.json (default {DEFAULT_ENV})",
    )
    parser.add_argument(
        "--cdk-json",
        type=Path,
        default=DEFAULT_CDK_JSON,
        help="the cdk.json to read (default: the repository's)",
    )


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = _Parser(
        prog="python -m local_run",
        description=__doc__.split("\n")[0],
        epilog=__doc__[__doc__.index("The definition is built") :],
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    commands = parser.add_subparsers(dest="command", required=True)
    run = commands.add_parser(
        "run",
        help="execute the pipeline for one execution date",
        epilog=_parameters_help(),
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    run.add_argument(
        "--lake", type=Path, required=True, help="the local folder standing in for the data bucket"
    )
    run.add_argument("--date", type=_date, required=True, help="execution date, YYYY-MM-DD")
    run.add_argument(
        "--demo",
        action="store_true",
        help="fill the lake with demo data first; only a new or empty folder, or one the demo"
        " created",
    )
    run.add_argument(
        "--demo-models",
        type=int,
        help="car models in generated demo data (default: as the lake's demo data, else 30)",
    )
    run.add_argument(
        "--demo-years",
        type=float,
        help="years of generated demo data (default: as the lake's demo data, else 3)",
    )
    _add_environment_arguments(run)
    run.add_argument(
        "--definition", type=Path, help="a definition JSON (default: build it from --env)"
    )
    run.add_argument(
        "--instance-count",
        type=_instance_count,
        default=None,
        help="instances per job of the built definition, each run as a process (default 1)",
    )
    run.add_argument(
        "--compute",
        choices=pipeline_definition.COMPUTE_KINDS,
        default=None,
        help="run the steps as training jobs or as Lambda steps (default: the environment's"
        " pipeline.compute)",
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
    _add_environment_arguments(show)
    show.add_argument("--out", type=Path, help="write it to this file instead")
    clean = commands.add_parser(
        "clean", help="remove what the demo and local runs wrote in a lake the demo created"
    )
    clean.add_argument("--lake", type=Path, required=True, help="the lake folder")
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


def _environment(args: argparse.Namespace) -> EnvironmentConfig | None:
    """The chosen environment; None when a definition file is given instead."""
    if args.command == "run" and args.definition is not None:
        overrides = {"--env": args.env, "--instance-count": args.instance_count}
        overrides["--compute"] = args.compute
        given = [option for option, value in overrides.items() if value is not None]
        if given:
            option = given[0]
            raise DefinitionError(option, "applies to the built definition, not to --definition")
        return None
    return load_local_environment(args.env or DEFAULT_ENV, args.cdk_json)


def _read_definition(args: argparse.Namespace, config: EnvironmentConfig | None) -> dict:
    if config is not None:
        text = local_definition(config, args.instance_count, args.compute)
        return load_definition(text, f"the definition of environment {config.name}")
    path = args.definition
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


def _print_step_progress(step: str, text: str) -> None:
    print(f"  {step:<18} {text}", flush=True)


def _write_report(lake: Path, date: dt.date, execution_id: str) -> Path | None:
    """The report is a view of a successful run; failing to draw it does not undo the run."""
    try:
        return summary.write_run_report(lake, date, execution_id)
    except (OSError, ValueError, KeyError) as err:
        print(f"WARNING the report was not written: {err}", file=sys.stderr)
        return None


class LakeError(ValueError):
    """--lake names something that cannot be the lake folder."""


def _check_lake(path: Path, demo: bool) -> Path:
    """The lake folder; only --demo may start from a folder that does not exist yet."""
    lake = path.resolve()
    if lake.exists() and not lake.is_dir():
        raise LakeError(f"--lake {path}: is not a folder")
    if not lake.exists() and not demo:
        raise LakeError(
            f"--lake {path}: no such folder; point it at the folder holding your"
            f" {demo_lake.DEMO_TABLE} table, or add --demo to generate demo data there"
        )
    return lake


def _lambda_timeout(config: EnvironmentConfig | None) -> int:
    """The Lambda steps' function timeout: the environment's, or the Lambda step's longest."""
    if config is None:
        return pipeline_definition.LAMBDA_STEP_MAX_SECONDS
    return config.pipeline.lambda_timeout_seconds


def _pipeline_name(config: EnvironmentConfig | None) -> str:
    return config.pipeline_name if config is not None else "forecast-local"


def run_command(args: argparse.Namespace) -> int:
    lake = _check_lake(args.lake, args.demo)
    if args.demo:
        demo_lake.claim(lake)  # a lake the demo may not write is refused before any work
    config = _environment(args)
    definition = _read_definition(args, config)
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
        pipeline_name=_pipeline_name(config),
        lambda_timeout_seconds=_lambda_timeout(config),
        on_step=_print_progress,
        on_progress=_print_step_progress,
    )
    source = f"environment {config.name}" if config else f"definition {args.definition}"
    print(f"execution {request.execution_id} for {args.date} ({source}, lake {lake})", flush=True)
    outcome = execute(request)
    report = None
    if outcome.succeeded and not args.no_report:
        report = _write_report(lake, args.date, outcome.execution_id)
    print(summary.render(lake, args.date, outcome, report, source))
    if outcome.succeeded:
        return 0
    return EXIT_GATE_FAILED if outcome.gate_failed else EXIT_STEP_FAILED


def clean_command(args: argparse.Namespace) -> int:
    lake = args.lake.resolve()
    cleaned = demo_lake.clean(lake)
    print(f"clean: removed {cleaned.removed} files the demo and local runs wrote in {lake}")
    if not lake.exists():
        print(f"clean: removed the lake folder {lake}, which the demo created")
    if cleaned.kept:
        shown = ", ".join(cleaned.kept[:5]) + (" ..." if len(cleaned.kept) > 5 else "")
        files = "file" if len(cleaned.kept) == 1 else "files"
        print(f"clean: kept {len(cleaned.kept)} {files} the demo did not write: {shown}")
    return 0


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    try:
        if args.command == "definition":
            config = _environment(args)
            assert config is not None
            text = local_definition(config)
            if args.out:
                args.out.write_text(text)
            else:
                print(text)
            return 0
        if args.command == "clean":
            return clean_command(args)
        return run_command(args)
    except (DefinitionError, KeyError, LakeError, ConfigError, demo_lake.LakeRefused) as err:
        print(f"ERROR {err}", file=sys.stderr)
        return EXIT_BAD_INPUT
    except OSError as err:
        print(f"ERROR the lake: {describe_os_error(err)}", file=sys.stderr)
        return EXIT_LAKE_UNWRITABLE
