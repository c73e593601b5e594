"""Validation and privacy of the signed JSON event batches (pure; unit-tested)."""

from __future__ import annotations

import hashlib
import hmac
import re
from datetime import datetime
from typing import Any

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
UUID_TEXT = re.compile(r"^[0-9a-fA-F]{8}-?[0-9a-fA-F]{4}-?[0-9a-fA-F]{4}-?[0-9a-fA-F]{4}-?[0-9a-fA-F]{12}$")
STRINGS = ("session_id", "actor_id", "source", "model", "provider", "prompt_hash", "error_type", "tool_name", "status")
INTEGERS = ("input_tokens", "output_tokens")
NUMBERS = ("latency_ms", "unit_cost_input", "unit_cost_output")
OBJECTS = ("context", "properties")


class BatchError(ValueError):
    """One or more events are invalid; ``errors`` name the event index and field."""

    def __init__(self, errors: list[str]) -> None:
        super().__init__("; ".join(errors))
        self.errors = errors


def topic_for(event_type: str) -> str:
    return "agent_events" if event_type in AGENT_TYPES else "product_events"


def validate(events: Any) -> list[dict[str, Any]]:
    if isinstance(events, dict):
        events = events.get("events")
    if not isinstance(events, list) or not events:
        raise BatchError(['body: expected a non-empty JSON array of events or {"events": [...]}'])
    errors: list[str] = []
    for i, ev in enumerate(events):
        if not isinstance(ev, dict):
            errors.append(f"events[{i}]: expected an object")
            continue
        if not isinstance(ev.get("event_id"), str) or not UUID_TEXT.match(ev["event_id"]):
            errors.append(f"events[{i}].event_id: expected a UUID, got {ev.get('event_id')!r}")
        if ev.get("event_type") not in AGENT_TYPES | PRODUCT_TYPES:
            errors.append(f"events[{i}].event_type: unknown type {ev.get('event_type')!r}")
        try:
            datetime.fromisoformat(str(ev.get("occurred_at")).replace("Z", "+00:00"))
        except ValueError:
            errors.append(f"events[{i}].occurred_at: expected an ISO 8601 timestamp, got {ev.get('occurred_at')!r}")
        if not isinstance(ev.get("workspace_id"), str) or not ev["workspace_id"]:
            errors.append(f"events[{i}].workspace_id: required non-empty string")
        for name in STRINGS:
            if name in ev and ev[name] is not None and not isinstance(ev[name], str):
                errors.append(f"events[{i}].{name}: expected a string")
        for name in INTEGERS:
            if name in ev and not (isinstance(ev[name], int) and not isinstance(ev[name], bool) and ev[name] >= 0):
                errors.append(f"events[{i}].{name}: expected a non-negative integer")
        for name in NUMBERS:
            if name in ev and not (isinstance(ev[name], int | float) and not isinstance(ev[name], bool)):
                errors.append(f"events[{i}].{name}: expected a number")
        if "success" in ev and not isinstance(ev["success"], bool | int):
            errors.append(f"events[{i}].success: expected a boolean")
        for name in OBJECTS:
            if name in ev and not isinstance(ev[name], dict):
                errors.append(f"events[{i}].{name}: expected an object")
    if errors:
        raise BatchError(errors)
    return events


def actor_hasher(hash_key: bytes) -> Any:
    """A keyed HMAC-SHA256 state to ``copy()`` per event (cheaper than a new HMAC each time)."""
    return hmac.new(hash_key, digestmod=hashlib.sha256)


def protect(event: dict[str, Any], drop_keys: frozenset[str], hash_key: bytes | Any) -> dict[str, Any]:
    """Drop configured PII keys (top level, context, properties) and replace the user id by a
    keyed hash (HMAC-SHA256, 32 hex chars): joinable, not reversible without the key."""
    out = {k: v for k, v in event.items() if k not in drop_keys}
    for name in OBJECTS:
        if isinstance(out.get(name), dict):
            out[name] = {k: v for k, v in out[name].items() if k not in drop_keys}
    if out.get("actor_id"):
        mac = hash_key.copy() if hasattr(hash_key, "copy") else actor_hasher(hash_key)
        mac.update(str(out["actor_id"]).encode())
        out["actor_id"] = mac.hexdigest()[:32]
    if isinstance(out.get("success"), bool):
        out["success"] = int(out["success"])
    return out


def sign(secret: bytes, timestamp: str, body: bytes) -> str:
    """The signature clients send: hex HMAC-SHA256 over ``<timestamp>.<raw body>``."""
    return hmac.new(secret, timestamp.encode() + b"." + body, hashlib.sha256).hexdigest()


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
    if abs(now - ts) > window_s:
        return f"X-Timestamp outside the {window_s:.0f} s replay window"
    if not hmac.compare_digest(sign(secret, timestamp, body), signature):
        return "signature does not match"
    return None
