"""ClickHouse's own ``BACKUP`` / ``RESTORE`` of whole databases to S3, one backup per location.

The server writes and reads the objects itself (``S3(url, key, secret)``); Python only lists and
deletes them (boto3) and waits for the operation in ``system.backups``. ClickHouse masks the
secret of ``S3(...)`` in ``system.query_log``, ``system.backups`` and its logs (verified on the
embedded 26.9 server, tests/ops/test_backup.py), so the keys go inline.
"""

from __future__ import annotations

import time
import urllib.parse
from dataclasses import dataclass, field
from typing import Any

from platform_assets.core.sql import load

DATABASES = ("raw", "marts")  # raw: clickhouse_ddl/001_databases.sql; marts: the dbt marts
BACKUP_FILE = ".backup"  # ClickHouse writes it last: a prefix without it holds no usable backup
# Query-level setting of every BACKUP/RESTORE (sent with the query): ClickHouse retries S3 requests 1000 times (up to
# 5 s apart), which holds a dead endpoint for over an hour; 5 fail in seconds and the step's
# RetryPolicy retries the whole operation instead.
S3_RETRY_ATTEMPTS = 5
QUERY_SETTINGS = {"backup_restore_s3_retry_attempts": S3_RETRY_ATTEMPTS}
POLL_SECONDS = 1.0
RUNNING = ("CREATING_BACKUP", "RESTORING")


class BackupError(RuntimeError):
    """A BACKUP or RESTORE failed or was refused; the message names the location and the cause."""


def sql_str(value: str) -> str:
    """A ClickHouse string literal (S3() arguments cannot be query parameters)."""
    return "'" + value.replace("\\", "\\\\").replace("'", "\\'") + "'"


@dataclass(frozen=True)
class BackupLocation:
    """Where one backup lives: ``key`` (ends in /) below ``bucket``, reached by ClickHouse at ``endpoint``."""

    endpoint: str
    bucket: str
    key: str
    access_key: str | None = field(default=None, repr=False)
    secret_key: str | None = field(default=None, repr=False)

    @property
    def url(self) -> str:
        return f"{self.endpoint.rstrip('/')}/{self.bucket}/{self.key}"  # path-style: MinIO, moto, AWS

    @property
    def uri(self) -> str:
        return f"s3://{self.bucket}/{self.key}"

    def s3_function(self) -> str:
        if self.access_key and self.secret_key:
            return f"S3({sql_str(self.url)}, {sql_str(self.access_key)}, {sql_str(self.secret_key)})"
        return f"S3({sql_str(self.url)})"  # the server's own credentials (IAM role, config)

    def describe(self) -> str:
        return f"{self.uri} (ClickHouse's S3 endpoint {self.endpoint})"


@dataclass(frozen=True)
class TableStats:
    database: str
    name: str
    engine: str
    rows: int | None  # None for views
    bytes: int | None

    @property
    def qualified(self) -> str:
        return f"{self.database}.{self.name}"


@dataclass(frozen=True)
class Operation:
    """A row of system.backups once the operation ended."""

    id: str
    status: str
    error: str
    num_files: int
    total_size: int
    num_entries: int
    uncompressed_size: int
    compressed_size: int
    files_read: int
    bytes_read: int
    seconds: float


@dataclass(frozen=True)
class BackupResult:
    location: BackupLocation
    databases: list[str]
    tables: list[TableStats]
    operation: Operation
    replaced_objects: int


@dataclass(frozen=True)
class RestoreResult:
    location: BackupLocation
    databases: list[str]
    tables: list[str]
    operation: Operation


# --- the bucket (boto3) ----------------------------------------------------------------------


def list_keys(store: Any, location: BackupLocation) -> list[str]:
    keys: list[str] = []
    for page in store.get_paginator("list_objects_v2").paginate(Bucket=location.bucket, Prefix=location.key):
        keys += [o["Key"] for o in page.get("Contents", [])]
    return sorted(keys)


def delete_prefix(store: Any, location: BackupLocation) -> int:
    """Deletes every object below the location; ``.backup`` first, so a half-deleted prefix never
    reads as a backup. Returns how many objects there were."""
    keys = list_keys(store, location)
    first = [k for k in keys if k.endswith("/" + BACKUP_FILE)]
    for batch in (first, [k for k in keys if k not in first]):
        for start in range(0, len(batch), 1000):  # DeleteObjects takes at most 1000 keys
            objects = [{"Key": k} for k in batch[start : start + 1000]]
            store.delete_objects(Bucket=location.bucket, Delete={"Objects": objects, "Quiet": True})
    return len(keys)


def backup_contents(keys: list[str], location: BackupLocation) -> tuple[list[str], list[str]]:
    """(databases, ``db.table`` names) a backup holds, from its ``metadata/`` objects
    (``metadata/<db>.sql``, ``metadata/<db>/<table>.sql``; names escaped as ClickHouse does)."""
    databases, tables = [], []
    for key in keys:
        rest = key[len(location.key) :]
        if not rest.startswith("metadata/") or not rest.endswith(".sql"):
            continue
        parts = [urllib.parse.unquote(p) for p in rest[len("metadata/") : -len(".sql")].split("/")]
        if len(parts) == 1:
            databases.append(parts[0])
        elif len(parts) == 2:
            tables.append(f"{parts[0]}.{parts[1]}")
    return sorted(databases), sorted(tables)


# --- the server (clickhouse-connect) ---------------------------------------------------------


def present_databases(client: Any, wanted: tuple[str, ...]) -> list[str]:
    rows = client.query(load(__file__, "backup_databases.sql"), parameters={"databases": list(wanted)}).result_rows
    return [r[0] for r in rows]


def table_stats(client: Any, databases: list[str]) -> list[TableStats]:
    rows = client.query(load(__file__, "backup_tables.sql"), parameters={"databases": databases}).result_rows
    return [TableStats(d, n, e, None if r is None else int(r), None if b is None else int(b)) for d, n, e, r, b in rows]


def ensure_idle(client: Any, location: BackupLocation) -> None:
    running = client.query(load(__file__, "backup_running.sql"), parameters={"url": location.url}).result_rows
    if running:
        ops = ", ".join(f"{i} ({s})" for i, s in running)
        raise BackupError(f"{location.uri}: the server is still running {ops} there; wait for it or KILL it first")


def first_line(error: str) -> str:
    return error.split(", Stack trace", 1)[0].strip().splitlines()[0] if error.strip() else ""


def operation(client: Any, op_id: str) -> Operation | None:
    rows = client.query(load(__file__, "backup_status.sql"), parameters={"id": op_id}).result_rows
    if not rows:
        return None
    r = rows[0]
    seconds = (r[12] - r[11]).total_seconds() if r[12] and r[11] and r[12] >= r[11] else 0.0
    files, size, entries, uncompressed, compressed, files_read, bytes_read = (int(v or 0) for v in r[4:11])
    return Operation(r[0], r[2], r[3], files, size, entries, uncompressed, compressed, files_read, bytes_read, seconds)


def run_operation(client: Any, statement: str, done: str, what: str, wait_s: float) -> Operation:
    """Starts ``statement`` (BACKUP/RESTORE ... ASYNC) and waits for its end in system.backups;
    raises BackupError naming ``what`` unless it ends with status ``done``."""
    try:
        op_id, status = client.query(statement, settings=QUERY_SETTINGS).result_rows[0]
    except Exception as exc:  # the server's reason, with what was asked
        raise BackupError(f"{what} failed: {first_line(str(exc))}") from exc
    deadline = time.monotonic() + wait_s
    op = operation(client, op_id)
    while op is not None and op.status in RUNNING:
        if time.monotonic() > deadline:
            raise BackupError(f"{what}: {op_id} still {op.status} after {wait_s:.0f} s")
        time.sleep(POLL_SECONDS)
        op = operation(client, op_id)
    if op is None:
        raise BackupError(f"{what}: {op_id} ({status}) is gone from system.backups (server restarted?)")
    if op.status != done:
        raise BackupError(f"{what} failed ({op.status}, {op_id}): {first_line(op.error)}")
    return op


def backup_statement(databases: list[str], location: BackupLocation) -> str:
    targets = ", ".join(f"DATABASE `{d}`" for d in databases)
    return f"BACKUP {targets} TO {location.s3_function()} ASYNC"


def backup_databases(
    client: Any, store: Any, location: BackupLocation, wanted: tuple[str, ...] = DATABASES, wait_s: float = 21600
) -> BackupResult:
    """Replaces whatever is at ``location`` with one backup of the ``wanted`` databases that exist:
    deletes the prefix, then BACKUP writes it anew (ClickHouse refuses to write over a backup)."""
    databases = present_databases(client, wanted)
    if not databases:
        raise BackupError(f"none of the databases {', '.join(wanted)} exists on the server: nothing to back up")
    ensure_idle(client, location)
    tables = table_stats(client, databases)
    replaced = delete_prefix(store, location)
    what = f"BACKUP of {', '.join(databases)} ({len(tables)} tables) to {location.describe()}"
    op = run_operation(client, backup_statement(databases, location), "BACKUP_CREATED", what, wait_s)
    return BackupResult(location, databases, tables, op, replaced)


def restore_statement(databases: list[str], location: BackupLocation, allow_non_empty: bool) -> str:
    targets = ", ".join(f"DATABASE `{d}`" for d in databases)
    # allow_non_empty_tables: only when the operator asked; the backup's parts are then added.
    settings = " SETTINGS allow_non_empty_tables = 1" if allow_non_empty else ""
    return f"RESTORE {targets} FROM {location.s3_function()}{settings} ASYNC"  # SETTINGS after ASYNC: query-level


def non_empty_tables(client: Any, tables: list[str]) -> dict[str, int]:
    """``db.table`` -> rows of the given tables that exist on the server and hold rows."""
    databases = sorted({t.split(".", 1)[0] for t in tables})
    stats = table_stats(client, databases) if databases else []
    return {s.qualified: s.rows for s in stats if s.qualified in tables and s.rows}


def restore_backup(
    client: Any, store: Any, location: BackupLocation, allow_non_empty: bool = False, wait_s: float = 21600
) -> RestoreResult:
    """RESTOREs every database of the backup at ``location`` into the server. Refuses, naming the
    tables, when any of them exists there with rows, unless ``allow_non_empty`` (then the backup's
    parts are added to the rows already there)."""
    keys = list_keys(store, location)
    if location.key + BACKUP_FILE not in keys:
        raise BackupError(f"no backup at {location.uri} ({len(keys)} objects, no {BACKUP_FILE})")
    databases, tables = backup_contents(keys, location)
    occupied = non_empty_tables(client, tables)
    if occupied and not allow_non_empty:
        named = ", ".join(f"{t} ({n} rows)" for t, n in sorted(occupied.items()))
        raise BackupError(
            f"refusing to restore {location.uri} over non-empty table(s) {named}: empty or drop them, "
            "or allow restoring over them (the backup's rows are then added to theirs)"
        )
    ensure_idle(client, location)
    what = f"RESTORE of {', '.join(databases)} from {location.describe()}"
    op = run_operation(client, restore_statement(databases, location, allow_non_empty), "RESTORED", what, wait_s)
    return RestoreResult(location, databases, tables, op)
