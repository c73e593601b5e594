"""The dbt project as Dagster sees it: paths, and the manifest the asset graph is read from.

Loading the code location only reads the manifest that was built beforehand (the Docker image
runs `dbt parse` at build; `ensure_manifest()` here for setup, tests and the demo). It parses
at load only when the manifest is missing (a fresh checkout) or, under `dagster dev`, when a
project file is newer, as dagster-dbt's `DbtProject.prepare_if_dev()` does.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from dagster_dbt import DbtProject

from platform_assets.core.paths import dbt_dir, dbt_target_dir
from platform_assets.transform.profile import DbtProfile

DBT_DIR = dbt_dir()
PARSE_TIMEOUT_S = 300


dbt_project = DbtProject(project_dir=DBT_DIR, profiles_dir=DBT_DIR, target_path=dbt_target_dir())


def _sources() -> list[Path]:
    files = [DBT_DIR / "dbt_project.yml", DBT_DIR / "profiles.yml"]
    for sub in ("models", "macros", "seeds", "tests"):
        files += [p for p in (DBT_DIR / sub).rglob("*") if p.is_file()]
    return files


def parse_env() -> dict[str, str]:
    """`dbt parse` connects nowhere but renders the profile: placeholders for unset variables."""
    placeholders = {s.var: "0" if s.kind is int else "unset" for s in DbtProfile.SETTINGS}
    return {
        **placeholders,
        **{k: v for k, v in os.environ.items() if v},
        "DBT_TARGET_PATH": str(dbt_project.target_path),
        "DBT_LOG_PATH": str(dbt_project.target_path / "logs"),
        "DBT_SEND_ANONYMOUS_USAGE_STATS": "false",
    }


def is_stale(manifest: Path) -> bool:
    built = manifest.stat().st_mtime
    return any(p.stat().st_mtime > built for p in _sources())


def using_dagster_dev() -> bool:
    """`dagster dev` sets DAGSTER_IS_DEV_CLI for the code servers it starts (what dagster-dbt checks)."""
    return bool(os.environ.get("DAGSTER_IS_DEV_CLI"))


def load_manifest() -> Path:
    """The manifest for the asset graph at import: read as built; `dbt parse` only when it is
    missing, or stale under `dagster dev` (so an edited model shows up on reload)."""
    manifest = dbt_project.manifest_path
    if manifest.exists() and not (using_dagster_dev() and is_stale(manifest)):
        return manifest
    return parse()


def ensure_manifest() -> Path:
    """Runs `dbt parse` when the manifest is missing or older than any project file, so the
    asset graph matches the SQL on disk: for setup, the tests and the demo, not at every load."""
    manifest = dbt_project.manifest_path
    if manifest.exists() and not is_stale(manifest):
        return manifest
    return parse()


def parse() -> Path:
    """`dbt parse` into the project's target folder; fails with dbt's output."""
    manifest = dbt_project.manifest_path
    exe = str(Path(sys.executable).with_name("dbt"))
    proc = subprocess.run(
        [exe, "parse", "--project-dir", str(DBT_DIR), "--profiles-dir", str(DBT_DIR), "--quiet"],
        env=parse_env(),
        capture_output=True,
        text=True,
        timeout=PARSE_TIMEOUT_S,
    )
    if proc.returncode != 0 or not manifest.exists():
        raise RuntimeError(f"dbt parse failed (exit {proc.returncode}):\n{proc.stdout[-3000:]}{proc.stderr[-2000:]}")
    return manifest
