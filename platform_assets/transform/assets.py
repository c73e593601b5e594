"""dbt staging and marts as Dagster assets.

One definition, daily-partitioned: a run's partition range reaches dbt as vars and every
incremental model (dbt tag `daily`) replaces exactly that window of days. The few
whole-table nodes (views over the CDC replica, the price seed, weekly retention) are rebuilt
by any run that selects them, so a partition run never finds an upstream view missing.
It sits in the `dbt` pool (at most one dbt run at a time: dbt-clickhouse shares table names between runs,
and the first build of an incremental table must not race another). dbt tests are asset
checks; an error-severity failure stops dbt from building anything downstream of it.

Each model's materialization is yielded as dbt reports it (the UI shows models done during the
run); what each model cost ClickHouse is known only from system.query_log once dbt has ended, so
it follows as one AssetObservation per model (metadata `clickhouse/*`).
"""

import json
import re
import uuid
from collections.abc import Iterator
from typing import Any

from dagster import (
    AssetExecutionContext,
    AssetKey,
    AssetMaterialization,
    AssetObservation,
    BackfillPolicy,
    Failure,
    Output,
)
from dagster_dbt import DbtCliResource, dbt_assets

from platform_assets.core.access import MONITOR
from platform_assets.core.automation import SERVER_RETRY
from platform_assets.core.partitions import daily_partitions
from platform_assets.core.resources import ClickHouseResource
from platform_assets.transform.cost import cost_metadata, model_costs
from platform_assets.transform.project import dbt_project, load_manifest
from platform_assets.transform.translator import PlatformDbtTranslator

MANIFEST = load_manifest()
TRANSLATOR = PlatformDbtTranslator()
DBT_POOL = "dbt"
# A dbt build that failed on the server connection is retried (the whole selection again: each
# incremental model replaces its window, so a rerun is safe); a failing dbt test or a SQL error is not.
DBT_RETRY = SERVER_RETRY
TRANSIENT = re.compile(
    r"connection|timed out|timeout|refused|reset by peer|broken pipe|network|temporarily unavailable|"
    r"too_many_simultaneous_queries|max retries exceeded",
    re.IGNORECASE,
)


def window_vars(context: AssetExecutionContext) -> dict[str, str]:
    """The run's partition range as dbt vars: [min_date, max_date) in UTC days."""
    window = context.partition_time_window
    return {"min_date": window.start.date().isoformat(), "max_date": window.end.date().isoformat()}


def run_dbt(
    context: AssetExecutionContext, dbt: DbtCliResource, clickhouse: ClickHouseResource, dbt_vars: dict[str, str]
) -> Iterator[Any]:
    """`dbt build` of the selected models, each materialization yielded as dbt reports it; then
    one AssetObservation per built model with its ClickHouse cost (system.query_log)."""
    args = ["build"] + (["--vars", json.dumps(dbt_vars)] if dbt_vars else [])
    # Each run its own target folder below the project's (never site-packages in an installed wheel).
    target = dbt_project.target_path / f"{context.run.run_id[:8]}-{uuid.uuid4().hex[:6]}"
    invocation = dbt.cli(args, context=context, raise_on_error=False, target_path=target)
    built: dict[str, AssetKey] = {}  # dbt unique_id -> asset key, of the models materialized
    for event in invocation.stream():
        if isinstance(event, Output):
            key = context.asset_key_for_output(event.output_name)
            built[_unique_id(event.metadata)] = key
            event = event.with_metadata({**event.metadata, **dbt_vars_md(dbt_vars)})
        elif isinstance(event, AssetMaterialization):
            built[_unique_id(event.metadata)] = event.asset_key
        yield event
    run_results = _artifact(invocation, "run_results.json")
    yield from cost_observations(context, clickhouse, run_results, built, dbt_vars)
    if not invocation.is_successful():
        raise Failure(
            f"dbt build failed: {invocation.get_error()}",
            allow_retries=is_transient(run_results),
        )


def _unique_id(metadata: Any) -> str:
    value = metadata.get("unique_id")
    return str(value.value) if value is not None else ""


def _artifact(invocation: Any, name: str) -> dict[str, Any] | None:
    try:
        return invocation.get_artifact(name)
    except Exception:  # noqa: BLE001 - dbt died before writing it
        return None


def cost_observations(
    context: AssetExecutionContext,
    clickhouse: ClickHouseResource,
    run_results: dict[str, Any] | None,
    built: dict[str, AssetKey],
    dbt_vars: dict[str, str],
) -> Iterator[AssetObservation]:
    """After dbt has ended: what each built model cost ClickHouse, one observation per model."""
    if not built or not run_results:
        return
    try:
        invocation_id = run_results["metadata"]["invocation_id"]
        with clickhouse.as_role(MONITOR).client(context) as client:
            costs = model_costs(client, invocation_id)
    except Exception as exc:  # noqa: BLE001 - cost is extra information, never a reason to fail
        context.log.warning(f"could not read model costs from system.query_log: {exc}")
        return
    # One day's run: the observation belongs to that day; a range run's to the asset (dbt/min_date..max_date).
    partition = context.partition_key if context.has_partition_key else None
    for unique_id, key in built.items():
        cost = cost_metadata(costs.get(unique_id))
        if not cost:
            continue
        metadata = {**cost, **dbt_vars_md(dbt_vars), "dbt/unique_id": unique_id, "dbt/invocation_id": invocation_id}
        yield AssetObservation(asset_key=key, partition=partition, metadata=metadata)


def is_transient(run_results: dict[str, Any] | None) -> bool:
    """Whether a failed build is worth retrying: no dbt test failed and every error names the
    connection (or dbt wrote no results at all, e.g. it could not reach the server)."""
    if not run_results:
        return True
    results = run_results.get("results", [])
    if any(r.get("status") == "fail" for r in results):
        return False
    errors = [str(r.get("message") or "") for r in results if r.get("status") == "error"]
    return bool(errors) and all(TRANSIENT.search(message) for message in errors)


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
    retry_policy=DBT_RETRY,
)
def dbt_models(context: AssetExecutionContext, dbt: DbtCliResource, clickhouse: ClickHouseResource):
    """Staging and marts; the grain of each model is in its dbt YAML."""
    yield from run_dbt(context, dbt, clickhouse, window_vars(context))
