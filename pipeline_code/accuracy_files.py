"""Where realized accuracy reads and writes, one bucket of series at a time.

Predict scores, on every instance and for each bucket of its share (`score_bucket`), the earlier
publications within its horizon on the days this run is the first to observe. A publication is
read from the run folder of the execution that published it (`runs/<execution-id>/predict/
forecasts/bucket=NNN.parquet`, the very rows PostProc published, already split by bucket; and
its `evaluation/metrics.parquet` for the backtest MASE it was published with), so memory holds
one bucket. The trailing window's earlier scores come from the same run folders
(`predict/accuracy/`). Run folders live 90 days (the data bucket's lifecycle rule), longer than
any horizon plus window the configuration allows; a publication whose files are gone or
unreadable is named in the notes and skipped, never failing the day's forecast.

PostProc publishes the scored rows as `forecast_accuracy` and checks the promise over the
window's sums (`summarize`).
"""

from __future__ import annotations

import contextlib
import datetime as dt
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from pipeline_code import accuracy, publication, run_folder, storage, tables
from pipeline_code.errors import one_line
from pipeline_code.run_context import RunContext


@dataclass(frozen=True)
class Publication:
    date: dt.date
    execution_id: str

    def run_path(self, data_root: str, *parts: str) -> str:
        return storage.join(data_root, run_folder.RUNS, self.execution_id, *parts)


@dataclass
class ScoringPlan:
    """What one run scores and over which window, decided once per instance."""

    days: list[dt.date]
    window_days: int
    scored: list[Publication]  # publications within the horizon of the days to score
    window: list[Publication]  # earlier runs whose scores fall in the trailing window
    notes: list[str] = field(default_factory=list)


def plan(ctx: RunContext, horizon: int, window_days: int) -> ScoringPlan:
    published = publication.published_dates(ctx.data_root)
    days = accuracy.days_to_score(ctx.execution_date, published)
    first_window_day = ctx.execution_date - dt.timedelta(days=window_days - 1)
    # Older publications' run folders are gone (the bucket's lifecycle rule).
    reach_days = min(horizon, run_folder.RETENTION_DAYS - 1)
    reach = days[0] - dt.timedelta(days=reach_days) if days else ctx.execution_date
    wanted = [day for day in published if min(reach, first_window_day) <= day < ctx.execution_date]
    found, notes = [], []
    for day in wanted:
        execution_id = publication.published_execution(ctx.data_root, day)
        if execution_id is None:
            notes.append(f"the publication of {day} names no execution; not scored")
            continue
        found.append(Publication(day, execution_id))
    return ScoringPlan(
        days=days,
        window_days=window_days,
        scored=[p for p in found if reach <= p.date],
        window=[p for p in found if first_window_day <= p.date],
        notes=notes,
    )


def observed_actuals(
    series: pd.DataFrame, days: list[dt.date], unknown_days: set[dt.date], raw: pd.DataFrame
) -> pd.DataFrame:
    """The bucket's actuals on the days to score: the raw value where PreProc capped one, and no
    row for a day the source did not deliver (an imputed value is not an actual)."""
    frame = series.assign(ds=pd.to_datetime(series["ds"]).dt.date)
    keep = frame["ds"].isin(set(days) - unknown_days)
    frame = frame.loc[keep, ["series_id", "ds", "y"]]
    if not raw.empty:
        restored = frame.merge(raw, on=["series_id", "ds"], how="left")
        frame = frame.assign(y=restored["value"].fillna(restored["y"]).to_numpy())
    return frame.reset_index(drop=True)


def score_bucket(
    ctx: RunContext,
    bucket: int,
    series: pd.DataFrame,
    scoring: ScoringPlan,
    actuals: pd.DataFrame,
    season_length: int,
) -> None:
    """Score the bucket's series in every planned publication; write the rows, the window's
    sums and the notes of this bucket."""
    notes = list(scoring.notes)
    rows = []
    scales = accuracy.scales_at(series, [p.date for p in scoring.scored], season_length)
    for past in scoring.scored:
        forecasts, promised = _read_publication(ctx, past, bucket, notes)
        if forecasts is not None:
            rows.append(accuracy.score_publication(past.date, forecasts, actuals, scales, promised))
    rows = [r for r in rows if len(r)]  # a publication may score nothing on these days
    scored = pd.concat(rows, ignore_index=True) if rows else no_rows()
    storage.write_table(_typed(scored), ctx.path(*run_folder.accuracy_bucket(bucket)))
    window = _window_rows(ctx, bucket, scoring, scored, notes)
    sums_uri = ctx.path(*run_folder.accuracy_window_bucket(bucket))
    storage.write_table(accuracy.window_sums(window), sums_uri)
    storage.write_json(sorted(set(notes)), ctx.path(*run_folder.accuracy_notes_bucket(bucket)))


def _read_publication(
    ctx: RunContext, past: Publication, bucket: int, notes: list[str]
) -> tuple[pd.DataFrame | None, pd.Series]:
    """The publication's forecasts of the bucket and its backtest MASE by series; None (with a
    note naming the file) when they cannot be read. A bucket without a file had no series."""
    forecasts_uri = past.run_path(ctx.data_root, *run_folder.forecasts_bucket(bucket))
    metrics_uri = past.run_path(ctx.data_root, *run_folder.METRICS)
    try:
        if not storage.exists(forecasts_uri):
            if not storage.exists(past.run_path(ctx.data_root, *run_folder.FORECASTS)):
                notes.append(
                    f"the forecasts published for {past.date} (execution {past.execution_id})"
                    f" are no longer in its run folder; not scored"
                )
            return None, pd.Series(dtype=float)
        forecasts = storage.read_table(forecasts_uri)
        metrics = storage.read_table(metrics_uri) if storage.exists(metrics_uri) else None
    except (OSError, ValueError) as err:
        notes.append(
            f"{forecasts_uri}: unreadable, the publication of {past.date} not scored"
            f" ({one_line(err)})"
        )
        return None, pd.Series(dtype=float)
    promised = (
        metrics.set_index("series_id")["mase"].astype(float)
        if metrics is not None and {"series_id", "mase"} <= set(metrics.columns)
        else pd.Series(dtype=float)
    )
    return forecasts, promised


def _window_rows(
    ctx: RunContext, bucket: int, scoring: ScoringPlan, scored: pd.DataFrame, notes: list[str]
) -> pd.DataFrame:
    """The bucket's scores in the trailing window: earlier runs' and this run's, each
    (publication, series, day) once, as its latest scoring left it."""
    frames = []
    for past in scoring.window:
        uri = past.run_path(ctx.data_root, *run_folder.accuracy_bucket(bucket))
        try:
            if storage.exists(uri):
                frames.append(storage.read_table(uri).assign(_scored_on=past.date))
        except (OSError, ValueError) as err:
            notes.append(f"{uri}: unreadable, left out of the window ({one_line(err)})")
    frames.append(scored.assign(_scored_on=ctx.execution_date))
    rows = pd.concat([f for f in frames if len(f)] or frames[-1:], ignore_index=True)
    return accuracy.trailing(
        accuracy.latest_scores(rows, "_scored_on"), ctx.execution_date, scoring.window_days
    )


def no_rows() -> pd.DataFrame:
    """A bucket's scored rows when there is nothing to score, with the columns' types."""
    return _typed(pd.DataFrame(columns=list(accuracy.ROW_COLUMNS)))


def _typed(rows: pd.DataFrame) -> pd.DataFrame:
    """Stable column types, also for no rows (an empty frame has no dtypes of its own)."""
    types = {
        "forecast_date": "object", "series_id": "object", "target_date": "object",
        "horizon_step": "int64", "actual": "float64", "yhat": "float64",
        "yhat_lower": "float64", "yhat_upper": "float64", "abs_error": "float64",
        "scaled_error": "float64", "inside": "bool", "model": "object",
        "backtest_mase": "float64",
    }  # fmt: skip
    return rows.astype(types)


def score_share(
    ctx: RunContext, buckets: list[int], horizon: int, window_days: int, season_length: int
) -> ScoringPlan:
    """Score every bucket of an instance's share (each bucket's files are written, with no rows
    where there is nothing to score, so PostProc finds a complete set)."""
    scoring = plan(ctx, horizon, window_days)
    quality = _data_quality(ctx)
    unknown = {dt.date.fromisoformat(d) for d in quality.get("source", {}).get("missing_days", [])}
    raw = pd.DataFrame(quality.get("outliers", []), columns=["series_id", "ds", "value"])
    raw = raw.assign(ds=pd.to_datetime(raw["ds"]).dt.date)
    for bucket in buckets:
        series = storage.read_table(ctx.path(*run_folder.series_bucket(bucket)))
        actuals = observed_actuals(series, scoring.days, unknown, raw)
        score_bucket(ctx, bucket, series, scoring, actuals, season_length)
        storage.write_table(
            daily_totals(series, actuals), ctx.path(*run_folder.daily_totals_bucket(bucket))
        )
    return scoring


def daily_totals(series: pd.DataFrame, actuals: pd.DataFrame) -> pd.DataFrame:
    """The bucket's series summed per day: `y` over the history, `actual` on the days scored."""
    history = series.assign(ds=pd.to_datetime(series["ds"]).dt.date).groupby("ds")["y"].sum()
    observed = actuals.groupby("ds")["y"].sum() if len(actuals) else pd.Series(dtype=float)
    frame = history.rename("y").to_frame().join(observed.rename("actual"), how="left")
    return frame.reset_index().astype({"y": float, "actual": float})


def _data_quality(ctx: RunContext) -> dict:
    uri = ctx.path(*run_folder.DATA_QUALITY)
    return storage.read_json(uri) if storage.exists(uri) else {}


def read_scored(ctx: RunContext, buckets: list[int]) -> pd.DataFrame:
    """This run's scored rows of every bucket (the rows of `forecast_accuracy`)."""
    frames = [storage.read_table(ctx.path(*run_folder.accuracy_bucket(b))) for b in buckets]
    frames = [frame for frame in frames if len(frame)]
    if not frames:
        return no_rows()
    rows = pd.concat(frames, ignore_index=True)
    return rows.sort_values(["forecast_date", "series_id", "target_date"], kind="stable")


def score_total(
    ctx: RunContext, buckets: list[int], horizon: int, window_days: int, season_length: int
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """The total across series scored like one series: its published forecasts (each earlier
    publication's `__total__` rows) against the sum of every bucket's actuals, scaled by the
    summed history's MASE scale at the publication. Returns this run's rows and the window's."""
    scoring = plan(ctx, horizon, window_days)
    parts = [storage.read_table(ctx.path(*run_folder.daily_totals_bucket(b))) for b in buckets]
    parts = [part for part in parts if len(part)]
    if not parts:
        return no_rows(), no_rows()
    summed = pd.concat(parts).groupby("ds").agg(y=("y", "sum"), actual=("actual", "sum"))
    summed["actual"] = summed["actual"].where(pd.concat(parts).groupby("ds")["actual"].count() > 0)
    history = summed.reset_index().assign(series_id=tables.TOTAL_SERIES_ID)
    actuals = history.dropna(subset=["actual"])[["series_id", "ds", "actual"]]
    actuals = actuals.rename(columns={"actual": "y"})
    scales = accuracy.scales_at(history, [p.date for p in scoring.scored], season_length)
    rows, notes = [], []
    for past in scoring.scored:
        forecasts, promised = _published_total(ctx, past, notes)
        if forecasts is not None:
            rows.append(accuracy.score_publication(past.date, forecasts, actuals, scales, promised))
    rows = [r for r in rows if len(r)]
    scored = _typed(pd.concat(rows, ignore_index=True)) if rows else no_rows()
    storage.write_table(scored, ctx.path(*run_folder.TOTAL_ACCURACY))
    earlier = []
    for past in scoring.window:
        uri = past.run_path(ctx.data_root, *run_folder.TOTAL_ACCURACY)
        with contextlib.suppress(OSError, ValueError):
            if storage.exists(uri):
                earlier.append(storage.read_table(uri).assign(_scored_on=past.date))
    window = pd.concat([*earlier, scored.assign(_scored_on=ctx.execution_date)], ignore_index=True)
    window = accuracy.latest_scores(window, "_scored_on")
    return scored, accuracy.trailing(window, ctx.execution_date, window_days)


def _published_total(
    ctx: RunContext, past: Publication, notes: list[str]
) -> tuple[pd.DataFrame | None, pd.Series]:
    """The total's rows of a publication and the backtest MASE it was published with."""
    forecasts_at = publication.published_location(ctx.data_root, tables.FORECASTS, past.date)
    metrics_at = publication.published_location(ctx.data_root, tables.FORECAST_METRICS, past.date)
    if forecasts_at is None:
        return None, pd.Series(dtype=float)
    try:
        forecasts = storage.read_folder(forecasts_at)
        metrics = storage.read_folder(metrics_at) if metrics_at else pd.DataFrame()
    except (OSError, ValueError) as err:
        notes.append(f"{forecasts_at}: unreadable, the total of {past.date} not scored"
                     f" ({one_line(err)})")  # fmt: skip
        return None, pd.Series(dtype=float)
    total = forecasts[forecasts["series_id"] == tables.TOTAL_SERIES_ID]
    if total.empty:
        return None, pd.Series(dtype=float)
    promised = (
        metrics.loc[metrics["series_id"] == tables.TOTAL_SERIES_ID].set_index("series_id")["mase"]
        if {"series_id", "mase"} <= set(metrics.columns)
        else pd.Series(dtype=float)
    )
    return total, promised.astype(float)


def summarize(
    ctx: RunContext,
    buckets: list[int],
    level: float,
    settings: accuracy.PromiseSettings,
    total_window: pd.DataFrame | None = None,
) -> dict:
    """The promise over the window, overall (all series' points pooled), per series and for the
    total, with its warnings; written to the run folder for the summary, the report and Slack."""
    sums = [storage.read_table(ctx.path(*run_folder.accuracy_window_bucket(b))) for b in buckets]
    sums = [s for s in sums if len(s)]
    check = accuracy.promise_check(
        pd.concat(sums, ignore_index=True)
        if sums
        else pd.DataFrame(columns=["series_id", *accuracy.SUM_COLUMNS]),
        level,
    )
    total = (
        accuracy.promise_check(accuracy.window_sums(total_window), level)
        if total_window is not None and len(total_window)
        else None
    )
    notes: set[str] = set()
    for bucket in buckets:
        notes.update(storage.read_json(ctx.path(*run_folder.accuracy_notes_bucket(bucket))))
    overall = check[check["series_id"].isna()]
    summary = {
        "execution_date": ctx.execution_date.isoformat(),
        "window_days": settings.window_days,
        "max_mase_ratio": settings.max_mase_ratio,
        "coverage_band": settings.coverage_band,
        "overall": _record(overall.iloc[0]) if len(overall) and overall.iloc[0]["points"] else None,
        "series": [
            _record(row)
            for _, row in check[check["series_id"].notna()]
            .sort_values("ratio", ascending=False, na_position="last")
            .iterrows()
        ],
        "total": _record(total.iloc[0]) if total is not None else None,
        "warnings": accuracy.promise_warnings(
            check if total is None else pd.concat([check, total.iloc[:1]], ignore_index=True),
            settings,
        ),
        "skipped": sorted(notes),
    }
    storage.write_json(summary, ctx.path(*run_folder.ACCURACY_SUMMARY))
    return summary


def _record(row: pd.Series) -> dict:
    """A row of the check as JSON values: numbers as numbers, NaN as null."""
    record: dict = {}
    for key, value in row.items():
        if key == "series_id":
            record[key] = value
        elif key == "points":
            record[key] = int(value)
        else:
            number = float(value)
            record[key] = number if np.isfinite(number) else None
    return record
