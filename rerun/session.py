"""What both commands of `python -m rerun` start from: the environment's settings from cdk.json,
AWS clients for its region, and the account the credentials belong to."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

DEFAULT_CDK_JSON = Path(__file__).resolve().parents[1] / "cdk.json"
EXIT_USAGE = 2


class RerunError(ValueError):
    """Bad arguments or a pipeline that cannot be used; the message says what to fix."""


class CommandFailed(Exception):
    """A failure already described in one line, with the exit code it ends the command with."""

    def __init__(self, exit_code: int, message: str) -> None:
        super().__init__(message)
        self.exit_code = exit_code
        self.message = message


@dataclass(frozen=True)
class AwsClients:
    sagemaker: Any
    sts: Any
    s3: Any


def aws_clients(region: str, max_attempts: int = 10) -> AwsClients:
    """Clients of one session (AWS_PROFILE and the usual chain; an unknown profile raises
    ProfileNotFound here). Adaptive retries also slow the client down when SageMaker throttles,
    which a long backfill's polling would otherwise keep provoking."""
    import boto3
    from botocore.config import Config

    session = boto3.Session(region_name=region)
    config = Config(retries={"mode": "adaptive", "max_attempts": max_attempts})
    return AwsClients(
        sagemaker=session.client("sagemaker", config=config),
        sts=session.client("sts", config=config),
        s3=session.client("s3", config=config),
    )


def read_environments(cdk_json: Path) -> Any:
    try:
        return json.loads(cdk_json.read_text())["context"]["environments"]
    except (OSError, ValueError, KeyError, TypeError) as err:
        raise RerunError(f"{cdk_json}: cannot read context.environments ({err})") from err


def caller_account(clients: AwsClients) -> str:
    """The account of the credentials in use (STS GetCallerIdentity needs no permission)."""
    return str(clients.sts.get_caller_identity()["Account"])


def check_account(configured: str | None, actual: str, env_name: str) -> None:
    """Refuse credentials of another account than the one the environment is deployed to."""
    from rerun.aws_errors import EXIT_CREDENTIALS

    if configured and configured != actual:
        raise CommandFailed(
            EXIT_CREDENTIALS,
            f"the credentials are for account {actual}, but environment {env_name} is in"
            f" account {configured} (cdk.json): switch AWS_PROFILE",
        )


def as_command_failure(err: Exception, region: str) -> CommandFailed | None:
    """A botocore failure as a one-line CommandFailed, or None for anything else."""
    from rerun.aws_errors import describe

    failure = describe(err, region)
    return CommandFailed(failure.exit_code, failure.message) if failure else None
