"""Customer notifications: one email per milestone of a return, in the customer's language, sent at most once.

Fed by the notifier (functions/notifier) with the domain events the bus routes to the notification queue
(infrastructure/definitions.CUSTOMER_NOTIFICATIONS). Delivery is at least once, so each email is guarded by a marker
(`NOTIFY#<return_id>`, event type): claimed before sending, released again when sending fails, so the queue's retry
sends it then. A crash between the claim and the send loses that one email rather than risking two.

Logs name return ids and event types only: never an email address (no personal data in logs).
"""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING, Any

from chalicelib.domain.errors import NotFound
from chalicelib.domain.notifications import RETURN_KINDS, WITHDRAWAL_RECEIVED, language, render
from chalicelib.domain.returns import Return, ReturnStatus
from chalicelib.observability import logger

if TYPE_CHECKING:
    from chalicelib.adapters.mail import Attachment
    from chalicelib.bootstrap import Container

#: How long a sent-marker is kept: longer than any redelivery or replay (the bus archive keeps 30 days).
MARKER_TTL_SECONDS = 180 * 24 * 3600
PDF = "application/pdf"
#: Sending the label of a return that ended before the email went out would only confuse.
_LABEL_OUTDATED = frozenset({ReturnStatus.CANCELLED, ReturnStatus.EXPIRED})


def notify(c: Container, event_type: str, detail: dict[str, Any]) -> str:
    """Email the customer about one domain event. Returns what happened: `sent`, `duplicate` or `skipped:<why>`.

    Raises when the email could not be sent (the marker is released first), so the message is retried.
    """
    if event_type not in RETURN_KINDS:
        return "skipped:not a customer notification"
    return_id = detail.get("return_id")
    if not isinstance(return_id, str) or not return_id:
        raise ValueError(f"{event_type} event without a return_id")  # malformed: let it go to the DLQ
    try:
        ret = c.store.get_return(return_id)
    except NotFound:
        return _skipped("return not found", return_id, event_type)
    if not ret.notify_customer:
        return _skipped("customer notifications off", return_id, event_type)
    if event_type == "return.label_created" and ret.status in _LABEL_OUTDATED:
        return _skipped(f"return already {ret.status.value}", return_id, event_type)
    order = c.store.get_order(ret.merchant_id, ret.order_number)
    if order is None:
        return _skipped("order not found", return_id, event_type)
    if not order.email:
        return _skipped("no email address", return_id, event_type)
    try:
        merchant = c.store.get_merchant(ret.merchant_id)
    except NotFound:
        return _skipped("merchant not found", return_id, event_type)

    lang = language(order.locale, merchant.locale)
    attachments = _attachments(c, ret) if event_type == "return.label_created" else []
    ctx = _context(c, ret, event_type, detail, merchant_name=merchant.name, attachments=attachments)
    message = render(event_type, lang, ctx)
    if message is None:
        return _skipped("no template", return_id, event_type)

    pk, sk = f"NOTIFY#{return_id}", _marker_sort_key(event_type, detail)
    if not c.store.claim_marker(pk, sk, {"event_type": event_type, "at": detail.get("at")}, MARKER_TTL_SECONDS):
        logger.info("customer notification already sent", return_id=return_id, event_type=event_type)
        return "duplicate"
    try:
        c.mailer.send(order.email, message.subject, message.text, attachments=attachments)
    except Exception:
        c.store.release_marker(pk, sk)
        logger.exception("customer notification failed; will be retried", return_id=return_id, event_type=event_type)
        raise
    logger.info(
        "customer notified", return_id=return_id, event_type=event_type, lang=lang, attachments=len(attachments)
    )
    return "sent"


def send_withdrawal_acknowledgement(
    c: Container,
    *,
    to: str,
    lang: str,
    merchant_name: str,
    order_number: str,
    received_at: datetime,
    items: list[str] | None,
) -> None:
    """The acknowledgement of an EU withdrawal declaration (order number, date and time received, what it covers).

    Synchronous, for the withdrawal service; a failure raises to the caller, which decides about retrying.
    """
    message = render(
        WITHDRAWAL_RECEIVED,
        lang,
        {"merchant_name": merchant_name, "order_number": order_number, "received_at": received_at, "items": items},
    )
    assert message is not None  # every language has this kind (tests/unit/test_notifications.py)
    c.mailer.send(to, message.subject, message.text)
    logger.info("withdrawal acknowledged", lang=lang, items=len(items or []))


# ----- helpers -----------------------------------------------------------------------------------------------------
def _skipped(why: str, return_id: str, event_type: str) -> str:
    logger.info("customer notification skipped", return_id=return_id, event_type=event_type, reason=why)
    return f"skipped:{why}"


def _marker_sort_key(event_type: str, detail: dict[str, Any]) -> str:
    """One email per milestone; carrier exceptions once per kind of exception the carrier reports."""
    if event_type == "carrier.exception":
        return f"{event_type}#{detail.get('carrier_status') or 'unknown'}"
    return event_type


def _attachments(c: Container, ret: Return) -> list[Attachment]:
    """The label and, for a parcel that crosses a customs border, the CN23 declaration (read from the files bucket)."""
    from chalicelib.adapters.mail import Attachment

    out = []
    if ret.label_key:
        out.append(Attachment("label.pdf", c.files.get(ret.label_key), PDF))
    declaration_key = (ret.customs or {}).get("declaration_key")
    if declaration_key:
        out.append(Attachment("cn23.pdf", c.files.get(str(declaration_key)), PDF))
    return out


def _context(
    c: Container,
    ret: Return,
    event_type: str,
    detail: dict[str, Any],
    *,
    merchant_name: str,
    attachments: list[Attachment],
) -> dict[str, Any]:
    base_url = c.settings.public_base_url.rstrip("/")
    ctx: dict[str, Any] = {
        "merchant_name": merchant_name,
        "order_number": ret.order_number,
        "track_url": f"{base_url}/v1/track/{ret.tracking_token}",
    }
    if event_type == "return.label_created":
        method = ret.method or {}
        ctx.update(
            method_type=method.get("type") or "label",
            pickup_date=method.get("pickup_date") or detail.get("pickup_date"),
            attachments=bool(attachments),
            customs=any(a.filename == "cn23.pdf" for a in attachments),
            label_expires_at=ret.label_expires_at,
        )
    if event_type == "return.refunded":
        refund = ret.refund
        wanted = detail.get("refund_id")
        if refund is not None and (wanted is None or refund.id == wanted):
            ctx.update(amount=refund.amount, currency=refund.currency)
    return ctx
