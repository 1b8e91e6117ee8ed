"""Calls to merchant-supplied URLs at connect time: the address checked is the address connected to (no DNS
rebinding), TLS stays on the name, redirects are not followed, bodies are capped, and no session keeps cookies."""

from __future__ import annotations

import contextlib
import datetime as dt
import ipaddress
import socket
import ssl
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
import requests
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from chalicelib.adapters import outbound
from chalicelib.domain import urls


class Listener:
    """A local HTTP(S) server that records what reaches it and answers from `answer`."""

    def __init__(self, tls: ssl.SSLContext | None = None) -> None:
        self.requests: list[dict[str, Any]] = []
        self.connections = 0
        self.answer: tuple[int, dict[str, str], bytes] = (200, {}, b"{}")
        listener = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def setup(self) -> None:
                listener.connections += 1
                super().setup()

            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                self.rfile.read(length)
                self.do_GET()

            def do_GET(self) -> None:
                listener.requests.append({"path": self.path, "headers": dict(self.headers)})
                status, headers, body = listener.answer
                self.send_response(status)
                for name, value in headers.items():
                    self.send_header(name, value)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                with contextlib.suppress(BrokenPipeError, ConnectionResetError):  # the client stopped reading
                    self.wfile.write(body)

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        if tls is not None:
            self.server.socket = tls.wrap_socket(self.server.socket, server_side=True)
        self.port = self.server.server_address[1]
        self.url = f"http://127.0.0.1:{self.port}/hook"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def listeners() -> Iterator[list[Listener]]:
    made: list[Listener] = []
    yield made
    for listener in made:
        listener.close()


def listener(listeners: list[Listener], tls: ssl.SSLContext | None = None) -> Listener:
    made = Listener(tls)
    listeners.append(made)
    return made


@pytest.fixture
def no_connections(monkeypatch: pytest.MonkeyPatch) -> list[Any]:
    """Every socket connect attempt is recorded and fails: a test can show that none was made."""
    attempts: list[Any] = []

    def connect(self: socket.socket, address: Any) -> None:
        attempts.append(address)
        raise OSError("connections are recorded, not made, in this test")

    monkeypatch.setattr(socket.socket, "connect", connect)
    return attempts


def answers(monkeypatch: pytest.MonkeyPatch, table: dict[str, list[str]]) -> None:
    """The resolver answers `table` for its names (and the IP itself for an address)."""
    real = socket.getaddrinfo

    def getaddrinfo(host: Any, port: Any, *args: Any, **kwargs: Any) -> Any:
        if host in table:
            return [
                (socket.AF_INET6 if ":" in a else socket.AF_INET, socket.SOCK_STREAM, 6, "", (a, port or 0))
                for a in table[host]
            ]
        return real(host, port, *args, **kwargs)

    monkeypatch.setattr(socket, "getaddrinfo", getaddrinfo)


# ----- no DNS rebinding ---------------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    "private", ["10.0.0.5", "127.0.0.1", "169.254.169.254", "::1", "::ffff:10.0.0.5", "fd00:ec2::254"]
)
def test_a_name_that_resolves_private_at_send_time_is_refused_with_no_connection(
    monkeypatch: pytest.MonkeyPatch, no_connections: list[Any], private: str
) -> None:
    # Given a name that answered public when it was saved
    answers(monkeypatch, {"hooks.rebind.example": ["93.184.215.14"]})
    assert outbound.save_time_error("https://hooks.rebind.example/x", local=True) is None
    # When it answers a private address at send time
    answers(monkeypatch, {"hooks.rebind.example": [private]})
    with pytest.raises(outbound.RefusedDestination):
        outbound.MerchantSession(local=True).post("https://hooks.rebind.example/x", data=b"{}", timeout=2)
    # Then no connection was even attempted
    assert no_connections == []


def test_one_private_answer_among_public_ones_is_refused(
    monkeypatch: pytest.MonkeyPatch, no_connections: list[Any]
) -> None:
    answers(monkeypatch, {"hooks.mixed.example": ["93.184.215.14", "10.0.0.5"]})
    with pytest.raises(outbound.RefusedDestination):
        outbound.MerchantSession(local=False).get("https://hooks.mixed.example/x", timeout=2)
    assert no_connections == []


def test_the_connection_goes_to_the_address_that_was_checked(
    monkeypatch: pytest.MonkeyPatch, no_connections: list[Any]
) -> None:
    # The name resolves once: a second lookup (by the connection itself) would answer private
    lookups: list[str] = []
    real = socket.getaddrinfo

    def getaddrinfo(host: Any, port: Any, *args: Any, **kwargs: Any) -> Any:
        if host == "hooks.once.example":
            lookups.append(host)
            address = "93.184.215.14" if len(lookups) == 1 else "10.0.0.5"
            return [(socket.AF_INET, socket.SOCK_STREAM, 6, "", (address, port))]
        return real(host, port, *args, **kwargs)

    monkeypatch.setattr(socket, "getaddrinfo", getaddrinfo)
    with pytest.raises(requests.ConnectionError):
        outbound.MerchantSession(local=False).post("https://hooks.once.example/x", data=b"{}", timeout=2)
    assert lookups == ["hooks.once.example"]
    assert [a[0] for a in no_connections] == ["93.184.215.14"]


@pytest.mark.parametrize(
    "url",
    [
        "http://10.0.0.5/x",
        "https://10.0.0.5/x",
        "https://[::ffff:127.0.0.1]/x",
        "https://0x7f.1/x",
        "https://2130706433/x",
        "https://localhost/x",
        "http://hooks.example.com/x",
        "https://169.254.169.254/latest/meta-data",
    ],
)
def test_urls_stored_before_the_policy_are_refused_at_send_time(url: str, no_connections: list[Any]) -> None:
    with pytest.raises(outbound.RefusedDestination):
        outbound.MerchantSession(local=True).post(url, data=b"{}", timeout=2)
    assert no_connections == []


def test_save_time_refuses_a_name_that_resolves_to_forbidden_addresses(monkeypatch: pytest.MonkeyPatch) -> None:
    answers(monkeypatch, {"shop.example.com": ["93.184.215.14"], "evil.example.com": ["169.254.169.254"]})
    assert outbound.save_time_error("https://shop.example.com", local=False) is None
    assert outbound.save_time_error("https://evil.example.com/x", local=False) is not None
    # a name that does not resolve (yet) is checked again at every call
    assert outbound.save_time_error("https://not-yet.invalid/x", local=False) is None


# ----- TLS stays on the name ----------------------------------------------------------------------------------------
def _tls_for(name: str, tmp: Path) -> tuple[ssl.SSLContext, Path]:
    """A server context with a certificate for `name`, and the CA file that trusts it."""
    now = dt.datetime.now(dt.UTC)
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "test CA")])
    ca = (
        x509.CertificateBuilder()
        .subject_name(ca_name)
        .issuer_name(ca_name)
        .public_key(ca_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(days=1))
        .not_valid_after(now + dt.timedelta(days=1))
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(ca_key, hashes.SHA256())
    )
    key = ec.generate_private_key(ec.SECP256R1())
    cert = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)]))
        .issuer_name(ca_name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(days=1))
        .not_valid_after(now + dt.timedelta(days=1))
        .add_extension(x509.SubjectAlternativeName([x509.DNSName(name)]), critical=False)
        .sign(ca_key, hashes.SHA256())
    )
    (tmp / "ca.pem").write_bytes(ca.public_bytes(serialization.Encoding.PEM))
    (tmp / "cert.pem").write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    (tmp / "key.pem").write_bytes(
        key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    )
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(tmp / "cert.pem", tmp / "key.pem")
    return context, tmp / "ca.pem"


def test_tls_sni_certificate_and_host_header_stay_on_the_name(
    monkeypatch: pytest.MonkeyPatch, listeners: list[Listener], tmp_path: Path
) -> None:
    # Given a TLS receiver for receiver.example.com, reached at 127.0.0.1 (allowed for this test only)
    context, ca = _tls_for("receiver.example.com", tmp_path)
    seen_sni: list[str | None] = []
    context.sni_callback = lambda sock, name, ctx: seen_sni.append(name)  # type: ignore[assignment,misc]
    server = listener(listeners, context)
    answers(monkeypatch, {"receiver.example.com": ["127.0.0.1"]})
    monkeypatch.setattr(urls, "resolved_error", lambda host, addresses, *, local: None)
    session = outbound.MerchantSession(local=False)
    # When we call it by name
    resp = session.get(f"https://receiver.example.com:{server.port}/hook", timeout=5, verify=str(ca))
    # Then the certificate was verified for the name, SNI and Host carried it
    assert resp.status_code == 200
    assert seen_sni == ["receiver.example.com"]
    assert server.requests[0]["headers"]["Host"] == f"receiver.example.com:{server.port}"
    # And a certificate for another name is refused
    answers(monkeypatch, {"other.example.com": ["127.0.0.1"]})
    with pytest.raises(requests.exceptions.SSLError):
        session.get(f"https://other.example.com:{server.port}/hook", timeout=5, verify=str(ca))


# ----- redirects, bodies, error text --------------------------------------------------------------------------------
def test_a_redirect_is_not_followed(listeners: list[Listener]) -> None:
    receiver, elsewhere = listener(listeners), listener(listeners)
    receiver.answer = (302, {"Location": elsewhere.url}, b"")
    resp = outbound.MerchantSession(local=True).post(receiver.url, data=b"{}", timeout=5, allow_redirects=True)
    assert resp.status_code == 302
    assert len(receiver.requests) == 1 and elsewhere.requests == []


def test_a_large_body_is_capped(listeners: list[Listener]) -> None:
    receiver = listener(listeners)
    receiver.answer = (200, {"Content-Type": "application/json"}, b"x" * (8 * 1024 * 1024))
    session = outbound.MerchantSession(local=True, max_body_bytes=64 * 1024)
    resp = session.post(receiver.url, data=b"{}", timeout=5)
    assert resp.status_code == 200
    assert len(resp.content) == 64 * 1024


def test_failure_text_never_carries_the_remote_words() -> None:
    assert outbound.failure_text(requests.ConnectionError("secret body text")) == "the endpoint could not be reached"
    assert outbound.failure_text(requests.ReadTimeout("secret")) == "the endpoint did not answer in time"
    assert "metadata" not in outbound.failure_text(outbound.RefusedDestination("must not point to a loopback address"))


# ----- cookies ------------------------------------------------------------------------------------------------------
def _no_cookie_crosses(session: requests.Session, a: Listener, b: Listener) -> None:
    a.answer = (200, {"Set-Cookie": "tenant=A; Path=/"}, b"{}")
    session.post(a.url, data=b"{}", timeout=5)
    session.post(b.url, data=b"{}", timeout=5)
    session.post(a.url, data=b"{}", timeout=5)
    assert "Cookie" not in b.requests[0]["headers"]
    assert "Cookie" not in a.requests[1]["headers"]
    assert len(session.cookies) == 0


def test_no_session_keeps_cookies_across_tenants(
    aws: Any, monkeypatch: pytest.MonkeyPatch, listeners: list[Listener]
) -> None:
    from chalicelib import bootstrap

    # Given tenant A's and tenant B's endpoints (both on 127.0.0.1, local mode)
    monkeypatch.setenv("WEBHOOKS_ALLOW_LOOPBACK", "true")
    c = bootstrap.reset()
    for session in (c.http, c.vendor_http):
        a, b = listener(listeners), listener(listeners)
        # When A's endpoint sets a cookie, Then it is not sent to B's endpoint (nor back to A's)
        _no_cookie_crosses(session, a, b)


def test_local_receiver_is_exactly_127_0_0_1(listeners: list[Listener], no_connections: list[Any]) -> None:
    receiver = listener(listeners)
    assert ipaddress.ip_address("127.0.0.1")
    for url in (f"http://localhost:{receiver.port}/x", f"http://[::1]:{receiver.port}/x"):
        with pytest.raises(outbound.RefusedDestination):
            outbound.MerchantSession(local=True).post(url, data=b"{}", timeout=2)
    assert no_connections == []
