"""The code location's graph as plain data: every asset key with its group, each check, job,
schedule (with its cron) and sensor. Compared with the committed ``graph_snapshot.json``."""

from __future__ import annotations

from typing import Any


def graph_of(defs: Any) -> dict[str, Any]:
    repo = defs.get_repository_def()
    graph = repo.asset_graph
    assets = {}
    for key in sorted(graph.get_all_asset_keys(), key=lambda k: k.to_user_string()):
        node = graph.get(key)
        assets[key.to_user_string()] = {
            "group": node.group_name,
            "kinds": sorted(node.kinds),
            "partitioned": node.partitions_def is not None,
            "deps": sorted(k.to_user_string() for k in node.parent_keys),
        }
    checks = sorted(f"{k.asset_key.to_user_string()}:{k.name}" for k in graph.asset_check_keys)
    jobs = sorted(j.name for j in repo.get_all_jobs() if not j.name.startswith("__"))
    schedules = {s.name: {"cron": s.cron_schedule, "job": s.job_name} for s in repo.schedule_defs}
    sensors = sorted(s.name for s in repo.sensor_defs)
    return {
        "assets": assets,
        "checks": checks,
        "jobs": jobs,
        "schedules": dict(sorted(schedules.items())),
        "sensors": sensors,
    }
