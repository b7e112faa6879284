"""The warnings of a successful run, read from its summaries in the data bucket.

PreProc writes `runs/<execution-id>/preproc/data_quality.json`, whose `warnings` list holds one
line per source or plausibility check that found something (duplicates counted once, folders not
read, names normalised, missing days imputed, outliers capped). PostProc writes
`runs/<execution-id>/postproc/accuracy.json`, whose `warnings` name the series (or the total)
whose realized accuracy broke the backtest's promise. A run that succeeded with warnings is worth
a message even where successes are not posted: the numbers went out, and someone should look.
"""

from __future__ import annotations

import json
import logging
from typing import Any, Protocol

SUMMARY_KEYS = (
    "runs/{execution_id}/preproc/data_quality.json",
    "runs/{execution_id}/postproc/accuracy.json",
)
MAX_WARNINGS = 10

logger = logging.getLogger(__name__)


class ObjectReader(Protocol):
    def get_object(self, **kwargs: Any) -> dict[str, Any]: ...


def summary_keys(execution_id: str) -> list[str]:
    return [key.format(execution_id=execution_id) for key in SUMMARY_KEYS]


def read_warnings(s3: ObjectReader, bucket: str, execution_id: str) -> list[str]:
    """The run's warnings from every summary it wrote."""
    lines: list[str] = []
    for key in summary_keys(execution_id):
        lines.extend(_summary_warnings(s3, bucket, key))
    return lines


def _summary_warnings(s3: ObjectReader, bucket: str, key: str) -> list[str]:
    """One summary's warnings; none when it was not written. A summary that cannot be read is
    itself a warning, so a missing permission shows in Slack instead of hiding the warnings."""
    try:
        body = s3.get_object(Bucket=bucket, Key=key)["Body"].read()
    except Exception as err:  # botocore's ClientError, without importing botocore here
        code = getattr(err, "response", {}).get("Error", {}).get("Code", type(err).__name__)
        if code in ("NoSuchKey", "404"):
            return []
        logger.warning("data-quality summary not read", extra={"key": key, "error": str(err)})
        return [f"the data-quality summary s3://{bucket}/{key} could not be read ({code})"]
    try:
        warnings = json.loads(body).get("warnings", [])
    except (ValueError, AttributeError):
        return [f"the data-quality summary s3://{bucket}/{key} is not a JSON object"]
    lines = [str(line) for line in warnings]
    if len(lines) > MAX_WARNINGS:
        hidden = len(lines) - MAX_WARNINGS
        lines = [*lines[:MAX_WARNINGS], f"... and {hidden} more in s3://{bucket}/{key}"]
    return lines
