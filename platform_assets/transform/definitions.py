"""The transform domain in the code location: the dbt models, their tests as checks, source freshness, the schedules."""

from dagster import Definitions

from platform_assets.transform.assets import dbt_models
from platform_assets.transform.checks import dbt_source_freshness
from platform_assets.transform.jobs import JOBS, SCHEDULES
from platform_assets.transform.resources import build_dbt_resource
from platform_assets.transform.rollup_check import rollup_matches_mart


def definitions() -> Definitions:
    return Definitions(
        assets=[dbt_models],
        asset_checks=[dbt_source_freshness, rollup_matches_mart],
        jobs=JOBS,
        schedules=SCHEDULES,
        resources={"dbt": build_dbt_resource()},
    )
