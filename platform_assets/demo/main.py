"""`platform-demo`: the whole platform end to end on the embedded local stack.

Starts the servers, materializes every asset (and runs every check) into the local Dagster
instance so the runs show in the UI, writes ``.platform/demo-summary.json`` and prints it.
Exit status 0 only when every server is healthy and every asset and check succeeded.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from platform_assets.core.paths import checkout_dir, state_dir
from platform_assets.stack.config import StackConfig, StackError
from platform_assets.stack.servers import Stack

REPO_ROOT = checkout_dir() or Path.cwd()  # dagster.yaml and workspace.yaml of the checkout
SUMMARY_PATH = Path(os.environ.get("PLATFORM_SUMMARY_PATH") or state_dir() / "demo-summary.json")
UI_PORT = 3000
DEMO_DAYS = 7  # history days before today that the demo loads, transforms and exports
LATER_GROUPS = ("export", "publish", "report")  # read the marts: run after the transforms


def prepare_dagster_home() -> Path:
    home = Path(os.environ.get("DAGSTER_HOME") or state_dir() / "dagster_home").resolve()
    home.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(REPO_ROOT / "dagster.yaml", home / "dagster.yaml")  # keep in step with the repo
    os.environ["DAGSTER_HOME"] = str(home)
    return home


def run_all_assets() -> dict[str, Any]:
    from dagster import AssetSelection, DagsterInstance

    from platform_assets.definitions import defs
    from platform_assets.ops.backup_assets import BACKUP_KEY
    from platform_assets.transform.assets import dbt_models

    started = time.monotonic()
    # Every asset and check upstream of the dbt models (those are daily-partitioned: see
    # demo_transform); exports and publication read the marts, so they run after them.
    graph = defs.resolve_asset_graph()
    later = AssetSelection.assets(dbt_models, BACKUP_KEY) | AssetSelection.groups(*LATER_GROUPS)
    keys = (AssetSelection.all() - later).resolve(graph)
    job = defs.resolve_implicit_global_asset_job_def().get_subset(asset_selection=keys)
    result = job.execute_in_process(
        instance=DagsterInstance.get(),
        raise_on_error=False,
        tags={"platform/source": "platform-demo"},
    )
    materialized = sorted(
        {e.asset_key.to_user_string() for e in result.get_asset_materialization_events() if e.asset_key}
    )
    failed_steps = sorted(e.step_key or "?" for e in result.get_step_failure_events())
    checks_out = {
        f"{c.asset_key.to_user_string()}:{c.check_name}": "passed" if c.passed else f"failed ({c.severity.value})"
        for c in result.get_asset_check_evaluations()
    }
    metadata = {
        e.asset_key.to_user_string(): {k: v.value for k, v in e.materialization.metadata.items()}
        for e in result.get_asset_materialization_events()
        if e.asset_key
    }
    return {
        "run_id": result.run_id,
        "success": result.success,
        "seconds": round(time.monotonic() - started, 2),
        "materialized": materialized,
        "failed_steps": failed_steps,
        "checks": checks_out,
        "metadata": metadata,
    }


def demo_cdc() -> dict[str, Any]:
    from platform_assets.cdc.resources import CdcResource
    from platform_assets.core.resources import resources_from_env
    from platform_assets.demo.cdc import cdc_summary

    res = resources_from_env()
    cdc = CdcResource(replication_password=os.environ["CDC_REPLICATION_PASSWORD"])
    return cdc_summary(res["postgres"], res["clickhouse"], cdc)


def demo_ingest() -> dict[str, Any]:
    from platform_assets.core.resources import resources_from_env
    from platform_assets.demo.ingest import ingest_summary

    res = resources_from_env()
    return ingest_summary(res["kafka"], res["clickhouse"])


def demo_transform(days: int = DEMO_DAYS) -> dict[str, Any]:
    """Loads a week of history (product, orders and subscriptions in Postgres through CDC, agent
    spans and events in the raw tables) and materializes every dbt model for those days and
    today in one single-run backfill, recorded in the local instance (visible in the UI)."""
    from dagster import DagsterInstance

    from platform_assets.cdc.monitor import wait_caught_up
    from platform_assets.core.resources import resources_from_env
    from platform_assets.definitions import defs
    from platform_assets.demo.transform import load_demo_history, mart_rows

    res = resources_from_env()
    today = datetime.now(UTC).date()
    start = today - timedelta(days=days)
    history = load_demo_history(res, start, days, os.environ["USER_HASH_KEY"])
    wait_caught_up(res["postgres"], res["clickhouse"])
    started = time.monotonic()
    result = defs.resolve_job_def("transform_daily_job").execute_in_process(
        instance=DagsterInstance.get(),
        raise_on_error=False,
        tags={
            "platform/source": "platform-demo",
            "dagster/asset_partition_range_start": start.isoformat(),
            "dagster/asset_partition_range_end": today.isoformat(),
        },
    )
    failed_checks = sorted(
        f"{c.asset_key.to_user_string()}:{c.check_name} ({c.severity.value})"
        for c in result.get_asset_check_evaluations()
        if not c.passed
    )
    return {
        "days": {"first": start.isoformat(), "last": today.isoformat()},
        "history": history,
        "run_id": result.run_id,
        "success": result.success,
        "seconds": round(time.monotonic() - started, 2),
        "models_materialized": len({e.asset_key for e in result.get_asset_materialization_events()}),
        "dbt_tests": len(result.get_asset_check_evaluations()),
        "failed_checks": failed_checks,
        "marts": mart_rows(res["clickhouse"], start, today),
    }


def demo_export(days: int = DEMO_DAYS) -> dict[str, Any]:
    """Exports the raw tables and daily marts of the finished demo days (one run per day, as
    the UI's partition runs do), each with its read-back check."""
    from dagster import DagsterInstance

    from platform_assets.core.resources import resources_from_env
    from platform_assets.definitions import defs
    from platform_assets.demo.export import export_summary, run_exports
    from platform_assets.export.resources import build_export_resource

    today = datetime.now(UTC).date()
    day_list = [today - timedelta(days=n) for n in range(days, 0, -1)]
    started = time.monotonic()
    runs = run_exports(defs, day_list, DagsterInstance.get(), tags={"platform/source": "platform-demo"})
    summary = export_summary(build_export_resource(), resources_from_env()["s3"], day_list)
    tables = summary["tables"]
    return {
        **runs,
        "seconds": round(time.monotonic() - started, 2),
        "objects": sum(d["objects"] for t in tables.values() for d in t.values()),
        "rows": sum(d["rows"] for t in tables.values() for d in t.values()),
        **summary,
    }


def demo_publish() -> dict[str, Any]:
    """Publication assets (dashboards, alert rules; pushed to Grafana only where GRAFANA_URL
    is set) with the check that runs every panel's SQL on the marts just built."""
    from dagster import AssetSelection, DagsterInstance

    from platform_assets.definitions import defs
    from platform_assets.demo.publish import grafana_summary
    from platform_assets.publish.resources import GrafanaResource

    graph = defs.resolve_asset_graph()
    keys = AssetSelection.groups("publish").resolve(graph)
    checks = {k for k in graph.asset_check_keys if k.asset_key in keys}
    job = defs.resolve_implicit_global_asset_job_def().get_subset(asset_selection=keys, asset_check_selection=checks)
    result = job.execute_in_process(
        instance=DagsterInstance.get(), raise_on_error=False, tags={"platform/source": "platform-demo"}
    )
    published = {
        e.asset_key.to_user_string(): e.materialization.metadata["published"].value
        for e in result.get_asset_materialization_events()
        if e.asset_key and "published" in e.materialization.metadata
    }
    return {
        # What was generated (the assets above did any publishing: no second push here).
        **grafana_summary(grafana=GrafanaResource()),
        "run_id": result.run_id,
        "success": result.success,
        "checks": {
            f"{c.asset_key.to_user_string()}:{c.check_name}": "passed" if c.passed else f"failed ({c.severity.value})"
            for c in result.get_asset_check_evaluations()
        },
        "published": bool(published) and all(published.values()),
        "published_assets": published,
        "grafana_url": os.environ.get("GRAFANA_URL") or None,
    }


def demo_backup() -> dict[str, Any]:
    """Yesterday's backup of raw and the marts to S3 (``clickhouse/backup``), after the exports:
    the marts it copies are built by then."""
    from dagster import DagsterInstance

    from platform_assets.definitions import defs
    from platform_assets.ops.backup_assets import BACKUP_KEY

    day = (datetime.now(UTC).date() - timedelta(days=1)).isoformat()
    job = defs.resolve_implicit_global_asset_job_def().get_subset(asset_selection={BACKUP_KEY})
    result = job.execute_in_process(
        partition_key=day,
        instance=DagsterInstance.get(),
        raise_on_error=False,
        tags={"platform/source": "platform-demo"},
    )
    events = result.get_asset_materialization_events()
    md: dict[str, Any] = {k: v.value for k, v in events[0].materialization.metadata.items()} if events else {}
    return {
        "run_id": result.run_id,
        "success": result.success,
        "day": day,
        "location": md.get("location"),
        "status": md.get("status"),
        "tables": len(md.get("tables") or {}),
        "rows": md.get("rows"),
        "total_size": md.get("total_size"),
    }


def demo_report() -> dict[str, Any]:
    """The daily report page for yesterday (the last whole UTC day), materialized through
    Dagster so the UI links it from the asset's metadata."""
    from dagster import AssetKey, DagsterInstance

    from platform_assets.definitions import defs

    day = (datetime.now(UTC).date() - timedelta(days=1)).isoformat()
    job = defs.resolve_implicit_global_asset_job_def().get_subset(asset_selection={AssetKey(["report", "daily"])})
    result = job.execute_in_process(
        partition_key=day,
        instance=DagsterInstance.get(),
        raise_on_error=False,
        tags={"platform/source": "platform-demo"},
    )
    events = result.get_asset_materialization_events()
    md = {k: v.value for k, v in events[0].materialization.metadata.items()} if events else {}
    return {
        "run_id": result.run_id,
        "success": result.success,
        "day": day,
        "path": md.get("path"),
        "has_data": md.get("has_data"),
        "charts": md.get("charts"),
        "kpis": {k.removeprefix("kpi/"): v for k, v in md.items() if k.startswith("kpi/")},
    }


def build_summary(stack: Stack, up: dict[str, str], run: dict[str, Any], dagster_home: Path) -> dict[str, Any]:
    health = stack.status()
    schema = run["metadata"].get("clickhouse/schema", {})
    return {
        "generated_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "stack": {"dir": str(stack.cfg.root), "up_seconds": float(up.get("seconds", "nan"))},
        "servers": {
            name: {"healthy": h.healthy, "detail": h.detail, "pid": h.pid, "on_up": up.get(name)}
            for name, h in health.items()
        },
        "dagster": {"home": str(dagster_home), "run_id": run["run_id"], "seconds": run["seconds"]},
        "assets": {
            "materialized": run["materialized"],
            "failed": run["failed_steps"],
            "checks": run["checks"],
        },
        "clickhouse_schema": {
            "files": schema.get("files"),
            "applied_now": schema.get("applied_now"),
            "databases": schema.get("databases"),
        },
        "ui": f"{sys.executable} -m dagster dev -w {REPO_ROOT / 'workspace.yaml'} -p {UI_PORT}",
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="platform-demo", description=__doc__)
    parser.add_argument("--ui", action="store_true", help="serve the Dagster UI afterwards (blocks)")
    args = parser.parse_args(argv)

    stack = Stack(StackConfig.from_env())
    try:
        up = stack.up()
    except StackError as exc:
        print(f"platform-demo: the stack did not start: {exc}", file=sys.stderr)
        return 1
    os.environ.update(stack.env())
    dagster_home = prepare_dagster_home()
    run = run_all_assets()
    summary = build_summary(stack, up, run, dagster_home)
    if run["success"]:
        summary["cdc"] = demo_cdc()
        summary["ingest"] = demo_ingest()
        summary["transform"] = demo_transform()
        summary["export"] = demo_export()
        summary["backup"] = demo_backup()
        summary["grafana"] = demo_publish()
        summary["report"] = demo_report()
    SUMMARY_PATH.parent.mkdir(parents=True, exist_ok=True)
    SUMMARY_PATH.write_text(json.dumps(summary, indent=2, default=str))

    print(json.dumps(summary, indent=2, default=str))
    cdc_ok = all(t["in_sync"] for t in summary.get("cdc", {}).get("tables", {}).values())
    ingest_ok = summary.get("ingest", {}).get("all_landed", False)
    transform = summary.get("transform", {})
    transform_ok = transform.get("success", False) and not any("(ERROR)" in c for c in transform["failed_checks"])
    export_ok = summary.get("export", {}).get("success", False)
    grafana = summary.get("grafana", {})
    publish_ok = grafana.get("success", False) and not any("(ERROR)" in v for v in grafana.get("checks", {}).values())
    ok = (
        run["success"]
        and all(s["healthy"] for s in summary["servers"].values())
        # A warning (e.g. dead letters the demo itself sent earlier) does not fail the demo.
        and not any(v == "failed (ERROR)" for v in run["checks"].values())
        and cdc_ok
        and ingest_ok
        and transform_ok
        and export_ok
        and summary.get("backup", {}).get("success", False)
        and publish_ok
        and summary.get("report", {}).get("success", False)
        and summary["report"].get("has_data", False)
    )
    print(f"\nSummary written to {SUMMARY_PATH}")
    print(f"Open the Dagster UI: DAGSTER_HOME={dagster_home} {summary['ui']}  ->  http://127.0.0.1:{UI_PORT}")
    print("Stop the servers: platform-stack down")
    if not ok:
        print("platform-demo: FAILED (see failed assets, checks or servers above)", file=sys.stderr)
        return 1
    if args.ui:
        os.execv(
            sys.executable,
            [
                sys.executable,
                "-m",
                "dagster",
                "dev",
                "-w",
                str(REPO_ROOT / "workspace.yaml"),
                "-p",
                str(UI_PORT),
            ],
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
