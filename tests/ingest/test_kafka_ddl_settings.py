"""The Kafka tables' consumer settings as the schema asset renders them into clickhouse_ddl/ (no server)."""

from __future__ import annotations

import re

import pytest

from platform_assets.ingest.topics import KAFKA_TABLES, partitions
from platform_assets.ops.ddl import (
    BROKER_POOL_SETTING,
    DDL_DIR,
    MAX_KAFKA_CONSUMERS,
    DdlError,
    consumer_topics,
    consumer_variables,
    discover,
    pool_warning,
    render,
)

pytestmark = pytest.mark.unit


def test_every_consumed_topic_sizes_its_kafka_table_from_its_partitions():
    files = discover(DDL_DIR)
    assert consumer_topics(files) == sorted(t.name for t in KAFKA_TABLES)
    variables, warnings = consumer_variables({t.name: partitions(t, {}) for t in KAFKA_TABLES})
    assert variables == {
        "kafka_consumers_agent_events": "3",
        "kafka_consumers_collector_stats": "1",
        "kafka_consumers_otlp_logs": "3",
        "kafka_consumers_otlp_metrics": "3",
        "kafka_consumers_otlp_spans": "6",
        "kafka_consumers_product_events": "3",
    }
    assert warnings == []
    variables |= {"kafka_broker_list": "b:9092"}
    final = {}  # topic -> the last CREATE of its Kafka table, in apply order (006 replaces 004/005's)
    for f in files:
        for stmt in f.statements:
            text = render(stmt, variables)  # raises on a placeholder it has no value for
            topic = re.search(r"kafka_topic_list = '(\w+)'", text)
            if topic:
                final[topic.group(1)] = text
    assert sorted(final) == sorted(t.name for t in KAFKA_TABLES)
    for topic, text in final.items():
        n = variables[f"kafka_consumers_{topic}"]
        assert f"kafka_num_consumers = {n}," in text and "kafka_thread_per_consumer = 1," in text, topic


def test_consumers_are_capped_and_a_missing_topic_is_an_error():
    variables, warnings = consumer_variables({"big": 40, "small": 2})
    assert variables == {"kafka_consumers_big": str(MAX_KAFKA_CONSUMERS), "kafka_consumers_small": "2"}
    (warning,) = warnings
    assert "big: 40 partitions" in warning
    with pytest.raises(DdlError, match=r"\['otlp_spans'\] not on the broker.*materialize kafka/topics first"):
        consumer_variables({"otlp_spans": None, "agent_events": 3})


def test_both_server_configs_run_every_default_consumer_at_once():
    """The embedded stack's and the docker ClickHouse config's broker pool is at least the consumers
    the Kafka tables get at the default partitions (else some consumers wait: pool_warning)."""
    variables, _ = consumer_variables({t.name: partitions(t, {}) for t in KAFKA_TABLES})
    consumers = sum(int(v) for v in variables.values())
    assert consumers == 19
    root = DDL_DIR.parent
    for config in ("platform_assets/stack/templates/clickhouse-config.xml", "docker/clickhouse/config.d/platform.xml"):
        match = re.search(rf"<{BROKER_POOL_SETTING}>(\d+)</", (root / config).read_text())
        assert match, config
        assert pool_warning(consumers, int(match.group(1))) is None, config


def test_a_broker_pool_smaller_than_the_consumers_is_a_warning():
    assert pool_warning(12, 16) is None and pool_warning(12, 12) is None
    warning = pool_warning(12, 2)
    assert warning and "background_message_broker_schedule_pool_size = 2 < 12 Kafka consumers" in warning
