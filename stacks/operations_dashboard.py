"""The operators' CloudWatch dashboard, `forecast-<env>-operations`: is the pipeline running, how
long does it take, what does the gate say, and is the alerting path itself healthy.

Rows, each a day per point (the pipeline runs daily), two weeks on screen:

1. executions succeeded / failed / stopped per day, and their duration;
2. each step's duration;
3. the gate's figures (overall MASE, relative MASE, worst relative MASE of the largest series,
   with their thresholds as lines), interval coverage, the number of series, and whether the
   gate passed;
4. the Slack notifier's errors and the depth of every dead-letter queue.

Rows 1-2 are SageMaker's own metrics, namespace `AWS/Sagemaker/ModelBuildingPipeline`:
`ExecutionSucceeded`, `ExecutionFailed`, `ExecutionStopped`, `ExecutionDuration` (dimension
`PipelineName`) and `StepDuration` (dimensions `PipelineName`, `StepName`), durations in
milliseconds ("SageMaker pipelines metrics" in
https://docs.aws.amazon.com/sagemaker/latest/dg/monitoring-cloudwatch.html#cloudwatch-metrics-pipelines).
Row 3 is TrainEvaluation's custom metrics (`pipeline_code/run_metrics.py`) in the environment's
namespace (`pipeline_definition.metrics_namespace`). Row 4 is Lambda's `Errors` and SQS's
`ApproximateNumberOfMessagesVisible`, the same metrics the alarms watch.
"""

from __future__ import annotations

from collections.abc import Sequence

import aws_cdk as cdk
from aws_cdk import aws_cloudwatch as cloudwatch
from aws_cdk import aws_lambda as lambda_
from constructs import Construct

from pipeline_code import run_metrics
from stacks.config import EnvironmentConfig
from stacks.pipeline_definition import STEP_MODULES, metrics_namespace

PIPELINE_METRICS_NAMESPACE = "AWS/Sagemaker/ModelBuildingPipeline"
DAY = cdk.Duration.days(1)
WIDTH = 24  # the dashboard grid's full width


def _pipeline_metric(
    config: EnvironmentConfig, name: str, statistic: str, label: str, **dimensions: str
) -> cloudwatch.Metric:
    return cloudwatch.Metric(
        namespace=PIPELINE_METRICS_NAMESPACE,
        metric_name=name,
        dimensions_map={"PipelineName": config.pipeline_name, **dimensions},
        statistic=statistic,
        period=DAY,
        label=label,
    )


def _gate_metric(config: EnvironmentConfig, name: str, label: str) -> cloudwatch.Metric:
    return cloudwatch.Metric(
        namespace=metrics_namespace(config.pipeline_name),
        metric_name=name,
        statistic=cloudwatch.Stats.MAXIMUM,
        period=DAY,
        label=label,
    )


def _graph(
    title: str,
    left: Sequence[cloudwatch.IMetric],
    *,
    width: int = WIDTH // 2,
    period: cdk.Duration = DAY,
    stacked: bool = False,
    left_annotations: Sequence[cloudwatch.HorizontalAnnotation] = (),
) -> cloudwatch.GraphWidget:
    return cloudwatch.GraphWidget(
        title=title,
        left=list(left),
        width=width,
        height=6,
        period=period,
        stacked=stacked,
        left_annotations=list(left_annotations) or None,
    )


def execution_widgets(config: EnvironmentConfig) -> list[cloudwatch.IWidget]:
    outcomes = [
        _pipeline_metric(config, "ExecutionSucceeded", cloudwatch.Stats.SUM, "succeeded"),
        _pipeline_metric(config, "ExecutionFailed", cloudwatch.Stats.SUM, "failed"),
        _pipeline_metric(config, "ExecutionStopped", cloudwatch.Stats.SUM, "stopped"),
    ]
    duration = [
        _pipeline_metric(config, "ExecutionDuration", cloudwatch.Stats.MAXIMUM, "longest (ms)"),
        _pipeline_metric(config, "ExecutionDuration", cloudwatch.Stats.AVERAGE, "average (ms)"),
    ]
    return [
        _graph("Executions per day", outcomes, stacked=True),
        _graph("Execution duration per day (ms)", duration),
    ]


def step_widgets(config: EnvironmentConfig) -> list[cloudwatch.IWidget]:
    steps = [
        _pipeline_metric(config, "StepDuration", cloudwatch.Stats.MAXIMUM, step, StepName=step)
        for step in STEP_MODULES
    ]
    return [_graph("Step duration per day (ms, longest)", steps, width=WIDTH)]


def gate_widgets(config: EnvironmentConfig) -> list[cloudwatch.IWidget]:
    gate = config.pipeline
    scores = [
        _gate_metric(config, "GateMASE", "MASE"),
        _gate_metric(config, "GateRelativeMASE", "MASE / seasonal naive"),
        _gate_metric(config, "GateLargestSeriesRelativeMASE", "worst of the largest series"),
    ]
    thresholds = [
        cloudwatch.HorizontalAnnotation(value=gate.max_mase, label="max MASE"),
        cloudwatch.HorizontalAnnotation(value=gate.max_relative_mase, label="max relative MASE"),
        cloudwatch.HorizontalAnnotation(
            value=gate.max_series_relative_mase, label="max per largest series"
        ),
    ]
    size = [
        _gate_metric(config, "SeriesCount", "series"),
        _gate_metric(config, run_metrics.GATE_PASSED_METRIC, "gate passed (1) / stopped (0)"),
    ]
    return [
        _graph("Quality gate: backtest figures", scores, left_annotations=thresholds, width=8),
        _graph("Interval coverage", [_gate_metric(config, "GateCoverage", "coverage")], width=8),
        _graph("Series and gate outcome", size, width=8),
    ]


def alerting_widgets(
    notifier: lambda_.IFunction, queues: Sequence[str]
) -> list[cloudwatch.IWidget]:
    depth = [
        cloudwatch.Metric(
            namespace="AWS/SQS",
            metric_name="ApproximateNumberOfMessagesVisible",
            dimensions_map={"QueueName": queue},
            statistic=cloudwatch.Stats.MAXIMUM,
            period=cdk.Duration.hours(1),
            label=queue,
        )
        for queue in queues
    ]
    errors = notifier.metric_errors(statistic=cloudwatch.Stats.SUM, period=cdk.Duration.hours(1))
    return [
        _graph("Slack notifier errors per hour", [errors], period=cdk.Duration.hours(1)),
        _graph("Dead-letter queues: messages waiting", depth, period=cdk.Duration.hours(1)),
    ]


def operations_dashboard(
    scope: Construct,
    *,
    config: EnvironmentConfig,
    notifier: lambda_.IFunction,
    queues: Sequence[str],
) -> cloudwatch.Dashboard:
    return cloudwatch.Dashboard(
        scope,
        "OperationsDashboard",
        dashboard_name=config.resource_name("operations"),
        default_interval=cdk.Duration.days(14),
        widgets=[
            execution_widgets(config),
            step_widgets(config),
            gate_widgets(config),
            alerting_widgets(notifier, queues),
        ],
    )
