"""Connections to the four servers, shared by every domain.

The same classes run against the embedded stack and a real deployment: only the environment
variables differ (see ``platform_assets.environment``). Each lists its settings in ``SETTINGS``
(``platform_assets.core.settings``); secrets arrive only through ``EnvVar``.
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from typing import Any, ClassVar

import boto3
import clickhouse_connect
import psycopg
from botocore.config import Config as BotoConfig
from clickhouse_connect.driver.client import Client
from confluent_kafka import Consumer, Producer
from confluent_kafka.admin import AdminClient
from dagster import ConfigurableResource
from dagster_aws.s3 import S3Resource
from pydantic import Field

from platform_assets.core.access import ADMIN, ROLE_USERS, password_var
from platform_assets.core.settings import Setting, read, wired
from platform_assets.core.tls import kafka_tls


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

    SETTINGS: ClassVar[tuple[Setting, ...]] = (
        Setting("host", "CLICKHOUSE_HOST"),
        Setting("http_port", "CLICKHOUSE_HTTP_PORT", int),
        Setting("tcp_port", "CLICKHOUSE_TCP_PORT", int),
        Setting("username", "CLICKHOUSE_USER"),
        Setting("password", "CLICKHOUSE_PASSWORD"),
        Setting("cluster", "CLICKHOUSE_CLUSTER", required=False, secret=False),
        Setting("cluster_nodes", "CLICKHOUSE_CLUSTER_NODES", required=False, secret=False),
        # TLS: HTTPS to http_port, the server's certificate checked against the CA (docs/security.md).
        Setting("secure", "CLICKHOUSE_SECURE", bool, required=False, secret=False),
        Setting("ca_cert", "CLICKHOUSE_CA_FILE", required=False, secret=False),
        # The components' own users (platform_assets/core/access.py), for ``as_role``.
        *(Setting(f"{user}_password", password_var(user)) for user in ROLE_USERS),
    )

    host: str = Field(description="ClickHouse host name")
    http_port: int = Field(description="HTTP interface port (8123 on a stock server)")
    tcp_port: int = Field(default=9000, description="native protocol port, used by dbt's native driver")
    username: str
    password: str
    cluster: str = Field(
        default="",
        description="cluster name of remote_servers: the schema asset applies clickhouse_ddl/ ON CLUSTER, with "
        "Replicated and Distributed tables (platform_assets/ops/cluster.py); empty: one server",
    )
    cluster_nodes: str = Field(
        default="",
        description="host:http_port of every node, comma-separated, for a cluster of shards without replicas "
        "(no Keeper, no ON CLUSTER): the schema asset applies the DDL on each node in turn; empty: ON CLUSTER",
    )
    transform_password: str = Field(default="", description="password of the `transform` user (dbt)")
    export_password: str = Field(default="", description="password of the `export` user (exports, the report)")
    monitor_password: str = Field(default="", description="password of the `monitor` user (sensors, checks)")
    secure: bool = Field(default=False, description="HTTPS to http_port (8443 on a stock server with TLS)")
    ca_cert: str = Field(
        default="", description="PEM file of the CA that signed the server's certificate; empty: the system's"
    )
    connect_timeout: int = 10  # fail fast when the server is down
    send_receive_timeout: int = 600  # long INSERT ... SELECT and exports

    def get_client(self, context: Any = None, **settings: Any) -> Client:
        return clickhouse_connect.get_client(
            host=self.host,
            port=self.http_port,
            username=self.username,
            password=self.password,
            secure=self.secure,
            verify=True,
            ca_cert=self.ca_cert or None,
            connect_timeout=self.connect_timeout,
            send_receive_timeout=self.send_receive_timeout,
            settings={"log_comment": query_tag(context), **settings},
        )

    def nodes(self) -> list[ClickHouseResource]:
        """This server's settings once per node of ``cluster_nodes`` (the same credentials), or
        just itself when that is empty."""
        if not self.cluster_nodes.strip():
            return [self]
        nodes = []
        for entry in self.cluster_nodes.split(","):
            host, _, port = entry.strip().rpartition(":")
            if not host or not port.isdigit():
                raise ValueError(f"CLICKHOUSE_CLUSTER_NODES entry {entry.strip()!r} is not host:http_port")
            nodes.append(self.replaced(host=host, http_port=int(port), cluster_nodes=""))
        return nodes

    def as_role(self, role: str) -> ClickHouseResource:
        """These settings logged in as a component's own user (``core/access.py``): ``transform``,
        ``export`` or ``monitor``; ``admin`` is ``CLICKHOUSE_USER`` itself (DDL and repairs)."""
        if role == ADMIN:
            return self
        if role not in ROLE_USERS:
            raise ValueError(f"no ClickHouse role {role!r}: one of admin, {', '.join(ROLE_USERS)}")
        password = getattr(self, f"{role}_password")
        if not password:
            raise ValueError(f"{password_var(role)} is not set: the {role} component logs in as its own user")
        return self.replaced(username=role, password=password)

    def replaced(self, **changes: Any) -> ClickHouseResource:
        """These settings with ``changes`` (another node, another user)."""
        fields = {name: getattr(self, name) for name in type(self).model_fields}
        return type(self)(**{**fields, **changes})

    @contextmanager
    def client(self, context: Any = None, **settings: Any) -> Iterator[Client]:
        client = self.get_client(context, **settings)
        try:
            yield client
        finally:
            client.close()


SSLMODES = ("disable", "allow", "prefer", "require", "verify-ca", "verify-full")


class PostgresResource(ConfigurableResource):
    """The application's Postgres (the CDC source), through psycopg 3."""

    SETTINGS: ClassVar[tuple[Setting, ...]] = (
        Setting("host", "POSTGRES_HOST"),
        Setting("port", "POSTGRES_PORT", int),
        Setting("user", "POSTGRES_USER"),
        Setting("password", "POSTGRES_PASSWORD"),
        Setting("dbname", "POSTGRES_DB"),
        # TLS: libpq's sslmode (verify-full checks the certificate and the host name) and the CA.
        Setting("sslmode", "POSTGRES_SSLMODE", required=False, secret=False),
        Setting("sslrootcert", "POSTGRES_SSLROOTCERT", required=False, secret=False),
    )

    host: str
    port: int
    user: str
    password: str
    dbname: str
    sslmode: str = Field(
        default="prefer", description="libpq sslmode: disable, prefer, require, verify-ca, verify-full"
    )
    sslrootcert: str = Field(default="", description="PEM file of the CA for verify-ca / verify-full; empty: libpq's")
    connect_timeout: int = 5  # seconds; a stalled source must not hang a sensor tick

    def model_post_init(self, _context: Any) -> None:
        if self.sslmode not in SSLMODES:
            raise ValueError(f"POSTGRES_SSLMODE={self.sslmode!r}: one of {', '.join(SSLMODES)}")

    def conninfo(self) -> dict[str, Any]:
        return {
            "host": self.host,
            "port": self.port,
            "user": self.user,
            "password": self.password,
            "dbname": self.dbname,
            "connect_timeout": self.connect_timeout,
            "sslmode": self.sslmode,
            **({"sslrootcert": self.sslrootcert} if self.sslrootcert else {}),
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

    SETTINGS: ClassVar[tuple[Setting, ...]] = (
        Setting("bootstrap_servers", "KAFKA_BOOTSTRAP_SERVERS"),
        # TLS to the brokers: librdkafka's security.protocol (PLAINTEXT or SSL) and the CA.
        Setting("security_protocol", "KAFKA_SECURITY_PROTOCOL", required=False, secret=False),
        Setting("ssl_ca_location", "KAFKA_SSL_CA_FILE", required=False, secret=False),
    )

    bootstrap_servers: str
    security_protocol: str = Field(default="PLAINTEXT", description="PLAINTEXT or SSL (librdkafka security.protocol)")
    ssl_ca_location: str = Field(default="", description="PEM file of the CA that signed the brokers' certificates")
    client_id: str = "platform-assets"
    request_timeout_ms: int = 10_000  # bounded waits on metadata and produce acks

    def _base(self) -> dict[str, Any]:
        return {
            "bootstrap.servers": self.bootstrap_servers,
            "client.id": self.client_id,
            "socket.timeout.ms": self.request_timeout_ms,
            **kafka_tls(self.security_protocol, self.ssl_ca_location),
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

    SETTINGS: ClassVar[tuple[Setting, ...]] = (
        Setting("endpoint_url", "S3_ENDPOINT_URL"),
        Setting("region_name", "AWS_REGION"),
        Setting("aws_access_key_id", "AWS_ACCESS_KEY_ID"),
        Setting("aws_secret_access_key", "AWS_SECRET_ACCESS_KEY"),
        Setting("bucket", "S3_BUCKET"),
    )

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


SHARED = {
    "clickhouse": ClickHouseResource,
    "postgres": PostgresResource,
    "kafka": KafkaResource,
    "s3": ObjectStoreResource,
}


def build_resources() -> dict[str, Any]:
    """The shared resources for ``Definitions``: secrets through ``EnvVar``, read at run time."""
    return {key: wired(cls) for key, cls in SHARED.items()}


def resources_from_env(env: Mapping[str, str] | None = None) -> dict[str, Any]:
    """The same resources with values read now, for code outside a Dagster run (demo, tests, benchmarks)."""
    return {key: read(cls, env) for key, cls in SHARED.items()}
