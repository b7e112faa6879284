"""A moto server for tests of the steps' AWS paths.

A server (rather than the in-process mock) is used because the run folder is read and written
with pyarrow's S3 filesystem, which does not go through boto3; awswrangler and boto3 reach the
same server through AWS_ENDPOINT_URL.
"""

from __future__ import annotations

import io
import threading
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qs

import boto3
import pyarrow.fs as pafs
import pytest
import requests
from moto.server import ThreadedMotoServer

from pipeline_code import storage

REGION = "us-east-1"


@dataclass(frozen=True)
class AwsCall:
    """One HTTP request that reached the moto server, whichever client sent it."""

    method: str
    path: str
    query: dict[str, list[str]]
    target: str  # X-Amz-Target of JSON-protocol APIs (Glue, Athena), else ""
    copy_source: str  # x-amz-copy-source of S3 copies, else ""
    body: bytes  # kept for JSON-protocol calls and S3 batch deletes only


class CallRecorder:
    """WSGI middleware in front of moto that records requests while `recording()` is open.

    It sits on the server rather than on botocore's `before-call` event because the steps' run
    folder goes through pyarrow's S3 filesystem, whose requests never pass through botocore.
    """

    def __init__(self, app: Callable[..., Iterable[bytes]]) -> None:
        self.app = app
        self.calls: list[AwsCall] = []
        self._on = False
        self._lock = threading.Lock()

    def __call__(self, environ: dict[str, Any], start_response: Callable[..., Any]) -> Any:
        if self._on:
            self._record(environ)
        return self.app(environ, start_response)

    def _record(self, environ: dict[str, Any]) -> None:
        query = parse_qs(environ.get("QUERY_STRING", ""), keep_blank_values=True)
        target = environ.get("HTTP_X_AMZ_TARGET", "")
        body = b""
        if target or "delete" in query:
            length = int(environ.get("CONTENT_LENGTH") or 0)
            body = environ["wsgi.input"].read(length)
            environ["wsgi.input"] = io.BytesIO(body)
        call = AwsCall(
            method=environ["REQUEST_METHOD"],
            path=environ.get("PATH_INFO", ""),
            query=query,
            target=target,
            copy_source=environ.get("HTTP_X_AMZ_COPY_SOURCE", ""),
            body=body,
        )
        with self._lock:
            self.calls.append(call)

    def recording(self) -> _Recording:
        return _Recording(self)


class _Recording:
    def __init__(self, recorder: CallRecorder) -> None:
        self.recorder = recorder

    def __enter__(self) -> list[AwsCall]:
        self.recorder.calls = []
        self.recorder._on = True
        return self.recorder.calls

    def __exit__(self, *exc: object) -> None:
        self.recorder._on = False


@dataclass(frozen=True)
class MotoServer:
    address: str  # host:port
    recorder: CallRecorder


@pytest.fixture(scope="session")
def _moto() -> Iterator[MotoServer]:
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    wsgi_server = server._server
    assert wsgi_server is not None
    recorder = CallRecorder(wsgi_server.app)
    wsgi_server.app = recorder
    host, port = server.get_host_and_port()
    yield MotoServer(f"{host}:{port}", recorder)
    server.stop()


@pytest.fixture(scope="session")
def _moto_server(_moto: MotoServer) -> str:
    return _moto.address


def use_fresh_account(address: str, monkeypatch: pytest.MonkeyPatch) -> str:
    """Reset moto to an empty account and point boto3, awswrangler and the steps' storage at it;
    returns the endpoint URL."""
    endpoint = f"http://{address}"
    requests.post(f"{endpoint}/moto-api/reset", timeout=10)
    for name, value in {
        "AWS_ENDPOINT_URL": endpoint,
        "AWS_DEFAULT_REGION": REGION,
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
    }.items():
        monkeypatch.setenv(name, value)

    monkeypatch.setattr(storage, "_filesystem", storage_at(address))
    return endpoint


def storage_at(address: str) -> Callable[[str], tuple[pafs.FileSystem, str]]:
    """`storage._filesystem` for a moto server: pyarrow's S3 client does not read
    AWS_ENDPOINT_URL, so the run folder's files are pointed at the server here."""

    def filesystem(uri: str) -> tuple[pafs.FileSystem, str]:
        if storage.is_s3(uri):
            s3 = pafs.S3FileSystem(
                endpoint_override=address,
                scheme="http",
                region=REGION,
                access_key="testing",
                secret_key="testing",
            )
            return s3, uri[len("s3://") :]
        return pafs.LocalFileSystem(), uri

    return filesystem


@pytest.fixture
def aws(_moto_server: str, monkeypatch: pytest.MonkeyPatch) -> str:
    """A fresh, empty moto account; returns the endpoint URL."""
    return use_fresh_account(_moto_server, monkeypatch)


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
