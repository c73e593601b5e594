"""Ingestion sensor: consumer lag per topic and partition, as observations on the raw tables and
as rows of ``ops.kafka_consumer_lag`` (its history, for the health dashboard and alert rules)."""

import json
from dataclasses import replace
from datetime import UTC, datetime
from typing import Any

from dagster import (
    AssetCheckEvaluation,
    AssetCheckSeverity,
    AssetObservation,
    DefaultSensorStatus,
    SensorEvaluationContext,
    SensorResult,
    sensor,
)

from platform_assets.core.keys import raw_key
from platform_assets.core.resources import ClickHouseResource, KafkaResource
from platform_assets.ingest.assets import RAW_SPECS
from platform_assets.ingest.heal import restart_consumers
from platform_assets.ingest.lag import evaluate
from platform_assets.ingest.monitor import read_lag, record_lag
from platform_assets.ingest.resources import IngestResource
from platform_assets.ingest.topics import CONSUMED


@sensor(
    name="ingest_consumer_lag",
    minimum_interval_seconds=30,
    default_status=DefaultSensorStatus.RUNNING,
    asset_selection=[s.key for s in RAW_SPECS],
    description="Broker high watermark minus ClickHouse's committed offset per topic and partition, plus "
    "system.kafka_consumers, recorded in ops.kafka_consumer_lag; fails the consumer_lag check past the "
    "threshold or when a consumer is stuck.",
)
def ingest_consumer_lag_sensor(
    context: SensorEvaluationContext, kafka: KafkaResource, clickhouse: ClickHouseResource, ingest: IngestResource
) -> SensorResult:
    state = json.loads(context.cursor) if context.cursor else {}
    events: list[AssetObservation | AssetCheckEvaluation] = []
    lines, new_state = [], {}
    observed_at = datetime.now(UTC)
    lags = read_lag(kafka, clickhouse, [t.name for t in CONSUMED], context)
    for lag in lags:
        topic = next(t for t in CONSUMED if t.name == lag.topic)
        before = state.get(lag.topic, {})
        verdict = evaluate(
            lag,
            before.get("committed"),
            before.get("stuck_ticks", 0),
            ingest.max_lag_messages,
            ingest.stuck_after_ticks,
        )
        key = raw_key(topic.raw_table or topic.name)
        restarted = restart_if_unheld(context, clickhouse, ingest, lag.topic, verdict.orphans)
        if restarted:
            lines.append(restarted)
            verdict.reasons.append(restarted)
            verdict = replace(verdict, stuck_ticks=0)  # the next restart only after as many stuck ticks again
        figures: dict[str, Any] = {
            "topic": lag.topic,
            "group": lag.group,
            "lag_messages": lag.total,
            "per_partition": [
                {"partition": p.partition, "high_watermark": p.high_watermark, "committed": p.committed, "lag": p.lag}
                for p in lag.partitions
            ],
            "consumer": lag.consumer,
            "error": lag.error or "",
            "restarted_consumers": bool(restarted),
        }
        events.append(AssetObservation(asset_key=key, metadata=figures))
        if before.get("flagged") != verdict.flagged:
            events.append(
                AssetCheckEvaluation(
                    asset_key=key,
                    check_name="consumer_lag",
                    passed=not verdict.flagged,
                    severity=AssetCheckSeverity.ERROR,
                    description="; ".join(verdict.reasons) or f"lag {lag.total} messages",
                    metadata={"lag_messages": lag.total},
                )
            )
        new_state[lag.topic] = {
            "committed": lag.committed_map(),
            "stuck_ticks": verdict.stuck_ticks,
            "flagged": verdict.flagged,
        }
        parts = ", ".join(f"p{p.partition}={p.lag}" for p in lag.partitions)
        status = "FLAGGED " + "; ".join(verdict.reasons) if verdict.flagged else "ok"
        lines.append(f"{lag.topic}: lag {lag.total} ({parts}) {status}")
    try:
        record_lag(clickhouse, lags, observed_at, context)
    except Exception as exc:  # noqa: BLE001 - the history is lost for this tick; the figures and checks are not
        first = str(exc).strip().splitlines()[0][:200] if str(exc).strip() else type(exc).__name__
        context.log.warning(f"consumer lag not recorded in ops.kafka_consumer_lag: {first}")
    return SensorResult(skip_reason=" | ".join(lines), asset_events=events, cursor=json.dumps(new_state))


def restart_if_unheld(
    context: SensorEvaluationContext,
    clickhouse: ClickHouseResource,
    ingest: IngestResource,
    table: str,
    orphans: list[int],
) -> str:
    """Re-attach the Kafka table of a stuck topic whose waiting partitions no consumer holds
    (ingest/heal.py); returns what was done, for the tick's reason and the check, or ''."""
    if not orphans or not ingest.restart_unheld_consumers:
        return ""
    try:
        nodes = restart_consumers(clickhouse, table, context)
    except Exception as exc:  # noqa: BLE001 - the check already fails on the stuck topic; say why the cure did not run
        first = str(exc).strip().splitlines()[0][:200] if str(exc).strip() else type(exc).__name__
        return f"{table}: restarting its consumers failed: {first}"
    message = (
        f"{table}: restarted its consumers (kafka_queue.{table} re-attached on {nodes} node(s)): "
        f"no consumer held partition(s) {orphans}"
    )
    context.log.warning(message)
    return message
