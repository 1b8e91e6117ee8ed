"""The shop refund interface: every shop system (Shopify, WooCommerce, ...) implements `ShopRefundTarget`.

A refund is sent once with our refund id as its idempotency key and marked in the shop with the note
``Boomerang refund <refund_id>``, so that when the answer to a successful refund was lost, `find_refund` can tell
that the money already went back and nothing is refunded twice.

Failure mapping (every adapter, like the carrier adapters): a timeout, a connection error, HTTP 408, 429 or 5xx is
transient (`ShopError.transient`; 429's Retry-After is kept in `retry_after`); 401/403 is "shop credentials
rejected" and never repeats what was sent; any other refusal is described from the shop's answer. Logs carry the
shop system, HTTP method, status and URL path only, and every message built from a shop's answer has the
credential values masked.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from decimal import Decimal
from typing import Any, Protocol
from urllib.parse import urlsplit

import requests

from chalicelib.domain.money import quantize
from chalicelib.observability import logger

#: What happens to a refunded item's stock: back to sellable stock now, later through a refurbishment work order,
#: or not at all.
RESTOCK_CHOICES: frozenset[str] = frozenset({"restock", "refurbish", "no_restock"})

#: Seconds to wait for a connection, and for the answer once connected.
CONNECT_TIMEOUT = 3.0
READ_TIMEOUT = 15.0
TIMEOUT = (CONNECT_TIMEOUT, READ_TIMEOUT)

_TRANSIENT_STATUSES = frozenset({408, 429})
_MASK = "***"
_MIN_MASKED_LENGTH = 4


@dataclass(frozen=True)
class ShopRefundLine:
    external_line_id: str  # the shop's id of the order line
    quantity: int
    amount: Decimal  # what this line refunds, in the request's currency
    restock: str  # one of RESTOCK_CHOICES

    def __post_init__(self) -> None:
        if self.restock not in RESTOCK_CHOICES:
            raise ValueError(f"restock must be one of {sorted(RESTOCK_CHOICES)}, not {self.restock!r}")
        if self.quantity < 1:
            raise ValueError("quantity must be at least 1")


@dataclass(frozen=True)
class ShopRefundRequest:
    refund_id: str  # our refund id; also the idempotency key and the marker in the shop's note
    order_external_id: str  # the shop's order id (numeric id or Shopify gid)
    currency: str
    amount: Decimal  # the total to refund, shipping included
    lines: tuple[ShopRefundLine, ...]
    note: str | None = None
    location_id: str | None = None  # where restocked items go (Shopify location)
    shipping_amount: Decimal = Decimal(0)

    @property
    def marker(self) -> str:
        return refund_marker(self.refund_id)

    @property
    def shop_note(self) -> str:
        """The note written to the shop: the marker, then the free text if any."""
        text = (self.note or "").strip()
        return f"{self.marker}: {text}" if text else self.marker


@dataclass(frozen=True)
class ShopRefundResult:
    shop_refund_id: str
    amount: Decimal
    currency: str
    raw_status: str


class ShopError(Exception):
    """The shop refused or failed; `detail` is safe to show to a merchant and never holds a credential.

    `transient`: the same call may succeed later (timeouts, rate limits, 5xx); `retry_after`: seconds the shop asked
    us to wait, when it said so."""

    def __init__(self, detail: str, transient: bool = False, retry_after: float | None = None) -> None:
        super().__init__(detail)
        self.detail = detail
        self.transient = transient
        self.retry_after = retry_after


class ShopRefundTarget(Protocol):
    def refund(self, request: ShopRefundRequest) -> ShopRefundResult: ...

    def find_refund(self, request: ShopRefundRequest) -> ShopRefundResult | None: ...


def refund_marker(refund_id: str) -> str:
    return f"Boomerang refund {refund_id}"


def carries_marker(text: object, refund_id: str) -> bool:
    """Whether a shop's note/reason is the one we wrote for `refund_id` (not merely one for a longer id)."""
    if not isinstance(text, str):
        return False
    marker = refund_marker(refund_id)
    text = text.strip()
    return text == marker or text.startswith(f"{marker}:")


def money_string(amount: Decimal, currency: str) -> str:
    """`amount` with exactly the currency's minor units ("12.30", "1200" for JPY); never a float."""
    return str(quantize(Decimal(amount), currency.upper()))


def parse_amount(raw: object, *, display_name: str) -> Decimal:
    """A shop's decimal string (or integer) as a Decimal; anything else is an answer we cannot read."""
    if isinstance(raw, bool) or not isinstance(raw, str | int):
        raise ShopError(f"{display_name} sent an amount that could not be read.", transient=True)
    try:
        value = Decimal(raw)
    except ArithmeticError:
        raise ShopError(f"{display_name} sent an amount that could not be read.", transient=True)
    if not value.is_finite():
        raise ShopError(f"{display_name} sent an amount that could not be read.", transient=True)
    return value


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


#: Reads a shop's error answer into a short sentence (or None when there is nothing useful in it).
ErrorDescriber = Callable[[requests.Response], str | None]


class ShopHttp:
    """Requests to one shop through the injected session: explicit timeouts and the shared failure mapping."""

    def __init__(self, session: requests.Session, *, shop: str, display_name: str, secrets: Sequence[str]) -> None:
        self._session = session
        self.shop = shop
        self.display_name = display_name
        self._secrets = sorted({s for s in secrets if s and len(s) >= _MIN_MASKED_LENGTH}, key=len, reverse=True)

    def send(
        self,
        method: str,
        url: str,
        *,
        describe_error: ErrorDescriber,
        server_refusal: ErrorDescriber | None = None,
        ok: Sequence[int] = (200, 201),
        auth: tuple[str, str] | None = None,
        headers: Mapping[str, str] | None = None,
        json: Any = None,
        params: Any = None,
    ) -> requests.Response:
        """The response if its status is in `ok`; otherwise, and on timeouts or connection errors, ShopError.

        `server_refusal` reads a 5xx answer that is in fact a final refusal (WooCommerce answers a declined refund
        with HTTP 500); when it returns a sentence the error is final, otherwise a 5xx stays transient."""
        try:
            response = self._session.request(
                method, url, auth=auth, headers=dict(headers or {}), json=json, params=params, timeout=TIMEOUT
            )
        except requests.Timeout:  # before ConnectionError: a ConnectTimeout is both
            self._log_failure(method, url, reason="timeout")
            raise ShopError(f"{self.display_name} did not answer in time; please try again.", transient=True)
        except requests.ConnectionError:
            self._log_failure(method, url, reason="connection error")
            raise ShopError(f"{self.display_name} could not be reached; please try again.", transient=True)
        except requests.RequestException as exc:
            self._log_failure(method, url, reason=type(exc).__name__)
            raise ShopError(f"The request to {self.display_name} failed; please try again.", transient=True)
        if response.status_code in ok:
            return response
        raise self.error(method, url, response, describe_error, server_refusal)

    def error(
        self,
        method: str,
        url: str,
        response: requests.Response,
        describe_error: ErrorDescriber,
        server_refusal: ErrorDescriber | None = None,
    ) -> ShopError:
        status = response.status_code
        self._log_failure(method, url, status=status)
        if status in (401, 403):
            return ShopError(f"{self.display_name}: shop credentials rejected (HTTP {status}).")
        if status in _TRANSIENT_STATUSES:
            return ShopError(
                f"{self.display_name} is busy (HTTP {status}); please try again shortly.",
                transient=True,
                retry_after=retry_after_seconds(response),
            )
        if status >= 500:
            refusal = server_refusal(response) if server_refusal else None
            if refusal:
                return ShopError(self.mask(f"{self.display_name} refused the refund: {refusal}"))
            return ShopError(f"{self.display_name} had a server error (HTTP {status}).", transient=True)
        description = describe_error(response) or f"HTTP {status}"
        return ShopError(self.mask(f"{self.display_name} refused the refund: {description}"))

    def mask(self, text: str) -> str:
        """`text` with every credential value replaced by ``***``."""
        for value in self._secrets:
            text = text.replace(value, _MASK)
        return text

    def _log_failure(self, method: str, url: str, *, status: int | None = None, reason: str | None = None) -> None:
        logger.warning(
            "shop request failed", shop=self.shop, method=method, path=urlsplit(url).path, status=status, reason=reason
        )


def json_body(response: requests.Response) -> Any:
    """The response's JSON, or None when it is not JSON."""
    try:
        return response.json()
    except ValueError:
        return None
