"""Webhook signature schemes, exactly as the vendors specify them (see shared/vectors).

Always computed over the raw received bytes and compared in constant time.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import unicodedata


def _hmac_sha256(secret: bytes, body: bytes) -> bytes:
    return hmac.new(secret, body, hashlib.sha256).digest()


def easypost_signature(secret: str, body: bytes) -> str:
    """`X-Hmac-Signature`: "hmac-sha256-hex=" + hex HMAC-SHA256 keyed with the NFKD-normalized UTF-8 secret."""
    key = unicodedata.normalize("NFKD", secret).encode("utf-8")
    return "hmac-sha256-hex=" + _hmac_sha256(key, body).hex()


def verify_easypost(secret: str, body: bytes, header: str | None) -> bool:
    if not header:
        return False
    return hmac.compare_digest(easypost_signature(secret, body).encode(), header.strip().encode())


def boomerang_signature(secret: str, body: bytes) -> str:
    """`X-Boomerang-Signature` on our outbound deliveries: "sha256=" + hex HMAC-SHA256(secret, raw body)."""
    return "sha256=" + _hmac_sha256(secret.encode("utf-8"), body).hex()


def base64_hmac(secret: str, body: bytes) -> str:
    """AfterShip, Shopify, WooCommerce: base64 of HMAC-SHA256(secret, raw body)."""
    return base64.b64encode(_hmac_sha256(secret.encode("utf-8"), body)).decode()
