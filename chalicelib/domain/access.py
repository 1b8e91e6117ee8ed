"""A customer's access export (GDPR Art. 15): everything one merchant holds about one customer, as one JSON
document. Pure, no I/O: chalicelib/services/access.py gathers the records, this module shapes them.

The document (`schema_version` 1, UTF-8 JSON):

    {"schema_version": 1, "kind": "customer_data", "generated_at": "...Z", "merchant": {id, name},
     "customer": {"emails": [...], "names": [...], "addresses": [...]},
     "orders": [...], "returns": [...], "withdrawals": [...], "notifications": [...],
     "files": {"note": ..., "keys": [...]}}

Every section is a list (empty when nothing is held). A return carries its items (reasons, comments, the
customer's photos by key), its timeline, refunds, tracking numbers and the parcel photos the warehouse took. Files
(labels, photos) are named by their key in the files bucket, not embedded or linked: a link would expire long
before the document is read; the merchant sends them on request (GET /v1/returns/{id} signs links to them).
Internal bookkeeping (workflow task tokens, index facets, versions, hashed keys) is left out: it is not personal
data and means nothing outside the system.
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Iterable
from datetime import datetime
from decimal import Decimal
from enum import Enum
from typing import Any

from chalicelib.domain.orders import Order
from chalicelib.domain.returns import Return, TimelineEntry, iso

SCHEMA_VERSION = 1
KIND = "customer_data"
FILES_NOTE = (
    "Files (shipping labels, customs documents, photos) are named by their key in the merchant's file store; "
    "the merchant provides copies on request."
)

#: Return fields that are bookkeeping, not data about the customer.
_RETURN_INTERNAL = frozenset(
    {"feedback_task_token", "indexed", "version", "new_timeline", "customer_email_key", "merchant_id"}
)
_ORDER_INTERNAL = frozenset({"version", "merchant_id"})


def jsonable(value: Any) -> Any:
    """A value as JSON data: dataclasses as objects, Decimal as a string, datetimes in ISO 8601 UTC, enums by
    value."""
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {f.name: jsonable(getattr(value, f.name)) for f in dataclasses.fields(value)}
    if isinstance(value, Decimal):
        return str(value)
    if isinstance(value, datetime):
        return iso(value)
    if isinstance(value, Enum):
        return jsonable(value.value)
    if isinstance(value, dict):
        return {str(k): jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple | set | frozenset):
        return [jsonable(v) for v in value]
    return value


def _fields(obj: Any, leave_out: frozenset[str]) -> dict[str, Any]:
    return {f.name: jsonable(getattr(obj, f.name)) for f in dataclasses.fields(obj) if f.name not in leave_out}


def order_section(order: Order) -> dict[str, Any]:
    """The order as stored: email, shipping address, items (with prices and deliveries), dates, amounts refunded."""
    return _fields(order, _ORDER_INTERNAL)


def return_section(
    ret: Return,
    timeline: Iterable[TimelineEntry],
    refunds: Iterable[dict[str, Any]],
) -> dict[str, Any]:
    out = _fields(ret, _RETURN_INTERNAL)
    out["timeline"] = [jsonable(e.to_dict()) for e in sorted(timeline, key=lambda e: e.at)]
    out["refunds"] = [jsonable(r) for r in refunds]
    return out


def file_keys(returns: Iterable[dict[str, Any]]) -> list[str]:
    """Every file key the returns name (labels, customs declarations, customer, item and parcel photos)."""
    keys: list[str] = []
    for ret in returns:
        keys += [k for k in (ret.get("label_key"), (ret.get("customs") or {}).get("declaration_key")) if k]
        keys += list(ret.get("parcel_photos") or [])
        for item in ret.get("items") or []:
            keys += list(item.get("customer_photos") or []) + list(item.get("photos") or [])
    return list(dict.fromkeys(keys))


def document(
    *,
    merchant_id: str,
    merchant_name: str | None,
    generated_at: datetime,
    orders: list[dict[str, Any]],
    returns: list[dict[str, Any]],
    withdrawals: list[dict[str, Any]],
    notifications: list[dict[str, Any]],
) -> dict[str, Any]:
    """The whole document; `customer` sums up the identities the orders and withdrawals hold."""
    emails = [o["email"] for o in orders if o.get("email")]
    addresses = [o["shipping_address"] for o in orders if o.get("shipping_address")]
    names = [a.get("name") for a in addresses if a.get("name")] + [w["name"] for w in withdrawals if w.get("name")]
    return {
        "schema_version": SCHEMA_VERSION,
        "kind": KIND,
        "generated_at": iso(generated_at),
        "merchant": {"id": merchant_id, "name": merchant_name},
        "customer": {
            "emails": list(dict.fromkeys(emails)),
            "names": list(dict.fromkeys(names)),
            "addresses": [dict(a) for a in {json.dumps(a, sort_keys=True): a for a in addresses}.values()],
        },
        "orders": orders,
        "returns": returns,
        "withdrawals": withdrawals,
        "notifications": notifications,
        "files": {"note": FILES_NOTE, "keys": file_keys(returns)},
    }


def encode(doc: dict[str, Any]) -> bytes:
    """The file's bytes: UTF-8 JSON, non-ASCII kept as is, keys in a stable order."""
    return json.dumps(doc, ensure_ascii=False, indent=2, sort_keys=True).encode("utf-8")
