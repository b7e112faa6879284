"""Faults in the publish step, run end to end as a user would (`python -m local_run run` on a
small demo lake): a table that cannot be written, a full disk, a kill right after the switch, a
second writer of the date. Both tables always show one execution, a failure changes nothing
published, and the summary says what the date holds.

Faults reach PostProc's subprocess through a `sitecustomize` module on PYTHONPATH, which the
local runner passes on to every step.
"""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from pipeline_code import publication
from tests.integration import source_faults
from tests.integration.source_faults import CLEAN_ID, FAULT_ID, assert_refused, run_again, snapshot
from tests.integration.test_local_run import LATER_DATE, REPO_ROOT
from tests.unit.test_postproc import every_table

pytestmark = pytest.mark.slow

published_lake = source_faults.published_lake
lake = source_faults.lake

_FAULTS = {
    "metrics_unwritable": """
original = publication.pq.write_table
def write_table(table, where, *args, **kwargs):
    if "forecast_metrics" in str(where):
        raise PermissionError(errno.EACCES, "Permission denied", str(where))
    return original(table, where, *args, **kwargs)
publication.pq.write_table = write_table
""",
    "disk_full": """
original = publication.pq.write_table
calls = []
def write_table(table, where, *args, **kwargs):
    calls.append(where)
    if len(calls) == 2:
        raise OSError(errno.ENOSPC, "No space left on device", str(where))
    return original(table, where, *args, **kwargs)
publication.pq.write_table = write_table
""",
    "killed_after_switch": """
original = publication.switch
def switch(store, version):
    original(store, version)
    os._exit(137)  # as SIGKILL: no cleanup, no finally
publication.switch = switch
""",
}


def _run_with_fault(lake: Path, tmp_path: Path, fault: str) -> subprocess.CompletedProcess[str]:
    hooks = tmp_path / "hooks"
    hooks.mkdir()
    (hooks / "sitecustomize.py").write_text(
        "import errno, os, sys\n"
        "if 'pipeline_code.steps.postproc' in sys.orig_argv:\n"
        "    from pipeline_code import publication\n"
        + "".join(f"    {line}\n" for line in _FAULTS[fault].strip().splitlines())
    )
    return run_again(lake, env={"PYTHONPATH": f"{hooks}:{REPO_ROOT}"})


def _live(lake: Path) -> dict[str, str | None]:
    return publication.live_execution_ids(lake, LATER_DATE)


@pytest.mark.parametrize(
    ("fault", "cause"),
    [
        ("metrics_unwritable", "Permission denied"),
        ("disk_full", "No space left on device"),
    ],
)
def test_a_table_that_cannot_be_written_publishes_nothing_and_says_so(
    lake: Path, tmp_path: Path, fault: str, cause: str
) -> None:
    before = snapshot(lake)
    result = _run_with_fault(lake, tmp_path, fault)
    assert_refused(lake, before, result, "PostProc", cause, "nothing was published")
    assert _live(lake) == every_table(CLEAN_ID)
    assert f"the date's partitions are from execution {CLEAN_ID}" in result.stdout


def test_killed_right_after_the_switch_both_tables_are_the_new_execution(
    lake: Path, tmp_path: Path
) -> None:
    result = _run_with_fault(lake, tmp_path, "killed_after_switch")
    assert result.returncode != 0, result.stdout + result.stderr
    assert _live(lake) == every_table(FAULT_ID)
    assert "both tables were published by this execution before it failed" in result.stdout


def test_a_second_writer_of_the_date_fails_naming_the_first_and_publishes_nothing(
    lake: Path,
) -> None:
    before = snapshot(lake)
    with publication.local_lock(lake, LATER_DATE, "holder-run"):
        result = run_again(lake)
    assert_refused(
        lake, before, result, "PostProc", "execution holder-run", "is publishing",
        f"execution {FAULT_ID} published nothing",
    )  # fmt: skip
    assert _live(lake) == every_table(CLEAN_ID)
