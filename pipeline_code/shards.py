"""Which series this instance works on when a step runs on several instances of one job.

SageMaker writes the job's cluster into every instance as `/opt/ml/input/config/resourceconfig.json`
(`{"current_host": "algo-2", "hosts": ["algo-1", "algo-2"], ...}`, "Distributed Training
Configuration" in https://docs.aws.amazon.com/sagemaker/latest/dg/your-algorithms-training-algo-running-container.html).
An instance's rank is its host's position in `hosts`. Outside a job (tests, a plain run) there is
no file, and the one instance is rank 0 of 1. The local runner gives each of its processes a file
of its own through `SM_INPUT_CONFIG_DIR`, so the same code path is exercised without AWS.

Series are split by a stable hash of their id (not Python's `hash`, which is salted per process)
into `BUCKETS` buckets: the first byte of the MD5 digest of the id's UTF-8 bytes, modulo BUCKETS.
Extract's SQL computes the same bucket in Athena (Trino) and DuckDB (`sql/extract.sql`),
so the counts arrive already split; every file of a bucket holds the same series, and rank r
of n takes the buckets b with b % n == r, so a share is a set of files. The split depends on
the series id only: the same series land together whatever the instance count, and the
result of a run is the same for any count.
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

CONFIG_DIR_ENV = "SM_INPUT_CONFIG_DIR"
DEFAULT_CONFIG_DIR = "/opt/ml/input/config"
RESOURCE_CONFIG = "resourceconfig.json"
BUCKETS = 64
"""Buckets of series; also the most instances that can share the work. Athena's UNLOAD writes
at most 100 partitions a query (https://docs.aws.amazon.com/athena/latest/ug/unload.html,
"Maximum partitions"), and Extract writes one partition a bucket. A power of two, so that the
SQL takes the bucket as a bit mask of one byte."""


@dataclass(frozen=True)
class Share:
    """Rank `rank` of `count` instances."""

    rank: int = 0
    count: int = 1

    def __post_init__(self) -> None:
        if not 1 <= self.count <= BUCKETS or not 0 <= self.rank < self.count:
            raise ValueError(f"rank {self.rank} of {self.count} instances: not a valid share")

    @property
    def is_leader(self) -> bool:
        """Rank 0 does the work that is not split (and the only work of a one-instance step)."""
        return self.rank == 0

    @property
    def buckets(self) -> list[int]:
        return [bucket for bucket in range(BUCKETS) if self.owns_bucket(bucket)]

    def owns_bucket(self, bucket: int) -> bool:
        """The one rule of the split: rank r of n takes the buckets b with b % n == r."""
        return bucket % self.count == self.rank

    def owns(self, series_id: str) -> bool:
        return self.owns_bucket(bucket_of(series_id))

    @property
    def label(self) -> str:
        return f"instance {self.rank + 1} of {self.count}"


def bucket_of(series_id: str) -> int:
    """The series' bucket: a stable hash, the same on every host and every run."""
    return hashlib.md5(series_id.encode("utf-8"), usedforsecurity=False).digest()[0] % BUCKETS


def current_share(environ: Mapping[str, str] = os.environ) -> Share:
    """This instance's share, from the job's resource configuration (rank 0 of 1 without one)."""
    path = Path(environ.get(CONFIG_DIR_ENV, DEFAULT_CONFIG_DIR)) / RESOURCE_CONFIG
    if not path.exists():
        return Share()
    try:
        config = json.loads(path.read_text())
        hosts = list(config["hosts"])
        rank = hosts.index(config["current_host"])
    except (OSError, ValueError, KeyError, TypeError) as err:
        message = f"{path}: not a resource configuration with this host in it ({err})"
        raise ValueError(message) from err
    return Share(rank=rank, count=len(hosts))


def skip_unless_leader(step: str, environ: Mapping[str, str] = os.environ) -> bool:
    """For a step whose work is not split: True (after one line saying so) on every instance but
    the leader, which does the whole step."""
    share = current_share(environ)
    if share.is_leader:
        return False
    print(f"{step}: {share.label}: nothing to do, instance 1 of {share.count} runs this step")
    return True


def resource_config(share: Share) -> dict[str, object]:
    """The file SageMaker writes for this share's instance (what the local runner writes)."""
    hosts = [f"algo-{i + 1}" for i in range(share.count)]
    return {
        "current_host": hosts[share.rank],
        "current_group_name": "homogeneousCluster",
        "hosts": hosts,
        "network_interface_name": "eth0",
    }
