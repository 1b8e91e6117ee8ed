"""Helpers that drive the API the way clients do (chalice test client)."""

from __future__ import annotations

import json
import uuid
from typing import TYPE_CHECKING, Any

from chalice.test import Client

if TYPE_CHECKING:
    from local.outbox import Drained
    from local.provision import Resources

OPERATOR_KEY = "op_test_0123456789abcdef"

ADDRESS = {
    "name": "Lager Nord",
    "street": "Hafenstrasse",
    "house_number": "12",
    "postal_code": "20457",
    "city": "Hamburg",
    "country": "DE",
}
CUSTOMER_ADDRESS = {
    "name": "Erika Mustermann",
    "street": "Musterweg",
    "house_number": "5",
    "postal_code": "10115",
    "city": "Berlin",
    "country": "DE",
}


def unique(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:10]}"


class Api:
    def __init__(self, client: Client) -> None:
        self.client = client

    def call(
        self,
        method: str,
        path: str,
        key: str | None = None,
        body: Any = None,
        headers: dict[str, str] | None = None,
        raw: bytes | None = None,
    ) -> Any:
        h = {"Content-Type": "application/json", **(headers or {})}
        if key:
            h["Authorization"] = f"Bearer {key}"
        payload = raw if raw is not None else (json.dumps(body) if body is not None else None)
        resp = self.client.http.request(method, path, headers=h, body=payload)
        return resp

    def ok(
        self,
        method: str,
        path: str,
        key: str | None = None,
        body: Any = None,
        expect: int = 200,
        headers: dict[str, str] | None = None,
    ) -> Any:
        resp = self.call(method, path, key, body, headers)
        assert resp.status_code == expect, (resp.status_code, resp.body)
        return json.loads(resp.body) if resp.body else None

    # ----- set-up ---------------------------------------------------------------------------------------
    def warehouse(self) -> dict[str, Any]:
        return self.ok("POST", "/v1/admin/warehouses", OPERATOR_KEY, {"name": unique("wh"), "address": ADDRESS}, 201)

    def merchant(self, warehouse_id: str, **extra: Any) -> dict[str, Any]:
        body = {
            "name": "Demo Fashion",
            "slug": unique("shop"),
            "warehouse_id": warehouse_id,
            "contact_email": "ops@shop.example",
            **extra,
        }
        return self.ok("POST", "/v1/admin/merchants", OPERATOR_KEY, body, 201)

    def order(
        self,
        merchant_key: str,
        *,
        items: list[dict[str, Any]] | None = None,
        delivered_at: str = "2026-11-20T10:00:00Z",
        **extra: Any,
    ) -> dict[str, Any]:
        body = {
            "order_number": unique("ORD"),
            "email": "erika@example.com",
            "currency": "EUR",
            "ordered_at": "2026-11-15T10:00:00Z",
            "delivered_at": delivered_at,
            "locale": "de",
            "shipping_address": CUSTOMER_ADDRESS,
            "items": items
            or [
                {
                    "line_item_id": "L1",
                    "sku": "SHIRT-M",
                    "name": "Shirt M",
                    "quantity": 2,
                    "unit_price": "29.95",
                },
                {
                    "line_item_id": "L2",
                    "sku": "JEANS-32",
                    "name": "Jeans 32",
                    "quantity": 1,
                    "unit_price": "79.00",
                    "tags": ["denim"],
                },
            ],
            **extra,
        }
        self.ok("POST", "/v1/orders", merchant_key, body, 201)
        return body

    def session(self, slug: str, order: dict[str, Any]) -> str:
        out = self.ok(
            "POST",
            f"/v1/portal/merchants/{slug}/sessions",
            None,
            {"order_number": order["order_number"], "email": order["email"]},
            201,
        )
        return str(out["token"])

    def tenant(self) -> dict[str, Any]:
        wh = self.warehouse()
        m = self.merchant(wh["id"])
        return {
            "warehouse": wh,
            "merchant": m,
            "wh_key": wh["api_key"],
            "m_key": m["api_key"],
            "slug": m["slug"],
        }

    def create_return(
        self,
        tenant: dict[str, Any],
        lines: list[dict[str, Any]] | None = None,
        order: dict[str, Any] | None = None,
    ) -> dict[str, Any]:
        order = order or self.order(tenant["m_key"])
        token = self.session(tenant["slug"], order)
        lines = lines or [{"line_item_id": "L1", "quantity": 1, "reason": "too_small"}]
        ret = self.ok("POST", "/v1/portal/returns", token, {"items": lines}, 201)
        ret["_token"] = token
        ret["_order"] = order
        return ret


def wait_for_status(api: Api, key: str, return_id: str, status: str, timeout: float = 30) -> dict[str, Any]:
    """Poll the merchant API until the return reaches `status` (state machines run in moto's threads)."""
    import time

    deadline = time.time() + timeout
    while True:
        ret = api.ok("GET", f"/v1/returns/{return_id}", key)
        if ret["status"] == status:
            return ret
        assert time.time() < deadline, f"still {ret['status']}, wanted {status}: {ret['timeline']}"
        time.sleep(0.2)


def received_return(api: Api, tenant: dict[str, Any], lines: list[dict[str, Any]] | None = None) -> dict[str, Any]:
    ret = api.create_return(tenant, lines=lines)
    api.ok("POST", "/v1/warehouse/scans", tenant["wh_key"], {"barcode": ret["tracking_number"]})
    return ret


def inspect(api: Api, tenant: dict[str, Any], ret: dict[str, Any], lines: list[dict[str, Any]]) -> None:
    api.ok("POST", f"/v1/warehouse/returns/{ret['id']}/inspection", tenant["wh_key"], {"items": lines}, 202)


# ----- carriers and queues -------------------------------------------------------------------------------------
TRACKING_QUEUE_ARN = "arn:aws:sqs:eu-central-1:123456789012:boomerang-tracking"


def easypost_event(event_id: str, tracking_code: str, status: str, at: str) -> bytes:
    """An EasyPost `tracker.updated` event body, compact as EasyPost sends it."""
    return json.dumps(
        {
            "id": event_id,
            "object": "Event",
            "description": "tracker.updated",
            "result": {
                "object": "Tracker",
                "tracking_code": tracking_code,
                "status": status,
                "status_detail": "arrived_at_facility",
                "updated_at": at,
                "tracking_details": [{"status": status, "datetime": at, "message": "scan"}],
            },
        },
        separators=(",", ":"),
    ).encode()


def shippo_event(tracking_number: str, status: str, at: str, substatus: str | None = None) -> bytes:
    """A Shippo `track_updated` body (Shippo's statuses: PRE_TRANSIT, TRANSIT, DELIVERED, RETURNED, FAILURE...)."""
    tracking_status = {
        "status": status,
        "substatus": {"code": substatus, "text": substatus, "action_required": False} if substatus else None,
        "status_date": at,
        "status_details": "scan",
        "location": {"city": "Hamburg", "state": None, "zip": "20457", "country": "DE"},
    }
    return json.dumps(
        {
            "event": "track_updated",
            "test": False,
            "data": {
                "carrier": "dhl_express",
                "tracking_number": tracking_number,
                "tracking_status": tracking_status,
                "tracking_history": [tracking_status],
                "metadata": None,
            },
        }
    ).encode()


def aftership_event(event_id: str, tracking_number: str, tag: str, at: str, subtag: str | None = None) -> bytes:
    """An AfterShip `tracking_update` body; `at` is the latest checkpoint's time."""
    return json.dumps(
        {
            "event": "tracking_update",
            "event_id": event_id,
            "is_tracking_first_tag": True,
            "ts": 1_700_000_000,
            "msg": {
                "id": f"as-{event_id}",
                "tracking_number": tracking_number,
                "slug": "dhl",
                "tag": tag,
                "subtag": subtag or f"{tag}_001",
                "checkpoints": [
                    {"checkpoint_time": "2026-01-01T00:00:00+00:00", "tag": "InfoReceived", "message": "info"},
                    {"checkpoint_time": at, "tag": tag, "subtag": subtag or f"{tag}_001", "message": "scan"},
                ],
            },
        }
    ).encode()


def sendcloud_event(parcel_id: int, tracking_number: str, status_id: int, message: str, timestamp_ms: int) -> bytes:
    """A Sendcloud `parcel_status_changed` body; `timestamp` is in milliseconds."""
    return json.dumps(
        {
            "action": "parcel_status_changed",
            "timestamp": timestamp_ms,
            "carrier_status_change_timestamp": timestamp_ms,
            "parcel": {
                "id": parcel_id,
                "tracking_number": tracking_number,
                "status": {"id": status_id, "message": message},
                "carrier": {"code": "dhl"},
            },
        }
    ).encode()


def signature_headers(provider: str, secret: str, body: bytes, timestamp: int | None = None) -> dict[str, str]:
    """The header a provider signs `body` with (Shippo: at `timestamp`, default now)."""
    import time

    from chalicelib.domain import signatures

    if provider == "easypost":
        return {"X-Hmac-Signature": signatures.easypost_signature(secret, body)}
    if provider == "shippo":
        at = int(time.time()) if timestamp is None else timestamp
        return {"Shippo-Auth-Signature": signatures.shippo_signature(secret, body, at)}
    if provider == "aftership":
        return {"aftership-hmac-sha256": signatures.base64_hmac(secret, body)}
    if provider == "sendcloud":
        return {"Sendcloud-Signature": signatures.sendcloud_signature(secret, body)}
    raise ValueError(provider)


def sqs_event(messages: list[dict[str, Any]]) -> dict[str, Any]:
    """The Lambda event for SQS messages as ReceiveMessage returns them (the local pollers build the same)."""
    from local.pollers import lambda_event

    return lambda_event(messages, TRACKING_QUEUE_ARN, "eu-central-1")


def drain_queue(queue_url: str, consumer: str = "tracking_consumer") -> dict[str, Any]:
    """Play the SQS event source mapping once: receive a batch, hand it to the consumer, delete what succeeded."""
    import boto3

    from local.lambda_router import call_handler

    sqs = boto3.client("sqs")
    msgs = sqs.receive_message(QueueUrl=queue_url, MaxNumberOfMessages=10, WaitTimeSeconds=0).get("Messages", [])
    result = call_handler(consumer, sqs_event(msgs))
    failed = {f["itemIdentifier"] for f in result["batchItemFailures"]}
    for m in msgs:
        if m["MessageId"] not in failed:
            sqs.delete_message(QueueUrl=queue_url, ReceiptHandle=m["ReceiptHandle"])
    return {"count": len(msgs), "failed": failed}


def drain_outbox(aws: Resources) -> Drained:
    """Play the outbox's stream event source mapping (local/outbox.py): every domain event committed since the last
    drain goes on the bus, where the rules deliver it (e.g. to the notification queue). Returns what was delivered."""
    from local.outbox import relay_for

    return relay_for(aws.stream_arn).drain()


class SteppingClock:
    """The app's clock, advanced by the caller: carrier times and our times then interleave like in life."""

    def __init__(self) -> None:
        from datetime import UTC, datetime, timedelta

        self._step = timedelta(milliseconds=1)
        self.now = datetime.now(UTC) - timedelta(days=2)

    def __call__(self) -> Any:
        self.now += self._step  # time moves on between two reads, as it does
        return self.now

    def advance(self, hours: float) -> str:
        from datetime import timedelta

        self.now += timedelta(hours=hours)
        return self.now.strftime("%Y-%m-%dT%H:%M:%SZ")


def assert_label_scans(content: bytes, tracking_number: str, qr_payload: str | None = None) -> None:
    """Render the label's first page as a 203 dpi thermal printer would print it and scan it: the Code 128 must give
    back the tracking number (and the QR code its payload). Used on every label the tests create (conftest)."""
    import pypdfium2 as pdfium
    import zxingcpp

    page = pdfium.PdfDocument(content)[0]
    found = {str(b.format): b.text for b in zxingcpp.read_barcodes(page.render(scale=203 / 72).to_pil())}
    assert found.get(str(zxingcpp.BarcodeFormat.Code128)) == tracking_number, found
    if qr_payload is not None:
        assert found.get(str(zxingcpp.BarcodeFormat.QRCode)) == qr_payload, found
