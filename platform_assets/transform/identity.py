"""The one pseudonymisation of user identifiers, shared by the collector and dbt.

``user_hash`` is the first 16 bytes of SHA-256 over ``key | identifier``, as 32 hex chars;
dbt's ``keyed_hash`` macro computes the same in ClickHouse SQL, so a user id hashed at the
collector (client events) joins the same id hashed in staging (app database rows). The key
(``USER_HASH_KEY``) lives only in the environment.
"""

from __future__ import annotations

import hashlib


def user_hash(key: str, identifier: object) -> str:
    text = "" if identifier is None else str(identifier)
    if not text:
        return ""  # anonymous stays anonymous (and countable as such)
    return hashlib.sha256(f"{key}|{text}".encode()).hexdigest()[:32]
