"""The platform's Postgres connections over TLS: the embedded server serves the stack's certificate
(platform_assets/stack/tls.py) and the resources connect with sslmode=verify-full (the stack's
POSTGRES_SSLMODE), checking the certificate chain and the host name."""

from __future__ import annotations

import psycopg
import pytest

pytestmark = pytest.mark.integration


def test_the_platform_connects_to_postgres_over_verified_tls(stack, postgres):
    assert (postgres.sslmode, postgres.sslrootcert) == ("verify-full", stack.env()["PLATFORM_TLS_CA_FILE"])
    with postgres.connect() as conn:
        ssl, version = conn.execute("SELECT ssl, version FROM pg_stat_ssl WHERE pid = pg_backend_pid()").fetchone()
        assert conn.pgconn.ssl_in_use
    assert ssl is True and version.startswith("TLSv1.")


def test_a_client_that_does_not_trust_the_ca_is_refused(postgres, tmp_path):
    other = tmp_path / "other-ca.pem"
    from platform_assets.stack import tls

    other.write_bytes(tls.ensure(tmp_path / "other").ca.read_bytes())
    with pytest.raises(psycopg.OperationalError, match="certificate verify failed"):
        psycopg.connect(**{**postgres.conninfo(), "sslrootcert": str(other)})
    # A host name the certificate does not name is refused too (localhost and 127.0.0.1 only).
    with pytest.raises(psycopg.OperationalError, match=r"does not match|server certificate"):
        psycopg.connect(**{**postgres.conninfo(), "host": "db.example.invalid", "hostaddr": "127.0.0.1"})
