"""cdk-nag really guards synthesis: a finding nobody acknowledged stops it, and the repository's
stacks pass because each of their findings is acknowledged, one by one, with a reason."""

from __future__ import annotations

import pytest
from aws_cdk import aws_s3 as s3

from stacks.app_builder import build_app
from stacks.nag import acknowledge
from tests.infra.conftest import environment, new_app


def test_an_unacknowledged_finding_fails_synthesis() -> None:
    app = new_app()
    stacks = build_app(app, environment("dev"))
    s3.Bucket(stacks["data"], "CarelessBucket")  # no SSL policy, no access logs
    with pytest.raises(Exception, match=r"AwsSolutions-S(1|10)"):
        app.synth()


def test_an_acknowledgement_covers_only_its_own_rule() -> None:
    app = new_app()
    stacks = build_app(app, environment("dev"))
    bucket = s3.Bucket(stacks["data"], "CarelessBucket")  # no access logs (S1), no SSL (S10)
    acknowledge(bucket, "AwsSolutions-S1", "test: access logs are not wanted here")
    with pytest.raises(Exception, match=r"AwsSolutions-S10") as raised:
        app.synth()
    assert "'AwsSolutions::AwsSolutions-S1'" not in str(raised.value)
    assert "'AwsSolutions::AwsSolutions-S10'" in str(raised.value)


def test_the_repo_stacks_synthesize_with_nag_enabled_and_every_stack_is_checked() -> None:
    app = new_app()
    stacks = build_app(
        app,
        environment(
            "prod",
            quicksight={
                "enabled": True,
                "principal_arn": "arn:aws:quicksight:ap-northeast-1:123456789012:user/default/a",
            },
        ),
    )
    assembly = app.synth()  # raises on any unacknowledged finding
    assert {stack.stack_name for stack in assembly.stacks} == {
        stack.stack_name for stack in stacks.values()
    }
    assert len(stacks) == 4
