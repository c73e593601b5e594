"""Picks the environment (local / docker / prod) and makes its connection settings visible.

Every resource reads its settings through ``EnvVar``; this module only decides where those
variables come from. ``local`` (the default) fills in whatever is missing from the embedded
stack's settings, as ``platform-stack env`` prints them, so ``dagster dev`` works after
``platform-stack up`` with no exports. ``docker`` and ``prod`` take the process environment
as it is and fail at load time, naming each missing variable (from the resources' setting
tables, ``platform_assets.core.settings``).
"""

from __future__ import annotations

import os
from collections.abc import Iterable

from platform_assets.core.resources import SHARED
from platform_assets.core.settings import ConfigError, missing
from platform_assets.stack.config import StackConfig
from platform_assets.stack.servers import Stack

ENVIRONMENTS = ("local", "docker", "prod")
__all__ = ["ENVIRONMENTS", "ConfigError", "current", "prepare"]


def current() -> str:
    env = os.environ.get("PLATFORM_ENV", "local")
    if env not in ENVIRONMENTS:
        raise ConfigError(f"PLATFORM_ENV={env!r} is not one of {', '.join(ENVIRONMENTS)}")
    return env


def prepare(resource_classes: Iterable[type] = SHARED.values()) -> str:
    """Called once by definitions.py (and the command-line tools) before resources are built:
    fills in the embedded stack's settings locally, then checks that every required setting of
    ``resource_classes`` is set (``platform_assets.registry`` lists the code location's)."""
    env = current()
    if env == "local":
        for key, value in Stack(StackConfig.from_env()).env().items():
            os.environ.setdefault(key, value)
    absent = missing(resource_classes)
    if absent:
        raise ConfigError(f"PLATFORM_ENV={env}: missing environment variables: {', '.join(absent)}")
    return env
