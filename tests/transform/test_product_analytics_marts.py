"""Product-analytics marts (feature adoption, session length, L7 retention, paths, country and
device breakdown) against the deterministic product history on the real servers.

The history is the one tests/transform/test_product_marts.py loads (same seed and window, so
both modules write identical rows and a reload replaces them), loaded here with its late client
events held back: the first build must give the record without them, and a rebuild after they
land must give the full record, row for row.
"""

from __future__ import annotations

import os
from datetime import UTC, date, datetime, timedelta
from typing import Any

import pytest

from platform_assets.synthetic.history_product import (
    DEVICE_TYPES,
    UNKNOWN,
    ProductHistory,
    _Builder,
    load_late_events,
    load_product_history,
    monday,
)

pytestmark = pytest.mark.integration

SEED = 20_240_611  # as in test_product_marts.py
MODELS = [
    "mart_feature_adoption_weekly",
    "mart_session_length_daily",
    "mart_retention_l7_daily",
    "mart_paths_daily",
    "mart_breakdown_daily",
]
SELECT = ["--select", *(f"+{m}" for m in MODELS)]
# mart -> number of leading key columns
KEY_COLUMNS = {
    "mart_feature_adoption_weekly": 3,
    "mart_session_length_daily": 3,
    "mart_retention_l7_daily": 1,
    "mart_paths_daily": 4,
    "mart_breakdown_daily": 4,
}


def expected(hist: ProductHistory, today: date) -> dict[str, dict[Any, tuple]]:
    """Each mart's rows as the record computes them: key -> the other columns."""
    return {
        "mart_feature_adoption_weekly": hist.feature_adoption(),
        "mart_session_length_daily": hist.session_length(),
        "mart_retention_l7_daily": hist.retention_l7(today),
        "mart_paths_daily": hist.paths(),
        "mart_breakdown_daily": hist.breakdown(),
    }


def rows(clickhouse, sql: str, **params: Any) -> list[tuple]:
    with clickhouse.client() as ch:
        return [tuple(r) for r in ch.query(sql, parameters=params).result_rows]


def snapshot(clickhouse, hist: ProductHistory) -> dict[str, dict[Any, tuple]]:
    """Every row of the new marts for the history's days (cohorts: the history's cohorts),
    keyed as the record keys them."""
    p = {"lo": hist.start, "hi": hist.end}
    day = "day BETWEEN {lo:Date} AND {hi:Date}"
    weeks = sorted({monday(t.date()) for t in hist.signed_up_at.values()})
    signup_days = sorted({t.date() for t in hist.signed_up_at.values()})
    got = {
        "mart_feature_adoption_weekly": rows(
            clickhouse,
            "SELECT * FROM marts.mart_feature_adoption_weekly WHERE has({w:Array(Date)}, cohort_week)",
            w=weeks,
        ),
        "mart_session_length_daily": rows(
            clickhouse, f"SELECT * FROM marts.mart_session_length_daily WHERE {day}", **p
        ),
        "mart_retention_l7_daily": rows(
            clickhouse,
            "SELECT * FROM marts.mart_retention_l7_daily WHERE has({d:Array(Date)}, signup_date)",
            d=signup_days,
        ),
        "mart_paths_daily": rows(clickhouse, f"SELECT * FROM marts.mart_paths_daily WHERE {day}", **p),
        "mart_breakdown_daily": rows(clickhouse, f"SELECT * FROM marts.mart_breakdown_daily WHERE {day}", **p),
    }
    out: dict[str, dict[Any, tuple]] = {}
    for name, found in got.items():
        n = KEY_COLUMNS[name]
        keyed = {(r[0] if n == 1 else r[:n]): r[n:] for r in found}
        assert len(keyed) == len(found), name  # one row per key
        out[name] = keyed
    return out


def assert_mart(name: str, got: dict[Any, tuple], want: dict[Any, tuple]) -> None:
    """Row for row: the same keys, the same counts, floats to 1e-9."""
    missing, extra = sorted(set(want) - set(got))[:5], sorted(set(got) - set(want))[:5]
    assert not missing and not extra, (name, "missing", missing, "extra", extra)
    for key, values in want.items():
        approx = tuple(pytest.approx(v, rel=1e-9) if isinstance(v, float) else v for v in values)
        assert got[key] == approx, (name, key, got[key], values)


def today() -> date:
    return datetime.now(UTC).date()


@pytest.fixture(scope="module")
def history(platform_ready, clickhouse, postgres, dbt, history_window, replica_caught_up, dbt_window) -> ProductHistory:
    start, end = history_window
    hist = load_product_history(
        clickhouse, postgres, start, (end - start).days + 1, SEED, os.environ["USER_HASH_KEY"], hold_late=True
    )
    replica_caught_up()
    dbt("build", *SELECT, vars=dbt_window(start, end))
    return hist


@pytest.fixture(scope="module")
def first_build(history, clickhouse) -> dict[str, dict[Any, tuple]]:
    """The marts before the late events land."""
    return snapshot(clickhouse, history)


@pytest.fixture(scope="module")
def corrected(history, first_build, clickhouse, dbt, dbt_window) -> dict[str, dict[Any, tuple]]:
    """The late events land in raw after the first build; a rebuild of the window takes them in."""
    load_late_events(clickhouse, history)
    dbt("build", *SELECT, vars=dbt_window(history.start, history.end))
    return snapshot(clickhouse, history)


def test_record_is_deterministic() -> None:
    """No servers: the same seed draws the same history and the same answers of every new mart."""
    a = _Builder(date(2026, 1, 5), 35, SEED, "k").build()
    b = _Builder(date(2026, 1, 5), 35, SEED, "k").build()
    assert a == b and a.late_rows == b.late_rows
    assert expected(a, date(2026, 3, 1)) == expected(b, date(2026, 3, 1))
    assert expected(a.on_time(), date(2026, 3, 1)) == expected(b.on_time(), date(2026, 3, 1))
    other = _Builder(date(2026, 1, 5), 35, SEED + 1, "k").build()
    assert other != a and expected(other, date(2026, 3, 1)) != expected(a, date(2026, 3, 1))
    # 2026-01-05 .. 2026-02-08: the cohort week of Monday 2026-01-26 runs into February
    assert a.crossing_week == date(2026, 1, 26)


def test_history_exercises_the_new_marts(history: ProductHistory) -> None:
    hist = history
    # late events: on some days only, client side, and they change what the daily marts show
    late = [e for e in hist.events if e.event_id in hist.late_event_ids]
    assert late and all(e.session_id and e.user_hash for e in late)
    assert {e.occurred_at.date() for e in late} < set(hist.day_list())
    on_time = expected(hist.on_time(), today())
    full = expected(hist, today())
    for name in ("mart_session_length_daily", "mart_paths_daily", "mart_breakdown_daily"):
        assert on_time[name] != full[name], name
    assert hist.duplicate_rows > 0
    # a signup cohort week across a month end, whenever the window's signup days hold one
    signup_days = hist.day_list()[: hist.days - 9]
    crossing = [d for d in signup_days if monday(d).month != (monday(d) + timedelta(days=6)).month]
    if crossing:
        week = hist.crossing_week
        assert week == monday(crossing[0])
        assert sum(1 for t in hist.signed_up_at.values() if monday(t.date()) == week) >= 10
        assert any(k[0] == week for k in full["mart_feature_adoption_weekly"])
    else:  # e.g. a window of May 2026: May ends on a Sunday, no week crosses it
        assert hist.crossing_week is None
    # every device type sent, empty and absent ones included; countries and 'unknown'
    devices = {e.device_type for e in hist.events}
    assert devices == {d or "" for d in DEVICE_TYPES}
    breakdown = full["mart_breakdown_daily"]
    assert {k[3] for k in breakdown} == {"desktop", "mobile", "tablet", UNKNOWN}
    assert {"DE", "US", "FR", "BR", UNKNOWN} == {k[2] for k in breakdown}
    assert all(v[3] for v in full["mart_retention_l7_daily"].values())  # history cohorts are all complete
    assert not all(v[3] for v in hist.retention_l7(hist.start + timedelta(days=5)).values())


def test_first_build_lacks_the_late_events(history, first_build, clickhouse) -> None:
    """Before the late events land, every new mart is the record without them."""
    want = expected(history.on_time(), today())
    for name in MODELS:
        assert_mart(name, first_build[name], want[name])
    n = rows(
        clickhouse,
        "SELECT count() FROM marts.fct_product_events WHERE has({ids:Array(UUID)}, event_id)",
        ids=sorted(history.late_event_ids),
    )
    assert n == [(0,)]


@pytest.mark.parametrize("name", MODELS)
def test_mart_equals_the_record(history, corrected, name: str) -> None:
    """After the late events land and the window is rebuilt: the full record, row for row."""
    assert_mart(name, corrected[name], expected(history, today())[name])


def test_session_length_buckets(corrected) -> None:
    got = corrected["mart_session_length_daily"]
    bounds = {(k[2], v[0], v[1], v[2]) for k, v in got.items()}
    assert bounds == {
        (1, "0-10s", 0, 10), (2, "10-30s", 10, 30), (3, "30-60s", 30, 60), (4, "1-3m", 60, 180),
        (5, "3-10m", 180, 600), (6, "10-30m", 600, 1800), (7, "30-60m", 1800, 3600), (8, "60m+", 3600, None),
    }  # fmt: skip
    days: dict[tuple[date, str], float] = {}
    for (day, ws, _), v in got.items():
        days[(day, ws)] = days.get((day, ws), 0.0) + v[4]
    assert all(s == pytest.approx(1.0) for s in days.values())


def test_rerun_gives_identical_rows(history, corrected, clickhouse, dbt, dbt_window) -> None:
    dbt("run", *SELECT, vars=dbt_window(history.start, history.end))
    assert snapshot(clickhouse, history) == corrected


def test_tables_have_the_contract_columns(corrected, clickhouse) -> None:
    """The marts' tables have the contract's columns, in order (as DESCRIBE shows them)."""
    want: dict[str, list[str]] = {
        "mart_feature_adoption_weekly": [
            "cohort_week Date", "workspace_id String", "feature String", "cohort_users UInt64", "adopters UInt64",
            "adoption_rate Float64",
        ],
        "mart_session_length_daily": [
            "day Date", "workspace_id String", "bucket UInt8", "bucket_label String", "lower_bound_s UInt32",
            "upper_bound_s Nullable(UInt32)", "sessions UInt64", "share Float64",
        ],
        "mart_retention_l7_daily": [
            "signup_date Date", "cohort_users UInt64", "retained_users UInt64", "retention_rate Float64",
            "is_complete Bool",
        ],
        "mart_paths_daily": [
            "day Date", "workspace_id String", "step String", "next_step String", "transitions UInt64", "users UInt64",
        ],
        "mart_breakdown_daily": [
            "day Date", "workspace_id String", "country String", "device_type String", "events UInt64",
            "active_users UInt64", "client_sessions UInt64",
        ],
    }  # fmt: skip
    for table, columns in want.items():
        assert [f"{r[0]} {r[1]}" for r in rows(clickhouse, f"DESCRIBE marts.{table}")] == columns, table
