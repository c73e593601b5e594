"""Signed-batch validation, signatures and PII handling, without servers."""

from __future__ import annotations

import hashlib
import hmac
import uuid

import pytest

from platform_assets.ingest.collector.app import CollectorConfig
from platform_assets.ingest.collector.events import BatchError, protect, sign, topic_for, validate, verify

KEYS = {"a": b"0123456789abcdef0123"}


def good(**extra):
    return {
        "event_id": str(uuid.uuid4()),
        "event_type": "tool_call",
        "occurred_at": "2026-11-22T10:00:00Z",
        "workspace_id": "w",
        **extra,
    }


def test_validate_names_index_and_field():
    with pytest.raises(BatchError) as err:
        validate({"events": [good(), good(event_type="telepathy", latency_ms="fast", context=[1])]})
    assert err.value.errors == [
        "events[1].event_type: unknown type 'telepathy'",
        "events[1].latency_ms: expected a number",
        "events[1].context: expected an object",
    ]
    with pytest.raises(BatchError, match="non-empty JSON array"):
        validate({"events": []})
    assert len(validate([good(), good()])) == 2


def test_signature_window_and_rotation():
    body = b'{"events": []}'
    ts = "1000"
    assert verify(KEYS, "a", ts, sign(KEYS["a"], ts, body), body, now=1100, window_s=300) is None
    assert verify(KEYS, "a", ts, sign(KEYS["a"], ts, body), body, now=1400, window_s=300) == (
        "X-Timestamp outside the 300 s replay window"
    )
    assert verify(KEYS, "a", ts, sign(KEYS["a"], ts, body + b" "), body, now=1000, window_s=300) == (
        "signature does not match"
    )
    assert verify(KEYS, "b", ts, "x", body, now=1000, window_s=300) == "unknown key id 'b'"
    assert verify(KEYS, None, ts, "x", body, now=1000, window_s=300).startswith("missing")


def test_protect_drops_pii_and_hashes_the_user():
    out = protect(
        good(actor_id="alice", email="a@x", context={"email": "a@x", "k": 1}, success=True),
        frozenset({"email"}),
        b"key",
    )
    assert "email" not in out and out["context"] == {"k": 1} and out["success"] == 1
    assert out["actor_id"] == hmac.new(b"key", b"alice", hashlib.sha256).hexdigest()[:32]
    assert topic_for("page_view") == "product_events" and topic_for("llm_call") == "agent_events"


def test_collector_config_fails_at_load_naming_the_setting(monkeypatch):
    monkeypatch.setenv("KAFKA_BOOTSTRAP_SERVERS", "127.0.0.1:9092")
    monkeypatch.setenv("COLLECTOR_HMAC_KEYS", "k1:short")
    monkeypatch.setenv("COLLECTOR_HASH_KEY", "0123456789abcdef")
    with pytest.raises(ValueError, match="COLLECTOR_HMAC_KEYS entry 'k1'"):
        CollectorConfig.from_env()
    monkeypatch.setenv("COLLECTOR_HMAC_KEYS", "k1:0123456789abcdef,k2:fedcba9876543210")
    monkeypatch.setenv("COLLECTOR_HASH_KEY", "")
    with pytest.raises(ValueError, match="COLLECTOR_HASH_KEY"):
        CollectorConfig.from_env()
    monkeypatch.setenv("COLLECTOR_HASH_KEY", "0123456789abcdef")
    assert set(CollectorConfig.from_env().hmac_keys) == {"k1", "k2"}
