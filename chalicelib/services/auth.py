"""Authentication: hashed API keys, the operator key, stateless signed portal tokens, portal rate limits."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import random
import secrets
import time
from datetime import timedelta
from typing import Any

from chalicelib.bootstrap import Container
from chalicelib.config import ConfigurationError
from chalicelib.domain import attempts
from chalicelib.domain.attempts import Claim
from chalicelib.domain.emails import same_email
from chalicelib.domain.errors import NotFound, RateLimited, Unauthorized
from chalicelib.domain.identifiers import new_id
from chalicelib.domain.orders import Order
from chalicelib.domain.tenants import Merchant, Principal
from chalicelib.observability import logger


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
    _note_key_use(c, digest, record)
    return Principal(kind=record["kind"], id=record["principal_id"], key_id=record["key_id"])


#: A key's `last_used_at` is refreshed at most this often: one conditional write per key per interval, not one per
#: request (the authentication itself stays one GetItem).
KEY_USE_INTERVAL = timedelta(hours=1)


def _note_key_use(c: Container, digest: str, record: dict[str, Any]) -> None:
    now = c.now()
    last = record.get("last_used_at")
    if last is not None and now - last < KEY_USE_INTERVAL:
        return
    try:
        c.store.touch_api_key(digest, now, now - KEY_USE_INTERVAL)
    except Exception:  # bookkeeping only: the request goes on
        logger.warning("recording a key's use failed", key_id=record.get("key_id"))


def open_portal_session(c: Container, slug: str, order_number: str, email: str, client_ip: str) -> str:
    """Order number + email -> portal token."""
    merchant, order = verify_customer(c, slug, order_number, email, client_ip)
    return issue_portal_token(c, merchant.id, merchant.warehouse_id, order.order_number)


def verify_customer(c: Container, slug: str, order_number: str, email: str, client_ip: str) -> tuple[Merchant, Order]:
    """Order number + email -> (merchant, order). Every attempt first claims room in its client's and its order's
    counters (domain/attempts.py); a wrong pair keeps its claim (it counts for 15 minutes), a right one gives it back.
    DynamoDB calls: the claim (one TransactWriteItems), the slug (GetItem), merchant and order (one BatchGetItem),
    and for a right pair the release (one TransactWriteItems). A counter found full adds a prune or a second claim.
    """
    now_ms = int(c.now().timestamp() * 1000)
    claims = _claim_attempt(c, slug, order_number, client_ip, now_ms)
    merchant_id = c.store.merchant_id_for_slug(slug)
    merchant, order = None, None
    if merchant_id:
        merchant, order, _ = c.store.load_for_return_creation(merchant_id, order_number.strip())
    if order is None or not same_email(order.email, email):
        raise NotFound("no order matches this order number and email address")
    assert merchant is not None
    c.store.release_attempt(claims)
    return merchant, order


def _claim_attempt(c: Container, slug: str, order_number: str, client_ip: str, now_ms: int) -> list[Claim]:
    """Room for this attempt in its client's counter and in its order's (the pool open to every client while it has
    room, else the one for clients new to the order), or RateLimited saying when there will be room."""
    client = attempts.client_hash(client_ip)
    entry = secrets.token_hex(8)
    client_claim = Claim(f"RATELIMIT#client#{client}", attempts.ANY_CLIENT, attempts.CLIENT_ATTEMPTS, entry)
    order_key = f"RATELIMIT#order#{slug}#{hash_key(order_number.strip())[:32]}"
    any_client = Claim(order_key, attempts.ANY_CLIENT, attempts.ORDER_ATTEMPTS, entry, client=client)
    new_client = Claim(
        order_key, attempts.NEW_CLIENT, attempts.NEW_CLIENT_ATTEMPTS, entry, client=client, client_must_be_new=True
    )
    seen: dict[str, attempts.CounterState] = {}
    for _try in range(4):
        order_state = seen.get(order_key)
        order_claim = any_client
        if order_state and not order_state.has_room(attempts.ANY_CLIENT, attempts.ORDER_ATTEMPTS, now_ms):
            order_claim = new_client
        result = c.store.claim_attempt([client_claim, order_claim], now_ms, now_ms + attempts.WINDOW_MS)
        if result.admitted:
            return [client_claim, order_claim]
        if result.contended:
            time.sleep(random.uniform(0.01, 0.05))  # jitter against a concurrent writer
            continue
        seen.update(result.full)
        for key, state in result.full.items():
            c.store.prune_attempts(key, state, now_ms)
        client_state, order_state = seen.get(client_claim.key), seen.get(order_key)
        at = attempts.admitted_at(client_state, order_state, client, now_ms)
        if at > now_ms:
            raise RateLimited(
                "too many failed attempts; try again later", retry_after=attempts.retry_after_seconds(at, now_ms)
            )
    raise RateLimited("too many attempts at once; try again later", retry_after=1)
