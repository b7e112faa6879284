"""cdk-nag really guards synthesis: a finding nobody acknowledged stops it."""

from __future__ import annotations

import pytest
from aws_cdk import aws_s3 as s3

from stacks.app_builder import build_app
from tests.infra.conftest import environment, new_app


def test_an_unacknowledged_finding_fails_synthesis() -> None:
    app = new_app()
    stacks = build_app(app, environment("dev"))
    s3.Bucket(stacks["data"], "CarelessBucket")  # no SSL policy, no access logs
    with pytest.raises(Exception, match=r"AwsSolutions-S(1|10)"):
        app.synth()


def test_the_repo_stacks_synthesize_with_nag_enabled() -> None:
    app = new_app()
    build_app(app, environment("prod"))
    assembly = app.synth()
    assert any(stack.stack_name == "Forecast-prod-Data" for stack in assembly.stacks)
