"""Source freshness as asset checks on the tables dbt reads: raw/<table> (Kafka) and pg_repl/<table> (CDC).

One check, ``dbt_source_freshness``, on every dbt source table with a freshness rule in
``dbt/models/staging/__sources.yml``. A run of any of them is one ``dbt source freshness``
invocation (through the ``dbt`` resource) over the selected tables; each result comes from
its ``sources.json``: pass, warn (a failed WARN check: the run goes on) or error / runtime
error (a failed ERROR check), with the newest loaded-at time and its age as metadata. The
checks are not blocking: a stale source never stops a run by itself.
"""

import json
import uuid
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from dagster import (
    AssetCheckExecutionContext,
    AssetCheckResult,
    AssetCheckSeverity,
    AssetCheckSpec,
    AssetKey,
    Failure,
    MetadataValue,
    multi_asset_check,
)
from dagster_dbt import DbtCliResource

from platform_assets.transform.assets import MANIFEST, TRANSLATOR
from platform_assets.transform.project import dbt_project

CHECK_NAME = "dbt_source_freshness"


@dataclass(frozen=True)
class FreshSource:
    """A dbt source table with a freshness rule, and the asset that owns the table."""

    unique_id: str  # source.platform.<source>.<table>
    name: str  # <source>.<table>, as dbt prints it
    key: AssetKey
    loaded_at: str  # the loaded_at_field (or loaded_at_query) expression
    warn_after: str  # "1 hour", or "" when not set
    error_after: str

    @property
    def rule(self) -> str:
        parts = [("warn after", self.warn_after), ("error after", self.error_after)]
        return ", ".join(f"{label} {period}" for label, period in parts if period)


def _period(threshold: Mapping[str, Any] | None) -> str:
    if not threshold or not threshold.get("count") or not threshold.get("period"):
        return ""
    count, period = threshold["count"], threshold["period"]
    return f"{count} {period}" if count == 1 else f"{count} {period}s"


def fresh_sources(manifest: Mapping[str, Any]) -> list[FreshSource]:
    """Every source table in the manifest with a warn_after or error_after and a loaded-at column."""
    out = []
    for uid, props in sorted(manifest["sources"].items()):
        rule = props.get("freshness") or {}
        warn, error = _period(rule.get("warn_after")), _period(rule.get("error_after"))
        loaded_at = props.get("loaded_at_field") or props.get("loaded_at_query") or ""
        if not (warn or error) or not loaded_at:
            continue
        out.append(
            FreshSource(
                unique_id=uid,
                name=f"{props['source_name']}.{props['name']}",
                key=TRANSLATOR.get_asset_key(props),
                loaded_at=loaded_at,
                warn_after=warn,
                error_after=error,
            )
        )
    return out


SOURCES = fresh_sources(json.loads(Path(MANIFEST).read_text()))
BY_KEY = {s.key: s for s in SOURCES}


def _age(seconds: float) -> str:
    minutes = int(seconds // 60)
    if minutes < 60:
        return f"{seconds:.0f} s" if minutes == 0 else f"{minutes} min"
    hours, minutes = divmod(minutes, 60)
    if hours < 48:
        return f"{hours} h {minutes} min"
    return f"{hours // 24} days {hours % 24} h"


def evaluate(source: FreshSource, result: Mapping[str, Any] | None) -> AssetCheckResult:
    """One source's entry of sources.json as a check result."""
    base: dict[str, Any] = {
        "dbt_source": source.name,
        "loaded_at_field": source.loaded_at,
        "warn_after": source.warn_after or "-",
        "error_after": source.error_after or "-",
    }
    if result is None:
        return AssetCheckResult(
            asset_key=source.key,
            check_name=CHECK_NAME,
            passed=False,
            severity=AssetCheckSeverity.ERROR,
            description=f"{source.name}: dbt source freshness reported nothing for this source",
            metadata={**base, "status": "missing"},
        )
    status = str(result.get("status"))
    if status not in ("pass", "warn", "error"):  # "runtime error": the query failed (no table, no column)
        message = str(result.get("error") or result.get("message") or status)
        return AssetCheckResult(
            asset_key=source.key,
            check_name=CHECK_NAME,
            passed=False,
            severity=AssetCheckSeverity.ERROR,
            description=f"{source.name}: freshness could not be read: {message}",
            metadata={**base, "status": status, "error": message[:2000]},
        )
    age = float(result["max_loaded_at_time_ago_in_s"])
    newest = str(result["max_loaded_at"])
    empty = newest.startswith("1970-01-01")  # ClickHouse's max() over no rows
    seen = "no rows yet" if empty else f"newest row loaded {_age(age)} ago ({newest})"
    # An empty table has never received data (a new deployment, a table just added): dbt calls
    # that an error, but it is no evidence of a stalled feed, so it is a warning here.
    warn = status == "warn" or empty
    return AssetCheckResult(
        asset_key=source.key,
        check_name=CHECK_NAME,
        passed=status == "pass",
        severity=AssetCheckSeverity.WARN if warn else AssetCheckSeverity.ERROR,
        description=f"{source.name}: {status}: {seen}; {source.rule}",
        metadata={
            **base,
            "status": status,
            "max_loaded_at": newest,
            "max_loaded_at_age_s": MetadataValue.float(age),
            "snapshotted_at": str(result.get("snapshotted_at", "")),
        },
    )


def run_freshness(dbt: DbtCliResource, sources: list[FreshSource], run_id: str) -> dict[str, Mapping[str, Any]]:
    """`dbt source freshness` over `sources`: unique_id -> its entry of sources.json."""
    target = dbt_project.target_path / f"freshness-{run_id[:8]}-{uuid.uuid4().hex[:6]}"
    select = " ".join(f"source:{s.name}" for s in sources)  # one value: dagster-dbt takes one after --select
    # exit code 1 when a source errs: that is a result, not a failure of the check
    invocation = dbt.cli(["source", "freshness", "--select", select], raise_on_error=False, target_path=target)
    invocation.wait()
    try:
        results = invocation.get_artifact("sources.json")["results"]
    except FileNotFoundError as exc:
        raise Failure(f"dbt source freshness wrote no sources.json: {invocation.get_error()}") from exc
    return {r["unique_id"]: r for r in results}


@multi_asset_check(
    name=CHECK_NAME,
    specs=[
        AssetCheckSpec(
            CHECK_NAME,
            asset=s.key,
            description=f"dbt source freshness of {s.name}: max({s.loaded_at}), {s.rule}.",
        )
        for s in SOURCES
    ],
    can_subset=True,
)
def dbt_source_freshness(context: AssetCheckExecutionContext, dbt: DbtCliResource) -> Iterator[AssetCheckResult]:
    selected = [BY_KEY[k.asset_key] for k in sorted(context.selected_asset_check_keys, key=str)]
    results = run_freshness(dbt, selected, context.run.run_id)
    for source in selected:
        result = evaluate(source, results.get(source.unique_id))
        context.log.info(result.description or "")
        yield result
