"""`workspace.yaml` loads in the real Dagster webserver and its GraphQL API lists the assets."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest
import requests

from platform_assets.stack.process import free_port, stop_pid

pytestmark = pytest.mark.e2e

REPO_ROOT = Path(__file__).resolve().parents[2]

QUERY = """
{ assetNodes { assetKey { path } groupName }
  workspaceOrError { ... on Workspace { locationEntries { name loadStatus
    locationOrLoadError { __typename ... on PythonError { message } } } } } }
"""


def test_webserver_serves_the_code_location(stack, tmp_path):
    home = tmp_path / "dagster_home"
    home.mkdir()
    shutil.copyfile(REPO_ROOT / "dagster.yaml", home / "dagster.yaml")
    port = free_port()
    webserver = os.path.join(os.path.dirname(sys.executable), "dagster-webserver")
    proc = subprocess.Popen(
        [webserver, "-w", str(REPO_ROOT / "workspace.yaml"), "-h", "127.0.0.1", "-p", str(port)],
        env={
            **{k: v for k, v in os.environ.items() if not k.startswith("PLATFORM_")},
            "DAGSTER_HOME": str(home),
            "PLATFORM_STACK_DIR": str(stack.cfg.root),
        },
        cwd=REPO_ROOT,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    try:
        url = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + 120
        data = None
        while time.monotonic() < deadline:
            try:
                resp = requests.post(f"{url}/graphql", json={"query": QUERY}, timeout=10)
                data = resp.json()["data"]
                entries = data["workspaceOrError"]["locationEntries"]
                if entries and entries[0]["loadStatus"] == "LOADED":
                    break
            except (requests.RequestException, KeyError, ValueError, TypeError):
                pass
            time.sleep(1)
        assert data is not None, "webserver never answered GraphQL"
        (entry,) = data["workspaceOrError"]["locationEntries"]
        assert entry["name"] == "platform_assets"
        assert entry["locationOrLoadError"]["__typename"] == "RepositoryLocation", entry
        nodes = {"/".join(n["assetKey"]["path"]): n["groupName"] for n in data["assetNodes"]}
        assert nodes.get("clickhouse/schema") == "ops"
        assert requests.get(url, timeout=10).status_code == 200  # the UI page itself
    finally:
        stop_pid(proc.pid, timeout=10)
