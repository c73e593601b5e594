"""The embedded ClickHouse server process: chdb-core's bundled clickhouse-local, listening.

Run as ``python -m platform_assets.stack.clickhouse_main DIR``. DIR holds ``config.xml``,
``users.xml``, ``server.json`` (port and admin login) and ``data/``. clickhouse-local reads
``config.xml`` from the working directory; the HTTP and TCP handlers live only while a query
runs, so the process keeps one near-idle query (one row per second) open until it is killed
with ``KILL QUERY`` (see ``stop``) or SIGTERM.

Kafka-engine tables in this build fail to load at start ("Load job 'startup table' failed"),
so their metadata files are moved aside before the start and re-attached from the saved
definition (same UUID) once the server listens; consumption resumes from committed offsets.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import sys
import threading
import time
import urllib.parse
from pathlib import Path

import requests

SERVE_MARKER = "platform-stack-serve"
SERVE_SQL = (
    "SYSTEM START LISTEN HTTP; SYSTEM START LISTEN TCP; "
    "SELECT sleepEachRow(1) FROM numbers(1000000000000) "
    f"SETTINGS max_block_size = 1, log_comment = '{SERVE_MARKER}'"
)
# Matches the serving query only: the KILL statement's own text does not start with SELECT.
KILL_SERVE_SQL = f"KILL QUERY WHERE query LIKE 'SELECT sleepEachRow%{SERVE_MARKER}%' SYNC"
KAFKA_ENGINE = re.compile(r"ENGINE\s*=\s*Kafka\b", re.IGNORECASE)
HTTP_TIMEOUT = 10


def _unescape(name: str) -> str:
    return urllib.parse.unquote(name)


def detach_kafka_tables(data_dir: Path, saved_dir: Path) -> list[Path]:
    """Move metadata of Kafka-engine tables to ``saved_dir/<db>/<table>.sql`` before start."""
    metadata = data_dir / "metadata"
    if metadata.is_dir():
        for db_dir in metadata.iterdir():
            if not db_dir.is_dir():
                continue
            for sql_file in db_dir.glob("*.sql"):
                if KAFKA_ENGINE.search(sql_file.read_text(errors="replace")):
                    target = saved_dir / db_dir.name / sql_file.name
                    target.parent.mkdir(parents=True, exist_ok=True)
                    shutil.move(str(sql_file), target)
    return sorted(saved_dir.glob("*/*.sql")) if saved_dir.is_dir() else []


def attach_statement(saved: Path) -> tuple[str, str, str]:
    database, table = _unescape(saved.parent.name), _unescape(saved.stem)
    definition = saved.read_text()
    sql = re.sub(
        r"^\s*ATTACH\s+TABLE\s+_\s",
        f"ATTACH TABLE `{database}`.`{table}` ",
        definition,
        count=1,
        flags=re.IGNORECASE,
    )
    return database, table, sql


class Admin:
    def __init__(self, http_port: int, user: str, password: str) -> None:
        self.url = f"http://127.0.0.1:{http_port}/"
        self.auth = (user, password)

    def query(self, sql: str) -> str:
        resp = requests.post(self.url, data=sql.encode(), auth=self.auth, timeout=HTTP_TIMEOUT)
        if resp.status_code != 200:
            raise RuntimeError(resp.text.strip())
        return resp.text

    def ping(self) -> bool:
        try:
            return requests.get(self.url + "ping", timeout=1).text.strip() == "Ok."
        except requests.RequestException:
            return False


def reattach_kafka_tables(admin: Admin, saved: list[Path], log) -> None:
    for path in saved:
        database, table, sql = attach_statement(path)
        try:
            admin.query(sql)
        except RuntimeError as exc:
            # Known wart of this build: ATTACH of a Kafka table reports LOGICAL_ERROR
            # "Shutdown was called" although the table is attached and consumes.
            if "Shutdown was called" not in str(exc):
                log(f"re-attach of {database}.{table} failed: {exc}")
                continue
        visible = admin.query(
            f"SELECT count() FROM system.tables WHERE database = '{database}' AND name = '{table}'"
        ).strip()
        if visible == "1":
            path.unlink()
            log(f"re-attached Kafka table {database}.{table}")
        else:
            log(f"Kafka table {database}.{table} not visible after ATTACH; definition kept at {path}")


def main(argv: list[str]) -> int:
    home = Path(argv[1]).resolve()
    server = json.loads((home / "server.json").read_text())
    os.chdir(home)  # clickhouse-local reads config.xml from the working directory
    data_dir = home / "data"
    saved = detach_kafka_tables(data_dir, home / "kafka-detached")

    def log(msg: str) -> None:
        print(f"{time.strftime('%Y-%m-%dT%H:%M:%S')} {msg}", flush=True)

    from chdb import _chdb  # imported after chdir so it sees config.xml

    admin = Admin(server["http_port"], server["user"], server["password"])
    outcome: dict[str, str] = {}

    def serve() -> None:
        try:
            _chdb.query(SERVE_SQL, "TabSeparated", path=str(data_dir))  # type: ignore[attr-defined]
            outcome["end"] = "serving query ended"
        except Exception as exc:  # noqa: BLE001 - reported, then the process exits non-zero
            outcome["error"] = str(exc)

    thread = threading.Thread(target=serve, name="clickhouse-serve", daemon=True)
    thread.start()
    deadline = time.monotonic() + 60
    while not admin.ping():
        if not thread.is_alive() or time.monotonic() > deadline:
            log(f"ClickHouse failed to listen: {outcome.get('error', 'no answer on /ping')}")
            return 1
        time.sleep(0.05)
    log(f"listening: http {server['http_port']}, tcp {server['tcp_port']}")
    if saved:
        reattach_kafka_tables(admin, saved, log)

    stopping = threading.Event()

    def on_signal(signum, _frame) -> None:
        stopping.set()

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    while thread.is_alive():
        if stopping.is_set():
            try:
                admin.query(KILL_SERVE_SQL)
            except (RuntimeError, requests.RequestException) as exc:
                log(f"KILL QUERY failed: {exc}")
                return 1
            thread.join(15)
            break
        thread.join(0.2)
    log(outcome.get("error") or outcome.get("end") or "stopped")
    return 1 if "error" in outcome else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
