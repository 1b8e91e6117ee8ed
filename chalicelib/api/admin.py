"""Operator API: warehouses and merchants."""

from __future__ import annotations

from typing import Any

from chalice.app import Blueprint, Response

from chalicelib.api import schemas as s
from chalicelib.api.routing import Call, decode_cursor, encode_cursor, endpoint
from chalicelib.bootstrap import container
from chalicelib.domain.returns import iso

bp = Blueprint(__name__)
OPERATOR = ("operator",)


@endpoint(
    bp,
    "/v1/admin/warehouses",
    "POST",
    summary="Create a warehouse",
    tag="operator",
    auth=OPERATOR,
    body=s.WarehouseIn,
    status=201,
    response=s.CreatedWithKey,
    errors=(401, 403, 422),
)
def create_warehouse(call: Call) -> dict[str, Any]:
    from chalicelib.services import tenants

    body: s.WarehouseIn = call.body
    wh, key, key_id = tenants.create_warehouse(container(), body.name, body.address.model_dump())
    return {
        "id": wh.id,
        "api_key": key,
        "key_id": key_id,
        "name": wh.name,
        "address": wh.address.to_dict(),
        "created_at": iso(wh.created_at),
    }


@endpoint(
    bp,
    "/v1/admin/merchants",
    "POST",
    summary="Create a merchant",
    tag="operator",
    auth=OPERATOR,
    body=s.MerchantIn,
    status=201,
    response=s.CreatedWithKey,
    errors=(401, 403, 404, 409, 422),
)
def create_merchant(call: Call) -> dict[str, Any]:
    from chalicelib.services import tenants

    body: s.MerchantIn = call.body
    m, key, key_id = tenants.create_merchant(
        container(),
        name=body.name,
        slug=body.slug,
        warehouse_id=body.warehouse_id,
        contact_email=body.contact_email,
        locale=body.locale,
    )
    return {
        "id": m.id,
        "slug": m.slug,
        "api_key": key,
        "key_id": key_id,
        "name": m.name,
        "warehouse_id": m.warehouse_id,
        "contact_email": m.contact_email,
        "locale": m.locale,
        "created_at": iso(m.created_at),
    }


@endpoint(
    bp,
    "/v1/admin/merchants/{merchant_id}/keys",
    "POST",
    summary="A new API key for a merchant (rotation: add, switch the merchant's systems over, revoke the old key)",
    tag="operator",
    auth=OPERATOR,
    status=201,
    response=s.KeyOut,
    errors=(401, 403, 404),
)
def add_merchant_key(call: Call, merchant_id: str) -> dict[str, Any]:
    from chalicelib.services import tenants

    key_id, key = tenants.add_merchant_key(container(), merchant_id)
    return {"id": key_id, "api_key": key}


@endpoint(
    bp,
    "/v1/admin/merchants/{merchant_id}/keys/{key_id}",
    "DELETE",
    summary="Revoke one of a merchant's API keys (it stops working at once)",
    tag="operator",
    auth=OPERATOR,
    status=204,
    errors=(401, 403, 404),
)
def revoke_merchant_key(call: Call, merchant_id: str, key_id: str) -> Response:
    from chalicelib.services import tenants

    tenants.revoke_merchant_key(container(), merchant_id, key_id)
    return Response(body="", status_code=204)


@endpoint(
    bp,
    "/v1/admin/merchants/{merchant_id}/keys",
    "GET",
    summary="A merchant's API keys: id, created, last used (never the key)",
    tag="operator",
    auth=OPERATOR,
    query=s.KeysQuery,
    response=s.KeyList,
    errors=(401, 403, 404, 422),
)
def list_merchant_keys(call: Call, merchant_id: str) -> dict[str, Any]:
    return _key_list(call, "merchant", merchant_id)


@endpoint(
    bp,
    "/v1/admin/warehouses/{warehouse_id}/keys",
    "POST",
    summary="A new API key for a warehouse (rotation: add, switch the warehouse's devices over, revoke the old key)",
    tag="operator",
    auth=OPERATOR,
    status=201,
    response=s.KeyOut,
    errors=(401, 403, 404),
)
def add_warehouse_key(call: Call, warehouse_id: str) -> dict[str, Any]:
    from chalicelib.services import tenants

    key_id, key = tenants.add_warehouse_key(container(), warehouse_id)
    return {"id": key_id, "api_key": key}


@endpoint(
    bp,
    "/v1/admin/warehouses/{warehouse_id}/keys",
    "GET",
    summary="A warehouse's API keys: id, created, last used (never the key)",
    tag="operator",
    auth=OPERATOR,
    query=s.KeysQuery,
    response=s.KeyList,
    errors=(401, 403, 404, 422),
)
def list_warehouse_keys(call: Call, warehouse_id: str) -> dict[str, Any]:
    return _key_list(call, "warehouse", warehouse_id)


@endpoint(
    bp,
    "/v1/admin/warehouses/{warehouse_id}/keys/{key_id}",
    "DELETE",
    summary="Revoke one of a warehouse's API keys (it stops working at once)",
    tag="operator",
    auth=OPERATOR,
    status=204,
    errors=(401, 403, 404),
)
def revoke_warehouse_key(call: Call, warehouse_id: str, key_id: str) -> Response:
    from chalicelib.services import tenants

    tenants.revoke_warehouse_key(container(), warehouse_id, key_id)
    return Response(body="", status_code=204)


def _key_list(call: Call, kind: str, principal_id: str) -> dict[str, Any]:
    from chalicelib.services import tenants

    q: s.KeysQuery = call.query
    items, last = tenants.list_keys(container(), kind, principal_id, limit=q.limit, cursor=decode_cursor(q.cursor))
    return {
        "items": [
            {
                "id": k["id"],
                "created_at": iso(k["created_at"]),
                "last_used_at": iso(k["last_used_at"]) if k["last_used_at"] else None,
            }
            for k in items
        ],
        "next_cursor": encode_cursor(last),
    }


@endpoint(
    bp,
    "/v1/admin/billing",
    "GET",
    summary="What to invoice a merchant for one month",
    tag="operator",
    auth=OPERATOR,
    query=s.BillingQuery,
    errors=(401, 403, 404, 422),
)
def billing(call: Call) -> dict[str, Any]:
    from chalicelib.services import floor

    q: s.BillingQuery = call.query
    return floor.billing(container(), q.merchant_id, q.month)


@endpoint(
    bp,
    "/v1/admin/warehouses/{warehouse_id}/routing",
    "PUT",
    summary="Carrier routing: carriers and return methods per customer country, consolidation addresses",
    tag="operator",
    auth=OPERATOR,
    body=s.RoutingIn,
    errors=(401, 403, 404, 422),
)
def put_routing(call: Call, warehouse_id: str) -> dict[str, Any]:
    from chalicelib.services import tenants

    body: s.RoutingIn = call.body
    return tenants.put_routing(container(), warehouse_id, body.model_dump(exclude_none=True)).to_dict()


@endpoint(
    bp,
    "/v1/admin/warehouses/{warehouse_id}/carriers/{carrier}",
    "PUT",
    summary="Set a warehouse's carrier account credentials (stored encrypted, never returned)",
    tag="operator",
    auth=OPERATOR,
    body=s.CarrierCredentialsIn,
    response=s.CarrierCredentialsOut,
    errors=(401, 403, 404, 422),
)
def put_warehouse_carrier(call: Call, warehouse_id: str, carrier: str) -> dict[str, Any]:
    from chalicelib.services import tenants

    body: s.CarrierCredentialsIn = call.body
    keys = tenants.put_carrier_credentials(container(), warehouse_id, carrier, body.credentials)
    return {"carrier": carrier, "keys": keys}


@endpoint(
    bp,
    "/v1/admin/carriers/{carrier}",
    "PUT",
    summary="Set the operator's default carrier account credentials (used where a warehouse has none)",
    tag="operator",
    auth=OPERATOR,
    body=s.CarrierCredentialsIn,
    response=s.CarrierCredentialsOut,
    errors=(401, 403, 404, 422),
)
def put_default_carrier(call: Call, carrier: str) -> dict[str, Any]:
    from chalicelib.services import tenants

    body: s.CarrierCredentialsIn = call.body
    keys = tenants.put_carrier_credentials(container(), None, carrier, body.credentials)
    return {"carrier": carrier, "keys": keys}
