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


# Columns that never leave Postgres: the publication lists every other column of these tables
# (Postgres 15 publication column lists), so neither the snapshot nor the stream carries them
# and the replication role is not even granted SELECT on them. Personal data (PII).
EXCLUDED_COLUMNS: dict[str, tuple[str, ...]] = {"users": ("email", "name")}


def published_columns(conn: psycopg.Connection, tables: list[str]) -> dict[str, list[str] | None]:
    """Per table, the columns that are published (source order), or None for every column."""
    restricted = [t for t in tables if t in EXCLUDED_COLUMNS]
    columns = _all_columns(conn, restricted) if restricted else {}
    return {
        t: [c for c in columns[t] if c not in EXCLUDED_COLUMNS[t]] if t in EXCLUDED_COLUMNS else None for t in tables
    }


def ensure_replication_role(conn: psycopg.Connection, role: str, password: str, tables: list[str]) -> dict[str, Any]:
    """The role ClickHouse connects as: exactly LOGIN REPLICATION, CONNECT on the database,
    USAGE on ``public`` and SELECT on the published columns of the published tables.

    Nothing else: no superuser, no CREATEDB/CREATEROLE, no role membership, owns nothing.
    The publication is created by the tables' owner (``ensure_publication``) and the replica
    database is attached, not created, so the engine uses it as it is (see docs/cdc.md:
    MaterializedPostgreSQL drops and recreates the publication on CREATE DATABASE and runs
    ALTER PUBLICATION on ATTACH TABLE / DETACH PERMANENTLY, which need ownership).
    Idempotent, and it takes away what an earlier setup granted: memberships (the owner role
    the role used to be a member of) and privileges on tables no longer published, in one
    transaction with the grants so the role never lacks a privilege it needs. Returns what the
    role has afterwards.
    """
    exists = conn.execute("SELECT 1 FROM pg_roles WHERE rolname = %s", (role,)).fetchone()
    verb = "ALTER" if exists else "CREATE"
    ident = sql.Identifier(role)
    columns = published_columns(conn, tables)
    with conn.transaction():
        conn.execute(
            sql.SQL(
                "{} ROLE {} WITH LOGIN REPLICATION NOSUPERUSER NOCREATEDB NOCREATEROLE NOBYPASSRLS PASSWORD {}"
            ).format(sql.SQL(verb), ident, sql.Literal(password))
        )
        revoked = [
            r[0]
            for r in conn.execute(
                "SELECT m.roleid::regrole::text FROM pg_auth_members m JOIN pg_roles r ON r.oid = m.member "
                "WHERE r.rolname = %s",
                (role,),
            )
        ]
        for parent in revoked:
            conn.execute(sql.SQL("REVOKE {} FROM {}").format(sql.Identifier(parent), ident))
        # Table privileges (column privileges go with them), then exactly the ones needed.
        conn.execute(sql.SQL("REVOKE ALL ON ALL TABLES IN SCHEMA public FROM {}").format(ident))
        conn.execute(sql.SQL("REVOKE ALL ON ALL SEQUENCES IN SCHEMA public FROM {}").format(ident))
        conn.execute(sql.SQL("GRANT CONNECT ON DATABASE {} TO {}").format(sql.Identifier(conn.info.dbname), ident))
        conn.execute(sql.SQL("GRANT USAGE ON SCHEMA public TO {}").format(ident))
        for table in tables:
            cols = columns[table]
            what: sql.Composable = (
                sql.SQL("SELECT ({})").format(sql.SQL(", ").join([sql.Identifier(c) for c in cols]))
                if cols
                else sql.SQL("SELECT")
            )
            conn.execute(sql.SQL("GRANT {} ON {} TO {}").format(what, sql.Identifier(table), ident))
    return {
        "attributes": "LOGIN REPLICATION",
        "select_on": {t: columns[t] or "all columns" for t in tables},
        "revoked_memberships": revoked,
    }


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


def _publication_targets(conn: psycopg.Connection, tables: list[str]) -> sql.Composable:
    columns = published_columns(conn, tables)
    targets: list[sql.Composable] = []
    for t in tables:
        cols = columns[t]
        if cols:
            targets.append(
                sql.SQL("{} ({})").format(sql.Identifier(t), sql.SQL(", ").join([sql.Identifier(c) for c in cols]))
            )
        else:
            targets.append(sql.Identifier(t))
    return sql.SQL(", ").join(targets)


def ensure_publication(conn: psycopg.Connection, tables: list[str]) -> tuple[str, list[str]]:
    """Create the publication for the configured tables, as the owner, before the replica exists.

    Tables in ``EXCLUDED_COLUMNS`` are published with a column list (every column but those).
    While no replica slot exists the publication is set to exactly this; once the slot exists
    it is left as it is (a change of tables or columns goes through ``rebuild``: the replica is
    dropped and attached again). Returns the publication name and its current tables.
    """
    name = publication_name(conn.info.dbname)
    exists = conn.execute("SELECT 1 FROM pg_publication WHERE pubname = %s", (name,)).fetchone()
    targets = _publication_targets(conn, tables)
    if not exists:
        conn.execute(sql.SQL("CREATE PUBLICATION {} FOR TABLE {}").format(sql.Identifier(name), targets))
    elif find_slot(conn) is None:
        conn.execute(sql.SQL("ALTER PUBLICATION {} SET TABLE {}").format(sql.Identifier(name), targets))
    members = [
        r[0]
        for r in conn.execute(
            "SELECT tablename FROM pg_publication_tables WHERE pubname = %s ORDER BY tablename", (name,)
        )
    ]
    return name, members


def drop_slot(conn: psycopg.Connection) -> str | None:
    """Drops the replica's slot (and its ``_tmp`` twin) once the replica database is gone; as
    the owner, since the engine's own cleanup stops at DROP PUBLICATION, which the replication
    role may not run. Returns the slot dropped."""
    slot = find_slot(conn)
    for name in [slot, f"{slot}_tmp"] if slot else []:
        conn.execute(
            "SELECT pg_drop_replication_slot(slot_name) FROM pg_replication_slots WHERE slot_name = %s", (name,)
        )
    return slot


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


def _all_columns(conn: psycopg.Connection, tables: list[str]) -> dict[str, list[str]]:
    rows = conn.execute(_query("source_columns"), (tables,)).fetchall()
    out: dict[str, list[str]] = {t: [] for t in tables}
    for table, column in rows:
        out[table].append(column)
    return out


def source_columns(conn: psycopg.Connection, tables: list[str]) -> dict[str, list[str]]:
    """The columns the replica should have: every source column but the ``EXCLUDED_COLUMNS``."""
    return {
        t: [c for c in cols if c not in EXCLUDED_COLUMNS.get(t, ())] for t, cols in _all_columns(conn, tables).items()
    }
