from __future__ import annotations

import datetime as dt
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from local_run import demo_data
from pipeline_code import bucket_files, run_folder, shards, storage
from pipeline_code.errors import StepError
from pipeline_code.forecasting import daily_settings, predict_series, train_series
from pipeline_code.forecasting.selection import pool_events
from pipeline_code.forecasting.series_table import series_from_frame
from pipeline_code.run_context import RunContext
from pipeline_code.steps import preproc

END = dt.date(2025, 3, 31)


def _days(n: int, end: dt.date = END) -> list[dt.date]:
    return [end - dt.timedelta(days=i) for i in range(n - 1, -1, -1)]


def _series(series_id: str, n: int, value: float = 3.0) -> pd.DataFrame:
    return pd.DataFrame({"series_id": series_id, "ds": _days(n), "y": value})


def _clean(frame: pd.DataFrame, min_history: int = 10, stopped: int = 7):
    return preproc.clean(frame, END, min_history, stopped)


def _day(series: pd.DataFrame, series_id: str, day: dt.date) -> float:
    row = series[(series["series_id"] == series_id) & (series["ds"] == day)]
    assert len(row) == 1
    return float(row["y"].iloc[0])


def test_gaps_are_zero_filled_to_the_execution_date() -> None:
    frame = _series("A", 30).drop(index=[10, 11])  # two days without applications
    frame = frame[frame["ds"] != END]  # and none on the last day
    series, quality = _clean(frame)
    assert series["ds"].tolist() == _days(30)
    assert _day(series, "A", _days(30)[10]) == 0.0
    assert _day(series, "A", END) == 0.0
    assert quality.counts["zero_filled_days"] == 3
    assert series["y"].dtype == "float64"


def test_duplicates_are_dropped_and_same_key_rows_summed() -> None:
    base = _series("A", 20)
    day = _days(20)[5]
    extra = pd.DataFrame(
        {"series_id": ["A", "A"], "ds": [_days(20)[3], day], "y": [3.0, 2.0]}
    )  # an exact copy of day 3's row, and a second partial count for `day`
    series, quality = _clean(pd.concat([base, extra]))
    assert _day(series, "A", _days(20)[3]) == 3.0
    assert _day(series, "A", day) == 5.0
    assert quality.counts["exact_duplicate_rows"] == 1
    assert quality.counts["summed_key_rows"] == 1


def test_future_rows_are_dropped() -> None:
    future = pd.DataFrame({"series_id": ["A"], "ds": [END + dt.timedelta(days=1)], "y": [9.0]})
    series, quality = _clean(pd.concat([_series("A", 20), future]))
    assert series["ds"].max() == END
    assert quality.counts["future_rows"] == 1


def test_nan_negative_and_text_values_are_imputed_from_neighbours() -> None:
    frame = _series("A", 20).astype({"y": object})
    days = _days(20)
    frame.loc[5, "y"] = np.nan
    frame.loc[8, "y"] = -4.0
    frame.loc[12, "y"] = "n/a"
    frame.loc[13, "y"] = 5.0
    frame.loc[11, "y"] = 1.0
    series, quality = _clean(frame)
    assert _day(series, "A", days[5]) == 3.0
    assert _day(series, "A", days[8]) == 3.0
    assert _day(series, "A", days[12]) == 3.0  # halfway between 1 and 5
    assert quality.counts["nan_y"] == 1
    assert quality.counts["negative_y"] == 1
    assert quality.counts["non_numeric_y"] == 1
    assert quality.counts["imputed_days"] == 3
    assert (series["y"] >= 0).all()


def test_short_and_stopped_series_are_set_aside() -> None:
    stopped = _series("Old", 30)
    stopped = stopped[stopped["ds"] < END - dt.timedelta(days=10)]
    frame = pd.concat([_series("A", 30), _series("New", 5), stopped])
    series, quality = _clean(frame)
    assert set(series["series_id"]) == {"A"}
    assert quality.set_aside["too_short"] == ["New"]
    assert quality.set_aside["stopped"] == ["Old"]
    assert quality.counts["too_short_series"] == 1
    assert quality.counts["stopped_series"] == 1


def test_series_with_only_unknown_values_is_dropped_and_listed() -> None:
    broken = _series("B", 30, value=np.nan)
    series, quality = _clean(pd.concat([_series("A", 30), broken]))
    assert set(series["series_id"]) == {"A"}
    assert quality.set_aside["no_known_value"] == ["B"]


@pytest.mark.parametrize(
    ("frame", "problem"),
    [
        (_series("A", 30, value=np.nan), "no usable y value"),
        (_series("A", 30, value=-1.0), "all 30 y values in the window are negative"),
        (_series("A", 30).iloc[0:0], "the extract is empty"),
        (_series("A", 30).drop(columns="y"), r"extract lacks columns \['y'\]"),
        (_series("A", 5), "nothing left to model"),
    ],
)
def test_unusable_input_fails_naming_the_problem(frame: pd.DataFrame, problem: str) -> None:
    with pytest.raises(StepError, match=problem) as err:
        _clean(frame)
    assert err.value.step == "PreProc"


def test_only_future_rows_fail() -> None:
    frame = _series("A", 30).assign(ds=lambda f: [d + dt.timedelta(days=60) for d in f["ds"]])
    with pytest.raises(StepError, match="PreProc: no rows on or before the execution date"):
        _clean(frame)


def _write_counts(ctx: RunContext, frame: pd.DataFrame) -> None:
    """Counts as Extract leaves them: one folder a bucket in an attempt folder, and counts.json."""
    folder = ctx.path(*run_folder.EXTRACT_COUNTS, "attempt-1")
    for bucket, rows in bucket_files.split_by_bucket(frame).items():
        storage.write_table(rows, f"{folder}/{run_folder.counts_bucket(bucket)}/data_0")
    storage.write_json({"folder": folder}, ctx.path(*run_folder.COUNTS_MANIFEST))


def test_every_instance_cleans_its_own_buckets_and_trainevaluation_merges(
    tmp_path: Path,
) -> None:
    ctx = RunContext(execution_date=END, execution_id="exec-1", data_root=str(tmp_path))
    frame = pd.concat([_series(name, 80) for name in "ACDEFG"] + [_series("B", 20)])
    _write_counts(ctx, frame)
    shares = [shards.Share(rank, 3) for rank in range(3)]
    outs = [preproc.run(ctx, 56, 28, share=share) for share in shares]
    assert sorted(sid for out in outs for sid in out) == list("ACDEFG")
    for out, share in zip(outs, shares, strict=True):
        assert all(share.owns(series_id) for series_id in out)
    series = storage.read_folder(ctx.path(*run_folder.SERIES))
    assert list(series.columns) == ["series_id", "ds", "y"] and len(series) == 6 * 80
    report = preproc.write_data_quality(ctx, "TrainEvaluation")
    assert report == storage.read_json(ctx.path(*run_folder.DATA_QUALITY))
    assert report["execution_date"] == END.isoformat()
    assert report["set_aside"]["too_short"] == ["B"]
    assert report["counts"]["input_rows"] == 6 * 80 + 20
    assert report["counts"]["output_rows"] == 6 * 80


def test_a_lost_instance_shows_as_missing_bucket_files(tmp_path: Path) -> None:
    ctx = RunContext(execution_date=END, execution_id="exec-1", data_root=str(tmp_path))
    _write_counts(ctx, _series("A", 80))
    preproc.run(ctx, 56, 28, share=shards.Share(0, 2))
    with pytest.raises(StepError, match=r"32 of 64 bucket files missing: .*bucket=001.json"):
        preproc.write_data_quality(ctx, "TrainEvaluation")


def test_run_without_extract_fails(tmp_path: Path) -> None:
    ctx = RunContext(execution_date=END, execution_id="exec-1", data_root=str(tmp_path))
    with pytest.raises(StepError, match=r"PreProc: input .*counts.json does not exist"):
        preproc.run(ctx, min_history_days=56, stopped_days=28)


def test_a_day_the_source_has_no_partition_for_is_imputed_not_zero() -> None:
    frame = _series("A", 30, value=10.0)
    missing = END - dt.timedelta(days=5)
    frame = frame[frame["ds"] != missing]
    series, quality = preproc.clean(frame, END, 10, 7, missing_days=frozenset({missing}))
    assert _day(series, "A", missing) == 10.0
    assert quality.counts["missing_source_days"] == 1
    assert quality.counts["zero_filled_days"] == 0


def test_a_partial_day_is_imputed_not_read_as_demand() -> None:
    frame = _series("A", 30, value=10.0)
    partial = END - dt.timedelta(days=5)
    frame.loc[frame["ds"] == partial, "y"] = 2.0
    series, quality = preproc.clean(frame, END, 10, 7, partial_days=frozenset({partial}))
    assert _day(series, "A", partial) == 10.0
    assert quality.counts["partial_source_days"] == 1


def _poisson(days: int = 120, rate: float = 20.0, seed: int = 3) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    return pd.DataFrame({"series_id": "car", "ds": _days(days), "y": rng.poisson(rate, days) * 1.0})


@pytest.mark.parametrize("back", [0, 3, 20])
def test_a_spike_on_any_recent_day_is_replaced_and_reported(back: int) -> None:
    frame = _poisson()
    day = END - dt.timedelta(days=back)
    frame.loc[frame["ds"] == day, "y"] = 1000.0  # 50 times the usual
    series, quality = preproc.clean(frame, END, 10, 7, outlier_threshold=20.0)
    [outlier] = quality.outliers
    assert (outlier["ds"], outlier["value"], outlier["recent"]) == (day.isoformat(), 1000.0, True)
    assert 10 < _day(series, "car", day) == outlier["capped_to"] < 30  # an ordinary day's level
    report = preproc.quality_report(quality, RunContext(END, "e", "/tmp"), series)
    assert f"car: 1000 on {day} is far above its median" in report["warnings"][0]


def test_an_old_spike_is_replaced_without_a_warning() -> None:
    frame = _poisson()
    frame.loc[frame["ds"] == END - dt.timedelta(days=60), "y"] = 1000.0
    series, quality = preproc.clean(frame, END, 10, 7)
    assert [o["recent"] for o in quality.outliers] == [False]
    assert preproc.quality_report(quality, RunContext(END, "e", "/tmp"), series)["warnings"] == []


def test_an_ordinary_busy_day_is_not_an_outlier() -> None:
    days = _days(60)
    frame = pd.DataFrame({"series_id": "big", "ds": days, "y": 50.0 + (np.arange(60) % 7)})
    frame.loc[frame["ds"] == END, "y"] = 150.0  # three times the usual: a campaign day
    series, quality = preproc.clean(frame, END, 10, 7)
    assert quality.outliers == []
    assert _day(series, "big", END) == 150.0


@pytest.mark.parametrize("back", [0, 3])
def test_a_50x_day_moves_the_next_28_days_forecast_by_a_few_per_cent(back: int) -> None:
    counts = demo_data.demo_daily_counts(END, years=1.5, n_models=30, seed=11)
    frame = counts[counts["series_id"] == counts.groupby("series_id")["y"].sum().idxmax()]
    spiked = frame.copy()
    day = END - dt.timedelta(days=back)
    spiked.loc[spiked["ds"] == day, "y"] *= 50

    def forecast_sum(rows: pd.DataFrame) -> float:
        series, _ = preproc.clean(rows, END, 56, 28)
        [data] = series_from_frame(series, END, "1D")
        settings = daily_settings(horizon=28)
        model = train_series(data, settings, pool_events([data], settings)).model
        return float(predict_series(data, model, settings).yhat.sum())

    assert forecast_sum(spiked) == pytest.approx(forecast_sum(frame), rel=0.03)
