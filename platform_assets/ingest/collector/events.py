"""Validation and privacy of the signed JSON event batches (pure; unit-tested)."""

from __future__ import annotations

import hmac
import re
from datetime import datetime
from typing import Any

import orjson  # several times faster than json for the per-event encode

from platform_assets.core.identity import user_hash

AGENT_TYPES = {"agent_run_started", "agent_run_finished", "tool_call", "llm_call", "error", "business_event"}
PRODUCT_TYPES = {
    "page_view",
    "session_start",
    "session_end",
    "signup_started",
    "signup_submitted",
    "signup_completed",
    "feature_used",
}
# \Z, not $: "$" also matches before a trailing newline, which a UUID column does not read.
UUID_TEXT = re.compile(r"^[0-9a-fA-F]{8}-?[0-9a-fA-F]{4}-?[0-9a-fA-F]{4}-?[0-9a-fA-F]{4}-?[0-9a-fA-F]{12}\Z")
STRINGS = ("session_id", "actor_id", "source", "model", "provider", "prompt_hash", "error_type", "tool_name", "status")
INTEGERS = ("input_tokens", "output_tokens")
UINT32_MAX = 2**32 - 1  # the raw tables store token counts as UInt32: larger values would wrap
NUMBERS = ("latency_ms", "unit_cost_input", "unit_cost_output")
OBJECTS = ("context", "properties")


class BatchError(ValueError):
    """One or more events are invalid; ``errors`` name the event index and field."""

    def __init__(self, errors: list[str]) -> None:
        super().__init__("; ".join(errors))
        self.errors = errors


def topic_for(event_type: str) -> str:
    return "agent_events" if event_type in AGENT_TYPES else "product_events"


ALL_TYPES = frozenset(AGENT_TYPES | PRODUCT_TYPES)
# Exact types orjson/json produce for a valid field; anything else takes the detailed check.
NON_NEGATIVE = (int,)  # and >= 0
FAST_TYPES: dict[str, tuple[type, ...]] = {
    **{name: (str, type(None)) for name in STRINGS},
    **{name: NON_NEGATIVE for name in INTEGERS},
    **{name: (int, float) for name in NUMBERS},
    **{name: (dict,) for name in OBJECTS},
    "success": (bool, int),
}


def _looks_valid(ev: Any) -> bool:
    """Cheap check that is True only for a valid event (False means: run ``_event_errors``)."""
    if type(ev) is not dict:
        return False
    event_id, at, workspace = ev.get("event_id"), ev.get("occurred_at"), ev.get("workspace_id")
    event_type = ev.get("event_type")
    if type(event_id) is not str or not UUID_TEXT.match(event_id) or type(event_type) is not str:
        return False
    if event_type not in ALL_TYPES:
        return False
    if type(workspace) is not str or not workspace or type(at) is not str:
        return False
    try:
        datetime.fromisoformat(at.replace("Z", "+00:00"))
    except ValueError:
        return False
    for name, value in ev.items():
        allowed = FAST_TYPES.get(name)
        if allowed is not None and (
            type(value) not in allowed or (allowed is NON_NEGATIVE and not 0 <= value <= UINT32_MAX)
        ):
            return False
    return True


def _shown(value: Any) -> str:
    """A rejected value in an error message: a scalar as its repr, an object or array by its kind
    (its repr could be nested deeper than ``repr`` recurses)."""
    if isinstance(value, dict):
        return "an object"
    if isinstance(value, list):
        return "an array"
    return repr(value)


def _event_errors(i: int, ev: Any) -> list[str]:
    """Every problem of one event, as ``events[i].field: ...``."""
    if not isinstance(ev, dict):
        return [f"events[{i}]: expected an object"]
    errors: list[str] = []
    if not isinstance(ev.get("event_id"), str) or not UUID_TEXT.match(ev["event_id"]):
        errors.append(f"events[{i}].event_id: expected a UUID, got {_shown(ev.get('event_id'))}")
    if not isinstance(ev.get("event_type"), str) or ev["event_type"] not in ALL_TYPES:
        errors.append(f"events[{i}].event_type: unknown type {_shown(ev.get('event_type'))}")
    at: Any = ev.get("occurred_at")
    try:
        datetime.fromisoformat(at.replace("Z", "+00:00"))  # a string only: str(20260101) would parse
    except (AttributeError, ValueError):
        errors.append(f"events[{i}].occurred_at: expected an ISO 8601 timestamp, got {_shown(at)}")
    if not isinstance(ev.get("workspace_id"), str) or not ev["workspace_id"]:
        errors.append(f"events[{i}].workspace_id: required non-empty string")
    for name in STRINGS:
        if name in ev and ev[name] is not None and not isinstance(ev[name], str):
            errors.append(f"events[{i}].{name}: expected a string")
    for name in INTEGERS:
        if name in ev and not (
            isinstance(ev[name], int) and not isinstance(ev[name], bool) and 0 <= ev[name] <= UINT32_MAX
        ):
            errors.append(f"events[{i}].{name}: expected an integer from 0 to {UINT32_MAX}")
    for name in NUMBERS:
        if name in ev and not (isinstance(ev[name], int | float) and not isinstance(ev[name], bool)):
            errors.append(f"events[{i}].{name}: expected a number")
    if "success" in ev and not isinstance(ev["success"], bool | int):
        errors.append(f"events[{i}].success: expected a boolean")
    for name in OBJECTS:
        if name in ev and not isinstance(ev[name], dict):
            errors.append(f"events[{i}].{name}: expected an object")
    return errors


def validate(events: Any) -> list[dict[str, Any]]:
    if isinstance(events, dict):
        events = events.get("events")
    if not isinstance(events, list) or not events:
        raise BatchError(['body: expected a non-empty JSON array of events or {"events": [...]}'])
    errors: list[str] = []
    for i, ev in enumerate(events):
        if not _looks_valid(ev):
            errors += _event_errors(i, ev)
    if errors:
        raise BatchError(errors)
    return events


class ActorHasher:
    """``user_hash`` (``platform_assets.core.identity``, the pseudonym dbt computes too) of user
    ids under one key, with a bounded cache: the same users send many events. An empty id
    hashes to ``""``, as in ``user_hash``; ``protect`` does not even call it for one."""

    def __init__(self, hash_key: bytes, cache_size: int = 65_536) -> None:
        self._key = hash_key
        self._cache: dict[str, str] = {}
        self._cache_size = cache_size

    def __call__(self, actor_id: str) -> str:
        hashed = self._cache.get(actor_id)
        if hashed is None:
            if len(self._cache) >= self._cache_size:
                self._cache.clear()  # simplest bound; a refill costs one HMAC per user
            hashed = user_hash(self._key, actor_id)
            self._cache[actor_id] = hashed
        return hashed


def actor_hasher(hash_key: bytes) -> ActorHasher:
    return ActorHasher(hash_key)


def _without(obj: dict[str, Any], drop_keys: frozenset[str]) -> dict[str, Any]:
    if drop_keys.isdisjoint(obj):
        return obj.copy()
    return {k: v for k, v in obj.items() if k not in drop_keys}


def protect(event: dict[str, Any], drop_keys: frozenset[str], hasher: bytes | ActorHasher) -> dict[str, Any]:
    """Drop configured PII keys (top level, context, properties) and replace the user id by its
    keyed hash (``user_hash``: HMAC-SHA256, 32 hex chars): joinable, not reversible without the
    key. An empty or null ``actor_id`` (anonymous) is kept as sent, ``""`` or ``null``."""
    hash_actor = hasher if isinstance(hasher, ActorHasher) else ActorHasher(hasher)
    out = _without(event, drop_keys)
    for name in OBJECTS:
        obj = out.get(name)
        if isinstance(obj, dict):
            out[name] = _without(obj, drop_keys)
    if out.get("actor_id"):
        out["actor_id"] = hash_actor(str(out["actor_id"]))
    if isinstance(out.get("success"), bool):
        out["success"] = int(out["success"])
    return out


def encode_rows(
    batch: list[dict[str, Any]], drop_keys: frozenset[str], hasher: ActorHasher
) -> dict[str, list[tuple[str, bytes]]]:
    """Protected events as JSON rows grouped by topic: ``{topic: [(event_id, row), ...]}``; raises
    ``BatchError`` naming each event orjson cannot write (nested deeper than its 254 levels)."""
    by_topic: dict[str, list[tuple[str, bytes]]] = {}
    errors: list[str] = []
    for i, event in enumerate(batch):
        clean = protect(event, drop_keys, hasher)
        try:
            row = orjson.dumps(clean)
        except orjson.JSONEncodeError as exc:
            errors.append(f"events[{i}]: cannot be written as a JSON row ({exc})")
            continue
        by_topic.setdefault(topic_for(clean["event_type"]), []).append((clean["event_id"], row))
    if errors:
        raise BatchError(errors)
    return by_topic


def oversized(batch: list[dict[str, Any]], rows: dict[str, list[tuple[str, bytes]]], max_bytes: int) -> list[str]:
    """One error per event whose row alone is over ``max_bytes`` (no Kafka message could carry
    it), naming its index and id: the request is refused as a whole (413)."""
    too_big = {
        event_id: len(row) for topic_rows in rows.values() for event_id, row in topic_rows if len(row) > max_bytes
    }
    if not too_big:  # the usual case: no per-event lookup on the request path
        return []
    return [
        f"events[{i}] ({event['event_id']}): {too_big[event['event_id']]} bytes as a row, "
        f"over the {max_bytes}-byte message limit"
        for i, event in enumerate(batch)
        if event["event_id"] in too_big
    ]


def pack(rows: list[tuple[str, bytes]], max_bytes: int) -> list[tuple[bytes, bytes]]:
    """Rows into newline-delimited messages of at most ``max_bytes`` (rows over it are refused
    before, by ``oversized``), keyed by their first event's id: ``[(key, value), ...]``."""
    messages: list[tuple[bytes, bytes]] = []
    chunk: list[bytes] = []
    key, size = "", 0
    for event_id, row in rows:
        if chunk and size + len(row) + 1 > max_bytes:
            messages.append((key.encode(), b"\n".join(chunk)))
            chunk, size = [], 0
        if not chunk:
            key = event_id
        chunk.append(row)
        size += len(row) + 1
    if chunk:
        messages.append((key.encode(), b"\n".join(chunk)))
    return messages


def sign(secret: bytes, timestamp: str, body: bytes) -> str:
    """The signature clients send: hex HMAC-SHA256 over ``<timestamp>.<raw body>``."""
    return hmac.digest(secret, timestamp.encode() + b"." + body, "sha256").hex()  # one-shot, in C


def verify(
    keys: dict[str, bytes],
    key_id: str | None,
    timestamp: str | None,
    signature: str | None,
    body: bytes,
    now: float,
    window_s: float,
) -> str | None:
    """None when valid, else the reason (for the 401 body)."""
    if not key_id or not timestamp or not signature:
        return "missing X-Key-Id, X-Timestamp or X-Signature header"
    secret = keys.get(key_id)
    if secret is None:
        return f"unknown key id {key_id!r}"
    try:
        ts = float(timestamp)
    except ValueError:
        return "X-Timestamp is not a number of seconds"
    if not abs(now - ts) <= window_s:  # also refuses nan, which compares False with everything
        return f"X-Timestamp outside the {window_s:.0f} s replay window"
    if not signature.isascii() or not hmac.compare_digest(sign(secret, timestamp, body), signature):
        return "signature does not match"
    return None
