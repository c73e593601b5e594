"""Demo support for the transforms: a week of history, and rows per mart for the summary."""

from __future__ import annotations

from datetime import date, timedelta
from typing import Any

from platform_assets.core.resources import ClickHouseResource
from platform_assets.synthetic.history_agents import load_agent_history
from platform_assets.synthetic.history_product import load_product_history

DEMO_SEED = 2026
AGENT_RUNS_PER_DAY = 60  # ~2.3k spans and ~2.7k agent events a day: a demo, not a benchmark


def load_demo_history(res: dict[str, Any], start: date, days: int, user_hash_key: str) -> dict[str, Any]:
    """Product history replaces its earlier load (same ids); agent history is loaded once per
    stack (a second load would only add duplicates, which staging removes anyway)."""
    ch: ClickHouseResource = res["clickhouse"]
    product = load_product_history(ch, res["postgres"], start, days, DEMO_SEED, user_hash_key)
    end = start + timedelta(days=days)
    with ch.client() as client:
        present = client.query(
            "SELECT count() FROM raw.spans WHERE start_time >= {lo:Date} AND start_time < {hi:Date}",
            parameters={"lo": start, "hi": end},
        ).result_rows[0][0]
    out: dict[str, Any] = {
        "product_users": len(product.user_ids),
        "product_events": len(product.events),
        "orders": len(product.orders),
        "subscriptions": len(product.subscriptions),
    }
    if present:
        out["agent_history"] = f"already loaded ({present} spans on those days)"
    else:
        agents = load_agent_history(ch, start, days, DEMO_SEED, user_hash_key, runs_per_day=AGENT_RUNS_PER_DAY)
        out.update({"agent_runs": agents.runs, "spans": len(agents.spans), "agent_events": len(agents.events)})
    return out


def mart_rows(clickhouse: ClickHouseResource, first: date, last: date) -> dict[str, int]:
    """Rows per mart in the days first..last (whole-table marts: all their rows)."""
    lo, hi = first.strftime("%Y%m%d"), last.strftime("%Y%m%d")
    out: dict[str, int] = {}
    with clickhouse.client() as client:
        tables = client.query(
            "SELECT name, partition_key != '' FROM system.tables "
            "WHERE database = 'marts' AND engine LIKE '%MergeTree' AND NOT endsWith(name, '__window') ORDER BY name"
        ).result_rows
        for name, partitioned in tables:
            where = f" WHERE _partition_id BETWEEN '{lo}' AND '{hi}'" if partitioned else ""
            out[name] = client.query(f"SELECT count() FROM marts.`{name}`{where}").result_rows[0][0]
    return out
