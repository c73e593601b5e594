"""Ingestion checks: consumer lag (also written by the sensor) and new dead letters."""

from dagster import (
    AssetCheckExecutionContext,
    AssetCheckResult,
    AssetChecksDefinition,
    AssetCheckSeverity,
    asset_check,
)

from platform_assets.core.access import MONITOR
from platform_assets.core.keys import DEAD_LETTER_KEY, SCHEMA_KEY, raw_key
from platform_assets.core.resources import ClickHouseResource, KafkaResource
from platform_assets.ingest.lag import evaluate
from platform_assets.ingest.monitor import read_lag
from platform_assets.ingest.resources import IngestResource
from platform_assets.ingest.topics import CONSUMED, Topic


def _consumer_lag_check(topic: Topic) -> AssetChecksDefinition:
    # additional_deps: in a run that also builds the schema, check after it (the raw tables
    # are filled by ClickHouse, not by a step this check could otherwise wait for).
    @asset_check(
        asset=raw_key(topic.raw_table or topic.name),
        name="consumer_lag",
        description=f"Messages on `{topic.name}` waiting for ClickHouse.",
        additional_deps=[SCHEMA_KEY],
    )
    def consumer_lag(
        context: AssetCheckExecutionContext,
        kafka: KafkaResource,
        clickhouse: ClickHouseResource,
        ingest: IngestResource,
    ) -> AssetCheckResult:
        (lag,) = read_lag(kafka, clickhouse, [topic.name], context)
        verdict = evaluate(lag, None, 0, ingest.max_lag_messages, ingest.stuck_after_ticks)
        return AssetCheckResult(
            passed=not verdict.flagged,
            severity=AssetCheckSeverity.ERROR,
            description="; ".join(verdict.reasons) or f"lag {lag.total} messages",
            metadata={"lag_messages": lag.total, "partitions": {str(p.partition): p.lag for p in lag.partitions}},
        )

    return consumer_lag


consumer_lag_checks = [_consumer_lag_check(t) for t in CONSUMED]


@asset_check(
    asset=DEAD_LETTER_KEY,
    name="new_dead_letters",
    description="Dead letters in the recent window.",
    additional_deps=[SCHEMA_KEY],  # run after the schema when both are in one run
)
def new_dead_letters(
    context: AssetCheckExecutionContext, clickhouse: ClickHouseResource, ingest: IngestResource
) -> AssetCheckResult:
    """A warning for any dead letter in the window, an error past the configured rate of the
    messages that arrived in the same window."""
    window = ingest.dead_letter_window_minutes
    with clickhouse.as_role(MONITOR).client(context) as client:
        dead, sample, topics = client.query(
            "SELECT count(), any(error), groupUniqArray(topic) FROM dead_letter.kafka_messages "
            f"WHERE landed_at > now64(3) - INTERVAL {window} MINUTE"
        ).result_rows[0]
        good = client.query(
            f"SELECT (SELECT count() FROM raw.agent_events WHERE ingested_at > now64(3) - INTERVAL {window} MINUTE)"
            f" + (SELECT count() FROM raw.product_events WHERE ingested_at > now64(3) - INTERVAL {window} MINUTE)"
        ).result_rows[0][0]
    total = dead + good
    rate = dead / total if total else 0.0
    error = rate > ingest.dead_letter_error_rate
    return AssetCheckResult(
        passed=dead == 0,
        severity=AssetCheckSeverity.ERROR if error else AssetCheckSeverity.WARN,
        description=f"{dead} dead letters of {total} messages in the last {window} min ({rate:.2%})"
        + (f"; sample error: {sample[:300]}" if dead else ""),
        metadata={"dead_letters": dead, "messages": total, "rate": rate, "topics": sorted(topics)},
    )
