"""TrainEvaluation: calibrate the intervals on Train's backtest, score it, decide the quality gate.

Runs on the leader instance only (others exit at once), over the backtest summary Train wrote
for every bucket in the series index (`forecasting.backtest_table`: per-series scores and the
calibration points; a missing file fails the step, naming it). Two passes, one bucket at a time,
so memory holds one bucket and a row per series, never every series' backtest:

1. count every bucket's points into the interval calibration (`metrics.CalibrationCounts`: the
   same factors for any number of Train instances);
2. score each bucket's series with it: coverage of the calibrated intervals per series.

Then the total across series: every bucket's partial sums of the backtest and the history added
up (`forecasting.total`), its interval fitted on its own backtest errors and its scores.

Writes `evaluation/calibration.json` (which Predict applies), `evaluation/total_calibration.json`
(the total's interval, which PostProc applies), `evaluation.json` to the run
folder's `evaluation/`, where the gate's JsonGet reads it by S3 URI, and
`evaluation/metrics.parquet` (the `forecast_metrics` table's columns, one row per series, an
`__overall__` row and a `__total__` row). The total is reported, not gated: the gate judges the
series, whose errors the total sums.

evaluation.json (keys are stable: the pipeline's ConditionStep reads `overall.mase` and
`overall.relative_mase`):

    {"overall": {"mase", "smape", "mae", "coverage", "snaive_mase", "relative_mase",
                 "interval_level", "n_series"},
     "backtest": {"folds": {"recent": {"folds", "mase"}, "seasonal": {"folds", "mase"}},
                  "coverage_event_days", "coverage_other_days", "event_points"},
     "gate": {"passed", "max_mase", "max_relative_mase", "min_coverage", "reasons", "message"},
     "total": {"mase", "snaive_mase", "relative_mase", "smape", "mae", "coverage", "n_folds",
               "n_points", "interval"},
     "execution_date", "execution_id"}

The gate's message ends with the folds its figures come from ("3 recent folds + 1 at the same
season a year or more back"): the recent weeks alone never contain a year-end break.

Per-series scores go to metrics.parquet only: the file the gate reads stays the same small size
whatever the number of series.

Every overall figure is the plain mean of the per-series figures (the M4 convention: each series
weighs the same); relative_mase = mase / snaive_mase. The gate passes when mase <= max_mase,
relative_mase <= max_relative_mase (1.0: at least as good as seasonal naive), if
`--min-coverage` is above 0, coverage >= min_coverage, and each of the `--largest-series` series
with the most demand has MASE / its seasonal-naive MASE <= `--max-series-relative-mase`, so one
broken large series cannot hide in the average (`overall.largest_series_relative_mase` is the
worst of them, which the pipeline's ConditionStep compares too). A failed gate does NOT fail this
step: the pipeline's ConditionStep and FailStep end the execution, with the reasons written here.
Only bad or missing input raises StepError.
"""

from __future__ import annotations

import argparse
import math
import sys
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from pipeline_code import bucket_files, run_folder, run_history, run_metrics, shards, storage
from pipeline_code.errors import StepError, run_entry_point
from pipeline_code.forecasting.backtest_table import (
    POINT_COLUMNS,
    SCORE_COLUMNS,
    BacktestSummary,
    count_points,
    covered,
)
from pipeline_code.forecasting.metrics import CalibrationCounts, IntervalCalibration
from pipeline_code.forecasting.total import (
    BACKTEST_KEYS,
    MODEL_NAME,
    TotalFit,
    add_parts,
    fit_total,
)
from pipeline_code.run_context import RunContext, add_common_arguments, context_from
from pipeline_code.steps import preproc
from pipeline_code.tables import (
    FORECAST_METRICS,
    OVERALL_SERIES_ID,
    RESERVED_SERIES_IDS,
    TOTAL_SERIES_ID,
)

STEP = "TrainEvaluation"
METRIC_COLUMNS = [c for c in FORECAST_METRICS.column_names if c != "execution_id"]
SCORED = ("mase", "smape", "mae", "volume", "interval_level")
RELATIVE_CAP = 1e6
"""A series whose seasonal-naive MASE is 0 while its own is not: a finite stand-in for infinity
(evaluation.json is read by JsonGet, which needs a number)."""


@dataclass(frozen=True)
class BucketFiles:
    scores: str
    points: str


@dataclass
class EventCoverage:
    """Points inside their calibrated intervals, on event days and on other days."""

    event_points: int = 0
    event_inside: int = 0
    other_points: int = 0
    other_inside: int = 0

    def add(self, inside: np.ndarray, event_day: np.ndarray) -> None:
        self.event_points += int(event_day.sum())
        self.event_inside += int((inside & event_day).sum())
        self.other_points += int((~event_day).sum())
        self.other_inside += int((inside & ~event_day).sum())


def backtest_files(ctx: RunContext) -> list[BucketFiles]:
    """The backtest summary files of every bucket in the series index, in bucket order."""
    buckets = bucket_files.index_buckets(bucket_files.read_index(ctx, STEP))
    if not buckets:
        raise StepError(STEP, f"{ctx.path(*run_folder.SERIES_INDEX)} lists no series")
    scores = bucket_files.bucket_uris(
        ctx, STEP, run_folder.backtest_scores_bucket, buckets, "Train"
    )
    points = bucket_files.bucket_uris(
        ctx, STEP, run_folder.calibration_points_bucket, buckets, "Train"
    )
    return [BucketFiles(s, p) for s, p in zip(scores, points, strict=True)]


def read_summary(files: BucketFiles) -> BacktestSummary:
    """One bucket's scores and points, checked: StepError naming the file when they are bad."""
    scores, points = storage.read_table(files.scores), storage.read_table(files.points)
    for uri, frame, columns in (
        (files.scores, scores, SCORE_COLUMNS),
        (files.points, points, POINT_COLUMNS),
    ):
        missing = [c for c in columns if c not in frame.columns]
        if missing:
            raise StepError(STEP, f"{uri} lacks columns {missing}")
    numbers = scores[[*SCORED, "snaive_mase"]].to_numpy(dtype=float)
    bad = scores.loc[~np.isfinite(numbers).all(axis=1), "series_id"].tolist()
    if bad:
        raise StepError(
            STEP,
            f"{files.scores}: series {bad[:5]} have missing/infinite scores (a bad forecast or "
            "scale, or no seasonal-naive benchmark rows)",
        )
    series = points["series"].to_numpy(dtype=np.int64)
    if points["needed"].isna().any() or ((series < 0) | (series >= len(scores))).any():
        raise StepError(STEP, f"{files.points} has missing factors or points of unknown series")
    return BacktestSummary(scores, points)


def count_calibration(files: list[BucketFiles]) -> CalibrationCounts:
    """Pass 1: every bucket's points counted into the calibration."""
    counts = CalibrationCounts()
    for bucket in files:
        summary = read_summary(bucket)
        if len(summary.scores):
            count_points(counts, summary.points, float(summary.scores["interval_level"].iloc[0]))
    return counts


def per_series_metrics(
    summary: BacktestSummary,
    calibration: IntervalCalibration,
    coverage: EventCoverage | None = None,
) -> pd.DataFrame:
    """One bucket's series: their scores and the coverage of their calibrated intervals (the
    `forecast_metrics` columns, with `volume` and the per-fold-kind scores kept for the report).
    With `coverage`, its points are added to it."""
    points = summary.points
    inside = covered(points, calibration)
    series = points["series"].to_numpy(dtype=np.int64)
    n = len(summary.scores)
    scored = summary.scores.copy()
    scored["coverage"] = np.bincount(series, weights=inside, minlength=n) / np.maximum(
        np.bincount(series, minlength=n), 1
    )
    if coverage is not None:
        coverage.add(inside, points["event_kind"].to_numpy() != 0)
    return scored


def score_all(
    files: list[BucketFiles], calibration: IntervalCalibration
) -> tuple[pd.DataFrame, EventCoverage]:
    """Pass 2: every bucket's series scored with the calibration, sorted by series_id."""
    coverage = EventCoverage()
    parts = [per_series_metrics(read_summary(bucket), calibration, coverage) for bucket in files]
    scored = pd.concat([p for p in parts if len(p)] or parts[:1], ignore_index=True)
    scored = scored.sort_values("series_id", kind="stable", ignore_index=True)
    if scored.empty:
        raise StepError(
            STEP,
            f"{files[0].scores.rsplit('/', 1)[0]} has no rows: no series is long enough for one "
            "backtest fold",
        )
    return scored, coverage


def overall_metrics(per_series: pd.DataFrame, interval_level: float) -> dict[str, Any]:
    mase = float(per_series["mase"].mean())
    snaive_mase = float(per_series["snaive_mase"].mean())
    return {
        "mase": mase,
        "smape": float(per_series["smape"].mean()),
        "mae": float(per_series["mae"].mean()),
        "coverage": float(per_series["coverage"].mean()),
        "snaive_mase": snaive_mase,
        "relative_mase": mase / snaive_mase if snaive_mase > 0 else math.inf,
        "interval_level": interval_level,
        "n_series": len(per_series),
    }


def largest_series(per_series: pd.DataFrame, count: int) -> list[dict[str, Any]]:
    """The `count` series with the most demand in the backtest, with MASE relative to their own
    seasonal naive, largest first."""
    ordered = per_series.sort_values(
        ["volume", "series_id"], ascending=[False, True], kind="stable"
    )
    found = []
    for row in ordered.head(count).itertuples():
        if row.snaive_mase > 0:
            relative = min(float(row.mase / row.snaive_mase), RELATIVE_CAP)
        else:
            relative = 0.0 if row.mase == 0 else RELATIVE_CAP
        found.append({"series_id": str(row.series_id), "relative_mase": relative})
    return found


def gate(
    overall: dict[str, Any],
    max_mase: float,
    max_relative_mase: float,
    min_coverage: float,
    max_series_relative_mase: float = math.inf,
    largest: list[dict[str, Any]] | None = None,
) -> dict[str, Any]:
    """The verdict and, when it fails, one reason per broken threshold."""
    reasons = []
    for series in largest or []:
        if not series["relative_mase"] <= max_series_relative_mase:
            reasons.append(
                f"series {series['series_id']} (among the largest) has relative MASE "
                f"{series['relative_mase']:.4f}, above the maximum {max_series_relative_mase:.4f}"
            )
    if not overall["mase"] <= max_mase:
        reasons.append(f"MASE {overall['mase']:.4f} is above the maximum {max_mase:.4f}")
    if not overall["relative_mase"] <= max_relative_mase:
        reasons.append(
            f"relative MASE {overall['relative_mase']:.4f} (model / seasonal naive) is above "
            f"the maximum {max_relative_mase:.4f}"
        )
    if min_coverage > 0 and not overall["coverage"] >= min_coverage:
        reasons.append(
            f"interval coverage {overall['coverage']:.4f} is below the minimum {min_coverage:.4f}"
        )
    return {
        "passed": not reasons,
        "max_mase": max_mase,
        "max_relative_mase": max_relative_mase,
        "min_coverage": min_coverage,
        "max_series_relative_mase": max_series_relative_mase,
        "largest_series": largest or [],
        "reasons": reasons,
        "message": "; ".join(reasons) if reasons else "passed",
    }


def _overall_row(per_series: pd.DataFrame, overall: dict[str, Any]) -> pd.DataFrame:
    row = {
        "series_id": OVERALL_SERIES_ID,
        "model": "all",
        **{k: overall[k] for k in ("mase", "smape", "mae", "coverage", "snaive_mase")},
        "n_folds": int(per_series["n_folds"].max()),
        "n_points": int(per_series["n_points"].sum()),
    }
    return pd.DataFrame([row])[METRIC_COLUMNS]


def _share_or_none(inside: int, points: int) -> float | None:
    return inside / points if points else None


def fold_breakdown(per_series: pd.DataFrame, coverage: EventCoverage) -> dict[str, Any]:
    """Which folds the figures come from, MASE per kind of fold, coverage on and off events."""
    per_kind = {}
    for kind in ("recent", "seasonal"):
        mase = per_series[f"{kind}_mase"].dropna()
        per_kind[kind] = {
            "folds": int(per_series[f"{kind}_folds"].max()),
            "mase": float(mase.mean()) if len(mase) else None,
        }
    return {
        "folds": per_kind,
        "coverage_event_days": _share_or_none(coverage.event_inside, coverage.event_points),
        "coverage_other_days": _share_or_none(coverage.other_inside, coverage.other_points),
        "event_points": coverage.event_points,
    }


def describe_folds(breakdown: dict[str, Any]) -> str:
    recent, seasonal = breakdown["folds"]["recent"], breakdown["folds"]["seasonal"]
    text = f"{recent['folds']} recent folds"
    if seasonal["folds"]:
        text += f" + {seasonal['folds']} at the same season a year or more back"
    return text


def evaluate(
    per_series: pd.DataFrame, coverage: EventCoverage, args: argparse.Namespace
) -> tuple[dict, pd.DataFrame]:
    """The report and the metrics table from every series' scores."""
    overall = overall_metrics(per_series, float(per_series["interval_level"].iloc[0]))
    largest = largest_series(per_series, args.largest_series)
    overall["largest_series_relative_mase"] = max(
        (series["relative_mase"] for series in largest), default=0.0
    )
    breakdown = fold_breakdown(per_series, coverage)
    if not all(math.isfinite(v) for v in overall.values() if isinstance(v, float)):
        raise StepError(STEP, f"overall metrics are not finite: {overall}")
    verdict = gate(
        overall,
        args.max_mase,
        args.max_relative_mase,
        args.min_coverage,
        args.max_series_relative_mase,
        largest,
    )
    verdict["message"] += f" (backtest: {describe_folds(breakdown)})"
    report = {"overall": overall, "backtest": breakdown, "gate": verdict}
    metrics = pd.concat(
        [per_series[METRIC_COLUMNS], _overall_row(per_series, overall)], ignore_index=True
    )
    return report, metrics


def read_total_parts(ctx: RunContext) -> tuple[pd.DataFrame, pd.DataFrame]:
    """The total's backtest and history: every bucket's partial sums added up in bucket order."""
    buckets = bucket_files.index_buckets(bucket_files.read_index(ctx, STEP))
    backtest = [
        storage.read_table(uri)
        for uri in bucket_files.bucket_uris(
            ctx, STEP, run_folder.total_backtest_bucket, buckets, "Train"
        )
    ]
    history = [
        storage.read_table(uri)
        for uri in bucket_files.bucket_uris(
            ctx, STEP, run_folder.total_history_bucket, buckets, "Train"
        )
    ]
    return add_parts(backtest, list(BACKTEST_KEYS)), add_parts(history, ["ds"])


def evaluate_total(ctx: RunContext, level: float) -> TotalFit:
    backtest, history = read_total_parts(ctx)
    total = fit_total(backtest, history, level)
    if total is None:
        raise StepError(
            STEP, f"{ctx.path(*run_folder.TOTAL_BACKTEST)} holds no backtest point of the total"
        )
    return total


def total_metrics_row(total: TotalFit) -> pd.DataFrame:
    """The total's `forecast_metrics` row."""
    row = {"series_id": TOTAL_SERIES_ID, "model": MODEL_NAME, **total.scores}
    return pd.DataFrame([row])[METRIC_COLUMNS]


def total_summary(total: TotalFit) -> dict[str, Any]:
    """evaluation.json's `total`: its scores beside seasonal naive's and its interval."""
    scores = total.scores
    relative = scores["mase"] / scores["snaive_mase"] if scores["snaive_mase"] > 0 else None
    return {**scores, "relative_mase": relative, "interval": total.interval.to_json()}


def check_reserved_ids(per_series: pd.DataFrame) -> None:
    taken = sorted(set(per_series["series_id"]) & set(RESERVED_SERIES_IDS))
    if taken:
        raise StepError(
            STEP,
            f"series {taken} take an id reserved for rows that are not one series; rename them "
            "in the source",
        )


def run(ctx: RunContext, args: argparse.Namespace) -> dict[str, Any]:
    preproc.write_data_quality(ctx, STEP)
    files = backtest_files(ctx)
    calibration = count_calibration(files).calibration()
    storage.write_json(calibration.to_json(), ctx.path(*run_folder.CALIBRATION))
    per_series, coverage = score_all(files, calibration)
    check_reserved_ids(per_series)
    report, metrics = evaluate(per_series, coverage, args)
    total = evaluate_total(ctx, float(per_series["interval_level"].iloc[0]))
    storage.write_json(total.interval.to_json(), ctx.path(*run_folder.TOTAL_CALIBRATION))
    metrics = pd.concat([metrics, total_metrics_row(total)], ignore_index=True)
    report["total"] = total_summary(total)
    report["execution_date"] = ctx.execution_date.isoformat()
    report["execution_id"] = ctx.execution_id
    storage.write_json(report, ctx.path(*run_folder.EVALUATION))
    storage.write_table(metrics, ctx.path(*run_folder.METRICS))
    overall, verdict = report["overall"], report["gate"]
    print(
        f"{STEP}: {overall['n_series']} series, MASE {overall['mase']:.4f} "
        f"(seasonal naive {overall['snaive_mase']:.4f}, relative {overall['relative_mase']:.4f}), "
        f"sMAPE {overall['smape']:.2f}, coverage {overall['coverage']:.3f} "
        f"(event days {_figure(report['backtest']['coverage_event_days'])}, other days "
        f"{_figure(report['backtest']['coverage_other_days'])}); gate: {verdict['message']}"
    )
    return report


def _figure(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.3f}"


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description="Score the backtest and decide the gate.")
    add_common_arguments(parser)
    parser.add_argument("--max-mase", type=float, default=1.5, help="highest overall MASE")
    parser.add_argument(
        "--max-relative-mase", type=float, default=1.0, help="highest MASE / seasonal-naive MASE"
    )
    parser.add_argument(
        "--min-coverage", type=float, default=0.0, help="lowest interval coverage (0 = no check)"
    )
    parser.add_argument(
        "--largest-series", type=int, default=5, help="how many of the largest series are gated"
    )
    parser.add_argument(
        "--max-series-relative-mase",
        type=float,
        default=math.inf,
        help="highest MASE / seasonal-naive MASE of each of the largest series",
    )
    parser.add_argument(
        "--metrics-namespace",
        default="",
        help="CloudWatch namespace of the gate's metrics on AWS ('' = none)",
    )
    return parser.parse_args(argv)


def record_outcome(ctx: RunContext, report: dict[str, Any], metrics_namespace: str) -> None:
    """The gate's figures where operators look, before the ConditionStep may end the run: the
    execution's `run_history` row, and on AWS the dashboard's custom metrics."""
    run_history.record_gate(ctx, report)
    if metrics_namespace and not ctx.is_local:
        run_metrics.publish_gate_metrics(report, metrics_namespace)


def main(argv: list[str] | None = None) -> None:
    if shards.skip_unless_leader(STEP):
        return
    args = parse_args(argv)
    ctx = context_from(args)
    record_outcome(ctx, run(ctx, args), args.metrics_namespace)


if __name__ == "__main__":
    sys.exit(run_entry_point(main))
