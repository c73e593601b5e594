"""The ``kafka/topics`` asset reconciles a real broker: twice materialized with a grown partition
setting, a changed retention and a config changed by hand, then read back with the AdminClient."""

from __future__ import annotations

import pytest
from confluent_kafka.admin import AlterConfigOpType, ConfigEntry, ConfigResource, ResourceType
from dagster import DagsterInstance, materialize

from platform_assets.core.resources import KafkaResource
from platform_assets.ingest.assets import kafka_topics
from platform_assets.stack.scratch import scratch_stack

pytestmark = pytest.mark.e2e

SETTINGS = (
    "INGEST_PARTITIONS_EVENTS",
    "INGEST_PARTITIONS_SPANS",
    "INGEST_PARTITIONS_LOGS",
    "INGEST_PARTITIONS_METRICS",
    "INGEST_TOPIC_PARTITIONS",
    "INGEST_REPLICATION_FACTOR",
    "INGEST_RETENTION_HOURS",
    "INGEST_RETENTION_BYTES",
)
NAMES = ("agent_events", "product_events", "otlp_spans", "otlp_logs", "otlp_metrics", "collector_stats")


@pytest.fixture(scope="module")
def own_kafka():
    # A broker of its own: growing the session stack's topics would move other tests' messages
    # to partitions ClickHouse's consumers only pick up at their next metadata refresh (minutes).
    with scratch_stack("platform-test-topics-") as stack:
        stack.up(["kafka"])
        yield KafkaResource(bootstrap_servers=stack.env()["KAFKA_BOOTSTRAP_SERVERS"])


@pytest.fixture
def settings(monkeypatch):
    for var in SETTINGS:
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("PLATFORM_ENV", "local")
    return monkeypatch


def run(kafka) -> dict:
    result = materialize([kafka_topics], resources={"kafka": kafka}, instance=DagsterInstance.ephemeral())
    assert result.success
    (event,) = result.get_asset_materialization_events()
    return {k: v.value for k, v in event.materialization.metadata.items()}


def on_broker(kafka) -> tuple[dict[str, int], dict[str, dict[str, str]]]:
    admin = kafka.admin()
    meta = admin.list_topics(timeout=10).topics
    parts = {n: len(meta[n].partitions) for n in NAMES}
    described = admin.describe_configs([ConfigResource(ResourceType.TOPIC, n) for n in NAMES])
    configs = {r.name: {k: e.value for k, e in f.result(timeout=10).items()} for r, f in described.items()}
    return parts, configs


def test_topics_are_created_then_grown_and_reconfigured_never_shrunk(own_kafka, settings):
    first = run(own_kafka)
    assert sorted(first["created_now"]) == sorted(NAMES)
    parts, configs = on_broker(own_kafka)
    assert parts == {"agent_events": 3, "product_events": 3, "otlp_spans": 6, "otlp_logs": 3, "otlp_metrics": 3,
                     "collector_stats": 1}  # fmt: skip
    assert {n: configs[n]["compression.type"] for n in NAMES} == {
        "agent_events": "lz4",
        "product_events": "lz4",
        "otlp_spans": "zstd",
        "otlp_logs": "zstd",
        "otlp_metrics": "zstd",
        "collector_stats": "lz4",
    }
    for name in NAMES:
        assert configs[name]["retention.ms"] == str(48 * 3600 * 1000)
        assert configs[name]["retention.bytes"] == str(1024**3)
        assert configs[name]["segment.ms"] == str(3600 * 1000)
        assert configs[name]["min.insync.replicas"] == "1"

    # By hand: a managed config changed on the broker, and an unmanaged one the asset must keep.
    admin = own_kafka.admin()
    by_hand = ConfigResource(
        ResourceType.TOPIC,
        "otlp_spans",
        incremental_configs=[
            ConfigEntry("compression.type", "gzip", incremental_operation=AlterConfigOpType.SET),
            ConfigEntry("max.message.bytes", "2000000", incremental_operation=AlterConfigOpType.SET),
        ],
    )
    for future in admin.incremental_alter_configs([by_hand]).values():
        future.result(timeout=10)

    settings.setenv("INGEST_PARTITIONS_EVENTS", "5")  # grown
    settings.setenv("INGEST_PARTITIONS_SPANS", "4")  # lower than the broker's 6: reported only
    settings.setenv("INGEST_RETENTION_HOURS", "24")
    second = run(own_kafka)
    parts, configs = on_broker(own_kafka)
    assert parts == {"agent_events": 5, "product_events": 5, "otlp_spans": 6, "otlp_logs": 3, "otlp_metrics": 3,
                     "collector_stats": 1}  # fmt: skip
    for name in NAMES:
        assert configs[name]["retention.ms"] == str(24 * 3600 * 1000)
        assert configs[name]["segment.ms"] == str(1800 * 1000)
    assert configs["otlp_spans"]["compression.type"] == "zstd"
    assert configs["otlp_spans"]["max.message.bytes"] == "2000000"  # not managed: left alone

    assert second["created_now"] == []
    assert sorted(second["partitions_added_to"]) == ["agent_events", "product_events"]
    changes = second["changes"]
    assert changes["agent_events"]["partitions"] == "3 -> 5"
    assert changes["agent_events"]["configs"] == {
        "retention.ms": "172800000 -> 86400000",
        "segment.ms": "3600000 -> 1800000",
    }
    assert changes["otlp_spans"]["configs"]["compression.type"] == "gzip -> zstd"
    assert "partitions" not in changes["otlp_spans"]
    (warning,) = second["warnings"]
    assert "otlp_spans: 6 partitions on the broker, INGEST_PARTITIONS_SPANS asks for 4" in warning
    assert second["partitions"] == parts

    third = run(own_kafka)  # nothing left to do; the lower setting is still reported
    assert third["created_now"] == [] and third["partitions_added_to"] == []
    assert list(third["changes"]) == ["otlp_spans"] and list(third["changes"]["otlp_spans"]) == ["warnings"]
    assert on_broker(own_kafka) == (parts, configs)


def test_more_replicas_than_brokers_fails_naming_the_setting(own_kafka, settings):
    run(own_kafka)  # the topics exist (also when this test runs alone)
    settings.setenv("INGEST_REPLICATION_FACTOR", "3")
    admin = own_kafka.admin()
    for future in admin.delete_topics(["product_events"]).values():
        future.result(timeout=10)
    result = materialize(
        [kafka_topics], resources={"kafka": own_kafka}, instance=DagsterInstance.ephemeral(), raise_on_error=False
    )
    assert not result.success
    (failure,) = [e for e in result.all_events if e.event_type_value == "STEP_FAILURE"]
    message = failure.event_specific_data.error.to_string()
    assert "INGEST_REPLICATION_FACTOR=3" in message and "1 broker(s)" in message
