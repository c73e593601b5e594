"""The call panels split at the recent window: LLM call spans of a workspace of this module's own
written to raw.spans (the materialized views fill rollups.llm_calls_1m as they land) on yesterday
and the day before, and the same spans' marts built by dbt. Inside the recent window a panel shows
the rollup's figures, which equal the mart's for the same minutes (counts, tokens and cost; p95
within the sketch's error); before it the mart's; a range across the split shows each part once.
Run as the admin user: the read-only grafana user's grants are checked by test_grafana_panels_sql."""

from __future__ import annotations

import random
import uuid
from dataclasses import replace
from datetime import UTC, datetime, time, timedelta
from typing import Any

import pytest

from platform_assets.publish.checks import run_dashboard_queries
from platform_assets.publish.dashboards import spec_by_uid
from platform_assets.publish.macros import Expansion, TimeRange, expand
from platform_assets.publish.panels import DashboardSpec, PanelSpec
from platform_assets.synthetic.raw_columns import PRODUCT_EVENT_FIELDS, SPAN_COLUMNS

pytestmark = pytest.mark.integration

WORKSPACE = f"ws_panels_{uuid.uuid4().hex[:8]}"
TODAY = datetime.now(UTC).date()
YESTERDAY = TODAY - timedelta(days=1)  # the recent window's first day
BEFORE = TODAY - timedelta(days=2)  # the last day the marts serve
SPLIT = datetime.combine(YESTERDAY, time(), tzinfo=UTC)
BIG_MODELS = ["gpt-4o", "gpt-4o-mini"]  # priced in the model_prices seed
UNPRICED = "mystery-model"  # no model_prices row: its unreported calls cost 0
CALLS_PER_MODEL_MINUTE = 210  # >= 200 per bucket: the p95 comparison's sample
EQUAL_MINUTES = [datetime.combine(YESTERDAY, time(6, m), tzinfo=UTC) for m in range(3)]
REDELIVERED = {  # minute -> (spans, of which delivered twice)
    datetime.combine(YESTERDAY, time(6, 10), tzinfo=UTC): (20, 5),
    datetime.combine(BEFORE, time(6, 0), tzinfo=UTC): (30, 5),
}


def _span(rng: random.Random, minute: datetime, model: str, n: int) -> list[Any]:
    start = minute + timedelta(milliseconds=rng.randrange(59_000))
    # Dense around the p95 (210 calls over 400 ms: 2 ms apart), so the step between two ranks
    # stays well below the sketch's 0.5 % and the comparison measures the sketch.
    duration = round(rng.uniform(800, 1_200), 3)
    tokens_in, cached = rng.randrange(50, 4_000), rng.choice([0, 0, rng.randrange(0, 3_000)])  # cached may exceed input
    attributes = {
        "gen_ai.operation.name": "chat",
        "gen_ai.request.model": model,
        "gen_ai.usage.input_tokens": str(tokens_in),
        "gen_ai.usage.output_tokens": str(rng.randrange(10, 1_500)),
        "gen_ai.usage.cache_read.input_tokens": str(cached),
    }
    if rng.random() < 0.25:
        attributes["gen_ai.usage.cost"] = f"{rng.uniform(0.0001, 0.05):.6f}"
    service = "svc-panels"  # one service: the mart's row of a minute and model holds every call of them
    return [uuid.uuid4().hex, f"{n:016x}", "", WORKSPACE, "test", service, "panels", "chat", 3,
            2 if rng.random() < 0.07 else 1, "", start, start + timedelta(milliseconds=duration), duration,
            attributes, {"service.name": service, "tenant.id": WORKSPACE}, 0, n]  # fmt: skip


def _straddle_interval() -> int:
    """A bucket width (s) that does not divide a day and whose bucket holding the split also holds
    the minute before it: that bucket gets rows from both halves."""
    t = int(SPLIT.timestamp())
    return next(iv for iv in range(120, 172) if 86_400 % iv and t % iv >= 60)


STRADDLE_MINUTES = [SPLIT - timedelta(minutes=1), SPLIT]  # 10 spans each, either side of the split


@pytest.fixture(scope="module")
def calls(publish_marts, clickhouse, dbt) -> dict[str, Any]:
    """The spans in raw.spans (some twice), the marts built for BEFORE and YESTERDAY."""
    rng = random.Random(4_004)
    rows: list[list[Any]] = []
    for minute in EQUAL_MINUTES:
        for model in BIG_MODELS:
            rows += [_span(rng, minute, model, len(rows)) for _ in range(CALLS_PER_MODEL_MINUTE)]
        rows += [_span(rng, minute, UNPRICED, len(rows)) for _ in range(5)]
    twice: list[list[Any]] = []
    for minute, (n, dup) in REDELIVERED.items():
        new = [_span(rng, minute, "gpt-4o", len(rows) + i) for i in range(n)]
        rows += new
        twice += new[:dup]
    for minute in STRADDLE_MINUTES:
        rows += [_span(rng, minute, "gpt-4o", len(rows)) for _ in range(10)]
    with clickhouse.client() as ch:
        ch.insert("raw.spans", rows, column_names=SPAN_COLUMNS)
        ch.insert("raw.spans", twice, column_names=SPAN_COLUMNS)  # a redelivery: another insert, another part
    window = {"min_date": BEFORE.isoformat(), "max_date": TODAY.isoformat()}
    dbt("run", "--select", "+mart_agent_metrics_1m", "+mart_agent_metrics_1h", vars=window)
    return {"rows": rows}


def _panel(key: str) -> PanelSpec:
    return next(p for p in spec_by_uid("platform-agent-telemetry").panels if p.key == key)


def _run(ch: Any, key: str, time_range: TimeRange, workspace: str = WORKSPACE) -> list[tuple]:
    return ch.query(expand(_panel(key).sql, Expansion(time_range, {"workspace": workspace}))).result_rows


def _naive(at: datetime) -> datetime:
    return at.replace(tzinfo=None)  # a UTC wall time for a DateTime query parameter


def _minutes(first: datetime, last: datetime) -> TimeRange:
    return TimeRange(first, last + timedelta(seconds=59))  # under 1000 minutes: 60 s buckets


def test_rollup_half_equals_the_mart_for_the_same_minutes(calls, clickhouse) -> None:
    time_range = _minutes(EQUAL_MINUTES[0], EQUAL_MINUTES[-1])
    assert time_range.interval_seconds == 60 and time_range.start >= SPLIT
    with clickhouse.client() as ch:
        mart = {
            (r[0].replace(tzinfo=UTC), r[1]): r[2:]
            for r in ch.query(
                "SELECT minute, model, sum(calls), sum(errors), sum(input_tokens + output_tokens), sum(cost_usd), "
                "any(p95_latency_ms), count() FROM marts.mart_agent_metrics_1m WHERE workspace_id = {ws:String} "
                "AND minute BETWEEN {lo:DateTime} AND {hi:DateTime} GROUP BY minute, model",
                parameters={"ws": WORKSPACE, "lo": _naive(EQUAL_MINUTES[0]), "hi": _naive(EQUAL_MINUTES[-1])},
            ).result_rows
        }
        panels = {
            key: {(r[0].replace(tzinfo=UTC), r[1]): r[2] for r in _run(ch, key, time_range)}
            for key in ("tokens_by_model", "cost_by_model", "call_error_rate", "latency_p95")
        }
        throughput = _run(ch, "throughput", time_range)
    assert set(mart) == {(m, model) for m in EQUAL_MINUTES for model in [*BIG_MODELS, UNPRICED]}
    assert {r[-1] for r in mart.values()} == {1}  # one mart row per minute and model: its p95 is theirs
    for key in panels:
        assert set(panels[key]) == set(mart), key
    for k, (n, errors, tokens, cost, p95, _) in mart.items():
        assert panels["tokens_by_model"][k] == tokens, k
        assert panels["call_error_rate"][k] == errors / n, k
        assert panels["cost_by_model"][k] == pytest.approx(cost, rel=1e-9, abs=1e-12), k  # priced per minute, not call
        if k[1] in BIG_MODELS:
            assert n == CALLS_PER_MODEL_MINUTE
            assert panels["latency_p95"][k] == pytest.approx(p95, rel=0.01), k
    # The unpriced model costs only what its calls reported; the priced ones more than that.
    assert sum(n for (_, _), (n, *_) in mart.items()) == sum(r[2] for r in throughput)
    assert all(v > 0 for (_, model), v in panels["cost_by_model"].items() if model in BIG_MODELS)


def test_a_range_across_the_split_reads_the_mart_before_and_the_rollup_after(calls, clickhouse) -> None:
    """Yesterday's redelivered spans count twice (the rollup counts what lands), the day before's
    once (the mart dedupes): each part comes from its own half, and no bucket twice."""
    (recent_minute, (recent_n, recent_dup)), (old_minute, (old_n, _)) = REDELIVERED.items()
    time_range = TimeRange(old_minute - timedelta(minutes=5), recent_minute + timedelta(minutes=5))
    assert time_range.end - time_range.start <= timedelta(days=2)  # the minute mart's half
    with clickhouse.client() as ch:
        rows = _run(ch, "throughput", time_range)
        rollup_old = ch.query(
            "SELECT sum(calls) FROM rollups.llm_calls_1m WHERE workspace_id = {ws:String} AND minute = {m:DateTime}",
            parameters={"ws": WORKSPACE, "m": _naive(old_minute)},
        ).result_rows[0][0]
    assert len({(r[0], r[1]) for r in rows}) == len(rows)  # one row per bucket and service
    near = timedelta(minutes=10)
    before = sum(r[2] for r in rows if abs(r[0].replace(tzinfo=UTC) - old_minute) < near)
    after = sum(r[2] for r in rows if EQUAL_MINUTES[0] - near < r[0].replace(tzinfo=UTC) < recent_minute + near)
    assert rollup_old == old_n + 5  # the rollup has the redelivery of the old minute too ...
    assert before == old_n  # ... the panel shows the mart's: the old minute once
    equal = 3 * (2 * CALLS_PER_MODEL_MINUTE + 5)
    assert after == equal + recent_n + recent_dup  # the rollup's, redelivery included
    assert sum(r[2] for r in rows) == before + after + 2 * 10  # and the minutes either side of the split once


def test_a_bucket_across_the_split_is_one_point(calls, clickhouse) -> None:
    interval = _straddle_interval()
    t = int(SPLIT.timestamp())
    time_range = TimeRange(SPLIT - timedelta(seconds=500 * interval), SPLIT + timedelta(seconds=500 * interval))
    assert time_range.interval_seconds == interval
    bucket = datetime.fromtimestamp(t - t % interval, UTC)
    with clickhouse.client() as ch:
        rows = [r for r in _run(ch, "tokens_by_model", time_range) if r[0].replace(tzinfo=UTC) == bucket]
        want = ch.query(
            "SELECT sum(input_tokens + output_tokens) FROM marts.mart_agent_metrics_1m "
            "WHERE workspace_id = {ws:String} AND minute IN ({a:DateTime}, {b:DateTime})",
            parameters={"ws": WORKSPACE, "a": _naive(STRADDLE_MINUTES[0]), "b": _naive(STRADDLE_MINUTES[1])},
        ).result_rows[0][0]
    assert len(rows) == 1 and rows[0][1] == "gpt-4o"
    assert rows[0][2] == want > 0  # the mart's minute before the split plus the rollup's after it


def _empty_half(spec: DashboardSpec, key: str, table: str) -> DashboardSpec:
    """The dashboard with panel ``key``'s half over ``table`` returning nothing."""
    panels = tuple(
        replace(p, sql=p.sql.replace(f"FROM {table}\nWHERE ", f"FROM {table}\nWHERE 0 AND ")) if p.key == key else p
        for p in spec.panels
    )
    assert panels != spec.panels
    return replace(spec, panels=panels)


@pytest.mark.parametrize(
    ("emptied", "fails_on"),
    [("rollups.llm_calls_1m", "recent"), ("marts.mart_agent_metrics_1m", "before")],
)
def test_the_check_expects_rows_from_the_half_of_its_range(calls, clickhouse, emptied: str, fails_on: str) -> None:
    """With one half of a panel returning nothing, the check fails over a range of that half only."""
    old_minute = list(REDELIVERED)[1]
    spec = _empty_half(spec_by_uid("platform-agent-telemetry"), "throughput", emptied)
    ranges = {
        "recent": _minutes(EQUAL_MINUTES[0], EQUAL_MINUTES[-1]),
        "before": _minutes(old_minute, old_minute),
    }
    with clickhouse.client() as ch:
        results = {name: {r.key: r for r in run_dashboard_queries(ch, spec, tr)} for name, tr in ranges.items()}
    for name, by_key in results.items():
        throughput = by_key["throughput"]
        if name == fails_on:
            assert not throughput.ok and "no rows although" in throughput.problem, (name, throughput)
        else:
            assert throughput.ok and throughput.rows, (name, throughput)
    assert results["recent"]["throughput"].recent_rows  # the rollup's rows in the range are counted
    assert results["before"]["throughput"].recent_rows == 0


def test_workspace_variable_lists_the_recent_window_and_the_days_before(calls, clickhouse) -> None:
    (variable,) = spec_by_uid("platform-agent-telemetry").variables
    old_minute = list(REDELIVERED)[1]
    with clickhouse.client() as ch:
        for time_range in (
            _minutes(EQUAL_MINUTES[0], EQUAL_MINUTES[-1]),
            TimeRange(old_minute, old_minute + timedelta(hours=2)),
        ):
            names = {r[0] for r in ch.query(expand(variable.sql, Expansion(time_range))).result_rows}
            assert WORKSPACE in names, time_range  # from the rollup, then from the hour mart


def test_live_product_panels_read_the_rollup(publish_marts, clickhouse) -> None:
    """Today's active users are the distinct actors of today's events (an empty actor is nobody),
    and events per minute by type add up to the events over the recent window."""
    workspace = f"ws_panels_{uuid.uuid4().hex[:8]}"
    now = datetime.now(UTC).replace(microsecond=0)
    at = max(now - timedelta(minutes=3), datetime.combine(now.date(), time(), tzinfo=UTC))  # today, in the past
    rng = random.Random(4_005)
    actors = [f"{rng.getrandbits(64):016x}panels{i:06d}" for i in range(7)] + [""]
    types = ["page_view", "feature_used"]
    rows = [
        [uuid.UUID(int=rng.getrandbits(128), version=4), types[i % 2], at, workspace, f"panels-{i}", actors[i % 8],
         "web", "{}", "{}"]
        for i in range(40)
    ]  # fmt: skip
    with clickhouse.client() as ch:
        ch.insert("raw.product_events", rows, column_names=PRODUCT_EVENT_FIELDS)
        panels = {p.key: p for p in spec_by_uid("platform-product-analytics").panels}
        exp = Expansion(TimeRange(at - timedelta(minutes=30), now + timedelta(minutes=1)), {"workspace": workspace})
        (live,) = ch.query(expand(panels["active_users_live"].sql, exp)).result_rows
        per_minute = ch.query(expand(panels["events_per_minute_live"].sql, exp)).result_rows
    assert live[0] == 7
    assert exp.time_range.interval_seconds == 60  # a one-minute bucket: per minute is the bucket's count
    assert {(r[1], r[2]) for r in per_minute} == {("page_view", 20.0), ("feature_used", 20.0)}


def test_log_volume_reads_the_rollup_in_the_recent_window(publish_marts, clickhouse) -> None:
    workspace = f"ws_panels_{uuid.uuid4().hex[:8]}"
    minute = datetime.combine(YESTERDAY, time(7, 0), tzinfo=UTC)
    with clickhouse.client() as ch:
        ch.insert(
            "raw.otel_logs",
            [[minute + timedelta(seconds=i), "svc-panels", 17 if i % 4 == 0 else 9, {"tenant.id": workspace}]
             for i in range(20)],
            column_names=["Timestamp", "ServiceName", "SeverityNumber", "ResourceAttributes"],
        )  # fmt: skip
        panel = next(p for p in spec_by_uid("platform-service-telemetry").panels if p.key == "log_volume")
        rows = ch.query(
            expand(
                panel.sql, Expansion(_minutes(minute, minute), {"workspace": workspace, "token_attribute": "__all__"})
            )
        ).result_rows
    assert sorted((r[1], r[2]) for r in rows) == [("ERROR", 5), ("INFO", 15)]


def _parts_read(ch: Any, sql: str) -> dict[str, bool]:
    """table -> whether EXPLAIN indexes=1 plans to read any part of it (a folded-away half plans none)."""
    plan = [r[0] for r in ch.query("EXPLAIN indexes=1 " + sql).result_rows]
    out: dict[str, bool] = {}
    table = None
    for line in plan:
        if "ReadFromMergeTree (" in line:
            table = line.split("ReadFromMergeTree (")[1].rstrip(")")
            out.setdefault(table, False)
        elif table and "Parts:" in line and not line.strip().startswith("Parts: 0"):
            out[table] = True
        elif "ReadFrom" in line:
            table = None
    return out


def test_the_half_outside_the_range_reads_no_part(calls, clickhouse) -> None:
    old_minute = list(REDELIVERED)[1]
    cases = {
        "recent": (_minutes(EQUAL_MINUTES[0], EQUAL_MINUTES[-1]), {"rollups.llm_calls_1m"}),
        "before": (_minutes(old_minute, old_minute), {"marts.mart_agent_metrics_1m"}),
        "long, before": (TimeRange(old_minute - timedelta(days=5), old_minute), {"marts.mart_agent_metrics_1h"}),
        "long, across": (
            TimeRange(old_minute - timedelta(days=3), EQUAL_MINUTES[-1]),
            {"rollups.llm_calls_1h", "marts.mart_agent_metrics_1h"},
        ),
    }
    with clickhouse.client() as ch:
        for name, (time_range, read) in cases.items():
            for key in ("throughput", "cost_by_model"):
                sql = expand(_panel(key).sql, Expansion(time_range, {"workspace": WORKSPACE}))
                parts = _parts_read(ch, sql)
                assert {t for t in parts if t.startswith(("rollups.", "marts."))} == {
                    "rollups.llm_calls_1m", "rollups.llm_calls_1h", "marts.mart_agent_metrics_1m",
                    "marts.mart_agent_metrics_1h"
                }, (name, key, parts)  # fmt: skip
                assert {t for t, r in parts.items() if r and not t.startswith("staging.")} == read, (name, key, parts)
                priced = key == "cost_by_model" and name in ("recent", "long, across")
                assert parts.get("staging.model_prices", False) == priced, (name, key, parts)


def test_a_long_range_reads_the_hour_rollup_with_the_minutes_figures(calls, clickhouse) -> None:
    """Over more than two days the recent half reads rollups.llm_calls_1h: each hour's calls,
    tokens and p95 are those of its minutes in rollups.llm_calls_1m (the sketches merge exactly)."""
    hour = EQUAL_MINUTES[0].replace(minute=0)
    time_range = TimeRange(hour - timedelta(days=3), hour + timedelta(hours=1))
    assert time_range.end - time_range.start > timedelta(days=2)
    t, interval = int(hour.timestamp()), time_range.interval_seconds
    bucket = datetime.fromtimestamp(t - t % interval, UTC)  # the hour's rows fall in the bucket holding its start
    assert interval < 3600 and bucket + timedelta(seconds=interval) <= hour + timedelta(hours=1)
    with clickhouse.client() as ch:
        minutes = {
            r[0]: r[1:]
            for r in ch.query(
                "SELECT model, sum(calls), sum(input_tokens + output_tokens), "
                "quantilesDDMerge(0.005, 0.5, 0.95, 0.99)(latency_ms)[2] FROM rollups.llm_calls_1m "
                "WHERE workspace_id = {ws:String} AND toStartOfHour(minute) = {h:DateTime} GROUP BY model",
                parameters={"ws": WORKSPACE, "h": _naive(hour)},
            ).result_rows
        }
        panels = {
            key: {r[1]: r[2] for r in _run(ch, key, time_range) if r[0].replace(tzinfo=UTC) == bucket}
            for key in ("throughput", "tokens_by_model", "latency_p95")
        }
    assert set(minutes) == {*BIG_MODELS, UNPRICED}
    assert panels["throughput"] == {"svc-panels": sum(m[0] for m in minutes.values())}
    assert minutes["gpt-4o"][0] == 3 * CALLS_PER_MODEL_MINUTE + 20 + 5  # the redelivered minute of that hour too
    for model, (_, tokens, p95) in minutes.items():
        assert panels["tokens_by_model"][model] == tokens, model
        assert panels["latency_p95"][model] == pytest.approx(p95, rel=1e-9), model
