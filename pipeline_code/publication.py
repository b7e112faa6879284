"""One publication of `forecasts` and `forecast_metrics` for one execution date, by one writer.

A reader must always see both tables from the same execution, and a failed or killed publish must
leave both as they were. Two concurrent publishers of one date must not destroy the live partition.

**Locally** both tables' partitions reach their files through one symlink per date:

    <lake>/forecasts/execution_date=D  -> ../.publications/execution_date=D/current/forecasts
    <lake>/forecast_metrics/execution_date=D
                                       -> ../.publications/execution_date=D/current/forecast_metrics
    <lake>/.publications/execution_date=D/current -> <version>     (the one switch)
    <lake>/.publications/execution_date=D/<version>/{forecasts,forecast_metrics}/part-0.parquet

The table links never change once made; publishing writes a new version folder, then replaces
`current` with `os.replace` of a fresh symlink (one atomic rename). Killed before the rename: both
tables show the old execution (the half-written version is removed by the next publish). After
it: both show the new one. A partition of the older layout (a link per table, or a real folder) is
first copied into a version of its own and adopted, which changes nothing a reader sees.

One writer per date: an exclusive `flock` on `<lake>/.locks/execution_date=D.lock`, held for the
whole publish. The kernel releases it when the holder exits or is killed, so no stale lock is ever
left behind. The loser fails naming the holder and publishes nothing.

**On AWS** `forecasts` and `forecast_metrics` are Athena views (`stacks/glue_views.py`): each
joins its stored versions (`<table>_versions`, partitioned by `execution_date` and `version`) with
`publications`, one row per date naming the version readers see. Glue has no transaction across
two tables; the one row does the work of one:

1. One writer per date: the lock object `runs/_locks/execution_date=D.json` is created with S3's
   conditional write (`PutObject If-None-Match: *`), which S3 itself refuses for the second
   writer. It carries a lease (`LEASE_SECONDS`, longer than a job may run) so that a killed
   holder's lock is taken over, with `If-Match` on its ETag, once the lease has expired.
2. Both tables' files are written as a new version and their partitions registered (no view
   shows a version `publications` does not name).
3. The switch: `publications/execution_date=D/publication.parquet` is replaced with one
   `PutObject`. S3 replaces an object whole, so a reader sees both tables from the old execution
   or both from the new one. Killed at any point before it: nothing changed for readers.
4. Versions older than the one just replaced are deleted (best effort, and again at the next
   publish of the date); the replaced one stays, so that queries already running finish.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import fcntl
import json
import os
import shutil
import uuid
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq

from pipeline_code import storage, tables
from pipeline_code.errors import StepError, describe_os_error, one_line

STEP = "PostProc"
PUBLISHED_TABLES = tables.PUBLISHED_TABLES
AWS_TABLES = (*map(tables.versions_of, PUBLISHED_TABLES), tables.PUBLICATIONS)
"""What PostProc writes on AWS (the published tables are views over them)."""
PART_FILE = "part-0.parquet"
PUBLICATIONS_DIR = ".publications"
CURRENT = "current"
LOCKS_DIR = ".locks"
LEASE_SECONDS = 6 * 3600
"""The AWS lock's lease: longer than a job may run (DefinitionSettings.max_runtime_seconds)."""


@dataclass(frozen=True)
class Publication:
    """One table's validated rows for one execution date."""

    table: tables.Table
    rows: pa.Table
    execution_date: dt.date

    @property
    def partition(self) -> str:
        return partition_name(self.table, self.execution_date)


def partition_name(table: tables.Table, execution_date: dt.date) -> str:
    return f"{table.partition_key}={execution_date.isoformat()}"


def _nothing_published(what: str, err: OSError) -> StepError:
    return StepError(STEP, f"{what} failed, nothing was published: {describe_os_error(err)}")


# --- local: one writer ------------------------------------------------------------------------


@contextlib.contextmanager
def local_lock(lake: Path, execution_date: dt.date, execution_id: str) -> Iterator[None]:
    """Hold the date's lock for the block, or StepError naming who holds it."""
    locks = lake / LOCKS_DIR
    locks.mkdir(parents=True, exist_ok=True)
    path = locks / f"execution_date={execution_date.isoformat()}.lock"
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError as err:
            holder = path.read_text().strip() or "another run"
            raise StepError(
                STEP,
                f"{holder} is publishing execution_date={execution_date} right now ({path}); "
                f"execution {execution_id} published nothing: re-run the date after it ends",
            ) from err
        os.ftruncate(fd, 0)
        os.write(fd, f"execution {execution_id} (pid {os.getpid()})".encode())
        yield
    finally:
        os.close(fd)  # releases the lock; the file stays, so no two runs race to create it


# --- local: one switch ------------------------------------------------------------------------


def _store(lake: Path, execution_date: dt.date) -> Path:
    return lake / PUBLICATIONS_DIR / f"execution_date={execution_date.isoformat()}"


def _stable_target(table: tables.Table, execution_date: dt.date) -> Path:
    """Where a table's partition link points, relative to the table folder (relocatable lake)."""
    store = Path("..") / PUBLICATIONS_DIR / f"execution_date={execution_date.isoformat()}"
    return store / CURRENT / table.name


def publish_local(
    lake: Path, publications: Sequence[Publication], version: str, execution_id: str
) -> list[Path]:
    """Write a new version of both tables, then switch both with one rename."""
    execution_date = publications[0].execution_date
    store = _store(lake, execution_date)
    target = store / version
    try:
        for publication in publications:
            folder = target / publication.table.name
            folder.mkdir(parents=True, exist_ok=False)
            storage.write_arrow(publication.rows, str(folder / PART_FILE))
        (target / "publication.json").write_text(json.dumps({"execution_id": execution_id}))
        _adopt_partitions(lake, execution_date)
        switch(store, version)
    except OSError as err:
        shutil.rmtree(target, ignore_errors=True)
        raise _nothing_published(f"publishing execution_date={execution_date}", err) from err
    _remove_superseded(lake, execution_date, keep=version)
    return [lake / p.table.name / p.partition for p in publications]


def switch(store: Path, version: str) -> None:
    """Point `current` at the version: the single atomic step that publishes both tables."""
    temporary = store / f".{CURRENT}.{uuid.uuid4().hex[:8]}.tmp"
    temporary.symlink_to(version)
    try:
        os.replace(temporary, store / CURRENT)
    except OSError:
        temporary.unlink(missing_ok=True)
        raise


def _adopt_partitions(lake: Path, execution_date: dt.date) -> None:
    """Give every table the stable link, without changing what readers see."""
    links = {t: lake / t.name / partition_name(t, execution_date) for t in PUBLISHED_TABLES}
    pending = [
        table
        for table, link in links.items()
        if not _is_link_to(link, _stable_target(table, execution_date))
    ]
    if not pending:
        return
    store = _store(lake, execution_date)
    live = {table: link for table, link in links.items() if link.exists()}
    if not (store / CURRENT).is_symlink() and live:
        # The partitions readers see now become the current version, so adopting the stable
        # links (one table after the other) shows the same rows throughout.
        previous = f"adopted-{uuid.uuid4().hex[:8]}"
        for table in PUBLISHED_TABLES:
            folder = store / previous / table.name
            folder.mkdir(parents=True)
            for path in sorted(live[table].glob("*.parquet")) if table in live else []:
                shutil.copy2(path, folder / path.name)
        switch(store, previous)
    for table in pending:
        _replace_with_link(links[table], _stable_target(table, execution_date))


def _is_link_to(link: Path, target: Path) -> bool:
    return link.is_symlink() and Path(os.readlink(link)) == target


def _replace_with_link(link: Path, target: Path) -> None:
    link.parent.mkdir(parents=True, exist_ok=True)
    if link.is_dir() and not link.is_symlink():
        # A real folder (written by another tool) cannot be replaced atomically by a link; it was
        # copied into the adopted version first, so only the instant between the two renames
        # shows no partition.
        link.rename(link.parent / f".{link.name}.replaced-{uuid.uuid4().hex[:8]}")
    temporary = link.parent / f".{link.name}.{uuid.uuid4().hex[:8]}.tmp"
    temporary.symlink_to(target)
    os.replace(temporary, link)


def _remove_superseded(lake: Path, execution_date: dt.date, keep: str) -> None:
    """Older versions of the date, and what the older layout left. Best effort: the publication
    is complete already, and the next publish of the date tries again."""
    store = _store(lake, execution_date)
    leftovers = [entry for entry in store.iterdir() if entry.name not in (keep, CURRENT)]
    for table in PUBLISHED_TABLES:
        partition = partition_name(table, execution_date)
        leftovers.append(lake / table.name / ".versions" / partition)
        leftovers.extend((lake / table.name).glob(f".{partition}.*"))
    for entry in leftovers:
        if entry.is_symlink() or entry.is_file():
            entry.unlink(missing_ok=True)
        else:
            shutil.rmtree(entry, ignore_errors=True)


def _version_execution(table_folder: Path) -> set[str]:
    marker = table_folder.parent / "publication.json"
    if not marker.is_file():
        return set()
    return {str(json.loads(marker.read_text())["execution_id"])}


def live_execution_ids(lake: Path, execution_date: dt.date) -> dict[str, str | None]:
    """Which execution each table's live partition of the date is from (None: no partition).
    Read from the rows, so the answer is true whatever the layout or a failure left; a partition
    without rows (no earlier forecast to score) is named by its version's publication.json."""
    found: dict[str, str | None] = {}
    for table in PUBLISHED_TABLES:
        files = sorted(
            (lake / table.name / partition_name(table, execution_date)).glob("*.parquet")
        )
        ids: set[str] = set()
        for path in files:
            column = pq.read_table(path, columns=["execution_id"]).column("execution_id")
            ids.update(str(value) for value in column.unique().to_pylist())
        if files and not ids:  # a partition with no rows (nothing to score): its version says
            ids.update(_version_execution(files[0].resolve().parent))
        found[table.name] = ", ".join(sorted(ids)) if ids else None
    return found


# --- reading what was published (both places) ----------------------------------------------


def published_dates(data_root: str) -> list[dt.date]:
    """Every execution date readers see a publication of: locally the dates whose store has a
    `current` version, on AWS the dates with a `publications` row."""
    aws = storage.is_s3(data_root)
    folder = storage.join(data_root, tables.PUBLICATIONS.name if aws else PUBLICATIONS_DIR)
    prefix = f"{tables.PUBLICATIONS.partition_key}="
    dates = []
    for name in storage.list_names(folder):
        if name.startswith(prefix):
            with contextlib.suppress(ValueError):
                dates.append(dt.date.fromisoformat(name[len(prefix) :]))
    if aws:
        return sorted(dates)
    lake = Path(data_root)
    return sorted(day for day in dates if (_store(lake, day) / CURRENT).is_symlink())


def published_location(data_root: str, table: tables.Table, execution_date: dt.date) -> str | None:
    """The folder of the rows readers see for the date (None: never published): locally the
    store's current version, on AWS the version the date's `publications` row names."""
    if not storage.is_s3(data_root):
        folder = _store(Path(data_root), execution_date) / CURRENT / table.name
        return str(folder) if folder.is_dir() else None
    pointer = pointer_uri(data_root, execution_date)
    if not storage.exists(pointer):
        return None
    rows = storage.read_table(pointer)
    if rows.empty:
        return None
    version = str(rows[tables.VERSION_KEY].iloc[0])
    return version_location(data_root, table, execution_date, version)


def published_execution(data_root: str, execution_date: dt.date) -> str | None:
    """The execution whose rows readers see for the date (None: never published)."""
    if not storage.is_s3(data_root):
        marker = _store(Path(data_root), execution_date) / CURRENT / "publication.json"
        return str(json.loads(marker.read_text())["execution_id"]) if marker.is_file() else None
    pointer = pointer_uri(data_root, execution_date)
    if not storage.exists(pointer):
        return None
    rows = storage.read_table(pointer)
    return None if rows.empty else str(rows["execution_id"].iloc[0])


# --- AWS: the lock, the stored versions, the one pointer -------------------------------------


def _split(uri: str) -> tuple[str, str]:
    bucket, _, key = uri[len("s3://") :].partition("/")
    return bucket, key


def lock_uri(data_root: str, execution_date: dt.date) -> str:
    return storage.join(data_root, "runs", "_locks", f"execution_date={execution_date}.json")


def _error_code(err: Exception) -> str:
    return str(getattr(err, "response", {}).get("Error", {}).get("Code", ""))


@contextlib.contextmanager
def s3_lock(s3: Any, uri: str, execution_id: str, now: dt.datetime | None = None) -> Iterator[None]:
    """Hold the S3 lock object for the block, or StepError naming its holder."""
    bucket, key = _split(uri)
    now = now or dt.datetime.now(dt.UTC)
    body = json.dumps(
        {
            "execution_id": execution_id,
            "expires_at": (now + dt.timedelta(seconds=LEASE_SECONDS)).isoformat(),
        }
    ).encode()
    try:
        etag = s3.put_object(Bucket=bucket, Key=key, Body=body, IfNoneMatch="*")["ETag"]
    except s3.exceptions.ClientError as err:
        if _error_code(err) not in ("PreconditionFailed", "ConditionalRequestConflict"):
            raise
        etag = _take_over_expired(s3, bucket, key, body, execution_id, now)
    try:
        yield
    finally:
        _release(s3, bucket, key, etag)


def _release(s3: Any, bucket: str, key: str, etag: str) -> None:
    """Delete the lock if it is still ours (If-Match: another writer may have taken it over after
    our lease expired). Where conditional deletes are not available, delete it plainly: a lock
    left behind would block the date for a whole lease."""
    try:
        s3.delete_object(Bucket=bucket, Key=key, IfMatch=etag)
    except s3.exceptions.ClientError as err:
        if _error_code(err) in ("PreconditionFailed", "NoSuchKey"):
            return
        with contextlib.suppress(s3.exceptions.ClientError):
            s3.delete_object(Bucket=bucket, Key=key)


def _take_over_expired(
    s3: Any, bucket: str, key: str, body: bytes, execution_id: str, now: dt.datetime
) -> str:
    held = s3.get_object(Bucket=bucket, Key=key)
    holder = json.loads(held["Body"].read())
    expires = dt.datetime.fromisoformat(holder["expires_at"])
    refused = StepError(
        STEP,
        f"execution {holder.get('execution_id')} holds the publish lock s3://{bucket}/{key} "
        f"until {holder['expires_at']}; execution {execution_id} published nothing",
    )
    if expires > now:
        raise refused
    try:
        return s3.put_object(Bucket=bucket, Key=key, Body=body, IfMatch=held["ETag"])["ETag"]
    except s3.exceptions.ClientError as err:
        if _error_code(err) in ("PreconditionFailed", "ConditionalRequestConflict"):
            raise refused from err
        raise


class GlueCatalog:
    """The Glue side of a publication: the stored tables' partitions of one date."""

    def __init__(self, glue: Any, database: str, execution_date: dt.date) -> None:
        self.glue = glue
        self.database = database
        self.date = execution_date.isoformat()

    def require(self, table: tables.Table) -> dict[str, Any]:
        """The table's definition, or StepError: a missing table fails before anything is
        written."""
        try:
            return self.glue.get_table(DatabaseName=self.database, Name=table.name)["Table"]
        except self.glue.exceptions.EntityNotFoundException as err:
            raise StepError(
                STEP,
                f"Glue table {self.database}.{table.name} does not exist "
                "(is the data stack deployed?)",
            ) from err

    def add_partition(self, table: tables.Table, values: list[str], location: str) -> None:
        """Register a partition (kept as it is when it exists: its location never changes)."""
        descriptor = {**self.require(table)["StorageDescriptor"], "Location": location}
        with contextlib.suppress(self.glue.exceptions.AlreadyExistsException):
            self.glue.create_partition(
                DatabaseName=self.database,
                TableName=table.name,
                PartitionInput={"Values": values, "StorageDescriptor": descriptor},
            )

    def versions(self, table: tables.Table) -> set[str]:
        """The versions of the date registered in a stored-versions table."""
        pages = self.glue.get_paginator("get_partitions").paginate(
            DatabaseName=self.database,
            TableName=table.name,
            Expression=f"{table.partition_key} = '{self.date}'",
        )
        return {partition["Values"][1] for page in pages for partition in page["Partitions"]}

    def drop_versions(self, table: tables.Table, versions: set[str]) -> None:
        for chunk in _chunks(sorted(versions), 25):  # BatchDeletePartition takes 25 at most
            self.glue.batch_delete_partition(
                DatabaseName=self.database,
                TableName=table.name,
                PartitionsToDelete=[{"Values": [self.date, version]} for version in chunk],
            )


def _chunks(items: list[str], size: int) -> Iterator[list[str]]:
    for start in range(0, len(items), size):
        yield items[start : start + size]


def version_location(
    data_root: str, table: tables.Table, execution_date: dt.date, version: str
) -> str:
    """Where one version of a published table's date lives (Hive-style, one folder per key)."""
    stored = tables.versions_of(table)
    return (
        storage.join(
            data_root,
            stored.name,
            partition_name(stored, execution_date),
            f"{tables.VERSION_KEY}={version}",
        )
        + "/"
    )


def pointer_partition(data_root: str, execution_date: dt.date) -> str:
    """The date's partition of `publications`."""
    table = tables.PUBLICATIONS
    return storage.join(data_root, table.name, partition_name(table, execution_date)) + "/"


def pointer_uri(data_root: str, execution_date: dt.date) -> str:
    """The one object whose replacement publishes both tables: the date's `publications` row."""
    return pointer_partition(data_root, execution_date) + "publication.parquet"


def read_pointer(s3: Any, uri: str) -> dict[str, Any] | None:
    """The date's `publications` row, or None when the date was never published."""
    bucket, key = _split(uri)
    try:
        body = s3.get_object(Bucket=bucket, Key=key)["Body"].read()
    except s3.exceptions.NoSuchKey:
        return None
    rows = pq.read_table(pa.BufferReader(body)).to_pylist()
    return rows[0] if rows else None


def write_pointer(s3: Any, uri: str, version: str, execution_id: str) -> None:
    """Replace the date's `publications` row with one PutObject: S3 replaces an object whole,
    so every reader sees the old row or the new one."""
    row = {
        tables.VERSION_KEY: version,
        "execution_id": execution_id,
        "published_at": dt.datetime.now(dt.UTC).replace(tzinfo=None),
    }
    buffer = pa.BufferOutputStream()
    pq.write_table(
        pa.Table.from_pylist([row], schema=tables.arrow_schema(tables.PUBLICATIONS)), buffer
    )
    bucket, key = _split(uri)
    s3.put_object(Bucket=bucket, Key=key, Body=buffer.getvalue().to_pybytes())


def switch_aws(s3: Any, uri: str, version: str, execution_id: str) -> None:
    """Point the date at `version`, or raise StepError saying what readers see now. A failed
    request may still have been applied, so the pointer is read back before saying which."""
    try:
        write_pointer(s3, uri, version, execution_id)
    except Exception as err:
        try:
            live = read_pointer(s3, uri)
        except Exception:
            live = {"execution_id": "unknown (the publications row could not be read back)"}
        if live and live.get(tables.VERSION_KEY) == version:
            return
        shown = f"execution {live['execution_id']}" if live else "nothing"
        raise StepError(
            STEP,
            f"writing {uri} failed, nothing was published (readers still see {shown} for "
            f"this date, in both tables): {one_line(err)}",
        ) from err
