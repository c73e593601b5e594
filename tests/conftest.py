"""Real servers for the whole test session: one embedded stack on free ports in a temp dir.

Every test carries one level marker (module-level ``pytestmark``): ``unit`` (no server: ``pytest
-m unit`` runs on a bare machine), ``integration`` (real servers, called directly) or ``e2e``
(through Dagster: materializations, sensors, the UI, the demo). Collection fails for a test
without one, and for a ``unit`` test that asks for the servers.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from platform_assets.core.resources import (
    ClickHouseResource,
    KafkaResource,
    ObjectStoreResource,
    PostgresResource,
    resources_from_env,
)
from platform_assets.stack.scratch import scratch_stack
from platform_assets.stack.servers import Stack

REPO_ROOT = Path(__file__).resolve().parents[1]

# The session stack's tenants (PLATFORM_TENANTS, platform_assets/core/access.py): `acme` reads two
# workspaces; `noisy` has a quota of 5 queries a minute (tests/ops/test_access_roles.py).
TEST_TENANTS = json.dumps(
    [
        {"name": "acme", "workspaces": ["tenant_ws_a", "tenant_ws_b"]},
        {"name": "noisy", "workspaces": ["tenant_ws_c"], "queries_per_minute": 5, "max_threads": 1},
    ]
)

LEVELS = ("unit", "integration", "e2e")
SERVER_FIXTURES = {"stack", "stack_resources", "clickhouse", "postgres", "kafka", "s3", "cdc", "dbt"}


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    problems = []
    for item in items:
        levels = {m.name for m in item.iter_markers() if m.name in LEVELS}
        if len(levels) != 1:
            problems.append(f"{item.nodeid}: needs exactly one of the markers {'/'.join(LEVELS)}, has {sorted(levels)}")
            continue
        servers = SERVER_FIXTURES & set(getattr(item, "fixturenames", ()))
        if "unit" in levels and servers:
            problems.append(f"{item.nodeid}: marked unit but uses the servers ({sorted(servers)})")
    if problems:
        raise pytest.UsageError("test level markers:\n" + "\n".join(problems))


# The session stack's settings once the `stack` fixture has exported them (empty before).
SESSION_ENV: dict[str, str] = {}


@pytest.fixture(autouse=True)
def session_env_unchanged() -> Iterator[None]:
    """Fails the test that leaves the process environment pointing anywhere but the session
    stack (a fixture that exports another stack's settings and outlives its tests), and puts
    the session's settings back so the tests after it still run against the session stack."""
    yield
    changed = sorted(k for k, v in SESSION_ENV.items() if os.environ.get(k) != v)
    if changed:
        os.environ.update(SESSION_ENV)
        pytest.fail(f"the test left the session stack's settings changed: {changed}")


@pytest.fixture(scope="session")
def stack() -> Iterator[Stack]:
    from platform_assets.stack.cli import migrate_app_schema

    saved = dict(os.environ)
    with scratch_stack("platform-test-stack-", tenants=TEST_TENANTS) as stack:
        try:
            stack.up()
            env = stack.env()
            # The launcher only starts servers; the app schema (the CDC source tables, which
            # many tests write to) is applied here, as `platform-stack up` does.
            migrate_app_schema(stack)
            # Dagster resources read EnvVar at run time: point them at this stack.
            os.environ.update(env)
            SESSION_ENV.update(env)
            yield stack
        finally:
            SESSION_ENV.clear()
            os.environ.clear()
            os.environ.update(saved)
            keep_logs(stack.cfg.root / "logs", REPO_ROOT / "test-artifacts" / "stack-logs")


def keep_logs(source: Path, target: Path) -> None:
    """The session stack's server logs (broker, ClickHouse, Postgres, S3) outlive its temp dir:
    a failure that depends on what a server did is read there after the run."""
    shutil.rmtree(target, ignore_errors=True)
    if source.is_dir():
        shutil.copytree(source, target, ignore=shutil.ignore_patterns("*.pid"))


@pytest.fixture(scope="session")
def stack_resources(stack: Stack) -> dict:
    """The resources with this stack's settings, for use outside Dagster runs."""
    return resources_from_env(stack.env())


@pytest.fixture(scope="session")
def clickhouse(stack_resources) -> ClickHouseResource:
    return stack_resources["clickhouse"]


@pytest.fixture(scope="session")
def postgres(stack_resources) -> PostgresResource:
    return stack_resources["postgres"]


@pytest.fixture(scope="session")
def kafka(stack_resources) -> KafkaResource:
    return stack_resources["kafka"]


@pytest.fixture(scope="session")
def s3(stack_resources) -> ObjectStoreResource:
    return stack_resources["s3"]


@pytest.fixture(scope="session")
def cdc(stack: Stack):
    from platform_assets.cdc.resources import CdcResource

    return CdcResource(replication_password=stack.env()["CDC_REPLICATION_PASSWORD"])


DbtRunner = Callable[..., subprocess.CompletedProcess]


@pytest.fixture(scope="module")
def schema(stack, clickhouse, kafka) -> None:
    """The topics and the ClickHouse schema on the session stack, through their assets (a module
    that needs more, e.g. seeded rows, defines its own ``schema``)."""
    from dagster import DagsterInstance, materialize

    from platform_assets.ingest.assets import kafka_topics
    from platform_assets.ops.assets import clickhouse_schema

    result = materialize(
        [kafka_topics, clickhouse_schema],
        resources={"clickhouse": clickhouse, "kafka": kafka},
        instance=DagsterInstance.ephemeral(),
    )
    assert result.success


@pytest.fixture(scope="session")
def dbt_cli(tmp_path_factory) -> Callable[[dict[str, str]], DbtRunner]:
    """``dbt_cli(env)``: a runner of the dbt CLI against the stack whose settings are ``env``,
    with its own log and target folders: run("build", "--select", "x", vars={...})."""

    def make(stack_env: dict[str, str]) -> DbtRunner:
        work = tmp_path_factory.mktemp("dbt")
        exe = str(Path(sys.executable).with_name("dbt"))

        def run(*args: str, vars: dict[str, str] | None = None, check: bool = True) -> subprocess.CompletedProcess:
            cmd = [exe, *args, "--project-dir", str(REPO_ROOT / "dbt"), "--profiles-dir", str(REPO_ROOT / "dbt")]
            if vars:
                cmd += ["--vars", json.dumps(vars)]
            env = {
                **os.environ,
                **stack_env,
                "DBT_LOG_PATH": str(work / "logs"),
                "DBT_TARGET_PATH": str(work / "target"),
                "DBT_SEND_ANONYMOUS_USAGE_STATS": "false",
                "DBT_USE_COLORS": "false",
            }
            proc = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=900)
            if check:
                assert proc.returncode == 0, proc.stdout[-4000:] + proc.stderr[-2000:]
            return proc

        return run

    return make


@pytest.fixture(scope="session")
def dbt(stack, dbt_cli) -> DbtRunner:
    """Runs the dbt CLI against the session stack: dbt("build", "--select", "x", vars={...})."""
    return dbt_cli(stack.env())
