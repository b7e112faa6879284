"""The error a step raises for bad input, and how every failure of a step ends: one line.

A step's failure is read by a person in the Slack message or the local summary, so it is one line
`ERROR <step>: <problem> (<where>)` on stderr and exit code 1, whatever went wrong:

- StepError: bad input the step recognised; the message names the problem and the place.
- an unreadable ExecutionDate or a refused execution id.
- OSError: the disk is full or read-only, a path is missing or not a folder; names the path.
- anything else: named by its type; the traceback goes to stdout (the job's log) for whoever
  fixes the code, never in place of the one line.
"""

from __future__ import annotations

import sys
import traceback
from collections.abc import Callable


class StepError(RuntimeError):
    def __init__(self, step: str, problem: str) -> None:
        super().__init__(f"{step}: {problem}")
        self.step = step
        self.problem = problem


def one_line(text: object) -> str:
    """Collapse a message to one line: a multi-line library message would break the contract."""
    return " ".join(str(text).split())


def describe_os_error(err: OSError) -> str:
    """`No space left on device (/lake/runs/x/data.parquet)`: the problem, then the place."""
    problem = err.strerror or str(err) or type(err).__name__
    paths = [str(path) for path in (err.filename, err.filename2) if path]
    return one_line(f"{problem} ({', '.join(paths)})" if paths else problem)


def _step_name(main: Callable[..., object]) -> str:
    module = sys.modules.get(getattr(main, "__module__", ""), None)
    return str(getattr(module, "STEP", getattr(main, "__module__", "step")))


def run_entry_point(main: Callable[[list[str] | None], None], argv: list[str] | None = None) -> int:
    """Run a step's main; every failure becomes one line on stderr and exit code 1."""
    from pipeline_code.identifiers import ExecutionIdError
    from pipeline_code.run_context import ExecutionDateError

    step = _step_name(main)
    try:
        main(argv)
    except StepError as err:
        message = str(err)
    except (ExecutionDateError, ExecutionIdError) as err:
        message = f"{step}: {err}"
    except OSError as err:
        message = f"{step}: {describe_os_error(err)}"
    except Exception as err:  # the contract is one line, whatever the cause
        traceback.print_exc(file=sys.stdout)
        message = f"{step}: unexpected {type(err).__name__}: {err}"
    else:
        return 0
    print(f"ERROR {one_line(message)}", file=sys.stderr)
    return 1
