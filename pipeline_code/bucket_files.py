"""Tables of series stored one file per bucket of series: how the steps split and find them.

PreProc writes the run's series index (every series and its bucket, `shards.bucket_of`) beside
the series' bucket files, one index file a bucket. An instance of a multi-instance step reads
the bucket files of its share and writes one file per bucket it owns; a step that needs every
series (TrainEvaluation, PostProc) reads the file of every bucket in the index, in bucket order,
and fails naming the first missing file. Files are named by bucket, not by instance, so what a
step reads does not depend on how many instances wrote it, and a lost instance shows up as
missing files.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable

import pandas as pd

from pipeline_code import run_folder, shards, storage
from pipeline_code.errors import StepError
from pipeline_code.run_context import RunContext

BucketFile = Callable[[int], tuple[str, ...]]
"""`run_folder.series_bucket` and its kind: a bucket's file in the run folder."""


def buckets_of(series_ids: pd.Series) -> pd.Series:
    """Each row's bucket, hashing every distinct id once."""
    distinct = pd.unique(series_ids)
    lookup = dict(zip(distinct, (shards.bucket_of(str(sid)) for sid in distinct), strict=True))
    return series_ids.map(lookup).astype("int64")


def series_index(frame: pd.DataFrame) -> pd.DataFrame:
    """`series_id, bucket`: one row per series of `frame`, sorted by series_id."""
    ids = pd.Series(sorted(pd.unique(frame["series_id"])), dtype="object")
    return pd.DataFrame({"series_id": ids, "bucket": buckets_of(ids)})


def split_by_bucket(frame: pd.DataFrame) -> dict[int, pd.DataFrame]:
    """The rows of each non-empty bucket, in bucket order, each keeping the frame's row order."""
    buckets = buckets_of(frame["series_id"])
    return {
        int(bucket): rows.reset_index(drop=True)
        for bucket, rows in frame.groupby(buckets, sort=True)
    }


def write_index(ctx: RunContext, frame: pd.DataFrame) -> None:
    """The run's series index of `frame`'s series: one file per bucket, every bucket."""
    index = series_index(frame)
    for bucket in range(shards.BUCKETS):
        rows = index[index["bucket"] == bucket].reset_index(drop=True)
        storage.write_table(rows, ctx.path(*run_folder.series_index_bucket(bucket)))


def write_buckets(ctx: RunContext, parts: dict[int, pd.DataFrame], bucket_file: BucketFile) -> None:
    for bucket, rows in parts.items():
        storage.write_table(rows, ctx.path(*bucket_file(bucket)))


def read_index(ctx: RunContext, step: str) -> pd.DataFrame:
    """Every series of the run and its bucket: the index files of all buckets, which PreProc's
    instances write one a bucket."""
    uris = bucket_uris(ctx, step, run_folder.series_index_bucket, range(shards.BUCKETS), "PreProc")
    frames = [storage.read_table(uri) for uri in uris]
    index = pd.concat([f for f in frames if len(f)] or frames[:1], ignore_index=True)
    return index.astype({"series_id": "object", "bucket": "int64"})


def index_buckets(index: pd.DataFrame, share: shards.Share | None = None) -> list[int]:
    """The index's non-empty buckets, sorted; with `share`, only those it owns."""
    buckets = sorted(int(b) for b in pd.unique(index["bucket"]))
    return [b for b in buckets if share is None or share.owns_bucket(b)]


def bucket_uris(
    ctx: RunContext, step: str, bucket_file: BucketFile, buckets: Iterable[int], made_by: str
) -> list[str]:
    """The files of `buckets`; StepError naming the missing ones when any is missing."""
    uris = [ctx.path(*bucket_file(bucket)) for bucket in buckets]
    missing = [uri for uri in uris if not storage.exists(uri)]
    if missing:
        shown = ", ".join(missing[:3]) + (
            f" and {len(missing) - 3} more" if len(missing) > 3 else ""
        )
        raise StepError(
            step,
            f"{len(missing)} of {len(uris)} bucket files missing: {shown} (did every instance "
            f"of {made_by} succeed?)",
        )
    return uris


def read_buckets(
    ctx: RunContext, step: str, bucket_file: BucketFile, buckets: Iterable[int], made_by: str
) -> pd.DataFrame:
    """The rows of every bucket in `buckets`, concatenated in that order."""
    frames = [
        storage.read_table(uri) for uri in bucket_uris(ctx, step, bucket_file, buckets, made_by)
    ]
    if not frames:
        raise StepError(step, f"no bucket files to read in {ctx.path(*bucket_file(0)[:-1])}")
    # Empty files (a bucket of series too short for a backtest) add no rows and no dtypes.
    return pd.concat([f for f in frames if len(f)] or frames[:1], ignore_index=True)
