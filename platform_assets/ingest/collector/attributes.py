"""PII in OTLP requests (traces, logs, metrics), removed before anything reaches Kafka (pure).

Two actions on attributes, named as the OpenTelemetry Collector's attributes processor names them:
``delete`` removes an attribute, ``hash`` replaces its value with the keyed pseudonym the signed
batches' ``actor_id`` gets (``platform_assets.core.identity.user_hash``), so a span's, log
record's or data point's user joins the product events' user. Keys match whole and
case-insensitively, on every attribute list of an OTLP JSON request (the collector's own
encoding, ``otlp.py``): resource, scope, span, span event, span link, log record, metric
metadata, metric data point and exemplar (``filteredAttributes``). Inside a map value
(``kvlistValue``, also within arrays) a nested key matches by itself or by its dotted path from
the attribute (``user`` -> ``{"email": ...}`` matches ``email`` and ``user.email``).

Log bodies are not attributes: in a log record's string body, and in every string nested in a
map or array body, matches of the policy's ``redact`` pattern (default: an e-mail address) become
``REDACTED`` (``[redacted]``).
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import orjson

# E-mail, phone and IP style keys: written as users write them, and as semantic conventions name them.
DEFAULT_DELETE = frozenset(
    {
        "email",
        "user_email",
        "user.email",
        "enduser.email",
        "phone",
        "user_phone",
        "user.phone",
        "ip",
        "ip_address",
        "client.address",
        "client_ip",
        "http.client_ip",
        "net.peer.ip",
        "net.sock.peer.addr",
        "network.peer.address",
    }
)
# User identifiers: pseudonymised, so per-user figures still count distinct users.
DEFAULT_HASH = frozenset({"user_id", "user.id", "enduser.id", "userid"})

# An e-mail address. A match may only start where a run of local-part characters starts (the
# look-behind), so a long token without an "@" is scanned once, not once per character.
DEFAULT_LOG_BODY_REDACT = re.compile(r"(?<![\w.%+-])[\w.%+-]+@[\w-]+(?:\.[\w-]+)*\.[^\W\d_]{2,}")
REDACTED = "[redacted]"

POINT_KINDS = ("gauge", "sum", "histogram", "exponentialHistogram", "summary")
_DELETE, _HASH = "delete", "hash"


@dataclass
class AttributeCounts:
    deleted: int = 0
    hashed: int = 0
    redacted: int = 0  # pattern matches replaced in log bodies


@dataclass(frozen=True)
class AttributePolicy:
    delete: frozenset[str] = DEFAULT_DELETE
    hash: frozenset[str] = DEFAULT_HASH
    redact: re.Pattern[str] | None = DEFAULT_LOG_BODY_REDACT  # None: log bodies kept as sent

    def __post_init__(self) -> None:
        object.__setattr__(self, "delete", frozenset(k.lower() for k in self.delete))
        object.__setattr__(self, "hash", frozenset(k.lower() for k in self.hash))
        both = sorted(self.delete & self.hash)
        if both:
            raise ValueError(
                f"attribute keys both to delete (COLLECTOR_ATTRIBUTES_DELETE) and to hash "
                f"(COLLECTOR_ATTRIBUTES_HASH): {both}"
            )


def scalar_text(value: dict[str, Any]) -> str:
    """An OTLP AnyValue as the text that is hashed: the scalar as written (ints are strings in
    OTLP JSON), arrays and maps as compact JSON."""
    for name in ("stringValue", "intValue", "boolValue", "doubleValue"):
        if name in value:
            v = value[name]
            return ("true" if v else "false") if isinstance(v, bool) else str(v)
    return orjson.dumps(value).decode()


class _Scrubber:
    """One pass over a request: every attribute list is changed in place (a list only rebuilt
    when an attribute is deleted from it), nothing copied."""

    __slots__ = ("actions", "counts", "pseudonym")

    def __init__(self, policy: AttributePolicy, pseudonym: Callable[[str], str]) -> None:
        # One lookup per attribute: key -> _DELETE or _HASH (the lists are disjoint).
        self.actions = dict.fromkeys(policy.hash, _HASH) | dict.fromkeys(policy.delete, _DELETE)
        self.pseudonym = pseudonym
        self.counts = AttributeCounts()

    def holder(self, holder: Any, field: str = "attributes") -> None:
        if isinstance(holder, dict):
            attributes = holder.get(field)
            if attributes:
                kept = self.attributes(attributes, "")
                if kept is not attributes:
                    holder[field] = kept

    def attributes(self, attributes: list[Any], prefix: str) -> list[Any]:
        """``attributes`` with the policy applied; ``prefix`` is the lower-cased dotted path of the
        enclosing attribute inside a map value ("" at the top)."""
        actions, counts = self.actions, self.counts
        kept: list[Any] | None = None  # the survivors, once one attribute was deleted
        for i, attribute in enumerate(attributes):
            key = str(attribute.get("key", "")).lower()
            if prefix:  # inside a map: the key itself, or its dotted path (delete wins over hash)
                by_key, key = actions.get(key), prefix + key
                by_path = actions.get(key)
                action = _DELETE if _DELETE in (by_key, by_path) else by_key or by_path
            elif key in actions:
                action = actions[key]
            else:
                action = None
            if action is None:  # the common case: kept, and its map or array value scrubbed
                value = attribute.get("value")
                if value and "stringValue" not in value and ("kvlistValue" in value or "arrayValue" in value):
                    self.nested(value, key)
            elif action is _DELETE:
                counts.deleted += 1
                if kept is None:
                    kept = attributes[:i]
                continue
            else:
                text = scalar_text(attribute.get("value") or {})
                attribute = attributes[i] = {**attribute, "value": {"stringValue": self.pseudonym(text)}}
                counts.hashed += 1
            if kept is not None:
                kept.append(attribute)
        return attributes if kept is None else kept

    def nested(self, value: dict[str, Any], path: str) -> None:
        """The policy applied to the keys of a map value (the value of ``path``), and of maps in an
        array value."""
        kvlist = value.get("kvlistValue")
        if kvlist:
            values = kvlist.get("values")
            if values:
                kept = self.attributes(values, path + ".")
                if kept is not values:
                    kvlist["values"] = kept
            return
        array = value.get("arrayValue")
        if array:
            for item in array.get("values") or ():
                if item and "stringValue" not in item:
                    self.nested(item, path)

    def body(self, value: dict[str, Any], redact: re.Pattern[str]) -> None:
        """Matches of ``redact`` in a string body, or in the strings nested in a map or array body."""
        text = value.get("stringValue")
        if isinstance(text, str):
            new, n = redact.subn(REDACTED, text)
            if n:
                value["stringValue"] = new
                self.counts.redacted += n
            return
        kvlist = value.get("kvlistValue")
        if kvlist:
            for attribute in kvlist.get("values") or ():
                inner = attribute.get("value")
                if inner:
                    self.body(inner, redact)
            return
        array = value.get("arrayValue")
        if array:
            for inner in array.get("values") or ():
                if inner:
                    self.body(inner, redact)

    def resource_and_scopes(self, resource: dict[str, Any], scopes_key: str) -> list[Any]:
        self.holder(resource.get("resource"))
        scopes = resource.get(scopes_key) or []
        for scope in scopes:
            self.holder(scope.get("scope"))
        return scopes


def scrub(request: dict[str, Any], policy: AttributePolicy, pseudonym: Callable[[str], str]) -> AttributeCounts:
    """Applies ``policy`` to ``request`` in place: an OTLP JSON ExportTraceServiceRequest,
    ExportLogsServiceRequest or ExportMetricsServiceRequest, told apart by their top-level key
    (``resourceSpans``, ``resourceLogs``, ``resourceMetrics``). Returns how many attributes it
    deleted and hashed and how many body matches it redacted."""
    s = _Scrubber(policy, pseudonym)
    holder = s.holder
    redact = policy.redact
    for rs in request.get("resourceSpans") or ():
        for ss in s.resource_and_scopes(rs, "scopeSpans"):
            for span in ss.get("spans") or ():
                holder(span)
                for event in span.get("events") or ():
                    holder(event)
                for link in span.get("links") or ():
                    holder(link)
    for rl in request.get("resourceLogs") or ():
        for sl in s.resource_and_scopes(rl, "scopeLogs"):
            for record in sl.get("logRecords") or ():
                holder(record)
                body = record.get("body")
                if body and redact is not None:
                    s.body(body, redact)
    for rm in request.get("resourceMetrics") or ():
        for sm in s.resource_and_scopes(rm, "scopeMetrics"):
            for metric in sm.get("metrics") or ():
                holder(metric, "metadata")
                for kind in POINT_KINDS:
                    data = metric.get(kind)
                    if data:
                        for point in data.get("dataPoints") or ():
                            holder(point)
                            for exemplar in point.get("exemplars") or ():
                                holder(exemplar, "filteredAttributes")
    return s.counts


def parse_keys(raw: str) -> frozenset[str]:
    """A comma-separated setting of attribute keys."""
    return frozenset(k.strip() for k in raw.split(",") if k.strip())


def parse_log_body_redact(raw: str) -> re.Pattern[str] | None:
    """``COLLECTOR_LOG_BODY_REDACT``: a regular expression; blank turns redaction off."""
    from platform_assets.ingest.collector.config import CollectorSettingError  # config imports this module

    if not raw.strip():
        return None
    try:
        pattern = re.compile(raw)
    except re.error as exc:
        raise CollectorSettingError(f"COLLECTOR_LOG_BODY_REDACT={raw!r} is not a regular expression: {exc}") from exc
    if pattern.search(""):
        raise CollectorSettingError(
            f"COLLECTOR_LOG_BODY_REDACT={raw!r} matches the empty string (it would mark every position)"
        )
    return pattern
