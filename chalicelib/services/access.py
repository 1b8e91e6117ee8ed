"""A customer's access export (GDPR Art. 15): gathers what one merchant holds about one customer for the export
worker (chalicelib/services/exports.py, kind `customer`); chalicelib/domain/access.py shapes the document.

The customer is named by their email as an index key (return_index.email_key: the address hashed; the export record
never holds the address). Everything is found through keys that start with the merchant's id, so another merchant's
customer with the same address is never read. Nothing scans:
- orders: the customer -> orders links (written at every order upsert, services/orders.py), plus the orders of the
  customer's returns; an order counts only if its own email is the customer's (a link outlives an address change);
- returns: the list index's `email=` facet, plus the `order=` facet of each of those orders (returns indexed before
  the email facet existed); each return with its timeline (one Query of its partition), refunds and the customer
  emails recorded as sent for it;
- withdrawals: each order's partition (the declarations and their acknowledgements).
"""

from __future__ import annotations

from typing import Any

from chalicelib.bootstrap import Container
from chalicelib.domain import access
from chalicelib.domain.errors import NotFound
from chalicelib.domain.return_index import email_key
from chalicelib.domain.returns import Return

PAGE_SIZE = 1000  # index items per Query
BATCH_SIZE = 100  # returns per BatchGetItem


def _return_ids(c: Container, merchant_id: str, facet: str) -> list[str]:
    ids: list[str] = []
    cursor: dict[str, Any] | None = None
    while True:
        page, cursor = c.store.query_index(
            merchant_id, facet, created_from=None, created_to=None, cursor=cursor, limit=PAGE_SIZE
        )
        ids += [rid for rid, _since in page]
        if not cursor:
            return ids


def _returns(c: Container, merchant_id: str, ids: list[str]) -> list[Return]:
    out: list[Return] = []
    for start in range(0, len(ids), BATCH_SIZE):
        out += [r for r in c.store.get_returns(ids[start : start + BATCH_SIZE]) if r.merchant_id == merchant_id]
    return out


def _refund(rec: Any) -> dict[str, Any]:
    return {
        "refund_id": rec.refund_id,
        "amount": rec.amount,
        "currency": rec.currency,
        "status": rec.status,
        "reason": rec.reason,
        "target": rec.target,
        "created_at": rec.created_at,
        "updated_at": rec.updated_at,
        "items": rec.items,
        "kind": (rec.details or {}).get("kind"),
    }


def collect(c: Container, merchant_id: str, subject: str) -> dict[str, Any]:
    """The document for the customer whose email key is `subject`, at the merchant."""
    # returns by the customer's email, then their orders (linked, or named by those returns)
    by_email = _returns(c, merchant_id, _return_ids(c, merchant_id, f"email={subject}"))
    numbers = c.store.customer_order_numbers(merchant_id, subject) + [r.order_number for r in by_email]
    orders = [o for o in c.store.get_orders(merchant_id, list(dict.fromkeys(numbers))) if email_key(o.email) == subject]
    # returns of those orders that the email facet does not list (indexed before it existed)
    known = {r.id for r in by_email}
    more: list[str] = []
    for order in orders:
        more += [rid for rid in _return_ids(c, merchant_id, f"order={order.order_number}") if rid not in known]
    customers_orders = {o.order_number for o in orders}
    returns = by_email + [
        r
        for r in _returns(c, merchant_id, list(dict.fromkeys(more)))
        if r.order_number in customers_orders and r.customer_email_key in (None, subject)
    ]
    returns.sort(key=lambda r: (r.created_at, r.id))

    return_sections = []
    notifications: list[dict[str, Any]] = []
    for ret in returns:
        full, timeline = c.store.get_return_with_timeline(ret.id)
        refunds = [_refund(rec) for rec in c.store.list_refunds(ret.id)]
        return_sections.append(access.return_section(full, timeline, refunds))
        notifications += [{"return_id": ret.id, **n} for n in c.store.notifications_sent(ret.id)]
    withdrawals: list[dict[str, Any]] = []
    for order in sorted(orders, key=lambda o: o.order_number):
        withdrawals += c.store.order_withdrawals(merchant_id, order.order_number)
    try:
        merchant_name: str | None = c.store.get_merchant(merchant_id).name
    except NotFound:
        merchant_name = None
    return access.document(
        merchant_id=merchant_id,
        merchant_name=merchant_name,
        generated_at=c.now(),
        orders=[access.order_section(o) for o in sorted(orders, key=lambda o: (o.ordered_at, o.order_number))],
        returns=return_sections,
        withdrawals=withdrawals,
        notifications=notifications,
    )
