"""Apache Superset 6.1 from its own venv (``.superset-venv``, scripts/setup.sh), opt-in.

Not one of the default servers: ``platform-stack up superset`` starts it (docs/superset.md).
Its metadata database is SQLite in the stack's ``superset`` folder, next to the generated
``superset_config.py``; the SECRET_KEY and the admin's password are the stack's credentials.
Each start runs ``superset db upgrade``, ``superset fab create-admin`` and ``superset init``
(skipped while the stamp says this venv already initialized this database), then gunicorn
serves ``superset.app:create_app()`` on 127.0.0.1. A stop is gunicorn's graceful shutdown
(SIGTERM to its process group), forced after the timeout like every other server.
"""

from __future__ import annotations

import hashlib
import os
import subprocess
from pathlib import Path

import requests

from platform_assets.core.paths import checkout_dir, state_dir
from platform_assets.stack.config import StackError
from platform_assets.stack.process import spawn
from platform_assets.stack.servers.base import HTTP_TIMEOUT, Health, Server

VENV_ENV = "PLATFORM_SUPERSET_VENV"
SETUP_HINT = "run scripts/setup.sh (it creates .superset-venv from requirements-superset.lock)"
START_TIMEOUT_S = 180  # gunicorn imports Superset (pandas, pyarrow) before it answers /health
INIT_TIMEOUT_S = 600  # db upgrade runs every migration on a new metadata database
# One worker process (2 cores, shared with the stack), threads: a dashboard asks for every chart's data at once.
GUNICORN_ARGS = (
    *("--workers", "1", "--worker-class", "gthread", "--threads", "8"),
    *("--timeout", "120", "--graceful-timeout", "5"),
    *("--limit-request-line", "0", "--limit-request-field_size", "0"),
)

CONFIG = """# Written by platform-stack on every start of Superset (platform_assets/stack/servers/superset.py).
SECRET_KEY = {secret_key!r}
SQLALCHEMY_DATABASE_URI = {database_uri!r}
DATA_DIR = {data_dir!r}
# Plain HTTP on the loopback interface: no HTTPS redirects or HSTS from Talisman.
TALISMAN_ENABLED = False
WTF_CSRF_ENABLED = True
# Login attempts are rate-limited per client in memory (one gunicorn worker).
RATELIMIT_STORAGE_URI = "memory://"
SUPERSET_WEBSERVER_TIMEOUT = 120
SQLLAB_TIMEOUT = 60
ROW_LIMIT = 10000
FEATURE_FLAGS = {{"DASHBOARD_RBAC": False}}
"""


def superset_venv() -> Path:
    """``PLATFORM_SUPERSET_VENV``, else ``.superset-venv`` of the checkout (or of the state's parent)."""
    explicit = os.environ.get(VENV_ENV)
    if explicit:
        return Path(explicit)
    return (checkout_dir() or state_dir().parent) / ".superset-venv"


def superset_bin(name: str) -> Path:
    path = superset_venv() / "bin" / name
    if not path.exists():
        raise StackError(f"superset: {path} does not exist; {SETUP_HINT}")
    return path


class SupersetServer(Server):
    name = "superset"

    def ports(self) -> dict[str, int]:
        return {"superset": self.cfg.ports["superset"]}

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.cfg.ports['superset']}"

    @property
    def config_file(self) -> Path:
        return self.home / "superset_config.py"

    def _write_config(self) -> None:
        text = CONFIG.format(
            secret_key=self.creds.superset_secret_key,
            database_uri=f"sqlite:///{self.home / 'superset.db'}?check_same_thread=false",
            data_dir=str(self.home),
        )
        self.config_file.write_text(text)
        self.config_file.chmod(0o600)  # holds the SECRET_KEY

    def _process_env(self) -> dict[str, str]:
        return {
            "SUPERSET_CONFIG_PATH": str(self.config_file),
            "SUPERSET_HOME": str(self.home),
            "FLASK_APP": "superset.app:create_app()",
            "PYTHONUNBUFFERED": "1",
        }

    def _superset(self, *args: str) -> None:
        """One ``superset`` CLI command, its output appended to the server's log."""
        cmd = [str(superset_bin("superset")), *args]
        self.log_file.parent.mkdir(parents=True, exist_ok=True)
        with open(self.log_file, "ab") as log:
            log.write(f"\n$ superset {args[0]} {args[1] if len(args) > 1 else ''}\n".encode())
            log.flush()
            done = subprocess.run(
                cmd,
                stdout=log,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                cwd=self.home,
                env={**os.environ, **self._process_env()},
                timeout=INIT_TIMEOUT_S,
                check=False,
            )
        if done.returncode != 0:
            raise StackError(f"superset {args[0]} exited with {done.returncode}; see {self.log_file}")

    def _stamp(self) -> str:
        """What the metadata database was initialized for: this venv's Superset, this admin."""
        dist = sorted(p.name for p in (superset_venv() / "lib").glob("python*/site-packages/apache_superset-*"))
        key = f"{dist}|{self.creds.superset_admin_user}|{self.creds.superset_admin_password}"
        return hashlib.sha256(key.encode()).hexdigest()

    def initialize(self) -> None:
        """The metadata database's schema, the admin user, the roles and permissions; idempotent."""
        stamp = self.home / ".initialized"
        if stamp.exists() and stamp.read_text() == self._stamp() and (self.home / "superset.db").exists():
            return
        self._superset("db", "upgrade")
        c = self.creds
        # create-admin leaves an existing user as it is (and exits 0): the password is the stack's.
        self._superset(
            "fab", "create-admin", "--username", c.superset_admin_user, "--firstname", "Platform",
            "--lastname", "Admin", "--email", f"{c.superset_admin_user}@localhost", "--password",
            c.superset_admin_password,
        )  # fmt: skip
        # A stack whose credentials were regenerated: the existing admin gets the stack's password.
        self._superset(
            "fab", "reset-password", "--username", c.superset_admin_user, "--password", c.superset_admin_password
        )
        self._superset("init")
        stamp.write_text(self._stamp())

    def _start(self) -> None:
        self._write_config()
        self.initialize()
        port = self.cfg.ports["superset"]
        spawn(
            [str(superset_bin("gunicorn")), "--bind", f"127.0.0.1:{port}", *GUNICORN_ARGS, "superset.app:create_app()"],
            self.log_file,
            self.pid_file,
            cwd=self.home,
            env=self._process_env(),
        )
        self._wait_healthy(START_TIMEOUT_S)

    def health(self) -> Health:
        try:
            resp = requests.get(f"{self.url}/health", timeout=HTTP_TIMEOUT)
        except requests.RequestException as exc:
            return Health(False, f"GET /health failed: {type(exc).__name__}", self.pid())
        if resp.status_code != 200 or resp.text.strip() != "OK":
            return Health(False, f"GET /health: HTTP {resp.status_code}", self.pid())
        return Health(True, f"GET /health = OK at {self.url}", self.pid())

    def env(self) -> dict[str, str]:
        return {
            "SUPERSET_URL": self.url,
            "SUPERSET_USERNAME": self.creds.superset_admin_user,
            "SUPERSET_PASSWORD": self.creds.superset_admin_password,
        }
