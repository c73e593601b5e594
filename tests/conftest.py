"""Real servers for the whole test session: one embedded stack on free ports in a temp dir."""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from platform_assets.resources import ClickHouseResource, KafkaResource, ObjectStoreResource, PostgresResource
from platform_assets.stack.config import DEFAULT_PORTS, StackConfig
from platform_assets.stack.process import free_port
from platform_assets.stack.servers import Stack


def new_stack_dir(prefix: str) -> Path:
    # mkdtemp makes 0700 dirs; Postgres runs as its own user when we are root and must enter it.
    path = Path(tempfile.mkdtemp(prefix=prefix))
    path.chmod(0o755)
    return path


def free_ports() -> dict[str, int]:
    return {name: free_port() for name in DEFAULT_PORTS}


@pytest.fixture(scope="session")
def stack() -> Iterator[Stack]:
    root = new_stack_dir("platform-test-stack-")
    stack = Stack(StackConfig(root=root, ports=free_ports()))
    saved = dict(os.environ)
    try:
        stack.up()
        # Dagster resources read EnvVar at run time: point them at this stack.
        os.environ.update(stack.env())
        yield stack
    finally:
        stack.down()
        os.environ.clear()
        os.environ.update(saved)
        shutil.rmtree(root, ignore_errors=True)


@pytest.fixture(scope="session")
def clickhouse(stack: Stack) -> ClickHouseResource:
    env = stack.env()
    return ClickHouseResource(
        host=env["CLICKHOUSE_HOST"],
        http_port=int(env["CLICKHOUSE_HTTP_PORT"]),
        tcp_port=int(env["CLICKHOUSE_TCP_PORT"]),
        username=env["CLICKHOUSE_USER"],
        password=env["CLICKHOUSE_PASSWORD"],
    )


@pytest.fixture(scope="session")
def postgres(stack: Stack) -> PostgresResource:
    env = stack.env()
    return PostgresResource(
        host=env["POSTGRES_HOST"],
        port=int(env["POSTGRES_PORT"]),
        user=env["POSTGRES_USER"],
        password=env["POSTGRES_PASSWORD"],
        dbname=env["POSTGRES_DB"],
    )


@pytest.fixture(scope="session")
def kafka(stack: Stack) -> KafkaResource:
    return KafkaResource(bootstrap_servers=stack.env()["KAFKA_BOOTSTRAP_SERVERS"])


@pytest.fixture(scope="session")
def s3(stack: Stack) -> ObjectStoreResource:
    env = stack.env()
    return ObjectStoreResource(
        endpoint_url=env["S3_ENDPOINT_URL"],
        region_name=env["AWS_REGION"],
        aws_access_key_id=env["AWS_ACCESS_KEY_ID"],
        aws_secret_access_key=env["AWS_SECRET_ACCESS_KEY"],
        bucket=env["S3_BUCKET"],
    )


@pytest.fixture(scope="session")
def cdc(stack: Stack):
    from platform_assets.cdc.resources import CdcResource

    return CdcResource(replication_password=stack.env()["CDC_REPLICATION_PASSWORD"])
