"""Webhook signature schemes, exactly as the vendors specify them (see shared/vectors).

Always computed over the raw received bytes and compared in constant time.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import re
import unicodedata
from datetime import datetime

#: Shippo signatures older (or further in the future) than this are stale: a replayed request is refused.
SHIPPO_TOLERANCE_SECONDS = 300


def _hmac_sha256(secret: bytes, body: bytes) -> bytes:
    return hmac.new(secret, body, hashlib.sha256).digest()


def _same(expected: str, received: str | None) -> bool:
    """Constant-time comparison of a computed signature with the received header value."""
    if not received:
        return False
    return hmac.compare_digest(expected.encode("ascii"), received.strip().encode("utf-8", "replace"))


def easypost_signature(secret: str, body: bytes) -> str:
    """`X-Hmac-Signature`: "hmac-sha256-hex=" + hex HMAC-SHA256 keyed with the NFKD-normalized UTF-8 secret."""
    key = unicodedata.normalize("NFKD", secret).encode("utf-8")
    return "hmac-sha256-hex=" + _hmac_sha256(key, body).hex()


def verify_easypost(secret: str, body: bytes, header: str | None) -> bool:
    return _same(easypost_signature(secret, body), header)


def boomerang_signature(secret: str, body: bytes) -> str:
    """`X-Boomerang-Signature` on our outbound deliveries: "sha256=" + hex HMAC-SHA256(secret, raw body)."""
    return "sha256=" + _hmac_sha256(secret.encode("utf-8"), body).hex()


def base64_hmac(secret: str, body: bytes) -> str:
    """AfterShip, Shopify, WooCommerce: base64 of HMAC-SHA256(secret, raw body)."""
    return base64.b64encode(_hmac_sha256(secret.encode("utf-8"), body)).decode()


def verify_aftership(secret: str, body: bytes, header: str | None) -> bool:
    """`aftership-hmac-sha256`: base64 HMAC-SHA256(secret, raw body)."""
    return _same(base64_hmac(secret, body), header)


def sendcloud_signature(secret: str, body: bytes) -> str:
    """`Sendcloud-Signature`: hex HMAC-SHA256(secret, raw body)."""
    return _hmac_sha256(secret.encode("utf-8"), body).hex()


def verify_sendcloud(secret: str, body: bytes, header: str | None) -> bool:
    return _same(sendcloud_signature(secret, body), header.lower() if header else header)


def _shippo_digest(secret: str, body: bytes, timestamp: int) -> str:
    return _hmac_sha256(secret.encode("utf-8"), f"{timestamp}.".encode("ascii") + body).hex()


def shippo_signature(secret: str, body: bytes, timestamp: int) -> str:
    """`Shippo-Auth-Signature`: "t=<unix ts>,v1=<hex HMAC-SHA256(secret, "<ts>." + raw body)>"."""
    return f"t={timestamp},v1={_shippo_digest(secret, body, timestamp)}"


def parse_shippo_header(header: str | None) -> tuple[int, list[str]] | None:
    """The timestamp and every `v1` signature of a `Shippo-Auth-Signature` header; None when it is malformed."""
    if not header:
        return None
    timestamps: list[str] = []
    signatures: list[str] = []
    for part in header.split(","):
        key, sep, value = part.strip().partition("=")
        if not sep:
            return None
        if key == "t":
            timestamps.append(value.strip())
        elif key == "v1":
            signatures.append(value.strip().lower())
    if len(timestamps) != 1 or not signatures or not timestamps[0].isascii() or not timestamps[0].isdigit():
        return None
    return int(timestamps[0]), signatures


def verify_shippo(
    secret: str,
    body: bytes,
    header: str | None,
    now: datetime,
    tolerance_seconds: int = SHIPPO_TOLERANCE_SECONDS,
) -> bool:
    """A `v1` signature over "<t>." + raw body matches, and `t` is within the tolerance of `now` (either side)."""
    parsed = parse_shippo_header(header)
    if parsed is None:
        return False
    timestamp, received = parsed
    if abs(now.timestamp() - timestamp) > tolerance_seconds:
        return False
    expected = _shippo_digest(secret, body, timestamp)
    # compare against every v1 (a rotating secret may send two), without stopping at the first match
    matches = [_same(expected, candidate) for candidate in received]
    return any(matches)


# ----- shop systems (order webhooks) -------------------------------------------------------------------------------
def verify_shopify(secret: str, body: bytes, header: str | None) -> bool:
    """`X-Shopify-Hmac-SHA256`: base64 HMAC-SHA256(secret, raw body); the secret is the app's client secret, or the
    signing key the shop admin shows for webhooks created there."""
    return _same(base64_hmac(secret, body), header)


#: What WordPress' wp_specialchars_decode(..., ENT_QUOTES) turns back into characters (one pass, like its strtr).
_WP_ENTITY = re.compile(r"&(lt|gt|amp|quot|#0*(?:34|38|39|60|62)|#[xX]0*(?:22|26|27));")
_WP_CHARS = {"lt": "<", "gt": ">", "amp": "&", "quot": '"', "34": '"', "38": "&", "39": "'", "60": "<", "62": ">"}
_WP_HEX = {"22": '"', "26": "&", "27": "'"}


def _wp_char(found: re.Match[str]) -> str:
    name = found[1]
    if name.startswith(("#x", "#X")):
        return _WP_HEX[name[2:].lstrip("0")]
    if name.startswith("#"):
        return _WP_CHARS[name[1:].lstrip("0")]
    return _WP_CHARS[name]


def woocommerce_key(secret: str) -> str:
    """The HMAC key WooCommerce uses: the stored secret through wp_specialchars_decode(ENT_QUOTES), as in
    WC_Webhook::generate_signature (a secret stored as `a&amp;b` signs with `a&b`)."""
    return _WP_ENTITY.sub(_wp_char, secret)


def woocommerce_signature(secret: str, body: bytes) -> str:
    """`X-WC-Webhook-Signature`: base64 HMAC-SHA256(secret, raw body)."""
    return base64_hmac(woocommerce_key(secret), body)


def verify_woocommerce(secret: str, body: bytes, header: str | None) -> bool:
    return _same(woocommerce_signature(secret, body), header)
