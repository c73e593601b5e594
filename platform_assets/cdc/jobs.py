"""CDC jobs: the heartbeat (scheduled every minute) and the schema-drift repair."""

import time

from dagster import (
    AssetMaterialization,
    Config,
    DefaultScheduleStatus,
    MetadataValue,
    OpExecutionContext,
    ScheduleDefinition,
    in_process_executor,
    job,
    op,
)

from platform_assets.cdc import lifecycle, source
from platform_assets.cdc.monitor import table_states
from platform_assets.cdc.resources import CdcResource, configured_tables
from platform_assets.core.keys import table_key
from platform_assets.core.resources import ClickHouseResource, PostgresResource

PARITY_TIMEOUT_S = 300


@op
def write_cdc_heartbeat(context: OpExecutionContext, postgres: PostgresResource) -> None:
    """Upserts the one heartbeat row: the slot advances on an idle source, lag has a clock."""
    with postgres.connect(context) as conn:
        beat = source.write_heartbeat(conn)
        conn.commit()
    context.log.info(f"heartbeat {beat}")


@job(executor_def=in_process_executor, tags={"platform/domain": "cdc"})
def cdc_heartbeat_job():
    write_cdc_heartbeat()


cdc_heartbeat_schedule = ScheduleDefinition(
    name="cdc_heartbeat_every_minute",
    job=cdc_heartbeat_job,
    cron_schedule="* * * * *",
    default_status=DefaultScheduleStatus.RUNNING,  # lag in seconds needs the heartbeat from the start
)


class RepairConfig(Config):
    tables: list[str] = []  # noqa: RUF012 - a pydantic field (copied per instance); empty: every drifted table


@op
def repair_drifted_tables(
    context: OpExecutionContext,
    config: RepairConfig,
    postgres: PostgresResource,
    clickhouse: ClickHouseResource,
    cdc: CdcResource,
) -> None:
    """Rebuilds the replica (``lifecycle.rebuild_replica``: dropped, its slot dropped, the
    publication reset to the current columns by the owner, attached afresh) when a table's
    replication stopped after a column change; then waits until each repaired table has every
    source row. Not DETACH PERMANENTLY + ATTACH TABLE: the engine then runs ALTER PUBLICATION,
    which the replication role (no owner) may not."""
    tables = configured_tables()
    db = cdc.replica_database
    states = table_states(postgres, clickhouse, db, tables, context)
    targets = config.tables or [t for t, s in states.items() if s.drifted]
    unknown = sorted(set(targets) - set(tables))
    if unknown:
        raise ValueError(f"tables {unknown} are not in CDC_TABLES ({tables})")
    if not targets:
        context.log.info("no drifted table: nothing to repair")
        return
    started = time.monotonic()
    address = cdc.source_address or f"{postgres.host}:{postgres.port}"
    with clickhouse.client(context) as client, postgres.connect(context, autocommit=True) as owner:
        slot = lifecycle.rebuild_replica(client, owner, cdc, address, postgres.dbname, tables)
    context.log.info(f"replica {db} rebuilt (slot {slot} dropped) for {targets}")
    for table in targets:
        before = states[table]
        after = _wait_for_parity(postgres, clickhouse, db, table, context)
        seconds = round(time.monotonic() - started, 2)
        if after.drifted or after.replica_rows != after.source_rows:
            raise RuntimeError(
                f"{table}: after the rebuild the replica has {after.replica_rows} of {after.source_rows} rows "
                f"and drift '{after.describe_drift() if after.drifted else 'none'}' after {seconds}s"
            )
        context.log_event(
            AssetMaterialization(
                asset_key=table_key(table),
                description=f"repaired: {before.describe_drift()}",
                metadata={
                    "repair": "replica rebuilt (DROP DATABASE SYNC, owner drops slot and resets publication, ATTACH)",
                    "drift_before": before.describe_drift(),
                    "columns_after": MetadataValue.json(after.replica_columns),
                    "replica_live_rows": after.replica_rows,
                    "source_rows": after.source_rows,
                    "seconds_to_parity": seconds,
                },
            )
        )


def _wait_for_parity(postgres, clickhouse, db: str, table: str, context):
    deadline = time.monotonic() + PARITY_TIMEOUT_S
    while True:
        state = table_states(postgres, clickhouse, db, [table], context)[table]
        if (not state.drifted and state.replica_rows == state.source_rows) or time.monotonic() > deadline:
            return state
        time.sleep(0.5)


@job(tags={"platform/domain": "cdc"})
def cdc_repair_drift():
    """Reload the replica tables whose schema drifted from the source."""
    repair_drifted_tables()
