"""Webhook signatures reproduce the vendors' own vectors (shared/vectors)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from chalicelib.domain.signatures import (
    base64_hmac,
    boomerang_signature,
    easypost_signature,
    verify_easypost,
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
