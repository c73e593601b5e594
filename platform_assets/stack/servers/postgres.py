"""Debian's Postgres 15 with ``wal_level=logical``, and the empty app database.

The app schema in that database belongs to the CDC domain (``platform_assets.cdc.source``):
``platform-stack up`` (cli.py) and the ``postgres/app_schema`` asset apply it, not the server.
"""

from __future__ import annotations

import glob
import os
import pwd
import shutil
import subprocess
import time
from pathlib import Path
from typing import Any

from platform_assets.stack import tls
from platform_assets.stack.config import StackError
from platform_assets.stack.process import pid_alive, tail
from platform_assets.stack.servers.base import Health, Server


def postgres_bin_dir() -> Path:
    """Debian keeps server binaries in /usr/lib/postgresql/<major>/bin, not on PATH."""
    for candidate in sorted(glob.glob("/usr/lib/postgresql/*/bin"), reverse=True):
        if (Path(candidate) / "pg_ctl").exists() and Path(candidate).parent.name == "15":
            return Path(candidate)
    found = shutil.which("pg_ctl")
    if found:
        return Path(found).resolve().parent
    raise StackError(
        "postgres: server binaries (pg_ctl, initdb) not found. Install them with:\n"
        "  sudo apt-get update && sudo apt-get install -y postgresql-15"
    )


class PostgresServer(Server):
    name = "postgres"

    def ports(self) -> dict[str, int]:
        return {"postgres": self.cfg.ports["postgres"]}

    @property
    def data_dir(self) -> Path:
        return self.home / "data"

    def _run_as(self) -> tuple[int, int] | None:
        """Postgres refuses to run as root; when we are root, run it as the `postgres` user."""
        if os.geteuid() != 0:
            return None
        try:
            user = pwd.getpwnam("postgres")
        except KeyError as exc:
            raise StackError(
                "postgres: running as root needs the `postgres` system user "
                "(created by: apt-get install -y postgresql-15)"
            ) from exc
        return user.pw_uid, user.pw_gid

    def _pg(self, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        who = self._run_as()
        return subprocess.run(
            [str(postgres_bin_dir() / args[0]), *args[1:]],
            capture_output=True,
            text=True,
            check=check,
            timeout=120,
            user=who[0] if who else None,
            group=who[1] if who else None,
        )

    def _chown(self, path: Path) -> None:
        who = self._run_as()
        if who:
            os.chown(path, *who)
            # Every parent must be traversable by the postgres user.
            for parent in path.parents:
                if parent == Path("/"):
                    break
                mode = parent.stat().st_mode
                if not mode & 0o001:
                    raise StackError(
                        f"postgres: the server runs as user `postgres`, which cannot enter {parent} "
                        f"(mode {oct(mode & 0o777)}). Put the stack elsewhere with "
                        "PLATFORM_STACK_DIR=/some/traversable/dir or `chmod o+x` that directory."
                    )

    def _initdb(self) -> None:
        self.data_dir.mkdir(parents=True, exist_ok=True)
        self._chown(self.data_dir)
        self.data_dir.chmod(0o700)
        pwfile = self.home / "pwfile"
        pwfile.write_text(self.creds.postgres_password)
        self._chown(pwfile)
        try:
            result = self._pg(
                "initdb",
                "-D",
                str(self.data_dir),
                "-U",
                self.creds.postgres_user,
                "--pwfile",
                str(pwfile),
                "--auth-host=scram-sha-256",
                "--auth-local=scram-sha-256",
                "-E",
                "UTF8",
                "--locale=C.UTF-8",
                check=False,
            )
        finally:
            pwfile.unlink(missing_ok=True)
        if result.returncode != 0:
            raise StackError(f"postgres: initdb failed:\n{result.stdout}\n{result.stderr}")
        conf = self.data_dir / "postgresql.conf"
        with conf.open("a") as fh:
            fh.write(
                "\n# platform-stack settings\n"
                "wal_level = logical  # MaterializedPostgreSQL reads logical replication\n"
                "max_replication_slots = 16  # one per CDC database plus tests\n"
                "max_wal_senders = 16  # one per replication connection\n"
                "listen_addresses = '127.0.0.1'  # loopback only\n"
                "unix_socket_directories = ''  # TCP only: no socket path permissions to manage\n"
                "wal_sender_timeout = 10s  # notice a vanished replica quickly\n"
            )
        hba = self.data_dir / "pg_hba.conf"
        with hba.open("a") as fh:
            fh.write("host replication all 127.0.0.1/32 scram-sha-256\n")

    def _install_certificate(self) -> None:
        """The stack's server certificate and key in the data directory, owned by the server's
        user, the key 0600 (Postgres refuses a key others can read)."""
        files = tls.ensure(self.cfg.root / "tls")
        for source, name in ((files.cert, "server.crt"), (files.key, "server.key")):
            target = self.data_dir / name
            target.write_bytes(source.read_bytes())
            target.chmod(0o600)
            who = self._run_as()
            if who:
                os.chown(target, *who)  # inside the data directory, which only that user enters

    def _start(self) -> None:
        if not (self.data_dir / "PG_VERSION").exists():
            self._initdb()
        self._clear_stale_lock()
        log = self.log_file
        log.touch()
        self._chown(log)
        self._install_certificate()
        result = self._pg(
            "pg_ctl",
            "-D",
            str(self.data_dir),
            "-l",
            str(log),
            "-o",
            # TLS with the stack's certificate (stack/tls.py); clients choose with POSTGRES_SSLMODE.
            f"-p {self.cfg.ports['postgres']} -c ssl=on -c ssl_cert_file=server.crt -c ssl_key_file=server.key",
            "-w",
            "-t",
            "60",
            "start",
            check=False,
        )
        if result.returncode != 0:
            raise StackError(
                f"postgres failed to start: {result.stdout.strip()} {result.stderr.strip()}\n"
                f"Last lines of {log}:\n{tail(log)}"
            )
        pid_line = (self.data_dir / "postmaster.pid").read_text().splitlines()[0]
        self.pid_file.write_text(pid_line.strip())
        self._wait_healthy(30)
        self._ensure_database()

    def _clear_stale_lock(self) -> None:
        """After kill -9 the postmaster may linger as a zombie where nothing reaps orphans
        (containers without an init); Postgres then trusts kill(pid, 0) and refuses to start.
        Remove the lock only when its pid is dead or a zombie, after its children exited."""
        lock = self.data_dir / "postmaster.pid"
        try:
            pid = int(lock.read_text().splitlines()[0])
        except (OSError, ValueError, IndexError):
            return
        if pid_alive(pid):
            return
        deadline = time.monotonic() + 10
        while self._backends_alive() and time.monotonic() < deadline:
            time.sleep(0.1)
        lock.unlink(missing_ok=True)

    def _backends_alive(self) -> bool:
        """Any live process whose working directory is this data dir (backends chdir there)."""
        for proc in Path("/proc").iterdir():
            if not proc.name.isdigit():
                continue
            try:
                if Path(os.readlink(proc / "cwd")) == self.data_dir and pid_alive(int(proc.name)):
                    return True
            except OSError:
                continue
        return False

    def _ensure_database(self) -> None:
        """The (empty) app database: server-level setup. Its schema is the CDC domain's."""
        import psycopg

        with psycopg.connect(**self._conninfo("postgres"), autocommit=True) as conn:
            exists = conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", (self.creds.postgres_db,)).fetchone()
            if not exists:
                conn.execute(f'CREATE DATABASE "{self.creds.postgres_db}"')

    def up(self) -> str:
        state = super().up()
        if state == "running":
            self._ensure_database()  # also on a running server: the database may have been dropped
        return state

    def _conninfo(self, dbname: str | None = None) -> dict[str, Any]:
        return {
            "host": "127.0.0.1",
            "port": self.cfg.ports["postgres"],
            "user": self.creds.postgres_user,
            "password": self.creds.postgres_password,
            "dbname": dbname or self.creds.postgres_db,
            "connect_timeout": 3,
        }

    def health(self) -> Health:
        import psycopg

        try:
            with psycopg.connect(**self._conninfo("postgres")) as conn:
                row = conn.execute("SELECT current_setting('server_version'), current_setting('wal_level')").fetchone()
        except psycopg.Error as exc:
            return Health(False, f"connect failed: {str(exc).strip().splitlines()[0]}", self.pid())
        assert row is not None
        return Health(True, f"server_version={row[0]} wal_level={row[1]}", self.pid())

    def down(self, timeout: float = 10.0) -> str:
        if self.pid() is None:
            return "not running"
        # Fast shutdown first (clean checkpoint), pg_ctl's immediate mode is the escalation.
        result = self._pg(
            "pg_ctl",
            "-D",
            str(self.data_dir),
            "-m",
            "fast",
            "-w",
            "-t",
            str(int(timeout)),
            "stop",
            check=False,
        )
        if result.returncode == 0:
            self.pid_file.unlink(missing_ok=True)
            return "stopped"
        self._pg("pg_ctl", "-D", str(self.data_dir), "-m", "immediate", "stop", check=False)
        self.pid_file.unlink(missing_ok=True)
        return "stopped (immediate after timeout)"

    def env(self) -> dict[str, str]:
        return {
            "POSTGRES_HOST": "127.0.0.1",
            "POSTGRES_PORT": str(self.cfg.ports["postgres"]),
            "POSTGRES_USER": self.creds.postgres_user,
            "POSTGRES_PASSWORD": self.creds.postgres_password,
            "POSTGRES_DB": self.creds.postgres_db,
            "CDC_REPLICATION_PASSWORD": self.creds.cdc_replication_password,
            # The platform's own connections go over TLS, the certificate and host name checked.
            "POSTGRES_SSLMODE": "verify-full",
            "POSTGRES_SSLROOTCERT": str(tls.ensure(self.cfg.root / "tls").ca),
        }
