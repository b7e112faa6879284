"""What the local report shows, read from the lake and the run folder: the published rows of the
date (the total included), the history, the calendar the forecast used, the backtest scores, the
data-quality summary and the previous publication.

Everything per series is computed with group-bys over whole tables, so a report over thousands
of series is assembled in seconds.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import holidays
import numpy as np
import pandas as pd

from local_run.report_svg import EventSpan
from pipeline_code import run_folder, shards, storage, tables
from pipeline_code.accuracy import latest_scores
from pipeline_code.forecasting.artifacts import load_models
from pipeline_code.forecasting.event_calendar import (
    PUBLIC_HOLIDAY,
    WEEKEND_HOLIDAY,
    EventCalendar,
)
from pipeline_code.forecasting.selection import series_effects
from pipeline_code.steps.preproc import read_counts

TOTAL = tables.TOTAL_SERIES_ID
BREAK_NAMES = {"year_end": "Year-end break", "golden_week": "Golden Week", "obon": "Obon"}
SHORT_HISTORY_DAYS = 365 + 28
"""Less history than this: the backtest has no fold at the same season a year back."""
SET_ASIDE_REASONS = {
    "stopped": "stopped (no applications in the recent weeks)",
    "too_short": "too short a history to model",
    "no_known_value": "no known value",
}


@dataclass
class ReportData:
    execution_date: dt.date
    execution_id: str
    made_at: dt.datetime
    history: pd.DataFrame  # series_id, ds (datetime64), y: raw values, the total included
    forecasts: pd.DataFrame  # the published rows, target_date as datetime64
    metrics: pd.DataFrame  # the published forecast_metrics rows
    evaluation: dict[str, Any]
    quality: dict[str, Any]
    calendar: EventCalendar | None
    set_aside_actuals: pd.DataFrame  # series_id, ds, y of the series set aside
    previous: tuple[dt.date, pd.DataFrame] | None = None
    notes: list[str] = field(default_factory=list)
    accuracy: dict[str, Any] = field(default_factory=dict)  # the run's promise check
    scored: pd.DataFrame | None = None  # forecast_accuracy rows of the recent weeks
    effects: pd.DataFrame | None = None  # each series' event effects and their source

    @property
    def horizon_days(self) -> list[pd.Timestamp]:
        return [pd.Timestamp(day) for day in sorted(pd.unique(self.forecasts["target_date"]))]


def _read_folder(folder: Path) -> pd.DataFrame:
    files = sorted(folder.glob("*.parquet"))
    if not files:
        raise ValueError(f"{folder} holds no Parquet files")
    return pd.concat([storage.read_table(str(path)) for path in files], ignore_index=True)


def published(lake: Path, table: tables.Table, date: dt.date) -> pd.DataFrame:
    """A date's published rows, read through its partition (locally: the publication pointer)."""
    return _read_folder(lake / table.name / f"{table.partition_key}={date.isoformat()}")


def previous_publication(lake: Path, date: dt.date) -> tuple[dt.date, pd.DataFrame] | None:
    """The latest published forecasts of a date before `date`, or None."""
    table = tables.FORECASTS
    earlier = []
    for partition in (lake / table.name).glob(f"{table.partition_key}=*"):
        try:
            day = dt.date.fromisoformat(partition.name.split("=", 1)[1])
        except ValueError:
            continue
        if day < date and any(partition.glob("*.parquet")):
            earlier.append(day)
    if not earlier:
        return None
    day = max(earlier)
    frame = published(lake, table, day)
    return day, frame.assign(target_date=pd.to_datetime(frame["target_date"]))


def raw_history(run_dir: Path, quality: dict[str, Any]) -> pd.DataFrame:
    """PreProc's series with capped outliers put back to their raw values (the report shows
    what happened; the models were fitted on the capped value), and their total per day."""
    files = sorted(run_dir.joinpath(*run_folder.SERIES).glob("bucket=*.parquet"))
    if not files:
        raise ValueError(f"{run_dir.joinpath(*run_folder.SERIES)} holds no bucket files")
    history = pd.concat([storage.read_table(str(p)) for p in files], ignore_index=True)
    history["ds"] = pd.to_datetime(history["ds"])
    for outlier in quality.get("outliers", []):
        at = (history["series_id"] == outlier["series_id"]) & (
            history["ds"] == pd.Timestamp(outlier["ds"])
        )
        history.loc[at, "y"] = outlier["value"]
    total = history.groupby("ds", sort=True)["y"].sum().reset_index().assign(series_id=TOTAL)
    return pd.concat([history, total[history.columns]], ignore_index=True)


def forecast_calendar(run_dir: Path) -> EventCalendar | None:
    """The calendar the forecast used: the one stored with Train's models."""
    files = sorted(run_dir.joinpath(*run_folder.MODELS).glob("bucket=*.pkl"))
    if not files:
        return None
    settings = load_models(files[0].read_bytes()).settings
    return settings.calendar if settings.frequency == "D" else None


def event_effects(run_dir: Path) -> pd.DataFrame:
    """Every series' event effects as its forecast uses them, with their source: `series_id,
    event, effect, pooled, own, source, reference` (`selection.series_effects`)."""
    files = sorted(run_dir.joinpath(*run_folder.MODELS).glob("bucket=*.pkl"))
    rows = []
    for path in files:
        trained = load_models(path.read_bytes())
        calendar = trained.settings.calendar
        if calendar is None:
            continue
        for series_id, model in sorted(trained.models.items()):
            for effect in series_effects(model, calendar):
                reference = (
                    calendar.rest_day_name if effect.reference == "rest_day" else "own weekday"
                )
                rows.append(
                    {
                        "series_id": series_id,
                        "event": effect.event,
                        "effect": effect.effect,
                        "pooled": effect.pooled,
                        "own": effect.own,
                        "source": effect.source,
                        "reference": reference,
                    }
                )
    columns = ["series_id", "event", "effect", "pooled", "own", "source", "reference"]
    return pd.DataFrame(rows, columns=columns)


def _json(path: Path) -> dict[str, Any]:
    return storage.read_json(str(path)) if path.exists() else {}


def _set_aside_actuals(run_dir: Path, quality: dict[str, Any]) -> pd.DataFrame:
    """The counts Extract read for the series PreProc set aside (they have no series file):
    only their buckets' counts are read."""
    names = {sid for ids in quality.get("set_aside", {}).values() for sid in ids}
    manifest = run_dir.joinpath(*run_folder.COUNTS_MANIFEST)
    if not names or not manifest.exists():
        return pd.DataFrame(columns=["series_id", "ds", "y"])
    folder = storage.read_json(str(manifest))["folder"]
    buckets = sorted({shards.bucket_of(name) for name in names})
    counts = pd.concat([read_counts(folder, bucket) for bucket in buckets], ignore_index=True)
    counts = counts[counts["series_id"].isin(names)].copy()
    counts["ds"] = pd.to_datetime(counts["ds"])
    return counts


def read_report_data(
    lake: Path, run_dir: Path, execution_date: dt.date, execution_id: str
) -> ReportData:
    forecasts = published(lake, tables.FORECASTS, execution_date)
    holders = set(forecasts["execution_id"])
    if holders != {execution_id}:
        raise ValueError(
            f"the published forecasts of {execution_date} are from execution "
            f"{', '.join(sorted(holders))}, not {execution_id}"
        )
    forecasts["target_date"] = pd.to_datetime(forecasts["target_date"])
    partition = lake / tables.FORECASTS.name / f"execution_date={execution_date.isoformat()}"
    made_at = dt.datetime.fromtimestamp(
        max(p.stat().st_mtime for p in partition.glob("*.parquet")), dt.UTC
    )
    quality = _json(run_dir.joinpath(*run_folder.DATA_QUALITY))
    return ReportData(
        execution_date=execution_date,
        execution_id=execution_id,
        made_at=made_at,
        history=raw_history(run_dir, quality),
        forecasts=forecasts,
        metrics=published(lake, tables.FORECAST_METRICS, execution_date),
        evaluation=_json(run_dir.joinpath(*run_folder.EVALUATION)),
        quality=quality,
        calendar=forecast_calendar(run_dir),
        set_aside_actuals=_set_aside_actuals(run_dir, quality),
        previous=previous_publication(lake, execution_date),
        accuracy=_json(run_dir.joinpath(*run_folder.ACCURACY_SUMMARY)),
        scored=scored_history(lake, execution_date, REALIZED_WEEKS * 7),
        effects=event_effects(run_dir),
    )


REALIZED_WEEKS = 8


def scored_history(lake: Path, date: dt.date, days: int) -> pd.DataFrame:
    """The published `forecast_accuracy` rows of the scoring runs in the `days` up to `date`,
    each (publication, series, target day) once, as its latest scoring left it."""
    table = tables.FORECAST_ACCURACY
    frames = []
    for offset in range(days):
        day = date - dt.timedelta(days=offset)
        folder = lake / table.name / f"{table.partition_key}={day.isoformat()}"
        if folder.exists() and any(folder.glob("*.parquet")):
            frames.append(_read_folder(folder).assign(scored_on=day))
    frames = [frame for frame in frames if len(frame)]
    if not frames:
        return pd.DataFrame(columns=["series_id", "target_date", "scaled_error", "backtest_mase"])
    rows = latest_scores(pd.concat(frames, ignore_index=True), "scored_on")
    return rows.assign(target_date=pd.to_datetime(rows["target_date"]))


def realized_by_week(data: ReportData) -> pd.DataFrame:
    """Per series (and the total) and target week ending at the execution date: realized MASE;
    and the promised (backtest) MASE over the same rows. Weeks are numbered back, 0 the latest."""
    rows = data.scored
    if rows is None or rows.empty:
        return pd.DataFrame()
    end = pd.Timestamp(data.execution_date)
    week = ((end - rows["target_date"]).dt.days // 7).rename("week")
    grouped = rows.assign(week=week).groupby(["series_id", "week"])
    table = grouped["scaled_error"].mean().unstack("week")
    table.columns = [f"week_{int(w)}" for w in table.columns]
    promised = rows.groupby("series_id")["backtest_mase"].mean().rename("promised")
    return table.join(promised)


# --- events -----------------------------------------------------------------------------------


def _holiday_names(calendar: EventCalendar, first: dt.date, last: dt.date) -> dict[dt.date, str]:
    if not calendar.country:
        return {}
    try:
        found = holidays.country_holidays(
            calendar.country, years=range(first.year, last.year + 1), language="en_US"
        )
    except (NotImplementedError, ValueError):
        found = holidays.country_holidays(calendar.country, years=range(first.year, last.year + 1))
    return {day: str(name) for day, name in found.items()}


def _day_names(
    calendar: EventCalendar, code: int, day: dt.date, holiday_names: dict[dt.date, str]
) -> tuple[str, list[str]]:
    """A day's label (its break, else its company day, else its holiday) and all its events."""
    names = [n for bit, n in enumerate(calendar.event_names) if code >> bit & 1]
    readable = []
    for name in names:
        if name in (PUBLIC_HOLIDAY, WEEKEND_HOLIDAY):
            readable.append(holiday_names.get(day, "public holiday"))
        else:
            readable.append(BREAK_NAMES.get(name, name.replace("_", " ")))
    breaks = [BREAK_NAMES[n] for n in names if n in BREAK_NAMES]
    company = [n.replace("_", " ") for n in names if n not in BREAK_NAMES and "holiday" not in n]
    label = (breaks or company or readable)[0]
    return label, readable


def event_spans(calendar: EventCalendar | None, first: dt.date, last: dt.date) -> list[EventSpan]:
    """The calendar's event days from `first` to `last`, consecutive days of one label merged."""
    if calendar is None or calendar.empty or last < first:
        return []
    length = (last - first).days + 1
    codes = calendar.codes(first, length)
    holiday_names = _holiday_names(calendar, first, last)
    spans: list[EventSpan] = []
    current: tuple[dt.date, dt.date, str, list[str]] | None = None
    for offset in np.flatnonzero(codes):
        day = first + dt.timedelta(days=int(offset))
        label, names = _day_names(calendar, int(codes[offset]), day, holiday_names)
        if current and current[2] == label and (day - current[1]).days == 1:
            current = (current[0], day, label, current[3] + names)
            continue
        if current:
            spans.append(_span(*current))
        current = (day, day, label, names)
    if current:
        spans.append(_span(*current))
    return spans


def _span(first: dt.date, last: dt.date, label: str, names: list[str]) -> EventSpan:
    others = [n for n in dict.fromkeys(names) if n != label]
    return EventSpan(first, last, label, ", ".join(others))


# --- the table --------------------------------------------------------------------------------


def _window_sums(forecasts: pd.DataFrame, days: list[pd.Timestamp]) -> pd.DataFrame:
    rows = forecasts[forecasts["target_date"].isin(days)]
    return rows.groupby("series_id")[["yhat", "yhat_lower", "yhat_upper"]].sum()


def series_table(data: ReportData) -> pd.DataFrame:
    """One row per series (the total's id included): last week's actuals, the next 7 and 28
    days' forecast and its range, the model, the backtest MASE beside seasonal naive's, the
    recent volume (which series are the largest) and the flags."""
    days = data.horizon_days
    week, month = days[:7], days[:28]
    end = pd.Timestamp(data.execution_date)
    parts = [data.history, data.set_aside_actuals]
    history = pd.concat([part for part in parts if len(part)], ignore_index=True)
    recent = history[history["ds"] > end - pd.Timedelta(days=7)]
    last_month = history[history["ds"] > end - pd.Timedelta(days=28)]
    table = pd.DataFrame(index=pd.Index(sorted(pd.unique(history["series_id"])), name="series_id"))
    table["last_week"] = recent.groupby("series_id")["y"].sum()
    table["volume"] = last_month.groupby("series_id")["y"].sum()
    for name, window in (("next7", week), ("next28", month)):
        sums = _window_sums(data.forecasts, window)
        table[f"{name}"] = sums["yhat"]
        table[f"{name}_lower"] = sums["yhat_lower"]
        table[f"{name}_upper"] = sums["yhat_upper"]
    table["model"] = data.forecasts.groupby("series_id")["model"].first()
    scores = data.metrics.set_index("series_id")
    table["mase"] = scores["mase"]
    table["snaive_mase"] = scores["snaive_mase"]
    table["flags"] = flags(data, table.index)
    table["week_days"], table["month_days"] = len(week), len(month)
    return table.reset_index()


def flags(data: ReportData, series_ids: pd.Index) -> pd.Series:
    """Per series the words a reader should notice: set aside, capped outlier, short history,
    worst of the largest series the gate checks."""
    found: dict[str, list[str]] = {sid: [] for sid in series_ids}
    for reason, ids in data.quality.get("set_aside", {}).items():
        for sid in ids:
            if sid in found:
                found[sid].append(f"set aside: {SET_ASIDE_REASONS.get(reason, reason)}")
    for outlier in data.quality.get("outliers", []):
        if outlier["series_id"] in found:
            found[outlier["series_id"]].append(
                f"capped outlier on {outlier['ds']} ({outlier['value']:,.0f} -> "
                f"{outlier['capped_to']:,.0f})"
            )
    modelled = data.history[data.history["series_id"] != TOTAL]
    starts = modelled.groupby("series_id")["ds"].min()
    year_back = pd.Timestamp(data.execution_date) - pd.Timedelta(days=SHORT_HISTORY_DAYS)
    short = starts[starts > year_back]
    for sid in short.index:
        found[sid].append("short history (under a year: no same-season backtest)")
    scored = set(data.metrics["series_id"])
    for sid in set(starts.index) - scored:
        found[sid].append("no backtest (too short for one fold)")
    largest = data.evaluation.get("gate", {}).get("largest_series") or []
    if largest:
        worst = max(largest, key=lambda row: row["relative_mase"])
        if worst["series_id"] in found:
            found[worst["series_id"]].append("worst in gate")
    return pd.Series({sid: "; ".join(words) for sid, words in found.items()})


def changes(data: ReportData) -> tuple[pd.DataFrame, int] | None:
    """Per series, the next 28 days' total now and in the previous publication, over the days
    both forecast; largest change first. None without a previous publication or shared days."""
    if data.previous is None:
        return None
    _, before = data.previous
    forecast_before = {pd.Timestamp(day) for day in pd.unique(before["target_date"])}
    days = [day for day in data.horizon_days[:28] if day in forecast_before]
    if not days:
        return None
    now = data.forecasts[data.forecasts["target_date"].isin(days)]
    then = before[before["target_date"].isin(days)]
    frame = pd.DataFrame(
        {
            "now": now.groupby("series_id")["yhat"].sum(),
            "before": then.groupby("series_id")["yhat"].sum(),
        }
    )
    frame["change"] = frame["now"] - frame["before"]
    frame["order"] = frame["change"].abs().fillna(np.inf)
    frame = frame.sort_values(["order", "now"], ascending=[False, False]).drop(columns="order")
    return frame.reset_index(), len(days)
