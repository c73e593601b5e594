"""Publication when the generated Grafana files change: sensor `publish_on_change`.

Each tick hashes what `platform_assets.publish.generate` produces (every dashboard model, the
alert rules, contact points and policies, the datasource provisioning file): the sha256 of the
files in path order. A hash other than the cursor (the last one requested) requests one run of
`publish_job` (folder, datasource, dashboards, alert rules) with the hash as its run key, then
becomes the cursor; the same hash skips, saying it. The first tick of a fresh instance publishes
once. The hash changes with the code (a new deployment), so the sensor runs rarely.

On by default in docker and prod, off on the embedded stack (PLATFORM_AUTOMATION, docs/operations.md).
"""

from __future__ import annotations

import hashlib

from dagster import (
    AssetSelection,
    RunRequest,
    SensorEvaluationContext,
    SensorResult,
    SkipReason,
    define_asset_job,
    sensor,
)

from platform_assets.core.automation import SERVER_RETRY, automation_status
from platform_assets.publish.generate import generated_files

SENSOR_INTERVAL_S = 300
GROUP = "publish"
# Grafana and ClickHouse calls of the publication run: a restarting Grafana is retried.
RETRY = SERVER_RETRY

publish_job = define_asset_job(
    "publish_job",
    selection=AssetSelection.groups(GROUP),
    op_retry_policy=RETRY,
    tags={"platform/domain": "publish"},
    description="Every publication asset: the Grafana folder, datasource, dashboards and alert rules.",
)


def generated_hash() -> str:
    digest = hashlib.sha256()
    for path, content in sorted(generated_files().items()):
        digest.update(path.encode() + b"\0" + content.encode() + b"\0")
    return digest.hexdigest()


@sensor(
    name="publish_on_change",
    job=publish_job,
    minimum_interval_seconds=SENSOR_INTERVAL_S,
    default_status=automation_status(),
    description="Publishes the dashboards and alert rules when what publish.generate produces changes "
    "(sha256 of the generated files; run key publish:<sha256>).",
)
def publish_on_change(context: SensorEvaluationContext) -> SensorResult | SkipReason:
    current = generated_hash()
    if context.cursor == current:
        return SkipReason(f"generated Grafana files unchanged (sha256 {current}): already requested")
    return SensorResult(
        run_requests=[RunRequest(run_key=f"publish:{current}", tags={"platform/generated_sha256": current})],
        cursor=current,
    )
