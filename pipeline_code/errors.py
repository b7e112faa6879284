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
    """Run a step's main; a StepError becomes one clear line on stderr and exit code 1."""
    try:
        main(argv)
    except StepError as err:
        print(f"ERROR {err}", file=sys.stderr)
        return 1
    return 0
