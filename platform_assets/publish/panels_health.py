"""Platform health dashboard: what ClickHouse itself can tell about the pipeline.

Shown: CDC replication lag as the age of the newest heartbeat the replica has applied (the
heartbeat row is overwritten, so there is no history: a stat, not a graph); Kafka consumer lag
per topic and partition over time (``ops.kafka_consumer_lag``, written by the Dagster ingest
sensor every tick from the broker's high watermarks and the group's committed offsets); the
ClickHouse Kafka consumers (assignments, messages read, last poll, last exception) and their
exceptions; the collector workers' refusals and rejections over time (``ops.collector_stats``);
dead letters; the last write to each table; and the server's own state from its system tables:
unfinished mutations, long merges, inactive parts, disk use, p95 query time per query kind.
Not shown: Dagster's own asset freshness (it lives in the Dagster instance, not in ClickHouse).
"""

from __future__ import annotations

from platform_assets.publish.panels import DashboardSpec, PanelSpec

# Collector counters (ops.collector_stats.counter) of answers that took nothing: refusals
# (503 / UNAVAILABLE: Kafka did not take or acknowledge) and rejections (4xx / INVALID_ARGUMENT),
# plus the items refused inside an accepted OTLP request (partial success).
COLLECTOR_REFUSALS = (
    "counter IN ('unavailable_responses', 'rejected_requests', 'unauthorized_requests') "
    "OR endsWith(counter, '_rejected')"
)

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
        description="Age of the newest minute in mart_agent_metrics_1m (rebuilt by the hourly and daily runs; the "
        "dashboards read today and yesterday from the rollups).",
        width=6,
    ),
    PanelSpec(
        key="rollup_freshness",
        title="LLM call rollup freshness (s)",
        kind="stat",
        sql="SELECT dateDiff('second', max(minute), now()) AS age_seconds FROM rollups.llm_calls_1m "
        "WHERE minute >= now() - INTERVAL 1 DAY",
        source="rollups.llm_calls_1m",
        unit="s",
        description="Age of the newest minute in rollups.llm_calls_1m, filled as spans land: under 60 s while calls "
        "flow (a minute is counted from its start).",
        width=6,
    ),
    PanelSpec(
        key="ingest_freshness",
        title="Last agent event (s ago)",
        kind="stat",
        sql="SELECT dateDiff('second', max(minute), now()) AS age_seconds FROM rollups.agent_events_1m",
        source="rollups.agent_events_1m",
        unit="s",
        description="Age of the newest minute of signed agent events in rollups.agent_events_1m, filled as "
        "events land (a minute is counted from its start).",
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
        description="Consumer liveness; lag against the broker is the consumer lag panel (ops.kafka_consumer_lag).",
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

OPS_PANELS = (
    PanelSpec(
        key="consumer_lag",
        title="Kafka consumer lag per topic and partition",
        kind="timeseries",
        format="time_series",
        sql="""SELECT $__timeInterval(observed_at) AS time, concat(topic, '/', toString(partition)) AS topic_partition,
       max(lag) AS lag_messages
FROM ops.kafka_consumer_lag
WHERE $__timeFilter(observed_at)
GROUP BY time, topic_partition
ORDER BY time""",
        source="ops.kafka_consumer_lag",
        rows_filter="$__timeFilter(observed_at)",
        description="Broker high watermark minus the ClickHouse group's committed offset, the largest per "
        "bucket; one point per ingest_consumer_lag sensor tick (30 s).",
        width=24,
    ),
    PanelSpec(
        key="collector_refusals",
        title="Collector refusals and rejections",
        kind="timeseries",
        format="time_series",
        sql=f"""SELECT $__timeInterval(reported_at) AS time, counter, sum(delta) AS count
FROM ops.collector_stats
WHERE $__timeFilter(reported_at) AND ({COLLECTOR_REFUSALS})
GROUP BY time, counter
ORDER BY time""",
        source="ops.collector_stats",
        rows_filter=f"$__timeFilter(reported_at) AND ({COLLECTOR_REFUSALS})",
        description="unavailable_responses: 503/UNAVAILABLE (Kafka did not take or acknowledge; a report sent "
        "during a broker outage arrives once it is back); rejected_requests, unauthorized_requests: 4xx / "
        "INVALID_ARGUMENT; <items>_rejected: items refused inside an accepted OTLP request. Every worker "
        "reports every 10 s.",
        width=24,
    ),
    PanelSpec(
        key="kafka_consumer_exceptions",
        title="Kafka consumer exceptions",
        kind="table",
        sql="""SELECT database, table, count() AS exceptions, max(exception_time) AS last_exception_time,
       argMax(exception_text, exception_time) AS last_exception
FROM system.kafka_consumers
ARRAY JOIN exceptions.time AS exception_time, exceptions.text AS exception_text
GROUP BY database, table
ORDER BY last_exception_time DESC""",
        source="system.kafka_consumers",
        rows_filter="length(exceptions.time) > 0",
        description="The last exceptions each consumer keeps (up to 10, since the server started), per table.",
        width=24,
    ),
    PanelSpec(
        key="slow_queries",
        title="Query time p95 per query kind (ms)",
        kind="timeseries",
        format="time_series",
        sql="""SELECT $__timeInterval(event_time) AS time, if(query_kind = '', 'Other', query_kind) AS kind,
       quantile(0.95)(query_duration_ms) AS p95_ms
FROM system.query_log
WHERE event_date >= toDate($__fromTime) AND $__timeFilter(event_time) AND type = 'QueryFinish'
GROUP BY time, kind
ORDER BY time""",
        source="system.query_log",
        rows_filter="event_date >= toDate($__fromTime) AND $__timeFilter(event_time) AND type = 'QueryFinish'",
        unit="ms",
        description="Finished queries of every user (query_log keeps 7 days on the embedded stack).",
    ),
    PanelSpec(
        key="disk_use",
        title="Disk use",
        kind="table",
        sql="""SELECT name AS disk, path, 1 - free_space / total_space AS used, free_space, total_space
FROM system.disks
WHERE total_space > 0
ORDER BY used DESC""",
        source="system.disks",
        rows_filter="total_space > 0",
        description="Share of each disk in use (1 - free/total); the alert fires above 75%.",
    ),
    PanelSpec(
        key="mutations_backlog",
        title="Unfinished mutations",
        kind="table",
        sql="""SELECT database, table, count() AS mutations, sum(parts_to_do) AS parts_to_do,
       dateDiff('second', min(create_time), now()) AS oldest_age_seconds,
       argMax(latest_fail_reason, latest_fail_time) AS latest_fail_reason
FROM system.mutations
WHERE NOT is_done
GROUP BY database, table
ORDER BY oldest_age_seconds DESC""",
        source="system.mutations",
        rows_filter="NOT is_done",
        description="ALTER ... UPDATE/DELETE not yet applied to every part, per table, with the oldest one's age.",
    ),
    PanelSpec(
        key="stuck_merges",
        title="Merges running over 10 minutes",
        kind="table",
        sql="""SELECT database, table, round(elapsed) AS elapsed_seconds, round(progress, 3) AS progress, num_parts,
       is_mutation, formatReadableSize(total_size_bytes_compressed) AS size
FROM system.merges
WHERE elapsed > 600
ORDER BY elapsed DESC""",
        source="system.merges",
        rows_filter="elapsed > 600",
    ),
    PanelSpec(
        key="inactive_parts",
        title="Inactive parts per table",
        kind="table",
        sql="""SELECT database, table, count() AS inactive_parts, sum(bytes_on_disk) AS bytes
FROM system.parts
WHERE NOT active
GROUP BY database, table
ORDER BY inactive_parts DESC
LIMIT 50""",
        source="system.parts",
        rows_filter="NOT active",
        description="Parts replaced by a merge and not yet removed (normally within old_parts_lifetime, 8 min).",
    ),
)

DASHBOARD = DashboardSpec(
    uid="platform-health",
    title="Platform health",
    description="Replication lag, consumer lag, Kafka consumers, collector refusals, dead letters, data "
    "freshness and the server's mutations, merges, parts, disks and query times, as ClickHouse sees them.",
    tags=("platform", "health"),
    panels=(*PANELS, *OPS_PANELS),
    time_from="now-24h",
)
