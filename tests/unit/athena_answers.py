"""What Athena answers to Extract's queries, computed by DuckDB over the same files: for tests
that run Extract against moto, which runs no SQL and writes no UNLOAD output."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pandas as pd

from pipeline_code import run_folder, source_contract, storage, tables
from pipeline_code.steps import extract

NAMES = [("raw_name", "varchar"), ("row_count", "bigint")]
FIGURES = [
    ("level", "varchar"),
    ("ds", "date"),
    ("source_file", "varchar"),
    ("row_count", "bigint"),
    ("blank_ids", "bigint"),
    ("blank_names", "bigint"),
    ("no_times", "bigint"),
    ("outside", "bigint"),
    ("outside_first", "timestamp"),
    ("outside_last", "timestamp"),
    ("counted_rows", "bigint"),
    ("applications", "bigint"),
]


def athena_text(value: object) -> str:
    """A value as Athena's result set carries it (every cell a string, NULL empty)."""
    if value is None or (not isinstance(value, str) and pd.isna(value)):
        return ""
    if isinstance(value, pd.Timestamp | dt.datetime):
        return pd.Timestamp(value).strftime("%Y-%m-%d %H:%M:%S.000")
    if isinstance(value, dt.date):
        return value.isoformat()
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)


def athena_rows(frame: pd.DataFrame, columns: list[tuple[str, str]]) -> list[list[str]]:
    return [[athena_text(row[name]) for name, _ in columns] for _, row in frame.iterrows()]


def answers(
    lake: Path, s3_root: str, start: dt.date, end: dt.date, timezone: str = "Asia/Tokyo"
) -> tuple[list[list[str]], list[list[str]], pd.DataFrame]:
    """The names and figures rows Athena returns for the source under `lake` (a local copy of
    the S3 table at `s3_root`), and the counts its UNLOAD writes."""
    scan = source_contract.scan_source(str(lake / "applications"), tables.APPLICATIONS, start, end)
    engine = extract.LocalEngine([f.uri for f in scan.files], "db", "applications")
    try:
        source = extract.QuerySource("db", "applications", start, end, timezone)
        names = engine.query(extract.build_query(extract.NAMES_SQL, source))
        source, _, _ = extract.query_figures(engine, scan, source)
        figures = engine.query(extract.build_query(extract.QUALITY_SQL, source))
        counts = engine.query(extract.build_query(extract.COUNTS_SQL, source))
    finally:
        engine.close()
    local_root = str(lake / "applications")
    figures["source_file"] = figures["source_file"].str.replace(local_root, s3_root, regex=False)
    return athena_rows(names, NAMES), athena_rows(figures, FIGURES), counts


def write_unload(ctx_root: str, execution_id: str, counts: pd.DataFrame) -> None:
    """What Athena's UNLOAD leaves in the folder Extract's counts.json names."""
    manifest = f"{ctx_root}/{run_folder.RUNS}/{execution_id}/" + run_folder.relative(
        run_folder.COUNTS_MANIFEST
    )
    folder = storage.read_json(manifest)["folder"]
    for bucket, rows in counts.groupby("bucket"):
        part = rows.drop(columns="bucket").reset_index(drop=True)
        storage.write_table(part, f"{folder}/{run_folder.counts_bucket(int(bucket))}/part-0")
