"""Ingestion checks: consumer lag (also written by the sensor) and new dead letters."""

from dagster import (
    AssetCheckExecutionContext,
    AssetCheckResult,
    AssetCheckSeverity,
    AssetCheckSpec,
    asset_check,
    multi_asset_check,
)

from platform_assets.ingest.assets import DEAD_LETTER_KEY, RAW_SPECS, raw_key
from platform_assets.ingest.lag import evaluate
from platform_assets.ingest.monitor import read_lag
from platform_assets.ingest.resources import IngestResource
from platform_assets.ingest.topics import CONSUMED
from platform_assets.resources import ClickHouseResource, KafkaResource


@multi_asset_check(
    specs=[
        AssetCheckSpec("consumer_lag", asset=s.key, description="Messages waiting for ClickHouse.") for s in RAW_SPECS
    ],
    can_subset=True,
)
def consumer_lag_checks(
    context: AssetCheckExecutionContext, kafka: KafkaResource, clickhouse: ClickHouseResource, ingest: IngestResource
):
    for lag in read_lag(kafka, clickhouse, [t.name for t in CONSUMED], context):
        topic = next(t for t in CONSUMED if t.name == lag.topic)
        verdict = evaluate(lag, None, 0, ingest.max_lag_messages, ingest.stuck_after_ticks)
        yield AssetCheckResult(
            asset_key=raw_key(topic.raw_table or topic.name),
            check_name="consumer_lag",
            passed=not verdict.flagged,
            severity=AssetCheckSeverity.ERROR,
            description="; ".join(verdict.reasons) or f"lag {lag.total} messages",
            metadata={"lag_messages": lag.total, "partitions": {str(p.partition): p.lag for p in lag.partitions}},
        )


@asset_check(asset=DEAD_LETTER_KEY, name="new_dead_letters", description="Dead letters in the recent window.")
def new_dead_letters(
    context: AssetCheckExecutionContext, clickhouse: ClickHouseResource, ingest: IngestResource
) -> AssetCheckResult:
    """A warning for any dead letter in the window, an error past the configured rate of the
    messages that arrived in the same window."""
    window = ingest.dead_letter_window_minutes
    with clickhouse.client(context) as client:
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
