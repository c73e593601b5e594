"""Alert rules on the platform's own health (ClickHouse system tables, the collector, consumer lag).

Query A of each rule is ``sql/alerts/health_*.sql``; its string columns become labels, so a rule
fires per table, disk, host or topic. The queries that return no row when all is well (no
unfinished mutation, no inactive part, no report of a refusal) are OK on no data.
"""

from __future__ import annotations

from platform_assets.publish.alert_spec import AlertSpec, alert_query

MUTATION_MAX_AGE_S = 600  # an ALTER UPDATE/DELETE unfinished for 10 minutes is stuck or failing
MERGE_MAX_S = 600  # merges of the platform's tables take seconds; 10 minutes is a stuck one
# Inactive parts wait old_parts_lifetime (480 s) after their merge: about parts inserted per second
# x 480 per table. Estimated, not measured: a Kafka table flushing every 500 ms inserts up to 2 parts
# a second per consumer thread, ~1,000 per thread in 8 minutes (6 threads on otlp_spans: ~6,000);
# far more means removal has stopped (the disk fills, the server starts slowly).
INACTIVE_PARTS_MAX = 20_000
DISK_USED_MAX = 0.75  # room left for merges (a merge writes its result before the inputs go)
SLOW_QUERY_P95_MS = 5000.0  # p95 over the last 10 minutes, per user and query kind
CONSUMER_LAG_MAX = 100_000  # messages, as the ingest sensor's max_lag_messages (about 2 s at 50k/s)

HEALTH_ALERTS: tuple[AlertSpec, ...] = (
    AlertSpec(
        uid="platform-health-mutations-backlog",
        title="ClickHouse mutation unfinished for over 10 minutes",
        sql=alert_query("health_mutations_backlog"),
        op="gt",
        threshold=MUTATION_MAX_AGE_S,
        for_="0s",  # the value already is the oldest mutation's age
        summary="A mutation on {{ $labels.database }}.{{ $labels.table }} has been unfinished for "
        "{{ $values.B.Value }} s (system.mutations, latest_fail_reason).",
        no_data_state="OK",
    ),
    AlertSpec(
        uid="platform-health-stuck-merge",
        title="ClickHouse merge running for over 10 minutes",
        sql=alert_query("health_stuck_merges"),
        op="gt",
        threshold=MERGE_MAX_S,
        for_="0s",  # the value already is the merge's elapsed time
        summary="A merge on {{ $labels.database }}.{{ $labels.table }} has run {{ $values.B.Value }} s "
        "(system.merges).",
        no_data_state="OK",
    ),
    AlertSpec(
        uid="platform-health-inactive-parts",
        title=f"Over {INACTIVE_PARTS_MAX} inactive parts in a table",
        sql=alert_query("health_inactive_parts"),
        op="gt",
        threshold=INACTIVE_PARTS_MAX,
        for_="10m",  # longer than old_parts_lifetime: a burst of merges is not a stuck cleanup
        summary="{{ $labels.database }}.{{ $labels.table }} keeps {{ $values.B.Value }} inactive parts "
        "(old parts are not being removed).",
        no_data_state="OK",
    ),
    AlertSpec(
        uid="platform-health-disk-use",
        title=f"ClickHouse disk over {DISK_USED_MAX:.0%} used",
        sql=alert_query("health_disk_use"),
        op="gt",
        threshold=DISK_USED_MAX,
        for_="5m",
        summary="Disk {{ $labels.disk }} is {{ humanizePercentage $values.B.Value }} used (over "
        f"{DISK_USED_MAX:.0%}): merges need free room.",
    ),
    AlertSpec(
        uid="platform-health-slow-queries",
        title=f"ClickHouse query p95 above {SLOW_QUERY_P95_MS / 1000:.0f} s",
        sql=alert_query("health_slow_queries"),
        op="gt",
        threshold=SLOW_QUERY_P95_MS,
        for_="0s",  # the query window already is the 10 minutes
        summary="p95 of {{ $labels.kind }} queries by {{ $labels.user }} over the last 10 minutes is "
        f"{{{{ $values.B.Value }}}} ms (over {SLOW_QUERY_P95_MS:.0f} ms).",
        no_data_state="OK",
    ),
    AlertSpec(
        uid="platform-health-kafka-consumer-exceptions",
        title="ClickHouse Kafka consumer exceptions in the last 5 minutes",
        sql=alert_query("health_kafka_consumer_exceptions"),
        op="gt",
        threshold=0,
        for_="0s",  # the query window already is the 5 minutes
        summary="{{ $values.B.Value }} exceptions of the consumers of {{ $labels.database }}.{{ $labels.table }} "
        "in the last 5 minutes (system.kafka_consumers).",
        no_data_state="OK",
    ),
    AlertSpec(
        uid="platform-health-collector-refusals",
        title="Collector refused requests in the last 5 minutes",
        sql=alert_query("health_collector_refusals"),
        op="gt",
        threshold=0,
        for_="0s",  # the query window already is the 5 minutes
        summary="The collector on {{ $labels.host }} answered {{ $values.B.Value }} requests 503/UNAVAILABLE "
        "(Kafka did not take or acknowledge them) in the last 5 minutes.",
        no_data_state="OK",
    ),
    AlertSpec(
        uid="platform-health-consumer-lag",
        title=f"Kafka consumer lag above {CONSUMER_LAG_MAX} messages for 5 minutes",
        sql=alert_query("health_consumer_lag"),
        op="gt",
        threshold=CONSUMER_LAG_MAX,
        for_="5m",
        # No rows: the ingest_consumer_lag sensor has not written for 5 minutes (not running).
        summary="{{ $values.B.Value }} messages of {{ $labels.topic }} wait for ClickHouse (ops.kafka_consumer_lag).",
    ),
)
