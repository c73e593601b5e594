"""The four embedded servers: ClickHouse (chdb-core), Postgres 15, Apache Kafka 4 (KRaft), S3 (moto),
and the opt-in Apache Superset.

One module per server (``clickhouse``, ``postgres``, ``kafka``, ``s3``, ``superset``) on the shared
``base``; ``Stack`` here runs them together. Superset (``OPTIONAL``) starts only when named
(``platform-stack up superset``); ``down``, ``status`` and ``env`` include it while it runs.
The launcher only starts servers: no domain schema is applied here (``platform-stack up`` in
cli.py applies the CDC app schema after the start).
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
from platform_assets.stack.servers.superset import SupersetServer

__all__ = [
    "HTTP_TIMEOUT",
    "OPTIONAL",
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
    "SupersetServer",
    "kafka_jars_dir",
    "kafka_version",
    "postgres_bin_dir",
]

SERVERS: tuple[type[Server], ...] = (ClickHouseServer, PostgresServer, KafkaServer, S3Server)
# Started only when named: Superset's first start (a new metadata database) takes up to minutes.
OPTIONAL: tuple[type[Server], ...] = (SupersetServer,)


class Stack:
    def __init__(self, cfg: StackConfig | None = None) -> None:
        self.cfg = cfg or StackConfig.from_env()
        classes = SERVERS if self.cfg.shards == 1 else (ClickHouseServer, SecondShardServer, *SERVERS[1:])
        self.servers = {cls.name: cls(self.cfg) for cls in classes}
        self.optional = {cls.name: cls(self.cfg) for cls in OPTIONAL}

    def select(self, names: list[str] | None) -> list[Server]:
        """The named servers; none named: the default servers."""
        everything = {**self.servers, **self.optional}
        unknown = sorted(set(names or []) - set(everything))
        if unknown:
            raise StackError(f"unknown server(s) {', '.join(unknown)}; choose from {', '.join(everything)}")
        if not names:
            return list(self.servers.values())
        return [s for n, s in everything.items() if n in names]

    def running_optional(self) -> list[Server]:
        return [s for s in self.optional.values() if s.pid() is not None]

    def up(self, names: list[str] | None = None) -> dict[str, str]:
        self.cfg.save_ports()
        started = time.monotonic()
        result = {server.name: server.up() for server in self.select(names)}
        result["seconds"] = f"{time.monotonic() - started:.2f}"
        return result

    def down(self, names: list[str] | None = None) -> dict[str, str]:
        """The named servers; none named: every server, a running optional one too."""
        servers = self.select(names) + ([] if names else self.running_optional())
        return {server.name: server.down() for server in reversed(servers)}

    def status(self) -> dict[str, Health]:
        servers = [*self.servers.values(), *self.running_optional()]
        return {server.name: server.health() for server in servers}

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
        # An optional server's settings while it runs (a code location loaded then publishes to it).
        for optional in self.running_optional():
            env.update(optional.env())
        # The stack's CA and localhost certificate (stack/tls.py): set COLLECTOR_TLS_CERT_FILE and
        # COLLECTOR_TLS_KEY_FILE to these to serve the collector over TLS.
        env.update(tls.ensure(self.cfg.root / "tls").env())
        return env
