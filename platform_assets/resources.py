"""Connections to the four servers, shared by every domain.

The same classes run against the embedded stack and a real deployment: only the environment
variables differ (see ``platform_assets.environment``). Secrets arrive only through ``EnvVar``.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import boto3
import clickhouse_connect
import psycopg
from botocore.config import Config as BotoConfig
from clickhouse_connect.driver.client import Client
from confluent_kafka import Consumer, Producer
from confluent_kafka.admin import AdminClient
from dagster import ConfigurableResource, EnvVar
from dagster_aws.s3 import S3Resource
from pydantic import Field


def query_tag(context: Any = None, **extra: str) -> str:
    """JSON for ClickHouse's ``log_comment``: which Dagster run and asset sent a query.

    Lets ``system.query_log`` answer "which asset ran this?" (filter on
    ``JSONExtractString(log_comment, 'run_id')``).
    """
    tag: dict[str, str] = {"app": "platform_assets"}
    if context is not None:
        run_id = _safe_attr(context, "run_id")
        if run_id:
            tag["run_id"] = str(run_id)
        keys = _safe_attr(context, "selected_asset_keys") or []
        if keys:
            tag["asset_key"] = ",".join(sorted(k.to_user_string() for k in keys))
        for attr in ("sensor_name", "job_name"):
            value = _safe_attr(context, attr)
            if isinstance(value, str) and value:
                tag[attr] = value
                break
    tag.update(extra)
    return json.dumps(tag, sort_keys=True)


def _safe_attr(context: Any, name: str) -> Any:
    """Context properties raise (not just lack) when they do not apply, e.g. an unnamed sensor."""
    try:
        return getattr(context, name, None)
    except Exception:  # noqa: BLE001
        return None


class ClickHouseResource(ConfigurableResource):
    """ClickHouse over HTTP through clickhouse-connect; every query carries a ``log_comment`` tag."""

    host: str = Field(description="ClickHouse host name")
    http_port: int = Field(description="HTTP interface port (8123 on a stock server)")
    tcp_port: int = Field(default=9000, description="native protocol port, used by dbt's native driver")
    username: str
    password: str
    secure: bool = False
    connect_timeout: int = 10  # fail fast when the server is down
    send_receive_timeout: int = 600  # long INSERT ... SELECT and exports

    def get_client(self, context: Any = None, **settings: Any) -> Client:
        return clickhouse_connect.get_client(
            host=self.host,
            port=self.http_port,
            username=self.username,
            password=self.password,
            secure=self.secure,
            connect_timeout=self.connect_timeout,
            send_receive_timeout=self.send_receive_timeout,
            settings={"log_comment": query_tag(context), **settings},
        )

    @contextmanager
    def client(self, context: Any = None, **settings: Any) -> Iterator[Client]:
        client = self.get_client(context, **settings)
        try:
            yield client
        finally:
            client.close()


class PostgresResource(ConfigurableResource):
    """The application's Postgres (the CDC source), through psycopg 3."""

    host: str
    port: int
    user: str
    password: str
    dbname: str
    connect_timeout: int = 5  # seconds; a stalled source must not hang a sensor tick

    def conninfo(self) -> dict[str, Any]:
        return {
            "host": self.host,
            "port": self.port,
            "user": self.user,
            "password": self.password,
            "dbname": self.dbname,
            "connect_timeout": self.connect_timeout,
        }

    def connect(self, context: Any = None, autocommit: bool = False) -> psycopg.Connection:
        run_id = getattr(context, "run_id", None) if context is not None else None
        return psycopg.connect(
            **self.conninfo(),
            autocommit=autocommit,
            application_name=f"dagster:{run_id}"[:63] if run_id else "platform_assets",
        )


class KafkaResource(ConfigurableResource):
    """Kafka (or any wire-compatible broker) through confluent-kafka."""

    bootstrap_servers: str
    client_id: str = "platform-assets"
    request_timeout_ms: int = 10_000  # bounded waits on metadata and produce acks

    def _base(self) -> dict[str, Any]:
        return {
            "bootstrap.servers": self.bootstrap_servers,
            "client.id": self.client_id,
            "socket.timeout.ms": self.request_timeout_ms,
        }

    def producer(self, **overrides: Any) -> Producer:
        # Idempotent producer: retries never write a message twice.
        return Producer({**self._base(), "enable.idempotence": True, "acks": "all", **overrides})

    def consumer(self, group_id: str, **overrides: Any) -> Consumer:
        return Consumer({**self._base(), "group.id": group_id, "enable.auto.commit": False, **overrides})

    def admin(self) -> AdminClient:
        return AdminClient(self._base())


class ObjectStoreResource(S3Resource):
    """dagster-aws's S3 resource with the export bucket and HTTP timeouts (MinIO, moto or AWS)."""

    bucket: str = Field(description="bucket for Parquet exports")
    connect_timeout: int = 5  # seconds
    read_timeout: int = 60  # seconds; large multipart parts

    def get_client(self) -> Any:
        return boto3.session.Session().client(
            "s3",
            endpoint_url=self.endpoint_url,
            region_name=self.region_name,
            aws_access_key_id=self.aws_access_key_id,
            aws_secret_access_key=self.aws_secret_access_key,
            aws_session_token=self.aws_session_token,
            use_ssl=self.use_ssl,
            verify=self.verify,
            config=BotoConfig(
                connect_timeout=self.connect_timeout,
                read_timeout=self.read_timeout,
                retries={"max_attempts": self.max_attempts, "mode": "standard"},
                s3={"addressing_style": "path"},  # MinIO and moto serve path-style URLs
            ),
        )


def build_resources() -> dict[str, Any]:
    """Resources for every environment, read from environment variables at run time."""
    return {
        "clickhouse": ClickHouseResource(
            host=EnvVar("CLICKHOUSE_HOST"),
            http_port=EnvVar.int("CLICKHOUSE_HTTP_PORT"),
            tcp_port=EnvVar.int("CLICKHOUSE_TCP_PORT"),
            username=EnvVar("CLICKHOUSE_USER"),
            password=EnvVar("CLICKHOUSE_PASSWORD"),
        ),
        "postgres": PostgresResource(
            host=EnvVar("POSTGRES_HOST"),
            port=EnvVar.int("POSTGRES_PORT"),
            user=EnvVar("POSTGRES_USER"),
            password=EnvVar("POSTGRES_PASSWORD"),
            dbname=EnvVar("POSTGRES_DB"),
        ),
        "kafka": KafkaResource(bootstrap_servers=EnvVar("KAFKA_BOOTSTRAP_SERVERS")),
        "s3": ObjectStoreResource(
            endpoint_url=EnvVar("S3_ENDPOINT_URL"),
            region_name=EnvVar("AWS_REGION"),
            aws_access_key_id=EnvVar("AWS_ACCESS_KEY_ID"),
            aws_secret_access_key=EnvVar("AWS_SECRET_ACCESS_KEY"),
            bucket=EnvVar("S3_BUCKET"),
        ),
    }


def resources_from_env(env: dict[str, str] | None = None) -> dict[str, Any]:
    """The same resources with values read now, for code outside a Dagster run (demo, benchmarks)."""
    import os

    e = env or dict(os.environ)
    return {
        "clickhouse": ClickHouseResource(
            host=e["CLICKHOUSE_HOST"],
            http_port=int(e["CLICKHOUSE_HTTP_PORT"]),
            tcp_port=int(e["CLICKHOUSE_TCP_PORT"]),
            username=e["CLICKHOUSE_USER"],
            password=e["CLICKHOUSE_PASSWORD"],
        ),
        "postgres": PostgresResource(
            host=e["POSTGRES_HOST"],
            port=int(e["POSTGRES_PORT"]),
            user=e["POSTGRES_USER"],
            password=e["POSTGRES_PASSWORD"],
            dbname=e["POSTGRES_DB"],
        ),
        "kafka": KafkaResource(bootstrap_servers=e["KAFKA_BOOTSTRAP_SERVERS"]),
        "s3": ObjectStoreResource(
            endpoint_url=e["S3_ENDPOINT_URL"],
            region_name=e["AWS_REGION"],
            aws_access_key_id=e["AWS_ACCESS_KEY_ID"],
            aws_secret_access_key=e["AWS_SECRET_ACCESS_KEY"],
            bucket=e["S3_BUCKET"],
        ),
    }
