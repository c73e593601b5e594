"""PII in OTLP requests: delete and hash on every attribute list of a trace, log and metric
export, nested map keys, and log body redaction (pure)."""

from __future__ import annotations

import re
import time

import orjson
import pytest

from platform_assets.core.identity import user_hash
from platform_assets.core.settings import ConfigError
from platform_assets.ingest.collector.attributes import (
    DEFAULT_LOG_BODY_REDACT,
    AttributeCounts,
    AttributePolicy,
    scalar_text,
    scrub,
)
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


def h(text: str) -> str:
    return user_hash(KEY, text)


def test_every_attribute_list_of_a_log_export_is_scrubbed():
    req = {
        "resourceLogs": [
            {
                "resource": {"attributes": attrs(service__name="agent", client__address="10.0.0.1")},
                "scopeLogs": [
                    {
                        "scope": {"name": "app", "attributes": attrs(enduser__id="u-1", kept="yes")},
                        "logRecords": [
                            {
                                "timeUnixNano": "1700000000000000000",
                                "severityText": "INFO",
                                "body": {"stringValue": "signed in"},
                                "attributes": attrs(user_email="c@example.com", user_id=42, route="/chat"),
                            },
                            {"severityText": "DEBUG"},
                        ],
                    }
                ],
            }
        ]
    }
    counts = scrub(req, AttributePolicy(), h)
    rl = req["resourceLogs"][0]
    sl = rl["scopeLogs"][0]
    assert by_key(rl["resource"]["attributes"]) == {"service.name": {"stringValue": "agent"}}
    assert by_key(sl["scope"]["attributes"]) == {
        "enduser.id": {"stringValue": h("u-1")},
        "kept": {"stringValue": "yes"},
    }
    record = sl["logRecords"][0]
    assert by_key(record["attributes"]) == {
        "user_id": {"stringValue": h("42")},
        "route": {"stringValue": "/chat"},
    }
    assert record["body"] == {"stringValue": "signed in"}
    assert sl["logRecords"][1] == {"severityText": "DEBUG"}
    assert counts == AttributeCounts(deleted=2, hashed=2, redacted=0)


def metric_request() -> dict:
    def point(**extra) -> dict:
        return {"timeUnixNano": "1", "attributes": attrs(user_id="u-9", phone="+15550100", region="eu"), **extra}

    def exemplar() -> dict:
        return {"asInt": "3", "filteredAttributes": attrs(Enduser__Id="u-9", ip="10.0.0.2", span="s")}

    return {
        "resourceMetrics": [
            {
                "resource": {"attributes": attrs(host__name="h1", net__peer__ip="10.0.0.3")},
                "scopeMetrics": [
                    {
                        "scope": {"name": "meter", "attributes": attrs(USER__EMAIL="d@example.com")},
                        "metrics": [
                            {"name": "g", "gauge": {"dataPoints": [point(asDouble=1.5, exemplars=[exemplar()])]}},
                            {
                                "name": "s",
                                "sum": {"aggregationTemporality": 2, "dataPoints": [point(asInt="2")]},
                                "metadata": attrs(email="owner@example.com", team="core"),
                            },
                            {"name": "h", "histogram": {"dataPoints": [point(count="1", exemplars=[exemplar()])]}},
                            {"name": "e", "exponentialHistogram": {"dataPoints": [point(scale=1)]}},
                            {"name": "q", "summary": {"dataPoints": [point(count="4")]}},
                            {"name": "empty", "gauge": {}},
                        ],
                    }
                ],
            }
        ]
    }


def test_every_data_point_and_exemplar_of_a_metric_export_is_scrubbed():
    req = metric_request()
    counts = scrub(req, AttributePolicy(), h)
    rm = req["resourceMetrics"][0]
    sm = rm["scopeMetrics"][0]
    assert by_key(rm["resource"]["attributes"]) == {"host.name": {"stringValue": "h1"}}
    assert sm["scope"] == {"name": "meter", "attributes": []}
    scrubbed_point = {"user_id": {"stringValue": h("u-9")}, "region": {"stringValue": "eu"}}
    scrubbed_exemplar = {"Enduser.Id": {"stringValue": h("u-9")}, "span": {"stringValue": "s"}}
    metrics = {m["name"]: m for m in sm["metrics"]}
    kinds = {"g": "gauge", "s": "sum", "h": "histogram", "e": "exponentialHistogram", "q": "summary"}
    for name, kind in kinds.items():
        (p,) = metrics[name][kind]["dataPoints"]
        assert by_key(p["attributes"]) == scrubbed_point, name
        for exemplar in p.get("exemplars", []):
            assert by_key(exemplar["filteredAttributes"]) == scrubbed_exemplar, name
            assert exemplar["asInt"] == "3"
    assert [len(metrics[n][kinds[n]]["dataPoints"][0].get("exemplars", [])) for n in ("g", "h")] == [1, 1]
    assert by_key(metrics["s"]["metadata"]) == {"team": {"stringValue": "core"}}
    assert metrics["s"]["sum"]["aggregationTemporality"] == 2 and metrics["empty"] == {"name": "empty", "gauge": {}}
    # 5 points x (phone) + 2 exemplars x (ip) + resource, scope, metadata; 5 + 2 user ids hashed.
    assert counts == AttributeCounts(deleted=10, hashed=7, redacted=0)
    assert "example.com" not in repr(req) and "u-9" not in repr(req) and "10.0.0" not in repr(req)


def kv(**values) -> dict:
    return {"kvlistValue": {"values": attrs(**values)}}


def test_keys_inside_map_values_match_by_name_and_by_dotted_path():
    user = kv(email="e@example.com", id="u-3", plan="pro")  # email: by name; id: as user.id
    client = kv(address="10.0.0.9", port=443)  # address: as client.address
    team = {"arrayValue": {"values": [kv(name="a", Phone="+1555"), {"stringValue": "x"}, kv(ip_address="10.1.1.1")]}}
    whole = kv(a="1")
    req = {
        "resourceLogs": [
            {
                "scopeLogs": [
                    {
                        "logRecords": [
                            {
                                "attributes": [
                                    {"key": "user", "value": user},
                                    {"key": "Client", "value": client},
                                    {"key": "team", "value": team},
                                    {"key": "userid", "value": whole},  # hashed whole, as compact JSON
                                    {"key": "empty", "value": {"kvlistValue": {}}},
                                ]
                            }
                        ]
                    }
                ]
            }
        ]
    }
    whole_text = orjson.dumps(whole).decode()
    counts = scrub(req, AttributePolicy(), h)
    got = by_key(req["resourceLogs"][0]["scopeLogs"][0]["logRecords"][0]["attributes"])
    assert got == {
        "user": kv(id=h("u-3"), plan="pro"),
        "Client": kv(port=443),
        "team": {"arrayValue": {"values": [kv(name="a"), {"stringValue": "x"}, {"kvlistValue": {"values": []}}]}},
        "userid": {"stringValue": h(whole_text)},
        "empty": {"kvlistValue": {}},
    }
    assert counts == AttributeCounts(deleted=4, hashed=2, redacted=0)


def test_a_nested_key_to_delete_by_name_or_by_path_is_deleted_even_if_the_other_hashes_it():
    for delete, hash_ in (({"user.id"}, {"id"}), ({"id"}, {"user.id"})):
        req = {"resourceSpans": [{"resource": {"attributes": [{"key": "user", "value": kv(id="u-1", n="2")}]}}]}
        counts = scrub(req, AttributePolicy(frozenset(delete), frozenset(hash_)), h)
        assert req["resourceSpans"][0]["resource"]["attributes"] == [{"key": "user", "value": kv(n="2")}]
        assert (counts.deleted, counts.hashed) == (1, 0)


def log_request(*bodies: dict) -> dict:
    records = [{"body": b, "attributes": attrs(note="a@example.com")} for b in bodies]
    return {"resourceLogs": [{"scopeLogs": [{"logRecords": records}]}]}


def bodies(req: dict) -> list:
    return [r.get("body") for r in req["resourceLogs"][0]["scopeLogs"][0]["logRecords"]]


def test_e_mail_addresses_in_log_bodies_are_redacted_at_any_depth():
    req = log_request(
        {"stringValue": "mail first.last+tag@mail.example.co.uk or Bo@Example.ORG, not a@b or @here"},
        {
            "kvlistValue": {
                "values": [
                    {"key": "to", "value": {"stringValue": "x@example.com"}},
                    {"key": "n", "value": {"intValue": "5"}},
                ]
            }
        },
        {"arrayValue": {"values": [{"stringValue": "hi y@example.net"}, kv(email="z@example.io")]}},
        {"stringValue": "nothing here"},
        {"bytesValue": "eEBleGFtcGxlLmNvbQ=="},
    )
    counts = scrub(req, AttributePolicy(), h)
    assert bodies(req) == [
        {"stringValue": "mail [redacted] or [redacted], not a@b or @here"},
        {
            "kvlistValue": {
                "values": [
                    {"key": "to", "value": {"stringValue": "[redacted]"}},
                    {"key": "n", "value": {"intValue": "5"}},
                ]
            }
        },
        # Keys of a map body are not attributes: kept; its string values are redacted.
        {"arrayValue": {"values": [{"stringValue": "hi [redacted]"}, kv(email="[redacted]")]}},
        {"stringValue": "nothing here"},
        {"bytesValue": "eEBleGFtcGxlLmNvbQ=="},  # bytes are not text: kept
    ]
    assert counts.redacted == 5
    # Attribute values are not bodies: only the policy's keys change them.
    assert req["resourceLogs"][0]["scopeLogs"][0]["logRecords"][0]["attributes"] == attrs(note="a@example.com")


def test_body_redaction_can_be_turned_off_or_given_another_pattern():
    body = "call +1 555 0100 or mail a@example.com"
    req = log_request({"stringValue": body})
    assert scrub(req, AttributePolicy(redact=None), h) == AttributeCounts()
    assert bodies(req) == [{"stringValue": body}]
    counts = scrub(req, AttributePolicy(redact=re.compile(r"\+?\d[\d ]{7,}\d")), h)
    assert bodies(req) == [{"stringValue": "call [redacted] or mail a@example.com"}]
    assert counts.redacted == 1


def test_a_long_body_without_an_address_is_scanned_in_linear_time():
    req = log_request({"stringValue": "a" * 2_000_000}, {"stringValue": "a." * 1_000_000})
    started = time.perf_counter()
    assert scrub(req, AttributePolicy(), h).redacted == 0
    assert time.perf_counter() - started < 1.0  # quadratic backtracking would take hours


def test_a_request_of_another_kind_or_empty_is_left_alone():
    for req in ({}, {"resourceLogs": []}, {"resourceMetrics": [{}]}, {"resourceSpans": [{"scopeSpans": [{}]}]}):
        before = orjson.dumps(req)
        assert scrub(req, AttributePolicy(), h) == AttributeCounts()
        assert orjson.dumps(req) == before


def config(**env: str) -> CollectorConfig:
    base = {
        "KAFKA_BOOTSTRAP_SERVERS": "127.0.0.1:9092",
        "COLLECTOR_HMAC_KEYS": "k1:0123456789abcdef",
        "USER_HASH_KEY": "0123456789abcdef",
    }
    return CollectorConfig.from_env({**base, **env})


def test_log_body_redact_setting_defaults_to_e_mail_and_is_checked_at_load():
    assert ("log_body_redact", "COLLECTOR_LOG_BODY_REDACT", False) in [
        (s.field, s.var, s.required) for s in CollectorConfig.SETTINGS
    ]
    assert config().log_body_redact is DEFAULT_LOG_BODY_REDACT  # unset: the default
    assert config(COLLECTOR_LOG_BODY_REDACT="").log_body_redact is None  # set empty: off
    assert config(COLLECTOR_LOG_BODY_REDACT="  ").log_body_redact is None  # blank: off
    custom = config(COLLECTOR_LOG_BODY_REDACT=r"\bsk-[A-Za-z0-9]{8,}").log_body_redact
    req = log_request({"stringValue": "key sk-abcdefgh12 and b@example.com"})
    scrub(req, AttributePolicy(redact=custom), h)
    assert bodies(req) == [{"stringValue": "key [redacted] and b@example.com"}]
    for raw, message in (
        ("[a-", "COLLECTOR_LOG_BODY_REDACT='[a-' is not a regular expression: "),
        ("x*", "COLLECTOR_LOG_BODY_REDACT='x*' matches the empty string"),
    ):
        with pytest.raises(ValueError, match=f"^{re.escape(message)}"):
            config(COLLECTOR_LOG_BODY_REDACT=raw)
        with pytest.raises(ConfigError):  # as every collector setting's error
            config(COLLECTOR_LOG_BODY_REDACT=raw)
