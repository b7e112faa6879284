"""The real CDK CLI synthesizes every environment offline; every template passes cfn-lint, and
cdk-nag's AwsSolutions pack reports no unacknowledged finding (synthesis fails otherwise)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
CDK = REPO / "node_modules" / ".bin" / "cdk"

pytestmark = pytest.mark.slow


def _offline_env() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
    env.update(
        JSII_SILENCE_WARNING_END_OF_LIFE_NODE_VERSION="20",
        JSII_SILENCE_WARNING_DEPRECATED_NODE_VERSION="1",
        # No credentials and no reachable AWS: synth must need neither.
        AWS_EC2_METADATA_DISABLED="true",
        AWS_SHARED_CREDENTIALS_FILE=os.devnull,
        AWS_CONFIG_FILE=os.devnull,
    )
    return env


@pytest.fixture(scope="module", params=["dev", "prod"])
def synthesized(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> tuple[str, Path]:
    if not CDK.exists():
        pytest.fail("the CDK CLI is not installed: run `make setup` (npm ci)")
    out = tmp_path_factory.mktemp(f"cdk-{request.param}")
    result = subprocess.run(
        [
            str(CDK),
            "synth",
            "--all",
            "-q",
            "-c",
            f"env={request.param}",
            "-o",
            str(out),
            "--app",
            f"{sys.executable} app.py",
        ],
        cwd=REPO,
        env=_offline_env(),
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    return request.param, out


def _templates(out: Path) -> list[Path]:
    templates = sorted(out.glob("*.template.json"))
    assert templates, f"no templates in {out}"
    return templates


def test_stack_names_carry_the_environment(synthesized: tuple[str, Path]) -> None:
    env, out = synthesized
    names = {path.name.removesuffix(".template.json") for path in _templates(out)}
    assert f"Forecast-{env}-Data" in names
    assert all(name.startswith(f"Forecast-{env}-") for name in names)


def test_cfn_lint_finds_no_errors(synthesized: tuple[str, Path]) -> None:
    # No rule is ignored; warnings count as failures too.
    result = subprocess.run(
        [str(Path(sys.executable).parent / "cfn-lint"), *map(str, _templates(synthesized[1]))],
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_cdk_nag_reports_no_unacknowledged_finding(synthesized: tuple[str, Path]) -> None:
    report = json.loads((synthesized[1] / "validation-report.json").read_text())
    violations = [
        violation
        for plugin in report.get("pluginReports", [])
        for violation in plugin.get("violations", [])
    ]
    assert violations == []
