"""Throwaway stacks in temp directories on free ports, for tests and benchmarks."""

from __future__ import annotations

import shutil
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from platform_assets.stack.config import DEFAULT_PORTS, StackConfig
from platform_assets.stack.process import free_port
from platform_assets.stack.servers import Stack


def new_stack_dir(prefix: str) -> Path:
    # mkdtemp makes 0700 dirs; Postgres runs as its own user when we are root and must enter it.
    path = Path(tempfile.mkdtemp(prefix=prefix))
    path.chmod(0o755)
    return path


def free_ports() -> dict[str, int]:
    return {name: free_port() for name in DEFAULT_PORTS}


@contextmanager
def scratch_stack(prefix: str, shards: int = 1) -> Iterator[Stack]:
    """A stack in a new temp dir on free ports (``shards`` ClickHouse servers); stopped and
    deleted on exit."""
    stack = Stack(StackConfig(root=new_stack_dir(prefix), ports=free_ports(), shards=shards))
    try:
        yield stack
    finally:
        stack.down()
        shutil.rmtree(stack.cfg.root, ignore_errors=True)
