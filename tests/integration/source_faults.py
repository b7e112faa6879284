"""Faults injected into a small demo lake, then the same date run again, as a user would.

Each fault ends one of two ways: refused with one line naming the cause and the place, with both
tables' previous partitions byte for byte as they were (test_source_faults_refused.py); or
published with the numbers a clean source gives and a warning in the summary
(test_source_faults_published.py). This module holds what both share.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pyarrow.parquet as pq
import pytest

from pipeline_code import shards
from pipeline_code.steps import preproc
from tests.integration.test_local_run import LATER_DATE, REPO_ROOT, read_partition, run_local

CLEAN_ID = "clean-run"
FAULT_ID = "fault-run"


def snapshot(lake: Path) -> dict[str, bytes]:
    """Every published file's bytes, and where each partition link points."""
    files: dict[str, bytes] = {}
    for table in ("forecasts", "forecast_metrics"):
        for link in sorted((lake / table).glob("execution_date=*")):
            files[str(link)] = os.readlink(link).encode() if link.is_symlink() else b"dir"
            for path in sorted(link.glob("*.parquet")):
                files[str(path)] = path.read_bytes()
    return files


@pytest.fixture(scope="module")
def published_lake(tmp_path_factory: pytest.TempPathFactory) -> Path:
    lake = tmp_path_factory.mktemp("clean")
    result = run_local(lake, LATER_DATE, "--no-report", "--execution-id", CLEAN_ID)
    assert result.returncode == 0, result.stdout + result.stderr
    return lake


@pytest.fixture
def lake(published_lake: Path, tmp_path: Path) -> Path:
    copy = tmp_path / "lake"
    shutil.copytree(published_lake, copy, symlinks=True)
    return copy


def source_day(lake: Path, day: dt.date = LATER_DATE) -> Path:
    return lake / "applications" / f"dt={day.isoformat()}"


def rewrite(path: Path, change) -> None:
    pq.write_table(change(pq.read_table(path)), path)


def run_again(lake: Path, *extra: str, env: dict[str, str] | None = None):
    if env is None:
        return run_local(
            lake, LATER_DATE, "--no-report", "--execution-id", FAULT_ID, *extra, demo=False
        )
    command = [
        sys.executable, "-m", "local_run", "run", "--lake", str(lake),
        "--date", LATER_DATE.isoformat(), "--no-report", "--execution-id", FAULT_ID, *extra,
    ]  # fmt: skip
    environment = {**os.environ, "PYTHONPATH": str(REPO_ROOT), **env}
    return subprocess.run(
        command, cwd=REPO_ROOT, env=environment, capture_output=True, text=True, timeout=600
    )


def extract_of(lake: Path, execution_id: str) -> pd.DataFrame:
    """The counts Extract wrote, every bucket's, in series and day order."""
    manifest = lake / "runs" / execution_id / "extract" / "counts.json"
    folder = json.loads(manifest.read_text())["folder"]
    frames = [preproc.read_counts(folder, bucket) for bucket in range(shards.BUCKETS)]
    counts = pd.concat([f for f in frames if len(f)], ignore_index=True)
    counts["ds"] = pd.to_datetime(counts["ds"]).dt.date
    return counts.sort_values(["series_id", "ds"]).reset_index(drop=True)


def assert_published_as_clean(lake: Path, result: subprocess.CompletedProcess[str]) -> str:
    """The run succeeded, counted what a clean source gives, and published; returns its output."""
    output = result.stdout + result.stderr
    assert result.returncode == 0, output
    pd.testing.assert_frame_equal(extract_of(lake, FAULT_ID), extract_of(lake, CLEAN_ID))
    for table in ("forecasts", "forecast_metrics"):
        assert set(read_partition(lake, table, LATER_DATE)["execution_id"]) == {FAULT_ID}
    return output


def assert_refused(lake: Path, before: dict[str, bytes], result, *needles: str) -> None:
    """Failed with one ERROR line holding every needle; nothing published changed."""
    output = result.stdout + result.stderr
    assert result.returncode in (1, 2), output
    errors = [line for line in output.splitlines() if "ERROR " in line]
    assert errors, output
    assert all(needle in errors[-1] for needle in needles), errors
    assert "Traceback" not in output
    assert snapshot(lake) == before
