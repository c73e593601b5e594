"""The dbt CLI resource: the project on disk, the profile from the environment."""

from __future__ import annotations

import sys
from pathlib import Path

from dagster_dbt import DbtCliResource

from platform_assets.transform.project import dbt_project


def build_dbt_resource() -> DbtCliResource:
    # profiles.yml reads the same CLICKHOUSE_* variables as the other resources (EnvVar).
    # The venv's dbt: the daemon and webserver need not have the venv on PATH.
    return DbtCliResource(project_dir=dbt_project, dbt_executable=str(Path(sys.executable).with_name("dbt")))
