"""kill -9 of Postgres (the CDC source) in the middle of the app workload, then `up`.

Postgres recovers from its WAL (committed transactions kept, the one in flight rolled back),
the MaterializedPostgreSQL replica reconnects to its slot and converges: every replicated
table equal to the source row by row, full rows (FINAL, _sign = 1), within a bounded wait.
"""

from __future__ import annotations

import json
import threading
import time

import psycopg
import pytest
from dagster import materialize

from platform_assets.cdc import source
from platform_assets.cdc.assets import app_schema, build_replica_asset, source_replication
from platform_assets.cdc.monitor import wait_caught_up
from platform_assets.cdc.replica import SERVICE_COLUMNS, ident
from platform_assets.cdc.resources import configured_tables
from platform_assets.ingest.assets import kafka_topics
from platform_assets.ops.assets import clickhouse_schema
from platform_assets.synthetic.app import Workload

pytestmark = [pytest.mark.faults, pytest.mark.integration]

TABLES = configured_tables()
RATE = 500.0  # changes per second
CATCH_UP_S = 120.0


@pytest.fixture(scope="module")
def replicated(schema):
    """The CDC assets on the suite's stack, as `platform_ready` materializes them for the transforms."""
    fs = schema
    res = {**{k: fs.res[k] for k in ("clickhouse", "postgres", "kafka")}, "cdc": fs.cdc}
    with pytest.MonkeyPatch.context() as env:  # settings read at run time: this stack's
        for name, value in fs.env.items():
            env.setenv(name, value)
        result = materialize(
            [kafka_topics, clickhouse_schema, app_schema, source_replication, build_replica_asset(TABLES)],
            resources=res,
            instance=fs.instance,
        )
    assert result.success
    return fs


def _canonical(value):
    """Values both sides can be compared on: JSON text parsed, everything else as read."""
    if isinstance(value, str) and value[:1] in "{[":
        try:
            return json.loads(value)
        except ValueError:
            return value
    return value


def source_table(conn: psycopg.Connection, table: str, key: list[str]) -> dict[tuple, tuple]:
    """Every row of a source table, keyed by its primary key, in its published columns (the
    replica has no others: users.email and users.name stay in Postgres); timestamps as UTC text
    to the µs."""
    excluded = source.EXCLUDED_COLUMNS.get(table, ())
    columns = [
        c
        for c in conn.execute(
            "SELECT column_name, data_type FROM information_schema.columns "
            "WHERE table_schema = 'public' AND table_name = %s ORDER BY ordinal_position",
            (table,),
        ).fetchall()
        if c[0] not in excluded
    ]
    exprs = []
    for name, dtype in columns:
        if dtype == "timestamp with time zone":
            exprs.append(f"to_char({name} AT TIME ZONE 'UTC', 'YYYY-MM-DD HH24:MI:SS.US')")
        elif dtype in ("uuid", "jsonb", "json"):
            exprs.append(f"{name}::text")
        else:
            exprs.append(name)
    names = [c[0] for c in columns]
    index = [names.index(k) for k in key]
    rows = conn.execute(f"SELECT {', '.join(exprs)} FROM {table}").fetchall()
    return {tuple(r[i] for i in index): tuple(_canonical(v) for v in r) for r in rows}


def replica_table(fs, database: str, table: str, key: list[str]) -> dict[tuple, tuple]:
    """The live rows of a replica table (FINAL, _sign = 1), in the same shape as ``source_table``."""
    columns = [
        (n, t)
        for n, t in fs.rows(
            "SELECT name, type FROM system.columns WHERE database = {db:String} AND table = {t:String} "
            "ORDER BY position",
            db=database,
            t=table,
        )
        if n not in SERVICE_COLUMNS
    ]
    exprs = []
    for name, ctype in columns:
        if "DateTime64" in ctype:
            exprs.append(f"toString({ident(name)}, 'UTC')")
        elif "UUID" in ctype:
            exprs.append(f"toString({ident(name)})")
        else:
            exprs.append(ident(name))
    names = [c[0] for c in columns]
    index = [names.index(k) for k in key]
    rows = fs.rows(f"SELECT {', '.join(exprs)} FROM {ident(database)}.{ident(table)} FINAL WHERE _sign = 1")
    return {tuple(r[i] for i in index): tuple(_canonical(v) for v in r) for r in rows}


def parity(fs, database: str) -> dict[str, dict[str, int]]:
    """Per table: rows on each side, rows missing from the replica, extra in it, and rows that differ."""
    out = {}
    with fs.pg() as conn:
        keys = source.check_tables(conn, TABLES)
        src = {t: source_table(conn, t, keys[t]) for t in TABLES}
    for table in TABLES:
        rep = replica_table(fs, database, table, keys[table])
        s = src[table]
        out[table] = {
            "source": len(s),
            "replica": len(rep),
            "missing": len(s.keys() - rep.keys()),
            "extra": len(rep.keys() - s.keys()),
            "differ": sum(1 for k in s.keys() & rep.keys() if s[k] != rep[k]),
        }
    return out


def test_postgres_kill_9_mid_workload_replica_converges_row_by_row(replicated, healed):
    fs = healed
    db = fs.cdc.replica_database
    pg_res, ch_res = fs.res["postgres"], fs.res["clickhouse"]
    wait_caught_up(pg_res, ch_res, db, 60.0)
    interrupted: list[str] = []
    workloads: list[Workload] = []

    def run(seed: int, seconds: float) -> None:
        try:
            with fs.pg() as conn:
                workloads.append(Workload(conn, seed=seed, rate=RATE))
                workloads[-1].run(duration=seconds, rate=RATE)
        except psycopg.Error as exc:
            interrupted.append(f"{type(exc).__name__}: {str(exc).strip().splitlines()[0]}")

    writer = threading.Thread(target=run, args=(31, 10.0))
    writer.start()
    time.sleep(3)
    fs.kill("postgres")
    writer.join(30)
    restart_s = fs.restart("postgres")
    run(32, 3.0)  # the app goes on writing after the restart
    caught_up_s = wait_caught_up(pg_res, ch_res, db, CATCH_UP_S)
    tables = parity(fs, db)
    changes = [w.record.changes for w in workloads]
    message = (
        f"workload {changes[0]:,} changes before the kill (interrupted: {interrupted}), {changes[1]:,} after; "
        f"Postgres back in {restart_s:.1f}s, replica caught up {caught_up_s:.2f}s after the last write; "
        f"per table {tables}"
    )
    print(message)
    assert interrupted, f"the kill did not interrupt the workload: {message}"
    assert all(t["missing"] == t["extra"] == t["differ"] == 0 for t in tables.values()), message
    assert all(t["source"] == t["replica"] for t in tables.values()), message
