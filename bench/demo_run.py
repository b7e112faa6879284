"""The demo run's wall time and the backtest accuracy of the chosen models on the demo data.

Runs what `make demo` runs (`python -m local_run run --demo`) into a fresh lake folder,
then prints the wall time (demo data generation included, and again with the data already there)
and, from the run's evaluation.json, the backtest MASE of the chosen models against seasonal
naive, sMAPE and interval coverage.

    .venv/bin/python bench/demo_run.py [--date 2026-11-26]
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import re
import sys
import tempfile
from pathlib import Path

from timed_run import run_local


def run_demo(lake: Path, date: dt.date) -> tuple[float, str]:
    return run_local(lake, date, "--demo")


def evaluation_of(lake: Path, stdout: str) -> dict:
    execution_id = re.search(r"execution id\s+(\S+)", stdout)
    if not execution_id:
        sys.exit("the run's summary names no execution id")
    path = lake / "runs" / execution_id.group(1) / "evaluation" / "evaluation.json"
    return json.loads(path.read_text())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    yesterday = dt.date.today() - dt.timedelta(days=1)
    parser.add_argument("--date", type=dt.date.fromisoformat, default=yesterday)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as folder:
        lake = Path(folder)
        first, stdout = run_demo(lake, args.date)
        again, _ = run_demo(lake, args.date)
        overall = evaluation_of(lake, stdout)["overall"]
    print(f"demo run for {args.date} on {os.cpu_count()} cores")
    print(f"wall time, demo data generated  {first:6.1f} s")
    print(f"wall time, demo data present    {again:6.1f} s")
    print(f"series modelled                 {overall['n_series']}")
    print(f"backtest MASE, chosen models    {overall['mase']:.3f}")
    print(f"backtest MASE, seasonal naive   {overall['snaive_mase']:.3f}")
    print(f"relative MASE (chosen / sNaive) {overall['relative_mase']:.3f}")
    print(f"backtest sMAPE, chosen models   {overall['smape']:.1f}")
    level = overall.get("interval_level", 0.8)
    print(f"interval coverage               {overall['coverage']:.3f} (nominal {level:.2f})")


if __name__ == "__main__":
    main()
