"""Where the platform's files are: the project files it reads and the directory it writes to.

Project files (the dbt project, the ClickHouse DDL, the Grafana provisioning tree) are found,
in this order:
1. ``PLATFORM_PROJECT_DIR``: a directory holding ``dbt/``, ``clickhouse_ddl/`` and ``docker/grafana/``;
2. the source checkout the package was imported from (an editable install, the tests);
3. the copies shipped inside the wheel as package data (``platform_assets/_project/``), see
   ``[tool.setuptools.package-dir]`` in pyproject.toml. A wheel has no Grafana tree to write to.

State (the embedded stack, the Dagster home, exports, reports, dbt's target folder) goes under
``PLATFORM_STATE_DIR``, by default ``.platform`` in the checkout, else in the current directory.
"""

from __future__ import annotations

import os
from functools import cache
from pathlib import Path

PACKAGE_DIR = Path(__file__).resolve().parents[1]
PACKAGED = PACKAGE_DIR / "_project"  # present in an installed wheel only


class MissingProjectFiles(RuntimeError):
    """Neither the setting, a checkout nor the wheel's package data holds the project files."""


@cache
def checkout_dir() -> Path | None:
    """The source tree the package runs from, when it runs from one (its parent has the dbt project)."""
    root = PACKAGE_DIR.parent
    return root if (root / "dbt" / "dbt_project.yml").is_file() and (root / "pyproject.toml").is_file() else None


def _project_root() -> Path | None:
    explicit = os.environ.get("PLATFORM_PROJECT_DIR")
    if explicit:
        root = Path(explicit).resolve()
        if not (root / "dbt" / "dbt_project.yml").is_file():
            raise MissingProjectFiles(f"PLATFORM_PROJECT_DIR={explicit}: no dbt/dbt_project.yml there")
        return root
    return checkout_dir()


def _located(relative: str, packaged: str) -> Path:
    root = _project_root()
    path = root / relative if root else PACKAGED / packaged
    if not path.exists():
        raise MissingProjectFiles(f"{path} does not exist (set PLATFORM_PROJECT_DIR to a checkout of the project)")
    return path


def dbt_dir() -> Path:
    """The dbt project (dbt_project.yml, profiles.yml, models, macros, seeds, tests)."""
    return _located("dbt", "dbt")


def ddl_dir() -> Path:
    """The numbered ClickHouse DDL files."""
    return _located("clickhouse_ddl", "clickhouse_ddl")


def grafana_dir() -> Path | None:
    """The Grafana provisioning tree the publish assets write to, or None where there is none (a wheel)."""
    root = _project_root()
    path = root / "docker" / "grafana" if root else None
    return path if path is not None and path.is_dir() else None


def price_seed() -> Path:
    """The model price list (dbt seed): the one source of unit prices, for dbt and the generators."""
    return dbt_dir() / "seeds" / "model_prices.csv"


def state_dir() -> Path:
    """Writable state: ``PLATFORM_STATE_DIR``, else ``.platform`` of the checkout or the current directory."""
    explicit = os.environ.get("PLATFORM_STATE_DIR")
    if explicit:
        return Path(explicit).resolve()
    return (checkout_dir() or Path.cwd()) / ".platform"


def dbt_target_dir() -> Path:
    """dbt's target folder: inside the checkout's dbt project, else below the state directory."""
    root = _project_root()
    return root / "dbt" / "target" if root else state_dir() / "dbt" / "target"
