"""Column lists of the raw tables (clickhouse_ddl/002_raw_events.sql) for writing synthetic rows directly.

Each list names columns in the order the generators' rows hold them; a test checks each one
against ``system.columns`` of the real server.
"""

from __future__ import annotations

# What a producer sends for a product event (the collector adds the Kafka fields).
PRODUCT_EVENT_FIELDS = [
    "event_id",
    "event_type",
    "occurred_at",
    "workspace_id",
    "session_id",
    "actor_id",
    "source",
    "context",
    "properties",
]
PRODUCT_EVENT_COLUMNS = [*PRODUCT_EVENT_FIELDS, "kafka_partition", "kafka_offset", "ingested_at"]

# The fields of an llm_call agent event that the marts read.
LLM_CALL_FIELDS = [
    "event_id", "event_type", "occurred_at", "workspace_id", "session_id", "actor_id", "source", "context", "model",
    "provider", "input_tokens", "output_tokens", "latency_ms", "success", "cost_usd",
]  # fmt: skip

AGENT_EVENT_COLUMNS = [
    "event_id", "event_type", "occurred_at", "workspace_id", "session_id", "actor_id", "source", "context", "model",
    "provider", "input_tokens", "output_tokens", "prompt_hash", "latency_ms", "success", "error_type", "tool_name",
    "status", "unit_cost_input", "unit_cost_output", "cost_usd", "kafka_partition", "kafka_offset",
]  # fmt: skip

SPAN_COLUMNS = [
    "trace_id", "span_id", "parent_span_id", "tenant", "env", "service", "scope", "operation", "kind", "status_code",
    "status_message", "start_time", "end_time", "duration_ms", "attributes", "resource_attributes", "kafka_partition",
    "kafka_offset",
]  # fmt: skip

RAW_TABLE_COLUMNS = {
    "raw.product_events": PRODUCT_EVENT_COLUMNS,
    "raw.agent_events": AGENT_EVENT_COLUMNS,
    "raw.spans": SPAN_COLUMNS,
}
