"""The shop refund interface: every shop system (Shopify, WooCommerce, ...) implements `ShopRefundTarget`.

A refund is sent once with our refund id as its idempotency key and marked in the shop with the note
``Boomerang refund <refund_id>``, so that when the answer to a successful refund was lost, `find_refund` can tell
that the money already went back and nothing is refunded twice.

Store credit goes the same way where a shop supports it (`ShopGiftCardTarget`): a gift card whose note carries the
same marker, created so that a retry never issues a second card.

Failure mapping (every adapter, like the carrier adapters, through `ShopHttp`, the shop flavour of
`chalicelib.adapters.http.OutboundHttp`): a timeout, a connection error, HTTP 408, 429 or 5xx is
transient (`ShopError.transient`; 429's Retry-After is kept in `retry_after`); 401/403 is "shop credentials
rejected" and never repeats what was sent; any other refusal is described from the shop's answer. Logs carry the
shop system, HTTP method, status and URL path only, and every message built from a shop's answer has the
credential values masked.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from decimal import Decimal
from typing import Protocol

import requests

from chalicelib.adapters.http import CONNECT_TIMEOUT, OutboundHttp, fixed_masker
from chalicelib.domain.money import quantize

#: What happens to a refunded item's stock: back to sellable stock now, later through a refurbishment work order,
#: or not at all.
RESTOCK_CHOICES: frozenset[str] = frozenset({"restock", "refurbish", "no_restock"})

#: Seconds to wait for a connection, and for the answer once connected.
READ_TIMEOUT = 15.0
TIMEOUT = (CONNECT_TIMEOUT, READ_TIMEOUT)


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
        return marked_note(self.refund_id, self.note)


@dataclass(frozen=True)
class ShopRefundResult:
    shop_refund_id: str
    amount: Decimal
    currency: str
    raw_status: str


@dataclass(frozen=True)
class GiftCardRequest:
    """Store credit instead of money back: a gift card in the shop worth `amount` (the refund plus any bonus; the
    caller computes it). `refund_id` marks the card's note like a refund's, and makes creating it idempotent."""

    refund_id: str
    currency: str
    amount: Decimal
    note: str | None = None
    customer_email: str | None = None  # whom to assign the card to when the order does not say
    order_external_id: str | None = None  # the order the returned items came from (its customer gets the card)

    def __post_init__(self) -> None:
        if not self.amount > 0:
            raise ValueError("a gift card's amount must be positive")

    @property
    def marker(self) -> str:
        return refund_marker(self.refund_id)

    @property
    def shop_note(self) -> str:
        """The note written to the shop: the marker, then the free text if any."""
        return marked_note(self.refund_id, self.note)


@dataclass(frozen=True)
class GiftCardResult:
    shop_gift_card_id: str
    amount: Decimal
    currency: str
    last_characters: str | None = None  # the end of the code, to tell the customer which card; never the code


#: What became of a returned item, in the shop's words (Shopify's `ReverseFulfillmentOrderDispositionType`): back in
#: stock, waiting for further processing, not restocked, or expected but not received.
DISPOSITION_TYPES: frozenset[str] = frozenset({"RESTOCKED", "PROCESSING_REQUIRED", "NOT_RESTOCKED", "MISSING"})


@dataclass(frozen=True)
class DispositionLine:
    """The warehouse's verdict on `quantity` units of one order line, recorded on the shop's own return."""

    external_line_id: str  # the shop's id of the order line
    quantity: int
    disposition_type: str  # one of DISPOSITION_TYPES

    def __post_init__(self) -> None:
        if self.disposition_type not in DISPOSITION_TYPES:
            raise ValueError(
                f"disposition_type must be one of {sorted(DISPOSITION_TYPES)}, not {self.disposition_type!r}"
            )
        if self.quantity < 1:
            raise ValueError("quantity must be at least 1")


@dataclass(frozen=True)
class DispositionResult:
    """`disposed`: lines with units recorded by this call; `skipped`: lines with nothing (left) to record;
    `shopify_return_found`: whether the order has a return in the shop that could take the verdict at all."""

    disposed: int
    skipped: int
    shopify_return_found: bool


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


class ShopGiftCardTarget(Protocol):
    """A shop that issues store credit as gift cards. `create_gift_card` may be retried after a lost answer: it
    never makes a second card for the same refund id; `find_gift_card` says whether one exists already."""

    def create_gift_card(self, request: GiftCardRequest) -> GiftCardResult: ...

    def find_gift_card(self, request: GiftCardRequest) -> GiftCardResult | None: ...


def refund_marker(refund_id: str) -> str:
    return f"Boomerang refund {refund_id}"


def marked_note(refund_id: str, note: str | None) -> str:
    """The marker for `refund_id`, then ": " and `note` when there is one."""
    marker = refund_marker(refund_id)
    text = (note or "").strip()
    return f"{marker}: {text}" if text else marker


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


class ShopHttp(OutboundHttp[ShopError]):
    """`OutboundHttp` for one shop: `ShopError` (with 429's Retry-After), a 15 s read timeout, the shop's
    credentials masked, ``shop=`` in the logs; a refusal is "refused the refund" unless a call says otherwise."""

    def __init__(self, session: requests.Session, *, shop: str, display_name: str, secrets: Sequence[str]) -> None:
        super().__init__(
            session,
            kind="shop",
            vendor=shop,
            display_name=display_name,
            make_error=ShopError,
            mask=fixed_masker(secrets),
            timeout=TIMEOUT,
            subject="refund",
        )
        self.shop = shop
