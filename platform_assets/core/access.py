"""Who may do what in ClickHouse: one user per component, and the tenants' readers.

Each component connects as its own user (``ClickHouseResource.as_role``; dbt's profiles.yml);
the grants below are all it holds. ``admin`` is ``CLICKHOUSE_USER`` (DDL, the CDC replica, the
backup, restarting consumers). The dashboards' reader is the Grafana user (``GRAFANA_CLICKHOUSE_*``);
``READERS`` are the other BI front ends' read-only users (Superset: ``CLICKHOUSE_SUPERSET_PASSWORD``).
The users are defined in users.xml, rendered from this table (``platform_assets/stack/access.py``:
the embedded stack writes it on every start; ``docker/clickhouse/users.d/components.xml`` is the
same rendering with passwords from the environment), because the embedded server has no writable
SQL user storage. docs/security.md lists what each can do and why.

Tenants (``PLATFORM_TENANTS``): a reader user per tenant that sees only the rows of its workspaces
in the marts and rollups that carry ``workspace_id`` (a row policy per table), bounded by its
settings profile and a quota per minute, so a noisy tenant cannot starve ingestion.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from platform_assets.core.paths import dbt_dir, ddl_dir

ADMIN = "admin"
INGEST = "ingest"
TRANSFORM = "transform"
EXPORT = "export"
MONITOR = "monitor"
LOCAL_SUFFIX = "_local"  # the shard-local twin of a table on a cluster (ops/cluster.py uses it too)


DBT_ENGINES = ("MergeTree", "ReplacingMergeTree", "ReplicatedMergeTree", "Distributed", "Memory")


@dataclass(frozen=True)
class Component:
    user: str
    purpose: str
    grants: tuple[str, ...]
    profile: str = "default"
    logs_in: bool = True  # False: the views' definer; reachable from the server's loopback only


COMPONENTS: tuple[Component, ...] = (
    Component(
        INGEST,
        "the definer of every materialized view (clickhouse_ddl/013): what the Kafka tables feed "
        "into the raw, dead-letter, ops and rollup tables; it never logs in",
        (
            "SELECT ON kafka_queue.*",
            "SELECT, INSERT ON raw.*",
            "INSERT ON dead_letter.*",
            "INSERT ON ops.*",
            "SELECT, INSERT ON rollups.*",
        ),
        logs_in=False,
    ),
    Component(
        TRANSFORM,
        "dbt: reads the raw tables and the CDC replica, owns the staging and marts databases",
        (
            "SELECT ON raw.*",
            "SELECT ON pg_repl.*",
            "SELECT ON rollups.*",
            "ALL ON staging.*",
            "ALL ON marts.*",
            # The engines dbt-clickhouse creates tables with (its default MergeTree, the cluster's
            # Distributed over ReplicatedMergeTree); no engine that reaches outside the server.
            *(f"TABLE ENGINE ON {engine}" for engine in DBT_ENGINES),
            "CREATE TEMPORARY TABLE ON *.*",
            "REMOTE ON *.*",  # cluster(): dbt-clickhouse reads shards' system tables on a cluster
            "SELECT ON system.*",
        ),
    ),
    Component(
        EXPORT,
        "Parquet exports and the daily report: reads what it exports, writes through s3()/file()",
        (
            "SELECT ON raw.*",
            "SELECT ON staging.*",
            "SELECT ON marts.*",
            "SELECT ON rollups.*",
            "S3 ON *.*",
            "FILE ON *.*",
            "CREATE TEMPORARY TABLE ON *.*",
            "SELECT ON system.*",
        ),
    ),
    Component(
        MONITOR,
        "sensors and checks: reads system tables and every platform database, records lag rows",
        (
            "SELECT ON system.*",
            # system.kafka_consumers shows only the consumers of tables the user may see; SHOW (not
            # SELECT, which would consume) lets the lag sensor see which partitions each holds.
            "SHOW TABLES ON kafka_queue.*",
            "SELECT ON platform_meta.*",
            "SELECT ON raw.*",
            "SELECT ON dead_letter.*",
            "SELECT ON pg_repl.*",
            "SELECT ON staging.*",
            "SELECT ON marts.*",
            "SELECT ON rollups.*",
            "SELECT, INSERT ON ops.*",
            "SYSTEM FLUSH LOGS ON *.*",  # dbt's cost observations read system.query_log right after a run
            "CREATE TEMPORARY TABLE ON *.*",  # the format() table function the lag rows go through
            "REMOTE ON *.*",  # clusterAllReplicas() over system tables on a cluster
        ),
        profile="monitor",
    ),
)
ROLE_USERS = tuple(c.user for c in COMPONENTS if c.logs_in)


@dataclass(frozen=True)
class Reader:
    """A BI front end's read-only user (rendered with the components): SELECT on its grants only,
    readonly=2 with capped bounds (clients send settings with each query), its own quota."""

    user: str
    purpose: str
    grants: tuple[str, ...]
    queries_per_minute: int
    max_threads: int = 4
    max_memory_usage: int = 4_000_000_000  # bytes per query
    max_execution_time: int = 60  # seconds per query
    max_result_rows: int = 1_000_000

    @property
    def profile(self) -> str:
        return self.user

    @property
    def quota(self) -> str:
        return self.user


SUPERSET = "superset"
# Grafana's reader is the template's `grafana` user (stack/templates/clickhouse-users.xml).
READERS: tuple[Reader, ...] = (
    Reader(
        SUPERSET,
        "Apache Superset's database connection (docs/superset.md): reads the marts and the rollups, nothing else",
        ("SELECT ON marts.*", "SELECT ON rollups.*"),
        queries_per_minute=1200,
    ),
)
READER_USERS = tuple(r.user for r in READERS)


def component(user: str) -> Component:
    for c in COMPONENTS:
        if c.user == user:
            return c
    raise KeyError(f"no ClickHouse component user {user!r}: one of {', '.join(c.user for c in COMPONENTS)}")


def password_var(user: str) -> str:
    """The environment variable holding a component's password, e.g. CLICKHOUSE_MONITOR_PASSWORD."""
    return f"CLICKHOUSE_{user.upper()}_PASSWORD"


# ------------------------------------------------------------------------------------- tenants

TENANTS_VAR = "PLATFORM_TENANTS"
NAME = re.compile(r"^[a-z][a-z0-9_]{0,31}$")
WORKSPACE = re.compile(r"^[A-Za-z0-9_.:-]{1,64}$")
RESERVED = {c.user for c in COMPONENTS} | set(READER_USERS) | {"default", "admin", "platform", "grafana", "readonly"}


@dataclass(frozen=True)
class Tenant:
    """One tenant's reader: ``tenant_<name>``, its workspaces, and its bounds."""

    name: str
    workspaces: tuple[str, ...]
    queries_per_minute: int = 600
    max_threads: int = 2
    max_memory_usage: int = 2_000_000_000  # bytes per query
    max_execution_time: int = 30  # seconds per query

    @property
    def user(self) -> str:
        return f"tenant_{self.name}"

    @property
    def password_var(self) -> str:
        return f"TENANT_{self.name.upper()}_PASSWORD"


LIMITS = ("queries_per_minute", "max_threads", "max_memory_usage", "max_execution_time")


def parse_tenants(raw: str | None) -> list[Tenant]:
    """``PLATFORM_TENANTS``: a JSON list of {"name", "workspaces", and optionally the limits}.
    Raises ValueError naming the entry and field that is wrong; empty or unset: no tenants."""
    if not raw or not raw.strip():
        return []
    try:
        data = json.loads(raw)
    except json.JSONDecodeError as exc:
        raise ValueError(f"{TENANTS_VAR} is not JSON: {exc}") from None
    if not isinstance(data, list):
        raise ValueError(f'{TENANTS_VAR} must be a JSON list of {{"name": ..., "workspaces": [...]}}')
    tenants = [_tenant(i, entry) for i, entry in enumerate(data)]
    names = [t.name for t in tenants]
    dupes = sorted({n for n in names if names.count(n) > 1})
    if dupes:
        raise ValueError(f"{TENANTS_VAR}: tenant name(s) {dupes} appear more than once")
    return tenants


def _tenant(i: int, entry: object) -> Tenant:
    where = f"{TENANTS_VAR}[{i}]"
    if not isinstance(entry, dict):
        raise ValueError(f"{where} is not an object")
    unknown = sorted(set(entry) - {"name", "workspaces", *LIMITS})
    if unknown:
        raise ValueError(f"{where}: unknown field(s) {unknown}")
    name = entry.get("name")
    if not isinstance(name, str) or not NAME.match(name) or name in RESERVED:
        raise ValueError(f"{where}.name {name!r}: lower-case letters, digits and '_', starting with a letter")
    workspaces = entry.get("workspaces")
    if not isinstance(workspaces, list) or not workspaces:
        raise ValueError(f"{where}.workspaces: a non-empty list of workspace ids")
    for w in workspaces:
        if not isinstance(w, str) or not WORKSPACE.match(w) or w == "__all__":
            raise ValueError(f"{where}.workspaces: {w!r} is not a workspace id")
    limits = {}
    for key in LIMITS:
        if key in entry:
            value = entry[key]
            if not isinstance(value, int) or isinstance(value, bool) or value <= 0:
                raise ValueError(f"{where}.{key}: {value!r} is not a positive whole number")
            limits[key] = value
    return Tenant(name, tuple(dict.fromkeys(workspaces)), **limits)


def tenants_from_env(env: Mapping[str, str]) -> list[Tenant]:
    return parse_tenants(env.get(TENANTS_VAR))


# The tables a tenant reads: the marts and rollups that carry workspace_id (dbt's declared columns,
# the rollups' DDL); each with its _local twin for a cluster. Tables without it stay hidden.
ROLLUP_TABLE = re.compile(r"CREATE TABLE IF NOT EXISTS rollups\.(\w+)\s*\((.*?)\)\s*ENGINE", re.S)
MODEL = re.compile(r"^  - name: (\w+)$", re.M)
COLUMN = re.compile(r"^      - name: (\w+)$", re.M)


def tenant_tables(marts: Path | None = None, ddl: Path | None = None) -> list[str]:
    marts = marts or dbt_dir() / "models" / "marts"
    ddl = ddl or ddl_dir()
    tables = []
    for yml in sorted(marts.rglob("*.yml")):
        text = yml.read_text()
        models = MODEL.findall(text)
        if len(models) == 1 and "workspace_id" in COLUMN.findall(text):
            tables.append(f"marts.{models[0]}")
    for sql in sorted(ddl.glob("*.sql")):
        for name, columns in ROLLUP_TABLE.findall(sql.read_text()):
            if re.search(r"^\s*workspace_id\s", columns, re.M):
                tables.append(f"rollups.{name}")
    return tables
