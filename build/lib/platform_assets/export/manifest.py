"""The manifest of one table's day: ``_manifest.json`` beside the Parquet objects.

Written last by an export, so a day with a manifest is complete; readers and the check trust
only days that have one. Sizes and SHA-256 are of the stored bytes; rows and Arrow types are
read from the objects with pyarrow; ClickHouse types are those of the source table.
"""

from __future__ import annotations

import builtins
import hashlib
import io
import json
from dataclasses import asdict, dataclass, field
from typing import Any

import pyarrow.parquet as pq

MANIFEST_VERSION = 1


@dataclass(frozen=True)
class ObjectEntry:
    name: str  # file name inside the day's folder, e.g. part-00000.parquet
    bytes: int
    rows: int
    sha256: str


@dataclass(frozen=True)
class Column:
    name: str
    clickhouse_type: str  # as in the source table
    arrow_type: str  # as pyarrow reads it from the Parquet schema


@dataclass
class Manifest:
    table: str  # database.table
    day: str  # YYYY-MM-DD (UTC)
    target: str  # s3 or local
    location: str  # s3://bucket/prefix/... or the directory
    rows: int
    bytes: int
    objects: list[ObjectEntry]
    schema: list[Column]
    query_id: str  # the ClickHouse query that wrote the objects (system.query_log)
    created_at: str  # ISO 8601, UTC
    format: str = "Parquet"
    version: int = MANIFEST_VERSION
    extra: dict[str, Any] = field(default_factory=dict)

    def to_json(self) -> builtins.bytes:  # `bytes` is a field name here
        return json.dumps(asdict(self), indent=2, sort_keys=True).encode()

    @classmethod
    def from_json(cls, data: builtins.bytes) -> Manifest:
        raw = json.loads(data)
        raw["objects"] = [ObjectEntry(**o) for o in raw["objects"]]
        raw["schema"] = [Column(**c) for c in raw["schema"]]
        return cls(**raw)


@dataclass(frozen=True)
class ParquetFacts:
    """What one object's bytes say: digest, size, rows (counted by decoding) and Arrow schema."""

    sha256: str
    bytes: int
    rows: int
    arrow_schema: list[tuple[str, str]]


def parquet_facts(data: bytes, decode: bool = True) -> ParquetFacts:
    """``decode`` reads every row group (proves the data decodes); otherwise the footer's count."""
    pf = pq.ParquetFile(io.BytesIO(data))
    rows = sum(batch.num_rows for batch in pf.iter_batches()) if decode else pf.metadata.num_rows
    schema = pf.schema_arrow
    return ParquetFacts(
        sha256=hashlib.sha256(data).hexdigest(),
        bytes=len(data),
        rows=rows,
        arrow_schema=[(f.name, str(f.type)) for f in schema],
    )
