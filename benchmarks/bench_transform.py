"""Benchmark: dbt partition build vs full refresh at 10 M events/day, and dashboard query latency.

    .venv/bin/python benchmarks/bench_transform.py [--events-per-day 10000000]
        [--history-events-per-day 300000] [--history-days 29] [--users 100000]
        [--query-runs 50] [--baseline-runs 10] [--skip-dbt-build] [--skip-window-run] [--out FILE]

One fresh embedded stack (all four servers). Day D = today - 3 (UTC; the raw tables keep
90 days). Data, generated server-side with ``INSERT ... SELECT FROM numbers()`` (every column
a hash of the row number, so a rerun writes the same rows):
- day D: ``--events-per-day`` rows in ``raw.agent_events`` (runs of 10 events: started,
  6 llm_call, 2 tool_call, finished), half as many rows in ``raw.spans`` (traces of 5 spans:
  ``invoke_agent`` root, 3 ``chat``, 1 ``execute_tool``) and 0.3x as many in
  ``raw.product_events`` (visits of 20 events, some signup funnels). 1 in 100 rows of each
  table is a redelivered copy of the row before it (at-least-once Kafka).
- days D-29..D-1: the same shapes at ``--history-events-per-day``.
- the app's Postgres (users, orders, subscriptions, server-side events) through the real CDC
  replica (MaterializedPostgreSQL), for the product marts.

Figures (one JSON document on stdout, and in ``--out``):
1. ``dbt``: a first ``dbt run`` (every model, tables created); then day D's partition with
   ``dbt run --vars {min_date: D, max_date: D+1}`` (incremental path: each model drops D's
   partition and appends it); the same window with ``dbt build`` (seed, models and tests);
   ``dbt run --full-refresh`` (no vars: every model rebuilt from all raw rows); ratio
   full / incremental. Per-model seconds from ``run_results.json``, ClickHouse cost per model
   (read rows, peak memory, duration) from ``system.query_log``.
2. ``queries``: each panel query of ``benchmarks/dashboard_queries.sql`` over the 30 days
   [D-29, D+1), for all workspaces and for one, over HTTP with clickhouse-connect:
   3 warm-ups then ``--query-runs`` timed runs; p50/p95/max ms. Target: p95 < 50 ms.
3. ``baseline``: the ``raw__<name>`` blocks of the same file (the same question from raw or
   staging tables), timed the same way in the same process; the ratio raw / mart p95 and
   whether both return the same rows.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import platform
import re
import shutil
import subprocess
import sys
import tempfile
import time
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

from dagster import DagsterInstance, materialize

from platform_assets.cdc import replica
from platform_assets.cdc.assets import app_schema, build_replica_asset, source_replication
from platform_assets.cdc.monitor import wait_caught_up
from platform_assets.cdc.resources import CdcResource, configured_tables
from platform_assets.core.paths import dbt_dir
from platform_assets.core.resources import resources_from_env
from platform_assets.ingest.assets import kafka_topics
from platform_assets.ops.assets import clickhouse_schema
from platform_assets.publish.dashboards import ALL_VALUE, DASHBOARDS
from platform_assets.publish.macros import Expansion, TimeRange, expand
from platform_assets.stack.scratch import scratch_stack
from platform_assets.transform.cost import model_costs

QUERIES_FILE = Path(__file__).with_name("dashboard_queries.sql")
SPAN_RATIO = 0.5  # spans per agent event
PRODUCT_RATIO = 0.3  # product events per agent event
QUERY_TARGET_MS = 50.0
ONE_WORKSPACE = "ws_1"
DAY_BASE = 10_000_000_000  # row-number namespace per day: ids never collide across days

# Workspaces ws_1..ws_20, skewed (ws_1 busiest): index = floor(20 * u^2), u uniform in [0, 1).
WS = "concat('ws_', toString(1 + toUInt32(floor(20 * pow(({h} % 10000) / 10000, 2)))))"
# A standard normal from two hash bits (Box-Muller), deterministic.
NORMAL = (
    "(sqrt(-2 * log((({h} % 1000000) + 1) / 1000001)) * cos(2 * pi() * (intDiv({h}, 1000000) % 1000000) / 1000000))"
)
MODELS = "['gpt-4o-mini', 'gpt-4o', 'claude-3-5-haiku']"
PROVIDERS = "['openai', 'openai', 'anthropic']"
PRICE_IN = "[0.00000015, 0.0000025, 0.0000008]"
PRICE_OUT = "[0.0000006, 0.00001, 0.000004]"
AGENTS = "['support_bot', 'sql_analyst', 'research_agent']"
SERVICES = "['agent-runtime', 'agent-runtime', 'research-worker']"
TOOLS = "['web_search', 'sql_query', 'send_email', 'calculator']"
PAGES = "['/home', '/docs', '/pricing', '/settings', '/reports']"
FEATURES = "['export', 'dashboards', 'alerts', 'sharing']"


def keyed_hash(key: str, expr: str) -> str:
    """dbt's keyed_hash macro as SQL: HMAC-SHA256 keyed by USER_HASH_KEY, first 16 bytes as hex
    (platform_assets.core.identity.user_hash; tests/core/test_identity.py checks the two agree)."""
    return f"if(empty(toString({expr})), '', lower(hex(substring(HMAC('sha256', toString({expr}), '{key}'), 1, 16))))"


def agent_events_sql(day: date, n: int, base: int, users: int, key: str) -> str:
    day_ms = int(datetime(day.year, day.month, day.day, tzinfo=UTC).timestamp() * 1000)
    return f"""
INSERT INTO raw.agent_events (event_id, event_type, occurred_at, workspace_id, session_id, actor_id, source,
    context, model, provider, input_tokens, output_tokens, prompt_hash, latency_ms, success, error_type,
    tool_name, status, unit_cost_input, unit_cost_output, cost_usd, kafka_partition, kafka_offset)
SELECT
    reinterpretAsUUID(MD5(concat('ae', toString(g)))) AS event_id,
    multiIf(p = 0, 'agent_run_started', p <= 6, 'llm_call', p <= 8, 'tool_call', 'agent_run_finished') AS event_type,
    fromUnixTimestamp64Milli(toInt64({day_ms} + hr % (86400000 - 900000) + p * 1500 + he % 1000), 'UTC') AS occurred_at,
    {WS.format(h="hr")} AS workspace_id,
    lower(hex(MD5(concat('sess', toString(run))))) AS session_id,
    {keyed_hash(key, "1 + cityHash64(run, 3) % " + str(users))} AS actor_id,
    'bench' AS source,
    concat('{{"agent": "', {AGENTS}[1 + hr % 3], '"}}') AS context,
    if(is_llm, {MODELS}[mi], '') AS model,
    if(is_llm, {PROVIDERS}[mi], '') AS provider,
    toUInt32(if(is_llm, 100 + he % 3900, 0)) AS input_tokens,
    toUInt32(if(is_llm, 20 + intDiv(he, 65536) % 780, 0)) AS output_tokens,
    if(is_llm, lower(hex(he)), '') AS prompt_hash,
    multiIf(is_llm, round(exp(6 + 0.6 * z), 3), is_tool, round(exp(4.5 + 0.8 * z)), 0) AS latency_ms,
    toUInt8(multiIf(p = 0, 0, is_llm, u >= 0.05, is_tool, u >= 0.07, u >= 0.02)) AS success,
    multiIf(is_llm AND u < 0.05, ['rate_limited', 'timeout', 'invalid_request'][1 + he % 3],
            is_tool AND u < 0.04, 'tool_error', is_tool AND u < 0.07, 'timeout',
            p = 9 AND u < 0.02, 'run_failed', '') AS error_type,
    if(is_tool, {TOOLS}[1 + he % 4], '') AS tool_name,
    multiIf(p = 0, 'started', is_tool, multiIf(u < 0.04, 'error', u < 0.055, 'timeout', u < 0.07, 'error', 'ok'),
            p = 9, if(u < 0.02, 'failed', 'ok'), '') AS status,
    if(is_llm, {PRICE_IN}[mi], 0) AS unit_cost_input,
    if(is_llm, {PRICE_OUT}[mi], 0) AS unit_cost_output,
    input_tokens * unit_cost_input + output_tokens * unit_cost_output AS cost_usd,
    toUInt32(g % 3) AS kafka_partition,
    g AS kafka_offset
FROM
(
    SELECT
        toUInt64({base} + number - (number % 100 = 99)) AS g,  -- 1 row in 100: a redelivered copy
        intDiv(g, 10) AS run, g % 10 AS p,
        cityHash64(run, 1) AS hr, cityHash64(g, 2) AS he,
        p BETWEEN 1 AND 6 AS is_llm, p BETWEEN 7 AND 8 AS is_tool,
        1 + intDiv(he, 4096) % 3 AS mi,
        (cityHash64(g, 4) % 100000) / 100000 AS u,
        {NORMAL.format(h="cityHash64(g, 5)")} AS z
    FROM numbers({n})
)
"""


def spans_sql(day: date, n: int, base: int) -> str:
    day_ms = int(datetime(day.year, day.month, day.day, tzinfo=UTC).timestamp() * 1000)
    return f"""
INSERT INTO raw.spans (trace_id, span_id, parent_span_id, tenant, env, service, scope, operation, kind,
    status_code, status_message, start_time, end_time, duration_ms, attributes, resource_attributes,
    kafka_partition, kafka_offset)
SELECT
    lower(hex(MD5(concat('tr', toString(run))))) AS trace_id,
    substring(lower(hex(MD5(concat('sp', toString(g))))), 1, 16) AS span_id,
    if(s = 0, '', substring(lower(hex(MD5(concat('sp', toString(g - s))))), 1, 16)) AS parent_span_id,
    tenant,
    'bench' AS env,
    if(s = 4 AND tool = 'sql_query', 'tool-gateway', {SERVICES}[ai]) AS service,
    'bench_transform' AS scope,
    multiIf(s = 0, concat('invoke_agent ', agent), s <= 3, concat('chat ', model),
            concat('execute_tool ', tool)) AS operation,
    toUInt8(if(s BETWEEN 1 AND 3, 3, 1)) AS kind,
    toUInt8(if(err != '', 2, 0)) AS status_code,
    err AS status_message,
    fromUnixTimestamp64Milli(toInt64(start_ms), 'UTC') AS start_time,
    fromUnixTimestamp64Milli(toInt64(start_ms + dur), 'UTC') AS end_time,
    toFloat64(dur) AS duration_ms,
    multiIf(
        s = 0, map('gen_ai.operation.name', 'invoke_agent', 'gen_ai.agent.name', agent, 'tenant.id', tenant),
        s <= 3, mapUpdate(map('gen_ai.operation.name', 'chat', 'gen_ai.provider.name', {PROVIDERS}[mi],
                    'gen_ai.request.model', model, 'gen_ai.usage.input_tokens', toString(100 + he % 3900),
                    'gen_ai.usage.output_tokens', toString(20 + intDiv(he, 65536) % 780)),
                    if(err = '', map(), map('error.type', err))),
        mapUpdate(map('gen_ai.operation.name', 'execute_tool', 'gen_ai.tool.name', tool),
                  if(err = '', map(), map('error.type', err)))) AS attributes,
    map('service.name', service, 'tenant.id', tenant, 'deployment.environment.name', 'bench') AS resource_attributes,
    toUInt32(g % 3) AS kafka_partition,
    g AS kafka_offset
FROM
(
    SELECT
        toUInt64({base} + number - (number % 100 = 99)) AS g,
        intDiv(g, 5) AS run, g % 5 AS s,
        cityHash64(run, 1) AS hr, cityHash64(g, 2) AS he,
        {WS.format(h="hr")} AS tenant,
        1 + hr % 3 AS ai, {AGENTS}[ai] AS agent,
        1 + intDiv(he, 4096) % 3 AS mi, {MODELS}[mi] AS model,
        {TOOLS}[1 + he % 4] AS tool,
        (cityHash64(g, 4) % 100000) / 100000 AS u,
        multiIf(s = 0 AND u < 0.03, 'run failed', s BETWEEN 1 AND 3 AND u < 0.06,
                ['rate_limited', 'timeout', 'invalid_request'][1 + he % 3],
                s = 4 AND u < 0.07, 'tool_error', '') AS err,
        {day_ms} + hr % (86400000 - 900000) AS t0,
        toInt64(if(s = 0, 0, (s - 1) * 2500 + he % 1000)) AS offset_ms,
        t0 + offset_ms AS start_ms,
        {NORMAL.format(h="cityHash64(g, 5)")} AS z,
        toInt64(if(s = 0, 12000, 1 + round(exp(if(s = 4, 4.5, 6) + if(s = 4, 0.8, 0.6) * z)))) AS dur
    FROM numbers({n})
)
"""


def product_events_sql(day: date, n: int, base: int, users: int, key: str) -> str:
    day_ms = int(datetime(day.year, day.month, day.day, tzinfo=UTC).timestamp() * 1000)
    return f"""
INSERT INTO raw.product_events (event_id, event_type, occurred_at, workspace_id, session_id, actor_id, source,
    context, properties, kafka_partition, kafka_offset)
SELECT
    reinterpretAsUUID(MD5(concat('pe', toString(g)))) AS event_id,
    event_type,
    fromUnixTimestamp64Milli(toInt64({day_ms} + hv % (86400000 - 1800000) + q * 30000 + he % 20000), 'UTC')
        AS occurred_at,
    {WS.format(h="cityHash64(uid, 5)")} AS workspace_id,
    lower(hex(MD5(concat('visit', toString(v))))) AS session_id,
    if(anonymous, '', {keyed_hash(key, "uid")}) AS actor_id,
    'bench' AS source,
    '{{}}' AS context,
    multiIf(event_type = 'feature_used', concat('{{"feature": "', {FEATURES}[1 + he % 4], '"}}'),
            signup AND q = 0, '{{"path": "/signup"}}',
            event_type = 'page_view', concat('{{"path": "', {PAGES}[1 + he % 5], '"}}'), '{{}}') AS properties,
    toUInt32(g % 3) AS kafka_partition,
    g AS kafka_offset
FROM
(
    SELECT
        toUInt64({base} + number - (number % 100 = 99)) AS g,
        intDiv(g, 20) AS v, g % 20 AS q,
        cityHash64(v, 1) AS hv, cityHash64(g, 2) AS he,
        1 + cityHash64(v, 3) % {users} AS uid,
        cityHash64(v, 4) % 20 = 0 AS anonymous,
        cityHash64(v, 6) % 50 = 0 AS signup,
        multiIf(signup AND q = 0, 'page_view', signup AND q = 1, 'signup_submitted',
                signup AND q = 2 AND hv % 3 != 0, 'signup_completed', q = 0, 'session_start',
                he % 10 < 3, 'feature_used', 'page_view') AS event_type
    FROM numbers({n})
)
"""


# -- app database (Postgres, replicated by CDC) ----------------------------------------------
APP_SQL = [
    # users: signups spread over the 120 days before D+1
    """INSERT INTO users (user_id, email, name, country, plan, created_at, updated_at)
       SELECT g, 'u' || g || '@example.com', 'user ' || g, (ARRAY['US','DE','FR','IN','BR'])[1 + g %% 5],
              (ARRAY['free','free','pro','team'])[1 + g %% 4],
              %(end)s::timestamptz - ((abs(hashint4(g)::bigint) %% (120 * 86400)) || ' seconds')::interval,
              %(end)s::timestamptz - ((abs(hashint4(g)::bigint) %% (120 * 86400)) || ' seconds')::interval
       FROM generate_series(1, %(users)s) g""",
    # orders over the 30 days, 5% refunded
    """INSERT INTO orders (order_id, user_id, amount_cents, currency, status, created_at, updated_at)
       SELECT g, 1 + abs(hashint4(g * 7)::bigint) %% %(users)s, 500 + abs(hashint4(g * 11)::bigint) %% 20000, 'USD',
              CASE WHEN g %% 20 = 0 THEN 'refunded' ELSE 'paid' END,
              %(end)s::timestamptz - ((abs(hashint4(g)::bigint) %% (30 * 86400)) || ' seconds')::interval,
              %(end)s::timestamptz - ((abs(hashint4(g)::bigint) %% (30 * 86400)) || ' seconds')::interval
                + CASE WHEN g %% 20 = 0 THEN interval '1 hour' ELSE interval '0' END
       FROM generate_series(1, %(orders)s) g""",
    # subscriptions started over 120 days, 10% cancelled
    """INSERT INTO subscriptions
              (subscription_id, user_id, plan, mrr_cents, status, started_at, cancelled_at, updated_at)
       SELECT g, 1 + abs(hashint4(g * 13)::bigint) %% %(users)s, (ARRAY['pro','team','enterprise'])[1 + g %% 3],
              (ARRAY[2900, 9900, 49900])[1 + g %% 3],
              CASE WHEN g %% 10 = 0 THEN 'cancelled' ELSE 'active' END,
              %(end)s::timestamptz - ((abs(hashint4(g)::bigint) %% (120 * 86400)) || ' seconds')::interval,
              CASE WHEN g %% 10 = 0
                   THEN %(end)s::timestamptz - ((abs(hashint4(g * 3)::bigint) %% (10 * 86400)) || ' seconds')::interval
              END,
              now()
       FROM generate_series(1, %(subs)s) g""",
    # server-side events over the 30 days
    """INSERT INTO events (event_id, user_id, occurred_at, event_name, properties)
       SELECT md5('appev' || g)::uuid, 1 + abs(hashint4(g * 17)::bigint) %% %(users)s,
              %(end)s::timestamptz - ((abs(hashint4(g)::bigint) %% (30 * 86400)) || ' seconds')::interval,
              (ARRAY['order_placed','settings_changed','signup_completed','page_view'])[1 + g %% 4],
              jsonb_build_object('path', (ARRAY['/checkout','/settings','/signup','/home'])[1 + g %% 4])
       FROM generate_series(1, %(events)s) g""",
]


def load_app(res: dict, env: dict[str, str], end: date, users: int, app_events: int) -> dict[str, Any]:
    """App schema and rows in Postgres, then the CDC replica (its snapshot carries them over)."""
    cdc = CdcResource(replication_password=env["CDC_REPLICATION_PASSWORD"])
    resources = {"clickhouse": res["clickhouse"], "postgres": res["postgres"], "kafka": res["kafka"], "cdc": cdc}
    started = time.monotonic()
    ok = materialize(
        [kafka_topics, clickhouse_schema, app_schema], resources=resources, instance=DagsterInstance.ephemeral()
    )
    assert ok.success
    params = {
        "end": datetime(end.year, end.month, end.day, tzinfo=UTC).isoformat(),
        "users": users,
        "orders": max(1000, users // 2),
        "subs": max(200, users // 5),
        "events": app_events,
    }
    with res["postgres"].connect(autocommit=True) as pg:
        for sql in APP_SQL:
            pg.execute(sql, params)
        counts = {
            t: pg.execute(f"SELECT count(*) FROM {t}").fetchone()[0]
            for t in ("users", "orders", "subscriptions", "events")
        }
    ok = materialize(
        [source_replication, build_replica_asset(configured_tables())],
        resources=resources,
        instance=DagsterInstance.ephemeral(),
    )
    assert ok.success
    deadline = time.monotonic() + 300
    with res["clickhouse"].client() as ch:
        for table, expected in counts.items():
            while replica.live_count(ch, cdc.replica_database, table) < expected:
                assert time.monotonic() < deadline, f"replica of {table} did not catch up"
                time.sleep(0.5)
    wait_caught_up(res["postgres"], res["clickhouse"], cdc.replica_database, max(1.0, deadline - time.monotonic()))
    return {"rows": counts, "seconds": round(time.monotonic() - started, 2)}


def load_raw(res: dict, env: dict[str, str], d: date, args: argparse.Namespace) -> dict[str, Any]:
    key = env["USER_HASH_KEY"]
    assert re.fullmatch(r"[A-Za-z0-9_\-]*", key), "USER_HASH_KEY is pasted into SQL"
    out: dict[str, Any] = {"days": []}
    totals = {"agent_events": 0.0, "spans": 0.0, "product_events": 0.0}
    started = time.monotonic()
    with res["clickhouse"].client() as ch:
        for back in range(args.history_days, -1, -1):
            day = d - timedelta(days=back)
            n = args.events_per_day if back == 0 else args.history_events_per_day
            base = (day.toordinal() % 100_000) * DAY_BASE
            sizes = {"agent_events": n, "spans": int(n * SPAN_RATIO), "product_events": int(n * PRODUCT_RATIO)}
            stmts = {
                "agent_events": agent_events_sql(day, sizes["agent_events"], base, args.users, key),
                "spans": spans_sql(day, sizes["spans"], base),
                "product_events": product_events_sql(day, sizes["product_events"], base, args.users, key),
            }
            for table, sql in stmts.items():
                t0 = time.monotonic()
                ch.command(sql)
                totals[table] += time.monotonic() - t0
            if back == 0 or back == args.history_days:
                out["days"].append({"day": day.isoformat(), **sizes})
        counts = {}
        for table, col in (("agent_events", "occurred_at"), ("spans", "start_time"), ("product_events", "occurred_at")):
            rows = ch.query(
                f"SELECT toDate({col}) = {{d:Date}} AS is_d, count(), countDistinct(toDate({col})) "
                f"FROM raw.{table} GROUP BY is_d",
                parameters={"d": d},
            ).result_rows
            by = {bool(r[0]): (int(r[1]), int(r[2])) for r in rows}
            counts[table] = {
                "day_d_rows": by.get(True, (0, 0))[0],
                "history_rows": by.get(False, (0, 0))[0],
                "history_days": by.get(False, (0, 0))[1],
            }
    out["rows"] = counts
    out["duplicate_copies"] = "1 row in 100 repeats the row before it (same ids)"
    out["seconds"] = round(time.monotonic() - started, 2)
    out["seconds_by_table"] = {k: round(v, 2) for k, v in totals.items()}
    return out


# -- dbt ----------------------------------------------------------------------------------------
class Dbt:
    def __init__(self, env: dict[str, str], work: Path) -> None:
        self.exe = str(Path(sys.executable).with_name("dbt"))
        self.work = work
        self.env = {
            **os.environ,
            **env,
            "DBT_LOG_PATH": str(work / "logs"),
            "DBT_TARGET_PATH": str(work / "target"),
            "DBT_SEND_ANONYMOUS_USAGE_STATS": "false",
            "DBT_USE_COLORS": "false",
        }

    def __call__(self, *args: str, vars: dict[str, str] | None = None) -> dict[str, Any]:
        cmd = [self.exe, *args, "--project-dir", str(dbt_dir()), "--profiles-dir", str(dbt_dir())]
        if vars:
            cmd += ["--vars", json.dumps(vars)]
        load_before = os.getloadavg()[0]
        t0 = time.monotonic()
        proc = subprocess.run(cmd, env=self.env, capture_output=True, text=True, timeout=3600)
        seconds = time.monotonic() - t0
        results_path = self.work / "target" / "run_results.json"
        results = json.loads(results_path.read_text()) if results_path.exists() else {}
        nodes = []
        for r in results.get("results", []):
            nodes.append(
                {
                    "node": r["unique_id"],
                    "status": r["status"],
                    "seconds": round(r.get("execution_time") or 0.0, 3),
                    "message": (r.get("message") or "")[:300] if r["status"] not in ("success", "pass") else None,
                }
            )
        failed = [n for n in nodes if n["status"] not in ("success", "pass")]
        return {
            "command": " ".join(["dbt", *args] + (["--vars", json.dumps(vars)] if vars else [])),
            "returncode": proc.returncode,
            "seconds": round(seconds, 2),
            "dbt_elapsed_s": round(results.get("elapsed_time") or 0.0, 2),
            "invocation_id": results.get("metadata", {}).get("invocation_id"),
            "load_1m_before": round(load_before, 2),
            "load_1m_after": round(os.getloadavg()[0], 2),
            "nodes": nodes,
            "failed": failed,
            "log_tail": proc.stdout[-3000:] if proc.returncode else None,
        }


def with_costs(ch: Any, step: dict[str, Any]) -> dict[str, Any]:
    """Per model: dbt's execution seconds beside ClickHouse's cost (query_log) of its statements."""
    costs = model_costs(ch, step["invocation_id"]) if step.get("invocation_id") else {}
    models = {}
    for n in step["nodes"]:
        if not n["node"].startswith("model."):
            continue
        c = costs.get(n["node"], {})
        models[n["node"].split(".")[-1]] = {
            "seconds": n["seconds"],
            "status": n["status"],
            "ch_queries": c.get("queries"),
            "ch_read_rows": c.get("read_rows"),
            "ch_written_rows": c.get("written_rows"),
            "ch_duration_ms": c.get("duration_ms"),
            "ch_peak_memory_mb": round(c["peak_memory_bytes"] / 2**20) if c.get("peak_memory_bytes") else None,
        }
    step["models"] = dict(sorted(models.items(), key=lambda kv: -kv[1]["seconds"]))
    tests = [n for n in step["nodes"] if n["node"].startswith("test.")]
    if tests:
        step["tests"] = {
            "count": len(tests),
            "seconds_sum": round(sum(t["seconds"] for t in tests), 2),
            "slowest": sorted(
                ({"node": t["node"], "seconds": t["seconds"]} for t in tests), key=lambda t: -t["seconds"]
            )[:5],
        }
    del step["nodes"]
    return step


def mart_rows(ch: Any) -> dict[str, int]:
    rows = ch.query(
        "SELECT database || '.' || name, total_rows FROM system.tables "
        "WHERE database IN ('staging', 'marts') AND engine LIKE '%MergeTree' AND NOT endsWith(name, '__window') "
        "ORDER BY 1"
    ).result_rows
    return {name: int(n or 0) for name, n in rows}


# -- queries ----------------------------------------------------------------------------------
def parse_queries(path: Path) -> dict[str, str]:
    queries: dict[str, str] = {}
    name = None
    lines: list[str] = []
    for line in path.read_text().splitlines():
        m = re.match(r"--\s*name:\s*(\S+)\s*$", line)
        if m:
            if name:
                queries[name] = "\n".join(lines).strip().rstrip(";")
            name, lines = m.group(1), []
        elif name:
            lines.append(line)
    if name:
        queries[name] = "\n".join(lines).strip().rstrip(";")
    return queries


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, math.ceil(q * len(ordered)) - 1)]


def time_query(ch: Any, sql: str, params: dict[str, Any], runs: int, warmups: int = 3) -> dict[str, Any]:
    for _ in range(warmups):
        result = ch.query(sql, parameters=params)
    times = []
    for _ in range(runs):
        t0 = time.perf_counter()
        result = ch.query(sql, parameters=params)
        times.append((time.perf_counter() - t0) * 1000)
    return {
        "runs": runs,
        "rows": len(result.result_rows),
        "p50_ms": round(pct(times, 0.5), 2),
        "p95_ms": round(pct(times, 0.95), 2),
        "max_ms": round(max(times), 2),
        "_result": result.result_rows,
    }


def same_rows(a: list, b: list) -> bool:
    def norm(rows: list) -> list:
        out = []
        for row in rows:
            out.append(tuple(round(v, 6) if isinstance(v, float) else v for v in row))
        return out

    if len(a) != len(b):
        return False
    for ra, rb in zip(norm(a), norm(b), strict=True):
        for va, vb in zip(ra, rb, strict=True):
            if isinstance(va, float) and isinstance(vb, float):
                if not math.isclose(va, vb, rel_tol=1e-6, abs_tol=1e-6):
                    return False
            elif va != vb:
                return False
    return True


def run_queries(ch: Any, d: date, args: argparse.Namespace) -> tuple[dict, dict]:
    queries = parse_queries(QUERIES_FILE)
    panels = {k: v for k, v in queries.items() if not k.startswith("raw__")}
    baselines = {k.removeprefix("raw__"): v for k, v in queries.items() if k.startswith("raw__")}
    scopes = {"all": "", ONE_WORKSPACE: ONE_WORKSPACE}
    out: dict[str, Any] = {}
    base_out: dict[str, Any] = {}
    for name, sql in panels.items():
        out[name] = {}
        for scope, ws in scopes.items():
            params = {"from_day": d - timedelta(days=29), "to_day": d + timedelta(days=1), "workspace": ws}
            fig = time_query(ch, sql, params, args.query_runs)
            mart_result = fig.pop("_result")
            fig["p95_under_target"] = fig["p95_ms"] < QUERY_TARGET_MS
            out[name][scope] = fig
            if name in baselines:
                raw = time_query(ch, baselines[name], params, args.baseline_runs, warmups=1)
                raw_result = raw.pop("_result")
                base_out.setdefault(name, {})[scope] = {
                    "raw": raw,
                    "mart_p95_ms": fig["p95_ms"],
                    "ratio_p95_raw_to_mart": round(raw["p95_ms"] / fig["p95_ms"], 1),
                    "same_rows": same_rows(mart_result, raw_result),
                }
    return out, base_out


def run_panels(ch: Any, d: date, args: argparse.Namespace) -> dict[str, Any]:
    """Every variable and panel of the generated dashboards, its SQL expanded as Grafana sends it (range
    [D-29, D+1), workspace All and one workspace), timed like the named queries."""
    time_range = TimeRange(
        datetime(d.year, d.month, d.day, tzinfo=UTC) - timedelta(days=29),
        datetime(d.year, d.month, d.day, tzinfo=UTC) + timedelta(days=1),
    )
    out: dict[str, Any] = {}
    for spec in DASHBOARDS:
        for scope, ws in {"all": ALL_VALUE, ONE_WORKSPACE: ONE_WORKSPACE}.items():
            exp = Expansion(time_range, {v.name: ws for v in spec.variables})
            queries = [(f"${v.name}", v.sql, "") for v in spec.variables]
            queries += [(p.key, p.sql, p.source) for p in spec.panels]
            for key, sql, table in queries:
                try:
                    fig = time_query(ch, expand(sql, exp), {}, args.query_runs)
                    fig.pop("_result")
                    fig["p95_under_target"] = fig["p95_ms"] < QUERY_TARGET_MS
                except Exception as exc:  # noqa: BLE001 - recorded; the other panels still run
                    fig = {"error": str(exc).splitlines()[0][:300], "p95_under_target": False}
                out.setdefault(f"{spec.uid}/{key}", {"source": table})[scope] = fig
    return out


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--events-per-day", type=int, default=10_000_000, help="agent events on day D")
    parser.add_argument("--history-events-per-day", type=int, default=300_000, help="agent events on D-29..D-1")
    parser.add_argument("--history-days", type=int, default=29)
    parser.add_argument("--users", type=int, default=100_000, help="app users (the pool events' actors come from)")
    parser.add_argument("--app-events", type=int, default=300_000, help="server-side events in Postgres")
    parser.add_argument("--query-runs", type=int, default=50)
    parser.add_argument("--baseline-runs", type=int, default=10)
    parser.add_argument("--skip-dbt-build", action="store_true", help="skip the `dbt build` (tests) step")
    parser.add_argument(
        "--skip-window-run", action="store_true", help="skip the 30-day window run (the full refresh built the days)"
    )
    parser.add_argument(
        "--queries-only", action="store_true", help="after the first dbt run, only the query and panel timings"
    )
    parser.add_argument("--out", type=Path)
    args = parser.parse_args()

    d = datetime.now(UTC).date() - timedelta(days=3)
    partition = {"min_date": d.isoformat(), "max_date": (d + timedelta(days=1)).isoformat()}
    result: dict[str, Any] = {
        "benchmark": "transform",
        "machine": {
            "nproc": os.cpu_count(),
            "python": platform.python_version(),
            "mem_total_gb": round(os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30, 1),
            "loadavg_before": [round(x, 2) for x in os.getloadavg()],
        },
        "day_d": d.isoformat(),
        "parameters": vars(args) | {"out": str(args.out) if args.out else None},
    }
    started = time.monotonic()
    work = Path(tempfile.mkdtemp(prefix="bench-transform-dbt-"))
    try:
        with scratch_stack("platform-bench-transform-") as stack:
            stack.up()
            env = stack.env()
            res = resources_from_env(env)
            result["app"] = load_app(res, env, d + timedelta(days=1), args.users, args.app_events)
            result["raw"] = load_raw(res, env, d, args)
            print(f"loaded raw in {result['raw']['seconds']} s", file=sys.stderr)
            dbt = Dbt(env, work)
            steps: dict[str, Any] = {}
            with res["clickhouse"].client() as ch:
                seed = dbt("seed")
                steps["seed"] = {"seconds": seed["seconds"], "returncode": seed["returncode"]}
                steps["first_run"] = with_costs(ch, dbt("run"))
                print(f"first run {steps['first_run']['seconds']} s", file=sys.stderr)
                if args.queries_only:
                    result["table_rows"] = mart_rows(ch)
                    result["queries"] = {"figures": run_queries(ch, d, args)[0]}
                    result["panels"] = run_panels(ch, d, args)
                    result["dbt"] = {"steps": steps}
                    return finish(result, started, args)
                steps["partition_run"] = with_costs(ch, dbt("run", vars=partition))
                print(f"partition run {steps['partition_run']['seconds']} s", file=sys.stderr)
                if not args.skip_dbt_build:
                    steps["partition_build"] = with_costs(ch, dbt("build", vars=partition))
                    print(f"partition build {steps['partition_build']['seconds']} s", file=sys.stderr)
                steps["full_refresh_run"] = with_costs(ch, dbt("run", "--full-refresh"))
                print(f"full refresh {steps['full_refresh_run']['seconds']} s", file=sys.stderr)
                # The marts hold the 30 days the queries read; this window rebuilds exactly them.
                if not args.skip_window_run:
                    window30 = {"min_date": (d - timedelta(days=29)).isoformat(), "max_date": partition["max_date"]}
                    steps["window_30_days_run"] = with_costs(ch, dbt("run", vars=window30))
                    print(f"30-day window run {steps['window_30_days_run']['seconds']} s", file=sys.stderr)
                inc, full = steps["partition_run"]["seconds"], steps["full_refresh_run"]["seconds"]
                result["dbt"] = {
                    "partition_vars": partition,
                    "ratio_full_refresh_to_partition_run": round(full / inc, 2) if inc else None,
                    "note": "seconds = wall clock of the dbt CLI (includes ~parse/connect overhead); "
                    "per-model seconds from run_results.json; ch_* from system.query_log",
                    "steps": steps,
                }
                result["table_rows"] = mart_rows(ch)
                queries, baseline = run_queries(ch, d, args)
                panels = run_panels(ch, d, args)
            result["queries"] = {
                "range": [(d - timedelta(days=29)).isoformat(), (d + timedelta(days=1)).isoformat()],
                "method": f"clickhouse-connect over HTTP, 3 warm-ups then {args.query_runs} runs each; "
                "scopes: all workspaces and one ({ONE_WORKSPACE})",
                "figures": queries,
            }
            result["panels"] = {
                "method": "every panel of the generated dashboards, macros and the workspace variable expanded "
                "as Grafana sends them (platform_assets.publish.macros), same range and runs as the queries",
                "figures": panels,
            }
            result["baseline"] = {
                "method": f"raw__<name> blocks of dashboard_queries.sql, 1 warm-up then {args.baseline_runs} runs",
                "figures": baseline,
            }
            result["targets"] = {
                "query_p95_under_50_ms": {
                    f"{name}/{scope}": "met" if fig["p95_under_target"] else "not met"
                    for name, scopes in queries.items()
                    for scope, fig in scopes.items()
                },
                "panel_p95_under_50_ms": {
                    f"{name}/{scope}": "met" if fig["p95_under_target"] else "not met"
                    for name, scopes in panels.items()
                    for scope, fig in scopes.items()
                    if scope != "source"
                },
                "dbt_steps_ok": {k: v.get("returncode") == 0 for k, v in steps.items()},
            }
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return finish(result, started, args)


def finish(result: dict[str, Any], started: float, args: argparse.Namespace) -> int:
    result["machine"]["loadavg_after"] = [round(x, 2) for x in os.getloadavg()]
    result["total_seconds"] = round(time.monotonic() - started, 1)
    text = json.dumps(result, indent=2, default=str)
    print(text)
    if args.out:
        args.out.write_text(text + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
