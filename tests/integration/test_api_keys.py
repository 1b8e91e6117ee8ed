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
