"""The demo writes and removes only what it owns: a user's files survive `make demo` and
`make clean` byte for byte, through the real make targets."""

from __future__ import annotations

import datetime as dt
import json
import os
import shutil
import subprocess
from pathlib import Path

import pytest

from local_run import cli, demo_lake
from local_run.demo import ensure_demo_data

REPO = Path(__file__).resolve().parents[2]
END = dt.date(2025, 3, 31)
USER_FILES = {
    "notes.txt": b"my notes\n",
    "applications/dt=2025-03-30/mine.parquet": b"PAR1 not really\x00\x01",
}


def put_user_files(lake: Path) -> None:
    for relative, content in USER_FILES.items():
        path = lake / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(content)


def assert_user_files_intact(lake: Path) -> None:
    for relative, content in USER_FILES.items():
        assert (lake / relative).read_bytes() == content, relative


def snapshot(lake: Path) -> dict[str, bytes]:
    return {
        path.relative_to(lake).as_posix(): path.read_bytes()
        for path in sorted(lake.rglob("*"))
        if path.is_file()
    }


def small_demo(lake: Path, end: dt.date = END, models: int | None = 3) -> str:
    return ensure_demo_data(lake, end, years=0.25, models=models)


@pytest.fixture
def scratch_repo(tmp_path: Path) -> Path:
    """A folder where the real Makefile runs against this checkout's code and environment, so
    that `make clean`'s own removals (cdk.out, caches) stay inside the scratch folder."""
    scratch = tmp_path / "repo"
    scratch.mkdir()
    for name in (
        "Makefile", ".venv", "node_modules", "requirements.txt", "requirements-dev.txt",
        "package.json", "package-lock.json", "cdk.json", "local_run", "pipeline_code", "stacks",
    ):  # fmt: skip
        (scratch / name).symlink_to(REPO / name)
    return scratch


def make(scratch: Path, *arguments: str) -> subprocess.CompletedProcess[str]:
    environment = {k: v for k, v in os.environ.items() if not k.startswith("MAKE")}
    # The environment is this checkout's, already set up: never rebuilt from the scratch folder.
    settled = ["-o", ".venv/.installed", "-o", "node_modules/.installed"]
    return subprocess.run(
        ["make", "--no-print-directory", *settled, *arguments],
        cwd=scratch,
        env=environment,
        capture_output=True,
        text=True,
        timeout=300,
    )


@pytest.mark.skipif(shutil.which("make") is None, reason="make is not installed")
def test_make_demo_and_make_clean_leave_a_users_lake_untouched(scratch_repo: Path) -> None:
    lake = scratch_repo / "mine"
    put_user_files(lake)
    before = snapshot(lake)
    demo = make(scratch_repo, "demo", "LAKE=mine", "DATE=2025-03-31")
    assert demo.returncode == 2, demo.stdout + demo.stderr
    assert "the folder holds files the demo did not write" in demo.stderr
    assert "Traceback" not in demo.stderr
    clean = make(scratch_repo, "clean", "LAKE=mine")
    assert clean.returncode == 2, clean.stdout + clean.stderr
    assert "not a folder the demo created" in clean.stderr
    assert snapshot(lake) == before


@pytest.mark.skipif(shutil.which("make") is None, reason="make is not installed")
def test_make_clean_removes_the_demos_files_and_keeps_the_users(scratch_repo: Path) -> None:
    lake = scratch_repo / ".lake"
    small_demo(lake)
    (lake / "runs" / "local-1").mkdir(parents=True)
    (lake / "runs" / "local-1" / "evaluation.json").write_text("{}")
    (lake / "notes.txt").write_bytes(USER_FILES["notes.txt"])
    clean = make(scratch_repo, "clean")
    assert clean.returncode == 0, clean.stdout + clean.stderr
    assert "kept 1 file the demo did not write: notes.txt" in clean.stdout
    assert snapshot(lake) == {"notes.txt": USER_FILES["notes.txt"]}


def test_the_demo_refuses_a_folder_it_did_not_create_before_writing(tmp_path: Path) -> None:
    put_user_files(tmp_path)
    before = snapshot(tmp_path)
    with pytest.raises(demo_lake.LakeRefused, match=f"--lake {tmp_path}: the folder holds files"):
        small_demo(tmp_path)
    assert snapshot(tmp_path) == before


def test_the_demo_fills_an_absent_or_empty_folder_and_marks_it(tmp_path: Path) -> None:
    for lake in (tmp_path / "absent" / "lake", tmp_path / "empty"):
        if lake.name == "empty":
            lake.mkdir()
        assert "demo data: wrote" in small_demo(lake)
        owned = demo_lake.read_marker(lake)
        assert owned is not None and owned.complete
        written = {p.relative_to(lake).as_posix() for p in (lake / "applications").rglob("*.*")}
        assert set(owned.files) == written
        assert owned.created_folder == (lake.name == "lake")


def test_a_users_partition_in_a_demo_lake_stops_the_demo_from_replacing_its_table(
    tmp_path: Path,
) -> None:
    small_demo(tmp_path)
    put_user_files(tmp_path)
    before = snapshot(tmp_path)
    with pytest.raises(demo_lake.LakeRefused, match=r"mine\.parquet was not written by the demo"):
        small_demo(tmp_path, END + dt.timedelta(days=5))
    assert snapshot(tmp_path) == before


def test_a_later_date_regenerates_without_stale_partitions_and_keeps_other_files(
    tmp_path: Path,
) -> None:
    small_demo(tmp_path)
    (tmp_path / "notes.txt").write_bytes(USER_FILES["notes.txt"])
    later = END + dt.timedelta(days=10)
    assert "replaced the lake's demo applications" in small_demo(tmp_path, later)
    partitions = sorted(p.name for p in (tmp_path / "applications").iterdir())
    assert partitions[-1] == f"dt={later}"
    assert partitions[0] == f"dt={later - dt.timedelta(days=91 - 1)}"  # none left from before
    assert (tmp_path / "notes.txt").read_bytes() == USER_FILES["notes.txt"]


def test_a_later_run_keeps_the_lakes_model_count_unless_told(tmp_path: Path) -> None:
    small_demo(tmp_path, models=5)
    assert "kept the lake's demo applications (5 models" in small_demo(tmp_path, models=None)
    later = END + dt.timedelta(days=3)
    small_demo(tmp_path, later, models=None)
    owned = demo_lake.read_marker(tmp_path)
    assert owned is not None and owned.settings.models == 5
    assert owned.settings.end_date == later.isoformat()


def test_an_interrupted_write_leaves_the_table_the_demos_own(tmp_path: Path) -> None:
    """The marker is written before the table, so files of a write that stopped half way are
    known to be the demo's, and the next demo run replaces them."""
    settings = demo_lake.DemoSettings(END.isoformat(), 0.25, 3, 7)
    demo_lake.write_marker(tmp_path, demo_lake.DemoLake(settings, (), complete=False))
    (tmp_path / "applications" / "dt=2020-01-01").mkdir(parents=True)
    (tmp_path / "applications" / "dt=2020-01-01" / "part-0.parquet").write_bytes(b"half")
    assert "replaced" in small_demo(tmp_path)
    assert not (tmp_path / "applications" / "dt=2020-01-01").exists()


def test_a_damaged_marker_is_refused_not_trusted(tmp_path: Path) -> None:
    (tmp_path / demo_lake.MARKER).write_text("{not json")
    with pytest.raises(demo_lake.LakeRefused, match="is not the demo's marker"):
        demo_lake.clean(tmp_path)
    assert (tmp_path / demo_lake.MARKER).exists()


def test_a_missing_lake_without_demo_exits_2_with_a_hint(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    missing = tmp_path / "nowhere"
    assert cli.main(["run", "--lake", str(missing), "--date", "2025-03-01"]) == 2
    error = capsys.readouterr().err
    assert f"--lake {missing}: no such folder" in error
    assert "add --demo" in error
    assert not missing.exists()


def test_a_future_date_is_refused_as_rerun_refuses_it(capsys: pytest.CaptureFixture[str]) -> None:
    tomorrow = dt.datetime.now(dt.UTC).date() + dt.timedelta(days=1)
    with pytest.raises(SystemExit) as raised:
        cli.main(["run", "--lake", "/tmp/none", "--date", tomorrow.isoformat(), "--demo"])
    assert raised.value.code == 2
    assert "is in the future" in capsys.readouterr().err


def test_clean_of_a_folder_that_does_not_exist_does_nothing(tmp_path: Path) -> None:
    assert demo_lake.clean(tmp_path / "none") == demo_lake.Cleaned(removed=0, kept=())


def test_the_marker_is_json_a_person_can_read(tmp_path: Path) -> None:
    small_demo(tmp_path)
    body = json.loads((tmp_path / demo_lake.MARKER).read_text())
    assert body["settings"]["models"] == 3
    assert body["written_by"] == "python -m local_run run --demo"


@pytest.mark.skipif(shutil.which("make") is None, reason="make is not installed")
def test_make_demo_runs_the_chosen_environment_and_dev_by_default(scratch_repo: Path) -> None:
    chosen = make(scratch_repo, "-n", "demo", "ENV=prod", "DATE=2025-03-31")
    default = make(scratch_repo, "-n", "demo", "DATE=2025-03-31")
    assert "-m local_run run --lake .lake --date 2025-03-31 --demo --env prod" in chosen.stdout
    assert "--demo --env dev" in default.stdout
