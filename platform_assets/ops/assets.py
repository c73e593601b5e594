"""Ops domain: the ClickHouse schema, applied from ``clickhouse_ddl/`` by an asset."""

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from clickhouse_connect.driver.exceptions import DatabaseError, OperationalError
from dagster import AssetExecutionContext, Config, MaterializeResult, MetadataValue, asset

from platform_assets.core.automation import SERVER_RETRY, final
from platform_assets.core.kafka_tables import kafka_tables, reattach
from platform_assets.core.keys import SCHEMA_KEY, TOPICS_KEY
from platform_assets.core.resources import ClickHouseResource, KafkaResource
from platform_assets.ops.cluster import expand
from platform_assets.ops.ddl import (
    BROKER_POOL_SETTING,
    DDL_DIR,
    DdlError,
    DdlFile,
    Plan,
    consumer_topics,
    consumer_variables,
    discover,
    kafka_table,
    plan,
    pool_warning,
    render,
)

BOOTSTRAP_SQL = Path(__file__).parent / "sql" / "schema_migrations.sql"
# CLICKHOUSE_CLUSTER set: the migrations table replicated to every node (the file says why).
BOOTSTRAP_CLUSTER_SQL = Path(__file__).parent / "sql" / "schema_migrations_cluster.sql"


class SchemaConfig(Config):
    ddl_dir: str = str(DDL_DIR)


def applied_checksums(client) -> dict[str, str]:
    rows = client.query("SELECT filename, checksum FROM platform_meta.schema_migrations FINAL").result_rows
    return {name: checksum for name, checksum in rows}


def bootstrap(client, cluster: str = "") -> None:
    from platform_assets.core.sql import split_statements

    if not cluster:
        for statement in split_statements(BOOTSTRAP_SQL.read_text()):
            client.command(statement)
        return
    for statement in split_statements(BOOTSTRAP_CLUSTER_SQL.read_text()):
        client.command(render(statement, {"cluster": cluster}))


def cluster_plan(files: list[DdlFile], variables: dict[str, str], cluster: str, replicated: bool = True) -> None:
    """Every statement of ``files`` in its cluster form, before any runs: a statement the
    rewriting does not know fails the run naming it, with nothing of the files applied."""
    for ddl in files:
        for number, statement in enumerate(ddl.statements, start=1):
            expand(statement, variables, cluster, f"{ddl.name}, statement {number}", replicated)


@contextmanager
def not_retried(*errors: type[Exception]) -> Iterator[None]:
    """``errors`` (a file edited after it was applied, a statement the server refuses) fail the
    run at once: the retry policy is for a server that went away, and a retry would fail alike."""
    try:
        yield
    except errors as exc:
        raise final(exc) from exc


def cluster_size(client, cluster: str) -> int:
    """How many nodes run the Kafka tables: every node of ``cluster`` (each replica of each
    shard consumes in the one group), 1 on a single server."""
    if not cluster:
        return 1
    rows = client.query("SELECT count() FROM system.clusters WHERE cluster = {c:String}", parameters={"c": cluster})
    return max(1, int(rows.result_rows[0][0]))


def topic_partitions(kafka: KafkaResource, topics: list[str]) -> dict[str, int | None]:
    """Partition count per topic on the broker (None: not there)."""
    if not topics:
        return {}
    meta = kafka.admin().list_topics(timeout=30).topics
    return {t: len(meta[t].partitions) if t in meta and meta[t].error is None else None for t in topics}


def broker_pool_size(client) -> int | None:
    """The server's running thread pool for Kafka (and other message-broker) streaming. The pool
    starts with the first Kafka table, and reads 0 before that: None then."""
    rows = client.query(
        "SELECT value FROM system.server_settings WHERE name = {name:String}", parameters={"name": BROKER_POOL_SETTING}
    ).result_rows
    size = int(rows[0][0]) if rows else 0
    return size or None


def kafka_variables(
    context: AssetExecutionContext,
    kafka: KafkaResource,
    files: list[DdlFile],
    to_apply: list[DdlFile],
    node_count: int = 1,
) -> tuple[dict[str, str], int]:
    """``kafka_consumers_<topic>`` for the Kafka tables of ``to_apply``: the topic's partition
    count on the broker now (kafka/topics runs first), shared by ``node_count`` nodes that each
    consume in one group; with the number of consumers of every Kafka table of ``files``
    (applied or not) on one node."""
    topics = consumer_topics(to_apply)
    if not topics:
        return {}, 0
    partitions = topic_partitions(kafka, consumer_topics(files))
    shares = {t: -(-p // node_count) if p else p for t, p in partitions.items()}
    consumers, warnings = consumer_variables(shares)
    for message in warnings:
        context.log.warning(message)
    total = sum(int(v) for v in consumers.values())
    return {k: v for k, v in consumers.items() if k.removeprefix("kafka_consumers_") in topics}, total


def apply_statement(client, statement: str) -> None:
    try:
        client.command(statement)
    except Exception as exc:
        # This build answers CREATE of a Kafka-engine table with LOGICAL_ERROR "Shutdown was
        # called" although the table is created and consumes (ARCHITECTURE.md): success once
        # the table is visible.
        target = kafka_table(statement)
        if target and "Shutdown was called" in str(exc):
            visible = client.query(
                "SELECT count() FROM system.tables WHERE database = {db:String} AND name = {t:String}",
                parameters={"db": target[0], "t": target[1]},
            ).result_rows[0][0]
            if visible:
                return
        raise


@asset(
    key=SCHEMA_KEY,
    deps=[TOPICS_KEY],
    group_name="ops",
    owners=["team:data-platform"],
    kinds={"clickhouse", "sql"},
    # Safe to re-run: applied files are recorded per node and skipped; a statement is idempotent.
    retry_policy=SERVER_RETRY,
)
def clickhouse_schema(
    context: AssetExecutionContext, config: SchemaConfig, clickhouse: ClickHouseResource, kafka: KafkaResource
) -> MaterializeResult:
    """The ClickHouse schema: every ``clickhouse_ddl/NNN_*.sql`` file applied once, in order.

    Grain: one row per DDL file in ``platform_meta.schema_migrations`` (name, sha256, time, run).
    A second run applies nothing. A file edited after it was applied fails the run, naming it.
    """
    files = discover(Path(config.ddl_dir))
    cluster = clickhouse.cluster
    nodes = clickhouse.nodes()
    # CLICKHOUSE_CLUSTER_NODES: shards without replicas, each node migrated on its own (no ON CLUSTER).
    replicated = len(nodes) == 1 or not cluster
    applied: dict[str, list[str]] = {}
    for node in nodes:
        with node.client(context) as client, not_retried(DdlError):
            consuming = len(nodes) if len(nodes) > 1 else cluster_size(client, cluster)
            todo, kafka_settings = migrate_node(context, client, kafka, files, cluster, replicated, consuming)
            databases = [r[0] for r in client.query("SELECT name FROM system.databases ORDER BY name").result_rows]
        applied[f"{node.host}:{node.http_port}"] = [f.name for f in todo.to_apply]
    # Once every node has the schema: re-attached node after node, the consumer group rebalances
    # over the nodes' final consumers.
    reattached: list[str] = []
    if any(applied.values()):
        for node in nodes:
            with node.client(context) as client:
                reattached = reattach_all(context, client, cluster if replicated else "")
    return MaterializeResult(
        metadata={
            "applied_now": MetadataValue.json([f.name for f in todo.to_apply]),
            "already_applied": len(todo.unchanged),
            "files": len(files),
            "checksums": MetadataValue.json({f.name: f.checksum for f in files}),
            "applied_but_missing": MetadataValue.json(todo.applied_but_missing),
            "databases": MetadataValue.json(databases),
            # kafka_num_consumers per topic of the Kafka tables this run created (per node)
            "kafka_consumers_applied": MetadataValue.json(
                {k.removeprefix("kafka_consumers_"): int(v) for k, v in kafka_settings.items()}
            ),
            # Kafka tables re-attached after this run's DDL, so their consumers feed every view now there
            "kafka_tables_reattached": MetadataValue.json(reattached),
            # CLICKHOUSE_CLUSTER: the DDL ran ON CLUSTER, or node by node (absent on one server)
            **({"cluster": cluster} if cluster else {}),
            **({"applied_per_node": MetadataValue.json(applied)} if len(nodes) > 1 else {}),
        }
    )


def reattach_all(context: AssetExecutionContext, client, cluster: str) -> list[str]:
    """After DDL was applied, every Kafka table re-attached: a Kafka table's consumers push only
    into the views that existed when they started (core/kafka_tables.py), so a view added on the
    raw tables (a rollup) would get nothing from Kafka until the next restart."""
    tables = kafka_tables(client)
    for table in tables:
        reattach(client, table, cluster)
    if tables:
        context.log.info(f"re-attached {len(tables)} Kafka tables so their consumers feed the views now defined")
    return tables


def migrate_node(
    context: AssetExecutionContext,
    client,
    kafka: KafkaResource,
    files: list[DdlFile],
    cluster: str,
    replicated: bool,
    node_count: int,
) -> tuple[Plan, dict[str, str]]:
    """The files not yet applied on the server behind ``client`` (ON CLUSTER: the whole cluster),
    applied in order and recorded; returns the plan and the Kafka consumer counts used."""
    bootstrap(client, cluster if replicated else "")
    todo = plan(files, applied_checksums(client))
    # Placeholders are deployment values, filled at apply time (the checksum covers the file
    # as written). A later partition increase does not resize an applied Kafka table: its
    # consumers share the new partitions.
    kafka_settings, consumers = kafka_variables(context, kafka, files, todo.to_apply, node_count)
    variables = {"kafka_broker_list": kafka.bootstrap_servers, **kafka_settings}
    if cluster:
        cluster_plan(todo.to_apply, variables, cluster, replicated)
    for ddl in todo.to_apply:
        statements = ddl.statements
        for number, statement in enumerate(statements, start=1):
            try:
                # One server: the statement as rendered; a cluster: its cluster form.
                for rendered in expand(statement, variables, cluster, replicated=replicated):
                    apply_statement(client, rendered)
            except OperationalError:
                raise  # the server went away: retried by the policy
            except (DdlError, DatabaseError) as exc:
                raise DdlError(f"{ddl.name}, statement {number}: {exc}") from exc
        client.insert(
            "platform_meta.schema_migrations",
            [[ddl.name, ddl.checksum, len(statements), context.run_id]],
            column_names=["filename", "checksum", "statements", "run_id"],
        )
        context.log.info(f"applied {ddl.name} ({len(statements)} statements)")
    warning = pool_warning(consumers, broker_pool_size(client) or consumers)
    if warning:
        context.log.warning(warning)
    if todo.applied_but_missing:
        context.log.warning(f"applied files no longer in the DDL folder: {todo.applied_but_missing}")
    return todo, kafka_settings
