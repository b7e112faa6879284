"""The run folder's layout is named once: the readers that cannot import it (the Slack notifier is
packaged on its own) are held to it here."""

from __future__ import annotations

import datetime as dt
import importlib.util
from pathlib import Path

from pipeline_code import run_folder
from pipeline_code.run_context import RunContext

REPO_ROOT = Path(__file__).resolve().parents[2]


def test_a_run_file_is_under_the_runs_prefix_and_its_step_folder(tmp_path: Path) -> None:
    ctx = RunContext(execution_date=dt.date(2026, 11, 28), execution_id="e1", data_root="s3://b")
    assert ctx.path(*run_folder.EVALUATION) == "s3://b/runs/e1/evaluation/evaluation.json"
    assert run_folder.relative(run_folder.SERIES_INDEX) == "preproc/series_index"


def test_a_bucket_file_is_named_by_its_bucket_inside_its_folder() -> None:
    assert run_folder.relative(run_folder.series_bucket(7)) == "preproc/series/bucket=007.parquet"
    assert run_folder.relative(run_folder.models_bucket(255)) == "train/models/bucket=255.pkl"
    assert run_folder.backtest_scores_bucket(0)[:-1] == run_folder.BACKTEST_SCORES
    assert run_folder.calibration_points_bucket(0)[:-1] == run_folder.CALIBRATION_POINTS
    assert run_folder.forecasts_bucket(0)[:-1] == run_folder.FORECASTS
    assert run_folder.total_backtest_bucket(0)[:-1] == run_folder.TOTAL_BACKTEST
    assert run_folder.total_history_bucket(0)[:-1] == run_folder.TOTAL_HISTORY


def test_every_step_file_has_its_own_path() -> None:
    paths = [
        value
        for name, value in vars(run_folder).items()
        if name.isupper() and isinstance(value, tuple)
    ]
    assert len(paths) == len(set(paths)) == 24


def test_the_slack_notifier_reads_the_summaries_where_the_steps_write_them() -> None:
    path = REPO_ROOT / "lambda" / "slack_notifier" / "data_quality.py"
    spec = importlib.util.spec_from_file_location("notifier_data_quality", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    expected = [
        "/".join((run_folder.RUNS, "{execution_id}", *summary))
        for summary in (run_folder.DATA_QUALITY, run_folder.ACCURACY_SUMMARY)
    ]
    assert list(module.SUMMARY_KEYS) == expected
