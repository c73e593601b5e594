"""Benchmark: the streaming minute rollups (clickhouse_ddl/010_rollups.sql) against the mart path
they replace for the recent window. Prints one JSON document.

    .venv/bin/python benchmarks/bench_rollups.py [--parts freshness,refresh,panels,error]
        [--rate 20000] [--seconds 60] [--collector-workers 2] [--client-processes 2]
        [--refresh-sizes 1000000,10000000,50000000] [--load-chunk 2000000] [--calls-per-day 10000000]
        [--panel-runs 25] [--error-calls-per-day 10000000] [--out FILE]

Every part starts its own fresh embedded stack (``scratch_stack``), as the other benchmarks do;
``--parts`` runs a subset. Generated rows come from ``INSERT ... SELECT FROM numbers()`` (every
column a hash of the row number), the raw-table shapes of bench_transform.py.

1. ``freshness`` (Kafka, ClickHouse, ``platform-collector --workers N`` as its own process): LLM
   call spans (512 per OTLP/HTTP protobuf request, 3 models, 5 workspaces, start time = send
   time) sent by ``--client-processes`` separate processes paced to ``--rate`` spans/s for
   ``--seconds``; every 100 ms one marker span with its own model ``marker-<n>``. A poller runs
   the rollup half of the p95-latency panel (the ``latency_p95`` panel's SQL, its UNION ALL part
   that reads rollups.llm_calls_1m, macros expanded for the last 5 minutes, workspace All) back
   to back until every marker is in its answer. send-to-visible = the end of the first poll that
   answered the marker minus the time before its POST: p50/p95/max, and the achieved rate.
   Baseline, same data, same run: the mart path. ``dbt build --select +mart_agent_metrics_1m``
   for today's partition (B seconds, the CLI's wall clock) after the 5-minute schedule's wait: a
   span sent at a uniformly random moment waits U(0, 300 s) for the next tick, then B, so
   p50 = 150 + B, p95 = 285 + B, max = 300 + B (a build longer than 300 s would also skip ticks:
   not modelled). Ratios mart / rollup per figure.
2. ``refresh`` (Kafka and ClickHouse, as part 3: the schema's Kafka tables need the topics): per
   size N in ``--refresh-sizes`` (LLM call spans in the day), a full day of today in raw.spans
   (bench_transform's traces of 5 spans, 3 of them chat calls: 5N/3 spans) and in
   raw.agent_events (runs of 10 events, 6 of them llm_call: 10N/6 events), with N/10 log records
   and 28,800 histogram points (20 series, one a minute), in INSERTs of at most ``--load-chunk``
   rows (bounds the server's memory at large sizes). Then the 5-minute job's old selection and
   the new one (transform.jobs.INTRADAY_MODELS), each as the job runs it:
   ``dbt build --select <selection> --vars {min_date: today, max_date: tomorrow}``; seconds (the
   CLI's wall clock, and ClickHouse's summed query time) and read_bytes / read_rows summed from
   system.query_log over the invocation (transform.cost.model_costs). Ratios old / new per size,
   and largest / smallest size per selection. A size whose load or build fails is reported as
   such and the larger ones are skipped.
3. ``panels``: 30 days at ``--calls-per-day``. The recent window (yesterday and
   today) in rollups.llm_calls_1m: the states built by quantilesDDState from 2 x calls-per-day
   generated latencies (the rollup grain: minute, 20 workspaces, 3 service/agent pairs,
   3 models); 30 days of mart_agent_metrics_1m and mart_agent_metrics_1h rows at mart grain
   (what that rate gives: every grain key every minute). Each panel picked by key from the
   dashboards at run time, through its own SQL (macros expanded, workspace All and ws_1, ranges
   the last 30 days and the last 6 hours), 3 warm-ups then ``--panel-runs`` timed runs: p50/p95/max
   ms; also each UNION ALL half alone; the bytes per row of the rollup's latency_ms states.
   Baseline: the same panels before the rollups (their mart-only SQL, kept below as
   OLD_PANEL_SQL, text as it was in panels_agents.py), same data, same runs; ratio old / new p95.
4. ``error`` (ClickHouse): ``--error-calls-per-day`` latencies of one day (the panels' latency
   distribution), states per rollup row (minute, workspace, service/agent, model) for quantilesDD
   (relative accuracy 0.005), quantilesTDigest and quantilesBFloat16, merged per minute, hour and
   day; against quantilesExactInclusive over the same values per bucket (interpolated, as the marts
   compute percentiles) and against the value at rank q(n-1) itself (``vs_rank_*``, what a sketch's
   bound is stated against): max and p99 of the relative error |approx - exact| / exact at p50,
   p95, p99 per level and function; and the state bytes per rollup row (system.parts_columns,
   column_data_compressed_bytes / rows, after OPTIMIZE FINAL).
"""

from __future__ import annotations

import argparse
import math
import multiprocessing
import os
import platform
import random
import re
import shutil
import sys
import tempfile
import threading
import time
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import requests
from dagster import DagsterInstance, materialize
from opentelemetry.proto.common.v1.common_pb2 import AnyValue, KeyValue

from platform_assets.core.resources import resources_from_env
from platform_assets.ingest.assets import kafka_topics
from platform_assets.ingest.collector import otlp
from platform_assets.ops.assets import clickhouse_schema
from platform_assets.publish.dashboards import ALL_VALUE, DASHBOARDS
from platform_assets.publish.macros import Expansion, TimeRange, expand
from platform_assets.publish.panels import IN_WORKSPACE
from platform_assets.stack.scratch import scratch_stack
from platform_assets.transform.cost import model_costs
from platform_assets.transform.jobs import INTRADAY_MODELS

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_otlp import start_collector  # sibling scripts
from bench_transform import Dbt, agent_events_sql, finish, pct, spans_sql

OLD_INTRADAY_MODELS = (
    "+mart_agent_metrics_1m +mart_agent_metrics_1h +mart_tool_reliability_hourly +mart_route_latency_1m "
    "+mart_llm_latency_1m +mart_token_usage_1m +mart_log_volume_1m +fct_error_logs"
)
SCHEDULE_S = 300  # the 5-minute job's interval
ROLLUP_TABLE = "rollups.llm_calls_1m"
HOUR_ROLLUP_TABLE = "rollups.llm_calls_1h"
MARTS = ("marts.mart_agent_metrics_1m", "marts.mart_agent_metrics_1h")
AGENT_DASHBOARD = "platform-agent-telemetry"
FRESHNESS_PANEL = "latency_p95"
MARKER_EVERY_S = 0.1
ONE_WORKSPACE = "ws_1"

# The latency of one LLM call (ms) from two hash values: 97% lognormal around 400 ms, 3% a slow
# tail around 8 s (retries, long generations). Shared by the panels and error parts.
_NORMAL = (
    "(sqrt(-2 * log((({h} % 1000000) + 1) / 1000001)) * cos(2 * pi() * (intDiv({h}, 1000000) % 1000000) / 1000000))"
)
LATENCY = "round(if(({t} % 100) < 97, exp(6 + 0.6 * {z}), exp(9 + 0.3 * {z})), 3)"
# Grain keys: workspace ws_1..ws_20 (skewed, ws_1 busiest), service/agent pair, model.
_WS = "concat('ws_', toString(1 + toUInt32(floor(20 * pow(({h} % 10000) / 10000, 2)))))"
AGENTS = "['support_bot', 'sql_analyst', 'research_agent']"
SERVICES = "['agent-runtime', 'agent-runtime', 'research-worker']"
MODELS = "['gpt-4o-mini', 'gpt-4o', 'claude-3-5-haiku']"


def latency_expr(seed: str) -> str:
    return LATENCY.format(t=f"cityHash64({seed}, 7)", z=_NORMAL.format(h=f"cityHash64({seed}, 5)"))


def machine() -> dict[str, Any]:
    return {
        "nproc": os.cpu_count(),
        "python": platform.python_version(),
        "mem_total_gb": round(os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30, 1),
    }


def load1() -> float:
    return round(os.getloadavg()[0], 2)


def midnight(d: date) -> datetime:
    return datetime(d.year, d.month, d.day, tzinfo=UTC)


def prepare(stack: Any) -> tuple[dict[str, str], dict[str, Any]]:
    """Kafka and ClickHouse up, the topics and the schema applied (the schema's Kafka engine tables
    need the topics)."""
    stack.up(["kafka", "clickhouse"])
    env = stack.env()
    res = resources_from_env(env)
    assets = [kafka_topics, clickhouse_schema]
    assert materialize(assets, resources=res, instance=DagsterInstance.ephemeral()).success
    return env, res


# ------------------------------------------------------------------ panel SQL and its halves


def agent_panels() -> dict[str, Any]:
    spec = next(d for d in DASHBOARDS if d.uid == AGENT_DASHBOARD)
    return {p.key: p for p in spec.panels} | {f"${v.name}": v for v in spec.variables}


def union_parts(sql: str) -> list[str]:
    """The parts of the outermost UNION ALL of ``sql`` (the SELECTs a panel's halves are), or
    ``[sql]`` without one. Parentheses and quoted strings are skipped over."""
    depth, i, at = 0, 0, []  # at: (depth, position) of every UNION ALL
    opens: list[int] = []
    spans: dict[int, tuple[int, int]] = {}
    while i < len(sql):
        c = sql[i]
        if c == "'":
            i += 1
            while i < len(sql) and sql[i] != "'":
                i += 2 if sql[i] == "\\" else 1
        elif c == "(":
            depth += 1
            opens.append(i)
        elif c == ")":
            start = opens.pop()
            spans[start] = (start, i)
            depth -= 1
        elif re.match(r"UNION\s+ALL\b", sql[i : i + 20], re.IGNORECASE) and (i == 0 or not sql[i - 1].isalnum()):
            at.append((depth, i, list(opens)))
        i += 1
    if not at:
        return [sql]
    top = min(d for d, _, _ in at)
    first = next(a for a in at if a[0] == top)
    if top == 0:
        lo, hi = 0, len(sql)
    else:
        lo, hi = spans[first[2][-1]]
        lo += 1
    cuts = [pos for d, pos, op in at if d == top and (top == 0 or op[-1] == first[2][-1])]
    parts, prev = [], lo
    for pos in cuts:
        parts.append(sql[prev:pos].strip())
        prev = pos + len(re.match(r"UNION\s+ALL", sql[pos:], re.IGNORECASE)[0])  # type: ignore[index]
    parts.append(sql[prev:hi].strip())
    return parts


def rollup_half(sql: str) -> str:
    halves = [p for p in union_parts(sql) if ROLLUP_TABLE in p]
    if not halves:
        raise RuntimeError(f"the {FRESHNESS_PANEL} panel's SQL has no part reading {ROLLUP_TABLE}: nothing to time")
    return halves[0]


# The agent panels before the rollups (mart-only), the text of panels_agents.py at c8f8d9e:
# the minute mart for ranges up to two days, the hour mart beyond, in one UNION ALL.
_OLD_SHORT = "dateDiff('second', $__fromTime, $__toTime) <= 172800"


def _old_two_resolutions(select: str, group: str) -> str:
    halves = [
        f"""SELECT $__timeInterval({col}) AS time, {select}
FROM marts.{table}
WHERE {cond} AND $__timeFilter({col}) AND {IN_WORKSPACE}
GROUP BY time, {group}"""
        for col, table, cond in (
            ("minute", "mart_agent_metrics_1m", _OLD_SHORT),
            ("hour", "mart_agent_metrics_1h", f"NOT {_OLD_SHORT}"),
        )
    ]
    return f"SELECT * FROM (\n{halves[0]}\nUNION ALL\n{halves[1]}\n)\nORDER BY time"


OLD_PANEL_SQL = {
    **{
        f"latency_{q}": _old_two_resolutions(f"model, sum({q}_latency_ms * calls) / sum(calls) AS {q}_ms", "model")
        for q in ("p50", "p95", "p99")
    },
    "tokens_by_model": _old_two_resolutions("model, sum(input_tokens + output_tokens) AS tokens", "model"),
    "throughput": _old_two_resolutions("service, sum(calls) AS calls", "service"),
    "$workspace": "SELECT DISTINCT workspace_id FROM marts.mart_agent_metrics_1h "
    "WHERE hour >= toStartOfHour($__fromTime) AND hour <= $__toTime ORDER BY workspace_id",
}


# ------------------------------------------------------------------ 1. freshness


def _kv(key: str, value: str | int) -> KeyValue:
    if isinstance(value, int):
        return KeyValue(key=key, value=AnyValue(int_value=value))
    return KeyValue(key=key, value=AnyValue(string_value=value))


def llm_request(n: int, rnd: random.Random, workspace: str, model: str | None = None) -> bytes:
    """n LLM call spans of one workspace starting now; ``model`` fixed (a marker) or one of three."""
    req = otlp.SIGNALS["traces"].request_type()
    rs = req.resource_spans.add()
    rs.resource.attributes.extend(
        [_kv("service.name", "agent-runtime"), _kv("tenant.id", workspace), _kv("deployment.environment.name", "bench")]
    )
    ss = rs.scope_spans.add()
    ss.scope.name = "bench_rollups"
    now = time.time_ns()
    models = ("gpt-4o-mini", "gpt-4o", "claude-3-5-haiku")
    for i in range(n):
        dur = int(math.exp(6 + 0.6 * rnd.gauss()) * 1e6)
        span = ss.spans.add(
            trace_id=rnd.randbytes(16), span_id=rnd.randbytes(8), parent_span_id=rnd.randbytes(8),
            name="chat", kind=3, start_time_unix_nano=now - dur, end_time_unix_nano=now,
        )  # fmt: skip
        span.attributes.extend(
            [
                _kv("gen_ai.operation.name", "chat"), _kv("gen_ai.request.model", model or models[i % 3]),
                _kv("gen_ai.provider.name", "openai"), _kv("gen_ai.usage.input_tokens", 100 + rnd.randrange(3900)),
                _kv("gen_ai.usage.output_tokens", 20 + rnd.randrange(780)), _kv("gen_ai.agent.name", "support_bot"),
            ]
        )  # fmt: skip
    return req.SerializeToString()


def load_client(port: int, rate: float, items: int, threads: int, start_at: float, seconds: float, results) -> None:
    """One client process: ``threads`` keep-alive connections, each sending ``items``-span requests
    paced to its share of ``rate``; bodies rebuilt every 5 s so start times stay current."""
    import http.client

    path = otlp.SIGNALS["traces"].path
    sent, failed = [0] * threads, [0] * threads
    first, last = [float("inf")] * threads, [0.0] * threads

    def run(t: int) -> None:
        rnd = random.Random(t * 7919 + os.getpid())
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
        pool = [llm_request(items, rnd, f"ws_{1 + (t + j) % 5}") for j in range(2)]
        built = time.monotonic()
        interval = items * threads / rate
        while time.time() < start_at:
            time.sleep(0.001)
        k = 0
        while True:
            due = start_at + k * interval
            if due >= start_at + seconds:
                break
            now = time.time()
            if now < due:
                time.sleep(due - now)
            if time.monotonic() - built > 5:
                pool = [llm_request(items, rnd, f"ws_{1 + (t + j) % 5}") for j in range(2)]
                built = time.monotonic()
            first[t] = min(first[t], time.time())
            try:
                conn.request("POST", path, body=pool[k % 2], headers={"Content-Type": "application/x-protobuf"})
                resp = conn.getresponse()
                resp.read()
                if resp.status == 200:
                    sent[t] += items
                else:
                    failed[t] += 1
            except (OSError, http.client.HTTPException):
                failed[t] += 1
                conn.close()
                conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
            last[t] = time.time()
            k += 1

    pool_threads = [threading.Thread(target=run, args=(t,)) for t in range(threads)]
    for th in pool_threads:
        th.start()
    for th in pool_threads:
        th.join()
    results.put({"spans": sum(sent), "failed_requests": sum(failed), "first": min(first), "last": max(last)})


def summary(values: list[float]) -> dict[str, float | None]:
    if not values:
        return {"p50_s": None, "p95_s": None, "max_s": None}
    return {
        "p50_s": round(pct(values, 0.5), 3),
        "p95_s": round(pct(values, 0.95), 3),
        "max_s": round(max(values), 3),
    }


def freshness(args: argparse.Namespace) -> dict[str, Any]:
    panel = agent_panels()[FRESHNESS_PANEL]
    half = rollup_half(panel.sql)
    out: dict[str, Any] = {"panel": FRESHNESS_PANEL, "rollup_half_sql": half}
    with scratch_stack("platform-bench-rollups-fresh-") as stack:
        env, res = prepare(stack)
        os.environ.update(env)
        time.sleep(8)  # the new Kafka consumers join their groups
        proc, port, _ = start_collector(env, args.collector_workers)
        url = f"http://127.0.0.1:{port}{otlp.SIGNALS['traces'].path}"
        sent_at: dict[str, float] = {}
        sent_wall: dict[str, float] = {}
        seen_at: dict[str, float] = {}
        polls: list[float] = []
        stop_markers, stop_poll = threading.Event(), threading.Event()
        errors: list[str] = []

        def markers() -> None:
            rnd = random.Random(1)
            session = requests.Session()
            n = 0
            next_at = time.monotonic()
            while not stop_markers.is_set():
                name = f"marker-{n:05d}"
                body = llm_request(1, rnd, "ws_marker", model=name)
                sent_at[name], sent_wall[name] = time.monotonic(), time.time()
                answer = session.post(url, data=body, timeout=30, headers={"Content-Type": "application/x-protobuf"})
                if answer.status_code != 200:
                    errors.append(f"{name}: {answer.status_code}")
                    sent_at.pop(name)
                n += 1
                next_at += MARKER_EVERY_S
                time.sleep(max(0.0, next_at - time.monotonic()))

        def poller() -> None:
            with res["clickhouse"].client() as ch:
                while not stop_poll.is_set():
                    sql = expand(half, Expansion(_last_minutes(5), {"workspace": ALL_VALUE}))
                    t0 = time.monotonic()
                    rows = ch.query(sql).result_rows
                    t1 = time.monotonic()
                    polls.append(t1 - t0)
                    for row in rows:
                        for v in row:
                            if isinstance(v, str) and v.startswith("marker-") and v not in seen_at:
                                seen_at[v] = t1

        try:
            ctx = multiprocessing.get_context("spawn")
            results = ctx.Queue()
            start_at = time.time() + 4.0
            threads = 2
            clients = [
                ctx.Process(
                    target=load_client,
                    args=(
                        port,
                        args.rate / args.client_processes,
                        args.items,
                        threads,
                        start_at,
                        args.seconds,
                        results,
                    ),
                )
                for _ in range(args.client_processes)
            ]
            for c in clients:
                c.start()
            poll_thread = threading.Thread(target=poller)
            poll_thread.start()
            while time.time() < start_at:
                time.sleep(0.01)
            load_start = load1()
            wall0 = time.monotonic()
            marker_thread = threading.Thread(target=markers)
            marker_thread.start()
            parts = [results.get(timeout=args.seconds + 120) for _ in clients]
            wall = time.monotonic() - wall0
            load_end = load1()
            stop_markers.set()
            marker_thread.join()
            deadline = time.monotonic() + 60
            while time.monotonic() < deadline and set(sent_at) - set(seen_at):
                time.sleep(0.1)
            stop_poll.set()
            poll_thread.join()
            for c in clients:
                c.join(30)
        finally:
            proc.terminate()
            proc.wait(60)
        spans = sum(p["spans"] for p in parts)
        sending = max(p["last"] for p in parts) - min(p["first"] for p in parts)  # first send to last answer
        lat = [seen_at[m] - sent_at[m] for m in sent_at if m in seen_at]
        with res["clickhouse"].client() as ch:
            today = datetime.now(UTC).date()
            landed = ch.query(
                "SELECT count() FROM raw.spans WHERE toDate(start_time) >= {d:Date}",
                parameters={"d": today - timedelta(days=1)},
            ).result_rows[0][0]
            rollup_calls = ch.query(f"SELECT sum(calls) FROM {ROLLUP_TABLE}").result_rows[0][0]
            # When each marker's row was inserted into raw.spans (and so into the rollup, by its view).
            landed_at = dict(
                ch.query(
                    "SELECT attributes['gen_ai.request.model'], toFloat64(min(ingested_at)) FROM raw.spans "
                    "WHERE tenant = 'ws_marker' GROUP BY 1"
                ).result_rows
            )
            land = [landed_at[m] - sent_wall[m] for m in sent_wall if m in landed_at]
            # Markers by the 10-s window of the load they were sent in: does the delay grow?
            t_first = min(sent_at.values(), default=0.0)
            windows: dict[int, list[float]] = {}
            for m, t in sent_at.items():
                if m in seen_at:
                    windows.setdefault(int((t - t_first) // 10) * 10, []).append(seen_at[m] - t)
            out["load"] = {
                "target_spans_per_s": args.rate,
                "seconds": round(sending, 2),
                "wall_seconds_incl_client_start": round(wall, 2),
                "spans_accepted": spans,
                "achieved_spans_per_s": round(spans / sending),
                "failed_requests": sum(p["failed_requests"] for p in parts),
                "spans_in_raw": int(landed),
                "calls_in_rollup": int(rollup_calls or 0),
                "collector_workers": args.collector_workers,
                "client_processes": args.client_processes,
                "spans_per_request": args.items,
                "load_1m_start_end": [load_start, load_end],
            }
            out["rollup"] = {
                "markers_sent": len(sent_at),
                "markers_visible": len(lat),
                "insert_into_raw_after_send": summary(land),
                "visible_p50_s_by_10s_window": {f"{w}s": round(pct(v, 0.5), 2) for w, v in sorted(windows.items())},
                "marker_errors": errors[:5],
                **summary(lat),
                "poll_query_ms": {"p50": round(pct(polls, 0.5) * 1000, 1), "p95": round(pct(polls, 0.95) * 1000, 1)}
                if polls
                else None,
                "polls": len(polls),
            }
            dbt = Dbt(env, Path(tempfile.mkdtemp(prefix="bench-rollups-dbt-")))
            try:
                part = {"min_date": today.isoformat(), "max_date": (today + timedelta(days=1)).isoformat()}
                step = dbt("build", "--select", "+mart_agent_metrics_1m", vars=part)
                build_s = step["seconds"]
                costs = model_costs(ch, step["invocation_id"]) if step.get("invocation_id") else {}
            finally:
                shutil.rmtree(dbt.work, ignore_errors=True)
            base = {"p50_s": 150 + build_s, "p95_s": 285 + build_s, "max_s": SCHEDULE_S + build_s}
            out["baseline_mart_path"] = {
                "formula": "wait for the next 5-minute tick, U(0, 300 s), then the build B: "
                "p50 = 150 + B, p95 = 285 + B, max = 300 + B",
                "dbt_build_seconds": build_s,
                "dbt_returncode": step["returncode"],
                "dbt_failed": step["failed"][:3],
                "clickhouse_read_bytes": sum(c["read_bytes"] for c in costs.values()),
                **{k: round(v, 2) for k, v in base.items()},
            }
            out["ratio_mart_to_rollup"] = {
                k: round(base[k] / out["rollup"][k], 1) if out["rollup"].get(k) else None for k in base
            }
    return out


def _last_minutes(minutes: int) -> TimeRange:
    end = datetime.now(UTC)
    return TimeRange(end - timedelta(minutes=minutes), end)


# ------------------------------------------------------------------ 2. intraday refresh cost


def logs_sql(day: date, n: int, base: int) -> str:
    day_ms = int(midnight(day).timestamp() * 1000)
    return f"""
INSERT INTO raw.otel_logs (Timestamp, TraceId, SpanId, TraceFlags, SeverityText, SeverityNumber, ServiceName,
    Body, ResourceAttributes, ScopeName, LogAttributes, kafka_partition, kafka_offset)
SELECT
    fromUnixTimestamp64Milli(toInt64({day_ms} + h % 86400000), 'UTC') AS ts,
    lower(hex(MD5(toString(g)))) AS trace_id, substring(lower(hex(MD5(concat('s', toString(g))))), 1, 16),
    1, multiIf(h % 100 < 2, 'ERROR', h % 100 < 10, 'WARN', 'INFO'), multiIf(h % 100 < 2, 17, h % 100 < 10, 13, 9),
    {SERVICES}[1 + h % 3],
    concat('request ', toString(g), ' handled in ', toString(h % 900), ' ms'),
    map('service.name', {SERVICES}[1 + h % 3], 'tenant.id', {_WS.format(h="intDiv(h, 7)")}),
    'bench_rollups', map('http.route', '/api/chat', 'code.function', 'handle'),
    toUInt32(g % 3), g
FROM (SELECT toUInt64({base} + number) AS g, cityHash64(g, 11) AS h FROM numbers({n}))
"""


def histograms_sql(day: date, base: int) -> str:
    """20 delta series of http.server.request.duration, one point a minute over the day."""
    day_s = int(midnight(day).timestamp())
    return f"""
INSERT INTO raw.otel_metrics_histogram (ResourceAttributes, ScopeName, ServiceName, MetricName, MetricUnit,
    Attributes, StartTimeUnix, TimeUnix, Count, Sum, BucketCounts, ExplicitBounds, AggregationTemporality,
    kafka_partition, kafka_offset)
SELECT
    map('service.name', 'shop-api', 'service.instance.id', concat('shop-', toString(s % 4)),
        'tenant.id', concat('ws_', toString(1 + s % 5))),
    'bench_rollups', 'shop-api', 'http.server.request.duration', 's',
    map('http.route', concat('/api/r', toString(s)), 'http.request.method', 'POST',
        'http.response.status_code', '200'),
    toDateTime64({day_s} + m * 60, 9, 'UTC'), toDateTime64({day_s} + m * 60 + 60, 9, 'UTC'),
    arraySum(b) AS c, c * 0.2, b,
    [0.005, 0.01, 0.025, 0.05, 0.075, 0.1, 0.25, 0.5, 0.75, 1.0, 2.5, 5.0, 7.5, 10.0], 1,
    toUInt32(number % 3), {base} + number
FROM (SELECT number, number % 20 AS s, intDiv(number, 20) AS m,
             arrayMap(i -> cityHash64(number, i) % 50, range(15)) AS b
      FROM numbers(28800))
"""


def truncate_inputs(ch: Any) -> None:
    raw = ("raw.spans", "raw.agent_events", "raw.otel_logs", "raw.otel_metrics_histogram")
    rollups = ("spans_1m", "agent_events_1m", "logs_1m", "metric_points_1m")
    for table in (*raw, ROLLUP_TABLE, *(f"rollups.{t}" for t in rollups)):
        ch.command(f"TRUNCATE TABLE IF EXISTS {table}")


def timed_build(ch: Any, dbt: Dbt, selection: str, part: dict[str, str]) -> dict[str, Any]:
    step = dbt("build", "--select", selection, vars=part)
    costs = model_costs(ch, step["invocation_id"]) if step.get("invocation_id") else {}
    top = sorted(costs.items(), key=lambda kv: -kv[1]["read_bytes"])[:6]
    return {
        "seconds": step["seconds"],
        "returncode": step["returncode"],
        "failed": [f["node"] for f in step["failed"]][:5],
        "log_tail": step["log_tail"][-800:] if step.get("log_tail") else None,
        "nodes": len(step["nodes"]),
        "read_bytes": sum(c["read_bytes"] for c in costs.values()),
        "read_rows": sum(c["read_rows"] for c in costs.values()),
        "clickhouse_seconds": round(sum(c["duration_ms"] for c in costs.values()) / 1000, 2),
        "peak_memory_mb": round(max((c["peak_memory_bytes"] for c in costs.values()), default=0) / 2**20),
        "load_1m_before_after": [step["load_1m_before"], step["load_1m_after"]],
        "top_read_bytes": {k.split(".")[-1]: v["read_bytes"] for k, v in top},
    }


def refresh(args: argparse.Namespace) -> dict[str, Any]:
    sizes = [int(s) for s in args.refresh_sizes.split(",") if s]
    today = datetime.now(UTC).date()
    part = {"min_date": today.isoformat(), "max_date": (today + timedelta(days=1)).isoformat()}
    selections = {"old": OLD_INTRADAY_MODELS, "new": INTRADAY_MODELS}
    out: dict[str, Any] = {"day": today.isoformat(), "selections": selections, "sizes": {}}
    work = Path(tempfile.mkdtemp(prefix="bench-rollups-dbt-"))
    try:
        with scratch_stack("platform-bench-rollups-refresh-") as stack:
            env, res = prepare(stack)
            key = env["USER_HASH_KEY"]
            assert re.fullmatch(r"[A-Za-z0-9_\-]*", key), "USER_HASH_KEY is pasted into SQL"
            dbt = Dbt(env, work)
            with res["clickhouse"].client() as ch:
                first = dbt("build", "--select", OLD_INTRADAY_MODELS, vars=part)  # creates every table
                out["first_build"] = {"seconds": first["seconds"], "returncode": first["returncode"]}
                base = (today.toordinal() % 100_000) * 10_000_000_000
                for n in sizes:
                    fig: dict[str, Any] = {"llm_call_spans": n}
                    out["sizes"][str(n)] = fig
                    try:
                        truncate_inputs(ch)
                        t0 = time.monotonic()
                        rows = {"spans": math.ceil(n * 5 / 3), "agent_events": math.ceil(n * 10 / 6),
                                "otel_logs": n // 10, "otel_metrics_histogram": 28_800}  # fmt: skip
                        step = args.load_chunk  # rows per INSERT: bounds the server's memory at large sizes
                        for table, make in (
                            ("spans", lambda m, b: spans_sql(today, m, b)),
                            ("agent_events", lambda m, b: agent_events_sql(today, m, b, 100_000, key)),
                        ):
                            for lo in range(0, rows[table], step):
                                ch.command(make(min(step, rows[table] - lo), base + lo))
                        ch.command(logs_sql(today, rows["otel_logs"], base))
                        ch.command(histograms_sql(today, base))
                        fig["rows"] = rows
                        fig["load_seconds"] = round(time.monotonic() - t0, 1)
                        disk = ch.query(
                            "SELECT sum(bytes_on_disk) FROM system.parts WHERE active AND database = 'raw'"
                        ).result_rows[0][0]
                        fig["raw_bytes_on_disk"] = int(disk)
                        print(f"refresh {n}: loaded in {fig['load_seconds']} s", file=sys.stderr)
                        for name, sel in selections.items():
                            fig[name] = timed_build(ch, dbt, sel, part)
                            print(f"refresh {n} {name}: {fig[name]['seconds']} s", file=sys.stderr)
                        fig["ratio_old_to_new"] = {
                            k: round(fig["old"][k] / fig["new"][k], 1) if fig["new"][k] else None
                            for k in ("seconds", "read_bytes", "clickhouse_seconds")
                        }
                        if fig["old"]["returncode"] or fig["new"]["returncode"]:
                            fig["note"] = "a build failed: larger sizes skipped"
                            break
                    except Exception as exc:  # noqa: BLE001 - recorded; larger sizes would fail too
                        fig["error"] = str(exc).splitlines()[0][:400]
                        break
    finally:
        shutil.rmtree(work, ignore_errors=True)
    done = [k for k, v in out["sizes"].items() if "new" in v and not v["old"]["returncode"]]
    if len(done) >= 2:
        lo, hi = out["sizes"][done[0]], out["sizes"][done[-1]]
        out[f"ratio_{done[-1]}_to_{done[0]}"] = {
            sel: {k: round(hi[sel][k] / lo[sel][k], 2) if lo[sel][k] else None for k in ("seconds", "read_bytes")}
            for sel in selections
        }
    return out


# ------------------------------------------------------------------ 3. panel latency


def rollup_states_sql(day: date, n: int, base: int) -> str:
    day_ms = int(midnight(day).timestamp() * 1000)
    return f"""
INSERT INTO {ROLLUP_TABLE} (minute, workspace_id, service, agent_name, model, calls, errors, latency_ms,
    input_tokens, output_tokens, cached_input_tokens, reasoning_tokens, reported_calls, reported_cost_usd,
    unreported_input_tokens, unreported_cached_input_tokens, unreported_output_tokens)
SELECT
    toStartOfMinute(fromUnixTimestamp64Milli(toInt64({day_ms} + h % 86400000), 'UTC')) AS minute,
    {_WS.format(h="intDiv(h, 3)")} AS workspace_id, {SERVICES}[ai] AS service, {AGENTS}[ai] AS agent_name,
    {MODELS}[mi] AS model,
    count() AS calls, countIf(h % 100 < 6) AS errors,
    quantilesDDState(0.005, 0.5, 0.95, 0.99)(lat) AS latency_ms,
    sum(n_in), sum(n_out), 0, 0, 0, toDecimal128(0, 18), sum(n_in), 0, sum(n_out)
FROM
(
    SELECT toUInt64({base} + number) AS g, cityHash64(g, 1) AS h, 1 + intDiv(h, 17) % 3 AS ai,
           1 + intDiv(h, 4096) % 3 AS mi, {latency_expr("g")} AS lat,
           100 + intDiv(h, 65536) % 3900 AS n_in, 20 + intDiv(h, 1048576) % 780 AS n_out
    FROM numbers({n})
)
GROUP BY minute, workspace_id, service, agent_name, model
"""


def _mart_rows_sql(table: str, col: str, step_s: int, first: date, days: int, calls_per_day: int) -> str:
    """Rows at mart grain: every (bucket, workspace, service/agent, model) key, calls as the
    skewed workspace share of calls_per_day gives, percentiles around the latency distribution's."""
    start_s = int(midnight(first).timestamp())
    buckets = days * 86400 // step_s
    per_bucket = calls_per_day * step_s / 86400
    return f"""
INSERT INTO marts.{table} ({col}, workspace_id, service, agent_name, model, calls, errors, error_rate,
    p50_latency_ms, p95_latency_ms, p99_latency_ms, input_tokens, output_tokens, cost_usd)
SELECT
    toDateTime({start_s} + b * {step_s}, 'UTC') AS bucket, concat('ws_', toString(w)) AS workspace_id,
    {SERVICES}[a] AS service, {AGENTS}[a] AS agent_name, {MODELS}[m] AS model,
    toUInt64(greatest(1, round({per_bucket} * (sqrt(w / 20) - sqrt((w - 1) / 20)) / 9 * (0.8 + 0.4 * u)))) AS calls,
    toUInt64(round(calls * 0.06)) AS errors, errors / calls AS error_rate,
    403 * (0.9 + 0.2 * u) AS p50, 1080 * (0.9 + 0.2 * u), 1650 * (0.9 + 0.2 * u) + 4000 * u,
    calls * 2050, calls * 410, calls * 0.004
FROM
(
    SELECT intDiv(number, 180) AS b, 1 + intDiv(number % 180, 9) AS w, 1 + intDiv(number % 9, 3) AS a,
           1 + number % 3 AS m, (cityHash64(number, 3) % 1000) / 1000 AS u
    FROM numbers({buckets * 180})
)
"""


def time_sql(ch: Any, sql: str, runs: int, warmups: int = 3) -> dict[str, Any]:
    for _ in range(warmups):
        result = ch.query(sql)
    times = []
    for _ in range(runs):
        t0 = time.perf_counter()
        result = ch.query(sql)
        times.append((time.perf_counter() - t0) * 1000)
    return {
        "rows": len(result.result_rows),
        "p50_ms": round(pct(times, 0.5), 2),
        "p95_ms": round(pct(times, 0.95), 2),
        "max_ms": round(max(times), 2),
    }


def panels(args: argparse.Namespace) -> dict[str, Any]:
    today = datetime.now(UTC).date()
    now = datetime.now(UTC)
    out: dict[str, Any] = {"calls_per_day": args.calls_per_day, "runs": args.panel_runs}
    work = Path(tempfile.mkdtemp(prefix="bench-rollups-dbt-"))
    try:
        with scratch_stack("platform-bench-rollups-panels-") as stack:
            env, res = prepare(stack)
            dbt = Dbt(env, work)
            part = {"min_date": today.isoformat(), "max_date": (today + timedelta(days=1)).isoformat()}
            step = dbt("build", "--select", "+mart_agent_metrics_1m +mart_agent_metrics_1h", vars=part)
            assert step["returncode"] == 0, step["log_tail"]
            with res["clickhouse"].client() as ch:
                t0 = time.monotonic()
                for back in (1, 0):
                    day = today - timedelta(days=back)
                    ch.command(rollup_states_sql(day, args.calls_per_day, (day.toordinal() % 100_000) * 10**10))
                first = today - timedelta(days=29)
                ch.command(_mart_rows_sql("mart_agent_metrics_1m", "minute", 60, first, 30, args.calls_per_day))
                ch.command(_mart_rows_sql("mart_agent_metrics_1h", "hour", 3600, first, 30, args.calls_per_day))
                ch.command(f"OPTIMIZE TABLE {ROLLUP_TABLE} FINAL")
                ch.command(f"OPTIMIZE TABLE {HOUR_ROLLUP_TABLE} FINAL")  # filled by its view on the minutes
                out["load_seconds"] = round(time.monotonic() - t0, 1)
                out["table_rows"] = {
                    t: int(ch.query(f"SELECT count() FROM {t}").result_rows[0][0])
                    for t in (ROLLUP_TABLE, HOUR_ROLLUP_TABLE, *MARTS)
                }
                out["rollup_calls"] = int(ch.query(f"SELECT sum(calls) FROM {ROLLUP_TABLE}").result_rows[0][0])
                out["latency_state_bytes_per_row"] = state_bytes(ch, "rollups", "llm_calls_1m", ["latency_ms"])
                current = agent_panels()
                ranges = {
                    "30d": TimeRange(now - timedelta(days=30), now),
                    "6h": TimeRange(now - timedelta(hours=6), now),
                }
                out["load_1m_start"] = load1()
                figures: dict[str, Any] = {}
                for key, old_sql in OLD_PANEL_SQL.items():
                    spec = current.get(key)
                    if spec is None:
                        figures[key] = {"error": "no such panel in the dashboards now"}
                        continue
                    for rname, trange in ranges.items():
                        for scope, ws in {"all": ALL_VALUE, ONE_WORKSPACE: ONE_WORKSPACE}.items():
                            exp = Expansion(trange, {"workspace": ws})
                            new = time_sql(ch, expand(spec.sql, exp), args.panel_runs)
                            old = time_sql(ch, expand(old_sql, exp), args.panel_runs)
                            fig = {
                                "new": new,
                                "old": old,
                                "ratio_old_to_new_p95": round(old["p95_ms"] / new["p95_ms"], 2),
                            }
                            halves = union_parts(spec.sql)
                            if len(halves) > 1:
                                fig["new_halves"] = {
                                    _half_name(h): time_sql(ch, expand(h, exp), args.panel_runs) for h in halves
                                }
                            figures.setdefault(key, {})[f"{rname}/{scope}"] = fig
                out["load_1m_end"] = load1()
                out["figures"] = figures
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return out


def _half_name(sql: str) -> str:
    m = re.search(r"FROM\s+([a-z_]+\.[a-z_0-9]+)", sql)
    return m[1] if m else sql[:40]


# ------------------------------------------------------------------ 4. percentile error


def state_bytes(ch: Any, database: str, table: str, columns: list[str]) -> dict[str, Any]:
    rows = ch.query(
        # column_data_*: the column's own files (data_compressed_bytes there is the whole part's)
        "SELECT column, sum(column_data_compressed_bytes), sum(column_data_uncompressed_bytes), sum(rows) "
        "FROM system.parts_columns "
        "WHERE active AND database = {d:String} AND table = {t:String} AND column IN {c:Array(String)} GROUP BY column",
        parameters={"d": database, "t": table, "c": columns},
    ).result_rows
    return {
        c: {"compressed_bytes_per_row": round(comp / n, 1), "uncompressed_bytes_per_row": round(unc / n, 1), "rows": n}
        for c, comp, unc, n in rows
    }


ERROR_LEVELS = {"row": "(minute, k)", "minute": "minute", "hour": "toStartOfHour(minute)", "day": "toDate(minute)"}
FUNCTIONS = {  # name: (function and parameters, state column)
    "dd": ("quantilesDD(0.005, 0.5, 0.95, 0.99)", "dd"),
    "tdigest": ("quantilesTDigest(0.5, 0.95, 0.99)", "td"),
    "bfloat16": ("quantilesBFloat16(0.5, 0.95, 0.99)", "bf"),
}


def merge_of(fn: str, col: str) -> str:
    """quantilesDD(0.005, 0.5) -> quantilesDDMerge(0.005, 0.5)(col)"""
    name, params = fn.split("(", 1)
    return f"{name}Merge({params}({col})"


def error_columns() -> str:
    """max and p99 over the buckets of each function's relative error at p50, p95, p99."""
    cols = []
    for name in FUNCTIONS:
        for i in (1, 2, 3):
            rel = f"abs({name}[{i}] - q[{i}]) / q[{i}]"
            cols += [f"max({rel}) AS max_{name}_{i}", f"quantileExactInclusive(0.99)({rel}) AS p99_{name}_{i}"]
            rank = f"abs({name}[{i}] - r[{i}]) / r[{i}]"  # against the value at rank q(n-1), no interpolation
            cols += [f"max({rank}) AS rmax_{name}_{i}", f"quantileExactInclusive(0.99)({rank}) AS rp99_{name}_{i}"]
    return ",\n    ".join(cols)


def error(args: argparse.Namespace) -> dict[str, Any]:
    day = datetime.now(UTC).date() - timedelta(days=1)
    day_ms = int(midnight(day).timestamp() * 1000)
    n = args.error_calls_per_day
    out: dict[str, Any] = {"calls": n, "day": day.isoformat(), "levels": list(ERROR_LEVELS)}
    with scratch_stack("platform-bench-rollups-error-") as stack:
        stack.up(["clickhouse"])
        res = resources_from_env(stack.env())
        with res["clickhouse"].client() as ch:
            ch.command("CREATE DATABASE IF NOT EXISTS bench")
            t0 = time.monotonic()
            ch.command(f"""
CREATE TABLE bench.latencies ENGINE = MergeTree ORDER BY (minute, k) AS
SELECT toStartOfMinute(fromUnixTimestamp64Milli(toInt64({day_ms} + h % 86400000), 'UTC')) AS minute,
       cityHash64({_WS.format(h="intDiv(h, 3)")}, 1 + intDiv(h, 17) % 3, 1 + intDiv(h, 4096) % 3) AS k,
       {latency_expr("g")} AS lat
FROM (SELECT number AS g, cityHash64(g, 1) AS h FROM numbers({n}))""")
            ch.command("""
CREATE TABLE bench.states ENGINE = MergeTree ORDER BY (minute, k) AS
SELECT minute, k, quantilesDDState(0.005, 0.5, 0.95, 0.99)(lat) AS dd,
       quantilesTDigestState(0.5, 0.95, 0.99)(lat) AS td, quantilesBFloat16State(0.5, 0.95, 0.99)(lat) AS bf
FROM bench.latencies GROUP BY minute, k""")
            ch.command("OPTIMIZE TABLE bench.states FINAL")
            out["load_seconds"] = round(time.monotonic() - t0, 1)
            out["rows_per_level"] = {}
            out["state_bytes_per_row"] = state_bytes(ch, "bench", "states", ["dd", "td", "bf"])
            errors: dict[str, Any] = {}
            for level, bucket in ERROR_LEVELS.items():
                merges = ", ".join(f"{merge_of(fn, col)} AS {name}" for name, (fn, col) in FUNCTIONS.items())
                sql = f"""
WITH
    exact AS (SELECT {bucket} AS bkt, quantilesExactInclusive(0.5, 0.95, 0.99)(lat) AS q, count() AS n,
                     arraySort(groupArray(lat)) AS v,
                     arrayMap(x -> v[1 + toUInt64(floor(x * (n - 1)))], [0.5, 0.95, 0.99]) AS r
              FROM bench.latencies GROUP BY bkt),
    approx AS (SELECT {bucket} AS bkt, {merges} FROM bench.states GROUP BY bkt)
SELECT
    count() AS buckets, min(n) AS min_calls, max(n) AS max_calls,
    {error_columns()}
FROM exact INNER JOIN approx USING bkt"""
                row = ch.query(sql).named_results()
                r = next(iter(row))
                out["rows_per_level"][level] = {
                    "buckets": r["buckets"],
                    "calls_min": r["min_calls"],
                    "calls_max": r["max_calls"],
                }
                errors[level] = {
                    name: {
                        q: {
                            "max_rel_error": round(r[f"max_{name}_{i + 1}"], 5),
                            "p99_rel_error": round(r[f"p99_{name}_{i + 1}"], 5),
                            "vs_rank_max_rel_error": round(r[f"rmax_{name}_{i + 1}"], 5),
                            "vs_rank_p99_rel_error": round(r[f"rp99_{name}_{i + 1}"], 5),
                        }
                        for i, q in enumerate(("p50", "p95", "p99"))
                    }
                    for name in FUNCTIONS
                }
            out["relative_error"] = errors
    return out


# ------------------------------------------------------------------ main


PARTS = {"freshness": freshness, "refresh": refresh, "panels": panels, "error": error}


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--parts", default=",".join(PARTS), help="comma-separated subset of " + ",".join(PARTS))
    parser.add_argument("--rate", type=float, default=20_000, help="freshness: target LLM call spans/s")
    parser.add_argument("--seconds", type=float, default=60, help="freshness: seconds of load")
    parser.add_argument("--items", type=int, default=512, help="freshness: spans per OTLP request")
    parser.add_argument("--collector-workers", type=int, default=2)
    parser.add_argument("--client-processes", type=int, default=2)
    parser.add_argument("--refresh-sizes", default="1000000,10000000,50000000", help="refresh: LLM call spans a day")
    parser.add_argument("--load-chunk", type=int, default=2_000_000, help="refresh: rows per INSERT (a multiple of 10)")
    parser.add_argument("--calls-per-day", type=int, default=10_000_000, help="panels: LLM calls a day")
    parser.add_argument("--panel-runs", type=int, default=25)
    parser.add_argument("--error-calls-per-day", type=int, default=10_000_000, help="error: latencies in the day")
    parser.add_argument("--out", type=Path)
    args = parser.parse_args()
    chosen = [p for p in args.parts.split(",") if p]
    unknown = set(chosen) - set(PARTS)
    if unknown:
        parser.error(f"unknown parts: {sorted(unknown)}")
    result: dict[str, Any] = {
        "benchmark": "rollups",
        "started_utc": datetime.now(UTC).isoformat(timespec="seconds"),
        "machine": machine() | {"loadavg_before": [round(x, 2) for x in os.getloadavg()]},
        "parameters": {k: v for k, v in vars(args).items() if k != "out"},
    }
    started = time.monotonic()
    for name in chosen:
        t0 = time.monotonic()
        print(f"part {name} ...", file=sys.stderr)
        try:
            result[name] = PARTS[name](args)
        except Exception as exc:  # noqa: BLE001 - recorded; the other parts still run
            result[name] = {"error": f"{type(exc).__name__}: {str(exc)[:500]}"}
        result[name]["part_seconds"] = round(time.monotonic() - t0, 1)
        print(f"part {name} done in {result[name]['part_seconds']} s", file=sys.stderr)
    return finish(result, started, args)


if __name__ == "__main__":
    sys.exit(main())
