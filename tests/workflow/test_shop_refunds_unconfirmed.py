"""The shop fault matrix, part two: shops that fail every attempt or every lookup, refunds whose outcome stays unknown
(held, then reconciled or released) and definitive refusals. Part one and the setting: test_shop_refunds.py."""

from __future__ import annotations

import time

from chalicelib.bootstrap import container
from tests.support import Api
from tests.support.shop_matrix import (
    AMOUNT,
    ORDER_ID,
    Shop,
    assert_refunded_once,
    click,
    completed_return,
    failure_emails,
    refund_creates,
    refund_record,
    settled,
    text_of,
)


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
