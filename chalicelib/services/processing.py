"""Processing workflow steps (run as Step Functions Lambda tasks) and merchant feedback."""

from __future__ import annotations

from typing import Any

from chalicelib.bootstrap import Container
from chalicelib.domain.guidelines import classify
from chalicelib.domain.returns import Return, ReturnStatus
from chalicelib.observability import logger
from chalicelib.services.common import change_return, check_tenant
from chalicelib.services.warehouse import cel_item

SYSTEM = "system:processing"


def classify_items(c: Container, return_id: str) -> dict[str, Any]:
    """Grade every received item by the merchant's guideline. Idempotent: a retried task changes nothing."""
    merchant = None

    def change(ret: Return) -> bool:
        nonlocal merchant
        if ret.status != ReturnStatus.INSPECTED:
            return False
        if merchant is None:
            merchant = c.store.get_merchant(ret.merchant_id)
            _log_skipped_rules(merchant.id, merchant.guideline.skipped, merchant.guideline.version)
        order = {"country": ret.customer_country, "currency": ret.currency}
        results = {}
        for item in ret.items:
            if not item.received_quantity:
                continue
            cls = classify(merchant.guideline, checks=item.checks, order=order, item=cel_item(item))
            results[item.line_item_id] = cls.to_dict() | {
                "rule": cls.rule | {"guideline_version": merchant.guideline.version}
            }
        ret.grade_items(results, actor=SYSTEM, at=c.now())
        return True

    before = c.store.get_return(return_id).status
    ret = change_return(c, return_id, change)
    if before == ReturnStatus.INSPECTED and ret.status == ReturnStatus.AWAITING_FEEDBACK:
        _ask_merchant(c, ret)
    return {
        "return_id": ret.id,
        "status": ret.status.value,
        "needs_feedback": ret.status == ReturnStatus.AWAITING_FEEDBACK,
    }


def _log_skipped_rules(merchant_id: str, skipped: tuple[int, ...], version: int) -> None:
    """A rule stored before the cost budget existed and over it does not match (chalicelib/domain/guidelines.py)."""
    if skipped:
        logger.warning(
            "guideline rules over the cost budget do not match",
            merchant_id=merchant_id,
            rule_indexes=list(skipped),
            guideline_version=version,
        )


def await_feedback(c: Container, return_id: str, task_token: str) -> dict[str, Any]:
    """Store the task token; if feedback already arrived (a race), answer the token at once."""

    def change(ret: Return) -> bool:
        if ret.status != ReturnStatus.AWAITING_FEEDBACK:
            return False
        ret.feedback_task_token = task_token
        return True

    ret = change_return(c, return_id, change)
    if ret.status != ReturnStatus.AWAITING_FEEDBACK:
        c.workflows.send_task_success(task_token, {"decision": _decision_of(ret)})
    return {"return_id": ret.id, "status": ret.status.value}


def _decision_of(ret: Return) -> str:
    return "reject" if ret.status == ReturnStatus.REJECTED else "approve"


def resolve_feedback(
    c: Container,
    merchant_id: str,
    return_id: str,
    decision: str,
    overrides: list[dict[str, Any]],
    comment: str | None,
) -> Return:
    token: str | None = None

    def change(ret: Return) -> bool:
        nonlocal token
        check_tenant(ret, merchant_id=merchant_id)
        ret.resolve_feedback(
            decision=decision,
            overrides=overrides,
            comment=comment,
            actor=f"merchant:{merchant_id}",
            at=c.now(),
        )
        token, ret.feedback_task_token = ret.feedback_task_token, None
        return True

    ret = change_return(c, return_id, change)
    if token:
        try:
            c.workflows.send_task_success(token, {"decision": decision})
        except Exception:
            # The decision is stored; the waiting task will time out and find the return resolved.
            logger.exception("could not resume the processing workflow", return_id=return_id)
    return ret


def feedback_timed_out(c: Container, return_id: str) -> dict[str, Any]:
    merchant = None

    def change(ret: Return) -> bool:
        nonlocal merchant
        if ret.status != ReturnStatus.AWAITING_FEEDBACK:
            return False
        merchant = merchant or c.store.get_merchant(ret.merchant_id)
        g = merchant.guideline
        ret.apply_default_after_timeout(
            {"grade": g.default_grade.value, "disposition": g.default_disposition.value},
            actor=SYSTEM,
            at=c.now(),
        )
        ret.feedback_task_token = None
        return True

    ret = change_return(c, return_id, change)
    return {"return_id": ret.id, "status": ret.status.value, "decision": _decision_of(ret)}


def _ask_merchant(c: Container, ret: Return) -> None:
    """Email the merchant's contact that a return waits for their decision (no customer data in it)."""
    merchant = c.store.get_merchant(ret.merchant_id)
    if not merchant.contact_email:
        return
    hours = merchant.guideline.feedback_sla_hours
    reasons = []
    for item in ret.items:
        if item.clarify:
            rule = (item.rule or {}).get("name", "a rule")
            reasons.append(f"- item {item.line_item_id} ({item.sku}): graded {item.grade} by '{rule}', asks for a look")
    for d in ret.discrepancies:
        reasons.append(f"- discrepancy: {d['type']} {d.get('line_item_id') or d.get('sku') or ''}".rstrip())
    try:
        c.mailer.send(
            merchant.contact_email,
            f"Return {ret.id} needs your decision",
            f"Return {ret.id} (order {ret.order_number}) was inspected and waits for your feedback:\n"
            + "\n".join(reasons)
            + f"\n\nApprove or reject it (POST /v1/returns/{ret.id}/feedback) within {hours} hours; after that the "
            "guideline's default applies.\n",
        )
    except Exception:
        logger.exception("feedback request email failed", return_id=ret.id)
