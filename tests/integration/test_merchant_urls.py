"""Every merchant-supplied URL (refund and restock webhooks, a shop's address, subscriptions) is checked by one
policy when it is saved: a forbidden target is 422 naming the field, and nothing is stored (SSRF, issue 13)."""

from __future__ import annotations

import json
import socket
from collections.abc import Iterator
from typing import Any

import pytest
from chalice.test import Client

from app import app
from chalicelib import bootstrap
from chalicelib.bootstrap import container
from tests.support import Api

SECRET = "whsec_0123456789abcdef"
SHOPIFY = {"platform": "shopify", "access_token": "shpat_0123456789abcdef", "webhook_secret": SECRET}

FORBIDDEN = [
    "https://127.0.0.1/x",
    "http://127.0.0.1:9/x",  # local mode only
    "https://[::1]/x",
    "https://[::ffff:127.0.0.1]/x",
    "https://localhost/x",
    "https://0.0.0.0/x",
    "https://10.0.0.5/x",
    "https://192.168.1.1/x",
    "https://[fd00::1]/x",
    "https://169.254.169.254/latest/meta-data",
    "https://[fd00:ec2::254]/x",
    "https://metadata.google.internal/x",
    "https://100.64.0.1/x",
    "https://[::ffff:10.0.0.1]/x",
    "https://[2002:a00:5::1]/x",
    "https://[64:ff9b::a9fe:a9fe]/x",
    "https://2130706433/x",
    "https://0x7f.1/x",
    "https://127.1/x",
    "https://224.0.0.1/x",
    "https://private.rebind.example/x",  # resolves to 10.0.0.5 (below)
]
PUBLIC = ["https://93.184.215.14/x", "https://shop.example.com/hooks"]


@pytest.fixture
def resolver(monkeypatch: pytest.MonkeyPatch) -> None:
    table = {"shop.example.com": "93.184.215.14", "private.rebind.example": "10.0.0.5"}
    real = socket.getaddrinfo

    def getaddrinfo(host: Any, port: Any, *args: Any, **kwargs: Any) -> Any:
        if host in table:
            return [(socket.AF_INET, socket.SOCK_STREAM, 6, "", (table[host], port or 0))]
        return real(host, port, *args, **kwargs)

    monkeypatch.setattr(socket, "getaddrinfo", getaddrinfo)


@pytest.fixture
def api(aws: Any, resolver: None, monkeypatch: pytest.MonkeyPatch) -> Iterator[Api]:
    monkeypatch.delenv("WEBHOOKS_ALLOW_LOOPBACK", raising=False)
    bootstrap.reset()
    with Client(app) as client:
        yield Api(client)


def refused(resp: Any, field: str) -> None:
    assert resp.status_code == 422, resp.body
    assert resp.headers["Content-Type"] == "application/problem+json"
    assert [field] in [e["loc"] for e in json.loads(resp.body)["errors"]], resp.body


def test_refund_and_restock_webhooks_refuse_forbidden_targets(api: Api) -> None:
    t = api.tenant()
    mid = t["merchant"]["id"]
    before = container().store.get_merchant(mid).refunds.to_dict()
    body = {"target": "webhook", "auto_refund": False, "webhook_secret": SECRET}
    for url in FORBIDDEN:
        refused(api.call("PUT", "/v1/settings/refunds", t["m_key"], {**body, "webhook_url": url}), "webhook_url")
        refused(
            api.call(
                "PUT",
                "/v1/settings/refunds",
                t["m_key"],
                {**body, "webhook_url": PUBLIC[0], "restock_webhook_url": url},
            ),
            "restock_webhook_url",
        )
    assert container().store.get_merchant(mid).refunds.to_dict() == before
    assert container().secrets.get(mid, "refund-webhook-secret") is None


def test_a_woocommerce_base_url_refuses_forbidden_targets(api: Api) -> None:
    t = api.tenant()
    mid = t["merchant"]["id"]
    body = {
        "platform": "woocommerce",
        "consumer_key": "ck_0123456789abcdef",
        "consumer_secret": "cs_0123456789abcdef",
        "webhook_secret": SECRET,
    }
    for url in FORBIDDEN:
        resp = api.call("PUT", "/v1/settings/shop", t["m_key"], {**body, "base_url": url})
        assert resp.status_code == 422, (url, resp.body)
        assert [e["loc"][-1] for e in json.loads(resp.body)["errors"]] == ["base_url"], url
    assert container().store.get_merchant(mid).shop is None
    assert container().secrets.get(mid, "shop-consumer-key") is None


def test_a_shopify_domain_that_resolves_privately_is_refused(api: Api, monkeypatch: pytest.MonkeyPatch) -> None:
    real = socket.getaddrinfo

    def getaddrinfo(host: Any, port: Any, *args: Any, **kwargs: Any) -> Any:
        if host == "rebound.myshopify.com":
            return [(socket.AF_INET, socket.SOCK_STREAM, 6, "", ("169.254.169.254", port or 0))]
        return real(host, port, *args, **kwargs)

    monkeypatch.setattr(socket, "getaddrinfo", getaddrinfo)
    t = api.tenant()
    body = {**SHOPIFY, "shop_domain": "rebound.myshopify.com"}
    refused(api.call("PUT", "/v1/settings/shop", t["m_key"], body), "shop_domain")
    assert container().store.get_merchant(t["merchant"]["id"]).shop is None


def test_a_subscription_refuses_forbidden_targets(api: Api) -> None:
    t = api.tenant()
    for url in FORBIDDEN:
        body = {"url": url, "events": ["*"], "secret": SECRET}
        refused(api.call("POST", "/v1/subscriptions", t["m_key"], body), "url")
    assert api.ok("GET", "/v1/subscriptions", t["m_key"])["items"] == []


@pytest.mark.parametrize("url", PUBLIC)
def test_public_targets_are_accepted_everywhere(api: Api, url: str) -> None:
    t = api.tenant()
    out = api.ok(
        "PUT",
        "/v1/settings/refunds",
        t["m_key"],
        {
            "target": "webhook",
            "auto_refund": False,
            "webhook_url": url,
            "restock_webhook_url": url,
            "webhook_secret": SECRET,
        },
    )
    assert out["webhook_url"] == url and out["restock_webhook_url"] == url
    woo = {
        "platform": "woocommerce",
        "base_url": url,
        "consumer_key": "ck_0123456789abcdef",
        "consumer_secret": "cs_0123456789abcdef",
        "webhook_secret": SECRET,
    }
    assert api.ok("PUT", "/v1/settings/shop", t["m_key"], woo)["base_url"] == url
    api.ok("POST", "/v1/subscriptions", t["m_key"], {"url": url, "events": ["*"], "secret": SECRET}, 201)


def test_local_mode_accepts_exactly_http_127_0_0_1_with_a_port(api: Api, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("WEBHOOKS_ALLOW_LOOPBACK", "true")
    bootstrap.reset()
    t = api.tenant()
    body = {"target": "webhook", "auto_refund": False, "webhook_secret": SECRET}
    api.ok("PUT", "/v1/settings/refunds", t["m_key"], {**body, "webhook_url": "http://127.0.0.1:9/refunds"})
    for url in ("https://127.0.0.1/x", "http://[::1]:9/x", "http://[::ffff:127.0.0.1]:9/x", "http://localhost:9/x"):
        refused(api.call("PUT", "/v1/settings/refunds", t["m_key"], {**body, "webhook_url": url}), "webhook_url")
    for url in ("http://0.0.0.0:9/x", "http://127.0.0.1/x"):
        refused(api.call("PUT", "/v1/settings/refunds", t["m_key"], {**body, "webhook_url": url}), "webhook_url")
