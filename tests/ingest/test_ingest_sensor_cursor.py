"""The consumer-lag sensor over several ticks, with a stubbed reader (no servers): the cursor per
topic each tick writes, the figures in the skip reason, check results on verdict changes."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import pytest
from dagster import AssetCheckEvaluation, AssetObservation, SensorResult, build_sensor_context

from platform_assets.core.keys import raw_key
from platform_assets.core.resources import ClickHouseResource, KafkaResource
from platform_assets.ingest import sensors
from platform_assets.ingest.lag import PartitionLag, TopicLag
from platform_assets.ingest.resources import IngestResource

pytestmark = pytest.mark.unit

TOPICS = ["agent_events", "product_events", "otlp_spans", "otlp_logs", "otlp_metrics"]
CONSUMER = {"last_poll_time": "2026-01-01 00:00:00", "messages_read": 7, "last_exception": ""}


def topic(name: str, *parts: tuple[int, int | None], error: str | None = None, **consumer: Any) -> TopicLag:
    return TopicLag(
        name,
        f"clickhouse_{name}",
        [PartitionLag(i, high, committed) for i, (high, committed) in enumerate(parts)],
        {**CONSUMER, **consumer},
        error,
    )


def quiet(*busy: TopicLag) -> list[TopicLag]:
    """``busy`` plus the other consumed topics, caught up on one partition each."""
    given = {t.topic: t for t in busy}
    return [given.get(name) or topic(name, (5, 5)) for name in TOPICS]


def skip_text(result: SensorResult) -> str:
    assert result.skip_reason is not None and not result.run_requests
    return result.skip_reason.skip_message or ""


def checks(result: SensorResult) -> dict[str, AssetCheckEvaluation]:
    out = {}
    for e in result.asset_events:
        if isinstance(e, AssetCheckEvaluation):
            assert e.check_name == "consumer_lag"
            out[e.asset_key.path[-1]] = e
    return out


@pytest.fixture
def tick(monkeypatch: pytest.MonkeyPatch) -> Callable[..., SensorResult]:
    """One sensor tick that reads ``lags``, starting from ``cursor``."""

    def run(lags: list[TopicLag], cursor: str | None, **ingest: Any) -> SensorResult:
        def fake_read_lag(kafka, clickhouse, topics, context=None):
            assert topics == TOPICS
            return lags

        monkeypatch.setattr(sensors, "read_lag", fake_read_lag)
        res = {
            "kafka": KafkaResource(bootstrap_servers="kafka.invalid:9092"),
            "clickhouse": ClickHouseResource(host="ch.invalid", http_port=1, username="u", password="p"),
            "ingest": IngestResource(**ingest),
        }
        result = sensors.ingest_consumer_lag_sensor(build_sensor_context(cursor=cursor, resources=res))
        assert isinstance(result, SensorResult)
        return result

    return run


def test_cursor_and_skip_reason_per_topic(tick) -> None:
    first = tick(quiet(topic("agent_events", (813, 802), (468, 457), (749, 741))), None)
    assert json.loads(first.cursor) == {
        "agent_events": {"committed": {"0": 802, "1": 457, "2": 741}, "stuck_ticks": 0, "flagged": False},
        "product_events": {"committed": {"0": 5}, "stuck_ticks": 0, "flagged": False},
        "otlp_spans": {"committed": {"0": 5}, "stuck_ticks": 0, "flagged": False},
        "otlp_logs": {"committed": {"0": 5}, "stuck_ticks": 0, "flagged": False},
        "otlp_metrics": {"committed": {"0": 5}, "stuck_ticks": 0, "flagged": False},
    }
    assert skip_text(first) == (
        "agent_events: lag 30 (p0=11, p1=11, p2=8) ok | product_events: lag 0 (p0=0) ok | otlp_spans: lag 0 (p0=0) ok"
        " | otlp_logs: lag 0 (p0=0) ok | otlp_metrics: lag 0 (p0=0) ok"
    )
    observed = {e.asset_key: e for e in first.asset_events if isinstance(e, AssetObservation)}
    # otlp_metrics fills five tables; its lag is reported on the histogram table
    assert set(observed) == {
        raw_key(t) for t in ("agent_events", "product_events", "spans", "otel_logs", "otel_metrics_histogram")
    }
    agent = observed[raw_key("agent_events")].metadata
    assert agent["lag_messages"].value == 30 and agent["group"].value == "clickhouse_agent_events"
    assert agent["per_partition"].value == [
        {"partition": 0, "high_watermark": 813, "committed": 802, "lag": 11},
        {"partition": 1, "high_watermark": 468, "committed": 457, "lag": 11},
        {"partition": 2, "high_watermark": 749, "committed": 741, "lag": 8},
    ]
    # The first tick has no verdict to compare with: one check result per raw table.
    results = checks(first)
    assert set(results) == {"agent_events", "product_events", "spans", "otel_logs", "otel_metrics_histogram"}
    assert all(r.passed for r in results.values()) and results["agent_events"].description == "lag 30 messages"

    # Commits advanced: new offsets in the cursor, no check result again.
    second = tick(quiet(topic("agent_events", (900, 890), (500, 500), (749, 749))), first.cursor)
    assert json.loads(second.cursor)["agent_events"] == {
        "committed": {"0": 890, "1": 500, "2": 749},
        "stuck_ticks": 0,
        "flagged": False,
    }
    assert skip_text(second).startswith("agent_events: lag 10 (p0=10, p1=0, p2=0) ok | ")
    assert not checks(second)


def test_stuck_after_configured_ticks_then_recovery_resets(tick) -> None:
    waiting = quiet(topic("agent_events", (20, 5)))
    cursor = None
    results = []
    for _ in range(4):
        result = tick(waiting, cursor, stuck_after_ticks=2)
        results.append(result)
        cursor = result.cursor
    agent = [json.loads(r.cursor)["agent_events"] for r in results]
    assert [(a["stuck_ticks"], a["flagged"]) for a in agent] == [(0, False), (1, False), (2, True), (3, True)]
    assert all(a["committed"] == {"0": 5} for a in agent)

    assert skip_text(results[1]).startswith("agent_events: lag 15 (p0=15) ok | ")
    assert not checks(results[1])
    stuck = "agent_events: consumer stuck, 15 messages waiting and no commit for 2 ticks"
    assert skip_text(results[2]).startswith(f"agent_events: lag 15 (p0=15) FLAGGED {stuck} | product_events: ")
    failed = checks(results[2])
    assert set(failed) == {"agent_events"}  # only the stuck topic changed verdict
    assert not failed["agent_events"].passed and failed["agent_events"].description == stuck
    assert failed["agent_events"].metadata["lag_messages"].value == 15
    # Still stuck: the count goes on, no second failing check result.
    assert "no commit for 3 ticks" in skip_text(results[3]) and not checks(results[3])

    # The consumer commits again: counts reset, one passing check result.
    recovered = tick(quiet(topic("agent_events", (22, 21))), cursor, stuck_after_ticks=2)
    assert json.loads(recovered.cursor)["agent_events"] == {"committed": {"0": 21}, "stuck_ticks": 0, "flagged": False}
    assert skip_text(recovered).startswith("agent_events: lag 1 (p0=1) ok | ")
    back = checks(recovered)
    assert set(back) == {"agent_events"} and back["agent_events"].passed
    assert back["agent_events"].description == "lag 1 messages"


def test_threshold_exception_and_unreachable_broker_are_flagged(tick) -> None:
    start = tick(quiet(), None, max_lag_messages=100)
    lags = [
        topic("agent_events", (300, 150)),
        topic("product_events", (5, 5), last_exception="Local: Broker transport failure"),
        TopicLag("otlp_spans", "clickhouse_otlp_spans", [], {}, "broker unreachable: timed out"),
        *quiet()[3:],
    ]
    result = tick(lags, start.cursor, max_lag_messages=100)
    assert skip_text(result) == (
        "agent_events: lag 150 (p0=150) FLAGGED agent_events: lag 150 messages > 100 | "
        "product_events: lag 0 (p0=0) FLAGGED product_events: consumer exception: Local: Broker transport failure | "
        "otlp_spans: lag 0 () FLAGGED otlp_spans: broker unreachable: timed out | "
        "otlp_logs: lag 0 (p0=0) ok | otlp_metrics: lag 0 (p0=0) ok"
    )
    cursor = json.loads(result.cursor)
    assert [cursor[name]["flagged"] for name in TOPICS] == [True, True, True, False, False]
    assert cursor["otlp_spans"] == {"committed": {}, "stuck_ticks": 0, "flagged": True}
    failed = checks(result)
    assert set(failed) == {"agent_events", "product_events", "spans"}
    assert not any(r.passed for r in failed.values())
    assert failed["spans"].description == "otlp_spans: broker unreachable: timed out"
    spans = next(e for e in result.asset_events if isinstance(e, AssetObservation) and e.asset_key == raw_key("spans"))
    assert spans.metadata["error"].value == "broker unreachable: timed out"


def test_a_topic_no_consumer_holds_is_restarted_once_per_stuck_period(tick, monkeypatch) -> None:
    restarted = record_restarts(monkeypatch)
    orphaned = quiet(topic("otlp_spans", (40, 10), (50, 20), assigned_partitions=[]))
    cursor, reasons = None, []
    for _ in range(5):
        result = tick(orphaned, cursor, stuck_after_ticks=2)
        cursor, reasons = result.cursor, [*reasons, skip_text(result)]
    # Stuck for 2 ticks (the 3rd tick): restarted, and the count starts again from 0.
    assert restarted == ["otlp_spans", "otlp_spans"]
    assert ["otlp_spans: restarted its consumers" in r for r in reasons] == [False, False, True, False, True]
    assert "no consumer held partition(s) [0, 1]" in reasons[2]
    assert json.loads(cursor)["otlp_spans"]["stuck_ticks"] == 0


def test_held_partitions_or_the_setting_off_mean_no_restart(tick, monkeypatch) -> None:
    restarted = record_restarts(monkeypatch)
    held = quiet(topic("otlp_spans", (40, 10), (50, 20), assigned_partitions=[0, 1]))
    orphaned = quiet(topic("otlp_spans", (40, 10), (50, 20), assigned_partitions=[]))
    for lags, setting in ((held, True), (orphaned, False)):
        cursor = None
        for _ in range(4):
            cursor = tick(lags, cursor, stuck_after_ticks=2, restart_unheld_consumers=setting).cursor
    assert restarted == []


def test_a_failed_restart_is_named_in_the_check(tick, monkeypatch) -> None:
    def refuse(clickhouse, table, context=None):
        raise RuntimeError("Code: 497. DB::Exception: Not enough privileges")

    monkeypatch.setattr(sensors, "restart_consumers", refuse)
    orphaned = quiet(topic("otlp_spans", (40, 10), assigned_partitions=[]))
    cursor, results = None, []
    for _ in range(3):
        result = tick(orphaned, cursor, stuck_after_ticks=2)
        cursor, results = result.cursor, [*results, result]
    failed = checks(results[2])["spans"]
    assert not failed.passed
    assert "otlp_spans: restarting its consumers failed: Code: 497" in (failed.description or "")


def record_restarts(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """The tables the sensor restarts, instead of re-attaching them."""
    restarted: list[str] = []

    def restart(clickhouse, table, context=None) -> int:
        restarted.append(table)
        return 1

    monkeypatch.setattr(sensors, "restart_consumers", restart)
    return restarted
