"""The error a step raises for bad input: it names the step and the problem, and ends the job."""

from __future__ import annotations

import sys
from collections.abc import Callable


class StepError(RuntimeError):
    def __init__(self, step: str, problem: str) -> None:
        super().__init__(f"{step}: {problem}")
        self.step = step
        self.problem = problem


def run_entry_point(main: Callable[[list[str] | None], None], argv: list[str] | None = None) -> int:
    """Run a step's main; a StepError or an unreadable ExecutionDate becomes one clear line on
    stderr and exit code 1, instead of a traceback."""
    from pipeline_code.run_context import ExecutionDateError

    try:
        main(argv)
    except (StepError, ExecutionDateError) as err:
        print(f"ERROR {err}", file=sys.stderr)
        return 1
    return 0
