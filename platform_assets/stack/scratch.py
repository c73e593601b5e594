"""Throwaway stacks in temp directories on free ports, for tests and benchmarks."""

from __future__ import annotations

import shutil
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from platform_assets.stack.config import DEFAULT_PORTS, StackConfig, StackError
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
def scratch_stack(prefix: str, shards: int = 1, tenants: str = "") -> Iterator[Stack]:
    """A stack in a new temp dir on free ports (``shards`` ClickHouse servers, ``tenants`` as
    PLATFORM_TENANTS); stopped and deleted on exit."""
    config = StackConfig(root=new_stack_dir(prefix), ports=free_ports(), shards=shards, tenants_json=tenants)
    stack = Stack(config)
    try:
        yield stack
    finally:
        stack.down()
        shutil.rmtree(stack.cfg.root, ignore_errors=True)


@contextmanager
def started_scratch_stack(prefix: str, shards: int = 1, attempts: int = 3) -> Iterator[Stack]:
    """``scratch_stack`` started; free ports are picked before the servers bind them, so one can
    be taken meanwhile (e.g. as the source port of a connection): then a new stack is tried."""
    for attempt in range(1, attempts + 1):
        with scratch_stack(prefix, shards) as stack:
            try:
                stack.up()
            except StackError as exc:
                if "already in use" not in str(exc) or attempt == attempts:
                    raise
                continue
            yield stack
            return
