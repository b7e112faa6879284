"""The series table between steps (`series_id, ds, y`) as per-series arrays, checked on the way.

Train and Predict both read `preproc/series.parquet`; the contract is one row per series and day,
no gaps, no missing y, nothing after the execution date. A table that breaks it is bad input:
`SeriesTableError` says which rule and which series, and the steps turn it into a StepError.
"""

from __future__ import annotations

import datetime as dt

import numpy as np
import pandas as pd

from pipeline_code.forecasting.selection import SeriesData

COLUMNS = ("series_id", "ds", "y")


class SeriesTableError(ValueError):
    """The series table breaks the contract."""


def _examples(ids: pd.Index | np.ndarray, limit: int = 5) -> str:
    listed = [str(v) for v in list(ids)[:limit]]
    more = f" and {len(ids) - limit} more" if len(ids) > limit else ""
    return ", ".join(listed) + more


def _normalised(frame: pd.DataFrame) -> pd.DataFrame:
    missing = [c for c in COLUMNS if c not in frame.columns]
    if missing:
        raise SeriesTableError(f"series table lacks columns {missing}; has {list(frame.columns)}")
    if frame.empty:
        raise SeriesTableError("series table is empty")
    out = frame[list(COLUMNS)].copy()
    out["series_id"] = out["series_id"].astype(str)
    try:
        out["ds"] = pd.to_datetime(out["ds"]).dt.normalize()
        out["y"] = pd.to_numeric(out["y"]).astype(float)
    except (ValueError, TypeError) as err:
        raise SeriesTableError(f"unreadable ds or y: {err}") from err
    return out.sort_values(["series_id", "ds"], kind="stable").reset_index(drop=True)


def _check_rows(frame: pd.DataFrame, execution_date: dt.date | None) -> None:
    bad_y = frame.loc[~np.isfinite(frame["y"].to_numpy()), "series_id"].unique()
    if len(bad_y):
        raise SeriesTableError(f"y is missing or infinite in series {_examples(bad_y)}")
    duplicated = frame.duplicated(["series_id", "ds"])
    if duplicated.any():
        ids = frame.loc[duplicated, "series_id"].unique()
        raise SeriesTableError(f"more than one row per day in series {_examples(ids)}")
    if execution_date is not None:
        late = frame["ds"] > pd.Timestamp(execution_date)
        if late.any():
            ids = frame.loc[late, "series_id"].unique()
            raise SeriesTableError(
                f"rows after the execution date {execution_date} in series {_examples(ids)}"
            )


def _check_no_gaps(frame: pd.DataFrame, step: pd.Timedelta) -> None:
    spans = frame.groupby("series_id", sort=False)["ds"].agg(["min", "max", "size"])
    expected = (spans["max"] - spans["min"]) // step + 1
    gapped = spans.index[expected.to_numpy() != spans["size"].to_numpy()]
    if len(gapped):
        raise SeriesTableError(f"missing days (gaps) in series {_examples(gapped)}")


def series_from_frame(
    frame: pd.DataFrame, execution_date: dt.date | None = None, step: str = "1D"
) -> list[SeriesData]:
    """Split a checked long table into SeriesData sorted by series_id, without a groupby loop."""
    table = _normalised(frame)
    _check_rows(table, execution_date)
    _check_no_gaps(table, pd.Timedelta(step))
    ids = table["series_id"].to_numpy()
    starts = np.flatnonzero(np.r_[True, ids[1:] != ids[:-1]])
    ends = np.r_[starts[1:], len(table)]
    y = table["y"].to_numpy(dtype=float)
    first_days = table["ds"].iloc[starts].dt.date.to_numpy()
    return [
        SeriesData(series_id=str(ids[a]), y=y[a:b].copy(), start=first_day)
        for a, b, first_day in zip(starts, ends, first_days, strict=True)
    ]


def last_day(series: SeriesData) -> dt.date:
    """Date of the series' last observation (daily series)."""
    if series.start is None:
        raise SeriesTableError(f"series {series.series_id} has no dates")
    return series.start + dt.timedelta(days=len(series.y) - 1)
