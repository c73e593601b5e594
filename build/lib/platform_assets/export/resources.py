"""Export settings: target (s3 or local), prefix, local directory, rows per object.

None of these is a secret, so ``build_export_resource`` reads them when definitions load and
a bad value fails there, naming the variable. S3 credentials and the bucket come from the
shared ``s3`` resource (``ObjectStoreResource``, through ``EnvVar``).
"""

from __future__ import annotations

import os
from datetime import date
from pathlib import Path
from typing import ClassVar

from dagster import ConfigurableResource
from pydantic import Field, field_validator

from platform_assets.core.paths import state_dir
from platform_assets.core.resources import ObjectStoreResource
from platform_assets.core.settings import ConfigError, Setting
from platform_assets.export.tables import ExportTable
from platform_assets.export.target import LocalTarget, S3Target, Target

TARGETS = ("s3", "local")
DEFAULT_LOCAL_DIR = ""  # empty: exports/ below the state directory (.platform)


class ExportResource(ConfigurableResource):
    SETTINGS: ClassVar[tuple[Setting, ...]] = (  # none is a secret: read and checked at load time
        Setting("target", "EXPORT_TARGET", required=False, secret=False),
        Setting("prefix", "EXPORT_PREFIX", required=False, secret=False),
        Setting("local_dir", "EXPORT_LOCAL_DIR", required=False, secret=False),
        Setting("rows_per_object", "EXPORT_ROWS_PER_OBJECT", required=False, secret=False),
        Setting("clickhouse_s3_endpoint", "EXPORT_CLICKHOUSE_S3_ENDPOINT", required=False, secret=False),
    )

    target: str = Field(default="local", description="s3 or local (a directory ClickHouse writes with file())")
    prefix: str = Field(default="exports", description="key prefix below the bucket or directory")
    local_dir: str = Field(default=DEFAULT_LOCAL_DIR, description="local target; empty: .platform/exports")
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
        return Path(self.local_dir).resolve() if self.local_dir else state_dir() / "exports"

    def make_target(self, s3: ObjectStoreResource) -> Target:
        if self.target == "local":
            return LocalTarget(self.local_root())
        endpoint = self.clickhouse_s3_endpoint or s3.endpoint_url or f"https://s3.{s3.region_name}.amazonaws.com"
        return S3Target(s3.get_client(), s3.bucket, endpoint, s3.aws_access_key_id, s3.aws_secret_access_key)


def build_export_resource(env: dict[str, str] | None = None) -> ExportResource:
    """From the EXPORT_* variables of ``ExportResource.SETTINGS``, read at load time; the target
    defaults to ``local`` on the embedded stack (PLATFORM_ENV=local) and to ``s3`` elsewhere.
    Raises ConfigError naming a bad variable."""
    e = os.environ if env is None else env
    kw = {s.field: e[s.var] for s in ExportResource.SETTINGS if e.get(s.var)}
    kw.setdefault("target", "local" if e.get("PLATFORM_ENV", "local") == "local" else "s3")
    if kw["target"] not in TARGETS:
        raise ConfigError(f"EXPORT_TARGET={kw['target']!r} is not one of {', '.join(TARGETS)}")
    raw_rows = kw.pop("rows_per_object", "1000000")
    if not raw_rows.isdigit() or int(raw_rows) < 1:
        raise ConfigError(f"EXPORT_ROWS_PER_OBJECT={raw_rows!r} is not a positive whole number")
    kw["prefix"] = kw.get("prefix", "exports").strip("/")
    if not kw["prefix"]:
        raise ConfigError("EXPORT_PREFIX must not be empty (a day's re-run deletes below <prefix>/<table>/dt=...)")
    return ExportResource(**kw, rows_per_object=int(raw_rows))
