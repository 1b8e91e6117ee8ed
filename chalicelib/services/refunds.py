"""Refunds: one click (or automatic), exactly once, run by the refund state machine."""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import UTC
from decimal import Decimal
from typing import Any

from chalicelib.adapters.dynamodb.keys import Marker, return_pk
from chalicelib.bootstrap import Container
from chalicelib.domain.errors import AlreadyApplied, ConcurrentModification, Conflict, ValidationFailed
from chalicelib.domain.identifiers import new_id
from chalicelib.domain.money import Money, quantize
from chalicelib.domain.returns import ReturnStatus
from chalicelib.domain.signatures import boomerang_signature
from chalicelib.observability import logger
from chalicelib.services.common import check_tenant, commit
from chalicelib.services.tenants import WEBHOOK_SECRET


class RefundTargetError(Exception):
    """The refund target did not confirm (non-2xx, timeout): the state machine retries by this class name."""


@dataclass(frozen=True)
class RefundResult:
    refund_id: str
    status: str
    created: bool


def issue_refund(
    c: Container,
    *,
    merchant_id: str,
    return_id: str,
    amount: Decimal | None,
    reason: str | None,
    idempotency_key: str | None,
    actor: str,
) -> RefundResult:
    key = idempotency_key or new_id("idem")
    marker_sk = f"IDEM#{key}"
    for _attempt in range(5):
        previous = c.store.get_marker(return_pk(return_id), marker_sk)
        if previous:
            ret = c.store.get_return(return_id)
            check_tenant(ret, merchant_id=merchant_id)
            rec = c.store.get_refund(return_id, previous["refund_id"])
            if rec.status == "pending":
                _start(c, rec.refund_id, return_id)  # idempotent by execution name
            return RefundResult(rec.refund_id, rec.status, False)
        ret = c.store.get_return(return_id)
        check_tenant(ret, merchant_id=merchant_id)
        pending = c.store.pending_refund_total(return_id)
        refundable = ret.refundable_amount(pending=pending)
        if ret.status in (ReturnStatus.COMPLETED, ReturnStatus.REFUNDED) and refundable == 0:
            raise Conflict("nothing is left to refund on this return")
        if amount is not None:
            value = quantize(amount, ret.currency)
            if value <= 0:
                raise ValidationFailed.at(["amount"], "must be greater than zero")
            if value > refundable:
                raise ValidationFailed.at(
                    ["amount"],
                    f"at most {Money(refundable, ret.currency).to_dict()['amount']} "
                    f"{ret.currency} can still be refunded",
                )
        else:
            value = refundable
        refund_id = new_id("rf")
        now = c.now()
        ret.request_refund(refund_id=refund_id, amount=value, reason=reason, actor=actor, at=now)
        merchant = c.store.get_merchant(merchant_id)
        rec = c.store.refund_record(
            ret,
            refund_id=refund_id,
            amount=value,
            reason=reason,
            target=merchant.refunds.target,
            now=now,
            items=[
                {
                    "line_item_id": i.line_item_id,
                    "sku": i.sku,
                    "quantity": i.refundable_quantity(),
                    "grade": i.grade.value if i.grade else None,
                }
                for i in ret.items
                if i.refundable_quantity()
            ],
        )
        try:
            commit(
                c,
                ret,
                markers=(Marker(pk=return_pk(return_id), sk=marker_sk, data={"refund_id": refund_id}),),
                extra=(rec,),
            )
        except (AlreadyApplied, ConcurrentModification):
            continue
        _start(c, refund_id, return_id)
        logger.info("refund requested", return_id=return_id, refund_id=refund_id)
        return RefundResult(refund_id, "pending", True)
    raise ConcurrentModification("the return changed concurrently; retry")


def _start(c: Container, refund_id: str, return_id: str) -> None:
    c.workflows.start_refund(refund_id, {"return_id": return_id, "refund_id": refund_id})


def auto_refund(c: Container, return_id: str) -> dict[str, Any]:
    """After processing: refund automatically when the merchant's policy covers every accepted item's grade."""
    ret = c.store.get_return(return_id)
    if ret.status != ReturnStatus.COMPLETED:
        return {"refund_id": None, "reason": f"status {ret.status.value}"}
    merchant = c.store.get_merchant(ret.merchant_id)
    grades = {i.grade.value for i in ret.items if i.grade and i.refundable_quantity()}
    if not grades or not merchant.refunds.covers(grades):
        return {"refund_id": None, "reason": "waiting for the merchant"}
    result = issue_refund(
        c,
        merchant_id=ret.merchant_id,
        return_id=return_id,
        amount=None,
        reason="automatic",
        idempotency_key=f"auto-{return_id}",
        actor="system:auto_refund",
    )
    return {"refund_id": result.refund_id}


def send_refund(c: Container, return_id: str, refund_id: str) -> dict[str, Any]:
    """Deliver a pending refund to the merchant's target. Never sends again once it succeeded."""
    rec = c.store.get_refund(return_id, refund_id)
    if rec.status != "pending":
        return {"refund_id": refund_id, "status": rec.status}
    attempt = c.store.refund_attempt(return_id, refund_id, c.now())
    if rec.target == "webhook":
        ret = c.store.get_return(return_id)
        merchant = c.store.get_merchant(ret.merchant_id)
        secret = c.secrets.get(ret.merchant_id, WEBHOOK_SECRET)
        if not merchant.refunds.webhook_url or not secret:
            raise RefundTargetError("refund webhook is not configured")
        body = json.dumps(
            {
                "refund_id": refund_id,
                "return_id": return_id,
                "order_number": ret.order_number,
                "amount": Money(Decimal(rec.amount), rec.currency).to_dict(),
                "items": rec.items or [],
            },
            separators=(",", ":"),
        ).encode()
        try:
            resp = c.http.post(
                merchant.refunds.webhook_url,
                data=body,
                timeout=10,
                headers={
                    "Content-Type": "application/json",
                    "X-Boomerang-Signature": boomerang_signature(secret, body),
                    "Idempotency-Key": refund_id,
                    "User-Agent": "Boomerang-Refunds/1",
                },
            )
        except Exception as exc:  # timeouts, connection errors
            raise RefundTargetError(f"attempt {attempt.attempts}: {type(exc).__name__}") from None
        if not 200 <= resp.status_code < 300:
            raise RefundTargetError(f"attempt {attempt.attempts}: HTTP {resp.status_code}")
    elif rec.target not in ("manual", "webhook"):
        raise RefundTargetError(f"refund target '{rec.target}' is not available yet")
    return record_refund_result(c, return_id, refund_id, succeeded=True, error=None)


def record_refund_result(
    c: Container, return_id: str, refund_id: str, *, succeeded: bool, error: str | None
) -> dict[str, Any]:
    status = "succeeded" if succeeded else "failed"
    for _attempt in range(5):
        rec = c.store.get_refund(return_id, refund_id)
        if rec.status != "pending":
            return {"refund_id": refund_id, "status": rec.status}
        ret = c.store.get_return(return_id)
        now = c.now()
        amount = Decimal(rec.amount)
        if succeeded:
            ret.refund_succeeded(refund_id=refund_id, amount=amount, actor="system:refunds", at=now)
        else:
            ret.refund_failed(
                refund_id=refund_id, amount=amount, error=error or "failed", actor="system:refunds", at=now
            )
        rec.status = status
        rec.error = error
        rec.updated_at = now.astimezone(UTC).isoformat(timespec="microseconds").replace("+00:00", "Z")
        try:
            commit(
                c,
                ret,
                markers=(Marker(pk=return_pk(return_id), sk=f"REFUNDDONE#{refund_id}", data={"status": status}),),
                extra=(rec,),
            )
        except AlreadyApplied:
            continue
        except ConcurrentModification:
            continue
        if not succeeded:
            _tell_merchant(c, ret.merchant_id, return_id, refund_id, error)
        return {"refund_id": refund_id, "status": status}
    raise ConcurrentModification(f"return {return_id} kept changing")


def _tell_merchant(c: Container, merchant_id: str, return_id: str, refund_id: str, error: str | None) -> None:
    merchant = c.store.get_merchant(merchant_id)
    if not merchant.contact_email:
        return
    c.mailer.send(
        merchant.contact_email,
        f"Refund {refund_id} failed",
        f"The refund {refund_id} for return {return_id} could not be delivered to your refund target.\n"
        f"Last error: {error}\nOpen the return and click refund again to retry.\n",
    )


def list_refunds(c: Container, merchant_id: str, return_id: str) -> list[dict[str, Any]]:
    ret = c.store.get_return(return_id)
    check_tenant(ret, merchant_id=merchant_id)
    return [
        {
            "id": r.refund_id,
            "status": r.status,
            "amount": Money(Decimal(r.amount), r.currency).to_dict(),
            "reason": r.reason,
            "target": r.target,
            "attempts": r.attempts,
            "error": r.error,
            "created_at": r.created_at,
            "updated_at": r.updated_at,
        }
        for r in c.store.list_refunds(return_id)
    ]
