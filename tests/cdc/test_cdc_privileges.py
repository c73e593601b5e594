"""The replication role has exactly what MaterializedPostgreSQL needs, and the replica carries no
personal data: on the real servers, as the role itself, and by scanning the analytics databases."""

from __future__ import annotations

import time
import uuid

import psycopg
import pytest
from psycopg import errors, sql

from platform_assets.cdc import lifecycle, monitor, replica, source
from platform_assets.cdc.resources import configured_tables

pytestmark = pytest.mark.integration

TABLES = configured_tables()
SNAPSHOT_TIMEOUT_S = 300
# Every database the analytics side reads or writes (the replica is scanned too: it is not a
# restricted database, the e-mails and names are kept out of it by the publication's column list).
ANALYTICS_DATABASES = ("staging", "marts", "rollups", "raw")


@pytest.fixture(scope="module")
def replica_ready(stack, postgres, clickhouse, cdc):
    """The role, the publication and the replica, set up the way the assets do (or as an earlier
    module left them), with every configured table present in ClickHouse."""
    address = f"{postgres.host}:{postgres.port}"
    with postgres.connect(autocommit=True) as owner, clickhouse.client() as client:
        source.check_tables(owner, TABLES)
        if not replica.database_exists(client, cdc.replica_database):
            lifecycle.attach_replica(client, owner, cdc, address, postgres.dbname, TABLES)
        else:
            source.ensure_replication_role(owner, cdc.replication_role, cdc.replication_password, TABLES)
            source.ensure_publication(owner, TABLES)
        deadline = time.monotonic() + SNAPSHOT_TIMEOUT_S
        while set(TABLES) - set(replica.replica_tables(client, cdc.replica_database)):
            if time.monotonic() > deadline:
                raise TimeoutError(f"replica tables {TABLES} did not all appear in {SNAPSHOT_TIMEOUT_S}s")
            time.sleep(0.2)
    monitor.wait_caught_up(postgres, clickhouse, cdc.replica_database)
    return cdc


def as_role(postgres, cdc) -> psycopg.Connection:
    return psycopg.connect(
        **{**postgres.conninfo(), "user": cdc.replication_role, "password": cdc.replication_password},
        autocommit=True,
    )


def test_role_is_not_superuser_member_or_owner(replica_ready, postgres, cdc):
    role = cdc.replication_role
    with postgres.connect(autocommit=True) as conn:
        attrs = conn.execute(
            "SELECT rolsuper, rolcreatedb, rolcreaterole, rolbypassrls, rolreplication, rolcanlogin "
            "FROM pg_roles WHERE rolname = %s",
            (role,),
        ).fetchone()
        assert attrs == (False, False, False, False, True, True)
        member_of = conn.execute(
            "SELECT m.roleid::regrole::text FROM pg_auth_members m WHERE m.member = %s::regrole", (role,)
        ).fetchall()
        assert member_of == []
        owned = conn.execute(
            "SELECT relname FROM pg_class WHERE relowner = %s::regrole "
            "UNION ALL SELECT pubname FROM pg_publication WHERE pubowner = %s::regrole "
            "UNION ALL SELECT datname FROM pg_database WHERE datdba = %s::regrole "
            "UNION ALL SELECT nspname FROM pg_namespace WHERE nspowner = %s::regrole",
            (role, role, role, role),
        ).fetchall()
        assert owned == []
        # Table privileges: SELECT only, on the published tables only (users: on its published columns).
        grants = conn.execute(
            "SELECT n.nspname || '.' || c.relname, a.privilege_type FROM pg_class c "
            "JOIN pg_namespace n ON n.oid = c.relnamespace, aclexplode(c.relacl) a "
            "WHERE a.grantee = %s::regrole ORDER BY 1, 2",
            (role,),
        ).fetchall()
        assert grants == sorted((f"public.{t}", "SELECT") for t in TABLES if t not in source.EXCLUDED_COLUMNS)
        column_grants = conn.execute(
            "SELECT c.relname, t.attname, a.privilege_type FROM pg_attribute t JOIN pg_class c ON c.oid = t.attrelid, "
            "aclexplode(t.attacl) a WHERE a.grantee = %s::regrole ORDER BY 1, 2",
            (role,),
        ).fetchall()
        published = source.published_columns(conn, ["users"])["users"]
        assert published is not None and {"email", "name"}.isdisjoint(published)
        assert column_grants == [("users", c, "SELECT") for c in sorted(published)]


def test_role_cannot_read_other_tables_or_write_published_ones(replica_ready, postgres, cdc):
    with postgres.connect(autocommit=True) as conn:
        conn.execute("CREATE TABLE IF NOT EXISTS cdc_not_published (id int PRIMARY KEY, secret text)")
        conn.execute("INSERT INTO cdc_not_published VALUES (1, 'x') ON CONFLICT DO NOTHING")
    with as_role(postgres, cdc) as conn:
        for statement in (
            "SELECT * FROM cdc_not_published",
            "SELECT email FROM users",
            "SELECT name FROM users",
            "INSERT INTO orders (order_id, user_id, amount_cents, status) VALUES (-1, -1, 1, 'paid')",
            "UPDATE orders SET status = 'refunded' WHERE order_id = -1",
            "UPDATE cdc_heartbeat SET beat_at = now()",
            "DELETE FROM events",
            "INSERT INTO cdc_not_published VALUES (2, 'y')",
            "CREATE TABLE cdc_role_scratch (id int)",
            "ALTER PUBLICATION {pub} DROP TABLE orders",
            "CREATE PUBLICATION cdc_role_pub FOR TABLE orders",
        ):
            query = statement.format(pub=sql.Identifier(source.publication_name(postgres.dbname)).as_string(conn))
            with pytest.raises(errors.InsufficientPrivilege):
                conn.execute(query)  # type: ignore[call-overload]
        # What it needs works: the published columns.
        assert conn.execute("SELECT count(user_id), count(country) FROM users").fetchone() is not None
        assert conn.execute("SELECT count(*) FROM orders").fetchone() is not None


def test_replica_still_replicates_a_change(replica_ready, postgres, clickhouse, cdc):
    user_id = 800_000_000 + uuid.uuid4().int % 100_000_000
    with postgres.connect(autocommit=True) as conn:  # the application's user
        conn.execute(
            "INSERT INTO users (user_id, email, name, country) VALUES (%s, %s, 'Priv Test', 'NO')",
            (user_id, f"priv-{user_id}@example.com"),
        )
    monitor.wait_caught_up(postgres, clickhouse, cdc.replica_database)
    with clickhouse.client() as ch:
        db = replica.ident(cdc.replica_database)
        rows = ch.query(f"SELECT country FROM {db}.users FINAL WHERE _sign = 1 AND user_id = {user_id}").result_rows
    assert rows == [("NO",)]


def test_no_raw_email_or_name_reaches_the_analytics_databases(replica_ready, postgres, clickhouse, cdc, dbt):
    tag = uuid.uuid4().hex[:12]
    first = 700_000_000 + uuid.uuid4().int % 50_000_000
    people = [(first + i, f"pii-{tag}-{i}@example.com", f"Piiname {tag} {i}") for i in range(5)]
    with postgres.connect(autocommit=True) as conn:
        for user_id, email, name in people:
            conn.execute(
                "INSERT INTO users (user_id, email, name, country) VALUES (%s, %s, %s, 'SE')", (user_id, email, name)
            )
    monitor.wait_caught_up(postgres, clickhouse, cdc.replica_database)
    # The staging model over the replica, rebuilt now, so it holds these users.
    dbt("run", "--select", "stg_app__users")
    needles = [email for _, email, _ in people] + [name for _, _, name in people]
    with clickhouse.client() as ch:
        assert ch.query(
            f"SELECT count() FROM staging.stg_app__users WHERE user_id IN {tuple(p[0] for p in people)}"
        ).result_rows == [(len(people),)]
        databases = [*ANALYTICS_DATABASES, cdc.replica_database]
        columns = ch.query(
            "SELECT c.database, c.table, c.name FROM system.columns c "
            "JOIN system.tables t ON t.database = c.database AND t.name = c.table "
            "WHERE c.database IN {dbs:Array(String)} AND t.engine NOT IN ('Kafka') "
            "AND match(c.type, '^(LowCardinality\\\\()?(Nullable\\\\()?(String|FixedString)')",
            parameters={"dbs": databases},
        ).result_rows
        scanned = {db for db, _, _ in columns}
        assert {"staging", cdc.replica_database} <= scanned, scanned
        hits = []
        for db, table, column in columns:
            found = ch.query(
                f"SELECT count() FROM {replica.ident(db)}.{replica.ident(table)} "
                f"WHERE multiSearchAny(toString({replica.ident(column)}), {{needles:Array(String)}})",
                parameters={"needles": needles},
            ).result_rows[0][0]
            if found:
                hits.append((db, table, column, found))
        # The replica's users table has no e-mail or name column at all.
        replica_cols = replica.replica_columns(ch, cdc.replica_database, ["users"])["users"]
    assert hits == [], hits
    assert {"email", "name"}.isdisjoint(replica_cols) and "user_id" in replica_cols
    assert len(columns) > 10  # the scan did cover the String columns
