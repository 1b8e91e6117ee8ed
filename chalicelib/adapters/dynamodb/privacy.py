"""Erasure records, the customer's orders and withdrawals, retention markers (chalicelib/services/privacy.py).

An erasure record (`ERASURE#<merchant_id>#<erasure_id>`, `ERASURE`) holds who asked, when, the digest of the address
(never the address) and what was changed; while it is pending it is in GSI4 (kind `erasure`), so the sweeper runs it
(and runs it again if a run died). Its completion writes the `customer.erased` event as an outbox record (a
timeline record of the erasure, `TL#...`) in the same transaction, once: the write is conditional on the record still
being pending.

A return that ends gets a retention marker (`RETENTION#<return_id>`, in GSI4 as kind `retention`) in the transaction
of the change; the sweeper pseudonymises it once the merchant's retention period has passed and deletes the marker.
"""

from __future__ import annotations

import json
import secrets
from datetime import datetime, timedelta
from typing import Any

from pynamodb.exceptions import DeleteError, DoesNotExist, TransactWriteError
from pynamodb.transactions import TransactWrite

from chalicelib.adapters.dynamodb.due import Due, due_keys
from chalicelib.adapters.dynamodb.keys import order_pk, stored_time
from chalicelib.adapters.dynamodb.models import PointerRecord, TimelineRecord
from chalicelib.adapters.dynamodb.outbox import DETAIL, DETAIL_TYPE
from chalicelib.domain.errors import NotFound
from chalicelib.domain.privacy import ENDED, MIN_RETENTION_DAYS
from chalicelib.domain.returns import Return
from chalicelib.domain.withdrawals import Withdrawal

ERASED_EVENT = "customer.erased"


def erasure_pk(merchant_id: str, erasure_id: str) -> str:
    return f"ERASURE#{merchant_id}#{erasure_id}"


def retention_pk(return_id: str) -> str:
    return f"RETENTION#{return_id}"


def retention_marker(ret: Return) -> PointerRecord | None:
    """The marker of a return that has just ended (one of its new timeline entries ends it); None otherwise. First
    due after the shortest retention a merchant may set; the sweeper moves it to the merchant's own period."""
    ends = {f"return.{s.value}" for s in ENDED}
    ended = [e.at for e in ret.new_timeline if e.type in ends]
    if not ended or ret.status not in ENDED:
        return None
    ended_at = max(ended)
    pk = retention_pk(ret.id)
    gsi4pk, gsi4sk = due_keys("retention", pk, "RETENTION", ended_at + timedelta(days=MIN_RETENTION_DAYS))
    return PointerRecord(
        pk=pk,
        sk="RETENTION",
        data={"return_id": ret.id, "merchant_id": ret.merchant_id, "ended_at": stored_time(ended_at)},
        created_at=stored_time(ended_at),
        gsi4pk=gsi4pk,
        gsi4sk=gsi4sk,
    )


class PrivacyStore:
    # ----- the customer's records ------------------------------------------------------------------------------
    @staticmethod
    def unlink_customer_order(merchant_id: str, key: str, order_number: str) -> None:
        """The customer -> order link (repository.customer_order_link) goes once the order no longer names them."""
        from chalicelib.adapters.dynamodb.repository import _customer_pk

        PointerRecord(pk=_customer_pk(merchant_id, key), sk=f"ORDER#{order_number}").delete()

    @staticmethod
    def withdrawals_of_order(merchant_id: str, order_number: str) -> list[Withdrawal]:
        return [
            Withdrawal.from_dict(dict(rec.data or {}))
            for rec in PointerRecord.query(
                order_pk(merchant_id, order_number), PointerRecord.sk.startswith("WITHDRAWAL#"), consistent_read=True
            )
        ]

    @staticmethod
    def replace_withdrawal(w: Withdrawal) -> None:
        from chalicelib.adapters.dynamodb.repository import _withdrawal_record

        _withdrawal_record(w).save(condition=PointerRecord.pk.exists())

    # ----- erasure records -------------------------------------------------------------------------------------
    @staticmethod
    def save_erasure(erasure: dict[str, Any], now: datetime) -> None:
        """A new erasure request (pending, due at once: the sweeper runs it)."""
        pk = erasure_pk(erasure["merchant_id"], erasure["id"])
        gsi4pk, gsi4sk = due_keys("erasure", pk, "ERASURE", now)
        PointerRecord(
            pk=pk, sk="ERASURE", data=erasure, created_at=stored_time(now), gsi4pk=gsi4pk, gsi4sk=gsi4sk
        ).save(condition=PointerRecord.pk.does_not_exist())

    @staticmethod
    def get_erasure(merchant_id: str, erasure_id: str) -> dict[str, Any]:
        try:
            rec = PointerRecord.get(erasure_pk(merchant_id, erasure_id), "ERASURE", consistent_read=True)
        except DoesNotExist:
            raise NotFound(f"erasure '{erasure_id}' not found") from None
        return {**(rec.data or {}), "due": rec.gsi4sk}

    @staticmethod
    def erasure_at(due: Due) -> dict[str, Any] | None:
        try:
            rec = PointerRecord.get(due.pk, due.sk, consistent_read=True)
        except DoesNotExist:
            return None
        return {**(rec.data or {}), "due": rec.gsi4sk}

    @staticmethod
    def erasure_progress(erasure: dict[str, Any]) -> None:
        """Counts so far (the record stays pending and due)."""
        pk = erasure_pk(erasure["merchant_id"], erasure["id"])
        data = {k: v for k, v in erasure.items() if k != "due"}
        PointerRecord(pk=pk, sk="ERASURE").update(
            actions=[PointerRecord.data.set(data)], condition=PointerRecord.gsi4pk.exists()
        )

    @staticmethod
    def complete_erasure(erasure: dict[str, Any], event: dict[str, Any], now: datetime) -> bool:
        """The erasure done and its `customer.erased` event (outbox), once: False if it was completed before."""
        pk = erasure_pk(erasure["merchant_id"], erasure["id"])
        data = {k: v for k, v in erasure.items() if k != "due"}
        rec = PointerRecord(pk=pk, sk="ERASURE", data=data, created_at=data.get("requested_at"))
        at = stored_time(now)
        tl = TimelineRecord(
            pk=pk,
            sk=f"TL#{at}#000{secrets.token_hex(4)}",
            type=ERASED_EVENT,
            at=at,
            actor=str(erasure.get("requested_by") or "system"),
            data={},
        )
        setattr(tl, DETAIL_TYPE, ERASED_EVENT)
        setattr(tl, DETAIL, json.dumps(event, default=str))
        try:
            from chalicelib.adapters.dynamodb.repository import _connection

            with TransactWrite(connection=_connection()) as tx:
                tx.save(rec, condition=PointerRecord.gsi4pk.exists())
                tx.save(tl)
        except TransactWriteError as exc:
            if exc.cause_response_code == "TransactionCanceledException":
                return False  # completed before (the record is no longer pending)
            raise
        return True

    @staticmethod
    def erasure_events(merchant_id: str, erasure_id: str) -> list[dict[str, Any]]:
        """The outbox records of an erasure (tests, and the event's replay)."""
        return [
            {"detail_type": getattr(rec, DETAIL_TYPE), "detail": json.loads(getattr(rec, DETAIL) or "{}")}
            for rec in TimelineRecord.query(erasure_pk(merchant_id, erasure_id), TimelineRecord.sk.startswith("TL#"))
        ]

    # ----- retention -------------------------------------------------------------------------------------------
    @staticmethod
    def retention_at(due: Due) -> dict[str, Any] | None:
        try:
            rec = PointerRecord.get(due.pk, due.sk, consistent_read=True)
        except DoesNotExist:
            return None
        return {**(rec.data or {}), "due": rec.gsi4sk}

    @staticmethod
    def retention_done(return_id: str, due_sk: str) -> None:
        """The return was pseudonymised: its marker goes (only if it is still the one read)."""
        try:
            PointerRecord(pk=retention_pk(return_id), sk="RETENTION").delete(condition=PointerRecord.gsi4sk == due_sk)
        except DeleteError as exc:  # a newer marker (the return ended again): leave it
            if exc.cause_response_code != "ConditionalCheckFailedException":
                raise
