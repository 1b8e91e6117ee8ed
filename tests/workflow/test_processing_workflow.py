"""The processing state machine executing in moto: every path (complete, clarify+approve, reject, timeout)."""

from __future__ import annotations

import boto3

from tests.support import Api, inspect, received_return, wait_for_status

CLARIFY_DAMAGED = {
    "rules": [
        {
            "name": "damaged needs a look",
            "when": "checks.damaged == true",
            "grade": "B",
            "disposition": "refurbish",
            "clarify": True,
        }
    ],
    "default": {"grade": "A", "disposition": "restock"},
}


def executions(aws) -> list[dict]:
    sfn = boto3.client("stepfunctions")
    arn = aws.state_machine_arns["boomerang-processing"]
    return sfn.list_executions(stateMachineArn=arn)["executions"]


def test_no_clarification_completes_and_waits_for_a_click(api: Api, aws) -> None:
    # Given a merchant without automatic refunds
    t = api.tenant()
    ret = received_return(api, t)
    # When the inspection finds nothing unusual
    inspect(api, t, ret, [{"line_item_id": "L1", "received_quantity": 1, "checks": {"damaged": False}}])
    # Then the return completes with the default grade and no refund is sent
    done = wait_for_status(api, t["m_key"], ret["id"], "completed")
    assert (done["items"][0]["grade"], done["items"][0]["disposition"]) == ("A", "restock")
    assert done["items"][0]["rule"]["name"] == "default"
    assert done["refund"] is None
    sfn = boto3.client("stepfunctions")
    ex = executions(aws)[0]
    assert sfn.describe_execution(executionArn=ex["executionArn"])["status"] in ("RUNNING", "SUCCEEDED")


def test_clarification_then_reject_ends_rejected_without_refund(api: Api, aws) -> None:
    t = api.tenant()
    api.ok("PUT", "/v1/settings/guidelines", t["m_key"], CLARIFY_DAMAGED)
    api.ok("PUT", "/v1/settings/refunds", t["m_key"], {"target": "manual", "auto_refund": True})
    ret = received_return(api, t)
    inspect(api, t, ret, [{"line_item_id": "L1", "received_quantity": 1, "checks": {"damaged": True}}])
    waiting = wait_for_status(api, t["m_key"], ret["id"], "awaiting_feedback")
    assert waiting["items"][0]["clarify"] is True
    api.ok("POST", f"/v1/returns/{ret['id']}/feedback", t["m_key"], {"decision": "reject", "comment": "worn"})
    rejected = wait_for_status(api, t["m_key"], ret["id"], "rejected")
    assert rejected["items"][0]["disposition"] == "return_to_customer"
    feedback = [e for e in rejected["timeline"] if e["type"] == "feedback.received"]
    assert feedback and feedback[0]["comment"] == "worn" and feedback[0]["actor"].startswith("merchant:")
    # the workflow ends on the Rejected branch, no refund
    sfn = boto3.client("stepfunctions")
    for _ in range(50):
        status = sfn.describe_execution(executionArn=executions(aws)[0]["executionArn"])["status"]
        if status != "RUNNING":
            break
        import time

        time.sleep(0.2)
    assert status == "SUCCEEDED"
    assert api.ok("GET", f"/v1/returns/{ret['id']}", t["m_key"])["refund"] is None


def test_feedback_timeout_applies_the_guideline_default_then_refunds(api: Api, aws, monkeypatch) -> None:
    # Given a feedback SLA of one second
    monkeypatch.setenv("FEEDBACK_TIMEOUT_SECONDS", "1")
    from chalicelib import bootstrap

    bootstrap.reset()
    t = api.tenant()
    api.ok(
        "PUT",
        "/v1/settings/guidelines",
        t["m_key"],
        {**CLARIFY_DAMAGED, "default": {"grade": "C", "disposition": "dispose"}},
    )
    api.ok("PUT", "/v1/settings/refunds", t["m_key"], {"target": "manual", "auto_refund": True})
    ret = received_return(api, t)
    inspect(api, t, ret, [{"line_item_id": "L1", "received_quantity": 1, "checks": {"damaged": True}}])
    # When nobody answers, the default applies and the automatic refund goes out
    done = wait_for_status(api, t["m_key"], ret["id"], "refunded")
    assert (done["items"][0]["grade"], done["items"][0]["disposition"]) == ("C", "dispose")
    assert any(e["type"] == "feedback.timed_out" for e in done["timeline"])


def test_discrepancy_asks_for_feedback_even_without_a_clarify_rule(api: Api, aws) -> None:
    t = api.tenant()
    ret = received_return(api, t, lines=[{"line_item_id": "L1", "quantity": 2, "reason": "too_small"}])
    inspect(api, t, ret, [{"line_item_id": "L1", "received_quantity": 1, "checks": {}}])
    waiting = wait_for_status(api, t["m_key"], ret["id"], "awaiting_feedback")
    assert waiting["discrepancies"] == [
        {"type": "missing", "line_item_id": "L1", "sku": "SHIRT-M", "expected": 2, "received": 1}
    ]
    api.ok("POST", f"/v1/returns/{ret['id']}/feedback", t["m_key"], {"decision": "approve"})
    wait_for_status(api, t["m_key"], ret["id"], "completed")
