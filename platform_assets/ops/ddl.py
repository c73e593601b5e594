"""Pure helpers for applying ``clickhouse_ddl/*.sql``: file discovery, checksums, splitting, planning."""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass
from pathlib import Path

from platform_assets.core.paths import ddl_dir
from platform_assets.core.sql import SqlError, split_statements

DDL_DIR = ddl_dir()
FILE_NAME = re.compile(r"^\d{3}_[a-z0-9_]+\.sql$")
PLACEHOLDER = re.compile(r"\{\{(\w+)\}\}")
# {{kafka_consumers_<topic>}}: the topic's partition count on the broker (one consumer per partition).
CONSUMERS_PLACEHOLDER = re.compile(r"\{\{kafka_consumers_(\w+)\}\}")
# ClickHouse refuses kafka_num_consumers above max(physical cores, 16) unless the query-level
# kafka_disable_num_consumers_limit is set; 16 is accepted on any server (a consumer reads any
# number of partitions, so extra partitions are shared, not skipped).
MAX_KAFKA_CONSUMERS = 16
# kafka_thread_per_consumer = 1 (clickhouse_ddl/006) makes each consumer its own task in the
# server's background_message_broker_schedule_pool, shared by every Kafka table: a smaller pool
# runs only that many consumers at a time (the others' partitions go to the running ones).
BROKER_POOL_SETTING = "background_message_broker_schedule_pool_size"
# (ON CLUSTER: the cluster form of the statement, platform_assets/ops/cluster.py)
KAFKA_CREATE = re.compile(
    r"^CREATE TABLE IF NOT EXISTS (\w+)\.(\w+)\s*(?:ON CLUSTER '[^']*'\s*)?\(.*\bENGINE\s*=\s*Kafka\b", re.S | re.I
)


class DdlError(SqlError):
    """A DDL file is misnamed, was edited after it was applied, or failed to apply."""


@dataclass(frozen=True)
class DdlFile:
    name: str
    path: Path
    checksum: str

    @property
    def statements(self) -> list[str]:
        return split_statements(self.path.read_text())


def discover(ddl_dir: Path) -> list[DdlFile]:
    if not ddl_dir.is_dir():
        raise DdlError(f"DDL directory {ddl_dir} does not exist")
    files = []
    for path in sorted(ddl_dir.glob("*.sql")):
        if not FILE_NAME.match(path.name):
            raise DdlError(f"{path.name}: DDL files must be named NNN_snake_case.sql (e.g. 002_raw_events.sql)")
        files.append(DdlFile(path.name, path, hashlib.sha256(path.read_bytes()).hexdigest()))
    numbers = [f.name[:3] for f in files]
    duplicates = sorted({n for n in numbers if numbers.count(n) > 1})
    if duplicates:
        raise DdlError(f"DDL files share the number(s) {', '.join(duplicates)}: each number must be unique")
    return files


def render(statement: str, variables: dict[str, str]) -> str:
    """Fill ``{{name}}`` placeholders (deployment settings such as the Kafka brokers). The
    checksum covers the file as written, so a new broker address is not an edit."""
    unknown = sorted(set(PLACEHOLDER.findall(statement)) - set(variables))
    if unknown:
        raise DdlError(f"unknown placeholder(s) {unknown}; known: {sorted(variables)}")
    return PLACEHOLDER.sub(lambda m: variables[m.group(1)].replace("'", "\\'"), statement)


def consumer_topics(files: list[DdlFile]) -> list[str]:
    """Topics whose partition count the files ask for through ``{{kafka_consumers_<topic>}}``."""
    return sorted({t for f in files for stmt in f.statements for t in CONSUMERS_PLACEHOLDER.findall(stmt)})


def consumer_variables(partitions: dict[str, int | None]) -> tuple[dict[str, str], list[str]]:
    """``kafka_consumers_<topic>`` = the topic's partitions, capped at ``MAX_KAFKA_CONSUMERS``;
    with the warnings for capped topics. A topic missing on the broker (``None``) is an error:
    its Kafka table would be sized wrong."""
    missing = sorted(t for t, n in partitions.items() if n is None)
    if missing:
        raise DdlError(
            f"topic(s) {missing} not on the broker: the Kafka tables get one consumer per partition "
            "(kafka_consumers_<topic>), so materialize kafka/topics first"
        )
    variables, warnings = {}, []
    for topic, n in sorted((t, n) for t, n in partitions.items() if n is not None):
        if n > MAX_KAFKA_CONSUMERS:
            warnings.append(
                f"{topic}: {n} partitions, kafka_num_consumers capped at {MAX_KAFKA_CONSUMERS} (ClickHouse's "
                "limit); each consumer reads several partitions"
            )
        variables[f"kafka_consumers_{topic}"] = str(min(n, MAX_KAFKA_CONSUMERS))
    return variables, warnings


def pool_warning(consumers: int, pool_size: int) -> str | None:
    """A warning when the broker pool has fewer threads than the Kafka tables have consumers."""
    if pool_size >= consumers:
        return None
    return (
        f"{BROKER_POOL_SETTING} = {pool_size} < {consumers} Kafka consumers (thread per consumer): only "
        f"{pool_size} consume at a time; raise it to {consumers} or more for one running consumer per partition"
    )


def kafka_table(statement: str) -> tuple[str, str] | None:
    """(database, table) when the statement creates an ENGINE = Kafka table."""
    match = KAFKA_CREATE.match(statement.strip())
    return (match.group(1), match.group(2)) if match else None


@dataclass(frozen=True)
class Plan:
    to_apply: list[DdlFile]
    unchanged: list[DdlFile]
    applied_but_missing: list[str]


def plan(files: list[DdlFile], applied: dict[str, str]) -> Plan:
    """Which files still need applying; refuses any applied file whose content changed."""
    edited = [f for f in files if f.name in applied and applied[f.name] != f.checksum]
    if edited:
        details = "; ".join(
            f"{f.name}: applied sha256 {applied[f.name][:12]}..., file now {f.checksum[:12]}..." for f in edited
        )
        raise DdlError(
            f"applied DDL file(s) were edited afterwards ({details}). Applied files are immutable: "
            "revert the edit and put the change in a new, higher-numbered file."
        )
    names = {f.name for f in files}
    return Plan(
        to_apply=[f for f in files if f.name not in applied],
        unchanged=[f for f in files if f.name in applied],
        applied_but_missing=sorted(set(applied) - names),
    )
