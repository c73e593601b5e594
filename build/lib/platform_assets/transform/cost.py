"""What each dbt model cost ClickHouse, read back from system.query_log.

dbt tags every statement with its invocation and node ids (query-comment in
dbt_project.yml); after a run we sum the finished queries per node.
"""

from __future__ import annotations

from typing import Any

from platform_assets.core.sql import load

COST_SQL = load(__file__, "model_costs.sql")


def model_costs(client: Any, invocation_id: str) -> dict[str, dict[str, int]]:
    """node_id -> summed cost of that node's statements in one dbt invocation."""
    client.command("SYSTEM FLUSH LOGS")  # query_log is written every 7.5 s otherwise
    rows = client.query(COST_SQL, parameters={"marker": f'"invocation_id": "{invocation_id}"'}).named_results()
    return {row["node_id"]: {k: int(v) for k, v in row.items() if k != "node_id"} for row in rows if row["node_id"]}


def cost_metadata(cost: dict[str, int] | None) -> dict[str, Any]:
    if not cost:
        return {}
    return {
        "clickhouse/read_rows": cost["read_rows"],
        "clickhouse/read_bytes": cost["read_bytes"],
        "clickhouse/written_rows": cost["written_rows"],
        "clickhouse/duration_ms": cost["duration_ms"],
        "clickhouse/peak_memory_bytes": cost["peak_memory_bytes"],
        "clickhouse/queries": cost["queries"],
    }
