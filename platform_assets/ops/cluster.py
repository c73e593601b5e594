"""Cluster form of the DDL: one rendered single-node statement of ``clickhouse_ddl/`` -> the
statements that create the same schema on a ClickHouse cluster (``CLICKHOUSE_CLUSTER``).

The shards and replicas are the cluster's (``remote_servers`` and the ``{shard}`` / ``{replica}``
macros of each server's config, e.g. docker/cluster/clickhouse/); every statement here runs
``ON CLUSTER '<cluster>'`` so the server fans it out to all of them.

Rules (one per statement shape; our DDL is ours, so any other shape raises instead of guessing):

- ``CREATE DATABASE``: ``ON CLUSTER``.
- ``CREATE TABLE db.t (...) ENGINE = <X>MergeTree(args) ...``: the data lives in
  ``db.t_local`` (``Replicated<X>MergeTree('/clickhouse/tables/{shard}/db/t_local', '{replica}',
  args)``, everything after the engine kept as written), and ``db.t`` becomes a ``Distributed``
  table over it, so every reader (dbt, panels, checks) keeps its table names. Sharding key
  (used only by rows inserted through ``db.t``; rows written by the views land on the shard that
  consumed them, see below):
  - MergeTree and AggregatingMergeTree: ``rand()``. Their rows arrive through the views on the
    node whose Kafka consumer read them, so a declared key would not describe where rows are, and
    ``optimize_skip_unused_shards`` would then skip shards that do hold matching rows. Rollups
    need no co-location: a read through the Distributed table merges the partial states of every
    shard (``-Merge`` / ``GROUP BY`` on the initiator), so a key split over shards is still exact.
  - ReplacingMergeTree: ``cityHash64(<ORDER BY>)``: rows replace each other only within one
    shard, so rows of one sorting key must meet on one shard.
- Kafka engine tables (database ``kafka_queue`` only): ``ON CLUSTER``, settings unchanged: the
  same ``kafka_group_name`` on every node, so the nodes share one consumer group and each reads
  its share of the partitions.
- ``CREATE MATERIALIZED VIEW db.v TO db2.t``: ``ON CLUSTER``, ``TO db2.t_local`` and every
  ``FROM db.x`` outside ``kafka_queue`` read as ``db.x_local``. A view writes on the node that
  consumed (or inserted) the rows: writing into the Distributed table instead would send each
  block over the network again to a random shard, for nothing, and a rollup view fed by a
  Distributed table would not fire at all (views fire on the table inserted into, the local one).
- ``ALTER TABLE db.t ADD COLUMN | MODIFY COLUMN ...``: on ``db.t_local`` and on ``db.t``, both
  ``ON CLUSTER`` (the Distributed table's columns are what reads see). ``ADD INDEX``,
  ``MATERIALIZE INDEX``, ``MODIFY TTL`` and the like: on ``db.t_local`` only.
- ``ALTER TABLE db.v MODIFY DEFINER = u SQL SECURITY DEFINER`` (a view's definer,
  clickhouse_ddl/013): ``ON CLUSTER``, on the view itself (views have no ``_local`` twin).
- ``CREATE VIEW``: ``ON CLUSTER``, the query unchanged: it reads the Distributed tables.
- ``DROP TABLE db.t``: ``ON CLUSTER``, and its ``db.t_local`` twin outside ``kafka_queue``;
  ``DROP VIEW`` / ``DROP DATABASE``: ``ON CLUSTER``.

Shards without replicas and without Keeper (``CLICKHOUSE_CLUSTER_NODES`` set, e.g. the embedded
two-shard stack, which cannot replicate or run ``ON CLUSTER``): the same statements with no
``ON CLUSTER`` and the engines as written (``MergeTree``, not ``ReplicatedMergeTree``), which the
schema asset runs on every node in turn.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass

from platform_assets.core.access import LOCAL_SUFFIX
from platform_assets.ops.ddl import DdlError, render

# Kafka engine tables and the views from them: one of each per node, no local twin.
PER_NODE_DATABASES = frozenset({"kafka_queue"})
ZOOKEEPER_PATH = "/clickhouse/tables/{{shard}}/{db}/{table}"
CLUSTER_NAME = re.compile(r"^[A-Za-z0-9_.-]+$")


def _rand(_order_by: str) -> str:
    return "rand()"


def _order_by_hash(order_by: str) -> str:
    return f"cityHash64({order_by})"


# Engine -> its Replicated engine and the Distributed table's sharding key (from ORDER BY).
ENGINES: dict[str, tuple[str, Callable[[str], str]]] = {
    "MergeTree": ("ReplicatedMergeTree", _rand),
    "AggregatingMergeTree": ("ReplicatedAggregatingMergeTree", _rand),
    "ReplacingMergeTree": ("ReplicatedReplacingMergeTree", _order_by_hash),
}
# ALTER commands the Distributed table must see too (its columns are the readers'), and the ones
# that concern the stored data only.
COLUMN_COMMANDS = ("ADD COLUMN", "MODIFY COLUMN")
LOCAL_COMMANDS = (
    "ADD INDEX",
    "DROP INDEX",
    "MATERIALIZE INDEX",
    "MODIFY TTL",
    "MATERIALIZE TTL",
    "MODIFY SETTING",
    "ADD PROJECTION",
    "MATERIALIZE PROJECTION",
)

NAME = r"(\w+)\.(\w+)"
CREATE_DATABASE = re.compile(r"^(CREATE DATABASE (?:IF NOT EXISTS )?\w+)(.*)$", re.S | re.I)
CREATE_TABLE = re.compile(rf"^CREATE TABLE (IF NOT EXISTS )?{NAME}\s*(?=\()", re.S | re.I)
CREATE_MV = re.compile(rf"^CREATE MATERIALIZED VIEW (IF NOT EXISTS )?{NAME}(\s+TO\s+){NAME}", re.S | re.I)
CREATE_VIEW = re.compile(rf"^(CREATE VIEW (?:IF NOT EXISTS )?{NAME})(\s+AS\b.*)$", re.S | re.I)
VIEW_SECURITY = re.compile(
    rf"^ALTER TABLE ({NAME})(\s+MODIFY\s+(?:DEFINER\s*=\s*\w+\s+)?SQL SECURITY\s+\w+\s*)$", re.S | re.I
)
ALTER_TABLE = re.compile(rf"^ALTER TABLE {NAME}\s+(.*)$", re.S | re.I)
DROP = re.compile(rf"^DROP (TABLE|VIEW) (IF EXISTS )?{NAME}(.*)$", re.S | re.I)
DROP_DATABASE = re.compile(r"^(DROP DATABASE (?:IF EXISTS )?\w+)(.*)$", re.S | re.I)
ENGINE = re.compile(r"\s*ENGINE\s*=\s*(\w+)", re.I)
ORDER_BY = re.compile(r"\bORDER BY\s+", re.I)
SOURCE = re.compile(rf"\b(FROM|JOIN)\s+{NAME}\b(?!\s*\()", re.I)


class ClusterDdlError(DdlError):
    """A DDL statement has a shape the cluster rewriting does not know."""


def _unknown(statement: str, why: str, source: str) -> ClusterDdlError:
    where = f"{source}: " if source else ""
    head = " ".join(statement.split())[:120]
    return ClusterDdlError(f"{where}no cluster form for this statement ({why}): {head}")


def _closing(text: str, start: int) -> int:
    """Index just past the parenthesis that closes the one at ``start`` (quote-aware)."""
    depth, quote, i = 0, "", start
    while i < len(text):
        ch = text[i]
        if quote:
            if ch == "\\":
                i += 1
            elif ch == quote:
                quote = ""
        elif ch in "'\"`":
            quote = ch
        elif ch == "(":
            depth += 1
        elif ch == ")":
            depth -= 1
            if depth == 0:
                return i + 1
        i += 1
    raise ValueError("unbalanced parentheses")


def _top_level_split(text: str) -> list[str]:
    """``text`` split on commas outside parentheses and quotes."""
    parts, depth, quote, start, i = [], 0, "", 0, 0
    while i < len(text):
        ch = text[i]
        if quote:
            if ch == "\\":
                i += 1
            elif ch == quote:
                quote = ""
        elif ch in "'\"`":
            quote = ch
        elif ch in "([":
            depth += 1
        elif ch in ")]":
            depth -= 1
        elif ch == "," and depth == 0:
            parts.append(text[start:i].strip())
            start = i + 1
        i += 1
    parts.append(text[start:].strip())
    return parts


def _order_by(tail: str) -> str:
    """The ORDER BY expression of a table's clauses, without the parentheses of a tuple."""
    match = ORDER_BY.search(tail)
    if not match:
        raise ValueError("no ORDER BY")
    start = match.end()
    if tail[start] == "(":
        return tail[start + 1 : _closing(tail, start) - 1].strip()
    name = re.match(r"[\w.]+", tail[start:])
    if not name:
        raise ValueError("ORDER BY is neither a tuple nor a column")
    return name.group(0)


@dataclass(frozen=True)
class Form:
    """The cluster statements are written for: its name, and replicated (Keeper, ON CLUSTER) or
    shards without replicas (each statement run on every node)."""

    cluster: str
    replicated: bool = True

    @property
    def on(self) -> str:
        return f" ON CLUSTER '{self.cluster}'" if self.replicated else ""


def _create_table(statement: str, match: re.Match[str], form: Form, source: str) -> list[str]:
    if_not_exists, db, table = match.group(1) or "", match.group(2), match.group(3)
    try:
        columns_end = _closing(statement, match.end())
    except ValueError as exc:
        raise _unknown(statement, str(exc), source) from exc
    engine = ENGINE.match(statement, columns_end)
    if not engine:
        raise _unknown(statement, "no ENGINE after the column list", source)
    name = engine.group(1)
    head = f"CREATE TABLE {if_not_exists}{db}.{table}"
    if name == "Kafka":
        if db not in PER_NODE_DATABASES:
            raise _unknown(statement, f"a Kafka table outside {sorted(PER_NODE_DATABASES)}", source)
        return [head + form.on + statement[match.end(3) :]]
    if name not in ENGINES or db in PER_NODE_DATABASES:
        raise _unknown(statement, f"engine {name} in database {db}", source)
    replicated, sharding_key = ENGINES[name]
    if not form.replicated:
        replicated = name
    after = engine.end()
    args = ""
    if statement[after : after + 1] == "(":
        close = _closing(statement, after)
        args = statement[after + 1 : close - 1].strip()
        after = close
    tail = statement[after:]
    local = table + LOCAL_SUFFIX
    path = ZOOKEEPER_PATH.format(db=db, table=local)
    replica_args = (f"'{path}'", "'{replica}'") if form.replicated else ()
    engine_args = ", ".join(a for a in (*replica_args, args) if a)
    columns = statement[match.end(3) : columns_end]
    try:
        key = sharding_key(_order_by(tail))
    except ValueError as exc:
        raise _unknown(statement, str(exc), source) from exc
    return [
        f"CREATE TABLE {if_not_exists}{db}.{local}{form.on}{columns}\nENGINE = {replicated}({engine_args}){tail}",
        f"CREATE TABLE {if_not_exists}{db}.{table}{form.on} AS {db}.{local}\n"
        f"ENGINE = Distributed('{form.cluster}', {db}, {local}, {key})",
    ]


def _materialized_view(statement: str, match: re.Match[str], form: Form, source: str) -> list[str]:
    if_not_exists, db, view, to, target_db, target = match.groups()
    if target_db in PER_NODE_DATABASES:
        raise _unknown(statement, f"a view into {target_db}", source)
    body = statement[match.end() :]

    def local(source_match: re.Match[str]) -> str:
        keyword, src_db, src = source_match.groups()
        if keyword.upper() == "JOIN":
            raise _unknown(statement, f"a join with {src_db}.{src}", source)
        return source_match.group(0) if src_db in PER_NODE_DATABASES else f"{keyword} {src_db}.{src}{LOCAL_SUFFIX}"

    body = SOURCE.sub(local, body)
    if not SOURCE.search(statement[match.end() :]):
        raise _unknown(statement, "no FROM <database>.<table>", source)
    head = f"CREATE MATERIALIZED VIEW {if_not_exists or ''}{db}.{view}{form.on}{to}{target_db}.{target}"
    return [head + LOCAL_SUFFIX + body]


def _alter(statement: str, match: re.Match[str], form: Form, source: str) -> list[str]:
    db, table, commands = match.groups()
    if db in PER_NODE_DATABASES:
        raise _unknown(statement, f"ALTER of a table in {db}", source)
    kinds = set()
    for command in _top_level_split(commands):
        words = " ".join(command.split()[:2]).upper()
        if words in COLUMN_COMMANDS:
            kinds.add("column")
        elif words in LOCAL_COMMANDS:
            kinds.add("local")
        else:
            raise _unknown(statement, f"ALTER command {words!r}", source)
    if kinds == {"column", "local"}:
        raise _unknown(statement, "column and data commands in one ALTER", source)
    rest = statement[match.end(2) :]
    local = f"ALTER TABLE {db}.{table}{LOCAL_SUFFIX}{form.on}{rest}"
    if kinds == {"local"}:
        return [local]
    return [local, f"ALTER TABLE {db}.{table}{form.on}{rest}"]


def _drop(statement: str, match: re.Match[str], form: Form, source: str) -> list[str]:
    kind, if_exists, db, table, rest = match.groups()
    if_exists = if_exists or ""
    drop = f"DROP {kind} {if_exists}{db}.{table}{form.on}{rest}"
    if kind.upper() == "VIEW" or db in PER_NODE_DATABASES:
        return [drop]
    return [drop, f"DROP {kind} {if_exists}{db}.{table}{LOCAL_SUFFIX}{form.on}{rest}"]


def cluster_statements(statement: str, cluster: str, source: str = "", replicated: bool = True) -> list[str]:
    """The cluster form of one rendered single-node statement (the module docstring's rules).
    ``source`` (e.g. "006_x.sql, statement 2") names it in the error for an unknown shape;
    ``replicated`` False: the form for shards without replicas, run on each node."""
    if not CLUSTER_NAME.match(cluster):
        raise ClusterDdlError(f"cluster name {cluster!r}: letters, digits, '_', '.', '-' only")
    return _rewrite(statement.strip(), Form(cluster, replicated), source)


def _rewrite(text: str, form: Form, source: str) -> list[str]:
    if match := CREATE_DATABASE.match(text):
        return [match.group(1) + form.on + match.group(2)]
    if match := CREATE_TABLE.match(text):
        return _create_table(text, match, form, source)
    if match := CREATE_MV.match(text):
        return _materialized_view(text, match, form, source)
    if match := CREATE_VIEW.match(text):
        return [match.group(1) + form.on + match.group(4)]
    if match := VIEW_SECURITY.match(text):
        return [f"ALTER TABLE {match.group(1)}{form.on}{match.group(4)}"]
    if match := ALTER_TABLE.match(text):
        return _alter(text, match, form, source)
    if match := DROP.match(text):
        return _drop(text, match, form, source)
    if match := DROP_DATABASE.match(text):
        return [match.group(1) + form.on + match.group(2)]
    raise _unknown(text, "not a CREATE DATABASE/TABLE/VIEW/MATERIALIZED VIEW, ALTER TABLE or DROP", source)


def expand(
    statement: str, variables: dict[str, str], cluster: str = "", source: str = "", replicated: bool = True
) -> list[str]:
    """What the schema asset runs for one statement of a DDL file: the statement rendered, as
    it is on a single node (``cluster`` empty), else its cluster form (``replicated`` False:
    the per-node form of shards without replicas)."""
    rendered = render(statement, variables)
    return cluster_statements(rendered, cluster, source, replicated) if cluster else [rendered]
