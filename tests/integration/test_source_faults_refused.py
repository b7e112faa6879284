"""Source and argument faults that must stop the run: refused with one line naming the cause and
the place, both tables' previous partitions byte for byte as they were."""

from __future__ import annotations

import datetime as dt
import shutil
from pathlib import Path

import pyarrow as pa
import pytest

from tests.integration import source_faults
from tests.integration.source_faults import (
    assert_refused,
    rewrite,
    run_again,
    snapshot,
    source_day,
)
from tests.integration.test_local_run import LATER_DATE, run_local

pytestmark = pytest.mark.slow

published_lake = source_faults.published_lake
lake = source_faults.lake

# --- refused with the named cause -------------------------------------------------------------


def test_five_missing_days_are_not_read_as_zero_demand(lake: Path) -> None:
    for i in range(3, 8):
        shutil.rmtree(source_day(lake, LATER_DATE - dt.timedelta(days=i)))
    before = snapshot(lake)
    result = run_again(lake)
    assert_refused(
        lake, before, result, "Extract", "5 of the last 28 days have no partition",
        "2025-06-23..2025-06-27 (5 days)",
    )  # fmt: skip


def test_a_27_day_outage_is_refused(lake: Path) -> None:
    for i in range(1, 28):
        shutil.rmtree(source_day(lake, LATER_DATE - dt.timedelta(days=i)))
    before = snapshot(lake)
    assert_refused(lake, before, run_again(lake), "Extract", "27 of the last 28 days")


def test_a_partition_whose_car_model_became_an_integer_is_refused(lake: Path) -> None:
    day = LATER_DATE - dt.timedelta(days=10)
    path = source_day(lake, day) / "part-0.parquet"
    rewrite(
        path,
        lambda t: t.set_column(
            t.schema.get_field_index("car_model"), "car_model", [pa.array([7] * t.num_rows)]
        ),
    )
    before = snapshot(lake)
    assert_refused(
        lake, before, run_again(lake), "Extract", str(path), "column 'car_model' is int64"
    )


def test_a_partition_whose_column_was_renamed_is_refused(lake: Path) -> None:
    path = source_day(lake, LATER_DATE - dt.timedelta(days=2)) / "part-0.parquet"
    rewrite(
        path,
        lambda t: t.rename_columns(["model" if n == "car_model" else n for n in t.column_names]),
    )
    before = snapshot(lake)
    assert_refused(
        lake, before, run_again(lake), "Extract", str(path), "column 'car_model' is missing"
    )


def test_a_corrupt_parquet_file_is_named(lake: Path) -> None:
    path = source_day(lake, LATER_DATE - dt.timedelta(days=4)) / "part-0.parquet"
    path.write_bytes(path.read_bytes()[:100])
    before = snapshot(lake)
    assert_refused(
        lake, before, run_again(lake), "Extract", str(path), "is not a readable Parquet file"
    )


@pytest.mark.parametrize("bad_id", ["../forecasts/execution_date=2025-06-30", "/tmp/elsewhere"])
def test_an_execution_id_that_is_a_path_is_refused(lake: Path, bad_id: str) -> None:
    before = snapshot(lake)
    result = run_local(lake, LATER_DATE, "--execution-id", bad_id, demo=False)
    assert_refused(lake, before, result, "--execution-id", "is not allowed")
    assert result.returncode == 2
    assert not (lake / "forecasts" / "execution_date=2025-06-30" / "logs").exists()


def test_a_lake_that_is_a_file_and_a_date_out_of_range_are_one_line(tmp_path: Path) -> None:
    not_a_folder = tmp_path / "lake.txt"
    not_a_folder.write_text("x")
    result = run_local(not_a_folder, LATER_DATE, demo=False)
    assert result.returncode == 2
    assert result.stderr.strip() == f"ERROR --lake {not_a_folder}: is not a folder"
    result = run_local(tmp_path / "lake", dt.date(1, 1, 1), demo=False)
    assert result.returncode == 2
    assert "--date: execution date 0001-01-01 is outside the supported range" in result.stderr
    assert "Traceback" not in result.stderr
