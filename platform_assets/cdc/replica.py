"""The ClickHouse side of CDC: the MaterializedPostgreSQL database and reads of its tables."""

from __future__ import annotations

import time
from pathlib import Path

from clickhouse_connect.driver.client import Client

CREATE_SQL = Path(__file__).parent / "sql" / "clickhouse" / "create_replica_database.sql"
# Columns MaterializedPostgreSQL adds to every replica table.
SERVICE_COLUMNS = ("_sign", "_version")


def quote(value: str) -> str:
    return "'" + value.replace("\\", "\\\\").replace("'", "\\'") + "'"


def ident(name: str) -> str:
    return "`" + name.replace("`", "``") + "`"


def tables_list(tables: list[str], columns: dict[str, list[str] | None]) -> str:
    """``materialized_postgresql_tables_list``: ``users(user_id,country,...),orders,...``; a table
    with a column list replicates only those columns (the publication has the same list)."""
    return ",".join(f"{t}({','.join(columns[t] or [])})" if columns.get(t) else t for t in tables)


def create_statement(
    database: str,
    host_port: str,
    source_database: str,
    user: str,
    password: str,
    tables: list[str],
    columns: dict[str, list[str] | None] | None = None,
    database_uuid: str | None = None,
) -> str:
    """The replica's ``ATTACH DATABASE ... UUID ... ENGINE = MaterializedPostgreSQL`` (see the
    SQL file for why ATTACH, not CREATE)."""
    import uuid

    from platform_assets.core.sql import split_statements

    (statement,) = split_statements(CREATE_SQL.read_text())
    return statement.format(
        database=ident(database),
        uuid=quote(database_uuid or str(uuid.uuid4())),
        host_port=quote(host_port),
        source_database=quote(source_database),
        user=quote(user),
        password=quote(password),
        tables=quote(tables_list(tables, columns or {})),
    )


def database_exists(client: Client, database: str) -> bool:
    rows = client.query("SELECT engine FROM system.databases WHERE name = {db:String}", parameters={"db": database})
    return bool(rows.result_rows)


def replica_tables(client: Client, database: str) -> list[str]:
    return [
        r[0]
        for r in client.query(
            "SELECT name FROM system.tables WHERE database = {db:String} ORDER BY name",
            parameters={"db": database},
        ).result_rows
    ]


def replica_columns(client: Client, database: str, tables: list[str]) -> dict[str, list[str]]:
    rows = client.query(
        "SELECT table, name FROM system.columns WHERE database = {db:String} AND table IN {tables:Array(String)} "
        "ORDER BY table, position",
        parameters={"db": database, "tables": tables},
    ).result_rows
    out: dict[str, list[str]] = {t: [] for t in tables}
    for table, column in rows:
        if column not in SERVICE_COLUMNS:
            out[table].append(column)
    return out


def live_count(client: Client, database: str, table: str) -> int:
    """Rows as the source has them: latest version of each key (FINAL), deleted ones excluded."""
    return int(
        client.query(f"SELECT count() FROM {ident(database)}.{ident(table)} FINAL WHERE _sign = 1").result_rows[0][0]
    )


def live_counts(client: Client, database: str, tables: list[str]) -> dict[str, int | None]:
    present = set(replica_tables(client, database))
    return {t: live_count(client, database, t) if t in present else None for t in tables}


def heartbeat_seen_ms(client: Client, database: str) -> int | None:
    """Newest heartbeat visible in ClickHouse, as epoch milliseconds, or None."""
    if "cdc_heartbeat" not in replica_tables(client, database):
        return None
    rows = client.query(
        f"SELECT toUnixTimestamp64Milli(max(beat_at)), count() FROM {ident(database)}.cdc_heartbeat FINAL "
        "WHERE _sign = 1"
    ).result_rows
    value, count = rows[0]
    return int(value) if count else None


def wait_for_heartbeat(client: Client, database: str, beat_ms: int, timeout: float, poll_s: float = 0.05) -> float:
    """Waits until the replica shows a heartbeat at or after ``beat_ms``; returns the seconds it took.
    Raises TimeoutError naming the database when it does not arrive within ``timeout``."""
    started = time.monotonic()
    while (heartbeat_seen_ms(client, database) or 0) < beat_ms:
        if time.monotonic() - started > timeout:
            raise TimeoutError(
                f"replica {database}: a heartbeat written on the source did not arrive in {timeout:.0f}s"
            )
        time.sleep(poll_s)
    return round(time.monotonic() - started, 3)
