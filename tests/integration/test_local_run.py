"""End to end: `python -m local_run run` over small demo data, as a user runs it."""

from __future__ import annotations

import copy
import datetime as dt
import json
import os
import subprocess
import sys
from html.parser import HTMLParser
from pathlib import Path

import pandas as pd
import pytest

from pipeline_code.tables import TOTAL_SERIES_ID
from stacks.pipeline_definition import DefinitionSettings, build_definition, substitute_placeholders

REPO_ROOT = Path(__file__).resolve().parents[2]
LATER_DATE = dt.date(2025, 6, 30)
EARLIER_DATE = dt.date(2025, 6, 23)
HORIZON_DAYS = 28

pytestmark = pytest.mark.slow


def run_local(
    lake: Path, date: dt.date, *extra: str, demo: bool = True
) -> subprocess.CompletedProcess[str]:
    """The local run as a user starts it; `demo` first fills the lake with small demo data."""
    demo_data = ["--demo", "--demo-models", "4", "--demo-years", "1"] if demo else []
    command = [
        sys.executable, "-m", "local_run", "run",
        "--lake", str(lake), "--date", date.isoformat(), *demo_data, *extra,
    ]  # fmt: skip
    environment = {**os.environ, "PYTHONPATH": str(REPO_ROOT)}
    return subprocess.run(
        command, cwd=REPO_ROOT, env=environment, capture_output=True, text=True, timeout=600
    )


def partition(lake: Path, table: str, date: dt.date) -> Path:
    return lake / table / f"execution_date={date.isoformat()}"


def read_partition(lake: Path, table: str, date: dt.date) -> pd.DataFrame:
    files = sorted(partition(lake, table, date).glob("*.parquet"))
    assert files, f"no files in {partition(lake, table, date)}"
    return pd.concat([pd.read_parquet(path) for path in files], ignore_index=True)


def content(frame: pd.DataFrame) -> pd.DataFrame:
    """A partition's rows without the execution id, in a stable order."""
    frame = frame.drop(columns=["execution_id"])
    return frame.sort_values(list(frame.columns[:2])).reset_index(drop=True)


def last_execution_id(stdout: str) -> str:
    return next(line.split()[-1] for line in stdout.splitlines() if line.startswith("execution id"))


@pytest.fixture(scope="module")
def lake(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A lake with demo data up to the later date and that date's forecasts published."""
    lake = tmp_path_factory.mktemp("lake")
    result = run_local(lake, LATER_DATE)
    assert result.returncode == 0, result.stdout + result.stderr
    return lake


def test_a_run_publishes_the_dates_forecasts_and_writes_the_report(lake: Path) -> None:
    forecasts = read_partition(lake, "forecasts", LATER_DATE)
    per_series = forecasts.groupby("series_id")["target_date"].agg(["min", "max", "count"])
    assert len(per_series) >= 3 + 1  # the series and their total
    assert (per_series["count"] == HORIZON_DAYS).all()
    assert (pd.to_datetime(per_series["min"]).dt.date == LATER_DATE + dt.timedelta(days=1)).all()
    assert (forecasts["yhat_lower"] <= forecasts["yhat"]).all()
    assert (forecasts["yhat"] <= forecasts["yhat_upper"]).all()
    assert not read_partition(lake, "forecast_metrics", LATER_DATE).empty
    report = lake / "reports" / f"{LATER_DATE.isoformat()}.html"
    assert "<svg" in report.read_text()


class _ReportParser(HTMLParser):
    """The report's title and the first cell of every row of its series table."""

    def __init__(self) -> None:
        super().__init__()
        self.title = ""
        self.table_rows: list[str] = []
        self._in: list[str] = []
        self._sortable = False
        self._cell: list[str] | None = None

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self._in.append(tag)
        if tag == "table" and ("class", "sortable") in attrs:
            self._sortable = True
        if self._sortable and tag == "tr":
            self._cell = None
        if self._sortable and tag == "td" and self._cell is None:
            self._cell = []

    def handle_endtag(self, tag: str) -> None:
        if self._in:
            self._in.pop()
        if tag == "table":
            self._sortable = False
        if self._sortable and tag == "td" and self._cell is not None and self._cell != [None]:
            self.table_rows.append("".join(self._cell).strip())
            self._cell = [None]  # only the first cell of the row

    def handle_data(self, data: str) -> None:
        if self._in and self._in[-1] == "h1":
            self.title += data
        elif self._cell is not None and self._cell != [None]:
            self._cell.append(data)


def test_the_report_lists_every_series_and_the_total_under_a_title_with_the_dates(
    lake: Path,
) -> None:
    forecasts = read_partition(lake, "forecasts", LATER_DATE)
    assert TOTAL_SERIES_ID in set(forecasts["series_id"])
    parser = _ReportParser()
    parser.feed((lake / "reports" / f"{LATER_DATE.isoformat()}.html").read_text())
    series = set(forecasts["series_id"]) - {TOTAL_SERIES_ID}
    assert series <= set(parser.table_rows)
    assert "Total (all series)" in parser.table_rows
    first = LATER_DATE + dt.timedelta(days=1)
    last = LATER_DATE + dt.timedelta(days=HORIZON_DAYS)
    assert f"forecast for {first} .. {last}, from data up to {LATER_DATE}" in parser.title


def test_the_same_date_again_as_lambda_steps_gives_the_same_partition(lake: Path) -> None:
    """Re-running a date replaces its partition with the same rows, also when the steps run as
    Lambda steps (`pipeline.compute: lambda`) instead of training jobs."""
    before = {t: read_partition(lake, t, LATER_DATE) for t in ("forecasts", "forecast_metrics")}
    result = run_local(lake, LATER_DATE, "--compute", "lambda")
    assert result.returncode == 0, result.stdout + result.stderr
    logs = next(lake.glob(f"runs/{last_execution_id(result.stdout)}/logs"))
    assert '"step": "train"' in (logs / "Train.log").read_text(), "ran through the handler"
    for table, frame in before.items():
        after = read_partition(lake, table, LATER_DATE)
        pd.testing.assert_frame_equal(content(after), content(frame))
        assert after["execution_id"].iloc[0] != frame["execution_id"].iloc[0]


def test_another_date_leaves_the_first_untouched(lake: Path) -> None:
    before = read_partition(lake, "forecasts", LATER_DATE)
    result = run_local(lake, EARLIER_DATE)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "demo data: kept the lake's demo applications" in result.stdout
    pd.testing.assert_frame_equal(read_partition(lake, "forecasts", LATER_DATE), before)
    earlier = read_partition(lake, "forecasts", EARLIER_DATE)
    assert pd.to_datetime(earlier["target_date"]).min().date() == EARLIER_DATE + dt.timedelta(1)


def test_a_failing_gate_fails_the_run_and_publishes_nothing(lake: Path) -> None:
    before = read_partition(lake, "forecasts", LATER_DATE)
    report = lake / "reports" / f"{LATER_DATE.isoformat()}.html"
    report_written = report.stat().st_mtime_ns
    result = run_local(lake, LATER_DATE, "--param", "MaxMase=0.0001")
    assert result.returncode == 3, result.stdout + result.stderr
    assert "Quality gate failed, nothing was published: MASE" in result.stdout
    assert "(max 0.0001)" in result.stdout
    pd.testing.assert_frame_equal(read_partition(lake, "forecasts", LATER_DATE), before)
    assert report.stat().st_mtime_ns == report_written


def test_run_history_has_every_gated_run_of_the_date_passed_or_stopped(lake: Path) -> None:
    """The runs above: two published runs of the later date and one the gate stopped."""
    import duckdb

    files = str(lake / "run_history" / "execution_date=*" / "*.parquet")
    rows = duckdb.sql(
        f"SELECT * FROM read_parquet('{files}', hive_partitioning = true)"
        f" WHERE execution_date = '{LATER_DATE.isoformat()}' ORDER BY evaluated_at"
    ).df()
    assert rows["outcome"].tolist() == ["published", "published", "gate_failed"]
    assert rows["gate_passed"].tolist() == [True, True, False]
    stopped = rows.iloc[-1]
    assert stopped["max_mase"] == 0.0001 and stopped["mase"] > 0.0001
    assert "MASE" in stopped["gate_message"] and pd.isna(stopped["published_at"])
    assert rows["published_at"].iloc[:2].notna().all()
    assert (rows["n_series"] >= 3).all() and str(rows["n_series"].dtype) == "int64"


def test_a_synthesized_definition_with_real_names_runs_the_same(lake: Path, tmp_path: Path) -> None:
    """A definition whose placeholders were replaced (as the stack does) maps its bucket too."""
    text = substitute_placeholders(
        build_definition(DefinitionSettings(pipeline_name="forecast-dev")),
        {"data_bucket": "forecast-data-dev-123456789012", "glue_database": "forecast_dev"},
    )
    path = tmp_path / "pipeline.json"
    path.write_text(text)
    result = run_local(lake, EARLIER_DATE, "--definition", str(path), "--no-report")
    assert result.returncode == 0, result.stdout + result.stderr
    assert f"published       {partition(lake, 'forecasts', EARLIER_DATE)}" in result.stdout


def test_an_environments_settings_reach_the_local_run(tmp_path: Path) -> None:
    """`--env` builds the definition synth builds: a 14-day horizon and a company day in a
    cdk.json environment give a 14-day forecast whose Train arguments carry the company day."""
    cdk_json = json.loads((REPO_ROOT / "cdk.json").read_text())
    environment = copy.deepcopy(cdk_json["context"]["environments"]["dev"])
    environment["pipeline"]["horizon_days"] = 14
    environment["calendar"]["company_days"] = [
        {"date": "2025-07-05", "name": "summer_sale", "days": 2}
    ]
    cdk_json["context"]["environments"] = {"trial": environment}
    path = tmp_path / "cdk.json"
    path.write_text(json.dumps(cdk_json))
    lake = tmp_path / "lake"
    result = run_local(lake, LATER_DATE, "--env", "trial", "--cdk-json", str(path), "--no-report")
    assert result.returncode == 0, result.stdout + result.stderr
    assert "settings        environment trial" in result.stdout
    forecasts = read_partition(lake, "forecasts", LATER_DATE)
    assert (forecasts.groupby("series_id")["target_date"].count() == 14).all()
    [train_log] = (lake / "runs").glob("*/logs/Train.log")
    command = train_log.read_text().splitlines()[0].split()
    company_days = command[command.index("--company-days") + 1]
    assert company_days == "2025-07-05+2:summer_sale"
