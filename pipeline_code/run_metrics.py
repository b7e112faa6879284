"""The gate's figures and the run's size as CloudWatch custom metrics, for the dashboard.

TrainEvaluation publishes them once per execution, passed or failed, to the environment's own
namespace (`--metrics-namespace`, e.g. `Forecast/forecast-prod-daily`): the pipeline role may put
metric data in that namespace only (IAM condition `cloudwatch:namespace`, stacks/pipeline_role.py).
The metrics have no dimensions; the namespace already names the pipeline. Locally, and when no
namespace is given, nothing is published.

A failed PutMetricData never fails the run: the figures are in evaluation.json and `run_history`
as well, and a dashboard gap is not worth a lost forecast.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from pipeline_code.errors import one_line

GATE_METRICS: dict[str, tuple[str, str]] = {
    "GateMASE": ("overall", "mase"),
    "GateRelativeMASE": ("overall", "relative_mase"),
    "GateLargestSeriesRelativeMASE": ("overall", "largest_series_relative_mase"),
    "GateCoverage": ("overall", "coverage"),
    "SeriesCount": ("overall", "n_series"),
}
"""Metric name -> where its value is in evaluation.json."""
GATE_PASSED_METRIC = "GatePassed"
"""1 when the gate passed, 0 when it stopped the run."""


def metric_data(report: dict[str, Any], timestamp: dt.datetime) -> list[dict[str, Any]]:
    """PutMetricData's MetricData for one evaluation report."""
    data = []
    for name, (section, key) in GATE_METRICS.items():
        value = report.get(section, {}).get(key)
        if isinstance(value, int | float) and value == value and abs(value) != float("inf"):
            unit = "Count" if name == "SeriesCount" else "None"
            data.append({"MetricName": name, "Value": float(value), "Unit": unit})
    passed = 1.0 if report.get("gate", {}).get("passed") else 0.0
    data.append({"MetricName": GATE_PASSED_METRIC, "Value": passed, "Unit": "Count"})
    return [{**item, "Timestamp": timestamp} for item in data]


def publish_gate_metrics(
    report: dict[str, Any], namespace: str, client: Any = None, now: dt.datetime | None = None
) -> bool:
    """Put the report's figures in `namespace`; False (with a warning) when CloudWatch refused."""
    import boto3

    cloudwatch = client or boto3.client("cloudwatch")
    try:
        cloudwatch.put_metric_data(
            Namespace=namespace, MetricData=metric_data(report, now or dt.datetime.now(dt.UTC))
        )
    except Exception as err:  # the run's outcome does not depend on its dashboard
        print(f"WARNING TrainEvaluation: no gate metrics in {namespace}: {one_line(err)}")
        return False
    return True
