"""The streaming rollup of LLM calls (clickhouse_ddl/010) against the dbt marts, on the real stack.

Spans of this module's own workspace go straight into raw.spans on one day of its own (today-20:
inside the rollups' 35-day TTL, a day no other module writes): the materialized view fills
rollups.llm_calls_1m as they land. Then dbt builds staging and the call-metric marts for the day.
Per minute, service and model the rollup holds the marts' calls, errors and tokens, its priced
cost equals the marts' cost, and its p95 is within the sketch's error of the exact one; a span
landed twice (a Kafka redelivery) is counted twice by the rollup only, and rollup_matches_mart
names it as the explained difference.
"""

from __future__ import annotations

import re
import uuid
from datetime import UTC, datetime, timedelta

import pytest
import yaml

from platform_assets.core.paths import dbt_dir, ddl_dir
from platform_assets.synthetic.raw_columns import SPAN_COLUMNS
from platform_assets.transform.rollup_check import compare, explained

TODAY = datetime.now(UTC).date()
DAY = TODAY - timedelta(days=20)
WS = f"ws_rollup_{uuid.uuid4().hex[:8]}"
DDL = ddl_dir() / "010_rollups.sql"
KEYS = {  # <name>_keys arrays of the rollup view: staging column of otel_attribute_aliases
    "model": "model", "gen_ai_operation": "gen_ai_operation", "input_tokens": "input_tokens",
    "output_tokens": "output_tokens", "cached_input_tokens": "cached_input_tokens",
    "reasoning_tokens": "reasoning_tokens", "cost_usd": "cost_usd", "agent_name": "agent_name",
    "status": "status", "error": "error",
}  # fmt: skip


@pytest.mark.unit
def test_rollup_view_reads_the_attribute_names_staging_reads() -> None:
    """The rollup view lists each attribute's names literally; they must be dbt's, in dbt's order."""
    aliases = yaml.safe_load((dbt_dir() / "dbt_project.yml").read_text())["vars"]["otel_attribute_aliases"]
    text = DDL.read_text()
    for name, column in KEYS.items():
        found = re.search(r"\[([^\]]*)\]\s+AS\s+" + name + r"_keys\b", text)
        assert found, f"{name}_keys not in {DDL.name}"
        listed = re.findall(r"'([^']*)'", found.group(1))
        assert listed == aliases[column], f"{name}_keys: {listed} != dbt's {aliases[column]}"


def at(minute: int, second: int = 0) -> datetime:
    return datetime(DAY.year, DAY.month, DAY.day, 9, 0, tzinfo=UTC) + timedelta(minutes=minute, seconds=second)


def span(minute: int, service: str, attributes: dict[str, str], *, duration_ms: float = 800.0,
         status_code: int = 0, resource: dict[str, str] | None = None) -> list:  # fmt: skip
    trace_id, span_id = uuid.uuid4().hex, uuid.uuid4().hex[:16]
    start = at(minute, 5)
    return [trace_id, span_id, "", WS, "test", service, "rollup-test", "chat", 3, status_code, "",
            start, start + timedelta(milliseconds=duration_ms), duration_ms, attributes,
            {"service.name": service, **(resource or {})}, 0, 0]  # fmt: skip


def chat(model: str, tin: int = 100, tout: int = 20, **extra: str) -> dict[str, str]:
    return {"gen_ai.operation.name": "chat", "gen_ai.request.model": model,
            "gen_ai.usage.input_tokens": str(tin), "gen_ai.usage.output_tokens": str(tout), **extra}  # fmt: skip


def rows() -> tuple[list[list], list[list]]:
    """(spans, the same spans landed a second time)."""
    out = []
    # minute 0: 400 calls with spread latencies (the p95 comparison), 12 errors by status
    for i in range(400):
        out.append(
            span(0, "agent-a", chat("gpt-4o"), duration_ms=200 + (i * 37) % 4000, status_code=2 if i < 12 else 0)
        )
    # minute 1: aliases, cache reads, reported costs, errors by attribute, an unknown model
    out += [
        span(1, "agent-a", {"llm.request.model": "gpt-4o-mini", "llm.usage.prompt_tokens": "1000",
                            "llm.usage.completion_tokens": "50", "cached_tokens": "400"}),
        span(1, "agent-a", chat("gpt-4o-mini", 500, 10, **{"gen_ai.usage.cost": "0.25"})),
        span(1, "agent-a", chat("gpt-4o-mini", 10, 1, status="error")),
        span(1, "agent-a", chat("gpt-4o-mini", 10, 1, error="true")),
        span(1, "agent-b", chat("no-such-model-anywhere", 70, 7)),
        span(1, "agent-b", {"model": "gpt-4o"}),  # a model on the span itself: a call without tokens
        span(1, "agent-b", {"http.route": "/search"}),  # not an LLM call
        span(1, "agent-b", {"tool.name": "search"}, resource={"gen_ai.request.model": "gpt-4o"}),  # not a call
    ]  # fmt: skip
    # minute 2 (the next hour): 5 calls that land twice
    later = [span(61, "agent-b", chat("gpt-4o", 30, 3)) for _ in range(5)]
    return out + later, [list(r) for r in later]


@pytest.fixture(scope="module")
def built(stack, clickhouse, kafka, dbt):
    from dagster import DagsterInstance, materialize

    from platform_assets.ingest.assets import kafka_topics
    from platform_assets.ops.assets import clickhouse_schema

    assert materialize([kafka_topics, clickhouse_schema], resources={"clickhouse": clickhouse, "kafka": kafka},
                       instance=DagsterInstance.ephemeral()).success  # fmt: skip
    spans, again = rows()
    with clickhouse.client() as ch:
        ch.insert("raw.spans", spans, column_names=SPAN_COLUMNS)
        ch.insert("raw.spans", again, column_names=SPAN_COLUMNS)  # the redelivery: a separate insert
    dbt("seed", "--select", "model_prices")
    window = {"min_date": DAY.isoformat(), "max_date": (DAY + timedelta(days=1)).isoformat()}
    dbt("run", "--select", "stg_kafka__spans", "mart_agent_metrics_1m", "mart_agent_metrics_1h", vars=window)
    return clickhouse


ROLLUP_BY_MINUTE = """
SELECT minute, service, model, calls, errors, input_tokens, output_tokens, cached_input_tokens, p95,
       toFloat64(reported) + unreported_input * p.usd_per_input_token
           + unreported_cached * p.usd_per_cached_input_token + unreported_output * p.usd_per_output_token AS cost
FROM (
    SELECT minute, service, model, toDate(minute) AS day, sum(calls) AS calls, sum(errors) AS errors,
           sum(input_tokens) AS input_tokens, sum(output_tokens) AS output_tokens,
           sum(cached_input_tokens) AS cached_input_tokens,
           quantilesDDMerge(0.005, 0.5, 0.95, 0.99)(latency_ms)[2] AS p95,
           sum(reported_cost_usd) AS reported, sum(unreported_input_tokens) AS unreported_input,
           sum(unreported_cached_input_tokens) AS unreported_cached, sum(unreported_output_tokens) AS unreported_output
    FROM rollups.llm_calls_1m WHERE workspace_id = {ws:String}
    GROUP BY minute, service, model, day
) AS r
ASOF LEFT JOIN staging.model_prices AS p ON p.model = r.model AND r.day >= p.effective_from
ORDER BY minute, service, model
"""
MART_BY_MINUTE = """
SELECT minute, service, model, sum(calls), sum(errors), sum(input_tokens), sum(output_tokens),
       sum(cached_input_tokens), max(p95_latency_ms), sum(cost_usd)
FROM marts.mart_agent_metrics_1m WHERE workspace_id = {ws:String}
GROUP BY minute, service, model ORDER BY minute, service, model
"""


@pytest.mark.integration
def test_rollup_holds_the_marts_calls_errors_tokens_cost_and_p95(built) -> None:
    with built.client() as ch:
        rollup = {tuple(r[:3]): r[3:] for r in ch.query(ROLLUP_BY_MINUTE, parameters={"ws": WS}).result_rows}
        mart = {tuple(r[:3]): r[3:] for r in ch.query(MART_BY_MINUTE, parameters={"ws": WS}).result_rows}
    assert set(rollup) == set(mart), (sorted(rollup), sorted(mart))
    assert len(mart) == 5, sorted(mart)  # gpt-4o x2, gpt-4o-mini, the unknown model; the redelivered minute
    for key, m in mart.items():
        r = rollup[key]
        twice = (key[0].hour, key[0].minute) == (10, 1)
        factor = 2 if twice else 1  # the redelivered spans: counted twice by the rollup only
        assert (r[0], r[1], r[2], r[3], r[4]) == tuple(factor * v for v in m[:5]), (key, r, m)
        assert r[6] == pytest.approx(factor * m[6], rel=1e-9, abs=1e-12), (key, "cost", r[6], m[6])
        if m[0] >= 200:
            assert r[5] == pytest.approx(m[5], rel=0.01), (key, "p95", r[5], m[5])
    big = mart[next(k for k in mart if k[0].minute == 0)]
    assert big[:2] == (400, 12)


@pytest.mark.integration
def test_check_names_the_redelivered_spans_as_the_only_difference(built) -> None:
    with built.client() as ch:
        info, differing = compare(ch)
    mine = [r for r in differing if r["workspace_id"] == WS]
    assert info["hours"] >= 1, info
    assert len(mine) == 1, mine
    (row,) = mine
    assert (row["rollup_calls"], row["mart_calls"], row["duplicate_rows"]) == (10, 5, 5), row
    assert explained(row), row
