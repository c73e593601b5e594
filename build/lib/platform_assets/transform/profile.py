"""What dbt reads from the environment: profiles.yml's connection and the ``keyed_hash`` macro's key."""

from __future__ import annotations

from typing import ClassVar

from platform_assets.core.resources import ClickHouseResource
from platform_assets.core.settings import Setting


class DbtProfile:
    """The settings table of the dbt CLI resource (dagster-dbt's own class has none)."""

    SETTINGS: ClassVar[tuple[Setting, ...]] = (
        *ClickHouseResource.SETTINGS,
        Setting("user_hash_key", "USER_HASH_KEY"),
    )
