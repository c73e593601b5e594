"""The dbt project as Dagster sees it: paths, and a manifest that is never stale at load time."""

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


def ensure_manifest() -> Path:
    """Runs `dbt parse` when the manifest is missing or older than any project file, so the
    asset graph always matches the SQL on disk (also outside `dagster dev`)."""
    manifest = dbt_project.manifest_path
    if manifest.exists():
        built = manifest.stat().st_mtime
        if all(p.stat().st_mtime <= built for p in _sources()):
            return manifest
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
