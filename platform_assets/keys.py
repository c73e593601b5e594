"""Asset keys that more than one domain refers to (kept here to avoid import cycles)."""

from dagster import AssetKey

SCHEMA_KEY = AssetKey(["clickhouse", "schema"])
TOPICS_KEY = AssetKey(["kafka", "topics"])
