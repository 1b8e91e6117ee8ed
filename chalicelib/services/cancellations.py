"""Returns that end before the parcel moves: cancelled by the customer or customer service, or expired because the
label was not used within the merchant's label validity. Either way the label is voided and the order's quantities
come back, in the same transaction as the status change."""

from __future__ import annotations

from datetime import UTC, timedelta

from chalicelib.adapters.carriers.base import CarrierError
from chalicelib.bootstrap import Container
from chalicelib.domain.errors import ConcurrentModification, NotFound, Unavailable
from chalicelib.domain.methods import PREPRINTED
from chalicelib.domain.returns import Return, ReturnStatus
from chalicelib.observability import logger
from chalicelib.services.common import check_tenant, commit

#: How many past days of expiry markers a sweep looks at (the sweep runs hourly; this covers a long outage).
SWEEP_DAYS = 14


def _void_label(c: Container, ret: Return) -> None:
    """Void an unused label at its carrier, before anything is written: a carrier that refuses (the parcel is
    already moving) leaves the return as it was. A pre-printed label is the merchant's, not ours to void."""
    if ret.carrier in (None, PREPRINTED) or ret.tracking_number is None:
        return
    try:
        c.carrier(ret.carrier).cancel_label(
            ret.tracking_number, ret.warehouse_id, carrier_reference=ret.carrier_reference
        )
    except CarrierError as exc:
        raise Unavailable(f"the carrier could not void the label: {exc.detail}") from None


def _release(c: Container, ret: Return) -> None:
    """The return gives back what it reserved on the order, in the same transaction as its status change."""
    order = c.store.get_order(ret.merchant_id, ret.order_number)
    if order is not None:
        for item in ret.items:
            order.release(item.line_item_id, item.quantity)
        if ret.carrier == PREPRINTED and ret.tracking_number in order.used_return_tracking_numbers:
            order.used_return_tracking_numbers.remove(ret.tracking_number)
    commit(c, ret, order=order, now=ret.updated_at)  # ConcurrentModification: the caller reads again
    _forget_expiry(c, ret)


def _forget_expiry(c: Container, ret: Return) -> None:
    if ret.label_expires_at is not None:
        c.store.delete_expiry_marker(ret.label_expires_at.astimezone(UTC).date().isoformat(), ret.id)


def cancel_return(
    c: Container,
    return_id: str,
    *,
    merchant_id: str,
    order_number: str | None = None,
    actor: str,
    reason: str | None = None,
) -> Return:
    """Cancel before the parcel is in transit (409 afterwards); the label is voided."""
    for _attempt in range(5):
        ret = c.store.get_return(return_id)
        check_tenant(ret, merchant_id=merchant_id)
        if order_number is not None and ret.order_number != order_number:
            raise NotFound(f"return '{return_id}' not found")
        ret.cancel(actor=actor, at=c.now(), reason=reason)  # raises InvalidTransition (409) once it moves
        _void_label(c, ret)
        try:
            _release(c, ret)
        except ConcurrentModification:
            continue
        logger.info("return cancelled", return_id=ret.id, merchant_id=ret.merchant_id)
        return ret
    raise ConcurrentModification(f"return {return_id} kept changing")


def expire_labels(c: Container) -> int:
    """Expire returns whose label was not used in time (scheduled). Reads only the due days' expiry markers."""
    now = c.now()
    expired = 0
    for back in range(SWEEP_DAYS, -1, -1):
        day = (now - timedelta(days=back)).astimezone(UTC).date().isoformat()
        for return_id, due in c.store.expiry_candidates(day):
            if due > now:
                continue
            try:
                if _expire_one(c, return_id):
                    expired += 1
            except Exception:
                logger.exception("expiring a return failed; the next sweep retries", return_id=return_id)
                continue
    if expired:
        logger.info("labels expired", count=expired)
    return expired


def _expire_one(c: Container, return_id: str) -> bool:
    for _attempt in range(5):
        try:
            ret = c.store.get_return(return_id)
        except NotFound:
            return False
        if ret.status != ReturnStatus.LABEL_CREATED:
            _forget_expiry(c, ret)  # moved on (shipped, cancelled): the marker has done its job
            return False
        if not ret.expire(actor="system:label_expiry", at=c.now()):
            return False
        try:
            _void_label(c, ret)
        except Unavailable:
            logger.warning("label could not be voided; expiring anyway", return_id=ret.id)
        try:
            _release(c, ret)
        except ConcurrentModification:
            continue
        return True
    return False
