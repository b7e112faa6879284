"""Re-run one data day, or backfill a range of them, on the deployed pipeline.

    python -m rerun --env prod --date 2026-11-20 [--wait]
    python -m rerun --env prod --from 2026-11-01 --to 2026-11-20 \\
        [--concurrency 2] [--wait] [--poll-seconds 30]

(`make rerun ENV=prod DATE=2026-11-20`, `make backfill ENV=prod FROM=... TO=... [CONCURRENCY=2]`.)

Each date becomes one pipeline execution with `ExecutionDate=YYYY-MM-DD` and the display name
`rerun-YYYY-MM-DD`, so it is easy to find in the console next to the scheduled runs.

How this differs from the scheduled run: EventBridge Scheduler passes its scheduled time, a UTC
timestamp, and the pipeline takes the data day to be the day before that timestamp's local date in
the schedule's time zone (see run_context.resolve_execution_date). This command passes a plain
date, which the pipeline takes as the data day exactly as given. To redo the run scheduled for the
morning of 2026-11-21 in Tokyo, re-run `--date 2026-11-20`.

What a re-run changes: the execution writes to a fresh run folder (keyed by its own execution id)
and PostProc publishes by switching only that date's partition of the `forecasts` and
`forecast_metrics` tables. Other dates' partitions are untouched, and readers see either the old
or the new partition, never a half-written one. A re-run whose quality gate fails publishes
nothing, so the date keeps its previous results.

At most `--concurrency` executions started by this command run at once (training-job quotas are
per account; a scheduled run in flight at the same time counts against the same quota). Without
`--wait` the command still polls while it waits for a free slot, and returns once the last date is
started. With `--wait` it returns when every date has finished. Ctrl-C stops starting new dates;
executions already started keep running on SageMaker and are listed with their ARNs.

Exit status: 0 when every date Succeeded (with --wait) or every date was started and none was
seen to fail (without --wait); 1 otherwise; 2 for bad arguments or configuration; 130 after Ctrl-C.

This module runs on an operator's machine, not in a job: it is not part of the job asset, and it
imports `stacks.config` only inside main() so that the rest of pipeline_code never depends on it.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import sys
import time
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

DEFAULT_CDK_JSON = Path(__file__).resolve().parents[1] / "cdk.json"
MAX_RANGE_DAYS = 366
DEFAULT_CONCURRENCY = 2
DEFAULT_POLL_SECONDS = 30.0
EXECUTION_DATE_PARAMETER = "ExecutionDate"

EXECUTING = "Executing"
SUCCEEDED = "Succeeded"
TERMINAL_STATUSES = frozenset({"Succeeded", "Failed", "Stopped"})
# Outcomes this command assigns itself, for dates SageMaker never saw.
NOT_STARTED = "NotStarted"
START_FAILED = "StartFailed"

EXIT_OK = 0
EXIT_FAILED = 1
EXIT_USAGE = 2
EXIT_INTERRUPTED = 130


class RerunError(ValueError):
    """Bad arguments or a pipeline that cannot be used; the message says what to fix."""


class Clock(Protocol):
    def today(self) -> dt.date: ...

    def sleep(self, seconds: float) -> None: ...


class SystemClock:
    """The real clock: today in UTC (the same day for every operator) and time.sleep."""

    def today(self) -> dt.date:
        return dt.datetime.now(dt.UTC).date()

    def sleep(self, seconds: float) -> None:
        time.sleep(seconds)


@dataclass
class DateOutcome:
    """What happened to one date; status is SageMaker's, or NOT_STARTED / START_FAILED."""

    day: dt.date
    status: str = NOT_STARTED
    failure_reason: str = ""
    execution_arn: str = ""

    @property
    def finished(self) -> bool:
        return self.status in TERMINAL_STATUSES


# ---------------------------------------------------------------------------------------------
# Dates


def parse_date(text: str) -> dt.date:
    """argparse type for YYYY-MM-DD, with a message that shows the expected form."""
    try:
        if len(text) != 10:
            raise ValueError(text)
        return dt.date.fromisoformat(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a date of the form YYYY-MM-DD") from None


def dates_to_run(first: dt.date, last: dt.date, today: dt.date) -> list[dt.date]:
    """Every day from first to last inclusive, after checking the range makes sense."""
    if first > last:
        raise RerunError(f"--from {first} is after --to {last}")
    if last > today:
        raise RerunError(f"{last} is in the future (today is {today} in UTC); it has no data yet")
    days = (last - first).days + 1
    if days > MAX_RANGE_DAYS:
        raise RerunError(
            f"{first}..{last} is {days} days; backfill at most {MAX_RANGE_DAYS} days per command"
        )
    return [first + dt.timedelta(days=offset) for offset in range(days)]


# ---------------------------------------------------------------------------------------------
# SageMaker calls


def display_name(day: dt.date) -> str:
    """`rerun-YYYY-MM-DD`: within SageMaker's [a-zA-Z0-9-]{1,82} for display names."""
    return f"rerun-{day.isoformat()}"


def client_request_token(day: dt.date) -> str:
    """Unique per start (32-128 chars); botocore resends it on retries, so a retried start
    of the same date cannot create a second execution."""
    return f"rerun-{day.isoformat()}-{uuid.uuid4().hex}"


def short_id(execution_arn: str) -> str:
    """The execution id at the end of arn:...:pipeline/<name>/execution/<id>."""
    return execution_arn.rsplit("/", 1)[-1] if execution_arn else "-"


def check_pipeline_exists(client: Any, pipeline_name: str, region: str) -> None:
    from botocore.exceptions import ClientError

    try:
        client.describe_pipeline(PipelineName=pipeline_name)
    except ClientError as err:
        code = err.response.get("Error", {}).get("Code", "")
        if code in {"ResourceNotFound", "ValidationException"}:
            raise RerunError(
                f"pipeline {pipeline_name} not found in {region}: is this environment deployed,"
                " and are your AWS credentials for its account?"
            ) from err
        raise


def start_execution(client: Any, pipeline_name: str, day: dt.date) -> str:
    response = client.start_pipeline_execution(
        PipelineName=pipeline_name,
        PipelineParameters=[{"Name": EXECUTION_DATE_PARAMETER, "Value": day.isoformat()}],
        PipelineExecutionDisplayName=display_name(day),
        PipelineExecutionDescription=(
            f"Manual re-run of data day {day.isoformat()} (python -m rerun)"
        ),
        ClientRequestToken=client_request_token(day),
    )
    return str(response["PipelineExecutionArn"])


def describe_status(client: Any, execution_arn: str) -> tuple[str, str]:
    """(status, failure reason) of one execution."""
    response = client.describe_pipeline_execution(PipelineExecutionArn=execution_arn)
    return str(response["PipelineExecutionStatus"]), str(response.get("FailureReason") or "")


# ---------------------------------------------------------------------------------------------
# Running the dates


def report_progress(outcome: DateOutcome) -> None:
    line = f"{outcome.day}  {short_id(outcome.execution_arn):<14}  {outcome.status}"
    if outcome.failure_reason:
        line += f"  {outcome.failure_reason}"
    print(line, flush=True)


def start_one(client: Any, pipeline_name: str, outcome: DateOutcome) -> None:
    from botocore.exceptions import BotoCoreError, ClientError

    try:
        outcome.execution_arn = start_execution(client, pipeline_name, outcome.day)
        outcome.status = EXECUTING
    except (ClientError, BotoCoreError) as err:
        # One refused start (after botocore's own retries) should not abandon the other dates.
        outcome.status = START_FAILED
        outcome.failure_reason = str(err)
    report_progress(outcome)


def poll_in_flight(client: Any, in_flight: list[DateOutcome]) -> None:
    """Refresh every running date, report changes, drop the finished ones from in_flight."""
    from botocore.exceptions import BotoCoreError, ClientError

    for outcome in list(in_flight):
        try:
            status, reason = describe_status(client, outcome.execution_arn)
        except (ClientError, BotoCoreError) as err:
            # A status read that still fails after retries is retried on the next poll.
            print(f"{outcome.day}  could not read status: {err}", file=sys.stderr, flush=True)
            continue
        if status != outcome.status:
            outcome.status, outcome.failure_reason = status, reason
            report_progress(outcome)
        if outcome.finished:
            in_flight.remove(outcome)


def wait_for_free_slot(
    client: Any, in_flight: list[DateOutcome], concurrency: int, poll_seconds: float, clock: Clock
) -> None:
    while len(in_flight) >= concurrency:
        clock.sleep(poll_seconds)
        poll_in_flight(client, in_flight)


def run_dates(
    client: Any,
    pipeline_name: str,
    dates: Sequence[dt.date],
    *,
    concurrency: int,
    wait: bool,
    poll_seconds: float,
    clock: Clock,
) -> tuple[list[DateOutcome], bool]:
    """Start every date, never more than `concurrency` in flight; with wait, until all finish.

    Returns each date's outcome (in date order) and whether Ctrl-C cut the run short.
    """
    outcomes = [DateOutcome(day) for day in dates]
    in_flight: list[DateOutcome] = []
    try:
        for outcome in outcomes:
            wait_for_free_slot(client, in_flight, concurrency, poll_seconds, clock)
            start_one(client, pipeline_name, outcome)
            if outcome.status == EXECUTING:
                in_flight.append(outcome)
        if wait:
            wait_for_free_slot(client, in_flight, 1, poll_seconds, clock)
    except KeyboardInterrupt:
        print("\ninterrupted: no further dates will be started", file=sys.stderr, flush=True)
        return outcomes, True
    return outcomes, False


def all_ok(outcomes: Sequence[DateOutcome], waited: bool) -> bool:
    if waited:
        return all(outcome.status == SUCCEEDED for outcome in outcomes)
    return all(outcome.status in {EXECUTING, SUCCEEDED} for outcome in outcomes)


def format_table(outcomes: Sequence[DateOutcome]) -> str:
    rows = [("date", "status", "failure reason", "execution ARN")]
    rows += [
        (str(o.day), o.status, o.failure_reason or "-", o.execution_arn or "-") for o in outcomes
    ]
    widths = [max(len(row[column]) for row in rows) for column in range(3)]
    return "\n".join(
        "  ".join(cell.ljust(width) for cell, width in zip(row[:3], widths, strict=True))
        + "  "
        + row[3]
        for row in rows
    )


# ---------------------------------------------------------------------------------------------
# Command line


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m rerun",
        description="Re-run one data day, or backfill a range, on the deployed pipeline.",
    )
    parser.add_argument("--env", required=True, help="environment in cdk.json, e.g. prod")
    day = {"type": parse_date, "metavar": "YYYY-MM-DD"}
    parser.add_argument("--date", **day, help="the one data day to re-run")
    parser.add_argument("--from", dest="first", **day, help="first day of a backfill")
    parser.add_argument("--to", dest="last", **day, help="last day of a backfill (inclusive)")
    parser.add_argument(
        "--concurrency",
        type=int,
        default=DEFAULT_CONCURRENCY,
        help=f"executions in flight at once (default {DEFAULT_CONCURRENCY})",
    )
    parser.add_argument("--wait", action="store_true", help="wait until every date finishes")
    parser.add_argument(
        "--poll-seconds",
        type=float,
        default=DEFAULT_POLL_SECONDS,
        help=f"seconds between status checks (default {DEFAULT_POLL_SECONDS:g})",
    )
    parser.add_argument(
        "--cdk-json",
        type=Path,
        default=DEFAULT_CDK_JSON,
        help="the cdk.json to read environments from (default: the repository's)",
    )
    return parser


def requested_range(args: argparse.Namespace) -> tuple[dt.date, dt.date]:
    if args.date is not None:
        if args.first is not None or args.last is not None:
            raise RerunError("give either --date or --from/--to, not both")
        return args.date, args.date
    if args.first is None or args.last is None:
        raise RerunError("give --date DAY, or both --from DAY and --to DAY")
    return args.first, args.last


def check_tuning(args: argparse.Namespace) -> None:
    if args.concurrency < 1:
        raise RerunError(f"--concurrency must be at least 1, got {args.concurrency}")
    if args.poll_seconds <= 0:
        raise RerunError(f"--poll-seconds must be positive, got {args.poll_seconds}")


def read_environments(cdk_json: Path) -> Any:
    try:
        return json.loads(cdk_json.read_text())["context"]["environments"]
    except (OSError, ValueError, KeyError, TypeError) as err:
        raise RerunError(f"{cdk_json}: cannot read context.environments ({err})") from err


def sagemaker_client(region: str) -> Any:
    import boto3
    from botocore.config import Config

    # Adaptive retries also slow the client down when SageMaker throttles, which a long
    # backfill's polling would otherwise keep provoking.
    config = Config(retries={"mode": "adaptive", "max_attempts": 10})
    return boto3.client("sagemaker", region_name=region, config=config)


def main(
    argv: Sequence[str] | None = None,
    *,
    client_factory: Callable[[str], Any] = sagemaker_client,
    clock: Clock | None = None,
) -> int:
    from stacks.config import ConfigError, load_environment

    args = build_parser().parse_args(argv)
    clock = clock or SystemClock()
    try:
        first, last = requested_range(args)
        check_tuning(args)
        dates = dates_to_run(first, last, clock.today())
        env = load_environment(read_environments(args.cdk_json), args.env)
        client = client_factory(env.region)
        check_pipeline_exists(client, env.pipeline_name, env.region)
    except (RerunError, ConfigError) as err:
        print(f"error: {err}", file=sys.stderr)
        return EXIT_USAGE

    print(
        f"{env.pipeline_name} ({env.region}): {len(dates)} date(s) {first}..{last},"
        f" at most {args.concurrency} at once{', waiting for results' if args.wait else ''}",
        flush=True,
    )
    outcomes, interrupted = run_dates(
        client,
        env.pipeline_name,
        dates,
        concurrency=args.concurrency,
        wait=args.wait,
        poll_seconds=args.poll_seconds,
        clock=clock,
    )
    print()
    print(format_table(outcomes), flush=True)
    if interrupted:
        print("started executions keep running; stop them in the console if needed")
        return EXIT_INTERRUPTED
    return EXIT_OK if all_ok(outcomes, args.wait) else EXIT_FAILED


if __name__ == "__main__":
    sys.exit(main())
