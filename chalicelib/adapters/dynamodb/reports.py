"""Report counters in the single table (docs/reports.md).

| item                 | pk                                | sk                                          |
|----------------------|-----------------------------------|---------------------------------------------|
| counters of a day    | REPORT#<merchant_id>#<YYYY-MM-DD> | SUMMARY, SUMMARY#REFUNDED#<currency>,       |
|                      |                                   | REASON#<code>, SKU#<sku>, GRADE#<grade>,    |
|                      |                                   | GRADE#DISPOSITION#<d>, PT#<stage>#<bucket>, |
|                      |                                   | TRANSIT#<carrier>#<bucket>                  |
| applied-event marker | AGG#<event_id>                    | AGG (AGG#<n> for the n-th part)             |

Counters change only by ADD. An event's counter updates and its marker (created only if absent, with a TTL) are one
TransactWriteItems: a redelivered event finds its marker and changes nothing. DynamoDB allows 100 items per
transaction: an event with more counters is split into parts of 99 updates, each with its own marker (each part
applied exactly once). Sold quantities are written in the same transaction as the order they come from.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pynamodb.connection import Connection
from pynamodb.exceptions import TransactWriteError
from pynamodb.transactions import TransactWrite

from chalicelib.adapters.dynamodb.models import PointerRecord, ReportRecord
from chalicelib.domain.orders import Order
from chalicelib.domain.reports import FIELDS, Counters

#: Items per TransactWriteItems (DynamoDB's limit is 100; one is the marker).
PART_SIZE = 99


def report_pk(merchant_id: str, day: str) -> str:
    return f"REPORT#{merchant_id}#{day}"


def marker_pk(event_id: str) -> str:
    return f"AGG#{event_id}"


def _connection() -> Connection:
    conn: Connection = ReportRecord._get_connection().connection
    return conn


def _client() -> Any:
    return ReportRecord._get_connection().connection.client


def _update(tx: TransactWrite, merchant_id: str, day: str, sk: str, fields: dict[str, int]) -> None:
    unknown = set(fields) - set(FIELDS)
    if unknown:
        raise ValueError(f"unknown counter fields {sorted(unknown)}")
    rec = ReportRecord(pk=report_pk(merchant_id, day), sk=sk)
    tx.update(rec, actions=[getattr(ReportRecord, f).add(v) for f, v in sorted(fields.items())])


def _cancelled_by_condition(exc: TransactWriteError, index: int) -> bool:
    reasons = getattr(exc, "cancellation_reasons", None) or []
    return len(reasons) > index and reasons[index] is not None and reasons[index].code == "ConditionalCheckFailed"


class ReportStore:
    """Counter writes and the one-Query-per-day reads. `items_read` counts the items the reads returned."""

    def __init__(self) -> None:
        self.items_read = 0
        self.queries = 0

    # ----- writes -----------------------------------------------------------------------------------------------
    def apply(self, event_id: str, merchant_id: str, counters: Counters, expires_at: datetime) -> tuple[int, int]:
        """Add an event's counters once. Returns (parts applied now, parts already applied before)."""
        updates = sorted(counters.items())
        parts = [updates[i : i + PART_SIZE] for i in range(0, len(updates), PART_SIZE)] or [[]]
        applied = duplicate = 0
        for n, part in enumerate(parts):
            marker = PointerRecord(
                pk=marker_pk(event_id),
                sk="AGG" if n == 0 else f"AGG#{n}",
                data={"merchant_id": merchant_id, "counters": len(part)},
                expires_at=expires_at,
            )
            try:
                with TransactWrite(connection=_connection()) as tx:
                    tx.save(marker, condition=PointerRecord.pk.does_not_exist())
                    for (day, sk), fields in part:
                        _update(tx, merchant_id, day, sk, fields)
            except TransactWriteError as exc:
                if _cancelled_by_condition(exc, 0):
                    duplicate += 1
                    continue
                raise
            applied += 1
        return applied, duplicate

    def save_order_with_sold(
        self, order: Order, now: datetime, counters: Counters, claims: list[tuple[Any, Any]] | None = None
    ) -> None:
        """Save the order (versioned, as the repository does) and add its sold quantities in one transaction: the
        counters change exactly when the order does. ConcurrentModification when the order changed meanwhile.
        `claims` (the repository's claim_tracking_numbers) go into the same transaction: TrackingNumberTaken."""
        from chalicelib.adapters.dynamodb.repository import _order_to_record, raise_for_order_transaction

        claims = claims or []
        if len(counters) + len(claims) > PART_SIZE:
            raise ValueError("too many counters for one transaction")
        order_record = _order_to_record(order, now)
        try:
            with TransactWrite(connection=_connection()) as tx:
                tx.save(order_record)
                for claim, condition in claims:
                    tx.save(claim, condition=condition)
                for (day, sk), fields in sorted(counters.items()):
                    _update(tx, order.merchant_id, day, sk, fields)
        except TransactWriteError as exc:
            raise_for_order_transaction(exc, claims, first_claim=1)
        order.version = order_record.version

    def put_totals(self, merchant_id: str, counters: Counters) -> int:
        """Bulk seeding (benchmarks, backfills): PutItem of absolute values through BatchWriteItem, 25 a call.
        Overwrites what is there: not for live data. Returns the number of items written."""
        table = ReportRecord.Meta.table_name
        requests = [
            {
                "PutRequest": {
                    "Item": {
                        "pk": {"S": report_pk(merchant_id, day)},
                        "sk": {"S": sk},
                        **{f: {"N": str(v)} for f, v in fields.items()},
                    }
                }
            }
            for (day, sk), fields in sorted(counters.items())
        ]
        for i in range(0, len(requests), 25):
            batch = requests[i : i + 25]
            while batch:
                resp = _client().batch_write_item(RequestItems={table: batch})
                batch = resp.get("UnprocessedItems", {}).get(table, [])
        return len(requests)

    # ----- reads ------------------------------------------------------------------------------------------------
    def day(self, merchant_id: str, day: str, prefix: str) -> dict[str, dict[str, int]]:
        """One Query: the day's counter items whose sort key starts with `prefix` (sk -> field -> value)."""
        out: dict[str, dict[str, int]] = {}
        kwargs: dict[str, Any] = {}
        while True:
            page = _client().query(
                TableName=ReportRecord.Meta.table_name,
                KeyConditionExpression="pk = :pk AND begins_with(sk, :prefix)",
                ExpressionAttributeValues={":pk": {"S": report_pk(merchant_id, day)}, ":prefix": {"S": prefix}},
                **kwargs,
            )
            self.queries += 1
            for raw in page.get("Items", []):
                self.items_read += 1
                out[raw["sk"]["S"]] = {f: int(raw[f]["N"]) for f in FIELDS if f in raw}
            if "LastEvaluatedKey" not in page:
                return out
            kwargs["ExclusiveStartKey"] = page["LastEvaluatedKey"]
