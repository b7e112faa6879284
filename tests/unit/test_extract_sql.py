"""The Extract SQL in both dialects: the bucket Trino and DuckDB compute is the bucket Python
computes, the names' folding survives any character on its way into the SQL text, the queries fit
Athena's request limits and its UNLOAD's partition limit, and an unreadable file is named."""

from __future__ import annotations

import datetime as dt
import re
from pathlib import Path

import botocore.session
import duckdb
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import sqlglot

from pipeline_code import shards
from pipeline_code.errors import StepError
from pipeline_code.steps import extract

START, END = dt.date(2025, 1, 1), dt.date(2025, 3, 31)
NAMES = [
    "Ridge Wagon",
    "\uff32\uff29\uff24\uff27\uff25",  # full-width letters
    "🚗 Kei",  # emoji, four UTF-8 bytes
    "Cafe\u0301",  # a combining accent
    "ヴェゼル",
    "",
    "x" * 300,
]


def _bucket_sql() -> str:
    """The bucket expression as extract.sql writes it, over a column `name`."""
    sql = (extract.SQL_DIR / extract.COUNTS_SQL).read_text()
    expression = re.search(r"(bitwise_and\(.*?\{\{bucket_mask\}\}\))", sql, re.S)
    assert expression, "extract.sql computes the bucket with bitwise_and(..., {{bucket_mask}})"
    text = " ".join(expression.group(1).split()).replace("series_id", "name")
    return text.replace("{{bucket_mask}}", str(shards.BUCKETS - 1))


def test_the_bucket_is_the_same_in_python_and_the_sql() -> None:
    trino = f"SELECT name, {_bucket_sql()} AS bucket FROM names"
    assert "md5(to_utf8(name))" in trino  # MD5 of the name's UTF-8 bytes, as bucket_of
    con = duckdb.connect()
    for macro in extract._DUCKDB_MACROS:
        con.execute(macro)
    con.execute("CREATE TABLE names (name VARCHAR)")
    con.executemany("INSERT INTO names VALUES (?)", [[name] for name in NAMES])
    duck = sqlglot.transpile(trino, read="trino", write="duckdb")[0]
    buckets = dict(con.execute(duck).fetchall())
    assert buckets == {name: shards.bucket_of(name) for name in NAMES}
    assert len(set(buckets.values())) > 3


def test_unload_writes_fewer_partitions_than_athena_allows() -> None:
    """UNLOAD writes at most 100 partitions (https://docs.aws.amazon.com/athena/latest/ug/
    unload.html); one partition a bucket, and the SQL masks a byte, so a power of two."""
    assert shards.BUCKETS <= 100
    assert shards.BUCKETS & (shards.BUCKETS - 1) == 0
    statement = extract.unload_statement("SELECT 1 AS bucket", "s3://b/runs/x/extract/counts/a")
    assert "partitioned_by = ARRAY['bucket']" in statement
    assert "TO 's3://b/runs/x/extract/counts/a/'" in statement


def test_the_query_length_limit_is_athenas() -> None:
    model = botocore.session.get_session().get_service_model("athena")
    shape = model.operation_model("StartQueryExecution").input_shape.members["QueryString"]
    assert shape.metadata["max"] == extract.MAX_QUERY_BYTES


def test_too_many_spellings_to_fold_in_one_query_fail_naming_why() -> None:
    """The limit is in bytes: 4,500 Japanese names pass as characters and fail as bytes."""
    variants = tuple((f"ヴェゼル{i} ", f"ヴェゼル{i}") for i in range(4500))
    source = extract.QuerySource("db", "applications", START, END, variants=variants)
    assert len(extract._variant_rows(dict(variants))) < extract.MAX_QUERY_BYTES
    with pytest.raises(StepError, match=r"bytes, more than Athena's 262144: 4500 car_model spel"):
        extract.build_query(extract.COUNTS_SQL, source)


@pytest.mark.parametrize(
    "name", ["Ridge\x00Wagon", "Ridge\u200bWagon", "O'Brien", "\\'; DROP TABLE x; --", "🚗"]
)
def test_a_spelling_reaches_the_sql_unchanged(name: str) -> None:
    source = extract.QuerySource("db", "t", START, END, variants=((name, "Ridge Wagon"),))
    values = extract._variant_rows(dict(source.variants))
    con = duckdb.connect()
    duck = sqlglot.transpile(
        f"SELECT from_utf8(from_hex(h)) AS raw, s FROM (VALUES {values}) AS v (h, s)",
        read="trino",
        write="duckdb",
    )[0]
    assert con.execute(duck).fetchall() == [("", ""), (name, "Ridge Wagon")]


def test_every_query_parses_as_trino_and_runs_translated_in_duckdb(tmp_path: Path) -> None:
    folder = tmp_path / "applications" / f"dt={END}"
    folder.mkdir(parents=True)
    table = pa.table(
        {
            "application_id": ["a1"],
            "applied_at": pa.array([dt.datetime(2025, 3, 31, 9)], pa.timestamp("us")),
            "car_model": ["Nova"],
            "plan": ["3y"],
            "channel": ["web"],
            "prefecture": ["Tokyo"],
        }
    )
    pq.write_table(table, folder / "part-0.parquet")
    engine = extract.LocalEngine([str(folder / "part-0.parquet")], "db", "applications")
    source = extract.QuerySource("db", "applications", START, END)
    for name in (extract.NAMES_SQL, extract.QUALITY_SQL, extract.COUNTS_SQL):
        sql = extract.build_query(name, source)
        sqlglot.parse_one(sql, read="trino")  # raises on what Trino's grammar would refuse
        assert len(engine.query(sql)) >= 1
    engine.close()


def test_a_file_whose_data_pages_are_corrupt_is_named(tmp_path: Path) -> None:
    files = []
    for day in (END - dt.timedelta(days=1), END):
        folder = tmp_path / "applications" / f"dt={day}"
        folder.mkdir(parents=True)
        n = 5000
        table = pa.table(
            {
                "application_id": [f"a{day}{i}" for i in range(n)],
                "applied_at": pa.array([dt.datetime(2025, 3, 30, 9)] * n, pa.timestamp("us")),
                "car_model": [f"model {i % 7}" for i in range(n)],
                "plan": ["3y"] * n,
                "channel": ["web"] * n,
                "prefecture": ["Tokyo"] * n,
            }
        )
        path = folder / "part-0.parquet"
        pq.write_table(table, path, compression="zstd")
        files.append(str(path))
    broken = Path(files[1])
    data = bytearray(broken.read_bytes())
    footer = int.from_bytes(data[-8:-4], "little") + 8
    for at in range(8, len(data) - footer, 7):  # every data page, the footer left whole
        data[at] ^= 0x5A
    broken.write_bytes(bytes(data))
    pq.read_schema(broken)  # the footer still reads: only the rows are lost
    engine = extract.LocalEngine(files, "db", "applications")
    source = extract.QuerySource("db", "applications", START, END)
    with pytest.raises(StepError, match=rf"Extract: cannot read source file {broken}: "):
        engine.query(extract.build_query(extract.QUALITY_SQL, source))
    engine.close()
