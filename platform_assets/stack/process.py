"""Process plumbing shared by the embedded servers: pid files, ports, logs, graceful stop."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import time
from collections.abc import Callable, Sequence
from pathlib import Path

from platform_assets.stack.config import StackError


def port_is_free(port: int, host: str = "127.0.0.1") -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((host, port))
        except OSError:
            return False
    return True


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def require_free_ports(server: str, ports: dict[str, int]) -> None:
    for label, port in ports.items():
        if not port_is_free(port):
            env_name = f"PLATFORM_{label.upper()}_PORT"
            raise StackError(
                f"{server}: port {port} ({label}) on 127.0.0.1 is already in use by another "
                f"process. Stop that process (see `ss -ltnp | grep :{port}`) or choose another "
                f"port with {env_name}=<port> platform-stack up"
            )


def pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    # A zombie child still answers kill(0); reap it if it is ours.
    try:
        done, _ = os.waitpid(pid, os.WNOHANG)
        return done == 0
    except ChildProcessError:
        return _not_zombie(pid)


def _not_zombie(pid: int) -> bool:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat.rsplit(")", 1)[1].split()[0] != "Z"


def read_pid(pid_file: Path) -> int | None:
    try:
        pid = int(pid_file.read_text().strip())
    except (OSError, ValueError):
        return None
    return pid if pid_alive(pid) else None


def tail(path: Path, lines: int = 20) -> str:
    try:
        content = path.read_text(errors="replace").splitlines()
    except OSError:
        return f"(no log at {path})"
    return "\n".join(content[-lines:]) or f"(log {path} is empty)"


def spawn(
    argv: Sequence[str],
    log_file: Path,
    pid_file: Path,
    cwd: Path | None = None,
    env: dict[str, str] | None = None,
) -> int:
    """Start a detached server process (own session) that outlives this command."""
    log_file.parent.mkdir(parents=True, exist_ok=True)
    with open(log_file, "ab") as log:
        proc = subprocess.Popen(
            list(argv),
            stdout=log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            cwd=cwd,
            env={**os.environ, **(env or {})},
            start_new_session=True,
        )
    pid_file.write_text(str(proc.pid))
    return proc.pid


def wait_until(
    check: Callable[[], bool],
    timeout: float,
    what: str,
    alive: Callable[[], bool] | None = None,
    log_file: Path | None = None,
) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if check():
            return
        if alive is not None and not alive():
            raise StackError(
                f"{what} died during start. Last lines of {log_file}:\n{tail(log_file) if log_file else ''}"
            )
        time.sleep(0.1)
    detail = f" Last lines of {log_file}:\n{tail(log_file)}" if log_file else ""
    raise StackError(f"{what} did not become healthy within {timeout:.0f}s.{detail}")


def stop_pid(pid: int, timeout: float = 10.0) -> str:
    """SIGTERM the process group, escalate to SIGKILL after ``timeout``; returns how it ended."""
    for sig, wait in ((signal.SIGTERM, timeout), (signal.SIGKILL, 5.0)):
        try:
            os.killpg(pid, sig)
        except ProcessLookupError:
            return "stopped"
        except PermissionError:
            os.kill(pid, sig)
        deadline = time.monotonic() + wait
        while time.monotonic() < deadline:
            if not pid_alive(pid):
                return "stopped" if sig == signal.SIGTERM else "killed after timeout"
            time.sleep(0.1)
    raise StackError(f"process {pid} survived SIGKILL")


def wait_exit(pid: int, timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if not pid_alive(pid):
            return True
        time.sleep(0.1)
    return False
