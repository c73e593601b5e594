"""GrafanaResource: where to publish, and how Grafana reaches ClickHouse. Everything is optional:
without GRAFANA_URL the publish assets only generate the files. SupersetResource: the same for
Apache Superset (docs/superset.md); without SUPERSET_URL its asset only renders the bundle.

The token is GRAFANA_API_TOKEN, or else the file GRAFANA_API_TOKEN_FILE names (read when a client
is made, so a token written after the code location loaded, e.g. by docker's grafana-bootstrap
service, is picked up by the next run)."""

from __future__ import annotations

from pathlib import Path
from typing import ClassVar

from dagster import ConfigurableResource
from pydantic import Field

from platform_assets.core.resources import ClickHouseResource
from platform_assets.core.settings import Setting, read, wired
from platform_assets.publish.client import GrafanaClient, GrafanaError
from platform_assets.publish.datasource import ClickHouseConnection
from platform_assets.publish.superset_bundle import Connection
from platform_assets.publish.superset_client import SupersetClient


class GrafanaResource(ConfigurableResource):
    SETTINGS: ClassVar[tuple[Setting, ...]] = (  # all optional
        Setting("url", "GRAFANA_URL", required=False),
        Setting("token", "GRAFANA_API_TOKEN", required=False),
        Setting("token_file", "GRAFANA_API_TOKEN_FILE", required=False, secret=False),  # a path, not the token
        Setting("clickhouse_user", "GRAFANA_CLICKHOUSE_USER", required=False),
        Setting("clickhouse_password", "GRAFANA_CLICKHOUSE_PASSWORD", required=False),
        Setting("datasource_host", "GRAFANA_CLICKHOUSE_HOST", required=False),
        Setting("datasource_port", "GRAFANA_CLICKHOUSE_PORT", int, required=False),
        Setting("files_dir", "GRAFANA_FILES_DIR", required=False, secret=False),
        Setting("alert_webhook_url", "ALERT_WEBHOOK_URL", required=False),  # may carry a token: secret
    )

    url: str | None = Field(default=None, description="Grafana base URL; unset: only generate files")
    token: str | None = Field(default=None, description="service-account token (Bearer)")
    token_file: str | None = Field(
        default=None, description="file holding the service-account token, used when GRAFANA_API_TOKEN is unset"
    )
    connect_timeout: float = 5.0  # a dead Grafana fails the step fast
    read_timeout: float = 30.0  # dashboard saves on a busy Grafana can take seconds
    clickhouse_user: str | None = Field(default=None, description="read-only ClickHouse user for Grafana")
    clickhouse_password: str | None = None
    datasource_host: str | None = Field(default=None, description="ClickHouse host as Grafana sees it")
    datasource_port: int | None = Field(default=None, description="ClickHouse native port as Grafana sees it")
    files_dir: str | None = Field(
        default=None, description="where the assets write the generated files; default docker/grafana of the project"
    )

    alert_webhook_url: str | None = Field(
        default=None, description="URL the alerts' webhook contact point posts to; unset: no contact point published"
    )

    @property
    def enabled(self) -> bool:
        return bool(self.url)

    def api_token(self) -> str | None:
        """GRAFANA_API_TOKEN, else the contents of GRAFANA_API_TOKEN_FILE, else None (no auth header)."""
        if self.token:
            return self.token
        if not self.token_file:
            return None
        path = Path(self.token_file)
        try:
            token = path.read_text().strip()
        except OSError as exc:
            raise GrafanaError(
                f"GRAFANA_API_TOKEN_FILE={path}: cannot read the token ({type(exc).__name__}: {exc}); "
                "in docker/ the grafana-bootstrap service writes it"
            ) from exc
        if not token:
            raise GrafanaError(f"GRAFANA_API_TOKEN_FILE={path} is empty")
        return token

    def client(self) -> GrafanaClient:
        if not self.url:
            raise ValueError("GRAFANA_URL is not set")
        return GrafanaClient(self.url, self.api_token(), timeout=(self.connect_timeout, self.read_timeout))

    def connection(self, clickhouse: ClickHouseResource) -> ClickHouseConnection:
        """Grafana's datasource settings; by default the platform's own ClickHouse host and TCP port."""
        return ClickHouseConnection(
            host=self.datasource_host or clickhouse.host,
            port=self.datasource_port or clickhouse.tcp_port,
            username=self.clickhouse_user or clickhouse.username,
            password=self.clickhouse_password or clickhouse.password,
        )

    def reader(self, clickhouse: ClickHouseResource) -> ClickHouseResource:
        """The ClickHouse resource logged in as Grafana's user when it is configured, so the panel
        check also proves the grants."""
        if not (self.clickhouse_user and self.clickhouse_password):
            return clickhouse
        return clickhouse.replaced(username=self.clickhouse_user, password=self.clickhouse_password)


def build_grafana_resource(env: dict[str, str] | None = None) -> GrafanaResource:
    """EnvVar for each variable set (and not empty) at load time; unset ones stay None."""
    return wired(GrafanaResource, env)


def grafana_resource_from_env(env: dict[str, str] | None = None) -> GrafanaResource:
    """The same with values read now, for code outside a Dagster run (demo, tests)."""
    return read(GrafanaResource, env)


class SupersetResource(ConfigurableResource):
    """Where the Superset dashboards are imported, and how Superset reaches ClickHouse (its read-only
    ``superset`` user over HTTP). Everything is optional: without SUPERSET_URL nothing is imported."""

    SETTINGS: ClassVar[tuple[Setting, ...]] = (  # all optional
        Setting("url", "SUPERSET_URL", required=False),
        Setting("username", "SUPERSET_USERNAME", required=False),
        Setting("password", "SUPERSET_PASSWORD", required=False),
        Setting("clickhouse_user", "SUPERSET_CLICKHOUSE_USER", required=False, secret=False),
        Setting("clickhouse_password", "CLICKHOUSE_SUPERSET_PASSWORD", required=False),
        Setting("clickhouse_host", "SUPERSET_CLICKHOUSE_HOST", required=False, secret=False),
        Setting("clickhouse_port", "SUPERSET_CLICKHOUSE_PORT", int, required=False, secret=False),
    )

    url: str | None = Field(default=None, description="Superset base URL; unset: only render the bundle")
    username: str | None = Field(default=None, description="Superset user the asset logs in as (an admin)")
    password: str | None = None
    connect_timeout: float = 5.0  # a dead Superset fails the step fast
    read_timeout: float = 120.0  # the import of every dataset, chart and dashboard runs in one request
    clickhouse_user: str = Field(default="superset", description="read-only ClickHouse user of Superset")
    clickhouse_password: str | None = Field(default=None, description="its password, passed with the import")
    clickhouse_host: str | None = Field(default=None, description="ClickHouse host as Superset sees it")
    clickhouse_port: int | None = Field(default=None, description="ClickHouse HTTP port as Superset sees it")

    @property
    def enabled(self) -> bool:
        return bool(self.url)

    def client(self) -> SupersetClient:
        """A logged-in client (JWT and CSRF token)."""
        if not self.url:
            raise ValueError("SUPERSET_URL is not set")
        if not (self.username and self.password):
            raise ValueError("SUPERSET_USERNAME and SUPERSET_PASSWORD are needed to import into Superset")
        client = SupersetClient(self.url, timeout=(self.connect_timeout, self.read_timeout))
        try:
            client.login(self.username, self.password)
        except BaseException:
            client.close()
            raise
        return client

    def connection(self, clickhouse: ClickHouseResource) -> Connection:
        """Superset's database connection; by default the platform's own ClickHouse host and HTTP port."""
        return Connection(
            host=self.clickhouse_host or clickhouse.host,
            port=self.clickhouse_port or clickhouse.http_port,
            username=self.clickhouse_user,
        )

    def reader(self, clickhouse: ClickHouseResource) -> ClickHouseResource:
        """The ClickHouse resource logged in as Superset's user (its grants), when its password is set."""
        if not self.clickhouse_password:
            return clickhouse
        return clickhouse.replaced(username=self.clickhouse_user, password=self.clickhouse_password)


def build_superset_resource(env: dict[str, str] | None = None) -> SupersetResource:
    """EnvVar for each secret set at load time; unset ones stay at their defaults."""
    return wired(SupersetResource, env)


def superset_resource_from_env(env: dict[str, str] | None = None) -> SupersetResource:
    """The same with values read now, for code outside a Dagster run (tests)."""
    return read(SupersetResource, env)
