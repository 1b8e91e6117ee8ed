"""The refund state machine against a real HTTP refund target: exactly one refund reaches the shop."""

from __future__ import annotations

import json
import time
from typing import Any

from moto.core import DEFAULT_ACCOUNT_ID
from moto.ses.models import ses_backends

from chalicelib.domain.signatures import boomerang_signature
from local.lambda_router import call_handler
from tests.support import Api, inspect, received_return, wait_for_status
from tests.workflow.conftest import RefundTarget

SECRET = "refund-secret-0123456789"


def completed_return(api: Api, target: RefundTarget, *, auto: bool = False) -> tuple[dict[str, Any], dict[str, Any]]:
    t = api.tenant()
    api.ok(
        "PUT",
        "/v1/settings/refunds",
        t["m_key"],
        {"target": "webhook", "auto_refund": auto, "webhook_url": target.url, "webhook_secret": SECRET},
    )
    ret = received_return(api, t, lines=[{"line_item_id": "L1", "quantity": 2, "reason": "too_small"}])
    inspect(api, t, ret, [{"line_item_id": "L1", "received_quantity": 2, "checks": {}}])
    wait_for_status(api, t["m_key"], ret["id"], "refunded" if auto else "completed")
    return t, ret


def refund_status(api: Api, t: dict[str, Any], rid: str, refund_id: str, want: str, timeout: float = 30) -> dict:
    deadline = time.time() + timeout
    while True:
        refunds = api.ok("GET", f"/v1/returns/{rid}/refunds", t["m_key"])["items"]
        mine = next(r for r in refunds if r["id"] == refund_id)
        if mine["status"] == want:
            return mine
        assert time.time() < deadline, mine
        time.sleep(0.2)


def test_one_click_sends_one_signed_refund(api: Api, refund_target: RefundTarget) -> None:
    t, ret = completed_return(api, refund_target)
    out = api.ok("POST", f"/v1/returns/{ret['id']}/refund", t["m_key"], {}, 202, headers={"Idempotency-Key": "click-1"})
    refund_status(api, t, ret["id"], out["refund_id"], "succeeded")
    assert len(refund_target.requests) == 1
    req = refund_target.requests[0]
    body = req["body"]
    assert req["headers"]["X-Boomerang-Signature"] == boomerang_signature(SECRET, body)
    assert req["headers"]["Idempotency-Key"] == out["refund_id"]
    payload = json.loads(body)
    assert payload["amount"] == {"amount": "59.90", "currency": "EUR"}
    assert payload["return_id"] == ret["id"] and payload["order_number"] == ret["order_number"]
    final = api.ok("GET", f"/v1/returns/{ret['id']}", t["m_key"])
    assert final["status"] == "refunded" and final["refund"]["status"] == "succeeded"


def test_double_click_with_the_same_key_returns_the_first_result(api: Api, refund_target: RefundTarget) -> None:
    t, ret = completed_return(api, refund_target)
    first = api.ok("POST", f"/v1/returns/{ret['id']}/refund", t["m_key"], {}, 202, headers={"Idempotency-Key": "k"})
    second = api.ok("POST", f"/v1/returns/{ret['id']}/refund", t["m_key"], {}, 202, headers={"Idempotency-Key": "k"})
    assert first["refund_id"] == second["refund_id"]
    # a second click with another key finds nothing left to refund
    resp = api.call("POST", f"/v1/returns/{ret['id']}/refund", t["m_key"], {}, headers={"Idempotency-Key": "k2"})
    assert resp.status_code == 409, resp.body
    refund_status(api, t, ret["id"], first["refund_id"], "succeeded")
    assert len(refund_target.requests) == 1


def test_transient_errors_are_retried_with_the_same_idempotency_key(api: Api, refund_target: RefundTarget) -> None:
    t, ret = completed_return(api, refund_target)
    refund_target.script = [500, 429]
    out = api.ok("POST", f"/v1/returns/{ret['id']}/refund", t["m_key"], {}, 202)
    mine = refund_status(api, t, ret["id"], out["refund_id"], "succeeded")
    assert mine["attempts"] == 3
    assert [r["headers"]["Idempotency-Key"] for r in refund_target.requests] == [out["refund_id"]] * 3


def test_a_target_that_never_confirms_fails_the_refund_and_tells_the_merchant(
    api: Api, refund_target: RefundTarget, aws
) -> None:
    t, ret = completed_return(api, refund_target)
    refund_target.default = 503
    out = api.ok("POST", f"/v1/returns/{ret['id']}/refund", t["m_key"], {}, 202)
    failed = refund_status(api, t, ret["id"], out["refund_id"], "failed", timeout=60)
    assert failed["attempts"] == 6 and len(refund_target.requests) == 6
    assert "HTTP 503" in failed["error"]
    # the merchant's contact gets an email (sent right after the refund is marked failed)
    deadline = time.time() + 10
    while not any(
        out["refund_id"] in m.raw_data and "ops@shop.example" in m.destinations[0]
        for m in ses_backends[DEFAULT_ACCOUNT_ID]["eu-central-1"].sent_messages
        if hasattr(m, "raw_data")
    ):
        assert time.time() < deadline, "no refund-failed email"
        time.sleep(0.1)
    view = api.ok("GET", f"/v1/returns/{ret['id']}", t["m_key"])
    assert view["status"] == "completed" and view["refund"]["status"] == "failed"
    # a new click (new key) retries once the shop is back
    refund_target.default = 200
    again = api.ok("POST", f"/v1/returns/{ret['id']}/refund", t["m_key"], {}, 202)
    assert again["refund_id"] != out["refund_id"]
    refund_status(api, t, ret["id"], again["refund_id"], "succeeded")
    assert api.ok("GET", f"/v1/returns/{ret['id']}", t["m_key"])["status"] == "refunded"


def test_a_retried_task_after_success_sends_nothing_again(api: Api, refund_target: RefundTarget) -> None:
    t, ret = completed_return(api, refund_target)
    out = api.ok("POST", f"/v1/returns/{ret['id']}/refund", t["m_key"], {}, 202)
    refund_status(api, t, ret["id"], out["refund_id"], "succeeded")
    # Step Functions retries the task (e.g. the Lambda's answer was lost)
    again = call_handler("send_refund", {"return_id": ret["id"], "refund_id": out["refund_id"]})
    assert again == {"refund_id": out["refund_id"], "status": "succeeded"}
    assert len(refund_target.requests) == 1


def test_partial_refunds_never_exceed_the_accepted_value(api: Api, refund_target: RefundTarget) -> None:
    t, ret = completed_return(api, refund_target)
    resp = api.call("POST", f"/v1/returns/{ret['id']}/refund", t["m_key"], {"amount": "60.00"})
    assert resp.status_code == 422 and json.loads(resp.body)["errors"][0]["loc"] == ["amount"]
    first = api.ok(
        "POST", f"/v1/returns/{ret['id']}/refund", t["m_key"], {"amount": "20.00", "reason": "goodwill"}, 202
    )
    refund_status(api, t, ret["id"], first["refund_id"], "succeeded")
    resp = api.call("POST", f"/v1/returns/{ret['id']}/refund", t["m_key"], {"amount": "40.00"})
    assert resp.status_code == 422
    rest = api.ok("POST", f"/v1/returns/{ret['id']}/refund", t["m_key"], {}, 202)
    mine = refund_status(api, t, ret["id"], rest["refund_id"], "succeeded")
    assert mine["amount"] == {"amount": "39.90", "currency": "EUR"}
    assert api.call("POST", f"/v1/returns/{ret['id']}/refund", t["m_key"], {}).status_code == 409
    total = sum(float(json.loads(r["body"])["amount"]["amount"]) for r in refund_target.requests)
    assert round(total, 2) == 59.90


def test_automatic_refund_after_processing(api: Api, refund_target: RefundTarget) -> None:
    _, _ = completed_return(api, refund_target, auto=True)
    assert len(refund_target.requests) == 1
    assert refund_target.requests[0]["headers"]["Idempotency-Key"].startswith("rf_")
