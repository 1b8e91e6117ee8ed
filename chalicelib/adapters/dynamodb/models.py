"""PynamoDB models of the single table. They live only in this adapter; repositories map them to domain objects.

Key design (one table, four sparse GSIs; every request path is a GetItem, BatchGetItem or Query):

| entity            | pk                                   | sk                      |
|-------------------|--------------------------------------|-------------------------|
| warehouse         | WAREHOUSE#<id>                       | WAREHOUSE               |
| merchant          | MERCHANT#<id>                        | MERCHANT                |
| slug -> merchant  | SLUG#<slug>                          | SLUG                    |
| api key (hashed)  | APIKEY#<sha256>                      | APIKEY                  |
| order             | ORDER#<merchant_id>#<order_number>   | ORDER                   |
| return            | RETURN#<id>                          | RETURN                  |
| timeline entry    | RETURN#<id> (PARCEL#<id>)            | TL#<at>#<seq>           |
| refund            | RETURN#<id>                          | REFUND#<refund_id>      |
| markers           | RETURN#<id>                          | CARRIEREVT#.. / IDEM#.. |
| tracking token    | TRACKTOKEN#<token>                   | TRACKTOKEN              |
| rate limit window | RATELIMIT#<scope>#<window>           | RATELIMIT               |
| shop order link   | SHOPORDER#<merchant>#<platform>#<id> | SHOPORDER / FULFILLMENT#<fulfillment id> |
| order import      | IMPORT#<merchant_id>#<import_id>     | IMPORT                  |
| customer's orders | CUSTOMER#<merchant_id>#<email key>   | ORDER#<order_number>    |
| subscription      | SUBS#<merchant_id>                   | SUB#<subscription_id>   |
| webhook delivery  | SUB#<merchant_id>#<subscription_id>  | DELIVERY#<delivery_id>  |

A timeline entry that announces a domain event carries it (`detail_type`, `detail`): the transactional outbox.
The table's stream delivers new ones to functions/event_publisher (docs/adr/0005-transactional-outbox.md).

GSI1 returns by merchant+status (gsi1pk MERCHANT#<id>#STATUS#<status>, gsi1sk <updated_at>#<id>);
GSI2 returns by tracking number (gsi2pk TRACKING#<number>); GSI3 returns by merchant (gsi3pk MERCHANT#<id>#RETURNS).
GSI4 (keys only) the records that must still reach a final state, by when (gsi4pk DUE#<kind>#<shard>, gsi4sk
<due>#<redrives>): webhook deliveries, refunds and exports while pending, withdrawal acknowledgements not yet sent.
Written with the state they watch, removed with it; read by the sweeper only (chalicelib/adapters/dynamodb/due.py).
"""

from __future__ import annotations

from typing import Any

from pynamodb.attributes import (
    JSONAttribute,
    ListAttribute,
    NumberAttribute,
    TTLAttribute,
    UnicodeAttribute,
    VersionAttribute,
)
from pynamodb.indexes import AllProjection, GlobalSecondaryIndex, KeysOnlyProjection
from pynamodb.models import Model


class _Meta:
    table_name = "unbound"  # set by bind() from settings; no default resource name is ever used
    region: str | None = None
    host: str | None = None


class Base(Model):
    class Meta(_Meta):
        pass

    pk = UnicodeAttribute(hash_key=True)
    sk = UnicodeAttribute(range_key=True)


class _Gsi(GlobalSecondaryIndex[Any]):
    class Meta:
        projection = AllProjection()


class ReturnsByMerchantStatus(_Gsi):
    class Meta(_Gsi.Meta):
        index_name = "gsi1"

    gsi1pk = UnicodeAttribute(hash_key=True)
    gsi1sk = UnicodeAttribute(range_key=True)


class ReturnsByTrackingNumber(_Gsi):
    class Meta(_Gsi.Meta):
        index_name = "gsi2"

    gsi2pk = UnicodeAttribute(hash_key=True)
    gsi2sk = UnicodeAttribute(range_key=True)


class ReturnsByMerchant(_Gsi):
    class Meta(_Gsi.Meta):
        index_name = "gsi3"

    gsi3pk = UnicodeAttribute(hash_key=True)
    gsi3sk = UnicodeAttribute(range_key=True)


class DueIndex(GlobalSecondaryIndex[Any]):
    """GSI4: what the sweeper must look at (keys only: it reads each record itself, consistently)."""

    class Meta:
        index_name = "gsi4"
        projection = KeysOnlyProjection()

    gsi4pk = UnicodeAttribute(hash_key=True)
    gsi4sk = UnicodeAttribute(range_key=True)


class DueRecord(Base):
    """The sweeper's view of any record in GSI4: its keys and its due key (chalicelib/adapters/dynamodb/due.py)."""

    class Meta(_Meta):
        pass

    gsi4pk = UnicodeAttribute(null=True)
    gsi4sk = UnicodeAttribute(null=True)
    due = DueIndex()


class WarehouseRecord(Base):
    class Meta(_Meta):
        pass

    name = UnicodeAttribute()
    address = JSONAttribute()
    created_at = UnicodeAttribute()
    routing = JSONAttribute(null=True)


class MerchantRecord(Base):
    class Meta(_Meta):
        pass

    name = UnicodeAttribute()
    slug = UnicodeAttribute()
    warehouse_id = UnicodeAttribute()
    contact_email = UnicodeAttribute(null=True)
    locale = UnicodeAttribute()
    created_at = UnicodeAttribute()
    policy = JSONAttribute(null=True)
    guideline = JSONAttribute(null=True)
    refunds = JSONAttribute(null=True)
    checklists = JSONAttribute(null=True)
    shop = JSONAttribute(null=True)  # the shop connection without its secrets (those are in SSM)
    settings_version = NumberAttribute(default=0)  # each settings update adds one (fields update independently)


class PointerRecord(Base):
    """Small key->value items: slugs, hashed API keys, tracking tokens, idempotency and dedupe markers."""

    class Meta(_Meta):
        pass

    data = JSONAttribute(null=True)
    created_at = UnicodeAttribute(null=True)
    expires_at = TTLAttribute(null=True)
    gsi4pk = UnicodeAttribute(null=True)  # a withdrawal acknowledgement not sent yet (GSI4)
    gsi4sk = UnicodeAttribute(null=True)


class KeysByPrincipal(_Gsi):
    """A principal's API keys: gsi1pk KEYS#<kind>#<principal_id>, gsi1sk <created_at>#<key_id>."""

    class Meta(_Gsi.Meta):
        index_name = "gsi1"

    gsi1pk = UnicodeAttribute(hash_key=True)
    gsi1sk = UnicodeAttribute(range_key=True)


class ApiKeyRecord(Base):
    """An API key by its hash (pk APIKEY#<sha256>, sk APIKEY): what authentication reads. `data` holds kind,
    principal_id and key_id (a PointerRecord's shape: keys written before this model read the same); `last_used_at`
    is refreshed at most once per API_KEY_USE_INTERVAL. Listed per principal through gsi1 (never the hash)."""

    class Meta(_Meta):
        pass

    data = JSONAttribute(null=True)
    created_at = UnicodeAttribute(null=True)
    last_used_at = UnicodeAttribute(null=True)
    gsi1pk = UnicodeAttribute(null=True)
    gsi1sk = UnicodeAttribute(null=True)
    by_principal = KeysByPrincipal()


class TrackingNumberClaimRecord(Base):
    """A pre-printed return tracking number taken in a warehouse (pk RTN#<warehouse_id>#<number>, sk RTN): written
    with the order that registers it, on condition that no other merchant holds it."""

    class Meta(_Meta):
        pass

    merchant_id = UnicodeAttribute()
    order_number = UnicodeAttribute()
    created_at = UnicodeAttribute()


class CounterRecord(Base):
    class Meta(_Meta):
        pass

    hits = NumberAttribute(default=0)
    expires_at = TTLAttribute(null=True)


class ReportRecord(Base):
    """A report counter item (chalicelib/adapters/dynamodb/reports.py): pk REPORT#<merchant_id>#<YYYY-MM-DD>,
    sk <dimension>#<key>; each field only ever changed by ADD (chalicelib/domain/reports.FIELDS)."""

    class Meta(_Meta):
        pass

    n = NumberAttribute(null=True)
    returns = NumberAttribute(null=True)
    items = NumberAttribute(null=True)
    sold = NumberAttribute(null=True)
    returned = NumberAttribute(null=True)


class OrderRecord(Base):
    class Meta(_Meta):
        pass

    merchant_id = UnicodeAttribute()
    order_number = UnicodeAttribute()
    email = UnicodeAttribute()
    currency = UnicodeAttribute()
    ordered_at = UnicodeAttribute()
    delivered_at = UnicodeAttribute(null=True)
    locale = UnicodeAttribute(null=True)
    shipping_address = JSONAttribute()
    items = JSONAttribute()
    return_tracking_numbers = JSONAttribute(null=True)
    details = JSONAttribute(null=True)  # used_return_tracking_numbers, open_withdrawal_id
    updated_at = UnicodeAttribute()
    version = VersionAttribute()


class ReturnRecord(Base):
    class Meta(_Meta):
        pass

    merchant_id = UnicodeAttribute()
    warehouse_id = UnicodeAttribute()
    order_number = UnicodeAttribute()
    status = UnicodeAttribute()
    created_at = UnicodeAttribute()
    updated_at = UnicodeAttribute()
    currency = UnicodeAttribute()
    customer_country = UnicodeAttribute()
    locale = UnicodeAttribute()
    tracking_token = UnicodeAttribute()
    carrier = UnicodeAttribute(null=True)
    tracking_number = UnicodeAttribute(null=True)
    label_key = UnicodeAttribute(null=True)
    items = JSONAttribute()
    discrepancies = JSONAttribute(null=True)
    parcel_photos = JSONAttribute(null=True)
    refund = JSONAttribute(null=True)
    refunded_total = UnicodeAttribute(default="0")
    feedback_task_token = UnicodeAttribute(null=True)
    details = JSONAttribute(null=True)  # method, notify_customer, customs, withdrawal_id, label_expires_at
    version = VersionAttribute()

    gsi1pk = UnicodeAttribute(null=True)
    gsi1sk = UnicodeAttribute(null=True)
    gsi2pk = UnicodeAttribute(null=True)
    gsi2sk = UnicodeAttribute(null=True)
    gsi3pk = UnicodeAttribute(null=True)
    gsi3sk = UnicodeAttribute(null=True)

    by_merchant_status = ReturnsByMerchantStatus()
    by_tracking_number = ReturnsByTrackingNumber()
    by_merchant = ReturnsByMerchant()


class TimelineRecord(Base):
    class Meta(_Meta):
        pass

    type = UnicodeAttribute()
    at = UnicodeAttribute()
    actor = UnicodeAttribute()
    data = JSONAttribute(null=True)
    # The outbox: the domain event of this entry as it goes on the bus (EventBridge detail-type, detail as JSON text).
    # Only entries that are events have them; the stream's filter (infrastructure/definitions.OUTBOX) selects on it.
    detail_type = UnicodeAttribute(null=True)
    detail = UnicodeAttribute(null=True)


class RefundRecord(Base):
    class Meta(_Meta):
        pass

    refund_id = UnicodeAttribute()
    return_id = UnicodeAttribute()
    merchant_id = UnicodeAttribute()
    amount = UnicodeAttribute()
    currency = UnicodeAttribute()
    status = UnicodeAttribute()
    reason = UnicodeAttribute(null=True)
    target = UnicodeAttribute()
    created_at = UnicodeAttribute()
    updated_at = UnicodeAttribute()
    attempts = NumberAttribute(default=0)
    checks = NumberAttribute(default=0)  # times the shop was asked again about an unconfirmed refund
    error = UnicodeAttribute(null=True)
    items = JSONAttribute(null=True)
    # allocation {lines, shipping, quantities}, kind (money | store_credit), credit, shop_reference, breakdown
    details = JSONAttribute(null=True)
    # GSI4 while pending (the sweeper starts a workflow that never started, or fails a refund nobody settles)
    gsi4pk = UnicodeAttribute(null=True)
    gsi4sk = UnicodeAttribute(null=True)

    def serialize(self, null_check: bool = True) -> dict[str, dict[str, Any]]:
        """Only a pending refund stays in GSI4: whatever code settles it, the write that does leaves the index."""
        if self.status != "pending":
            self.gsi4pk = None
            self.gsi4sk = None
        return super().serialize(null_check=null_check)


class _Gsi1(_Gsi):
    """GSI1 is shared by several entity kinds (returns by merchant+status, work orders and parcels by
    warehouse+status, disposals by merchant+time): each model declares it with its own key meaning."""

    class Meta(_Gsi.Meta):
        index_name = "gsi1"

    gsi1pk = UnicodeAttribute(hash_key=True)
    gsi1sk = UnicodeAttribute(range_key=True)


class WorkOrdersByWarehouse(_Gsi1):
    pass


class ParcelsByWarehouse(_Gsi1):
    pass


class ParcelsByMerchant(_Gsi):
    """GSI2 (shared with returns by tracking number): parcels a warehouse thinks are a merchant's."""

    class Meta(_Gsi.Meta):
        index_name = "gsi2"

    gsi2pk = UnicodeAttribute(hash_key=True)
    gsi2sk = UnicodeAttribute(range_key=True)


class DisposalsByMerchant(_Gsi1):
    pass


class WorkOrderRecord(Base):
    """pk WORKORDER#<id>; gsi1pk WAREHOUSE#<id>#WORKORDERS#<status>, gsi1sk <created_at>#<id>."""

    class Meta(_Meta):
        pass

    return_id = UnicodeAttribute()
    merchant_id = UnicodeAttribute()
    warehouse_id = UnicodeAttribute()
    line_item_id = UnicodeAttribute()
    sku = UnicodeAttribute()
    quantity = NumberAttribute()
    steps = JSONAttribute()
    status = UnicodeAttribute()
    minutes = NumberAttribute(null=True)
    notes = UnicodeAttribute(null=True)
    created_at = UnicodeAttribute()
    completed_at = UnicodeAttribute(null=True)
    gsi1pk = UnicodeAttribute()
    gsi1sk = UnicodeAttribute()
    by_warehouse = WorkOrdersByWarehouse()


class DisposalRecord(Base):
    """pk RETURN#<id>, sk DISPOSAL#<line_item_id>; gsi1pk MERCHANT#<id>#DISPOSALS, gsi1sk <at>#<return>#<line>."""

    class Meta(_Meta):
        pass

    return_id = UnicodeAttribute()
    merchant_id = UnicodeAttribute()
    line_item_id = UnicodeAttribute()
    sku = UnicodeAttribute()
    quantity = NumberAttribute()
    grade = UnicodeAttribute(null=True)
    disposition = UnicodeAttribute()
    reason = UnicodeAttribute()
    photos = JSONAttribute(null=True)
    at = UnicodeAttribute()
    gsi1pk = UnicodeAttribute()
    gsi1sk = UnicodeAttribute()
    by_merchant = DisposalsByMerchant()


class BillingRecord(Base):
    """pk BILLING#<merchant_id>#<YYYY-MM>, sk BILLING: what the operator invoices, counted as it happens."""

    class Meta(_Meta):
        pass

    receipts = NumberAttribute(default=0)
    inspections = NumberAttribute(default=0)
    photos = NumberAttribute(default=0)
    refurbishment_minutes = NumberAttribute(default=0)
    restocks = NumberAttribute(default=0)
    disposals = NumberAttribute(default=0)


class ParcelRecord(Base):
    """pk PARCEL#<id>; gsi1pk WAREHOUSE#<id>#PARCELS#<status>, gsi1sk <created_at>#<id>; once assigned to a
    merchant gsi2pk MERCHANT#<id>#PARCELS#<status>, gsi2sk <created_at>#<id>."""

    class Meta(_Meta):
        pass

    warehouse_id = UnicodeAttribute()
    barcode = UnicodeAttribute()
    status = UnicodeAttribute()
    notes = UnicodeAttribute(null=True)
    sender = JSONAttribute(null=True)
    photos = ListAttribute(of=UnicodeAttribute, null=True)  # appended to by the photo processor
    return_id = UnicodeAttribute(null=True)
    created_at = UnicodeAttribute()
    matched_at = UnicodeAttribute(null=True)
    gsi1pk = UnicodeAttribute()
    gsi1sk = UnicodeAttribute()
    by_warehouse = ParcelsByWarehouse()
    merchant_id = UnicodeAttribute(null=True)
    gsi2pk = UnicodeAttribute(null=True)
    gsi2sk = UnicodeAttribute(null=True)
    by_merchant = ParcelsByMerchant()


class ImportRecord(Base):
    """pk IMPORT#<merchant_id>#<import_id>, sk IMPORT: an order import (CSV) and its report, kept for a while."""

    class Meta(_Meta):
        pass

    merchant_id = UnicodeAttribute()
    status = UnicodeAttribute()
    created_at = UnicodeAttribute()
    report = JSONAttribute()
    expires_at = TTLAttribute(null=True)


class SubscriptionRecord(Base):
    """pk SUBS#<merchant_id>, sk SUB#<subscription_id>: a webhook subscription (its secret is in SSM). All of a
    merchant's subscriptions are one Query (the dispatcher's per-event lookup)."""

    class Meta(_Meta):
        pass

    merchant_id = UnicodeAttribute()
    url = UnicodeAttribute()
    events = ListAttribute(of=UnicodeAttribute)
    created_at = UnicodeAttribute()


class DeliveryRecord(Base):
    """pk SUB#<merchant_id>#<subscription_id>, sk DELIVERY#<delivery_id> (ids start with the event time: the list is
    one Query, newest first). Created only if absent: one delivery per event and subscription."""

    class Meta(_Meta):
        pass

    merchant_id = UnicodeAttribute()
    subscription_id = UnicodeAttribute()
    event_id = UnicodeAttribute()
    event_type = UnicodeAttribute()
    payload = UnicodeAttribute()
    status = UnicodeAttribute()
    attempts = NumberAttribute(default=0)
    created_at = UnicodeAttribute()
    last_status_code = NumberAttribute(null=True)
    last_error = UnicodeAttribute(null=True)
    delivered_at = UnicodeAttribute(null=True)
    next_attempt_at = UnicodeAttribute(null=True)
    expires_at = TTLAttribute(null=True)
    gsi4pk = UnicodeAttribute(null=True)  # GSI4 while pending: the sweeper queues a retry whose message was lost
    gsi4sk = UnicodeAttribute(null=True)


class ExportRecord(Base):
    """pk EXPORT#<merchant_id>#<export_id>, sk EXPORT: a CSV export (chalicelib/domain/exports.py), kept for a while.
    The export worker may write these items only (IAM: dynamodb:LeadingKeys EXPORT#*)."""

    class Meta(_Meta):
        pass

    merchant_id = UnicodeAttribute()
    status = UnicodeAttribute()
    created_at = UnicodeAttribute()
    details = JSONAttribute()
    expires_at = TTLAttribute(null=True)
    gsi4pk = UnicodeAttribute(null=True)  # GSI4 while pending: the sweeper queues it again, or fails it
    gsi4sk = UnicodeAttribute(null=True)


ALL_MODELS: tuple[type[Model], ...] = (
    WarehouseRecord,
    MerchantRecord,
    PointerRecord,
    CounterRecord,
    OrderRecord,
    ReturnRecord,
    TimelineRecord,
    RefundRecord,
    WorkOrderRecord,
    DisposalRecord,
    BillingRecord,
    ParcelRecord,
    ImportRecord,
    ExportRecord,
    ReportRecord,
    SubscriptionRecord,
    DeliveryRecord,
    DueRecord,
    ApiKeyRecord,
    TrackingNumberClaimRecord,
)


def bind(table_name: str, region: str | None = None, host: str | None = None) -> None:
    """Point every model at the configured table (called once by the composition root)."""
    _Meta.table_name = table_name
    models: list[Any] = [Base, *ALL_MODELS]
    for model in models:
        model.Meta.table_name = table_name
        model.Meta.region = region
        model.Meta.host = host
        model._connection = None
        for index in getattr(model, "_indexes", {}).values():
            index._connection = None
