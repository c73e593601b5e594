"""Consumer-lag arithmetic without servers."""

from __future__ import annotations

import pytest

from platform_assets.ingest.lag import PartitionLag, TopicLag, evaluate

pytestmark = pytest.mark.unit


def topic(*parts: tuple[int, int | None], error=None, consumer=None) -> TopicLag:
    return TopicLag(
        "agent_events",
        "clickhouse_agent_events",
        [PartitionLag(i, high, committed) for i, (high, committed) in enumerate(parts)],
        consumer or {},
        error,
    )


def test_lag_is_high_watermark_minus_committed_per_partition():
    lag = topic((813, 802), (468, 457), (749, 741))
    assert [p.lag for p in lag.partitions] == [11, 11, 8] and lag.total == 30
    # Nothing committed yet: everything from the low watermark waits.
    assert topic((50, None)).total == 50


def test_threshold_and_errors_flag():
    assert not evaluate(topic((10, 5)), None, 0, max_lag=10, stuck_after_ticks=3).flagged
    v = evaluate(topic((100, 5)), None, 0, max_lag=10, stuck_after_ticks=3)
    assert v.flagged and v.reasons == ["agent_events: lag 95 messages > 10"]
    v = evaluate(topic((1, 1), consumer={"last_exception": "Local: Broker transport failure"}), None, 0, 10, 3)
    assert v.reasons == ["agent_events: consumer exception: Local: Broker transport failure"]
    assert evaluate(topic(error="broker unreachable: timeout"), None, 0, 10, 3).flagged


def test_consumer_stuck_after_ticks_without_commit():
    lag = topic((20, 5))
    ticks = 0
    for _ in range(2):
        v = evaluate(lag, lag.committed_map(), ticks, max_lag=100, stuck_after_ticks=3)
        assert not v.flagged
        ticks = v.stuck_ticks
    v = evaluate(lag, lag.committed_map(), ticks, max_lag=100, stuck_after_ticks=3)
    assert v.flagged and "consumer stuck, 15 messages waiting and no commit for 3 ticks" in v.reasons[0]
    # No lag: never stuck, however long nothing moves.
    assert evaluate(topic((5, 5)), {"0": 5}, 10, 100, 3).stuck_ticks == 0


def test_a_stuck_topic_names_the_partitions_no_consumer_holds():
    """A consumer that holds no partition (system.kafka_consumers assignments) while its partition's
    messages wait: the stuck verdict names the partition; a held partition is not named."""
    lag = topic((20, 5), (9, 9), (30, 10), consumer={"assigned_partitions": [1, 2]})
    v = evaluate(lag, lag.committed_map(), 2, max_lag=100, stuck_after_ticks=3)
    assert v.reasons == [
        "agent_events: consumer stuck, 35 messages waiting and no commit for 3 ticks",
        "agent_events: no ClickHouse consumer holds partition(s) [0], which have messages waiting",
    ]
    held = topic((20, 5), consumer={"assigned_partitions": [0]})
    assert len(evaluate(held, held.committed_map(), 2, 100, 3).reasons) == 1
    # Assignments unknown (older rows, a ClickHouse that did not answer): nothing is claimed.
    unknown = topic((20, 5))
    assert len(evaluate(unknown, unknown.committed_map(), 2, 100, 3).reasons) == 1
