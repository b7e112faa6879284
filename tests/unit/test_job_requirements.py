"""The jobs' pins resolve for the job image's Python 3.10, as wheels (the image compiles nothing),
and the local run uses the very same versions."""

from __future__ import annotations

import subprocess
import sys
from importlib.metadata import version
from pathlib import Path

import pytest

REQUIREMENTS = Path(__file__).resolve().parents[2] / "pipeline_code" / "requirements.txt"


def _pins() -> dict[str, str]:
    pins = {}
    for line in REQUIREMENTS.read_text().splitlines():
        line = line.split("#", 1)[0].strip()
        if line:
            name, _, pinned = line.partition("==")
            pins[name.strip()] = pinned.strip()
    return pins


def test_every_requirement_is_pinned_exactly() -> None:
    pins = _pins()
    assert pins and all(pins.values()), pins


def test_the_local_run_uses_the_pinned_versions() -> None:
    assert {name: version(name) for name in _pins()} == _pins()


@pytest.mark.slow
def test_the_pins_resolve_for_python_3_10_wheels(tmp_path: Path) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "pip", "download", "--quiet", "--only-binary=:all:",
         "--python-version", "3.10", "--platform", "manylinux2014_x86_64",
         "--platform", "manylinux_2_28_x86_64", "-r", str(REQUIREMENTS), "-d", str(tmp_path)],
        capture_output=True,
        text=True,
        timeout=600,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr[-3000:]
    wheels = {path.name.split("-")[0].lower() for path in tmp_path.glob("*.whl")}
    assert {name.lower() for name in _pins()} <= wheels
