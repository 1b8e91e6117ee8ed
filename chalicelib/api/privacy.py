"""Privacy (merchant and operator): erase a customer (GDPR Art. 17). Runs in the background (services/privacy.py)."""

from __future__ import annotations

from typing import Any

from chalice.app import Blueprint

from chalicelib.api import schemas as s
from chalicelib.api.routing import Call, endpoint
from chalicelib.bootstrap import container
from chalicelib.domain.errors import NotFound, ValidationFailed

bp = Blueprint(__name__)
MERCHANT = ("merchant",)
OPERATOR = ("operator",)


def _principal(call: Call) -> tuple[str, str]:
    assert call.principal is not None
    return call.principal.id, call.principal.actor


@endpoint(
    bp,
    "/v1/customers/erase",
    "POST",
    summary=(
        "Erase a customer: their email, name, address, phone, comments and photos are pseudonymised in orders, "
        "returns and withdrawals, labels and photos showing them deleted; returns stay readable and report figures "
        "unchanged. Runs in the background; idempotent"
    ),
    tag="privacy",
    auth=MERCHANT,
    body=s.ErasureIn,
    status=202,
    response=s.ErasureAccepted,
    errors=(400, 401, 403, 422),
)
def erase_customer(call: Call) -> dict[str, Any]:
    from chalicelib.services import privacy

    merchant_id, actor = _principal(call)
    return privacy.request_erasure(container(), merchant_id, call.body.email, actor)


@endpoint(
    bp,
    "/v1/customers/erasures/{erasure_id}",
    "GET",
    summary="An erasure's status and what it changed (counts; never the erased data)",
    tag="privacy",
    auth=MERCHANT,
    response=s.ErasureOut,
    errors=(401, 403, 404),
)
def get_erasure(call: Call, erasure_id: str) -> dict[str, Any]:
    from chalicelib.services import privacy

    merchant_id, _ = _principal(call)
    return privacy.get_erasure(container(), merchant_id, erasure_id)


@endpoint(
    bp,
    "/v1/admin/customers/erase",
    "POST",
    summary="Erase a customer of a merchant (operator); as POST /v1/customers/erase",
    tag="operator",
    auth=OPERATOR,
    body=s.AdminErasureIn,
    status=202,
    response=s.ErasureAccepted,
    errors=(400, 401, 403, 422),
)
def admin_erase_customer(call: Call) -> dict[str, Any]:
    from chalicelib.services import privacy

    body: s.AdminErasureIn = call.body
    if not body.merchant_id:
        raise ValidationFailed.at(["merchant_id"], "required: a customer is erased at one merchant")
    _, actor = _principal(call)
    try:
        return privacy.request_erasure(container(), body.merchant_id, body.email, actor)
    except NotFound:  # as the operator's access export: the merchant named is the field at fault
        raise ValidationFailed.at(["merchant_id"], "no such merchant") from None
