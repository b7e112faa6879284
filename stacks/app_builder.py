"""Wires the stacks of one environment together: the one place that knows what depends on what."""

from __future__ import annotations

import aws_cdk as cdk

from stacks.config import EnvironmentConfig
from stacks.dashboard_stack import DashboardStack
from stacks.data_stack import DataStack
from stacks.monitoring_stack import MonitoringStack
from stacks.nag import enable_nag
from stacks.pipeline_stack import PipelineStack


def build_app(app: cdk.App, config: EnvironmentConfig) -> dict[str, cdk.Stack]:
    """Add every stack of `config`'s environment to `app`; returns them by short name."""
    env = cdk.Environment(account=config.account, region=config.region)
    prefix = config.stack_prefix
    data = DataStack(app, f"{prefix}-Data", config=config, env=env)
    pipeline = PipelineStack(app, f"{prefix}-Pipeline", config=config, data=data, env=env)
    monitoring = MonitoringStack(
        app, f"{prefix}-Monitoring", config=config, data=data, pipeline=pipeline, env=env
    )
    stacks: dict[str, cdk.Stack] = {"data": data, "pipeline": pipeline, "monitoring": monitoring}
    if config.quicksight.enabled:
        stacks["dashboard"] = DashboardStack(
            app,
            f"{prefix}-Dashboard",
            config=config,
            data=data,
            pipeline_name=config.pipeline_name,
            alerts_topic=monitoring.alerts_topic,
            env=env,
        )
    for stack in stacks.values():
        cdk.Tags.of(stack).add("project", "forecast")
        cdk.Tags.of(stack).add("environment", config.name)
    enable_nag(app)
    return stacks
