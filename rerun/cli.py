"""Re-run one data day, or backfill a range of them, on the deployed pipeline; or list its history.

    python -m rerun --env prod --date 2026-11-20 [--wait] [--dry-run]
    python -m rerun --env prod --from 2026-11-01 --to 2026-11-20 \\
        [--concurrency 2] [--wait] [--poll-seconds 30] [--dry-run] [--force] [--yes]
    python -m rerun history --env prod [--from DAY --to DAY | --date DAY]   (rerun/history.py)

(`make rerun ENV=prod DATE=2026-11-20`, `make backfill ENV=prod FROM=... TO=... [CONCURRENCY=2]`.)

Each date becomes one pipeline execution with `ExecutionDate=YYYY-MM-DD` and the display name
`rerun-YYYY-MM-DD`, so it is easy to find in the console next to the scheduled runs.

How this differs from the scheduled run: EventBridge Scheduler passes its scheduled time, a UTC
timestamp, and the pipeline takes the data day to be the day before that timestamp's local date in
the schedule's time zone (see run_context.resolve_execution_date). This command passes a plain
date, which the pipeline takes as the data day exactly as given. To redo the run scheduled for the
morning of 2026-11-21 in Tokyo, re-run `--date 2026-11-20`.

Before anything starts, the command says what it would start: the dates, the pipeline, the
account (from STS, when the credentials allow) and the region. `--dry-run` stops there. A range
(`--from/--to`) leaves out every date whose latest execution succeeded or is still running,
unless `--force`; a single `--date` always runs (that is what a re-run after a data fix is for).
More than `CONFIRM_ABOVE` dates to start asks for confirmation, unless `--yes`; without a
terminal to ask on, it refuses.

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
seen to fail (without --wait), and after a dry run; 1 otherwise; 2 bad arguments or
configuration; 3 no, wrong or expired credentials (or credentials of another account than the
environment's); 4 unknown AWS profile; 5 AWS cannot be reached; 6 access denied; 7 throttled
after retries; 8 confirmation refused or impossible; 9 another AWS error; 130 after Ctrl-C. Every
failure is one line on stderr, never a traceback.

This module runs on an operator's machine, not in a job: it is not part of the job asset, and it
imports `stacks.config` only inside main() so that the rest of pipeline_code never depends on it.
"""

from __future__ import annotations

import argparse
import datetime as dt
import sys
import time
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

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
EXIT_NOT_CONFIRMED = 8
EXIT_INTERRUPTED = 130
CONFIRM_ABOVE = 5
"""A run of more dates than this asks before it starts (a handful is what a re-run needs)."""


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
# What would start


@dataclass
class Plan:
    """What the command is about to start, as the operator is shown it before anything starts."""

    pipeline_name: str
    region: str
    account: str  # the account, or "unknown (why)"
    dates: list[dt.date]
    skipped: dict[dt.date, Any]  # date -> the execution that covers it (executions.Execution)
    notes: list[str]


def _compact_dates(days: Sequence[dt.date]) -> list[str]:
    """Runs of consecutive days as `first..last`, single days alone."""
    parts: list[str] = []
    start = previous = None
    for day in days:
        if previous is not None and day == previous + dt.timedelta(days=1):
            previous = day
            continue
        if start is not None:
            parts.append(str(start) if start == previous else f"{start}..{previous}")
        start = previous = day
    if start is not None:
        parts.append(str(start) if start == previous else f"{start}..{previous}")
    return parts


def describe_plan(plan: Plan, dry_run: bool) -> str:
    verb = "would start" if dry_run else "starting"
    lines = [f"pipeline {plan.pipeline_name}  account {plan.account}  region {plan.region}"]
    lines.append(f"{verb} {len(plan.dates)} execution(s), one per data day:")
    lines += [f"  {part}" for part in _compact_dates(plan.dates)] or ["  (none)"]
    if plan.skipped:
        lines.append(
            f"skipped {len(plan.skipped)} day(s) whose latest execution succeeded or is running"
            " (--force runs them too):"
        )
        lines += [
            f"  {day}  {execution.status:<10}  {execution.execution_id}"
            for day, execution in sorted(plan.skipped.items())
        ]
    lines += [f"note: {note}" for note in plan.notes]
    return "\n".join(lines)


def confirm(count: int, plan: Plan, assume_yes: bool, stdin: Any) -> None:
    """More than CONFIRM_ABOVE executions need a yes: --yes, or an answer on the terminal."""
    if count <= CONFIRM_ABOVE or assume_yes:
        return
    if not stdin.isatty():
        raise CommandFailed(
            EXIT_NOT_CONFIRMED,
            f"{count} executions need confirmation and there is no terminal to ask on:"
            " check them with --dry-run, then pass --yes (make: YES=1)",
        )
    print(
        f"Start {count} executions of {plan.pipeline_name} in account {plan.account},"
        f" {plan.region}? [y/N] ",
        end="",
        flush=True,
    )
    answer = stdin.readline().strip().lower()
    if answer not in {"y", "yes"}:
        raise CommandFailed(EXIT_NOT_CONFIRMED, "not confirmed: nothing was started")


# ---------------------------------------------------------------------------------------------
# Command line


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m rerun",
        description="Re-run one data day, or backfill a range, on the deployed pipeline."
        " (`python -m rerun history --help`: the executions so far.)",
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
        "--dry-run",
        action="store_true",
        help="show the dates, pipeline, account and region, and start nothing",
    )
    parser.add_argument(
        "--force",
        action="store_true",
        help="in a range, also run dates whose latest execution succeeded or is running",
    )
    parser.add_argument(
        "--yes",
        action="store_true",
        help=f"start more than {CONFIRM_ABOVE} dates without asking",
    )
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


def sagemaker_client(region: str) -> Any:
    """The SageMaker client the command uses (see session.aws_clients)."""
    return aws_clients(region).sagemaker


def _soft(step: Callable[[], Any], region: str, notes: list[str], what: str) -> Any:
    """In a dry run an AWS failure is a note, not the end: the plan is still worth showing."""
    try:
        return step()
    except RerunError as err:
        notes.append(f"{what}: {err}")
        return None
    except Exception as err:
        failure = as_command_failure(err, region)
        if failure is None:
            raise
        notes.append(f"{what}: {failure.message}")
        return None


def make_plan(
    args: argparse.Namespace,
    env: Any,
    dates: list[dt.date],
    client_factory: Callable[[str], AwsClients],
) -> tuple[Plan, AwsClients | None]:
    """Who and where, and which dates need a run. In a dry run AWS failures become notes; in a
    real run they raise CommandFailed."""
    from rerun.executions import covered_days, list_executions

    notes: list[str] = []
    region = env.region

    def attempt(step: Callable[[], Any], what: str) -> Any:
        if args.dry_run:
            return _soft(step, region, notes, what)
        try:
            return step()
        except Exception as err:
            failure = as_command_failure(err, region)
            if failure is None:
                raise
            raise failure from None

    clients = attempt(lambda: client_factory(region), "AWS session")
    account = attempt(lambda: caller_account(clients), "account") if clients else None
    if account:
        check_account(env.account, account, env.name)
    shown_account = account or (f"{env.account} (from cdk.json)" if env.account else "unknown")
    plan = Plan(env.pipeline_name, region, shown_account, list(dates), {}, notes)
    if not account:
        return plan, clients
    attempt(lambda: check_pipeline_exists(clients.sagemaker, env.pipeline_name, region), "pipeline")
    if len(dates) > 1 and not args.force and not notes:
        executions = attempt(
            lambda: list_executions(
                clients.sagemaker,
                env.pipeline_name,
                env.schedule.timezone,
                created_after=dates[0] - dt.timedelta(days=1),
            ),
            "earlier executions",
        )
        covered = covered_days(executions or [])
        plan.skipped = {day: covered[day] for day in dates if day in covered}
        plan.dates = [day for day in dates if day not in covered]
    return plan, clients


def main(
    argv: Sequence[str] | None = None,
    *,
    client_factory: Callable[[str], AwsClients] = aws_clients,
    clock: Clock | None = None,
    stdin: Any = None,
) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv[:1] == ["history"]:
        from rerun import history

        return history.main(argv[1:], client_factory=client_factory, clock=clock)
    from stacks.config import ConfigError, load_environment

    args = build_parser().parse_args(argv)
    clock = clock or SystemClock()
    try:
        first, last = requested_range(args)
        check_tuning(args)
        dates = dates_to_run(first, last, clock.today())
        env = load_environment(read_environments(args.cdk_json), args.env)
    except (RerunError, ConfigError) as err:
        print(f"error: {err}", file=sys.stderr)
        return EXIT_USAGE
    try:
        plan, clients = make_plan(args, env, dates, client_factory)
        print(describe_plan(plan, args.dry_run), flush=True)
        if args.dry_run or not plan.dates:
            return EXIT_OK
        confirm(len(plan.dates), plan, args.yes, stdin or sys.stdin)
    except CommandFailed as failure:
        print(f"error: {failure.message}", file=sys.stderr)
        return failure.exit_code
    except RerunError as err:
        print(f"error: {err}", file=sys.stderr)
        return EXIT_USAGE
    except KeyboardInterrupt:
        print("\ninterrupted: nothing was started", file=sys.stderr)
        return EXIT_INTERRUPTED
    assert clients is not None  # a real run has failed above without them

    print(
        f"at most {args.concurrency} at once{', waiting for results' if args.wait else ''}",
        flush=True,
    )
    outcomes, interrupted = run_dates(
        clients.sagemaker,
        env.pipeline_name,
        plan.dates,
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
