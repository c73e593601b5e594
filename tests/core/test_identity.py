"""The one pseudonym: ``core.identity.user_hash`` (the collector's) equals dbt's ``keyed_hash`` macro
as the real ClickHouse computes it, for the same key and ids, the empty id included."""

from __future__ import annotations

import os

import pytest

from platform_assets.core.identity import user_hash

pytestmark = pytest.mark.integration

IDS = ["12345", "user@example.com", "", "0", "ünïcödé-ïd", "a" * 300]


def test_user_hash_equals_dbt_keyed_hash_on_clickhouse(dbt, clickhouse):
    selects = " UNION ALL ".join(
        f"SELECT {i} AS i, {{{{ keyed_hash(\"'{value}'\") }}}} AS h" for i, value in enumerate(IDS)
    )
    compiled = dbt("compile", "--quiet", "--inline", selects).stdout.strip()
    assert "HMAC" in compiled, compiled
    with clickhouse.client() as ch:
        rows = dict(ch.query(f"SELECT i, h FROM ({compiled}) ORDER BY i").result_rows)
    key = os.environ["USER_HASH_KEY"]
    assert {i: user_hash(key, value) for i, value in enumerate(IDS)} == rows
    assert rows[IDS.index("")] == ""  # anonymous stays anonymous on both sides
    assert all(len(h) == 32 for i, h in rows.items() if IDS[i])
