"""The local stand-in for the dashboard: one HTML page per execution date with embedded charts.

`<lake>/reports/<execution-date>.html` shows the main series (largest total volume) with its
history, forecast and prediction interval, smaller charts of the next largest series, and the
backtest scores the gate judged. It reads the run folder's files (the step contract's paths), so
it shows exactly what the run published.
"""

from __future__ import annotations

import base64
import datetime as dt
import html
import io
from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")  # files only, no display

import matplotlib.pyplot as plt
import pandas as pd

from pipeline_code import run_folder, storage

HISTORY_DAYS_SHOWN = 180
SMALL_SERIES_SHOWN = 6


def _raw_history(run_dir: Path) -> pd.DataFrame:
    """PreProc's series with capped outliers put back to their raw values: the report shows what
    happened, the models were fitted on the capped value."""
    history = _read_bucket_folder(run_dir.joinpath(*run_folder.SERIES))
    quality = run_dir.joinpath(*run_folder.DATA_QUALITY)
    outliers = storage.read_json(str(quality)).get("outliers", []) if quality.exists() else []
    for outlier in outliers:
        at = (history["series_id"] == outlier["series_id"]) & (
            pd.to_datetime(history["ds"]) == pd.Timestamp(outlier["ds"])
        )
        history.loc[at, "y"] = outlier["value"]
    return history


def _read_bucket_folder(folder: Path) -> pd.DataFrame:
    """Every bucket file of a folder of the run (series, forecasts), in bucket order."""
    files = sorted(folder.glob("bucket=*.parquet"))
    if not files:
        raise ValueError(f"{folder} holds no bucket files")
    return pd.concat([storage.read_table(str(path)) for path in files], ignore_index=True)


def write_report(lake: Path, run_dir: Path, execution_date: dt.date, execution_id: str) -> Path:
    history = _raw_history(run_dir)
    forecasts = _read_bucket_folder(run_dir.joinpath(*run_folder.FORECASTS))
    evaluation = _read_evaluation(run_dir)
    ranked = series_by_volume(history)
    if not ranked:
        raise ValueError(f"{run_dir.joinpath(*run_folder.SERIES)} holds no series to report")
    main_chart = _chart(history, forecasts, ranked[0], execution_date, size=(11, 4.5))
    others = [
        (series, _chart(history, forecasts, series, execution_date, size=(5.5, 3)))
        for series in ranked[1 : 1 + SMALL_SERIES_SHOWN]
    ]
    page = _page(execution_date, execution_id, ranked[0], main_chart, others, evaluation)
    target = lake / "reports" / f"{execution_date.isoformat()}.html"
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_text(page, encoding="utf-8")
    return target


def series_by_volume(history: pd.DataFrame) -> list[str]:
    """Series ids, largest total volume first (ties by name, so the order is stable)."""
    totals = history.groupby("series_id")["y"].sum().reset_index()
    totals = totals.sort_values(["y", "series_id"], ascending=[False, True])
    return totals["series_id"].astype(str).tolist()


def _read_evaluation(run_dir: Path) -> dict[str, Any]:
    path = run_dir.joinpath(*run_folder.EVALUATION)
    return storage.read_json(str(path)) if path.exists() else {}


def _chart(
    history: pd.DataFrame,
    forecasts: pd.DataFrame,
    series: str,
    execution_date: dt.date,
    size: tuple[float, float],
) -> str:
    """A PNG, base64-encoded: recent history, forecast line and the interval band."""
    past = history[history["series_id"] == series].sort_values("ds")
    past = past[
        pd.to_datetime(past["ds"])
        > pd.Timestamp(execution_date) - pd.Timedelta(days=HISTORY_DAYS_SHOWN)
    ]
    future = forecasts[forecasts["series_id"] == series].sort_values("target_date")
    figure, axes = plt.subplots(figsize=size)
    axes.plot(pd.to_datetime(past["ds"]), past["y"], color="#555555", linewidth=1, label="actual")
    if not future.empty:
        days = pd.to_datetime(future["target_date"])
        axes.fill_between(
            days,
            future["yhat_lower"],
            future["yhat_upper"],
            color="#1f77b4",
            alpha=0.2,
            label="interval",
        )
        axes.plot(days, future["yhat"], color="#1f77b4", linewidth=1.8, label="forecast")
    axes.axvline(pd.Timestamp(execution_date), color="#999999", linestyle=":", linewidth=1)
    model = future["model"].iloc[0] if not future.empty else "no forecast"
    axes.set_title(f"{series} ({model})", fontsize=10)
    axes.set_ylabel("applications per day")
    axes.legend(loc="upper left", fontsize=8)
    axes.grid(alpha=0.3)
    figure.autofmt_xdate()
    figure.tight_layout()
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", dpi=90)
    plt.close(figure)
    return base64.b64encode(buffer.getvalue()).decode("ascii")


def _metrics_table(evaluation: dict[str, Any]) -> str:
    overall = evaluation.get("overall", {})
    gate = evaluation.get("gate", {})
    rows = [(key, overall[key]) for key in sorted(overall)]
    rows += [
        (f"gate.{key}", gate[key])
        for key in ("passed", "max_mase", "max_relative_mase")
        if key in gate
    ]
    cells = "".join(
        f"<tr><th>{html.escape(str(key))}</th><td>{html.escape(_format(value))}</td></tr>"
        for key, value in rows
    )
    return f"<table>{cells}</table>" if rows else "<p>No evaluation.json in the run folder.</p>"


def _format(value: Any) -> str:
    return f"{value:.3f}" if isinstance(value, float) else str(value)


def _image(encoded: str, alt: str) -> str:
    return f'<img alt="{html.escape(alt)}" src="data:image/png;base64,{encoded}">'


def _page(
    execution_date: dt.date,
    execution_id: str,
    main_series: str,
    main_chart: str,
    others: list[tuple[str, str]],
    evaluation: dict[str, Any],
) -> str:
    small = "".join(_image(chart, series) for series, chart in others)
    title = f"Forecast for {execution_date.isoformat()}"
    return f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>{html.escape(title)}</title>
<style>
body {{ font-family: sans-serif; margin: 2em; color: #222; }}
table {{ border-collapse: collapse; }} th, td {{ padding: 2px 10px; text-align: left; }}
th {{ font-weight: normal; color: #555; }} .grid img {{ margin: 4px; }}
</style></head><body>
<h1>{html.escape(title)}</h1>
<p>Execution {html.escape(execution_id)}.
Main series (largest volume): {html.escape(main_series)}.</p>
{_image(main_chart, main_series)}
<h2>Backtest scores</h2>
{_metrics_table(evaluation)}
<h2>Next largest series</h2>
<div class="grid">{small}</div>
</body></html>
"""
