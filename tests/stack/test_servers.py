"""Each server through its real client, as the platform uses it."""

from __future__ import annotations

import io
import json
import time
import uuid

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from clickhouse_driver import Client as NativeClient
from confluent_kafka import TopicPartition
from confluent_kafka.admin import NewTopic

from platform_assets.core.resources import query_tag

pytestmark = pytest.mark.integration


def test_clickhouse_http_create_insert_select(clickhouse):
    with clickhouse.client() as ch:
        ch.command("CREATE DATABASE IF NOT EXISTS t_http")
        ch.command("DROP TABLE IF EXISTS t_http.events")
        ch.command(
            "CREATE TABLE t_http.events (id UInt64, name LowCardinality(String), at DateTime64(3, 'UTC')) "
            "ENGINE = MergeTree ORDER BY id"
        )
        rows = [[i, f"e{i % 7}", 1_700_000_000 + i] for i in range(10_000)]
        ch.insert("t_http.events", rows, column_names=["id", "name", "at"])
        count, total, names = ch.query("SELECT count(), sum(id), uniqExact(name) FROM t_http.events").result_rows[0]
    assert (count, total, names) == (10_000, sum(range(10_000)), 7)


def test_clickhouse_native_protocol(clickhouse):
    native = NativeClient(
        host=clickhouse.host,
        port=clickhouse.tcp_port,
        user=clickhouse.username,
        password=clickhouse.password,
        connect_timeout=5,
        send_receive_timeout=30,
    )
    native.execute("CREATE DATABASE IF NOT EXISTS t_native")
    native.execute("DROP TABLE IF EXISTS t_native.kv")
    native.execute("CREATE TABLE t_native.kv (k String, v Float64) ENGINE = MergeTree ORDER BY k")
    native.execute("INSERT INTO t_native.kv (k, v) VALUES", [("a", 1.5), ("b", 2.5), ("c", -1.0)])
    assert native.execute("SELECT k, v FROM t_native.kv ORDER BY k") == [("a", 1.5), ("b", 2.5), ("c", -1.0)]
    native.disconnect()


def test_clickhouse_queries_carry_run_tag(clickhouse):
    class FakeRunContext:  # the two attributes query_tag reads from a Dagster context
        run_id = str(uuid.uuid4())
        job_name = "tag_probe"

    with clickhouse.client(FakeRunContext()) as ch:
        ch.query("SELECT 42")
        ch.command("SYSTEM FLUSH LOGS")
        tags = ch.query(
            "SELECT DISTINCT log_comment FROM system.query_log "
            "WHERE JSONExtractString(log_comment, 'run_id') = {run_id:String} AND type = 'QueryFinish'",
            parameters={"run_id": FakeRunContext.run_id},
        ).result_rows
    assert tags, "no query in system.query_log carries the run id"
    assert json.loads(tags[0][0]) == json.loads(query_tag(FakeRunContext()))


def test_postgres_logical_replication_slot(postgres):
    slot = f"t_slot_{uuid.uuid4().hex[:8]}"
    with postgres.connect(autocommit=True) as conn:
        assert conn.execute("SHOW wal_level").fetchone()[0] == "logical"
        conn.execute("CREATE TABLE IF NOT EXISTS t_items (id int PRIMARY KEY, name text)")
        conn.execute("SELECT pg_create_logical_replication_slot(%s, 'pgoutput')", (slot,))
        conn.execute("INSERT INTO t_items VALUES (1, 'a') ON CONFLICT DO NOTHING")
        row = conn.execute(
            "SELECT plugin, slot_type, pg_current_wal_lsn() >= restart_lsn FROM pg_replication_slots "
            "WHERE slot_name = %s",
            (slot,),
        ).fetchone()
        conn.execute("SELECT pg_drop_replication_slot(%s)", (slot,))
    assert row == ("pgoutput", "logical", True)


def test_kafka_produce_consume_group_commit(kafka):
    topic = f"t-roundtrip-{uuid.uuid4().hex[:8]}"
    admin = kafka.admin()  # keep a reference: a collected client cancels its futures
    admin.create_topics([NewTopic(topic, num_partitions=2, replication_factor=1)])[topic].result(timeout=15)

    producer = kafka.producer()
    sent = {f"k{i}": {"n": i} for i in range(200)}
    for key, value in sent.items():
        producer.produce(topic, key=key, value=json.dumps(value))
    assert producer.flush(15) == 0

    group = f"t-group-{uuid.uuid4().hex[:8]}"
    # Tansu waits session.timeout/2 on the first join: keep it short.
    consumer = kafka.consumer(group, **{"auto.offset.reset": "earliest", "session.timeout.ms": 6000})
    consumer.subscribe([topic])
    received: dict[str, dict] = {}
    deadline = time.monotonic() + 60
    while len(received) < len(sent) and time.monotonic() < deadline:
        msg = consumer.poll(1.0)
        if msg is None or msg.error():
            continue
        received[msg.key().decode()] = json.loads(msg.value())
    consumer.commit(asynchronous=False)
    committed = consumer.committed([TopicPartition(topic, 0), TopicPartition(topic, 1)], timeout=10)
    consumer.close()

    assert received == sent
    # Committed offsets read back from the broker add up to every message consumed.
    assert sum(tp.offset for tp in committed) == len(sent)


def test_s3_parquet_between_pyarrow_and_clickhouse(s3, clickhouse, stack):
    env = stack.env()
    client = s3.get_client()
    key_from_arrow = f"t/arrow-{uuid.uuid4().hex[:8]}.parquet"
    table = pa.table({"id": pa.array(range(1000), pa.int64()), "label": [f"x{i % 3}" for i in range(1000)]})
    buf = io.BytesIO()
    pq.write_table(table, buf)
    client.put_object(Bucket=s3.bucket, Key=key_from_arrow, Body=buf.getvalue())

    url = f"{env['S3_ENDPOINT_URL']}/{s3.bucket}"
    creds = f"'{env['AWS_ACCESS_KEY_ID']}', '{env['AWS_SECRET_ACCESS_KEY']}'"
    with clickhouse.client() as ch:
        count, total, labels = ch.query(
            f"SELECT count(), sum(id), uniqExact(label) FROM s3('{url}/{key_from_arrow}', {creds}, 'Parquet')"
        ).result_rows[0]
        key_from_ch = f"t/clickhouse-{uuid.uuid4().hex[:8]}.parquet"
        ch.command(
            f"INSERT INTO FUNCTION s3('{url}/{key_from_ch}', {creds}, 'Parquet') "
            "SELECT number AS id, toString(number * 2) AS doubled FROM numbers(500)"
        )
    assert (count, total, labels) == (1000, sum(range(1000)), 3)

    body = client.get_object(Bucket=s3.bucket, Key=key_from_ch)["Body"].read()
    back = pq.read_table(io.BytesIO(body))
    assert back.num_rows == 500
    assert back.column("id").to_pylist()[:3] == [0, 1, 2]
    assert back.column("doubled").to_pylist()[499] == "998"
