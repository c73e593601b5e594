"""Everything the Dagster UI and daemon load: each domain's definitions, merged, and the shared resources."""

from dagster import Definitions

from platform_assets import environment, registry
from platform_assets.cdc import definitions as cdc
from platform_assets.core.resources import build_resources
from platform_assets.export import definitions as export
from platform_assets.ingest import definitions as ingest
from platform_assets.ops import definitions as ops
from platform_assets.publish import definitions as publish
from platform_assets.report import definitions as report
from platform_assets.transform import definitions as transform

DOMAINS = (ops, ingest, cdc, transform, publish, export, report)

# A missing or unknown setting fails here, at load time, naming it.
environment.prepare(registry.RESOURCE_CLASSES.values())

defs = Definitions.merge(
    *(domain.definitions() for domain in DOMAINS),
    Definitions(resources=build_resources()),
)
