"""The asset graph as committed: every asset key and group, check, job, schedule (cron) and sensor.

An accidental change of the graph fails here and shows up in review as a diff of
``graph_snapshot.json``. After an intended change, rewrite the snapshot with
``UPDATE_GRAPH_SNAPSHOT=1 .venv/bin/python -m pytest tests/platform/test_graph_snapshot.py``.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import pytest

pytestmark = pytest.mark.unit

SNAPSHOT = Path(__file__).with_name("graph_snapshot.json")


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


def test_graph_matches_the_committed_snapshot():
    from platform_assets.definitions import defs

    graph = graph_of(defs)
    text = json.dumps(graph, indent=1, sort_keys=True) + "\n"
    if os.environ.get("UPDATE_GRAPH_SNAPSHOT"):
        SNAPSHOT.write_text(text)
    committed = json.loads(SNAPSHOT.read_text())
    for part in ("assets", "checks", "jobs", "schedules", "sensors"):
        added = sorted(set(graph[part]) - set(committed[part]))
        removed = sorted(set(committed[part]) - set(graph[part]))
        assert not added and not removed, f"{part}: added {added}, removed {removed}"
    changed = sorted(k for k in graph["assets"] if graph["assets"][k] != committed["assets"][k])
    assert not changed, f"assets whose group, kinds, partitioning or deps changed: {changed}"
    assert graph["schedules"] == committed["schedules"], "a schedule's cron or job changed"
