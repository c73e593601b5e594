"""Each server through its real client, as the platform uses it."""

from __future__ import annotations

import io
import json
import socket
import struct
import time
import uuid
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from clickhouse_driver import Client as NativeClient
from confluent_kafka import TopicPartition
from confluent_kafka.admin import NewTopic

from platform_assets.core.resources import query_tag
from platform_assets.stack.servers import kafka_version
from platform_assets.stack.servers.kafka import class_archive

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
    # ClickHouse's consumers use the same short session (templates/clickhouse-config.xml).
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


class _Reader:
    """Just enough of the Kafka wire format to read an ApiVersions v3 response."""

    def __init__(self, data: bytes) -> None:
        self.data, self.pos = data, 0

    def take(self, fmt: str) -> int:
        (value,) = struct.unpack_from(fmt, self.data, self.pos)
        self.pos += struct.calcsize(fmt)
        return value

    def uvarint(self) -> int:
        shift = value = 0
        while True:
            byte = self.data[self.pos]
            self.pos += 1
            value |= (byte & 0x7F) << shift
            if not byte & 0x80:
                return value
            shift += 7

    def compact_string(self) -> str:
        size = self.uvarint() - 1
        text = self.data[self.pos : self.pos + size].decode()
        self.pos += size
        return text

    def skip_tags(self) -> None:
        for _ in range(self.uvarint()):
            self.uvarint()
            self.pos += self.uvarint()


def api_versions(bootstrap: str) -> tuple[dict[int, tuple[int, int]], dict[str, int]]:
    """One ApiVersions v3 request: {api_key: (min, max)} and the finalized feature levels."""
    host, port = bootstrap.rsplit(":", 1)
    client = b"platform-test"
    header = struct.pack(">hhih", 18, 3, 7, len(client)) + client + b"\x00"  # request header v2
    body = bytes([len(client) + 1]) + client + bytes([2]) + b"1" + b"\x00"  # software name, version
    with socket.create_connection((host, int(port)), timeout=10) as sock:
        sock.sendall(struct.pack(">i", len(header + body)) + header + body)
        raw = b""
        while len(raw) < 4 or len(raw) < 4 + struct.unpack(">i", raw[:4])[0]:
            chunk = sock.recv(65536)
            assert chunk, "broker closed the connection"
            raw += chunk
    r = _Reader(raw[4:])
    assert r.take(">i") == 7  # correlation id (ApiVersions responses keep header v0)
    assert r.take(">h") == 0  # error code
    apis = {}
    for _ in range(r.uvarint() - 1):
        key, low, high = r.take(">h"), r.take(">h"), r.take(">h")
        r.skip_tags()
        apis[key] = (low, high)
    r.take(">i")  # throttle time
    finalized: dict[str, int] = {}
    for _ in range(r.uvarint()):
        tag, size = r.uvarint(), r.uvarint()
        end = r.pos + size
        if tag == 2:  # FinalizedFeatures: name, max_version_level, min_version_level
            for _ in range(r.uvarint() - 1):
                name = r.compact_string()
                finalized[name] = r.take(">h")
                r.take(">h")
                r.skip_tags()
        r.pos = end
    return apis, finalized


def test_kafka_is_an_apache_kafka_4_broker(kafka, stack):
    apis, features = api_versions(kafka.bootstrap_servers)
    # Kafka 4.0 removed the ZooKeeper-era inter-broker APIs and Fetch v0-v3 (KIP-896; Produce v0-v2
    # stayed for old librdkafka clients).
    assert not {4, 5, 6, 7} & set(apis), "LeaderAndIsr/StopReplica/UpdateMetadata/ControlledShutdown answered"
    assert apis[1][0] >= 4, apis[1]
    assert 68 in apis  # ConsumerGroupHeartbeat: the KIP-848 group protocol, on by default since 4.0
    # KRaft, formatted at this version's metadata.version (4.4-IV2 is level 33; 4.0-IV0 was 22).
    assert features["metadata.version"] >= 22, features
    assert kafka_version().startswith("4.")
    log = (stack.cfg.root / "logs" / "kafka.log").read_text()
    assert f"Kafka version: {kafka_version()}" in log


def test_kafka_broker_maps_the_class_archive_setup_made(stack):
    """scripts/setup.sh builds the CDS archive; the broker's JVM maps it (a faster start)."""
    pid = stack.servers["kafka"].pid()
    maps = Path(f"/proc/{pid}/maps").read_text()
    assert str(class_archive()) in maps, f"{class_archive()} is not mapped by the broker (pid {pid})"


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
