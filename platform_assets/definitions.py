"""Everything the Dagster UI and daemon load: assets, checks, sensors, schedules, resources."""

from dagster import Definitions

from platform_assets import environment
from platform_assets.cdc import assets as cdc_assets
from platform_assets.cdc import checks as cdc_checks
from platform_assets.cdc import jobs as cdc_jobs
from platform_assets.cdc import sensors as cdc_sensors
from platform_assets.cdc.resources import build_cdc_resource
from platform_assets.export import assets as export_assets
from platform_assets.export import checks as export_checks
from platform_assets.export.resources import build_export_resource
from platform_assets.ingest import assets as ingest_assets
from platform_assets.ingest import checks as ingest_checks
from platform_assets.ingest import sensors as ingest_sensors
from platform_assets.ingest.resources import IngestResource
from platform_assets.ops import assets as ops_assets
from platform_assets.ops import checks as ops_checks
from platform_assets.publish.assets import build_publish_assets
from platform_assets.publish.checks import build_panel_checks
from platform_assets.publish.resources import build_grafana_resource
from platform_assets.report import assets as report_assets
from platform_assets.resources import build_resources
from platform_assets.transform import assets as transform_assets
from platform_assets.transform import jobs as transform_jobs
from platform_assets.transform.resources import build_dbt_resource

environment.prepare()  # a missing or unknown setting fails here, at load time

defs = Definitions(
    assets=[
        ingest_assets.kafka_topics,
        *ingest_assets.RAW_SPECS,
        ingest_assets.DEAD_LETTER_SPEC,
        ops_assets.clickhouse_schema,
        cdc_assets.app_schema,
        cdc_assets.source_replication,
        cdc_assets.cdc_replica,
        transform_assets.dbt_models,
        *build_publish_assets(),
        *export_assets.EXPORT_ASSETS,
        report_assets.daily_report,
    ],
    asset_checks=[
        ops_checks.clickhouse_schema_in_sync,
        cdc_checks.replication_lag,
        cdc_checks.replica_freshness,
        cdc_checks.replica_tables_checks,
        *ingest_checks.consumer_lag_checks,
        ingest_checks.new_dead_letters,
        *build_panel_checks(),
        *export_checks.EXPORT_CHECKS,
    ],
    jobs=[cdc_jobs.cdc_heartbeat_job, cdc_jobs.cdc_repair_drift, *transform_jobs.JOBS],
    schedules=[cdc_jobs.cdc_heartbeat_schedule, *transform_jobs.SCHEDULES],
    sensors=[
        cdc_sensors.cdc_replication_lag_sensor,
        cdc_sensors.cdc_schema_drift_sensor,
        ingest_sensors.ingest_consumer_lag_sensor,
    ],
    resources={
        **build_resources(),
        "cdc": build_cdc_resource(),
        "ingest": IngestResource(),
        "dbt": build_dbt_resource(),
        "grafana": build_grafana_resource(),
        "export": build_export_resource(),
    },
)
