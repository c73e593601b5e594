"""The CDC sensors over several ticks, with stubbed readers (no servers): the cursor each tick
writes, the figures in the skip reason, check results on verdict changes, one repair run per drift."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from dagster import AssetCheckEvaluation, AssetObservation, RunRequest, SensorResult, build_sensor_context

from platform_assets.cdc import sensors
from platform_assets.cdc.lag import LagReading
from platform_assets.cdc.monitor import TableState
from platform_assets.cdc.resources import CdcResource
from platform_assets.core.keys import REPLICA_DB_KEY
from platform_assets.core.resources import ClickHouseResource, PostgresResource

pytestmark = pytest.mark.unit

TICK_MS = 30_000


def resources(**cdc: Any) -> dict[str, Any]:
    """Resources the sensors require; nothing connects, the readers are stubbed."""
    return {
        "postgres": PostgresResource(host="pg.invalid", port=1, user="u", password="p", dbname="app"),
        "clickhouse": ClickHouseResource(host="ch.invalid", http_port=1, username="u", password="p"),
        "cdc": CdcResource(replication_password="unused", **cdc),
    }


def reading(tick: int, lsn: str | None = "0/10", lag_bytes: int | None = 2048, **kw: Any) -> LagReading:
    now = 1_000_000 + tick * TICK_MS
    base: dict[str, Any] = dict(
        measured_at_ms=now,
        lag_bytes=lag_bytes,
        slot_active=False,  # the engine polls its slot: inactive between polls
        wal_status="reserved",
        confirmed_flush_lsn=lsn,
        source_heartbeat_ms=now - 2_000,
        replica_heartbeat_ms=now - 2_000,
    )
    base.update(kw)
    return LagReading(**base)


def skip_text(result: SensorResult) -> str:
    assert result.skip_reason is not None and not result.run_requests
    return result.skip_reason.skip_message or ""


def checks(result: SensorResult) -> list[AssetCheckEvaluation]:
    return [e for e in result.asset_events if isinstance(e, AssetCheckEvaluation)]


def observations(result: SensorResult) -> list[AssetObservation]:
    return [e for e in result.asset_events if isinstance(e, AssetObservation)]


@pytest.fixture
def lag_ticks(monkeypatch: pytest.MonkeyPatch) -> Callable[..., Iterator[tuple[LagReading, SensorResult]]]:
    """Runs the lag sensor once per reading, each tick starting from the cursor the previous wrote."""

    def run(
        readings: list[LagReading], cursor: str | None = None, **cdc: Any
    ) -> Iterator[tuple[LagReading, SensorResult]]:
        calls: list[str] = []
        res = resources(**cdc)
        for r in readings:

            def fake_read_lag(postgres, clickhouse, database, context=None, r=r):
                calls.append(database)
                return r

            monkeypatch.setattr(sensors, "read_lag", fake_read_lag)
            result = sensors.cdc_replication_lag_sensor(build_sensor_context(cursor=cursor, resources=res))
            assert isinstance(result, SensorResult)
            assert calls[-1] == res["cdc"].replica_database
            cursor = result.cursor
            yield r, result

    return run


def test_lag_cursor_and_skip_reason_state_the_figures(lag_ticks) -> None:
    ticks = list(lag_ticks([reading(0, "0/10"), reading(1, "0/20", lag_bytes=512)]))

    (first_reading, first), (second_reading, second) = ticks
    assert json.loads(first.cursor) == {
        "lsn": "0/10",
        "stalled_ticks": 0,
        "flagged": False,
        "measured_at_ms": first_reading.measured_at_ms,
    }
    assert skip_text(first) == (
        "OK: slot lag 2048 bytes, heartbeat lag 0.00 s (newest heartbeat in ClickHouse 2.0 s old), "
        "slot active=False, wal_status=reserved"
    )
    [obs] = observations(first)
    assert obs.asset_key == REPLICA_DB_KEY
    assert obs.metadata["lag_bytes"].value == 2048 and obs.metadata["confirmed_flush_lsn"].value == "0/10"
    assert obs.metadata["source"].value == "cdc_replication_lag sensor"
    # The first tick has no verdict to compare with: it records one.
    [check] = checks(first)
    assert check.check_name == "replication_lag" and check.passed and check.description == "within thresholds"

    # The slot moved: the new LSN is carried, the figures are this tick's, no check result again.
    assert json.loads(second.cursor) == {
        "lsn": "0/20",
        "stalled_ticks": 0,
        "flagged": False,
        "measured_at_ms": second_reading.measured_at_ms,
    }
    assert skip_text(second).startswith("OK: slot lag 512 bytes, heartbeat lag 0.00 s")
    assert len(observations(second)) == 1 and not checks(second)


def test_lag_stalled_after_configured_ticks_then_recovery_resets(lag_ticks) -> None:
    still = [reading(i, "0/10") for i in range(5)]  # WAL waiting, confirmed LSN standing still
    moved = reading(5, "0/30")
    results = [res for _, res in lag_ticks([*still, moved], stalled_after_ticks=3)]
    cursors = [json.loads(res.cursor) for res in results]

    assert [(c["stalled_ticks"], c["flagged"]) for c in cursors] == [
        (0, False),  # first tick: nothing to compare the LSN with
        (1, False),
        (2, False),
        (3, True),  # the configured 3 ticks
        (4, True),
        (0, False),  # the LSN moved
    ]
    assert all(c["lsn"] == "0/10" for c in cursors[:5]) and cursors[5]["lsn"] == "0/30"

    assert all(skip_text(r).startswith("OK: slot lag 2048 bytes") for r in results[:3])
    assert not checks(results[1]) and not checks(results[2])
    stalled = "slot inactive: confirmed LSN 0/10 unchanged for 3 ticks"
    assert skip_text(results[3]).startswith(f"FLAGGED: {stalled} | slot lag 2048 bytes")
    [failed] = checks(results[3])
    assert not failed.passed and failed.description == stalled
    assert failed.metadata["lag_bytes"].value == 2048

    # Still stalled: the count goes on, no second failing check result.
    assert "unchanged for 4 ticks" in skip_text(results[4]) and not checks(results[4])

    # Recovery: OK again and one passing check result.
    assert skip_text(results[5]).startswith("OK: slot lag 2048 bytes")
    [recovered] = checks(results[5])
    assert recovered.passed and recovered.description == "within thresholds"
    assert all(len(observations(r)) == 1 for r in results)  # an observation every tick


def test_lag_no_waiting_wal_is_never_stalled(lag_ticks) -> None:
    results = [res for _, res in lag_ticks([reading(i, "0/10", lag_bytes=0) for i in range(5)], stalled_after_ticks=2)]
    assert [json.loads(r.cursor)["stalled_ticks"] for r in results] == [0] * 5
    assert all(skip_text(r).startswith("OK: slot lag 0 bytes") for r in results)


def test_lag_thresholds_name_the_figures(lag_ticks) -> None:
    behind = reading(1, "0/20", lag_bytes=5000, replica_heartbeat_ms=1_000_000 + TICK_MS - 90_000)
    [(_, ok), (_, flagged)] = lag_ticks([reading(0), behind], max_lag_bytes=1000, max_lag_seconds=60)
    assert json.loads(ok.cursor)["flagged"] is True  # 2048 bytes is already past 1000
    assert json.loads(flagged.cursor)["flagged"] is True
    assert skip_text(flagged) == (
        "FLAGGED: slot lag 5000 bytes > 1000; heartbeat lag 90.0 s > 60 s | slot lag 5000 bytes, "
        "heartbeat lag 90.00 s (newest heartbeat in ClickHouse 90.0 s old), slot active=False, wal_status=reserved"
    )
    assert not checks(flagged)  # flagged on both ticks: the verdict did not change


def test_lag_unreachable_source_keeps_the_last_lsn(lag_ticks) -> None:
    down = reading(
        1,
        lsn=None,
        lag_bytes=None,
        slot_active=None,
        wal_status=None,
        source_heartbeat_ms=None,
        errors=["source unreachable: connection refused"],
    )
    [(_, up), (_, result)] = lag_ticks([reading(0, "0/10"), down])
    assert json.loads(up.cursor)["flagged"] is False
    cursor = json.loads(result.cursor)
    assert cursor["lsn"] == "0/10" and cursor["flagged"] is True and cursor["stalled_ticks"] == 0
    assert skip_text(result) == (
        "FLAGGED: source unreachable: connection refused | slot lag n/a bytes, heartbeat lag n/a "
        "(newest heartbeat in ClickHouse 2.0 s old), slot active=None, wal_status=None"
    )
    [obs] = observations(result)
    assert "lag_bytes" not in obs.metadata  # unknown figures are left out, the reason is recorded
    assert obs.metadata["errors"].value == ["source unreachable: connection refused"]
    [check] = checks(result)
    assert not check.passed and check.description == "source unreachable: connection refused"


def state(table: str, source: list[str], replica: list[str] | None = None, rows: int | None = 10) -> TableState:
    return TableState(table, 10, rows, source, source if replica is None else replica)


IN_SYNC = {
    "users": state("users", ["id", "email"]),
    "orders": state("orders", ["id", "user_id", "amount_cents"]),
    "cdc_heartbeat": state("cdc_heartbeat", ["id", "beat_at"]),
}
USERS_DRIFT = {**IN_SYNC, "users": state("users", ["id", "email", "plan"], ["id", "email"])}
USERS_MESSAGE = "users: column(s) ['plan'] on the source only"


@pytest.fixture
def drift_tick(monkeypatch: pytest.MonkeyPatch) -> Callable[..., SensorResult]:
    """One drift-sensor tick over the given table states (or the exception table_states raises)."""
    monkeypatch.setenv("CDC_TABLES", "users,orders")
    res = resources()

    def tick(states: dict[str, TableState] | Exception, cursor: str | None) -> SensorResult:
        def fake_table_states(postgres, clickhouse, database, tables, context=None):
            assert database == "pg_repl" and tables == ["users", "orders", "cdc_heartbeat"]
            if isinstance(states, Exception):
                raise states
            return states

        monkeypatch.setattr(sensors, "table_states", fake_table_states)
        result = sensors.cdc_schema_drift_sensor(build_sensor_context(cursor=cursor, resources=res))
        assert isinstance(result, SensorResult)
        return result

    return tick


def test_drift_requests_one_repair_per_drift(drift_tick) -> None:
    clean = drift_tick(IN_SYNC, None)
    assert skip_text(clean) == "no drift in 3 tables" and clean.cursor is None

    first = drift_tick(USERS_DRIFT, clean.cursor)
    [run] = first.run_requests
    assert isinstance(run, RunRequest)
    assert first.cursor and run.run_key == f"drift-{first.cursor}"
    assert run.run_config == {"ops": {"repair_drifted_tables": {"config": {"tables": ["users"]}}}}
    assert run.tags["platform/drift"] == USERS_MESSAGE

    # The next tick sees the same drift (the repair has not run yet): no second run.
    again = drift_tick(USERS_DRIFT, first.cursor)
    assert skip_text(again) == f"repair already requested for: {USERS_MESSAGE}"
    assert again.cursor is None  # the cursor is left as it is
    assert skip_text(drift_tick(USERS_DRIFT, first.cursor)) == f"repair already requested for: {USERS_MESSAGE}"

    # A different drift is a new signature: a new run with its own run key.
    wider = {**USERS_DRIFT, "orders": state("orders", ["id", "user_id"], None, rows=None)}
    second = drift_tick(wider, first.cursor)
    [run2] = second.run_requests
    assert second.cursor not in (None, first.cursor) and run2.run_key == f"drift-{second.cursor}"
    assert run2.run_config["ops"]["repair_drifted_tables"]["config"]["tables"] == ["orders", "users"]
    assert run2.tags["platform/drift"] == f"{USERS_MESSAGE}; orders: missing in the replica"

    # Repaired: no drift, and the cursor keeps the last drift requested.
    repaired = drift_tick(IN_SYNC, second.cursor)
    assert skip_text(repaired) == "no drift in 3 tables" and repaired.cursor == second.cursor


def test_drift_signature_is_stable_across_ticks(drift_tick) -> None:
    """The run key depends on the drift only, so a restarted sensor (no cursor) asks for the same
    run key and Dagster does not start the repair twice."""
    one = drift_tick(USERS_DRIFT, None)
    two = drift_tick(dict(reversed(USERS_DRIFT.items())), None)
    assert one.cursor == two.cursor and one.run_requests[0].run_key == two.run_requests[0].run_key


def test_drift_unreachable_server_is_a_skip_with_the_reason(drift_tick) -> None:
    result = drift_tick(ConnectionError("connection refused\nis the server running?"), "abc")
    assert skip_text(result) == "cannot compare schemas: connection refused"
    assert result.cursor is None  # the last requested drift stays in the cursor
