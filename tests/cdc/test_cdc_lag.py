"""Lag arithmetic and CDC configuration, without servers."""

from __future__ import annotations

import pytest

from platform_assets.cdc.lag import LagReading, LagThresholds, evaluate, parity_tolerance
from platform_assets.cdc.resources import CdcConfigError, configured_tables

pytestmark = pytest.mark.unit

T = LagThresholds(max_lag_bytes=1000, max_lag_seconds=10, stalled_after_ticks=3)


def reading(**kw) -> LagReading:
    base = dict(measured_at_ms=100_000, lag_bytes=0, confirmed_flush_lsn="0/10", source_heartbeat_ms=99_000)
    base.update(kw)
    return LagReading(**base)


def test_caught_up_replica_has_zero_lag_seconds_and_passes():
    r = reading(replica_heartbeat_ms=99_000)
    assert r.lag_seconds == 0.0 and r.heartbeat_age_s == 1.0
    assert not evaluate(r, "0/10", 0, T).flagged


def test_behind_replica_reports_age_of_its_newest_heartbeat():
    r = reading(replica_heartbeat_ms=70_000, lag_bytes=5000)
    assert r.lag_seconds == 30.0
    verdict = evaluate(r, "0/9", 0, T)
    assert verdict.flagged
    assert "slot lag 5000 bytes > 1000" in verdict.reasons
    assert "heartbeat lag 30.0 s > 10 s" in verdict.reasons


def test_slot_standing_still_with_wal_waiting_is_flagged_after_n_ticks():
    r = reading(replica_heartbeat_ms=99_000, lag_bytes=10)
    ticks = 0
    for expected in (1, 2):
        v = evaluate(r, "0/10", ticks, T)
        assert not v.flagged and v.stalled_ticks == expected
        ticks = v.stalled_ticks
    v = evaluate(r, "0/10", ticks, T)
    assert v.flagged and "slot inactive: confirmed LSN 0/10 unchanged for 3 ticks" in v.reasons
    # Progress resets the count.
    assert evaluate(reading(lag_bytes=10, confirmed_flush_lsn="0/11"), "0/10", 5, T).stalled_ticks == 0


def test_unreachable_servers_are_reasons_not_crashes():
    r = reading(lag_bytes=None, source_heartbeat_ms=None, errors=["source unreachable: refused"])
    v = evaluate(r, None, 0, T)
    assert v.flagged and v.reasons == ["source unreachable: refused"]
    assert r.lag_seconds is None


def test_parity_tolerance_scales_with_lag():
    assert parity_tolerance(None, 2000) == 0
    assert parity_tolerance(0.0, 2000) == 2000
    assert parity_tolerance(1.5, 100, floor=10) == 250


def test_configured_tables_validate_and_add_heartbeat():
    assert configured_tables("users, orders") == ["users", "orders", "cdc_heartbeat"]
    with pytest.raises(CdcConfigError, match="Users;drop"):
        configured_tables("Users;drop")
    with pytest.raises(CdcConfigError, match="empty"):
        configured_tables(" , ")
