"""Webhook signatures reproduce the vendors' own vectors (shared/vectors)."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from chalicelib.domain.signatures import (
    SHIPPO_TOLERANCE_SECONDS,
    base64_hmac,
    boomerang_signature,
    easypost_signature,
    parse_shippo_header,
    sendcloud_signature,
    shippo_signature,
    verify_aftership,
    verify_easypost,
    verify_sendcloud,
    verify_shippo,
    verify_shopify,
    verify_woocommerce,
    woocommerce_signature,
)

VECTORS = Path(__file__).resolve().parents[3] / "shared" / "vectors"
EASYPOST_EXPECTED = "hmac-sha256-hex=38f3f53c103713df81616a0a186d77141957323ec21d5fe9363db93840f527db"


def _easypost_body() -> bytes:
    path = VECTORS / "easypost-event-body.json"
    if not path.exists():
        pytest.skip("shared/vectors is not beside this checkout")
    return path.read_bytes().rstrip(b"\n")


def test_easypost_official_vector_with_nfkd_secret() -> None:
    body = _easypost_body()
    assert easypost_signature("s\u00e9cret", body) == EASYPOST_EXPECTED
    # the composed and decomposed spellings of the secret are the same key after NFKD
    assert easypost_signature("se\u0301cret", body) == EASYPOST_EXPECTED


def test_easypost_verification_rejects_tampering_and_missing_headers() -> None:
    body = _easypost_body()
    assert verify_easypost("s\u00e9cret", body, EASYPOST_EXPECTED)
    tampered = body.replace(b'"in_transit"', b'"delivered"', 1)
    assert tampered != body
    assert not verify_easypost("s\u00e9cret", tampered, EASYPOST_EXPECTED)
    assert not verify_easypost("s\u00e9cret", body, None)
    assert not verify_easypost("s\u00e9cret", body, "")
    assert not verify_easypost("secret", body, EASYPOST_EXPECTED)


def test_easypost_signs_raw_bytes_not_reserialized_json() -> None:
    body = _easypost_body()
    pretty = json.dumps(json.loads(body), indent=2).encode()
    assert easypost_signature("s\u00e9cret", pretty) != EASYPOST_EXPECTED


def test_sendcloud_vector_is_plain_hex_hmac() -> None:
    # Sendcloud's published vector: hex HMAC-SHA256(secret, body); our outbound scheme is the same digest.
    assert boomerang_signature("secretkey", b'{"key": "value"}') == (
        "sha256=1eed4b3d41f4653ac64fd56f1bf1cbfd349e4482cbc11dff7134bd93e5da4b0a"
    )


def test_base64_scheme_is_the_same_digest_base64_encoded() -> None:
    # base64 of the Sendcloud vector digest above (AfterShip, Shopify, WooCommerce use this encoding)
    assert base64_hmac("secretkey", b'{"key": "value"}') == "Hu1LPUH0ZTrGT9VvG/HL/TSeRILLwR3/cTS9k+XaSwo="


# ----- Sendcloud: hex HMAC-SHA256(secret, raw body); the vendor's own vector ------------------------------------
SENDCLOUD_BODY = b'{"key": "value"}'
SENDCLOUD_EXPECTED = "1eed4b3d41f4653ac64fd56f1bf1cbfd349e4482cbc11dff7134bd93e5da4b0a"


def test_sendcloud_vendor_vector_reproduces_byte_for_byte() -> None:
    assert sendcloud_signature("secretkey", SENDCLOUD_BODY) == SENDCLOUD_EXPECTED
    assert verify_sendcloud("secretkey", SENDCLOUD_BODY, SENDCLOUD_EXPECTED)
    assert verify_sendcloud("secretkey", SENDCLOUD_BODY, SENDCLOUD_EXPECTED.upper())  # hex is case-free
    assert verify_sendcloud("secretkey", SENDCLOUD_BODY, f" {SENDCLOUD_EXPECTED}\t")  # header whitespace


def test_sendcloud_rejects_tampering_wrong_secrets_and_missing_headers() -> None:
    assert not verify_sendcloud("secretkey", b'{"key":"value"}', SENDCLOUD_EXPECTED)  # re-serialized: other bytes
    assert not verify_sendcloud("secretkey", b'{"key": "valuE"}', SENDCLOUD_EXPECTED)
    assert not verify_sendcloud("secretkeY", SENDCLOUD_BODY, SENDCLOUD_EXPECTED)
    assert not verify_sendcloud("secretkey", SENDCLOUD_BODY, None)
    assert not verify_sendcloud("secretkey", SENDCLOUD_BODY, "")
    assert not verify_sendcloud("secretkey", SENDCLOUD_BODY, SENDCLOUD_EXPECTED[:-1])
    assert not verify_sendcloud("secretkey", SENDCLOUD_BODY, "sha256=" + SENDCLOUD_EXPECTED)
    assert not verify_sendcloud("secretkey", SENDCLOUD_BODY, "Hu1LPUH0ZTrGT9VvG/HL/TSeRILLwR3/cTS9k+XaSwo=")


# ----- AfterShip: base64 HMAC-SHA256(secret, raw body) ----------------------------------------------------------
AFTERSHIP_EXPECTED = "Hu1LPUH0ZTrGT9VvG/HL/TSeRILLwR3/cTS9k+XaSwo="  # the Sendcloud vector's digest, base64


def test_aftership_computed_example() -> None:
    assert verify_aftership("secretkey", SENDCLOUD_BODY, AFTERSHIP_EXPECTED)
    assert verify_aftership("secretkey", SENDCLOUD_BODY, AFTERSHIP_EXPECTED + "\n")


@pytest.mark.parametrize(
    ("secret", "body", "header"),
    [
        pytest.param("secretkey", b'{"key": "valuE"}', AFTERSHIP_EXPECTED, id="tampered body"),
        pytest.param("secretkey", b'{"key":"value"}', AFTERSHIP_EXPECTED, id="re-serialized body"),
        pytest.param("other", SENDCLOUD_BODY, AFTERSHIP_EXPECTED, id="wrong secret"),
        pytest.param("secretkey", SENDCLOUD_BODY, None, id="missing header"),
        pytest.param("secretkey", SENDCLOUD_BODY, "", id="empty header"),
        pytest.param("secretkey", SENDCLOUD_BODY, SENDCLOUD_EXPECTED, id="hex instead of base64"),
        pytest.param("secretkey", SENDCLOUD_BODY, AFTERSHIP_EXPECTED.lower(), id="base64 is case-sensitive"),
        pytest.param("secretkey", SENDCLOUD_BODY, "sha256=" + AFTERSHIP_EXPECTED, id="malformed header"),
    ],
)
def test_aftership_rejects(secret: str, body: bytes, header: str | None) -> None:
    assert not verify_aftership(secret, body, header)


# ----- Shippo: t=<unix ts>,v1=<hex HMAC-SHA256(secret, "<t>." + raw body)>, 300 s either side ------------------
SHIPPO_T = 1_700_000_000
SHIPPO_HEX = (
    "15385ab35dd4b695a4539afd494adbc71aa9057dc45cf6fe8a8671d1e731cbd4"  # HMAC(secretkey, b"1700000000." + body)
)
SHIPPO_HEADER = f"t={SHIPPO_T},v1={SHIPPO_HEX}"
SHIPPO_NOW = datetime.fromtimestamp(SHIPPO_T, UTC)


def test_shippo_computed_example() -> None:
    assert shippo_signature("secretkey", SENDCLOUD_BODY, SHIPPO_T) == SHIPPO_HEADER
    assert verify_shippo("secretkey", SENDCLOUD_BODY, SHIPPO_HEADER, SHIPPO_NOW)
    assert verify_shippo("secretkey", SENDCLOUD_BODY, f" t={SHIPPO_T} , v1={SHIPPO_HEX.upper()} ", SHIPPO_NOW)
    # a rotating secret: any one v1 may match, in any order
    assert verify_shippo("secretkey", SENDCLOUD_BODY, f"t={SHIPPO_T},v1={'0' * 64},v1={SHIPPO_HEX}", SHIPPO_NOW)
    assert verify_shippo("secretkey", SENDCLOUD_BODY, f"v1={SHIPPO_HEX},t={SHIPPO_T}", SHIPPO_NOW)


def test_shippo_signs_the_timestamp_too() -> None:
    # the same digest under another timestamp is not valid: t cannot be moved forward to dodge staleness
    later = SHIPPO_T + 100
    header = f"t={later},v1={SHIPPO_HEX}"
    assert not verify_shippo("secretkey", SENDCLOUD_BODY, header, datetime.fromtimestamp(later, UTC))


@pytest.mark.parametrize(
    ("offset", "valid"),
    [
        pytest.param(0, True, id="now"),
        pytest.param(SHIPPO_TOLERANCE_SECONDS, True, id="exactly 300 s old"),
        pytest.param(SHIPPO_TOLERANCE_SECONDS + 1, False, id="stale"),
        pytest.param(24 * 3600, False, id="a day old (replay)"),
        pytest.param(-SHIPPO_TOLERANCE_SECONDS, True, id="300 s in the future"),
        pytest.param(-SHIPPO_TOLERANCE_SECONDS - 1, False, id="too far in the future"),
    ],
)
def test_shippo_timestamps_older_or_newer_than_300_seconds_are_stale(offset: int, valid: bool) -> None:
    now = SHIPPO_NOW + timedelta(seconds=offset)
    assert verify_shippo("secretkey", SENDCLOUD_BODY, SHIPPO_HEADER, now) is valid


@pytest.mark.parametrize(
    ("secret", "body", "header"),
    [
        pytest.param("secretkey", b'{"key": "valuE"}', SHIPPO_HEADER, id="tampered body"),
        pytest.param("other", SENDCLOUD_BODY, SHIPPO_HEADER, id="wrong secret"),
        pytest.param("secretkey", SENDCLOUD_BODY, None, id="missing header"),
        pytest.param("secretkey", SENDCLOUD_BODY, "", id="empty header"),
        pytest.param("secretkey", SENDCLOUD_BODY, SHIPPO_HEX, id="bare digest"),
        pytest.param("secretkey", SENDCLOUD_BODY, f"v1={SHIPPO_HEX}", id="no timestamp"),
        pytest.param("secretkey", SENDCLOUD_BODY, f"t={SHIPPO_T}", id="no signature"),
        pytest.param("secretkey", SENDCLOUD_BODY, f"t=abc,v1={SHIPPO_HEX}", id="timestamp not a number"),
        pytest.param("secretkey", SENDCLOUD_BODY, f"t=-{SHIPPO_T},v1={SHIPPO_HEX}", id="negative timestamp"),
        pytest.param("secretkey", SENDCLOUD_BODY, f"t={SHIPPO_T},t={SHIPPO_T},v1={SHIPPO_HEX}", id="two timestamps"),
        pytest.param("secretkey", SENDCLOUD_BODY, f"t={SHIPPO_T};v1={SHIPPO_HEX}", id="wrong separator"),
        pytest.param("secretkey", SENDCLOUD_BODY, f"t={SHIPPO_T},v0={SHIPPO_HEX}", id="unknown scheme only"),
        pytest.param("secretkey", SENDCLOUD_BODY, f"t={SHIPPO_T},v1={SHIPPO_HEX[:-2]}", id="truncated"),
    ],
)
def test_shippo_rejects(secret: str, body: bytes, header: str | None) -> None:
    assert not verify_shippo(secret, body, header, SHIPPO_NOW)


def test_shippo_header_parsing() -> None:
    assert parse_shippo_header(SHIPPO_HEADER) == (SHIPPO_T, [SHIPPO_HEX])
    assert parse_shippo_header(f"t={SHIPPO_T},v1=AB,v0=cd,v1=ef") == (SHIPPO_T, ["ab", "ef"])
    assert parse_shippo_header("t=\u0661\u0662,v1=ab") is None  # non-ASCII digits are not a timestamp
    assert parse_shippo_header("garbage") is None


# ----- shop systems: the shops' own SDK and core test vectors (tests/fixtures/shops/SOURCES.md) ---------------------
@pytest.mark.parametrize(
    ("secret", "body", "signature"),
    [
        # Shopify/shopify-app-js, lib/webhooks/__tests__/validate.test.ts
        ("test_secret_key", b'{"foo": "bar"}', "B23tXN681gZ0qIWNRrgtzBE9XSDo5yaUu6wfmhu3a7g="),
        # Shopify/shopify-api-php, tests/Webhooks/RegistryTest.php (body json_encode(['foo' => 'bar']))
        ("7008c5f4da4718b9b45d26d3fcbbb157", b'{"foo":"bar"}', "+R9TwYM4mbLTk3hEAOBkpA7zW2lc9vNFmVKs2u2jtyY="),
    ],
)
def test_shopify_reproduces_shopifys_sdk_vectors(secret: str, body: bytes, signature: str) -> None:
    assert verify_shopify(secret, body, signature)
    assert not verify_shopify(secret, body + b" ", signature)
    assert not verify_shopify(secret + "x", body, signature)


def test_woocommerce_reproduces_woocommerce_cores_vector() -> None:
    # woocommerce/woocommerce, tests/legacy/unit-tests/webhooks/crud.php test_generate_signature: a webhook with no
    # secret set signs the payload 'secret' with the empty key
    assert woocommerce_signature("", b"secret") == "GBDo00G55h6IiV+6CxqivQPLbI//KzaOZm747971tPs="
    assert verify_woocommerce("", b"secret", "GBDo00G55h6IiV+6CxqivQPLbI//KzaOZm747971tPs=")
    assert not verify_woocommerce("", b"secret!", "GBDo00G55h6IiV+6CxqivQPLbI//KzaOZm747971tPs=")
