"""Key helpers and marker descriptions of the single table. No PynamoDB import here: services use these
without paying for the persistence stack at import time (cold start)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any


def stored_time(at: datetime) -> str:
    """Stored times: UTC, microseconds, fixed width (so they sort as strings in keys)."""
    return at.astimezone(UTC).isoformat(timespec="microseconds").replace("+00:00", "Z")


def parse_stored(raw: str | None) -> datetime | None:
    """A stored time back (None for none)."""
    if not raw:
        return None
    return datetime.fromisoformat(raw.replace("Z", "+00:00"))


# Identifiers in table keys. An identifier a client or shop chose (order number, line item id, SKU, tracking number,
# Idempotency-Key, a shop's order id) is always the LAST part of a key: `ORDER#<merchant_id>#<order_number>`,
# `DISPOSAL#<line_item_id>`, `IDEM#<key>`, `RIDX#<merchant_id>#sku=<sku>`. Everything before it is ours (a fixed
# word, generated ids, our own names), so a `#` or `/` in the identifier cannot move a boundary: a key is parsed by
# taking its fixed prefix off (never by splitting on every `#`), and two different identifiers never share a key
# (tests/unit/test_keys.py). That is why identifiers are kept verbatim here, unlike in S3 keys, where a line item id
# sits between other levels (domain/photos.segment): escaping them would move the stored items of order numbers such
# as "#1001" (a Shopify export imported as CSV) to other keys. Control characters are refused at the API's edge;
# over-long values never reach a key (at most 200 characters in a path, 64 in an identifier field).


def return_pk(return_id: str) -> str:
    return f"RETURN#{return_id}"


def parse_return_pk(pk: str) -> str:
    return pk.removeprefix("RETURN#")


def order_pk(merchant_id: str, order_number: str) -> str:
    return f"ORDER#{merchant_id}#{order_number}"


def parse_order_pk(pk: str) -> tuple[str, str]:
    """(merchant id, order number) of an `order_pk`: merchant ids hold no `#`, so the first `#` after it ends it."""
    merchant_id, _, order_number = pk.removeprefix("ORDER#").partition("#")
    return merchant_id, order_number


@dataclass(frozen=True)
class Marker:
    """An extra item written in the same transaction as an aggregate, only if it does not exist yet."""

    pk: str
    sk: str
    data: dict[str, Any] | None = None
    ttl_seconds: int | None = None
