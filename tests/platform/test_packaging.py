"""The package runs installed: a wheel built from this checkout, installed into a fresh venv outside
it, loads the definitions and the dbt project from the wheel's own package data."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tomllib
import venv
import zipfile
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parents[2]
NOT_SOURCE = (
    ".git",
    ".venv",
    ".platform",
    "build",
    "dist",
    "*.egg-info",
    "target",
    "logs",
    "test-artifacts",
    "__pycache__",
)

PROBE = """
import json, sys
import platform_assets
from platform_assets.core import paths
from platform_assets.definitions import defs
graph = defs.get_repository_def().asset_graph
print(json.dumps({
    "package": platform_assets.__file__,
    "dbt_dir": str(paths.dbt_dir()),
    "ddl_dir": str(paths.ddl_dir()),
    "grafana_dir": str(paths.grafana_dir()),
    "manifest": str(paths.dbt_target_dir() / "manifest.json"),
    "assets": len(graph.get_all_asset_keys()),
    "checks": len(graph.asset_check_keys),
}))
"""


@pytest.mark.unit
def test_packages_list_names_every_package_folder():
    config = tomllib.loads((REPO_ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]
    listed = {p for p in config["packages"] if not p.startswith("platform_assets._project")}
    found = {
        ".".join(init.parent.relative_to(REPO_ROOT).parts)
        for init in (REPO_ROOT / "platform_assets").rglob("__init__.py")
    }
    assert listed == found


@pytest.mark.integration
def test_wheel_installed_outside_the_checkout_loads_definitions_and_dbt_project(tmp_path):
    # Built from a copy: setuptools writes build/ into the source tree it builds, and a stale one
    # would put files into the wheel that the checkout no longer has.
    source = tmp_path / "source"
    shutil.copytree(REPO_ROOT, source, ignore=shutil.ignore_patterns(*NOT_SOURCE))
    dist = tmp_path / "dist"
    build = subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "-w", str(dist), str(source)],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert build.returncode == 0, build.stdout[-3000:] + build.stderr[-3000:]
    (wheel,) = dist.glob("platform_assets-*.whl")
    names = zipfile.ZipFile(wheel).namelist()
    assert "platform_assets/_project/dbt/dbt_project.yml" in names
    assert "platform_assets/_project/clickhouse_ddl/002_raw_events.sql" in names
    assert not [n for n in names if "/target/" in n or "/logs/" in n], "dbt build output shipped in the wheel"

    # A fresh venv; its third-party packages come from the dev venv through a .pth line (a full
    # dependency install would download the whole lock). The platform itself comes only from the wheel.
    env_dir = tmp_path / "venv"
    venv.create(env_dir, with_pip=True)
    py = env_dir / "bin" / "python"
    site = subprocess.check_output([py, "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"], text=True)
    dev_site = next(p for p in sys.path if p.endswith("site-packages") and Path(p).is_dir())
    (Path(site.strip()) / "dev_deps.pth").write_text(dev_site + "\n")
    (env_dir / "bin" / "dbt").symlink_to(Path(sys.executable).with_name("dbt"))
    install = subprocess.run(
        [py, "-m", "pip", "install", "-q", "--no-deps", str(wheel)], capture_output=True, text=True
    )
    assert install.returncode == 0, install.stderr[-3000:]

    work = tmp_path / "elsewhere"
    work.mkdir()
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PLATFORM_", "DBT_", "PYTHON"))}
    env.update(dummy_settings(), PLATFORM_ENV="prod", PLATFORM_STATE_DIR=str(tmp_path / "state"))
    proc = subprocess.run([py, "-c", PROBE], cwd=work, env=env, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-5000:]
    seen = json.loads(proc.stdout.strip().splitlines()[-1])
    site_dir = Path(site.strip())
    for key in ("package", "dbt_dir", "ddl_dir"):
        assert Path(seen[key]).is_relative_to(site_dir), f"{key} not from the installed wheel: {seen[key]}"
    assert seen["grafana_dir"] == "None"  # a wheel has no provisioning tree to write to
    assert Path(seen["manifest"]).is_relative_to(tmp_path / "state") and Path(seen["manifest"]).is_file()
    from platform_assets.definitions import defs

    graph = defs.get_repository_def().asset_graph
    assert (seen["assets"], seen["checks"]) == (len(graph.get_all_asset_keys()), len(graph.asset_check_keys))


def dummy_settings() -> dict[str, str]:
    """Every required setting with a placeholder value: loading connects to nothing."""
    from platform_assets.core.settings import settings_of
    from platform_assets.registry import RESOURCE_CLASSES

    return {
        s.var: "1" if s.kind is int else "placeholder"
        for c in RESOURCE_CLASSES.values()
        for s in settings_of(c)
        if s.required
    }
