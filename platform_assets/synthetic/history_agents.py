"""Deterministic agent-telemetry history for the agent marts, with the answers they must give.

``load_agent_history`` writes agent runs straight into ``raw.spans`` and ``raw.agent_events``
(clickhouse-connect, explicit historical timestamps), the way the collector and the Kafka
views would have written them: OpenTelemetry GenAI spans (``invoke_agent <agent>`` roots,
``chat <model>`` children with retries and errors, ``execute_tool <tool>`` children, some run by
a second service) and the matching agent events (``agent_run_started``, ``llm_call``,
``tool_call``, ``agent_run_finished``), plus exact duplicates of some rows (Kafka redelivery).
Beside the agents, app services answer HTTP requests (``SERVER`` spans with ``http.route`` and a
``service.version`` resource; a release changes one service's version halfway). Some LLM calls
are refused (``gen_ai.response.finish_reasons`` ``["content_filter"]``, event status ``refused``),
more often for one prompt of each agent; prompt hashes repeat (a few prompts per agent). One
workspace spends far more on one day (``SPIKE_OFFSET``), over its guardrail. Some rows of one
day are late (``LATE_OFFSET``): ``load_agent_history(..., hold_late=True)`` holds them back until
``load_late_rows``, so a first build of that day lacks them and its rebuild adds them.
Every id, name, time, token count, latency and error comes from RNGs seeded with ``seed``.

The returned ``AgentHistory`` holds the unique rows and computes, in plain Python and numpy,
what each agent mart must contain; it shares no code with the SQL. Definitions (the same as
the marts' YAML): days are UTC; percentiles are linear interpolation between closest ranks
(``numpy.percentile``'s default, ClickHouse's ``quantileExactInclusive``); an LLM call span is
one with ``gen_ai.operation.name = 'chat'`` or a model; a trace belongs to the day, workspace and
service of its root span and errs if any of its spans errs; an SLO request is one agent run
(its ``agent_run_finished`` event, on that event's day), an error when the run did not succeed.
The analytics marts' definitions are in the docstrings of their methods below.
"""

from __future__ import annotations

import csv
import hashlib
import math
import random
import uuid
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from typing import Any

import numpy as np

from platform_assets.core.identity import user_hash
from platform_assets.core.paths import dbt_dir
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
# App services: service -> [(method, route, typical ms)]; web-api is released mid-history.
APP_ROUTES: dict[str, list[tuple[str, str, float]]] = {
    "web-api": [
        ("POST", "/v1/agents/{agent}/runs", 120.0),
        ("GET", "/v1/sessions/{id}", 35.0),
        ("GET", "/v1/prompts", 12.0),
    ],
    "billing-api": [("GET", "/v1/invoices/{id}", 60.0), ("POST", "/v1/usage", 25.0)],
}
APP_VERSIONS = {"web-api": ("1.4.2", "1.5.0"), "billing-api": ("2.3.0", "2.3.0")}
APP_REQUESTS_PER_DAY = 60
PROMPTS_PER_AGENT = 4
REFUSAL_RISKY, REFUSAL_OTHER = 0.3, 0.02  # refusal chance of an agent's first prompt, of the others
SPIKE_OFFSET, SPIKE_WORKSPACE = 30, "ws_2"  # the day (offset from start) a workspace overspends
LATE_OFFSET = 12  # the day (offset from start) with late rows
REFUSAL = "content_filter"
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
    version: str = ""  # service.version of the resource; none when empty

    @property
    def is_error(self) -> bool:
        return self.status_code == 2

    @property
    def error_type(self) -> str:
        """What staging reads as the error's type: error.type, else the status message ('' when no error)."""
        return (self.attributes.get("error.type") or self.status_message) if self.is_error else ""

    @property
    def is_llm_call(self) -> bool:
        """A chat/completion operation, token counts, or a model named on the span."""
        a = self.attributes
        return (
            a.get("gen_ai.operation.name") in ("chat", "text_completion", "generate_content")
            or int(a.get("gen_ai.usage.input_tokens", 0) or 0) > 0
            or int(a.get("gen_ai.usage.output_tokens", 0) or 0) > 0
            or bool(a.get("gen_ai.request.model"))
        )

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
            {"service.name": self.service, "tenant.id": self.tenant, "deployment.environment.name": "history"}
            | ({"service.version": self.version} if self.version else {}),
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
    late: set[int] = field(default_factory=set)  # offsets of the late rows (spans and events)
    spike: tuple[date, str] | None = None  # (day, workspace) of the spend spike
    # rows load_agent_history(hold_late=True) held back for load_late_rows (late rows, their duplicates)
    pending: tuple[list[Span], list[Event]] = field(default_factory=lambda: ([], []), compare=False, repr=False)

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

    # ---- late rows -------------------------------------------------------------------------
    def without_late(self) -> AgentHistory:
        """The record of the history before its late rows arrived (what a first build sees)."""
        return AgentHistory(
            start=self.start,
            days=self.days,
            seed=self.seed,
            spans=[s for s in self.spans if s.offset not in self.late],
            events=[e for e in self.events if e.offset not in self.late],
            spike=self.spike,
        )

    # ---- mart_endpoint_latency_daily -------------------------------------------------------
    def endpoint_latency_daily(self) -> dict[tuple, dict[str, Any]]:
        """Per (day, workspace, service, service.version, http.route): SERVER spans (kind 2) with a
        route; errors are status ERROR; p50/p95 over the span durations."""
        groups: dict[tuple, list[Span]] = defaultdict(list)
        for s in self.spans:
            route = s.attributes.get("http.route", "")
            if s.kind == 2 and route:
                groups[(_day(s.start_ms), s.tenant, s.service, s.version, route)].append(s)
        out = {}
        for key, spans in groups.items():
            errors = sum(s.is_error for s in spans)
            p50, p95 = _pct([float(s.end_ms - s.start_ms) for s in spans], 50, 95)
            out[key] = {
                "requests": len(spans),
                "errors": errors,
                "error_rate": errors / len(spans),
                "p50_ms": p50,
                "p95_ms": p95,
            }
        return out

    # ---- mart_agent_health_daily and mart_agent_failures_daily ------------------------------
    def _agent_runs(self) -> list[dict[str, Any]]:
        """One entry per trace with an invoke_agent span: its earliest such span is the run's."""
        by_trace: dict[str, list[Span]] = defaultdict(list)
        for s in self.spans:
            by_trace[s.trace_id].append(s)
        runs = []
        for spans in by_trace.values():
            agent_spans = [s for s in spans if s.attributes.get("gen_ai.operation.name") == "invoke_agent"]
            if not agent_spans:
                continue
            head = min(agent_spans, key=lambda s: (s.start_ms, s.span_id))
            steps = [
                s
                for s in spans
                if s.attributes.get("gen_ai.operation.name") != "invoke_agent"
                and (s.is_llm_call or s.attributes.get("gen_ai.operation.name") == "execute_tool")
            ]
            runs.append(
                {
                    "day": _day(head.start_ms),
                    "workspace": head.tenant,
                    "agent": head.attributes.get("gen_ai.agent.name", ""),
                    "failed": head.is_error,
                    "error_type": head.error_type or "_OTHER",
                    "llm_steps": sum(s.is_llm_call for s in steps),
                    "tool_steps": sum(not s.is_llm_call for s in steps),
                    "timeouts": sum(s.error_type == "timeout" for s in steps),
                }
            )
        return runs

    def agent_health_daily(self) -> dict[tuple, dict[str, Any]]:
        """Per (day, workspace, agent): runs (traces with an agent span, on its day), failed runs
        (agent span ERROR), steps (LLM call and tool call spans of the trace), timeouts (steps
        whose error type is 'timeout')."""
        groups: dict[tuple, list[dict[str, Any]]] = defaultdict(list)
        for r in self._agent_runs():
            groups[(r["day"], r["workspace"], r["agent"])].append(r)
        out = {}
        for key, runs in groups.items():
            failed = sum(r["failed"] for r in runs)
            llm, tool = sum(r["llm_steps"] for r in runs), sum(r["tool_steps"] for r in runs)
            out[key] = {
                "runs": len(runs),
                "failed_runs": failed,
                "failure_rate": failed / len(runs),
                "steps": llm + tool,
                "llm_steps": llm,
                "tool_steps": tool,
                "avg_steps_per_run": (llm + tool) / len(runs),
                "timeouts": sum(r["timeouts"] for r in runs),
            }
        return out

    def agent_failures_daily(self) -> dict[tuple, dict[str, Any]]:
        """Per (day, workspace, agent, error type of the failed run's agent span): failed runs."""
        counts: dict[tuple, int] = defaultdict(int)
        for r in self._agent_runs():
            if r["failed"]:
                counts[(r["day"], r["workspace"], r["agent"], r["error_type"])] += 1
        return {key: {"failures": n} for key, n in counts.items()}

    # ---- mart_prompt_failures_daily --------------------------------------------------------
    def prompt_failures_daily(self) -> dict[tuple, dict[str, Any]]:
        """Per (day, workspace, prompt_hash) of llm_call events with a prompt hash: calls, failures
        (success 0), the most frequent error type of the failures (ties: first by name)."""
        groups: dict[tuple, list[Event]] = defaultdict(list)
        for e in self._events("llm_call"):
            if e.prompt_hash:
                groups[(e.day, e.workspace_id, e.prompt_hash)].append(e)
        out = {}
        for key, evs in groups.items():
            by_type: dict[str, int] = defaultdict(int)
            for e in evs:
                if not e.success:
                    by_type[e.error_type] += 1
            failures = sum(by_type.values())
            top = min(by_type.items(), key=lambda kv: (-kv[1], kv[0])) if by_type else ("", 0)
            out[key] = {
                "calls": len(evs),
                "failures": failures,
                "failure_rate": failures / len(evs),
                "top_error_type": top[0],
                "top_error_type_failures": top[1],
            }
        return out

    # ---- mart_model_drift_daily ------------------------------------------------------------
    def model_drift_daily(self) -> dict[tuple, dict[str, Any]]:
        """Per (day, workspace and '__all__', provider, model) of LLM call spans: output tokens
        (mean, p50, p95) and refusals (finish reasons containing 'content_filter')."""
        groups: dict[tuple, list[Span]] = defaultdict(list)
        for s in self.spans:
            if not s.is_llm_call:
                continue
            a = s.attributes
            for ws in (s.tenant, "__all__"):
                groups[
                    (_day(s.start_ms), ws, a.get("gen_ai.provider.name", ""), a.get("gen_ai.request.model", ""))
                ].append(s)
        out = {}
        for key, spans in groups.items():
            tokens = [float(s.attributes.get("gen_ai.usage.output_tokens", 0)) for s in spans]
            refusals = sum(REFUSAL in s.attributes.get("gen_ai.response.finish_reasons", "").lower() for s in spans)
            p50, p95 = _pct(tokens, 50, 95)
            out[key] = {
                "calls": len(spans),
                "avg_output_tokens": math.fsum(tokens) / len(spans),
                "p50_output_tokens": p50,
                "p95_output_tokens": p95,
                "refusals": refusals,
                "refusal_rate": refusals / len(spans),
            }
        return out

    # ---- mart_workspace_spend_daily --------------------------------------------------------
    def daily_spend(self) -> dict[tuple[date, str], float]:
        """(day, workspace) -> the llm_call events' cost of the day."""
        costs: dict[tuple[date, str], list[float]] = defaultdict(list)
        for e in self._events("llm_call"):
            costs[(e.day, e.workspace_id)].append(e.cost_usd)
        return {key: math.fsum(v) for key, v in costs.items()}

    def workspace_spend_daily(self) -> dict[tuple, dict[str, Any]]:
        """Per (day, workspace) with llm_call events: the day's cost, the guardrail (the seed's row
        of the workspace, else '*'), and the z-score against the trailing days D-28 .. D-1 from
        the first of them with spend (days without spend as 0): mean, sample stddev (n - 1), the
        z-score None below 7 baseline days or for a stddev of 0."""
        spend = self.daily_spend()
        limits = spend_guardrails()
        out = {}
        for (day, ws), cost in spend.items():
            prior = [d for d in (day - timedelta(days=k) for k in range(1, 29)) if (d, ws) in spend]
            baseline = []
            if prior:
                first = min(prior)
                baseline = [spend.get((first + timedelta(days=i), ws), 0.0) for i in range((day - first).days)]
            n = len(baseline)
            mean = float(np.mean(baseline)) if n else None
            sd = float(np.std(baseline, ddof=1)) if n >= 2 else None
            limit = limits.get(ws, limits.get("*"))
            out[(day, ws)] = {
                "cost_usd": cost,
                "daily_limit_usd": limit,
                "over_guardrail": limit is not None and cost > limit,
                "baseline_days": n,
                "trailing_28d_mean_usd": mean,
                "trailing_28d_stddev_usd": sd,
                "spend_z_score": None if n < 7 or not sd or mean is None else (cost - mean) / sd,
            }
        return out


def spend_guardrails() -> dict[str, float]:
    """workspace_id ('*': the default) -> daily_limit_usd, from the dbt seed workspace_spend_guardrails.csv."""
    with (dbt_dir() / "seeds" / "workspace_spend_guardrails.csv").open(newline="") as fh:
        return {row["workspace_id"]: float(row["daily_limit_usd"]) for row in csv.DictReader(fh)}


class _Builder:
    def __init__(self, history: AgentHistory, seed: int, user_hash_key: str) -> None:
        self.h = history
        self.rng = random.Random(seed)
        self.aux = random.Random(seed ^ 0xA9E7)  # prompts and refusals
        self.app = random.Random(seed ^ 0xA99)  # app-service requests
        self.key = user_hash_key
        self.offset = self.rng.getrandbits(40)  # Kafka offsets of this history, recognisable per seed

    def _next_offset(self) -> int:
        self.offset += 1
        return self.offset

    def _trace_id(self, rng: random.Random | None = None) -> str:
        return f"{(rng or self.rng).getrandbits(128) or 1:032x}"

    def _span_id(self, rng: random.Random | None = None) -> str:
        return f"{(rng or self.rng).getrandbits(64) or 1:016x}"

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

    def run(self, t0: int, tenant: str | None = None) -> None:
        """One agent run starting at t0 (epoch ms): a trace and its agent events."""
        rng = self.rng
        tenant = tenant or rng.choice(WORKSPACES)
        agent = rng.choice(sorted(AGENT_SERVICE))
        service = AGENT_SERVICE[agent]
        actor = user_hash(self.key, str(rng.randint(1, 60)))
        session = str(self._uuid())
        trace_id, root_id = self._trace_id(), self._span_id()
        common = {"workspace_id": tenant, "session_id": session, "actor_id": actor, "agent": agent}
        self.event(event_type="agent_run_started", at_ms=t0, status="started", **common)
        t = t0
        failed = False
        last_error = ""
        for _step in range(rng.randint(1, 4)):
            t += rng.randint(1, 50)
            prompt = self.aux.randrange(PROMPTS_PER_AGENT)  # a retry sends the step's prompt again
            for attempt in range(1, 4):  # up to two retries of a failed call
                model = rng.choice(sorted(MODELS))
                provider, pin, pout = MODELS[model]
                duration = max(1, int(rng.lognormvariate(6.0, 0.6)))
                tin, tout = rng.randint(100, 4000), rng.randint(20, 800)
                err = rng.choice(LLM_ERRORS) if rng.random() < 0.08 else ""
                refused = not err and self.aux.random() < (REFUSAL_RISKY if prompt == 0 else REFUSAL_OTHER)
                if refused:
                    tout = self.aux.randint(1, 40)  # a refusal is short
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
                else:  # a string array, as a JSON array in the attribute map
                    attrs["gen_ai.response.finish_reasons"] = f'["{REFUSAL if refused else "stop"}"]'
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
                    prompt_hash=prompt_hash(agent, prompt),
                    latency_ms=duration + rng.randint(0, 999) / 1000,  # the SDK's own clock, finer
                    success=not err and not refused,
                    error_type=err or (REFUSAL if refused else ""),
                    status="refused" if refused else "",
                    unit_cost_input=pin,
                    unit_cost_output=pout,
                    **common,
                )
                t += duration
                if not err:
                    break
                if rng.random() >= 0.5 or attempt == 3:
                    failed, last_error = True, err
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
            attributes={"gen_ai.operation.name": "invoke_agent", "gen_ai.agent.name": agent, "tenant.id": tenant}
            | ({"error.type": last_error} if failed else {}),  # the error of the call that failed the run
        )
        self.event(
            event_type="agent_run_finished",
            at_ms=t,
            status="failed" if failed else "ok",
            success=not failed,
            error_type=last_error,
            **common,
        )
        self.h.runs += 1
        if _day(t) != _day(t0):
            self.h.midnight_traces.append(trace_id)

    def request(self, t0: int, day_index: int, days: int) -> None:
        """One HTTP request to an app service at t0: a SERVER span with http.route (some with a
        database CLIENT child), or now and then an unrouted 404 (a SERVER span without a route)."""
        rng = self.app
        tenant = rng.choice(WORKSPACES)
        service = rng.choice(sorted(APP_ROUTES))
        old, new = APP_VERSIONS[service]
        # the release: the new version from the middle day on, both serving on that day (canary)
        middle = days // 2
        version = new if day_index > middle or (day_index == middle and rng.random() < 0.5) else old
        trace_id, span_id = self._trace_id(rng), self._span_id(rng)
        if rng.random() < 0.05:
            duration = max(1, int(rng.lognormvariate(1.5, 0.3)))
            self.span(trace_id=trace_id, span_id=span_id, parent_span_id="", tenant=tenant, service=service,
                      operation="GET", kind=2, status_code=0, status_message="", start_ms=t0, end_ms=t0 + duration,
                      attributes={"http.request.method": "GET", "http.response.status_code": "404"},
                      version=version)  # fmt: skip
            return
        method, route, typical = rng.choice(APP_ROUTES[service])
        slower = 2.0 if (service, version, route) == ("web-api", "1.5.0", "/v1/sessions/{id}") else 1.0
        duration = max(1, int(rng.lognormvariate(math.log(typical * slower), 0.5)))
        fail_rate = 0.12 if (version, route) == ("1.5.0", "/v1/agents/{agent}/runs") else 0.03
        status = (
            rng.choice(["500", "502", "503"]) if rng.random() < fail_rate else rng.choice(["200", "200", "201", "400"])
        )
        error = status.startswith("5")
        attrs = {"http.request.method": method, "http.route": route, "http.response.status_code": status}
        self.span(
            trace_id=trace_id,
            span_id=span_id,
            parent_span_id="",
            tenant=tenant,
            service=service,
            operation=f"{method} {route}",
            kind=2,  # SERVER
            status_code=2 if error else 0,
            status_message="",
            start_ms=t0,
            end_ms=t0 + duration,
            attributes=attrs | ({"error.type": status} if error else {}),
            version=version,
        )
        if duration > 3 and rng.random() < 0.5:  # the request's database query
            self.span(trace_id=trace_id, span_id=self._span_id(rng), parent_span_id=span_id, tenant=tenant,
                      service=service, operation="SELECT app", kind=3, status_code=0, status_message="",
                      start_ms=t0 + 1, end_ms=t0 + duration - 1,
                      attributes={"db.system.name": "postgresql", "db.operation.name": "SELECT"},
                      version=version)  # fmt: skip


def prompt_hash(agent: str, prompt: int) -> str:
    """The hash an agent reports for one of its prompt templates (16 hex chars)."""
    return hashlib.sha256(f"{agent}/prompt-{prompt}".encode()).hexdigest()[:16]


def _mark_late(h: AgentHistory, spans_before: int, events_before: int) -> None:
    h.late.update(s.offset for s in h.spans[spans_before:])
    h.late.update(e.offset for e in h.events[events_before:])


def build_agent_history(start: date, days: int, seed: int, user_hash_key: str, runs_per_day: int = 90) -> AgentHistory:
    """The history in memory (nothing written): runs cluster in a daily peak hour; on the spike
    day one workspace runs its agents far more; on the late day some runs and requests are late."""
    history = AgentHistory(start=start, days=days, seed=seed)
    b = _Builder(history, seed, user_hash_key)
    for d in range(days):
        day_ms = int((datetime.combine(start + timedelta(days=d), datetime.min.time(), UTC) - EPOCH).total_seconds())
        day_ms *= 1000
        peak = b.rng.randint(8, 16) * 3_600_000
        starts: list[tuple[int, str | None]] = []
        for _ in range(runs_per_day):
            if b.rng.random() < 0.5:  # busy hour: several calls share a minute
                starts.append((day_ms + peak + b.rng.randrange(3_600_000), None))
            else:
                starts.append((day_ms + b.rng.randrange(MS_PER_DAY - 120_000), None))
        if d == SPIKE_OFFSET:  # a workspace's agents run three times as often as usual
            history.spike = (start + timedelta(days=d), SPIKE_WORKSPACE)
            starts += [
                (day_ms + b.rng.randrange(MS_PER_DAY - 120_000), SPIKE_WORKSPACE) for _ in range(2 * runs_per_day // 3)
            ]
        if d < days - 1:  # one run per night crosses midnight (its trace belongs to its root's day)
            starts.append((day_ms + MS_PER_DAY - b.rng.randint(200, 900), None))
        for i, (t0, tenant) in enumerate(sorted(starts, key=lambda st: st[0])):
            n_spans, n_events = len(history.spans), len(history.events)
            b.run(t0, tenant)
            if d == LATE_OFFSET and i % 15 == 7:
                _mark_late(history, n_spans, n_events)
        for i, t0 in enumerate(
            sorted(day_ms + b.app.randrange(MS_PER_DAY - 60_000) for _ in range(APP_REQUESTS_PER_DAY))
        ):
            n_spans = len(history.spans)
            b.request(t0, d, days)
            if d == LATE_OFFSET and i % 10 == 3:
                _mark_late(history, n_spans, len(history.events))
    return history


def _duplicates(rng: random.Random, items: list, share: float) -> list:
    return [x for x in items if rng.random() < share]


def insert_spans(client: Any, spans: list[Span]) -> None:
    if spans:
        client.insert("raw.spans", [s.row() for s in spans], column_names=SPAN_COLUMNS)


def insert_events(client: Any, events: list[Event]) -> None:
    if events:
        client.insert("raw.agent_events", [e.row() for e in events], column_names=AGENT_EVENT_COLUMNS)


def load_agent_history(
    clickhouse: ClickHouseResource,
    start: date,
    days: int,
    seed: int,
    user_hash_key: str,
    runs_per_day: int = 90,
    hold_late: bool = False,
) -> AgentHistory:
    """Writes the history into raw.spans and raw.agent_events, with ~3% exact duplicates. With
    hold_late, the late rows (and their duplicates) are kept in ``history.pending`` for
    ``load_late_rows``; the rows written in the end are the same either way."""
    history = build_agent_history(start, days, seed, user_hash_key, runs_per_day)
    rng = random.Random(seed ^ 0x5EED)
    dup_spans = _duplicates(rng, history.spans, 0.03)
    dup_events = _duplicates(rng, history.events, 0.03)
    history.duplicate_spans, history.duplicate_events = len(dup_spans), len(dup_events)
    held = history.late if hold_late else set()
    spans = [s for s in history.spans if s.offset not in held]
    events = [e for e in history.events if e.offset not in held]
    history.pending = (
        [s for s in history.spans + dup_spans if s.offset in held],
        [e for e in history.events + dup_events if e.offset in held],
    )
    with clickhouse.client() as ch:
        insert_spans(ch, spans)
        insert_events(ch, events)
        # Redelivered Kafka messages: the same rows again, in a later insert (another part).
        insert_spans(ch, [s for s in dup_spans if s.offset not in held])
        insert_events(ch, [e for e in dup_events if e.offset not in held])
    return history


def load_late_rows(clickhouse: ClickHouseResource, history: AgentHistory) -> int:
    """Writes the rows load_agent_history(hold_late=True) held back; returns how many."""
    spans, events = history.pending
    with clickhouse.client() as ch:
        insert_spans(ch, spans)
        insert_events(ch, events)
    history.pending = ([], [])
    return len(spans) + len(events)
