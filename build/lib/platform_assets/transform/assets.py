"""dbt staging and marts as Dagster assets.

One definition, daily-partitioned: a run's partition range reaches dbt as vars and every
incremental model (dbt tag `daily`) replaces exactly that window of days. The few
whole-table nodes (views over the CDC replica, the price seed, weekly retention) are rebuilt
by any run that selects them, so a partition run never finds an upstream view missing.
It sits in the `dbt` pool (at most one dbt run at a time: dbt-clickhouse shares table names between runs,
and the first build of an incremental table must not race another). dbt tests are asset
checks; an error-severity failure stops dbt from building anything downstream of it.
"""

import json
import uuid
from collections.abc import Iterator
from typing import Any

from dagster import AssetExecutionContext, BackfillPolicy, Failure, Output
from dagster_dbt import DbtCliResource, dbt_assets

from platform_assets.core.partitions import daily_partitions
from platform_assets.core.resources import ClickHouseResource
from platform_assets.transform.cost import cost_metadata, model_costs
from platform_assets.transform.project import dbt_project, ensure_manifest
from platform_assets.transform.translator import PlatformDbtTranslator

MANIFEST = ensure_manifest()
TRANSLATOR = PlatformDbtTranslator()
DBT_POOL = "dbt"


def window_vars(context: AssetExecutionContext) -> dict[str, str]:
    """The run's partition range as dbt vars: [min_date, max_date) in UTC days."""
    window = context.partition_time_window
    return {"min_date": window.start.date().isoformat(), "max_date": window.end.date().isoformat()}


def run_dbt(
    context: AssetExecutionContext, dbt: DbtCliResource, clickhouse: ClickHouseResource, dbt_vars: dict[str, str]
) -> Iterator[Any]:
    """`dbt build` of the selected models; each materialization carries its ClickHouse cost."""
    args = ["build"] + (["--vars", json.dumps(dbt_vars)] if dbt_vars else [])
    # Each run its own target folder below the project's (never site-packages in an installed wheel).
    target = dbt_project.target_path / f"{context.run.run_id[:8]}-{uuid.uuid4().hex[:6]}"
    invocation = dbt.cli(args, context=context, raise_on_error=False, target_path=target)
    events = list(invocation.stream())  # held back until the costs are known (query_log)
    costs: dict[str, dict[str, int]] = {}
    try:
        invocation_id = invocation.get_artifact("run_results.json")["metadata"]["invocation_id"]
        with clickhouse.client(context) as client:
            costs = model_costs(client, invocation_id)
    except Exception as exc:  # noqa: BLE001 - cost is extra information, never a reason to fail
        context.log.warning(f"could not read model costs from system.query_log: {exc}")
    for event in events:
        if isinstance(event, Output):
            unique_md = event.metadata.get("unique_id")
            unique_id = str(unique_md.value) if unique_md is not None else ""
            event = event.with_metadata(
                {**event.metadata, **cost_metadata(costs.get(unique_id)), **dbt_vars_md(dbt_vars)}
            )
        yield event
    if not invocation.is_successful():
        raise Failure(f"dbt build failed: {invocation.get_error()}")


def dbt_vars_md(dbt_vars: dict[str, str]) -> dict[str, str]:
    return {f"dbt/{k}": v for k, v in dbt_vars.items()}


@dbt_assets(
    manifest=MANIFEST,
    project=dbt_project,
    select="fqn:*",
    name="dbt_models",
    partitions_def=daily_partitions,
    backfill_policy=BackfillPolicy.single_run(),  # a date range is one dbt run with a wide window
    dagster_dbt_translator=TRANSLATOR,
    pool=DBT_POOL,
)
def dbt_models(context: AssetExecutionContext, dbt: DbtCliResource, clickhouse: ClickHouseResource):
    """Staging and marts; the grain of each model is in its dbt YAML."""
    yield from run_dbt(context, dbt, clickhouse, window_vars(context))
