"""Webhook subscriptions and their deliveries in the single table (keys: models.SubscriptionRecord,
models.DeliveryRecord). Every read is a GetItem or one Query; status writes are conditional."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from pynamodb.exceptions import DeleteError, DoesNotExist, PutError, UpdateError

from chalicelib.adapters.dynamodb.due import Due, due_keys
from chalicelib.adapters.dynamodb.keys import parse_stored, stored_time
from chalicelib.adapters.dynamodb.models import DeliveryRecord, SubscriptionRecord
from chalicelib.domain.errors import ConcurrentModification, NotFound
from chalicelib.domain.subscriptions import Delivery, DeliveryStatus, Subscription
from chalicelib.domain.sweeping import GRACE

#: Delivery records are kept this long (the list shows the recent past; DynamoDB's TTL removes older ones).
DELIVERY_TTL_SECONDS = 30 * 24 * 3600


def subscriptions_pk(merchant_id: str) -> str:
    return f"SUBS#{merchant_id}"


def deliveries_pk(merchant_id: str, subscription_id: str) -> str:
    return f"SUB#{merchant_id}#{subscription_id}"


def _conditional_failed(exc: Exception) -> bool:
    cause = getattr(exc, "cause_response_code", None)
    return cause == "ConditionalCheckFailedException"


def _subscription(rec: SubscriptionRecord) -> Subscription:
    created = parse_stored(rec.created_at)
    assert created is not None
    return Subscription(
        id=rec.sk.removeprefix("SUB#"),
        merchant_id=rec.merchant_id,
        url=rec.url,
        events=tuple(str(e) for e in rec.events or ()),
        created_at=created,
    )


def _due(pk: str, sk: str, attempt_at: datetime) -> tuple[str, str]:
    """GSI4 of a pending delivery: stuck if its next attempt has not been made a while after it was due."""
    return due_keys("delivery", pk, sk, attempt_at + GRACE["delivery"])


def _delivery(rec: DeliveryRecord) -> Delivery:
    created = parse_stored(rec.created_at)
    assert created is not None
    return Delivery(
        id=rec.sk.removeprefix("DELIVERY#"),
        merchant_id=rec.merchant_id,
        subscription_id=rec.subscription_id,
        event_id=rec.event_id,
        event_type=rec.event_type,
        payload=rec.payload,
        status=DeliveryStatus(rec.status),
        attempts=int(rec.attempts or 0),
        created_at=created,
        last_status_code=int(rec.last_status_code) if rec.last_status_code is not None else None,
        last_error=rec.last_error,
        delivered_at=parse_stored(rec.delivered_at),
        next_attempt_at=parse_stored(rec.next_attempt_at),
    )


class SubscriptionStore:
    # ----- subscriptions ------------------------------------------------------------------------------------------
    def put_subscription(self, sub: Subscription) -> None:
        SubscriptionRecord(
            subscriptions_pk(sub.merchant_id),
            f"SUB#{sub.id}",
            merchant_id=sub.merchant_id,
            url=sub.url,
            events=list(sub.events),
            created_at=stored_time(sub.created_at),
        ).save(condition=SubscriptionRecord.pk.does_not_exist())

    def list_subscriptions(self, merchant_id: str) -> list[Subscription]:
        """All of a merchant's subscriptions (at most MAX_SUBSCRIPTIONS_PER_MERCHANT): one Query."""
        return [
            _subscription(rec)
            for rec in SubscriptionRecord.query(subscriptions_pk(merchant_id), SubscriptionRecord.sk.startswith("SUB#"))
        ]

    def get_subscription(self, merchant_id: str, subscription_id: str) -> Subscription:
        try:
            return _subscription(SubscriptionRecord.get(subscriptions_pk(merchant_id), f"SUB#{subscription_id}"))
        except DoesNotExist:
            raise NotFound("subscription not found") from None

    def delete_subscription(self, merchant_id: str, subscription_id: str) -> None:
        rec = SubscriptionRecord(subscriptions_pk(merchant_id), f"SUB#{subscription_id}")
        try:
            rec.delete(condition=SubscriptionRecord.pk.exists())
        except DeleteError as exc:
            if _conditional_failed(exc):
                raise NotFound("subscription not found") from None
            raise

    # ----- deliveries ---------------------------------------------------------------------------------------------
    def create_delivery(self, d: Delivery, now: datetime) -> bool:
        """Write a new delivery (pending: in GSI4 from `now`); False (and nothing written) when it exists already (a
        duplicate event)."""
        pk, sk = deliveries_pk(d.merchant_id, d.subscription_id), f"DELIVERY#{d.id}"
        gsi4pk, gsi4sk = _due(pk, sk, now)
        try:
            DeliveryRecord(
                pk,
                sk,
                merchant_id=d.merchant_id,
                subscription_id=d.subscription_id,
                event_id=d.event_id,
                event_type=d.event_type,
                payload=d.payload,
                status=d.status.value,
                attempts=d.attempts,
                created_at=stored_time(d.created_at),
                expires_at=datetime.fromtimestamp(d.created_at.timestamp() + DELIVERY_TTL_SECONDS, UTC),
                gsi4pk=gsi4pk,
                gsi4sk=gsi4sk,
            ).save(condition=DeliveryRecord.pk.does_not_exist())
        except PutError as exc:
            if _conditional_failed(exc):
                return False
            raise
        return True

    def get_delivery(self, merchant_id: str, subscription_id: str, delivery_id: str) -> Delivery:
        try:
            return _delivery(DeliveryRecord.get(deliveries_pk(merchant_id, subscription_id), f"DELIVERY#{delivery_id}"))
        except DoesNotExist:
            raise NotFound("delivery not found") from None

    def list_deliveries(
        self, merchant_id: str, subscription_id: str, *, cursor: dict[str, Any] | None, limit: int
    ) -> tuple[list[Delivery], dict[str, Any] | None]:
        """One page, newest first: one Query."""
        result = DeliveryRecord.query(
            deliveries_pk(merchant_id, subscription_id),
            DeliveryRecord.sk.startswith("DELIVERY#"),
            scan_index_forward=False,
            limit=limit,
            last_evaluated_key=cursor,
        )
        page = [_delivery(rec) for rec in result]
        return page, result.last_evaluated_key

    def mark_queued(self, d: Delivery, at: datetime) -> bool:
        """Pending with the next attempt now (a redelivery was queued), unless an attempt was recorded meanwhile."""
        rec = DeliveryRecord(deliveries_pk(d.merchant_id, d.subscription_id), f"DELIVERY#{d.id}")
        gsi4pk, gsi4sk = _due(rec.pk, rec.sk, at)
        try:
            rec.update(
                actions=[
                    DeliveryRecord.status.set(DeliveryStatus.PENDING.value),
                    DeliveryRecord.next_attempt_at.set(stored_time(at)),
                    DeliveryRecord.gsi4pk.set(gsi4pk),
                    DeliveryRecord.gsi4sk.set(gsi4sk),
                ],
                condition=DeliveryRecord.pk.exists() & (DeliveryRecord.attempts == d.attempts),
            )
        except UpdateError as exc:
            if _conditional_failed(exc):
                return False
            raise
        return True

    def record_attempt(
        self,
        d: Delivery,
        *,
        status: DeliveryStatus,
        status_code: int | None,
        error: str | None,
        at: datetime,
        next_attempt_at: datetime | None,
    ) -> None:
        """The outcome of one attempt, only if nobody else recorded an attempt meanwhile (attempts unchanged)."""
        rec = DeliveryRecord(deliveries_pk(d.merchant_id, d.subscription_id), f"DELIVERY#{d.id}")
        actions: list[Any] = [
            DeliveryRecord.status.set(status.value),
            DeliveryRecord.attempts.set(d.attempts + 1),
        ]
        actions.append(
            DeliveryRecord.last_status_code.set(status_code)
            if status_code is not None
            else DeliveryRecord.last_status_code.remove()
        )
        actions.append(DeliveryRecord.last_error.set(error) if error else DeliveryRecord.last_error.remove())
        if status is DeliveryStatus.DELIVERED:
            actions.append(DeliveryRecord.delivered_at.set(stored_time(at)))
        actions.append(
            DeliveryRecord.next_attempt_at.set(stored_time(next_attempt_at))
            if next_attempt_at is not None
            else DeliveryRecord.next_attempt_at.remove()
        )
        if status is DeliveryStatus.PENDING:
            gsi4pk, gsi4sk = _due(rec.pk, rec.sk, next_attempt_at or at)
            actions += [DeliveryRecord.gsi4pk.set(gsi4pk), DeliveryRecord.gsi4sk.set(gsi4sk)]
        else:
            actions += [DeliveryRecord.gsi4pk.remove(), DeliveryRecord.gsi4sk.remove()]
        try:
            rec.update(
                actions=actions,
                condition=DeliveryRecord.pk.exists() & (DeliveryRecord.attempts == d.attempts),
            )
        except UpdateError as exc:
            if _conditional_failed(exc):
                raise ConcurrentModification("the delivery was attempted meanwhile") from None
            raise

    # ----- the sweeper ----------------------------------------------------------------------------------------------
    def get_delivery_at(self, due: Due) -> Delivery | None:
        """The delivery a GSI4 entry points at (None: gone, e.g. expired)."""
        try:
            return _delivery(DeliveryRecord.get(due.pk, due.sk, consistent_read=True))
        except DoesNotExist:
            return None

    def give_up_delivery(self, d: Delivery, due: Due, error: str) -> bool:
        """Failed for good (its retries could not be queued): only if it is still pending at the same attempt and
        the sweeper's claim on it still holds. False: it moved on meanwhile."""
        rec = DeliveryRecord(deliveries_pk(d.merchant_id, d.subscription_id), f"DELIVERY#{d.id}")
        try:
            rec.update(
                actions=[
                    DeliveryRecord.status.set(DeliveryStatus.FAILED.value),
                    DeliveryRecord.last_error.set(error),
                    DeliveryRecord.next_attempt_at.remove(),
                    DeliveryRecord.gsi4pk.remove(),
                    DeliveryRecord.gsi4sk.remove(),
                ],
                condition=(DeliveryRecord.attempts == d.attempts)
                & (DeliveryRecord.status == DeliveryStatus.PENDING.value)
                & DeliveryRecord.gsi4sk.exists(),
            )
        except UpdateError as exc:
            if _conditional_failed(exc):
                return False
            raise
        return True
