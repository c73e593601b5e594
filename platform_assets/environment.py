"""Picks the environment (local / docker / prod) and makes its connection settings visible.

Every resource reads its settings through ``EnvVar``; this module only decides where those
variables come from. ``local`` (the default) fills in whatever is missing from the embedded
stack's settings, as ``platform-stack env`` prints them, so ``dagster dev`` works after
``platform-stack up`` with no exports. ``docker`` and ``prod`` take the process environment
as it is and fail at load time, naming each missing variable.
"""

from __future__ import annotations

import os

ENVIRONMENTS = ("local", "docker", "prod")

# Variables the resources read. Grafana settings are optional until the publishing domain.
REQUIRED_ENV_VARS = (
    "CLICKHOUSE_HOST",
    "CLICKHOUSE_HTTP_PORT",
    "CLICKHOUSE_TCP_PORT",
    "CLICKHOUSE_USER",
    "CLICKHOUSE_PASSWORD",
    "POSTGRES_HOST",
    "POSTGRES_PORT",
    "POSTGRES_USER",
    "POSTGRES_PASSWORD",
    "POSTGRES_DB",
    "KAFKA_BOOTSTRAP_SERVERS",
    "S3_ENDPOINT_URL",
    "S3_BUCKET",
    "AWS_ACCESS_KEY_ID",
    "AWS_SECRET_ACCESS_KEY",
    "AWS_REGION",
    "CDC_REPLICATION_PASSWORD",
    "USER_HASH_KEY",
)


class ConfigError(RuntimeError):
    """The environment is incomplete or names an unknown deployment."""


def current() -> str:
    env = os.environ.get("PLATFORM_ENV", "local")
    if env not in ENVIRONMENTS:
        raise ConfigError(f"PLATFORM_ENV={env!r} is not one of {', '.join(ENVIRONMENTS)}")
    return env


def prepare() -> str:
    """Called once by definitions.py before resources are built."""
    env = current()
    if env == "local":
        from platform_assets.stack.config import StackConfig
        from platform_assets.stack.servers import Stack

        for key, value in Stack(StackConfig.from_env()).env().items():
            os.environ.setdefault(key, value)
    missing = [name for name in REQUIRED_ENV_VARS if not os.environ.get(name)]
    if missing:
        raise ConfigError(f"PLATFORM_ENV={env}: missing environment variables: {', '.join(missing)}")
    return env
