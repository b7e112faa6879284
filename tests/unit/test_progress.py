"""Progress of long steps: throttled lines with the time left, in the job log and relayed
locally while the step runs."""

from __future__ import annotations

import sys
from pathlib import Path

from local_run.runner import _ProgressRelay, run_instances
from pipeline_code import progress
from pipeline_code.forecasting.parallel import map_series


class FakeClock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def test_lines_come_at_most_every_few_seconds_and_always_at_the_end() -> None:
    clock, lines = FakeClock(), []
    counter = progress.Progress("Train", 10_000, clock=clock, emit=lines.append)
    for _ in range(2_400):
        clock.now += 0.01  # 24 s in all, 100 items a second
        counter.advance()
    assert 4 <= len(lines) <= 5  # every 5 s, not every item
    assert lines[-1] == "PROGRESS Train: 2,000/10,000 series (20%), about 80 s left"
    for _ in range(7_600):
        clock.now += 0.01
        counter.advance()
    assert lines[-1] == "PROGRESS Train: 10,000/10,000 series (100%)"


def test_a_line_parses_back_to_its_figures() -> None:
    line = progress.format_line("Predict", 2_400, 10_000, "series", 190.0)
    assert line == "PROGRESS Predict: 2,400/10,000 series (24%), about 3 min left"
    reading = progress.parse(line)
    assert reading == progress.Reading("Predict", 2_400, 10_000, "series", 180.0)
    assert progress.parse("Train: 4 series in 2.0s") is None


def test_durations_read_as_people_say_them() -> None:
    assert [progress.duration(s) for s in (0.2, 40, 200, 5_400, 9_000)] == [
        "1 s", "40 s", "3 min", "1.5 h", "2.5 h",
    ]  # fmt: skip


def test_map_series_reports_every_item_in_process_and_in_workers() -> None:
    for workers in (1, 2):
        done: list[int] = []
        assert map_series(abs, list(range(-20, 0)), workers, done.append) == list(range(20, 0, -1))
        assert sum(done) == 20


def test_the_relay_sums_the_instances_and_keeps_the_slowest_time_left(monkeypatch) -> None:
    shown: list[tuple[str, str]] = []
    relay = _ProgressRelay("Train", 2, lambda step, text: shown.append((step, text)))
    clock = FakeClock()
    monkeypatch.setattr("local_run.runner.time.monotonic", clock)
    relay.read(0, progress.format_line("Train", 10, 100, "series", 60.0) + "\n")
    relay.read(1, "other output\n" + progress.format_line("Train", 30, 120, "series", 200.0)[:20])
    clock.now += 10
    relay.read(1, progress.format_line("Train", 30, 120, "series", 200.0)[20:] + "\n")
    assert shown[-1] == ("Train", "40/220 series (18%), about 3 min left")


def test_progress_reaches_the_console_while_the_step_runs(tmp_path: Path) -> None:
    """The child waits for the relay to have seen its line: if output were read only after the
    process ended, the child would give up and exit 1."""
    seen = tmp_path / "seen"
    child = (
        "import pathlib, sys, time\n"
        "print('PROGRESS Train: 1/2 series (50%), about 5 s left', flush=True)\n"
        f"seen = pathlib.Path({str(seen)!r})\n"
        "for _ in range(600):\n"
        "    if seen.exists(): sys.exit(0)\n"
        "    time.sleep(0.05)\n"
        "sys.exit(1)\n"
    )
    received: list[str] = []

    def on_output(rank: int, text: str) -> None:
        received.append(text)
        seen.touch()

    [result] = run_instances([sys.executable, "-c", child], 1, {}, tmp_path, on_output)
    assert result.returncode == 0, result.stderr
    assert "PROGRESS Train: 1/2" in "".join(received)
    assert "PROGRESS Train: 1/2" in result.stdout  # and the log keeps it
