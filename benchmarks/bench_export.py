"""Benchmark: daily Parquet export of raw.agent_events to S3 (moto) beside file(). One JSON document.

    .venv/bin/python benchmarks/bench_export.py [--rows 10000000] [--rows-per-object 1000000]

A scratch stack (ClickHouse and S3 only) gets ``raw.agent_events`` from its DDL and one UTC day
of ``--rows`` rows made by ``INSERT ... SELECT FROM numbers()``. That day is exported twice
in the same run through the platform's own code path (``export_day``: count, delete, the
``INSERT INTO FUNCTION``, read-back for the manifest): once to S3 (moto, on loopback) and once
to a local directory with ``file()``. Figures:

- ``clickhouse_seconds``: the export query alone, ``query_duration_ms`` from ``system.query_log``;
  rows/s and MB/s (Parquet bytes written) are computed from it;
- ``export_day_seconds``: the whole step as the asset runs it (manifest included);
- ``ratio_s3_to_file``: S3 rows/s over file() rows/s, same data, same run.

Other processes share the CPU: the load average is reported before and after.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta

from platform_assets.core.paths import ddl_dir
from platform_assets.core.resources import resources_from_env
from platform_assets.core.sql import split_statements
from platform_assets.export.exporter import export_day
from platform_assets.export.resources import ExportResource
from platform_assets.export.tables import table
from platform_assets.stack.scratch import scratch_stack

DAY = datetime.now(UTC).date() - timedelta(days=10)  # inside the 90-day TTL (older rows are dropped)
ROWS_SQL = """
INSERT INTO raw.agent_events
SELECT
    generateUUIDv4(number) AS event_id,
    ['llm_call', 'tool_call', 'agent_run_started', 'agent_run_finished'][number % 4 + 1] AS event_type,
    toDateTime64('{day}', 3, 'UTC') + intDiv(number * 86400000, {rows}) / 1000 AS occurred_at,
    concat('ws_', toString(number % 50)) AS workspace_id,
    concat('s_', toString(intDiv(number, 40))) AS session_id,
    lower(hex(MD5(toString(number % 100000)))) AS actor_id,
    'sdk' AS source,
    concat('{{"agent_name": "agent_', toString(number % 7), '"}}') AS context,
    ['gpt-4o', 'gpt-4o-mini', 'claude-sonnet'][number % 3 + 1] AS model,
    ['openai', 'openai', 'anthropic'][number % 3 + 1] AS provider,
    100 + number % 3000 AS input_tokens,
    10 + number % 700 AS output_tokens,
    lower(hex(MD5(toString(number % 5000)))) AS prompt_hash,
    20 + (number * 7919) % 4000 AS latency_ms,
    number % 23 != 0 AS success,
    if(number % 23 = 0, 'timeout', '') AS error_type,
    if(number % 4 = 1, 'search', '') AS tool_name,
    if(number % 23 = 0, 'error', 'ok') AS status,
    2.5e-6 AS unit_cost_input,
    1e-5 AS unit_cost_output,
    (100 + number % 3000) * 2.5e-6 + (10 + number % 700) * 1e-5 AS cost_usd,
    number % 8 AS kafka_partition,
    intDiv(number, 8) AS kafka_offset,
    now64(3) AS ingested_at
FROM numbers({rows})
"""


def create_table(client) -> None:
    """The table exactly as the platform's DDL creates it (the Kafka parts are not needed)."""
    ddl = (ddl_dir() / "002_raw_events.sql").read_text()
    statement = next(s for s in split_statements(ddl) if "raw.agent_events" in s)
    client.command("CREATE DATABASE IF NOT EXISTS raw")
    client.command(statement)


def query_seconds(client, query_id: str) -> tuple[float, int]:
    client.command("SYSTEM FLUSH LOGS")
    row = client.query(
        "SELECT query_duration_ms, written_bytes FROM system.query_log "
        "WHERE query_id = {q:String} AND type = 'QueryFinish'",
        parameters={"q": query_id},
    ).result_rows[0]
    return row[0] / 1000, int(row[1])


def one_export(client, export: ExportResource, s3, rows: int) -> dict:
    target = export.make_target(s3)
    t = table("raw.agent_events")
    result = export_day(client, target, t, DAY, export.day_prefix(t, DAY), export.rows_per_object)
    m = result.manifest
    assert m.rows == rows, (m.rows, rows)
    seconds, _ = query_seconds(client, m.query_id)
    return {
        "target": target.kind,
        "objects": len(m.objects),
        "parquet_bytes": m.bytes,
        "clickhouse_seconds": round(seconds, 3),
        "rows_per_s": round(rows / seconds),
        "mb_per_s": round(m.bytes / 1e6 / seconds, 1),
        "export_day_seconds": result.seconds,
        "export_day_rows_per_s": round(rows / result.seconds),
    }


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rows", type=int, default=10_000_000)
    parser.add_argument("--rows-per-object", type=int, default=1_000_000)
    args = parser.parse_args()
    load_before = os.getloadavg()
    with scratch_stack("platform-bench-export-") as stack, tempfile.TemporaryDirectory() as local_dir:
        stack.up(["clickhouse", "s3"])
        res = resources_from_env(stack.env())
        ch, s3 = res["clickhouse"], res["s3"]
        with ch.client() as client:
            create_table(client)
            t0 = time.monotonic()
            client.command(ROWS_SQL.format(day=DAY.isoformat(), rows=args.rows))
            generate_s = time.monotonic() - t0
            client.command("OPTIMIZE TABLE raw.agent_events FINAL")  # one part per day, as after merges
            stored = client.query(
                "SELECT sum(rows), sum(data_compressed_bytes) FROM system.parts "
                "WHERE database = 'raw' AND table = 'agent_events' AND active"
            ).result_rows[0]
            common = {"prefix": "bench", "rows_per_object": args.rows_per_object}
            s3_run = one_export(client, ExportResource(target="s3", **common), s3, args.rows)
            file_run = one_export(client, ExportResource(target="local", local_dir=local_dir, **common), s3, args.rows)
    result = {
        "benchmark": "export",
        "machine": {"cpus": os.cpu_count(), "python": platform.python_version()},
        "load_average_before": [round(x, 2) for x in load_before],
        "load_average_after": [round(x, 2) for x in os.getloadavg()],
        "rows": args.rows,
        "rows_per_object": args.rows_per_object,
        "generate_seconds": round(generate_s, 3),
        "table_compressed_bytes": int(stored[1]),
        "s3_moto": s3_run,
        "file": file_run,
        "ratio_s3_to_file": round(s3_run["rows_per_s"] / file_run["rows_per_s"], 3),
    }
    print(json.dumps(result, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
