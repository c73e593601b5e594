"""`platform-simulate-agents`: agent traffic through the collector, the way real agents send it.

Traces go through the real OpenTelemetry SDK and its OTLP/HTTP exporter (GenAI semantic
conventions: ``gen_ai.operation.name``, ``gen_ai.provider.name``, ``gen_ai.request.model``,
``gen_ai.usage.input_tokens``/``output_tokens``, ``gen_ai.tool.name``); each LLM and tool call
is also sent as a signed JSON agent event with its cost fields; product events go as signed
batches. Deterministic for a seed: ids (trace, span, event), names, tokens, durations, errors and
retries come from one seeded RNG (timestamps are wall-clock). The record states what was sent.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import sys
import time
import uuid
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

import requests
from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor
from opentelemetry.sdk.trace.id_generator import IdGenerator
from opentelemetry.trace import SpanKind, Status, StatusCode

from platform_assets.ingest.collector.events import sign
from platform_assets.synthetic.prices import model_prices

# model, provider, USD per input token, USD per output token: the dbt seed's list prices.
MODELS = [(model, *price) for model, price in model_prices().items()]
TOOLS = ["web_search", "sql_query", "send_email", "calculator"]
AGENTS = ["support_bot", "research_agent", "sql_analyst"]
ERRORS = ["rate_limited", "timeout", "invalid_request"]
PAGES = ["/", "/pricing", "/docs", "/signup", "/dashboard"]
HTTP_TIMEOUT_S = 30


class SeededIds(IdGenerator):
    """Trace and span ids from the simulator's RNG, so a seed reproduces them."""

    def __init__(self, rng: random.Random) -> None:
        self.rng = rng

    def generate_span_id(self) -> int:
        return self.rng.getrandbits(64) or 1

    def generate_trace_id(self) -> int:
        return self.rng.getrandbits(128) or 1


@dataclass
class AgentRecord:
    seed: int
    runs: int = 0
    spans: Counter = field(default_factory=Counter)
    agent_events: Counter = field(default_factory=Counter)
    product_events: int = 0
    errors: int = 0
    retries: int = 0
    input_tokens: int = 0
    output_tokens: int = 0
    cost_usd: float = 0.0
    by_tenant: Counter = field(default_factory=Counter)
    trace_ids: list[str] = field(default_factory=list)
    marker: str = ""

    def to_json(self) -> dict[str, Any]:
        return {
            "seed": self.seed,
            "marker": self.marker,
            "runs": self.runs,
            "spans": sum(self.spans.values()),
            "spans_by_operation": dict(self.spans),
            "agent_events": sum(self.agent_events.values()),
            "agent_events_by_type": dict(self.agent_events),
            "product_events": self.product_events,
            "errors": self.errors,
            "retries": self.retries,
            "input_tokens": self.input_tokens,
            "output_tokens": self.output_tokens,
            "cost_usd": round(self.cost_usd, 6),
            "runs_by_tenant": dict(self.by_tenant),
            "trace_ids": self.trace_ids,
        }


class SignedClient:
    def __init__(self, url: str, key_id: str, secret: bytes) -> None:
        self.url, self.key_id, self.secret = url.rstrip("/"), key_id, secret
        self.session = requests.Session()

    def send(self, events: list[dict[str, Any]], attempts: int = 5) -> None:
        body = json.dumps({"events": events}).encode()
        for attempt in range(attempts):
            ts = str(int(time.time()))
            resp = self.session.post(
                f"{self.url}/ingest",
                data=body,
                headers={
                    "Content-Type": "application/json",
                    "X-Key-Id": self.key_id,
                    "X-Timestamp": ts,
                    "X-Signature": sign(self.secret, ts, body),
                },
                timeout=HTTP_TIMEOUT_S,
            )
            if resp.status_code == 202:
                return
            if resp.status_code != 503 or attempt == attempts - 1:
                raise RuntimeError(f"collector answered {resp.status_code}: {resp.text[:300]}")
            time.sleep(float(resp.headers.get("Retry-After", "1")))


def _iso(ns: int) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(ns / 1e9)) + f".{(ns // 1_000_000) % 1000:03d}Z"


class AgentSimulator:
    def __init__(
        self,
        collector_url: str,
        key_id: str,
        secret: bytes,
        seed: int,
        tenants: int = 3,
        error_rate: float = 0.05,
        retry_rate: float = 0.5,
    ) -> None:
        self.rng = random.Random(seed)
        self.client = SignedClient(collector_url, key_id, secret)
        self.error_rate, self.retry_rate = error_rate, retry_rate
        self.record = AgentRecord(seed=seed, marker=f"sim-{seed}-{self.rng.getrandbits(32):08x}")
        self.tenants = [f"ws_{i + 1}" for i in range(tenants)]
        self.providers: dict[str, TracerProvider] = {}
        for tenant in self.tenants:
            provider = TracerProvider(
                resource=Resource.create(
                    {"service.name": "agent-runtime", "tenant.id": tenant, "deployment.environment.name": "demo"}
                ),
                id_generator=SeededIds(self.rng),
            )
            provider.add_span_processor(
                BatchSpanProcessor(OTLPSpanExporter(endpoint=f"{collector_url.rstrip('/')}/v1/traces", timeout=10))
            )
            self.providers[tenant] = provider
        self.pending: list[dict[str, Any]] = []

    def _uuid(self) -> str:
        return str(uuid.UUID(int=self.rng.getrandbits(128), version=4))

    def _event(self, tenant: str, session: str, event_type: str, at_ns: int, **fields: Any) -> None:
        self.pending.append(
            {
                "event_id": self._uuid(),
                "event_type": event_type,
                "occurred_at": _iso(at_ns),
                "workspace_id": tenant,
                "session_id": session,
                "actor_id": f"user-{self.rng.randint(1, 200)}",
                "source": "agent-runtime",
                "context": {"marker": self.record.marker},
                **fields,
            }
        )
        self.record.agent_events[event_type] += 1
        if len(self.pending) >= 100:
            self.flush_events()

    def flush_events(self) -> None:
        if self.pending:
            self.client.send(self.pending)
            self.pending = []

    def run_agent(self) -> None:
        rng, rec = self.rng, self.record
        tenant = rng.choice(self.tenants)
        agent = rng.choice(AGENTS)
        tracer = self.providers[tenant].get_tracer("platform_assets.simulator")
        session = self._uuid()
        t = time.time_ns() - 60_000_000_000  # runs happened during the last minute
        root = tracer.start_span(
            f"invoke_agent {agent}",
            kind=SpanKind.INTERNAL,
            start_time=t,
            attributes={
                "gen_ai.operation.name": "invoke_agent",
                "gen_ai.agent.name": agent,
                "tenant.id": tenant,
                "marker": rec.marker,
            },
        )
        self._event(tenant, session, "agent_run_started", t, status="started")
        ctx = _context(root)
        rec.trace_ids.append(format(root.get_span_context().trace_id, "032x"))
        failed_run = False
        for _step in range(rng.randint(1, 4)):
            t += rng.randint(1, 50) * 1_000_000
            attempts = 1
            while True:
                model, provider, cin, cout = rng.choice(MODELS)
                duration = int(rng.lognormvariate(5.5, 0.5) * 1_000_000)
                tin, tout = rng.randint(100, 4000), rng.randint(20, 800)
                error = rng.random() < self.error_rate
                span = tracer.start_span(
                    f"chat {model}",
                    context=ctx,
                    kind=SpanKind.CLIENT,
                    start_time=t,
                    attributes={
                        "gen_ai.operation.name": "chat",
                        "gen_ai.provider.name": provider,
                        "gen_ai.request.model": model,
                        "gen_ai.usage.input_tokens": tin,
                        "gen_ai.usage.output_tokens": tout,
                        "retry.attempt": attempts,
                    },
                )
                err_type = rng.choice(ERRORS) if error else ""
                if error:
                    span.set_status(Status(StatusCode.ERROR, err_type))
                    span.set_attribute("error.type", err_type)
                span.end(end_time=t + duration)
                rec.spans["chat"] += 1
                rec.input_tokens += tin
                rec.output_tokens += tout
                rec.cost_usd += tin * cin + tout * cout
                self._event(
                    tenant,
                    session,
                    "llm_call",
                    t + duration,
                    model=model,
                    provider=provider,
                    input_tokens=tin,
                    output_tokens=tout,
                    latency_ms=duration / 1e6,
                    success=not error,
                    error_type=err_type,
                    prompt_hash=f"{rng.getrandbits(64):016x}",
                    unit_cost_input=cin,
                    unit_cost_output=cout,
                )
                t += duration
                if not error:
                    break
                rec.errors += 1
                if rng.random() >= self.retry_rate or attempts >= 3:
                    failed_run = True
                    self._event(tenant, session, "error", t, error_type=err_type, status="failed")
                    break
                rec.retries += 1
                attempts += 1
            if failed_run:
                break
            if rng.random() < 0.6:
                tool = rng.choice(TOOLS)
                duration = int(rng.lognormvariate(4.5, 0.7) * 1_000_000)
                ok = rng.random() >= self.error_rate
                span = tracer.start_span(
                    f"execute_tool {tool}",
                    context=ctx,
                    kind=SpanKind.INTERNAL,
                    start_time=t,
                    attributes={"gen_ai.operation.name": "execute_tool", "gen_ai.tool.name": tool},
                )
                if not ok:
                    span.set_status(Status(StatusCode.ERROR, "tool failed"))
                    rec.errors += 1
                span.end(end_time=t + duration)
                rec.spans["execute_tool"] += 1
                self._event(
                    tenant,
                    session,
                    "tool_call",
                    t + duration,
                    tool_name=tool,
                    latency_ms=duration / 1e6,
                    success=ok,
                    status="ok" if ok else "error",
                )
                t += duration
        if failed_run:
            root.set_status(Status(StatusCode.ERROR, "run failed"))
        root.end(end_time=t + 1_000_000)
        rec.spans["invoke_agent"] += 1
        self._event(
            tenant, session, "agent_run_finished", t, status="failed" if failed_run else "ok", success=not failed_run
        )
        rec.runs += 1
        rec.by_tenant[tenant] += 1

    def product_events(self, count: int) -> None:
        batch: list[dict[str, Any]] = []
        for _ in range(count):
            batch.append(
                {
                    "event_id": self._uuid(),
                    "event_type": self.rng.choice(["page_view", "page_view", "session_start", "feature_used"]),
                    "occurred_at": _iso(time.time_ns()),
                    "workspace_id": self.rng.choice(self.tenants),
                    "session_id": f"s-{self.rng.randint(1, 100)}",
                    "actor_id": f"user-{self.rng.randint(1, 200)}",
                    "source": "web",
                    "context": {"marker": self.record.marker},
                    "properties": {"path": self.rng.choice(PAGES)},
                }
            )
            if len(batch) == 100:
                self.client.send(batch)
                batch = []
        if batch:
            self.client.send(batch)
        self.record.product_events += count

    def run(self, runs: int, product_events: int) -> AgentRecord:
        for _ in range(runs):
            self.run_agent()
        self.flush_events()
        self.product_events(product_events)
        for provider in self.providers.values():
            provider.force_flush()
            provider.shutdown()
        return self.record


def _context(span):
    from opentelemetry import trace

    return trace.set_span_in_context(span)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="platform-simulate-agents", description=__doc__)
    parser.add_argument("--collector", default="http://127.0.0.1:4318")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--runs", type=int, default=100)
    parser.add_argument("--tenants", type=int, default=3)
    parser.add_argument("--error-rate", type=float, default=0.05)
    parser.add_argument("--retry-rate", type=float, default=0.5)
    parser.add_argument("--product-events", type=int, default=500)
    parser.add_argument("--record", help="write the record of what was sent here (JSON)")
    args = parser.parse_args(argv)
    from platform_assets import environment

    environment.prepare()
    key_id, _, secret = os.environ["COLLECTOR_HMAC_KEYS"].split(",")[0].partition(":")
    sim = AgentSimulator(
        args.collector, key_id, secret.encode(), args.seed, args.tenants, args.error_rate, args.retry_rate
    )
    out = json.dumps(sim.run(args.runs, args.product_events).to_json(), indent=2)
    if args.record:
        with open(args.record, "w") as fh:
            fh.write(out)
    print(out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
