"""List facets of a return and the filter's choice of index."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal

from chalicelib.domain.return_index import MAX_FACETS, ReturnFilter, email_key, facets, feedback_sla_left
from chalicelib.domain.returns import Grade, RefundSummary, Return, ReturnItem, ReturnStatus

T0 = datetime(2026, 11, 20, 10, 0, tzinfo=UTC)


def make(*skus: str) -> Return:
    items = [
        ReturnItem(line_item_id=f"L{i}", sku=sku, name=sku, quantity=1, unit_price=Decimal(1), reason="too_small")
        for i, sku in enumerate(skus)
    ]
    return Return.request(
        return_id="r1",
        merchant_id="m",
        warehouse_id="w",
        order_number="O-1",
        currency="EUR",
        customer_country="DE",
        locale="de",
        items=items,
        tracking_token="t",
        actor="c",
        at=T0,
    )


def test_facets_name_every_filterable_value_once() -> None:
    ret = make("SHIRT", "CAP", "SHIRT")
    ret.customer_email_key = email_key(" Anna@Example.com ")
    ret.items[0].grade = Grade.B
    ret.refund = RefundSummary(id="rf", status="failed", amount=Decimal(1), currency="EUR")
    got = facets(ret)
    assert got[:3] == ["all", "status=requested", "order=O-1"]
    assert f"email={email_key('anna@example.com')}" in got
    assert {"sku=SHIRT", "sku=CAP", "reason=too_small", "grade=B", "attention=refund_failed"} <= set(got)
    assert len(got) == len(set(got))
    ret.status = ReturnStatus.AWAITING_FEEDBACK
    assert "attention=awaiting_feedback" in facets(ret)


def test_a_return_with_very_many_skus_keeps_its_fixed_facets() -> None:
    ret = make(*[f"SKU{i}" for i in range(100)])
    got = facets(ret)
    assert len(got) == MAX_FACETS and got[:3] == ["all", "status=requested", "order=O-1"]


def test_the_filter_asks_the_most_selective_index_and_checks_the_rest() -> None:
    ret = make("SHIRT")
    assert ReturnFilter(status="requested", sku="SHIRT").facet() == "sku=SHIRT"
    assert ReturnFilter(email="A@B.example").facet() == f"email={email_key('a@b.example')}"
    assert ReturnFilter().facet() == "all"
    assert ReturnFilter(sku="SHIRT", status="requested").matches(ret)
    assert not ReturnFilter(sku="SHIRT", status="received").matches(ret)
    assert not ReturnFilter(sku="SHIRT", created_from=datetime(2027, 1, 1, tzinfo=UTC)).matches(ret)


def test_feedback_sla_left_counts_down_and_goes_negative() -> None:
    ret = make("SHIRT")
    assert feedback_sla_left(ret, T0, 48, datetime(2026, 11, 21, 10, 0, tzinfo=UTC)) == 24.0
    assert feedback_sla_left(ret, T0, 48, datetime(2026, 11, 22, 16, 0, tzinfo=UTC)) == -6.0
