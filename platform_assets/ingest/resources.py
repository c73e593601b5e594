"""Ingestion thresholds for the consumer-lag sensor and the dead-letter check."""

from dagster import ConfigurableResource


class IngestResource(ConfigurableResource):
    max_lag_messages: int = 100_000  # about 2 s of the 50k events/s target: past that, alert
    stuck_after_ticks: int = 3  # sensor ticks (30 s each) with messages waiting and no commit
    # A stuck topic whose waiting partitions no ClickHouse consumer holds (librdkafka can leave a
    # consumer without an assignment after a broker crash): the sensor re-attaches its Kafka table.
    restart_unheld_consumers: bool = True
    dead_letter_window_minutes: int = 15  # the dead-letter check looks back this far
    dead_letter_error_rate: float = 0.01  # above 1% of messages dead-lettered in the window: error
