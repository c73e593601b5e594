"""The ClickHouse datasource Grafana reads through: one definition for the API and the provisioning file."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from platform_assets.publish.clickhouse_query import DATASOURCE_TYPE, DATASOURCE_UID

DATASOURCE_NAME = "ClickHouse"


@dataclass(frozen=True)
class ClickHouseConnection:
    """Where Grafana (not Dagster) reaches ClickHouse, as the read-only user."""

    host: str
    port: int
    username: str
    password: str
    protocol: str = "native"  # the plugin's default: native TCP (9000), not HTTP
    database: str = "marts"  # the panels name their databases; this is only the editor's default


def datasource_body(conn: ClickHouseConnection) -> dict[str, Any]:
    """Body for POST /api/datasources and PUT /api/datasources/uid/<uid>."""
    return {
        "uid": DATASOURCE_UID,
        "name": DATASOURCE_NAME,
        "type": DATASOURCE_TYPE,
        "access": "proxy",
        "isDefault": True,
        "jsonData": {
            "host": conn.host,
            "port": conn.port,
            "protocol": conn.protocol,
            "secure": False,
            "username": conn.username,
            "defaultDatabase": conn.database,
        },
        "secureJsonData": {"password": conn.password},
    }


def provisioning_file() -> dict[str, Any]:
    """docker/grafana/provisioning/datasources/clickhouse.yaml: Grafana expands ${VAR} from its
    container environment, so the password never sits in the file."""
    body = datasource_body(
        ClickHouseConnection(
            host="clickhouse",
            port=9000,
            username="${GRAFANA_CLICKHOUSE_USER}",
            password="${GRAFANA_CLICKHOUSE_PASSWORD}",
        )
    )
    body["editable"] = False  # managed here, not in the UI
    body.pop("access")
    return {"apiVersion": 1, "datasources": [body]}
