"""Splitting series over the instances of one job: every series in exactly one share whatever
the count, the same split on every host, and the rank read from the job's resource configuration
(as the local runner writes it for each of its processes)."""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

import pytest

from local_run.runner import run_instances
from pipeline_code import shards

REPO_ROOT = Path(__file__).resolve().parents[2]
SERIES = [f"model-{i:05d}" for i in range(5000)] + ["Ridge Wagon", "ヴェゼル", ""]


@pytest.mark.parametrize("count", [1, 2, 3, 4, 7, 16])
def test_every_series_is_in_exactly_one_share(count: int) -> None:
    owners = {series: [] for series in SERIES}
    for rank in range(count):
        share = shards.Share(rank=rank, count=count)
        for series in SERIES:
            if share.owns(series):
                owners[series].append(rank)
    assert all(len(ranks) == 1 for ranks in owners.values())
    sizes = [sum(1 for ranks in owners.values() if ranks == [r]) for r in range(count)]
    # A hash split: near-even shares of a large set.
    assert max(sizes) < 1.2 * len(SERIES) / count


def test_the_split_is_the_same_in_every_process() -> None:
    probe = (
        f"from pipeline_code import shards; print([shards.bucket_of(s) for s in {SERIES[:50]!r}])"
    )
    outputs = set()
    for seed in ("1", "2"):
        environment = {**os.environ, "PYTHONHASHSEED": seed, "PYTHONPATH": str(REPO_ROOT)}
        [result] = run_instances([sys.executable, "-c", probe], 1, environment, REPO_ROOT)
        assert result.returncode == 0, result.stderr
        outputs.add(result.stdout)
    assert len(outputs) == 1
    assert json.loads(outputs.pop()) == [shards.bucket_of(s) for s in SERIES[:50]]


def test_buckets_are_the_share_as_files() -> None:
    for count in (1, 3):
        taken = [b for rank in range(count) for b in shards.Share(rank, count).buckets]
        assert sorted(taken) == list(range(shards.BUCKETS))


def test_without_a_resource_configuration_the_instance_is_rank_0_of_1(tmp_path: Path) -> None:
    share = shards.current_share({shards.CONFIG_DIR_ENV: str(tmp_path)})
    assert share == shards.Share(0, 1) and share.is_leader


def test_the_rank_is_the_hosts_position_in_the_resource_configuration(tmp_path: Path) -> None:
    config = {"current_host": "algo-3", "hosts": ["algo-1", "algo-2", "algo-3"]}
    (tmp_path / "resourceconfig.json").write_text(json.dumps(config))
    share = shards.current_share({shards.CONFIG_DIR_ENV: str(tmp_path)})
    assert share == shards.Share(rank=2, count=3) and not share.is_leader


def test_a_resource_configuration_without_this_host_is_named(tmp_path: Path) -> None:
    config = {"current_host": "algo-9", "hosts": ["algo-1"]}
    (tmp_path / "resourceconfig.json").write_text(json.dumps(config))
    with pytest.raises(ValueError, match=r"resourceconfig.json: not a resource configuration"):
        shards.current_share({shards.CONFIG_DIR_ENV: str(tmp_path)})


def test_the_local_runner_gives_each_process_its_own_rank() -> None:
    probe = (
        "import sys; from pipeline_code import shards; s = shards.current_share(); "
        "print(s.rank, s.count); sys.exit(3 if s.rank == 1 else 0)"
    )
    environment = {**os.environ, "PYTHONPATH": str(REPO_ROOT)}
    results = run_instances([sys.executable, "-c", probe], 3, environment, REPO_ROOT)
    assert [r.stdout.split() for r in results] == [["0", "3"], ["1", "3"], ["2", "3"]]
    assert [r.returncode for r in results] == [0, 3, 0]
