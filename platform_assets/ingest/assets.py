"""Ingestion domain: the Kafka topics the collector writes and ClickHouse consumes."""

import time

from confluent_kafka import KafkaException
from confluent_kafka.admin import (
    AdminClient,
    AlterConfigOpType,
    ConfigEntry,
    ConfigResource,
    NewPartitions,
    NewTopic,
    ResourceType,
)
from dagster import AssetExecutionContext, AssetSpec, MaterializeResult, MetadataValue, asset

from platform_assets.core.automation import SERVER_RETRY, final
from platform_assets.core.keys import DEAD_LETTER_KEY, SCHEMA_KEY, TOPICS_KEY, raw_key
from platform_assets.core.resources import KafkaResource
from platform_assets.ingest.topics import (
    CONSUMED,
    TOPICS,
    TopicActions,
    TopicSpec,
    TopicState,
    reconcile,
    wanted,
)

OWNERS = ["team:data-platform"]


RAW_GRAIN = {
    "agent_events": "one row per agent event",
    "product_events": "one row per product event",
    "spans": "one row per span",
    "otel_logs": "one row per log record",
    "otel_metrics_histogram": "one row per histogram data point (the same topic fills raw.otel_metrics_gauge, "
    "_sum, _exponential_histogram and _summary)",
}

# Filled continuously by ClickHouse (Kafka engine + materialized views), not by Dagster runs:
# the consumer-lag sensor records observations on them.
RAW_SPECS = [
    AssetSpec(
        raw_key(t.raw_table),
        deps=[TOPICS_KEY, SCHEMA_KEY],
        group_name="ingest",
        owners=OWNERS,
        kinds={"clickhouse", "kafka"},
        description=f"raw.{t.raw_table}: {RAW_GRAIN[t.raw_table]}, from topic `{t.name}` as landed (at-least-once, "
        "so a row can repeat; staging dedupes). Filled continuously by a Kafka-engine consumer.",
    )
    for t in CONSUMED
    if t.raw_table
]
DEAD_LETTER_SPEC = AssetSpec(
    DEAD_LETTER_KEY,
    deps=[TOPICS_KEY, SCHEMA_KEY],
    group_name="ingest",
    owners=OWNERS,
    kinds={"clickhouse"},
    description="dead_letter.kafka_messages: one row per message the consumers could not parse, with the "
    "error, topic, partition and offset.",
)
ADMIN_TIMEOUT_S = 30


def broker_state(admin: AdminClient, names: list[str]) -> tuple[dict[str, TopicState], int]:
    """The named topics as the broker has them (partitions, replicas, managed configs), and how
    many brokers the cluster has."""
    meta = admin.list_topics(timeout=ADMIN_TIMEOUT_S)
    present = [n for n in names if n in meta.topics and meta.topics[n].error is None]
    resources = [ConfigResource(ResourceType.TOPIC, n) for n in present]
    described = admin.describe_configs(resources) if resources else {}
    state = {}
    for resource, future in described.items():
        entries = future.result(timeout=ADMIN_TIMEOUT_S)
        topic = meta.topics[resource.name]
        state[resource.name] = TopicState(
            resource.name,
            partitions=len(topic.partitions),
            replication_factor=max(len(p.replicas) for p in topic.partitions.values()),
            configs={k: e.value for k, e in entries.items()},
        )
    return state, len(meta.brokers)


def apply(admin: AdminClient, plan: list[TopicActions], specs: dict[str, TopicSpec], brokers: int) -> None:
    create = [specs[a.topic] for a in plan if a.create]
    short = [s.name for s in create if s.replication_factor > brokers]
    if short:
        raise final(
            RuntimeError(
                f"cannot create {short} with INGEST_REPLICATION_FACTOR={create[0].replication_factor}: "
                f"the cluster has {brokers} broker(s)"
            )
        )
    new = [NewTopic(s.name, s.partitions, s.replication_factor, config=s.create_configs()) for s in create]
    for future in (admin.create_topics(new) if new else {}).values():
        future.result(timeout=ADMIN_TIMEOUT_S)
    grow = [NewPartitions(a.topic, a.add_partitions[1]) for a in plan if a.add_partitions]
    for future in (admin.create_partitions(grow) if grow else {}).values():
        future.result(timeout=ADMIN_TIMEOUT_S)
    # Incremental: only the managed keys are SET; other per-topic overrides stay as they are.
    alter = [
        ConfigResource(
            ResourceType.TOPIC,
            a.topic,
            incremental_configs=[
                ConfigEntry(key, new, incremental_operation=AlterConfigOpType.SET)
                for key, (_, new) in a.set_configs.items()
            ],
        )
        for a in plan
        if a.set_configs
    ]
    for future in (admin.incremental_alter_configs(alter) if alter else {}).values():
        future.result(timeout=ADMIN_TIMEOUT_S)


def settled(admin: AdminClient, names: list[str], plan: list[TopicActions], specs: dict[str, TopicSpec]):
    """The broker's state once it shows what was just applied (metadata of a new topic or partition
    can lag the admin answer briefly); after ADMIN_TIMEOUT_S, as it is then."""
    partitions = {a.topic: specs[a.topic].partitions for a in plan if a.create}
    partitions |= {a.topic: a.add_partitions[1] for a in plan if a.add_partitions}
    deadline = time.monotonic() + ADMIN_TIMEOUT_S
    while True:
        try:
            state, _ = broker_state(admin, names)
        except KafkaException:  # e.g. UNKNOWN_TOPIC_OR_PART for a topic created a moment ago
            if time.monotonic() > deadline:
                raise
            state = {}
        done = all(n in state and state[n].partitions >= partitions.get(n, 0) for n in names) and not drift(
            state, specs
        )
        if done or time.monotonic() > deadline:
            return state
        time.sleep(0.2)


def drift(state: dict[str, TopicState], specs: dict[str, TopicSpec]) -> dict[str, dict[str, str | None]]:
    """Managed configs whose broker value is not the wanted one, per topic."""
    out = {}
    for name, current in state.items():
        differ = {k: current.configs.get(k) for k, v in specs[name].configs.items() if current.configs.get(k) != v}
        if differ:
            out[name] = differ
    return out


# A broker restarting or electing leaders: a rerun re-reads the broker and applies only what still differs.
@asset(key=TOPICS_KEY, group_name="ingest", owners=OWNERS, kinds={"kafka"}, retry_policy=SERVER_RETRY)
def kafka_topics(context: AssetExecutionContext, kafka: KafkaResource) -> MaterializeResult:
    """The ingestion topics (agent_events, product_events, otlp_spans) as the settings describe
    them: partitions (``INGEST_PARTITIONS_EVENTS``, ``INGEST_PARTITIONS_SPANS``), replication
    (``INGEST_REPLICATION_FACTOR``), compression, retention by time and size
    (``INGEST_RETENTION_HOURS``, ``INGEST_RETENTION_BYTES``). Grain: one topic. Idempotent:
    creates missing topics, adds partitions when a setting grew, sets managed configs that
    differ; never removes partitions or recreates a topic (a lower setting is a warning).
    Metadata: what changed per topic."""
    admin = kafka.admin()
    specs = {s.name: s for s in wanted()}
    names = [t.name for t in TOPICS]
    before, brokers = broker_state(admin, names)
    plan = reconcile(before, list(specs.values()))
    apply(admin, plan, specs, brokers)
    after = settled(admin, names, plan, specs) if any(a.changes for a in plan) else before
    missing = [n for n in names if n not in after]
    if missing:
        raise RuntimeError(f"topics {missing} are not visible on the broker after creation")
    unconverged = drift(after, specs)
    if unconverged:
        raise RuntimeError(f"topic configs still differ after altering them: {unconverged}")
    warnings = [w for a in plan for w in a.warnings]
    for warning in warnings:
        context.log.warning(warning)
    changes = {a.topic: a.describe() for a in plan if a.changes or a.warnings}
    layout = {n: after[n].partitions for n in names}
    context.log.info(f"topics (partitions): {layout}; changes: {changes or 'none'}")
    return MaterializeResult(
        metadata={
            "partitions": MetadataValue.json(layout),
            "replication_factor": MetadataValue.json({n: after[n].replication_factor for n in names}),
            "configs": MetadataValue.json(
                {n: {k: after[n].configs.get(k) for k in specs[n].create_configs()} for n in names}
            ),
            "created_now": MetadataValue.json([a.topic for a in plan if a.create]),
            "partitions_added_to": MetadataValue.json([a.topic for a in plan if a.add_partitions]),
            "changes": MetadataValue.json(changes),
            "warnings": MetadataValue.json(warnings),
        }
    )
