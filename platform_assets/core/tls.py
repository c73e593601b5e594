"""TLS settings shared by the resources and the collector (docs/security.md, "TLS")."""

from __future__ import annotations


def kafka_tls(protocol: str, ca_file: str) -> dict[str, str]:
    """librdkafka settings for ``KAFKA_SECURITY_PROTOCOL`` / ``KAFKA_SSL_CA_FILE`` (shared with the collector)."""
    proto = (protocol or "PLAINTEXT").upper()
    if proto not in ("PLAINTEXT", "SSL"):
        raise ValueError(f"KAFKA_SECURITY_PROTOCOL={protocol!r}: PLAINTEXT or SSL")
    if proto == "PLAINTEXT":
        return {}
    return {"security.protocol": "SSL", "ssl.endpoint.identification.algorithm": "https"} | (
        {"ssl.ca.location": ca_file} if ca_file else {}
    )
