"""Deterministic agent-telemetry history for the agent marts, with the answers they must give.

``load_agent_history`` writes agent runs straight into ``raw.spans`` and ``raw.agent_events``
(clickhouse-connect, explicit historical timestamps), the way the collector and the Kafka
views would have written them: OpenTelemetry GenAI spans (``invoke_agent <agent>`` roots,
``chat <model>`` children with retries and errors, ``execute_tool <tool>`` children, some run by
a second service) and the matching agent events (``agent_run_started``, ``llm_call``,
``tool_call``, ``agent_run_finished``), plus exact duplicates of some rows (Kafka redelivery).
Every id, name, time, token count, latency and error comes from one RNG seeded with ``seed``.

The returned ``AgentHistory`` holds the unique rows and computes, in plain Python and numpy,
what each agent mart must contain; it shares no code with the SQL. Definitions (the same as
the marts' YAML): days are UTC; percentiles are linear interpolation between closest ranks
(``numpy.percentile``'s default, ClickHouse's ``quantileExactInclusive``); an LLM call span is
one with ``gen_ai.operation.name = 'chat'`` or a model; a trace belongs to the day, workspace and
service of its root span and errs if any of its spans errs; an SLO request is one agent run
(its ``agent_run_finished`` event, on that event's day), an error when the run did not succeed.
"""

from __future__ import annotations

import math
import random
import uuid
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from typing import Any

import numpy as np

from platform_assets.core.identity import user_hash
from platform_assets.core.resources import ClickHouseResource
from platform_assets.synthetic.prices import model_prices
from platform_assets.synthetic.raw_columns import AGENT_EVENT_COLUMNS, SPAN_COLUMNS

# model -> (provider, USD per input token, USD per output token), from dbt/seeds/model_prices.csv.
MODELS: dict[str, tuple[str, float, float]] = model_prices()
AGENT_SERVICE = {"support_bot": "agent-runtime", "sql_analyst": "agent-runtime", "research_agent": "research-worker"}
TOOLS = ["web_search", "sql_query", "send_email", "calculator"]
TOOL_SERVICE = {"sql_query": "tool-gateway"}  # other tools run inside the agent's own service
LLM_ERRORS = ["rate_limited", "timeout", "invalid_request"]
WORKSPACES = ["ws_1", "ws_2", "ws_3"]
SLO_TARGET = 0.99
EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
MS_PER_DAY = 86_400_000


def ms_to_datetime(ms: int) -> datetime:
    """Epoch milliseconds as an aware UTC datetime (exact, no float rounding)."""
    return EPOCH + timedelta(milliseconds=ms)


def _day(ms: int) -> date:
    return ms_to_datetime(ms).date()


def _pct(values: list[float], *qs: float) -> list[float]:
    """numpy.percentile (linear interpolation between closest ranks) at each of qs."""
    return [float(v) for v in np.percentile(np.asarray(values, dtype=np.float64), qs)]


def _rate(part: int, whole: int) -> float:
    return part / whole if whole else 0.0


@dataclass
class Span:
    trace_id: str
    span_id: str
    parent_span_id: str
    tenant: str
    service: str
    operation: str
    kind: int
    status_code: int
    status_message: str
    start_ms: int
    end_ms: int
    attributes: dict[str, str]
    offset: int

    @property
    def is_error(self) -> bool:
        return self.status_code == 2

    def row(self) -> list[Any]:
        return [
            self.trace_id,
            self.span_id,
            self.parent_span_id,
            self.tenant,
            "history",
            self.service,
            "platform_assets.history_agents",
            self.operation,
            self.kind,
            self.status_code,
            self.status_message,
            ms_to_datetime(self.start_ms),
            ms_to_datetime(self.end_ms),
            float(self.end_ms - self.start_ms),
            self.attributes,
            {"service.name": self.service, "tenant.id": self.tenant, "deployment.environment.name": "history"},
            0,
            self.offset,
        ]


@dataclass
class Event:
    event_id: uuid.UUID
    event_type: str
    at_ms: int
    workspace_id: str
    session_id: str
    actor_id: str
    agent: str
    offset: int
    model: str = ""
    provider: str = ""
    input_tokens: int = 0
    output_tokens: int = 0
    prompt_hash: str = ""
    latency_ms: float = 0.0
    success: bool = False
    error_type: str = ""
    tool_name: str = ""
    status: str = ""
    unit_cost_input: float = 0.0
    unit_cost_output: float = 0.0

    @property
    def cost_usd(self) -> float:  # what the Kafka view computes: tokens x unit costs
        return self.input_tokens * self.unit_cost_input + self.output_tokens * self.unit_cost_output

    @property
    def day(self) -> date:
        return _day(self.at_ms)

    def row(self) -> list[Any]:
        return [
            self.event_id,
            self.event_type,
            ms_to_datetime(self.at_ms),
            self.workspace_id,
            self.session_id,
            self.actor_id,
            "history-agents",
            f'{{"agent": "{self.agent}"}}',
            self.model,
            self.provider,
            self.input_tokens,
            self.output_tokens,
            self.prompt_hash,
            self.latency_ms,
            int(self.success),
            self.error_type,
            self.tool_name,
            self.status,
            self.unit_cost_input,
            self.unit_cost_output,
            self.cost_usd,
            0,
            self.offset,
        ]


@dataclass
class AgentHistory:
    """What was inserted (unique rows) and the values each agent mart must hold for it."""

    start: date
    days: int
    seed: int
    spans: list[Span] = field(default_factory=list)
    events: list[Event] = field(default_factory=list)
    duplicate_spans: int = 0
    duplicate_events: int = 0
    runs: int = 0
    midnight_traces: list[str] = field(default_factory=list)  # runs that cross into the next day

    @property
    def end(self) -> date:
        """Last day (inclusive)."""
        return self.start + timedelta(days=self.days - 1)

    @property
    def workspaces(self) -> list[str]:
        return sorted({e.workspace_id for e in self.events} | {s.tenant for s in self.spans})

    def _roots(self) -> dict[str, Span]:
        return {s.trace_id: s for s in self.spans if not s.parent_span_id}

    def _events(self, event_type: str) -> list[Event]:
        return [e for e in self.events if e.event_type == event_type]

    # ---- mart_agent_metrics_1m and _1h ------------------------------------------------------
    def metrics_1m(self) -> dict[tuple, dict[str, Any]]:
        return self._call_metrics(60_000)

    def metrics_1h(self) -> dict[tuple, dict[str, Any]]:
        return self._call_metrics(3_600_000)

    def _call_metrics(self, bucket_ms: int) -> dict[tuple, dict[str, Any]]:
        roots = self._roots()
        groups: dict[tuple, list[Span]] = defaultdict(list)
        for s in self.spans:
            model = s.attributes.get("gen_ai.request.model", "")
            if s.attributes.get("gen_ai.operation.name") != "chat" and not model:
                continue
            bucket = ms_to_datetime(s.start_ms // bucket_ms * bucket_ms)
            agent = roots[s.trace_id].attributes.get("gen_ai.agent.name", "") if s.trace_id in roots else ""
            groups[(bucket, s.tenant, s.service, agent, model)].append(s)
        out = {}
        for key, spans in groups.items():
            lat = [float(s.end_ms - s.start_ms) for s in spans]
            tin = sum(int(s.attributes["gen_ai.usage.input_tokens"]) for s in spans)
            tout = sum(int(s.attributes["gen_ai.usage.output_tokens"]) for s in spans)
            _, pin, pout = MODELS.get(key[4], ("", 0.0, 0.0))
            errors = sum(s.is_error for s in spans)
            p50, p95, p99 = _pct(lat, 50, 95, 99)
            out[key] = {
                "calls": len(spans),
                "errors": errors,
                "error_rate": errors / len(spans),
                "p50_latency_ms": p50,
                "p95_latency_ms": p95,
                "p99_latency_ms": p99,
                "input_tokens": tin,
                "output_tokens": tout,
                "cost_usd": tin * pin + tout * pout,
            }
        return out

    # ---- mart_llm_daily --------------------------------------------------------------------
    def llm_daily(self) -> dict[tuple, dict[str, Any]]:
        groups: dict[tuple, list[Event]] = defaultdict(list)
        for e in self._events("llm_call"):
            groups[(e.day, e.workspace_id, e.model, e.provider)].append(e)
        out = {}
        for key, evs in groups.items():
            p50, p90 = _pct([e.latency_ms for e in evs], 50, 90)
            out[key] = {
                "calls": len(evs),
                "p50_latency_ms": p50,
                "p90_latency_ms": p90,
                "input_tokens": sum(e.input_tokens for e in evs),
                "output_tokens": sum(e.output_tokens for e in evs),
                "cost_usd": math.fsum(e.cost_usd for e in evs),
                "success_rate": sum(e.success for e in evs) / len(evs),
            }
        return out

    # ---- mart_tool_reliability_hourly ------------------------------------------------------
    def tool_hourly(self) -> dict[tuple, dict[str, Any]]:
        groups: dict[tuple, list[Event]] = defaultdict(list)
        for e in self._events("tool_call"):
            groups[(ms_to_datetime(e.at_ms // 3_600_000 * 3_600_000), e.workspace_id, e.tool_name)].append(e)
        out = {}
        for key, evs in groups.items():
            ok = sum(e.success for e in evs)
            out[key] = {
                "calls": len(evs),
                "successes": ok,
                "failures": len(evs) - ok,
                "timeouts": sum(e.status == "timeout" or e.error_type == "timeout" for e in evs),
                "success_rate": ok / len(evs),
                "p95_latency_ms": _pct([e.latency_ms for e in evs], 95)[0],
            }
        return out

    # ---- mart_trace_errors_daily -----------------------------------------------------------
    def trace_errors_daily(self) -> dict[tuple, dict[str, Any]]:
        acc: dict[tuple, dict[str, int]] = defaultdict(lambda: dict.fromkeys(("spans", "ES", "T", "ET"), 0))
        by_trace: dict[str, list[Span]] = defaultdict(list)
        for s in self.spans:
            k = acc[(_day(s.start_ms), s.tenant, s.service)]
            k["spans"] += 1
            k["ES"] += s.is_error
            by_trace[s.trace_id].append(s)
        for trace_spans in by_trace.values():
            roots = [s for s in trace_spans if not s.parent_span_id]
            head = roots[0] if roots else min(trace_spans, key=lambda s: (s.start_ms, s.span_id))
            k = acc[(_day(head.start_ms), head.tenant, head.service)]
            k["T"] += 1
            k["ET"] += any(s.is_error for s in trace_spans)
        return {
            key: {
                "spans": v["spans"],
                "error_spans": v["ES"],
                "call_error_rate": _rate(v["ES"], v["spans"]),
                "traces": v["T"],
                "error_traces": v["ET"],
                "trace_error_rate": _rate(v["ET"], v["T"]),
            }
            for key, v in acc.items()
        }

    # ---- mart_cost_daily -------------------------------------------------------------------
    def cost_daily(self) -> dict[tuple, dict[str, Any]]:
        groups: dict[tuple, list[Event]] = defaultdict(list)
        for e in self._events("llm_call"):
            groups[(e.day, e.workspace_id, e.model, e.actor_id)].append(e)
        return {
            key: {
                "calls": len(evs),
                "input_tokens": sum(e.input_tokens for e in evs),
                "output_tokens": sum(e.output_tokens for e in evs),
                "cost_usd": math.fsum(e.cost_usd for e in evs),
            }
            for key, evs in groups.items()
        }

    # ---- mart_slo_daily --------------------------------------------------------------------
    def slo_daily(self) -> dict[tuple, dict[str, Any]]:
        groups: dict[tuple, list[Event]] = defaultdict(list)
        for e in self._events("agent_run_finished"):
            groups[(e.day, e.workspace_id)].append(e)
        out = {}
        for key, evs in groups.items():
            requests, errors = len(evs), sum(not e.success for e in evs)
            budget = (1 - SLO_TARGET) * requests
            out[key] = {
                "requests": requests,
                "errors": errors,
                "success_rate": (requests - errors) / requests,
                "slo_target": SLO_TARGET,
                "error_budget": budget,
                "budget_remaining": budget - errors,
                "burn_rate": (errors / requests) / (1 - SLO_TARGET),
            }
        return out


class _Builder:
    def __init__(self, history: AgentHistory, seed: int, user_hash_key: str) -> None:
        self.h = history
        self.rng = random.Random(seed)
        self.key = user_hash_key
        self.offset = self.rng.getrandbits(40)  # Kafka offsets of this history, recognisable per seed

    def _next_offset(self) -> int:
        self.offset += 1
        return self.offset

    def _trace_id(self) -> str:
        return f"{self.rng.getrandbits(128) or 1:032x}"

    def _span_id(self) -> str:
        return f"{self.rng.getrandbits(64) or 1:016x}"

    def _uuid(self) -> uuid.UUID:
        return uuid.UUID(int=self.rng.getrandbits(128), version=4)

    def span(self, **kw: Any) -> Span:
        s = Span(offset=self._next_offset(), **kw)
        self.h.spans.append(s)
        return s

    def event(self, **kw: Any) -> Event:
        e = Event(event_id=self._uuid(), offset=self._next_offset(), **kw)
        self.h.events.append(e)
        return e

    def run(self, t0: int) -> None:
        """One agent run starting at t0 (epoch ms): a trace and its agent events."""
        rng = self.rng
        tenant = rng.choice(WORKSPACES)
        agent = rng.choice(sorted(AGENT_SERVICE))
        service = AGENT_SERVICE[agent]
        actor = user_hash(self.key, str(rng.randint(1, 60)))
        session = str(self._uuid())
        trace_id, root_id = self._trace_id(), self._span_id()
        common = {"workspace_id": tenant, "session_id": session, "actor_id": actor, "agent": agent}
        self.event(event_type="agent_run_started", at_ms=t0, status="started", **common)
        t = t0
        failed = False
        for _step in range(rng.randint(1, 4)):
            t += rng.randint(1, 50)
            for attempt in range(1, 4):  # up to two retries of a failed call
                model = rng.choice(sorted(MODELS))
                provider, pin, pout = MODELS[model]
                duration = max(1, int(rng.lognormvariate(6.0, 0.6)))
                tin, tout = rng.randint(100, 4000), rng.randint(20, 800)
                err = rng.choice(LLM_ERRORS) if rng.random() < 0.08 else ""
                attrs = {
                    "gen_ai.operation.name": "chat",
                    "gen_ai.provider.name": provider,
                    "gen_ai.request.model": model,
                    "gen_ai.usage.input_tokens": str(tin),
                    "gen_ai.usage.output_tokens": str(tout),
                    "retry.attempt": str(attempt),
                }
                if err:
                    attrs["error.type"] = err
                self.span(
                    trace_id=trace_id,
                    span_id=self._span_id(),
                    parent_span_id=root_id,
                    tenant=tenant,
                    service=service,
                    operation=f"chat {model}",
                    kind=3,  # CLIENT
                    status_code=2 if err else 0,
                    status_message=err,
                    start_ms=t,
                    end_ms=t + duration,
                    attributes=attrs,
                )
                self.event(
                    event_type="llm_call",
                    at_ms=t + duration,
                    model=model,
                    provider=provider,
                    input_tokens=tin,
                    output_tokens=tout,
                    prompt_hash=f"{rng.getrandbits(64):016x}",
                    latency_ms=duration + rng.randint(0, 999) / 1000,  # the SDK's own clock, finer
                    success=not err,
                    error_type=err,
                    unit_cost_input=pin,
                    unit_cost_output=pout,
                    **common,
                )
                t += duration
                if not err:
                    break
                if rng.random() >= 0.5 or attempt == 3:
                    failed = True
                    break
            if failed:
                break
            if rng.random() < 0.6:
                tool = rng.choice(TOOLS)
                duration = max(1, int(rng.lognormvariate(4.5, 0.8)))
                r = rng.random()
                status, error_type = "ok", ""
                if r < 0.04:
                    status, error_type = "error", "tool_error"
                elif r < 0.07:
                    status, error_type = "timeout", "timeout"
                elif r < 0.09:
                    status, error_type = "error", "timeout"  # a timeout reported as a plain error
                self.span(
                    trace_id=trace_id,
                    span_id=self._span_id(),
                    parent_span_id=root_id,
                    tenant=tenant,
                    service=TOOL_SERVICE.get(tool, service),
                    operation=f"execute_tool {tool}",
                    kind=1,  # INTERNAL
                    status_code=0 if status == "ok" else 2,
                    status_message=error_type,
                    start_ms=t,
                    end_ms=t + duration,
                    attributes={"gen_ai.operation.name": "execute_tool", "gen_ai.tool.name": tool}
                    | ({"error.type": error_type} if error_type else {}),
                )
                self.event(
                    event_type="tool_call",
                    at_ms=t + duration,
                    tool_name=tool,
                    latency_ms=float(duration),
                    success=status == "ok",
                    status=status,
                    error_type=error_type,
                    **common,
                )
                t += duration
        t += 1
        self.span(
            trace_id=trace_id,
            span_id=root_id,
            parent_span_id="",
            tenant=tenant,
            service=service,
            operation=f"invoke_agent {agent}",
            kind=1,
            status_code=2 if failed else 0,
            status_message="run failed" if failed else "",
            start_ms=t0,
            end_ms=t,
            attributes={"gen_ai.operation.name": "invoke_agent", "gen_ai.agent.name": agent, "tenant.id": tenant},
        )
        self.event(
            event_type="agent_run_finished",
            at_ms=t,
            status="failed" if failed else "ok",
            success=not failed,
            error_type="run_failed" if failed else "",
            **common,
        )
        self.h.runs += 1
        if _day(t) != _day(t0):
            self.h.midnight_traces.append(trace_id)


def build_agent_history(start: date, days: int, seed: int, user_hash_key: str, runs_per_day: int = 90) -> AgentHistory:
    """The history in memory (nothing written): runs cluster in a daily peak hour."""
    history = AgentHistory(start=start, days=days, seed=seed)
    b = _Builder(history, seed, user_hash_key)
    for d in range(days):
        day_ms = int((datetime.combine(start + timedelta(days=d), datetime.min.time(), UTC) - EPOCH).total_seconds())
        day_ms *= 1000
        peak = b.rng.randint(8, 16) * 3_600_000
        starts = []
        for _ in range(runs_per_day):
            if b.rng.random() < 0.5:  # busy hour: several calls share a minute
                starts.append(day_ms + peak + b.rng.randrange(3_600_000))
            else:
                starts.append(day_ms + b.rng.randrange(MS_PER_DAY - 120_000))
        if d < days - 1:  # one run per night crosses midnight (its trace belongs to its root's day)
            starts.append(day_ms + MS_PER_DAY - b.rng.randint(200, 900))
        for t0 in sorted(starts):
            b.run(t0)
    return history


def _duplicates(rng: random.Random, items: list, share: float) -> list:
    return [x for x in items if rng.random() < share]


def insert_spans(client: Any, spans: list[Span]) -> None:
    client.insert("raw.spans", [s.row() for s in spans], column_names=SPAN_COLUMNS)


def insert_events(client: Any, events: list[Event]) -> None:
    client.insert("raw.agent_events", [e.row() for e in events], column_names=AGENT_EVENT_COLUMNS)


def load_agent_history(
    clickhouse: ClickHouseResource, start: date, days: int, seed: int, user_hash_key: str, runs_per_day: int = 90
) -> AgentHistory:
    """Writes the history into raw.spans and raw.agent_events, with ~3% exact duplicates."""
    history = build_agent_history(start, days, seed, user_hash_key, runs_per_day)
    rng = random.Random(seed ^ 0x5EED)
    dup_spans = _duplicates(rng, history.spans, 0.03)
    dup_events = _duplicates(rng, history.events, 0.03)
    history.duplicate_spans, history.duplicate_events = len(dup_spans), len(dup_events)
    with clickhouse.client() as ch:
        insert_spans(ch, history.spans)
        insert_events(ch, history.events)
        # Redelivered Kafka messages: the same rows again, in a later insert (another part).
        insert_spans(ch, dup_spans)
        insert_events(ch, dup_events)
    return history
