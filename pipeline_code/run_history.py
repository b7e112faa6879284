"""The `run_history` table: every execution that reached the quality gate, passed or failed.

Why it is written this way: a failed gate ends the execution in the pipeline's FailStep, which
runs no code, so the only code that sees every gated run is TrainEvaluation, which runs before
the ConditionStep. It writes the execution's row with the gate's figures and its verdict
(`gate_passed` / `gate_failed`); PostProc, the last step of a run that passed, rewrites the same
row as `published`. So a row says how far its execution got:

- `gate_failed`: the gate stopped it; nothing was published;
- `gate_passed`: the gate passed, but the run did not publish (Predict or PostProc failed, or
  the run is still going);
- `published`: the run's forecasts are what readers see for the date (until a later re-run).

Executions that failed before TrainEvaluation (no data, a broken step) have no gate figures and
no row; `python -m rerun history` lists them from SageMaker with their failure reasons.

One file per execution, `run_history/execution_date=<date>/<execution id>.parquet`, replaced
whole by PostProc's write (an S3 PUT replaces an object at once), so a reader never sees a half
row. The Glue table projects its `execution_date` partitions (data stack), so no step needs a Glue
permission for it; locally the lake's partition folders are the table, as for the others.
"""

from __future__ import annotations

import datetime as dt
import math
from typing import Any

import pyarrow as pa

from pipeline_code import storage, tables
from pipeline_code.run_context import RunContext

TABLE = tables.RUN_HISTORY
GATE_FAILED = "gate_failed"
GATE_PASSED = "gate_passed"
PUBLISHED = "published"


def record_uri(ctx: RunContext) -> str:
    """The execution's row in the lake (or the data bucket)."""
    partition = f"{TABLE.partition_key}={ctx.execution_date.isoformat()}"
    return storage.join(ctx.data_root, TABLE.name, partition, f"{ctx.execution_id}.parquet")


def _number(value: Any) -> float | None:
    return float(value) if isinstance(value, int | float) and math.isfinite(value) else None


def gate_row(report: dict[str, Any], execution_id: str, evaluated_at: dt.datetime) -> dict:
    """The row of a run TrainEvaluation has just gated (evaluation.json's figures)."""
    overall, gate = report.get("overall", {}), report.get("gate", {})
    passed = bool(gate.get("passed"))
    return {
        "execution_id": execution_id,
        "outcome": GATE_PASSED if passed else GATE_FAILED,
        "gate_passed": passed,
        "gate_message": str(gate.get("message", "")),
        "mase": _number(overall.get("mase")),
        "relative_mase": _number(overall.get("relative_mase")),
        "largest_series_relative_mase": _number(overall.get("largest_series_relative_mase")),
        "coverage": _number(overall.get("coverage")),
        "smape": _number(overall.get("smape")),
        "n_series": int(overall["n_series"]) if "n_series" in overall else None,
        "max_mase": _number(gate.get("max_mase")),
        "max_relative_mase": _number(gate.get("max_relative_mase")),
        "max_series_relative_mase": _number(gate.get("max_series_relative_mase")),
        "evaluated_at": _naive_utc(evaluated_at),
        "published_at": None,
    }


def _naive_utc(stamp: dt.datetime) -> dt.datetime:
    """Glue's `timestamp` has no zone; the table's are UTC."""
    return stamp.astimezone(dt.UTC).replace(tzinfo=None)


def write_row(ctx: RunContext, row: dict[str, Any]) -> str:
    uri = record_uri(ctx)
    storage.write_arrow(pa.Table.from_pylist([row], schema=tables.arrow_schema(TABLE)), uri)
    return uri


def record_gate(ctx: RunContext, report: dict[str, Any], now: dt.datetime | None = None) -> str:
    """TrainEvaluation: the execution's row with the gate's figures and verdict."""
    return write_row(ctx, gate_row(report, ctx.execution_id, now or dt.datetime.now(dt.UTC)))


def record_published(
    ctx: RunContext, report: dict[str, Any], now: dt.datetime | None = None
) -> str:
    """PostProc: the same row, now `published`. Rebuilt from the run's evaluation.json when
    TrainEvaluation's row is missing (a run folder from before this table existed)."""
    now = now or dt.datetime.now(dt.UTC)
    uri = record_uri(ctx)
    if storage.exists(uri):
        row = storage.read_arrow(uri).to_pylist()[0]
    else:
        row = gate_row(report, ctx.execution_id, now)
    row.update(outcome=PUBLISHED, published_at=_naive_utc(now))
    return write_row(ctx, row)
