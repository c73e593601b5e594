"""A daily model's window is replaced atomically per day (macros/replace_window.sql).

The module writes llm_call agent events of its own workspace on its own days (today-63 ..
today-60: no other test writes or builds them; raw TTL 90 days) and builds
stg_kafka__agent_events and mart_llm_daily over them. Every test reads its figures back from
ClickHouse before and after a dbt run of the same window.
"""

from __future__ import annotations

import threading
import time
import uuid
from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta
from typing import Any

import pytest

pytestmark = pytest.mark.integration

TODAY = datetime.now(UTC).date()
DAYS = [TODAY - timedelta(days=n) for n in (63, 62, 61, 60)]
BIG_DAY = DAYS[1]  # the day the reader polls: enough rows that building it takes a while
ROWS = {day: 300_000 if day == BIG_DAY else 2_000 for day in DAYS}
MODELS = ["stg_kafka__agent_events", "mart_llm_daily"]
TABLES = {"staging.stg_kafka__agent_events": "event_date", "marts.mart_llm_daily": "day"}
GROUPS = 40  # model (8) x provider (5) combinations per day, so mart rows per day

# Server-side generator of one day's llm_call events: GROUPS (model, provider) pairs, latencies,
# tokens and cost from the row number, so each mart row aggregates many events.
GENERATE = """
INSERT INTO raw.agent_events (event_id, event_type, occurred_at, workspace_id, session_id, actor_id,
    source, context, model, provider, input_tokens, output_tokens, prompt_hash, latency_ms, success,
    error_type, tool_name, status, unit_cost_input, unit_cost_output, cost_usd, kafka_partition,
    kafka_offset)
SELECT generateUUIDv4(number), 'llm_call',
    toDateTime64({day:String}, 3, 'UTC') + toIntervalMillisecond(intDiv(number * 86399999, {n:UInt64})),
    {ws:String}, concat('s', toString(number % 100)), '', 'sdk', '{"agent": "atomic"}',
    concat('model-', toString(number % 8)), concat('provider-', toString(number % 5)),
    number % 1000, number % 500, '', (number % 977) * 1.5, number % 10 != 0, '', '', 'ok',
    1e-6, 2e-6, (number % 1000) * 1e-6 + (number % 500) * 2e-6, 0, number
FROM numbers({n:UInt64})
"""


@pytest.fixture(scope="module")
def workspace(platform_ready, clickhouse, dbt, dbt_window) -> Iterator[str]:
    """The module's events on DAYS, built once by dbt over the whole window."""
    ws = f"ws_atomic_{uuid.uuid4().hex[:8]}"
    with clickhouse.client() as ch:
        for day in DAYS:
            ch.command(GENERATE, parameters={"day": day.isoformat(), "ws": ws, "n": ROWS[day]})
    dbt("run", "--select", *MODELS, vars=dbt_window(DAYS[0], DAYS[-1]))
    yield ws
    with clickhouse.client() as ch:
        for table in ["raw.agent_events", *TABLES]:
            ch.command(f"ALTER TABLE {table} DELETE WHERE workspace_id = '{ws}' SETTINGS mutations_sync = 2")
        for table in TABLES:
            ch.command(f"DROP TABLE IF EXISTS {table}__window")


def day_rows(ch: Any, table: str, ws: str, day: date) -> int:
    sql = f"SELECT count() FROM {table} WHERE workspace_id = {{ws:String}} AND {TABLES[table]} = {{d:Date}}"
    return int(ch.command(sql, parameters={"ws": ws, "d": day}))


def checksums(ch: Any, ws: str) -> dict[str, dict[date, tuple[int, int]]]:
    """table -> day -> (rows, sum of the rows' cityHash64): equal only for the same rows, bit for bit."""
    out: dict[str, dict[date, tuple[int, int]]] = {}
    for table, col in TABLES.items():
        rows = ch.query(
            f"SELECT {col}, count(), sum(cityHash64(*)) FROM {table} WHERE workspace_id = {{ws:String}} GROUP BY 1",
            parameters={"ws": ws},
        ).result_rows
        out[table] = {d: (int(n), int(h)) for d, n, h in rows}
    return out


def mart_rows(ch: Any, ws: str) -> list[tuple]:
    sql = "SELECT * FROM marts.mart_llm_daily WHERE workspace_id = {ws:String} ORDER BY ALL"
    return [tuple(r) for r in ch.query(sql, parameters={"ws": ws}).result_rows]


def active_parts(ch: Any, table: str, day: date) -> list[str]:
    db, name = table.split(".")
    return [
        r[0]
        for r in ch.query(
            "SELECT name FROM system.parts WHERE database = {db:String} AND table = {t:String} AND active "
            "AND partition_id = {p:String} ORDER BY name",
            parameters={"db": db, "t": name, "p": day.strftime("%Y%m%d")},
        ).result_rows
    ]


def window_tables(ch: Any) -> list[str]:
    sql = (
        "SELECT database || '.' || name FROM system.tables "
        "WHERE database IN ('staging', 'marts') AND endsWith(name, '__window') ORDER BY 1"
    )
    return [r[0] for r in ch.query(sql).result_rows]


def test_readers_never_see_the_day_empty_while_it_is_rebuilt(workspace, clickhouse, dbt, dbt_window):
    with clickhouse.client() as ch:
        before = {t: day_rows(ch, t, workspace, BIG_DAY) for t in TABLES}
        parts_before = {t: active_parts(ch, t, BIG_DAY) for t in TABLES}
    assert before == {"staging.stg_kafka__agent_events": ROWS[BIG_DAY], "marts.mart_llm_daily": GROUPS}

    samples: dict[str, list[int]] = {t: [] for t in TABLES}
    stop = threading.Event()
    failures: list[Exception] = []

    def poll() -> None:
        try:
            with clickhouse.client() as reader:
                while not stop.is_set():
                    for table in TABLES:
                        samples[table].append(day_rows(reader, table, workspace, BIG_DAY))
                    time.sleep(0.02)
        except Exception as exc:  # noqa: BLE001 - any error of the reader fails the test below
            failures.append(exc)

    reader = threading.Thread(target=poll, daemon=True)
    reader.start()
    try:
        dbt("build", "--select", *MODELS, vars=dbt_window(BIG_DAY, BIG_DAY))
    finally:
        stop.set()
        reader.join(timeout=60)
    assert not failures, failures

    with clickhouse.client() as ch:
        after = {t: day_rows(ch, t, workspace, BIG_DAY) for t in TABLES}
        parts_after = {t: active_parts(ch, t, BIG_DAY) for t in TABLES}
        assert window_tables(ch) == []
    for table in TABLES:
        assert len(samples[table]) >= 10, (table, samples[table])
        assert min(samples[table]) == before[table], (table, sorted(set(samples[table])))
        assert max(samples[table]) == before[table], (table, sorted(set(samples[table])))
        assert set(parts_after[table]).isdisjoint(parts_before[table]), "the day was not rebuilt"
    assert after == before


def test_a_failed_build_leaves_the_window_as_it_was(workspace, clickhouse, dbt, dbt_window):
    bad_day = DAYS[2]
    with clickhouse.client() as ch:
        sums_before, rows_before = checksums(ch, workspace), mart_rows(ch, workspace)
        # A staged call whose cost does not fit Decimal128(18): mart_llm_daily's
        # sum(toDecimal128(cost_usd, 18)) raises DECIMAL_OVERFLOW while it fills its scratch table.
        # (Written into staging directly: raw.agent_events' rollup view would refuse it.)
        bad_id = uuid.uuid4()
        ch.command(
            "INSERT INTO staging.stg_kafka__agent_events "
            "(event_id, event_type, occurred_at, event_date, workspace_id, model, provider, cost_usd) "
            "SELECT {id:UUID}, 'llm_call', toDateTime64({d:String}, 3, 'UTC') + toIntervalHour(1), {d:Date}, "
            "{ws:String}, 'model-0', 'provider-0', 1e25",
            parameters={"id": bad_id, "d": bad_day.isoformat(), "ws": workspace},
        )
    try:
        failed = dbt("run", "--select", "mart_llm_daily", vars=dbt_window(DAYS[0], DAYS[-1]), check=False)
        assert failed.returncode != 0
        assert "DECIMAL_OVERFLOW" in failed.stdout, failed.stdout[-4000:]
        with clickhouse.client() as ch:
            # The window is untouched; the mart failed after its scratch table was created.
            assert checksums(ch, workspace)["marts.mart_llm_daily"] == sums_before["marts.mart_llm_daily"]
            assert mart_rows(ch, workspace) == rows_before
            assert window_tables(ch) == ["marts.mart_llm_daily__window"]
    finally:
        with clickhouse.client() as ch:
            ch.command(
                "ALTER TABLE staging.stg_kafka__agent_events DELETE WHERE event_id = {id:UUID} "
                "SETTINGS mutations_sync = 2",
                parameters={"id": bad_id},
            )
    # The next run succeeds, drops the leftover scratch table and gives the rows of before.
    dbt("run", "--select", "mart_llm_daily", vars=dbt_window(DAYS[0], DAYS[-1]))
    with clickhouse.client() as ch:
        assert window_tables(ch) == []
        assert checksums(ch, workspace) == sums_before
        assert mart_rows(ch, workspace) == rows_before


def test_a_day_whose_input_disappeared_ends_up_empty(workspace, clickhouse, dbt, dbt_window):
    gone = DAYS[3]
    with clickhouse.client() as ch:
        before = checksums(ch, workspace)
        assert all(before[t].get(gone) for t in TABLES), before
        assert all(active_parts(ch, t, gone) for t in TABLES)
        ch.command(
            "ALTER TABLE raw.agent_events DELETE WHERE workspace_id = {ws:String} AND toDate(occurred_at) = {d:Date} "
            "SETTINGS mutations_sync = 2",
            parameters={"ws": workspace, "d": gone},
        )
    dbt("run", "--select", *MODELS, vars=dbt_window(DAYS[0], DAYS[-1]))
    with clickhouse.client() as ch:
        after = checksums(ch, workspace)
        for table in TABLES:
            assert gone not in after[table], (table, after[table])
            assert {d: v for d, v in before[table].items() if d != gone} == after[table], table
            # Nobody else has rows on the module's days: the emptied day's partition was dropped.
            assert active_parts(ch, table, gone) == [], table
        assert window_tables(ch) == []


def test_rerunning_the_window_gives_the_same_rows(workspace, clickhouse, dbt, dbt_window):
    with clickhouse.client() as ch:
        sums_before, rows_before = checksums(ch, workspace), mart_rows(ch, workspace)
        parts_before = {t: active_parts(ch, t, DAYS[0]) for t in TABLES}
    assert len(rows_before) >= GROUPS * 3  # at least three days of the window have rows
    for _ in range(2):
        dbt("run", "--select", *MODELS, vars=dbt_window(DAYS[0], DAYS[-1]))
        with clickhouse.client() as ch:
            assert checksums(ch, workspace) == sums_before
            assert mart_rows(ch, workspace) == rows_before
    with clickhouse.client() as ch:
        assert all(set(active_parts(ch, t, DAYS[0])).isdisjoint(parts_before[t]) for t in TABLES)
