"""Order intake from the merchant's shop (Shopify and WooCommerce webhooks) and from CSV files.

Webhooks: the signature is checked over the raw body with the merchant's own webhook secret (stored by
`PUT /v1/settings/shop`); an unknown merchant, one without a shop of that platform, a missing or wrong signature all
get the same 401, and nothing is written. A delivery is claimed once (a marker with a TTL, keyed by the shop's
delivery id); a duplicate answers 2xx and changes nothing, and a delivery that fails after the claim releases it so
that the shop's retry is processed. Orders are upserted by order number (`services.orders.upsert_order`); a pointer
from the shop's order id to our order number lets fulfillment webhooks (which carry only the shop's id) find it,
and carries the shop's `updated_at`, so an update that arrives after a newer one is skipped.

CSV imports run inside the request (no queue): at most MAX_CSV_BYTES and MAX_CSV_ROWS rows, and orders that do not
fit into IMPORT_TIME_BUDGET_SECONDS (API Gateway ends a request after 29 s) are reported as not imported, to be
uploaded again (re-importing is an idempotent upsert). The report is one item, kept IMPORT_KEEP_DAYS days.

No personal data (emails, names, addresses) goes into logs: only merchant id, platform, topic, ids and counts.
"""

from __future__ import annotations

import hashlib
import json
import re
import time
from collections.abc import Callable
from functools import partial
from typing import Any

from chalicelib.bootstrap import Container
from chalicelib.domain.errors import DomainError, MalformedInput, NotFound, Unauthorized, ValidationFailed
from chalicelib.domain.identifiers import new_id
from chalicelib.domain.orders import Order
from chalicelib.domain.shop_orders import (
    SHOPIFY_FULFILLMENT_EVENT_TOPIC,
    SHOPIFY_FULFILLMENT_TOPICS,
    SHOPIFY_ORDER_TOPICS,
    WOOCOMMERCE_ORDER_TOPICS,
    MappedOrder,
    Piece,
    RowError,
    Unusable,
    Validator,
    missing_pieces,
    parse_orders_csv,
    shopify_fulfillment,
    shopify_fulfillment_event,
    shopify_order,
    validated,
    woocommerce_order,
)
from chalicelib.domain.signatures import verify_shopify, verify_woocommerce
from chalicelib.observability import logger
from chalicelib.services import orders

Header = Callable[[str], str | None]

#: Where `PUT /v1/settings/shop` keeps the webhook secret (services.tenants.put_shop: "shop-" + field name).
WEBHOOK_SECRET_NAME = "shop-webhook-secret"  # noqa: S105 (a parameter name, not a secret)
#: How long a delivery id is remembered: longer than the shops retry (Shopify: 8 tries within 4 hours).
DEDUPE_TTL_SECONDS = 7 * 24 * 3600
#: Webhook secrets are cached per process this long: SSM GetParameter allows about 40 calls a second per account,
#: less than a shop's burst of webhooks. A signature that fails against a cached secret is checked once more
#: against a fresh read (a changed secret works at once), but not more often than every SECRET_REREAD_SECONDS per
#: merchant, so that forged requests cannot use up the SSM quota.
SECRET_CACHE_SECONDS = 300.0
SECRET_REREAD_SECONDS = 10.0
#: The one answer for every authentication failure: it does not tell whether the merchant exists.
REJECTED = "missing or invalid webhook signature"

MAX_CSV_BYTES = 2 * 1024 * 1024
MAX_CSV_ROWS = 5000
IMPORT_TIME_BUDGET_SECONDS = 20.0
IMPORT_KEEP_DAYS = 90
#: At most this many errors are stored in a report (the item stays far below DynamoDB's 400 KB).
MAX_REPORTED_ERRORS = 1000

_MERCHANT_ID = re.compile(r"^[A-Za-z0-9_-]{1,64}$")
_IMPORT_ID = re.compile(r"^imp_[0-9A-Z]{26}$")
_DELIVERY_ID = re.compile(r"^[A-Za-z0-9._:-]{1,100}$")
_WOO_PING = re.compile(rb"^webhook_id=\d{1,20}$")

_secrets: dict[str, tuple[str | None, float]] = {}  # merchant id -> (webhook secret, monotonic time read)


# ----- authentication --------------------------------------------------------------------------------------------
def _secret(c: Container, merchant_id: str, *, fresh: bool = False) -> tuple[str | None, bool]:
    """(the merchant's webhook secret, whether a fresh read might still change it). `fresh`: read it again unless
    it was read within SECRET_REREAD_SECONDS."""
    now = time.monotonic()
    cached = _secrets.get(merchant_id)
    if cached is not None:
        age = now - cached[1]
        if (not fresh and age < SECRET_CACHE_SECONDS) or (fresh and age < SECRET_REREAD_SECONDS):
            return cached[0], age >= SECRET_REREAD_SECONDS
    value = c.secrets.get(merchant_id, WEBHOOK_SECRET_NAME)
    _secrets[merchant_id] = (value, now)
    return value, False


def _authenticate(
    c: Container,
    merchant_id: str,
    platform: str,
    body: bytes,
    signature: str | None,
    verify: Callable[[str, bytes, str | None], bool],
) -> None:
    def reject(why: str) -> Unauthorized:
        logger.info("shop webhook rejected", platform=platform, reason=why, signature_present=bool(signature))
        return Unauthorized(REJECTED)

    if not signature:
        raise reject("no signature")
    if not _MERCHANT_ID.fullmatch(merchant_id):
        raise reject("not a merchant id")
    try:
        merchant = c.store.get_merchant(merchant_id)
    except NotFound:
        raise reject("unknown merchant") from None
    if (merchant.shop or {}).get("platform") != platform:
        raise reject("no shop of this platform")
    secret, stale = _secret(c, merchant_id)
    if secret and verify(secret, body, signature):
        return
    if stale:
        secret, _ = _secret(c, merchant_id, fresh=True)
        if secret and verify(secret, body, signature):
            return
    raise reject("signature mismatch" if secret else "no webhook secret stored")


def _json_object(body: bytes) -> dict[str, Any]:
    try:
        payload = json.loads(body.decode("utf-8"))
    except (ValueError, UnicodeDecodeError):
        raise MalformedInput("the body is not JSON") from None
    if not isinstance(payload, dict):
        raise MalformedInput("the body is not a JSON object")
    return payload


# ----- receiving -------------------------------------------------------------------------------------------------
def _once(
    c: Container, merchant_id: str, platform: str, delivery_id: str | None, topic: str, work: Callable[[], str]
) -> str:
    """Run `work` once per delivery id (none given: every time; the upsert is idempotent anyway)."""
    if not delivery_id:
        return work()
    key = delivery_id if _DELIVERY_ID.fullmatch(delivery_id) else hashlib.sha256(delivery_id.encode()).hexdigest()
    pk, sk = f"SHOPWEBHOOK#{merchant_id}#{platform}#{key}", "DELIVERY"
    if not c.store.claim_marker(pk, sk, {"topic": topic}, DEDUPE_TTL_SECONDS):
        logger.info("shop webhook duplicate", merchant_id=merchant_id, platform=platform, topic=topic)
        return "duplicate"
    try:
        return work()
    except BaseException:
        c.store.release_marker(pk, sk)  # the shop retries; the retry must be processed
        raise


def receive_shopify(c: Container, merchant_id: str, body: bytes, header: Header, validate: Validator) -> dict[str, str]:
    """A Shopify webhook (`X-Shopify-Topic`, `X-Shopify-Hmac-SHA256`, `X-Shopify-Webhook-Id`). Topics:
    `orders/create`, `orders/updated` (upsert), `fulfillments/create`, `fulfillments/update` and
    `fulfillment_events/create` (delivered pieces); any other topic is acknowledged and ignored."""
    _authenticate(c, merchant_id, "shopify", body, header("X-Shopify-Hmac-SHA256"), verify_shopify)
    payload = _json_object(body)
    topic = (header("X-Shopify-Topic") or "").strip()
    work: Callable[[], str]
    if topic in SHOPIFY_ORDER_TOPICS:
        work = partial(_take_order, c, merchant_id, payload, shopify_order, validate)
    elif topic in SHOPIFY_FULFILLMENT_TOPICS:
        work = partial(_take_fulfillment, c, merchant_id, payload)
    elif topic == SHOPIFY_FULFILLMENT_EVENT_TOPIC:
        work = partial(_take_fulfillment_event, c, merchant_id, payload)
    else:
        logger.info("shop webhook topic ignored", merchant_id=merchant_id, platform="shopify", topic=topic[:100])
        return {"status": "ok", "result": "ignored"}
    result = _once(c, merchant_id, "shopify", header("X-Shopify-Webhook-Id"), topic, work)
    return {"status": "ok", "result": result}


def receive_woocommerce(
    c: Container, merchant_id: str, body: bytes, header: Header, validate: Validator
) -> dict[str, str]:
    """A WooCommerce webhook (`X-WC-Webhook-Topic`, `X-WC-Webhook-Signature`, `X-WC-Webhook-Delivery-ID`).

    The ping WooCommerce sends when a webhook is saved (form body `webhook_id=<n>`, no topic, no signature) is
    answered 200 without looking at anything: WooCommerce activates the webhook only after a 200, and the answer
    says nothing about the merchant. Topics `order.created` and `order.updated` upsert; others are ignored.

    The delivery id is a hash of the webhook id and the current second (WC_Webhook::get_new_delivery_id), so two
    different updates within one second share it: the dedupe key adds a digest of the body.
    """
    topic = (header("X-WC-Webhook-Topic") or "").strip()
    if not topic and not header("X-WC-Webhook-Signature") and _WOO_PING.fullmatch(body.strip()):
        return {"status": "ok", "result": "ping"}
    _authenticate(c, merchant_id, "woocommerce", body, header("X-WC-Webhook-Signature"), verify_woocommerce)
    payload = _json_object(body)
    if topic not in WOOCOMMERCE_ORDER_TOPICS:
        logger.info("shop webhook topic ignored", merchant_id=merchant_id, platform="woocommerce", topic=topic[:100])
        return {"status": "ok", "result": "ignored"}
    delivery = header("X-WC-Webhook-Delivery-ID")
    key = f"{delivery}:{hashlib.sha256(body).hexdigest()[:32]}" if delivery else None
    work = partial(_take_order, c, merchant_id, payload, woocommerce_order, validate)
    return {"status": "ok", "result": _once(c, merchant_id, "woocommerce", key, topic, work)}


# ----- applying --------------------------------------------------------------------------------------------------
def _refs(order: Order) -> dict[str, list[str | None]]:
    return {i.line_item_id: [d.ref for d in i.deliveries] for i in order.items}


def _take_order(
    c: Container, merchant_id: str, payload: dict[str, Any], mapper: Callable[[Any], MappedOrder], validate: Validator
) -> str:
    try:
        mapped = mapper(payload)
    except Unusable as exc:
        logger.info("shop order not taken", merchant_id=merchant_id, reason=exc.reason)
        return "ignored"
    platform = mapped.platform
    link = c.store.get_shop_order(merchant_id, platform, mapped.external_id)
    if link and link.shop_updated_at and mapped.shop_updated_at and mapped.shop_updated_at < link.shop_updated_at:
        logger.info("shop order update is older than the one taken", merchant_id=merchant_id, platform=platform)
        return "stale"
    data = validated(mapped, validate)
    try:
        order, created = orders.upsert_order(c, merchant_id, data, source=platform, keep_deliveries=True)
    except ValidationFailed as exc:  # e.g. fewer pieces than are already in returns: name the shop's fields
        errors = [{"loc": mapped.source_loc(tuple(e["loc"])), "msg": e["msg"]} for e in exc.errors]
        raise ValidationFailed(f"{platform} order: {exc.detail}", errors) from None
    pieces = missing_pieces(_refs(order), mapped.delivered)
    if pieces:
        orders.record_deliveries(c, merchant_id, order.order_number, pieces)
    c.store.put_shop_order(merchant_id, platform, mapped.external_id, order.order_number, mapped.shop_updated_at)
    logger.info(
        "shop order taken",
        merchant_id=merchant_id,
        platform=platform,
        external_id=mapped.external_id,
        outcome="created" if created else "updated",
        items=len(order.items),
        delivered_pieces=len(pieces),
    )
    return "created" if created else "updated"


def _deliver(c: Container, merchant_id: str, order_number: str, pieces: list[Piece]) -> str:
    order = c.store.get_order(merchant_id, order_number)
    new = missing_pieces(_refs(order), pieces) if order else []
    if new:
        orders.record_deliveries(c, merchant_id, order_number, new)
    logger.info("shop delivery taken", merchant_id=merchant_id, platform="shopify", pieces=len(new))
    return "delivered" if new else "unchanged"


def _take_fulfillment(c: Container, merchant_id: str, payload: dict[str, Any]) -> str:
    f = shopify_fulfillment(payload)
    link = c.store.get_shop_order(merchant_id, "shopify", f.order_external_id)
    if link is None:
        logger.info("shop fulfillment for an unknown order", merchant_id=merchant_id, platform="shopify")
        return "unknown_order"
    if f.cancelled:
        return "ignored"
    if f.delivered_at is None:  # its delivery may come as a fulfillment event, which names no lines
        c.store.put_shop_fulfillment(merchant_id, "shopify", f.order_external_id, f.id, f.lines)
        return "recorded"
    return _deliver(c, merchant_id, link.order_number, f.pieces())


def _take_fulfillment_event(c: Container, merchant_id: str, payload: dict[str, Any]) -> str:
    ev = shopify_fulfillment_event(payload)
    if ev.status != "delivered":
        return "ignored"
    link = c.store.get_shop_order(merchant_id, "shopify", ev.order_external_id)
    lines = c.store.get_shop_fulfillment(merchant_id, "shopify", ev.order_external_id, ev.fulfillment_id)
    if link is None or lines is None:
        logger.info("shop delivery for an unknown order or fulfillment", merchant_id=merchant_id, platform="shopify")
        return "unknown_order"
    at = ev.happened_at or c.now()
    return _deliver(c, merchant_id, link.order_number, [(line, q, at, ev.fulfillment_id) for line, q in lines.items()])


# ----- CSV imports -----------------------------------------------------------------------------------------------
def import_orders_csv(
    c: Container,
    merchant_id: str,
    body: bytes,
    validate: Validator,
    *,
    max_rows: int = MAX_CSV_ROWS,
    time_budget_seconds: float = IMPORT_TIME_BUDGET_SECONDS,
) -> dict[str, Any]:
    """Import orders from a CSV file, synchronously, and store the report. The caller limits the size.

    A file that cannot be read as a whole (not UTF-8, not CSV, a required column missing, too many rows) is a
    ValidationFailed (422) and nothing is stored. Otherwise every good order is upserted (source "csv") and every
    bad one is named in the report with its rows; orders left when the time budget runs out are reported as not
    imported (upload them again).
    """
    started = time.monotonic()
    try:
        text = body.decode("utf-8-sig")
    except UnicodeDecodeError:
        raise ValidationFailed.at(["body"], "not UTF-8 text: export the file as CSV UTF-8") from None
    batch = parse_orders_csv(text, validate, max_rows=max_rows)
    errors = list(batch.errors)
    created = updated = 0
    failed = batch.failed
    for csv_order in batch.valid:
        assert csv_order.data is not None
        if time.monotonic() - started > time_budget_seconds:
            errors.append(
                RowError(csv_order.rows[0], "order_number", "not imported: the import ran out of time; upload it again")
            )
            failed += 1
            continue
        try:
            _, is_new = orders.upsert_order(c, merchant_id, csv_order.data, source="csv")
        except ValidationFailed as exc:
            errors.extend(
                csv_order.error_at(tuple(e["loc"]), e["msg"]) for e in exc.errors or [{"loc": [], "msg": exc.detail}]
            )
            failed += 1
            continue
        except DomainError as exc:  # e.g. the order changed concurrently three times
            errors.append(RowError(csv_order.rows[0], "order_number", f"not imported: {exc.detail}"))
            failed += 1
            continue
        if is_new:
            created += 1
        else:
            updated += 1
    errors.sort(key=lambda e: (e.row, e.field))
    import_id = new_id("imp")
    now = c.now()
    report: dict[str, Any] = {
        "id": import_id,
        "status": "completed",
        "created_at": now.isoformat().replace("+00:00", "Z"),
        "rows": batch.rows,
        "orders": len(batch.orders),
        "imported": created + updated,
        "created": created,
        "updated": updated,
        "failed": failed,
        "errors": [e.to_dict() for e in errors[:MAX_REPORTED_ERRORS]],
        "errors_truncated": len(errors) > MAX_REPORTED_ERRORS,
        "ignored_columns": batch.ignored_columns,
    }
    c.store.save_import(merchant_id, import_id, report, now, IMPORT_KEEP_DAYS)
    logger.info(
        "orders imported",
        merchant_id=merchant_id,
        import_id=import_id,
        rows=batch.rows,
        imported=created + updated,
        failed=failed,
    )
    return report


def get_import(c: Container, merchant_id: str, import_id: str) -> dict[str, Any]:
    if not _IMPORT_ID.fullmatch(import_id):
        raise NotFound(f"import '{import_id[:40]}' not found")
    return c.store.get_import(merchant_id, import_id)
