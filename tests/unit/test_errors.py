"""A step's entry point turns bad input into one clear line and exit code 1."""

from __future__ import annotations

import datetime as dt
import errno
from pathlib import Path

import pytest

from pipeline_code.errors import StepError, run_entry_point
from pipeline_code.identifiers import ExecutionIdError, validate_execution_id
from pipeline_code.run_context import ExecutionDateError, RunContext, resolve_execution_date
from pipeline_code.steps import preproc


def _failing_step(argv: list[str] | None) -> None:
    raise StepError("PreProc", "every value of series 'A' is NaN")


def _bad_date(argv: list[str] | None) -> None:
    resolve_execution_date("2026-02-30", "", "UTC")


def test_step_error_exits_1_with_the_step_and_problem(capsys: pytest.CaptureFixture[str]) -> None:
    assert run_entry_point(_failing_step, []) == 1
    assert capsys.readouterr().err.strip() == "ERROR PreProc: every value of series 'A' is NaN"


def test_unreadable_execution_date_exits_1_naming_the_value(
    capsys: pytest.CaptureFixture[str],
) -> None:
    assert run_entry_point(_bad_date, []) == 1
    assert "'2026-02-30'" in capsys.readouterr().err


def test_a_full_disk_is_one_line_naming_the_path(capsys: pytest.CaptureFixture[str]) -> None:
    def full(argv: list[str] | None) -> None:
        raise OSError(errno.ENOSPC, "No space left on device", "/lake/runs/x/data.parquet")

    assert run_entry_point(full, []) == 1
    err = capsys.readouterr().err
    assert err.count("\n") == 1
    assert "No space left on device (/lake/runs/x/data.parquet)" in err


def test_other_exceptions_are_one_line_with_the_traceback_in_the_log(
    capsys: pytest.CaptureFixture[str],
) -> None:
    def broken(argv: list[str] | None) -> None:
        raise KeyError("bug")

    assert run_entry_point(broken, []) == 1
    captured = capsys.readouterr()
    assert captured.err.count("\n") == 1
    assert "unexpected KeyError" in captured.err
    assert "Traceback" in captured.out and "Traceback" not in captured.err


@pytest.mark.parametrize(
    "bad_id", ["../forecasts/execution_date=2026-11-19", "/tmp/x", "a/b", "a..b", "", ".hidden"]
)
def test_a_step_refuses_an_execution_id_that_is_not_one_path_segment(
    bad_id: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    argv = [
        "--execution-date",
        "2026-11-19",
        "--execution-id",
        bad_id,
        "--data-root",
        str(tmp_path),
    ]
    assert run_entry_point(preproc.main, argv) == 1
    assert f"ERROR PreProc: execution id {bad_id!r} is not allowed" in capsys.readouterr().err
    assert list(tmp_path.iterdir()) == []


def test_a_date_out_of_range_is_refused_by_name(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(ExecutionDateError, match="0001-01-01 is outside the supported range"):
        RunContext(execution_date=dt.date(1, 1, 1), execution_id="x", data_root="/tmp")
    with pytest.raises(ExecutionIdError):
        validate_execution_id("x/../y")
    assert validate_execution_id("p4jn9xou8a8s") == "p4jn9xou8a8s"
    assert validate_execution_id("local-20261129T010203-a1b2c3")
