"""Realized accuracy against the backtest's promise, over consecutive daily runs of the demo.

Writes the demo data (3 years, 30 models) to the last date once, then runs the local pipeline
for every date in turn, as the daily schedule would: each run reads only up to its own date, so
later runs see the actuals of earlier forecasts and score them (`forecast_accuracy`). Prints:

- per run, the wall time and the Predict and PostProc steps' times (where scoring happens), so
  that the cost of scoring stays visible as publications accumulate;
- realized MASE and interval coverage by horizon week, beside the backtest MASE the scored
  forecasts were published with and the nominal level, over every scored point;
- the verdict on the targets: realized MASE within 0.8-1.25x the promised, coverage within 5
  points of nominal.

    .venv/bin/python bench/realized.py [--start 2026-09-01] [--days 60]
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import re
import sys
import tempfile
import time
from pathlib import Path

import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from timed_run import run_local

from local_run.demo import ensure_demo_data
from pipeline_code.accuracy import latest_scores

LEVEL = 0.8


def step_seconds(stdout: str, step: str) -> float:
    match = re.search(rf"^\s+{step}\s+Succeeded\s+([\d.]+) s", stdout, re.MULTILINE)
    return float(match.group(1)) if match else float("nan")


def scored_rows(lake: Path) -> pd.DataFrame:
    """Every published scored row, each (publication, series, day) once."""
    frames = [
        pd.read_parquet(folder).assign(scored_on=folder.name.split("=", 1)[1])
        for folder in sorted((lake / "forecast_accuracy").glob("execution_date=*"))
    ]
    return latest_scores(pd.concat([f for f in frames if len(f)], ignore_index=True), "scored_on")


def by_horizon_week(rows: pd.DataFrame) -> pd.DataFrame:
    rows = rows.assign(week=(rows["horizon_step"] - 1) // 7 + 1)
    table = rows.groupby("week").agg(
        points=("actual", "size"),
        realized_mase=("scaled_error", "mean"),
        promised_mase=("backtest_mase", "mean"),
        coverage=("inside", "mean"),
    )
    total = pd.DataFrame(
        {
            "points": [len(rows)],
            "realized_mase": [rows["scaled_error"].mean()],
            "promised_mase": [rows["backtest_mase"].mean()],
            "coverage": [rows["inside"].mean()],
        },
        index=pd.Index(["all"], name="week"),
    )
    table = pd.concat([table, total])
    return table.assign(ratio=table["realized_mase"] / table["promised_mase"])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--start", type=dt.date.fromisoformat, default=dt.date(2026, 9, 1))
    parser.add_argument("--days", type=int, default=60)
    parser.add_argument("--models", type=int, default=30)
    parser.add_argument(
        "--report-every", type=int, default=10, help="print the figures so far every N runs"
    )
    args = parser.parse_args()
    dates = [args.start + dt.timedelta(days=i) for i in range(args.days)]
    print(f"{len(dates)} daily runs {dates[0]}..{dates[-1]}, {args.models} models, load average"
          f" {os.getloadavg()[0]:.1f} at start")  # fmt: skip
    with tempfile.TemporaryDirectory() as folder:
        lake = Path(folder)
        started = time.perf_counter()
        ensure_demo_data(lake, dates[-1], years=3.0, models=args.models)
        print(f"demo data written in {time.perf_counter() - started:.1f} s")
        print("date        wall s  Predict s  PostProc s  load")
        for number, date in enumerate(dates, start=1):
            wall, stdout = run_local(lake, date, "--no-report")
            print(
                f"{date}  {wall:6.1f}  {step_seconds(stdout, 'Predict'):9.1f}"
                f"  {step_seconds(stdout, 'PostProc'):10.1f}  {os.getloadavg()[0]:4.1f}",
                flush=True,
            )
            if number > 1 and (number % args.report_every == 0 or number == len(dates)):
                table = by_horizon_week(scored_rows(lake))
                print_table(table, f"after {number} runs ({dates[0]}..{date})")
    verdict(table)


def print_table(table: pd.DataFrame, title: str) -> None:
    print(f"\n{title}")
    print("horizon week  points  realized MASE  promised MASE  ratio  coverage (nominal 80%)")
    for week, row in table.iterrows():
        print(
            f"{week!s:>12}  {int(row['points']):6d}  {row['realized_mase']:13.3f}"
            f"  {row['promised_mase']:13.3f}  {row['ratio']:5.2f}  {row['coverage']:8.1%}",
            flush=True,
        )
    print()


def verdict(table: pd.DataFrame) -> None:
    overall = table.loc["all"]
    mase_ok = 0.8 <= overall["ratio"] <= 1.25
    coverage_ok = abs(overall["coverage"] - LEVEL) <= 0.05
    print(
        f"\ntargets: realized / promised MASE {overall['ratio']:.2f} within 0.8-1.25:"
        f" {'met' if mase_ok else 'MISSED'}; coverage {overall['coverage']:.1%} within 5 points"
        f" of {LEVEL:.0%}: {'met' if coverage_ok else 'MISSED'}"
    )


if __name__ == "__main__":
    main()
