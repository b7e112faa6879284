"""The run folder's layout: every file one step leaves for another, named once.

A run's files live under `runs/<execution-id>/` in the data bucket (`<lake>/runs/<execution-id>/`
locally), one folder per step. Each constant is a path relative to that folder, as
`RunContext.path(*EXTRACT_DATA)` takes it; the steps, the pipeline definition's gate, the local
runner's summary and report all read these, so a file moves in one place.
"""

from __future__ import annotations

RUNS = "runs"
"""The bucket (or lake) prefix holding one folder per execution."""

EXTRACT_DATA = ("extract", "data.parquet")
"""Daily counts per series and day, as Extract read them from the source."""
EXTRACT_QUALITY = ("extract", "data_quality.json")
"""What the source contract found (folded into the run's data-quality summary by PreProc)."""

SERIES = ("preproc", "series.parquet")
"""The clean daily series: one row per series and day."""
DATA_QUALITY = ("preproc", "data_quality.json")
"""The run's data-quality summary: every check's result and one line per warning."""

MODELS = ("train", "models.pkl")
"""The settings and every series' fitted chosen model."""
BACKTEST = ("train", "backtest.parquet")
"""One row per series, role, fold and horizon step of the rolling-origin backtest."""

EVALUATION = ("evaluation", "evaluation.json")
"""The overall scores and the gate's verdict: the pipeline's condition reads it by URI."""
METRICS = ("evaluation", "metrics.parquet")
"""Per-series and overall backtest scores: the rows of `forecast_metrics`."""

FORECASTS = ("predict", "forecasts.parquet")
"""The forecasts over the horizon with intervals: the rows of `forecasts`."""


def relative(parts: tuple[str, str]) -> str:
    """`extract/data.parquet`: a file's path inside the run folder, for messages and URIs."""
    return "/".join(parts)
