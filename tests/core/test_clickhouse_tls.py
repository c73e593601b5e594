"""ClickHouse over HTTPS (CLICKHOUSE_SECURE, CLICKHOUSE_CA_FILE) with the stack's certificate.

The embedded server cannot open a TLS listener (``SYSTEM START LISTEN HTTPS`` is unsupported in
clickhouse-local, docs/security.md), so the real server is reached through a TLS-terminating
proxy on the loopback, the way a load balancer in front of ClickHouse serves it: the platform's
resource and dbt connect over HTTPS and verify the certificate chain and host name; a client
that does not trust the CA gets no answer."""

from __future__ import annotations

import contextlib
import socket
import ssl
import threading
from collections.abc import Iterator

import pytest
from clickhouse_connect.driver.exceptions import OperationalError

from platform_assets.stack import tls

pytestmark = pytest.mark.integration


class TlsProxy:
    """Accepts TLS on a free loopback port and relays the bytes to ``target`` in plain TCP."""

    def __init__(self, files: tls.TlsFiles, target: int) -> None:
        self.context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        self.context.load_cert_chain(files.cert, files.key)
        self.target = target
        self.sock = socket.create_server(("127.0.0.1", 0))
        self.sock.settimeout(0.2)
        self.port = self.sock.getsockname()[1]
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self._serve, daemon=True)

    def _serve(self) -> None:
        while not self.stop.is_set():
            try:
                conn, _ = self.sock.accept()
            except TimeoutError:
                continue
            threading.Thread(target=self._relay, args=(conn,), daemon=True).start()

    def _relay(self, conn: socket.socket) -> None:
        try:
            conn.settimeout(30)
            client = self.context.wrap_socket(conn, server_side=True)
        except (ssl.SSLError, OSError):
            conn.close()
            return
        upstream = socket.create_connection(("127.0.0.1", self.target), timeout=30)

        def pump(src: socket.socket, dst: socket.socket) -> None:
            try:
                while data := src.recv(65536):
                    dst.sendall(data)
            except OSError:
                pass
            finally:
                for s in (src, dst):
                    with contextlib.suppress(OSError):
                        s.shutdown(socket.SHUT_RDWR)

        back = threading.Thread(target=pump, args=(upstream, client), daemon=True)
        back.start()
        pump(client, upstream)
        back.join(30)
        client.close()
        upstream.close()

    def __enter__(self) -> TlsProxy:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop.set()
        self.thread.join(5)
        self.sock.close()


@pytest.fixture
def proxy(stack, clickhouse) -> Iterator[TlsProxy]:
    with TlsProxy(tls.ensure(stack.cfg.root / "tls"), clickhouse.http_port) as running:
        yield running


def test_the_resource_queries_over_https_checking_the_certificate(stack, clickhouse, proxy):
    ca = stack.env()["PLATFORM_TLS_CA_FILE"]
    secure = clickhouse.replaced(host="localhost", http_port=proxy.port, secure=True, ca_cert=ca)
    with secure.as_role("monitor").client() as ch:
        assert ch.query("SELECT currentUser(), 1 + 1").result_rows == [("monitor", 2)]


def test_a_client_that_does_not_trust_the_ca_gets_no_answer(clickhouse, proxy, tmp_path):
    other = tls.ensure(tmp_path / "other").ca
    untrusting = clickhouse.replaced(host="localhost", http_port=proxy.port, secure=True, ca_cert=str(other))
    with pytest.raises(OperationalError, match="CERTIFICATE_VERIFY_FAILED"), untrusting.client() as ch:
        ch.query("SELECT 1")
    # Plain HTTP to the TLS port is no ClickHouse answer either.
    plain = clickhouse.replaced(host="localhost", http_port=proxy.port, secure=False)
    with pytest.raises(OperationalError), plain.client() as ch:
        ch.query("SELECT 1")


def test_dbt_connects_over_https(stack, dbt_cli, proxy):
    env = {
        **stack.env(),
        "CLICKHOUSE_HOST": "localhost",
        "CLICKHOUSE_HTTP_PORT": str(proxy.port),
        "CLICKHOUSE_SECURE": "true",
        # dbt-clickhouse has no CA option: a private CA reaches it through OpenSSL's SSL_CERT_FILE.
        "SSL_CERT_FILE": stack.env()["PLATFORM_TLS_CA_FILE"],
    }
    proc = dbt_cli(env)("debug")
    assert "Connection test: [OK connection ok]" in proc.stdout, proc.stdout[-2000:]
