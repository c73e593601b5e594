"""Sharded layout: a scratch stack of its own with two ClickHouse servers as the two shards of
one cluster (``PLATFORM_CLICKHOUSE_SHARDS=2``: ``remote_servers`` with a shared secret, no Keeper),
the schema applied node by node in its cluster form (``CLICKHOUSE_CLUSTER_NODES``: ``_local``
MergeTree tables under ``Distributed`` tables, Kafka tables on both nodes in one consumer group),
and dbt connected to the first node, reading the raw tables through the Distributed tables.

The process environment points at this stack per test only (``sharded_env``), never for the
fixtures' life; the folder's ``__init__.py`` makes it a package, so the stack stops after its last
test.
"""

from __future__ import annotations

import subprocess
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import pytest
from dagster import DagsterInstance, materialize

from platform_assets.core.resources import ClickHouseResource, resources_from_env
from platform_assets.ingest.assets import kafka_topics
from platform_assets.ops.assets import clickhouse_schema
from platform_assets.stack.cli import migrate_app_schema
from platform_assets.stack.scratch import started_scratch_stack
from platform_assets.stack.servers import Stack


@dataclass
class ShardedStack:
    stack: Stack
    env: dict[str, str]
    res: dict[str, Any]
    instance: DagsterInstance

    @property
    def nodes(self) -> list[ClickHouseResource]:
        return self.res["clickhouse"].nodes()

    def rows(self, sql: str, node: int | None = None, **params: Any) -> list[tuple]:
        """``sql`` on the first node (the cluster's entry point), or on node ``node`` alone."""
        target = self.res["clickhouse"] if node is None else self.nodes[node]
        with target.client() as ch:
            return ch.query(sql, parameters=params or None).result_rows


@pytest.fixture(scope="package")
def sharded() -> Iterator[ShardedStack]:
    with started_scratch_stack("platform-sharded-", shards=2) as stack, DagsterInstance.ephemeral() as instance:
        migrate_app_schema(stack)
        env = stack.env()
        yield ShardedStack(stack, env, resources_from_env(env), instance)


@pytest.fixture(autouse=True)
def sharded_env(sharded: ShardedStack) -> Iterator[None]:
    with pytest.MonkeyPatch.context() as patch:
        for name, value in sharded.env.items():
            patch.setenv(name, value)
        yield


@pytest.fixture(scope="package")
def sharded_schema(sharded: ShardedStack) -> dict[str, Any]:
    """Topics and the ClickHouse schema materialized through Dagster on the two-shard stack."""
    res = sharded.res
    with pytest.MonkeyPatch.context() as patch:
        for name, value in sharded.env.items():
            patch.setenv(name, value)
        result = materialize(
            [kafka_topics, clickhouse_schema],
            resources={"clickhouse": res["clickhouse"], "kafka": res["kafka"]},
            instance=sharded.instance,
        )
    assert result.success
    events = result.asset_materializations_for_node(clickhouse_schema.op.name)
    return dict(events[0].metadata)


@pytest.fixture(scope="package")
def sharded_dbt(sharded: ShardedStack, dbt_cli) -> Callable[..., subprocess.CompletedProcess]:
    """The dbt CLI against the first node of the two-shard stack."""
    return dbt_cli(sharded.env)
