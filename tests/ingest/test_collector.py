"""The collector over real HTTP, with a real Kafka broker and ClickHouse behind it."""

from __future__ import annotations

import hashlib
import hmac
import json
import os
import signal
import time
import uuid
from datetime import UTC, datetime

import pytest
import requests
from dagster import DagsterInstance, materialize
from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor

from platform_assets.core.identity import user_hash
from platform_assets.demo.ingest import RunningCollector
from platform_assets.ingest.assets import kafka_topics
from platform_assets.ingest.collector.app import CollectorConfig
from platform_assets.ingest.collector.events import sign
from platform_assets.ingest.monitor import broker_lag
from platform_assets.ops.assets import clickhouse_schema
from platform_assets.synthetic.agents import AgentSimulator

pytestmark = pytest.mark.integration

KEYS = {"k2026a": b"first-secret-0123456789", "k2026b": b"rotated-secret-0123456789"}
HASH_KEY = b"hash-key-for-tests-0123"
# Rows older than the raw tables' 90-day TTL are dropped on insert: stamp events with today.
TODAY = datetime.now(UTC).strftime("%Y-%m-%d")


@pytest.fixture(scope="module")
def collector(stack, clickhouse, kafka):
    result = materialize(
        [kafka_topics, clickhouse_schema],
        resources={"clickhouse": clickhouse, "kafka": kafka},
        instance=DagsterInstance.ephemeral(),
    )
    assert result.success
    cfg = CollectorConfig(
        bootstrap_servers=kafka.bootstrap_servers,
        hmac_keys=KEYS,
        hash_key=HASH_KEY,
        max_body_bytes=256 * 1024,
        max_batch_events=500,
        ack_timeout_s=3.0,
        max_message_bytes=64 * 1024,  # small, so splitting and the per-event limit are exercised
    )
    with RunningCollector(cfg) as running:
        yield running.url


def post_batch(url, events, key_id="k2026a", secret=None, timestamp=None, signature=None):
    body = json.dumps({"events": events}).encode()
    ts = timestamp or str(int(time.time()))
    sig = signature or sign(secret or KEYS[key_id], ts, body)
    return requests.post(
        f"{url}/ingest",
        data=body,
        headers={"Content-Type": "application/json", "X-Key-Id": key_id, "X-Timestamp": ts, "X-Signature": sig},
        timeout=30,
    )


def agent_event(ws, **extra):
    return {
        "event_id": str(uuid.uuid4()),
        "event_type": "llm_call",
        "occurred_at": f"{TODAY}T12:00:00.500Z",
        "workspace_id": ws,
        "session_id": "sess-1",
        "actor_id": "user-42",
        "source": "sdk",
        "context": {"email": "someone@example.com", "env": "prod"},
        "model": "gpt-4o-mini",
        "provider": "openai",
        "input_tokens": 1000,
        "output_tokens": 200,
        "latency_ms": 350.5,
        "success": True,
        "unit_cost_input": 0.15e-6,
        "unit_cost_output": 0.6e-6,
        **extra,
    }


def rows(clickhouse, sql):
    with clickhouse.client() as ch:
        return ch.query(sql).result_rows


def wait_rows(clickhouse, sql, expected, timeout=60):
    deadline = time.monotonic() + timeout
    got = None
    while time.monotonic() < deadline:
        got = rows(clickhouse, sql)[0]
        if got == expected:
            break
        time.sleep(0.5)
    return got


def high_watermarks(kafka) -> int:
    return sum(p.high_watermark for t in ("agent_events", "product_events") for p in broker_lag(kafka, t).partitions)


def test_signed_batch_lands_with_pii_removed(collector, clickhouse):
    ws = f"ws_{uuid.uuid4().hex[:8]}"
    product = [
        {
            "event_id": str(uuid.uuid4()),
            "event_type": "page_view",
            "occurred_at": f"{TODAY}T12:00:01Z",
            "workspace_id": ws,
            "actor_id": "user-42",
            "properties": {"path": "/pricing", "email": "x@y.z"},
        }
        for _ in range(30)
    ]
    resp = post_batch(collector, [agent_event(ws) for _ in range(70)] + product, key_id="k2026b")  # rotated key
    assert resp.status_code == 202, resp.text
    assert resp.json() == {"accepted": 100}
    assert wait_rows(clickhouse, f"SELECT count() FROM raw.agent_events WHERE workspace_id = '{ws}'", (70,)) == (70,)
    assert wait_rows(clickhouse, f"SELECT count() FROM raw.product_events WHERE workspace_id = '{ws}'", (30,)) == (30,)
    actor, context, cost = rows(
        clickhouse,
        "SELECT any(actor_id), any(context), round(any(cost_usd), 9) FROM raw.agent_events "
        f"WHERE workspace_id = '{ws}'",
    )[0]
    assert actor == hmac.new(HASH_KEY, b"user-42", hashlib.sha256).hexdigest()[:32]
    assert json.loads(context) == {"env": "prod"}  # email dropped
    assert cost == round(1000 * 0.15e-6 + 200 * 0.6e-6, 9)
    props = rows(clickhouse, f"SELECT any(properties) FROM raw.product_events WHERE workspace_id = '{ws}'")[0][0]
    assert json.loads(props) == {"path": "/pricing"}
    # One Kafka message per topic for the batch: every row of a table came from the same offset.
    for table in ("agent_events", "product_events"):
        sql = f"SELECT uniqExact(kafka_partition, kafka_offset) FROM raw.{table} WHERE workspace_id = '{ws}'"
        assert rows(clickhouse, sql)[0] == (1,)


def test_a_message_with_one_bad_row_is_one_dead_letter_and_no_raw_rows(collector, kafka, clickhouse):
    ws, tag = f"ws_{uuid.uuid4().hex[:8]}", f"poison-{uuid.uuid4().hex[:8]}"
    good_rows = [json.dumps({**agent_event(ws), "context": "{}", "success": 1}).encode() for _ in range(3)]
    producer = kafka.producer()  # default batching: both messages may share one produce request
    producer.produce("agent_events", value=b"\n".join([*good_rows[:2], f"{{{tag}".encode(), good_rows[2]]))
    producer.produce("agent_events", value=b"\n".join(good_rows[:1]) + b"\n")  # a trailing newline is fine
    assert producer.flush(30) == 0
    sql = f"SELECT count(), any(position(raw_message, '{ws}') > 0) FROM dead_letter.kafka_messages "
    assert wait_rows(clickhouse, sql + f"WHERE position(raw_message, '{tag}') > 0", (1, 1)) == (1, 1)
    # The whole message is the dead letter; only the separate one-row message landed.
    assert wait_rows(clickhouse, f"SELECT count() FROM raw.agent_events WHERE workspace_id = '{ws}'", (1,)) == (1,)


@pytest.mark.parametrize(
    ("kwargs", "reason"),
    [
        ({"signature": "00" * 32}, "signature does not match"),
        ({"key_id": "nope", "secret": b"x" * 20}, "unknown key id"),
        ({"timestamp": str(int(time.time()) - 3600)}, "replay window"),
    ],
)
def test_bad_signature_is_401_and_produces_nothing(collector, kafka, kwargs, reason):
    before = high_watermarks(kafka)
    resp = post_batch(collector, [agent_event("ws_bad")], **kwargs)
    assert resp.status_code == 401 and reason in resp.json()["error"]
    missing = requests.post(f"{collector}/ingest", data=b"[]", timeout=10)
    assert missing.status_code == 401 and "missing" in missing.json()["error"]
    time.sleep(1)
    assert high_watermarks(kafka) == before


def test_oversize_is_413_and_schema_error_is_422_naming_the_field(collector):
    big = [agent_event("ws_big", context={"pad": "x" * 2000}) for _ in range(200)]  # > 256 KiB
    assert post_batch(collector, big).status_code == 413
    too_many = [
        {
            "event_id": str(uuid.uuid4()),
            "event_type": "page_view",
            "occurred_at": f"{TODAY}T00:00:00Z",
            "workspace_id": "w",
        }
        for _ in range(501)
    ]
    assert post_batch(collector, too_many).status_code == 413
    bad = [agent_event("ws_422"), agent_event("ws_422", event_id="nope", input_tokens=-3)]
    resp = post_batch(collector, bad)
    assert resp.status_code == 422
    errors = resp.json()["errors"]
    assert "events[1].event_id: expected a UUID, got 'nope'" in errors
    assert "events[1].input_tokens: expected an integer from 0 to 4294967295" in errors


def test_an_event_no_kafka_message_can_carry_is_413_naming_it_and_produces_nothing(collector, kafka):
    before = high_watermarks(kafka)
    batch = [agent_event("ws_huge"), agent_event("ws_huge", context={"pad": "x" * 100_000}), agent_event("ws_huge")]
    resp = post_batch(collector, batch)
    assert resp.status_code == 413, resp.text
    (error,) = resp.json()["errors"]
    assert error.startswith(f"events[1] ({batch[1]['event_id']}): ") and "65536-byte message limit" in error
    time.sleep(1)
    assert high_watermarks(kafka) == before


def reader_from_start(kafka, topic: str):
    """A consumer of ``topic`` from its first offset, in a group of its own."""
    consumer = kafka.consumer(
        f"t-{uuid.uuid4().hex[:8]}", **{"auto.offset.reset": "earliest", "session.timeout.ms": 6000}
    )
    consumer.subscribe([topic])
    return consumer


def messages_on_topic(kafka, topic: str, key: bytes, spans: int, timeout=30) -> list[bytes]:
    """The values of the messages keyed ``key``, read until they hold ``spans`` spans."""
    consumer = reader_from_start(kafka, topic)
    found: list[bytes] = []
    deadline = time.monotonic() + timeout
    try:
        while time.monotonic() < deadline and sum(m.count(b'"spanId"') for m in found) < spans:
            msg = consumer.poll(1.0)
            if msg is not None and not msg.error() and msg.key() == key:
                found.append(msg.value())
    finally:
        consumer.close()
    return found


def test_a_trace_export_over_the_message_limit_is_split_and_every_span_lands(collector, kafka, clickhouse):
    trace_id = uuid.uuid4().hex
    spans = [
        {
            "traceId": trace_id,
            "spanId": f"{i + 1:016x}",
            "name": f"tool_call {i}",
            "kind": 1,
            "startTimeUnixNano": str(time.time_ns()),
            "endTimeUnixNano": str(time.time_ns() + 5_000_000),
            "attributes": [{"key": "note", "value": {"stringValue": "y" * 250}}],
        }
        for i in range(400)
    ]  # about 160 KB of spans (under the 256 KiB body limit): at least three 64 KiB messages
    body = {
        "resourceSpans": [
            {
                "resource": {"attributes": [{"key": "service.name", "value": {"stringValue": "big-export"}}]},
                "scopeSpans": [{"scope": {"name": "test"}, "spans": spans}],
            }
        ]
    }
    resp = requests.post(f"{collector}/v1/traces", json=body, timeout=30)
    assert resp.status_code == 200, resp.text
    messages = messages_on_topic(kafka, "otlp_spans", trace_id.encode(), spans=400)
    assert len(messages) >= 3 and all(len(m) <= 64 * 1024 for m in messages)
    on_topic = [
        s for m in messages for rs in json.loads(m)["resourceSpans"] for ss in rs["scopeSpans"] for s in ss["spans"]
    ]
    assert [s["spanId"] for s in on_topic] == [s["spanId"] for s in spans]  # all, once, in order
    sql = f"SELECT count(), uniqExact(span_id), any(service) FROM raw.spans WHERE trace_id = '{trace_id}'"
    assert wait_rows(clickhouse, sql, (400, 400, "big-export")) == (400, 400, "big-export")


def spans_on_topic(kafka, trace_id: str, timeout=30) -> list[dict]:
    consumer = reader_from_start(kafka, "otlp_spans")
    found: list[dict] = []
    deadline = time.monotonic() + timeout
    try:
        while time.monotonic() < deadline and len(found) < 2:
            msg = consumer.poll(1.0)
            if msg is None or msg.error():
                continue
            payload = json.loads(msg.value())
            for rs in payload.get("resourceSpans", []):
                for ss in rs.get("scopeSpans", []):
                    found += [
                        {**s, "_resource": rs.get("resource", {})}
                        for s in ss.get("spans", [])
                        if s["traceId"] == trace_id
                    ]
    finally:
        consumer.close()
    return found


def test_otel_sdk_spans_reach_the_topic_as_otlp_json(collector, kafka, clickhouse):
    provider = TracerProvider(resource=Resource.create({"service.name": "agent-sim", "tenant.id": "ws_otel"}))
    provider.add_span_processor(SimpleSpanProcessor(OTLPSpanExporter(endpoint=f"{collector}/v1/traces", timeout=10)))
    tracer = provider.get_tracer("test")
    with tracer.start_as_current_span("agent_run") as root, tracer.start_as_current_span("chat gpt-4o-mini") as child:
        child.set_attribute("gen_ai.request.model", "gpt-4o-mini")
        child.set_attribute("gen_ai.usage.input_tokens", 120)
        time.sleep(0.01)
    provider.force_flush()
    trace_id = format(root.get_span_context().trace_id, "032x")
    spans = {s["name"]: s for s in spans_on_topic(kafka, trace_id)}
    assert set(spans) == {"agent_run", "chat gpt-4o-mini"}
    parent, llm = spans["agent_run"], spans["chat gpt-4o-mini"]
    assert parent["spanId"] == format(root.get_span_context().span_id, "016x")
    assert llm["parentSpanId"] == parent["spanId"] and "parentSpanId" not in parent
    assert int(llm["endTimeUnixNano"]) - int(llm["startTimeUnixNano"]) >= 10_000_000
    attrs = {a["key"]: a["value"] for a in llm["attributes"]}
    assert attrs["gen_ai.request.model"] == {"stringValue": "gpt-4o-mini"}
    assert attrs["gen_ai.usage.input_tokens"] == {"intValue": "120"}
    provider.shutdown()

    # And flattened into raw.spans by ClickHouse, one row per span.
    assert wait_rows(clickhouse, f"SELECT count() FROM raw.spans WHERE trace_id = '{trace_id}'", (2,)) == (2,)
    landed = {
        r[0]: r[1:]
        for r in rows(
            clickhouse,
            "SELECT operation, span_id, parent_span_id, service, tenant, duration_ms >= 10, "
            f"attributes['gen_ai.request.model'], attributes['gen_ai.usage.input_tokens'] FROM raw.spans "
            f"WHERE trace_id = '{trace_id}'",
        )
    }
    assert landed["agent_run"][:4] == (parent["spanId"], "", "agent-sim", "ws_otel")
    assert landed["chat gpt-4o-mini"] == (
        llm["spanId"],
        parent["spanId"],
        "agent-sim",
        "ws_otel",
        1,
        "gpt-4o-mini",
        "120",
    )


def stored_anywhere(clickhouse, needle: str) -> dict[str, int]:
    """Rows per table.column holding ``needle`` in any String, Map or JSON column of any stored
    ClickHouse table (MergeTree family; Kafka tables are not read: that would consume)."""
    with clickhouse.client() as ch:
        columns = ch.query(
            "SELECT c.database, c.table, c.name FROM system.columns AS c "
            "JOIN system.tables AS t ON t.database = c.database AND t.name = c.table "
            "WHERE c.database NOT IN ('system', 'INFORMATION_SCHEMA', 'information_schema') "
            "AND t.engine LIKE '%MergeTree%' AND match(c.type, 'String|Map|JSON')"
        ).result_rows
        hits = {}
        for db, table, column in columns:
            n = ch.command(
                f"SELECT count() FROM `{db}`.`{table}` WHERE position(toString(`{column}`), {{v:String}}) > 0",
                parameters={"v": needle},
            )
            if n:
                hits[f"{db}.{table}.{column}"] = n
    return hits


def test_otlp_attribute_pii_is_deleted_or_hashed_before_kafka(collector, kafka, clickhouse):
    """An SDK program in the common pre-semconv style: a numeric user_id and e-mails as
    resource and span attributes. None of the raw values reaches Kafka or any ClickHouse table;
    the user id arrives as the same pseudonym signed batches get."""
    user_id = 7_000_000_000 + uuid.uuid4().int % 1_000_000_000
    email = f"pii-{uuid.uuid4().hex[:10]}@example.com"
    resource = Resource.create({"service.name": "pii-app", "tenant.id": "ws_pii", "user_email": email})
    provider = TracerProvider(resource=resource)
    provider.add_span_processor(SimpleSpanProcessor(OTLPSpanExporter(endpoint=f"{collector}/v1/traces", timeout=10)))
    tracer = provider.get_tracer("pii-test")
    with tracer.start_as_current_span("request") as root:
        root.set_attribute("user_id", user_id)
        root.set_attribute("client.address", "203.0.113.9")
        with tracer.start_as_current_span("chat") as child:
            child.set_attribute("enduser.id", str(user_id))
            child.set_attribute("User_Email", email)
            child.add_event("lookup", {"email": email, "step": "1"})
            child.set_attribute("model", "gpt-4o-mini")
    provider.force_flush()
    provider.shutdown()
    trace_id = format(root.get_span_context().trace_id, "032x")

    on_topic = spans_on_topic(kafka, trace_id)
    assert len(on_topic) == 2
    text = json.dumps(on_topic)
    assert str(user_id) not in text and email not in text and "203.0.113.9" not in text, text
    pseudonym = user_hash(HASH_KEY, str(user_id))
    assert wait_rows(clickhouse, f"SELECT count() FROM raw.spans WHERE trace_id = '{trace_id}'", (2,)) == (2,)
    landed = {
        r[0]: r[1:]
        for r in rows(
            clickhouse,
            "SELECT operation, attributes['user_id'], attributes['enduser.id'], attributes['model'], "
            "mapContains(attributes, 'User_Email'), mapContains(resource_attributes, 'user_email'), "
            f"mapContains(attributes, 'client.address') FROM raw.spans WHERE trace_id = '{trace_id}'",
        )
    }
    assert landed == {
        "request": (pseudonym, "", "", False, False, False),
        "chat": ("", pseudonym, "gpt-4o-mini", False, False, False),
    }
    for needle in (str(user_id), email, "203.0.113.9"):
        assert stored_anywhere(clickhouse, needle) == {}, needle
    assert stored_anywhere(clickhouse, pseudonym) == {"raw.spans.attributes": 2}


def test_common_attribute_names_are_read_as_the_genai_conventions_in_staging(collector, clickhouse, dbt):
    """An SDK program in the common pre-semconv style: model, provider and agent on the resource,
    tokens as tokens_prompt / tokens_completion on the span. Staging reads them as it reads the
    gen_ai.* names; a span's own name wins over the resource's; only the LLM span is a call.
    Cached and reasoning tokens, a reported cost, an error told by a `status` or `error`
    attribute (status unset), the route and the resource's service.version are read the same way;
    the call without a cost of its own is priced from the seed's row in effect today."""
    from platform_assets.synthetic.prices import price_on

    resource = Resource.create(
        {"service.name": "legacy-agent", "tenant.id": "ws_alias", "model": "claude-3-5-haiku",
         "provider": "anthropic", "agent": "support-bot", "service.version": "1.2.3"}
    )  # fmt: skip
    provider = TracerProvider(resource=resource)
    provider.add_span_processor(SimpleSpanProcessor(OTLPSpanExporter(endpoint=f"{collector}/v1/traces", timeout=10)))
    tracer = provider.get_tracer("alias-test")
    with tracer.start_as_current_span("handle request") as root:
        root.set_attribute("http.route", "/v1/chat")
        with tracer.start_as_current_span("llm") as llm:
            llm.set_attribute("tokens_prompt", 200)
            llm.set_attribute("tokens_completion", 50)
            llm.set_attribute("cached_tokens", 120)
            llm.set_attribute("reasoning_tokens", 30)
            llm.set_attribute("cost_usd", 0.0042)
            llm.set_attribute("status", "error")
        with tracer.start_as_current_span("summarise") as semconv:
            semconv.set_attribute("gen_ai.request.model", "gpt-4o-mini")  # on the span: wins
            semconv.set_attribute("llm.usage.prompt_tokens", 30)
            semconv.set_attribute("gen_ai.usage.cache_read_input_tokens", 10)
            semconv.set_attribute("error", True)
        with tracer.start_as_current_span("search") as tool:
            tool.set_attribute("tool_name", "web_search")
            tool.set_attribute("route", "/search")
    provider.force_flush()
    provider.shutdown()
    trace_id = format(root.get_span_context().trace_id, "032x")
    assert wait_rows(clickhouse, f"SELECT count() FROM raw.spans WHERE trace_id = '{trace_id}'", (4,)) == (4,)

    today = datetime.now(UTC).date()
    window = {"min_date": today.isoformat(), "max_date": "2100-01-01"}
    dbt("build", "--select", "model_prices", "stg_kafka__spans", vars=window)  # staging prices with the seed
    got = {
        r[0]: r[1:]
        for r in rows(
            clickhouse,
            "SELECT operation, workspace_id, agent_name, model, provider, input_tokens, output_tokens, tool_name, "
            "is_llm_call, cached_input_tokens, reasoning_tokens, cost_source, is_error, route, service_version "
            f"FROM staging.stg_kafka__spans WHERE trace_id = '{trace_id}'",
        )
    }
    ws, agent, haiku = "ws_alias", "support-bot", "claude-3-5-haiku"
    assert got == {
        "handle request": (ws, agent, haiku, "anthropic", 0, 0, "", False, 0, 0, "", False, "/v1/chat", "1.2.3"),
        "llm": (ws, agent, haiku, "anthropic", 200, 50, "", True, 120, 30, "reported", True, "", "1.2.3"),
        "summarise": (ws, agent, "gpt-4o-mini", "anthropic", 30, 0, "", True, 10, 0, "price_table", True, "", "1.2.3"),
        "search": (ws, agent, haiku, "anthropic", 0, 0, "web_search", False, 0, 0, "", False, "/search", "1.2.3"),
    }
    costs = dict(
        rows(clickhouse, f"SELECT operation, cost_usd FROM staging.stg_kafka__spans WHERE trace_id = '{trace_id}'")
    )
    price = price_on("gpt-4o-mini", today)
    assert price is not None
    assert costs["llm"] == 0.0042  # as reported, not priced from the tokens
    assert costs["summarise"] == pytest.approx(20 * price.usd_per_input_token + 10 * price.usd_per_cached_input_token)
    assert costs["handle request"] == costs["search"] == 0


def test_otlp_json_encoding_is_accepted_and_bad_payload_is_400(collector, kafka):
    trace_id, span_id = uuid.uuid4().hex, uuid.uuid4().hex[:16]
    body = {
        "resourceSpans": [
            {
                "resource": {"attributes": []},
                "scopeSpans": [
                    {
                        "spans": [
                            {
                                "traceId": trace_id,
                                "spanId": span_id,
                                "name": "json-span",
                                "kind": 1,
                                "startTimeUnixNano": "1",
                                "endTimeUnixNano": "2",
                            }
                        ]
                    }
                ],
            }
        ]
    }
    resp = requests.post(f"{collector}/v1/traces", json=body, timeout=10)
    assert resp.status_code == 200, resp.text
    (span,) = spans_on_topic(kafka, trace_id)
    assert span["spanId"] == span_id
    bad = requests.post(f"{collector}/v1/traces", json={"resourceSpans": "nope"}, timeout=10)
    assert bad.status_code == 400


def test_broker_down_is_503_then_everything_accepted_lands(collector, stack, clickhouse):
    ws = f"ws_{uuid.uuid4().hex[:8]}"
    assert post_batch(collector, [agent_event(ws) for _ in range(10)]).status_code == 202
    pid = stack.servers["kafka"].pid()
    os.kill(pid, signal.SIGSTOP)  # the broker stops answering (its data stays, unlike a memory-storage restart)
    try:
        paused = post_batch(collector, [agent_event(ws) for _ in range(5)])
        assert paused.status_code == 503 and paused.headers["Retry-After"] == "5"
    finally:
        os.kill(pid, signal.SIGCONT)
    # The client retries the refused batch (same event ids) after the broker is back.
    retry_events = json.loads(paused.request.body)["events"]
    deadline = time.monotonic() + 60
    while post_batch(collector, retry_events).status_code != 202:
        assert time.monotonic() < deadline
        time.sleep(1)
    got = wait_rows(
        clickhouse, f"SELECT uniqExact(event_id) FROM raw.agent_events WHERE workspace_id = '{ws}'", (15,), timeout=90
    )
    assert got == (15,)


def test_agent_simulator_is_deterministic_and_lands(collector, clickhouse):
    records = [
        AgentSimulator(collector, "k2026a", KEYS["k2026a"], seed=99).run(runs=8, product_events=20) for _ in range(2)
    ]
    first, second = (r.to_json() for r in records)
    assert first == second  # same ids, names, tokens, errors for the same seed
    assert first["runs"] == 8 and len(first["trace_ids"]) == 8
    assert first["spans_by_operation"]["invoke_agent"] == 8
    # Sent twice with the same ids: at-least-once duplicates, one distinct event per id.
    marker = first["marker"]
    expected = (first["agent_events"] * 2, first["agent_events"])
    got = wait_rows(
        clickhouse,
        f"SELECT count(), uniqExact(event_id) FROM raw.agent_events WHERE position(context, '{marker}') > 0",
        expected,
    )
    assert got == expected
    spans = wait_rows(
        clickhouse,
        "SELECT uniqExact(trace_id), countIf(parent_span_id = '') FROM raw.spans "
        f"WHERE trace_id IN {tuple(first['trace_ids'])}",
        (8, 16),
    )
    assert spans == (8, 16)  # 8 traces, each root twice (sent twice)
