"""Read one exported day back, twice over, and hold it against its manifest.

ClickHouse reads each object through the same ``s3()``/``file()`` function that wrote it
(row count and column names); pyarrow decodes every row of the same bytes (rows, Arrow types)
and SHA-256 covers the bytes themselves. Objects in the folder that the manifest does not
list are problems too (duplicates from an interrupted or concurrent export).
"""

from __future__ import annotations

from dataclasses import dataclass, field

from clickhouse_connect.driver.client import Client

from platform_assets.export.manifest import Manifest, parquet_facts
from platform_assets.export.target import MANIFEST_NAME, Target

# The check must see the bytes as they are now: ClickHouse caches inferred schemas and file
# row counts by path and modification time, and S3 times have one-second resolution.
READ_SETTINGS = {
    "schema_inference_use_cache_for_s3": 0,
    "schema_inference_use_cache_for_file": 0,
    "use_cache_for_count_from_files": 0,
    "use_hive_partitioning": 0,  # else ClickHouse adds the path's dt=... as a column
}


@dataclass
class Verdict:
    manifest: Manifest | None
    problems: list[str] = field(default_factory=list)
    objects_checked: int = 0
    clickhouse_rows: int = 0
    pyarrow_rows: int = 0

    @property
    def passed(self) -> bool:
        return self.manifest is not None and not self.problems


def verify_day(client: Client, target: Target, day_prefix: str) -> Verdict:
    manifest_key = day_prefix + MANIFEST_NAME
    try:
        manifest = Manifest.from_json(target.read(manifest_key))
    except Exception as exc:  # noqa: BLE001 - missing or unreadable: the day is not exported
        return Verdict(None, [f"{target.location(manifest_key)}: no readable manifest ({type(exc).__name__})"])
    verdict = Verdict(manifest)
    stored = {o.key[len(day_prefix) :] for o in target.list_objects(day_prefix)} - {MANIFEST_NAME}
    listed = {o.name for o in manifest.objects}
    verdict.problems += [f"{target.location(day_prefix + n)}: not in the manifest" for n in sorted(stored - listed)]
    verdict.problems += [f"{target.location(day_prefix + n)}: missing" for n in sorted(listed - stored)]
    names = [c.name for c in manifest.schema]
    arrow_schema = [(c.name, c.arrow_type) for c in manifest.schema]
    for entry in manifest.objects:
        if entry.name not in stored:
            continue
        key = day_prefix + entry.name
        where = target.location(key)
        verdict.objects_checked += 1
        found = _check_pyarrow(target.read(key), entry, arrow_schema, verdict)
        found += _check_clickhouse(client, target.table_function(key), entry.rows, names, verdict)
        verdict.problems += [f"{where}: {p}" for p in found]
    if sum(o.rows for o in manifest.objects) != manifest.rows:
        verdict.problems.append(f"{manifest_key}: object rows do not add up to rows={manifest.rows}")
    return verdict


def _check_pyarrow(data: bytes, entry, arrow_schema: list[tuple[str, str]], verdict: Verdict) -> list[str]:
    problems = []
    if len(data) != entry.bytes:
        problems.append(f"size {len(data)} bytes, manifest says {entry.bytes}")
    try:
        facts = parquet_facts(data, decode=True)
    except Exception as exc:  # noqa: BLE001 - any decode failure is the finding
        return [*problems, f"pyarrow cannot read it: {exc}"]
    verdict.pyarrow_rows += facts.rows
    if facts.sha256 != entry.sha256:
        problems.append(f"sha256 {facts.sha256[:16]}..., manifest says {entry.sha256[:16]}...")
    if facts.rows != entry.rows:
        problems.append(f"pyarrow reads {facts.rows} rows, manifest says {entry.rows}")
    if facts.arrow_schema != arrow_schema:
        problems.append(f"Arrow schema {facts.arrow_schema} differs from the manifest's {arrow_schema}")
    return problems


def _check_clickhouse(client: Client, source: str, rows: int, names: list[str], verdict: Verdict) -> list[str]:
    try:
        count = int(client.query(f"SELECT count() FROM {source}", settings=READ_SETTINGS).result_rows[0][0])
        described = [str(r[0]) for r in client.query(f"DESCRIBE TABLE {source}", settings=READ_SETTINGS).result_rows]
    except Exception as exc:  # noqa: BLE001 - the server's error names the cause
        return [f"ClickHouse cannot read it: {str(exc).strip().splitlines()[0][:300]}"]
    verdict.clickhouse_rows += count
    problems = []
    if count != rows:
        problems.append(f"ClickHouse counts {count} rows, manifest says {rows}")
    if described != names:
        problems.append(f"ClickHouse reads columns {described}, manifest says {names}")
    return problems
