"""Outbound webhooks: merchants subscribe to domain events; each matching event is delivered to each subscription once
(a delivery record per event and subscription), signed like the refund webhook, retried with backoff, redeliverable.

Fed by functions/webhook_dispatcher with the events the bus routes to the webhook queue
(infrastructure/definitions.WEBHOOK_EVENTS); retries are messages on that queue with DelaySeconds (a wait longer than
SQS's 15 minutes takes several hops). A pending delivery is in the sweeper's index: if its retry message is lost
(the attempt was recorded, the message never queued), the sweeper queues it again (`redrive_delivery`).
Logs name merchants, subscriptions, deliveries and event types only: never a payload, a secret or a URL.
"""

from __future__ import annotations

import json
from dataclasses import replace
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, Protocol

from chalicelib.domain import subscriptions as dom
from chalicelib.domain.errors import ConcurrentModification, NotFound, ValidationFailed
from chalicelib.domain.identifiers import new_id
from chalicelib.domain.returns import iso
from chalicelib.domain.signatures import boomerang_signature
from chalicelib.domain.subscriptions import Delivery, DeliveryStatus, Subscription
from chalicelib.observability import logger
from chalicelib.services.merchant_urls import merchant_url_error

if TYPE_CHECKING:
    from chalicelib.adapters.dynamodb.subscriptions import SubscriptionStore
    from chalicelib.bootstrap import Container

USER_AGENT = "Boomerang-Webhooks/1"
TIMEOUT_SECONDS = 10


class RetryQueue(Protocol):
    def send(self, body: dict[str, Any], delay_seconds: int) -> None: ...


def secret_name(subscription_id: str) -> str:
    return f"subscription-{subscription_id}"


def _store(c: Container) -> SubscriptionStore:
    if "subscriptions" not in c.overrides:
        from chalicelib.adapters.dynamodb.subscriptions import SubscriptionStore

        c.store  # noqa: B018 - binds the models to the configured table
        c.overrides["subscriptions"] = SubscriptionStore()
    store: SubscriptionStore = c.overrides["subscriptions"]
    return store


# ----- the API ------------------------------------------------------------------------------------------------------
def create_subscription(c: Container, merchant_id: str, url: str, events: list[str], secret: str) -> Subscription:
    errors = dom.event_errors(events)
    why = merchant_url_error(c, url)
    if why:
        errors.insert(0, {"loc": ["url"], "msg": why})
    if errors:
        first = errors[0]
        raise ValidationFailed(f"{'.'.join(str(p) for p in first['loc'])}: {first['msg']}", errors)
    store = _store(c)
    if len(store.list_subscriptions(merchant_id)) >= dom.MAX_SUBSCRIPTIONS_PER_MERCHANT:
        raise ValidationFailed.at([], f"at most {dom.MAX_SUBSCRIPTIONS_PER_MERCHANT} subscriptions per merchant")
    sub = Subscription(
        id=new_id("sub"),
        merchant_id=merchant_id,
        url=url,
        events=dom.normalize_events(events),
        created_at=c.now(),
    )
    c.secrets.put(merchant_id, secret_name(sub.id), secret)  # first: a subscription never exists without its secret
    store.put_subscription(sub)
    logger.info("subscription created", merchant_id=merchant_id, subscription_id=sub.id, events=len(sub.events))
    return sub


def list_subscriptions(c: Container, merchant_id: str) -> list[Subscription]:
    return sorted(_store(c).list_subscriptions(merchant_id), key=lambda s: s.id, reverse=True)


def delete_subscription(c: Container, merchant_id: str, subscription_id: str) -> None:
    """Nothing more is delivered to it (pending retries find it gone and fail). Its deliveries expire by TTL; its
    signing secret is deleted after the subscription (a subscription never exists without its secret)."""
    _store(c).delete_subscription(merchant_id, subscription_id)
    c.secrets.delete(merchant_id, secret_name(subscription_id))
    logger.info("subscription deleted", merchant_id=merchant_id, subscription_id=subscription_id)


def list_deliveries(
    c: Container, merchant_id: str, subscription_id: str, *, cursor: dict[str, Any] | None, limit: int
) -> tuple[list[Delivery], dict[str, Any] | None]:
    store = _store(c)
    store.get_subscription(merchant_id, subscription_id)  # another merchant's (or none): 404
    return store.list_deliveries(merchant_id, subscription_id, cursor=cursor, limit=limit)


def redeliver(
    c: Container, merchant_id: str, subscription_id: str, delivery_id: str, queue: RetryQueue | None = None
) -> Delivery:
    """A new attempt of the same payload (same event id), whatever the delivery's status, made by the dispatcher as
    soon as it takes the message (the API never waits for the merchant's receiver). One attempt: when it fails the
    delivery is `failed` again (a merchant who fixed the receiver clicks again).

    The message names the attempt count it was asked at: a second click before the attempt, or a scheduled retry of
    the same count, finds the count moved on and does nothing. The delivery shows `pending` from now on."""
    store = _store(c)
    store.get_subscription(merchant_id, subscription_id)
    delivery = store.get_delivery(merchant_id, subscription_id, delivery_id)
    ref = {
        "merchant_id": merchant_id,
        "subscription_id": subscription_id,
        "delivery_id": delivery.id,
        "attempts": delivery.attempts,
        "manual": True,
    }
    (queue or c.webhook_queue).send({"retry": ref}, 0)
    now = c.now()
    store.mark_queued(delivery, now)  # best effort: the attempt may already have been made (its outcome stays)
    logger.info("redelivery queued", merchant_id=merchant_id, subscription_id=subscription_id, delivery_id=delivery.id)
    return replace(delivery, status=DeliveryStatus.PENDING, next_attempt_at=now)


# ----- the dispatcher -----------------------------------------------------------------------------------------------
def dispatch_event(
    c: Container, event_type: str, detail: dict[str, Any], event_time: str | None, retries: RetryQueue
) -> dict[str, int]:
    """Deliver one domain event to every matching subscription of its merchant. Idempotent: a duplicate event finds
    its deliveries made and sends nothing again (unless a delivery was made but never attempted: a crash)."""
    merchant_id = detail.get("merchant_id")
    event_id = detail.get("event_id")
    if not isinstance(event_id, str) or not event_id:
        raise ValueError(f"{event_type} event without an event_id")  # malformed: let it go to the DLQ
    outcome = {"matched": 0, "created": 0, "duplicate": 0}
    if event_type not in dom.EVENT_TYPES or not isinstance(merchant_id, str) or not merchant_id:
        return outcome  # no merchant (e.g. an unidentified parcel) or not a subscribable event
    store = _store(c)
    subs = [s for s in store.list_subscriptions(merchant_id) if s.matches(event_type)]
    if not subs:
        return outcome
    created_at = _event_time(detail.get("at") or event_time, c.now())
    body = dom.payload(event_id, event_type, iso(created_at), detail)
    for sub in subs:
        outcome["matched"] += 1
        delivery = Delivery(
            id=dom.delivery_id(event_id, sub.id, created_at),
            merchant_id=merchant_id,
            subscription_id=sub.id,
            event_id=event_id,
            event_type=event_type,
            payload=body,
            status=DeliveryStatus.PENDING,
            attempts=0,
            created_at=created_at,
        )
        if not store.create_delivery(delivery, c.now()):
            existing = store.get_delivery(merchant_id, sub.id, delivery.id)
            if existing.status is not DeliveryStatus.PENDING or existing.attempts > 0:
                outcome["duplicate"] += 1
                logger.info(
                    "webhook delivery exists", merchant_id=merchant_id, subscription_id=sub.id, delivery_id=delivery.id
                )
                continue
            delivery = existing
        else:
            outcome["created"] += 1
        try:
            _attempt(c, delivery, sub, retries=retries)
        except ConcurrentModification:
            logger.info("webhook delivery attempted meanwhile", delivery_id=delivery.id)
    return outcome


def retry_delivery(c: Container, message: dict[str, Any], retries: RetryQueue) -> str:
    """A retry message (`{"retry": {merchant_id, subscription_id, delivery_id, attempts}}`): the next attempt when it
    is due, another hop when it is not yet (waits beyond 15 minutes), nothing when the delivery moved on."""
    ref = message["retry"]
    store = _store(c)
    try:
        delivery = store.get_delivery(ref["merchant_id"], ref["subscription_id"], ref["delivery_id"])
    except NotFound:
        return "skipped:delivery not found"
    manual = bool(ref.get("manual"))  # a redelivery asked by hand: whatever the status, now, once
    if delivery.attempts != int(ref["attempts"]) or (not manual and delivery.status is not DeliveryStatus.PENDING):
        return "skipped:stale"
    now = c.now()
    if not manual and delivery.next_attempt_at is not None and delivery.next_attempt_at > now:
        delay = dom.queue_delay(delivery.next_attempt_at - now)
        if delay > 0:
            retries.send(message, delay)
            return "delayed"
    try:
        sub = store.get_subscription(delivery.merchant_id, delivery.subscription_id)
    except NotFound:
        store.record_attempt(
            delivery,
            status=DeliveryStatus.FAILED,
            status_code=None,
            error="subscription deleted",
            at=now,
            next_attempt_at=None,
        )
        return "failed:subscription deleted"
    try:
        return _attempt(c, delivery, sub, retries=None if manual else retries).status.value
    except ConcurrentModification:
        return "skipped:attempted meanwhile"


def redrive_delivery(c: Container, due: Any, queue: RetryQueue | None = None) -> str:
    """The sweeper's part (chalicelib/services/sweeper.py): a delivery still pending well after its next attempt was
    due lost its retry message (never queued: a crash or a failed SendMessage right after the attempt was recorded;
    or dead-lettered). A retry for its current attempt count is queued again (claimed first: a second sweeper sends
    nothing; a message that turns up after all finds the attempt made and does nothing); after MAX_REDRIVES without
    an attempt the delivery is failed (a merchant can still redeliver it by hand)."""
    from chalicelib.adapters.dynamodb.due import claim
    from chalicelib.domain import sweeping

    store = _store(c)
    delivery = store.get_delivery_at(due)
    if delivery is None or delivery.status is not DeliveryStatus.PENDING:
        return "done"
    now = c.now()
    if sweeping.exhausted("delivery", due.redrives):
        if not store.give_up_delivery(delivery, due, "the next attempt could not be queued"):
            return "moved on"
        logger.warning("webhook delivery failed by the sweeper", delivery_id=delivery.id, redrives=due.redrives)
        return "failed"
    if not claim(due, now + sweeping.backoff("delivery", due.redrives)):
        return "moved on"
    ref = {
        "merchant_id": delivery.merchant_id,
        "subscription_id": delivery.subscription_id,
        "delivery_id": delivery.id,
        "attempts": delivery.attempts,
    }
    (queue or c.webhook_queue).send({"retry": ref}, 0)
    logger.info("webhook retry queued again", delivery_id=delivery.id, attempts=delivery.attempts)
    return "queued"


# ----- one attempt --------------------------------------------------------------------------------------------------
def _attempt(c: Container, delivery: Delivery, sub: Subscription, *, retries: RetryQueue | None) -> Delivery:
    """POST the delivery's payload once and record the outcome. With `retries` a failure schedules the next attempt
    (until MAX_ATTEMPTS); without (a redelivery by hand) a failure is final."""
    status_code, error = _post(c, delivery, sub)
    now = c.now()
    attempts = delivery.attempts + 1
    next_at: datetime | None = None
    if status_code is not None and 200 <= status_code < 300:
        status, error = DeliveryStatus.DELIVERED, None
    else:
        error = dom.describe_failure(status_code, error)
        wait = dom.next_wait(attempts) if retries is not None else None
        if wait is None:
            status = DeliveryStatus.FAILED
        else:
            status, next_at = DeliveryStatus.PENDING, now + wait
    _store(c).record_attempt(
        delivery, status=status, status_code=status_code, error=error, at=now, next_attempt_at=next_at
    )
    log: dict[str, Any] = {
        "merchant_id": delivery.merchant_id,
        "subscription_id": delivery.subscription_id,
        "delivery_id": delivery.id,
        "event_type": delivery.event_type,
        "attempt": attempts,
        "status_code": status_code,
        "outcome": status.value,
    }
    if status is DeliveryStatus.DELIVERED:
        logger.info("webhook delivered", extra=log)
    else:
        logger.warning("webhook delivery failed", extra={**log, "error": error})
    if next_at is not None and retries is not None:
        retries.send(
            {
                "retry": {
                    "merchant_id": delivery.merchant_id,
                    "subscription_id": delivery.subscription_id,
                    "delivery_id": delivery.id,
                    "attempts": attempts,
                }
            },
            dom.queue_delay(next_at - now),
        )
    return replace(
        delivery,
        status=status,
        attempts=attempts,
        last_status_code=status_code,
        last_error=error,
        delivered_at=now if status is DeliveryStatus.DELIVERED else delivery.delivered_at,
        next_attempt_at=next_at,
    )


def _post(c: Container, delivery: Delivery, sub: Subscription) -> tuple[int | None, str | None]:
    """(HTTP status, None) or (None, why it could not be sent). Through the merchant session (c.http): the address
    checked is the address connected to, no redirect is followed, the body is capped and never read into the
    record (SSRF)."""
    secret = c.secrets.get(delivery.merchant_id, secret_name(sub.id))
    if not secret:
        return None, "subscription secret missing"
    body = delivery.payload.encode()
    try:
        resp = c.http.post(
            sub.url,
            data=body,
            timeout=TIMEOUT_SECONDS,
            allow_redirects=False,
            headers={
                "Content-Type": "application/json",
                "X-Boomerang-Signature": boomerang_signature(secret, body),
                "X-Boomerang-Event-Id": delivery.event_id,
                "X-Boomerang-Event-Type": delivery.event_type,
                "X-Boomerang-Delivery-Id": delivery.id,
                "User-Agent": USER_AGENT,
            },
        )
    except Exception as exc:  # timeouts, connection errors, a refused address
        from chalicelib.adapters.outbound import failure_text

        return None, failure_text(exc)
    return int(resp.status_code), None


def _event_time(raw: Any, fallback: datetime) -> datetime:
    if isinstance(raw, str) and raw:
        try:
            parsed = datetime.fromisoformat(raw.replace("Z", "+00:00"))
        except ValueError:
            return fallback
        return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)
    return fallback


def parse_message(body: str) -> dict[str, Any]:
    parsed = json.loads(body)
    if not isinstance(parsed, dict):
        raise ValueError("message body is not an object")
    return parsed
