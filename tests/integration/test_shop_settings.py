"""PUT /v1/settings/shop: the shop connection, its secrets in SSM (encrypted, never returned)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import boto3
import pytest
from chalice.test import Client

from app import app
from chalicelib.bootstrap import container
from tests.support import Api

SHOPIFY = {
    "platform": "shopify",
    "shop_domain": "demo-fashion.myshopify.com",
    "access_token": "shpat_0123456789abcdef",
    "webhook_secret": "whsec_shopify_0123456789",
    "location_id": "68402512",
}
WOO = {
    "platform": "woocommerce",
    "base_url": "https://shop.example/store",
    "consumer_key": "ck_0123456789abcdef",
    "consumer_secret": "cs_0123456789abcdef",
    "webhook_secret": "whsec_woo_0123456789",
}


@pytest.fixture
def api(aws: Any) -> Iterator[Api]:
    with Client(app) as client:
        yield Api(client)


def test_a_shopify_connection_keeps_its_secrets_in_ssm_and_never_returns_them(api: Api) -> None:
    t = api.tenant()
    resp = api.call("PUT", "/v1/settings/shop", t["m_key"], SHOPIFY)
    assert resp.status_code == 200, resp.body
    out = json.loads(resp.body)
    assert out == {
        "platform": "shopify",
        "shop_domain": "demo-fashion.myshopify.com",
        "location_id": "68402512",
        "secrets": ["access_token", "webhook_secret"],
    }
    assert SHOPIFY["access_token"] not in resp.body.decode() and SHOPIFY["webhook_secret"] not in resp.body.decode()
    mid = t["merchant"]["id"]
    param = boto3.client("ssm").get_parameter(Name=f"/boomerang/merchants/{mid}/shop-access-token")["Parameter"]
    assert param["Type"] == "SecureString"
    assert container().secrets.get(mid, "shop-access-token") == SHOPIFY["access_token"]
    assert container().store.get_merchant(mid).shop == {k: v for k, v in out.items() if k != "secrets"}


def test_a_woocommerce_connection_and_switching_platforms(api: Api) -> None:
    t = api.tenant()
    api.ok("PUT", "/v1/settings/shop", t["m_key"], SHOPIFY)
    out = api.ok("PUT", "/v1/settings/shop", t["m_key"], WOO)
    assert out["platform"] == "woocommerce" and out["secrets"] == ["consumer_key", "consumer_secret", "webhook_secret"]
    assert container().store.get_merchant(t["merchant"]["id"]).shop == {
        "platform": "woocommerce",
        "base_url": "https://shop.example/store",
    }


@pytest.mark.parametrize(
    ("body", "loc"),
    [
        ({**SHOPIFY, "shop_domain": "evil.example.com"}, ["shop_domain"]),
        ({**WOO, "base_url": "http://shop.example"}, ["base_url"]),
        ({**SHOPIFY, "platform": "magento"}, ["platform"]),
        ({k: v for k, v in SHOPIFY.items() if k != "access_token"}, ["access_token"]),
    ],
)
def test_bad_shop_settings_are_422_naming_the_field(api: Api, body: dict[str, Any], loc: list[Any]) -> None:
    t = api.tenant()
    resp = api.call("PUT", "/v1/settings/shop", t["m_key"], body)
    assert resp.status_code == 422, resp.body
    errors = json.loads(resp.body)["errors"]
    assert [e["loc"] for e in errors] == [loc], errors
    assert container().store.get_merchant(t["merchant"]["id"]).shop is None
