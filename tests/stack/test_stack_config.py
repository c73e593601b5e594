"""Stack configuration: ports from saved state and overrides."""

from __future__ import annotations

import pytest

from platform_assets.stack.config import DEFAULT_PORTS


def test_stack_ports_keep_saved_values_and_take_overrides(monkeypatch, tmp_path):
    from platform_assets.stack.config import StackConfig, StackError

    for name in DEFAULT_PORTS:
        monkeypatch.delenv(f"PLATFORM_{name.upper()}_PORT", raising=False)
    StackConfig(root=tmp_path, ports={**DEFAULT_PORTS, "postgres": 25432}).save_ports()
    monkeypatch.setenv("PLATFORM_KAFKA_PORT", "29092")
    ports = StackConfig.from_env(tmp_path).ports
    assert ports["postgres"] == 25432 and ports["kafka"] == 29092 and ports["s3"] == DEFAULT_PORTS["s3"]
    monkeypatch.setenv("PLATFORM_S3_PORT", "http")
    with pytest.raises(StackError, match="PLATFORM_S3_PORT='http' is not a TCP port number"):
        StackConfig.from_env(tmp_path)
