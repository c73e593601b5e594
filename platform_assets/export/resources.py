"""Export settings: target (s3 or local), prefix, local directory, rows per object.

None of these is a secret, so ``build_export_resource`` reads them when definitions load and
a bad value fails there, naming the variable. S3 credentials and the bucket come from the
shared ``s3`` resource (``ObjectStoreResource``, through ``EnvVar``).
"""

from __future__ import annotations

import os
from datetime import date
from pathlib import Path

from dagster import ConfigurableResource
from pydantic import Field, field_validator

from platform_assets.environment import ConfigError
from platform_assets.export.tables import ExportTable
from platform_assets.export.target import LocalTarget, S3Target, Target
from platform_assets.resources import ObjectStoreResource
from platform_assets.stack.config import REPO_ROOT

TARGETS = ("s3", "local")
DEFAULT_LOCAL_DIR = ".platform/exports"


class ExportResource(ConfigurableResource):
    target: str = Field(default="local", description="s3 or local (a directory ClickHouse writes with file())")
    prefix: str = Field(default="exports", description="key prefix below the bucket or directory")
    local_dir: str = Field(default=DEFAULT_LOCAL_DIR, description="local target; relative paths are below the repo")
    # A day of N rows becomes ceil(N / rows_per_object) objects, split by a hash of the sort key:
    # each holds about this many rows (not exactly). 1M is about one Parquet row group.
    rows_per_object: int = 1_000_000
    clickhouse_s3_endpoint: str | None = Field(
        default=None, description="S3 endpoint as ClickHouse reaches it, when not the resource's endpoint_url"
    )

    @field_validator("target")
    @classmethod
    def _known_target(cls, value: str) -> str:
        if value not in TARGETS:
            raise ValueError(f"EXPORT_TARGET={value!r} is not one of {', '.join(TARGETS)}")
        return value

    @field_validator("rows_per_object")
    @classmethod
    def _positive(cls, value: int) -> int:
        if value < 1:
            raise ValueError(f"EXPORT_ROWS_PER_OBJECT={value} must be at least 1")
        return value

    def day_prefix(self, table: ExportTable, day: date) -> str:
        """``<prefix>/<database>/<table>/dt=YYYY-MM-DD/``: every object of one table and day."""
        return f"{self.prefix.strip('/')}/{table.path}/dt={day.isoformat()}/"

    def local_root(self) -> Path:
        path = Path(self.local_dir)
        return path if path.is_absolute() else REPO_ROOT / path

    def make_target(self, s3: ObjectStoreResource) -> Target:
        if self.target == "local":
            return LocalTarget(self.local_root())
        endpoint = self.clickhouse_s3_endpoint or s3.endpoint_url or f"https://s3.{s3.region_name}.amazonaws.com"
        return S3Target(s3.get_client(), s3.bucket, endpoint, s3.aws_access_key_id, s3.aws_secret_access_key)


def build_export_resource(env: dict[str, str] | None = None) -> ExportResource:
    """From EXPORT_* variables; the target defaults to ``local`` on the embedded stack
    (PLATFORM_ENV=local) and to ``s3`` elsewhere. Raises ConfigError naming a bad variable."""
    e = os.environ if env is None else env
    default_target = "local" if e.get("PLATFORM_ENV", "local") == "local" else "s3"
    target = e.get("EXPORT_TARGET") or default_target
    if target not in TARGETS:
        raise ConfigError(f"EXPORT_TARGET={target!r} is not one of {', '.join(TARGETS)}")
    raw_rows = e.get("EXPORT_ROWS_PER_OBJECT", "1000000")
    if not raw_rows.isdigit() or int(raw_rows) < 1:
        raise ConfigError(f"EXPORT_ROWS_PER_OBJECT={raw_rows!r} is not a positive whole number")
    prefix = e.get("EXPORT_PREFIX", "exports").strip("/")
    if not prefix:
        raise ConfigError("EXPORT_PREFIX must not be empty (a day's re-run deletes below <prefix>/<table>/dt=...)")
    return ExportResource(
        target=target,
        prefix=prefix,
        local_dir=e.get("EXPORT_LOCAL_DIR") or DEFAULT_LOCAL_DIR,
        rows_per_object=int(raw_rows),
        clickhouse_s3_endpoint=e.get("EXPORT_CLICKHOUSE_S3_ENDPOINT") or None,
    )
