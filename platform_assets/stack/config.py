"""Where the embedded stack keeps its data, which ports it uses, and its generated credentials."""

from __future__ import annotations

import json
import os
import secrets
from dataclasses import dataclass
from pathlib import Path

from platform_assets.core.access import COMPONENTS, READER_USERS, TENANTS_VAR, Tenant, parse_tenants
from platform_assets.core.paths import state_dir

# Ports sit above the well-known ones so the stack does not collide with real servers.
DEFAULT_PORTS = {
    "clickhouse_http": 18123,
    "clickhouse_tcp": 19000,
    "postgres": 15432,
    "kafka": 19092,
    "kafka_controller": 19093,  # the KRaft controller listener of the same broker process
    "s3": 19090,
    # The second ClickHouse server of a two-shard stack (PLATFORM_CLICKHOUSE_SHARDS=2); unused otherwise.
    "clickhouse_2_http": 18124,
    "clickhouse_2_tcp": 19001,
    # Apache Superset's web server: opt-in (`platform-stack up superset`), not part of the default stack.
    "superset": 18088,
}
SHARDS_ENV = "PLATFORM_CLICKHOUSE_SHARDS"
# The remote_servers cluster of a two-shard stack (CLICKHOUSE_CLUSTER of its resources).
SHARDED_CLUSTER = "platform_shards"


class StackError(RuntimeError):
    """A stack operation failed; the message says what and how to fix it."""


@dataclass(frozen=True)
class Credentials:
    clickhouse_user: str
    clickhouse_password: str
    postgres_user: str
    postgres_password: str
    postgres_db: str
    s3_access_key: str
    s3_secret_key: str
    s3_bucket: str
    cdc_replication_password: str
    collector_hmac_secret: str
    collector_hash_key: str
    user_hash_key: str
    grafana_clickhouse_user: str
    grafana_clickhouse_password: str
    clickhouse_cluster_secret: str
    # Apache Superset (opt-in server, servers/superset.py): its session-signing key and admin login.
    superset_secret_key: str
    superset_admin_user: str
    superset_admin_password: str
    # One per component user of platform_assets/core/access.py, and one per tenant reader.
    clickhouse_role_passwords: dict[str, str]
    tenant_passwords: dict[str, str]


@dataclass(frozen=True)
class StackConfig:
    root: Path
    ports: dict[str, int]
    # 1: one ClickHouse server; 2: two, as the two shards of SHARDED_CLUSTER (docs/scaling.md).
    shards: int = 1
    # PLATFORM_TENANTS as the stack was started with: the tenants' reader users (core/access.py).
    tenants_json: str = ""

    def __post_init__(self) -> None:
        if self.shards not in (1, 2):
            raise StackError(f"{SHARDS_ENV}={self.shards}: the embedded stack runs 1 or 2 ClickHouse shards")
        self.tenants()  # a bad setting fails here, naming the entry

    def tenants(self) -> list[Tenant]:
        try:
            return parse_tenants(self.tenants_json)
        except ValueError as exc:
            raise StackError(str(exc)) from None

    @classmethod
    def from_env(cls, root: str | Path | None = None) -> StackConfig:
        base = Path(root or os.environ.get("PLATFORM_STACK_DIR") or state_dir() / "stack")
        ports = dict(DEFAULT_PORTS)
        saved = base / "ports.json"
        # A stack keeps the ports it last started with; a PLATFORM_*_PORT variable overrides one.
        if saved.exists():
            ports.update({k: int(v) for k, v in json.loads(saved.read_text()).items() if k in ports})
        for name in DEFAULT_PORTS:
            raw = os.environ.get(f"PLATFORM_{name.upper()}_PORT")
            if raw is None:
                continue
            if not raw.isdigit() or not 0 < int(raw) < 65536:
                raise StackError(f"PLATFORM_{name.upper()}_PORT={raw!r} is not a TCP port number")
            ports[name] = int(raw)
        shards = os.environ.get(SHARDS_ENV, "1").strip() or "1"
        if not shards.isdigit():
            raise StackError(f"{SHARDS_ENV}={shards!r} is not 1 or 2")
        # Tenants like ports: PLATFORM_TENANTS when set (empty: none), else what the stack last started with.
        tenants = os.environ.get(TENANTS_VAR)
        if tenants is None:
            saved_tenants = base / "tenants.json"
            tenants = saved_tenants.read_text() if saved_tenants.exists() else ""
        return cls(root=base.resolve(), ports=ports, shards=int(shards), tenants_json=tenants)

    def save_ports(self) -> None:
        self.root.mkdir(parents=True, exist_ok=True)
        (self.root / "ports.json").write_text(json.dumps(self.ports, indent=2))
        (self.root / "tenants.json").write_text(self.tenants_json)

    def dir(self, name: str) -> Path:
        path = self.root / name
        path.mkdir(parents=True, exist_ok=True)
        return path

    def credentials(self) -> Credentials:
        """Generated once per stack directory, kept there (gitignored), never in the repo.
        Keys added by a newer version are generated and saved on first read."""
        path = self.root / "credentials.json"
        saved = json.loads(path.read_text()) if path.exists() else {}
        defaults = {
            "clickhouse_user": "platform",
            "clickhouse_password": secrets.token_urlsafe(18),
            "postgres_user": "platform",
            "postgres_password": secrets.token_urlsafe(18),
            "postgres_db": "app",
            "s3_access_key": "platform",
            "s3_secret_key": secrets.token_urlsafe(18),
            "s3_bucket": "platform-exports",
            "cdc_replication_password": secrets.token_urlsafe(18),
            "collector_hmac_secret": secrets.token_urlsafe(24),
            "collector_hash_key": secrets.token_urlsafe(24),
            "user_hash_key": secrets.token_urlsafe(24),
            "grafana_clickhouse_user": "grafana",  # read-only ClickHouse user of the dashboards
            "grafana_clickhouse_password": secrets.token_urlsafe(18),
            "clickhouse_cluster_secret": secrets.token_urlsafe(18),  # shards of a two-shard stack
            "superset_secret_key": secrets.token_urlsafe(42),
            "superset_admin_user": "admin",
            "superset_admin_password": secrets.token_urlsafe(18),
        }
        creds = {**defaults, **saved}
        # Passwords of users added by a newer version or a new tenant: generated, then kept.
        roles = dict(creds.get("clickhouse_role_passwords") or {})
        for user in (*(c.user for c in COMPONENTS), *READER_USERS):
            roles.setdefault(user, secrets.token_urlsafe(18))
        tenants = dict(creds.get("tenant_passwords") or {})
        for t in self.tenants():
            tenants.setdefault(t.name, secrets.token_urlsafe(18))
        creds["clickhouse_role_passwords"], creds["tenant_passwords"] = roles, tenants
        if creds != saved:
            self.root.mkdir(parents=True, exist_ok=True)
            path.write_text(json.dumps(creds, indent=2))
            path.chmod(0o600)
        return Credentials(**creds)
