"""The stack without servers: ports from saved state and overrides, errors, env names, layering."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

from platform_assets.stack.config import DEFAULT_PORTS, StackConfig, StackError
from platform_assets.stack.scratch import free_ports
from platform_assets.stack.servers import Stack
from platform_assets.stack.servers import postgres as postgres_mod

pytestmark = pytest.mark.unit

STACK_DIR = Path(postgres_mod.__file__).resolve().parents[1]
DOMAINS = ("cdc", "ingest", "transform", "export", "publish", "report", "ops", "demo", "synthetic")


def test_stack_ports_keep_saved_values_and_take_overrides(monkeypatch, tmp_path):
    for name in DEFAULT_PORTS:
        monkeypatch.delenv(f"PLATFORM_{name.upper()}_PORT", raising=False)
    StackConfig(root=tmp_path, ports={**DEFAULT_PORTS, "postgres": 25432}).save_ports()
    monkeypatch.setenv("PLATFORM_KAFKA_PORT", "29092")
    ports = StackConfig.from_env(tmp_path).ports
    assert ports["postgres"] == 25432 and ports["kafka"] == 29092 and ports["s3"] == DEFAULT_PORTS["s3"]
    monkeypatch.setenv("PLATFORM_S3_PORT", "http")
    with pytest.raises(StackError, match="PLATFORM_S3_PORT='http' is not a TCP port number"):
        StackConfig.from_env(tmp_path)


def test_missing_postgres_binaries_names_apt_get(monkeypatch):
    monkeypatch.setattr(postgres_mod.glob, "glob", lambda pattern: [])
    monkeypatch.setattr(postgres_mod.shutil, "which", lambda name: None)
    with pytest.raises(StackError, match=r"apt-get install -y postgresql-15"):
        postgres_mod.postgres_bin_dir()


def test_stack_env_names_match_the_resources(tmp_path):
    from platform_assets.registry import REQUIRED_ENV_VARS

    env = Stack(StackConfig(root=tmp_path, ports=free_ports())).env()
    assert set(REQUIRED_ENV_VARS) <= set(env)


def test_launcher_imports_no_domain_package():
    """Only cli.py, the composition point, may reach into a domain (the CDC app schema)."""
    offenders = []
    for path in sorted(STACK_DIR.rglob("*.py")):
        if path.name == "cli.py" and path.parent == STACK_DIR:
            continue
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom):
                names = [node.module or ""]
            else:
                continue
            offenders += [
                f"{path.relative_to(STACK_DIR)}: {name}"
                for name in names
                if any(name == f"platform_assets.{d}" or name.startswith(f"platform_assets.{d}.") for d in DOMAINS)
            ]
    assert offenders == []
