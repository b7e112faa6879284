"""TrainEvaluation: calibrate the intervals on Train's backtest, score it, decide the quality gate.

Runs on the leader instance only (others exit at once). Reads the backtest file of every bucket
in the series index (`train/backtest/bucket=NNN.parquet`: a missing one fails the step, naming
it), fits the interval calibration over all series' points (`forecasting.backtest_table`: the
same for any number of Train instances) and widens the chosen model's backtest intervals with it;
writes `evaluation/calibration.json` (which Predict applies), `evaluation.json` to the run
folder's `evaluation/`, where the gate's JsonGet reads it by S3 URI, and
`evaluation/metrics.parquet` (the `forecast_metrics` table's columns, one row per series and an
`__overall__` row).

evaluation.json (keys are stable: the pipeline's ConditionStep reads `overall.mase` and
`overall.relative_mase`):

    {"overall": {"mase", "smape", "mae", "coverage", "snaive_mase", "relative_mase",
                 "interval_level", "n_series"},
     "backtest": {"folds": {"recent": {"folds", "mase"}, "seasonal": {"folds", "mase"}},
                  "coverage_event_days", "coverage_other_days", "event_points"},
     "gate": {"passed", "max_mase", "max_relative_mase", "min_coverage", "reasons", "message"},
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
from typing import Any

import numpy as np
import pandas as pd

from pipeline_code import bucket_files, run_folder, shards, storage
from pipeline_code.errors import StepError, run_entry_point
from pipeline_code.forecasting.backtest_table import backtest_calibration, calibrated_frame
from pipeline_code.forecasting.metrics import (
    IntervalCalibration,
    absolute_errors,
    inside_interval,
    smape_terms,
)
from pipeline_code.run_context import RunContext, add_common_arguments, context_from
from pipeline_code.tables import FORECAST_METRICS, OVERALL_SERIES_ID

STEP = "TrainEvaluation"
REQUIRED = (
    "series_id", "model", "role", "fold", "step", "target_date", "event_kind", "y", "yhat",
    "yhat_lower", "yhat_upper", "offset_low", "offset_high", "scale", "interval_level",
    "nonnegative",
)  # fmt: skip
METRIC_COLUMNS = [c for c in FORECAST_METRICS.column_names if c != "execution_id"]
RELATIVE_CAP = 1e6
"""A series whose seasonal-naive MASE is 0 while its own is not: a finite stand-in for infinity
(evaluation.json is read by JsonGet, which needs a number)."""


def load_backtest(ctx: RunContext) -> pd.DataFrame:
    """Every bucket's backtest rows, in bucket order (the same rows for any instance count)."""
    buckets = bucket_files.index_buckets(bucket_files.read_index(ctx, STEP))
    frame = bucket_files.read_buckets(ctx, STEP, run_folder.backtest_bucket, buckets, "Train")
    uri = ctx.path(*run_folder.BACKTEST)
    missing = [c for c in REQUIRED if c not in frame.columns]
    if missing:
        raise StepError(STEP, f"{uri} lacks columns {missing}")
    if frame.empty:
        raise StepError(STEP, f"{uri} has no rows: no series is long enough for one backtest fold")
    numbers = frame[["y", "yhat", "yhat_lower", "yhat_upper", "scale"]].to_numpy(dtype=float)
    if not np.isfinite(numbers).all() or (frame["scale"] <= 0).any():
        raise StepError(STEP, f"{uri} has missing/infinite values or a non-positive scale")
    roles = set(frame["role"].unique())
    if roles != {"chosen", "benchmark"}:
        raise StepError(STEP, f"{uri} roles are {sorted(roles)}; expected chosen and benchmark")
    return frame


def _scores(frame: pd.DataFrame) -> pd.DataFrame:
    """Per-series MASE, sMAPE, MAE, coverage, folds and points of one role's rows."""
    error = absolute_errors(frame["y"], frame["yhat"])
    terms = pd.DataFrame(
        {
            "series_id": frame["series_id"],
            "model": frame["model"],
            "fold": frame["fold"],
            "mase": error / frame["scale"].to_numpy(dtype=float),
            "smape": smape_terms(frame["y"], frame["yhat"]),
            "mae": error,
            "coverage": inside_interval(
                frame["y"], frame["yhat_lower"], frame["yhat_upper"]
            ).astype(float),
        }
    )
    grouped = terms.groupby("series_id", sort=True)
    scores = grouped[["mase", "smape", "mae", "coverage"]].mean()
    scores["model"] = grouped["model"].first()
    scores["n_folds"] = grouped["fold"].nunique().astype("int64")
    scores["n_points"] = grouped.size().astype("int64")
    return scores


def per_series_metrics(backtest: pd.DataFrame) -> pd.DataFrame:
    """One row per series: the chosen model's scores and seasonal naive's MASE on the same folds."""
    chosen = _scores(backtest[backtest["role"] == "chosen"])
    benchmark = _scores(backtest[backtest["role"] == "benchmark"])
    chosen["snaive_mase"] = benchmark["mase"].reindex(chosen.index)
    if chosen["snaive_mase"].isna().any():
        raise StepError(STEP, "some series have no seasonal-naive benchmark rows")
    return chosen.reset_index()[METRIC_COLUMNS]


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


def largest_series(
    backtest: pd.DataFrame, per_series: pd.DataFrame, count: int
) -> list[dict[str, Any]]:
    """The `count` series with the most demand in the backtest, with MASE relative to their own
    seasonal naive, largest first."""
    chosen = backtest[backtest["role"] == "chosen"]
    volume = chosen.groupby("series_id")["y"].apply(lambda y: float(y.abs().mean()))
    top = volume.sort_values(ascending=False, kind="stable").head(count).index
    rows = per_series.set_index("series_id").loc[top]
    found = []
    for series_id, row in rows.iterrows():
        if row["snaive_mase"] > 0:
            relative = min(float(row["mase"] / row["snaive_mase"]), RELATIVE_CAP)
        else:
            relative = 0.0 if row["mase"] == 0 else RELATIVE_CAP
        found.append({"series_id": str(series_id), "relative_mase": relative})
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


def _mean_or_none(values: pd.Series) -> float | None:
    return float(values.mean()) if len(values) else None


def fold_breakdown(backtest: pd.DataFrame) -> dict[str, Any]:
    """Which folds the figures come from, MASE per kind of fold, coverage on and off events.

    Older backtests without `fold_kind` / `event_day` count as recent folds without events.
    """
    chosen = backtest[backtest["role"] == "chosen"]
    kinds = chosen["fold_kind"] if "fold_kind" in chosen else pd.Series("recent", chosen.index)
    events = chosen["event_day"].astype(bool) if "event_day" in chosen else kinds != kinds
    scaled = (chosen["y"] - chosen["yhat"]).abs() / chosen["scale"]
    inside = (chosen["y"] >= chosen["yhat_lower"]) & (chosen["y"] <= chosen["yhat_upper"])
    per_kind = {}
    for kind in ("recent", "seasonal"):
        rows = kinds == kind
        folds = chosen.loc[rows, "fold"].groupby(chosen.loc[rows, "series_id"]).nunique()
        per_kind[kind] = {
            "folds": int(folds.max()) if len(folds) else 0,
            "mase": _mean_or_none(scaled[rows].groupby(chosen.loc[rows, "series_id"]).mean()),
        }
    return {
        "folds": per_kind,
        "coverage_event_days": _mean_or_none(inside[events].astype(float)),
        "coverage_other_days": _mean_or_none(inside[~events].astype(float)),
        "event_points": int(events.sum()),
    }


def describe_folds(breakdown: dict[str, Any]) -> str:
    recent, seasonal = breakdown["folds"]["recent"], breakdown["folds"]["seasonal"]
    text = f"{recent['folds']} recent folds"
    if seasonal["folds"]:
        text += f" + {seasonal['folds']} at the same season a year or more back"
    return text


def evaluate(backtest: pd.DataFrame, args: argparse.Namespace) -> tuple[dict, pd.DataFrame]:
    per_series = per_series_metrics(backtest)
    level = float(backtest["interval_level"].iloc[0]) if "interval_level" in backtest else math.nan
    overall = overall_metrics(per_series, level)
    largest = largest_series(backtest, per_series, args.largest_series)
    overall["largest_series_relative_mase"] = max(
        (series["relative_mase"] for series in largest), default=0.0
    )
    breakdown = fold_breakdown(backtest)
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
    metrics = pd.concat([per_series, _overall_row(per_series, overall)], ignore_index=True)
    return report, metrics


def calibrate(backtest: pd.DataFrame) -> tuple[IntervalCalibration, pd.DataFrame]:
    """The calibration over all backtest points and the backtest with calibrated intervals."""
    calibration = backtest_calibration(backtest)
    return calibration, calibrated_frame(backtest, calibration)


def run(ctx: RunContext, args: argparse.Namespace) -> dict[str, Any]:
    calibration, backtest = calibrate(load_backtest(ctx))
    storage.write_json(calibration.to_json(), ctx.path(*run_folder.CALIBRATION))
    report, metrics = evaluate(backtest, args)
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
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> None:
    if shards.skip_unless_leader(STEP):
        return
    args = parse_args(argv)
    run(context_from(args), args)


if __name__ == "__main__":
    sys.exit(run_entry_point(main))
