from __future__ import annotations

import datetime as dt
import time
from pathlib import Path

import duckdb
import holidays
import numpy as np
import pandas as pd
import pyarrow.parquet as pq
import pytest

from local_run import demo_data
from pipeline_code import tables

END = dt.date(2025, 3, 31)


def _read(table_path: Path) -> pd.DataFrame:
    pattern = str(table_path / "*" / "*.parquet")
    return duckdb.sql(
        f"SELECT * FROM read_parquet('{pattern}', hive_partitioning = true, "
        "hive_types = {'dt': 'VARCHAR'}) ORDER BY application_id"
    ).df()


@pytest.fixture(scope="module")
def counts() -> pd.DataFrame:
    return demo_data.demo_daily_counts(END, years=3.0, n_models=30, seed=7)


def test_small_table_layout_schema_and_determinism(tmp_path: Path) -> None:
    first = demo_data.write_small_demo_applications(tmp_path / "a", END)
    second = demo_data.write_small_demo_applications(tmp_path / "b", END)
    other_seed = demo_data.write_small_demo_applications(tmp_path / "c", END, seed=8)
    part = first.table_path / f"dt={END}" / "part-0.parquet"
    assert part.exists()
    assert pq.read_schema(part).names == tables.APPLICATIONS.column_names
    rows_a, rows_b = _read(first.table_path), _read(second.table_path)
    pd.testing.assert_frame_equal(rows_a, rows_b)
    assert not rows_a.equals(_read(other_seed.table_path))
    assert len(first.models) == 4
    assert first.start_date == END - dt.timedelta(days=364)
    assert (rows_a["applied_at"].dt.strftime("%Y-%m-%d") == rows_a["dt"]).all()
    assert rows_a["application_id"].is_unique
    assert first.rows == len(rows_a)


def test_rows_add_up_to_daily_counts(tmp_path: Path) -> None:
    demo_data.write_demo_applications(tmp_path, END, years=1.0, n_models=6, seed=3)
    rows = _read(tmp_path / "applications")
    per_day = rows.groupby(["car_model", "dt"]).size()
    expected = demo_data.demo_daily_counts(END, years=1.0, n_models=6, seed=3)
    expected = expected[expected["y"] > 0].assign(dt=lambda f: f["ds"].astype(str))
    expected = expected.set_index(["series_id", "dt"])["y"].sort_index()
    assert per_day.index.tolist() == expected.index.tolist()
    assert per_day.tolist() == expected.astype(int).tolist()


def test_the_generator_never_writes_over_an_existing_table(tmp_path: Path) -> None:
    demo_data.write_demo_applications(tmp_path, END, years=0.5, n_models=3)
    before = sorted((tmp_path / "applications").rglob("*"))
    with pytest.raises(FileExistsError, match="already holds files"):
        demo_data.write_demo_applications(tmp_path, END, years=0.5, n_models=3)
    assert sorted((tmp_path / "applications").rglob("*")) == before


def test_calendar_effects(counts: pd.DataFrame) -> None:
    daily = counts.groupby("ds")["y"].sum()
    days = pd.to_datetime(pd.Series(daily.index, index=daily.index))
    jp = holidays.country_holidays("JP", years=range(2022, 2026))
    is_holiday = days.dt.date.map(lambda d: d in jp)
    weekday = days.dt.dayofweek
    year_end = ((days.dt.month == 12) & (days.dt.day >= 29)) | (
        (days.dt.month == 1) & (days.dt.day <= 3)
    )
    midweek = daily[weekday.isin([1, 2]) & ~is_holiday & ~year_end].mean()
    assert daily[weekday.isin([5, 6]) & ~year_end].mean() > 1.3 * midweek
    assert daily[is_holiday & weekday.isin([0, 1, 2, 3]) & ~year_end].mean() > 1.3 * midweek
    december = daily[(days.dt.month == 12) & (days.dt.day < 25)].mean()
    assert daily[year_end].mean() < 0.5 * december


def test_launches_stops_and_zero_days(counts: pd.DataFrame) -> None:
    summary_models = demo_data.model_names(30)
    by_model = {name: rows for name, rows in counts.groupby("series_id")}
    late = [m for m in summary_models if (by_model[m].head(60)["y"] == 0).all()]
    stopped = [m for m in summary_models if (by_model[m].tail(60)["y"] == 0).all()]
    assert len(late) >= 3
    assert len(stopped) >= 2
    assert (counts["y"] == 0).mean() > 0.05  # small models have days without applications
    assert counts.groupby("series_id")["y"].mean().max() > 10  # and some sell well


def test_three_years_of_thirty_models_is_fast(tmp_path: Path) -> None:
    started = time.perf_counter()
    summary = demo_data.write_demo_applications(tmp_path, END)
    assert time.perf_counter() - started < 20
    assert summary.partitions >= 1090
    assert len(summary.launched_late) >= 3
    assert len(summary.discontinued) >= 2


def test_bad_sizes_are_rejected() -> None:
    with pytest.raises(ValueError, match="positive"):
        demo_data.demo_daily_counts(END, years=0)


def test_count_probability_is_the_share_of_the_generators_draws_inside_the_interval() -> None:
    rng = np.random.default_rng(3)
    expected = np.array([0.4, 5.0, 60.0])
    lower, upper = np.array([0.0, 3.0, 48.5]), np.array([1.0, 7.2, 70.0])
    shape = demo_data._DISPERSION_SHAPE
    draws = rng.poisson(expected * rng.gamma(shape, 1.0 / shape, size=(200_000, 3)))
    share = ((draws >= lower) & (draws <= upper)).mean(axis=0)
    np.testing.assert_allclose(
        demo_data.count_probability(expected, lower, upper), share, atol=0.005
    )
