"""CDC domain: the app schema, the source's replication setup and the ClickHouse replica."""

import time
from collections.abc import Iterator

from dagster import (
    AssetExecutionContext,
    AssetKey,
    AssetsDefinition,
    AssetSpec,
    Failure,
    MaterializeResult,
    MetadataValue,
    asset,
    multi_asset,
)

from platform_assets.cdc import lifecycle, replica, source
from platform_assets.cdc.resources import CdcResource, configured_tables
from platform_assets.core.automation import SERVER_RETRY, final
from platform_assets.core.keys import REPLICA_DB_KEY, SCHEMA_KEY, table_key
from platform_assets.core.resources import ClickHouseResource, PostgresResource

APP_SCHEMA_KEY = AssetKey(["postgres", "app_schema"])
REPLICATION_KEY = AssetKey(["postgres", "replication"])
OWNERS = ["team:data-platform"]
SNAPSHOT_TIMEOUT_S = 300


# Each migration file commits with its row in platform_source_migrations: a rerun applies the rest.
@asset(key=APP_SCHEMA_KEY, group_name="cdc", owners=OWNERS, kinds={"postgres", "sql"}, retry_policy=SERVER_RETRY)
def app_schema(context: AssetExecutionContext, postgres: PostgresResource) -> MaterializeResult:
    """The demo application's OLTP schema in Postgres (users, orders, subscriptions, events).

    Grain: one migration file from ``platform_assets/cdc/sql/postgres``, applied once. Where a
    real application owns its schema, leave this asset out of the selection.
    """
    with postgres.connect(context) as conn:
        applied = source.migrate(conn)
        conn.commit()
    return MaterializeResult(metadata={"applied_now": MetadataValue.json(applied)})


@asset(
    key=REPLICATION_KEY,
    group_name="cdc",
    owners=OWNERS,
    kinds={"postgres"},
    deps=[APP_SCHEMA_KEY],
    retry_policy=SERVER_RETRY,  # role, grants and publication are ensured, not added: a rerun is safe
)
def source_replication(
    context: AssetExecutionContext, postgres: PostgresResource, cdc: CdcResource
) -> MaterializeResult:
    """Postgres ready for logical replication of the configured tables (``CDC_TABLES``).

    Grain: one source database. Checks ``wal_level=logical``, refuses a table without primary
    key or replica identity (by name), creates the replication role (REPLICATION and SELECT on
    the published columns, nothing else) and, as the owner, the publication (``users`` without
    ``email`` and ``name``). Idempotent.
    """
    tables = configured_tables()
    with postgres.connect(context, autocommit=True) as conn:
        try:
            source.check_wal_level(conn)
            keys = source.check_tables(conn, tables)
        except source.SourceError as exc:
            raise final(exc) from exc  # a source set up wrong stays wrong: not retried
        privileges = source.ensure_replication_role(conn, cdc.replication_role, cdc.replication_password, tables)
        publication, members = source.ensure_publication(conn, tables)
        published = source.published_columns(conn, tables)
        slot = source.find_slot(conn)
    return MaterializeResult(
        metadata={
            "tables": MetadataValue.json(tables),
            "primary_keys": MetadataValue.json(keys),
            "replication_role": cdc.replication_role,
            "role_privileges": MetadataValue.json(privileges),
            "publication": publication,
            "published_column_lists": MetadataValue.json({t: c for t, c in published.items() if c}),
            "publication_tables": MetadataValue.json(members),
            "slot": slot or "(created by the replica)",
        }
    )


def _replica_specs(tables: list[str]) -> list[AssetSpec]:
    db = AssetSpec(
        REPLICA_DB_KEY,
        deps=[REPLICATION_KEY, SCHEMA_KEY],
        group_name="cdc",
        owners=OWNERS,
        kinds={"clickhouse"},
        description="The MaterializedPostgreSQL database that replicates the source. Grain: one database; "
        "lag observations from the replication sensor land here.",
    )
    table_specs = [
        AssetSpec(
            table_key(t),
            deps=[REPLICA_DB_KEY],
            group_name="cdc",
            owners=OWNERS,
            kinds={"clickhouse"},
            description=f"Replica of Postgres `public.{t}`. Grain: one row per source row; read with FINAL "
            "and `_sign = 1` for live rows.",
        )
        for t in tables
    ]
    return [db, *table_specs]


def _wait_for_tables(client, database: str, tables: list[str], timeout: float) -> list[str]:
    deadline = time.monotonic() + timeout
    while True:
        missing = sorted(set(tables) - set(replica.replica_tables(client, database)))
        if not missing or time.monotonic() > deadline:
            return missing
        time.sleep(0.2)


def build_replica_asset(tables: list[str]) -> AssetsDefinition:
    """The replica database and one asset per replicated table, for the configured tables."""

    # A rerun finds the database and attaches only missing tables; a snapshot timeout is not retried (below).
    @multi_asset(name="cdc_replica", specs=_replica_specs(tables), can_subset=False, retry_policy=SERVER_RETRY)
    def cdc_replica(
        context: AssetExecutionContext,
        clickhouse: ClickHouseResource,
        postgres: PostgresResource,
        cdc: CdcResource,
    ) -> Iterator[MaterializeResult]:
        """Attaches the replica database once; a table added to ``CDC_TABLES`` rebuilds it
        (``lifecycle.rebuild_replica``: the replication role may not alter the publication)."""
        yield from _materialize_replica(context, clickhouse, postgres, cdc, tables)

    return cdc_replica


def _materialize_replica(
    context: AssetExecutionContext,
    clickhouse: ClickHouseResource,
    postgres: PostgresResource,
    cdc: CdcResource,
    tables: list[str],
) -> Iterator[MaterializeResult]:
    db = cdc.replica_database
    address = cdc.source_address or f"{postgres.host}:{postgres.port}"
    attached: list[str] = []
    created = False
    with clickhouse.client(context) as client, postgres.connect(context, autocommit=True) as owner:
        if not replica.database_exists(client, db):
            lifecycle.attach_replica(client, owner, cdc, address, postgres.dbname, tables)
            created = True
        else:
            attached = sorted(set(tables) - set(replica.replica_tables(client, db)))
            if attached:
                # ATTACH TABLE would have the engine run ALTER PUBLICATION ADD TABLE, which only the
                # owner may: the replica is attached afresh over the owner's new publication instead.
                context.log.info(f"tables {attached} added: rebuilding {db} (a new snapshot of every table)")
                lifecycle.rebuild_replica(client, owner, cdc, address, postgres.dbname, tables)
        missing = _wait_for_tables(client, db, tables, SNAPSHOT_TIMEOUT_S)
        if missing:
            # Not retried: a retry would rebuild the replica again and restart every snapshot.
            raise Failure(
                f"replica {db}: table(s) {missing} did not appear within {SNAPSHOT_TIMEOUT_S}s; "
                "see the ClickHouse log and the Postgres log for replication errors (the engine only "
                "logs errors at ATTACH DATABASE: a privilege the replication role lacks shows this way)",
                allow_retries=False,
            )
        extra = sorted(set(replica.replica_tables(client, db)) - set(tables))
        # A heartbeat written now and seen in ClickHouse proves changes stream, not just the snapshot.
        with postgres.connect(context) as conn:
            beat_ms = int(source.write_heartbeat(conn).timestamp() * 1000)
            conn.commit()
        streaming_s = replica.wait_for_heartbeat(client, db, beat_ms, SNAPSHOT_TIMEOUT_S)
        counts = replica.live_counts(client, db, tables)
    with postgres.connect(context) as conn:
        source_counts = source.source_counts(conn, tables)
    yield MaterializeResult(
        asset_key=REPLICA_DB_KEY,
        metadata={
            "database": db,
            "created_now": created,
            "attached_now": MetadataValue.json(attached),
            "tables": MetadataValue.json(tables),
            "not_configured_but_present": MetadataValue.json(extra),
            "heartbeat_replicated_in_s": streaming_s,
        },
    )
    for table in tables:
        yield MaterializeResult(
            asset_key=table_key(table),
            metadata={
                "replica_live_rows": counts[table],
                "source_rows": source_counts[table],
            },
        )


cdc_replica = build_replica_asset(configured_tables())
