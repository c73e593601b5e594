"""The collector's settings: one table of field -> environment variable (``SETTINGS``), like the
resources' tables (``platform_assets.core.settings``), each row with the parser that checks it.

From the table come ``CollectorConfig.from_env`` (values read and checked now, an error naming
the variable) and the start-up check of ``platform-collector``
(``environment.prepare([CollectorConfig])``: every required variable set, else one error naming
all that are missing).
"""

from __future__ import annotations

import os
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, ClassVar

from platform_assets.core.settings import ConfigError, Setting
from platform_assets.ingest.collector.attributes import (
    DEFAULT_DELETE,
    DEFAULT_HASH,
    DEFAULT_LOG_BODY_REDACT,
    parse_keys,
    parse_log_body_redact,
)

DEFAULT_DROP_KEYS = frozenset({"email", "phone", "ip", "ip_address"})


class CollectorSettingError(ConfigError, ValueError):
    """A collector setting is unset or malformed; the message names the variable.

    A ``ValueError`` as before the settings table, and a ``ConfigError`` like the resources'."""


@dataclass(frozen=True)
class CollectorSetting(Setting):
    """A ``Setting`` whose value is turned into the field's type (and checked) by ``parser``."""

    parser: Callable[[str], Any] = str
    empty_is_value: bool = False  # True: set to "" is a value (e.g. "off"), not "use the default"

    def parse(self, raw: str) -> Any:
        return self.parser(raw)


def parse_bootstrap_servers(raw: str) -> str:
    if not raw.strip():
        raise CollectorSettingError("KAFKA_BOOTSTRAP_SERVERS must be set: host:port[,host:port]")
    return raw


def parse_hmac_keys(raw: str) -> dict[str, bytes]:
    """``id1:secret1,id2:secret2`` (several ids allow rotation), each secret 16+ chars."""
    keys = {}
    for item in filter(None, (p.strip() for p in raw.split(","))):
        key_id, sep, secret = item.partition(":")
        if not sep or not key_id or len(secret) < 16:
            raise CollectorSettingError(
                f"COLLECTOR_HMAC_KEYS entry {key_id!r}: expected id:secret with a 16+ char secret"
            )
        keys[key_id] = secret.encode()
    if not keys:
        raise CollectorSettingError("COLLECTOR_HMAC_KEYS is empty: set at least one id:secret")
    return keys


def parse_hash_key(raw: str) -> bytes:
    if len(raw) < 16:
        raise CollectorSettingError("USER_HASH_KEY must be set (16+ chars): it keys the user-id hash")
    return raw.encode()


def parse_drop_keys(raw: str) -> frozenset[str]:
    return frozenset(k.strip() for k in raw.split(",") if k.strip())


def parse_stats_interval(raw: str) -> float:
    """Seconds between a worker's counter reports to topic ``collector_stats``; 0 turns them off."""
    try:
        value = float(raw)
    except ValueError:
        value = -1.0
    if not 0 <= value < float("inf"):  # also refuses nan
        raise CollectorSettingError(f"COLLECTOR_STATS_INTERVAL_S={raw!r} must be a number of seconds >= 0 (0: off)")
    return value


def parse_protocol(raw: str) -> str:
    if raw.strip().upper() not in ("PLAINTEXT", "SSL"):
        raise CollectorSettingError(f"KAFKA_SECURITY_PROTOCOL={raw!r}: PLAINTEXT or SSL")
    return raw.strip().upper()


def parse_tls_file(var: str) -> Callable[[str], str]:
    def parse(raw: str) -> str:
        path = raw.strip()
        if not os.path.isfile(path) or not os.access(path, os.R_OK):
            raise CollectorSettingError(f"{var}={raw!r}: no readable PEM file there")
        return path

    return parse


@dataclass
class CollectorConfig:
    # field -> variable, checked in this order; required ones are parsed even when unset (their
    # parser names them), optional ones keep the field's default when unset or empty.
    SETTINGS: ClassVar[tuple[CollectorSetting, ...]] = (
        CollectorSetting("hmac_keys", "COLLECTOR_HMAC_KEYS", parser=parse_hmac_keys),
        CollectorSetting("hash_key", "USER_HASH_KEY", parser=parse_hash_key),  # shared with dbt
        CollectorSetting("bootstrap_servers", "KAFKA_BOOTSTRAP_SERVERS", secret=False, parser=parse_bootstrap_servers),
        CollectorSetting("drop_keys", "COLLECTOR_PII_DROP_KEYS", required=False, secret=False, parser=parse_drop_keys),
        # OTLP attributes (resource, scope, span, span event, link): the attributes processor's actions.
        CollectorSetting(
            "attributes_delete", "COLLECTOR_ATTRIBUTES_DELETE", required=False, secret=False, parser=parse_keys
        ),
        CollectorSetting(
            "attributes_hash", "COLLECTOR_ATTRIBUTES_HASH", required=False, secret=False, parser=parse_keys
        ),
        # OTLP log bodies: a regular expression whose matches become "[redacted]"; set empty: off.
        CollectorSetting(
            "log_body_redact",
            "COLLECTOR_LOG_BODY_REDACT",
            required=False,
            secret=False,
            parser=parse_log_body_redact,
            empty_is_value=True,
        ),
        # Each worker's counter increases as one JSON row to topic collector_stats (ops.collector_stats).
        CollectorSetting(
            "stats_interval_s", "COLLECTOR_STATS_INTERVAL_S", required=False, secret=False, parser=parse_stats_interval
        ),
        # TLS to the brokers, as the Kafka resource: PLAINTEXT (default) or SSL, and the brokers' CA.
        CollectorSetting(
            "kafka_security_protocol", "KAFKA_SECURITY_PROTOCOL", required=False, secret=False, parser=parse_protocol
        ),
        CollectorSetting(
            "kafka_ssl_ca_file",
            "KAFKA_SSL_CA_FILE",
            required=False,
            secret=False,
            parser=parse_tls_file("KAFKA_SSL_CA_FILE"),
        ),
        # TLS on both ports (HTTPS and gRPC over TLS): the server's certificate chain and key, PEM;
        # both set or neither (plain HTTP and h2c, e.g. behind a TLS-terminating load balancer).
        CollectorSetting(
            "tls_cert_file",
            "COLLECTOR_TLS_CERT_FILE",
            required=False,
            secret=False,
            parser=parse_tls_file("COLLECTOR_TLS_CERT_FILE"),
        ),
        CollectorSetting(
            "tls_key_file",
            "COLLECTOR_TLS_KEY_FILE",
            required=False,
            secret=False,
            parser=parse_tls_file("COLLECTOR_TLS_KEY_FILE"),
        ),
    )

    bootstrap_servers: str
    hmac_keys: dict[str, bytes]
    hash_key: bytes
    drop_keys: frozenset[str] = DEFAULT_DROP_KEYS
    attributes_delete: frozenset[str] = DEFAULT_DELETE
    attributes_hash: frozenset[str] = DEFAULT_HASH
    log_body_redact: re.Pattern[str] | None = DEFAULT_LOG_BODY_REDACT
    max_body_bytes: int = 5 * 1024 * 1024  # as received (compressed or not)
    # An OTLP request after gzip (HTTP) or as one gRPC message: the OpenTelemetry Collector's
    # OTLP receiver also stops at 20 MiB by default; more is 413 / RESOURCE_EXHAUSTED.
    max_decoded_bytes: int = 20 * 1024 * 1024
    max_batch_events: int = 1000
    replay_window_s: float = 300.0
    ack_timeout_s: float = 10.0
    retry_after_s: int = 5
    queue_max_messages: int = 100_000
    # Messages now carry many events each, so the buffer is bounded in bytes as well.
    queue_max_kbytes: int = 64 * 1024
    # Events travel as newline-delimited JSON rows, several per Kafka message (ClickHouse's
    # JSONEachRow reads them all); well under librdkafka's 1,000,000-byte message.max.bytes.
    # A trace export over it is split into several OTLP documents; one event or span over it is 413.
    max_message_bytes: int = 512 * 1024
    # A worker reports its counters' increases every this many seconds (0: never): one small
    # Kafka message per worker per interval, what the health dashboard's collector panel reads.
    stats_interval_s: float = 10.0
    tls_cert_file: str = ""
    tls_key_file: str = ""
    kafka_security_protocol: str = "PLAINTEXT"
    kafka_ssl_ca_file: str = ""

    def __post_init__(self) -> None:
        if bool(self.tls_cert_file) != bool(self.tls_key_file):
            raise CollectorSettingError(
                "COLLECTOR_TLS_CERT_FILE and COLLECTOR_TLS_KEY_FILE: set both (TLS on) or neither (plain)"
            )

    @property
    def tls(self) -> bool:
        return bool(self.tls_cert_file)

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> CollectorConfig:
        """The settings in ``SETTINGS`` read from ``env`` (default: the process environment);
        raises ``CollectorSettingError`` naming the first variable that is unset or malformed."""
        e = os.environ if env is None else env
        return cls(
            **{
                s.field: s.parse(e.get(s.var, ""))
                for s in cls.SETTINGS
                if s.required or e.get(s.var) or (s.empty_is_value and s.var in e)
            }
        )
