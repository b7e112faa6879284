"""One local run of the pipeline, as `make demo` starts it, timed; shared by the benchmarks that
run the whole pipeline (bench/demo_run.py, bench/holdout.py). A failed run ends the benchmark."""

from __future__ import annotations

import datetime as dt
import os
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def run_local(lake: Path, date: dt.date, *options: str) -> tuple[float, str]:
    """`python -m local_run run --lake LAKE --date DATE OPTIONS...`: wall seconds and stdout."""
    started = time.perf_counter()
    result = subprocess.run(
        [sys.executable, "-m", "local_run", "run", "--lake", str(lake),
         "--date", date.isoformat(), *options],
        cwd=REPO,
        env={**os.environ, "PYTHONPATH": str(REPO)},
        capture_output=True,
        text=True,
        check=False,
    )  # fmt: skip
    elapsed = time.perf_counter() - started
    if result.returncode != 0:
        sys.exit(
            f"the run for {date} failed ({result.returncode}):\n{result.stdout}{result.stderr}"
        )
    return elapsed, result.stdout
