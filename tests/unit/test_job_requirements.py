"""The jobs' pins resolve as wheels for the job image's Python (the image compiles nothing), and
the local run uses the very same versions on the same Python."""

from __future__ import annotations

import re
import subprocess
import sys
from importlib.metadata import version
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[2] / "pipeline_code"
REQUIREMENTS = PACKAGE / "requirements.txt"


def image_python() -> str:
    """The job image's Python version, from the Dockerfile's base image tag."""
    match = re.search(r"^FROM \S+/python:(\d+\.\d+)", (PACKAGE / "Dockerfile").read_text(), re.M)
    assert match, "the Dockerfile must start from a python:X.Y image"
    return match.group(1)


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


def test_the_image_runs_the_local_runs_python() -> None:
    assert image_python() == f"{sys.version_info.major}.{sys.version_info.minor}"


@pytest.mark.slow
def test_the_pins_resolve_as_wheels_for_the_images_python(tmp_path: Path) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "pip", "download", "--quiet", "--only-binary=:all:",
         "--python-version", image_python(), "--platform", "manylinux2014_x86_64",
         "--platform", "manylinux_2_28_x86_64", "-r", str(REQUIREMENTS), "-d", str(tmp_path)],
        capture_output=True,
        text=True,
        timeout=600,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr[-3000:]
    wheels = {path.name.split("-")[0].lower() for path in tmp_path.glob("*.whl")}
    assert {name.lower() for name in _pins()} <= wheels
