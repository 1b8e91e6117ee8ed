"""Stateful in-memory shops (WooCommerce REST, Shopify GraphQL Admin API) behind a `requests` transport adapter.

The real shop adapters (`chalicelib.adapters.shops.*`) run unchanged over the real `requests` stack: a
`requests.Session` gets a transport (`requests.adapters.BaseAdapter`) mounted for the shop's https address, so
nothing opens a socket, and every other address is refused (and recorded as stray) instead of reaching the
network. `install_shop(fake, ...)` puts such a session into `container().overrides["http"]`; `bootstrap.reset()`
forgets it, so install inside the test, after the `aws` fixture.

Both fakes answer in the shapes the adapters expect (tests/unit/test_shop_adapters.py,
tests/unit/test_shop_gift_cards.py) and keep state: orders, the refunds that reached the shop, gift cards.

Faults. Every request is a *write* (it makes money or credit leave the shop: WooCommerce `POST .../refunds`,
Shopify `refundCreate`/`giftCardCreate`), a *dispose* (Shopify `reverseFulfillmentOrderDispose`, recording the
warehouse's verdict on a Shopify return) or a *read* (everything else). Writes consume `faults` one per request,
then use `default_fault`; reads consume `read_faults`, then `read_default_fault`; disposes `dispose_faults`, then
`dispose_default_fault` (all "ok" unless set). A fault is one of

- ``"ok"``: answered normally;
- ``"500"``: a server error, nothing applied;
- ``"429"``: rate limited, ``Retry-After: 1``, nothing applied;
- ``"throttled"``: Shopify's GraphQL THROTTLED error (HTTP 200, ``extensions.cost`` implying a 1 s wait);
  WooCommerce has none and answers 429 instead;
- ``"timeout"``: `requests.ReadTimeout` raised, nothing applied;
- ``"lost"``: applied as for ``"ok"``, then `requests.ReadTimeout` raised: the answer is lost.

Every request is recorded (`requests`: method, path, query, body, operation, kind, fault, status); `refunds` is
what reached the shop, oldest first, and `ledger()` the same as (id, order, amount, note) for either shop.

Where the fakes are stricter than the real shops (so that a wrong request fails loudly) it is said where it happens.
"""

from __future__ import annotations

import base64
import io
import json
import re
import threading
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from decimal import Decimal, InvalidOperation
from http import HTTPStatus
from typing import Any
from urllib.parse import parse_qs, urlsplit

import requests
from requests.adapters import BaseAdapter
from requests.structures import CaseInsensitiveDict

FAULTS = frozenset({"ok", "500", "429", "throttled", "timeout", "lost"})
CENT = Decimal("0.01")


@dataclass
class Recorded:
    """One request as the shop saw it."""

    method: str
    url: str
    path: str
    query: dict[str, list[str]]
    headers: dict[str, str]
    body: Any  # the JSON body, parsed; None without one
    operation: str  # WooCommerce: "list_refunds" / "create_refund"; Shopify: the GraphQL operation name
    kind: str  # "read", "write" or "dispose"
    fault: str  # the fault applied ("ok": answered normally)
    status: int | None = None  # the answer's status; None when no answer arrived (timeout, lost)
    timeout: Any = None  # what the client passed as timeout


@dataclass(frozen=True)
class LedgerEntry:
    """A refund that reached the shop, whichever shop."""

    shop_refund_id: str
    order_id: str
    amount: Decimal
    note: str


@dataclass
class _Answer:
    status: int
    payload: Any = None
    headers: dict[str, str] = field(default_factory=dict)


def money(value: Decimal) -> str:
    return str(Decimal(value).quantize(CENT))


def _decimal(raw: object) -> Decimal | None:
    if isinstance(raw, bool) or not isinstance(raw, str | int | float):
        return None
    try:
        value = Decimal(str(raw))
    except InvalidOperation:
        return None
    return value if value.is_finite() else None


def _now() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S")


class ShopTransport(BaseAdapter):
    """The `requests` transport of one fake shop: hands each prepared request to the shop, which answers it or
    raises what a real connection would (`requests.ReadTimeout`)."""

    def __init__(self, shop: FakeShop) -> None:
        super().__init__()
        self.shop = shop

    def send(
        self,
        request: requests.PreparedRequest,
        stream: bool = False,
        timeout: Any = None,
        verify: Any = True,
        cert: Any = None,
        proxies: Any = None,
    ) -> requests.Response:
        return self.shop.handle(request, timeout=timeout, transport=self)

    def close(self) -> None:
        return None


class NoNetwork(BaseAdapter):
    """Mounted for every other address: records the request and refuses it like an unreachable host."""

    def __init__(self) -> None:
        super().__init__()
        self.stray: list[str] = []

    def send(
        self,
        request: requests.PreparedRequest,
        stream: bool = False,
        timeout: Any = None,
        verify: Any = True,
        cert: Any = None,
        proxies: Any = None,
    ) -> requests.Response:
        self.stray.append(f"{request.method} {request.url}")
        raise requests.ConnectionError(f"no network in tests: {request.method} {request.url}", request=request)

    def close(self) -> None:
        return None


class FakeShop:
    """What both fakes share: routing, faults, recording, answers as `requests.Response`s."""

    name = "shop"
    base_url = ""

    def __init__(self) -> None:
        self.lock = threading.RLock()
        self.requests: list[Recorded] = []
        #: per kind of request ("write", "read", "dispose"): the faults still scripted, and the one after them
        self.scripts: dict[str, list[str]] = {"write": [], "read": [], "dispose": []}
        self.defaults: dict[str, str] = {"write": "ok", "read": "ok", "dispose": "ok"}
        self.transport = ShopTransport(self)

    # ----- fault scripts -----------------------------------------------------------------------------------------
    @property
    def faults(self) -> list[str]:
        return self.scripts["write"]

    @faults.setter
    def faults(self, value: list[str]) -> None:
        self.scripts["write"] = list(value)

    @property
    def default_fault(self) -> str:
        return self.defaults["write"]

    @default_fault.setter
    def default_fault(self, value: str) -> None:
        self.defaults["write"] = value

    @property
    def read_faults(self) -> list[str]:
        return self.scripts["read"]

    @read_faults.setter
    def read_faults(self, value: list[str]) -> None:
        self.scripts["read"] = list(value)

    @property
    def read_default_fault(self) -> str:
        return self.defaults["read"]

    @read_default_fault.setter
    def read_default_fault(self, value: str) -> None:
        self.defaults["read"] = value

    @property
    def dispose_faults(self) -> list[str]:
        return self.scripts["dispose"]

    @dispose_faults.setter
    def dispose_faults(self, value: list[str]) -> None:
        self.scripts["dispose"] = list(value)

    @property
    def dispose_default_fault(self) -> str:
        return self.defaults["dispose"]

    @dispose_default_fault.setter
    def dispose_default_fault(self, value: str) -> None:
        self.defaults["dispose"] = value

    # ----- what tests look at ----------------------------------------------------------------------------------
    @property
    def refunds(self) -> list[dict[str, Any]]:  # pragma: no cover - each fake defines it
        raise NotImplementedError

    def ledger(self) -> list[LedgerEntry]:  # pragma: no cover - each fake defines it
        raise NotImplementedError

    def writes(self, operation: str | None = None) -> list[Recorded]:
        with self.lock:
            return [r for r in self.requests if r.kind == "write" and (operation is None or r.operation == operation)]

    def reads(self, operation: str | None = None) -> list[Recorded]:
        with self.lock:
            return [r for r in self.requests if r.kind == "read" and (operation is None or r.operation == operation)]

    # ----- the transport's side --------------------------------------------------------------------------------
    def handle(self, request: requests.PreparedRequest, *, timeout: Any, transport: BaseAdapter) -> requests.Response:
        parts = urlsplit(request.url or "")
        raw = request.body
        text = raw.decode() if isinstance(raw, bytes) else (raw or "")
        try:
            body = json.loads(text) if text else None
        except ValueError:
            body = text
        headers = dict(request.headers)
        method = (request.method or "GET").upper()
        with self.lock:
            query = parse_qs(parts.query)
            route = self._route(method, parts.path, query, body)
            if route is None:
                operation, kind, run = "unknown", "read", lambda: _Answer(404, self._not_found_payload())
            else:
                operation, kind, run = route
            rec = Recorded(
                method=method,
                url=request.url or "",
                path=parts.path,
                query=query,
                headers=headers,
                body=body,
                operation=operation,
                kind=kind,
                fault="ok",
                timeout=timeout,
            )
            self.requests.append(rec)
            denied = self._unauthorized(headers)
            if denied is not None:
                rec.status = denied.status
                return _response(request, transport, denied)
            fault = self._next_fault(kind)
            rec.fault = fault
            if fault == "timeout":
                raise requests.ReadTimeout(f"fake {self.name}: read timed out", request=request)
            if fault == "500":
                answer = self._server_error()
            elif fault == "429":
                answer = self._rate_limited()
            elif fault == "throttled":
                answer = self._throttled()
            else:  # ok, lost: the shop does the work
                answer = run()
            if fault == "lost":
                raise requests.ReadTimeout(f"fake {self.name}: the answer was lost", request=request)
            rec.status = answer.status
            return _response(request, transport, answer)

    def _next_fault(self, kind: str) -> str:
        script = self.scripts[kind]
        fault = str(script.pop(0)) if script else str(self.defaults[kind])
        if fault not in FAULTS:
            raise ValueError(f"unknown fault {fault!r}; one of {sorted(FAULTS)}")
        return fault

    # ----- per shop --------------------------------------------------------------------------------------------
    def _route(
        self, method: str, path: str, query: dict[str, list[str]], body: Any
    ) -> tuple[str, str, Callable[[], _Answer]] | None:
        """(operation, its kind, what answers it) for a request; None: no such route (404)."""
        raise NotImplementedError

    def _unauthorized(self, headers: dict[str, str]) -> _Answer | None:
        raise NotImplementedError

    def _not_found_payload(self) -> Any:
        return {"code": "rest_no_route", "message": "No route was found matching the URL and request method."}

    def _server_error(self) -> _Answer:
        raise NotImplementedError

    def _rate_limited(self) -> _Answer:
        raise NotImplementedError

    def _throttled(self) -> _Answer:
        return self._rate_limited()


def _response(request: requests.PreparedRequest, transport: BaseAdapter, answer: _Answer) -> requests.Response:
    """A `requests.Response` whose body is read through `raw`, as from a connection."""
    content = b"" if answer.payload is None else json.dumps(answer.payload).encode()
    response = requests.Response()
    response.status_code = answer.status
    response.reason = HTTPStatus(answer.status).phrase
    response.headers = CaseInsensitiveDict(
        {"Content-Type": "application/json; charset=UTF-8", "Content-Length": str(len(content)), **answer.headers}
    )
    response.raw = io.BytesIO(content)
    response.encoding = "utf-8"
    response.url = request.url or ""
    response.request = request
    response.connection = transport
    return response


def install_shop(*shops: FakeShop) -> requests.Session:
    """A session with each fake mounted at its https address (every other address refused, see `NoNetwork`) as
    the container's `http`: the shop adapters Boomerang builds from now on talk to the fakes. Re-apply after
    `bootstrap.reset()`. The session's `no_network.stray` lists requests that went anywhere else."""
    from chalicelib.bootstrap import container

    session = requests.Session()
    no_network = NoNetwork()
    session.mount("http://", no_network)
    session.mount("https://", no_network)
    for shop in shops:
        session.mount(shop.base_url.rstrip("/") + "/", shop.transport)
    session.no_network = no_network  # type: ignore[attr-defined]
    container().overrides["http"] = session
    return session


# ===== WooCommerce ================================================================================================
WOO_API = "/wp-json/wc/v3"
WOO_CONSUMER_KEY = "ck_fake_0123456789abcdef"
WOO_CONSUMER_SECRET = "cs_fake_0123456789abcdef"


@dataclass
class WooLine:
    id: int
    name: str
    quantity: int
    total: Decimal  # paid for the whole line
    refunded_quantity: int = 0
    refunded_total: Decimal = Decimal(0)
    restocked: int = 0


@dataclass
class WooOrder:
    id: int
    currency: str
    lines: dict[int, WooLine]
    shipping_total: Decimal
    gateway_refunds: bool  # whether the payment gateway pays refunds back (api_refund)
    refunds: list[dict[str, Any]] = field(default_factory=list)  # oldest first

    @property
    def total(self) -> Decimal:
        return sum((line.total for line in self.lines.values()), Decimal(0)) + self.shipping_total

    @property
    def refunded(self) -> Decimal:
        return sum((Decimal(r["amount"]) for r in self.refunds), Decimal(0))


class FakeWooCommerce(FakeShop):
    """A WooCommerce store's REST API v3 order refunds (`GET`/`POST /wp-json/wc/v3/orders/<id>/refunds`), HTTP
    Basic with the consumer key and secret.

    Like WooCommerce (`wc_create_refund` and the v3 order refunds controller): refunds are listed newest first and
    paged (`per_page` at most 100, `page`); only the amount is checked: more than is left on the order (or zero)
    is "Invalid refund amount.", which the REST API answers with HTTP 500 and code
    ``woocommerce_rest_cannot_create_order_refund`` (not 400); a negative amount is 400
    ``woocommerce_rest_invalid_order_refund``; an unknown order 404 ``woocommerce_rest_invalid_order_id``;
    `api_refund` with a gateway that cannot refund is refused like WooCommerce does. Lines the order does not have
    are skipped and line quantities are not checked, as in WooCommerce, unless `strict_lines` is set (then they are
    refused the same way, so that a wrong line mapping fails loudly)."""

    name = "woocommerce"

    def __init__(
        self,
        base_url: str = "https://shop.example",
        consumer_key: str = WOO_CONSUMER_KEY,
        consumer_secret: str = WOO_CONSUMER_SECRET,
        *,
        strict_lines: bool = False,
    ) -> None:
        super().__init__()
        self.base_url = base_url.rstrip("/")
        self.strict_lines = strict_lines
        self.consumer_key = consumer_key
        self.consumer_secret = consumer_secret
        self.orders: dict[int, WooOrder] = {}
        self._next_refund_id = 700
        self._prefix = urlsplit(self.base_url).path.rstrip("/") + WOO_API

    def add_order(
        self,
        order_id: int,
        lines: dict[int, tuple[int, str]],
        *,
        currency: str = "EUR",
        shipping_total: str = "0.00",
        gateway_refunds: bool = True,
    ) -> WooOrder:
        """An order with `lines` {line id: (quantity, unit price)}."""
        order = WooOrder(
            id=order_id,
            currency=currency,
            lines={
                lid: WooLine(lid, f"Item {lid}", qty, (Decimal(price) * qty).quantize(CENT))
                for lid, (qty, price) in lines.items()
            },
            shipping_total=Decimal(shipping_total),
            gateway_refunds=gateway_refunds,
        )
        with self.lock:
            self.orders[order_id] = order
        return order

    def refund_by_hand(self, order_id: int, amount: str, reason: str = "refunded by the merchant") -> dict[str, Any]:
        """A refund the merchant made in WooCommerce's admin (not through the API, not recorded as a request)."""
        with self.lock:
            order = self.orders[order_id]
            return self._create(order, {"amount": amount, "reason": reason, "api_refund": False, "line_items": []})

    @property
    def refunds(self) -> list[dict[str, Any]]:
        with self.lock:
            return [r for order in self.orders.values() for r in order.refunds]

    def ledger(self) -> list[LedgerEntry]:
        with self.lock:
            return [
                LedgerEntry(str(r["id"]), str(order.id), Decimal(r["amount"]), r["reason"] or "")
                for order in self.orders.values()
                for r in order.refunds
            ]

    # ----- routing -----------------------------------------------------------------------------------------------
    def _route(
        self, method: str, path: str, query: dict[str, list[str]], body: Any
    ) -> tuple[str, str, Callable[[], _Answer]] | None:
        if not path.startswith(self._prefix):
            return None
        match = re.fullmatch(r"/orders/(\d+)/refunds", path[len(self._prefix) :])
        if match is None:
            return None
        order_id = int(match.group(1))
        if method == "GET":
            return "list_refunds", "read", lambda: self._list(order_id, query)
        if method == "POST":
            return "create_refund", "write", lambda: self._post(order_id, body)
        return None

    def _unauthorized(self, headers: dict[str, str]) -> _Answer | None:
        expected = "Basic " + base64.b64encode(f"{self.consumer_key}:{self.consumer_secret}".encode()).decode()
        if headers.get("Authorization") == expected:
            return None
        return _Answer(
            401,
            _woo_error(
                "woocommerce_rest_authentication_error", "Invalid signature - provided signature does not match.", 401
            ),
        )

    def _server_error(self) -> _Answer:
        return _Answer(
            500, _woo_error("internal_server_error", "There has been a critical error on this website.", 500)
        )

    def _rate_limited(self) -> _Answer:
        return _Answer(
            429,
            _woo_error("rate_limit_exceeded", "Too many requests. Please wait and try again.", 429),
            {"Retry-After": "1"},
        )

    # ----- the API -------------------------------------------------------------------------------------------------
    def _list(self, order_id: int, query: dict[str, list[str]]) -> _Answer:
        order = self.orders.get(order_id)
        if order is None:
            return _Answer(404, _woo_error("woocommerce_rest_invalid_order_id", "Invalid order ID.", 404))
        try:
            per_page = int((query.get("per_page") or ["10"])[0])
            page = int((query.get("page") or ["1"])[0])
        except ValueError:
            return _Answer(400, _woo_error("rest_invalid_param", "Invalid parameter(s): per_page, page", 400))
        if not 1 <= per_page <= 100 or page < 1:
            return _Answer(400, _woo_error("rest_invalid_param", "Invalid parameter(s): per_page", 400))
        newest_first = sorted(order.refunds, key=lambda r: r["id"], reverse=True)
        chunk = newest_first[(page - 1) * per_page : page * per_page]
        pages = max(1, -(-len(newest_first) // per_page))
        return _Answer(200, chunk, {"X-WP-Total": str(len(newest_first)), "X-WP-TotalPages": str(pages)})

    def _post(self, order_id: int, body: Any) -> _Answer:
        order = self.orders.get(order_id)
        if order is None:
            return _Answer(404, _woo_error("woocommerce_rest_invalid_order_id", "Invalid order ID.", 404))
        if not isinstance(body, dict):
            return _Answer(400, _woo_error("rest_invalid_json", "Invalid JSON body passed.", 400))
        amount = _decimal(body.get("amount"))
        if amount is None:
            return _Answer(400, _woo_error("rest_invalid_param", "Invalid parameter(s): amount", 400))
        if amount < 0:
            return _Answer(
                400,
                _woo_error("woocommerce_rest_invalid_order_refund", "Refund amount must be greater than zero.", 400),
            )
        refusal = self._check(order, amount, body)
        if refusal is not None:
            return _Answer(500, _woo_error("woocommerce_rest_cannot_create_order_refund", refusal, 500))
        if body.get("api_refund", True) and not order.gateway_refunds:
            return _Answer(
                500,
                _woo_error(
                    "woocommerce_rest_cannot_create_order_refund",
                    "The payment gateway for this order does not support automatic refunds.",
                    500,
                ),
            )
        return _Answer(201, self._create(order, body))

    def _check(self, order: WooOrder, amount: Decimal, body: dict[str, Any]) -> str | None:
        if amount <= 0 or amount > order.total - order.refunded:
            return "Invalid refund amount."
        if not self.strict_lines:
            return None
        for item in body.get("line_items") or []:
            line = order.lines.get(item.get("id")) if isinstance(item, dict) else None
            if line is None:
                return "Invalid line item."
            qty, total = item.get("quantity"), _decimal(item.get("refund_total"))
            if not isinstance(qty, int) or qty < 0 or qty > line.quantity - line.refunded_quantity:
                return "Invalid refund quantity."
            if total is None or total < 0 or total > line.total - line.refunded_total:
                return "Invalid refund amount."
        return None

    def _create(self, order: WooOrder, body: dict[str, Any]) -> dict[str, Any]:
        self._next_refund_id += 1
        amount = Decimal(str(body.get("amount")))
        restock = bool(body.get("api_restock", True))
        lines = []
        for n, item in enumerate(body.get("line_items") or []):
            line = order.lines.get(item.get("id")) if isinstance(item, dict) else None
            if line is None:
                continue  # WooCommerce skips a line the order does not have
            qty = int(item.get("quantity") or 0)
            total = Decimal(str(item.get("refund_total") or "0"))
            line.refunded_quantity += qty
            line.refunded_total += total
            if restock:
                line.restocked += qty
            lines.append(
                {
                    "id": 9000 + self._next_refund_id * 10 + n,
                    "name": line.name,
                    "quantity": -qty,
                    "subtotal": money(-total),
                    "total": money(-total),
                    "meta_data": [{"key": "_refunded_item_id", "value": str(line.id)}],
                    "refund_total": float(total),
                }
            )
        refund = {
            "id": self._next_refund_id,
            "date_created": _now(),
            "date_created_gmt": _now(),
            "amount": money(amount),
            "reason": body.get("reason") or "",
            "refunded_by": 1,
            "refunded_payment": bool(body.get("api_refund", True)) and order.gateway_refunds,
            "meta_data": [],
            "line_items": lines,
            "shipping_lines": [],
            "tax_lines": [],
            "fee_lines": [],
        }
        order.refunds.append(refund)
        return refund


def _woo_error(code: str, message: str, status: int) -> dict[str, Any]:
    return {"code": code, "message": message, "data": {"status": status}}


# ===== Shopify ====================================================================================================
SHOPIFY_API_VERSION = "2026-04"
SHOPIFY_ACCESS_TOKEN = "shpat_fake_0123456789abcdef"
SHOPIFY_RATE_LIMITED = (
    "Exceeded 2 calls per second for api client. Reduce request rates to resume uninterrupted service."
)
_OPERATION = re.compile(r"^\s*(query|mutation)\s+(\w+)")
_IDEMPOTENT = re.compile(r"@idempotent\(\s*key:\s*(?:\$(\w+)|\"([^\"]*)\")\s*\)")
_RESTOCK_TYPES = frozenset({"RETURN", "NO_RESTOCK", "CANCEL", "LEGACY_RESTOCK"})
_CODE = re.compile(r"[a-z0-9]{8,20}")


def _money_bag(amount: Decimal, currency: str) -> dict[str, Any]:
    return {"presentmentMoney": {"amount": money(amount), "currencyCode": currency}}


def _cost(requested: int = 10, available: float = 1990.0, restore: float = 100.0) -> dict[str, Any]:
    return {
        "cost": {
            "requestedQueryCost": requested,
            "actualQueryCost": requested,
            "throttleStatus": {"maximumAvailable": 2000.0, "currentlyAvailable": available, "restoreRate": restore},
        }
    }


@dataclass
class ShopifyLine:
    id: int
    quantity: int
    price: Decimal
    refunded_quantity: int = 0
    restocked: int = 0


@dataclass
class ShopifyOrder:
    id: int
    currency: str
    lines: dict[int, ShopifyLine]
    shipping: Decimal
    customer_id: str | None
    transactions: list[dict[str, Any]] = field(default_factory=list)
    refunds: list[dict[str, Any]] = field(default_factory=list)  # oldest first
    refunded_shipping: Decimal = Decimal(0)
    returns: list[dict[str, Any]] = field(default_factory=list)  # Shopify Returns, in the OrderReturns shape

    @property
    def gid(self) -> str:
        return f"gid://shopify/Order/{self.id}"

    def refunded_on(self, parent_id: str) -> Decimal:
        return sum(
            (
                Decimal(t["amountSet"]["presentmentMoney"]["amount"])
                for t in self.transactions
                if t["kind"] == "REFUND"
                and t["status"] == "SUCCESS"
                and (t["parentTransaction"] or {}).get("id") == parent_id
            ),
            Decimal(0),
        )


class FakeShopify(FakeShop):
    """A Shopify store's GraphQL Admin API (`POST /admin/api/<version>/graphql.json`, `X-Shopify-Access-Token`).

    Operations are told apart by the operation name in the query text (the adapter's constants in
    chalicelib/adapters/shops/shopify.py): OrderTransactions, OrderRefunds, RefundCreate, GiftCardCreate,
    GiftCardsByCode, ShopCurrency, GiftCardOrder, GiftCardCustomer, OrderReturns, ReverseFulfillmentOrderDispose;
    any other is a GraphQL error.

    `refundCreate` requires the ``@idempotent(key:)`` directive (as from API version 2026-04) and honours it: a
    request with a key seen before answers the refund that key made, and refunds nothing again (`replays` counts
    those). A refund must name the order's lines (at most what is left of each) and take its money from the
    order's successful SALE/CAPTURE transactions (at most what is left on each), else `userErrors`. Orders are paid
    by one SALE SUCCESS transaction unless told otherwise. Gift cards are kept by code (case-insensitive); a taken
    code is a ``TAKEN`` userError on ``["input", "code"]``; `giftCards(query:)` matches codes containing the term.
    An order has no Shopify return unless `add_return` makes one; `reverseFulfillmentOrderDispose` records all its
    inputs or none: an unknown line item, more units than are left to dispose, or RESTOCKED without a location
    are `ReturnUserError`s.
    """

    name = "shopify"

    def __init__(
        self,
        shop_domain: str = "example.myshopify.com",
        access_token: str = SHOPIFY_ACCESS_TOKEN,
        currency: str = "EUR",
        api_version: str = SHOPIFY_API_VERSION,
    ) -> None:
        super().__init__()
        self.shop_domain = shop_domain
        self.base_url = f"https://{shop_domain}"
        self.endpoint_path = f"/admin/api/{api_version}/graphql.json"
        self.access_token = access_token
        self.currency = currency
        self.orders: dict[int, ShopifyOrder] = {}
        self.gift_cards: dict[str, dict[str, Any]] = {}  # by lower-case code; holds the code (the shop knows it)
        self.customers: dict[str, str] = {}  # email -> customer gid
        self.idempotency: dict[str, dict[str, Any]] = {}  # key -> the refundCreate payload it made
        self.replays = 0
        self._ids = 9000

    def _next_id(self) -> int:
        self._ids += 1
        return self._ids

    def add_order(
        self,
        order_id: int,
        lines: dict[int, tuple[int, str]],
        *,
        currency: str | None = None,
        shipping: str = "0.00",
        customer_id: str | None = "gid://shopify/Customer/42",
        gateway: str = "shopify_payments",
        paid: bool = True,
    ) -> ShopifyOrder:
        """An order with `lines` {line id: (quantity, unit price)}, paid in full by one SALE SUCCESS transaction."""
        order = ShopifyOrder(
            id=order_id,
            currency=currency or self.currency,
            lines={lid: ShopifyLine(lid, qty, Decimal(price)) for lid, (qty, price) in lines.items()},
            shipping=Decimal(shipping),
            customer_id=customer_id,
        )
        total = sum((line.price * line.quantity for line in order.lines.values()), Decimal(0)) + order.shipping
        if paid:
            order.transactions.append(self._transaction("SALE", total, order.currency, gateway=gateway))
        with self.lock:
            self.orders[order_id] = order
        return order

    def refund_by_hand(self, order_id: int, amount: str, note: str = "refunded by the merchant") -> dict[str, Any]:
        """A refund the merchant made in Shopify's admin (money only, against the first sale)."""
        with self.lock:
            order = self.orders[order_id]
            sale = next(t for t in order.transactions if t["kind"] in ("SALE", "CAPTURE"))
            tx = [{"parentId": sale["id"], "amount": amount, "kind": "REFUND", "gateway": sale["gateway"]}]
            return self._create_refund(order, {"note": note, "transactions": tx, "refundLineItems": []})

    @property
    def refunds(self) -> list[dict[str, Any]]:
        with self.lock:
            return [r for order in self.orders.values() for r in order.refunds]

    def ledger(self) -> list[LedgerEntry]:
        with self.lock:
            return [
                LedgerEntry(
                    r["id"],
                    str(order.id),
                    Decimal(r["totalRefundedSet"]["presentmentMoney"]["amount"]),
                    r["note"] or "",
                )
                for order in self.orders.values()
                for r in order.refunds
            ]

    def refund_input(self, shop_refund_id: str) -> dict[str, Any]:
        """The RefundInput that made a refund (as received)."""
        with self.lock:
            return next(r for r in self.refunds if r["id"] == shop_refund_id)["_input"]

    # ----- routing -------------------------------------------------------------------------------------------------
    def _route(
        self, method: str, path: str, query: dict[str, list[str]], body: Any
    ) -> tuple[str, str, Callable[[], _Answer]] | None:
        if method != "POST" or path != self.endpoint_path:
            return None
        document = body.get("query") if isinstance(body, dict) else None
        variables = (body.get("variables") if isinstance(body, dict) else None) or {}
        match = _OPERATION.match(document) if isinstance(document, str) else None
        operation = match.group(2) if match else "anonymous"
        handlers: dict[str, tuple[str, Callable[[], dict[str, Any]]]] = {
            "OrderTransactions": ("read", lambda: self._order_transactions(variables)),
            "OrderRefunds": ("read", lambda: self._order_refunds(variables)),
            "RefundCreate": ("write", lambda: self._refund_create(str(document), variables)),
            "GiftCardCreate": ("write", lambda: self._gift_card_create(variables)),
            "GiftCardsByCode": ("read", lambda: self._gift_cards_by_code(variables)),
            "ShopCurrency": ("read", lambda: {"data": {"shop": {"currencyCode": self.currency}}}),
            "GiftCardOrder": ("read", lambda: self._gift_card_order(variables)),
            "GiftCardCustomer": ("read", lambda: self._gift_card_customer(variables)),
            "OrderReturns": ("read", lambda: self._order_returns(variables)),
            "ReverseFulfillmentOrderDispose": ("dispose", lambda: self._dispose(variables)),
        }
        if operation not in handlers:

            def unknown() -> _Answer:
                return _Answer(
                    200,
                    {
                        "errors": [
                            {
                                "message": f"fake Shopify: unknown operation {operation}",
                                "extensions": {"code": "undefinedField"},
                            }
                        ]
                    },
                )

            return operation, "read", unknown
        kind, handler = handlers[operation]

        def run() -> _Answer:
            payload = handler()
            payload.setdefault("extensions", _cost())
            return _Answer(200, payload)

        return operation, kind, run

    def _not_found_payload(self) -> Any:
        return {"errors": "Not Found"}

    def _unauthorized(self, headers: dict[str, str]) -> _Answer | None:
        if headers.get("X-Shopify-Access-Token") == self.access_token:
            return None
        return _Answer(401, {"errors": "[API] Invalid API key or access token (unrecognized login or wrong password)"})

    def _server_error(self) -> _Answer:
        return _Answer(500, {"errors": "Internal Server Error"})

    def _rate_limited(self) -> _Answer:
        return _Answer(
            429,
            {"errors": SHOPIFY_RATE_LIMITED},
            {"Retry-After": "1.0"},
        )

    def _throttled(self) -> _Answer:
        # HTTP 200, THROTTLED, and a cost that the bucket restores in 1 s: (50 - 0) / 50.
        return _Answer(
            200,
            {
                "errors": [
                    {
                        "message": "Throttled",
                        "extensions": {
                            "code": "THROTTLED",
                            "documentation": "https://shopify.dev/api/usage/rate-limits",
                        },
                    }
                ],
                "extensions": _cost(requested=50, available=0.0, restore=50.0),
            },
        )

    # ----- orders and refunds ------------------------------------------------------------------------------------
    def _order(self, variables: dict[str, Any]) -> ShopifyOrder | None:
        raw = variables.get("id")
        match = re.fullmatch(r"gid://shopify/Order/(\d+)", raw) if isinstance(raw, str) else None
        return self.orders.get(int(match.group(1))) if match else None

    def _order_transactions(self, variables: dict[str, Any]) -> dict[str, Any]:
        order = self._order(variables)
        if order is None:
            return {"data": {"order": None}}
        return {
            "data": {
                "order": {
                    "id": order.gid,
                    "presentmentCurrencyCode": order.currency,
                    "transactions": [dict(t) for t in order.transactions],
                }
            }
        }

    def _order_refunds(self, variables: dict[str, Any]) -> dict[str, Any]:
        order = self._order(variables)
        if order is None:
            return {"data": {"order": None}}
        return {"data": {"order": {"id": order.gid, "refunds": [_public(r) for r in order.refunds]}}}

    def _refund_create(self, query: str, variables: dict[str, Any]) -> dict[str, Any]:
        directive = _IDEMPOTENT.search(query)
        if directive is None:
            return {
                "errors": [
                    {
                        "message": "The @idempotent directive is required for this mutation.",
                        "extensions": {"code": "BAD_REQUEST"},
                    }
                ]
            }
        key = variables.get(directive.group(1)) if directive.group(1) else directive.group(2)
        if not isinstance(key, str) or not key:
            return {
                "errors": [
                    {"message": "Idempotency key must be a non-empty string.", "extensions": {"code": "BAD_REQUEST"}}
                ]
            }
        if key in self.idempotency:
            self.replays += 1
            return {"data": {"refundCreate": self.idempotency[key]}}
        data = variables.get("input")
        if not isinstance(data, dict):
            return {"errors": [{"message": "Variable $input of type RefundInput! was provided invalid value"}]}
        order = self._order({"id": data.get("orderId")})
        if order is None:
            return _user_errors(["orderId"], "Order does not exist")
        errors = self._check_refund(order, data)
        if errors:
            return {"data": {"refundCreate": {"refund": None, "userErrors": errors}}}
        refund = self._create_refund(order, data)
        payload = {"refund": _public(refund), "userErrors": []}
        self.idempotency[key] = payload  # only a refund made is remembered: a refused input may be corrected
        return {"data": {"refundCreate": payload}}

    def _check_refund(self, order: ShopifyOrder, data: dict[str, Any]) -> list[dict[str, Any]]:
        errors: list[dict[str, Any]] = []
        currency = data.get("currency")
        if currency is not None and currency != order.currency:
            errors.append({"field": ["currency"], "message": f"Currency must be {order.currency}"})
        for n, item in enumerate(data.get("refundLineItems") or []):
            raw = item.get("lineItemId") if isinstance(item, dict) else None
            match = re.fullmatch(r"gid://shopify/LineItem/(\d+)", raw) if isinstance(raw, str) else None
            line = order.lines.get(int(match.group(1))) if match else None
            if line is None:
                errors.append(
                    {"field": ["refundLineItems", str(n), "lineItemId"], "message": "Line item does not exist"}
                )
                continue
            qty = item.get("quantity")
            if not isinstance(qty, int) or qty < 1 or qty > line.quantity - line.refunded_quantity:
                errors.append(
                    {
                        "field": ["refundLineItems", str(n), "quantity"],
                        "message": "Quantity cannot refund more items than were purchased",
                    }
                )
            if item.get("restockType") not in _RESTOCK_TYPES:
                errors.append(
                    {"field": ["refundLineItems", str(n), "restockType"], "message": "Restock type is invalid"}
                )
        wanted: dict[str, Decimal] = {}
        for n, tx in enumerate(data.get("transactions") or []):
            parent = next(
                (t for t in order.transactions if isinstance(tx, dict) and t["id"] == tx.get("parentId")), None
            )
            amount = _decimal(tx.get("amount")) if isinstance(tx, dict) else None
            if (
                parent is None
                or parent["kind"] not in ("SALE", "CAPTURE")
                or parent["status"] != "SUCCESS"
                or tx.get("kind") != "REFUND"
                or tx.get("orderId", order.gid) != order.gid
                or tx.get("gateway", parent["gateway"]) != parent["gateway"]
                or amount is None
                or amount <= 0
            ):
                errors.append({"field": ["transactions", str(n)], "message": "Transaction is invalid"})
                continue
            wanted[parent["id"]] = wanted.get(parent["id"], Decimal(0)) + amount
        for parent_id, amount in wanted.items():
            parent = next(t for t in order.transactions if t["id"] == parent_id)
            left = Decimal(parent["amountSet"]["presentmentMoney"]["amount"]) - order.refunded_on(parent_id)
            if amount > left:
                errors.append({"field": ["transactions"], "message": "Amount exceeds refundable amount"})
        shipping = _decimal((data.get("shipping") or {}).get("amount")) if data.get("shipping") else Decimal(0)
        if shipping is None or shipping < 0 or shipping > order.shipping - order.refunded_shipping:
            errors.append({"field": ["shipping", "amount"], "message": "Shipping amount exceeds refundable shipping"})
        return errors

    def _create_refund(self, order: ShopifyOrder, data: dict[str, Any]) -> dict[str, Any]:
        nodes = []
        total = Decimal(0)
        for tx in data.get("transactions") or []:
            amount = Decimal(str(tx["amount"]))
            parent = next(t for t in order.transactions if t["id"] == tx["parentId"])
            refund_tx = self._transaction(
                "REFUND", amount, order.currency, gateway=parent["gateway"], parent=parent["id"]
            )
            order.transactions.append(refund_tx)
            nodes.append({"id": refund_tx["id"], "kind": "REFUND", "status": "SUCCESS"})
            total += amount
        for item in data.get("refundLineItems") or []:
            line = order.lines[int(item["lineItemId"].rsplit("/", 1)[-1])]
            line.refunded_quantity += item["quantity"]
            if item.get("restockType") == "RETURN":
                line.restocked += item["quantity"]
        if data.get("shipping"):
            order.refunded_shipping += Decimal(str(data["shipping"]["amount"]))
        refund = {
            "id": f"gid://shopify/Refund/{self._next_id()}",
            "note": data.get("note"),
            "createdAt": _now() + "Z",
            "totalRefundedSet": _money_bag(total, order.currency),
            "transactions": {"nodes": nodes},
            "_input": json.loads(json.dumps(data)),
        }
        order.refunds.append(refund)
        return refund

    def _transaction(
        self, kind: str, amount: Decimal, currency: str, *, gateway: str, parent: str | None = None
    ) -> dict[str, Any]:
        return {
            "id": f"gid://shopify/OrderTransaction/{self._next_id()}",
            "gateway": gateway,
            "kind": kind,
            "status": "SUCCESS",
            "parentTransaction": {"id": parent} if parent else None,
            "amountSet": _money_bag(amount, currency),
        }

    # ----- gift cards ----------------------------------------------------------------------------------------------
    def _gift_card_create(self, variables: dict[str, Any]) -> dict[str, Any]:
        data = variables.get("input")
        if not isinstance(data, dict):
            return {"errors": [{"message": "Variable $input of type GiftCardCreateInput! was provided invalid value"}]}
        code = str(data.get("code") or "").lower()
        value = _decimal(data.get("initialValue"))
        errors = []
        if not _CODE.fullmatch(code):
            errors.append({"code": "INVALID", "field": ["input", "code"], "message": "Code is invalid"})
        elif code in self.gift_cards:
            errors.append({"code": "TAKEN", "field": ["input", "code"], "message": "Code has already been taken"})
        if value is None or value <= 0:
            errors.append(
                {"code": "INVALID", "field": ["input", "initialValue"], "message": "Initial value is invalid"}
            )
        if errors:
            return {"data": {"giftCardCreate": {"giftCard": None, "userErrors": errors}}}
        card = {
            "id": f"gid://shopify/GiftCard/{self._next_id()}",
            "lastCharacters": code[-4:],
            "note": data.get("note"),
            "initialValue": {"amount": money(value or Decimal(0)), "currencyCode": self.currency},
            "customerId": data.get("customerId"),
            "code": code,
        }
        self.gift_cards[code] = card
        return {"data": {"giftCardCreate": {"giftCard": _card(card), "userErrors": []}}}

    def _gift_cards_by_code(self, variables: dict[str, Any]) -> dict[str, Any]:
        term = str(variables.get("query") or "").strip().strip('"').lower()
        nodes = [_card(c) for code, c in self.gift_cards.items() if term and term in code][:5]
        return {"data": {"giftCards": {"nodes": nodes}}}

    def _gift_card_order(self, variables: dict[str, Any]) -> dict[str, Any]:
        order = self._order(variables)
        shop = {"currencyCode": self.currency}
        if order is None:
            return {"data": {"shop": shop, "order": None}}
        customer = {"id": order.customer_id} if order.customer_id else None
        return {"data": {"shop": shop, "order": {"id": order.gid, "customer": customer}}}

    def _gift_card_customer(self, variables: dict[str, Any]) -> dict[str, Any]:
        match = re.fullmatch(r'email:"(.*)"', str(variables.get("query") or ""))
        email = match.group(1).replace('\\"', '"').replace("\\\\", "\\") if match else None
        nodes = [{"id": self.customers[email]}] if email in self.customers else []
        return {"data": {"shop": {"currencyCode": self.currency}, "customers": {"nodes": nodes}}}

    # ----- Shopify Returns (the merchant's own returns in Shopify) and their dispositions -----------------------
    def add_return(self, order_id: int, lines: dict[int, int], *, status: str = "OPEN") -> dict[str, Any]:
        """A Shopify return of `lines` {order line id: units} with one open reverse fulfillment order."""
        with self.lock:
            order = self.orders[order_id]
            items = [
                {
                    "id": f"gid://shopify/ReverseFulfillmentOrderLineItem/{self._next_id()}",
                    "totalQuantity": units,
                    "dispositions": [],
                    "fulfillmentLineItem": {"lineItem": {"id": f"gid://shopify/LineItem/{line_id}"}},
                    "_locations": [],
                }
                for line_id, units in lines.items()
            ]
            reverse_order = {
                "id": f"gid://shopify/ReverseFulfillmentOrder/{self._next_id()}",
                "status": "OPEN",
                "lineItems": {"pageInfo": {"hasNextPage": False}, "nodes": items},
            }
            shop_return = {
                "id": f"gid://shopify/Return/{self._next_id()}",
                "status": status,
                "reverseFulfillmentOrders": {"pageInfo": {"hasNextPage": False}, "nodes": [reverse_order]},
            }
            order.returns.append(shop_return)
            return shop_return

    def dispositions(self, order_id: int) -> dict[int, list[dict[str, Any]]]:
        """What was disposed on the order's Shopify returns: {order line id: [{type, quantity, locationId}]}."""
        with self.lock:
            out: dict[int, list[dict[str, Any]]] = {}
            for item in _return_items(self.orders[order_id].returns):
                line_id = int(item["fulfillmentLineItem"]["lineItem"]["id"].rsplit("/", 1)[-1])
                out.setdefault(line_id, []).extend(
                    {**d, "locationId": loc} for d, loc in zip(item["dispositions"], item["_locations"], strict=True)
                )
            return out

    def _order_returns(self, variables: dict[str, Any]) -> dict[str, Any]:
        order = self._order(variables)
        if order is None:
            return {"data": {"order": None}}
        returns = json.loads(json.dumps(order.returns))
        for item in _return_items(returns):
            item.pop("_locations", None)
        connection = {"pageInfo": {"hasNextPage": False}, "nodes": returns}
        return {"data": {"order": {"id": order.gid, "returns": connection}}}

    def _dispose(self, variables: dict[str, Any]) -> dict[str, Any]:
        """`reverseFulfillmentOrderDispose`: all inputs or none (`ReturnUserError`s name the input)."""
        inputs = variables.get("dispositionInputs")
        if not isinstance(inputs, list) or not inputs:
            return {"errors": [{"message": "Variable $dispositionInputs was provided invalid value"}]}
        items = {item["id"]: item for order in self.orders.values() for item in _return_items(order.returns)}
        left = {
            i: item["totalQuantity"] - sum(d["quantity"] for d in item["dispositions"]) for i, item in items.items()
        }
        errors: list[dict[str, Any]] = []
        for n, entry in enumerate(inputs):
            path = ["dispositionInputs", str(n)]
            item = items.get(entry.get("reverseFulfillmentOrderLineItemId")) if isinstance(entry, dict) else None
            if item is None:
                errors.append(_return_error([*path, "reverseFulfillmentOrderLineItemId"], "Line item does not exist"))
                continue
            quantity, kind = entry.get("quantity"), entry.get("dispositionType")
            if kind not in ("RESTOCKED", "PROCESSING_REQUIRED", "NOT_RESTOCKED", "MISSING"):
                errors.append(_return_error([*path, "dispositionType"], "Disposition type is invalid"))
            if not isinstance(quantity, int) or quantity < 1 or quantity > left[item["id"]]:
                errors.append(_return_error([*path, "quantity"], "Quantity exceeds the quantity left to dispose"))
            else:
                left[item["id"]] -= quantity
            if kind == "RESTOCKED" and not entry.get("locationId"):
                errors.append(
                    _return_error([*path, "locationId"], "Location is required when the disposition type is RESTOCKED")
                )
        if errors:
            payload: dict[str, Any] = {"reverseFulfillmentOrderLineItems": None, "userErrors": errors}
            return {"data": {"reverseFulfillmentOrderDispose": payload}}
        touched: list[dict[str, Any]] = []
        for entry in inputs:
            item = items[entry["reverseFulfillmentOrderLineItemId"]]
            item["dispositions"].append({"type": entry["dispositionType"], "quantity": entry["quantity"]})
            item["_locations"].append(entry.get("locationId"))
            if item not in touched:
                touched.append(item)
        lines = [
            {"id": i["id"], "totalQuantity": i["totalQuantity"], "dispositions": list(i["dispositions"])}
            for i in touched
        ]
        payload = {"reverseFulfillmentOrderLineItems": lines, "userErrors": []}
        return {"data": {"reverseFulfillmentOrderDispose": payload}}

    def ledger_cards(self) -> list[dict[str, Any]]:
        """Gift cards as the shop holds them (with the code: the shop knows it, Boomerang never does)."""
        with self.lock:
            return [dict(c) for c in self.gift_cards.values()]


def _public(refund: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in refund.items() if not k.startswith("_") and k != "createdAt"}


def _card(card: dict[str, Any]) -> dict[str, Any]:
    """A GiftCard as the API shows it: never the code."""
    return {k: card[k] for k in ("id", "lastCharacters", "note", "initialValue")}


def _return_items(returns: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Every reverse fulfillment order line item of `returns` (in the OrderReturns shape)."""
    return [
        item
        for shop_return in returns
        for reverse_order in shop_return["reverseFulfillmentOrders"]["nodes"]
        for item in reverse_order["lineItems"]["nodes"]
    ]


def _return_error(path: list[str], message: str) -> dict[str, Any]:
    return {"code": "INVALID", "field": path, "message": message}


def _user_errors(path: Iterable[str], message: str) -> dict[str, Any]:
    return {"data": {"refundCreate": {"refund": None, "userErrors": [{"field": list(path), "message": message}]}}}
