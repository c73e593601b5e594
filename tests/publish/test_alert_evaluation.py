"""Alert evaluation harness on the real stack: each rule's query A, reduced and compared as Grafana
does (platform_assets.publish.evaluate), over data sent the way clients send it (an OpenTelemetry
SDK TracerProvider with the OTLP/HTTP exporter, signed event batches) through the collector, Kafka
and the streaming rollups.

Every test uses its own service, model or workspace, so the series it asserts on are its own
whatever else the session stack holds: an injected cause makes the condition hold within its
deadline; the control series beside it does not hold.
"""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta

import pytest
import requests
from dagster import DagsterInstance, materialize
from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor
from opentelemetry.trace import Status, StatusCode

from platform_assets.demo.ingest import RunningCollector
from platform_assets.ingest.assets import kafka_topics
from platform_assets.ingest.collector.config import CollectorConfig
from platform_assets.ingest.collector.events import sign
from platform_assets.ops.assets import clickhouse_schema
from platform_assets.publish.alert_spec import AlertSpec
from platform_assets.publish.alerts import ALERTS
from platform_assets.publish.evaluate import Series, evaluate

pytestmark = pytest.mark.integration

KEY_ID, SECRET = "alerts", b"alert-harness-secret-0123"
RULES = {spec.uid: spec for spec in ALERTS}


@pytest.fixture(scope="module")
def collector(stack, clickhouse, kafka, dbt) -> Iterator[RunningCollector]:
    result = materialize(
        [kafka_topics, clickhouse_schema],
        resources={"clickhouse": clickhouse, "kafka": kafka},
        instance=DagsterInstance.ephemeral(),
    )
    assert result.success
    # the cost rule prices tokens with model_prices; the spend rule reads the guardrails
    dbt("seed", "--select", "model_prices", "workspace_spend_guardrails")
    cfg = CollectorConfig(bootstrap_servers=kafka.bootstrap_servers, hmac_keys={KEY_ID: SECRET},
                          hash_key=b"alert-harness-hash-key", ack_timeout_s=10.0)  # fmt: skip
    with RunningCollector(cfg) as running:
        yield running


@pytest.fixture
def ch(clickhouse):
    with clickhouse.client() as client:
        yield client


class Program:
    """An instrumented service: the OpenTelemetry SDK's TracerProvider, BatchSpanProcessor and
    OTLP/HTTP span exporter pointed at the collector, as the SDK's documentation sets them up."""

    def __init__(self, collector: RunningCollector, service: str, workspace: str) -> None:
        resource = Resource.create({"service.name": service, "tenant.id": workspace})
        self.provider = TracerProvider(resource=resource)
        self.provider.add_span_processor(BatchSpanProcessor(OTLPSpanExporter(endpoint=f"{collector.url}/v1/traces")))
        self.tracer = self.provider.get_tracer("alert-harness")

    def llm_call(
        self, model: str, *, error: bool = False, latency_s: float = 0.8, at: datetime | None = None,
        cost_usd: float | None = None,
    ) -> None:  # fmt: skip
        end = at or datetime.now(UTC)
        end_ns = int(end.timestamp() * 1e9)
        span = self.tracer.start_span(f"chat {model}", start_time=end_ns - int(latency_s * 1e9))
        span.set_attribute("gen_ai.operation.name", "chat")
        span.set_attribute("gen_ai.request.model", model)
        span.set_attribute("gen_ai.usage.input_tokens", 120)
        span.set_attribute("gen_ai.usage.output_tokens", 40)
        if cost_usd is not None:
            span.set_attribute("gen_ai.usage.cost", cost_usd)
        if error:
            span.set_status(Status(StatusCode.ERROR, "upstream 500"))
        span.end(end_time=end_ns)

    def flush(self) -> None:
        assert self.provider.force_flush(30_000), "the SDK could not export its spans"

    def shutdown(self) -> None:
        self.provider.shutdown()


@pytest.fixture
def program(collector) -> Iterator[Callable[[str, str], Program]]:
    made: list[Program] = []

    def make(service: str, workspace: str) -> Program:
        made.append(Program(collector, service, workspace))
        return made[-1]

    yield make
    for p in made:
        p.shutdown()


def mine(spec: AlertSpec, ch, label: str, value: str) -> Series | None:
    found = [s for s in evaluate(spec, ch) if s.label_map.get(label) == value]
    assert len(found) <= 1, found
    return found[0] if found else None


def wait_until(
    what: str, check: Callable[[], Series | None], done: Callable[[Series], bool], timeout: float
) -> tuple[Series, float]:
    """Polls ``check`` twice a second until it returns a series for which ``done`` is true;
    returns it and the seconds it took. Fails naming the last series seen."""
    start, last = time.monotonic(), None
    while time.monotonic() - start < timeout:
        last = check()
        if last is not None and done(last):
            return last, time.monotonic() - start
        time.sleep(0.5)
    pytest.fail(f"{what}: not reached within {timeout:.0f}s (last series: {last})")


def holds(s: Series) -> bool:
    return s.holds


def near(value: float, rel: float = 1e-6) -> Callable[[Series], bool]:
    return lambda s: s.value is not None and s.value == pytest.approx(value, rel=rel, abs=1e-9)


def test_error_burst_makes_the_error_rate_rule_hold_within_60s(collector, program, ch) -> None:
    spec = RULES["platform-agent-error-rate"]
    tag = uuid.uuid4().hex[:8]
    burst, calm = f"svc-burst-{tag}", f"svc-calm-{tag}"
    for service in (burst, calm):
        p = program(service, f"ws_alerts_{tag}")
        for _ in range(60):
            p.llm_call("gpt-4o-mini")
        p.flush()
    before, _ = wait_until("healthy traffic", lambda: mine(spec, ch, "service", burst), near(0.0), 60)
    assert not before.holds, before

    p = program(burst, f"ws_alerts_{tag}")
    for _ in range(6):  # 6 errors in 66 calls: 9%
        p.llm_call("gpt-4o-mini", error=True)
    p.flush()
    sent_at = time.monotonic()
    held, _ = wait_until("error burst", lambda: mine(spec, ch, "service", burst), holds, timeout=60)
    assert time.monotonic() - sent_at <= 60
    held, _ = wait_until("all of the burst", lambda: mine(spec, ch, "service", burst), near(6 / 66), 30)
    assert held.holds, held
    control, _ = wait_until("calm service", lambda: mine(spec, ch, "service", calm), near(0.0), 30)
    assert not control.holds, control


def test_slow_calls_make_the_p95_rule_hold_and_fast_ones_do_not(collector, program, ch) -> None:
    spec = RULES["platform-agent-p95-latency"]
    tag = uuid.uuid4().hex[:8]
    slow_model, fast_model = f"model-slow-{tag}", f"model-fast-{tag}"
    p = program(f"svc-latency-{tag}", f"ws_alerts_{tag}")
    for i in range(100):
        p.llm_call(fast_model, latency_s=0.5 + i / 100)  # 0.5-1.5 s
        p.llm_call(slow_model, latency_s=0.5 + i / 100 if i < 90 else 9.0)  # the slowest 10%: 9 s
    p.flush()
    # p95 of the slow model: 9 s; of the fast one, 0.5 + i/100 s for i = 0..99: 1440.5 ms
    # (linear interpolation); the sketch is within 1% of both
    held, _ = wait_until("slow calls", lambda: mine(spec, ch, "model", slow_model), near(9000, 0.01), 60)
    assert held.holds, held
    fast, _ = wait_until("fast calls", lambda: mine(spec, ch, "model", fast_model), near(1440.5, 0.01), 30)
    assert not fast.holds, fast


def test_no_data_rule_holds_within_5_minutes_and_one_evaluation_after_the_data_stops(collector, program, ch) -> None:
    """Spans whose minute is 4 minutes before the current one: the data "stopped" then. While that
    minute is within the 5-minute window the rule does not hold; it holds by the time 5 minutes plus
    one evaluation interval (60 s) have passed since the last span's minute ended."""
    spec = RULES["platform-signal-no-data"]
    tag = uuid.uuid4().hex[:8]
    service = f"svc-quiet-{tag}"
    last_minute = datetime.now(UTC).replace(second=0, microsecond=0) - timedelta(minutes=4)
    p = program(service, f"ws_alerts_{tag}")
    for i in range(5):
        p.llm_call("gpt-4o-mini", at=last_minute + timedelta(seconds=10 + i))
    p.flush()

    def traces() -> Series | None:
        found = [s for s in evaluate(spec, ch) if s.label_map == {"signal": "traces", "service": service}]
        return found[0] if found else None

    seen, _ = wait_until("the quiet service's spans", traces, lambda s: True, 60)
    if datetime.now(UTC) < last_minute + timedelta(minutes=5):
        assert not seen.holds and seen.value == 5, seen
    _, waited = wait_until("data stopped", traces, holds, timeout=150)
    deadline = last_minute + timedelta(minutes=1) + timedelta(minutes=5) + timedelta(seconds=60)
    assert datetime.now(UTC) <= deadline, f"held only after {waited:.0f}s of polling"


def test_cost_spike_against_the_same_hour_of_the_last_7_days(collector, program, ch) -> None:
    spec = RULES["platform-cost-spike"]
    tag = uuid.uuid4().hex[:8]
    spiking, steady = f"ws_spike_{tag}", f"ws_steady_{tag}"
    now = datetime.now(UTC)
    for ws in (spiking, steady):
        p = program(f"svc-cost-{tag}", ws)
        for days_ago in range(1, 8):  # 10 calls of $0.01 in this hour of each of the last 7 days
            hour = (now - timedelta(days=days_ago)).replace(minute=0, second=0, microsecond=0)
            for i in range(10):
                p.llm_call("gpt-4o-mini", at=hour + timedelta(minutes=5 * i + 1), cost_usd=0.01)
        p.flush()
    # baseline: $0.70 over 7 x 60 minutes = $0.00167 a minute
    steady_p = program(f"svc-cost-{tag}", steady)
    steady_p.llm_call("gpt-4o-mini", cost_usd=0.005)  # $0.001 a minute over 5 minutes: 0.6x
    steady_p.flush()
    spike_p = program(f"svc-cost-{tag}", spiking)
    for _ in range(5):
        spike_p.llm_call("gpt-4o-mini", cost_usd=0.02)  # $0.02 a minute: 12x
    spike_p.flush()
    spike = (0.10 / 5) / (0.70 / 420)
    held, _ = wait_until("cost spike", lambda: mine(spec, ch, "workspace_id", spiking), near(spike), 60)
    assert held.holds, held
    calm = (0.005 / 5) / (0.70 / 420)
    control, _ = wait_until("steady workspace", lambda: mine(spec, ch, "workspace_id", steady), near(calm), 30)
    assert not control.holds, control


def _post_events(collector: RunningCollector, events: list[dict]) -> None:
    body = json.dumps({"events": events}).encode()
    ts = str(int(time.time()))
    headers = {"Content-Type": "application/json", "X-Key-Id": KEY_ID, "X-Timestamp": ts,
               "X-Signature": sign(SECRET, ts, body)}  # fmt: skip
    resp = requests.post(f"{collector.url}/ingest", data=body, headers=headers, timeout=30)
    assert resp.status_code == 202, resp.text


def _page_views(ws: str, users: range, at: datetime) -> list[dict]:
    return [
        {"event_id": str(uuid.uuid4()), "event_type": "page_view", "occurred_at": at.isoformat().replace("+00:00", "Z"),
         "workspace_id": ws, "session_id": f"s-{u}", "actor_id": f"user-{u}", "source": "web",
         "properties": {"path": "/"}}
        for u in users
    ]  # fmt: skip


def test_dau_drop_over_20_percent_day_over_day(collector, ch) -> None:
    spec = RULES["platform-dau-drop"]
    tag = uuid.uuid4().hex[:8]
    dropping, steady = f"ws_dau_drop_{tag}", f"ws_dau_steady_{tag}"
    now = datetime.now(UTC)
    yesterday, today = now - timedelta(hours=30), now - timedelta(hours=2)
    _post_events(collector, _page_views(dropping, range(50), yesterday) + _page_views(dropping, range(30), today))
    _post_events(collector, _page_views(steady, range(50), yesterday) + _page_views(steady, range(45), today))
    held, _ = wait_until("DAU drop", lambda: mine(spec, ch, "workspace_id", dropping), near(1 - 30 / 50), 60)
    assert held.holds, held
    control, _ = wait_until("steady workspace", lambda: mine(spec, ch, "workspace_id", steady), near(1 - 45 / 50), 30)
    assert not control.holds, control


def _llm_calls(ws: str, n: int, at: datetime, *, input_tokens: int, output_tokens: int) -> list[dict]:
    """llm_call agent events as an SDK sends them: tokens and unit prices (the Kafka view costs them)."""
    return [
        {"event_id": str(uuid.uuid4()), "event_type": "llm_call", "occurred_at": at.isoformat().replace("+00:00", "Z"),
         "workspace_id": ws, "session_id": f"s-{i}", "actor_id": f"user-{i}", "source": "sdk", "model": "gpt-4o-mini",
         "provider": "openai", "input_tokens": input_tokens, "output_tokens": output_tokens, "latency_ms": 420.0,
         "success": True, "unit_cost_input": 2e-6, "unit_cost_output": 8e-6}
        for i in range(n)
    ]  # fmt: skip


def test_spend_guardrail_fires_for_the_workspace_over_its_own_limit(collector, ch) -> None:
    """Today's llm_call spend against the seed's limit: a workspace with its own row ($0.50) over
    it fires; one at the seed's default ('*' row) with the same spend does not."""
    spec = RULES["platform-spend-guardrail"]
    tag = uuid.uuid4().hex[:8]
    limited, default = f"ws_guard_{tag}", f"ws_guard_default_{tag}"
    default_limit = ch.query(
        "SELECT daily_limit_usd FROM staging.workspace_spend_guardrails WHERE workspace_id = '*'"
    ).result_rows[0][0]
    # An operator's row for one workspace, as `dbt seed` writes the CSV's rows (removed after).
    ch.insert("staging.workspace_spend_guardrails", [[limited, 0.5]], column_names=["workspace_id", "daily_limit_usd"])
    try:
        at = max(datetime.now(UTC) - timedelta(minutes=5), datetime.now(UTC).replace(hour=0, minute=0, second=1))
        # 40 calls x (10,000 x $2e-6 + 1,000 x $8e-6) = $1.12 each workspace: 2.24x the own limit
        for ws in (limited, default):
            _post_events(collector, _llm_calls(ws, 40, at, input_tokens=10_000, output_tokens=1_000))
        spent = 40 * (10_000 * 2e-6 + 1_000 * 8e-6)
        held, _ = wait_until("guardrail", lambda: mine(spec, ch, "workspace_id", limited), near(spent / 0.5), 60)
        assert held.holds, held
        control, _ = wait_until(
            "default guardrail", lambda: mine(spec, ch, "workspace_id", default), near(spent / default_limit), 30
        )
        assert default_limit > spent and not control.holds, control
    finally:
        ch.command(
            "DELETE FROM staging.workspace_spend_guardrails WHERE workspace_id = {ws:String}",
            parameters={"ws": limited},
            settings={"mutations_sync": 2},
        )
