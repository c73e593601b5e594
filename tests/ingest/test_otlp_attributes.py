"""PII in OTLP attributes: delete and hash on every attribute list of a trace export (pure)."""

from __future__ import annotations

import pytest

from platform_assets.core.identity import user_hash
from platform_assets.ingest.collector.attributes import AttributePolicy, scalar_text, scrub
from platform_assets.ingest.collector.config import CollectorConfig

pytestmark = pytest.mark.unit

KEY = b"0123456789abcdef"


def attrs(**values) -> list[dict]:
    out = []
    for key, value in values.items():
        if isinstance(value, bool):
            wrapped = {"boolValue": value}
        elif isinstance(value, int):
            wrapped = {"intValue": str(value)}  # as OTLP JSON writes ints
        else:
            wrapped = {"stringValue": value}
        out.append({"key": key.replace("__", "."), "value": wrapped})
    return out


def request() -> dict:
    return {
        "resourceSpans": [
            {
                "resource": {"attributes": attrs(service__name="agent", user_email="a@example.com", enduser__id="u-7")},
                "scopeSpans": [
                    {
                        "scope": {"name": "test", "attributes": attrs(client__address="10.0.0.1", kept="yes")},
                        "spans": [
                            {
                                "traceId": "ab" * 16,
                                "spanId": "cd" * 8,
                                "name": "chat",
                                "attributes": attrs(user_id=12345, Email="b@example.com", model="gpt-4o-mini"),
                                "events": [{"name": "e", "attributes": attrs(phone="+15550100", note="ok")}],
                                "links": [
                                    {"traceId": "ef" * 16, "spanId": "01" * 8, "attributes": attrs(USER_ID="x9")}
                                ],
                            },
                            {"traceId": "ab" * 16, "spanId": "ce" * 8, "name": "no attributes"},
                        ],
                    }
                ],
            }
        ]
    }


def by_key(attributes: list[dict]) -> dict:
    return {a["key"]: a["value"] for a in attributes}


def test_every_attribute_list_is_scrubbed_and_the_rest_kept():
    req = request()
    counts = scrub(req, AttributePolicy(), lambda text: user_hash(KEY, text))
    rs = req["resourceSpans"][0]
    ss = rs["scopeSpans"][0]
    span = ss["spans"][0]
    assert by_key(rs["resource"]["attributes"]) == {
        "service.name": {"stringValue": "agent"},
        "enduser.id": {"stringValue": user_hash(KEY, "u-7")},
    }
    assert by_key(ss["scope"]["attributes"]) == {"kept": {"stringValue": "yes"}}
    # An int id is hashed as the text the SDK sent (12345), as signed batches' actor_id is.
    assert by_key(span["attributes"]) == {
        "user_id": {"stringValue": user_hash(KEY, "12345")},
        "model": {"stringValue": "gpt-4o-mini"},
    }
    assert by_key(span["events"][0]["attributes"]) == {"note": {"stringValue": "ok"}}
    assert by_key(span["links"][0]["attributes"]) == {"USER_ID": {"stringValue": user_hash(KEY, "x9")}}
    assert ss["spans"][1] == {"traceId": "ab" * 16, "spanId": "ce" * 8, "name": "no attributes"}
    assert (counts.deleted, counts.hashed) == (4, 3)  # user_email, client.address, Email, phone
    assert "example.com" not in repr(req) and "12345" not in repr(req) and "10.0.0.1" not in repr(req)


def test_policy_from_settings_replaces_the_defaults_and_refuses_overlap():
    env = {
        "KAFKA_BOOTSTRAP_SERVERS": "127.0.0.1:9092",
        "COLLECTOR_HMAC_KEYS": "k1:0123456789abcdef",
        "USER_HASH_KEY": "0123456789abcdef",
        "COLLECTOR_ATTRIBUTES_DELETE": " model , ",
        "COLLECTOR_ATTRIBUTES_HASH": "Session.Id",
    }
    cfg = CollectorConfig.from_env(env)
    policy = AttributePolicy(cfg.attributes_delete, cfg.attributes_hash)
    req = {
        "resourceSpans": [
            {"scopeSpans": [{"spans": [{"attributes": attrs(model="m", session__id="s1", user_id="u")}]}]}
        ]
    }
    scrub(req, policy, lambda text: f"h({text})")
    assert by_key(req["resourceSpans"][0]["scopeSpans"][0]["spans"][0]["attributes"]) == {
        "session.id": {"stringValue": "h(s1)"},
        "user_id": {"stringValue": "u"},  # not in the replaced hash list
    }
    with pytest.raises(ValueError, match=r"COLLECTOR_ATTRIBUTES_DELETE.*COLLECTOR_ATTRIBUTES_HASH.*\['user_id'\]"):
        AttributePolicy(frozenset({"user_id"}), frozenset({"USER_ID"}))


def test_hashed_text_of_each_value_kind():
    assert scalar_text({"stringValue": "a"}) == "a"
    assert scalar_text({"intValue": "42"}) == "42"
    assert scalar_text({"intValue": 42}) == "42"  # OTLP JSON from a client may write a number
    assert scalar_text({"boolValue": True}) == "true"
    assert scalar_text({"doubleValue": 1.5}) == "1.5"
    assert (
        scalar_text({"arrayValue": {"values": [{"stringValue": "a"}]}})
        == '{"arrayValue":{"values":[{"stringValue":"a"}]}}'
    )
