"""Erasure of a customer's personal data (GDPR Art. 17) and the retention limit: pure, no I/O.

What a customer told us (email, name, address, comments, photos) is replaced by a stable pseudonym, never deleted
with the record: orders and returns stay readable for the merchant and the warehouse, and every figure the reports
count stays as it was (the report counters hold no personal data and are not touched).

The pseudonym of one customer of one merchant is always the same (`erased-<hex>@erased.invalid`: an HMAC, keyed
per merchant, of the normalised address's digest), so a second erasure, a retention sweep and an erasure of the
same customer agree, and a merchant can still see that two erased returns came from one customer. `.invalid` is a
reserved top-level domain (RFC 2606): no mail is ever sent to it. The address keeps its country (customs, routing and
reports by country read it) and the first two characters of the postal code (regional figures), nothing else.
"""

from __future__ import annotations

import hashlib
import hmac
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from typing import Any

from chalicelib.domain.addresses import Address
from chalicelib.domain.emails import email_digest, normalise_email
from chalicelib.domain.orders import Order
from chalicelib.domain.returns import Return, ReturnStatus
from chalicelib.domain.withdrawals import Withdrawal

ERASED_NAME = "Erased customer"
ERASED_DOMAIN = "erased.invalid"
POSTAL_CODE_PREFIX = 2
#: Return statuses after which nothing more happens to a return: the retention period runs from then.
ENDED = frozenset(
    {
        ReturnStatus.COMPLETED,
        ReturnStatus.REFUNDED,
        ReturnStatus.CANCELLED,
        ReturnStatus.EXPIRED,
        ReturnStatus.REJECTED,
    }
)
DEFAULT_RETENTION_DAYS = 1095  # three years after the return ended
MIN_RETENTION_DAYS = 30
MAX_RETENTION_DAYS = 3650
#: Timeline data keys that may carry what a customer wrote or who they are.
PERSONAL_KEYS = frozenset({"comment", "email", "name", "address", "phone", "shipping_address"})


def pseudonym(merchant_id: str, email: str) -> str:
    """The stable stand-in for one customer's address at one merchant."""
    return pseudonym_of_subject(merchant_id, subject_digest(email))


def pseudonym_of_subject(merchant_id: str, subject: str) -> str:
    """The pseudonym from the address's digest (`subject_digest`): what an erasure job holds instead of the address."""
    key = f"boomerang-erasure:{merchant_id}".encode()
    mac = hmac.new(key, subject.encode("ascii"), hashlib.sha256).hexdigest()[:20]
    return f"erased-{mac}@{ERASED_DOMAIN}"


def subject_key(subject: str) -> str:
    """The list index's email key (return_index.email_key) of the address whose digest is `subject`."""
    return subject[:32]


def is_pseudonym(email: str) -> bool:
    return normalise_email(email).endswith("@" + ERASED_DOMAIN)


def subject_digest(email: str) -> str:
    """What an erasure record keeps of the address it erased: a digest, never the address."""
    return email_digest(email)


def pseudonymise_address(address: Address) -> Address:
    return Address(
        name=ERASED_NAME,
        street="",
        house_number="",
        postal_code=address.postal_code[:POSTAL_CODE_PREFIX],
        city="",
        country=address.country,
    )


def pseudonymise_order(order: Order, alias: str) -> Order:
    """A copy of `order` without the customer (`alias`: their pseudonym); items, amounts and dates kept."""
    return replace(order, email=alias, shipping_address=pseudonymise_address(order.shipping_address))


@dataclass(frozen=True)
class ReturnErasure:
    """What erasing a return removed: the S3 objects to delete (labels, customs declarations, customer photos and
    the parcel photos that show the label's address)."""

    objects: tuple[str, ...]
    changed: bool


def pseudonymise_return(ret: Return, email_key: str | None) -> ReturnErasure:
    """Remove the customer from `ret` in place: item comments and customer photos go, the label and the customs
    declaration (both print the address) and the parcel photos go, the list index's email facet becomes the
    pseudonym's (`email_key`, so a filter by the old address no longer finds it). Whether anything changed."""
    objects: list[str] = []
    changed = False
    for item in ret.items:
        if item.comment is not None:
            item.comment = None
            changed = True
        if item.customer_photos:
            objects += item.customer_photos
            item.customer_photos = []
            changed = True
    if ret.label_key:
        objects.append(ret.label_key)
        ret.label_key = None
        changed = True
    if ret.customs and ret.customs.get("declaration_key"):
        objects.append(str(ret.customs["declaration_key"]))
        ret.customs = {k: v for k, v in ret.customs.items() if k != "declaration_key"}
        changed = True
    if ret.parcel_photos:
        objects += ret.parcel_photos
        ret.parcel_photos = []
        changed = True
    if ret.customer_email_key != email_key:
        ret.customer_email_key = email_key
        changed = True
    return ReturnErasure(tuple(objects), changed)


def pseudonymise_timeline_data(data: dict[str, Any]) -> dict[str, Any]:
    """A timeline entry's data without the keys that may hold what the customer wrote or who they are."""
    return {k: v for k, v in data.items() if k not in PERSONAL_KEYS}


def pseudonymise_withdrawal(w: Withdrawal) -> Withdrawal:
    """The declaration stays (the legal act: which order, which items, when); the declared name goes."""
    return replace(w, name=ERASED_NAME)


def retention_due(ended_at: datetime, retention_days: int) -> datetime:
    """When a return that ended at `ended_at` is pseudonymised by the retention sweep."""
    return ended_at + timedelta(days=retention_days)


def check_retention_days(days: int) -> str | None:
    """Why `days` is not a retention period a merchant may set (None: it is)."""
    if not MIN_RETENTION_DAYS <= days <= MAX_RETENTION_DAYS:
        return f"must be between {MIN_RETENTION_DAYS} and {MAX_RETENTION_DAYS} days"
    return None
