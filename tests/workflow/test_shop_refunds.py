"""The refund state machine with the merchant's shop as the refund target: exactly one refund reaches the shop.

The real shop adapters (WooCommerce REST, Shopify GraphQL) talk over the real `requests` stack to stateful fakes
(tests/support/fake_shops.py) that fail on script: 500, 429, Shopify's THROTTLED, a timeout before the shop did
anything, or a lost answer after it did. Whatever fails, the shop ends with one refund carrying our marker and the
right amount, and Boomerang's refund history and the return agree with it; when the shop never confirms, the refund
is failed, the merchant is told, and a new click refunds once.
"""

from __future__ import annotations

import json
import threading
import time
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

import pytest
import requests
from moto.core import DEFAULT_ACCOUNT_ID
from moto.ses.models import ses_backends

from chalicelib.adapters.shops.base import carries_marker
from chalicelib.bootstrap import container
from chalicelib.services import refunds as refund_service
from local.lambda_router import call_handler
from tests.support import Api, fake_shops, inspect, wait_for_status

ORDER_ID = 5001  # the shop's order id
LINES = {801: (2, "29.95"), 802: (1, "79.00")}  # the shop's line ids: (quantity, unit price)
LOCATION_ID = "66001"
AMOUNT = "59.90"  # both units of line 801 come back
WEBHOOK_SECRET = "whsec_shop_0123456789"
MERCHANT_EMAIL = "ops@shop.example"


@dataclass
class Shop:
    platform: str
    fake: Any  # FakeWooCommerce | FakeShopify
    settings: dict[str, Any]
    session: requests.Session

    @property
    def stray(self) -> list[str]:
        """Requests that went anywhere but the shop (refused by the fake network)."""
        return list(self.session.no_network.stray)  # type: ignore[attr-defined]


@pytest.fixture(params=["woocommerce", "shopify"])
def shop(request: pytest.FixtureRequest, aws: Any) -> Shop:
    """The merchant's shop, a fake holding order 5001, mounted as the container's HTTP session (after the `aws`
    fixture's `bootstrap.reset()`, which would forget it)."""
    fake: Any
    if request.param == "woocommerce":
        fake = fake_shops.FakeWooCommerce(base_url="https://shop.example")
        fake.add_order(ORDER_ID, LINES)
        settings = {
            "platform": "woocommerce",
            "base_url": "https://shop.example",
            "consumer_key": fake.consumer_key,
            "consumer_secret": fake.consumer_secret,
            "webhook_secret": WEBHOOK_SECRET,
        }
    else:
        fake = fake_shops.FakeShopify(shop_domain="example.myshopify.com")
        fake.add_order(ORDER_ID, LINES)
        settings = {
            "platform": "shopify",
            "shop_domain": "example.myshopify.com",
            "access_token": fake.access_token,
            "webhook_secret": WEBHOOK_SECRET,
            "location_id": LOCATION_ID,
        }
    session = fake_shops.install_shop(fake)
    return Shop(request.param, fake, settings, session)


# ----- helpers -------------------------------------------------------------------------------------------------
def completed_return(
    api: Api, shop: Shop, *, refunds: dict[str, Any] | None = None, refund_method: str = "original"
) -> tuple[dict[str, Any], dict[str, Any]]:
    """A merchant with the shop connected and refunds into it, an order from the shop, and a return of both units
    of line 801 received, inspected and completed."""
    t = api.tenant()
    api.ok("PUT", "/v1/settings/shop", t["m_key"], shop.settings)
    api.ok("PUT", "/v1/settings/refunds", t["m_key"], refunds or {"target": "shop", "auto_refund": False})
    order = api.order(
        t["m_key"],
        external_id=str(ORDER_ID),
        items=[
            {
                "line_item_id": "L1",
                "sku": "SHIRT-M",
                "name": "Shirt M",
                "quantity": 2,
                "unit_price": "29.95",
                "external_id": "801",
            },
            {
                "line_item_id": "L2",
                "sku": "JEANS-32",
                "name": "Jeans 32",
                "quantity": 1,
                "unit_price": "79.00",
                "external_id": "802",
            },
        ],
    )
    token = api.session(t["slug"], order)
    lines = [{"line_item_id": "L1", "quantity": 2, "reason": "too_small"}]
    ret = api.ok("POST", "/v1/portal/returns", token, {"items": lines, "refund_method": refund_method}, 201)
    api.ok("POST", "/v1/warehouse/scans", t["wh_key"], {"barcode": ret["tracking_number"]})
    inspect(api, t, ret, [{"line_item_id": "L1", "received_quantity": 2, "checks": {}}])
    wait_for_status(api, t["m_key"], ret["id"], "completed")
    return t, ret


def click(api: Api, t: dict[str, Any], ret: dict[str, Any], key: str, body: dict[str, Any] | None = None) -> str:
    out = api.ok(
        "POST", f"/v1/returns/{ret['id']}/refund", t["m_key"], body or {}, 202, headers={"Idempotency-Key": key}
    )
    return str(out["refund_id"])


def refund_record(api: Api, t: dict[str, Any], ret: dict[str, Any], refund_id: str) -> dict[str, Any]:
    items = api.ok("GET", f"/v1/returns/{ret['id']}/refunds", t["m_key"])["items"]
    return next(r for r in items if r["id"] == refund_id)


def settled(
    api: Api, t: dict[str, Any], ret: dict[str, Any], refund_id: str, want: str, timeout: float = 45
) -> dict[str, Any]:
    """The refund once it left `pending`, which must be `want`."""
    deadline = time.time() + timeout
    while True:
        mine = refund_record(api, t, ret, refund_id)
        if mine["status"] != "pending":
            assert mine["status"] == want, mine
            return mine
        assert time.time() < deadline, f"still pending: {mine}"
        time.sleep(0.2)


def assert_refunded_once(
    api: Api, t: dict[str, Any], ret: dict[str, Any], shop: Shop, refund_id: str, amount: str = AMOUNT
) -> fake_shops.LedgerEntry:
    """Exactly one refund in the shop: ours (marker), of `amount`, on the order; Boomerang agrees."""
    ledger = shop.fake.ledger()
    assert len(ledger) == 1, ledger
    entry = ledger[0]
    assert carries_marker(entry.note, refund_id), entry
    assert entry.amount == Decimal(amount) and entry.order_id == str(ORDER_ID), entry
    mine = refund_record(api, t, ret, refund_id)
    assert mine["status"] == "succeeded" and mine["target"] == "shop", mine
    assert mine["amount"] == {"amount": amount, "currency": "EUR"}
    reference = mine["shop_reference"]
    assert reference["shop_refund_id"] == entry.shop_refund_id, reference
    assert set(reference) <= {"shop_refund_id", "dispositions"}, reference  # dispositions: Shopify Returns only
    view = api.ok("GET", f"/v1/returns/{ret['id']}", t["m_key"])
    assert view["status"] == "refunded", view["status"]
    assert view["refund"]["status"] == "succeeded", view["refund"]
    assert view["refunded"] == {"amount": amount, "currency": "EUR"}
    assert shop.stray == []
    return entry


#: The Shopify Returns calls that follow a delivered refund (recording the warehouse's verdict, best effort).
RETURNS_OPERATIONS = frozenset({"OrderReturns", "ReverseFulfillmentOrderDispose"})


def refund_operations(shop: Shop) -> list[str]:
    """The operations the shop saw for the refund itself (Shopify Returns calls left out)."""
    return [r.operation for r in shop.fake.requests if r.operation not in RETURNS_OPERATIONS]


def refund_creates(shop: Shop) -> list[Any]:
    """The requests that asked the shop to create a refund (whatever became of them)."""
    return shop.fake.writes("create_refund" if shop.platform == "woocommerce" else "RefundCreate")


def text_of(raw: str) -> str:
    """The plain-text part of a raw email."""
    import email

    message = email.message_from_string(raw)
    parts = [p for p in message.walk() if p.get_content_type() == "text/plain"]
    return "".join(p.get_payload(decode=True).decode() for p in parts)


def failure_emails(refund_id: str, timeout: float = 10) -> list[Any]:
    """The refund-failed emails to the merchant about `refund_id` (waits for the first)."""
    deadline = time.time() + timeout
    while True:
        sent = [
            m
            for m in ses_backends[DEFAULT_ACCOUNT_ID]["eu-central-1"].sent_messages
            if hasattr(m, "raw_data") and refund_id in m.raw_data and MERCHANT_EMAIL in m.destinations[0]
        ]
        if sent or time.time() > deadline:
            return sent
        time.sleep(0.1)


# ----- the happy path, field by field --------------------------------------------------------------------------
def test_one_click_sends_one_refund_with_the_documented_body(api: Api, shop: Shop) -> None:
    t, ret = completed_return(api, shop)
    if shop.platform == "shopify":
        shop.fake.add_return(ORDER_ID, {801: 2})  # the merchant uses Shopify's own Returns as well
    refund_id = click(api, t, ret, "click-1", {"reason": "too small"})
    mine = settled(api, t, ret, refund_id, "succeeded")
    assert mine["attempts"] == 1 and mine["reason"] == "too small"
    assert [(i["line_item_id"], i["quantity"], i["amount"], i["external_id"]) for i in mine["items"]] == [
        ("L1", 2, AMOUNT, "801")
    ]
    # inspected without a failed check: both units go back to stock
    assert mine["items"][0]["disposition"] == "restock"
    entry = assert_refunded_once(api, t, ret, shop, refund_id)
    assert entry.note == f"Boomerang refund {refund_id}: too small"
    writes = refund_creates(shop)
    assert len(writes) == 1
    sent = writes[0]
    assert sent.timeout == (3.0, 15.0)  # explicit connect and read timeouts
    if shop.platform == "woocommerce":
        # it looked for an earlier refund of ours first, one page of 100, then posted with HTTP Basic
        assert [(r.method, r.operation) for r in shop.fake.requests] == [
            ("GET", "list_refunds"),
            ("POST", "create_refund"),
        ]
        assert shop.fake.requests[0].query == {"per_page": ["100"], "page": ["1"]}
        assert sent.path == f"/wp-json/wc/v3/orders/{ORDER_ID}/refunds"
        assert sent.headers["Authorization"].startswith("Basic ")
        body = sent.body
        assert set(body) == {"amount", "reason", "line_items", "api_refund", "api_restock"}
        assert body["amount"] == AMOUNT
        assert body["reason"] == f"Boomerang refund {refund_id}: too small"
        assert body["line_items"] == [{"id": 801, "quantity": 2, "refund_total": AMOUNT, "refund_tax": []}]
        assert body["api_refund"] is True
        assert body["api_restock"] is True
        stored = shop.fake.refunds[0]
        assert stored["refunded_payment"] is True
        assert shop.fake.orders[ORDER_ID].lines[801].restocked == 2
    else:
        # the order's transactions first, then refundCreate with our refund id as the idempotency key
        assert refund_operations(shop) == ["OrderTransactions", "RefundCreate"]
        assert [r.operation for r in shop.fake.requests[:2]] == ["OrderTransactions", "RefundCreate"]
        assert shop.fake.requests[0].body["variables"] == {"id": f"gid://shopify/Order/{ORDER_ID}"}
        assert sent.headers["X-Shopify-Access-Token"] == shop.fake.access_token
        assert sent.path == "/admin/api/2026-04/graphql.json"
        assert "refundCreate(input: $input) @idempotent(key: $idempotencyKey)" in sent.body["query"]
        variables = sent.body["variables"]
        assert variables["idempotencyKey"] == refund_id
        sale = shop.fake.orders[ORDER_ID].transactions[0]
        assert sale["kind"] == "SALE"
        refund_input = variables["input"]
        assert refund_input["orderId"] == f"gid://shopify/Order/{ORDER_ID}"
        assert refund_input["currency"] == "EUR"
        assert refund_input["note"] == f"Boomerang refund {refund_id}: too small"
        assert refund_input["notify"] is False
        assert refund_input["refundLineItems"] == [
            {
                "lineItemId": "gid://shopify/LineItem/801",
                "quantity": 2,
                "restockType": "RETURN",
                "locationId": f"gid://shopify/Location/{LOCATION_ID}",
            }
        ]
        assert refund_input["transactions"] == [
            {
                "orderId": f"gid://shopify/Order/{ORDER_ID}",
                "parentId": sale["id"],
                "gateway": "shopify_payments",
                "kind": "REFUND",
                "amount": AMOUNT,
            }
        ]
        assert "shipping" not in refund_input
        assert set(refund_input) == {"orderId", "currency", "note", "notify", "refundLineItems", "transactions"}
        assert shop.fake.orders[ORDER_ID].lines[801].restocked == 2
        # and the warehouse's verdict (grade A: restocked) went onto the Shopify return, at the merchant's location
        assert shop.fake.dispositions(ORDER_ID) == {
            801: [{"type": "RESTOCKED", "quantity": 2, "locationId": f"gid://shopify/Location/{LOCATION_ID}"}]
        }
        assert refund_record(api, t, ret, refund_id)["shop_reference"]["dispositions"].startswith("1 recorded")


# ----- transient failures ----------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("shop", "fault"),
    [
        *[(platform, fault) for platform in ("woocommerce", "shopify") for fault in ("500", "429", "timeout")],
        ("shopify", "throttled"),  # GraphQL THROTTLED (HTTP 200); WooCommerce has only 429
    ],
    indirect=["shop"],
)
def test_a_transient_failure_then_ok_refunds_once(api: Api, shop: Shop, fault: str) -> None:
    t, ret = completed_return(api, shop)
    shop.fake.faults = [fault]
    refund_id = click(api, t, ret, "click-1")
    mine = settled(api, t, ret, refund_id, "succeeded")
    assert mine["attempts"] == 2 and mine["error"] is None
    assert_refunded_once(api, t, ret, shop, refund_id)
    writes = refund_creates(shop)
    assert [w.fault for w in writes] == [fault, "ok"]
    if shop.platform == "shopify":
        # the retry asked the shop first (the answer might have been lost), then sent again with the same key
        assert refund_operations(shop) == [
            "OrderTransactions",
            "RefundCreate",
            "OrderRefunds",
            "OrderTransactions",
            "RefundCreate",
        ]
        assert [w.body["variables"]["idempotencyKey"] for w in writes] == [refund_id, refund_id]
        assert shop.fake.replays == 0  # the first request never applied: nothing to replay


def test_a_lost_answer_is_found_in_the_shop_and_never_sent_again(api: Api, shop: Shop) -> None:
    t, ret = completed_return(api, shop)
    # the shop takes the refund but the answer is lost; anything after that is a server error
    shop.fake.faults = ["lost"]
    shop.fake.default_fault = "500"
    refund_id = click(api, t, ret, "click-1")
    mine = settled(api, t, ret, refund_id, "succeeded")
    assert mine["attempts"] == 2
    entry = assert_refunded_once(api, t, ret, shop, refund_id)
    assert [w.fault for w in refund_creates(shop)] == ["lost"]  # the second attempt only looked
    assert mine["shop_reference"]["shop_refund_id"] == entry.shop_refund_id


def test_an_answer_lost_on_every_attempt_still_ends_succeeded(api: Api, shop: Shop) -> None:
    t, ret = completed_return(api, shop)
    shop.fake.default_fault = "lost"
    refund_id = click(api, t, ret, "click-1")
    mine = settled(api, t, ret, refund_id, "succeeded")
    # the lookup of the retried attempt found it: no second create, no waiting out the attempts
    assert mine["attempts"] == 2
    assert_refunded_once(api, t, ret, shop, refund_id)
    assert [w.fault for w in refund_creates(shop)] == ["lost"]
    assert failure_emails(refund_id, timeout=0) == []


def test_a_lost_answer_and_a_shop_failing_every_lookup_is_found_before_failing(api: Api, shop: Shop) -> None:
    """The answer is lost, and every later attempt fails at its lookup: only the last look before the refund is
    marked failed (`settle_lost_refund`) gets an answer, and finds the refund."""
    t, ret = completed_return(api, shop)
    max_attempts = container().settings.refund_max_attempts
    shop.fake.faults = ["lost"]
    shop.fake.default_fault = "500"
    # attempt 1 reads before it writes; attempts 2.. fail at their lookup; the final check is answered
    shop.fake.read_faults = ["ok"] + ["500"] * (max_attempts - 1)
    refund_id = click(api, t, ret, "click-1")
    mine = settled(api, t, ret, refund_id, "succeeded", timeout=60)
    assert mine["attempts"] == max_attempts
    assert mine["error"] is None
    assert_refunded_once(api, t, ret, shop, refund_id)
    assert [w.fault for w in refund_creates(shop)] == ["lost"]
    assert failure_emails(refund_id, timeout=1) == []


# ----- the shop never confirms -------------------------------------------------------------------------------------
def test_a_shop_failing_every_attempt_fails_the_refund_then_a_new_click_refunds_once(api: Api, shop: Shop) -> None:
    t, ret = completed_return(api, shop)
    max_attempts = container().settings.refund_max_attempts
    shop.fake.default_fault = "500"
    first = click(api, t, ret, "click-1")
    failed = settled(api, t, ret, first, "failed", timeout=60)
    assert failed["attempts"] == max_attempts
    assert "server error (HTTP 500)" in failed["error"]
    assert shop.fake.ledger() == []  # nothing reached the shop
    assert [w.fault for w in refund_creates(shop)] == ["500"] * max_attempts
    assert failure_emails(first), "no refund-failed email to the merchant"
    view = api.ok("GET", f"/v1/returns/{ret['id']}", t["m_key"])
    assert view["status"] == "completed" and view["refund"]["status"] == "failed"
    assert view["refunded"] == {"amount": "0.00", "currency": "EUR"}
    # the shop is back; the merchant clicks again (a new key)
    shop.fake.default_fault = "ok"
    again = click(api, t, ret, "click-2")
    assert again != first
    mine = settled(api, t, ret, again, "succeeded")
    assert mine["attempts"] == 1
    assert_refunded_once(api, t, ret, shop, again)
    history = api.ok("GET", f"/v1/returns/{ret['id']}/refunds", t["m_key"])["items"]
    assert sorted((r["id"], r["status"]) for r in history) == sorted([(first, "failed"), (again, "succeeded")])


def test_a_final_refusal_by_the_shop_is_not_retried(api: Api, shop: Shop) -> None:
    """The merchant refunded most of the order by hand in the shop: too little is left for our refund."""
    t, ret = completed_return(api, shop)
    shop.fake.refund_by_hand(ORDER_ID, "100.00")  # 138.90 paid: 38.90 left, less than 59.90
    refund_id = click(api, t, ret, "click-1")
    failed = settled(api, t, ret, refund_id, "failed")
    assert failed["attempts"] == 1
    if shop.platform == "woocommerce":
        assert "Invalid refund amount." in failed["error"]
        assert [(w.fault, w.status) for w in refund_creates(shop)] == [("ok", 500)]
    else:
        # Shopify: the adapter sees from the order's transactions that too little is left, and sends nothing
        assert "no successful payment left to refund" in failed["error"]
        assert refund_creates(shop) == []
    assert [e.note for e in shop.fake.ledger()] == ["refunded by the merchant"]
    assert failure_emails(refund_id)
    assert api.ok("GET", f"/v1/returns/{ret['id']}", t["m_key"])["refund"]["status"] == "failed"


def test_a_refund_whose_outcome_stayed_unknown_is_held_then_settled_once(api: Api, shop: Shop) -> None:
    """The shop takes the refund, the answer is lost, and the shop cannot be asked afterwards (every lookup
    fails, the last one before failing included). The refund is `failed` for the merchant but `unconfirmed`: its
    share stays held, so a new click finds nothing to refund; when the shop answers again, the state machine's
    reconciliation finds the refund and settles it as succeeded. One refund in the shop, one in Boomerang."""
    t, ret = completed_return(api, shop)
    shop.fake.faults = ["lost"]
    shop.fake.default_fault = "500"
    shop.fake.read_faults = ["ok"]
    shop.fake.read_default_fault = "500"
    first = click(api, t, ret, "click-1")
    failed = settled(api, t, ret, first, "failed", timeout=60)
    assert "not confirmed by the shop" in failed["error"]
    assert len(shop.fake.ledger()) == 1  # the money went back to the customer
    emails = failure_emails(first)
    assert emails and "stays reserved" in text_of(emails[0].raw_data)
    # the merchant clicks again while the outcome is unknown: nothing is free to refund
    resp = api.call("POST", f"/v1/returns/{ret['id']}/refund", t["m_key"], {}, headers={"Idempotency-Key": "click-2"})
    assert resp.status_code == 409, resp.body
    # the shop answers again: the next check finds the refund
    shop.fake.default_fault = shop.fake.read_default_fault = "ok"
    deadline = time.time() + 30
    while (mine := refund_record(api, t, ret, first))["status"] != "succeeded":
        assert time.time() < deadline, mine
        time.sleep(0.2)
    assert len(shop.fake.ledger()) == 1
    view = api.ok("GET", f"/v1/returns/{ret['id']}", t["m_key"])
    assert view["status"] == "refunded" and view["refunded"] == {"amount": AMOUNT, "currency": "EUR"}
    assert api.call("POST", f"/v1/returns/{ret['id']}/refund", t["m_key"], {}).status_code == 409


def test_an_unconfirmed_refund_the_shop_never_got_is_released(api: Api, shop: Shop) -> None:
    """Timeouts before the shop applied anything, and no answer to any lookup: unconfirmed. Once the shop answers
    and has no such refund, the share is released and the merchant is told to click again; that click refunds."""
    t, ret = completed_return(api, shop)
    shop.fake.default_fault = "timeout"
    shop.fake.read_default_fault = "500"
    first = click(api, t, ret, "click-1")
    settled(api, t, ret, first, "failed", timeout=60)
    assert shop.fake.ledger() == []
    shop.fake.default_fault = shop.fake.read_default_fault = "ok"
    deadline = time.time() + 30
    while "does not have this refund" not in (refund_record(api, t, ret, first)["error"] or ""):
        assert time.time() < deadline, refund_record(api, t, ret, first)
        time.sleep(0.2)
    again = click(api, t, ret, "click-2")
    settled(api, t, ret, again, "succeeded")
    assert len(shop.fake.ledger()) == 1


# ----- clicks and retried tasks -------------------------------------------------------------------------------------
def test_a_double_click_with_the_same_key_refunds_once(api: Api, shop: Shop) -> None:
    t, ret = completed_return(api, shop)
    first = click(api, t, ret, "click-1")
    second = click(api, t, ret, "click-1")
    assert second == first
    settled(api, t, ret, first, "succeeded")
    assert click(api, t, ret, "click-1") == first  # still the first result once it succeeded
    resp = api.call("POST", f"/v1/returns/{ret['id']}/refund", t["m_key"], {}, headers={"Idempotency-Key": "k2"})
    assert resp.status_code == 409, resp.body
    assert_refunded_once(api, t, ret, shop, first)
    assert len(refund_creates(shop)) == 1
    assert len(api.ok("GET", f"/v1/returns/{ret['id']}/refunds", t["m_key"])["items"]) == 1


def test_two_concurrent_clicks_with_different_keys_refund_once(
    api: Api, shop: Shop, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Both clicks read the return before either writes (their first commit waits for the other's): one wins, the
    other is told there is nothing left to refund."""
    t, ret = completed_return(api, shop)
    barrier = threading.Barrier(2, timeout=15)
    first_commit_waits: set[int] = set()
    real_commit = refund_service.commit

    met: list[int] = []

    def commit_together(*args: Any, **kwargs: Any) -> Any:
        me = threading.get_ident()
        if me in first_commit_waits:
            first_commit_waits.discard(me)
            barrier.wait()
            met.append(me)
        return real_commit(*args, **kwargs)

    monkeypatch.setattr(refund_service, "commit", commit_together)
    answers: dict[str, Any] = {}

    def clicker(key: str) -> None:
        first_commit_waits.add(threading.get_ident())
        answers[key] = api.call(
            "POST", f"/v1/returns/{ret['id']}/refund", t["m_key"], {}, headers={"Idempotency-Key": key}
        )

    a = threading.Thread(target=clicker, args=("click-a",))
    a.start()
    # the second click starts once the first has read everything and waits to write (the chalice test client
    # keeps the current request on the app: two requests entering at the same instant would share it)
    deadline = time.time() + 15
    while barrier.n_waiting < 1:
        assert time.time() < deadline, "the first click never reached its commit"
        time.sleep(0.01)
    b = threading.Thread(target=clicker, args=("click-b",))
    b.start()
    a.join(30)
    b.join(30)
    assert not a.is_alive() and not b.is_alive()
    assert len(met) == 2 and not barrier.broken  # both had planned their refund before either wrote
    statuses = sorted(r.status_code for r in answers.values())
    assert statuses[0] == 202 and statuses[1] in (409, 422), {k: (r.status_code, r.body) for k, r in answers.items()}
    winner = next(json.loads(r.body)["refund_id"] for r in answers.values() if r.status_code == 202)
    settled(api, t, ret, winner, "succeeded")
    assert_refunded_once(api, t, ret, shop, winner)
    assert len(refund_creates(shop)) == 1
    assert [r["id"] for r in api.ok("GET", f"/v1/returns/{ret['id']}/refunds", t["m_key"])["items"]] == [winner]


def test_a_task_retried_after_success_sends_nothing_again(api: Api, shop: Shop) -> None:
    t, ret = completed_return(api, shop)
    refund_id = click(api, t, ret, "click-1")
    settled(api, t, ret, refund_id, "succeeded")
    seen = len(shop.fake.requests)
    # Step Functions runs the task again (e.g. the Lambda's answer was lost), and the failure task too
    again = call_handler("send_refund", {"return_id": ret["id"], "refund_id": refund_id})
    assert again == {"refund_id": refund_id, "status": "succeeded"}
    failed_late = call_handler(
        "refund_failed",
        {"return_id": ret["id"], "refund_id": refund_id, "error": {"Error": "States.Timeout", "Cause": "late"}},
    )
    assert failed_late == {"refund_id": refund_id, "status": "succeeded"}
    assert len(shop.fake.requests) == seen  # not even a lookup
    assert_refunded_once(api, t, ret, shop, refund_id)
    assert failure_emails(refund_id, timeout=0) == []


@pytest.mark.parametrize("shop", ["shopify"], indirect=True)  # dispositions go onto Shopify's own returns
def test_a_disposition_the_shop_fails_to_record_never_touches_the_refund(api: Api, shop: Shop) -> None:
    t, ret = completed_return(api, shop)
    shop.fake.add_return(ORDER_ID, {801: 2})
    shop.fake.dispose_faults = ["lost"]
    refund_id = click(api, t, ret, "click-1")
    mine = settled(api, t, ret, refund_id, "succeeded")
    assert mine["attempts"] == 1
    assert_refunded_once(api, t, ret, shop, refund_id)
    assert mine["shop_reference"]["dispositions"].startswith("not recorded")
    assert [w.fault for w in refund_creates(shop)] == ["ok"]
    # the shop did record it (only the answer was lost): nothing is sent again for it
    assert [r.fault for r in shop.fake.requests if r.kind == "dispose"] == ["lost"]
    assert [d["quantity"] for d in shop.fake.dispositions(ORDER_ID)[801]] == [2]


# ----- store credit (Shopify gift cards) -----------------------------------------------------------------------------
@pytest.mark.parametrize("shop", ["shopify"], indirect=True)  # store credit is a Shopify gift card
def test_store_credit_whose_answer_was_lost_issues_one_gift_card(api: Api, shop: Shop) -> None:
    refund_settings = {"target": "shop", "auto_refund": False, "store_credit": True, "store_credit_bonus_percent": "10"}
    t, ret = completed_return(api, shop, refunds=refund_settings, refund_method="store_credit")
    shop.fake.faults = ["lost"]
    shop.fake.default_fault = "500"
    refund_id = click(api, t, ret, "click-1")
    mine = settled(api, t, ret, refund_id, "succeeded")
    assert mine["attempts"] == 2 and mine["kind"] == "store_credit"
    assert mine["store_credit"] == {"amount": "65.89", "currency": "EUR"}  # 59.90 + 10 %
    cards = shop.fake.ledger_cards()
    assert len(cards) == 1, cards
    card = cards[0]
    assert carries_marker(card["note"], refund_id)
    assert card["initialValue"] == {"amount": "65.89", "currencyCode": "EUR"}
    assert card["customerId"] == "gid://shopify/Customer/42"  # the order's customer
    assert mine["shop_reference"] == {"gift_card_id": card["id"], "last_characters": card["code"][-4:]}
    assert card["code"] not in json.dumps(mine)  # Boomerang never shows the code
    assert [w.fault for w in shop.fake.writes("GiftCardCreate")] == ["lost"]
    assert shop.fake.ledger() == []  # no money refund besides the card
    assert api.ok("GET", f"/v1/returns/{ret['id']}", t["m_key"])["refund"]["status"] == "succeeded"
