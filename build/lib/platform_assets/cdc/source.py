"""The Postgres side of CDC: app schema migrations, replication checks and setup, slot figures."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path
from typing import Any, LiteralString, cast

import psycopg
from psycopg import sql

from platform_assets.core.sql import load, split_statements

MIGRATIONS_DIR = Path(__file__).parent / "sql" / "postgres"  # every *.sql here is a migration
HEARTBEAT_TABLE = "cdc_heartbeat"


def _query(name: str) -> LiteralString:
    """``sql/postgres_queries/<name>.sql`` (beside the migrations, not among them). A file of the
    package, not user input, hence typed as a literal for psycopg; values stay ``%s`` parameters."""
    return cast(LiteralString, load(__file__, f"postgres_queries/{name}.sql"))


class SourceError(RuntimeError):
    """The source database cannot be replicated as configured; the message names the fix."""


def migrate(conn: psycopg.Connection) -> list[str]:
    """Apply ``sql/postgres/NNN_*.sql`` once each, in order; returns the files applied now."""
    conn.execute(
        "CREATE TABLE IF NOT EXISTS platform_source_migrations "
        "(filename text PRIMARY KEY, checksum text NOT NULL, applied_at timestamptz NOT NULL DEFAULT now())"
    )
    applied: dict[str, str] = dict(conn.execute("SELECT filename, checksum FROM platform_source_migrations").fetchall())
    done = []
    for path in sorted(MIGRATIONS_DIR.glob("*.sql")):
        checksum = hashlib.sha256(path.read_bytes()).hexdigest()
        if path.name in applied:
            if applied[path.name] != checksum:
                raise SourceError(f"{path.name} was edited after it was applied; add a new migration instead")
            continue
        with conn.transaction():
            for statement in split_statements(path.read_text()):
                conn.execute(statement)  # type: ignore[call-overload]
            conn.execute(
                "INSERT INTO platform_source_migrations (filename, checksum) VALUES (%s, %s)",
                (path.name, checksum),
            )
        done.append(path.name)
    return done


def check_wal_level(conn: psycopg.Connection) -> None:
    level = conn.execute("SHOW wal_level").fetchone()[0]  # type: ignore[index]
    if level != "logical":
        raise SourceError(
            f"Postgres wal_level is '{level}', CDC needs 'logical'. Fix: run "
            "`ALTER SYSTEM SET wal_level = logical;` as a superuser (or set it in postgresql.conf) "
            "and restart Postgres; also make sure max_replication_slots and max_wal_senders are at least 4."
        )


def check_tables(conn: psycopg.Connection, tables: list[str]) -> dict[str, list[str]]:
    """Every table must exist and have a primary key or REPLICA IDENTITY FULL; returns PK columns."""
    rows = conn.execute(_query("table_keys"), (tables,)).fetchall()
    found = {name: (ident, list(pk)) for name, ident, pk in rows}
    missing = [t for t in tables if t not in found]
    if missing:
        raise SourceError(f"table(s) {', '.join(missing)} do not exist in the source database (schema public)")
    no_key = [t for t in tables if not found[t][1] and found[t][0] != "f"]
    if no_key:
        fixes = "; ".join(
            f"ALTER TABLE {t} ADD PRIMARY KEY (...) or ALTER TABLE {t} REPLICA IDENTITY FULL" for t in no_key
        )
        raise SourceError(
            f"table(s) {', '.join(no_key)} have no primary key and no replica identity: updates and deletes "
            f"could not be replicated. Fix: {fixes}"
        )
    return {t: found[t][1] for t in tables}


def ensure_replication_role(conn: psycopg.Connection, role: str, password: str, tables: list[str]) -> list[str]:
    """The role ClickHouse connects as: LOGIN REPLICATION, no superuser, SELECT on the tables.

    MaterializedPostgreSQL runs ``ALTER PUBLICATION`` itself (at create, ATTACH TABLE and
    DETACH PERMANENTLY), which Postgres allows only to the owner of each table (measured:
    "must be owner of table users"). So the role is also made a member of the roles that own
    the replicated tables, and of no other. Returns those owner roles.
    """
    exists = conn.execute("SELECT 1 FROM pg_roles WHERE rolname = %s", (role,)).fetchone()
    verb = "ALTER" if exists else "CREATE"
    conn.execute(
        sql.SQL("{} ROLE {} WITH LOGIN REPLICATION NOSUPERUSER NOCREATEDB NOCREATEROLE PASSWORD {}").format(
            sql.SQL(verb), sql.Identifier(role), sql.Literal(password)
        )
    )
    dbname = conn.info.dbname
    conn.execute(sql.SQL("GRANT CONNECT ON DATABASE {} TO {}").format(sql.Identifier(dbname), sql.Identifier(role)))
    conn.execute(sql.SQL("GRANT USAGE ON SCHEMA public TO {}").format(sql.Identifier(role)))
    for table in tables:
        conn.execute(sql.SQL("GRANT SELECT ON {} TO {}").format(sql.Identifier(table), sql.Identifier(role)))
    owners = sorted(
        {
            r[0]
            for r in conn.execute(
                "SELECT tableowner FROM pg_tables WHERE schemaname = 'public' AND tablename = ANY(%s)",
                (tables,),
            )
        }
    )
    for owner in owners:
        if owner != role:
            conn.execute(sql.SQL("GRANT {} TO {}").format(sql.Identifier(owner), sql.Identifier(role)))
    return owners


def publication_name(dbname: str) -> str:
    """The publication MaterializedPostgreSQL uses: ``<source db>_ch_publication`` (measured on 26.9)."""
    return f"{dbname}_ch_publication"


def find_slot(conn: psycopg.Connection) -> str | None:
    """MaterializedPostgreSQL's slot on this database (26.9 names it after the source database)."""
    dbname = conn.info.dbname
    row = conn.execute(
        "SELECT slot_name FROM pg_replication_slots WHERE database = current_database() AND plugin = 'pgoutput' "
        "AND slot_name IN (%s, %s) ORDER BY slot_name LIMIT 1",
        (dbname, f"{dbname}_ch_replication_slot"),
    ).fetchone()
    return row[0] if row else None


def ensure_publication(conn: psycopg.Connection, tables: list[str]) -> tuple[str, list[str]]:
    """Create the publication for the configured tables before the replica exists.

    Once the replica's slot exists, ClickHouse manages membership itself (ATTACH TABLE adds a
    table, and fails if it is already a member), so the publication is then left as it is.
    Returns the publication name and its current tables.
    """
    name = publication_name(conn.info.dbname)
    exists = conn.execute("SELECT 1 FROM pg_publication WHERE pubname = %s", (name,)).fetchone()
    idents = sql.SQL(", ").join(sql.Identifier(t) for t in tables)
    if not exists:
        conn.execute(sql.SQL("CREATE PUBLICATION {} FOR TABLE {}").format(sql.Identifier(name), idents))
    elif find_slot(conn) is None:
        conn.execute(sql.SQL("ALTER PUBLICATION {} SET TABLE {}").format(sql.Identifier(name), idents))
    members = [
        r[0]
        for r in conn.execute(
            "SELECT tablename FROM pg_publication_tables WHERE pubname = %s ORDER BY tablename", (name,)
        )
    ]
    return name, members


@dataclass(frozen=True)
class SlotStatus:
    slot_name: str
    active: bool
    wal_status: str | None
    lag_bytes: int
    confirmed_flush_lsn: str | None
    current_lsn: str


def slot_status(conn: psycopg.Connection, slot_name: str) -> SlotStatus | None:
    row = conn.execute(_query("slot_status"), (slot_name,)).fetchone()
    if row is None:
        return None
    return SlotStatus(row[0], bool(row[1]), row[2], int(row[3] or 0), row[4], row[5])


def write_heartbeat(conn: psycopg.Connection) -> Any:
    row = conn.execute(
        f"INSERT INTO {HEARTBEAT_TABLE} (id, beat_at) VALUES (1, now()) "
        "ON CONFLICT (id) DO UPDATE SET beat_at = excluded.beat_at RETURNING beat_at"
    ).fetchone()
    return row[0] if row else None


def source_counts(conn: psycopg.Connection, tables: list[str]) -> dict[str, int]:
    return {
        t: conn.execute(sql.SQL("SELECT count(*) FROM {}").format(sql.Identifier(t))).fetchone()[0]  # type: ignore[index]
        for t in tables
    }


def source_columns(conn: psycopg.Connection, tables: list[str]) -> dict[str, list[str]]:
    rows = conn.execute(_query("source_columns"), (tables,)).fetchall()
    out: dict[str, list[str]] = {t: [] for t in tables}
    for table, column in rows:
        out[table].append(column)
    return out
