"""Signed-batch validation, signatures, PII handling and the collector's settings, without servers."""

from __future__ import annotations

import hashlib
import hmac
import json
import re
import uuid

import pytest

from platform_assets import environment
from platform_assets.core.identity import user_hash
from platform_assets.core.settings import ConfigError, missing
from platform_assets.ingest.collector.app import CollectorConfig
from platform_assets.ingest.collector.events import (
    ActorHasher,
    BatchError,
    _event_errors,
    _looks_valid,
    actor_hasher,
    encode_rows,
    oversized,
    pack,
    protect,
    sign,
    topic_for,
    validate,
    verify,
)

pytestmark = pytest.mark.unit

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
    monkeypatch.setenv("USER_HASH_KEY", "0123456789abcdef")
    with pytest.raises(ValueError, match="COLLECTOR_HMAC_KEYS entry 'k1'"):
        CollectorConfig.from_env()
    monkeypatch.setenv("COLLECTOR_HMAC_KEYS", "k1:0123456789abcdef,k2:fedcba9876543210")
    monkeypatch.setenv("USER_HASH_KEY", "")
    with pytest.raises(ValueError, match="USER_HASH_KEY"):
        CollectorConfig.from_env()
    monkeypatch.setenv("USER_HASH_KEY", "0123456789abcdef")
    assert set(CollectorConfig.from_env().hmac_keys) == {"k1", "k2"}


GOOD_ENV = {
    "KAFKA_BOOTSTRAP_SERVERS": "127.0.0.1:9092",
    "COLLECTOR_HMAC_KEYS": "k1:0123456789abcdef, k2:fedcba9876543210",
    "USER_HASH_KEY": "0123456789abcdef",
}


def test_collector_settings_come_from_its_table():
    assert [(s.field, s.var, s.required) for s in CollectorConfig.SETTINGS] == [
        ("hmac_keys", "COLLECTOR_HMAC_KEYS", True),
        ("hash_key", "USER_HASH_KEY", True),
        ("bootstrap_servers", "KAFKA_BOOTSTRAP_SERVERS", True),
        ("drop_keys", "COLLECTOR_PII_DROP_KEYS", False),
        ("attributes_delete", "COLLECTOR_ATTRIBUTES_DELETE", False),
        ("attributes_hash", "COLLECTOR_ATTRIBUTES_HASH", False),
        ("log_body_redact", "COLLECTOR_LOG_BODY_REDACT", False),
        ("stats_interval_s", "COLLECTOR_STATS_INTERVAL_S", False),
        ("kafka_security_protocol", "KAFKA_SECURITY_PROTOCOL", False),
        ("kafka_ssl_ca_file", "KAFKA_SSL_CA_FILE", False),
        ("tls_cert_file", "COLLECTOR_TLS_CERT_FILE", False),
        ("tls_key_file", "COLLECTOR_TLS_KEY_FILE", False),
    ]
    cfg = CollectorConfig.from_env(GOOD_ENV)
    assert cfg.bootstrap_servers == "127.0.0.1:9092"
    assert cfg.hmac_keys == {"k1": b"0123456789abcdef", "k2": b"fedcba9876543210"}
    assert cfg.hash_key == b"0123456789abcdef"
    assert cfg.drop_keys == frozenset({"email", "phone", "ip", "ip_address"})  # unset: the default
    assert CollectorConfig.from_env({**GOOD_ENV, "COLLECTOR_PII_DROP_KEYS": ""}).drop_keys == cfg.drop_keys
    # Log body redaction: an e-mail pattern unless set; set empty, it is off.
    assert cfg.log_body_redact is not None and cfg.log_body_redact.search("mail a@example.com")
    assert CollectorConfig.from_env({**GOOD_ENV, "COLLECTOR_LOG_BODY_REDACT": ""}).log_body_redact is None
    custom = CollectorConfig.from_env({**GOOD_ENV, "COLLECTOR_LOG_BODY_REDACT": r"\bA-\d+"}).log_body_redact
    assert custom is not None and custom.pattern == r"\bA-\d+"
    assert CollectorConfig.from_env({**GOOD_ENV, "COLLECTOR_PII_DROP_KEYS": " ssn, email,"}).drop_keys == {
        "ssn",
        "email",
    }
    assert (cfg.kafka_security_protocol, cfg.tls) == ("PLAINTEXT", False)  # TLS only when set
    assert missing([CollectorConfig], GOOD_ENV) == []
    assert missing([CollectorConfig], {"USER_HASH_KEY": "x"}) == ["COLLECTOR_HMAC_KEYS", "KAFKA_BOOTSTRAP_SERVERS"]


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"COLLECTOR_HMAC_KEYS": None}, "COLLECTOR_HMAC_KEYS is empty: set at least one id:secret"),
        ({"COLLECTOR_HMAC_KEYS": " , "}, "COLLECTOR_HMAC_KEYS is empty"),
        ({"COLLECTOR_HMAC_KEYS": "nocolon"}, "COLLECTOR_HMAC_KEYS entry 'nocolon': expected id:secret"),
        ({"COLLECTOR_HMAC_KEYS": ":0123456789abcdef"}, "COLLECTOR_HMAC_KEYS entry '': expected id:secret"),
        ({"USER_HASH_KEY": None}, "USER_HASH_KEY must be set (16+ chars)"),
        ({"USER_HASH_KEY": "short"}, "USER_HASH_KEY must be set (16+ chars)"),
        ({"KAFKA_BOOTSTRAP_SERVERS": None}, "KAFKA_BOOTSTRAP_SERVERS must be set"),
        ({"KAFKA_BOOTSTRAP_SERVERS": " "}, "KAFKA_BOOTSTRAP_SERVERS must be set"),
    ],
)
def test_a_bad_collector_setting_is_named(changes, message):
    env = {k: v for k, v in {**GOOD_ENV, **changes}.items() if v is not None}
    with pytest.raises(ValueError, match=f"^{re.escape(message)}"):
        CollectorConfig.from_env(env)
    with pytest.raises(ConfigError):  # as the resources' settings errors
        CollectorConfig.from_env(env)


def test_prepare_checks_the_collectors_own_settings(monkeypatch):
    monkeypatch.setenv("PLATFORM_ENV", "prod")  # no embedded stack fills them in
    for var in (*GOOD_ENV, "COLLECTOR_PII_DROP_KEYS", "COLLECTOR_ATTRIBUTES_DELETE", "COLLECTOR_ATTRIBUTES_HASH"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("USER_HASH_KEY", "0123456789abcdef")
    with pytest.raises(
        ConfigError, match=r"missing environment variables: COLLECTOR_HMAC_KEYS, KAFKA_BOOTSTRAP_SERVERS$"
    ):
        environment.prepare([CollectorConfig])
    for var, value in GOOD_ENV.items():
        monkeypatch.setenv(var, value)
    assert environment.prepare([CollectorConfig]) == "prod"  # nothing else (ClickHouse, S3, ...) is required


BAD_VALUES = {
    "event_id": [None, 7, "nope", ""],
    "event_type": [None, "telepathy", 1],
    "occurred_at": [None, "yesterday", 3.5, ""],
    "workspace_id": [None, "", 5],
    "session_id": [1, [], {}],
    "input_tokens": [-1, 1.5, True, "3", None],
    "latency_ms": ["fast", True, None],
    "success": ["yes", None, 1.0],
    "context": [[1], "x", None],
    "properties": [[], 3],
}


def test_fast_path_never_accepts_what_the_detailed_check_rejects():
    events = [good(), good(success=True, input_tokens=0, latency_ms=1, context={}, session_id=None), "x", 3, None]
    events += [good(**{name: value}) for name, values in BAD_VALUES.items() for value in values]
    events += [{k: v for k, v in good().items() if k != name} for name in ("event_id", "occurred_at", "workspace_id")]
    for i, event in enumerate(events):
        errors = _event_errors(i, event)
        assert not (_looks_valid(event) and errors), (event, errors)
    with pytest.raises(BatchError) as err:
        validate(events)
    assert err.value.errors == [e for i, event in enumerate(events) for e in _event_errors(i, event)]


def test_rows_are_grouped_by_topic_and_packed_into_bounded_messages():
    batch = [good(event_type="page_view", actor_id="bob", email="b@x")] + [good() for _ in range(9)]
    rows = encode_rows(batch, frozenset({"email"}), actor_hasher(b"key"))
    assert [len(rows["product_events"]), len(rows["agent_events"])] == [1, 9]
    product = json.loads(rows["product_events"][0][1])
    assert "email" not in product and product["actor_id"] == protect(batch[0], frozenset(), b"key")["actor_id"]
    agent = rows["agent_events"]
    size = len(agent[0][1]) + 1
    messages = pack(agent, max_bytes=3 * size)  # three rows of equal size per message
    assert [m[1].count(b"\n") + 1 for m in messages] == [3, 3, 3]
    assert all(len(value) <= 3 * size for _, value in messages)
    assert [key for key, _ in messages] == [agent[i][0].encode() for i in (0, 3, 6)]  # first event's id
    assert b"\n".join(value for _, value in messages).split(b"\n") == [row for _, row in agent]
    assert pack(agent[:2], max_bytes=1) == [(agent[0][0].encode(), agent[0][1]), (agent[1][0].encode(), agent[1][1])]


def test_actor_hash_cache_matches_hmac_and_stays_bounded():
    hasher = ActorHasher(b"key", cache_size=3)
    expected = {a: hmac.new(b"key", a.encode(), hashlib.sha256).hexdigest()[:32] for a in "abcdefg"}
    assert {a: hasher(a) for a in "abcdefgabc"} == expected
    assert len(hasher._cache) <= 3


@pytest.mark.parametrize("key", [b"key", b"hash-key-for-tests-0123"])
def test_actor_hasher_is_the_shared_user_hash(key):
    hasher = ActorHasher(key, cache_size=2)
    ids = ["user-42", "alice", "42", "ünïcode ✓", " ", "user-42", ""]
    assert [hasher(i) for i in ids] == [user_hash(key, i) for i in ids]
    assert hasher("") == user_hash(key, "") == ""  # an empty id stays empty


def test_an_empty_or_null_actor_id_is_kept_as_sent():
    # protect() hashes only a non-empty actor_id: "" and null reach Kafka as sent (anonymous;
    # dbt's keyed_hash also maps '' to ''), and an event without one gets none.
    assert protect(good(actor_id=""), frozenset(), b"key")["actor_id"] == ""
    assert protect(good(actor_id=None), frozenset(), b"key")["actor_id"] is None
    assert "actor_id" not in protect(good(), frozenset(), b"key")
    assert protect(good(actor_id="0"), frozenset(), b"key")["actor_id"] == user_hash(b"key", "0")


def test_token_counts_beyond_uint32_are_rejected_not_wrapped():
    # raw.agent_events stores tokens as UInt32: 2**33 would land silently wrapped.
    assert len(validate([good(input_tokens=2**32 - 1)])) == 1
    with pytest.raises(BatchError) as err:
        validate([good(), good(output_tokens=2**33)])
    assert err.value.errors == ["events[1].output_tokens: expected an integer from 0 to 4294967295"]


def test_an_event_too_large_for_any_message_is_named_by_index():
    batch = [good(), good(context={"pad": "x" * 5000}), good()]
    rows = encode_rows(batch, frozenset(), actor_hasher(b"key"))
    (error,) = oversized(batch, rows, max_bytes=4096)
    assert error.startswith(f"events[1] ({batch[1]['event_id']}): ") and "over the 4096-byte message limit" in error
    assert oversized(batch, rows, max_bytes=8192) == []
