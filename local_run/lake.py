"""The local lake standing in for the data bucket: `s3://<bucket>/<key>` <-> `<lake>/<key>`."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class LakeMapping:
    bucket_uri: str  # "s3://<bucket>", the definition's --data-root
    lake: Path

    def covers(self, uri: str) -> bool:
        return uri == self.bucket_uri or uri.startswith(self.bucket_uri + "/")

    def to_local(self, uri: str) -> Path:
        """The lake path of a URI under the data bucket; anything else is an error."""
        if not self.covers(uri):
            raise ValueError(f"{uri!r} is not under the data bucket {self.bucket_uri}")
        key = uri[len(self.bucket_uri) :].lstrip("/")
        return self.lake / key if key else self.lake

    def map_argument(self, value: str) -> str:
        """A step argument with the data bucket replaced by the lake; other values unchanged."""
        return str(self.to_local(value)) if self.covers(value) else value
