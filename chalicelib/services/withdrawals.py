"""The EU online withdrawal function: declare, store with its time of receipt, acknowledge on a durable medium.

The acknowledgement is the legally required receipt: it is recorded as owed in the declaration's own transaction (in
the sweeper's index) and as sent once it was. One that could not be sent while the consumer waited (or whose process
died before sending) is sent by the sweeper (`redrive_acknowledgement`): at least once, twice only if a process dies
between sending it and recording that it was sent.
"""

from __future__ import annotations

from typing import Any

from chalicelib.bootstrap import Container
from chalicelib.domain.errors import ConcurrentModification, ValidationFailed
from chalicelib.domain.identifiers import new_id
from chalicelib.domain.notifications import language
from chalicelib.domain.returns import iso
from chalicelib.domain.withdrawals import Withdrawal
from chalicelib.observability import logger
from chalicelib.services import auth


def declare_withdrawal(
    c: Container,
    *,
    slug: str,
    order_number: str,
    email: str,
    name: str,
    items: list[dict[str, Any]] | None,
    client_ip: str,
) -> dict[str, Any]:
    """The consumer identifies the order as for a portal session (same rate limits; a wrong pair says nothing about
    which half was wrong). The declaration is stored with its time of receipt, the order points to it until a
    return follows, and the acknowledgement email names the order and the date and time received."""
    merchant, order = auth.verify_customer(c, slug, order_number, email, client_ip)
    merchant_id = merchant.id
    if items:
        errors = [
            {"loc": ["items", idx, "line_item_id"], "msg": f"'{it['line_item_id']}' is not a line of this order"}
            for idx, it in enumerate(items)
            if order.item(it["line_item_id"]) is None
        ]
        if errors:
            raise ValidationFailed("some items are not in this order", errors)
    for _attempt in range(3):
        now = c.now()
        withdrawal = Withdrawal(
            id=new_id("wd"),
            merchant_id=merchant_id,
            order_number=order.order_number,
            name=name,
            items=items or None,
            received_at=now,
        )
        order.open_withdrawal_id = withdrawal.id
        try:
            c.store.create_withdrawal(withdrawal, order, now)
        except ConcurrentModification:
            fresh = c.store.get_order(merchant_id, order.order_number)
            assert fresh is not None
            order = fresh
            continue
        break
    else:
        raise ConcurrentModification("the order changed concurrently; retry")
    logger.info("withdrawal declared", withdrawal_id=withdrawal.id, merchant_id=merchant_id)
    acknowledged = _acknowledge(
        c,
        withdrawal,
        to=order.email,
        lang=language(order.locale, merchant.locale),
        merchant_name=merchant.name,
        item_names=_names(order, items),
    )
    if acknowledged:
        c.store.acknowledgement_done(merchant_id, withdrawal.order_number, withdrawal.id, at=c.now(), sent=True)
    return {
        "id": withdrawal.id,
        "order_number": withdrawal.order_number,
        "received_at": iso(withdrawal.received_at),
        "acknowledgement": "sent" if acknowledged else "pending",
    }


def _names(order: Any, items: list[dict[str, Any]] | None) -> list[str] | None:
    if not items:
        return None
    out = []
    for it in items:
        line = order.item(it["line_item_id"])
        qty = it.get("quantity") or line.quantity
        out.append(f"{qty} x {line.name or line.sku}")
    return out


def _acknowledge(
    c: Container, w: Withdrawal, *, to: str, lang: str, merchant_name: str, item_names: list[str] | None
) -> bool:
    from chalicelib.services.notifications import send_withdrawal_acknowledgement

    try:
        send_withdrawal_acknowledgement(
            c,
            to=to,
            lang=lang,
            merchant_name=merchant_name,
            order_number=w.order_number,
            received_at=w.received_at,
            items=item_names,
        )
    except Exception:
        # The declaration is stored (it counts from its receipt); the email is what failed. Logged for the operator.
        logger.exception("withdrawal acknowledgement not sent", withdrawal_id=w.id)
        return False
    return True


def redrive_acknowledgement(c: Container, due: Any) -> str:
    """The sweeper's part (chalicelib/services/sweeper.py): send an acknowledgement still owed past its due time.
    Claimed first (its due time moves on), so a second sweeper sends nothing; after MAX_REDRIVES failed sends it is
    given up (logged as an error for the operator)."""
    from chalicelib.adapters.dynamodb.due import claim
    from chalicelib.domain import sweeping

    ack = c.store.acknowledgement_at(due)
    if ack is None or ack.get("due") is None:
        return "done"
    merchant_id, order_number, withdrawal_id = ack["merchant_id"], ack["order_number"], ack["withdrawal_id"]
    now = c.now()
    if sweeping.exhausted("acknowledgement", due.redrives):
        c.store.acknowledgement_done(merchant_id, order_number, withdrawal_id, at=now, sent=False)
        logger.error("withdrawal acknowledgement given up", withdrawal_id=withdrawal_id, redrives=due.redrives)
        return "given up"
    if not claim(due, now + sweeping.backoff("acknowledgement", due.redrives)):
        return "moved on"
    withdrawal = c.store.get_withdrawal(merchant_id, order_number, withdrawal_id)
    order = c.store.get_order(merchant_id, order_number)
    merchant = c.store.get_merchant(merchant_id)
    if order is None or not order.email:
        c.store.acknowledgement_done(merchant_id, order_number, withdrawal_id, at=now, sent=False)
        logger.error("withdrawal acknowledgement without an address", withdrawal_id=withdrawal_id)
        return "given up"
    sent = _acknowledge(
        c,
        withdrawal,
        to=order.email,
        lang=language(order.locale, merchant.locale),
        merchant_name=merchant.name,
        item_names=_names(order, withdrawal.items),
    )
    if not sent:
        return "not sent"
    c.store.acknowledgement_done(merchant_id, order_number, withdrawal_id, at=c.now(), sent=True)
    return "sent"
