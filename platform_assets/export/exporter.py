"""Export one table's UTC day: ClickHouse writes the Parquet, Python writes the manifest.

Steps: count the day's rows (to pick the number of objects), delete the day's folder
(manifest first), run the INSERT INTO FUNCTION, read each object back once (size, SHA-256,
rows, schema), cross-check against what ClickHouse says it wrote, write the manifest last.
"""

from __future__ import annotations

import math
import re
import time
import uuid
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from string import Template

from clickhouse_connect.driver.client import Client

from platform_assets.export.manifest import Column, Manifest, ObjectEntry, parquet_facts
from platform_assets.export.tables import ExportTable
from platform_assets.export.target import MANIFEST_NAME, Target

EXPORT_SQL = Template((Path(__file__).parent / "sql" / "export_day.sql").read_text())
PART_DIGITS = 5
TTL_DAYS = re.compile(r"\bTTL\b.*?toIntervalDay\((\d+)\)", re.DOTALL)
# Distributed('cluster', 'db', 'table', key): the database and table (quoted or not).
DISTRIBUTED_ARGS = re.compile(r"Distributed\(\s*'[^']*'\s*,\s*'?(\w+)'?\s*,\s*'?(\w+)'?")


class ExportError(RuntimeError):
    """The objects on the target do not hold what ClickHouse says it wrote."""


@dataclass(frozen=True)
class ExportResult:
    manifest: Manifest
    manifest_key: str
    seconds: float
    deleted_before: int  # objects of an earlier export of the day, removed first


def part_name(index: int) -> str:
    return f"part-{index:0{PART_DIGITS}d}.parquet"


def storage_table(client: Client, database: str, name: str) -> tuple[str, str]:
    """The table that stores ``database.name``'s rows: itself, or for a ``Distributed`` table (a
    cluster, docs/scaling.md) the local table it reads on every shard, whose sort key and TTL are
    the data's (the Distributed table has neither)."""
    found = client.query(
        "SELECT engine, engine_full FROM system.tables WHERE database = {db:String} AND name = {name:String}",
        parameters={"db": database, "name": name},
    ).result_rows
    if not found or found[0][0] != "Distributed":
        return database, name
    args = DISTRIBUTED_ARGS.match(str(found[0][1]))
    if not args:
        raise ExportError(f"{database}.{name}: cannot read the local table of {found[0][1]!r}")
    return args.group(1), args.group(2)


def source_columns(client: Client, table: ExportTable) -> tuple[list[tuple[str, str]], str]:
    """(name, type) of the columns SELECT * returns, and the sort key of the table storing them."""
    db, name = storage_table(client, table.database, table.name)
    found = client.query(
        "SELECT sorting_key FROM system.tables WHERE database = {db:String} AND name = {name:String}",
        parameters={"db": db, "name": name},
    ).result_rows
    if not found:
        upstream = table.upstream_key.to_user_string()
        raise ExportError(f"{table.database}.{table.name} does not exist: materialize {upstream} first")
    columns = client.query(
        "SELECT name, type FROM system.columns WHERE database = {db:String} AND table = {name:String} "
        "AND default_kind NOT IN ('MATERIALIZED', 'ALIAS', 'EPHEMERAL') ORDER BY position",
        parameters={"db": table.database, "name": table.name},
    ).result_rows
    return [(str(n), str(t)) for n, t in columns], str(found[0][0])


def ttl_days(client: Client, table: ExportTable) -> int | None:
    """The table's row TTL in days, from its definition (raw tables: 90; on a cluster, its local
    table's), or None."""
    db, name = storage_table(client, table.database, table.name)
    query = client.query(
        "SELECT create_table_query FROM system.tables WHERE database = {db:String} AND name = {name:String}",
        parameters={"db": db, "name": name},
    ).result_rows
    found = TTL_DAYS.search(str(query[0][0])) if query else None
    return int(found.group(1)) if found else None


def guard_expired(client: Client, target: Target, table: ExportTable, day: date, day_prefix: str) -> None:
    """Refuse to replace an existing export of a day the TTL has begun to drop: the re-run
    would write what is left (often nothing) over the only complete copy."""
    ttl = ttl_days(client, table)
    if ttl is None or day > datetime.now(UTC).date() - timedelta(days=ttl):
        return
    if any(o.key.endswith(MANIFEST_NAME) for o in target.list_objects(day_prefix)):
        raise ExportError(
            f"{table.database}.{table.name} keeps {ttl} days: {day} is past it and its rows are being dropped; "
            f"the export at {target.location(day_prefix)} is kept (delete it by hand to re-export)"
        )


def count_day(client: Client, table: ExportTable, day: date) -> int:
    sql = f"SELECT count() FROM {table.qualified} WHERE {table.day_expr} = toDate('{day.isoformat()}')"
    return int(client.query(sql).result_rows[0][0])


def export_sql(target: Target, table: ExportTable, day: date, day_prefix: str, parts: int, sort_key: str) -> str:
    if parts == 1:
        sink, partition_by = target.table_function(day_prefix + part_name(0)), ""
    else:
        # {_partition_id} becomes the PARTITION BY value: the zero-padded part number.
        sink = target.table_function(day_prefix + "part-{_partition_id}.parquet")
        key = sort_key or "*"
        partition_by = f"PARTITION BY leftPad(toString(cityHash64({key}) % {parts}), {PART_DIGITS}, '0')"
    return EXPORT_SQL.substitute(
        sink=sink,
        partition_by=partition_by,
        table=table.qualified,
        day_expr=table.day_expr,
        day=day.isoformat(),
        order_by=sort_key or "tuple()",
    )


def export_day(
    client: Client, target: Target, table: ExportTable, day: date, day_prefix: str, rows_per_object: int
) -> ExportResult:
    started = time.monotonic()
    columns, sort_key = source_columns(client, table)
    guard_expired(client, target, table, day, day_prefix)
    parts = max(1, math.ceil(count_day(client, table, day) / rows_per_object))
    deleted = target.delete_prefix(day_prefix)
    query_id = f"export-{uuid.uuid4()}"
    summary = client.command(
        export_sql(target, table, day, day_prefix, parts, sort_key),
        settings={
            "query_id": query_id,
            "s3_truncate_on_insert": 1,  # the names are deterministic: overwrite, never fail on "exists"
            "engine_file_truncate_on_insert": 1,  # the same for file()
            "max_partitions_per_insert_block": max(100, parts),  # one partition per object
        },
    )
    written_rows = getattr(summary, "written_rows", None)
    entries = []
    for stored in target.list_objects(day_prefix):
        name = stored.key[len(day_prefix) :]
        if name == MANIFEST_NAME:
            continue
        facts = parquet_facts(target.read(stored.key), decode=False)  # the check decodes every row
        names = [c for c, _ in facts.arrow_schema]
        if names != [c for c, _ in columns]:
            raise ExportError(f"{stored.key}: Parquet columns {names} differ from {table.database}.{table.name}")
        entries.append((name, facts))
    if not entries:
        raise ExportError(f"ClickHouse wrote no object below {target.location(day_prefix)} (query_id {query_id})")
    rows = sum(f.rows for _, f in entries)
    if written_rows is not None and int(written_rows) != rows:
        raise ExportError(f"ClickHouse wrote {written_rows} rows but the objects hold {rows} (query_id {query_id})")
    arrow_types = dict(entries[0][1].arrow_schema)
    manifest = Manifest(
        table=f"{table.database}.{table.name}",
        day=day.isoformat(),
        target=target.kind,
        location=target.location(day_prefix),
        rows=rows,
        bytes=sum(f.bytes for _, f in entries),
        objects=[ObjectEntry(name=n, bytes=f.bytes, rows=f.rows, sha256=f.sha256) for n, f in entries],
        schema=[Column(name=n, clickhouse_type=t, arrow_type=arrow_types[n]) for n, t in columns],
        query_id=query_id,
        created_at=datetime.now(UTC).isoformat(timespec="seconds"),
    )
    manifest_key = day_prefix + MANIFEST_NAME
    target.write(manifest_key, manifest.to_json())
    return ExportResult(manifest, manifest_key, round(time.monotonic() - started, 3), deleted)
