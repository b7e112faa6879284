"""Source faults that must not change the forecast: published with a clean source's numbers and a
warning (faults listed in tests/integration/source_faults.py)."""

from __future__ import annotations

import datetime as dt
import json
import shutil
from pathlib import Path

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from tests.integration import source_faults
from tests.integration.source_faults import (
    CLEAN_ID,
    FAULT_ID,
    assert_published_as_clean,
    extract_of,
    rewrite,
    run_again,
    source_day,
)
from tests.integration.test_local_run import LATER_DATE, read_partition

pytestmark = pytest.mark.slow

published_lake = source_faults.published_lake
lake = source_faults.lake

# --- published with the right numbers and a warning ------------------------------------------


def _pad_every_other_name(table: pa.Table) -> pa.Table:
    names = table.column("car_model").to_pylist()
    padded = [name + " " if i % 2 else name for i, name in enumerate(names)]
    return table.set_column(table.schema.get_field_index("car_model"), "car_model", [padded])


def test_repeated_deliveries_stray_folders_and_untrimmed_names_count_as_a_clean_source(
    lake: Path,
) -> None:
    """One run with four faults, each of which alone changed the forecast: each is named in a
    warning and the counts equal the clean source's."""
    three_days_ago = LATER_DATE - dt.timedelta(days=3)
    # The same applications delivered twice: a second file in a partition ...
    shutil.copy(
        source_day(lake, three_days_ago) / "part-0.parquet",
        source_day(lake, three_days_ago) / "part-1.parquet",
    )
    # ... and the same rows twice in one file.
    rewrite(source_day(lake) / "part-0.parquet", lambda t: pa.concat_tables([t, t]))
    # Stray copies of a partition folder.
    shutil.copytree(source_day(lake), lake / "applications" / f"dt={LATER_DATE}.bak")
    shutil.copytree(source_day(lake), lake / "applications" / "dt=2025-06-3")
    # "Ridge Wagon " beside "Ridge Wagon" on one day, for every model.
    rewrite(
        source_day(lake, LATER_DATE - dt.timedelta(days=1)) / "part-0.parquet",
        _pad_every_other_name,
    )
    output = assert_published_as_clean(lake, run_again(lake))
    warnings = [line for line in output.splitlines() if line.startswith("warning ")]
    assert any("repeat an application_id already read and were counted once" in w for w in warnings)
    assert any(f"dt={three_days_ago} (" in w and "repeats in" in w for w in warnings), warnings
    assert any(
        "are not dt=YYYY-MM-DD partitions and were not read" in w
        and "dt=2025-06-3" in w
        and f"dt={LATER_DATE}.bak" in w
        for w in warnings
    ), warnings
    assert any("car_model spellings folded into one series name" in w for w in warnings), warnings
    quality = json.loads((lake / "runs" / FAULT_ID / "extract" / "data_quality.json").read_text())
    assert quality["folded_names"] and all(
        spellings == [f"{name} "] for name, spellings in quality["folded_names"].items()
    )


def test_time_zone_aware_timestamps_fall_on_the_same_days_on_any_host(lake: Path) -> None:
    def as_utc_instants(table: pa.Table) -> pa.Table:
        local = table.column("applied_at").to_pandas().dt.tz_localize("Asia/Tokyo")
        aware = pa.array(local.dt.tz_convert("UTC"), pa.timestamp("ms", tz="UTC"))
        return table.set_column(table.schema.get_field_index("applied_at"), "applied_at", aware)

    for path in (lake / "applications").glob("dt=*/*.parquet"):
        rewrite(path, as_utc_instants)
    result = run_again(lake, env={"TZ": "America/New_York"})
    assert_published_as_clean(lake, result)


def test_a_spike_on_the_execution_date_is_capped_and_reported(lake: Path) -> None:
    clean = extract_of(lake, CLEAN_ID)
    today = clean[clean["ds"] == LATER_DATE].set_index("series_id")["y"]
    small = today[today > 0].idxmin()
    path = source_day(lake) / "part-0.parquet"
    table = pq.read_table(path)
    rows = table.filter(pa.compute.equal(table.column("car_model"), small)).to_pandas()
    spike = pd.concat([rows] * 1000, ignore_index=True)
    spike["application_id"] = [f"S{i:08d}" for i in range(len(spike))]
    pq.write_table(
        pa.Table.from_pandas(spike, schema=table.schema), source_day(lake) / "part-1.parquet"
    )
    result = run_again(lake)
    output = result.stdout + result.stderr
    assert result.returncode == 0, output
    assert f"{small}: {float(len(spike) + len(rows)):g} on {LATER_DATE}" in output
    assert "(the median of its weekday) is used for fitting" in output
    forecasts = read_partition(lake, "forecasts", LATER_DATE)
    clean_level = _clean_forecast_level(lake, small)
    level = forecasts.loc[forecasts["series_id"] == small, "yhat"].mean()
    # The spiked day fits as an ordinary one: the forecast stays near the clean source's.
    assert level == pytest.approx(clean_level, rel=0.15)


def _clean_forecast_level(lake: Path, series_id: str) -> float:
    frame = pd.read_parquet(lake / "runs" / CLEAN_ID / "predict" / "forecasts")  # bucket files
    return float(frame.loc[frame["series_id"] == series_id, "yhat"].mean())
