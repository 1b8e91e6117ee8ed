"""Refunds: one click (or automatic), exactly once, run by the refund state machine."""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import Any

from chalicelib.adapters.dynamodb.keys import Marker, return_pk, stored_time
from chalicelib.bootstrap import Container
from chalicelib.domain import refunds as refund_domain
from chalicelib.domain.errors import AlreadyApplied, ConcurrentModification, Conflict
from chalicelib.domain.identifiers import new_id
from chalicelib.domain.money import Money
from chalicelib.domain.orders import Order
from chalicelib.domain.refunds import RefundAllocation
from chalicelib.domain.returns import Return, ReturnStatus
from chalicelib.domain.signatures import boomerang_signature
from chalicelib.domain.tenants import Merchant
from chalicelib.observability import logger
from chalicelib.services.common import check_tenant, commit
from chalicelib.services.tenants import WEBHOOK_SECRET


class RefundTargetError(Exception):
    """The refund target did not confirm. `transient`: worth another attempt (timeouts, 429, 5xx);
    `retry_after`: seconds the target asked us to wait."""

    def __init__(self, detail: str, *, transient: bool = True, retry_after: float | None = None) -> None:
        super().__init__(detail)
        self.transient = transient
        self.retry_after = retry_after


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
    """Start a refund of `amount` (default: all that is still refundable). The same `Idempotency-Key` answers the
    first result. The refund's share is held on the return and the order in the same transaction as the refund
    record, so two clicks with different keys can never refund the same money twice."""
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
        merchant, order, _ = c.store.load_for_return_creation(merchant_id, ret.order_number)
        settings = merchant.refunds
        the_plan = refund_domain.plan(ret, order, settings.policy)
        if ret.status in (ReturnStatus.COMPLETED, ReturnStatus.REFUNDED) and the_plan.refundable == 0:
            raise Conflict("nothing is left to refund on this return")
        value = refund_domain.choose_amount(the_plan, amount, ret.currency)
        allocation = refund_domain.allocate(the_plan, ret, value)
        store_credit = ret.refund_method == "store_credit" and settings.store_credit
        credit = (
            refund_domain.store_credit_value(value, settings.store_credit_bonus_percent, ret.currency)
            if store_credit
            else None
        )
        refund_id = new_id("rf")
        now = c.now()
        breakdown = the_plan.breakdown.to_dict()
        if amount is not None:
            breakdown["override"] = {"amount": str(value), "calculated": str(the_plan.refundable)}
        ret.request_refund(
            refund_id=refund_id,
            amount=value,
            allocation=allocation,
            breakdown=breakdown,
            reason=reason,
            actor=actor,
            at=now,
            credit=credit,
        )
        if order is not None:
            refund_domain.reserve(order, allocation)
        rec = c.store.refund_record(
            ret,
            refund_id=refund_id,
            amount=value,
            reason=reason,
            target=settings.target,
            now=now,
            items=_refund_items(ret, order, allocation),
            details={
                "allocation": allocation.to_dict(),
                "kind": "store_credit" if store_credit else "money",
                **(
                    {"credit": str(credit), "bonus_percent": str(settings.store_credit_bonus_percent)}
                    if credit is not None
                    else {}
                ),
                "breakdown": breakdown,
            },
        )
        try:
            commit(
                c,
                ret,
                markers=(Marker(pk=return_pk(return_id), sk=marker_sk, data={"refund_id": refund_id}),),
                extra=(rec,),
                order=order,
                now=now,
            )
        except (AlreadyApplied, ConcurrentModification):
            continue
        _start(c, refund_id, return_id)
        logger.info("refund requested", return_id=return_id, refund_id=refund_id)
        return RefundResult(refund_id, "pending", True)
    raise ConcurrentModification("the return changed concurrently; retry")


def _refund_items(ret: Return, order: Order | None, allocation: RefundAllocation) -> list[dict[str, Any]]:
    """The refund's lines as the webhook target and the refund history show them."""
    out = []
    for item in ret.items:
        share = allocation.lines.get(item.line_item_id)
        units = allocation.quantities.get(item.line_item_id, 0)
        if share is None and not units:
            continue
        line = order.item(item.line_item_id) if order else None
        out.append(
            {
                "line_item_id": item.line_item_id,
                "sku": item.sku,
                "quantity": units,
                "amount": str(share or Decimal(0)),
                "grade": item.grade.value if item.grade else None,
                "disposition": item.disposition.value if item.disposition else None,
                "external_id": (line.extra.get("external_id") if line else None) or None,
            }
        )
    return out


def _start(c: Container, refund_id: str, return_id: str) -> None:
    """Start the refund's workflow, named after the refund (a second start is harmless). The refund is committed
    already: when the start fails it stays pending in the sweeper's index, and the sweeper starts it once due
    (`redrive_refund`), so the click is answered 202 all the same."""
    try:
        c.workflows.start_refund(refund_id, {"return_id": return_id, "refund_id": refund_id})
    except Exception:
        logger.exception("refund workflow not started; the sweeper will start it", refund_id=refund_id)


def redrive_refund(c: Container, due: Any) -> str:
    """The sweeper's part (chalicelib/services/sweeper.py) for a refund still pending past its due time: its workflow
    is started (by the same name and input: nothing happens if it runs or ran), until the refund's deadline is long
    past; then no workflow will settle it any more and it is failed here (record_refund_result: a shop is asked
    first, the held share is released), so the merchant can click again."""
    from chalicelib.adapters.dynamodb.due import claim
    from chalicelib.domain import sweeping

    return_id = due.pk.removeprefix("RETURN#")
    refund_id = due.sk.removeprefix("REFUND#")
    rec = c.store.get_refund(return_id, refund_id)
    if rec.status != "pending":
        return "done"
    now = c.now()
    give_up_at = sweeping.refund_give_up_at(_parse_time(rec.created_at), c.settings.refund_deadline_seconds)
    if now >= give_up_at:
        outcome = record_refund_result(
            c, return_id, refund_id, succeeded=False, error="the refund workflow ended without an outcome"
        )
        logger.warning("refund failed by the sweeper", return_id=return_id, refund_id=refund_id)
        return str(outcome["status"])
    if not claim(due, min(now + sweeping.backoff("refund", due.redrives), give_up_at)):
        return "moved on"
    c.workflows.start_refund(refund_id, {"return_id": return_id, "refund_id": refund_id})
    logger.info("refund workflow started by the sweeper", return_id=return_id, refund_id=refund_id)
    return "started"


def auto_refund(c: Container, return_id: str) -> dict[str, Any]:
    """After processing: refund automatically when the merchant's policy covers every accepted item's grade."""
    ret = c.store.get_return(return_id)
    if ret.status != ReturnStatus.COMPLETED:
        return {"refund_id": None, "reason": f"status {ret.status.value}"}
    merchant = c.store.get_merchant(ret.merchant_id)
    grades = {i.grade.value for i in ret.items if i.grade and i.refundable_quantity()}
    if not grades or not merchant.refunds.covers(grades):
        return {"refund_id": None, "reason": "waiting for the merchant"}
    try:
        result = issue_refund(
            c,
            merchant_id=ret.merchant_id,
            return_id=return_id,
            amount=None,
            reason="automatic",
            idempotency_key=f"auto-{return_id}",
            actor="system:auto_refund",
        )
    except Conflict:  # deductions and fees took everything: nothing to send
        return {"refund_id": None, "reason": "nothing to refund"}
    return {"refund_id": result.refund_id}


def send_refund(c: Container, return_id: str, refund_id: str) -> dict[str, Any]:
    """One attempt to deliver a pending refund to the merchant's target. Never sends again once it succeeded.

    Answers the state machine with `status`: `succeeded` (or the refund's settled status), `retry` with
    `wait_seconds` (a transient failure; Retry-After honoured), or `give_up` with `error` (a final refusal, or the
    attempts or the deadline are used up) after which the state machine marks the refund failed."""
    rec = c.store.get_refund(return_id, refund_id)
    if rec.status != "pending":
        return {"refund_id": refund_id, "status": rec.status}
    attempt = c.store.refund_attempt(return_id, refund_id, c.now())
    attempts = int(attempt.attempts)
    policy = _retry_policy(c)
    elapsed = (c.now() - _parse_time(rec.created_at)).total_seconds()
    if attempts > policy.max_attempts or elapsed + policy.attempt_seconds > policy.deadline_seconds:
        # a task retried after its Lambda failed or timed out: no attempt beyond the contract's bounds
        return {"refund_id": refund_id, "status": "give_up", "error": rec.error or "no confirmation in time"}
    try:
        reference, ret = _deliver(c, attempt, first_attempt=attempts <= 1)
    except RefundTargetError as exc:
        elapsed = (c.now() - _parse_time(rec.created_at)).total_seconds()
        wait = policy.next_wait(attempts, elapsed, exc.retry_after) if exc.transient else None
        c.store.refund_attempt_failed(return_id, refund_id, f"attempt {attempts}: {exc}")
        logger.warning(
            "refund attempt failed",
            return_id=return_id,
            refund_id=refund_id,
            attempt=attempts,
            transient=exc.transient,
            retry_in=wait,
        )
        if wait is None:
            return {"refund_id": refund_id, "status": "give_up", "error": f"attempt {attempts}: {exc}"}
        return {"refund_id": refund_id, "status": "retry", "wait_seconds": wait, "error": str(exc)}
    # the refund record as the attempt left it and the return it was sent for: the settling write's first try needs
    # no second read (a concurrent change still cancels it, and the retry reads again)
    return record_refund_result(
        c, return_id, refund_id, succeeded=True, error=None, reference=reference, read=(attempt, ret)
    )


def _retry_policy(c: Container) -> refund_domain.RetryPolicy:
    st = c.settings
    return refund_domain.RetryPolicy(
        max_attempts=st.refund_max_attempts,
        deadline_seconds=st.refund_deadline_seconds,
        base_seconds=st.refund_retry_base_seconds,
        max_wait_seconds=st.refund_retry_max_wait_seconds,
        attempt_seconds=min(60, st.refund_deadline_seconds // 5),
    )


def _parse_time(raw: str) -> datetime:
    return datetime.fromisoformat(raw.replace("Z", "+00:00"))


def _deliver(c: Container, rec: Any, *, first_attempt: bool) -> tuple[dict[str, Any] | None, Return | None]:
    """Hand the refund to its target: (what the target calls it (shop refund or gift card id), if anything; the
    return as read for it, if it was). Raises RefundTargetError (transient or final)."""
    if rec.target == "manual":
        return None, None
    ret = c.store.get_return(rec.return_id)
    merchant = c.store.get_merchant(ret.merchant_id)
    if rec.target == "webhook":
        _deliver_webhook(c, rec, ret, merchant)
        return None, ret
    if rec.target == "shop":
        return _deliver_shop(c, rec, ret, merchant, first_attempt=first_attempt), ret
    raise RefundTargetError(f"unknown refund target '{rec.target}'", transient=False)


def _deliver_webhook(c: Container, rec: Any, ret: Return, merchant: Merchant) -> None:
    secret = c.secrets.get(ret.merchant_id, WEBHOOK_SECRET)
    if not merchant.refunds.webhook_url or not secret:
        raise RefundTargetError("refund webhook is not configured", transient=False)
    details = rec.details or {}
    body = json.dumps(
        {
            "refund_id": rec.refund_id,
            "return_id": ret.id,
            "order_number": ret.order_number,
            "amount": Money(Decimal(rec.amount), rec.currency).to_dict(),
            "items": rec.items or [],
            **(
                {"store_credit": Money(Decimal(details["credit"]), rec.currency).to_dict()}
                if details.get("kind") == "store_credit"
                else {}
            ),
        },
        separators=(",", ":"),
    ).encode()
    try:
        resp = c.http.post(
            merchant.refunds.webhook_url,
            data=body,
            timeout=10,
            allow_redirects=False,  # a 3xx is a failed delivery (SSRF); c.http follows none anyway
            headers={
                "Content-Type": "application/json",
                "X-Boomerang-Signature": boomerang_signature(secret, body),
                "Idempotency-Key": rec.refund_id,
                "User-Agent": "Boomerang-Refunds/1",
            },
        )
    except Exception as exc:  # timeouts, connection errors, a refused address: a fixed sentence, never their words
        from chalicelib.adapters.outbound import failure_text

        raise RefundTargetError(failure_text(exc)) from None
    if not 200 <= resp.status_code < 300:
        raise RefundTargetError(f"HTTP {resp.status_code}", retry_after=_retry_after(resp.headers.get("Retry-After")))


def _retry_after(raw: str | None) -> float | None:
    try:
        return max(0.0, float(raw)) if raw else None
    except ValueError:
        return None


_RESTOCK = {"restock": "restock", "refurbish": "refurbish"}


def _shop_request(rec: Any, ret: Return, order: Order | None, merchant: Merchant) -> Any:
    """What goes to the shop for this refund: a gift card (store credit) or a refund of the order's lines.
    Raises RefundTargetError (final) when the order cannot be found in the shop."""
    from chalicelib.adapters.shops.base import GiftCardRequest, ShopRefundLine, ShopRefundRequest

    details = rec.details or {}
    if details.get("kind") == "store_credit":
        return GiftCardRequest(
            refund_id=rec.refund_id,
            currency=rec.currency,
            amount=Decimal(details["credit"]),
            note=f"store credit for return {ret.id}",
            customer_email=order.email if order else None,
            order_external_id=order.external_id if order else None,
        )
    if order is None or not order.external_id:
        raise RefundTargetError(
            "the order has no shop order id: orders must come from the shop (webhook) or carry external_id",
            transient=False,
        )
    lines = []
    for item in rec.items or []:
        units = int(item.get("quantity") or 0)
        if units < 1:
            continue
        line = order.item(item["line_item_id"])
        external = (line.extra.get("external_id") if line else None) or item["line_item_id"]
        lines.append(
            ShopRefundLine(
                external_line_id=str(external),
                quantity=units,
                amount=Decimal(item.get("amount") or "0"),
                restock=_RESTOCK.get(item.get("disposition") or "", "no_restock"),
            )
        )
    return ShopRefundRequest(
        refund_id=rec.refund_id,
        order_external_id=order.external_id,
        currency=rec.currency,
        amount=Decimal(rec.amount),
        lines=tuple(lines),
        note=rec.reason,
        location_id=(merchant.shop or {}).get("location_id"),
        shipping_amount=RefundAllocation.from_dict(details.get("allocation")).shipping,
    )


def _find_in_shop(shop: Any, request: Any) -> dict[str, Any] | None:
    """The shop's reference of this refund (or gift card) if the shop already has it."""
    from chalicelib.adapters.shops.base import GiftCardRequest

    if isinstance(request, GiftCardRequest):
        card = shop.find_gift_card(request)
        return {"gift_card_id": card.shop_gift_card_id, "last_characters": card.last_characters} if card else None
    found = shop.find_refund(request)
    return {"shop_refund_id": found.shop_refund_id} if found else None


def _deliver_shop(c: Container, rec: Any, ret: Return, merchant: Merchant, *, first_attempt: bool) -> dict[str, Any]:
    """Refund (or issue the store-credit gift card) in the merchant's shop exactly once: the refund id is the
    shop's idempotency key and is written into the shop's note; after a first attempt whose answer may have
    been lost, the shop is asked for it before anything is sent again."""
    from chalicelib.adapters.shops.base import GiftCardRequest, ShopError

    shop = c.shop(merchant.id, merchant.shop)
    if shop is None:
        raise RefundTargetError("the shop is not connected (PUT /v1/settings/shop)", transient=False)
    order = c.store.get_order(ret.merchant_id, ret.order_number)
    request = _shop_request(rec, ret, order, merchant)
    try:
        found = None if first_attempt else _find_in_shop(shop, request)
        if isinstance(request, GiftCardRequest):
            if found is not None:
                return found
            card = shop.create_gift_card(request)
            return {"gift_card_id": card.shop_gift_card_id, "last_characters": card.last_characters}
        reference: dict[str, Any] = found or {"shop_refund_id": shop.refund(request).shop_refund_id}
    except ShopError as exc:
        raise RefundTargetError(exc.detail, transient=exc.transient, retry_after=exc.retry_after) from None
    if order is not None and hasattr(shop, "dispose_returned_items"):
        reference["dispositions"] = _record_dispositions(shop, ret, order, merchant)
    return reference


def _record_dispositions(shop: Any, ret: Return, order: Order, merchant: Merchant) -> str:
    """Where the merchant uses Shopify's own Returns, record the warehouse's verdict on them (A restocked, B
    processing required, C not restocked, units that never arrived missing). Best effort after the refund went
    through: a failure is logged and shown on the refund, never undoes or repeats the refund. Repeating it
    records nothing twice (the adapter counts what is already disposed)."""
    from chalicelib.adapters.shops.base import DispositionLine, ShopError
    from chalicelib.adapters.shops.shopify import GRADE_DISPOSITIONS, MISSING_DISPOSITION

    lines = []
    for item in ret.items:
        line = order.item(item.line_item_id)
        external = line.extra.get("external_id") if line else None
        if not external:
            continue
        received = item.received_quantity or 0
        if item.grade is not None and received > 0:
            lines.append(DispositionLine(str(external), received, GRADE_DISPOSITIONS[item.grade.value]))
        if item.quantity > received:
            lines.append(DispositionLine(str(external), item.quantity - received, MISSING_DISPOSITION))
    if not lines:
        return "nothing to record"
    try:
        result = shop.dispose_returned_items(order.external_id, lines, (merchant.shop or {}).get("location_id"))
    except ShopError as exc:
        logger.warning("recording dispositions in the shop failed", return_id=ret.id, transient=exc.transient)
        return f"not recorded: {exc.detail}"
    if not result.shopify_return_found:
        return "no Shopify return for this order"
    return f"{result.disposed} recorded, {result.skipped} already recorded"


@dataclass
class ShopAnswer:
    """Whether the shop holds a refund: its reference or None, whether the shop could be asked at all, and the
    return and merchant as read to ask it (for the caller's next step, so it need not read them again)."""

    found: dict[str, Any] | None
    asked: bool
    ret: Return | None = None
    merchant: Merchant | None = None


def _ask_shop(c: Container, rec: Any) -> ShopAnswer:
    """Does the shop hold this refund (or gift card)? Only a shop can be asked; for the other targets the answer is
    not found, asked."""
    if rec.target != "shop":
        return ShopAnswer(None, True)
    ret = merchant = None
    try:
        ret = c.store.get_return(rec.return_id)
        merchant = c.store.get_merchant(ret.merchant_id)
        shop = c.shop(merchant.id, merchant.shop)
        if shop is None:
            return ShopAnswer(None, False, ret, merchant)
        order = c.store.get_order(ret.merchant_id, ret.order_number)
        found = _find_in_shop(shop, _shop_request(rec, ret, order, merchant))
        if found is not None and order is not None and hasattr(shop, "dispose_returned_items"):
            found["dispositions"] = _record_dispositions(shop, ret, order, merchant)
        return ShopAnswer(found, True, ret, merchant)
    except Exception:  # any failure to ask means: we do not know
        logger.warning("asking the shop for a refund did not work", return_id=rec.return_id, refund_id=rec.refund_id)
        return ShopAnswer(None, False, ret, merchant)


def record_refund_result(
    c: Container,
    return_id: str,
    refund_id: str,
    *,
    succeeded: bool,
    error: str | None,
    reference: dict[str, Any] | None = None,
    read: tuple[Any, Return | None] | None = None,
) -> dict[str, Any]:
    """Settle a pending refund as succeeded or failed; answers `status` for the state machine. `read`: the refund
    record and the return as the caller just read them, used for the first try instead of reading again.

    Before a refund to a shop is failed, the shop is asked whether it took the refund after all (an answer lost
    on every attempt): then it succeeded. If the shop cannot be asked, the outcome is unknown: the refund is
    `failed` for the merchant (with `unconfirmed`), but its share stays held, so a new click cannot refund the
    same money twice, and the state machine asks again later (`reconcile_refund`); the answer is `unconfirmed`."""
    unconfirmed = False
    merchant = None
    if not succeeded:
        rec = c.store.get_refund(return_id, refund_id)
        if rec.status == "pending" and rec.target == "shop" and rec.attempts:
            answer = _ask_shop(c, rec)
            read, merchant = (rec, answer.ret), answer.merchant
            if answer.found is not None:
                succeeded, error, reference = True, None, answer.found
            elif not answer.asked:
                unconfirmed = True
                error = f"{error}; not confirmed by the shop, checking again"
    status = "succeeded" if succeeded else "failed"
    for _attempt in range(5):
        rec, known = read if read is not None and _attempt == 0 else (c.store.get_refund(return_id, refund_id), None)
        if rec.status != "pending":
            return {"refund_id": refund_id, "status": _outcome(rec)}
        ret = known or c.store.get_return(return_id)
        now = c.now()
        amount = Decimal(rec.amount)
        order = None
        if succeeded:
            ret.refund_succeeded(refund_id=refund_id, amount=amount, actor="system:refunds", at=now)
        else:
            allocation = RefundAllocation.from_dict((rec.details or {}).get("allocation"))
            ret.refund_failed(
                refund_id=refund_id,
                amount=amount,
                allocation=allocation,
                error=error or "failed",
                actor="system:refunds",
                at=now,
                release=not unconfirmed,
            )
            if not unconfirmed:
                order = c.store.get_order(ret.merchant_id, ret.order_number)
                if order is not None:
                    refund_domain.release(order, allocation)
        rec.status = status
        rec.error = error
        rec.details = {
            **(rec.details or {}),
            **({"shop_reference": reference} if reference else {}),
            **({"unconfirmed": True} if unconfirmed else {}),
        }
        rec.updated_at = stored_time(now)
        try:
            commit(
                c,
                ret,
                markers=(Marker(pk=return_pk(return_id), sk=f"REFUNDDONE#{refund_id}", data={"status": status}),),
                extra=(rec,),
                order=order,
                now=now,
            )
        except (AlreadyApplied, ConcurrentModification):
            continue
        if not succeeded:
            _tell_merchant(c, merchant or ret.merchant_id, return_id, refund_id, error, unconfirmed=unconfirmed)
        return {"refund_id": refund_id, "status": _outcome(rec)}
    raise ConcurrentModification(f"return {return_id} kept changing")


def _outcome(rec: Any) -> str:
    """The refund's status for the state machine: `unconfirmed` while a failed refund still waits to be settled."""
    if rec.status == "failed" and (rec.details or {}).get("unconfirmed"):
        return "unconfirmed"
    return str(rec.status)


def reconcile_refund(c: Container, return_id: str, refund_id: str) -> dict[str, Any]:
    """Ask the shop again about a refund whose outcome was unknown. Found: it succeeded after all (late). Not
    there: its share is released and the merchant may click again. Still no answer: `unconfirmed` again, until
    `refund_reconcile_max_checks` (then it stays held for the merchant to check in the shop: `gave_up`)."""
    rec = c.store.get_refund(return_id, refund_id)
    if _outcome(rec) != "unconfirmed":
        return {"refund_id": refund_id, "status": _outcome(rec)}
    checks = c.store.refund_check(return_id, refund_id)
    answer = _ask_shop(c, rec)
    found = answer.found
    if not answer.asked:
        if checks >= c.settings.refund_reconcile_max_checks:
            logger.warning("refund outcome still unknown; left for the merchant", return_id=return_id, checks=checks)
            return {"refund_id": refund_id, "status": "gave_up"}
        return {"refund_id": refund_id, "status": "unconfirmed"}
    for _attempt in range(5):
        rec = c.store.get_refund(return_id, refund_id)  # again: the check counter moved on since the first read
        if _outcome(rec) != "unconfirmed":
            return {"refund_id": refund_id, "status": _outcome(rec)}
        ret = (answer.ret if _attempt == 0 else None) or c.store.get_return(return_id)
        now = c.now()
        order = None
        allocation = RefundAllocation.from_dict((rec.details or {}).get("allocation"))
        if found is not None:
            ret.refund_succeeded(refund_id=refund_id, amount=Decimal(rec.amount), actor="system:refunds", at=now)
            rec.status, rec.error = "succeeded", None
        else:
            ret.refund_released(refund_id=refund_id, allocation=allocation, actor="system:refunds", at=now)
            order = c.store.get_order(ret.merchant_id, ret.order_number)
            if order is not None:
                refund_domain.release(order, allocation)
            rec.error = "the shop does not have this refund: nothing was refunded"
        details = {k: v for k, v in (rec.details or {}).items() if k != "unconfirmed"}
        rec.details = {**details, **({"shop_reference": found} if found else {})}
        rec.updated_at = stored_time(now)
        try:
            commit(
                c,
                ret,
                markers=(Marker(pk=return_pk(return_id), sk=f"REFUNDSETTLED#{refund_id}", data={}),),
                extra=(rec,),
                order=order,
                now=now,
            )
        except (AlreadyApplied, ConcurrentModification):
            continue
        if found is None:
            _tell_merchant(c, answer.merchant or ret.merchant_id, return_id, refund_id, rec.error)
        return {"refund_id": refund_id, "status": rec.status}
    raise ConcurrentModification(f"return {return_id} kept changing")


def _tell_merchant(
    c: Container,
    merchant: Merchant | str,
    return_id: str,
    refund_id: str,
    error: str | None,
    *,
    unconfirmed: bool = False,
) -> None:
    """Email the merchant's contact (`merchant`: as read already, or its id) that a refund failed."""
    if isinstance(merchant, str):
        merchant = c.store.get_merchant(merchant)
    if not merchant.contact_email:
        return
    if unconfirmed:
        next_step = (
            "Your shop could not tell us whether it took the refund. We keep asking it; until then this refund's\n"
            "amount stays reserved so that it cannot be paid twice. You will hear from us when it is settled.\n"
        )
    else:
        next_step = "Open the return and click refund again to retry.\n"
    c.mailer.send(
        merchant.contact_email,
        f"Refund {refund_id} failed",
        f"The refund {refund_id} for return {return_id} could not be delivered to your refund target.\n"
        f"Last error: {error}\n{next_step}",
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
            "kind": (r.details or {}).get("kind", "money"),
            **(
                {"store_credit": Money(Decimal(r.details["credit"]), r.currency).to_dict()}
                if (r.details or {}).get("credit")
                else {}
            ),
            "items": r.items or [],
            "breakdown": (r.details or {}).get("breakdown"),
            "shop_reference": _public_reference((r.details or {}).get("shop_reference")),
            "created_at": r.created_at,
            "updated_at": r.updated_at,
        }
        for r in c.store.list_refunds(return_id)
    ]


def _public_reference(reference: dict[str, Any] | None) -> dict[str, Any] | None:
    """What the merchant may see of the shop's reference (never a gift card's full code: we never hold it)."""
    return dict(reference) if reference else None
