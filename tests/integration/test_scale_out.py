"""One pipeline over several instances, end to end (`python -m local_run run --instance-count N`
on a small demo lake, each instance a process with its own resource configuration): the
published forecasts and metrics are the same for any N, and a lost instance fails its step,
naming it, with nothing published.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import pandas as pd
import pytest

from pipeline_code.tables import TOTAL_SERIES_ID
from tests.integration.source_faults import FAULT_ID, assert_refused, run_again, snapshot
from tests.integration.test_local_run import LATER_DATE, REPO_ROOT, read_partition, run_local

pytestmark = pytest.mark.slow

TABLES = ("forecasts", "forecast_metrics")


def _published(lake: Path) -> dict[str, pd.DataFrame]:
    """Both tables' rows for the date, without the execution id, as stored (no re-sorting)."""
    return {t: read_partition(lake, t, LATER_DATE).drop(columns=["execution_id"]) for t in TABLES}


@pytest.fixture(scope="module")
def one_instance(tmp_path_factory: pytest.TempPathFactory) -> Path:
    lake = tmp_path_factory.mktemp("one")
    result = run_local(lake, LATER_DATE, "--no-report", "--execution-id", "one")
    assert result.returncode == 0, result.stdout + result.stderr
    return lake


def test_three_instances_publish_what_one_instance_publishes(
    one_instance: Path, tmp_path: Path
) -> None:
    lake = tmp_path / "three"
    shutil.copytree(one_instance / "applications", lake / "applications")
    result = run_local(
        lake, LATER_DATE, "--no-report", "--execution-id", "three", "--instance-count", "3",
        demo=False,
    )  # fmt: skip
    assert result.returncode == 0, result.stdout + result.stderr
    trained = [
        (lake / "runs" / "three" / "logs" / f"Train-algo-{rank}.log").read_text()
        for rank in (1, 2, 3)
    ]
    assert sum("series in" in log for log in trained) >= 2  # the work was split
    single, triple = _published(one_instance), _published(lake)
    # The total is fitted on per-bucket partial sums: its rows must not depend on the split.
    for frame in (triple["forecasts"], triple["forecast_metrics"]):
        assert TOTAL_SERIES_ID in set(frame["series_id"])
    for table in TABLES:
        pd.testing.assert_frame_equal(triple[table], single[table], check_exact=True)


def _lose_an_instance(tmp_path: Path) -> dict[str, str]:
    """Instance algo-2 of Train dies as a killed process would, before writing anything."""
    hooks = tmp_path / "hooks"
    hooks.mkdir()
    (hooks / "sitecustomize.py").write_text(
        "import os, sys\n"
        "if 'pipeline_code.steps.train' in sys.orig_argv and os.environ.get("
        "'SM_INPUT_CONFIG_DIR', '').endswith('algo-2'):\n"
        "    sys.stderr.write('ERROR Train: instance lost\\n')\n"
        "    sys.stderr.flush()\n"
        "    os._exit(137)\n"
    )
    return {"PYTHONPATH": f"{hooks}:{REPO_ROOT}"}


def test_a_lost_train_instance_fails_the_run_naming_it_and_publishes_nothing(
    one_instance: Path, tmp_path: Path
) -> None:
    lake = tmp_path / "lake"
    shutil.copytree(one_instance, lake, symlinks=True)
    before = snapshot(lake)
    result = run_again(lake, "--instance-count", "3", env=_lose_an_instance(tmp_path))
    assert_refused(lake, before, result, "Train")
    output = result.stdout + result.stderr
    assert "Train (instance algo-2 of 3) exited with code 137" in output
    assert not (lake / "runs" / FAULT_ID / "evaluation").exists()  # the run stopped at Train
