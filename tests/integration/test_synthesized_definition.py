"""The definition the dev stack deploys (CloudFormation tokens resolved as they would be) runs
locally end to end: what is tested locally is what SageMaker gets."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest
from aws_cdk.assertions import Template

from tests.infra.cfn import deployed_definition_body
from tests.infra.conftest import environment, synth_stacks
from tests.integration.test_local_run import partition, run_local

pytestmark = pytest.mark.slow

DATE = dt.date(2025, 3, 31)


def test_the_dev_definition_runs_locally(tmp_path: Path) -> None:
    stacks = synth_stacks(environment("dev"))
    body = deployed_definition_body(Template.from_stack(stacks["pipeline"]))
    assert "s3://forecast-dev-data-123456789012-ap-northeast-1" in body
    path = tmp_path / "forecast-dev-daily.json"
    path.write_text(body)
    lake = tmp_path / "lake"
    result = run_local(lake, DATE, "--definition", str(path), "--no-report")
    assert result.returncode == 0, result.stdout + result.stderr
    published = partition(lake, "forecasts", DATE)
    assert f"published       {published}" in result.stdout
    assert sorted(published.glob("*.parquet"))
    for step in ("Extract", "PreProc", "Train", "TrainEvaluation", "Predict", "PostProc"):
        assert f"{step:<18} Succeeded" in result.stdout
