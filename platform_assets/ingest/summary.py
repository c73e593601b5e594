"""Ingestion figures for the demo summary: a burst of events straight onto the topics (plus a
few poison messages), then rows landed, dead letters and consumer lag."""

from __future__ import annotations

import json
import random
import time
import uuid
from typing import Any

from platform_assets.ingest.monitor import read_lag
from platform_assets.ingest.topics import CONSUMED
from platform_assets.resources import ClickHouseResource, KafkaResource

MODELS = [("gpt-4o-mini", "openai", 0.15e-6, 0.6e-6), ("claude-3-5-haiku", "anthropic", 0.8e-6, 4e-6)]


def _agent_event(rng: random.Random, run: str) -> dict[str, Any]:
    model, provider, cin, cout = rng.choice(MODELS)
    return {
        "event_id": str(uuid.UUID(int=rng.getrandbits(128), version=4)),
        "event_type": rng.choice(["llm_call", "llm_call", "tool_call", "agent_run_finished"]),
        "occurred_at": time.strftime("%Y-%m-%dT%H:%M:%S.000Z", time.gmtime()),
        "workspace_id": f"ws_{rng.randint(1, 3)}",
        "session_id": run,
        "actor_id": f"u_{rng.randint(1, 50)}",
        "source": "demo",
        "model": model,
        "provider": provider,
        "input_tokens": rng.randint(50, 4000),
        "output_tokens": rng.randint(10, 800),
        "latency_ms": round(rng.lognormvariate(6, 0.6), 1),
        "success": int(rng.random() > 0.03),
        "unit_cost_input": cin,
        "unit_cost_output": cout,
    }


def _product_event(rng: random.Random, run: str) -> dict[str, Any]:
    return {
        "event_id": str(uuid.UUID(int=rng.getrandbits(128), version=4)),
        "event_type": rng.choice(["page_view", "page_view", "feature_used", "session_start"]),
        "occurred_at": time.strftime("%Y-%m-%dT%H:%M:%S.000Z", time.gmtime()),
        "workspace_id": f"ws_{rng.randint(1, 3)}",
        "session_id": run,
        "actor_id": f"u_{rng.randint(1, 50)}",
        "source": "demo",
        "properties": {"path": rng.choice(["/", "/pricing", "/docs"])},
    }


def ingest_summary(
    kafka: KafkaResource, clickhouse: ClickHouseResource, per_topic: int = 1000, poison_every: int = 100
) -> dict[str, Any]:
    run = f"demo-{uuid.uuid4().hex[:8]}"
    rng = random.Random(run)
    producer = kafka.producer(**{"linger.ms": 0, "batch.num.messages": 1})  # see the Tansu note
    produced: dict[str, int] = {}
    poison = 0
    for topic, make in (("agent_events", _agent_event), ("product_events", _product_event)):
        for i in range(per_topic):
            if i % poison_every == poison_every - 1:
                producer.produce(topic, value=f'{{"event_id": "{run}-poison-{i}"'.encode())
                poison += 1
            else:
                producer.produce(topic, value=json.dumps(make(rng, run)).encode())
            producer.poll(0)
        produced[topic] = per_topic
    producer.flush(30)
    good = {t: per_topic - per_topic // poison_every for t in produced}
    landed: dict[str, int] = {}
    dead = 0
    started = time.monotonic()
    with clickhouse.client() as ch:
        while time.monotonic() - started < 90:
            landed = {
                t: ch.query(
                    f"SELECT count() FROM raw.{t} WHERE session_id = {{run:String}}", parameters={"run": run}
                ).result_rows[0][0]
                for t in produced
            }
            dead = ch.query(
                "SELECT count() FROM dead_letter.kafka_messages WHERE position(raw_message, {run:String}) > 0",
                parameters={"run": run},
            ).result_rows[0][0]
            if landed == good and dead == poison:
                break
            time.sleep(0.5)
    seconds = round(time.monotonic() - started, 2)
    lags = read_lag(kafka, clickhouse, [t.name for t in CONSUMED])
    return {
        "messages_produced": produced,
        "poison_messages_produced": poison,
        "rows_landed": landed,
        "rows_expected": good,
        "dead_letters": dead,
        "landed_within_s": seconds,
        "consumer_lag": {lag.topic: {"messages": lag.total, "error": lag.error} for lag in lags},
        "all_landed": landed == good and dead == poison,
    }
