"""Creating and rebuilding the replica with a replication role that owns nothing.

MaterializedPostgreSQL runs ``ALTER PUBLICATION`` itself on ``ATTACH TABLE`` (ADD TABLE: the
publication's and the table's owner only) and on ``DETACH TABLE ... PERMANENTLY`` (DROP TABLE:
the publication's owner), and drops and recreates the publication on ``CREATE DATABASE``. The
replication role may do none of that (docs/cdc.md), so every change of the replicated tables or
columns is made here instead: the owner sets the role's grants and the publication, and the
replica database is attached afresh (a new snapshot of every table).
"""

from __future__ import annotations

import psycopg
from clickhouse_connect.driver.client import Client

from platform_assets.cdc import replica, source
from platform_assets.cdc.resources import CdcResource


def attach_replica(
    client: Client, conn: psycopg.Connection, cdc: CdcResource, address: str, dbname: str, tables: list[str]
) -> None:
    """As the owner: the role's grants and the publication for ``tables``; then the replica
    database attached over them. ``conn`` must be autocommit."""
    source.ensure_replication_role(conn, cdc.replication_role, cdc.replication_password, tables)
    source.ensure_publication(conn, tables)
    client.command(
        replica.create_statement(
            cdc.replica_database,
            address,
            dbname,
            cdc.replication_role,
            cdc.replication_password,
            tables,
            source.published_columns(conn, tables),
        )
    )


def rebuild_replica(
    client: Client, conn: psycopg.Connection, cdc: CdcResource, address: str, dbname: str, tables: list[str]
) -> str | None:
    """Drops the replica database (SYNC), drops its slot as the owner (the engine's own cleanup
    stops at DROP PUBLICATION, which the role may not run), then ``attach_replica``; the
    publication is reset to ``tables`` because no slot exists any more. Returns the slot dropped."""
    client.command(f"DROP DATABASE IF EXISTS {replica.ident(cdc.replica_database)} SYNC")
    slot = source.drop_slot(conn)
    attach_replica(client, conn, cdc, address, dbname, tables)
    return slot
