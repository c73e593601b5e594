"""The topics' settings and the reconcile plan (current broker state + settings -> actions), no broker."""

from __future__ import annotations

import pytest

from platform_assets.ingest.topics import (
    GIB,
    TOPICS,
    TopicSpec,
    TopicState,
    min_insync_replicas,
    partitions,
    reconcile,
    replication_factor,
    topic_configs,
    wanted,
)

pytestmark = pytest.mark.unit

SPANS, EVENTS = TOPICS[2], TOPICS[0]
LOGS, METRICS = TOPICS[3], TOPICS[4]


def state(spec: TopicSpec, **changes) -> TopicState:
    """The broker state that matches ``spec`` exactly, with ``changes`` applied."""
    configs = dict(spec.create_configs())
    configs.update(changes.pop("configs", {}))
    fields = {"partitions": spec.partitions, "replication_factor": spec.replication_factor, **changes}
    return TopicState(spec.name, configs=configs, **fields)


def test_defaults_are_the_laptop_settings():
    specs = {s.name: s for s in wanted({})}
    assert {n: s.partitions for n, s in specs.items()} == {
        "agent_events": 3,
        "product_events": 3,
        "otlp_spans": 6,
        "otlp_logs": 3,
        "otlp_metrics": 3,
        "collector_stats": 1,
    }
    assert {s.replication_factor for s in specs.values()} == {1}
    assert specs["otlp_spans"].configs == {
        "compression.type": "zstd",
        "retention.ms": str(48 * 3600 * 1000),
        "retention.bytes": str(GIB),
        "segment.ms": str(3600 * 1000),  # 1/48 of the retention time
        "segment.bytes": str(GIB // 8),  # 1/8 of the size bound
    }
    assert specs["agent_events"].configs["compression.type"] == "lz4"
    assert specs["otlp_logs"].configs["compression.type"] == specs["otlp_metrics"].configs["compression.type"] == "zstd"
    assert specs["product_events"].create_configs()["min.insync.replicas"] == "1"


def test_settings_by_name_and_the_older_single_partition_setting():
    env = {"INGEST_PARTITIONS_SPANS": "12", "INGEST_PARTITIONS_EVENTS": "4"}
    assert partitions(SPANS, env) == 12 and partitions(EVENTS, env) == 4
    # INGEST_TOPIC_PARTITIONS (the one setting before) still sizes the event topics, not spans
    assert partitions(EVENTS, {"INGEST_TOPIC_PARTITIONS": "5"}) == 5
    assert partitions(SPANS, {"INGEST_TOPIC_PARTITIONS": "5"}) == 6
    assert partitions(EVENTS, {"INGEST_TOPIC_PARTITIONS": "5", "INGEST_PARTITIONS_EVENTS": "2"}) == 2
    # logs and metrics have a setting each; the older single setting does not size them
    env = {"INGEST_PARTITIONS_LOGS": "4", "INGEST_PARTITIONS_METRICS": "8", "INGEST_TOPIC_PARTITIONS": "5"}
    assert (partitions(LOGS, env), partitions(METRICS, env)) == (4, 8)
    assert (partitions(LOGS, {"INGEST_TOPIC_PARTITIONS": "5"}), partitions(METRICS, {})) == (3, 3)
    # replication: 1 on the embedded stack, 3 in docker/prod unless set
    assert replication_factor({}) == 1
    assert replication_factor({"PLATFORM_ENV": "prod"}) == 3
    assert replication_factor({"PLATFORM_ENV": "docker", "INGEST_REPLICATION_FACTOR": "1"}) == 1
    configs = topic_configs(SPANS, {"INGEST_RETENTION_HOURS": "24", "INGEST_RETENTION_BYTES": str(64 * 1024**2)})
    assert configs["retention.ms"] == str(24 * 3600 * 1000) and configs["segment.ms"] == str(1800 * 1000)
    assert configs["retention.bytes"] == str(64 * 1024**2) and configs["segment.bytes"] == str(8 * 1024**2)
    unbounded = topic_configs(SPANS, {"INGEST_RETENTION_BYTES": "-1"})
    assert unbounded["retention.bytes"] == "-1" and unbounded["segment.bytes"] == str(GIB)
    assert min_insync_replicas(3) == "2" and min_insync_replicas(2) == "1"


@pytest.mark.parametrize(
    ("var", "raw"),
    [
        ("INGEST_PARTITIONS_SPANS", "0"),
        ("INGEST_PARTITIONS_EVENTS", "three"),
        ("INGEST_PARTITIONS_METRICS", "0"),
        ("INGEST_REPLICATION_FACTOR", "-1"),
        ("INGEST_RETENTION_BYTES", "1000"),
    ],
)
def test_bad_values_name_the_setting(var, raw):
    with pytest.raises(ValueError, match=var):
        wanted({var: raw})


def test_missing_topics_are_created_and_matching_ones_left_alone():
    specs = wanted({})
    current = {s.name: state(s) for s in specs if s.name != "otlp_spans"}
    plan = {a.topic: a for a in reconcile(current, specs)}
    assert plan["otlp_spans"].create and plan["otlp_spans"].changes
    assert not plan["agent_events"].changes and not plan["agent_events"].warnings
    assert plan["agent_events"].describe() == {}
    assert plan["otlp_spans"].describe() == {"created": True}


def test_grown_setting_adds_partitions_and_differing_configs_are_set():
    old = {s.name: state(s) for s in wanted({})}
    old["otlp_spans"] = state(
        wanted({})[2], configs={"compression.type": "producer", "retention.ms": "604800000", "cleanup.policy": "delete"}
    )
    specs = wanted({"INGEST_PARTITIONS_EVENTS": "5"})
    plan = {a.topic: a for a in reconcile(old, specs)}
    assert plan["agent_events"].add_partitions == (3, 5) and plan["product_events"].add_partitions == (3, 5)
    assert not plan["agent_events"].set_configs
    spans = plan["otlp_spans"]
    assert spans.add_partitions is None
    assert spans.set_configs == {"compression.type": ("producer", "zstd"), "retention.ms": ("604800000", "172800000")}
    assert spans.describe() == {
        "configs": {"compression.type": "producer -> zstd", "retention.ms": "604800000 -> 172800000"}
    }


def test_lower_partition_setting_is_a_warning_never_a_change():
    old = {s.name: state(s) for s in wanted({"INGEST_PARTITIONS_SPANS": "8"})}
    plan = {a.topic: a for a in reconcile(old, wanted({"INGEST_PARTITIONS_SPANS": "4"}))}
    spans = plan["otlp_spans"]
    assert not spans.changes and spans.add_partitions is None
    (warning,) = spans.warnings
    assert "8 partitions on the broker, INGEST_PARTITIONS_SPANS asks for 4" in warning
    assert "stays at 8" in warning


def test_replication_factor_is_reported_and_min_insync_follows_the_actual_replicas():
    # The setting says 3 but the topics have one replica: report it; min.insync.replicas stays 1
    # (2 on a 1-replica topic would refuse every acks=all write).
    old = {s.name: state(s) for s in wanted({})}
    plan = reconcile(old, wanted({"INGEST_REPLICATION_FACTOR": "3"}))
    for action in plan:
        assert not action.changes
        (warning,) = action.warnings
        assert "replication factor 1 on the broker, INGEST_REPLICATION_FACTOR asks for 3" in warning
    three = {s.name: state(s, configs={"min.insync.replicas": "1"}) for s in wanted({"INGEST_REPLICATION_FACTOR": "3"})}
    plan = reconcile(three, wanted({"INGEST_REPLICATION_FACTOR": "3"}))
    assert all(a.set_configs == {"min.insync.replicas": ("1", "2")} and not a.warnings for a in plan)
