"""What every embedded server shares: its health report, pid and log files, idempotent up/down."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from platform_assets.stack.config import StackConfig, StackError
from platform_assets.stack.process import pid_alive, read_pid, require_free_ports, stop_pid, wait_until

HTTP_TIMEOUT = 5
TEMPLATES = Path(__file__).parent.parent / "templates"


@dataclass
class Health:
    healthy: bool
    detail: str
    pid: int | None = None


class Server:
    name = ""

    def __init__(self, cfg: StackConfig) -> None:
        self.cfg = cfg
        self.creds = cfg.credentials()
        self.home = cfg.dir(self.name)
        self.pid_file = self.home / "server.pid"
        self.log_file = cfg.dir("logs") / f"{self.name}.log"

    # Subclasses implement these four.
    def _start(self) -> None:
        raise NotImplementedError

    def health(self) -> Health:
        raise NotImplementedError

    def env(self) -> dict[str, str]:
        raise NotImplementedError

    def ports(self) -> dict[str, int]:
        raise NotImplementedError

    def pid(self) -> int | None:
        return read_pid(self.pid_file)

    def up(self) -> str:
        """Idempotent: a healthy server is left alone, a dead one is restarted."""
        pid = self.pid()
        if pid is not None:
            if self.health().healthy:
                return "running"
            # Alive but unhealthy: give a starting server a moment before replacing it.
            try:
                wait_until(lambda: self.health().healthy, 10, self.name)
                return "running"
            except StackError:
                stop_pid(pid)
        require_free_ports(self.name, self.ports())
        self._start()
        return "started"

    def down(self, timeout: float = 10.0) -> str:
        pid = self.pid()
        if pid is None:
            return "not running"
        result = stop_pid(pid, timeout)
        self.pid_file.unlink(missing_ok=True)
        return result

    def _wait_healthy(self, timeout: float) -> None:
        pid = self.pid()
        wait_until(
            lambda: self.health().healthy,
            timeout,
            f"{self.name} (pid {pid})",
            alive=lambda: pid is not None and pid_alive(pid),
            log_file=self.log_file,
        )
