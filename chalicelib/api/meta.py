"""Health and the OpenAPI document."""

from __future__ import annotations

from typing import Any

from chalice.app import Blueprint

from chalicelib.api import schemas as s
from chalicelib.api.routing import Call, endpoint

bp = Blueprint(__name__)


@endpoint(bp, "/v1/health", "GET", summary="Liveness", tag="meta", response=s.Health)
def health(call: Call) -> dict[str, Any]:
    return {"status": "ok"}


@endpoint(bp, "/v1/openapi.json", "GET", summary="This API's OpenAPI 3.1 document", tag="meta")
def openapi(call: Call) -> dict[str, Any]:
    from chalicelib.api.openapi import build_document

    return build_document()
