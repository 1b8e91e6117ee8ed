"""Identifiers inside S3 and table keys (issue 13, defect 5): whatever an identifier holds (`/`, `#`, `%`, the
`parcel` marker, control characters), the key keeps its shape and parsing gives the identifier back; ordinary ids
keep the key they always had."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from chalicelib.adapters.dynamodb.keys import order_pk, parse_order_pk, parse_return_pk, return_pk
from chalicelib.domain.photos import (
    PARCEL,
    parcel_photo_key,
    parse_parcel_photo_key,
    parse_photo_key,
    parse_segment,
    photo_key,
    segment,
    thumbnail_key,
)
from chalicelib.domain.text import clean_line, has_control, single_line

ids = st.text(min_size=1, max_size=80)
tricky = st.text(alphabet=st.sampled_from("/#%:.-_ aB1\r\n\u2028é"), min_size=1, max_size=30)
identifiers = st.one_of(ids, tricky, st.sampled_from(["parcel", "gid://shopify/LineItem/1", "%2F", "a/b", "#1001"]))


@settings(max_examples=300)
@given(identifiers)
def test_a_segment_holds_no_slash_and_parses_back(value: str) -> None:
    encoded = segment(value)
    assert "/" not in encoded and encoded != PARCEL and not has_control(encoded)
    assert parse_segment(encoded) == value


@settings(max_examples=300)
@given(identifiers, identifiers)
def test_a_photo_key_has_five_levels_whatever_the_line_item_id(line: str, other: str) -> None:
    key = photo_key("mer_01ABC", "ret_01XYZ", line, "ph_01", "image/png")
    assert key.count("/") == 4
    parsed = parse_photo_key(key)
    assert parsed is not None
    assert (parsed.merchant_id, parsed.return_id, parsed.line_item_id, parsed.name) == (
        "mer_01ABC",
        "ret_01XYZ",
        line,
        "ph_01.png",
    )
    assert parsed.key == key and thumbnail_key(key).count("/") == 4
    if other != line:  # two lines never share a key prefix level
        assert key.split("/")[3] != photo_key("mer_01ABC", "ret_01XYZ", other, "ph_01", "image/png").split("/")[3]


def test_gid_line_item_ids_and_the_parcel_marker() -> None:
    key = photo_key("m", "r", "gid://shopify/LineItem/1", "ph", "image/jpeg")
    assert key == "photos/m/r/gid:%2F%2Fshopify%2FLineItem%2F1/ph.jpg"
    assert parse_photo_key(key).line_item_id == "gid://shopify/LineItem/1"  # type: ignore[union-attr]
    # a line item called "parcel" is that line, not the parcel
    assert parse_photo_key(photo_key("m", "r", "parcel", "ph", "image/jpeg")).line_item_id == "parcel"  # type: ignore[union-attr]
    assert parse_photo_key(photo_key("m", "r", None, "ph", "image/jpeg")).line_item_id is None  # type: ignore[union-attr]
    assert parse_photo_key("photos/m/r/%C3/x.jpg") is None  # no segment() made that


@given(st.sampled_from(["L1", "866550311766439020", "SHIRT-M_2.b~", "Größe 1:2", "a b", "#1001", "x+y"]))
def test_ordinary_ids_keep_the_keys_they_had(value: str) -> None:
    # keys of photos and stored items made before the encoding existed stay valid
    assert segment(value) == value
    assert photo_key("m", "r", value, "ph", "image/jpeg") == f"photos/m/r/{value}/ph.jpg"
    assert order_pk("mer_1", value) == f"ORDER#mer_1#{value}"


@settings(max_examples=300)
@given(identifiers)
def test_table_keys_end_in_the_identifier_and_parse_back(value: str) -> None:
    # the identifier is the last part of a table key and parsing splits off the fixed prefix only: a `#` in it
    # cannot shift the merchant part, and no two (merchant, order number) pairs share a key
    assert parse_order_pk(order_pk("mer_01ABC", value)) == ("mer_01ABC", value)
    assert parse_return_pk(return_pk(value)) == value


@given(identifiers, identifiers)
def test_distinct_orders_have_distinct_keys(a: str, b: str) -> None:
    assert (order_pk("mer_1", a) == order_pk("mer_1", b)) == (a == b)


def test_parcel_photo_keys_keep_their_shape() -> None:
    key = parcel_photo_key("wh/1", "par_1", "ph", "image/png")
    assert key == "parcels/wh%2F1/par_1/ph.png"
    parsed = parse_parcel_photo_key(key)
    assert parsed is not None and (parsed.warehouse_id, parsed.parcel_id) == ("wh/1", "par_1")


# ----- text hygiene --------------------------------------------------------------------------------------------
def test_control_characters() -> None:
    for bad in ["a\r\nb", "\n", "a\x00", "\t", "\x1b[31m", "a\u2028b", "a\u2029", "\x85", "\x7f"]:
        assert has_control(bad), repr(bad)
    assert not has_control("Größe 1:2 #/% \u2013 ok")
    assert has_control("a\nb") and not has_control("a\nb", allow_line_feed=True)
    assert has_control("a\r\nb", allow_line_feed=True)


@given(st.text())
def test_single_line_leaves_no_line_break(value: str) -> None:
    out = single_line(value)
    assert not has_control(out)
    assert len(out.splitlines()) <= 1
    assert clean_line(value) == clean_line(value).strip() or not has_control(value)


def test_clean_line() -> None:
    assert clean_line("Shirt\r\n- M") == "Shirt - M"
    assert clean_line("Hauptstr.\u2028 5") == "Hauptstr. 5"
    assert clean_line("  kept as is  ") == "  kept as is  "  # nothing to clean: untouched
