"""Operator and merchant-settings use cases."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from chalicelib.bootstrap import Container
from chalicelib.domain.addresses import Address
from chalicelib.domain.checklists import Checklists
from chalicelib.domain.errors import RateLimited, ValidationFailed
from chalicelib.domain.guidelines import Guideline, check_rules
from chalicelib.domain.identifiers import new_id
from chalicelib.domain.routing import Routing
from chalicelib.domain.tenants import Merchant, RefundSettings, ReturnPolicy, Warehouse
from chalicelib.services.auth import new_api_key
from chalicelib.services.merchant_urls import check_merchant_urls

WEBHOOK_SECRET = "refund-webhook-secret"  # noqa: S105 (a parameter name, not a secret)
DRY_RUNS_PER_WINDOW = 60  # guideline dry runs per merchant per minute
DRY_RUN_WINDOW_SECONDS = 60


def create_warehouse(c: Container, name: str, address: dict[str, str]) -> tuple[Warehouse, str, str]:
    """(warehouse, its first API key, that key's id)."""
    wh = Warehouse(id=new_id("wh"), name=name, address=Address.from_dict(address), created_at=c.now())
    key, digest, key_id = new_api_key("warehouse")
    c.store.create_warehouse(wh, digest, key_id)
    return wh, key, key_id


def create_merchant(
    c: Container, *, name: str, slug: str, warehouse_id: str, contact_email: str | None, locale: str | None
) -> tuple[Merchant, str, str]:
    """(merchant, its first API key, that key's id)."""
    c.store.get_warehouse(warehouse_id)  # 404 for an unknown warehouse
    merchant = Merchant(
        id=new_id("mer"),
        name=name,
        slug=slug,
        warehouse_id=warehouse_id,
        created_at=c.now(),
        contact_email=contact_email,
        locale=locale or "en",
    )
    key, digest, key_id = new_api_key("merchant")
    c.store.create_merchant(merchant, digest, key_id)
    return merchant, key, key_id


def add_merchant_key(c: Container, merchant_id: str) -> tuple[str, str]:
    """A new API key for the merchant, beside its others (rotation: add, switch, then revoke the old one).
    (key id, key); the key is shown once and only its hash is stored."""
    c.store.get_merchant(merchant_id)  # 404 for an unknown merchant
    key, digest, key_id = new_api_key("merchant")
    c.store.add_api_key(digest, "merchant", merchant_id, key_id)
    return key_id, key


def revoke_merchant_key(c: Container, merchant_id: str, key_id: str) -> None:
    c.store.revoke_api_key("merchant", merchant_id, key_id)


def add_warehouse_key(c: Container, warehouse_id: str) -> tuple[str, str]:
    """A new API key for the warehouse, beside its others (rotation, as for merchants). (key id, key)."""
    c.store.get_warehouse(warehouse_id)  # 404 for an unknown warehouse
    key, digest, key_id = new_api_key("warehouse")
    c.store.add_api_key(digest, "warehouse", warehouse_id, key_id)
    return key_id, key


def revoke_warehouse_key(c: Container, warehouse_id: str, key_id: str) -> None:
    c.store.revoke_api_key("warehouse", warehouse_id, key_id)


def list_keys(
    c: Container, kind: str, principal_id: str, *, limit: int, cursor: dict[str, Any] | None
) -> tuple[list[dict[str, Any]], dict[str, Any] | None]:
    """A merchant's or warehouse's keys, oldest first: id, created_at, last_used_at (never the key or its hash)."""
    if kind == "merchant":
        c.store.get_merchant(principal_id)  # 404 for an unknown merchant
    else:
        c.store.get_warehouse(principal_id)
    return c.store.list_api_keys(kind, principal_id, limit=limit, cursor=cursor)


def put_policy(c: Container, merchant_id: str, policy: dict[str, Any]) -> ReturnPolicy:
    parsed = ReturnPolicy.from_dict(policy)
    c.store.update_merchant_settings(merchant_id, policy=parsed.to_dict())
    return parsed


def put_guidelines(c: Container, merchant_id: str, guideline: dict[str, Any]) -> Guideline:
    check_rules(guideline.get("rules", []))
    current = c.store.get_merchant(merchant_id).guideline
    parsed = Guideline.from_dict({**guideline, "version": current.version + 1})
    c.store.update_merchant_settings(merchant_id, guideline=parsed.to_dict())
    return parsed


_POLICY_KEYS = (
    "grade_deductions",
    "restocking_fee_percent",
    "return_shipping_fee",
    "refund_original_shipping_when_complete",
)


def put_refund_settings(c: Container, merchant_id: str, settings: dict[str, Any]) -> RefundSettings:
    """Replace the refund settings. Target `shop` needs a connected shop; store credit needs a Shopify shop (its
    gift cards); the webhook URLs (refunds; restock syncs) must pass the outbound URL policy; each is 422 naming
    the field otherwise, with nothing stored."""
    secret = settings.pop("webhook_secret", None)
    merchant = c.store.get_merchant(merchant_id)
    check_merchant_urls(
        c, {name: settings.get(name) for name in ("webhook_url", "restock_webhook_url")}
    )  # before anything is written
    current = merchant.refunds
    policy = {k: settings.pop(k) for k in _POLICY_KEYS if k in settings}
    platform = (merchant.shop or {}).get("platform")
    if settings.get("target") == "shop" and not platform:
        raise ValidationFailed.at(["target"], "connect a shop first with PUT /v1/settings/shop")
    if settings.get("store_credit") and platform != "shopify":
        raise ValidationFailed.at(
            ["store_credit"], "store credit is issued as Shopify gift cards: connect a Shopify shop"
        )
    parsed = RefundSettings.from_dict({**settings, "policy": policy, "has_webhook_secret": current.has_webhook_secret})
    if secret:
        c.secrets.put(merchant_id, WEBHOOK_SECRET, secret)
        parsed.has_webhook_secret = True
    c.store.update_merchant_settings(merchant_id, refunds=parsed.to_dict())
    return parsed


def dry_run(c: Container, merchant_id: str, sample: dict[str, Any], guideline: dict[str, Any] | None) -> dict[str, Any]:
    """Classify a sample item with the saved guideline (or one given to try); nothing is stored.

    At most DRY_RUNS_PER_WINDOW per merchant and minute (fixed windows; 429 with the seconds to the window's end).
    A rule over the cost budget is 422, also in a saved guideline (stored before the budget; it never matches).
    """
    from chalicelib.domain.guidelines import classify

    _count_dry_run(c, merchant_id)
    if guideline is not None:
        check_rules(guideline.get("rules", []))
        parsed = Guideline.from_dict(guideline)
    else:
        parsed = c.store.get_merchant(merchant_id).guideline
        check_rules(parsed.to_dict()["rules"])
    result = classify(parsed, item=sample["item"], checks=sample.get("checks") or {}, order=sample["order"])
    return {**result.to_dict(), "guideline_version": parsed.version if guideline is None else None}


def _count_dry_run(c: Container, merchant_id: str) -> None:
    now = int(c.now().timestamp())
    window = now // DRY_RUN_WINDOW_SECONDS * DRY_RUN_WINDOW_SECONDS
    expires = datetime.fromtimestamp(window + 2 * DRY_RUN_WINDOW_SECONDS, tz=UTC)
    if not c.store.count_within(f"RATELIMIT#dryrun#{merchant_id}#{window}", DRY_RUNS_PER_WINDOW, expires):
        raise RateLimited(
            f"at most {DRY_RUNS_PER_WINDOW} guideline dry runs a minute; try again later",
            retry_after=max(1, window + DRY_RUN_WINDOW_SECONDS - now),
        )


def put_checklists(c: Container, merchant_id: str, data: dict[str, Any]) -> Checklists:
    from chalicelib.domain.checklists import check_compiles as checklists_compile

    checklists_compile(data)
    current = c.store.get_merchant(merchant_id).checklists
    parsed = Checklists.from_dict({**data, "version": current.version + 1})
    c.store.update_merchant_settings(merchant_id, checklists=parsed.to_dict())
    return parsed


def put_routing(c: Container, warehouse_id: str, data: dict[str, Any]) -> Routing:
    """Which carriers and methods serve which customer countries, and consolidation addresses (operator)."""
    from chalicelib.domain.errors import ValidationFailed

    known = c.carrier_methods()
    errors = []
    for r_idx, route in enumerate(data["routes"]):
        for c_idx, name in enumerate(route["carriers"]):
            if name not in known:
                errors.append(
                    {
                        "loc": ["routes", r_idx, "carriers", c_idx],
                        "msg": f"unknown carrier; one of: {', '.join(sorted(known))}",
                    }
                )
        for m_idx, method in enumerate(route["methods"]):
            if method["type"] != "preprinted" and not any(
                method["type"] in known.get(n, ()) for n in route["carriers"]
            ):
                errors.append(
                    {
                        "loc": ["routes", r_idx, "methods", m_idx, "type"],
                        "msg": f"none of this route's carriers offers '{method['type']}'",
                    }
                )
    for country, address in (data.get("consolidation_addresses") or {}).items():
        if address["country"] != country:
            errors.append(
                {"loc": ["consolidation_addresses", country, "country"], "msg": f"must be {country}, the key"}
            )
    if errors:
        raise ValidationFailed("the routing cannot be used", errors)
    routing = Routing.from_dict(data)
    c.store.set_routing(warehouse_id, routing)
    return routing


def put_carrier_credentials(c: Container, account: str | None, carrier: str, credentials: dict[str, str]) -> list[str]:
    """Store a carrier account's credentials (SSM SecureString) for a warehouse (None: the operator's default
    account, used where a warehouse has none). Values are never returned or logged: the answer names the keys."""
    from chalicelib.domain.errors import NotFound

    if carrier not in c.carrier_methods() or carrier == "sandbox":
        raise NotFound(f"no carrier '{carrier}' takes credentials")
    if account is not None:
        c.store.get_warehouse(account)  # 404 for an unknown warehouse
    for key, value in credentials.items():
        c.secrets.put_carrier_credential(account, carrier, key, value)
    return sorted(credentials)


SHOP_SECRETS = {
    "shopify": ("access_token", "webhook_secret"),
    "woocommerce": ("consumer_key", "consumer_secret", "webhook_secret"),
}


def put_shop(c: Container, merchant_id: str, data: dict[str, Any]) -> dict[str, Any]:
    """Connect the merchant's shop: secrets to SSM (SecureString), the rest on the merchant. Secrets are never
    returned or logged; the answer says which are stored."""
    platform = data["platform"]
    c.store.get_merchant(merchant_id)  # 404 before anything is written
    if platform == "shopify":
        address, field = f"https://{data['shop_domain']}", "shop_domain"
    else:
        address, field = data["base_url"], "base_url"
    check_merchant_urls(c, {field: address})  # the outbound URL policy (SSRF), before anything is written
    for name in SHOP_SECRETS[platform]:
        c.secrets.put(merchant_id, f"shop-{name.replace('_', '-')}", data[name])
    if platform == "shopify" and not c.secrets.get(merchant_id, "shop-gift-card-key"):
        # Gift card codes are derived from refund ids with this key, so a retried store-credit refund finds its
        # card again; it must outlive access-token rotation, hence its own secret, made once.
        import secrets as _random

        c.secrets.put(merchant_id, "shop-gift-card-key", _random.token_urlsafe(32))
    public = {k: v for k, v in data.items() if k not in SHOP_SECRETS[platform]}
    c.store.update_merchant_settings(merchant_id, shop=public)
    return {**public, "secrets": sorted(SHOP_SECRETS[platform])}
