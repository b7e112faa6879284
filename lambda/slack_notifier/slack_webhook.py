"""POST a payload to a Slack incoming webhook, retrying what is worth retrying.

- 2xx: done.
- 429: wait what Retry-After says, then try again.
- 5xx, a timeout, a dropped connection: exponential backoff, then try again.
- any other 4xx (400 invalid_payload, 403 invalid_token, 404 channel_not_found, 410
  channel_is_archived, ...): the same request would fail again, so raise at once.

Retries stop when the next wait would not leave time for one more attempt within the function's
remaining time, or after `max_attempts`; the post then raises, so Lambda's own retries and the
on-failure destination see the failure. No jitter: one function posts one message, so there is
no crowd of clients to spread out.

The webhook URL is a credential: no message, log line or exception built here contains it.
"""

from __future__ import annotations

import http.client
import json
import logging
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

logger = logging.getLogger(__name__)

_BODY_EXCERPT = 200


@dataclass(frozen=True)
class RetryPolicy:
    timeout_seconds: float = 5.0  # per attempt; Slack answers a webhook in well under a second
    base_delay_seconds: float = 0.5
    max_delay_seconds: float = 8.0
    max_attempts: int = 6
    # Left over for logging and returning once the last attempt has timed out.
    safety_margin_seconds: float = 0.5


class SlackPostError(RuntimeError):
    """The message was not delivered."""


class SlackRejectedError(SlackPostError):
    """Slack answered with a client error; retrying the same request cannot help."""

    def __init__(self, status: int, slack_error: str) -> None:
        super().__init__(f"Slack rejected the message: HTTP {status} {slack_error!r}")
        self.status = status
        self.slack_error = slack_error


class SlackUnavailableError(SlackPostError):
    """Slack kept failing (5xx, 429, timeouts) until the retries or the time ran out."""

    def __init__(self, attempts: int, last_problem: str, why_stopped: str) -> None:
        super().__init__(
            f"Slack did not accept the message after {attempts} attempt(s); "
            f"last problem: {last_problem}; {why_stopped}"
        )
        self.attempts = attempts
        self.last_problem = last_problem


@dataclass(frozen=True)
class _Answer:
    status: int  # 0 when there was no HTTP answer at all
    body: str
    retry_after: float | None
    problem: str  # short description for logs and errors, never the URL


def post(
    url: str,
    payload: dict[str, Any],
    *,
    remaining_seconds: Callable[[], float],
    policy: RetryPolicy | None = None,
    sleep: Callable[[float], None] = time.sleep,
) -> int:
    """Deliver payload; return the number of attempts it took."""
    policy = policy or RetryPolicy()
    _check_scheme(url)
    body = json.dumps(payload).encode("utf-8")
    attempt = 0
    while True:
        budget = remaining_seconds() - policy.safety_margin_seconds
        if budget <= 0:
            raise SlackUnavailableError(attempt, "none yet", "no time left to try")
        attempt += 1
        answer = _send_once(url, body, min(policy.timeout_seconds, budget))
        if 200 <= answer.status < 300:
            logger.info(
                "posted to Slack", extra={"attempts": attempt, "http_status": answer.status}
            )
            return attempt
        if 400 <= answer.status < 500 and answer.status != 429:
            raise SlackRejectedError(answer.status, answer.body[:_BODY_EXCERPT] or "(empty)")
        delay = _delay(answer, attempt, policy)
        logger.warning(
            "Slack post failed, will retry if time allows",
            extra={"attempt": attempt, "problem": answer.problem, "retry_in_seconds": delay},
        )
        if attempt >= policy.max_attempts:
            raise SlackUnavailableError(attempt, answer.problem, "no attempts left")
        # The next attempt needs the wait plus a short attempt; do not start what cannot finish.
        left = remaining_seconds() - policy.safety_margin_seconds
        if delay + min(policy.timeout_seconds, 1.0) > left:
            raise SlackUnavailableError(
                attempt,
                answer.problem,
                f"waiting {delay:g}s would exceed the function's remaining {max(left, 0):.1f}s",
            )
        sleep(delay)


def _check_scheme(url: str) -> None:
    # urlopen also opens file:// and ftp:// URLs; a mistyped secret must not make it read files.
    if urlsplit(url).scheme not in ("https", "http"):
        raise SlackPostError("the webhook URL in the secret is not an http(s) URL")


def _delay(answer: _Answer, attempt: int, policy: RetryPolicy) -> float:
    if answer.status == 429 and answer.retry_after is not None:
        return answer.retry_after
    return min(policy.base_delay_seconds * 2.0 ** (attempt - 1), policy.max_delay_seconds)


def _send_once(url: str, body: bytes, timeout: float) -> _Answer:
    request = urllib.request.Request(
        url,
        data=body,
        method="POST",
        headers={"Content-Type": "application/json; charset=utf-8"},
    )
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            text = response.read().decode("utf-8", "replace")
            return _Answer(response.status, text, None, f"HTTP {response.status}")
    except urllib.error.HTTPError as err:
        # HTTPError is also the response: its status, headers and body are Slack's answer.
        text = _read_error_body(err)
        retry_after = _retry_after(err.headers.get("Retry-After") if err.headers else None)
        return _Answer(err.code, text, retry_after, f"HTTP {err.code} {text[:_BODY_EXCERPT]!r}")
    except TimeoutError as err:
        return _Answer(0, "", None, f"timed out after {timeout:.1f}s ({type(err).__name__})")
    except urllib.error.URLError as err:
        return _Answer(0, "", None, _redact(f"connection failed: {err.reason}", url))
    except (ConnectionError, http.client.HTTPException) as err:
        return _Answer(0, "", None, _redact(f"connection failed: {type(err).__name__} {err}", url))


def _read_error_body(err: urllib.error.HTTPError) -> str:
    try:
        return err.read().decode("utf-8", "replace").strip()
    except (OSError, http.client.HTTPException):
        return ""


def _retry_after(value: str | None) -> float | None:
    """Slack sends Retry-After in seconds; an HTTP-date or garbage falls back to backoff."""
    if not value:
        return None
    try:
        seconds = float(value.strip())
    except ValueError:
        return None
    return seconds if seconds >= 0 else None


def _redact(text: str, url: str) -> str:
    # Error texts from the socket layer could echo the URL or its secret path.
    parts = urlsplit(url)
    for secret in (url, parts.path, parts.netloc + parts.path):
        if secret and secret != "/":
            text = text.replace(secret, "<webhook>")
    return text
