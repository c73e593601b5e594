"""PII in OTLP attributes, removed before anything reaches Kafka (pure).

Two actions, named as the OpenTelemetry Collector's attributes processor names them: ``delete``
removes an attribute, ``hash`` replaces its value with the keyed pseudonym the signed batches'
``actor_id`` gets (``platform_assets.core.identity.user_hash``), so a span's user joins the
product events' user. Keys match whole and case-insensitively, on the resource, the scope, every
span, span event and span link of an OTLP JSON request (the collector's own encoding,
``otlp.py``).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
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


@dataclass
class AttributeCounts:
    deleted: int = 0
    hashed: int = 0


@dataclass(frozen=True)
class AttributePolicy:
    delete: frozenset[str] = DEFAULT_DELETE
    hash: frozenset[str] = DEFAULT_HASH

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


def _holders(request: dict[str, Any]) -> Iterator[dict[str, Any]]:
    """Every object with an ``attributes`` list in an ExportTraceServiceRequest (OTLP JSON)."""
    for rs in request.get("resourceSpans", []):
        if isinstance(rs.get("resource"), dict):
            yield rs["resource"]
        for ss in rs.get("scopeSpans", []):
            if isinstance(ss.get("scope"), dict):
                yield ss["scope"]
            for span in ss.get("spans", []):
                yield span
                yield from span.get("events", [])
                yield from span.get("links", [])


def scrub(request: dict[str, Any], policy: AttributePolicy, pseudonym: Callable[[str], str]) -> AttributeCounts:
    """Applies ``policy`` to ``request`` in place; returns how many attributes it changed."""
    counts = AttributeCounts()
    for holder in _holders(request):
        attributes = holder.get("attributes")
        if not attributes:
            continue
        kept = []
        for attribute in attributes:
            key = str(attribute.get("key", "")).lower()
            if key in policy.delete:
                counts.deleted += 1
                continue
            if key in policy.hash:
                text = scalar_text(attribute.get("value") or {})
                attribute = {**attribute, "value": {"stringValue": pseudonym(text)}}
                counts.hashed += 1
            kept.append(attribute)
        holder["attributes"] = kept
    return counts


def parse_keys(raw: str) -> frozenset[str]:
    """A comma-separated setting of attribute keys."""
    return frozenset(k.strip() for k in raw.split(",") if k.strip())
