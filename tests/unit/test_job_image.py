"""The job image, without Docker: lay out what pipeline_code/Dockerfile copies (minus what
.dockerignore leaves out) the way the build would, and run every step's entry command from the
definition inside that layout. The installed packages stand in for the image's pinned install."""

from __future__ import annotations

import fnmatch
import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from stacks.pipeline_definition import STEP_MODULES, DefinitionSettings, build_definition

CONTEXT = Path(__file__).resolve().parents[2] / "pipeline_code"


def dockerfile() -> str:
    return (CONTEXT / "Dockerfile").read_text()


def dockerignore() -> list[str]:
    lines = (CONTEXT / ".dockerignore").read_text().splitlines()
    return [line.strip() for line in lines if line.strip() and not line.startswith("#")]


def ignored(relative: Path, patterns: list[str]) -> bool:
    path = relative.as_posix()
    return any(
        fnmatch.fnmatch(path, pattern)
        or fnmatch.fnmatch(path, pattern.removeprefix("**/"))
        or any(fnmatch.fnmatch(part, pattern.removeprefix("**/")) for part in relative.parts)
        for pattern in patterns
    )


def copy_instructions() -> list[tuple[str, str]]:
    return re.findall(r"^COPY\s+(\S+)\s+(\S+)\s*$", dockerfile(), re.M)


def environment_value(name: str) -> str:
    match = re.search(rf"\b{name}=(\S+)", dockerfile())
    assert match, f"the Dockerfile sets no {name}"
    return match.group(1)


def build_layout(root: Path) -> Path:
    """The image's files under `root`: each COPY of the build context, .dockerignore applied."""
    patterns = dockerignore()
    for source, destination in copy_instructions():
        target = root / destination.lstrip("/")
        for path in sorted((CONTEXT / source).rglob("*") if source == "." else [CONTEXT / source]):
            relative = path.relative_to(CONTEXT)
            if path.is_dir() or ignored(relative, patterns):
                continue
            placed = target / relative if source == "." else target
            placed.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(path, placed)
    return root


def test_the_image_copies_the_package_and_ignores_caches(tmp_path: Path) -> None:
    (CONTEXT / "steps" / "__pycache__").mkdir(exist_ok=True)
    root = build_layout(tmp_path)
    package = root / "opt" / "program" / "pipeline_code"
    assert (package / "steps" / "extract.py").is_file()
    assert (package / "requirements.txt").is_file()
    assert not list(root.rglob("__pycache__")) and not list(root.rglob("*.pyc"))


def test_the_image_installs_only_wheels_and_nothing_at_job_start() -> None:
    install = re.findall(r"^RUN .*pip install(.*)$", dockerfile(), re.M)
    assert install and all("--only-binary=:all:" in line for line in install)
    definition = build_definition(DefinitionSettings(pipeline_name="p"))
    assert "pip install" not in definition and "pip3 install" not in definition


@pytest.mark.parametrize("step", sorted(STEP_MODULES))
def test_each_step_entry_command_runs_in_the_image_layout(tmp_path: Path, step: str) -> None:
    root = build_layout(tmp_path / "image")
    definition = json.loads(build_definition(DefinitionSettings(pipeline_name="p")))
    steps = {s["Name"]: s for s in definition["Steps"]}
    steps.update({s["Name"]: s for s in steps["QualityGate"]["Arguments"]["IfSteps"]})
    entrypoint = steps[step]["Arguments"]["AlgorithmSpecification"]["ContainerEntrypoint"]
    python_path = root / environment_value("PYTHONPATH").lstrip("/")
    # `python3` in the image; this interpreter has the same pinned packages installed.
    command = [sys.executable, *entrypoint[1:]] if entrypoint[0] == "python3" else entrypoint
    result = subprocess.run(
        [*command, "--help"],
        env={**os.environ, "PYTHONPATH": str(python_path)},
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    assert "--execution-id" in result.stdout
    loaded = subprocess.run(
        [sys.executable, "-c", f"import {entrypoint[-1]} as m; print(m.__file__)"],
        env={**os.environ, "PYTHONPATH": str(python_path)},
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    )
    assert loaded.stdout.strip().startswith(str(python_path)), "ran the image's copy"
