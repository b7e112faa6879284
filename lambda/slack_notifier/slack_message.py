"""Block Kit payloads for the incoming webhook: one function per kind of notification.

Limits honoured (Slack rejects the whole message otherwise, with 400 invalid_blocks): header text
150 characters, section text 3000, field text 2000. The top-level "text" is the notification
preview and the fallback for clients that cannot show blocks.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any
from urllib.parse import quote

from execution_report import DATE_PLACEHOLDER, ExecutionReport, FailedStep
from pipeline_events import AlarmNotification, OtherMessage

Payload = dict[str, Any]

_HEADER_MAX = 150
_SECTION_MAX = 3000
_FIELD_MAX = 2000
_REASON_MAX = 1500  # keeps several failed steps within one message

_STATUS_ICON = {"Failed": ":x:", "Stopped": ":octagonal_sign:", "Succeeded": ":white_check_mark:"}
_ALARM_ICON = {"ALARM": ":rotating_light:", "OK": ":white_check_mark:"}


def execution_message(report: ExecutionReport, warnings: Sequence[str] = ()) -> Payload:
    title = f"[{report.environment}] {report.pipeline_name}: execution {report.status}"
    icon = _STATUS_ICON.get(report.status, ":information_source:")
    blocks: list[dict[str, Any]] = [
        _header(f"{icon} {title}"),
        _fields(
            ("Environment", _escape(report.environment)),
            ("Pipeline", _escape(report.pipeline_name)),
            ("Execution date", _date_text(report)),
            ("Status", _escape(report.status)),
        ),
    ]
    blocks.extend(_section(_failed_step_text(step)) for step in report.failed_steps)
    if not report.failed_steps and report.failure_reason:
        blocks.append(_section(f"*Reason*\n{_code(report.failure_reason)}"))
    if warnings:
        listed = "\n".join(f"• {_escape(line)}" for line in warnings)
        blocks.append(_section(_truncate(f"*Data-quality warnings*\n{listed}", _SECTION_MAX)))
    blocks.append(_section(_links_text(report)))
    blocks.append(
        _section(f"*Re-run this date*\n{_code(report.rerun_command)}"),
    )
    blocks.append(_context(_execution_context(report)))
    return {"text": _fallback_text(report, title), "blocks": blocks}


def alarm_message(alarm: AlarmNotification, environment: str, rerun_hint: str) -> Payload:
    title = f"[{environment}] {alarm.new_state}: {alarm.name}"
    icon = _ALARM_ICON.get(alarm.new_state, ":warning:")
    blocks: list[dict[str, Any]] = [
        _header(f"{icon} {title}"),
        _fields(
            ("Environment", _escape(environment)),
            ("Alarm", _escape(alarm.name)),
            ("State", _escape(f"{alarm.old_state or '?'} → {alarm.new_state}")),
            ("Since", _escape(alarm.state_change_time or "?")),
        ),
        _section(f"*Reason*\n{_escape(alarm.reason) or '(none given)'}"),
    ]
    if alarm.description:
        blocks.append(_section(f"*What it watches*\n{_escape(alarm.description)}"))
    if alarm.region:
        blocks.append(_section(f"<{alarm_url(alarm)}|Alarm in the CloudWatch console>"))
    blocks.append(_context(f"Re-run a day: `{_escape(rerun_hint)}`"))
    fallback = f"{title}. {alarm.reason}"
    return {"text": _escape(_truncate(fallback, _SECTION_MAX)), "blocks": blocks}


def other_message(message: OtherMessage, environment: str) -> Payload:
    title = f"[{environment}] {message.subject or 'Message on the alerts topic'}"
    blocks = [
        _header(f":speech_balloon: {title}"),
        _section(_code(message.text or "(empty message)")),
        _context(f"Topic: {_escape(message.topic_arn or '?')}"),
    ]
    return {"text": _escape(_truncate(title, _SECTION_MAX)), "blocks": blocks}


def alarm_url(alarm: AlarmNotification) -> str:
    region = alarm.region
    return (
        f"https://{region}.console.aws.amazon.com/cloudwatch/home?region={region}"
        f"#alarmsV2:alarm/{quote(alarm.name, safe='')}"
    )


# --- pieces -------------------------------------------------------------------------------


def _date_text(report: ExecutionReport) -> str:
    date = report.execution_date
    shown = _escape(date.date) or f"unknown ({DATE_PLACEHOLDER} in the command below)"
    return f"{shown}\n_{_escape(date.note)}_" if date.note else shown


def _failed_step_text(step: FailedStep) -> str:
    reason = step.reason or "(no reason given by SageMaker)"
    text = f"*Failed step:* `{_escape(step.name)}`"
    if step.job_name:
        kind = "function" if step.log_group.startswith("/aws/lambda/") else "job"
        text += f"  ({kind} `{_escape(step.job_name)}`)"
    return f"{text}\n*Reason*\n{_code(_truncate(reason, _REASON_MAX))}"


def _links_text(report: ExecutionReport) -> str:
    links: list[str] = []
    if report.execution_url:
        links.append(f"<{report.execution_url}|Execution in SageMaker Studio>")
    links.extend(
        f"<{step.logs_url}|Logs of {_escape(step.name)}>"
        for step in report.failed_steps
        if step.logs_url
    )
    if report.execution_logs_url:
        links.append(f"<{report.execution_logs_url}|Logs of all jobs of this execution>")
    text = "*Links*\n" + (" · ".join(links) if links else "(none)")
    if not report.execution_url:
        # Without a Studio domain there is no page to link to; this command shows the same steps.
        command = (
            "aws sagemaker list-pipeline-execution-steps "
            f"--pipeline-execution-arn {report.execution_arn} --region {report.region}"
        )
        text += f"\nSteps: `{_escape(command)}`"
    return text


def _execution_context(report: ExecutionReport) -> str:
    parts = [f"Execution `{_escape(report.execution_id or report.execution_arn)}`"]
    if report.display_name:
        parts.append(_escape(report.display_name))
    if report.start_time:
        parts.append(f"started {_escape(report.start_time)}")
    if report.end_time:
        parts.append(f"ended {_escape(report.end_time)}")
    return " · ".join(parts)


def _fallback_text(report: ExecutionReport, title: str) -> str:
    text = f"{title} (execution date {report.execution_date.date or 'unknown'})"
    if report.failed_steps:
        first = report.failed_steps[0]
        text += f", step {first.name}: {first.reason or 'no reason given'}"
    elif report.failure_reason:
        text += f": {report.failure_reason}"
    return _escape(_truncate(text, _SECTION_MAX))


def _header(text: str) -> dict[str, Any]:
    return {
        "type": "header",
        "text": {"type": "plain_text", "text": _truncate(text, _HEADER_MAX), "emoji": True},
    }


def _fields(*pairs: tuple[str, str]) -> dict[str, Any]:
    return {
        "type": "section",
        "fields": [
            {"type": "mrkdwn", "text": _truncate(f"*{label}*\n{value}", _FIELD_MAX)}
            for label, value in pairs
        ],
    }


def _section(text: str) -> dict[str, Any]:
    return {"type": "section", "text": {"type": "mrkdwn", "text": _truncate(text, _SECTION_MAX)}}


def _context(text: str) -> dict[str, Any]:
    return {
        "type": "context",
        "elements": [{"type": "mrkdwn", "text": _truncate(text, _FIELD_MAX)}],
    }


def _code(text: str) -> str:
    # A ``` inside the text would close the block early.
    return "```" + _escape(text).replace("```", "'''") + "```"


def _escape(text: str) -> str:
    """Slack's three control characters in mrkdwn; everything else is literal."""
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def _truncate(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"
