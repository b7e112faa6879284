"""Bad source data ends a local run with an error naming the step and the problem, and the
partition published before stays exactly as it was."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from tests.integration import source_faults
from tests.integration.source_faults import snapshot
from tests.integration.test_local_run import LATER_DATE, partition, run_local

pytestmark = pytest.mark.slow


published_lake = source_faults.published_lake
lake = source_faults.lake


def test_a_date_with_no_data_fails_in_extract_and_keeps_the_partition(lake: Path) -> None:
    before = snapshot(lake)
    result = run_local(lake, LATER_DATE + dt.timedelta(days=3), "--no-report", demo=False)
    assert result.returncode == 1, result.stdout + result.stderr
    assert "Extract" in result.stdout and "Failed" in result.stdout
    assert "ERROR Extract: no data for the execution date" in result.stdout
    assert snapshot(lake) == before
    assert not partition(lake, "forecasts", LATER_DATE + dt.timedelta(days=3)).exists()


def test_a_mistyped_source_column_fails_in_extract_and_keeps_the_partition(lake: Path) -> None:
    day = lake / "applications" / f"dt={LATER_DATE.isoformat()}"
    for path in day.glob("*.parquet"):
        table = pq.read_table(path)
        as_text = table.set_column(
            table.schema.get_field_index("applied_at"),
            "applied_at",
            pa.array([str(v) for v in table.column("applied_at").to_pylist()]),
        )
        pq.write_table(as_text, path)
    before = snapshot(lake)
    result = run_local(lake, LATER_DATE, "--no-report", demo=False)
    assert result.returncode == 1, result.stdout + result.stderr
    output = result.stdout + result.stderr
    assert "Extract" in output and "applied_at" in output
    assert snapshot(lake) == before
