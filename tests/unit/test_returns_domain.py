"""The Return aggregate: transitions, carrier monotonicity, inspection discrepancies, grading, feedback, refunds."""

from __future__ import annotations

import itertools
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest
from hypothesis import given
from hypothesis import strategies as st

from chalicelib.domain.errors import InvalidTransition, ValidationFailed
from chalicelib.domain.returns import (
    RANK,
    TRANSITIONS,
    Disposition,
    Grade,
    ItemStatus,
    Return,
    ReturnItem,
    ReturnStatus,
)

T0 = datetime(2026, 11, 20, 10, 0, tzinfo=UTC)


def make_return(*quantities: int) -> Return:
    items = [
        ReturnItem(
            line_item_id=f"L{i + 1}",
            sku=f"SKU{i + 1}",
            name="x",
            quantity=q,
            unit_price=Decimal("10.00"),
            reason="too_small",
        )
        for i, q in enumerate(quantities or (1,))
    ]
    return Return.request(
        return_id="ret_1",
        merchant_id="mer_1",
        warehouse_id="wh_1",
        order_number="O1",
        currency="EUR",
        customer_country="DE",
        locale="de",
        items=items,
        tracking_token="tok",
        actor="customer",
        at=T0,
    )


def labelled(*quantities: int) -> Return:
    ret = make_return(*quantities)
    ret.attach_label(carrier="sandbox", tracking_number="SB1", label_key="k", actor="customer", at=T0)
    return ret


def test_every_status_has_an_entry_and_terminal_statuses_allow_nothing() -> None:
    assert set(TRANSITIONS) == set(ReturnStatus)
    for status in (ReturnStatus.CANCELLED, ReturnStatus.EXPIRED, ReturnStatus.REJECTED, ReturnStatus.REFUNDED):
        assert TRANSITIONS[status] == frozenset()


def test_happy_path_is_allowed_step_by_step() -> None:
    path = [
        "requested",
        "label_created",
        "in_transit",
        "delivered",
        "received",
        "inspected",
        "awaiting_feedback",
        "completed",
        "refunded",
    ]
    for a, b in itertools.pairwise(path):
        assert ReturnStatus(b) in TRANSITIONS[ReturnStatus(a)], (a, b)


@pytest.mark.parametrize("current", list(ReturnStatus))
@pytest.mark.parametrize("target", list(ReturnStatus))
def test_move_follows_the_table_exactly(current: ReturnStatus, target: ReturnStatus) -> None:
    # Given a return forced into `current`
    ret = make_return()
    ret.status = current
    # When it is asked to move to `target`
    if target in TRANSITIONS[current]:
        ret._move(target, "test", T0)
        assert ret.status == target
        assert ret.new_timeline[-1].type == f"return.{target.value}"
        assert ret.events[-1].type == f"return.{target.value}"
    else:
        with pytest.raises(InvalidTransition):
            ret._move(target, "test", T0)
        assert ret.status == current


def test_request_records_requested_and_needs_items() -> None:
    ret = make_return(1)
    assert ret.status == ReturnStatus.REQUESTED
    assert [e.type for e in ret.new_timeline] == ["return.requested"]
    with pytest.raises(ValidationFailed):
        Return.request(
            return_id="r",
            merchant_id="m",
            warehouse_id="w",
            order_number="o",
            currency="EUR",
            customer_country="DE",
            locale="de",
            items=[],
            tracking_token="t",
            actor="c",
            at=T0,
        )


CARRIER_TARGETS = [None, ReturnStatus.IN_TRANSIT, ReturnStatus.DELIVERED]


@given(st.lists(st.sampled_from(CARRIER_TARGETS), max_size=12))
def test_carrier_events_only_move_forward_and_always_leave_a_checkpoint(targets: list[ReturnStatus | None]) -> None:
    # Given a labelled return and any sequence of carrier statuses
    ret = labelled(1)
    before = len(ret.new_timeline)
    highest = RANK[ReturnStatus.LABEL_CREATED]
    for i, target in enumerate(targets):
        rank_before = RANK[ret.status]
        ret.apply_carrier_status(
            target=target,
            provider="easypost",
            carrier_status="x",
            occurred_at=T0 + timedelta(minutes=i),
            actor="carrier",
            at=T0,
        )
        # Then the status never goes back
        assert RANK[ret.status] >= rank_before
        if target is not None:
            highest = max(highest, RANK[target])
    # And it ends at the highest status seen, with one checkpoint per event
    assert RANK[ret.status] == highest
    checkpoints = [e for e in ret.new_timeline[before:] if e.type == "carrier.checkpoint"]
    assert len(checkpoints) == len(targets)


def test_late_in_transit_after_a_scan_is_recorded_but_changes_nothing() -> None:
    ret = labelled(1)
    assert ret.receive(actor="wh", at=T0, barcode="SB1")
    moved = ret.apply_carrier_status(
        target=ReturnStatus.IN_TRANSIT,
        provider="easypost",
        carrier_status="in_transit",
        occurred_at=T0 - timedelta(hours=3),
        actor="carrier",
        at=T0,
    )
    assert not moved
    assert ret.status == ReturnStatus.RECEIVED
    assert ret.new_timeline[-1].type == "carrier.checkpoint"


def test_second_scan_is_harmless() -> None:
    ret = labelled(1)
    assert ret.receive(actor="wh", at=T0, barcode="SB1") is True
    n = len(ret.new_timeline)
    assert ret.receive(actor="wh", at=T0, barcode="SB1") is False
    assert len(ret.new_timeline) == n


def received(*quantities: int) -> Return:
    ret = labelled(*quantities)
    ret.receive(actor="wh", at=T0, barcode="SB1")
    return ret


def test_inspection_without_discrepancies() -> None:
    ret = received(2, 1)
    ret.record_inspection(
        lines=[{"line_item_id": "L1", "received_quantity": 2}, {"line_item_id": "L2", "received_quantity": 1}],
        extra_items=[],
        actor="wh",
        at=T0,
    )
    assert ret.status == ReturnStatus.INSPECTED
    assert ret.discrepancies == []


def test_inspection_records_shortfall_extra_items_and_unlisted_lines() -> None:
    ret = received(2, 1)
    ret.record_inspection(
        lines=[{"line_item_id": "L1", "received_quantity": 1}],
        extra_items=[{"sku": "OTHER", "quantity": 1}],
        actor="wh",
        at=T0,
    )
    kinds = sorted((d["type"], d.get("line_item_id") or d.get("sku")) for d in ret.discrepancies)
    assert kinds == [("extra_item", "OTHER"), ("missing", "L1"), ("missing", "L2")]
    assert ret.item("L2").status == ItemStatus.MISSING
    assert ret.needs_feedback()


def test_more_than_expected_counts_as_extra_not_as_more_refund() -> None:
    ret = received(1)
    ret.record_inspection(lines=[{"line_item_id": "L1", "received_quantity": 3}], extra_items=[], actor="wh", at=T0)
    assert ret.item("L1").received_quantity == 1
    assert {"type": "extra_item", "sku": "SKU1", "quantity": 2} in ret.discrepancies


def test_empty_box() -> None:
    ret = received(1)
    ret.record_inspection(lines=[{"line_item_id": "L1", "received_quantity": 0}], extra_items=[], actor="wh", at=T0)
    assert {"type": "empty_box"} in ret.discrepancies


def test_inspection_rejects_unknown_and_duplicate_lines_naming_the_field() -> None:
    ret = received(1)
    with pytest.raises(ValidationFailed) as exc:
        ret.record_inspection(
            lines=[{"line_item_id": "NOPE", "received_quantity": 1}], extra_items=[], actor="wh", at=T0
        )
    assert exc.value.errors[0]["loc"] == ["items", 0, "line_item_id"]
    with pytest.raises(ValidationFailed) as exc:
        ret.record_inspection(
            lines=[{"line_item_id": "L1", "received_quantity": 1}, {"line_item_id": "L1", "received_quantity": 1}],
            extra_items=[],
            actor="wh",
            at=T0,
        )
    assert exc.value.errors[0]["loc"] == ["items", 1, "line_item_id"]


def inspected(clarify: bool = False) -> Return:
    ret = received(2)
    ret.record_inspection(lines=[{"line_item_id": "L1", "received_quantity": 2}], extra_items=[], actor="wh", at=T0)
    ret.grade_items(
        {"L1": {"grade": "B", "disposition": "refurbish", "clarify": clarify, "rule": {"name": "r", "index": 0}}},
        actor="sys",
        at=T0,
    )
    return ret


def test_grading_completes_without_clarification() -> None:
    ret = inspected(clarify=False)
    assert ret.status == ReturnStatus.COMPLETED
    assert ret.item("L1").grade == Grade.B
    assert "item.graded" in [e.type for e in ret.events]


def test_clarify_rule_waits_for_feedback_and_approve_completes() -> None:
    ret = inspected(clarify=True)
    assert ret.status == ReturnStatus.AWAITING_FEEDBACK
    ret.resolve_feedback(
        decision="approve", overrides=[{"line_item_id": "L1", "grade": "A"}], comment="fine", actor="merchant", at=T0
    )
    assert ret.status == ReturnStatus.COMPLETED
    assert ret.item("L1").grade == Grade.A
    assert any(e.type == "feedback.received" and e.data["comment"] == "fine" for e in ret.new_timeline)


def test_reject_sends_items_back_unless_a_disposition_is_given() -> None:
    ret = inspected(clarify=True)
    ret.resolve_feedback(decision="reject", overrides=[], comment=None, actor="merchant", at=T0)
    assert ret.status == ReturnStatus.REJECTED
    assert ret.item("L1").disposition == Disposition.RETURN_TO_CUSTOMER
    assert ret.accepted_value() == Decimal("0.00")


def test_feedback_when_not_awaiting_is_an_invalid_transition() -> None:
    ret = inspected(clarify=False)
    with pytest.raises(InvalidTransition):
        ret.resolve_feedback(decision="approve", overrides=[], comment=None, actor="m", at=T0)


def test_timeout_applies_the_default() -> None:
    ret = inspected(clarify=True)
    ret.apply_default_after_timeout({"grade": "C", "disposition": "dispose"}, actor="sys", at=T0)
    assert ret.status == ReturnStatus.COMPLETED
    assert ret.item("L1").disposition == Disposition.DISPOSE


def test_refund_amounts_and_states() -> None:
    from chalicelib.domain.refund_calc import RefundPolicy
    from chalicelib.domain.refunds import allocate, plan

    ret = inspected(clarify=False)
    assert ret.accepted_value() == Decimal("20.00")
    first = plan(ret, None, RefundPolicy())
    assert first.refundable == Decimal("20.00")
    share = allocate(first, ret, Decimal("5.00"))
    ret.request_refund(
        refund_id="rf1", amount=Decimal("5.00"), allocation=share, breakdown=None, reason=None, actor="m", at=T0
    )
    assert plan(ret, None, RefundPolicy()).refundable == Decimal("15.00")  # the pending refund holds its share
    ret.refund_succeeded(refund_id="rf1", amount=Decimal("5.00"), actor="sys", at=T0)
    assert ret.status == ReturnStatus.REFUNDED
    second = plan(ret, None, RefundPolicy())
    assert second.refundable == Decimal("15.00")
    rest = allocate(second, ret, Decimal("15.00"))
    ret.request_refund(
        refund_id="rf2", amount=Decimal("15.00"), allocation=rest, breakdown=None, reason=None, actor="m", at=T0
    )
    ret.refund_failed(refund_id="rf2", amount=Decimal("15.00"), allocation=rest, error="shop down", actor="sys", at=T0)
    assert plan(ret, None, RefundPolicy()).refundable == Decimal("15.00")  # a failed refund gives its share back
    ret.request_refund(
        refund_id="rf3", amount=Decimal("15.00"), allocation=rest, breakdown=None, reason=None, actor="m", at=T0
    )
    ret.refund_succeeded(refund_id="rf3", amount=Decimal("15.00"), actor="sys", at=T0)
    assert plan(ret, None, RefundPolicy()).refundable == Decimal("0")


from chalicelib.domain.refunds import RefundAllocation  # noqa: E402


def test_refund_before_completion_is_refused() -> None:
    ret = received(1)
    with pytest.raises(InvalidTransition):
        ret.request_refund(
            refund_id="rf",
            amount=Decimal("1"),
            allocation=RefundAllocation(lines={"L1": Decimal("1")}),
            breakdown=None,
            reason=None,
            actor="m",
            at=T0,
        )


def test_milestones_are_return_statuses_in_time_order() -> None:
    ret = labelled(1)
    ret.apply_carrier_status(
        target=ReturnStatus.IN_TRANSIT,
        provider="p",
        carrier_status="x",
        occurred_at=T0 + timedelta(hours=1),
        actor="c",
        at=T0,
    )
    ms = ret.milestones(list(ret.new_timeline))
    assert [m["status"] for m in ms] == ["requested", "label_created", "in_transit"]


def test_a_scan_after_the_inspection_is_harmless_too() -> None:
    ret = received(1)
    ret.record_inspection(lines=[{"line_item_id": "L1", "received_quantity": 1}], extra_items=[], actor="wh", at=T0)
    assert ret.receive(actor="wh", at=T0, barcode="SB1") is False
    assert ret.status == ReturnStatus.INSPECTED


def test_a_cancelled_return_cannot_be_received() -> None:
    ret = labelled(1)
    ret._move(ReturnStatus.CANCELLED, "customer", T0)
    with pytest.raises(InvalidTransition):
        ret.receive(actor="wh", at=T0, barcode="SB1")


def test_a_carrier_exception_is_flagged_once_per_status_and_resolved_when_the_parcel_moves_on() -> None:
    ret = labelled(1)
    t0 = ret.updated_at

    def apply(status: str | None, target: ReturnStatus | None, minutes: int) -> None:
        ret.apply_carrier_status(
            target=target,
            provider="easypost",
            carrier_status=status or "in_transit",
            occurred_at=t0 + timedelta(minutes=minutes),
            actor="carrier:easypost",
            at=t0 + timedelta(minutes=minutes),
            normalized=status,
        )

    apply("in_transit", ReturnStatus.IN_TRANSIT, 1)
    apply("failure", None, 2)
    apply("failure", None, 3)  # the same problem again: no second event
    exceptions = [e for e in ret.events if e.type == "carrier.exception"]
    assert len(exceptions) == 1 and exceptions[0].data["carrier_status"] == "failure"
    assert ret.carrier_exception is not None and ret.carrier_exception["status"] == "failure"
    apply("delivered", ReturnStatus.DELIVERED, 4)
    assert ret.carrier_exception["resolved_at"]
    apply("lost", None, 5)  # a new problem after the resolution is flagged again
    assert [e.data["carrier_status"] for e in ret.events if e.type == "carrier.exception"] == ["failure", "lost"]
    ret.receive(actor="w", at=t0 + timedelta(minutes=6), barcode="x")
    apply("return_to_sender", None, 7)  # in the warehouse already: nothing to flag
    assert len([e for e in ret.events if e.type == "carrier.exception"]) == 2
