"""Where exports land: S3 (any S3 API: AWS, MinIO, moto) or a local directory.

One interface, two small implementations. Everything else (the export SQL, the manifest, the
check) is shared: the only differences are the ClickHouse table function that writes and
reads the objects (``s3()`` or ``file()``) and how Python lists, reads, writes and deletes
them (boto3 or the file system). Keys are ``/``-separated paths below the bucket or directory.
"""

from __future__ import annotations

import os
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

FORMAT = "Parquet"
MANIFEST_NAME = "_manifest.json"


def sql_str(value: str) -> str:
    """A ClickHouse string literal (table-function arguments cannot be query parameters)."""
    return "'" + value.replace("\\", "\\\\").replace("'", "\\'") + "'"


@dataclass(frozen=True)
class StoredObject:
    key: str
    size: int


class Target(Protocol):
    kind: str

    def table_function(self, key: str) -> str:
        """``s3(...)`` / ``file(...)`` for ``key`` (may hold ``{_partition_id}`` or a glob)."""
        ...

    def list_objects(self, prefix: str) -> list[StoredObject]: ...

    def read(self, key: str) -> bytes: ...

    def write(self, key: str, data: bytes) -> None: ...

    def delete_prefix(self, prefix: str) -> int: ...

    def location(self, key: str) -> str:
        """What a person pastes elsewhere: ``s3://bucket/key`` or an absolute path."""
        ...


class S3Target:
    kind = "s3"

    def __init__(
        self,
        client: Any,
        bucket: str,
        clickhouse_endpoint: str,
        access_key: str | None,
        secret_key: str | None,
    ) -> None:
        self.client = client
        self.bucket = bucket
        self.endpoint = clickhouse_endpoint.rstrip("/")
        self.access_key = access_key
        self.secret_key = secret_key

    def table_function(self, key: str) -> str:
        url = sql_str(f"{self.endpoint}/{self.bucket}/{key}")  # path-style: MinIO, moto and AWS accept it
        if self.access_key and self.secret_key:
            # ClickHouse masks these arguments in system.query_log and its logs.
            return f"s3({url}, {sql_str(self.access_key)}, {sql_str(self.secret_key)}, '{FORMAT}')"
        return f"s3({url}, '{FORMAT}')"  # the server's own credentials (IAM role, config)

    def list_objects(self, prefix: str) -> list[StoredObject]:
        out: list[StoredObject] = []
        for page in self.client.get_paginator("list_objects_v2").paginate(Bucket=self.bucket, Prefix=prefix):
            out += [StoredObject(o["Key"], int(o["Size"])) for o in page.get("Contents", [])]
        return sorted(out, key=lambda o: o.key)

    def read(self, key: str) -> bytes:
        return self.client.get_object(Bucket=self.bucket, Key=key)["Body"].read()

    def write(self, key: str, data: bytes) -> None:
        self.client.put_object(Bucket=self.bucket, Key=key, Body=data)

    def delete_prefix(self, prefix: str) -> int:
        keys = [o.key for o in self.list_objects(prefix)]
        # Manifests in a call of their own, first: a folder without one reads as "being
        # exported", never as complete.
        manifests = [k for k in keys if k.endswith(MANIFEST_NAME)]
        self._delete(manifests)
        self._delete([k for k in keys if k not in manifests])
        return len(keys)

    def _delete(self, keys: list[str]) -> None:
        for start in range(0, len(keys), 1000):  # DeleteObjects takes at most 1000 keys
            batch = [{"Key": k} for k in keys[start : start + 1000]]
            self.client.delete_objects(Bucket=self.bucket, Delete={"Objects": batch, "Quiet": True})

    def location(self, key: str) -> str:
        return f"s3://{self.bucket}/{key}"


class LocalTarget:
    """A directory that ClickHouse and this process both see: the embedded server runs on the
    same machine. A stock server writes ``file()`` only below its ``user_files_path``, so on
    a real server the directory must lie there (the embedded clickhouse-local has no limit)."""

    kind = "local"

    def __init__(self, root: Path) -> None:
        self.root = root.resolve()

    def _path(self, key: str) -> Path:
        path = (self.root / key).resolve()
        if not path.is_relative_to(self.root):
            raise ValueError(f"key {key!r} leaves the export directory {self.root}")
        return path

    def table_function(self, key: str) -> str:
        return f"file({sql_str(str(self.root / key))}, '{FORMAT}')"

    def list_objects(self, prefix: str) -> list[StoredObject]:
        base = self._path(prefix)
        if not base.is_dir():
            return []
        files = (p for p in base.rglob("*") if p.is_file() and not p.name.endswith(".tmp"))
        objects = [StoredObject(p.relative_to(self.root).as_posix(), p.stat().st_size) for p in files]
        return sorted(objects, key=lambda o: o.key)

    def read(self, key: str) -> bytes:
        return self._path(key).read_bytes()

    def write(self, key: str, data: bytes) -> None:
        path = self._path(key)
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(f".{path.name}.tmp")
        tmp.write_bytes(data)
        os.replace(tmp, path)  # readers never see half a manifest

    def delete_prefix(self, prefix: str) -> int:
        base = self._path(prefix)
        if not base.is_dir():
            return 0
        count = sum(1 for p in base.rglob("*") if p.is_file())
        for manifest in base.rglob(MANIFEST_NAME):  # first: the folder stops reading as complete
            manifest.unlink()
        shutil.rmtree(base)
        return count

    def location(self, key: str) -> str:
        return str(self.root / key)
