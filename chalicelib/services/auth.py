"""Authentication: hashed API keys, the operator key, stateless signed portal tokens, portal rate limits."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import secrets
from datetime import datetime, timedelta

from chalicelib.bootstrap import Container
from chalicelib.config import ConfigurationError
from chalicelib.domain.emails import same_email
from chalicelib.domain.errors import NotFound, RateLimited, Unauthorized
from chalicelib.domain.identifiers import new_id
from chalicelib.domain.orders import Order
from chalicelib.domain.tenants import Merchant, Principal

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


def _portal_secret(c: Container) -> bytes:
    secret = c.settings.portal_token_secret
    if not secret:
        raise ConfigurationError("PORTAL_TOKEN_SECRET is not configured")
    return secret.encode()


def issue_portal_token(c: Container, merchant_id: str, warehouse_id: str, order_number: str) -> str:
    payload = {
        "m": merchant_id,
        "w": warehouse_id,
        "o": order_number,
        "exp": int(c.now().timestamp()) + c.settings.portal_token_ttl_seconds,
    }
    body = _b64(json.dumps(payload, separators=(",", ":")).encode())
    sig = _b64(hmac.new(_portal_secret(c), body.encode(), hashlib.sha256).digest())
    return f"pt.{body}.{sig}"


def verify_portal_token(c: Container, token: str) -> Principal:
    try:
        prefix, body, sig = token.split(".")
        expected = _b64(hmac.new(_portal_secret(c), body.encode(), hashlib.sha256).digest())
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
    operator = c.settings.operator_key_sha256
    if operator and hmac.compare_digest(digest, operator):
        return Principal(kind="operator", id="operator")
    record = c.store.get_api_key(digest)
    if not record:
        raise Unauthorized("unknown API key")
    return Principal(kind=record["kind"], id=record["principal_id"], key_id=record["key_id"])


def open_portal_session(c: Container, slug: str, order_number: str, email: str, client_ip: str) -> str:
    """Order number + email -> portal token."""
    merchant, order = verify_customer(c, slug, order_number, email, client_ip)
    return issue_portal_token(c, merchant.id, merchant.warehouse_id, order.order_number)


def verify_customer(c: Container, slug: str, order_number: str, email: str, client_ip: str) -> tuple[Merchant, Order]:
    """Order number + email -> (merchant, order). Wrong pairs are counted per order and per client address.
    DynamoDB calls: the counters (one BatchGetItem), the slug (GetItem), merchant and order (one BatchGetItem).

    Counters live in fixed 15-minute windows; the current and the previous window are summed, so every
    stretch of 15 minutes is covered (a burst across a window boundary is still counted).
    """
    now = c.now()
    size = int(WINDOW.total_seconds())
    window_start = int(now.timestamp()) // size * size
    retry_after = max(1, window_start + size - int(now.timestamp()))
    order_scope = f"order#{slug}#{hash_key(order_number.strip())[:32]}"
    ip_scope = f"ip#{hash_key(client_ip)[:32]}"
    keys = {
        scope: [f"RATELIMIT#{scope}#{w}" for w in (window_start, window_start - size)]
        for scope in (order_scope, ip_scope)
    }
    counts = c.store.counters([k for pair in keys.values() for k in pair])
    failed_order = sum(counts.get(k, 0) for k in keys[order_scope])
    failed_ip = sum(counts.get(k, 0) for k in keys[ip_scope])
    if failed_order >= ORDER_ATTEMPTS or failed_ip >= CLIENT_ATTEMPTS:
        raise RateLimited("too many failed attempts; try again later", retry_after=retry_after)

    merchant_id = c.store.merchant_id_for_slug(slug)
    merchant, order = None, None
    if merchant_id:
        merchant, order, _ = c.store.load_for_return_creation(merchant_id, order_number.strip())
    if order is None or not same_email(order.email, email):
        expires = datetime.fromtimestamp(window_start, tz=now.tzinfo) + WINDOW * 3
        c.store.increment(keys[order_scope][0], expires)
        c.store.increment(keys[ip_scope][0], expires)
        raise NotFound("no order matches this order number and email address")
    assert merchant is not None
    return merchant, order
