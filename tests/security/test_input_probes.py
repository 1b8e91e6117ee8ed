"""Hostile input against the running local stack: control characters and non-ASCII text in every string field of
every request body the OpenAPI document describes, over-long values in every path parameter of every route, the
nested-comprehension guideline, and 100 parallel wrong guesses at one order. Zero 5xx, identifiers and names with
CR/LF refused at the field, and a refused request changes nothing."""

from __future__ import annotations

import copy
import http.client
import json
import re
import uuid
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any
from urllib.parse import quote, urlsplit

import pytest

from tests.security.conftest import ADDRESS, Probe

pytestmark = pytest.mark.e2e

CRLF = "a\r\nBcc: victim@example.com"
UNICODE = "M\u00fcller\u2013Stra\u00dfe \u2603 \u6771\u4eac \U0001f642"
#: Fields that are identifiers or names (../shared/CONTRACT.md, Hardening and privacy): CR/LF anywhere is 422 there.
STRICT = {
    "order_number",
    "line_item_id",
    "sku",
    "name",
    "slug",
    "external_id",
    "email",
    "contact_email",
    "code",
    "key",
    "warehouse_id",
    "merchant_id",
    "return_id",
    "received_sku",
}


@pytest.fixture(scope="module")
def world(probe: Probe) -> dict[str, Any]:
    t = probe.tenant("Inputs")
    session = {"order_number": t["order"]["order_number"], "email": t["order"]["email"]}
    token = probe.ok("POST", f"/v1/portal/merchants/{t['slug']}/sessions", None, session, 201)["token"]
    items = {"items": [{"line_item_id": "L1", "quantity": 1, "reason": "too_small"}]}
    ret = probe.ok("POST", "/v1/portal/returns", token, items, 201)
    return {**t, "token": token, "return": ret}


def fresh(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:10]}"


# Each operation with a request body: (credential, a factory for a complete valid body). Every string field the
# OpenAPI document names for the operation must appear in the body (test_every_string_field_is_probed).
def bodies(w: dict[str, Any], op: str) -> dict[tuple[str, ...], tuple[str | None, Callable[[], Any]]]:
    """(method, path[, variant]) -> (credential, body factory); variants for bodies of several shapes (oneOf)."""
    rid = w["return"]["id"]
    m, wh, tok = w["m_key"], w["wh_key"], w["token"]
    order_item = {
        "line_item_id": "L9",
        "sku": "SKU-9",
        "name": "Jacket",
        "quantity": 1,
        "unit_price": "20.00",
        "paid_total": "20.00",
        "tags": ["outerwear"],
        "category": "jackets",
        "delivered_at": "2026-11-20T10:00:00Z",
        "deliveries": [{"quantity": 1, "delivered_at": "2026-11-20T10:00:00Z"}],
        "hs_code": "620193",
        "country_of_origin": "PT",
        "weight_grams": 800,
        "external_id": "ext-9",
    }
    rule = {
        "name": "damaged",
        "when": "checks.damaged == true",
        "grade": "C",
        "disposition": "recycle",
        "steps": ["photograph"],
    }
    guideline = {"rules": [rule], "default": {"grade": "A", "disposition": "restock"}}
    line = {"line_item_id": "L1", "quantity": 1, "reason": "too_small", "comment": "zu klein", "photos": ["probe.jpg"]}
    return {
        ("POST", "/v1/admin/merchants"): (
            op,
            lambda: {
                "name": "Probe Shop",
                "slug": fresh("probe"),
                "warehouse_id": w["warehouse"]["id"],
                "contact_email": "ops@probe.example",
                "locale": "de",
            },
        ),
        ("POST", "/v1/admin/warehouses"): (op, lambda: {"name": "Probe WH", "address": dict(ADDRESS)}),
        ("PUT", "/v1/admin/warehouses/{warehouse_id}/routing"): (
            op,
            lambda: {
                "routes": [
                    {"countries": ["DE"], "carriers": ["sandbox"], "methods": [{"type": "label", "fee": "0.00"}]}
                ]
            },
        ),
        ("PUT", "/v1/admin/carriers/{carrier}"): (op, lambda: {"credentials": {"api_key": "EZTK_probe_0123"}}),
        ("PUT", "/v1/admin/warehouses/{warehouse_id}/carriers/{carrier}"): (
            op,
            lambda: {"credentials": {"api_key": "EZTK_probe_0123"}},
        ),
        ("POST", "/v1/customers/export"): (m, lambda: {"email": "kim@example.com"}),
        # erasure of someone who is not a customer: harmless, and the world's customer stays for the other probes
        ("POST", "/v1/customers/erase"): (m, lambda: {"email": "nobody@example.com"}),
        ("POST", "/v1/admin/customers/erase"): (
            op,
            lambda: {"email": "nobody@example.com", "merchant_id": w["merchant"]["id"]},
        ),
        ("POST", "/v1/admin/customers/export"): (
            op,
            lambda: {"email": "kim@example.com", "merchant_id": w["merchant"]["id"]},
        ),
        ("POST", "/v1/exports"): (
            m,
            lambda: {"kind": "returns", "format": "csv", "from": "2026-11-01", "to": "2026-11-30"},
        ),
        ("POST", "/v1/orders"): (
            m,
            lambda: {
                "order_number": "INPUTS-2",
                "email": "kim@example.com",
                "currency": "EUR",
                "ordered_at": "2026-11-01T10:00:00Z",
                "delivered_at": "2026-11-20T10:00:00Z",
                "locale": "de",
                "external_id": "ext-order-2",
                "shipping_paid": "4.90",
                "shipping_address": dict(ADDRESS),
                "items": [dict(order_item)],
                "return_tracking_numbers": [fresh("RTN")],
            },
        ),
        ("POST", "/v1/parcels/{parcel_id}/match"): (m, lambda: {"return_id": rid}),
        ("POST", "/v1/portal/merchants/{merchant_slug}/sessions"): (
            None,
            lambda: {"order_number": w["order"]["order_number"], "email": "kim@example.com"},
        ),
        ("POST", "/v1/portal/merchants/{merchant_slug}/withdrawals"): (
            None,
            lambda: {
                "order_number": w["order"]["order_number"],
                "email": "kim@example.com",
                "name": "Kim Probe",
                "items": [{"line_item_id": "L1", "quantity": 1}],
                "confirm": True,
            },
        ),
        ("POST", "/v1/portal/photos"): (tok, lambda: {"content_type": "image/jpeg", "line_item_id": "L1"}),
        ("POST", "/v1/portal/returns"): (
            tok,
            lambda: {"items": [dict(line)], "method_id": "sandbox-label", "refund_method": "original"},
        ),
        ("POST", "/v1/portal/returns/{return_id}/cancel"): (tok, lambda: {"reason": "changed my mind"}),
        ("POST", "/v1/returns"): (
            m,
            lambda: {
                "order_number": w["order"]["order_number"],
                "items": [dict(line)],
                "method_id": "sandbox-label",
                "refund_method": "original",
            },
        ),
        ("POST", "/v1/returns/{return_id}/cancel"): (m, lambda: {"reason": "duplicate"}),
        ("POST", "/v1/returns/{return_id}/feedback"): (
            m,
            lambda: {
                "decision": "approve",
                "comment": "ok",
                "items": [{"line_item_id": "L1", "grade": "A", "disposition": "restock"}],
            },
        ),
        ("POST", "/v1/returns/{return_id}/refund"): (m, lambda: {"amount": "1.00", "reason": "goodwill"}),
        ("PUT", "/v1/settings/checklists"): (
            m,
            lambda: {
                "checklists": [
                    {
                        "name": "apparel",
                        "applies_to": "true",
                        "questions": [
                            {
                                "key": "damaged",
                                "label": "Damaged?",
                                "type": "enum",
                                "options": ["yes", "no"],
                                "photo_required_when": ["yes"],
                            }
                        ],
                    }
                ]
            },
        ),
        ("PUT", "/v1/settings/guidelines"): (m, lambda: copy.deepcopy(guideline)),
        ("POST", "/v1/settings/guidelines/test"): (
            m,
            lambda: {
                "item": {"sku": "S-1", "tags": ["t"], "reason": "too_small", "unit_price": 10.0, "quantity": 1},
                "checks": {"damaged": "no"},
                "order": {"country": "DE", "currency": "EUR"},
                "guideline": copy.deepcopy(guideline),
            },
        ),
        ("PUT", "/v1/settings/policy"): (
            m,
            lambda: {
                "return_window_days": 30,
                "non_returnable_tags": ["final-sale"],
                "non_returnable_skus": ["GIFT"],
                "reasons": [{"code": "too_small", "label": "Too small", "message": "Try a size up"}],
                "window_overrides": [{"tag": "xmas", "days": 60}],
                "fees": [{"method_type": "label", "countries": ["DE"], "amount": "0.00"}],
                "customs_defaults": {"hs_code": "620193", "country_of_origin": "PT"},
            },
        ),
        ("PUT", "/v1/settings/refunds"): (
            m,
            lambda: {
                "target": "manual",
                "auto_refund": False,
                "auto_refund_grades": ["A"],
                "grade_deductions": {"B": "10"},
                "restocking_fee_percent": "0",
                "return_shipping_fee": "0.00",
                "store_credit_bonus_percent": "0",
                "webhook_url": "https://93.184.215.14/refunds",
                "restock_webhook_url": "https://93.184.215.14/restocks",
                "webhook_secret": "probe-secret-0123456789",
            },
        ),
        ("PUT", "/v1/settings/shop"): (
            m,
            lambda: {
                "platform": "shopify",
                "shop_domain": "probe.myshopify.com",
                "access_token": "shpat_probe_0123",
                "webhook_secret": "probe-secret-0123456789",
                "location_id": "1",
            },
        ),
        ("PUT", "/v1/settings/shop", "woocommerce"): (
            m,
            lambda: {
                "platform": "woocommerce",
                "base_url": "https://93.184.215.14/store",
                "consumer_key": "ck_probe_0123456789",
                "consumer_secret": "cs_probe_0123456789",
                "webhook_secret": "probe-secret-0123456789",
            },
        ),
        ("POST", "/v1/subscriptions"): (
            m,
            lambda: {"url": "https://93.184.215.14/events", "events": ["return.requested"], "secret": "s" * 24},
        ),
        ("POST", "/v1/warehouse/returns/{return_id}/inspection"): (
            wh,
            lambda: {
                "items": [
                    {
                        "line_item_id": "L1",
                        "received_quantity": 1,
                        "checks": {"damaged": "no"},
                        "notes": "fine",
                        "photos": ["probe.jpg"],
                        "received_sku": "S-1",
                    }
                ],
                "extra_items": [{"sku": "X-1", "quantity": 1}],
            },
        ),
        ("POST", "/v1/warehouse/returns/{return_id}/photos"): (
            wh,
            lambda: {"content_type": "image/jpeg", "line_item_id": "L1"},
        ),
        ("POST", "/v1/warehouse/scans"): (
            wh,
            lambda: {"barcode": fresh("NOPE"), "notes": "dented", "sender": {"name": "Kim", "address": "Berlin"}},
        ),
        ("POST", "/v1/warehouse/unidentified-parcels/{parcel_id}/assign"): (
            wh,
            lambda: {"merchant_id": w["merchant"]["id"]},
        ),
        ("POST", "/v1/warehouse/unidentified-parcels/{parcel_id}/match"): (wh, lambda: {"return_id": rid}),
        ("POST", "/v1/warehouse/unidentified-parcels/{parcel_id}/photos"): (
            wh,
            lambda: {"content_type": "image/jpeg", "line_item_id": "L1"},
        ),
        ("POST", "/v1/warehouse/work-orders/{work_order_id}/complete"): (wh, lambda: {"minutes": 5, "notes": "done"}),
    }


def openapi(probe: Probe) -> dict[str, Any]:
    return dict(probe.ok("GET", "/v1/openapi.json", None))


def _string_fields(
    doc: dict[str, Any], schema: dict[str, Any], path: tuple[str, ...], seen: frozenset[str]
) -> Iterator[tuple[str, ...]]:
    if "$ref" in schema:
        name = schema["$ref"].rsplit("/", 1)[1]
        if name not in seen:
            yield from _string_fields(doc, doc["components"]["schemas"][name], path, seen | {name})
        return
    for key in ("anyOf", "oneOf", "allOf"):
        for sub in schema.get(key, []):
            yield from _string_fields(doc, sub, path, seen)
    if schema.get("type") == "string":
        yield path
    for name, sub in schema.get("properties", {}).items():
        yield from _string_fields(doc, sub, (*path, name), seen)
    if isinstance(schema.get("additionalProperties"), dict):
        yield from _string_fields(doc, schema["additionalProperties"], (*path, "*"), seen)
    if schema.get("type") == "array" and isinstance(schema.get("items"), dict):
        yield from _string_fields(doc, schema["items"], (*path, "[]"), seen)


def json_operations(doc: dict[str, Any]) -> dict[tuple[str, str], set[tuple[str, ...]]]:
    out: dict[tuple[str, str], set[tuple[str, ...]]] = {}
    for path, ops in doc["paths"].items():
        for method, op in ops.items():
            content = op.get("requestBody", {}).get("content", {}).get("application/json")
            if content and not path.startswith("/v1/webhooks/"):  # shop and carrier payloads: their own suites
                out[(method.upper(), path)] = set(_string_fields(doc, content["schema"], (), frozenset()))
    return out


def string_leaves(value: Any, path: tuple[Any, ...] = ()) -> Iterator[tuple[Any, ...]]:
    if isinstance(value, str):
        yield path
    elif isinstance(value, dict):
        for k, v in value.items():
            yield from string_leaves(v, (*path, k))
    elif isinstance(value, list):
        for i, v in enumerate(value):
            yield from string_leaves(v, (*path, i))


def shape(path: tuple[Any, ...]) -> tuple[str, ...]:
    return tuple("[]" if isinstance(p, int) else p for p in path)


def replaced(body: Any, path: tuple[Any, ...], value: str) -> Any:
    out = copy.deepcopy(body)
    target = out
    for p in path[:-1]:
        target = target[p]
    target[path[-1]] = value
    return out


def concrete(path: str, w: dict[str, Any]) -> str:
    values = {
        "warehouse_id": w["warehouse"]["id"],
        "merchant_slug": w["slug"],
        "return_id": w["return"]["id"],
        "merchant_id": w["merchant"]["id"],
        "carrier": "easypost",
    }
    return re.sub(r"\{(\w+)\}", lambda m: quote(values.get(m[1], f"probe-{m[1]}"), safe=""), path)


def test_every_string_field_is_probed(probe: Probe, world: dict[str, Any]) -> None:
    ops = json_operations(openapi(probe))
    table = bodies(world, probe.op)
    probed = {key[:2] for key in table}
    assert set(ops) <= probed, f"operations without a probe body: {sorted(set(ops) - probed)}"
    for key, fields in ops.items():
        covered = {shape(p) for k, (_, make) in table.items() if k[:2] == key for p in string_leaves(make())}
        wild = {f for f in fields if "*" in f}  # map values: one probe key stands for all
        missing = {f for f in fields - wild if f not in covered}
        assert not missing, f"{key}: string fields missing from the probe body: {sorted(missing)}"


def test_crlf_and_unicode_in_every_string_field(probe: Probe, world: dict[str, Any]) -> None:
    """Per operation: first CR/LF in each identifier and name (each refused at its field, the account unchanged
    since before the first of them), then CR/LF elsewhere and non-ASCII text everywhere (never a 5xx)."""
    table = bodies(world, probe.op)
    failures: list[str] = []
    for (method, path, *_variant), (key, make) in sorted(table.items()):
        url = concrete(path, world)
        leaves = list(string_leaves(make()))
        strict = [leaf for leaf in leaves if next((p for p in reversed(leaf) if isinstance(p, str)), "") in STRICT]
        before = probe.settled(quiet=1.5) if strict else None
        for leaf in strict:
            resp = probe.call(method, url, key, replaced(make(), leaf, CRLF))
            where = f"{method} {path} {list(leaf)} CR/LF"
            if resp.status_code != 422:
                failures.append(f"{where}: {resp.status_code}, expected 422: {resp.text[:200]}")
            elif list(leaf) not in [e["loc"] for e in resp.json().get("errors", [])]:
                failures.append(f"{where}: 422 does not name {list(leaf)}: {resp.text[:200]}")
        if before is not None and (changed := probe.changes(before)):
            failures.append(f"{method} {path}: refused, but the stored state changed: {changed[:3]}")
        for leaf in leaves:
            for value in (CRLF, UNICODE):
                if value == CRLF and leaf in strict:
                    continue
                resp = probe.call(method, url, key, replaced(make(), leaf, value))
                if resp.status_code >= 500:
                    failures.append(f"{method} {path} {list(leaf)} {value!r}: {resp.status_code} {resp.text[:200]}")
    assert not failures, "\n".join(failures)


def credential_for(path: str, w: dict[str, Any], op: str) -> str | None:
    if path.startswith("/v1/admin/"):
        return op
    if path.startswith("/v1/warehouse/"):
        return str(w["wh_key"])
    if path.startswith("/v1/portal/") and "{merchant_slug}" not in path:
        return str(w["token"])
    if path.startswith(("/v1/webhooks/", "/v1/track/", "/v1/portal/merchants/")):
        return None
    return str(w["m_key"])


@pytest.mark.parametrize("value", ["x" * 2100, "%0d%0a" * 300, quote("ü" * 700, safe=""), "..%2f" * 400])
def test_over_long_and_odd_path_values_on_every_route_are_404(probe: Probe, world: dict[str, Any], value: str) -> None:
    doc = openapi(probe)
    failures: list[str] = []
    for path, ops in doc["paths"].items():
        names = re.findall(r"\{(\w+)\}", path)
        for method in (m.upper() for m in ops if m in ("get", "post", "put", "delete")):
            for name in names:
                url = re.sub(r"\{" + name + r"\}", value, concrete(path.replace("{" + name + "}", "@@"), world))
                url = url.replace("@@", value)
                key = credential_for(path, world, probe.op)
                resp = probe.call(method, url, key, {} if method in ("POST", "PUT") else None)
                if resp.status_code != 404:
                    failures.append(f"{method} {path} ({name}): {resp.status_code} {resp.text[:120]}")
    assert not failures, "\n".join(failures)


SIXTY = "[" + ",".join(str(i) for i in range(60)) + "]"
#: Five nested comprehensions over 60-element lists: 60**5 evaluations (minutes of CPU before the cost budget).
EVIL_RULE = "".join(f"{SIXTY}.all({v}, " for v in "abcde") + "a + b + c + d + e >= 0" + ")" * 5


def test_the_nested_comprehension_rule_is_refused_everywhere_and_the_stack_keeps_answering(
    probe: Probe, world: dict[str, Any]
) -> None:
    m = world["m_key"]
    rule = {"name": "evil", "when": EVIL_RULE, "grade": "C", "disposition": "recycle"}
    guideline = {"rules": [rule], "default": {"grade": "A", "disposition": "restock"}}
    before = probe.settled()
    resp = probe.call("PUT", "/v1/settings/guidelines", m, guideline)
    assert resp.status_code == 422, resp.text[:300]
    assert ["rules", 0, "when"] in [e["loc"] for e in resp.json()["errors"]]
    checklist = {
        "checklists": [
            {"name": "evil", "applies_to": EVIL_RULE, "questions": [{"key": "ok", "label": "OK?", "type": "bool"}]}
        ]
    }
    resp = probe.call("PUT", "/v1/settings/checklists", m, checklist)
    assert resp.status_code == 422, resp.text[:300]
    dry = {
        "item": {"sku": "S-1", "tags": [], "reason": "too_small"},
        "checks": {},
        "order": {"country": "DE"},
        "guideline": guideline,
    }
    resp = probe.call("POST", "/v1/settings/guidelines/test", m, dry)  # requests' 30 s timeout guards a hang
    assert resp.status_code == 422, resp.text[:300]
    assert probe.changes(before) == []
    assert probe.ok("GET", "/v1/health", None) == {"status": "ok"}


def _session_attempt(api: str, slug: str, body: dict[str, str], source: str) -> int:
    parts = urlsplit(api)
    conn = http.client.HTTPConnection(parts.hostname or "127.0.0.1", parts.port, timeout=30, source_address=(source, 0))
    try:
        conn.request(
            "POST", f"/v1/portal/merchants/{slug}/sessions", json.dumps(body), {"Content-Type": "application/json"}
        )
        return conn.getresponse().status
    finally:
        conn.close()


def test_a_hundred_parallel_wrong_guesses_let_at_most_ten_through_and_the_owner_still_gets_in(
    probe: Probe,
) -> None:
    t = probe.tenant("Guess")
    wrong = {"order_number": t["order"]["order_number"], "email": "attacker@example.com"}
    api, slug = probe.stack.api, t["slug"]
    with ThreadPoolExecutor(max_workers=25) as pool:
        statuses = list(pool.map(lambda _: _session_attempt(api, slug, wrong, "127.0.5.5"), range(100)))
    assert set(statuses) <= {404, 429}, statuses
    assert statuses.count(404) <= 10, f"{statuses.count(404)} guesses reached the lookup"
    # the owner, from an address that never failed, still opens a session (a stranger cannot lock them out)
    right = {"order_number": t["order"]["order_number"], "email": "kim@example.com"}
    assert _session_attempt(api, slug, right, "127.0.9.9") == 201


def test_guesses_from_a_hundred_addresses_reach_one_order_at_most_sixty_times(probe: Probe) -> None:
    """docs/portal.md: 10 attempts from anyone, then one each from clients new to the order, 50 of those at most."""
    t = probe.tenant("Spread")
    wrong = {"order_number": t["order"]["order_number"], "email": "attacker@example.com"}
    api, slug = probe.stack.api, t["slug"]
    with ThreadPoolExecutor(max_workers=25) as pool:
        statuses = list(pool.map(lambda i: _session_attempt(api, slug, wrong, f"127.0.6.{2 + i}"), range(100)))
    assert set(statuses) <= {404, 429}, statuses
    assert statuses.count(404) <= 60, f"{statuses.count(404)} guesses reached the lookup"
