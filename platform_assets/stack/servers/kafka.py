"""Apache Kafka 4.x: one KRaft node (broker and controller in one JVM) from Maven Central's jars.

``scripts/setup.sh`` fetches the jars that ``stack/kafka/pom.xml`` pins (``mvn
dependency:copy-dependencies``) into a cache folder (``kafka_jars_dir()``). The log dir lives
in the stack's ``kafka/data``; it is formatted once (``kafka.tools.StorageTool format``, what
``kafka-storage.sh`` runs) with a cluster id generated and kept beside it, and never wiped:
topics and offsets survive ``down``, restarts and kill -9 (Kafka recovers its logs on start).
The broker is ``java -cp '<jars>/*' kafka.Kafka server.properties``; SIGTERM is Kafka's
controlled shutdown, forced after the timeout like every other server.

Class-data sharing: ``build_class_archive()`` (run by setup) starts a throwaway broker once with
``-XX:ArchiveClassesAtExit`` and keeps the archive of the classes it loaded beside the jars
(``kafka.jsa``); every later JVM maps it, which cut the broker's start from ~3.7 s to ~2.2 s and
~20 MB of RSS on 2 cores. The file appears only after a check that the JVM accepts it (a
truncated archive crashes the JVM); a stale one (another Java build) is ignored with a warning.
"""

from __future__ import annotations

import base64
import hashlib
import os
import shutil
import subprocess
import tempfile
import uuid
import xml.etree.ElementTree as ET
from functools import cache
from pathlib import Path

from platform_assets.stack.config import StackConfig, StackError
from platform_assets.stack.process import free_port, spawn, tail
from platform_assets.stack.servers.base import Health, Server

POM = Path(__file__).resolve().parent.parent / "kafka" / "pom.xml"
STAMP = ".platform-complete"  # written by scripts/setup.sh last, holding the sha256 of the pom
NODE_ID = 1
# 2 cores and 24 GB shared with ClickHouse and Postgres: a small heap that can grow to 1 GB.
JVM_OPTS = (
    "-Xms256m",
    "-Xmx1g",
    "-XX:+UseG1GC",
    "-XX:MaxGCPauseMillis=20",
    "-XX:InitiatingHeapOccupancyPercent=35",
    "-XX:+ExplicitGCInvokesConcurrent",
    "-Djava.awt.headless=true",
)
SETUP_HINT = "run scripts/setup.sh (it fetches the broker's jars with Maven)"


@cache
def kafka_version() -> str:
    """The version the pom pins: the one place it is set."""
    ns = {"m": "http://maven.apache.org/POM/4.0.0"}
    version = ET.parse(POM).getroot().findtext("m:properties/m:kafka.version", namespaces=ns)
    if not version:
        raise StackError(f"kafka: no <kafka.version> in {POM}")
    return version.strip()


def kafka_jars_dir() -> Path:
    """``PLATFORM_KAFKA_JARS``, else ``$XDG_CACHE_HOME/platform-assets/kafka-<version>`` (``~/.cache``)."""
    explicit = os.environ.get("PLATFORM_KAFKA_JARS")
    if explicit:
        return Path(explicit)
    cache_home = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache")
    return cache_home / "platform-assets" / f"kafka-{kafka_version()}"


def kafka_classpath() -> str:
    """``<jars>/*`` once setup has fetched the jars of this very pom."""
    jars = kafka_jars_dir()
    stamp = jars / STAMP
    want = hashlib.sha256(POM.read_bytes()).hexdigest()
    if not stamp.exists():
        raise StackError(f"kafka: the Kafka {kafka_version()} jars are not in {jars}; {SETUP_HINT}")
    if stamp.read_text().strip() != want:
        raise StackError(f"kafka: the jars in {jars} were fetched for another {POM.name}; {SETUP_HINT}")
    return f"{jars}/*"


def class_archive() -> Path:
    """The broker's class-data-sharing archive, beside the jars it was made from."""
    return kafka_jars_dir() / "kafka.jsa"


def java_binary() -> str:
    home = os.environ.get("JAVA_HOME")
    if home and (Path(home) / "bin" / "java").exists():
        return str(Path(home) / "bin" / "java")
    found = shutil.which("java")
    if not found:
        raise StackError(
            "kafka: no `java` (Kafka 4 needs Java 17+). Install it with:\n"
            "  sudo apt-get update && sudo apt-get install -y openjdk-17-jre-headless"
        )
    return found


def new_cluster_id() -> str:
    """What ``kafka-storage.sh random-uuid`` prints: 16 random bytes, URL-safe base64, unpadded."""
    while True:
        cluster_id = base64.urlsafe_b64encode(uuid.uuid4().bytes).decode().rstrip("=")
        if not cluster_id.startswith("-"):  # Kafka's Uuid.randomUuid() avoids these too
            return cluster_id


# A single node: every internal topic has one replica, and ClickHouse's consumers join fast.
SETTINGS = {
    "num.partitions": 3,  # topics created without a count (the ingest topics set their own)
    "default.replication.factor": 1,
    "offsets.topic.replication.factor": 1,
    "offsets.topic.num.partitions": 10,  # default 50: fewer logs to open and recover on start
    "transaction.state.log.replication.factor": 1,
    "transaction.state.log.min.isr": 1,
    "share.coordinator.state.topic.replication.factor": 1,
    "share.coordinator.state.topic.min.isr": 1,
    "group.initial.rebalance.delay.ms": 0,  # a consumer group's first join is not held back
    "auto.create.topics.enable": "false",  # the kafka_topics asset creates the topics
    "log.retention.hours": 48,
    "log.cleaner.dedupe.buffer.size": 32 * 1024 * 1024,  # default 128 MB, only compacted topics use it
    "num.network.threads": 2,  # two cores
    "num.io.threads": 4,
    # One node is broker and controller in one JVM: when its heartbeat to itself is late past
    # this, the controller fences it, every partition loses its leader and the group
    # coordinators unload and reload (a generation written just before can be lost). With 3 s,
    # a full test run on two busy cores fenced it twice in 45 min, and a ClickHouse consumer
    # could be left holding no partition. On one node a fence only ever hurts: the session is
    # long. Its one cost: after a kill -9 the restarted broker is refused until the dead one's
    # session expires, so such a restart takes about this long.
    "broker.session.timeout.ms": 20000,
    "broker.heartbeat.interval.ms": 2000,  # Kafka's default
}

LOG4J2 = """\
# Written by platform-stack on each start: the broker logs to stdout, which is logs/kafka.log.
status = warn
shutdownHook = disable
appender.out.type = Console
appender.out.name = STDOUT
appender.out.layout.type = PatternLayout
appender.out.layout.pattern = [%d] %p %m (%c)%n%ex{20}
rootLogger.level = info
rootLogger.appenderRef.out.ref = STDOUT
# Every client and server config object prints all its values at INFO: thousands of lines.
logger.config.name = org.apache.kafka.common.config.AbstractConfig
logger.config.level = warn
logger.request.name = kafka.request.logger
logger.request.level = warn
"""


class KafkaServer(Server):
    name = "kafka"
    dump_archive: Path | None = None  # set by build_class_archive(): write the CDS archive at exit

    def ports(self) -> dict[str, int]:
        return {"kafka": self.cfg.ports["kafka"], "kafka_controller": self.cfg.ports["kafka_controller"]}

    @property
    def data_dir(self) -> Path:
        return self.home / "data"

    def properties(self) -> str:
        port, controller = self.cfg.ports["kafka"], self.cfg.ports["kafka_controller"]
        settings: dict[str, object] = {
            "process.roles": "broker,controller",
            "node.id": NODE_ID,
            "controller.quorum.voters": f"{NODE_ID}@127.0.0.1:{controller}",
            "listeners": f"PLAINTEXT://127.0.0.1:{port},CONTROLLER://127.0.0.1:{controller}",
            "advertised.listeners": f"PLAINTEXT://127.0.0.1:{port}",
            "controller.listener.names": "CONTROLLER",
            "inter.broker.listener.name": "PLAINTEXT",
            "listener.security.protocol.map": "PLAINTEXT:PLAINTEXT,CONTROLLER:PLAINTEXT",
            "log.dirs": str(self.data_dir),
            **SETTINGS,
        }
        lines = [f"{key}={value}" for key, value in settings.items()]
        return (
            "# Written by platform-stack on each start (ports may change); data in log.dirs.\n"
            + "\n".join(lines)
            + "\n"
        )

    def _java(self, main: str, *args: str) -> list[str]:
        classpath = kafka_classpath()
        if self.dump_archive:
            sharing = [f"-XX:ArchiveClassesAtExit={self.dump_archive}"]
        elif class_archive().exists():
            sharing = [f"-XX:SharedArchiveFile={class_archive()}"]
        else:
            sharing = []
        return [
            java_binary(),
            *JVM_OPTS,
            *sharing,
            f"-Dlog4j2.configurationFile={self.home / 'log4j2.properties'}",
            "-cp",
            classpath,
            main,
            *args,
        ]

    def _format(self, config: Path) -> None:
        """Once per data dir: a cluster id (kept in ``cluster-id``) and the KRaft metadata log."""
        id_file = self.home / "cluster-id"
        if not id_file.exists():
            id_file.write_text(new_cluster_id() + "\n")
        argv = self._java(
            "kafka.tools.StorageTool",
            "format",
            "--cluster-id",
            id_file.read_text().strip(),
            "--config",
            str(config),
            "--ignore-formatted",
        )
        result = subprocess.run(argv, capture_output=True, text=True, timeout=120, check=False)
        with self.log_file.open("a") as log:
            log.write(result.stdout + result.stderr)
        if result.returncode != 0:
            raise StackError(
                f"kafka: formatting {self.data_dir} failed (exit {result.returncode}):\n"
                + "\n".join((result.stdout + result.stderr).strip().splitlines()[-20:])
            )

    def _start(self) -> None:
        self.log_file.parent.mkdir(parents=True, exist_ok=True)
        config = self.home / "server.properties"
        config.write_text(self.properties())
        (self.home / "log4j2.properties").write_text(LOG4J2)
        self.data_dir.mkdir(parents=True, exist_ok=True)
        if not (self.data_dir / "meta.properties").exists():
            self._format(config)
        spawn(self._java("kafka.Kafka", str(config)), self.log_file, self.pid_file, cwd=self.home)
        self._wait_healthy(90)

    def down(self, timeout: float = 30.0) -> str:
        # A controlled shutdown takes 1-3 s; past the timeout a SIGKILL loses nothing acknowledged.
        return super().down(timeout)

    def health(self) -> Health:
        from confluent_kafka import KafkaException
        from confluent_kafka.admin import AdminClient

        admin = AdminClient(
            {
                "bootstrap.servers": self.env()["KAFKA_BOOTSTRAP_SERVERS"],
                "socket.timeout.ms": 2000,
                "log_level": 0,  # a down broker is reported in the status line, not as log spam
            }
        )
        try:
            meta = admin.list_topics(timeout=2)
        except KafkaException as exc:
            return Health(False, f"metadata request failed: {exc}", self.pid())
        if not meta.brokers:
            return Health(False, "metadata lists no broker yet", self.pid())
        return Health(
            True,
            f"metadata: cluster {meta.cluster_id}, {len(meta.brokers)} broker(s), {len(meta.topics)} topic(s)",
            self.pid(),
        )

    def env(self) -> dict[str, str]:
        return {"KAFKA_BOOTSTRAP_SERVERS": f"127.0.0.1:{self.cfg.ports['kafka']}"}


def archive_usable(path: Path) -> bool:
    """Whether this JVM maps ``path`` for this classpath (``-Xshare:on`` fails instead of falling back)."""
    argv = [java_binary(), "-Xshare:on", f"-XX:SharedArchiveFile={path}", "-cp", kafka_classpath(), "-version"]
    return path.exists() and subprocess.run(argv, capture_output=True, timeout=60, check=False).returncode == 0


def build_class_archive() -> Path:
    """Start and cleanly stop a throwaway broker with ``-XX:ArchiveClassesAtExit``; keep the checked
    archive as ``class_archive()``. Idempotent: a usable archive is left alone."""
    target = class_archive()
    if archive_usable(target):
        return target
    partial = target.with_name(f"{target.name}.{os.getpid()}.tmp")
    root = Path(tempfile.mkdtemp(prefix="platform-kafka-cds-"))
    try:
        server = KafkaServer(StackConfig(root=root, ports={"kafka": free_port(), "kafka_controller": free_port()}))
        server.dump_archive = partial
        server.up()
        if server.down() != "stopped" or not archive_usable(partial):
            raise StackError(f"kafka: the class archive of a test start is not usable:\n{tail(server.log_file)}")
        partial.replace(target)  # atomic: a JVM never maps a half-written archive
    finally:
        partial.unlink(missing_ok=True)
        shutil.rmtree(root, ignore_errors=True)
    return target
