"""What a local run prints at the end: date, id, steps, gate metrics, where results went."""

from __future__ import annotations

import datetime as dt
import json
import re
from pathlib import Path
from typing import Any

from local_run.runner import RunOutcome
from pipeline_code import publication, run_folder, tables

_LONG_DECIMAL = re.compile(r"(?<![\w.])\d+\.\d{5,}(?:[eE][-+]?\d+)?")
_GATE_KEYS = ("mase", "relative_mase", "snaive_mase", "smape", "coverage", "n_series")


def run_dir(lake: Path, execution_id: str) -> Path:
    return lake / run_folder.RUNS / execution_id


def published_partitions(lake: Path, execution_date: dt.date) -> list[Path]:
    """The output tables' partitions for the date that exist in the lake."""
    partitions = []
    for table in tables.PUBLISHED_TABLES:
        partition = lake / table.name / f"{table.partition_key}={execution_date.isoformat()}"
        if partition.exists():
            partitions.append(partition)
    return partitions


def write_run_report(lake: Path, execution_date: dt.date, execution_id: str) -> Path:
    # Imported here: the report's modules are only needed once a run has succeeded.
    from local_run.report import write_report

    return write_report(lake, run_dir(lake, execution_id), execution_date, execution_id)


def gate_metrics(lake: Path, execution_id: str) -> dict[str, Any]:
    path = run_dir(lake, execution_id).joinpath(*run_folder.EVALUATION)
    if not path.exists():
        return {}
    return json.loads(path.read_text())


def data_quality_warnings(lake: Path, execution_id: str) -> list[str]:
    """The run's data-quality warnings (PreProc's summary, Extract's source checks included)."""
    path = run_dir(lake, execution_id).joinpath(*run_folder.DATA_QUALITY)
    if not path.exists():
        return []
    return [str(line) for line in json.loads(path.read_text()).get("warnings", [])]


def accuracy_warnings(lake: Path, execution_id: str) -> list[str]:
    """Where realized accuracy broke the backtest's promise, and publications not scored."""
    path = run_dir(lake, execution_id).joinpath(*run_folder.ACCURACY_SUMMARY)
    if not path.exists():
        return []
    summary = json.loads(path.read_text())
    return [str(line) for line in [*summary.get("warnings", []), *summary.get("skipped", [])]]


def publication_state(lake: Path, execution_date: dt.date, execution_id: str) -> str:
    """What the date's live partitions hold after a failed run, read from their rows."""
    try:
        live = publication.live_execution_ids(lake, execution_date)
    except (OSError, ValueError) as err:
        return f"the date's partitions could not be read: {err}"
    if all(holder == execution_id for holder in live.values()):
        return "both tables were published by this execution before it failed"
    mine = [table for table, holder in live.items() if holder == execution_id]
    if mine:
        return f"{', '.join(mine)} published by this execution, the other not: {live}"
    held = {holder for holder in live.values() if holder}
    if not held:
        return "nothing was published; the date has no published partition"
    return f"nothing was published; the date's partitions are from execution {', '.join(held)}"


def _gate_line(evaluation: dict[str, Any]) -> str:
    overall = evaluation.get("overall", {})
    gate = evaluation.get("gate", {})
    parts = [f"{key} {_format(overall[key])}" for key in _GATE_KEYS if key in overall]
    verdict = {True: "passed", False: "failed"}.get(gate.get("passed"), "unknown")
    reasons = "; ".join(str(reason) for reason in gate.get("reasons", []))
    return f"gate {verdict}: " + ", ".join(parts) + (f" ({reasons})" if reasons else "")


def _largest_series_line(evaluation: dict[str, Any]) -> str | None:
    """The per-series check of the largest series, so that one broken series is seen even when
    the average passes."""
    gate = evaluation.get("gate", {})
    largest = gate.get("largest_series") or []
    if not largest:
        return None
    worst = max(largest, key=lambda series: series["relative_mase"])
    return (
        f"{len(largest)} largest series each at most relative MASE "
        f"{_format(float(gate.get('max_series_relative_mase', float('nan'))))}: worst "
        f"{worst['series_id']} at {_format(float(worst['relative_mase']))}"
    )


def _format(value: Any) -> str:
    return f"{value:.3f}" if isinstance(value, float) else str(value)


def rounded_figures(text: str) -> str:
    """Long decimals in a message (the gate's FailStep joins the raw metric) rounded for people:
    'MASE 0.7494612053441166 above 0.7' -> 'MASE 0.7495 above 0.7'."""
    return _LONG_DECIMAL.sub(lambda match: f"{float(match[0]):.4g}", text)


def render(
    lake: Path,
    execution_date: dt.date,
    outcome: RunOutcome,
    report: Path | None,
    source: str = "",
) -> str:
    lines = [
        "",
        f"execution date  {execution_date.isoformat()}",
        *([f"settings        {source}"] if source else []),
        f"execution id    {outcome.execution_id}",
        f"run folder      {run_dir(lake, outcome.execution_id)}",
    ]
    for i, step in enumerate(outcome.steps):
        label = "steps" if i == 0 else ""
        lines.append(f"{label:<16}{step.name:<18} {step.status:<10} {step.seconds:6.1f} s")
    evaluation = gate_metrics(lake, outcome.execution_id)
    if evaluation:
        lines.append(f"quality         {_gate_line(evaluation)}")
        largest = _largest_series_line(evaluation)
        if largest:
            lines.append(f"                {largest}")
    for warning in data_quality_warnings(lake, outcome.execution_id):
        lines.append(f"warning         {warning}")
    for warning in accuracy_warnings(lake, outcome.execution_id):
        lines.append(f"warning         {warning}")
    if outcome.succeeded:
        for partition in published_partitions(lake, execution_date):
            lines.append(f"published       {partition}")
        if report is not None:
            lines.append(f"report          {report}")
        lines.append("status          Succeeded")
    else:
        state = publication_state(lake, execution_date, outcome.execution_id)
        lines.append(f"status          Failed at {outcome.failed_step}; {state}")
        lines.append(f"reason          {rounded_figures(outcome.failure or '')}")
        lines.append(f"logs            {run_dir(lake, outcome.execution_id) / 'logs'}")
    return "\n".join(lines)
