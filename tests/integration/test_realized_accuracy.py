"""Realized accuracy end to end: consecutive local runs score the earlier publications on the
days they observe, rows recomputed by hand from the lake, and a source that drifts is warned of."""

from __future__ import annotations

import copy
import datetime as dt
import itertools
import json
import re
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
import pytest

from local_run import summary
from local_run.demo import ensure_demo_data
from pipeline_code.forecasting.metrics import mase_scale
from pipeline_code.tables import TOTAL_SERIES_ID
from tests.integration.test_local_run import REPO_ROOT, read_partition, run_local

pytestmark = pytest.mark.slow

FIRST = dt.date(2025, 6, 20)
DATES = [FIRST + dt.timedelta(days=i) for i in range(3)]
DRIFTING = "Breeze Wagon"


def day(value: object) -> dt.date:
    return pd.Timestamp(value).date()


@pytest.fixture(scope="module")
def runs(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, list[str]]:
    """Demo data to the last date, runs of the first dates, then the last after one series'
    applications on that day were multiplied tenfold (a source that drifts)."""
    folder = tmp_path_factory.mktemp("realized")
    cdk_json = json.loads((REPO_ROOT / "cdk.json").read_text())
    environment = copy.deepcopy(cdk_json["context"]["environments"]["dev"])
    environment["pipeline"].update(horizon_days=7, accuracy_min_points=3)
    cdk_json["context"]["environments"] = {"trial": environment}
    (folder / "cdk.json").write_text(json.dumps(cdk_json))
    lake = folder / "lake"
    ensure_demo_data(lake, DATES[-1], years=1.0, models=4)
    settings = ("--env", "trial", "--cdk-json", str(folder / "cdk.json"), "--no-report")
    outputs = []
    for date in DATES:
        if date == DATES[-1]:
            drift(lake, date)
        result = run_local(lake, date, *settings, demo=False)
        assert result.returncode == 0, result.stdout + result.stderr
        outputs.append(result.stdout)
    return lake, outputs


def source_day(lake: Path, date: dt.date) -> Path:
    [path] = (lake / "applications" / f"dt={date.isoformat()}").glob("*.parquet")
    return path


def drift(lake: Path, date: dt.date) -> None:
    """Ten copies, with new ids, of every application of one series on the day."""
    path = source_day(lake, date)
    table = pq.read_table(path)
    extra = table.filter(pc.equal(table["car_model"], DRIFTING))
    copies = [table]
    for i in range(9):
        ids = pc.binary_join_element_wise(extra["application_id"], pa.scalar(f"-x{i}"), "")
        copies.append(extra.set_column(0, "application_id", ids))
    pq.write_table(pa.concat_tables(copies), path)


def daily_counts(lake: Path, last: dt.date) -> pd.DataFrame:
    frames = [
        pq.read_table(path, columns=["car_model"]).to_pandas().assign(ds=day(path.parent.name[3:]))
        for path in (lake / "applications").glob("dt=*/*.parquet")
        if day(path.parent.name[3:]) <= last
    ]
    rows = pd.concat(frames)
    return rows.groupby(["car_model", "ds"]).size().rename("y").reset_index()


def test_each_run_scores_the_days_it_is_the_first_to_observe(runs) -> None:
    lake, _ = runs
    assert read_partition(lake, "forecast_accuracy", DATES[0]).empty  # nothing published before
    for earlier, date in itertools.pairwise(DATES):
        rows = read_partition(lake, "forecast_accuracy", date)
        assert set(rows["target_date"].map(day)) == {date}  # one new day each, no re-scoring
        assert set(rows["forecast_date"].map(day)) == set(DATES[: DATES.index(date)])
        assert earlier in set(rows["forecast_date"].map(day))


def test_rows_recomputed_by_hand_from_the_lake(runs) -> None:
    lake, _ = runs
    published, target = DATES[0], DATES[1]
    rows = read_partition(lake, "forecast_accuracy", target)
    rows = rows[rows["forecast_date"].map(day) == published].set_index("series_id")
    forecasts = read_partition(lake, "forecasts", published)
    forecasts = forecasts[forecasts["target_date"].map(day) == target].set_index("series_id")
    metrics = read_partition(lake, "forecast_metrics", published).set_index("series_id")
    counts = daily_counts(lake, target)
    assert len(rows) >= 3
    assert TOTAL_SERIES_ID in rows.index
    for series_id, row in rows.iterrows():
        if series_id == TOTAL_SERIES_ID:  # the sum of every model's counts
            history = counts.groupby("ds")["y"].sum()
        else:
            history = counts[counts["car_model"] == series_id].set_index("ds")["y"]
        full = pd.Series(0.0, index=pd.date_range(history.index.min(), target).date)
        full.loc[history.index] = history.to_numpy(dtype=float)
        actual = full.loc[target]
        yhat = forecasts.loc[series_id, "yhat"]
        scale = mase_scale(full.loc[:published].to_numpy(), 7)
        assert row["actual"] == actual
        assert row["yhat"] == pytest.approx(yhat)
        assert row["horizon_step"] == 1
        assert row["abs_error"] == pytest.approx(abs(actual - yhat))
        assert row["scaled_error"] == pytest.approx(abs(actual - yhat) / scale)
        lower, upper = forecasts.loc[series_id, ["yhat_lower", "yhat_upper"]]
        assert bool(row["inside"]) == (lower <= actual <= upper)
        assert row["backtest_mase"] == pytest.approx(metrics.loc[series_id, "mase"])


def test_a_drifting_source_is_warned_of_and_the_forecast_still_published(runs) -> None:
    lake, outputs = runs
    before, after = outputs[-2], outputs[-1]
    assert f"series {DRIFTING}: MASE" not in before
    warning = next(line for line in after.splitlines() if f"series {DRIFTING}: MASE" in line)
    assert warning.startswith("warning         realized accuracy:")
    assert "x the backtest's" in warning
    assert "status          Succeeded" in after
    assert not read_partition(lake, "forecasts", DATES[-1]).empty
    summary_files = sorted((lake / "runs").glob("*/postproc/accuracy.json"))
    latest = max(summary_files, key=lambda path: path.stat().st_mtime)
    worst = json.loads(latest.read_text())["series"][0]
    assert worst["series_id"] == DRIFTING and worst["ratio"] > 1.5
    assert np.isfinite(worst["realized_mase"])


def test_the_report_shows_realized_accuracy_beside_the_promise(runs) -> None:
    lake, outputs = runs
    execution_id = re.search(r"execution id\s+(\S+)", outputs[-1]).group(1)
    page = summary.write_run_report(lake, DATES[-1], execution_id).read_text()
    section = page[page.index("Earlier forecasts against what happened") :]
    section = section[: section.index("<h2>")]
    assert "The total across series: realized MASE" in section
    assert f"series {DRIFTING}: MASE" in section  # the warning, in words
    table = section[section.index("<table") :]
    assert "Total (all series)" in table and f">{DRIFTING}<" in table
    assert "backtest MASE" in table
    effects = page[page.index("How events enter each forecast") :]
    effects = effects[: effects.index("</details>")]
    series = set(read_partition(lake, "forecasts", DATES[-1])["series_id"]) - {TOTAL_SERIES_ID}
    assert all(f"<td data-v='{name}'>" in effects for name in series)
    sources = set(re.findall(r"<td data-v='(own|pooled)'>", effects))
    assert sources and sources <= {"own", "pooled"}
    assert "public_holiday" in effects
