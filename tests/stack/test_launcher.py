"""`platform-stack` as a user runs it: up, status, down, data kept, kills, clear errors."""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import uuid
from pathlib import Path

import psycopg
import pytest
import requests
from confluent_kafka import Consumer, Producer, TopicPartition
from confluent_kafka.admin import AdminClient, NewTopic

from platform_assets.stack.config import StackConfig, StackError
from platform_assets.stack.scratch import free_ports, new_stack_dir
from platform_assets.stack.servers import KafkaServer, Stack

pytestmark = pytest.mark.integration


class Cli:
    def __init__(self, root: Path, ports: dict[str, int]) -> None:
        self.root = root
        self.ports = ports
        self.env = {
            **os.environ,
            "PLATFORM_STACK_DIR": str(root),
            **{f"PLATFORM_{name.upper()}_PORT": str(port) for name, port in ports.items()},
        }

    def __call__(self, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        proc = subprocess.run(
            [sys.executable, "-m", "platform_assets.stack.cli", *args],
            env=self.env,
            capture_output=True,
            text=True,
            timeout=180,
        )
        if check and proc.returncode != 0:
            raise AssertionError(f"platform-stack {' '.join(args)} exited {proc.returncode}:\n{proc.stderr}")
        return proc

    def status(self) -> dict[str, dict]:
        return json.loads(self("status", "--json", check=False).stdout)

    def settings(self) -> dict[str, str]:
        lines = self("env").stdout.splitlines()
        pairs = (line.removeprefix("export ").split("=", 1) for line in lines)
        return {k: v.strip("'") for k, v in pairs}


@pytest.fixture(scope="module")
def cli():
    root = new_stack_dir("platform-test-launcher-")
    cli = Cli(root, free_ports())
    yield cli
    cli("down", check=False)
    shutil.rmtree(root, ignore_errors=True)


def create_topic(broker: str, topic: str, partitions: int = 3) -> None:
    """The broker does not auto-create topics (the kafka_topics asset creates the real ones)."""
    admin = AdminClient({"bootstrap.servers": broker})
    admin.create_topics([NewTopic(topic, num_partitions=partitions, replication_factor=1)])[topic].result(timeout=30)


def watermarks(broker: str, topic: str, partitions: int = 3) -> tuple[int, int]:
    """(sum of low, sum of high) watermarks over the topic's partitions, read from the broker."""
    consumer = Consumer({"bootstrap.servers": broker, "group.id": f"wm-{uuid.uuid4().hex[:6]}"})
    try:
        marks = [consumer.get_watermark_offsets(TopicPartition(topic, p), timeout=15) for p in range(partitions)]
    finally:
        consumer.close()
    return sum(low for low, _ in marks), sum(high for _, high in marks)


def ch(settings: dict[str, str], sql: str) -> str:
    resp = requests.post(
        f"http://127.0.0.1:{settings['CLICKHOUSE_HTTP_PORT']}/",
        data=sql.encode(),
        auth=(settings["CLICKHOUSE_USER"], settings["CLICKHOUSE_PASSWORD"]),
        timeout=30,
    )
    assert resp.status_code == 200, resp.text
    return resp.text.strip()


def pg(settings: dict[str, str]) -> psycopg.Connection:
    return psycopg.connect(
        host="127.0.0.1",
        port=int(settings["POSTGRES_PORT"]),
        user=settings["POSTGRES_USER"],
        password=settings["POSTGRES_PASSWORD"],
        dbname=settings["POSTGRES_DB"],
        autocommit=True,
        connect_timeout=5,
    )


def test_up_status_down_up_keeps_data(cli):
    out = cli("up").stdout
    assert all(f"{name}" in out for name in ("clickhouse", "postgres", "kafka", "s3"))
    status = cli.status()
    assert {n: s["healthy"] for n, s in status.items()} == dict.fromkeys(
        ("clickhouse", "postgres", "kafka", "s3"), True
    )
    assert "wal_level=logical" in status["postgres"]["detail"]

    settings = cli.settings()
    # `up` applies the CDC app schema after the start (the servers themselves apply none).
    with pg(settings) as conn:
        tables = {r[0] for r in conn.execute("SELECT tablename FROM pg_tables WHERE schemaname = 'public'")}
    assert {"users", "orders", "subscriptions", "events", "platform_source_migrations"} <= tables, tables
    ch(settings, "CREATE TABLE IF NOT EXISTS default.keep (x UInt64) ENGINE = MergeTree ORDER BY x")
    ch(settings, "INSERT INTO default.keep SELECT number FROM numbers(12345)")
    with pg(settings) as conn:
        conn.execute("CREATE TABLE IF NOT EXISTS keep (x int PRIMARY KEY)")
        conn.execute("INSERT INTO keep SELECT generate_series(1, 321) ON CONFLICT DO NOTHING")
    broker = settings["KAFKA_BOOTSTRAP_SERVERS"]
    topic = f"keep-{uuid.uuid4().hex[:6]}"
    create_topic(broker, topic)
    producer = Producer({"bootstrap.servers": broker})
    for i in range(777):
        producer.produce(topic, value=str(i).encode())
    assert producer.flush(30) == 0

    # A second `up` leaves running servers alone.
    again = cli("up").stdout
    assert again.count("running") == 4, again

    down = cli("down").stdout
    assert "clickhouse  stopped" in down and "postgres    stopped" in down, down
    assert not any(s["healthy"] for s in cli.status().values())
    assert cli("status", check=False).returncode == 1

    cli("up")
    assert ch(settings, "SELECT count(), sum(x) FROM default.keep") == f"12345\t{sum(range(12345))}"
    with pg(settings) as conn:
        assert conn.execute("SELECT count(*) FROM keep").fetchone()[0] == 321
    assert watermarks(broker, topic) == (0, 777)  # the topic and its messages outlive `down`


def test_killed_clickhouse_is_restarted_by_up(cli):
    cli("up")
    settings = cli.settings()
    ch(settings, "CREATE TABLE IF NOT EXISTS default.survive (x UInt64) ENGINE = MergeTree ORDER BY x")
    ch(settings, "INSERT INTO default.survive SELECT number FROM numbers(1000)")
    pid = int((cli.root / "clickhouse" / "server.pid").read_text())
    os.kill(pid, signal.SIGKILL)
    deadline = time.monotonic() + 10
    while cli.status()["clickhouse"]["healthy"] and time.monotonic() < deadline:
        time.sleep(0.2)
    status = cli.status()
    assert not status["clickhouse"]["healthy"]
    assert status["postgres"]["healthy"]

    out = cli("up").stdout
    assert "clickhouse  started" in out and "postgres    running" in out, out
    assert ch(settings, "SELECT count() FROM default.survive") == "1000"


def test_killed_postgres_recovers_with_data(cli):
    cli("up")
    settings = cli.settings()
    with pg(settings) as conn:
        conn.execute("CREATE TABLE IF NOT EXISTS crash (x int)")
        conn.execute("INSERT INTO crash SELECT generate_series(1, 500)")
    pid = int((cli.root / "postgres" / "server.pid").read_text())
    os.kill(pid, signal.SIGKILL)
    deadline = time.monotonic() + 15
    while cli.status()["postgres"]["healthy"] and time.monotonic() < deadline:
        time.sleep(0.2)
    assert "postgres    started" in cli("up").stdout
    with pg(settings) as conn:
        assert conn.execute("SELECT count(*) FROM crash").fetchone()[0] == 500


def test_kafka_engine_tables_survive_clickhouse_restart(cli):
    """ARCHITECTURE.md: a Kafka-engine table breaks a plain restart; the launcher re-attaches it."""
    cli("up")
    settings = cli.settings()
    topic = f"restart-{uuid.uuid4().hex[:6]}"
    broker = settings["KAFKA_BOOTSTRAP_SERVERS"]

    def produce(start: int, count: int) -> None:
        producer = Producer({"bootstrap.servers": broker})  # default batching
        for i in range(start, start + count):
            producer.produce(topic, value=json.dumps({"id": i}))
        assert producer.flush(15) == 0

    create_topic(broker, topic)
    produce(0, 50)
    ch(settings, "CREATE DATABASE IF NOT EXISTS kq")
    ch(settings, "CREATE TABLE IF NOT EXISTS kq.sink (id UInt64) ENGINE = MergeTree ORDER BY id")
    create_queue = (
        "CREATE TABLE IF NOT EXISTS kq.queue (id UInt64) ENGINE = Kafka SETTINGS "
        f"kafka_broker_list = '{broker}', kafka_topic_list = '{topic}', kafka_group_name = 'g-{topic}', "
        "kafka_format = 'JSONEachRow', kafka_handle_error_mode = 'stream'"
    )
    try:
        ch(settings, create_queue)
    except AssertionError as exc:  # the known "Shutdown was called" LOGICAL_ERROR of this build
        if "Shutdown was called" not in str(exc):
            raise
    ch(
        settings,
        "CREATE MATERIALIZED VIEW IF NOT EXISTS kq.mv TO kq.sink (id UInt64) AS SELECT id FROM kq.queue",
    )

    def wait_rows(expected: int) -> str:
        deadline = time.monotonic() + 60
        got = ""
        while time.monotonic() < deadline:
            got = ch(settings, "SELECT count(), uniqExact(id) FROM kq.sink")
            if got == f"{expected}\t{expected}":
                break
            time.sleep(0.5)
        return got

    assert wait_rows(50) == "50\t50"
    cli("down", "clickhouse")
    produce(50, 30)  # written while ClickHouse is down
    assert "clickhouse  started" in cli("up").stdout
    assert ch(settings, "SELECT engine FROM system.tables WHERE database = 'kq' AND name = 'queue'") == "Kafka"
    # Resumed from committed offsets: the 30 new rows, no duplicates of the first 50.
    assert wait_rows(80) == "80\t80"


def test_killed_kafka_keeps_every_acknowledged_message(cli):
    """kill -9 of the broker after 10,000 batched messages: all of them are there after `up`."""
    cli("up")
    broker = cli.settings()["KAFKA_BOOTSTRAP_SERVERS"]
    topic = f"crash-{uuid.uuid4().hex[:6]}"
    create_topic(broker, topic)
    acked: list[int] = []
    producer = Producer({"bootstrap.servers": broker})  # librdkafka's defaults: acks=all, batches

    def delivered(err, msg) -> None:
        if err is None:
            acked.append(int(msg.value()))

    for i in range(10_000):
        producer.produce(topic, value=str(i).encode(), on_delivery=delivered)
        producer.poll(0)
    assert producer.flush(30) == 0
    assert len(acked) == 10_000

    pid = int((cli.root / "kafka" / "server.pid").read_text())
    os.kill(pid, signal.SIGKILL)
    deadline = time.monotonic() + 15
    while cli.status()["kafka"]["healthy"] and time.monotonic() < deadline:
        time.sleep(0.2)
    assert not cli.status()["kafka"]["healthy"]
    out = cli("up").stdout
    assert "kafka       started" in out and "clickhouse  running" in out, out

    assert watermarks(broker, topic) == (0, 10_000)
    consumer = Consumer({"bootstrap.servers": broker, "group.id": f"g-{topic}", "auto.offset.reset": "earliest"})
    consumer.subscribe([topic])
    received: list[int] = []
    deadline = time.monotonic() + 60
    while len(received) < 10_000 and time.monotonic() < deadline:
        for msg in consumer.consume(1000, timeout=1.0):
            if not msg.error():
                received.append(int(msg.value()))
    consumer.close()
    assert sorted(received) == list(range(10_000))


def test_missing_kafka_jars_name_the_setup_script(monkeypatch, tmp_path):
    monkeypatch.setenv("PLATFORM_KAFKA_JARS", str(tmp_path / "no-jars"))
    server = KafkaServer(StackConfig(root=tmp_path / "stack", ports=free_ports()))
    with pytest.raises(StackError, match=r"jars are not in .*no-jars; run scripts/setup\.sh"):
        server.up()


def test_taken_port_gives_clear_error():
    root = new_stack_dir("platform-test-port-")
    ports = free_ports()
    with socket.socket() as squatter:
        squatter.bind(("127.0.0.1", ports["clickhouse_http"]))
        squatter.listen()
        proc = Cli(root, ports)("up", check=False)
    shutil.rmtree(root, ignore_errors=True)
    assert proc.returncode == 1
    assert f"port {ports['clickhouse_http']}" in proc.stderr
    assert "already in use" in proc.stderr and "PLATFORM_CLICKHOUSE_HTTP_PORT" in proc.stderr


def test_server_dying_at_start_shows_its_log():
    root = new_stack_dir("platform-test-dies-")
    # A log dir that belongs to another node: Kafka refuses it (and the launcher does not format it).
    data = root / "kafka" / "data"
    data.mkdir(parents=True)
    (data / "meta.properties").write_text("version=1\nnode.id=7\ncluster.id=AAAAAAAAAAAAAAAAAAAAAQ\n")
    server = KafkaServer(StackConfig(root=root, ports=free_ports()))
    with pytest.raises(StackError) as err:
        server.up()
    shutil.rmtree(root, ignore_errors=True)
    message = str(err.value)
    assert "died during start" in message and "Last lines of" in message
    assert "Stored node id 7 doesn't match" in message  # the broker's own complaint, from its log


def test_launcher_creates_the_app_database_but_applies_no_schema():
    """Server-level setup only: the app schema is the CDC domain's (applied by `platform-stack up`)."""
    root = new_stack_dir("platform-test-nodomain-")
    stack = Stack(StackConfig(root=root, ports=free_ports()))
    try:
        assert stack.up(["postgres"])["postgres"] == "started"
        with pg(stack.env()) as conn:
            tables = conn.execute("SELECT tablename FROM pg_tables WHERE schemaname = 'public'").fetchall()
        assert tables == []
    finally:
        stack.down()
        shutil.rmtree(root, ignore_errors=True)
