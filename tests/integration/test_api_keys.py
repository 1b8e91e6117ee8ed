"""Merchant API key rotation by the operator: add a key, switch, revoke the old one."""

from __future__ import annotations

import json
from collections.abc import Iterator

import pytest
from chalice.test import Client

from app import app
from tests.support import OPERATOR_KEY, Api


@pytest.fixture
def api(aws) -> Iterator[Api]:
    with Client(app) as client:
        yield Api(client)


def test_a_merchant_key_is_rotated_without_downtime(api: Api) -> None:
    t = api.tenant()
    mid, old_key, old_id = t["merchant"]["id"], t["m_key"], t["merchant"]["key_id"]
    new = api.ok("POST", f"/v1/admin/merchants/{mid}/keys", OPERATOR_KEY, None, 201)
    assert new["id"] != old_id and new["api_key"] != old_key
    # both work while the merchant's systems switch over
    for key in (old_key, new["api_key"]):
        assert api.call("GET", "/v1/returns", key).status_code == 200
    resp = api.call("DELETE", f"/v1/admin/merchants/{mid}/keys/{old_id}", OPERATOR_KEY)
    assert resp.status_code == 204
    assert api.call("GET", "/v1/returns", old_key).status_code == 401
    assert api.call("GET", "/v1/returns", new["api_key"]).status_code == 200
    again = api.call("DELETE", f"/v1/admin/merchants/{mid}/keys/{old_id}", OPERATOR_KEY)
    assert again.status_code == 404 and json.loads(again.body)["status"] == 404


def test_keys_are_the_operators_business_and_scoped_to_their_merchant(api: Api) -> None:
    t, other = api.tenant(), api.tenant()
    mid = t["merchant"]["id"]
    assert api.call("POST", f"/v1/admin/merchants/{mid}/keys", t["m_key"]).status_code == 403
    assert api.call("POST", "/v1/admin/merchants/mer_nope/keys", OPERATOR_KEY).status_code == 404
    # another merchant's key id under this merchant: 404, and the key keeps working
    other_id = other["merchant"]["key_id"]
    assert api.call("DELETE", f"/v1/admin/merchants/{mid}/keys/{other_id}", OPERATOR_KEY).status_code == 404
    assert api.call("GET", "/v1/returns", other["m_key"]).status_code == 200
    # a warehouse's key cannot be revoked as a merchant's
    wh_id = t["warehouse"]["key_id"]
    assert api.call("DELETE", f"/v1/admin/merchants/{mid}/keys/{wh_id}", OPERATOR_KEY).status_code == 404


# ----- warehouses rotate keys too; both list their keys -------------------------------------------------------------
def test_a_warehouse_key_is_added_listed_and_revoked(api: Api) -> None:
    # Given a warehouse with its first key
    t = api.tenant()
    wid, old_key, old_id = t["warehouse"]["id"], t["wh_key"], t["warehouse"]["key_id"]
    # When the operator adds a key
    new = api.ok("POST", f"/v1/admin/warehouses/{wid}/keys", OPERATOR_KEY, None, 201)
    assert set(new) == {"id", "api_key"} and new["id"] != old_id
    # Then both work, and both are listed without their secret
    for key in (old_key, new["api_key"]):
        assert api.call("GET", "/v1/warehouse/work-orders", key).status_code == 200
    listed = api.ok("GET", f"/v1/admin/warehouses/{wid}/keys", OPERATOR_KEY)
    assert {k["id"] for k in listed["items"]} == {old_id, new["id"]}
    assert listed["next_cursor"] is None
    for k in listed["items"]:
        assert set(k) == {"id", "created_at", "last_used_at"}
        assert k["created_at"].endswith("Z")
    body = json.dumps(listed)
    assert old_key not in body and new["api_key"] not in body
    # When the old one is revoked it stops working at once, and leaves the list
    assert api.call("DELETE", f"/v1/admin/warehouses/{wid}/keys/{old_id}", OPERATOR_KEY).status_code == 204
    assert api.call("GET", "/v1/warehouse/work-orders", old_key).status_code == 401
    assert api.call("GET", "/v1/warehouse/work-orders", new["api_key"]).status_code == 200
    listed = api.ok("GET", f"/v1/admin/warehouses/{wid}/keys", OPERATOR_KEY)
    assert [k["id"] for k in listed["items"]] == [new["id"]]
    assert api.call("DELETE", f"/v1/admin/warehouses/{wid}/keys/{old_id}", OPERATOR_KEY).status_code == 404


def test_warehouse_keys_are_the_operators_business_and_scoped_to_their_warehouse(api: Api) -> None:
    t, other = api.tenant(), api.tenant()
    wid = t["warehouse"]["id"]
    for key in (t["wh_key"], t["m_key"]):
        assert api.call("POST", f"/v1/admin/warehouses/{wid}/keys", key).status_code == 403
        assert api.call("GET", f"/v1/admin/warehouses/{wid}/keys", key).status_code == 403
    assert api.call("POST", "/v1/admin/warehouses/wh_nope/keys", OPERATOR_KEY).status_code == 404
    assert api.call("GET", "/v1/admin/warehouses/wh_nope/keys", OPERATOR_KEY).status_code == 404
    # another warehouse's key, or a merchant's, cannot be revoked as this warehouse's
    for key_id in (other["warehouse"]["key_id"], t["merchant"]["key_id"]):
        assert api.call("DELETE", f"/v1/admin/warehouses/{wid}/keys/{key_id}", OPERATOR_KEY).status_code == 404
    assert api.call("GET", "/v1/warehouse/work-orders", other["wh_key"]).status_code == 200
    assert api.call("GET", "/v1/returns", t["m_key"]).status_code == 200


def test_a_merchants_keys_are_listed_with_when_they_were_last_used(api: Api) -> None:
    t = api.tenant()
    mid = t["merchant"]["id"]
    unused = api.ok("POST", f"/v1/admin/merchants/{mid}/keys", OPERATOR_KEY, None, 201)
    assert api.call("GET", "/v1/returns", t["m_key"]).status_code == 200
    listed = api.ok("GET", f"/v1/admin/merchants/{mid}/keys", OPERATOR_KEY)
    by_id = {k["id"]: k for k in listed["items"]}
    assert set(by_id) == {t["merchant"]["key_id"], unused["id"]}
    assert by_id[unused["id"]]["last_used_at"] is None
    assert by_id[t["merchant"]["key_id"]]["last_used_at"] is not None
    assert unused["api_key"] not in json.dumps(listed) and t["m_key"] not in json.dumps(listed)
    # pages
    page = api.ok("GET", f"/v1/admin/merchants/{mid}/keys?limit=1", OPERATOR_KEY)
    assert len(page["items"]) == 1 and page["next_cursor"]
    rest = api.ok("GET", f"/v1/admin/merchants/{mid}/keys?limit=1&cursor={page['next_cursor']}", OPERATOR_KEY)
    assert {page["items"][0]["id"], rest["items"][0]["id"]} == set(by_id)
    assert api.call("GET", "/v1/admin/merchants/mer_nope/keys", OPERATOR_KEY).status_code == 404


def test_last_used_is_written_at_most_once_an_hour_per_key(api: Api) -> None:
    from datetime import timedelta

    from chalicelib.bootstrap import container

    t = api.tenant()
    c = container()
    writes: list[str] = []
    store = c.store
    original = store.touch_api_key

    def counting(*args: object, **kwargs: object) -> bool:
        writes.append("touch")
        return original(*args, **kwargs)  # type: ignore[arg-type]

    store.touch_api_key = counting  # type: ignore[method-assign]
    try:
        for _ in range(5):
            assert api.call("GET", "/v1/returns", t["m_key"]).status_code == 200
        assert len(writes) == 1  # the first use only
        real = c.clock
        c.clock = lambda: real() + timedelta(hours=2)  # type: ignore[method-assign]
        try:
            for _ in range(3):
                assert api.call("GET", "/v1/returns", t["m_key"]).status_code == 200
        finally:
            c.clock = real  # type: ignore[method-assign]
        assert len(writes) == 2  # stale after an hour: once more
    finally:
        store.touch_api_key = original  # type: ignore[method-assign]
