"""Agent-telemetry marts on the real stack equal the answers of a deterministic history.

The history (platform_assets.synthetic.history_agents) is written straight into raw.spans and
raw.agent_events with historical timestamps and exact duplicate rows, the marts are built by
dbt for its window, and every mart's full result set is compared with the record's values,
which are computed in Python/numpy without the SQL. Integers compare exactly, floats with
rel=1e-9. Percentiles: numpy.percentile's default (linear) = quantileExactInclusive.
"""

from __future__ import annotations

import os
import uuid
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from platform_assets.synthetic import history_agents as ha

pytestmark = pytest.mark.integration

REPO_ROOT = Path(__file__).resolve().parents[2]

SEED = 20261
MODELS = [
    "mart_agent_metrics_1m",
    "mart_agent_metrics_1h",
    "mart_llm_daily",
    "mart_tool_reliability_hourly",
    "mart_trace_errors_daily",
    "mart_cost_daily",
    "mart_slo_daily",
]
# The value columns of both call-metric marts (one macro, llm_call_metrics, builds them).
CALL_METRICS = [
    "calls", "errors", "error_rate", "p50_latency_ms", "p95_latency_ms", "p99_latency_ms",
    "input_tokens", "output_tokens", "cost_usd",
]  # fmt: skip
# mart -> (key columns, value columns), in the order of the record's keys and values
SHAPES: dict[str, tuple[list[str], list[str]]] = {
    "mart_agent_metrics_1m": (
        ["minute", "workspace_id", "service", "agent_name", "model"],
        CALL_METRICS,
    ),
    "mart_agent_metrics_1h": (
        ["hour", "workspace_id", "service", "agent_name", "model"],
        CALL_METRICS,
    ),
    "mart_llm_daily": (
        ["day", "workspace_id", "model", "provider"],
        [
            "calls",
            "p50_latency_ms",
            "p90_latency_ms",
            "input_tokens",
            "output_tokens",
            "cost_usd",
            "success_rate",
        ],
    ),
    "mart_tool_reliability_hourly": (
        ["hour", "workspace_id", "tool_name"],
        ["calls", "successes", "failures", "timeouts", "success_rate", "p95_latency_ms"],
    ),
    "mart_trace_errors_daily": (
        ["day", "workspace_id", "service"],
        ["spans", "error_spans", "call_error_rate", "traces", "error_traces", "trace_error_rate"],
    ),
    "mart_cost_daily": (
        ["day", "workspace_id", "model", "user_hash"],
        ["calls", "input_tokens", "output_tokens", "cost_usd"],
    ),
    "mart_slo_daily": (
        ["day", "workspace_id"],
        ["requests", "errors", "success_rate", "slo_target", "error_budget", "budget_remaining", "burn_rate"],
    ),
}
TIME_COLUMN = {
    "mart_agent_metrics_1m": "toDate(minute)",
    "mart_agent_metrics_1h": "toDate(hour)",
    "mart_tool_reliability_hourly": "toDate(hour)",
}


def _norm(v: Any) -> Any:
    """Aware datetimes to naive UTC, so server and record values compare."""
    if isinstance(v, datetime) and v.tzinfo is not None:
        return v.astimezone(UTC).replace(tzinfo=None)
    return v


def _expected_key(key: tuple) -> tuple:
    return tuple(_norm(k) for k in key)


def read_mart(ch, model: str, start: date, end: date, workspaces: list[str] | None = None) -> dict[tuple, dict]:
    keys, values = SHAPES[model]
    day = TIME_COLUMN.get(model, "day")
    where = f"{day} BETWEEN {{lo:Date}} AND {{hi:Date}}"
    params: dict[str, Any] = {"lo": start, "hi": end}
    if workspaces is not None:
        where += " AND workspace_id IN {ws:Array(String)}"
        params["ws"] = workspaces
    sql = f"SELECT {', '.join(keys + values)} FROM marts.{model} WHERE {where} ORDER BY {', '.join(keys)}"
    out: dict[tuple, dict] = {}
    for row in ch.query(sql, parameters=params).result_rows:
        key = tuple(_norm(v) for v in row[: len(keys)])
        assert key not in out, f"{model}: duplicate key {key}"
        out[key] = dict(zip(values, row[len(keys) :], strict=True))
    return out


def rows_sorted(ch, model: str) -> list[tuple]:
    keys, _values = SHAPES[model]
    return ch.query(f"SELECT * FROM marts.{model} ORDER BY {', '.join(keys)}").result_rows


def assert_mart_equals(actual: dict[tuple, dict], expected: dict[tuple, dict], model: str) -> None:
    expected = {_expected_key(k): v for k, v in expected.items()}
    missing = sorted(set(expected) - set(actual))[:5]
    extra = sorted(set(actual) - set(expected))[:5]
    assert not missing and not extra, f"{model}: missing keys {missing}, unexpected keys {extra}"
    for key, exp in expected.items():
        got = actual[key]
        for col, want in exp.items():
            have = got[col]
            if isinstance(want, int) and not isinstance(want, bool):
                assert have == want, f"{model} {key} {col}: {have} != {want}"
            else:
                assert have == pytest.approx(want, rel=1e-9, abs=1e-12), f"{model} {key} {col}: {have} != {want}"


@pytest.fixture(scope="module")
def agent_history(platform_ready, dbt, history_window, dbt_window):
    start, end = history_window
    history = ha.load_agent_history(
        platform_ready["clickhouse"], start, (end - start).days + 1, SEED, os.environ["USER_HASH_KEY"]
    )
    build = ["build", "--select", *(f"+{m}" for m in MODELS)]
    dbt(*build, vars=dbt_window(start, end))
    return history


@pytest.fixture(scope="module")
def ch(platform_ready):
    with platform_ready["clickhouse"].client() as client:
        yield client


def check(ch, history: ha.AgentHistory, model: str, expected: dict[tuple, dict]) -> None:
    actual = read_mart(ch, model, history.start, history.end, history.workspaces)
    assert_mart_equals(actual, expected, model)


def test_history_shape(agent_history):
    """The generator made what the marts need: errors, retries, duplicates, midnight traces."""
    h = agent_history
    assert 2500 <= h.runs <= 4000
    assert h.duplicate_spans > 0 and h.duplicate_events > 0
    assert h.midnight_traces, "no trace crosses midnight"
    assert any(s.is_error for s in h.spans)
    assert any(s.attributes.get("retry.attempt") == "2" for s in h.spans)
    assert {s.service for s in h.spans} >= {"agent-runtime", "research-worker", "tool-gateway"}
    assert ha.build_agent_history(h.start, h.days, SEED, os.environ["USER_HASH_KEY"]).spans == h.spans


def test_llm_daily_latency_percentiles_tokens_cost(ch, agent_history):
    check(ch, agent_history, "mart_llm_daily", agent_history.llm_daily())


def test_minute_metrics_p50_p95_p99_and_list_price_cost(ch, agent_history):
    check(ch, agent_history, "mart_agent_metrics_1m", agent_history.metrics_1m())


def test_hour_metrics_are_the_hours_own_percentiles_and_the_minutes_sums(ch, agent_history):
    check(ch, agent_history, "mart_agent_metrics_1h", agent_history.metrics_1h())
    # Additive figures agree with the minute mart, hour by hour, on the server.
    diff = ch.query(
        "SELECT count() FROM (SELECT toStartOfHour(minute) AS hour, workspace_id, service, agent_name, model, "
        "sum(calls) AS calls, sum(errors) AS errors, sum(input_tokens) AS tin, sum(output_tokens) AS tout "
        "FROM marts.mart_agent_metrics_1m WHERE workspace_id IN {ws:Array(String)} "
        "GROUP BY hour, workspace_id, service, agent_name, model) AS m "
        "FULL OUTER JOIN (SELECT hour, workspace_id, service, agent_name, model, calls, errors, "
        "input_tokens AS tin, output_tokens AS tout FROM marts.mart_agent_metrics_1h "
        "WHERE workspace_id IN {ws:Array(String)}) AS h USING (hour, workspace_id, service, agent_name, model) "
        "WHERE (m.calls, m.errors, m.tin, m.tout) != (h.calls, h.errors, h.tin, h.tout)",
        parameters={"ws": agent_history.workspaces},
    ).result_rows[0][0]
    assert diff == 0


def test_p95_per_model_and_day_from_spans_equals_numpy(ch, agent_history):
    """A direct numpy check of p95 over one day's calls of one model (the same rows as the mart)."""
    import numpy as np

    h = agent_history
    day = h.start + timedelta(days=3)
    lat = [
        float(s.end_ms - s.start_ms)
        for s in h.spans
        if s.attributes.get("gen_ai.request.model") == "gpt-4o" and ha._day(s.start_ms) == day
    ]
    sql = (
        "SELECT quantileExactInclusive(0.95)(duration_ms), count() FROM staging.stg_kafka__spans "
        "WHERE span_date = {d:Date} AND model = 'gpt-4o' AND workspace_id IN {ws:Array(String)}"
    )
    p95, n = ch.query(sql, parameters={"d": day, "ws": h.workspaces}).result_rows[0]
    assert n == len(lat)
    assert p95 == pytest.approx(float(np.percentile(lat, 95)), rel=1e-9)


def test_cost_totals_per_day_workspace_model_user(ch, agent_history):
    check(ch, agent_history, "mart_cost_daily", agent_history.cost_daily())
    total = ch.query(
        "SELECT sum(cost_usd) FROM marts.mart_cost_daily WHERE day BETWEEN {lo:Date} AND {hi:Date} "
        "AND workspace_id IN {ws:Array(String)}",
        parameters={"lo": agent_history.start, "hi": agent_history.end, "ws": agent_history.workspaces},
    ).result_rows[0][0]
    llm = [e for e in agent_history.events if e.event_type == "llm_call"]
    assert total == pytest.approx(sum(e.cost_usd for e in llm), rel=1e-9)


def test_trace_vs_call_error_rates(ch, agent_history):
    expected = agent_history.trace_errors_daily()
    check(ch, agent_history, "mart_trace_errors_daily", expected)
    # the two rates differ: a trace with one failed retry errs while most of its calls do not
    assert any(v["trace_error_rate"] > v["call_error_rate"] for v in expected.values() if v["traces"])


def test_midnight_trace_counts_on_its_root_day(ch, agent_history):
    h = agent_history
    trace_id = h.midnight_traces[0]
    spans = [s for s in h.spans if s.trace_id == trace_id]
    root = next(s for s in spans if not s.parent_span_id)
    assert {ha._day(s.start_ms) for s in spans} == {ha._day(root.start_ms), ha._day(root.start_ms) + timedelta(days=1)}
    rows = ch.query(
        "SELECT span_date, agent_name FROM staging.stg_kafka__spans WHERE trace_id = {t:String}",
        parameters={"t": trace_id},
    ).result_rows
    assert len(rows) == len(spans) and {r[1] for r in rows} == {root.attributes["gen_ai.agent.name"]}


def test_tool_reliability_hourly(ch, agent_history):
    expected = agent_history.tool_hourly()
    check(ch, agent_history, "mart_tool_reliability_hourly", expected)
    assert sum(v["timeouts"] for v in expected.values()) > 0


def test_slo_daily(ch, agent_history):
    check(ch, agent_history, "mart_slo_daily", agent_history.slo_daily())


DUP_DAY = 5  # day offset in the history whose every row is delivered once more
LATE_DAY = 10  # day offset in the history that gets late rows after it was built


def _late_rows(h: ha.AgentHistory) -> tuple[list[ha.Span], list[ha.Event]]:
    """A failed retry of an LLM call and a timed-out tool call arriving late in a clean trace."""
    day = h.start + timedelta(days=LATE_DAY)
    by_trace: dict[str, list[ha.Span]] = {}
    for s in h.spans:
        by_trace.setdefault(s.trace_id, []).append(s)
    trace = next(
        spans
        for spans in by_trace.values()
        if all(ha._day(s.start_ms) == day and not s.is_error for s in spans) and len(spans) >= 3
    )
    root = next(s for s in trace if not s.parent_span_id)
    run = next(e for e in h.events if e.event_type == "agent_run_started" and e.at_ms == root.start_ms)
    at = root.start_ms + 5
    chat = ha.Span(
        trace_id=root.trace_id,
        span_id=uuid.uuid4().hex[:16],
        parent_span_id=root.span_id,
        tenant=root.tenant,
        service=root.service,
        operation="chat gpt-4o",
        kind=3,
        status_code=2,
        status_message="rate_limited",
        start_ms=at,
        end_ms=at + 777,
        attributes={
            "gen_ai.operation.name": "chat",
            "gen_ai.provider.name": "openai",
            "gen_ai.request.model": "gpt-4o",
            "gen_ai.usage.input_tokens": "1234",
            "gen_ai.usage.output_tokens": "56",
            "error.type": "rate_limited",
        },
        offset=1,
    )
    tool = ha.Span(
        trace_id=root.trace_id,
        span_id=uuid.uuid4().hex[:16],
        parent_span_id=root.span_id,
        tenant=root.tenant,
        service="tool-gateway",
        operation="execute_tool sql_query",
        kind=1,
        status_code=2,
        status_message="timeout",
        start_ms=at + 800,
        end_ms=at + 900,
        attributes={"gen_ai.operation.name": "execute_tool", "gen_ai.tool.name": "sql_query"},
        offset=2,
    )
    common = {
        "workspace_id": run.workspace_id,
        "session_id": run.session_id,
        "actor_id": run.actor_id,
        "agent": run.agent,
    }
    events = [
        ha.Event(
            event_id=uuid.uuid4(),
            event_type="llm_call",
            at_ms=chat.end_ms,
            offset=3,
            model="gpt-4o",
            provider="openai",
            input_tokens=1234,
            output_tokens=56,
            latency_ms=777.25,
            success=False,
            error_type="rate_limited",
            unit_cost_input=2.5e-6,
            unit_cost_output=1e-5,
            **common,
        ),
        ha.Event(
            event_id=uuid.uuid4(),
            event_type="tool_call",
            at_ms=tool.end_ms,
            offset=4,
            tool_name="sql_query",
            latency_ms=100.0,
            success=False,
            status="timeout",
            error_type="timeout",
            **common,
        ),
    ]
    return [chat, tool], events


@pytest.fixture(scope="module")
def rerun(ch, agent_history, dbt, dbt_window):
    """Built marts, then: a day redelivered, late rows for a finished day, the window re-run."""
    h = agent_history
    before = {m: rows_sorted(ch, m) for m in MODELS}
    dup_day = h.start + timedelta(days=DUP_DAY)
    for table, col, mine in (
        ("raw.spans", "start_time", "env = 'history'"),
        ("raw.agent_events", "occurred_at", "source = 'history-agents'"),
    ):
        ch.command(
            f"INSERT INTO {table} SELECT * FROM {table} WHERE toDate({col}) = {{d:Date}} AND {mine}",
            parameters={"d": dup_day},
        )
    late_spans, late_events = _late_rows(h)
    ha.insert_spans(ch, late_spans)
    ha.insert_events(ch, late_events)
    dbt("run", "--select", *MODELS, "stg_kafka__spans", "stg_kafka__agent_events", vars=dbt_window(h.start, h.end))
    extended = ha.AgentHistory(
        start=h.start, days=h.days, seed=h.seed, spans=h.spans + late_spans, events=h.events + late_events
    )
    return {"before": before, "after": {m: rows_sorted(ch, m) for m in MODELS}, "extended": extended}


def _day_of_row(model: str, row: tuple) -> date:
    value = row[0]  # every mart's first column is its day, hour or minute
    return value.date() if isinstance(value, datetime) else value


def test_rerun_of_window_gives_identical_rows(agent_history, rerun):
    """Re-running the whole window rebuilds every day; days without new rows come out identical."""
    late_day = agent_history.start + timedelta(days=LATE_DAY)
    for m in MODELS:
        before = [r for r in rerun["before"][m] if _day_of_row(m, r) != late_day]
        after = [r for r in rerun["after"][m] if _day_of_row(m, r) != late_day]
        assert len(after) > 0 and after == before, m


def test_duplicates_in_raw_change_no_mart(ch, agent_history, rerun):
    h = agent_history
    dup_day = h.start + timedelta(days=DUP_DAY)
    raw, staged = ch.query(
        "SELECT (SELECT count() FROM raw.spans WHERE toDate(start_time) = {d:Date} AND env = 'history'), "
        "(SELECT count() FROM staging.stg_kafka__spans WHERE span_date = {d:Date} AND env = 'history')",
        parameters={"d": dup_day},
    ).result_rows[0]
    assert raw >= 2 * staged > 0  # every row of the day is in raw at least twice, once in staging
    for m in MODELS:
        day_rows = [r for r in rerun["after"][m] if _day_of_row(m, r) == dup_day]
        assert day_rows and day_rows == [r for r in rerun["before"][m] if _day_of_row(m, r) == dup_day], m


def test_late_span_and_event_appear_after_rerun_of_their_day(ch, agent_history, rerun):
    """Late rows for a finished day are counted once that day is re-run: every mart equals the
    record extended with them (a clean trace now errs, its minute/day/hour figures move)."""
    h, ext = agent_history, rerun["extended"]
    late_day = h.start + timedelta(days=LATE_DAY)
    for m in MODELS:
        changed = [r for r in rerun["after"][m] if _day_of_row(m, r) == late_day]
        unchanged = [r for r in rerun["before"][m] if _day_of_row(m, r) == late_day]
        assert (changed != unchanged) == (m != "mart_slo_daily"), m  # no run finished late
    for model, expected in (
        ("mart_agent_metrics_1m", ext.metrics_1m()),
        ("mart_agent_metrics_1h", ext.metrics_1h()),
        ("mart_llm_daily", ext.llm_daily()),
        ("mart_tool_reliability_hourly", ext.tool_hourly()),
        ("mart_trace_errors_daily", ext.trace_errors_daily()),
        ("mart_cost_daily", ext.cost_daily()),
        ("mart_slo_daily", ext.slo_daily()),
    ):
        assert_mart_equals(read_mart(ch, model, h.start, h.end, h.workspaces), expected, model)
    old, new = h.trace_errors_daily(), ext.trace_errors_daily()
    key = next(k for k in new if k[0] == late_day and new[k]["error_traces"] != old[k]["error_traces"])
    assert new[key]["error_traces"] == old[key]["error_traces"] + 1
