"""Every merchant-supplied URL against the running local stack: forbidden targets are refused at the field and
change nothing; a public address is accepted; a receiver's redirect is not followed; a name that resolves to a
public address when saved and to a private one when called is never connected to. The stack's connection audit
proves that no connection to a forbidden address was ever opened."""

from __future__ import annotations

import time
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler
from typing import Any

import pytest

from tests.security.conftest import RECEIVER_PORTS, Probe, Receiver, forbidden

pytestmark = pytest.mark.e2e

PUBLIC = "https://93.184.215.14/boomerang/hooks"
#: Refused in every mode. `make run` accepts exactly http://127.0.0.1:<port> and nothing else on loopback.
FORBIDDEN_URLS = [
    "https://127.0.0.1/hook",  # loopback, but not the local sink form
    "http://127.0.0.2:8080/hook",
    "http://localhost:8080/hook",
    "http://sub.localhost:8080/hook",
    "http://0.0.0.0:8080/hook",
    "http://[::1]:8080/hook",
    "http://[::ffff:127.0.0.1]:8080/hook",
    "http://2130706433:8080/hook",  # 127.0.0.1 as one decimal number
    "http://0x7f000001:8080/hook",
    "http://0177.0.0.1:8080/hook",
    "https://10.0.0.5/hook",
    "https://172.16.5.4/hook",
    "https://192.168.1.10/hook",
    "https://100.64.0.1/hook",  # CGNAT
    "https://169.254.169.254/latest/meta-data/",  # cloud metadata
    "https://[fd00:ec2::254]/latest/meta-data/",
    "https://metadata.google.internal/computeMetadata/v1/",
    "https://[fe80::1]/hook",
    "https://[fc00::1]/hook",
    "https://[::ffff:169.254.169.254]/hook",
    "https://[::ffff:a9fe:a9fe]/hook",
    "https://[64:ff9b::a9fe:a9fe]/hook",  # NAT64 of 169.254.169.254
    "https://[2002:a9fe:a9fe::1]/hook",  # 6to4 of 169.254.169.254
    "https://224.0.0.1/hook",
    "https://[::]/hook",
    "ftp://93.184.215.14/hook",
    "http://93.184.215.14/hook",  # plain http to anything but the local sink
]

SECRET = "probe-secret-0123456789abcdef"


def refunds_body(url: str) -> dict[str, Any]:
    return {"target": "webhook", "auto_refund": False, "webhook_url": url, "webhook_secret": SECRET}


def restock_body(url: str) -> dict[str, Any]:
    return {**refunds_body(PUBLIC), "restock_webhook_url": url}


def woo_body(url: str) -> dict[str, Any]:
    return {
        "platform": "woocommerce",
        "base_url": url,
        "consumer_key": "ck_probe_0123456789",
        "consumer_secret": "cs_probe_0123456789",
        "webhook_secret": SECRET,
    }


def subscription_body(url: str) -> dict[str, Any]:
    return {"url": url, "events": ["*"], "secret": SECRET}


FIELDS: dict[str, tuple[str, str, Callable[[str], dict[str, Any]], int]] = {
    "webhook_url": ("PUT", "/v1/settings/refunds", refunds_body, 200),
    "restock_webhook_url": ("PUT", "/v1/settings/refunds", restock_body, 200),
    "base_url": ("PUT", "/v1/settings/shop", woo_body, 200),
    "url": ("POST", "/v1/subscriptions", subscription_body, 201),
}


@pytest.fixture(scope="module")
def tenant(probe: Probe) -> dict[str, Any]:
    return probe.tenant("Urls")


def assert_names_field(resp: Any, field: str) -> None:
    assert resp.status_code == 422, (resp.status_code, resp.text[:300])
    assert resp.headers["Content-Type"] == "application/problem+json"
    locs = [e["loc"] for e in resp.json().get("errors", [])]
    assert [field] in locs, locs


@pytest.mark.parametrize("field", sorted(FIELDS))
def test_every_url_field_refuses_every_forbidden_target_and_changes_nothing(
    probe: Probe, tenant: dict[str, Any], field: str
) -> None:
    method, path, body, _ = FIELDS[field]
    before = probe.settled()
    for url in FORBIDDEN_URLS:
        assert_names_field(probe.call(method, path, tenant["m_key"], body(url)), field)
    assert probe.changes(before) == []


@pytest.mark.parametrize("field", sorted(FIELDS))
def test_every_url_field_accepts_a_public_address(probe: Probe, field: str) -> None:
    t = probe.tenant(f"Public{field.replace('_', '')}")
    method, path, body, status = FIELDS[field]
    resp = probe.call(method, path, t["m_key"], body(PUBLIC))
    assert resp.status_code == status, resp.text[:300]


@pytest.mark.parametrize("domain", ["10.0.0.5", "localhost", "169.254.169.254", "shop.myshopify.com@10.0.0.5"])
def test_a_shopify_domain_is_a_shop_domain_not_an_address(probe: Probe, tenant: dict[str, Any], domain: str) -> None:
    body = {"platform": "shopify", "shop_domain": domain, "access_token": "shpat_probe", "webhook_secret": SECRET}
    assert_names_field(probe.call("PUT", "/v1/settings/shop", tenant["m_key"], body), "shop_domain")


def redirect_to(location: str) -> Callable[[BaseHTTPRequestHandler], None]:
    def answer(handler: BaseHTTPRequestHandler) -> None:
        handler.send_response(302)
        handler.send_header("Location", location)
        handler.send_header("Content-Length", "0")
        handler.end_headers()

    return answer


def ok(handler: BaseHTTPRequestHandler) -> None:
    handler.send_response(200)
    handler.send_header("Content-Length", "2")
    handler.end_headers()
    handler.wfile.write(b"ok")


def request_a_return(probe: Probe, t: dict[str, Any]) -> dict[str, Any]:
    session = {"order_number": t["order"]["order_number"], "email": t["order"]["email"]}
    token = probe.ok("POST", f"/v1/portal/merchants/{t['slug']}/sessions", None, session, 201)["token"]
    items = {"items": [{"line_item_id": "L1", "quantity": 1, "reason": "too_small"}]}
    return dict(probe.ok("POST", "/v1/portal/returns", token, items, 201))


def deliveries(probe: Probe, t: dict[str, Any], subscription_id: str) -> list[dict[str, Any]]:
    out = probe.ok("GET", f"/v1/subscriptions/{subscription_id}/deliveries", t["m_key"])
    return list(out["items"])


def wait_for_attempt(probe: Probe, t: dict[str, Any], subscription_id: str, timeout: float = 30) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    while True:
        attempted = [d for d in deliveries(probe, t, subscription_id) if d.get("attempts", 0) >= 1]
        if attempted:
            return attempted[0]
        assert time.monotonic() < deadline, "no delivery was attempted"
        time.sleep(0.2)


def no_forbidden_connections(probe: Probe) -> None:
    ports = set(RECEIVER_PORTS) | {
        int(probe.stack.api.rsplit(":", 1)[1]),
        int(probe.stack.creds["moto"].rsplit(":", 1)[1]),
    }
    bad = [(h, p) for h, p in probe.connections() if forbidden(h, p, ports)]
    assert bad == [], f"the stack connected to forbidden addresses: {bad}"


def test_a_subscription_receivers_redirect_is_not_followed(probe: Probe, receiver: Callable[..., Receiver]) -> None:
    inner = receiver(ok)  # a valid local sink the redirect points at: it must not be reached either
    for location in (f"{inner.url}/stolen", "http://169.254.169.254/latest/meta-data/"):
        t = probe.tenant("Redirect")
        outer = receiver(redirect_to(location))
        sub = probe.ok("POST", "/v1/subscriptions", t["m_key"], subscription_body(f"{outer.url}/hook"), 201)
        request_a_return(probe, t)
        outer.wait_for_hits(1)
        delivery = wait_for_attempt(probe, t, sub["id"])
        assert delivery["status"] != "delivered"
        assert inner.hits == []
        no_forbidden_connections(probe)


def test_a_name_that_rebinds_to_a_private_address_is_never_connected_to(probe: Probe) -> None:
    for private in ("169.254.169.254", "10.0.0.5", "127.0.0.1"):
        t = probe.tenant("Rebind")
        name = f"rebind-{private.replace('.', '-')}.probe.test"
        probe.resolve({name: ["93.184.215.14"]})  # public when saved
        sub = probe.ok("POST", "/v1/subscriptions", t["m_key"], subscription_body(f"https://{name}/hook"), 201)
        probe.resolve({name: [private]})  # private when called
        request_a_return(probe, t)
        delivery = wait_for_attempt(probe, t, sub["id"])
        assert delivery["status"] != "delivered"
        assert (private, 443) not in probe.connections(), private
        no_forbidden_connections(probe)


def completed_return(probe: Probe, t: dict[str, Any]) -> dict[str, Any]:
    ret = request_a_return(probe, t)
    probe.ok("POST", "/v1/warehouse/scans", t["wh_key"], {"barcode": ret["tracking_number"]})
    inspection = {"items": [{"line_item_id": "L1", "received_quantity": 1, "checks": {}}]}
    probe.ok("POST", f"/v1/warehouse/returns/{ret['id']}/inspection", t["wh_key"], inspection, 202)
    deadline = time.monotonic() + 30
    while probe.ok("GET", f"/v1/returns/{ret['id']}", t["m_key"])["status"] != "completed":
        assert time.monotonic() < deadline, "the return did not complete"
        time.sleep(0.2)
    return ret


@pytest.mark.parametrize("target", ["webhook", "shop"])
def test_a_refund_targets_redirect_is_not_followed(
    probe: Probe, receiver: Callable[..., Receiver], target: str
) -> None:
    inner = receiver(ok)
    outer = receiver(redirect_to(f"{inner.url}/stolen"))
    t = probe.tenant(f"Refund{target}")
    if target == "webhook":
        probe.ok("PUT", "/v1/settings/refunds", t["m_key"], refunds_body(f"{outer.url}/refunds"))
    else:
        probe.ok("PUT", "/v1/settings/shop", t["m_key"], woo_body(outer.url))
        probe.ok("PUT", "/v1/settings/refunds", t["m_key"], {"target": "shop", "auto_refund": False})
    ret = completed_return(probe, t)
    probe.ok("POST", f"/v1/returns/{ret['id']}/refund", t["m_key"], {}, 202)
    outer.wait_for_hits(1)
    deadline = time.monotonic() + 60
    while (refund := probe.ok("GET", f"/v1/returns/{ret['id']}", t["m_key"])["refund"])["status"] == "pending":
        assert time.monotonic() < deadline, "the refund never ended"
        time.sleep(0.3)
    assert refund["status"] == "failed"
    assert inner.hits == []
    no_forbidden_connections(probe)
