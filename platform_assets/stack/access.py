"""users.xml sections for the component users, the readers and the tenants (platform_assets/core/access.py).

The embedded stack writes them into its users.xml with each password's SHA-256 (generated per
stack, ``credentials.json``); ``docker/clickhouse/users.d/components.xml`` is the components'
rendering with ``from_env`` passwords (``python -m platform_assets.stack.access`` prints it; a test
keeps the file equal), and ``python -m platform_assets.stack.access --tenants`` prints the tenants'
file for a deployment from ``PLATFORM_TENANTS``.
"""

from __future__ import annotations

import argparse
import hashlib
import os
import sys
from collections.abc import Callable, Mapping
from xml.sax.saxutils import escape, quoteattr

from platform_assets.core.access import (
    COMPONENTS,
    LOCAL_SUFFIX,
    READERS,
    TENANTS_VAR,
    Reader,
    Tenant,
    parse_tenants,
    password_var,
    tenant_tables,
)

# How a user's password appears: (user, its variable) -> the XML element.
Password = Callable[[str, str], str]


def hashed(passwords: Mapping[str, str]) -> Password:
    """Passwords known now (the embedded stack): their SHA-256 only reaches users.xml."""

    def element(user: str, var: str) -> str:
        digest = hashlib.sha256(passwords[user].encode()).hexdigest()
        return f"<password_sha256_hex>{digest}</password_sha256_hex>"

    return element


def from_env(user: str, var: str) -> str:
    """Passwords from the server's environment (docker, a deployment)."""
    return f"<password from_env={quoteattr(var)}/>"


def _grants(grants: tuple[str, ...] | list[str], indent: str) -> str:
    return "\n".join(f"{indent}<query>GRANT {escape(g)}</query>" for g in grants)


MONITOR_PROFILE = """    <!-- Sensors and checks: small, bounded queries; they run every 30 s next to ingestion. -->
    <monitor>
      <max_threads>2</max_threads>
      <max_execution_time>120</max_execution_time>
      <max_memory_usage>2000000000</max_memory_usage>
    </monitor>"""


def _reader_bounds(r: Reader) -> dict[str, int]:
    return {
        "max_execution_time": r.max_execution_time,
        "max_result_rows": r.max_result_rows,
        "max_threads": r.max_threads,
        "max_memory_usage": r.max_memory_usage,
    }


def readers_profiles() -> str:
    blocks = []
    for r in READERS:
        bounds = _reader_bounds(r)
        values = "\n".join(f"      <{k}>{v}</{k}>" for k, v in bounds.items())
        caps = "\n".join(f"        <{k}><max>{v}</max></{k}>" for k, v in bounds.items())
        blocks.append(
            f"    <!-- {r.user}: read-only (2: its driver sends settings with each query), bounded per query. -->\n"
            f"    <{r.profile}>\n      <readonly>2</readonly>\n{values}\n"
            f"      <constraints>\n{caps}\n      </constraints>\n    </{r.profile}>"
        )
    return "\n".join(blocks)


def components_profiles() -> str:
    return "\n".join([MONITOR_PROFILE, readers_profiles()])


def components_quotas() -> str:
    """The readers' quotas: queries per minute, so a dashboard refresh storm is refused, not queued."""
    return "\n".join(
        f"    <{r.quota}><interval><duration>60</duration><queries>{r.queries_per_minute}</queries>"
        f"<errors>0</errors><result_rows>0</result_rows><read_rows>0</read_rows>"
        f"<execution_time>0</execution_time></interval></{r.quota}>"
        for r in READERS
    )


def readers_users(password: Password, networks: str) -> str:
    return "\n".join(
        f"    <!-- {escape(r.purpose)} -->\n"
        f"    <{r.user}>\n"
        f"      {password(r.user, password_var(r.user))}\n"
        f"      <networks>{networks}</networks>\n"
        f"      <profile>{r.profile}</profile>\n"
        f"      <quota>{r.quota}</quota>\n"
        f"      <grants>\n{_grants(r.grants, '        ')}\n      </grants>\n"
        f"    </{r.user}>"
        for r in READERS
    )


def components_users(password: Password, networks: str) -> str:
    """The component users, then the readers."""
    blocks = []
    for c in COMPONENTS:
        blocks.append(
            f"    <!-- {escape(c.purpose)} -->\n"
            f"    <{c.user}>\n"
            f"      {password(c.user, password_var(c.user))}\n"
            f"      <networks>{networks if c.logs_in else LOOPBACK}</networks>\n"
            f"      <profile>{c.profile}</profile>\n"
            f"      <quota>default</quota>\n"
            f"      <grants>\n{_grants(c.grants, '        ')}\n      </grants>\n"
            f"    </{c.user}>"
        )
    blocks.append(readers_users(password, networks))
    return "\n".join(blocks)


def _workspace_filter(t: Tenant) -> str:
    values = ", ".join("'" + w.replace("\\", "\\\\").replace("'", "\\'") + "'" for w in t.workspaces)
    return escape(f"workspace_id IN ({values})")


def tenants_profiles(tenants: list[Tenant]) -> str:
    blocks = []
    for t in tenants:
        bounds = {
            "max_threads": t.max_threads,
            "max_memory_usage": t.max_memory_usage,
            "max_execution_time": t.max_execution_time,
        }
        values = "\n".join(f"      <{k}>{v}</{k}>" for k, v in bounds.items())
        caps = "\n".join(f"        <{k}><max>{v}</max></{k}>" for k, v in bounds.items())
        blocks.append(
            f"    <!-- Tenant {t.name}: read-only (2: BI clients send settings), bounded per query. -->\n"
            f"    <{t.user}>\n      <readonly>2</readonly>\n{values}\n"
            f"      <constraints>\n{caps}\n      </constraints>\n    </{t.user}>"
        )
    return "\n".join(blocks)


def tenants_quotas(tenants: list[Tenant]) -> str:
    return "\n".join(
        f"    <{t.user}><interval><duration>60</duration><queries>{t.queries_per_minute}</queries>"
        f"<errors>0</errors><result_rows>0</result_rows><read_rows>0</read_rows>"
        f"<execution_time>0</execution_time></interval></{t.user}>"
        for t in tenants
    )


def tenants_users(tenants: list[Tenant], password: Password, networks: str) -> str:
    tables = tenant_tables()
    blocks = []
    for t in tenants:
        names = [n for table in tables for n in (table, table + LOCAL_SUFFIX)]
        grants = _grants([f"SELECT ON {n}" for n in names], "        ")
        policies = []
        by_db: dict[str, list[str]] = {}
        for n in names:
            db, _, table = n.partition(".")
            by_db.setdefault(db, []).append(table)
        for db, db_tables in by_db.items():
            inner = "\n".join(f"          <{tb}><filter>{_workspace_filter(t)}</filter></{tb}>" for tb in db_tables)
            policies.append(f"        <{db}>\n{inner}\n        </{db}>")
        blocks.append(
            f"    <!-- Tenant {t.name}: workspaces {escape(', '.join(t.workspaces))}, rows of those only. -->\n"
            f"    <{t.user}>\n"
            f"      {password(t.user, t.password_var)}\n"
            f"      <networks>{networks}</networks>\n"
            f"      <profile>{t.user}</profile>\n"
            f"      <quota>{t.user}</quota>\n"
            f"      <databases>\n" + "\n".join(policies) + "\n      </databases>\n"
            f"      <grants>\n{grants}\n      </grants>\n"
            f"    </{t.user}>"
        )
    return "\n".join(blocks)


LOOPBACK = "<ip>127.0.0.1</ip><ip>::1</ip>"
DOCKER_NETWORKS = "<ip>::/0</ip>"  # the Compose network; host ports bind 127.0.0.1 only


def docker_components() -> str:
    return (
        "<!-- Generated by `python -m platform_assets.stack.access` from platform_assets/core/access.py;\n"
        "     mounted into /etc/clickhouse-server/users.d/ by docker/docker-compose.yml. Passwords come\n"
        "     from the container environment (docker/.env). docs/security.md. -->\n"
        "<clickhouse>\n  <profiles>\n"
        f"{components_profiles()}\n  </profiles>\n  <quotas>\n{components_quotas()}\n  </quotas>\n  <users>\n"
        f"{components_users(from_env, DOCKER_NETWORKS)}\n  </users>\n</clickhouse>\n"
    )


def deployment_tenants(tenants: list[Tenant]) -> str:
    return (
        f"<!-- Generated by `python -m platform_assets.stack.access --tenants` from {TENANTS_VAR}. -->\n"
        "<clickhouse>\n"
        f"  <profiles>\n{tenants_profiles(tenants)}\n  </profiles>\n"
        f"  <quotas>\n{tenants_quotas(tenants)}\n  </quotas>\n"
        f"  <users>\n{tenants_users(tenants, from_env, DOCKER_NETWORKS)}\n  </users>\n"
        "</clickhouse>\n"
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tenants", action="store_true", help=f"print the tenants' users.d file from {TENANTS_VAR}")
    args = parser.parse_args(argv)
    if args.tenants:
        sys.stdout.write(deployment_tenants(parse_tenants(os.environ.get(TENANTS_VAR))))
    else:
        sys.stdout.write(docker_components())
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
