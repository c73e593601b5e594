"""The one pseudonymisation of user identifiers, shared by the collector and dbt.

``user_hash`` is HMAC-SHA256(key, identifier), first 16 bytes as 32 hex chars. The collector
applies it to ``actor_id`` before Kafka; dbt's ``keyed_hash`` macro computes the same with
ClickHouse's ``HMAC`` function for the app database's user ids, so both join. The key
(``USER_HASH_KEY``) lives only in the environment.
"""

from __future__ import annotations

import hmac


def user_hash(key: str | bytes, identifier: object) -> str:
    text = "" if identifier is None else str(identifier)
    if not text:
        return ""  # anonymous stays anonymous (and countable as such)
    raw_key = key.encode() if isinstance(key, str) else key
    return hmac.digest(raw_key, text.encode(), "sha256").hex()[:32]
