"""Infrastructure test helpers: the repo's cdk.json environments and in-process synth."""

from __future__ import annotations

import copy
import json
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


def new_app() -> cdk.App:
    """An app with cdk.json's feature flags, as the CLI would create it."""
    flags = {k: v for k, v in _cdk_context().items() if k != "environments"}
    return cdk.App(context=flags)


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
