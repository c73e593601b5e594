"""ClickHouse 26.9 from the chdb-core wheel, HTTP and native ports (see clickhouse_main.py)."""

from __future__ import annotations

import hashlib
import json
import sys

import requests

from platform_assets.core.access import READER_USERS, ROLE_USERS, TENANTS_VAR, password_var
from platform_assets.stack.access import (
    components_profiles,
    components_quotas,
    components_users,
    hashed,
    tenants_profiles,
    tenants_quotas,
    tenants_users,
)
from platform_assets.stack.config import SHARDED_CLUSTER, StackConfig, StackError
from platform_assets.stack.process import require_free_ports, spawn, wait_exit
from platform_assets.stack.servers.base import HTTP_TIMEOUT, TEMPLATES, Health, Server

# A two-shard stack (StackConfig.shards = 2): inserts into a Distributed table are written to the
# shards before the INSERT returns; this build never sends queued (background) inserts.
SHARDED_PROFILE = (
    "      <!-- Two shards: this build never delivers background Distributed inserts (ARCHITECTURE.md). -->\n"
    "      <distributed_foreground_insert>1</distributed_foreground_insert>"
)


LOCALHOST = "<ip>127.0.0.1</ip><ip>::1</ip>"


class ClickHouseServer(Server):
    name = "clickhouse"
    http_key, tcp_key = "clickhouse_http", "clickhouse_tcp"
    log_name = "clickhouse-server"

    def ports(self) -> dict[str, int]:
        return {self.http_key: self.cfg.ports[self.http_key], self.tcp_key: self.cfg.ports[self.tcp_key]}

    @property
    def http_port(self) -> int:
        return self.cfg.ports[self.http_key]

    def up(self) -> str:
        result = super().up()
        users = self.home / "users.xml"
        if result == "running" and (not users.exists() or users.read_text() != self._users_text()):
            # Users added by a newer version (e.g. the read-only grafana user): this server
            # reads users.xml only at start (SYSTEM RELOAD USERS has no effect), so restart.
            self.down()
            require_free_ports(self.name, self.ports())
            self._start()
            return "restarted (new users)"
        return result

    def _users_text(self) -> str:
        c = self.creds
        tenants = self.cfg.tenants()
        tenant_passwords = {t.user: c.tenant_passwords[t.name] for t in tenants}
        return (
            (TEMPLATES / "clickhouse-users.xml")
            .read_text()
            .format(
                default_profile_extra=SHARDED_PROFILE if self.cfg.shards > 1 else "",
                admin_user=c.clickhouse_user,
                admin_password_sha256=hashlib.sha256(c.clickhouse_password.encode()).hexdigest(),
                grafana_user=c.grafana_clickhouse_user,
                grafana_password_sha256=hashlib.sha256(c.grafana_clickhouse_password.encode()).hexdigest(),
                component_profiles=components_profiles(),
                component_quotas=components_quotas(),
                component_users=components_users(hashed(c.clickhouse_role_passwords), LOCALHOST),
                tenant_profiles=tenants_profiles(tenants),
                tenant_quotas=tenants_quotas(tenants),
                tenant_users=tenants_users(tenants, hashed(tenant_passwords), LOCALHOST),
            )
        )

    def _write_users(self) -> None:
        (self.home / "users.xml").write_text(self._users_text())

    def _write_config(self) -> None:
        c = self.creds
        users = self.home / "users.xml"
        (self.home / "config.xml").write_text(
            (TEMPLATES / "clickhouse-config.xml")
            .read_text()
            .format(
                http_port=self.http_port,
                tcp_port=self.cfg.ports[self.tcp_key],
                log_dir=self.cfg.dir("logs"),
                log_name=self.log_name,
                remote_servers=remote_servers(self.cfg) if self.cfg.shards > 1 else "",
                users_xml=users,
            )
        )
        self._write_users()
        server = {
            "http_port": self.http_port,
            "tcp_port": self.cfg.ports[self.tcp_key],
            "user": c.clickhouse_user,
            "password": c.clickhouse_password,
        }
        (self.home / "server.json").write_text(json.dumps(server))
        (self.home / "server.json").chmod(0o600)

    def _start(self) -> None:
        self._write_config()
        spawn(
            [sys.executable, "-m", "platform_assets.stack.clickhouse_main", str(self.home)],
            self.log_file,
            self.pid_file,
            cwd=self.home,
        )
        self._wait_healthy(60)

    def query(self, sql: str, timeout: float = HTTP_TIMEOUT) -> str:
        resp = requests.post(
            f"http://127.0.0.1:{self.http_port}/",
            data=sql.encode(),
            auth=(self.creds.clickhouse_user, self.creds.clickhouse_password),
            timeout=timeout,
        )
        if resp.status_code != 200:
            raise StackError(f"clickhouse: {resp.text.strip()}")
        return resp.text

    def health(self) -> Health:
        try:
            version = self.query("SELECT version()", timeout=2).strip()
        except (requests.RequestException, StackError) as exc:
            return Health(False, f"HTTP query failed: {type(exc).__name__}", self.pid())
        return Health(True, f"SELECT version() = {version}", self.pid())

    def down(self, timeout: float = 10.0) -> str:
        pid = self.pid()
        if pid is None:
            return "not running"
        from platform_assets.stack.clickhouse_main import KILL_SERVE_SQL

        try:
            self.query(KILL_SERVE_SQL)  # ends the serving query; the process then exits cleanly
            if wait_exit(pid, timeout):
                self.pid_file.unlink(missing_ok=True)
                return "stopped"
        except (requests.RequestException, StackError):
            pass
        return super().down(timeout)

    def env(self) -> dict[str, str]:
        if self.cfg.shards > 1:
            # Every shard, by HTTP address: the schema asset applies the DDL on each in turn.
            nodes = ",".join(f"127.0.0.1:{self.cfg.ports[cls.http_key]}" for cls in SHARD_SERVERS)
            cluster = {"CLICKHOUSE_CLUSTER": SHARDED_CLUSTER, "CLICKHOUSE_CLUSTER_NODES": nodes}
        else:
            cluster = {}
        return {
            **cluster,
            "CLICKHOUSE_HOST": "127.0.0.1",
            "CLICKHOUSE_HTTP_PORT": str(self.cfg.ports["clickhouse_http"]),
            "CLICKHOUSE_TCP_PORT": str(self.cfg.ports["clickhouse_tcp"]),
            "CLICKHOUSE_USER": self.creds.clickhouse_user,
            "CLICKHOUSE_PASSWORD": self.creds.clickhouse_password,
            "GRAFANA_CLICKHOUSE_USER": self.creds.grafana_clickhouse_user,
            "GRAFANA_CLICKHOUSE_PASSWORD": self.creds.grafana_clickhouse_password,
            # The component users (ingest, the views' definer, never logs in) and the tenants.
            **{password_var(u): self.creds.clickhouse_role_passwords[u] for u in (*ROLE_USERS, *READER_USERS)},
            **({TENANTS_VAR: self.cfg.tenants_json} if self.cfg.tenants() else {}),
            **{t.password_var: self.creds.tenant_passwords[t.name] for t in self.cfg.tenants()},
        }


class SecondShardServer(ClickHouseServer):
    """The second ClickHouse server of a two-shard stack: same users, its own ports, data and log.
    Its connection settings are the first server's (the cluster's entry point), so it adds none."""

    name = "clickhouse_2"
    http_key, tcp_key = "clickhouse_2_http", "clickhouse_2_tcp"
    log_name = "clickhouse-2-server"

    def env(self) -> dict[str, str]:
        return {}


SHARD_SERVERS: tuple[type[ClickHouseServer], ...] = (ClickHouseServer, SecondShardServer)


def remote_servers(cfg: StackConfig) -> str:
    """The ``remote_servers`` section naming every shard (one replica each, no Keeper). The
    shards authenticate each other's queries with a shared secret, so a Distributed read runs on
    every shard as the user who sent it, with that user's grants."""
    shards = "".join(
        f"      <shard><replica><host>127.0.0.1</host><port>{cfg.ports[cls.tcp_key]}</port></replica></shard>\n"
        for cls in SHARD_SERVERS[: cfg.shards]
    )
    secret = cfg.credentials().clickhouse_cluster_secret
    return (
        f"  <remote_servers>\n    <{SHARDED_CLUSTER}>\n      <secret>{secret}</secret>\n{shards}"
        f"    </{SHARDED_CLUSTER}>\n  </remote_servers>"
    )
