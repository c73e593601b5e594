"""Platform health dashboard: what ClickHouse itself can tell about the pipeline.

Shown: CDC replication lag as the age of the newest heartbeat the replica has applied (the
heartbeat row is overwritten, so there is no history: a stat, not a graph); the ClickHouse
Kafka consumers (assignments, messages read, last poll, last exception); dead letters; the
last write to each table. Not shown: true Kafka consumer lag (it needs the broker's high
watermarks, which the Dagster ingest sensor reads, not ClickHouse) and Dagster's own asset
freshness (it lives in the Dagster instance, not in ClickHouse).
"""

from __future__ import annotations

from platform_assets.publish.panels import DashboardSpec, PanelSpec

PANELS = (
    PanelSpec(
        key="replication_lag",
        title="CDC replication lag (s)",
        kind="stat",
        sql="""SELECT dateDiff('second', max(beat_at), now()) AS lag_seconds
FROM pg_repl.cdc_heartbeat FINAL
WHERE _sign = 1""",
        source="pg_repl.cdc_heartbeat",
        unit="s",
        description="Age of the newest heartbeat seen by the replica; the heartbeat schedule writes one a minute.",
        width=6,
    ),
    PanelSpec(
        key="agent_metrics_freshness",
        title="Agent metrics freshness (s)",
        kind="stat",
        sql="SELECT dateDiff('second', max(minute), now()) AS age_seconds FROM marts.mart_agent_metrics_1m",
        source="marts.mart_agent_metrics_1m",
        unit="s",
        description="Age of the newest minute in mart_agent_metrics_1m (rebuilt every 5 minutes).",
        width=6,
    ),
    PanelSpec(
        key="ingest_freshness",
        title="Last agent event (s ago)",
        kind="stat",
        sql="SELECT dateDiff('second', max(occurred_at), now()) AS age_seconds FROM raw.agent_events",
        source="raw.agent_events",
        unit="s",
        description="Newest raw agent event; the Grafana user sees only the last day of this table.",
        width=6,
    ),
    PanelSpec(
        key="dead_letters_total",
        title="Dead letters in range",
        kind="stat",
        sql="SELECT count() AS messages FROM dead_letter.kafka_messages WHERE $__timeFilter(landed_at)",
        source="dead_letter.kafka_messages",
        rows_filter="$__timeFilter(landed_at)",
        width=6,
    ),
    PanelSpec(
        key="dead_letters",
        title="Dead letters by topic",
        kind="timeseries",
        format="time_series",
        sql="""SELECT $__timeInterval(landed_at) AS time, topic, count() AS messages
FROM dead_letter.kafka_messages
WHERE $__timeFilter(landed_at)
GROUP BY time, topic
ORDER BY time""",
        source="dead_letter.kafka_messages",
        rows_filter="$__timeFilter(landed_at)",
    ),
    PanelSpec(
        key="dead_letter_errors",
        title="Latest dead-letter errors",
        kind="table",
        sql="""SELECT landed_at, topic, kafka_partition, kafka_offset, error
FROM dead_letter.kafka_messages
WHERE $__timeFilter(landed_at)
ORDER BY landed_at DESC
LIMIT 100""",
        source="dead_letter.kafka_messages",
        rows_filter="$__timeFilter(landed_at)",
        description="Payloads are not shown: the Grafana user cannot read raw_message.",
    ),
    PanelSpec(
        key="kafka_consumers",
        title="ClickHouse Kafka consumers",
        kind="table",
        sql="""SELECT database, table, consumer_id,
       arrayStringConcat(
           arrayMap((t, p) -> concat(t, '/', toString(p)), assignments.topic, assignments.partition_id), ', '
       ) AS assignments,
       num_messages_read, dateDiff('second', last_poll_time, now()) AS seconds_since_poll,
       num_rebalance_assignments, arrayElement(exceptions.text, -1) AS last_exception
FROM system.kafka_consumers
ORDER BY database, table""",
        source="system.kafka_consumers",
        description="Consumer liveness; lag against the broker is computed by the Dagster ingest sensor.",
        width=24,
    ),
    PanelSpec(
        key="table_freshness",
        title="Last write per table",
        kind="table",
        sql="""SELECT database, table, max(modification_time) AS last_write,
       dateDiff('second', max(modification_time), now()) AS age_seconds, sum(rows) AS rows
FROM system.parts
WHERE active AND database IN ('marts', 'raw', 'dead_letter')
GROUP BY database, table
ORDER BY age_seconds DESC""",
        source="system.parts",
        rows_filter="active AND database IN ('marts', 'raw', 'dead_letter')",
        description="Newest active part per table: when each mart was last rebuilt, each raw table last written.",
        width=24,
    ),
)

DASHBOARD = DashboardSpec(
    uid="platform-health",
    title="Platform health",
    description="Replication lag, Kafka consumers, dead letters and data freshness, as ClickHouse sees them.",
    tags=("platform", "health"),
    panels=PANELS,
    time_from="now-24h",
)
