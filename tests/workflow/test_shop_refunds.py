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
from typing import Any

import pytest

from chalicelib.adapters.shops.base import carries_marker
from chalicelib.services import refunds as refund_service
from local.lambda_router import call_handler
from tests.support import Api
from tests.support.shop_matrix import (
    AMOUNT,
    LOCATION_ID,
    ORDER_ID,
    Shop,
    assert_refunded_once,
    click,
    completed_return,
    failure_emails,
    refund_creates,
    refund_operations,
    refund_record,
    settled,
)


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
