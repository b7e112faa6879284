"""`python -m rerun history`: which data days ran, how each execution ended, why, how long it took,
and the quality gate's figures.

    python -m rerun history --env prod                       # the last 14 data days
    python -m rerun history --env prod --from 2026-11-01 --to 2026-11-20
    python -m rerun history --env prod --date 2026-11-20

One row per execution (a day re-run three times has three rows), newest data day first. Status,
start, end and failure reason come from SageMaker (ListPipelineExecutions, through botocore's
paginator, then DescribePipelineExecution); the gate's figures from the execution's run folder,
`runs/<execution id>/evaluation/evaluation.json` in the data bucket, which TrainEvaluation writes
whether the gate passes or not. An execution that failed before TrainEvaluation has no figures.
The same figures are in the Glue table `run_history` for BI (see pipeline_code/run_history.py).

Exit status as `python -m rerun` (rerun/cli.py): 0, 2 bad arguments, 3-9 AWS failures.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pipeline_code import run_folder
from rerun.executions import Execution, list_executions
from rerun.session import (
    DEFAULT_CDK_JSON,
    EXIT_USAGE,
    AwsClients,
    CommandFailed,
    RerunError,
    as_command_failure,
    aws_clients,
    caller_account,
    check_account,
    read_environments,
)

DEFAULT_DAYS = 14
TERMINAL = frozenset({"Succeeded", "Failed", "Stopped"})


@dataclass(frozen=True)
class HistoryRow:
    data_day: dt.date | None
    execution_id: str
    status: str
    start: dt.datetime
    seconds: float | None  # None: still running
    failure_reason: str
    gate: str


def parse_args(argv: Sequence[str]) -> argparse.Namespace:
    from rerun.cli import parse_date

    parser = argparse.ArgumentParser(
        prog="python -m rerun history",
        description="List the pipeline's executions by data day: status, start, duration,"
        " failure reason and the quality gate's figures.",
    )
    parser.add_argument("--env", required=True, help="environment in cdk.json, e.g. prod")
    day = {"type": parse_date, "metavar": "YYYY-MM-DD"}
    parser.add_argument("--date", **day, help="one data day")
    parser.add_argument("--from", dest="first", **day, help="first data day")
    parser.add_argument("--to", dest="last", **day, help="last data day (inclusive)")
    parser.add_argument("--cdk-json", type=Path, default=DEFAULT_CDK_JSON)
    return parser.parse_args(list(argv))


def requested_days(args: argparse.Namespace, today: dt.date) -> tuple[dt.date, dt.date]:
    if args.date is not None:
        if args.first or args.last:
            raise RerunError("give either --date or --from/--to, not both")
        return args.date, args.date
    last = args.last or today
    first = args.first or last - dt.timedelta(days=DEFAULT_DAYS - 1)
    if first > last:
        raise RerunError(f"--from {first} is after --to {last}")
    return first, last


def gate_summary(evaluation: dict[str, Any] | None) -> str:
    """`passed MASE 0.812 rel 0.731 largest 0.950 series 30`, or `-` without figures."""
    if not evaluation:
        return "-"
    overall, gate = evaluation.get("overall", {}), evaluation.get("gate", {})
    verdict = "passed" if gate.get("passed") else "failed"

    def figure(key: str) -> str:
        value = overall.get(key)
        return f"{value:.3f}" if isinstance(value, int | float) else "?"

    return (
        f"{verdict} MASE {figure('mase')} rel {figure('relative_mase')}"
        f" largest {figure('largest_series_relative_mase')} series {overall.get('n_series', '?')}"
    )


class UnreadableEvaluation(Exception):
    """The run folder's evaluation.json exists, or may, but cannot be read."""


def read_evaluation(s3: Any, bucket: str, execution_id: str) -> dict[str, Any] | None:
    """The run folder's evaluation.json, or None when the run never got that far."""
    from botocore.exceptions import ClientError

    from rerun.aws_errors import error_code

    key = "/".join([run_folder.RUNS, execution_id, *run_folder.EVALUATION])
    try:
        body = s3.get_object(Bucket=bucket, Key=key)["Body"].read()
    except s3.exceptions.NoSuchKey:
        return None
    except ClientError as err:
        # The row still says what SageMaker knows; only the figures are missing.
        raise UnreadableEvaluation(error_code(err) or "error") from err
    try:
        return json.loads(body)
    except ValueError as err:
        raise UnreadableEvaluation("not JSON") from err


def gate_cell(s3: Any, bucket: str, execution_id: str) -> str:
    try:
        return gate_summary(read_evaluation(s3, bucket, execution_id))
    except UnreadableEvaluation as err:
        return f"unreadable ({err})"


def history_row(clients: AwsClients, bucket: str, execution: Execution) -> HistoryRow:
    described = clients.sagemaker.describe_pipeline_execution(PipelineExecutionArn=execution.arn)
    status = str(described.get("PipelineExecutionStatus") or execution.status)
    seconds = None
    if status in TERMINAL and described.get("LastModifiedTime"):
        seconds = (_utc(described["LastModifiedTime"]) - execution.start).total_seconds()
    return HistoryRow(
        data_day=execution.data_day,
        execution_id=execution.execution_id,
        status=status,
        start=execution.start,
        seconds=seconds if seconds is None else max(seconds, 0.0),
        failure_reason=" ".join(str(described.get("FailureReason") or "").split()),
        gate=gate_cell(clients.s3, bucket, execution.execution_id),
    )


def _utc(value: Any) -> dt.datetime:
    return value if value.tzinfo else value.replace(tzinfo=dt.UTC)


def _duration(seconds: float | None) -> str:
    if seconds is None:
        return "running"
    whole = round(seconds)
    return f"{whole // 3600}:{whole % 3600 // 60:02d}:{whole % 60:02d}"


def format_history(rows: Sequence[HistoryRow]) -> str:
    header = (
        "data day",
        "status",
        "start (UTC)",
        "duration",
        "execution",
        "gate",
        "failure reason",
    )
    cells = [header] + [
        (
            str(row.data_day or "?"),
            row.status,
            row.start.astimezone(dt.UTC).strftime("%Y-%m-%d %H:%M"),
            _duration(row.seconds),
            row.execution_id,
            row.gate,
            row.failure_reason or "-",
        )
        for row in rows
    ]
    widths = [max(len(line[column]) for line in cells) for column in range(len(header) - 1)]
    return "\n".join(
        "  ".join(cell.ljust(width) for cell, width in zip(line[:-1], widths, strict=True))
        + "  "
        + line[-1]
        for line in cells
    )


def collect(
    clients: AwsClients, env: Any, account: str, first: dt.date, last: dt.date
) -> list[HistoryRow]:
    # An execution for a data day starts on or after that day, never before.
    executions = list_executions(
        clients.sagemaker,
        env.pipeline_name,
        env.schedule.timezone,
        created_after=first - dt.timedelta(days=1),
    )
    wanted = [e for e in executions if e.data_day is not None and first <= e.data_day <= last]
    bucket = env.data_bucket_name(account)
    rows = [history_row(clients, bucket, execution) for execution in wanted]
    return sorted(rows, key=lambda row: (row.data_day or dt.date.min, row.start), reverse=True)


def main(
    argv: Sequence[str],
    *,
    client_factory: Callable[[str], AwsClients] = aws_clients,
    clock: Any = None,
) -> int:
    from stacks.config import ConfigError, load_environment

    args = parse_args(argv)
    today = clock.today() if clock else dt.datetime.now(dt.UTC).date()
    try:
        first, last = requested_days(args, today)
        env = load_environment(read_environments(args.cdk_json), args.env)
    except (RerunError, ConfigError) as err:
        print(f"error: {err}", file=sys.stderr)
        return EXIT_USAGE
    try:
        clients = client_factory(env.region)
        account = caller_account(clients)
        check_account(env.account, account, env.name)
        rows = collect(clients, env, account, first, last)
    except CommandFailed as failure:
        print(f"error: {failure.message}", file=sys.stderr)
        return failure.exit_code
    except Exception as err:
        failure = as_command_failure(err, env.region)
        if failure is None:
            raise
        print(f"error: {failure.message}", file=sys.stderr)
        return failure.exit_code
    print(f"{env.pipeline_name} ({account}, {env.region}): data days {first}..{last}")
    print(format_history(rows) if rows else "no executions for these data days")
    return 0
