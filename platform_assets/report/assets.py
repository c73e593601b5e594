"""The daily HTML report: the marts' key figures and trends for one UTC day, as a page on disk.

No Grafana runs on the embedded stack; this page is what someone opens instead (or mails).
"""

from datetime import date

from dagster import (
    AssetExecutionContext,
    AssetKey,
    MaterializeResult,
    MetadataValue,
    asset,
)

from platform_assets.core.access import EXPORT
from platform_assets.core.automation import SERVER_RETRY
from platform_assets.core.partitions import daily_partitions
from platform_assets.core.resources import ClickHouseResource
from platform_assets.report.data import MARTS
from platform_assets.report.render import write_report

REPORT_KEY = AssetKey(["report", "daily"])
# ClickHouse queries: a server restart is retried (the page of the day is simply rewritten).
RETRY = SERVER_RETRY


@asset(
    key=REPORT_KEY,
    group_name="report",
    owners=["team:data-platform"],
    kinds={"html"},
    partitions_def=daily_partitions,
    deps=[AssetKey(["marts", mart]) for mart in MARTS],
    retry_policy=RETRY,
)
def daily_report(context: AssetExecutionContext, clickhouse: ClickHouseResource) -> MaterializeResult:
    """Grain: one self-contained HTML page per UTC day (the partition), at
    $REPORT_DIR/<day>/index.html (default .platform/reports/<day>/index.html).

    Headline figures of the day with their change from the day before (active users, LLM calls
    and cost, error rate per call and per trace, agent runs, tool success, orders, net revenue,
    MRR), and PNG charts embedded in the page: DAU/WAU/MAU, error rates, cost by model, orders
    and MRR over the 30 days ending the day; LLM p95 latency by model and tool outcomes on the
    day. A day without data gets a page that says so, and the materialization still succeeds.
    """
    day = date.fromisoformat(context.partition_key)
    with clickhouse.as_role(EXPORT).client(context) as client:
        report = write_report(client, day)
    context.log.info(f"report for {day}: {report.path} ({len(report.charts)} charts, has_data={report.has_data})")
    kpis = {f"kpi/{name}": value for name, value in report.kpis.items() if value is not None}
    return MaterializeResult(
        metadata={
            "path": MetadataValue.path(str(report.path)),
            "url": MetadataValue.url(report.path.as_uri()),  # a link in the Dagster UI
            "has_data": report.has_data,
            "charts": len(report.charts),
            "bytes": report.bytes,
            **kpis,
        }
    )
