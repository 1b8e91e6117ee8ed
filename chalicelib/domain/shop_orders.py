"""Orders as shops and spreadsheets deliver them, mapped to the order shape of the merchant API (`OrderIn`).

Pure: no I/O. Three sources:

- Shopify webhooks (`orders/create`, `orders/updated`, `fulfillments/*`, `fulfillment_events/create`), REST-shaped JSON;
- WooCommerce webhooks (`order.created`, `order.updated`), WP REST API v3 order JSON;
- CSV files (one row per order line, rows grouped by `order_number`).

The mapped dicts are validated by the caller's `Validator` (the API passes `OrderIn`), so exactly the rules of
`POST /v1/orders` apply; its error locations are translated back into the source's terms (the shop's field path, or the
CSV row and column) so that a merchant can find what to fix. Decisions (see docs/shops.md):

- order number: Shopify `name` without its leading "#" (what the customer sees in the confirmation email, prefix and
  suffix included), else `order_number`; WooCommerce `number` (sequential-number plugins change it), else `id`.
- lines: the line's original quantity (a refund does not shrink what was bought; it would otherwise clash with
  quantities already in returns). Lines with quantity 0 (removed by an order edit) and lines that need no shipping
  (digital goods, gift cards) are left out: they cannot come back by parcel.
- no email address (POS, phone orders) or no address at all (digital or pickup orders): the order is not taken
  (`Unusable`, the webhook answers 2xx "ignored"): the portal needs both.
- money: `unit_price` is the price as the shop shows it; `paid_total` what the customer paid for the line (discounts
  off, tax on where the shop adds it on top), which is what refunds are computed from.
"""

from __future__ import annotations

import csv
import html
import io
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from decimal import ROUND_HALF_UP, Decimal, InvalidOperation
from typing import Any

from chalicelib.domain.errors import ValidationFailed
from chalicelib.domain.text import clean_line

Loc = tuple[str | int, ...]
#: Validates an OrderIn-shaped dict: (the cleaned dict, []) or (None, [(loc, message), ...]).
Validator = Callable[[dict[str, Any]], tuple[dict[str, Any] | None, list[tuple[Loc, str]]]]
#: A delivered piece as `services.orders.record_deliveries` takes it: (line_item_id, quantity, delivered_at, ref).
Piece = tuple[str, int, datetime, str | None]

CODE_MAX = 64  # OrderIn `Code`
TEXT_MAX = 200  # OrderIn `Str`
AMOUNT_LIMIT = Decimal(10) ** 12  # larger amounts are not prices (and would overflow the arithmetic)

SHOPIFY_ORDER_TOPICS = frozenset({"orders/create", "orders/updated"})
SHOPIFY_FULFILLMENT_TOPICS = frozenset({"fulfillments/create", "fulfillments/update"})
SHOPIFY_FULFILLMENT_EVENT_TOPIC = "fulfillment_events/create"
WOOCOMMERCE_ORDER_TOPICS = frozenset({"order.created", "order.updated"})
#: The ref of the delivery pieces a completed WooCommerce order stands for (one per line).
WOOCOMMERCE_COMPLETED_REF = "wc-completed"


class Unusable(Exception):
    """A well-formed shop order that cannot become a returnable order (no email, no address, nothing shipped)."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


@dataclass(frozen=True)
class ShopOrderLink:
    """Which of our orders a shop's order id stands for, and the shop's `updated_at` of what we last took."""

    order_number: str
    shop_updated_at: datetime | None = None


@dataclass
class MappedOrder:
    """A shop order in the shape of `OrderIn` (not validated yet) and what else the shop said with it."""

    platform: str
    data: dict[str, Any]
    external_id: str
    shop_updated_at: datetime | None = None
    delivered: list[Piece] = field(default_factory=list)
    line_sources: list[int] = field(default_factory=list)  # index of each mapped item in the payload's line_items
    address_source: str = "shipping_address"
    order_fields: dict[str, str] = field(default_factory=dict)  # OrderIn field -> the shop's field
    item_fields: dict[str, str] = field(default_factory=dict)
    address_fields: dict[str, str] = field(default_factory=dict)

    def source_loc(self, loc: Loc) -> list[str | int]:
        """An OrderIn error location in the shop's terms, e.g. ["line_items", 2, "price"]."""
        if len(loc) >= 2 and loc[0] == "items" and isinstance(loc[1], int) and loc[1] < len(self.line_sources):
            rest = [self.item_fields.get(str(p), p) for p in loc[2:3]] + list(loc[3:])
            return ["line_items", self.line_sources[loc[1]], *rest]
        if loc and loc[0] == "shipping_address":
            return [self.address_source, *[self.address_fields.get(str(p), p) for p in loc[1:]]]
        if loc:
            return [*self.order_fields.get(str(loc[0]), str(loc[0])).split("."), *loc[1:]]
        return []


def validated(mapped: MappedOrder, validate: Validator) -> dict[str, Any]:
    """The mapped order checked by `validate`; ValidationFailed (422) naming the shop's fields otherwise."""
    data, problems = validate(mapped.data)
    if data is None:
        errors = [{"loc": mapped.source_loc(loc), "msg": msg} for loc, msg in problems]
        first = errors[0] if errors else {"loc": [], "msg": "invalid"}
        where = ".".join(str(p) for p in first["loc"]) or "order"
        raise ValidationFailed(f"{mapped.platform} order {where}: {first['msg']}", errors)
    return data


# ----- small parsers ---------------------------------------------------------------------------------------------
def _text(value: Any) -> str:
    return value.strip() if isinstance(value, str) else ""


def _free(value: Any) -> str:
    """A shop's free-text value for a one-line field (a product or person name, an address line): line breaks and
    other control characters become spaces. Identifiers (numbers, line ids, SKUs) are not cleaned: OrderIn refuses
    them with the shop's field named."""
    return clean_line(_text(value))


def _clip(value: str, limit: int) -> str:
    return value[:limit].strip()


def _id(value: Any) -> str:
    """A shop id (number or string) as text; "" when absent."""
    if isinstance(value, bool) or value is None:
        return ""
    if isinstance(value, int):
        return str(value)
    return _text(value)


def _required_id(obj: dict[str, Any], key: str, loc: list[str | int]) -> str:
    value = _id(obj.get(key))
    if not value or len(value) > CODE_MAX:
        raise ValidationFailed.at([*loc, key], "missing or not an id")
    return value


def _dec(value: Any, loc: list[str | int], *, default: Decimal | None = None) -> Decimal:
    """A money amount as the shops send it (string or number); ValidationFailed naming `loc` when unreadable."""
    if value is None or value == "":
        if default is not None:
            return default
        raise ValidationFailed.at(loc, "missing amount")
    if isinstance(value, bool):
        raise ValidationFailed.at(loc, "not an amount")
    try:
        amount = Decimal(str(value).strip())
    except InvalidOperation:
        raise ValidationFailed.at(loc, "not an amount") from None
    if not amount.is_finite() or abs(amount) >= AMOUNT_LIMIT:
        raise ValidationFailed.at(loc, "not an amount")
    return amount


def money(amount: Decimal) -> str:
    """A decimal string as OrderIn takes it: no exponent, at most 4 decimals, never negative."""
    amount = max(amount, Decimal(0))
    if amount.as_tuple().exponent < -4:  # type: ignore[operator]
        amount = amount.quantize(Decimal("0.0001"), rounding=ROUND_HALF_UP)
    return format(amount, "f")


def _cents(amount: Decimal) -> Decimal:
    return amount.quantize(Decimal("0.01"), rounding=ROUND_HALF_UP)


def _int(value: Any, loc: list[str | int]) -> int:
    if isinstance(value, bool):
        raise ValidationFailed.at(loc, "not a whole number")
    if isinstance(value, int):
        return value
    if isinstance(value, str) and re.fullmatch(r"\s*-?\d{1,9}\s*", value):
        return int(value)
    if isinstance(value, float) and value.is_integer():
        return int(value)
    raise ValidationFailed.at(loc, "not a whole number")


def parse_time(value: Any, loc: list[str | int], *, assume_utc: bool = False) -> datetime | None:
    """An ISO 8601 time as shops send it; WooCommerce `*_gmt` fields carry no offset (`assume_utc`)."""
    raw = _text(value)
    if not raw:
        return None
    try:
        parsed = datetime.fromisoformat(raw.replace("Z", "+00:00"))
        if parsed.tzinfo is None:
            if not assume_utc:
                raise ValidationFailed.at(loc, "a time without a UTC offset")
            parsed = parsed.replace(tzinfo=UTC)
        return parsed.astimezone(UTC)
    except (ValueError, OverflowError):  # OverflowError: the offset moves it out of the calendar (year 9999)
        raise ValidationFailed.at(loc, "not an ISO 8601 time") from None


def locale(value: Any) -> str | None:
    """A shop locale ("de", "de-DE", "en_US", "pt-br", "zh-Hant-TW") in OrderIn's form (`de`, `de-DE`), or None."""
    parts = re.split(r"[-_]", _text(value))
    lang = parts[0].lower()
    if not re.fullmatch(r"[a-z]{2}", lang):
        return None
    region = next((p.upper() for p in parts[1:] if re.fullmatch(r"[A-Za-z]{2}", p)), None)
    return f"{lang}-{region}" if region else lang


# ----- addresses ---------------------------------------------------------------------------------------------------
#: Countries whose addresses put the house number before the street ("5 Main St", "12 rue de la Paix").
NUMBER_FIRST = frozenset(
    {"US", "CA", "GB", "IE", "AU", "NZ", "FR", "LU", "MC", "IL", "ZA", "IN", "SG", "MY", "PH", "HK"}
)
_TRAILING_NUM = r"\d{1,6}(?:\s?[a-zA-Z]{1,3})?"  # "5", "5a", "5 a", "92 hs" (the end of the line follows)
_LEADING_NUM = r"\d{1,6}[a-zA-Z]{0,3}"  # "5", "221B", "12bis" (a street name follows)
_TRAILING = re.compile(
    rf"^(?P<street>.*?\D.*?)(?:[\s,]+|(?<=\.))(?:(?:nr|no)\.?\s*)?"
    rf"(?P<number>{_TRAILING_NUM}(?:\s?[-/]\s?{_TRAILING_NUM})?)$",
    re.IGNORECASE,
)
_LEADING = re.compile(rf"^(?P<number>{_LEADING_NUM}(?:[-/]{_LEADING_NUM})?),?\s+(?P<street>.*[^\W\d_].*)$")
_ONLY_NUMBER = re.compile(
    rf"^(?:(?:nr|no)\.?\s*)?(?P<number>{_TRAILING_NUM}(?:\s?[-/]\s?{_TRAILING_NUM})?)$", re.IGNORECASE
)
HOUSE_NUMBER_MAX = 20


def split_street(address1: str, address2: str = "", country: str = "") -> tuple[str, str]:
    """(street, house number) from a shop's address lines.

    "Hauptstr. 5" -> ("Hauptstr.", "5"); "Straße des 17. Juni 135" -> ("Straße des 17. Juni", "135");
    "5 Main St" -> ("Main St", "5"). Where both readings are possible ("123 Route 66"), the country's custom decides
    (NUMBER_FIRST). A second line that is only a number is the house number ("Hauptstraße" + "5"); any other second
    line (apartment, c/o) is kept after the street. Nothing recognisable: the whole line is the street.
    """
    line1, line2 = " ".join(address1.split()), " ".join(address2.split())
    if not line1:
        line1, line2 = line2, ""
    orders = (_LEADING, _TRAILING) if country.upper() in NUMBER_FIRST else (_TRAILING, _LEADING)
    street, number = line1, ""
    for pattern in orders:
        found = pattern.match(line1)
        if found and len(found["number"]) <= HOUSE_NUMBER_MAX:
            street, number = found["street"].strip().rstrip(","), found["number"]
            break
    if not number and line2:
        alone = _ONLY_NUMBER.match(line2)
        if alone and len(alone["number"]) <= HOUSE_NUMBER_MAX:
            number, line2 = alone["number"], ""
    if line2:
        street = f"{street}, {line2}"
    return _clip(street, TEXT_MAX), number


def _person(addr: dict[str, Any]) -> str:
    name = _free(addr.get("name")) or " ".join(
        p for p in (_free(addr.get("first_name")), _free(addr.get("last_name"))) if p
    )
    return _clip(name or _free(addr.get("company")), TEXT_MAX)


def _address(addr: dict[str, Any], *, line1: str, line2: str, postcode: str, country: str, fallback_name: str) -> dict:
    country_code = _text(addr.get(country)).upper()
    street, number = split_street(_free(addr.get(line1)), _free(addr.get(line2)), country_code)
    return {
        "name": _person(addr) or fallback_name,
        "street": street,
        "house_number": number,
        # a few countries have no postal codes (IE before Eircode, HK, AE): a placeholder keeps the order usable
        "postal_code": _clip(_free(addr.get(postcode)), 20) or "-",
        "city": _clip(_free(addr.get("city")), TEXT_MAX),
        "country": country_code,
    }


def _has_address(addr: Any, line1: str) -> bool:
    return isinstance(addr, dict) and bool(_text(addr.get(line1)) or _text(addr.get("city")))


# ----- Shopify -----------------------------------------------------------------------------------------------------
_SHOPIFY_ITEM_FIELDS = {"unit_price": "price", "paid_total": "price", "line_item_id": "id", "external_id": "id"}
_SHOPIFY_ORDER_FIELDS = {"order_number": "name", "ordered_at": "created_at", "external_id": "id"}
_SHOPIFY_ADDRESS_FIELDS = {
    "street": "address1",
    "house_number": "address1",
    "postal_code": "zip",
    "country": "country_code",
}


def _object(payload: Any, what: str) -> dict[str, Any]:
    if not isinstance(payload, dict):
        raise ValidationFailed.at([], f"the body is not a {what} object")
    return payload


def _sub(obj: dict[str, Any], key: str) -> dict[str, Any]:
    value = obj.get(key)
    return value if isinstance(value, dict) else {}


def _list(obj: dict[str, Any], key: str) -> list[Any]:
    value = obj.get(key)
    if value is None:
        return []
    if not isinstance(value, list):
        raise ValidationFailed.at([key], "not a list")
    return value


def _shopify_number(payload: dict[str, Any], external_id: str) -> str:
    name = _text(payload.get("name")).lstrip("#").strip()
    number = name or _id(payload.get("order_number")) or external_id
    if len(number) > CODE_MAX:
        raise ValidationFailed.at(["name"], f"longer than {CODE_MAX} characters")
    return number


def _sku(sku: Any, *fallbacks: tuple[str, Any]) -> str:
    text = _text(sku)
    if not text:
        prefix, value = next(((p, _id(v)) for p, v in fallbacks if _id(v)), ("line", ""))
        text = f"{prefix}-{value}"
    return text[:CODE_MAX]


def _shopify_fulfilled(payload: dict[str, Any]) -> dict[str, int]:
    """Quantities per line in fulfillments that were not cancelled."""
    out: dict[str, int] = {}
    for f in _list(payload, "fulfillments"):
        if not isinstance(f, dict) or _text(f.get("status")) in ("cancelled", "error", "failure"):
            continue
        for li in f.get("line_items") or []:
            if isinstance(li, dict) and _id(li.get("id")):
                qty = li.get("quantity")
                out[_id(li.get("id"))] = out.get(_id(li.get("id")), 0) + (qty if isinstance(qty, int) else 0)
    return out


def shopify_delivered_at(fulfillment: dict[str, Any], loc: list[str | int]) -> datetime | None:
    """When a fulfillment was delivered, if its shipment status says it was (`delivered_at`, else `updated_at`)."""
    if _text(fulfillment.get("shipment_status")) != "delivered" or _text(fulfillment.get("status")) == "cancelled":
        return None
    return parse_time(fulfillment.get("delivered_at"), [*loc, "delivered_at"]) or parse_time(
        fulfillment.get("updated_at"), [*loc, "updated_at"]
    )


def _shopify_line(
    line: dict[str, Any], idx: int, fulfilled: dict[str, int], taxes_included: bool
) -> dict[str, Any] | None:
    loc: list[str | int] = ["line_items", idx]
    line_id = _required_id(line, "id", loc)
    if line.get("requires_shipping") is False or line.get("gift_card") is True:
        return None  # digital goods and gift cards never come back by parcel
    ordered = _int(line.get("quantity", 0), [*loc, "quantity"])
    quantity = ordered
    if line.get("current_quantity") is not None:  # after an order edit: what is left, but never less than shipped
        current = _int(line.get("current_quantity"), [*loc, "current_quantity"])
        quantity = min(ordered, max(current, fulfilled.get(line_id, 0)))
    if quantity <= 0:
        return None
    price = _dec(line.get("price"), [*loc, "price"])
    allocations = [a for a in line.get("discount_allocations") or [] if isinstance(a, dict)]
    if allocations:
        discount = sum((_dec(a.get("amount"), [*loc, "discount_allocations"]) for a in allocations), Decimal(0))
    else:
        discount = _dec(line.get("total_discount"), [*loc, "total_discount"], default=Decimal(0))
    tax = Decimal(0)
    if not taxes_included:  # US-style: tax is added on top of the price, and the customer paid it
        tax = sum(
            (_dec(t.get("price"), [*loc, "tax_lines"]) for t in line.get("tax_lines") or [] if isinstance(t, dict)),
            Decimal(0),
        )
    paid = price * ordered - discount + tax
    if quantity != ordered:
        paid = paid * quantity / ordered
    grams = line.get("grams")
    name = _free(line.get("name")) or _free(line.get("title")) or line_id
    return {
        "line_item_id": line_id,
        "sku": _sku(line.get("sku"), ("variant", line.get("variant_id")), ("line", line_id)),
        "name": _clip(name, TEXT_MAX),
        "quantity": quantity,
        "unit_price": money(price),
        "paid_total": money(_cents(paid)),
        "external_id": line_id,
        "tags": [],
        "deliveries": [],
        **({"weight_grams": grams} if isinstance(grams, int) and not isinstance(grams, bool) and grams > 0 else {}),
    }


def shopify_order(payload: Any) -> MappedOrder:
    """A Shopify `orders/create` / `orders/updated` payload (REST order JSON) as an order.

    Delivered fulfillments in the payload (`fulfillments[].shipment_status == "delivered"`) become delivery pieces.
    Unusable: no email address, no address at all, or no line that ships.
    """
    order = _object(payload, "Shopify order")
    external_id = _required_id(order, "id", [])
    email = (
        _text(order.get("email")) or _text(order.get("contact_email")) or _text(_sub(order, "customer").get("email"))
    )
    if not email:
        raise Unusable("the order has no email address")
    address_source = next(
        (k for k in ("shipping_address", "billing_address") if _has_address(order.get(k), "address1")), None
    )
    if address_source is None:
        raise Unusable("the order has no shipping or billing address")
    customer = _sub(order, "customer")
    fallback_name = _person(customer) or "Customer"
    address = _address(
        order[address_source],
        line1="address1",
        line2="address2",
        postcode="zip",
        country="country_code",
        fallback_name=fallback_name,
    )
    fulfilled = _shopify_fulfilled(order)
    taxes_included = bool(order.get("taxes_included"))
    items: list[dict[str, Any]] = []
    sources: list[int] = []
    for idx, line in enumerate(_list(order, "line_items")):
        if not isinstance(line, dict):
            raise ValidationFailed.at(["line_items", idx], "not an object")
        item = _shopify_line(line, idx, fulfilled, taxes_included)
        if item is not None:
            items.append(item)
            sources.append(idx)
    if not items:
        raise Unusable("the order has no line that ships")
    shipping = Decimal(0)
    for idx, sl in enumerate(_list(order, "shipping_lines")):
        if not isinstance(sl, dict):
            continue
        loc: list[str | int] = ["shipping_lines", idx]
        paid = sl.get("discounted_price") if sl.get("discounted_price") not in (None, "") else sl.get("price")
        shipping += _dec(paid, [*loc, "price"], default=Decimal(0))
        if not taxes_included:
            shipping += sum(
                (_dec(t.get("price"), [*loc, "tax_lines"]) for t in sl.get("tax_lines") or [] if isinstance(t, dict)),
                Decimal(0),
            )
    delivered: list[Piece] = []
    for idx, f in enumerate(_list(order, "fulfillments")):
        if not isinstance(f, dict):
            continue
        at = shopify_delivered_at(f, ["fulfillments", idx])
        if at is not None and _id(f.get("id")):
            delivered.extend(
                (_id(li.get("id")), li["quantity"], at, _id(f.get("id")))
                for li in f.get("line_items") or []
                if isinstance(li, dict) and _id(li.get("id")) and isinstance(li.get("quantity"), int)
            )
    created = parse_time(order.get("created_at"), ["created_at"]) or parse_time(
        order.get("processed_at"), ["processed_at"]
    )
    data = {
        "order_number": _shopify_number(order, external_id),
        "email": email,
        "currency": _text(order.get("currency")).upper(),
        "ordered_at": created.isoformat() if created else "",
        "locale": locale(order.get("customer_locale")) or locale(customer.get("locale")),
        "shipping_address": address,
        "items": items,
        "external_id": external_id,
        "shipping_paid": money(shipping),
    }
    return MappedOrder(
        platform="shopify",
        data=data,
        external_id=external_id,
        shop_updated_at=parse_time(order.get("updated_at"), ["updated_at"]),
        delivered=delivered,
        line_sources=sources,
        address_source=address_source,
        order_fields=_SHOPIFY_ORDER_FIELDS,
        item_fields=_SHOPIFY_ITEM_FIELDS,
        address_fields=_SHOPIFY_ADDRESS_FIELDS,
    )


@dataclass(frozen=True)
class ShopFulfillment:
    """A Shopify fulfillment (`fulfillments/create|update`): which pieces of which lines, delivered when (if)."""

    id: str
    order_external_id: str
    lines: dict[str, int]
    delivered_at: datetime | None
    cancelled: bool

    def pieces(self, at: datetime | None = None) -> list[Piece]:
        when = at or self.delivered_at
        if when is None:
            return []
        return [(line, qty, when, self.id) for line, qty in self.lines.items() if qty > 0]


def shopify_fulfillment(payload: Any) -> ShopFulfillment:
    f = _object(payload, "Shopify fulfillment")
    lines: dict[str, int] = {}
    for idx, li in enumerate(_list(f, "line_items")):
        if not isinstance(li, dict):
            raise ValidationFailed.at(["line_items", idx], "not an object")
        line_id = _required_id(li, "id", ["line_items", idx])
        lines[line_id] = lines.get(line_id, 0) + _int(li.get("quantity", 0), ["line_items", idx, "quantity"])
    return ShopFulfillment(
        id=_required_id(f, "id", []),
        order_external_id=_required_id(f, "order_id", []),
        lines=lines,
        delivered_at=shopify_delivered_at(f, []),
        cancelled=_text(f.get("status")) == "cancelled",
    )


@dataclass(frozen=True)
class ShopFulfillmentEvent:
    """A Shopify fulfillment event (`fulfillment_events/create`): carries no lines, only its fulfillment's id."""

    fulfillment_id: str
    order_external_id: str
    status: str
    happened_at: datetime | None


def shopify_fulfillment_event(payload: Any) -> ShopFulfillmentEvent:
    ev = _object(payload, "Shopify fulfillment event")
    return ShopFulfillmentEvent(
        fulfillment_id=_required_id(ev, "fulfillment_id", []),
        order_external_id=_required_id(ev, "order_id", []),
        status=_text(ev.get("status")),
        happened_at=parse_time(ev.get("happened_at"), ["happened_at"])
        or parse_time(ev.get("created_at"), ["created_at"]),
    )


# ----- WooCommerce -------------------------------------------------------------------------------------------------
_WOO_ITEM_FIELDS = {"unit_price": "subtotal", "paid_total": "total", "line_item_id": "id", "external_id": "id"}
_WOO_ORDER_FIELDS = {
    "order_number": "number",
    "ordered_at": "date_created_gmt",
    "external_id": "id",
    "email": "billing.email",
}
_WOO_ADDRESS_FIELDS = {
    "street": "address_1",
    "house_number": "address_1",
    "postal_code": "postcode",
    "country": "country",
}


def _woo_line(line: dict[str, Any], idx: int, prices_include_tax: bool) -> dict[str, Any] | None:
    loc: list[str | int] = ["line_items", idx]
    line_id = _required_id(line, "id", loc)
    quantity = _int(line.get("quantity", 0), [*loc, "quantity"])
    if quantity <= 0:
        return None
    subtotal = _dec(line.get("subtotal"), [*loc, "subtotal"])
    if prices_include_tax:
        subtotal += _dec(line.get("subtotal_tax"), [*loc, "subtotal_tax"], default=Decimal(0))
    paid = _dec(line.get("total"), [*loc, "total"]) + _dec(
        line.get("total_tax"), [*loc, "total_tax"], default=Decimal(0)
    )
    variation = line.get("variation_id") if _id(line.get("variation_id")) not in ("", "0") else None
    product = line.get("product_id") if _id(line.get("product_id")) not in ("", "0") else None
    return {
        "line_item_id": line_id,
        "sku": _sku(line.get("sku"), ("variation", variation), ("product", product), ("line", line_id)),
        # WordPress stores titles with HTML entities ("Shirt &ndash; Color: Black"); the customer reads text (and an
        # entity may spell a line break: cleaned after unescaping)
        "name": _clip(_free(html.unescape(_text(line.get("name")))) or line_id, TEXT_MAX),
        "quantity": quantity,
        "unit_price": money(_cents(subtotal / quantity)),
        "paid_total": money(_cents(paid)),
        "external_id": line_id,
        "tags": [],
        "deliveries": [],
    }


def woocommerce_order(payload: Any) -> MappedOrder:
    """A WooCommerce `order.created` / `order.updated` payload (WP REST API v3 order JSON) as an order.

    Status `completed`: every line counts as delivered at `date_completed_gmt` (ref "wc-completed").
    """
    order = _object(payload, "WooCommerce order")
    if "id" not in order and isinstance(order.get("order"), dict):
        raise ValidationFailed.at(
            ["order"], "a legacy REST API payload: set the webhook's API version to 'WP REST API Integration v3'"
        )
    external_id = _required_id(order, "id", [])
    billing = _sub(order, "billing")
    email = _text(billing.get("email"))
    if not email:
        raise Unusable("the order has no email address")
    address_source = next((k for k in ("shipping", "billing") if _has_address(order.get(k), "address_1")), None)
    if address_source is None:
        raise Unusable("the order has no shipping or billing address")
    address = _address(
        order[address_source],
        line1="address_1",
        line2="address_2",
        postcode="postcode",
        country="country",
        fallback_name=_person(billing) or "Customer",
    )
    prices_include_tax = bool(order.get("prices_include_tax"))
    items: list[dict[str, Any]] = []
    sources: list[int] = []
    for idx, line in enumerate(_list(order, "line_items")):
        if not isinstance(line, dict):
            raise ValidationFailed.at(["line_items", idx], "not an object")
        item = _woo_line(line, idx, prices_include_tax)
        if item is not None:
            items.append(item)
            sources.append(idx)
    if not items:
        raise Unusable("the order has no line")
    shipping = _dec(order.get("shipping_total"), ["shipping_total"], default=Decimal(0)) + _dec(
        order.get("shipping_tax"), ["shipping_tax"], default=Decimal(0)
    )
    number = _text(order.get("number")) or _id(order.get("number")) or external_id
    if len(number) > CODE_MAX:
        raise ValidationFailed.at(["number"], f"longer than {CODE_MAX} characters")
    created = parse_time(order.get("date_created_gmt"), ["date_created_gmt"], assume_utc=True)
    delivered: list[Piece] = []
    if _text(order.get("status")) == "completed":
        completed = parse_time(order.get("date_completed_gmt"), ["date_completed_gmt"], assume_utc=True)
        completed = completed or parse_time(order.get("date_modified_gmt"), ["date_modified_gmt"], assume_utc=True)
        if completed is not None:
            delivered = [(i["line_item_id"], i["quantity"], completed, WOOCOMMERCE_COMPLETED_REF) for i in items]
    data = {
        "order_number": number,
        "email": email,
        "currency": _text(order.get("currency")).upper(),
        "ordered_at": created.isoformat() if created else "",
        "locale": None,
        "shipping_address": address,
        "items": items,
        "external_id": external_id,
        "shipping_paid": money(_cents(shipping)),
    }
    return MappedOrder(
        platform="woocommerce",
        data=data,
        external_id=external_id,
        shop_updated_at=parse_time(order.get("date_modified_gmt"), ["date_modified_gmt"], assume_utc=True),
        delivered=delivered,
        line_sources=sources,
        address_source=address_source,
        order_fields=_WOO_ORDER_FIELDS,
        item_fields=_WOO_ITEM_FIELDS,
        address_fields=_WOO_ADDRESS_FIELDS,
    )


def missing_pieces(existing: dict[str, list[str | None]], pieces: list[Piece]) -> list[Piece]:
    """The pieces whose report is new: a piece whose line already holds one with the same ref (the same
    fulfillment) is left out, so the first report's delivery time stands and a repeat changes nothing.
    `existing`: line_item_id -> the refs of its delivered pieces (lines the order does not have are left out too)."""
    return [p for p in pieces if p[0] in existing and p[3] not in existing[p[0]]]


# ----- CSV ---------------------------------------------------------------------------------------------------------
ORDER_COLUMNS = ("order_number", "email", "currency", "ordered_at", "locale")
ADDRESS_COLUMNS = ("ship_name", "ship_street", "ship_house_number", "ship_postal_code", "ship_city", "ship_country")
ITEM_COLUMNS = (
    "line_item_id",
    "sku",
    "name",
    "quantity",
    "unit_price",
    "tags",
    "category",
    "paid_total",
    "external_id",
    "hs_code",
    "country_of_origin",
    "weight_grams",
    "delivered_at",
)
CSV_COLUMNS = (*ORDER_COLUMNS, *ADDRESS_COLUMNS, *ITEM_COLUMNS)
REQUIRED_COLUMNS = (
    "order_number",
    "email",
    "currency",
    "ordered_at",
    "ship_name",
    "ship_street",
    "ship_postal_code",
    "ship_city",
    "ship_country",
    "line_item_id",
    "sku",
    "name",
    "quantity",
    "unit_price",
)
_UPPER = frozenset({"currency", "ship_country", "country_of_origin"})
_AMOUNTS = frozenset({"unit_price", "paid_total"})
_TIMES = frozenset({"ordered_at", "delivered_at"})
TAG_SEPARATOR = "|"


@dataclass(frozen=True)
class RowError:
    row: int  # the header is row 1
    field: str
    message: str

    def to_dict(self) -> dict[str, Any]:
        return {"row": self.row, "field": self.field, "message": self.message}


@dataclass
class CsvOrder:
    """One order of a CSV file: its rows, and the validated OrderIn dict (None when a row of it failed)."""

    order_number: str
    rows: list[int] = field(default_factory=list)  # the row of each item, in item order
    data: dict[str, Any] | None = None

    def error_at(self, loc: Loc, message: str) -> RowError:
        """An OrderIn error location (validation, or the upsert's) as the row and column to fix."""
        first = self.rows[0] if self.rows else 0
        if len(loc) >= 2 and loc[0] == "items" and isinstance(loc[1], int) and loc[1] < len(self.rows):
            return RowError(self.rows[loc[1]], str(loc[2]) if len(loc) > 2 else "line_item_id", message)
        if loc and loc[0] == "shipping_address":
            return RowError(first, f"ship_{loc[1]}" if len(loc) > 1 else "ship_name", message)
        if loc and loc[0] == "items":  # the order as a whole (e.g. more lines than an order may have)
            return RowError(first, "order_number", f"items: {message}")
        return RowError(first, str(loc[0]) if loc else "order_number", message)


@dataclass
class CsvBatch:
    rows: int
    orders: list[CsvOrder]
    errors: list[RowError]
    ignored_columns: list[str]

    @property
    def valid(self) -> list[CsvOrder]:
        return [o for o in self.orders if o.data is not None]

    @property
    def failed(self) -> int:
        return sum(1 for o in self.orders if o.data is None)


@dataclass
class _Draft:
    """An order being collected from its rows."""

    order: CsvOrder
    values: dict[str, tuple[str, int]] = field(default_factory=dict)  # order-level column -> (value, row it came from)
    items: list[dict[str, Any]] = field(default_factory=list)
    broken: bool = False

    def data(self) -> dict[str, Any]:
        def v(column: str) -> str:
            return self.values.get(column, ("", 0))[0]

        return {
            "order_number": self.order.order_number,
            "email": v("email"),
            "currency": v("currency"),
            "ordered_at": v("ordered_at"),
            **({"locale": v("locale")} if v("locale") else {}),
            "shipping_address": {c.removeprefix("ship_"): v(c) for c in ADDRESS_COLUMNS},
            "items": self.items,
        }


def _cell(column: str, raw: str) -> str:
    value = raw.strip()
    if column in _UPPER:
        value = value.upper()
    elif column in _AMOUNTS and re.fullmatch(r"\d+,\d{1,4}", value):
        value = value.replace(",", ".")  # a spreadsheet's decimal comma ("29,95")
    elif column in _TIMES and re.fullmatch(r"\d{4}-\d{2}-\d{2}", value):
        value = f"{value}T00:00:00Z"  # a date alone: midnight UTC
    return value


def _time_problem(value: str) -> str | None:
    """Why a time cell cannot be taken, for what OrderIn would not say itself (a time the offset moves out of the
    calendar); None when it can go to validation."""
    try:
        parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
        if parsed.tzinfo is not None:
            parsed.astimezone(UTC)
    except ValueError:
        return None  # OrderIn names it
    except OverflowError:
        return "a time out of range"
    return None


_LINE_COLUMNS = ("line_item_id", "sku", "name", "quantity", "unit_price")  # always passed on (validation names gaps)
_OPTIONAL_ITEM_COLUMNS = tuple(c for c in ITEM_COLUMNS if c not in (*_LINE_COLUMNS, "tags"))


def _item(cells: dict[str, str]) -> dict[str, Any]:
    item: dict[str, Any] = {c: cells.get(c, "") for c in _LINE_COLUMNS}
    tags = [t.strip() for t in cells.get("tags", "").split(TAG_SEPARATOR) if t.strip()]
    if tags:
        item["tags"] = tags
    for column in _OPTIONAL_ITEM_COLUMNS:
        if cells.get(column):
            item[column] = cells[column]
    return item


def _records(text: str) -> list[list[str]]:
    header = text.split("\n", 1)[0]
    delimiter = ";" if header.count(";") > header.count(",") else ","
    reader = csv.reader(io.StringIO(text, newline=""), delimiter=delimiter, strict=True)
    try:
        return list(reader)
    except csv.Error as exc:
        raise ValidationFailed.at(["body"], f"not a readable CSV file (line {reader.line_num}): {exc}") from None


def _header(records: list[list[str]]) -> list[str]:
    if not records or not any(c.strip() for c in records[0]):
        raise ValidationFailed.at(["body"], "the file is empty: a header row and one row per order line expected")
    header = [h.strip().lstrip("\ufeff").strip().lower() for h in records[0]]
    missing = [c for c in REQUIRED_COLUMNS if c not in header]
    if missing:
        raise ValidationFailed(
            f"required columns missing: {', '.join(missing)}",
            [{"loc": ["header", c], "msg": "missing"} for c in missing],
        )
    duplicated = sorted({h for h in header if h and header.count(h) > 1})
    if duplicated:
        raise ValidationFailed.at(["header", duplicated[0]], "this column appears twice")
    return header


def parse_orders_csv(text: str, validate: Validator, *, max_rows: int) -> CsvBatch:
    """Orders from a CSV file (header row; one row per order line; rows grouped by `order_number`, in any order).

    Each order is checked with `validate`; an order with a bad row fails as a whole and every problem is named
    (row, counting the header as row 1; column; message). Order-level cells (email, address, ...) come from the first
    row that fills them; other rows of the order may leave them empty but not contradict them. Comma or semicolon
    separated (the header decides); a decimal comma in amounts and a date alone ("2026-11-15": midnight UTC) are
    accepted; unknown columns are ignored (and reported). ValidationFailed for the file as a whole: not CSV, no
    header, a required column missing, more than `max_rows` rows.
    """
    records = _records(text)
    header = _header(records)
    known = set(CSV_COLUMNS)
    data_rows = [(n, r) for n, r in enumerate(records[1:], start=2) if any(c.strip() for c in r)]
    if len(data_rows) > max_rows:
        raise ValidationFailed.at(["body"], f"{len(data_rows)} rows; at most {max_rows} per import: split the file")

    drafts: dict[str, _Draft] = {}
    errors: list[RowError] = []
    for row, record in data_rows:
        cells = {h: _cell(h, v) for h, v in zip(header, record, strict=False) if h in known}
        number = cells.get("order_number", "")
        if not number:
            errors.append(RowError(row, "order_number", "missing: every row names its order"))
            continue
        draft = drafts.setdefault(number, _Draft(CsvOrder(number)))
        for column in _TIMES:
            problem = _time_problem(cells[column]) if cells.get(column) else None
            if problem:
                errors.append(RowError(row, column, problem))
                cells[column] = "2000-01-01T00:00:00Z"  # the order fails anyway; validation still names the rest
                draft.broken = True
        if len(record) > len(header):
            errors.append(RowError(row, "row", f"{len(record)} cells, but the header names {len(header)} columns"))
            draft.broken = True
        for column in (*ORDER_COLUMNS[1:], *ADDRESS_COLUMNS):
            value = cells.get(column, "")
            if not value:
                continue
            seen = draft.values.setdefault(column, (value, row))
            if seen[0] != value:
                errors.append(RowError(row, column, f"differs from row {seen[1]} of the same order"))
                draft.broken = True
        item = _item(cells)
        twin = next(
            (
                r
                for r, i in zip(draft.order.rows, draft.items, strict=True)
                if i["line_item_id"] == item["line_item_id"]
            ),
            None,
        )
        if twin is not None and item["line_item_id"]:
            errors.append(RowError(row, "line_item_id", f"already used in row {twin} of the same order"))
            draft.broken = True
        draft.order.rows.append(row)
        draft.items.append(item)

    for draft in drafts.values():
        data, problems = validate(draft.data())
        errors.extend(draft.order.error_at(loc, msg) for loc, msg in problems)
        if data is not None and not draft.broken:
            draft.order.data = data
    errors.sort(key=lambda e: (e.row, e.field))
    return CsvBatch(
        rows=len(data_rows),
        orders=[d.order for d in drafts.values()],
        errors=errors,
        ignored_columns=[h for h in header if h and h not in known],
    )
