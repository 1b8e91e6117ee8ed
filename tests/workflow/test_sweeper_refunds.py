"""A refund whose workflow never started (the process killed right after the click's commit) does not stay pending
for good: the sweeper starts it by the refund's name (started once, whatever runs twice), or fails it once no
workflow can settle it, and a new click then works (issue 13, defect 6)."""

from __future__ import annotations

from typing import Any

import pytest

from chalicelib import bootstrap
from local.lambda_router import call_handler
from local.pollers import scheduled_event
from tests.support import Api, SteppingClock
from tests.workflow.conftest import RefundTarget
from tests.workflow.test_refund_workflow import completed_return, refund_status


class Killed(BaseException):
    """The process dies here: nothing after it runs, no except catches it."""


def sweep() -> dict[str, int]:
    result: dict[str, int] = call_handler("sweeper", scheduled_event("sweeper", "eu-central-1"))
    return result


@pytest.fixture
def clock(aws: Any) -> SteppingClock:
    fake = SteppingClock()
    bootstrap.container().clock = fake
    return fake


def _killed_click(api: Api, t: dict[str, Any], rid: str, monkeypatch: pytest.MonkeyPatch) -> str:
    """A click whose process dies right after the commit, before the workflow is started; the refund's id."""

    def killed(*args: Any) -> str:
        raise Killed

    with monkeypatch.context() as m:
        m.setattr(bootstrap.container().workflows, "start_refund", killed)
        with pytest.raises(Killed):
            api.call("POST", f"/v1/returns/{rid}/refund", t["m_key"], {}, headers={"Idempotency-Key": "killed"})
    (refund,) = api.ok("GET", f"/v1/returns/{rid}/refunds", t["m_key"])["items"]
    assert refund["status"] == "pending" and refund["attempts"] == 0
    return str(refund["id"])


def _new_click(api: Api, t: dict[str, Any], rid: str, key: str) -> Any:
    return api.call("POST", f"/v1/returns/{rid}/refund", t["m_key"], {}, headers={"Idempotency-Key": key})


def test_a_refund_whose_workflow_never_started_is_started_by_the_sweeper_and_succeeds(
    aws: Any, api: Api, refund_target: RefundTarget, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("REFUND_DEADLINE_SECONDS", "300")  # the production value: a start 2 minutes late still sends
    bootstrap.reset()
    clock = SteppingClock()
    bootstrap.container().clock = clock
    t, ret = completed_return(api, refund_target)
    # Given a click whose process died between the commit and the start: pending, and a new click is refused
    refund_id = _killed_click(api, t, ret["id"], monkeypatch)
    assert _new_click(api, t, ret["id"], "second").status_code == 409
    # When the sweeper runs while the refund is young: nothing
    assert sweep() == {}
    assert refund_target.requests == []
    # When it runs once the refund is overdue: its workflow is started (a second run starts nothing)
    clock.advance(hours=2 / 60)
    assert sweep() == {"refund:started": 1}
    assert sweep() == {}
    # Then the refund reaches the target once and succeeds
    refund_status(api, t, ret["id"], refund_id, "succeeded")
    assert len(refund_target.requests) == 1
    assert api.ok("GET", f"/v1/returns/{ret['id']}", t["m_key"])["status"] == "refunded"
    clock.advance(hours=24)
    assert sweep() == {}


def test_a_refund_started_too_late_fails_and_a_new_click_works(
    api: Api, refund_target: RefundTarget, clock: SteppingClock, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Given a killed click, found by the sweeper after the refund's deadline (60 s in the tests)
    t, ret = completed_return(api, refund_target)
    refund_id = _killed_click(api, t, ret["id"], monkeypatch)
    clock.advance(hours=0.2)
    assert sweep() == {"refund:started": 1}
    # Then its workflow fails it without sending anything (no attempt past the deadline)
    refund_status(api, t, ret["id"], refund_id, "failed")
    assert refund_target.requests == []
    # And a new click works: a new refund, sent once
    resp = _new_click(api, t, ret["id"], "again")
    assert resp.status_code == 202, resp.body
    (new,) = [r for r in api.ok("GET", f"/v1/returns/{ret['id']}/refunds", t["m_key"])["items"] if r["id"] != refund_id]
    refund_status(api, t, ret["id"], new["id"], "succeeded")
    assert len(refund_target.requests) == 1


def test_a_refund_no_workflow_settles_is_failed_by_the_sweeper_and_a_new_click_works(
    api: Api, refund_target: RefundTarget, clock: SteppingClock, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Given a killed click whose workflow, once started, never settles it (an execution stopped by hand)
    t, ret = completed_return(api, refund_target)
    refund_id = _killed_click(api, t, ret["id"], monkeypatch)
    started: list[str] = []
    with monkeypatch.context() as m:
        m.setattr(bootstrap.container().workflows, "start_refund", lambda name, payload: started.append(name) or name)
        clock.advance(hours=0.2)
        assert sweep() == {"refund:started": 1}
        # When the sweeper finds it still pending long after its deadline
        clock.advance(hours=1)
        assert sweep() == {"refund:failed": 1}
    # Then it was started once by name, is failed now, and nothing is due any more
    assert started == [refund_id]
    failed = refund_status(api, t, ret["id"], refund_id, "failed")
    assert failed["error"] == "the refund workflow ended without an outcome"
    assert sweep() == {}
    # And a new click works
    assert _new_click(api, t, ret["id"], "again").status_code == 202
    assert len([r for r in api.ok("GET", f"/v1/returns/{ret['id']}/refunds", t["m_key"])["items"]]) == 2
