"""Pseudonymising a customer's data: the pseudonym, orders, returns, withdrawals, timeline data, retention."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal

from chalicelib.domain import privacy
from chalicelib.domain.addresses import Address
from chalicelib.domain.orders import Order, OrderItem
from chalicelib.domain.return_index import email_key, facets
from chalicelib.domain.returns import Return, ReturnItem
from chalicelib.domain.withdrawals import Withdrawal

T0 = datetime(2026, 11, 20, 10, 0, tzinfo=UTC)
ADDRESS = Address("Anna Muster", "Hauptstraße", "5", "10115", "Berlin", "DE")


def an_order() -> Order:
    item = OrderItem(line_item_id="L1", sku="SHIRT", name="Shirt", quantity=2, unit_price=Decimal("10"))
    return Order("m1", "O-1", "anna@example.com", "EUR", T0, ADDRESS, [item], delivered_at=T0)


def a_return() -> Return:
    item = ReturnItem(
        line_item_id="L1",
        sku="SHIRT",
        name="Shirt",
        quantity=1,
        unit_price=Decimal(10),
        reason="too_small",
        comment="Call me on 0171 555, Anna",
        customer_photos=["customer/m1/O-1/L1/a.jpg"],
    )
    ret = Return.request(
        return_id="r1",
        merchant_id="m1",
        warehouse_id="w",
        order_number="O-1",
        currency="EUR",
        customer_country="DE",
        locale="de",
        items=[item],
        tracking_token="t",
        actor="customer",
        at=T0,
    )
    ret.customer_email_key = email_key("anna@example.com")
    ret.label_key = "labels/m1/r1.pdf"
    ret.customs = {"required": True, "declaration_key": "labels/m1/r1-cn23.pdf", "warnings": []}
    ret.parcel_photos = ["photos/m1/r1/parcel/p.jpg"]
    return ret


def test_the_pseudonym_is_stable_per_merchant_and_customer_and_holds_no_address() -> None:
    a = privacy.pseudonym("m1", " Anna@Example.com ")
    assert a == privacy.pseudonym("m1", "anna@example.com")
    assert a != privacy.pseudonym("m2", "anna@example.com")
    assert a != privacy.pseudonym("m1", "bert@example.com")
    assert a.startswith("erased-") and a.endswith("@erased.invalid")
    assert "anna" not in a and privacy.is_pseudonym(a) and not privacy.is_pseudonym("anna@example.com")


def test_an_order_keeps_items_amounts_and_country_and_loses_the_customer() -> None:
    order = an_order()
    alias = privacy.pseudonym("m1", order.email)
    out = privacy.pseudonymise_order(order, alias)
    assert out.email == alias
    assert out.shipping_address == Address("Erased customer", "", "", "10", "", "DE")
    assert out.items == order.items and out.order_number == "O-1" and out.currency == "EUR"
    assert order.email == "anna@example.com"  # a copy


def test_a_return_loses_comments_photos_label_and_its_email_facet() -> None:
    ret = a_return()
    alias_key = email_key(privacy.pseudonym("m1", "anna@example.com"))
    done = privacy.pseudonymise_return(ret, alias_key)
    assert done.changed
    assert set(done.objects) == {
        "customer/m1/O-1/L1/a.jpg",
        "labels/m1/r1.pdf",
        "labels/m1/r1-cn23.pdf",
        "photos/m1/r1/parcel/p.jpg",
    }
    assert ret.items[0].comment is None and ret.items[0].customer_photos == []
    assert ret.label_key is None and ret.parcel_photos == [] and ret.customs == {"required": True, "warnings": []}
    assert f"email={email_key('anna@example.com')}" not in facets(ret)
    assert f"email={alias_key}" in facets(ret)
    assert ret.items[0].reason == "too_small" and ret.items[0].sku == "SHIRT"  # what reports count stays
    # again: nothing left to do
    again = privacy.pseudonymise_return(ret, alias_key)
    assert not again.changed and again.objects == ()


def test_timeline_data_and_withdrawals_lose_what_names_the_customer() -> None:
    data = {"status": "rejected", "comment": "Anna said ...", "email": "anna@example.com", "line_item_id": "L1"}
    assert privacy.pseudonymise_timeline_data(data) == {"status": "rejected", "line_item_id": "L1"}
    w = Withdrawal(id="wd1", merchant_id="m1", order_number="O-1", name="Anna Muster", items=None, received_at=T0)
    out = privacy.pseudonymise_withdrawal(w)
    assert out.name == "Erased customer" and out.order_number == "O-1" and out.received_at == T0
    assert w.name == "Anna Muster"


def test_retention_runs_from_the_end_of_the_return_and_is_bounded() -> None:
    assert privacy.retention_due(T0, 1095) == T0 + timedelta(days=1095)
    assert privacy.check_retention_days(privacy.DEFAULT_RETENTION_DAYS) is None
    assert privacy.check_retention_days(29) is not None
    assert privacy.check_retention_days(3651) is not None


def test_the_job_needs_only_the_digest_never_the_address() -> None:
    subject = privacy.subject_digest("Anna@Example.com")
    assert "anna" not in subject
    assert privacy.pseudonym_of_subject("m1", subject) == privacy.pseudonym("m1", "anna@example.com")
    assert privacy.subject_key(subject) == email_key("anna@example.com")
