"""Both tables are published as one, by one writer per date: kill it, fill the disk, make a table
unwritable, run two at once; a reader always sees both tables from one execution."""

from __future__ import annotations

import datetime as dt
import errno
import json
import os
import subprocess
import sys
import threading
from pathlib import Path

import boto3
import pytest

from pipeline_code import publication, storage
from pipeline_code.errors import StepError
from pipeline_code.run_context import RunContext
from pipeline_code.steps import postproc
from tests.unit import moto_server
from tests.unit.test_postproc import (
    DATABASE,
    DAY,
    _aws_live,
    _aws_tables,
    _forecasts,
    _keys,
    _metrics,
    _publish,
    _snapshot,
    _stage,
    _versions,
    every_table,
)

_moto = moto_server._moto
_moto_server = moto_server._moto_server
aws = moto_server.aws

REPO_ROOT = Path(__file__).resolve().parents[2]


def _live(lake: Path) -> dict[str, str | None]:
    return publication.live_execution_ids(lake, DAY)


# --- local: failures before the switch leave both tables as they were ------------------------


@pytest.mark.parametrize(
    ("failing_call", "error", "message"),
    [
        (2, OSError(errno.ENOSPC, "No space left on device"), "No space left on device"),
        (2, PermissionError(errno.EACCES, "Permission denied"), "Permission denied"),
        (1, OSError(errno.EROFS, "Read-only file system"), "Read-only file system"),
    ],
)
def test_a_write_failure_publishes_nothing_and_says_so(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    failing_call: int,
    error: OSError,
    message: str,
) -> None:
    _publish(str(tmp_path), DAY, "exec-1")
    before = _snapshot(tmp_path)
    calls = []
    original = publication.pq.write_table

    def write_table(rows, where, *args, **kwargs):
        calls.append(where)
        if len(calls) == failing_call:
            error.filename = str(where)
            raise error
        return original(rows, where, *args, **kwargs)

    ctx = _stage(str(tmp_path), DAY, "exec-2", _forecasts(level=7.0), _metrics())
    monkeypatch.setattr(publication.pq, "write_table", write_table)
    with pytest.raises(StepError, match=f"nothing was published: {message}") as err:
        postproc.run(ctx, DATABASE)
    assert str(calls[-1]) in str(err.value)  # names the file it could not write
    assert _snapshot(tmp_path) == before
    assert _live(tmp_path) == every_table("exec-1")
    store = tmp_path / ".publications" / f"execution_date={DAY}"
    assert not [p for p in store.iterdir() if p.name.startswith("exec-2")]


def test_a_table_folder_that_cannot_take_the_link_publishes_nothing(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # An older-layout partition must be adopted first; the metrics table refuses the new link.
    legacy = tmp_path / "forecast_metrics" / f"execution_date={DAY}"
    legacy.mkdir(parents=True)
    storage.write_table(_metrics().assign(execution_id="old"), str(legacy / "old.parquet"))
    forecasts = tmp_path / "forecasts" / f"execution_date={DAY}"
    forecasts.mkdir(parents=True)
    storage.write_table(_forecasts().assign(execution_id="old"), str(forecasts / "old.parquet"))
    original = publication._replace_with_link

    def replace_with_link(link: Path, target: Path) -> None:
        if "forecast_metrics" in str(link):
            raise PermissionError(errno.EACCES, "Permission denied", str(link))
        original(link, target)

    monkeypatch.setattr(publication, "_replace_with_link", replace_with_link)
    with pytest.raises(StepError, match="nothing was published: Permission denied"):
        _publish(str(tmp_path), DAY, "exec-2", forecasts=_forecasts(level=7.0))
    # The older layout had no forecast_accuracy table.
    assert _live(tmp_path) == {
        "forecasts": "old",
        "forecast_metrics": "old",
        "forecast_accuracy": None,
    }


# --- local: killed at any point ---------------------------------------------------------------

_KILLER = """
import os, sys
from pipeline_code import publication
from pipeline_code.errors import run_entry_point
from pipeline_code.steps import postproc

point, argv = sys.argv[1], sys.argv[2:]
calls = []

def die(*args, **kwargs):
    os._exit(137)  # as SIGKILL: no cleanup, no finally

if point == "between_table_files":
    original = publication.pq.write_table
    def write_table(*args, **kwargs):
        calls.append(1)
        if len(calls) == 2:
            die()
        return original(*args, **kwargs)
    publication.pq.write_table = write_table
elif point == "before_switch":
    publication.switch = die
elif point == "right_after_switch":
    original_switch = publication.switch
    def switch(store, version):
        original_switch(store, version)
        die()
    publication.switch = switch
elif point == "during_cleanup":
    publication._remove_superseded = die
if point.startswith("aws_"):
    from pipeline_code import storage
    from tests.unit.moto_server import storage_at
    storage._filesystem = storage_at(os.environ["AWS_ENDPOINT_URL"].removeprefix("http://"))
if point == "aws_between_table_versions":
    original_add = publication.GlueCatalog.add_partition
    def add_partition(self, *args, **kwargs):
        original_add(self, *args, **kwargs)
        die()
    publication.GlueCatalog.add_partition = add_partition
elif point == "aws_before_switch":
    publication.write_pointer = die
elif point == "aws_right_after_switch":
    original_write = publication.write_pointer
    def write_pointer(*args, **kwargs):
        original_write(*args, **kwargs)
        die()
    publication.write_pointer = write_pointer
elif point == "aws_during_cleanup":
    postproc._delete_superseded_versions = die
sys.exit(run_entry_point(postproc.main, argv))
"""


def _killed_publish(root: Path | str, run_id: str, point: str) -> int:
    ctx = _stage(str(root), DAY, run_id, _forecasts(level=7.0), _metrics())
    argv = [
        "--execution-date", DAY.isoformat(), "--execution-id", ctx.execution_id,
        "--data-root", str(root), "--database", DATABASE,
    ]  # fmt: skip
    environment = {**os.environ, "PYTHONPATH": str(REPO_ROOT)}
    result = subprocess.run(
        [sys.executable, "-c", _KILLER, point, *argv],
        cwd=REPO_ROOT,
        env=environment,
        capture_output=True,
        text=True,
        check=False,
    )
    return result.returncode


@pytest.mark.parametrize(
    ("point", "published"),
    [
        ("between_table_files", False),
        ("before_switch", False),
        ("right_after_switch", True),
        ("during_cleanup", True),
    ],
)
def test_killed_at_any_point_both_tables_are_from_one_execution(
    tmp_path: Path, point: str, published: bool
) -> None:
    _publish(str(tmp_path), DAY, "exec-1")
    before = _snapshot(tmp_path)
    assert _killed_publish(tmp_path, "exec-2", point) == 137
    expected = "exec-2" if published else "exec-1"
    assert _live(tmp_path) == every_table(expected)
    if not published:
        assert _snapshot(tmp_path) == before
    # The next publish of the date completes and clears what the killed one left.
    _publish(str(tmp_path), DAY, "exec-3")
    assert _live(tmp_path) == every_table("exec-3")
    store = tmp_path / ".publications" / f"execution_date={DAY}"
    assert len(list(store.iterdir())) == 2


def test_an_older_layout_partition_is_adopted_without_changing_what_readers_see(
    tmp_path: Path,
) -> None:
    for table, frame in (("forecasts", _forecasts()), ("forecast_metrics", _metrics())):
        versions = tmp_path / table / ".versions" / f"execution_date={DAY}" / "old-1"
        versions.mkdir(parents=True)
        storage.write_table(frame.assign(execution_id="old"), str(versions / "part-0.parquet"))
        link = tmp_path / table / f"execution_date={DAY}"
        link.symlink_to(Path(".versions") / f"execution_date={DAY}" / "old-1")
    publication._adopt_partitions(tmp_path, DAY)
    # The older layout had no forecast_accuracy table.
    assert _live(tmp_path) == {
        "forecasts": "old",
        "forecast_metrics": "old",
        "forecast_accuracy": None,
    }
    _publish(str(tmp_path), DAY, "exec-2")
    assert _live(tmp_path) == every_table("exec-2")
    assert not (tmp_path / "forecasts" / ".versions" / f"execution_date={DAY}").exists()


# --- local: one writer per date ---------------------------------------------------------------


def test_a_second_writer_of_the_date_fails_naming_the_first_and_publishes_nothing(
    tmp_path: Path,
) -> None:
    _publish(str(tmp_path), DAY, "exec-1")
    before = _snapshot(tmp_path)
    holder = publication.local_lock(tmp_path, DAY, "exec-holder")
    with holder, pytest.raises(StepError) as err:
        _publish(str(tmp_path), DAY, "exec-2")
    assert "execution exec-holder" in str(err.value)
    assert "execution exec-2 published nothing" in str(err.value)
    assert _snapshot(tmp_path) == before
    _publish(str(tmp_path), DAY, "exec-3")  # released: the next writer goes ahead
    assert _live(tmp_path)["forecasts"] == "exec-3"


def _race(pair: list[RunContext]) -> list[str]:
    """Start both publishes at the same moment (a barrier, no sleeps); what each one did."""
    barrier = threading.Barrier(len(pair))
    outcomes: list[str] = []

    def publish(ctx: RunContext) -> None:
        barrier.wait()
        try:
            postproc.run(ctx, DATABASE)
            outcomes.append("published")
        except StepError as err:
            outcomes.append("refused" if "is publishing execution_date" in str(err) else str(err))

    threads = [threading.Thread(target=publish, args=(ctx,)) for ctx in pair]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert set(outcomes) <= {"published", "refused"}, outcomes
    return outcomes


def test_concurrent_publishes_of_one_date_never_lose_the_live_partition(tmp_path: Path) -> None:
    """Two writers started together, many times: each either publishes or is refused by the
    lock, and the live partition always holds both tables of one of them."""
    trials = 120
    contexts = [
        _stage(str(tmp_path), DAY, f"exec-{i}", _forecasts(level=float(i + 1)), _metrics())
        for i in range(2 * trials)
    ]
    refused = 0
    for trial in range(trials):
        pair = contexts[2 * trial : 2 * trial + 2]
        outcomes = _race(pair)
        assert "published" in outcomes
        refused += outcomes.count("refused")
        live = _live(tmp_path)
        assert live["forecasts"] == live["forecast_metrics"]
        assert live["forecasts"] in {ctx.execution_id for ctx in pair}
    assert refused > 0  # the writers did overlap, and the lock decided


# --- the summary tells the truth --------------------------------------------------------------


def test_live_execution_ids_read_the_rows(tmp_path: Path) -> None:
    assert _live(tmp_path) == every_table(None)
    _publish(str(tmp_path), DAY, "exec-1")
    assert _live(tmp_path) == every_table("exec-1")


# --- AWS (moto) ------------------------------------------------------------------------------


def _lock_key() -> str:
    return f"runs/_locks/execution_date={DAY}.json"


def test_aws_a_held_lock_refuses_the_second_writer(aws: str) -> None:
    _aws_tables()
    _publish("s3://data", DAY, "exec-1")
    s3 = boto3.client("s3")
    held = {"execution_id": "exec-holder", "expires_at": "2999-01-01T00:00:00+00:00"}
    s3.put_object(Bucket="data", Key=_lock_key(), Body=json.dumps(held).encode())
    versions = _keys("forecasts_")
    with pytest.raises(StepError, match="execution exec-holder holds the publish lock"):
        _publish("s3://data", DAY, "exec-2")
    assert _aws_live() == every_table("exec-1")
    assert _keys("forecasts_") == versions
    assert json.loads(s3.get_object(Bucket="data", Key=_lock_key())["Body"].read()) == held


def test_aws_an_expired_lock_is_taken_over_and_released(aws: str) -> None:
    _aws_tables()
    s3 = boto3.client("s3")
    stale = {"execution_id": "exec-killed", "expires_at": "2000-01-01T00:00:00+00:00"}
    s3.put_object(Bucket="data", Key=_lock_key(), Body=json.dumps(stale).encode())
    _publish("s3://data", DAY, "exec-2")
    assert _aws_live() == every_table("exec-2")
    assert "Contents" not in s3.list_objects_v2(Bucket="data", Prefix="runs/_locks/")


def test_aws_the_lock_is_created_with_a_conditional_write(aws: str) -> None:
    s3 = boto3.client("s3")
    s3.create_bucket(Bucket="data")
    uri = publication.lock_uri("s3://data", DAY)
    refused = pytest.raises(StepError, match="exec-1 holds the publish lock")
    with publication.s3_lock(s3, uri, "exec-1"), refused, publication.s3_lock(s3, uri, "exec-2"):
        pass
    with publication.s3_lock(s3, uri, "exec-3"):
        pass


def test_aws_a_failed_switch_publishes_nothing_and_says_what_readers_see(
    aws: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    _aws_tables()
    _publish("s3://data", DAY, "exec-1")

    def refused(*args, **kwargs) -> None:
        raise RuntimeError("AccessDenied: s3:PutObject")

    monkeypatch.setattr(publication, "write_pointer", refused)
    with pytest.raises(
        StepError,
        match=r"nothing was published \(readers still see execution exec-1 for this date, in "
        r"both tables\): AccessDenied",
    ):
        _publish("s3://data", DAY, "exec-2")
    assert _aws_live() == every_table("exec-1")


def test_aws_a_switch_that_failed_after_s3_applied_it_is_reported_published(
    aws: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    _aws_tables()
    original = publication.write_pointer

    def lost_response(*args, **kwargs) -> None:
        original(*args, **kwargs)
        raise RuntimeError("ReadTimeoutError after the request was sent")

    monkeypatch.setattr(publication, "write_pointer", lost_response)
    _publish("s3://data", DAY, "exec-1")
    assert _aws_live() == every_table("exec-1")


@pytest.mark.parametrize(
    ("point", "published"),
    [
        ("aws_between_table_versions", False),
        ("aws_before_switch", False),
        ("aws_right_after_switch", True),
        ("aws_during_cleanup", True),
    ],
)
def test_aws_killed_at_any_point_both_views_show_one_execution(
    aws: str, point: str, published: bool
) -> None:
    _aws_tables()
    _publish("s3://data", DAY, "exec-1")
    before = [_keys(prefix) for prefix in ("forecasts_", "forecast_metrics_", "publications/")]
    assert _killed_publish("s3://data", "exec-2", point) == 137
    expected = "exec-2" if published else "exec-1"
    assert _aws_live() == every_table(expected)
    if not published:
        assert _keys("publications/") == before[2]
    # The killed holder's lock is taken over once its lease has expired; then the next publish
    # completes and deletes what is older than the version it replaces.
    s3 = boto3.client("s3")
    s3.delete_object(Bucket="data", Key=_lock_key())
    _publish("s3://data", DAY, "exec-3")
    assert _aws_live() == every_table("exec-3")
    assert len(_versions("forecasts", DAY)) == len(_versions("forecast_metrics", DAY)) == 2


def test_aws_a_run_date_that_is_out_of_range_never_reaches_aws() -> None:
    with pytest.raises(ValueError, match="outside the supported range"):
        RunContext(execution_date=dt.date(9999, 1, 1), execution_id="x", data_root="s3://data")


def test_the_summary_of_a_failed_run_says_what_the_live_partitions_hold(tmp_path: Path) -> None:
    from local_run.summary import publication_state

    assert publication_state(tmp_path, DAY, "exec-1") == (
        "nothing was published; the date has no published partition"
    )
    _publish(str(tmp_path), DAY, "exec-1")
    assert publication_state(tmp_path, DAY, "exec-2") == (
        "nothing was published; the date's partitions are from execution exec-1"
    )
    # Killed after the switch: the step failed, but the date holds this execution's tables.
    assert publication_state(tmp_path, DAY, "exec-1") == (
        "both tables were published by this execution before it failed"
    )
