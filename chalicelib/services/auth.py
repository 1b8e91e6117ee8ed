"""Authentication: hashed API keys, the operator key, stateless signed portal tokens, portal rate limits."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import secrets
from datetime import datetime, timedelta

from chalicelib.bootstrap import Container
from chalicelib.domain.errors import NotFound, RateLimited, Unauthorized
from chalicelib.domain.identifiers import new_id
from chalicelib.domain.tenants import Principal

ORDER_ATTEMPTS = 10
CLIENT_ATTEMPTS = 50
WINDOW = timedelta(minutes=15)


def hash_key(key: str) -> str:
    return hashlib.sha256(key.encode("utf-8")).hexdigest()


def new_api_key(kind: str) -> tuple[str, str, str]:
    """(key shown once, its sha256 stored, key id)."""
    key = f"bmr_{kind[:2]}_{secrets.token_urlsafe(32)}"
    return key, hash_key(key), new_id("key")


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def issue_portal_token(c: Container, merchant_id: str, warehouse_id: str, order_number: str) -> str:
    payload = {
        "m": merchant_id,
        "w": warehouse_id,
        "o": order_number,
        "exp": int(c.now().timestamp()) + c.settings.portal_token_ttl_seconds,
    }
    body = _b64(json.dumps(payload, separators=(",", ":")).encode())
    sig = _b64(hmac.new(c.settings.portal_token_secret.encode(), body.encode(), hashlib.sha256).digest())
    return f"pt.{body}.{sig}"


def verify_portal_token(c: Container, token: str) -> Principal:
    try:
        prefix, body, sig = token.split(".")
        expected = _b64(hmac.new(c.settings.portal_token_secret.encode(), body.encode(), hashlib.sha256).digest())
        if prefix != "pt" or not hmac.compare_digest(sig, expected):
            raise ValueError("bad signature")
        payload = json.loads(_unb64(body))
    except (ValueError, json.JSONDecodeError):
        raise Unauthorized("invalid portal token") from None
    if int(payload["exp"]) < int(c.now().timestamp()):
        raise Unauthorized("portal session expired")
    return Principal(kind="customer", id=payload["m"], key_id=payload["w"], order_number=payload["o"])


def authenticate(c: Container, authorization: str | None) -> Principal:
    """Bearer API key (operator, merchant, warehouse) or portal token -> Principal. One GetItem at most."""
    if not authorization or not authorization.startswith("Bearer "):
        raise Unauthorized("missing bearer credentials")
    secret = authorization.removeprefix("Bearer ").strip()
    if secret.startswith("pt."):
        return verify_portal_token(c, secret)
    digest = hash_key(secret)
    if hmac.compare_digest(digest, c.settings.operator_key_sha256):
        return Principal(kind="operator", id="operator")
    record = c.store.get_api_key(digest)
    if not record:
        raise Unauthorized("unknown API key")
    return Principal(kind=record["kind"], id=record["principal_id"], key_id=record["key_id"])


def open_portal_session(c: Container, slug: str, order_number: str, email: str, client_ip: str) -> str:
    """Order number + email -> portal token. Wrong pairs are counted per order and per client address."""
    now = c.now()
    window_start = int(now.timestamp()) // int(WINDOW.total_seconds()) * int(WINDOW.total_seconds())
    retry_after = window_start + int(WINDOW.total_seconds()) - int(now.timestamp())
    order_key = f"RATELIMIT#order#{slug}#{hash_key(order_number.strip())[:32]}#{window_start}"
    ip_key = f"RATELIMIT#ip#{hash_key(client_ip)[:32]}#{window_start}"
    counts = c.store.counters([order_key, ip_key])
    if counts.get(order_key, 0) >= ORDER_ATTEMPTS or counts.get(ip_key, 0) >= CLIENT_ATTEMPTS:
        raise RateLimited("too many failed attempts; try again later", retry_after=max(1, retry_after))

    merchant_id = c.store.merchant_id_for_slug(slug)
    order = c.store.get_order(merchant_id, order_number.strip()) if merchant_id else None
    if order is None or not hmac.compare_digest(order.email.strip().lower(), email.strip().lower()):
        expires = datetime.fromtimestamp(window_start, tz=now.tzinfo) + WINDOW * 2
        c.store.increment(order_key, expires)
        c.store.increment(ip_key, expires)
        raise NotFound("no order matches this order number and email address")
    assert merchant_id is not None
    merchant = c.store.get_merchant(merchant_id)
    return issue_portal_token(c, merchant_id, merchant.warehouse_id, order.order_number)
