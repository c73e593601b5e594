"""Product-analytics and CDC marts against a deterministic history on the real servers.

The history (platform_assets.synthetic.history_product) is written into Postgres (through the
CDC replica) and raw.product_events; its record computes the expected marts in plain Python.
"""

from __future__ import annotations

import json
import os
import uuid
from datetime import UTC, date, datetime, timedelta
from typing import Any

import pytest

from platform_assets.synthetic.history_product import (
    SESSION_PREFIX,
    Event,
    ProductHistory,
    _Builder,
    load_product_history,
    monday,
    percentile,
)
from platform_assets.synthetic.raw_columns import PRODUCT_EVENT_COLUMNS

pytestmark = pytest.mark.integration

SEED = 20_240_611
MODELS = [
    "fct_sessions",
    "mart_active_users_daily",
    "mart_signup_funnel_daily",
    "mart_retention_weekly",
    "mart_orders_daily",
    "mart_mrr_daily",
]
SELECT = ["--select", *(f"+{m}" for m in MODELS)]


def approx(x: float | None) -> Any:
    return None if x is None else pytest.approx(x, rel=1e-9)


@pytest.fixture(scope="module")
def history(platform_ready, clickhouse, postgres, dbt, history_window, replica_caught_up, dbt_window) -> ProductHistory:
    start, end = history_window
    hist = load_product_history(clickhouse, postgres, start, (end - start).days + 1, SEED, os.environ["USER_HASH_KEY"])
    replica_caught_up()
    dbt("build", *SELECT, vars=dbt_window(start, end))
    return hist


def rows(clickhouse, sql: str, **params: Any) -> list[tuple]:
    with clickhouse.client() as ch:
        return [tuple(r) for r in ch.query(sql, parameters=params).result_rows]


def snapshot(clickhouse, hist: ProductHistory) -> dict[str, list[tuple]]:
    """Every mart row of the history's days (retention: the history's cohorts), sorted."""
    p = {"lo": hist.start, "hi": hist.end}
    day = "BETWEEN {lo:Date} AND {hi:Date}"
    cohorts = sorted({monday(t.date()) for t in hist.signed_up_at.values()})
    return {
        "fct_product_events": rows(
            clickhouse, f"SELECT * FROM marts.fct_product_events WHERE event_date {day} ORDER BY ALL", **p
        ),
        "fct_sessions": rows(
            clickhouse, f"SELECT * FROM marts.fct_sessions WHERE session_date {day} ORDER BY ALL", **p
        ),
        "mart_active_users_daily": rows(
            clickhouse, f"SELECT * FROM marts.mart_active_users_daily WHERE day {day} ORDER BY ALL", **p
        ),
        "mart_signup_funnel_daily": rows(
            clickhouse, f"SELECT * FROM marts.mart_signup_funnel_daily WHERE day {day} ORDER BY ALL", **p
        ),
        "mart_retention_weekly": rows(
            clickhouse,
            "SELECT * FROM marts.mart_retention_weekly WHERE has({c:Array(Date)}, cohort_week) ORDER BY ALL",
            c=cohorts,
        ),
        "mart_orders_daily": rows(
            clickhouse, f"SELECT * FROM marts.mart_orders_daily WHERE day {day} ORDER BY ALL", **p
        ),
        "mart_mrr_daily": rows(clickhouse, f"SELECT * FROM marts.mart_mrr_daily WHERE day {day} ORDER BY ALL", **p),
    }


@pytest.fixture(scope="module")
def first_build(history, clickhouse) -> dict[str, list[tuple]]:
    return snapshot(clickhouse, history)


def test_record_is_deterministic_and_percentiles_match_numpy() -> None:
    """No servers: the same seed draws the same history; the median is numpy's."""
    a = _Builder(date(2026, 1, 5), 35, SEED, "k").build()
    b = _Builder(date(2026, 1, 5), 35, SEED, "k").build()
    assert a == b and a.funnel() == b.funnel()
    assert a != _Builder(date(2026, 1, 5), 35, SEED + 1, "k").build()
    assert percentile([4.0, 1.0, 3.0, 2.0], 0.5) == 2.5 and percentile([10.0, 30.0, 20.0], 0.95) == 29.0
    np = pytest.importorskip("numpy")
    rng = np.random.default_rng(1)
    for n in (1, 2, 3, 10, 101):
        xs = [float(x) for x in rng.integers(0, 10_000, n)]
        for q in (0.5, 0.95, 0.99):
            assert percentile(xs, q) == pytest.approx(float(np.percentile(xs, q * 100)), rel=1e-12)


def test_history_is_meaningful(history: ProductHistory) -> None:
    """The generator exercises what the marts must handle."""
    assert history.duplicate_rows > 0 and history.anonymous_events > 0 and history.server_events > 0
    gaps = sorted(
        (b.occurred_at - a.occurred_at).total_seconds()
        for a, b in zip(history.events, history.events[1:], strict=False)
        if a.user_hash and a.user_hash == b.user_hash and a.workspace_id == b.workspace_id
    )
    assert 1800 in gaps and any(1800 < g < 7200 for g in gaps) and any(1000 < g < 1800 for g in gaps)
    assert any(o.refunded_at for o in history.orders) and any(s.cancelled_at for s in history.subscriptions)
    assert any(f[2] is not None and f[2] < 1 for f in history.funnel().values())
    sessions = history.sessions()
    assert any(s.end.date() > s.start.date() for s in sessions)  # past midnight
    assert not any(s.end.date() > s.start.date() + timedelta(days=1) for s in sessions)
    # the poller's run is cut at the end of the day after it began: its last day is in no session
    cut = [s for s in sessions if (s.end - s.start).total_seconds() > 86400]
    assert cut and all(s.end.date() == s.start.date() + timedelta(days=1) for s in cut)


def test_product_events_are_deduplicated(history, first_build, clickhouse) -> None:
    n = rows(
        clickhouse,
        "SELECT count(), uniqExact(event_id) FROM marts.fct_product_events "
        "WHERE event_date BETWEEN {lo:Date} AND {hi:Date}",
        lo=history.start,
        hi=history.end,
    )[0]
    assert n == (len(history.events), len(history.events))


def test_active_users(history, first_build) -> None:
    got = {(r[0], r[1]): r[2:] for r in first_build["mart_active_users_daily"]}
    want = history.active_users()
    assert set(got) == set(want)
    for key, (dau, wau, mau, stickiness) in want.items():
        assert got[key][:3] == (dau, wau, mau), key
        assert got[key][3] == approx(stickiness), key
    # every history day has its cross-workspace row, and it is not a sum over workspaces
    assert {d for d, ws in got if ws == "__all__"} == set(history.day_list())


def test_signup_funnel(history, first_build) -> None:
    got = {(r[0], r[1]): r[2:] for r in first_build["mart_signup_funnel_daily"]}
    want = history.funnel()
    assert set(got) == set(want)
    for key, (name, users, conv_prev, conv_first, median) in want.items():
        g_name, g_users, g_prev, g_first, g_median = got[key]
        assert (g_name, g_users) == (name, users), key
        assert g_prev == approx(conv_prev) and g_first == approx(conv_first), key
        assert g_median == approx(median), key


def test_retention(history, first_build) -> None:
    last_week = monday(history.end)
    got = {(r[0], r[1]): (r[3], r[4], r[5]) for r in first_build["mart_retention_weekly"] if r[2] <= last_week}
    want = history.retention()
    assert set(got) == set(want)
    for key, (size, retained, rate) in want.items():
        assert got[key][:2] == (size, retained), key
        assert got[key][2] == approx(rate), key


def test_sessions(history, first_build, clickhouse) -> None:
    got = rows(
        clickhouse,
        "SELECT workspace_id, user_hash, toUnixTimestamp64Milli(session_start), toUnixTimestamp64Milli(session_end), "
        "events, duration_s, session_date FROM marts.fct_sessions WHERE session_date BETWEEN {lo:Date} AND {hi:Date}",
        lo=history.start,
        hi=history.end,
    )
    want = {
        (s.workspace_id, s.user_hash, int(s.start.timestamp() * 1000), int(s.end.timestamp() * 1000), s.events)
        for s in history.sessions()
    }
    assert len(got) == len(want)
    assert {r[:5] for r in got} == want
    assert all(r[5] == (r[3] - r[2]) / 1000 for r in got)
    per_day: dict[date, int] = {}
    for r in got:
        per_day[r[6]] = per_day.get(r[6], 0) + 1
    assert per_day == history.sessions_per_day()
    ids = rows(clickhouse, "SELECT count(), uniqExact(session_id) FROM marts.fct_sessions")[0]
    assert ids[0] == ids[1]


def test_orders(history, first_build) -> None:
    got = {r[0]: r[1:] for r in first_build["mart_orders_daily"]}
    want = history.orders_daily()
    assert set(want) <= set(got)
    # Rows start at the first order's day in the whole table: orders other modules wrote on
    # earlier days make the window's earlier days appear too, with zeros only.
    assert all(not any(got[d]) for d in set(got) - set(want)), sorted(set(got) - set(want))
    for day, (orders, revenue, refunds, net) in want.items():
        assert got[day][0] == orders, day
        assert got[day][1:] == (approx(revenue), approx(refunds), approx(net)), day


def test_mrr(history, first_build) -> None:
    got = {r[0]: r[1:] for r in first_build["mart_mrr_daily"]}
    want = history.mrr_daily()
    assert set(want) <= set(got)
    assert all(not any(got[d]) for d in set(got) - set(want)), sorted(set(got) - set(want))  # see test_orders
    for day, (mrr, active, new, churned) in want.items():
        assert got[day][0] == approx(mrr), day
        assert got[day][1:] == (active, new, churned), day


def test_rerun_gives_identical_rows(history, first_build, clickhouse, dbt, dbt_window) -> None:
    dbt("run", *SELECT, vars=dbt_window(history.start, history.end))
    assert snapshot(clickhouse, history) == first_build


def test_duplicate_event_changes_no_mart(history, first_build, clickhouse, dbt, dbt_window) -> None:
    """Kafka redelivery: a copy of an existing raw row; the day's re-run gives the same marts."""
    day = history.end
    with clickhouse.client() as ch:
        ch.command(
            "INSERT INTO raw.product_events SELECT * FROM raw.product_events "
            f"WHERE startsWith(session_id, '{SESSION_PREFIX}') AND toDate(occurred_at) = {{d:Date}} "
            "AND actor_id != '' ORDER BY event_id LIMIT 1",
            parameters={"d": day},
        )
    dbt("run", *SELECT, vars=dbt_window(day, day))
    assert snapshot(clickhouse, history) == first_build


def _quiet_slot(history: ProductHistory, day: date) -> tuple[str, str, datetime]:
    """A (workspace, user, time) on `day` of a user active that day in that workspace, more
    than 30 minutes from any of their events there: a late event there is a session of its
    own and changes no active-user, funnel or retention figure."""
    by_actor: dict[tuple[str, str], list[datetime]] = {}
    for e in history.events:
        if e.user_hash and e.workspace_id.startswith("ws_"):
            by_actor.setdefault((e.workspace_id, e.user_hash), []).append(e.occurred_at)
    for (ws, uh), times in sorted(by_actor.items()):
        if not any(t.date() == day for t in times):
            continue
        base = datetime(day.year, day.month, day.day, tzinfo=UTC)
        for minute in range(60, 23 * 60, 7):
            t = base + timedelta(minutes=minute)
            if all(abs((t - x).total_seconds()) > 2 * 1800 for x in times):
                return ws, uh, t
    raise AssertionError("no quiet slot")


def test_late_event_appears_after_its_day_is_rerun(history, first_build, clickhouse, dbt, dbt_window) -> None:
    day = history.start + timedelta(days=10)
    ws, uh, t = _quiet_slot(history, day)
    event_id = str(uuid.UUID(int=SEED, version=4))
    row = [
        uuid.UUID(event_id), "feature_used", t, ws, f"{SESSION_PREFIX}late", uh, "web", "{}",
        json.dumps({"feature": "export"}), 0, 0, datetime.now(UTC),
    ]  # fmt: skip
    with clickhouse.client() as ch:
        ch.insert("raw.product_events", [row], column_names=PRODUCT_EVENT_COLUMNS)
    sessions_sql = "SELECT count() FROM marts.fct_sessions WHERE session_date = {d:Date}"
    event_sql = "SELECT count() FROM marts.fct_product_events WHERE event_id = {e:UUID}"
    # Not before: a run of the next day (which reads this day as its look-back) leaves the
    # finished day's partitions as its last run computed them, and every mart unchanged.
    dbt("run", *SELECT, vars=dbt_window(day + timedelta(days=1), day + timedelta(days=1)))
    assert rows(clickhouse, event_sql, e=event_id) == [(0,)]
    assert rows(clickhouse, sessions_sql, d=day) == [(history.sessions_per_day()[day],)]
    assert snapshot(clickhouse, history) == first_build

    dbt("run", *SELECT, vars=dbt_window(day, day))
    history.events.append(Event(event_id, ws, uh, "feature_used", t))  # the record follows the data
    assert rows(clickhouse, event_sql, e=event_id) == [(1,)]
    assert rows(clickhouse, sessions_sql, d=day) == [(history.sessions_per_day()[day],)]
    assert rows(
        clickhouse,
        "SELECT events, duration_s FROM marts.fct_sessions WHERE user_hash = {u:String} AND workspace_id = {w:String} "
        "AND session_start = {t:DateTime64(3, 'UTC')}",
        u=uh,
        w=ws,
        t=t,
    ) == [(1, 0.0)]
    after = snapshot(clickhouse, history)
    # Only the day's sessions (and its events) changed: user counts, funnel, retention, money did not.
    for name, before_rows in first_build.items():
        if name not in ("fct_sessions", "fct_product_events"):
            assert after[name] == before_rows, name
