"""Outbound HTTP to a vendor (a carrier, a shop system): one request path and one failure mapping for all of them.

Every vendor adapter talks to its vendor through `OutboundHttp`, so that the rules below hold everywhere and are
written once:

- every request goes through the injected `requests.Session` with an explicit (connect, read) timeout;
- a timeout, a connection error, HTTP 408, 429 or 5xx is transient (the same call may succeed later; 429's
  Retry-After is kept); 401/403 is "credentials rejected" and never repeats what was sent; any other status is the
  vendor's refusal, described from its answer by an `ErrorDescriber`;
- nothing secret reaches a log line or an error message: logs carry the vendor, HTTP method, status and URL path
  only, and every message built from a vendor's answer goes through the adapter's masking.

What differs per vendor kind is a parameter: the exception raised (`make_error`), how credentials are masked
(`mask`), the read timeout, and the words of the messages (`kind`, `subject`).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any, Generic, TypeVar
from urllib.parse import urlsplit

import requests

from chalicelib.observability import logger

#: Seconds to wait for a connection; the read timeout is the vendor kind's (`OutboundHttp.timeout`).
CONNECT_TIMEOUT = 3.0

_TRANSIENT_STATUSES = frozenset({408, 429})
MASK = "***"
#: Shorter values (e.g. a receiver id "deu") are not secret, and replacing them would mangle messages.
MIN_MASKED_LENGTH = 4

#: Reads a vendor's error answer into a short sentence (or None when there is nothing useful in it).
ErrorDescriber = Callable[[requests.Response], str | None]
#: Text -> the same text with every credential value replaced by ``***``.
Masker = Callable[[str], str]

E = TypeVar("E", bound=Exception)
#: (detail, transient, retry_after) -> the vendor kind's exception.
ErrorFactory = Callable[[str, bool, float | None], E]


class OutboundHttp(Generic[E]):
    """Requests to one vendor through the injected session: explicit timeouts and the shared failure mapping.

    `kind` ("carrier", "shop") names the vendor kind in the log event (``"<kind> request failed"``), as the log
    field holding `vendor`, and in the credentials message; `subject` is what a refusal is said to refuse
    ("request", "refund"), overridable per call. `describe_error` may be given here or per call.
    """

    def __init__(
        self,
        session: requests.Session,
        *,
        kind: str,
        vendor: str,
        display_name: str,
        make_error: ErrorFactory[E],
        mask: Masker,
        timeout: tuple[float, float],
        describe_error: ErrorDescriber | None = None,
        subject: str = "request",
    ) -> None:
        self._session = session
        self.kind = kind
        self.vendor = vendor
        self.display_name = display_name
        self.timeout = timeout
        self.subject = subject
        self._make_error = make_error
        self._mask = mask
        self._describe_error = describe_error

    def send(
        self,
        method: str,
        url: str,
        *,
        ok: Sequence[int] = (200, 201),
        auth: tuple[str, str] | None = None,
        headers: Mapping[str, str] | None = None,
        json: Any = None,
        params: Any = None,
        describe_error: ErrorDescriber | None = None,
        server_refusal: ErrorDescriber | None = None,
        subject: str | None = None,
    ) -> requests.Response:
        """The response if its status is in `ok`; otherwise, and on timeouts or connection errors, the vendor
        kind's error.

        `server_refusal` reads a 5xx answer that is in fact a final refusal (WooCommerce answers a declined refund
        with HTTP 500); when it returns a sentence the error is final, otherwise a 5xx stays transient."""
        try:
            response = self._session.request(
                method, url, auth=auth, headers=dict(headers or {}), json=json, params=params, timeout=self.timeout
            )
        except requests.Timeout:  # before ConnectionError: a ConnectTimeout is both
            self._log_failure(method, url, reason="timeout")
            raise self._make_error(f"{self.display_name} did not answer in time; please try again.", True, None)
        except requests.ConnectionError:
            self._log_failure(method, url, reason="connection error")
            raise self._make_error(f"{self.display_name} could not be reached; please try again.", True, None)
        except requests.RequestException as exc:
            self._log_failure(method, url, reason=type(exc).__name__)
            raise self._make_error(f"The request to {self.display_name} failed; please try again.", True, None)
        if response.status_code in ok:
            return response
        raise self.error(
            method, url, response, describe_error=describe_error, server_refusal=server_refusal, subject=subject
        )

    def error(
        self,
        method: str,
        url: str,
        response: requests.Response,
        describe_error: ErrorDescriber | None = None,
        server_refusal: ErrorDescriber | None = None,
        *,
        subject: str | None = None,
    ) -> E:
        """The error for an unexpected answer (logged without body or credentials)."""
        status = response.status_code
        self._log_failure(method, url, status=status)
        name = self.display_name
        if status in (401, 403):
            return self._make_error(f"{name}: {self.kind} credentials rejected (HTTP {status}).", False, None)
        if status in _TRANSIENT_STATUSES:
            return self._make_error(
                f"{name} is busy (HTTP {status}); please try again shortly.", True, retry_after_seconds(response)
            )
        refused = f"{name} refused the {subject or self.subject}"
        if status >= 500:
            refusal = server_refusal(response) if server_refusal else None
            if refusal:
                return self._make_error(self.mask(f"{refused}: {refusal}"), False, None)
            return self._make_error(f"{name} had a server error (HTTP {status}).", True, None)
        describe = describe_error or self._describe_error
        description = (describe(response) if describe else None) or f"HTTP {status}"
        return self._make_error(self.mask(f"{refused}: {description}"), False, None)

    def mask(self, text: str) -> str:
        """`text` with every credential value replaced by ``***``."""
        return self._mask(text)

    def _log_failure(self, method: str, url: str, *, status: int | None = None, reason: str | None = None) -> None:
        fields: dict[str, Any] = {self.kind: self.vendor, "method": method, "path": urlsplit(url).path}
        logger.warning(f"{self.kind} request failed", **fields, status=status, reason=reason)


def mask_values(text: str, values: Iterable[str]) -> str:
    """`text` with each of `values` (longest first; those shorter than MIN_MASKED_LENGTH kept) replaced by ``***``."""
    for value in sorted({v for v in values if v and len(v) >= MIN_MASKED_LENGTH}, key=len, reverse=True):
        text = text.replace(value, MASK)
    return text


def fixed_masker(values: Iterable[str]) -> Masker:
    """A masker for credentials known up front (a shop's token, key and secret)."""
    secrets = tuple(values)
    return lambda text: mask_values(text, secrets)


def retry_after_seconds(response: requests.Response) -> float | None:
    """The Retry-After header in seconds (Shopify sends e.g. "2.0"); None when absent or an HTTP date."""
    raw = response.headers.get("Retry-After")
    if not raw:
        return None
    try:
        seconds = float(raw)
    except ValueError:
        return None
    return seconds if seconds >= 0 else None


def json_body(response: requests.Response) -> Any:
    """The response's JSON, or None when it is not JSON."""
    try:
        return response.json()
    except ValueError:
        return None
