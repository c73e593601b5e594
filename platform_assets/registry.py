"""Which class serves each resource key of the code location, and the settings that follow from it.

The load-time check (``environment.prepare``), the docker compose test and the stack's
``env`` test all read the variable names from here, derived from each class's ``SETTINGS``.
"""

from __future__ import annotations

from platform_assets.cdc.resources import CdcResource
from platform_assets.core.resources import SHARED
from platform_assets.core.settings import all_vars, required_vars
from platform_assets.export.resources import ExportResource
from platform_assets.ops.resources import BackupResource
from platform_assets.publish.resources import GrafanaResource, SupersetResource
from platform_assets.transform.profile import DbtProfile

# Resource key in Definitions -> the class whose SETTINGS table says what it reads
# ("dbt": dagster-dbt's DbtCliResource, whose profile reads DbtProfile's variables).
RESOURCE_CLASSES: dict[str, type] = {
    **SHARED,
    "cdc": CdcResource,
    "dbt": DbtProfile,
    "grafana": GrafanaResource,
    "superset": SupersetResource,
    "export": ExportResource,
    "backup": BackupResource,
}
REQUIRED_ENV_VARS = tuple(required_vars(RESOURCE_CLASSES.values()))
ALL_ENV_VARS = tuple(all_vars(RESOURCE_CLASSES.values()))
