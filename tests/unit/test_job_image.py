"""The job image, without Docker: lay out what pipeline_code/Dockerfile copies (minus what
.dockerignore leaves out) the way the build would, and run every step's entry command from the
definition inside that layout. The installed packages stand in for the image's pinned install."""

from __future__ import annotations

import ast
import fnmatch
import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from pipeline_code import lambda_handler
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


def test_the_lambda_entry_runs_a_step_in_the_image_layout(tmp_path: Path) -> None:
    """A function from the image starts the runtime interface client with the handler, which
    runs the step's module from the image's copy of the package."""
    python_path = build_layout(tmp_path / "image") / environment_value("PYTHONPATH").lstrip("/")
    environment = {**os.environ, "PYTHONPATH": str(python_path)}
    module, _, function = lambda_handler.HANDLER.rpartition(".")
    entry = lambda_handler.LAMBDA_ENTRYPOINT
    resolved = subprocess.run(
        [sys.executable, "-c", f"import {entry[-1]}, {module} as m; print(m.{function}.__module__,"
         f" m.__file__)"],
        env=environment, cwd=tmp_path, capture_output=True, text=True, timeout=120, check=True,
    )  # fmt: skip
    assert resolved.stdout.split() == [module, str(python_path / "pipeline_code/lambda_handler.py")]
    event = {"step": "extract", "arg_000": "--help"}
    invoked = subprocess.run(
        [sys.executable, "-m", module, json.dumps(event), "--timeout-seconds", "120"],
        env=environment, cwd=tmp_path, capture_output=True, text=True, timeout=180, check=False,
    )  # fmt: skip
    assert invoked.returncode == 0, invoked.stderr
    assert "--execution-id" in invoked.stdout and '"step": "extract"' in invoked.stdout


def test_the_image_copies_exactly_the_job_package() -> None:
    """The folder decides what ships: the requirements first (a cached layer), then the folder."""
    assert copy_instructions() == [
        ("requirements.txt", "/opt/program/pipeline_code/requirements.txt"),
        (".", "/opt/program/pipeline_code/"),
    ]
    assert environment_value("PYTHONPATH") == "/opt/program"


def test_the_tools_outside_the_job_package_are_not_in_the_image(tmp_path: Path) -> None:
    package = build_layout(tmp_path) / "opt" / "program" / "pipeline_code"
    shipped = {p.relative_to(package).as_posix() for p in package.rglob("*") if p.is_file()}
    assert not any(
        name.startswith(("local", "rerun")) or "definition" in name or "demo" in name
        for name in shipped
    ), sorted(shipped)


# Distributions pinned in pipeline_code/requirements.txt, by import name, and what they bring.
IMAGE_IMPORTS = {
    "numpy", "pandas", "pyarrow", "scipy", "statsmodels", "awswrangler", "holidays",
    "boto3", "botocore",  # awswrangler's own dependencies
}  # fmt: skip
# Imported only inside the local path of a function, never on AWS; the local run installs them.
LOCAL_ONLY = {"duckdb", "sqlglot"}


def imports_of(path: Path) -> tuple[set[str], set[str]]:
    """(module-level imports, imports inside functions) of a source file, as top-level names."""
    tree = ast.parse(path.read_text())
    top: set[str] = set()
    nested: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names = {alias.name.split(".")[0] for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            names = {node.module.split(".")[0]}
        else:
            continue
        (top if node in tree.body else nested).update(names)
    return top, nested


def test_the_job_package_imports_only_what_the_image_installs() -> None:
    allowed = set(sys.stdlib_module_names) | IMAGE_IMPORTS | {"pipeline_code", "__future__"}
    for path in sorted(CONTEXT.rglob("*.py")):
        top, nested = imports_of(path)
        assert top <= allowed, (path.name, top - allowed)
        assert nested <= allowed | LOCAL_ONLY, (path.name, nested - allowed - LOCAL_ONLY)
    requirements = (CONTEXT / "requirements.txt").read_text()
    assert not any(name in requirements for name in LOCAL_ONLY | {"matplotlib"})
