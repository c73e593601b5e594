"""The ingest domain in the code location: topics, raw tables, dead letters, consumer lag."""

from dagster import Definitions

from platform_assets.ingest.assets import DEAD_LETTER_SPEC, RAW_SPECS, kafka_topics
from platform_assets.ingest.checks import consumer_lag_checks, new_dead_letters
from platform_assets.ingest.resources import IngestResource
from platform_assets.ingest.sensors import ingest_consumer_lag_sensor


def definitions() -> Definitions:
    return Definitions(
        assets=[kafka_topics, *RAW_SPECS, DEAD_LETTER_SPEC],
        asset_checks=[*consumer_lag_checks, new_dead_letters],
        sensors=[ingest_consumer_lag_sensor],
        resources={"ingest": IngestResource()},
    )
