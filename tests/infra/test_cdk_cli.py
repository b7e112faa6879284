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
            # Prod keeps its data, so it must name its account (stacks.config.check_deployable).
            *(["-c", "account=123456789012"] if request.param == "prod" else []),
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


def _cdk(*args: str, timeout: int = 600) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(CDK), *args],
        cwd=REPO,
        env=_offline_env(),
        capture_output=True,
        text=True,
        timeout=timeout,
    )


def test_prod_without_an_account_is_refused_in_one_line() -> None:
    result = _cdk("synth", "-q", "-c", "env=prod", "--app", f"{sys.executable} app.py")
    assert result.returncode != 0
    errors = [line for line in result.stderr.splitlines() if line.startswith("Configuration")]
    assert errors == [
        "Configuration error: environments.prod.account: required where retain_data is true,"
        " so that a kept environment is never deployed into whichever account the CLI holds;"
        " set it in cdk.json or pass -c account=123456789012"
    ]


def _documented_bootstrap() -> list[str]:
    """docs/first-deploy.md's bootstrap command, placeholders filled in."""
    text = (REPO / "docs" / "first-deploy.md").read_text()
    (line,) = [line.strip() for line in text.splitlines() if " bootstrap aws://" in line]
    filled = line.replace("<account>", "123456789012").replace("<region>", "ap-northeast-1")
    command = filled.replace("<env>", "dev").split()
    assert command[0] == "node_modules/.bin/cdk", line
    return command[1:]


def test_the_documented_bootstrap_runs_until_it_needs_credentials() -> None:
    """The app synthesizes (bootstrap runs it) and the CLI gets as far as asking AWS."""
    result = _cdk(*_documented_bootstrap(), "--app", f"{sys.executable} app.py")
    output = result.stdout + result.stderr
    assert "Configuration error" not in output
    assert "no credentials have been configured" in output, output[-2000:]


def test_make_diff_arguments_are_accepted_by_cdk_diff(synthesized: tuple[str, Path]) -> None:
    """`make diff`'s own command line against the synthesized app: the CLI accepts every
    argument and gets as far as needing credentials to read the deployed stacks."""
    env, out = synthesized
    make = subprocess.run(
        ["make", "--no-print-directory", "-n", "diff", f"ENV={env}"],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=60,
    )
    (line,) = [line for line in make.stdout.splitlines() if " diff " in line]
    arguments = line.split()[1:]
    result = _cdk(*arguments, "--app", str(out), timeout=300)
    output = result.stdout + result.stderr
    assert "Unknown option" not in output and "Unknown argument" not in output, output[-2000:]
    # dev has no account in cdk.json, prod has one on the command line: either way the CLI
    # stops where it must ask AWS for the deployed templates.
    assert "Unable to resolve AWS account" in output or "credentials" in output, output[-2000:]
