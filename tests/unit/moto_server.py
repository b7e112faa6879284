"""A moto server for tests of the steps' AWS paths.

A server (rather than the in-process mock) is used because the run folder is read and written
with pyarrow's S3 filesystem, which does not go through boto3; awswrangler and boto3 reach the
same server through AWS_ENDPOINT_URL.
"""

from __future__ import annotations

from collections.abc import Iterator

import boto3
import pyarrow.fs as pafs
import pytest
import requests
from moto.server import ThreadedMotoServer

from pipeline_code import storage

REGION = "us-east-1"


@pytest.fixture(scope="session")
def _moto_server() -> Iterator[str]:
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    yield f"{host}:{port}"
    server.stop()


@pytest.fixture
def aws(_moto_server: str, monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    """A fresh, empty moto account; returns the endpoint URL."""
    endpoint = f"http://{_moto_server}"
    requests.post(f"{endpoint}/moto-api/reset", timeout=10)
    for name, value in {
        "AWS_ENDPOINT_URL": endpoint,
        "AWS_DEFAULT_REGION": REGION,
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
    }.items():
        monkeypatch.setenv(name, value)

    def filesystem(uri: str) -> tuple[pafs.FileSystem, str]:
        if storage.is_s3(uri):
            s3 = pafs.S3FileSystem(
                endpoint_override=_moto_server,
                scheme="http",
                region=REGION,
                access_key="testing",
                secret_key="testing",
            )
            return s3, uri[len("s3://") :]
        return pafs.LocalFileSystem(), uri

    monkeypatch.setattr(storage, "_filesystem", filesystem)
    yield endpoint


def set_athena_results(
    endpoint: str, columns: list[tuple[str, str]], rows: list[list[str]]
) -> None:
    """Queue the rows the next Athena query returns (header row first, as Athena does)."""

    def row(values: list[str]) -> dict[str, list[dict[str, str]]]:
        return {"Data": [{"VarCharValue": v} for v in values]}

    column_info = [
        {
            "CatalogName": "hive",
            "SchemaName": "",
            "TableName": "",
            "Name": name,
            "Label": name,
            "Type": kind,
            "Precision": 0,
            "Scale": 0,
            "Nullable": "UNKNOWN",
            "CaseSensitive": False,
        }
        for name, kind in columns
    ]
    body = {
        "account_id": boto3.client("sts").get_caller_identity()["Account"],
        "region": REGION,
        "results": [
            {
                "rows": [row([name for name, _ in columns])] + [row(r) for r in rows],
                "column_info": column_info,
            }
        ],
    }
    response = requests.post(
        f"{endpoint}/moto-api/static/athena/query-results", json=body, timeout=10
    )
    assert response.status_code == 201
