"""A customer's access export (GDPR Art. 15) end to end in moto: POST /v1/customers/export -> export record + message
on the export queue -> functions/export_worker (the customer's JSON document to S3 under exports/) -> GET
/v1/exports/{id} ready with a presigned URL -> the document, read from moto's bucket at the key the URL names.

The customer has two orders, a return with a comment and a photo of their own, and a withdrawal; another customer of
the same merchant and a customer with the same address at another merchant must not appear in it.
"""

from __future__ import annotations

import io
import json
from typing import Any
from urllib.parse import unquote, urlparse

import boto3
import pytest
from chalice.test import Client

from app import app
from chalicelib import bootstrap
from chalicelib.domain.access import SCHEMA_VERSION
from chalicelib.services import exports
from infrastructure import definitions as d
from tests.support import CUSTOMER_ADDRESS, OPERATOR_KEY, Api, SteppingClock, drain_outbox, drain_queue

REASONS = [
    {"code": "too_small", "label": "Too small"},
    {"code": "damaged", "label": "Arrived damaged", "comment_required": True, "photo_required": True},
]
EMAIL = "Erika.Access@Example.com"  # the orders give it in this form; the request in another


@pytest.fixture
def clock(aws: Any) -> SteppingClock:
    fake = SteppingClock()
    bootstrap.container().clock = fake
    return fake


@pytest.fixture
def api(aws: Any, clock: SteppingClock) -> Any:
    with Client(app) as client:
        yield Api(client)


def _png() -> bytes:
    from PIL import Image

    buf = io.BytesIO()
    Image.new("RGB", (8, 8), (200, 10, 10)).save(buf, format="PNG")
    return buf.getvalue()


def _object(aws: Any, url: str) -> tuple[bytes, str]:
    parsed = urlparse(url)
    path = unquote(parsed.path)
    key = path.split(f"/{aws.bucket_name}/", 1)[1] if f"/{aws.bucket_name}/" in path else path.lstrip("/")
    obj = boto3.client("s3").get_object(Bucket=aws.bucket_name, Key=key)
    return obj["Body"].read(), str(obj["ContentType"])


def _customer(api: Api, aws: Any, t: dict[str, Any]) -> dict[str, Any]:
    """Two orders, a return (with a comment and a customer photo) on the first, a withdrawal of the second."""
    first = api.order(t["m_key"], email=EMAIL)
    second = api.order(t["m_key"], email=EMAIL, shipping_address={**CUSTOMER_ADDRESS, "street": "Zweitweg"})
    token = api.session(t["slug"], first)
    up = api.ok("POST", "/v1/portal/photos", token, {"content_type": "image/png", "line_item_id": "L1"}, 201)
    bootstrap.container().files.put(up["key"], _png(), "image/png")
    line = {
        "line_item_id": "L1",
        "quantity": 1,
        "reason": "damaged",
        "comment": "torn seam left",
        "photos": [up["key"]],
    }
    ret = api.ok("POST", "/v1/portal/returns", token, {"items": [line]}, 201)
    body = {"order_number": second["order_number"], "email": EMAIL, "name": "Erika Widerruf", "confirm": True}
    withdrawal = api.ok("POST", f"/v1/portal/merchants/{t['slug']}/withdrawals", None, body, 201)
    # the milestone emails go out (notifier), so that the export can list them
    drain_outbox(aws)
    drain_queue(aws.queue_urls[d.NOTIFICATION_QUEUE.name], "notifier")
    return {"orders": [first, second], "return": ret, "photo": up["key"], "withdrawal": withdrawal}


def _request(api: Api, key: str, email: str) -> str:
    out = api.ok("POST", "/v1/customers/export", key, {"email": email}, 202)
    assert out["status"] == "pending"
    return str(out["id"])


def _document(api: Api, aws: Any, key: str, export_id: str) -> dict[str, Any]:
    pending = api.ok("GET", f"/v1/exports/{export_id}", key)
    assert pending["status"] == "pending" and pending["kind"] == "customer" and pending["format"] == "json"
    assert "url" not in pending or pending["url"] is None
    assert drain_queue(aws.queue_urls[d.EXPORT_QUEUE.name], "export_worker") == {"count": 1, "failed": set()}
    out = api.ok("GET", f"/v1/exports/{export_id}", key)
    assert out["status"] == "ready", out
    assert f"exports/{out['id']}" not in out["url"] and f"/{out['id']}.json" in out["url"]
    body, content_type = _object(aws, out["url"])
    assert content_type == "application/json" and out["size"] == len(body)
    doc: dict[str, Any] = json.loads(body.decode("utf-8"))
    return doc


def test_a_customers_export_holds_their_orders_returns_comments_photos_and_withdrawal_and_nobody_elses(
    api: Api, aws: Any
) -> None:
    t = api.tenant()
    api.ok("PUT", "/v1/settings/policy", t["m_key"], {"return_window_days": 30, "reasons": REASONS})
    mine = _customer(api, aws, t)
    # another customer of the same merchant, and the same address at another merchant
    stranger = api.order(
        t["m_key"], email="someone.else@example.com", shipping_address={**CUSTOMER_ADDRESS, "name": "Otto Fremd"}
    )
    api.create_return(t, order=stranger, lines=[{"line_item_id": "L2", "quantity": 1, "reason": "too_small"}])
    other = api.tenant()
    elsewhere = api.order(other["m_key"], email=EMAIL, shipping_address={**CUSTOMER_ADDRESS, "street": "Anderswo"})
    api.create_return(other, order=elsewhere, lines=[{"line_item_id": "L2", "quantity": 1, "reason": "too_small"}])

    doc = _document(api, aws, t["m_key"], _request(api, t["m_key"], "  erika.access@EXAMPLE.com "))

    assert doc["schema_version"] == SCHEMA_VERSION and doc["kind"] == "customer_data"
    assert doc["merchant"]["id"] == t["merchant"]["id"] and doc["generated_at"].endswith("Z")
    assert doc["customer"]["emails"] == ["erika.access@example.com"]
    assert "Erika Mustermann" in doc["customer"]["names"] and "Erika Widerruf" in doc["customer"]["names"]
    assert {a["street"] for a in doc["customer"]["addresses"]} == {"Musterweg", "Zweitweg"}
    # each order, whole: address and items
    assert sorted(o["order_number"] for o in doc["orders"]) == sorted(o["order_number"] for o in mine["orders"])
    for order in doc["orders"]:
        assert order["email"] == "erika.access@example.com" and order["shipping_address"]["postal_code"] == "10115"
        assert {i["sku"] for i in order["items"]} == {"SHIRT-M", "JEANS-32"}
    # the return: its item with the reason, the comment and the customer's photo, its timeline
    (ret,) = doc["returns"]
    assert ret["id"] == mine["return"]["id"] and ret["order_number"] == mine["orders"][0]["order_number"]
    (item,) = ret["items"]
    assert (item["reason"], item["comment"], item["customer_photos"]) == ("damaged", "torn seam left", [mine["photo"]])
    assert ret["timeline"] and ret["timeline"][0]["type"] == "return.requested", ret["timeline"][:1]
    assert mine["photo"] in doc["files"]["keys"]
    assert "feedback_task_token" not in ret and "customer_email_key" not in ret
    # the withdrawal, with its acknowledgement
    (withdrawal,) = doc["withdrawals"]
    assert withdrawal["id"] == mine["withdrawal"]["id"] and withdrawal["name"] == "Erika Widerruf"
    assert withdrawal["order_number"] == mine["orders"][1]["order_number"]
    assert withdrawal["acknowledgement"].get("sent_at")
    # the emails sent to them about the return
    assert "return.label_created" in {n["event_type"] for n in doc["notifications"]}
    assert all(n["return_id"] == ret["id"] for n in doc["notifications"])
    # nobody else's data
    text = json.dumps(doc)
    for absent in ("someone.else", "Otto Fremd", "Anderswo", stranger["order_number"], elsewhere["order_number"]):
        assert absent not in text


def test_a_customer_the_merchant_holds_nothing_about_gets_a_document_with_empty_sections(api: Api, aws: Any) -> None:
    t = api.tenant()
    other = api.tenant()
    api.order(other["m_key"], email="nobody.here@example.com")  # known elsewhere only
    doc = _document(api, aws, t["m_key"], _request(api, t["m_key"], "nobody.here@example.com"))
    assert doc["customer"] == {"emails": [], "names": [], "addresses": []}
    assert [doc[s] for s in ("orders", "returns", "withdrawals", "notifications")] == [[], [], [], []]
    assert doc["files"]["keys"] == []


@pytest.mark.parametrize(
    "body",
    [{"email": "not-an-address"}, {"email": ""}, {}, {"email": "a@b.example", "extra": 1}, {"email": 5}],
    ids=["no-at", "empty", "missing", "extra-field", "number"],
)
def test_a_bad_request_is_a_422_naming_the_field_and_queues_nothing(api: Api, aws: Any, body: dict[str, Any]) -> None:
    t = api.tenant()
    resp = api.call("POST", "/v1/customers/export", t["m_key"], body)
    assert resp.status_code == 422, resp.body
    assert resp.headers["Content-Type"] == "application/problem+json"
    problem = json.loads(resp.body)
    assert problem["errors"][0]["loc"][0] in ("email", "extra")
    queue_url = aws.queue_urls[d.EXPORT_QUEUE.name]
    assert boto3.client("sqs").receive_message(QueueUrl=queue_url, WaitTimeSeconds=0).get("Messages", []) == []


def test_a_customer_export_needs_a_merchant_key_and_is_only_that_merchants(api: Api, aws: Any) -> None:
    t, other = api.tenant(), api.tenant()
    assert api.call("POST", "/v1/customers/export", None, {"email": EMAIL}).status_code == 401
    assert api.call("POST", "/v1/customers/export", t["wh_key"], {"email": EMAIL}).status_code == 403
    export_id = _request(api, t["m_key"], EMAIL)
    assert api.call("GET", f"/v1/exports/{export_id}", other["m_key"]).status_code == 404


def test_the_worker_is_idempotent_on_a_redelivered_job(api: Api, aws: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    t = api.tenant()
    api.order(t["m_key"], email=EMAIL)
    export_id = _request(api, t["m_key"], EMAIL)
    first = _document(api, aws, t["m_key"], export_id)
    ready = api.ok("GET", f"/v1/exports/{export_id}", t["m_key"])
    # the same message again (SQS delivers at least once): nothing is gathered or written again
    calls: list[str] = []
    monkeypatch.setattr("chalicelib.services.access.collect", lambda *a, **k: calls.append("collect") or {})
    queue_url = aws.queue_urls[d.EXPORT_QUEUE.name]
    message = json.dumps({"merchant_id": t["merchant"]["id"], "export_id": export_id})
    boto3.client("sqs").send_message(QueueUrl=queue_url, MessageBody=message)
    assert drain_queue(queue_url, "export_worker") == {"count": 1, "failed": set()}
    assert calls == []
    after = api.ok("GET", f"/v1/exports/{export_id}", t["m_key"])
    assert (after["completed_at"], after["size"], after["rows"]) == (
        ready["completed_at"],
        ready["size"],
        ready["rows"],
    )
    body, _ = _object(aws, after["url"])
    assert json.loads(body) == first


def test_a_run_that_fails_is_retried_from_the_start(api: Api, aws: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    from chalicelib.services import access

    t = api.tenant()
    order = api.order(t["m_key"], email=EMAIL)
    export_id = _request(api, t["m_key"], EMAIL)
    real = access.collect
    monkeypatch.setattr(access, "collect", lambda *a, **k: (_ for _ in ()).throw(TimeoutError("table slow")))
    queue_url = aws.queue_urls[d.EXPORT_QUEUE.name]
    assert drain_queue(queue_url, "export_worker")["failed"]  # the message stays for SQS to redeliver
    out = api.ok("GET", f"/v1/exports/{export_id}", t["m_key"])
    assert out["status"] == "pending" and not out.get("url")
    monkeypatch.setattr(access, "collect", real)
    export = exports.handle_message(
        bootstrap.container(), json.dumps({"merchant_id": t["merchant"]["id"], "export_id": export_id})
    )
    assert export.status == "ready" and export.attempts == 2
    body, _ = _object(aws, api.ok("GET", f"/v1/exports/{export_id}", t["m_key"])["url"])
    assert [o["order_number"] for o in json.loads(body)["orders"]] == [order["order_number"]]


def test_the_operator_exports_a_merchants_customer_and_reads_it(api: Api, aws: Any) -> None:
    t = api.tenant()
    order = api.order(t["m_key"], email=EMAIL)
    mid = t["merchant"]["id"]
    body = {"email": EMAIL, "merchant_id": mid}
    assert api.call("POST", "/v1/admin/customers/export", t["m_key"], body).status_code == 403
    resp = api.call("POST", "/v1/admin/customers/export", OPERATOR_KEY, {**body, "merchant_id": "mer_nobody"})
    assert resp.status_code == 422 and json.loads(resp.body)["errors"][0]["loc"] == ["merchant_id"]
    export_id = api.ok("POST", "/v1/admin/customers/export", OPERATOR_KEY, body, 202)["id"]
    assert drain_queue(aws.queue_urls[d.EXPORT_QUEUE.name], "export_worker") == {"count": 1, "failed": set()}
    out = api.ok("GET", f"/v1/admin/merchants/{mid}/exports/{export_id}", OPERATOR_KEY)
    assert out["status"] == "ready" and out["kind"] == "customer"
    doc = json.loads(_object(aws, out["url"])[0])
    assert [o["order_number"] for o in doc["orders"]] == [order["order_number"]]
    # the merchant sees it too; another merchant's path does not find it
    assert api.ok("GET", f"/v1/exports/{export_id}", t["m_key"])["status"] == "ready"
    other = api.tenant()["merchant"]["id"]
    assert api.call("GET", f"/v1/admin/merchants/{other}/exports/{export_id}", OPERATOR_KEY).status_code == 404
    assert api.call("GET", f"/v1/admin/merchants/{mid}/exports/{export_id}", t["m_key"]).status_code == 403
