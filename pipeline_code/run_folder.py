"""The run folder's layout: every file one step leaves for another, named once.

A run's files live under `runs/<execution-id>/` in the data bucket (`<lake>/runs/<execution-id>/`
locally), one folder per step. Each constant is a path relative to that folder, as
`RunContext.path(*EXTRACT_DATA)` takes it; the steps, the pipeline definition's gate, the local
runner's summary and report all read these, so a file moves in one place.

What is per series is stored one file per bucket of series (`shards.bucket_of`), so that an
instance of a multi-instance job reads and writes its share as a set of whole files, and the
files do not depend on how many instances wrote them: `series_bucket(7)` is
`preproc/series/bucket=007.parquet`.
"""

from __future__ import annotations

RUNS = "runs"
"""The bucket (or lake) prefix holding one folder per execution."""
RETENTION_DAYS = 90
"""How long the data bucket keeps run folders (its lifecycle rule); realized accuracy reads
earlier publications' run folders, so it reaches back at most this far."""

EXTRACT_COUNTS = ("extract", "counts")
"""Daily counts per series and day, as the query engine counted them: one folder per attempt
of Extract, each holding one `bucket=N/` folder per non-empty bucket of series (the layout
Athena's UNLOAD writes, `counts_bucket`)."""
COUNTS_MANIFEST = ("extract", "counts.json")
"""Which attempt folder holds the counts (`folder`), written once they are complete."""
EXTRACT_QUALITY = ("extract", "data_quality.json")
"""What the source contract found (folded into the run's data-quality summary)."""

SERIES = ("preproc", "series")
"""The clean daily series, one row per series and day: a folder of `series_bucket` files."""
SERIES_INDEX = ("preproc", "series_index")
"""Every series of the run and its bucket, one `series_index_bucket` file per bucket (empty
where a bucket has no series): what a complete set of bucket files holds."""
EVENT_STATISTICS = ("preproc", "event_statistics")
"""Each bucket's share of the calendar events' pooled effects (`forecasting.event_pool`), which
Train adds up: a folder of `event_statistics_bucket` files."""
PREPROC_QUALITY = ("preproc", "quality")
"""Each bucket's data-quality counters and findings: a folder of `preproc_quality_bucket` files,
merged into DATA_QUALITY by TrainEvaluation."""
DATA_QUALITY = ("preproc", "data_quality.json")
"""The run's data-quality summary: every check's result and one line per warning."""

MODELS = ("train", "models")
"""The settings and each series' fitted chosen model: a folder of `models_bucket` files."""
BACKTEST_SCORES = ("train", "backtest_scores")
"""Per series, the rolling-origin backtest's scores that do not depend on the interval
calibration: a folder of `backtest_scores_bucket` files (`forecasting.backtest_table`)."""
CALIBRATION_POINTS = ("train", "calibration_points")
"""Per backtest point of the chosen models, what the interval calibration and the coverage
need: a folder of `calibration_points_bucket` files."""
TOTAL_BACKTEST = ("train", "total_backtest")
"""Per fold cutoff and horizon step, the backtest's forecasts and actuals summed over a bucket's
series (`forecasting.total.backtest_parts`): a folder of `total_backtest_bucket` files."""
TOTAL_HISTORY = ("train", "total_history")
"""Per day, a bucket's series summed (`forecasting.total.history_parts`): the total's MASE
scale. A folder of `total_history_bucket` files."""

EVALUATION = ("evaluation", "evaluation.json")
"""The overall scores and the gate's verdict: the pipeline's condition reads it by URI."""
METRICS = ("evaluation", "metrics.parquet")
"""Per-series and overall backtest scores: the rows of `forecast_metrics`."""
CALIBRATION = ("evaluation", "calibration.json")
"""The interval calibration fitted on all series' backtests, which Predict applies."""
TOTAL_CALIBRATION = ("evaluation", "total_calibration.json")
"""The interval of the total across series, fitted on its own backtest, which PostProc applies
to the summed forecasts (`forecasting.total.TotalInterval`)."""

FORECASTS = ("predict", "forecasts")
"""The forecasts over the horizon with intervals, the rows of `forecasts` (plus `event_kind`, the
target day's kind of calendar event, which PostProc uses for the total's interval and does not
publish): a folder of `forecasts_bucket` files."""
ACCURACY = ("predict", "accuracy")
"""Earlier publications scored on the days this run is the first to observe (the rows of
`forecast_accuracy`): a folder of `accuracy_bucket` files."""
ACCURACY_WINDOW = ("predict", "accuracy_window")
"""Per series, the sums of the scored rows of the trailing window (`accuracy.window_sums`): a
folder of `accuracy_window_bucket` files."""
ACCURACY_NOTES = ("predict", "accuracy_notes")
"""Per bucket, the earlier publications that could not be scored and why (JSON lists)."""
DAILY_TOTALS = ("predict", "daily_totals")
"""Per day, the bucket's series summed: `y` (the clean history, for the total's MASE scale) and
`actual` (observed values on the days scored): a folder of `daily_totals_bucket` files, which add
up to the total across series."""
TOTAL_ACCURACY = ("postproc", "total_accuracy.parquet")
"""The total across series scored like a series (rows of `forecast_accuracy`)."""
ACCURACY_SUMMARY = ("postproc", "accuracy.json")
"""The backtest's promise checked over the window: overall and worst series' figures and the
warnings (read by the local summary, the report and the Slack notifier)."""


def _bucket_file(folder: tuple[str, str], bucket: int, suffix: str) -> tuple[str, str, str]:
    return (*folder, f"bucket={bucket:03d}.{suffix}")


def series_bucket(bucket: int) -> tuple[str, str, str]:
    return _bucket_file(SERIES, bucket, "parquet")


def series_index_bucket(bucket: int) -> tuple[str, str, str]:
    return _bucket_file(SERIES_INDEX, bucket, "parquet")


def event_statistics_bucket(bucket: int) -> tuple[str, str, str]:
    return _bucket_file(EVENT_STATISTICS, bucket, "pkl")


def preproc_quality_bucket(bucket: int) -> tuple[str, str, str]:
    return _bucket_file(PREPROC_QUALITY, bucket, "json")


def counts_bucket(bucket: int) -> str:
    """A bucket's folder in Extract's attempt folder, as the engines name it (unpadded)."""
    return f"bucket={bucket}"


def models_bucket(bucket: int) -> tuple[str, str, str]:
    return _bucket_file(MODELS, bucket, "pkl")


def backtest_scores_bucket(bucket: int) -> tuple[str, str, str]:
    return _bucket_file(BACKTEST_SCORES, bucket, "parquet")


def calibration_points_bucket(bucket: int) -> tuple[str, str, str]:
    return _bucket_file(CALIBRATION_POINTS, bucket, "parquet")


def total_backtest_bucket(bucket: int) -> tuple[str, str, str]:
    return _bucket_file(TOTAL_BACKTEST, bucket, "parquet")


def total_history_bucket(bucket: int) -> tuple[str, str, str]:
    return _bucket_file(TOTAL_HISTORY, bucket, "parquet")


def forecasts_bucket(bucket: int) -> tuple[str, str, str]:
    return _bucket_file(FORECASTS, bucket, "parquet")


def accuracy_bucket(bucket: int) -> tuple[str, str, str]:
    return _bucket_file(ACCURACY, bucket, "parquet")


def accuracy_window_bucket(bucket: int) -> tuple[str, str, str]:
    return _bucket_file(ACCURACY_WINDOW, bucket, "parquet")


def accuracy_notes_bucket(bucket: int) -> tuple[str, str, str]:
    return _bucket_file(ACCURACY_NOTES, bucket, "json")


def daily_totals_bucket(bucket: int) -> tuple[str, str, str]:
    return _bucket_file(DAILY_TOTALS, bucket, "parquet")


def relative(parts: tuple[str, ...]) -> str:
    """`extract/data.parquet`: a file's path inside the run folder, for messages and URIs."""
    return "/".join(parts)
