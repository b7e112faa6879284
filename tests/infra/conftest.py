"""Infrastructure test helpers: the repo's cdk.json environments and in-process synth."""

from __future__ import annotations

import copy
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aws_cdk as cdk
import pytest

from stacks.app_builder import build_app
from stacks.config import EnvironmentConfig, parse_environment

REPO = Path(__file__).resolve().parents[2]


def _cdk_context() -> dict[str, Any]:
    return json.loads((REPO / "cdk.json").read_text())["context"]


def cdk_environments() -> dict[str, Any]:
    return _cdk_context()["environments"]


def new_app(outdir: Path | None = None) -> cdk.App:
    """An app with cdk.json's feature flags, as the CLI would create it."""
    flags = {k: v for k, v in _cdk_context().items() if k != "environments"}
    return cdk.App(context=flags, outdir=str(outdir) if outdir else None)


def environment(name: str, **overrides: Any) -> EnvironmentConfig:
    """The named environment from cdk.json, with nested overrides such as quicksight={...}."""
    raw = copy.deepcopy(cdk_environments()[name])
    for key, value in overrides.items():
        if isinstance(value, dict):
            raw.setdefault(key, {}).update(value)
        else:
            raw[key] = value
    return parse_environment(name, raw)


def synth_stacks(config: EnvironmentConfig) -> dict[str, cdk.Stack]:
    return build_app(new_app(), config)


@pytest.fixture(scope="module")
def dev_stacks() -> dict[str, cdk.Stack]:
    return synth_stacks(environment("dev"))


LAMBDA_PIPELINE = {"compute": "lambda", "lambda_memory_mb": 3008, "lambda_timeout_seconds": 540}
"""prod's pipeline with compute lambda, memory and time other than the defaults (so a test can
tell the configured values from built-in ones)."""


@dataclass(frozen=True)
class SynthesizedApp:
    config: EnvironmentConfig
    stacks: dict[str, cdk.Stack]
    assembly: Path
    """The cloud assembly folder: templates and cdk-nag's validation report."""


@pytest.fixture(scope="session")
def prod_lambda(tmp_path_factory: pytest.TempPathFactory) -> SynthesizedApp:
    """prod with compute lambda, synthesized once per test process with cdk-nag enabled (any
    unacknowledged finding fails it), its assembly written out for cfn-lint."""
    config = environment("prod", pipeline=LAMBDA_PIPELINE)
    outdir = tmp_path_factory.mktemp("cdk-prod-lambda")
    app = new_app(outdir)
    stacks = build_app(app, config)
    app.synth()
    return SynthesizedApp(config, stacks, outdir)
