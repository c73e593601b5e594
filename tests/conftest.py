"""Real servers for the whole test session: one embedded stack on free ports in a temp dir."""

from __future__ import annotations

import os
from collections.abc import Iterator

import pytest

from platform_assets.resources import (
    ClickHouseResource,
    KafkaResource,
    ObjectStoreResource,
    PostgresResource,
    resources_from_env,
)
from platform_assets.stack.scratch import scratch_stack
from platform_assets.stack.servers import Stack


@pytest.fixture(scope="session")
def stack() -> Iterator[Stack]:
    saved = dict(os.environ)
    with scratch_stack("platform-test-stack-") as stack:
        try:
            stack.up()
            # Dagster resources read EnvVar at run time: point them at this stack.
            os.environ.update(stack.env())
            yield stack
        finally:
            os.environ.clear()
            os.environ.update(saved)


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
