"""HTTP to merchant-supplied addresses (refund and restock webhooks, subscriptions, the merchant's shop), and the
sessions every outbound call uses.

`MerchantSession` enforces the URL policy of chalicelib/domain/urls.py where it matters, at connect time:

- the URL is judged again as written (a URL stored before the policy existed is refused here too);
- the host is resolved ONCE, every address it resolves to is judged, and the connection goes to the address that
  was checked (`_PinnedHTTPConnection`): TLS SNI, certificate hostname verification and the Host header stay on the
  original name, and a name that answered public when it was saved and private now is refused with no connection
  made (no DNS rebinding);
- redirects are never followed (a 3xx is the answer, i.e. a failed delivery); no proxy or netrc from the
  environment;
- at most `MAX_RESPONSE_BYTES` of a body are read (and for at most `BODY_DEADLINE_SECONDS`); the rest is dropped
  with the connection;
- no cookie is ever kept (`RefuseAllCookies`): one session serves every tenant, so a cookie set by one merchant's
  endpoint must never reach another's.

A refused address raises `RefusedDestination` (a `requests.ConnectionError`, so every caller's existing handling of
unreachable hosts applies); `failure_text` is the fixed sentence callers store for any failed call, never built from
what the remote end said.
"""

from __future__ import annotations

import http.cookiejar
import socket
import time
from collections.abc import Mapping
from typing import Any
from urllib.parse import urlsplit

import requests
from requests.adapters import HTTPAdapter
from urllib3.connection import HTTPConnection, HTTPSConnection
from urllib3.connectionpool import HTTPConnectionPool, HTTPSConnectionPool
from urllib3.exceptions import ConnectTimeoutError, NewConnectionError
from urllib3.util import connection as urllib3_connection

from chalicelib.domain import urls

#: The most of a response body read from a merchant's endpoint (a shop's largest answer we read is far smaller).
MAX_RESPONSE_BYTES = 1024 * 1024
#: The longest a body may take to arrive, whatever the per-read timeout.
BODY_DEADLINE_SECONDS = 15.0


class RefusedDestination(requests.ConnectionError):
    """The URL, or an address its host resolved to, is not one Boomerang calls on a merchant's behalf."""

    def __init__(self, reason: str, **kwargs: Any) -> None:
        super().__init__(f"the URL was refused: {reason}", **kwargs)
        self.reason = reason


class RefuseAllCookies(http.cookiejar.DefaultCookiePolicy):
    """A cookie policy that neither stores nor sends any cookie."""

    def set_ok(self, cookie: http.cookiejar.Cookie, request: Any) -> bool:
        return False

    def return_ok(self, cookie: http.cookiejar.Cookie, request: Any) -> bool:
        return False

    def domain_return_ok(self, domain: str, request: Any) -> bool:
        return False

    def path_return_ok(self, path: str, request: Any) -> bool:
        return False


def cookieless(session: requests.Session) -> requests.Session:
    """`session` with a cookie jar that refuses every cookie."""
    session.cookies.set_policy(RefuseAllCookies())
    return session


def vendor_session() -> requests.Session:
    """The session for fixed vendor hosts (carriers): plain, but keeping no cookies."""
    return cookieless(requests.Session())


def resolve(host: str, port: int) -> list[str]:
    """Every address `host` resolves to, in the resolver's order, each once. Raises OSError when it does not."""
    infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    return list(dict.fromkeys(str(info[4][0]) for info in infos))


def checked_addresses(host: str, port: int, *, local: bool) -> list[str]:
    """The addresses `host` resolves to now, all of them allowed; raises RefusedDestination otherwise (a name that
    does not resolve is a plain connection error: it may resolve later)."""
    try:
        addresses = resolve(host, port)
    except (OSError, UnicodeError):
        raise requests.ConnectionError("the host did not resolve") from None
    if not addresses:
        raise requests.ConnectionError("the host did not resolve")
    why = urls.resolved_error(host, addresses, local=local)
    if why:
        raise RefusedDestination(why)
    return addresses


def save_time_error(url: str, *, local: bool) -> str | None:
    """Why a merchant-supplied URL may not be saved: as written, or by what its host resolves to now (a host that
    does not resolve yet is accepted; it is checked again at every call)."""
    why = urls.url_error(url, local=local)
    if why:
        return why
    parts = urlsplit(url)
    host = parts.hostname or ""
    try:
        addresses = resolve(host, parts.port or (443 if parts.scheme == "https" else 80))
    except (OSError, UnicodeError):
        return None
    return urls.resolved_error(host, addresses, local=local)


class _PinnedConnectionMixin:
    """Connects to `pinned_address` (checked) while everything else, TLS included, uses the URL's host name."""

    host: str
    port: int
    timeout: Any
    source_address: Any
    socket_options: Any
    _pinned_address: str

    def _new_conn(self) -> socket.socket:
        try:
            return urllib3_connection.create_connection(
                (self._pinned_address, self.port),
                self.timeout,
                source_address=self.source_address,
                socket_options=self.socket_options,
            )
        except TimeoutError as e:
            raise ConnectTimeoutError(self, f"Connection to {self.host} timed out.") from e
        except OSError as e:
            raise NewConnectionError(self, f"Failed to establish a new connection: {e}") from e  # type: ignore[arg-type]


class _PinnedHTTPConnection(_PinnedConnectionMixin, HTTPConnection):
    def __init__(self, *args: Any, pinned_address: str, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._pinned_address = pinned_address


class _PinnedHTTPSConnection(_PinnedConnectionMixin, HTTPSConnection):
    def __init__(self, *args: Any, pinned_address: str, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._pinned_address = pinned_address


class _PinnedHTTPPool(HTTPConnectionPool):
    ConnectionCls = _PinnedHTTPConnection  # type: ignore[assignment]


class _PinnedHTTPSPool(HTTPSConnectionPool):
    ConnectionCls = _PinnedHTTPSConnection  # type: ignore[assignment]


class PinnedAddressAdapter(HTTPAdapter):
    """A transport that checks the URL and every address its host resolves to, then connects to the checked
    address. One connection pool per request: a pooled connection never outlives the check that opened it."""

    def __init__(self, *, local: bool) -> None:
        super().__init__(max_retries=0)
        self.local = local

    def get_connection_with_tls_context(
        self,
        request: requests.PreparedRequest,
        verify: Any,
        proxies: Mapping[str, str] | None = None,
        cert: Any = None,
    ) -> HTTPConnectionPool:
        url = request.url or ""
        why = urls.url_error(url, local=self.local)
        if why:
            raise RefusedDestination(why, request=request)
        if proxies and any(proxies.values()):
            raise RefusedDestination("calls to merchant addresses go through no proxy", request=request)
        host_params, pool_kwargs = self.build_connection_pool_key_attributes(request, verify, cert)
        scheme, host = host_params["scheme"], host_params["host"]
        port = host_params["port"] or (443 if scheme == "https" else 80)
        addresses = checked_addresses(host, port, local=self.local)
        if scheme == "https":
            return _PinnedHTTPSPool(host, port, maxsize=1, block=False, pinned_address=addresses[0], **pool_kwargs)
        return _PinnedHTTPPool(host, port, maxsize=1, block=False, pinned_address=addresses[0])

    def get_connection(self, url: Any, proxies: Any = None) -> HTTPConnectionPool:
        raise NotImplementedError("use get_connection_with_tls_context")  # pragma: no cover - requests < 2.32.2


class MerchantSession(requests.Session):
    """The session for every merchant-supplied URL (see the module docstring)."""

    def __init__(self, *, local: bool, max_body_bytes: int = MAX_RESPONSE_BYTES) -> None:
        super().__init__()
        self.local = local
        self.max_body_bytes = max_body_bytes
        self.trust_env = False  # no proxy, no netrc credentials from the environment
        cookieless(self)
        adapter = PinnedAddressAdapter(local=local)
        self.mount("http://", adapter)
        self.mount("https://", adapter)
        self.headers["Accept-Encoding"] = "identity"

    def get_redirect_target(self, resp: requests.Response) -> str | None:
        """None: a redirect is never followed, nor even prepared (requests would read the whole body for it)."""
        return None

    def send(self, request: requests.PreparedRequest, **kwargs: Any) -> requests.Response:
        kwargs["allow_redirects"] = False
        kwargs["stream"] = True
        response = super().send(request, **kwargs)
        _read_capped(response, self.max_body_bytes)
        return response


def _read_capped(response: requests.Response, limit: int) -> None:
    """Read at most `limit` bytes of the body (for at most BODY_DEADLINE_SECONDS) into `response.content`; drop the
    connection when more was on its way."""
    chunks: list[bytes] = []
    size = 0
    deadline = time.monotonic() + BODY_DEADLINE_SECONDS
    complete = True
    try:
        for chunk in response.iter_content(chunk_size=16 * 1024):
            chunks.append(chunk)
            size += len(chunk)
            if size > limit or time.monotonic() > deadline:
                complete = False
                break
    except requests.RequestException:
        complete = False
    response._content = b"".join(chunks)[:limit]
    response._content_consumed = True  # type: ignore[attr-defined]
    if complete:
        response.close()
    else:
        response.raw.close()  # the unread rest goes with the connection
        response.close()


def failure_text(exc: BaseException) -> str:
    """The fixed sentence kept for a call that raised (never the remote end's words)."""
    if isinstance(exc, RefusedDestination):
        return str(exc)
    if isinstance(exc, requests.Timeout):
        return "the endpoint did not answer in time"
    if isinstance(exc, requests.ConnectionError):
        return "the endpoint could not be reached"
    return f"the call failed ({type(exc).__name__})"
