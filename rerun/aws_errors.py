"""What an AWS failure means to the operator: one line and an exit code per kind.

The commands of `python -m rerun` run on an operator's machine, where the usual failures are not
bugs but setup: no credentials, an expired token, a misspelt profile, no network, a role without
the permission, or throttling. Each gets its own exit code (so scripts can tell them apart) and
one line saying what to do; none shows a traceback.
"""

from __future__ import annotations

from dataclasses import dataclass

EXIT_CREDENTIALS = 3
EXIT_UNKNOWN_PROFILE = 4
EXIT_NO_ENDPOINT = 5
EXIT_ACCESS_DENIED = 6
EXIT_THROTTLED = 7
EXIT_AWS_ERROR = 9

# Error codes AWS returns for a key, token or signature it does not accept (STS and the JSON
# services use different names for the same problem).
_BAD_CREDENTIAL_CODES = frozenset(
    {
        "InvalidClientTokenId",
        "UnrecognizedClientException",
        "InvalidSignatureException",
        "SignatureDoesNotMatch",
        "IncompleteSignature",
        "ExpiredToken",
        "ExpiredTokenException",
        "RequestExpired",
        "InvalidToken",
        "AuthFailure",
    }
)
_ACCESS_DENIED_CODES = frozenset(
    {"AccessDenied", "AccessDeniedException", "UnauthorizedOperation", "Forbidden"}
)
_THROTTLING_CODES = frozenset(
    {
        "Throttling",
        "ThrottlingException",
        "ThrottledException",
        "TooManyRequestsException",
        "RequestLimitExceeded",
        "RequestThrottled",
        "RequestThrottledException",
        "SlowDown",
        "ProvisionedThroughputExceededException",
    }
)


@dataclass(frozen=True)
class AwsFailure:
    """An AWS failure as the operator sees it."""

    exit_code: int
    message: str


def error_code(err: Exception) -> str:
    response = getattr(err, "response", None) or {}
    return str(response.get("Error", {}).get("Code", ""))


def _first_line(text: str) -> str:
    return " ".join(str(text).split())[:300]


def describe(err: Exception, region: str) -> AwsFailure | None:
    """The operator's view of a botocore failure, or None when `err` is not one."""
    from botocore import exceptions as bx

    if isinstance(err, bx.ProfileNotFound):
        return AwsFailure(
            EXIT_UNKNOWN_PROFILE,
            f"{_first_line(err)}: check AWS_PROFILE / --profile against `aws configure"
            " list-profiles`",
        )
    if isinstance(err, bx.NoCredentialsError | bx.PartialCredentialsError):
        return AwsFailure(
            EXIT_CREDENTIALS,
            f"no AWS credentials ({_first_line(err)}): run `aws configure` or `aws sso login`,"
            " or set AWS_PROFILE",
        )
    if isinstance(err, bx.TokenRetrievalError | bx.SSOError | bx.UnauthorizedSSOTokenError):
        return AwsFailure(
            EXIT_CREDENTIALS,
            f"AWS credentials could not be refreshed ({_first_line(err)}): run `aws sso login`",
        )
    if isinstance(err, bx.EndpointConnectionError | bx.ConnectTimeoutError):
        return AwsFailure(
            EXIT_NO_ENDPOINT,
            f"cannot reach AWS in {region} ({_first_line(err)}): check the network, a proxy,"
            " or AWS_ENDPOINT_URL",
        )
    if isinstance(err, bx.ClientError):
        return _client_error(err)
    if isinstance(err, bx.BotoCoreError):
        return AwsFailure(EXIT_AWS_ERROR, f"AWS request failed: {_first_line(err)}")
    return None


def _client_error(err: Exception) -> AwsFailure:
    code = error_code(err)
    operation = getattr(err, "operation_name", "") or "the request"
    text = _first_line((getattr(err, "response", {}) or {}).get("Error", {}).get("Message", ""))
    if code in _BAD_CREDENTIAL_CODES:
        return AwsFailure(
            EXIT_CREDENTIALS,
            f"AWS refused the credentials ({code}: {text}): they are wrong or expired;"
            " refresh them (`aws sso login`, `aws configure`)",
        )
    if code in _ACCESS_DENIED_CODES:
        return AwsFailure(
            EXIT_ACCESS_DENIED,
            f"access denied for {operation} ({text}): use a role that may run the pipeline"
            " (docs/iam.md)",
        )
    if code in _THROTTLING_CODES:
        return AwsFailure(
            EXIT_THROTTLED,
            f"AWS throttled {operation} after retries ({code}): wait a minute and run it again,"
            " or lower --concurrency",
        )
    return AwsFailure(EXIT_AWS_ERROR, f"{operation} failed: {code}: {text}")
