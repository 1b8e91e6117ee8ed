"""Customs: which returns cross a customs border, and declaration lines that never block a return."""

from __future__ import annotations

import json
import uuid
from decimal import Decimal

import pytest
from hypothesis import given
from hypothesis import strategies as st

from chalicelib.domain.addresses import Address
from chalicelib.domain.customs import (
    EU_COUNTRIES,
    FALLBACK_WEIGHT_GRAMS,
    CustomsDeclaration,
    CustomsDefaults,
    CustomsItem,
    CustomsLine,
    customs_lines,
    customs_required,
    normalize_country_of_origin,
    normalize_hs_code,
)
from chalicelib.domain.errors import ValidationFailed

NO_DEFAULTS = CustomsDefaults()
MERCHANT_DEFAULTS = CustomsDefaults(hs_code="6203.42", country_of_origin="pt", weight_grams=400)


def an_item(**overrides: object) -> CustomsItem:
    fields: dict[str, object] = {
        "sku": f"SKU-{uuid.uuid4().hex[:6].upper()}",
        "description": "Merino wool sweater",
        "quantity": 1,
        "unit_price": Decimal("79.95"),
        "hs_code": "611011",
        "country_of_origin": "IT",
        "weight_grams": 350,
    }
    fields.update(overrides)
    return CustomsItem(**fields)  # type: ignore[arg-type]


def a_declaration(lines: list[CustomsLine], currency: str = "EUR") -> CustomsDeclaration:
    suffix = uuid.uuid4().hex[:8].upper()
    return CustomsDeclaration(
        return_id=f"ret_{suffix}",
        reference=f"ORD-{suffix}",
        currency=currency,
        sender=Address("Ann Smith", "Baker Street", "221b", "NW1 6XE", "London", "GB"),
        recipient=Address("Boomerang Returns", "Industriestraße", "12", "47809", "Krefeld", "DE"),
        lines=tuple(lines),
    )


# ----- customs_required ---------------------------------------------------------------------------------------------
def test_eu_has_its_27_member_states_with_greece_as_gr() -> None:
    assert len(EU_COUNTRIES) == 27
    assert {"DE", "AT", "FR", "GR", "HR", "CY"} <= EU_COUNTRIES
    assert not {"EL", "GB", "CH", "NO", "IS", "LI"} & EU_COUNTRIES


@pytest.mark.parametrize(
    ("customer", "warehouse", "required"),
    [
        ("DE", "DE", False),  # domestic
        ("AT", "DE", False),  # within the EU
        ("FR", "DE", False),
        ("GR", "PL", False),
        ("GB", "DE", True),  # into the EU from outside
        ("NO", "DE", True),
        ("CH", "DE", True),
        ("DE", "CH", True),  # out of the EU to a Swiss warehouse
        ("GB", "CH", True),  # between two non-EU countries
        ("CH", "CH", False),  # same country outside the EU
        ("US", "US", False),
        (" gb ", "de", True),  # codes are normalised
        ("at", "De", False),
    ],
)
def test_customs_are_required_when_the_parcel_leaves_a_customs_territory(
    customer: str, warehouse: str, required: bool
) -> None:
    # Given a customer country and a warehouse country, When asked, Then customs follow the EU customs union
    assert customs_required(customer, warehouse) is required


def test_a_domestic_consolidation_address_takes_the_parcel_without_customs() -> None:
    # Given a merchant with a consolidation address in Switzerland and a warehouse in Germany
    domestic = {"CH", "li"}

    # When Swiss, Liechtenstein and British customers return
    # Then only the British parcel crosses a customs border on its way to us
    assert customs_required("CH", "DE", domestic_countries=domestic) is False
    assert customs_required("LI", "DE", domestic_countries=domestic) is False
    assert customs_required("GB", "DE", domestic_countries=domestic) is True
    assert customs_required("CH", "DE", domestic_countries=[]) is True


# ----- customs_lines ------------------------------------------------------------------------------------------------
def test_an_item_with_complete_data_needs_no_fallback() -> None:
    # Given an item with its own HS code, origin and weight
    item = an_item(quantity=2, unit_price=Decimal("79.95"), hs_code="6110.11.00", country_of_origin="it")

    # When the declaration lines are built
    lines, warnings = customs_lines([item], MERCHANT_DEFAULTS)

    # Then the line carries the item's data, totals per line, and nothing is warned about
    assert warnings == []
    assert lines == [
        CustomsLine(
            sku=item.sku,
            description="Merino wool sweater",
            quantity=2,
            hs_code="61101100",
            country_of_origin="IT",
            weight_grams=700,
            value=Decimal("159.90"),
        )
    ]


def test_missing_item_data_falls_back_to_the_merchant_defaults_with_a_warning_per_field() -> None:
    # Given an item without any customs data, and a merchant with defaults
    item = an_item(quantity=3, hs_code=None, country_of_origin=None, weight_grams=None)

    # When the declaration lines are built
    lines, warnings = customs_lines([item], MERCHANT_DEFAULTS)

    # Then the defaults are used (normalised), and each fallback names the SKU and the field
    (line,) = lines
    assert (line.hs_code, line.country_of_origin, line.weight_grams) == ("620342", "PT", 1200)
    assert warnings == [
        f"{item.sku}: hs_code missing, merchant default used",
        f"{item.sku}: country_of_origin missing, merchant default used",
        f"{item.sku}: weight_grams missing, merchant default used",
    ]


def test_without_merchant_defaults_a_neutral_fallback_keeps_the_return_going() -> None:
    # Given an item without customs data and a merchant without defaults
    item = an_item(quantity=2, hs_code="", country_of_origin=None, weight_grams=None)

    # When the declaration lines are built
    lines, warnings = customs_lines([item], NO_DEFAULTS)

    # Then nothing raises: no HS code, no origin, 500 g per unit, and three warnings
    (line,) = lines
    assert (line.hs_code, line.country_of_origin, line.weight_grams) == ("", "", 2 * FALLBACK_WEIGHT_GRAMS)
    assert warnings == [
        f"{item.sku}: hs_code missing, no merchant default",
        f"{item.sku}: country_of_origin missing, no merchant default",
        f"{item.sku}: weight_grams missing, no merchant default",
    ]


@pytest.mark.parametrize(
    ("raw", "normalised"),
    [
        ("611011", "611011"),
        ("6110.11", "611011"),
        ("6110 11 00", "61101100"),
        ("6110.11.0010", "6110110010"),
        (" 6110-11-00-10 9 ", "61101100109"),  # 11 digits, the longest national extension
        ("6110", None),  # chapter and heading only
        ("61101", None),
        ("611011000101", None),  # 12 digits
        ("HS", None),
        ("", None),
        ("".join(chr(0xFF10 + int(d)) for d in "611011"), None),  # full-width digits are not ASCII digits
    ],
)
def test_hs_codes_are_reduced_to_6_to_11_digits(raw: str, normalised: str | None) -> None:
    assert normalize_hs_code(raw) == normalised


@pytest.mark.parametrize(
    ("field", "bad_value"),
    [
        ("hs_code", "6110"),
        ("hs_code", "not a code"),
        ("country_of_origin", "ITA"),
        ("country_of_origin", "1T"),
        ("weight_grams", 0),
        ("weight_grams", -5),
    ],
)
def test_invalid_item_data_counts_as_missing_and_says_so(field: str, bad_value: object) -> None:
    # Given an item with one unusable customs field
    item = an_item(**{field: bad_value})

    # When the declaration lines are built
    lines, warnings = customs_lines([item], MERCHANT_DEFAULTS)

    # Then the merchant default replaces it, with a warning that calls it invalid
    assert warnings == [f"{item.sku}: {field} invalid, merchant default used"]
    expected = {"hs_code": "620342", "country_of_origin": "PT", "weight_grams": 400}[field]
    assert getattr(lines[0], field) == expected


def test_an_unusable_merchant_default_is_no_default() -> None:
    # Given merchant defaults that are all malformed
    defaults = CustomsDefaults(hs_code="12", country_of_origin="Portugal", weight_grams=0)
    item = an_item(hs_code=None, country_of_origin=None, weight_grams=None)

    # When the declaration lines are built
    lines, warnings = customs_lines([item], defaults)

    # Then the neutral fallback applies, as if there were no defaults
    assert (lines[0].hs_code, lines[0].country_of_origin, lines[0].weight_grams) == ("", "", FALLBACK_WEIGHT_GRAMS)
    assert all(w.endswith("no merchant default") for w in warnings)
    assert len(warnings) == 3


def test_line_values_round_half_up_to_cents() -> None:
    # Given a unit price with sub-cent precision (a net price, say)
    item = an_item(quantity=3, unit_price=Decimal("0.105"))

    # When the line is built, Then its value is rounded half up to 2 places
    lines, _ = customs_lines([item], NO_DEFAULTS)
    assert lines[0].value == Decimal("0.32")
    assert str(lines[0].value) == "0.32"


@pytest.mark.parametrize(
    ("overrides", "field"),
    [
        ({"quantity": 0}, "quantity"),
        ({"quantity": -1}, "quantity"),
        ({"unit_price": Decimal("-0.01")}, "unit_price"),
        ({"unit_price": Decimal("NaN")}, "unit_price"),
        ({"unit_price": Decimal("Infinity")}, "unit_price"),
    ],
)
def test_an_item_needs_a_positive_quantity_and_a_price(overrides: dict[str, object], field: str) -> None:
    # Given an impossible returned line, When it is built, Then it is refused naming the field
    with pytest.raises(ValidationFailed) as raised:
        an_item(**overrides)
    assert raised.value.errors[0]["loc"] == [field]


# ----- CustomsDeclaration and CustomsDefaults -----------------------------------------------------------------------
def test_declaration_totals_and_json_round_trip() -> None:
    # Given two lines, one with fallback weight
    items = [
        an_item(quantity=2, unit_price=Decimal("79.95"), weight_grams=350),
        an_item(quantity=1, unit_price=Decimal("129.00"), weight_grams=None),
    ]
    lines, _ = customs_lines(items, NO_DEFAULTS)

    # When they are declared
    declaration = a_declaration(lines)

    # Then the totals add up, and the dict is JSON-safe and reads back equal
    assert declaration.total_value == Decimal("288.90")
    assert declaration.total_weight_grams == 700 + FALLBACK_WEIGHT_GRAMS
    data = json.loads(json.dumps(declaration.to_dict()))
    assert data["total_value"] == "288.90"
    assert data["total_weight_grams"] == 1200
    assert data["category"] == "returned_goods"
    assert data["lines"][0]["value"] == "159.90"
    assert CustomsDeclaration.from_dict(data) == declaration


@pytest.mark.parametrize(
    ("kwargs", "field"),
    [({"lines": []}, "lines"), ({"currency": "eur"}, "currency"), ({"currency": "EURO"}, "currency")],
)
def test_a_declaration_needs_lines_and_a_currency_code(kwargs: dict[str, object], field: str) -> None:
    lines, _ = customs_lines([an_item()], NO_DEFAULTS)
    with pytest.raises(ValidationFailed) as raised:
        a_declaration(**{"lines": lines, **kwargs})  # type: ignore[arg-type]
    assert raised.value.errors[0]["loc"] == [field]


def test_a_declaration_category_is_one_the_cn23_knows() -> None:
    lines, _ = customs_lines([an_item()], NO_DEFAULTS)
    declaration = a_declaration(lines)
    with pytest.raises(ValidationFailed):
        CustomsDeclaration(**{**declaration.__dict__, "category": "souvenir"})


def test_merchant_defaults_read_leniently_from_settings() -> None:
    # Given stored settings, complete, absent, and with unreadable values
    complete = CustomsDefaults.from_dict({"hs_code": "620342", "country_of_origin": "PT", "weight_grams": "400"})

    # Then complete settings round-trip, absent ones are no defaults, and junk is treated as missing
    assert complete == CustomsDefaults("620342", "PT", 400)
    assert CustomsDefaults.from_dict(complete.to_dict()) == complete
    assert CustomsDefaults.from_dict(None) == NO_DEFAULTS
    assert CustomsDefaults.from_dict({}) == NO_DEFAULTS
    assert CustomsDefaults.from_dict({"hs_code": "", "weight_grams": "heavy"}) == NO_DEFAULTS
    assert CustomsDefaults.from_dict({"hs_code": 620342}).hs_code == "620342"


# ----- properties ---------------------------------------------------------------------------------------------------
customs_items = st.builds(
    CustomsItem,
    sku=st.text(alphabet="ABCDEFGHJK0123456789-", min_size=1, max_size=12),
    description=st.text(max_size=40),
    quantity=st.integers(min_value=1, max_value=50),
    unit_price=st.decimals(min_value=0, max_value=10_000, places=2, allow_nan=False, allow_infinity=False),
    hs_code=st.one_of(st.none(), st.just(""), st.from_regex(r"[0-9][0-9 .]{3,14}", fullmatch=True)),
    country_of_origin=st.one_of(st.none(), st.sampled_from(["cn", "VN", "pt", "XYZ", ""])),
    weight_grams=st.one_of(st.none(), st.integers(min_value=-10, max_value=30_000)),
)


@given(items=st.lists(customs_items, min_size=1, max_size=20), with_defaults=st.booleans())
def test_declared_totals_are_the_sums_of_the_returned_lines(items: list[CustomsItem], with_defaults: bool) -> None:
    # Given any returned lines, with or without merchant defaults
    defaults = MERCHANT_DEFAULTS if with_defaults else NO_DEFAULTS

    # When they are declared
    lines, warnings = customs_lines(items, defaults)
    declaration = a_declaration(lines)

    # Then every item has one line, values and weights add up, and every field is usable or explicitly empty
    assert len(lines) == len(items)
    assert declaration.total_value == sum((i.unit_price * i.quantity for i in items), Decimal(0))
    fallback_weight = 400 if with_defaults else FALLBACK_WEIGHT_GRAMS
    assert declaration.total_weight_grams == sum(
        (i.weight_grams if i.weight_grams and i.weight_grams > 0 else fallback_weight) * i.quantity for i in items
    )
    for line in lines:
        assert line.hs_code == "" or (line.hs_code.isdigit() and 6 <= len(line.hs_code) <= 11)
        assert line.country_of_origin == "" or (line.country_of_origin.isalpha() and len(line.country_of_origin) == 2)
        assert line.weight_grams > 0
        assert line.value == line.value.quantize(Decimal("0.01"))
    if with_defaults:
        assert all(line.hs_code and line.country_of_origin for line in lines)
    assert len(warnings) == sum(
        (normalize_hs_code(i.hs_code) is None)
        + (normalize_country_of_origin(i.country_of_origin) is None)
        + (not i.weight_grams or i.weight_grams <= 0)
        for i in items
    )
