"""A step's entry point turns bad input into one clear line and exit code 1."""

from __future__ import annotations

import pytest

from pipeline_code.errors import StepError, run_entry_point
from pipeline_code.run_context import resolve_execution_date


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


def test_other_exceptions_are_not_hidden() -> None:
    def broken(argv: list[str] | None) -> None:
        raise KeyError("bug")

    with pytest.raises(KeyError):
        run_entry_point(broken, [])
