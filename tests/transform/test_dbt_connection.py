"""dbt-clickhouse reaches the real ClickHouse with the profile read from the environment."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.integration

REPO_ROOT = Path(__file__).resolve().parents[2]


def test_dbt_debug_connects(stack, tmp_path):
    env = {
        **os.environ,
        **stack.env(),
        "DBT_LOG_PATH": str(tmp_path / "logs"),
        "DBT_TARGET_PATH": str(tmp_path / "target"),
        "DBT_SEND_ANONYMOUS_USAGE_STATS": "false",
        "DBT_USE_COLORS": "false",
    }
    dbt = os.path.join(os.path.dirname(sys.executable), "dbt")
    proc = subprocess.run(
        [dbt, "debug", "--project-dir", str(REPO_ROOT / "dbt"), "--profiles-dir", str(REPO_ROOT / "dbt")],
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.returncode == 0, proc.stdout[-3000:]
    assert "Connection test: [OK connection ok]" in proc.stdout
    assert "All checks passed!" in proc.stdout
