"""The four embedded servers: ClickHouse (chdb-core), Postgres 15, Apache Kafka 4 (KRaft), S3 (moto).

One module per server (``clickhouse``, ``postgres``, ``kafka``, ``s3``) on the shared ``base``;
``Stack`` here runs them together. The launcher only starts servers: no domain schema is
applied here (``platform-stack up`` in cli.py applies the CDC app schema after the start).
"""

from __future__ import annotations

import time

from platform_assets.stack import tls
from platform_assets.stack.config import StackConfig, StackError
from platform_assets.stack.servers.base import HTTP_TIMEOUT, TEMPLATES, Health, Server
from platform_assets.stack.servers.clickhouse import ClickHouseServer, SecondShardServer
from platform_assets.stack.servers.kafka import KafkaServer, kafka_jars_dir, kafka_version
from platform_assets.stack.servers.postgres import PostgresServer, postgres_bin_dir
from platform_assets.stack.servers.s3 import S3Server

__all__ = [
    "HTTP_TIMEOUT",
    "SERVERS",
    "TEMPLATES",
    "ClickHouseServer",
    "Health",
    "KafkaServer",
    "PostgresServer",
    "S3Server",
    "SecondShardServer",
    "Server",
    "Stack",
    "kafka_jars_dir",
    "kafka_version",
    "postgres_bin_dir",
]

SERVERS: tuple[type[Server], ...] = (ClickHouseServer, PostgresServer, KafkaServer, S3Server)


class Stack:
    def __init__(self, cfg: StackConfig | None = None) -> None:
        self.cfg = cfg or StackConfig.from_env()
        classes = SERVERS if self.cfg.shards == 1 else (ClickHouseServer, SecondShardServer, *SERVERS[1:])
        self.servers = {cls.name: cls(self.cfg) for cls in classes}

    def select(self, names: list[str] | None) -> list[Server]:
        unknown = sorted(set(names or []) - set(self.servers))
        if unknown:
            raise StackError(f"unknown server(s) {', '.join(unknown)}; choose from {', '.join(self.servers)}")
        return [s for n, s in self.servers.items() if not names or n in names]

    def up(self, names: list[str] | None = None) -> dict[str, str]:
        self.cfg.save_ports()
        started = time.monotonic()
        result = {server.name: server.up() for server in self.select(names)}
        result["seconds"] = f"{time.monotonic() - started:.2f}"
        return result

    def down(self, names: list[str] | None = None) -> dict[str, str]:
        return {server.name: server.down() for server in reversed(self.select(names))}

    def status(self) -> dict[str, Health]:
        return {name: server.health() for name, server in self.servers.items()}

    def env(self) -> dict[str, str]:
        creds = self.cfg.credentials()
        env = {
            "PLATFORM_ENV": "local",
            "PLATFORM_STACK_DIR": str(self.cfg.root),
            # The collector's signing key (id "local") for this stack.
            "COLLECTOR_HMAC_KEYS": f"local:{creds.collector_hmac_secret}",
            # Keys the user-id hash, at the collector and in dbt staging (identity.py).
            "USER_HASH_KEY": creds.user_hash_key,
        }
        for server in self.servers.values():
            env.update(server.env())
        # The stack's CA and localhost certificate (stack/tls.py): set COLLECTOR_TLS_CERT_FILE and
        # COLLECTOR_TLS_KEY_FILE to these to serve the collector over TLS.
        env.update(tls.ensure(self.cfg.root / "tls").env())
        return env
