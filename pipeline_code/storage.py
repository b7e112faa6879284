"""The one place step code touches files: Parquet and JSON on `s3://` URIs or local paths.

pyarrow's filesystems do the work, so a step runs unchanged on SageMaker (S3, credentials from the
job's role) and on a laptop (a local "lake" folder standing in for the data bucket).
"""

from __future__ import annotations

import json
import posixpath
from typing import Any

import pandas as pd
import pyarrow as pa
import pyarrow.fs as pafs
import pyarrow.parquet as pq


def is_s3(uri: str) -> bool:
    return uri.startswith("s3://")


def join(root: str, *parts: str) -> str:
    return posixpath.join(root.rstrip("/"), *parts)


def _filesystem(uri: str) -> tuple[pafs.FileSystem, str]:
    if is_s3(uri):
        return pafs.S3FileSystem(), uri[len("s3://") :]
    return pafs.LocalFileSystem(), uri


def exists(uri: str) -> bool:
    fs, path = _filesystem(uri)
    return fs.get_file_info(path).type != pafs.FileType.NotFound


def _ensure_parent(fs: pafs.FileSystem, path: str) -> None:
    fs.create_dir(posixpath.dirname(path), recursive=True)


def write_table(frame: pd.DataFrame, uri: str) -> None:
    fs, path = _filesystem(uri)
    _ensure_parent(fs, path)
    pq.write_table(pa.Table.from_pandas(frame, preserve_index=False), path, filesystem=fs)


def write_arrow(table: pa.Table, uri: str) -> None:
    """Write an Arrow table as it is: its schema (a table layout's, from `tables.arrow_schema`)
    is what the file declares, on S3 and locally alike. Going through pandas instead would turn
    a bigint column with a null into double, which Athena cannot read against the Glue type.
    On S3 no folder objects are made: a published table's prefix holds its data files only."""
    fs, path = _filesystem(uri)
    if not is_s3(uri):
        _ensure_parent(fs, path)
    pq.write_table(table, path, filesystem=fs)


def read_arrow(uri: str) -> pa.Table:
    """One file's columns as written (no columns guessed from a `key=value` folder name)."""
    fs, path = _filesystem(uri)
    return pq.read_table(path, filesystem=fs, partitioning=None)


def read_table(uri: str) -> pd.DataFrame:
    fs, path = _filesystem(uri)
    return pq.read_table(path, filesystem=fs).to_pandas()


def write_json(data: Any, uri: str) -> None:
    write_bytes(json.dumps(data, indent=2, sort_keys=True, default=str).encode(), uri)


def read_json(uri: str) -> Any:
    return json.loads(read_bytes(uri))


def write_bytes(data: bytes, uri: str) -> None:
    fs, path = _filesystem(uri)
    _ensure_parent(fs, path)
    with fs.open_output_stream(path) as out:
        out.write(data)


def read_bytes(uri: str) -> bytes:
    fs, path = _filesystem(uri)
    with fs.open_input_stream(path) as src:
        return src.read()


def list_names(uri: str) -> list[str]:
    """The names of the entries directly under a folder (`s3://` prefix or local path); none
    when it does not exist."""
    fs, path = _filesystem(uri)
    selector = pafs.FileSelector(path.rstrip("/"), allow_not_found=True)
    return sorted(info.base_name for info in fs.get_file_info(selector))


def read_folder(uri: str, columns: list[str] | None = None) -> pd.DataFrame:
    """Every Parquet file directly under a folder, as one frame (empty folder: no rows)."""
    fs, path = _filesystem(uri)
    selector = pafs.FileSelector(path.rstrip("/"), allow_not_found=True)
    files = sorted(
        info.path
        for info in fs.get_file_info(selector)
        if info.type == pafs.FileType.File and info.base_name.endswith(".parquet")
    )
    frames = [pq.read_table(file, filesystem=fs, columns=columns).to_pandas() for file in files]
    return pd.concat(frames, ignore_index=True) if frames else pd.DataFrame(columns=columns)
