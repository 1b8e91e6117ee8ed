"""Erasure of a customer (GDPR Art. 17) and the retention sweep (chalicelib/domain/privacy.py holds the rules).

`request_erasure` (the API) records the request, pending, with the digest of the address only (never the address),
due at once in the sweeper's index (GSI4, kind `erasure`); `run_erasure` (the sweeper, every 5 minutes, and again if
a run died) does the work in pages and can resume anywhere:

1. the customer's returns, a page at a time from the list index's email facet (`email=<hash>`), and their orders
   (from the returns, and from the customer -> orders links for orders without a return; a link goes once its
   order is pseudonymised);
2. per order: the order pseudonymised (email -> pseudonym, name/street/city blanked) under its version, and its
   withdrawals' declared name; per return: comments, customer photos, label, CN23 and parcel photos removed and the
   email facet moved to the pseudonym's, through `change_return` (a lost race reads again and re-applies); the S3
   objects are deleted before the return no longer names them, so a crash leaves nothing behind;
3. once the email facet and the customer index find nothing more, the record is completed with its counts and the
   `customer.erased` event goes out through the outbox, in one transaction, once.

A page pseudonymised leaves the index the next page is read from, so a resumed run simply starts again. The report
counters hold no personal data and are not touched: every figure stays what it was. A second erasure of the same
address finds nothing and completes with zero counts.

The retention sweep (`sweep_retention`, kind `retention`) pseudonymises one ended return whose merchant's
retention period has passed, the same way, and leaves its order alone (the customer may have other returns).
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from chalicelib.bootstrap import Container
from chalicelib.domain import privacy as dom
from chalicelib.domain.errors import ConcurrentModification, ValidationFailed
from chalicelib.domain.identifiers import new_id
from chalicelib.domain.photos import thumbnail_key
from chalicelib.domain.return_index import email_key
from chalicelib.domain.returns import Return, iso
from chalicelib.observability import logger

PAGE_SIZE = 50  # returns per index Query page
MAX_RETURNS_PER_RUN = 2000  # then the run stops and the sweeper resumes it (the function's 5 minutes)


def request_erasure(c: Container, merchant_id: str, email: str, actor: str) -> dict[str, Any]:
    """Record an erasure of `email` at `merchant_id` (pending: the sweeper runs it). 202 {id, status}."""
    if not email or "@" not in email:
        raise ValidationFailed.at(["email"], "an email address is required")
    c.store.get_merchant(merchant_id)  # 404 for an unknown merchant (operators name one)
    now = c.now()
    erasure = {
        "id": new_id("era"),
        "merchant_id": merchant_id,
        "status": "pending",
        "subject": dom.subject_digest(email),  # never the address
        "requested_by": actor,
        "requested_at": iso(now),
        "orders": 0,
        "returns": 0,
        "withdrawals": 0,
        "objects": 0,
    }
    c.store.save_erasure(erasure, now)
    logger.info("erasure requested", merchant_id=merchant_id, erasure_id=erasure["id"])
    return {"id": erasure["id"], "status": "pending"}


def get_erasure(c: Container, merchant_id: str, erasure_id: str) -> dict[str, Any]:
    e = c.store.get_erasure(merchant_id, erasure_id)
    keys = ("id", "status", "requested_at", "completed_at", "orders", "returns", "withdrawals", "objects")
    return {k: e.get(k) for k in keys}


def run_erasure(c: Container, due: Any) -> str:
    """The sweeper's part: run (or resume) a pending erasure. Claimed first, so a second sweeper waits."""
    from chalicelib.adapters.dynamodb.due import claim
    from chalicelib.domain import sweeping

    erasure = c.store.erasure_at(due)
    if erasure is None or erasure.get("due") is None:
        return "done"
    if not claim(due, c.now() + sweeping.backoff("erasure", due.redrives)):
        return "moved on"
    return "completed" if erase(c, erasure) else "resumes"


def erase(c: Container, erasure: dict[str, Any], max_returns: int = MAX_RETURNS_PER_RUN) -> bool:
    """Pseudonymise everything of the erasure's customer; True once complete (False: more next run)."""
    merchant_id, subject = erasure["merchant_id"], erasure["subject"]
    alias = dom.pseudonym_of_subject(merchant_id, subject)
    key, alias_key = dom.subject_key(subject), email_key(alias)
    handled = 0
    while handled < max_returns:
        page, _ = c.store.query_index(
            merchant_id, f"email={key}", created_from=None, created_to=None, cursor=None, limit=PAGE_SIZE
        )
        if not page:
            break
        # the index may lag a moment behind a return: only the customer's own are touched
        returns = [r for r in c.store.get_returns([rid for rid, _ in page]) if r.customer_email_key == key]
        for order_number in sorted({r.order_number for r in returns}):
            _erase_order(c, erasure, merchant_id, order_number, alias)
        for ret in returns:
            erasure["objects"] += _erase_return(c, ret.id, alias_key)
            erasure["returns"] += 1
        handled += len(page)
        c.store.erasure_progress(erasure)
    else:
        return False
    for order_number in c.store.customer_order_numbers(merchant_id, key):  # orders without a return, too
        _erase_order(c, erasure, merchant_id, order_number, alias)
        c.store.unlink_customer_order(merchant_id, key, order_number)
    now = c.now()
    erasure.update(status="completed", completed_at=iso(now))
    event = {
        "erasure_id": erasure["id"],
        "merchant_id": merchant_id,
        "at": iso(now),
        "orders": erasure["orders"],
        "returns": erasure["returns"],
    }
    if c.store.complete_erasure(erasure, event, now):
        logger.info(
            "customer erased",
            merchant_id=merchant_id,
            erasure_id=erasure["id"],
            orders=erasure["orders"],
            returns=erasure["returns"],
            objects=erasure["objects"],
        )
    return True


def _erase_order(c: Container, erasure: dict[str, Any], merchant_id: str, order_number: str, alias: str) -> None:
    """Pseudonymise the order (and its withdrawals) if it still names the erasure's customer."""
    for _attempt in range(5):
        order = c.store.get_order(merchant_id, order_number)
        if order is None:
            return
        if order.email == alias:
            break  # erased before (a resumed run: its withdrawals may still name them)
        if dom.subject_digest(order.email) != erasure["subject"]:
            return  # another customer's by now (a link left behind)
        try:
            c.store.save_order(dom.pseudonymise_order(order, alias), c.now())
        except ConcurrentModification:
            continue
        erasure["orders"] += 1
        break
    else:
        raise ConcurrentModification(f"order {order_number} kept changing")
    for w in c.store.withdrawals_of_order(merchant_id, order_number):
        if w.name != dom.ERASED_NAME:
            c.store.replace_withdrawal(dom.pseudonymise_withdrawal(w))
            erasure["withdrawals"] += 1


def _erase_return(c: Container, return_id: str, alias_key: str | None) -> int:
    """Pseudonymise one return (its S3 objects deleted first); the number of objects deleted."""
    from chalicelib.services.common import change_return

    deleted: set[str] = set()

    def change(ret: Return) -> bool:
        preview = dom.pseudonymise_return(_copy(ret), alias_key)
        for k in preview.objects:
            if k not in deleted:
                c.files.delete(k)
                if k.startswith("photos/"):
                    c.files.delete(thumbnail_key(k))
                deleted.add(k)
        return dom.pseudonymise_return(ret, alias_key).changed

    change_return(c, return_id, change)
    return len(deleted)


def _copy(ret: Return) -> Return:
    import copy

    return copy.deepcopy(ret)


# ----- retention ------------------------------------------------------------------------------------------------
def sweep_retention(c: Container, due: Any) -> str:
    """The sweeper's part: an ended return whose merchant's retention period has passed is pseudonymised (its
    customer's key in the list index goes, comments, photos and documents too); one not yet due is put back to
    when it is."""
    from chalicelib.adapters.dynamodb.due import claim

    marker = c.store.retention_at(due)
    if marker is None or marker.get("due") is None:
        return "done"
    merchant = c.store.get_merchant(marker["merchant_id"])
    ended_at = datetime.fromisoformat(str(marker["ended_at"]).replace("Z", "+00:00"))
    due_at = dom.retention_due(ended_at, merchant.policy.retention_days)
    now = c.now()
    if due_at > now:
        return "waits" if claim(due, due_at) else "moved on"
    if not claim(due, now + timedelta(hours=1)):
        return "moved on"
    _erase_return(c, marker["return_id"], None)
    c.store.retention_done(marker["return_id"], _claimed_sk(due, now + timedelta(hours=1)))
    logger.info("return pseudonymised after its retention period", return_id=marker["return_id"])
    return "pseudonymised"


def _claimed_sk(due: Any, next_due_at: datetime) -> str:
    from chalicelib.adapters.dynamodb.due import due_keys

    return due_keys(due.kind, due.pk, due.sk, next_due_at, due.redrives + 1)[1]
