"""The CDC domain in the code location: source setup, the replica, lag, heartbeat and drift repair."""

from dagster import Definitions

from platform_assets.cdc.assets import app_schema, cdc_replica, source_replication
from platform_assets.cdc.checks import replica_freshness, replica_tables_checks, replication_lag
from platform_assets.cdc.jobs import cdc_heartbeat_job, cdc_heartbeat_schedule, cdc_repair_drift
from platform_assets.cdc.resources import build_cdc_resource
from platform_assets.cdc.sensors import cdc_replication_lag_sensor, cdc_schema_drift_sensor


def definitions() -> Definitions:
    return Definitions(
        assets=[app_schema, source_replication, cdc_replica],
        asset_checks=[replication_lag, replica_freshness, replica_tables_checks],
        jobs=[cdc_heartbeat_job, cdc_repair_drift],
        schedules=[cdc_heartbeat_schedule],
        sensors=[cdc_replication_lag_sensor, cdc_schema_drift_sensor],
        resources={"cdc": build_cdc_resource()},
    )
