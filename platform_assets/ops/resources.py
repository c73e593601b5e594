"""Backup settings: the key prefix and the S3 endpoint as the ClickHouse server reaches it.

Neither is a secret, so ``build_backup_resource`` reads them when definitions load and a bad
value fails there, naming the variable. The bucket and the keys come from the shared ``s3``
resource (``ObjectStoreResource``, through ``EnvVar``).
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from datetime import date
from typing import ClassVar

from dagster import ConfigurableResource
from pydantic import Field

from platform_assets.core.resources import ObjectStoreResource
from platform_assets.core.settings import ConfigError, Setting
from platform_assets.ops.backup import BackupLocation

DEFAULT_PREFIX = "backups"


class BackupResource(ConfigurableResource):
    SETTINGS: ClassVar[tuple[Setting, ...]] = (  # none is a secret: read and checked at load time
        Setting("prefix", "BACKUP_PREFIX", required=False, secret=False),
        Setting("clickhouse_s3_endpoint", "BACKUP_CLICKHOUSE_S3_ENDPOINT", required=False, secret=False),
    )

    prefix: str = Field(default=DEFAULT_PREFIX, description="key prefix below the bucket: <prefix>/<day>/")
    clickhouse_s3_endpoint: str | None = Field(
        default=None, description="S3 endpoint as ClickHouse reaches it, when not the s3 resource's endpoint_url"
    )
    # How long a run waits for the server's BACKUP/RESTORE (it polls system.backups each second).
    wait_seconds: int = 6 * 3600

    def endpoint(self, s3: ObjectStoreResource) -> str:
        return self.clickhouse_s3_endpoint or s3.endpoint_url or f"https://s3.{s3.region_name}.amazonaws.com"

    def location(self, s3: ObjectStoreResource, day: date) -> BackupLocation:
        """``s3://<bucket>/<prefix>/<day>/``: one backup per UTC day."""
        return BackupLocation(
            endpoint=self.endpoint(s3),
            bucket=s3.bucket,
            key=f"{self.prefix.strip('/')}/{day.isoformat()}/",
            access_key=s3.aws_access_key_id,
            secret_key=s3.aws_secret_access_key,
        )


def build_backup_resource(env: Mapping[str, str] | None = None) -> BackupResource:
    """From the BACKUP_* variables of ``BackupResource.SETTINGS``, read at load time."""
    e = os.environ if env is None else env
    kw = {s.field: e[s.var] for s in BackupResource.SETTINGS if e.get(s.var)}
    kw["prefix"] = kw.get("prefix", DEFAULT_PREFIX).strip("/")
    if not kw["prefix"]:
        raise ConfigError("BACKUP_PREFIX must not be empty (a day's re-run deletes below <prefix>/<day>/)")
    endpoint = kw.get("clickhouse_s3_endpoint")
    if endpoint and not endpoint.startswith(("http://", "https://")):
        raise ConfigError(f"BACKUP_CLICKHOUSE_S3_ENDPOINT={endpoint!r} is not an http(s):// URL")
    return BackupResource(prefix=kw["prefix"], clickhouse_s3_endpoint=endpoint or None)
