"""OpenAPI 3.1 document generated from the registered routes and their pydantic models."""

from __future__ import annotations

import re
from typing import Any

from pydantic import BaseModel

from chalicelib.api.routing import ROUTES, RouteSpec
from chalicelib.api.schemas import Problem

_STATUS_TEXT = {
    200: "OK",
    201: "Created",
    202: "Accepted",
    204: "No Content",
    400: "Malformed JSON",
    401: "Missing or unknown credentials",
    403: "Wrong kind of credentials",
    404: "Not found (or another tenant's)",
    409: "Illegal state change or conflict",
    413: "Request body too large",
    415: "Unsupported media type (send application/json)",
    422: "Validation failed",
    429: "Rate limited",
    503: "A dependency is unavailable",
}


def _schema(model: type[BaseModel], components: dict[str, Any], mode: str) -> dict[str, Any]:
    schema = model.model_json_schema(ref_template="#/components/schemas/{model}", mode=mode)  # type: ignore[arg-type]
    for name, sub in schema.pop("$defs", {}).items():
        components[name] = sub
    components[model.__name__] = schema
    return {"$ref": f"#/components/schemas/{model.__name__}"}


def _operation(spec: RouteSpec, components: dict[str, Any]) -> dict[str, Any]:
    op: dict[str, Any] = {
        "summary": spec.summary,
        "tags": [spec.tag],
        "operationId": f"{spec.method.lower()}_{re.sub(r'[^a-z0-9]+', '_', spec.path.lower()).strip('_')}",
    }
    params = [
        {"name": n, "in": "path", "required": True, "schema": {"type": "string", "minLength": 1}}
        for n in re.findall(r"{(\w+)}", spec.path)
    ]
    if spec.query is not None:
        qs = spec.query.model_json_schema()
        for name, prop in qs.get("properties", {}).items():
            params.append({"name": name, "in": "query", "required": name in qs.get("required", []), "schema": prop})
    if spec.tag == "refunds" and spec.method == "POST":
        params.append(
            {
                "name": "Idempotency-Key",
                "in": "header",
                "required": False,
                "schema": {"type": "string", "maxLength": 200},
            }
        )
    if params:
        op["parameters"] = params
    if spec.body is not None:
        op["requestBody"] = {
            "required": True,
            "content": {"application/json": {"schema": _schema(spec.body, components, "validation")}},
        }
    elif spec.raw_body and spec.content_types:  # e.g. a CSV upload: the body is text of that type
        op["requestBody"] = {
            "required": True,
            "content": {media: {"schema": {"type": "string"}} for media in spec.content_types},
        }
    elif spec.raw_body:
        op["requestBody"] = {
            "required": True,
            "content": {"application/json": {"schema": {"type": "object"}}},
        }
    ok: dict[str, Any] = {"description": _STATUS_TEXT.get(spec.status, "OK")}
    if spec.response is not None:
        ok["content"] = {"application/json": {"schema": _schema(spec.response, components, "serialization")}}
    else:
        ok["content"] = {"application/json": {"schema": {"type": "object"}}}
    responses: dict[str, Any] = {str(spec.status): ok}
    problem_ref = {"application/problem+json": {"schema": {"$ref": "#/components/schemas/Problem"}}}
    for code in sorted(set(spec.errors) | ({400, 415, 422} if spec.body else set()) | ({422} if spec.query else set())):
        responses[str(code)] = {"description": _STATUS_TEXT.get(code, "Error"), "content": problem_ref}
    op["responses"] = responses
    if spec.auth:
        op["security"] = [{"bearer": []}]
    return op


def build_document() -> dict[str, Any]:
    components: dict[str, Any] = {}
    _schema(Problem, components, "serialization")
    paths: dict[str, Any] = {}
    for spec in sorted(ROUTES, key=lambda r: (r.path, r.method)):
        paths.setdefault(spec.path, {})[spec.method.lower()] = _operation(spec, components)
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "Boomerang returns API",
            "version": "1.0.0",
            "description": "Returns management for e-commerce fulfillment. See shared/CONTRACT.md.",
        },
        "servers": [{"url": "/"}],
        "paths": paths,
        "components": {
            "schemas": dict(sorted(components.items())),
            "securitySchemes": {
                "bearer": {
                    "type": "http",
                    "scheme": "bearer",
                    "description": "API key (operator, merchant, warehouse) or portal token",
                }
            },
        },
    }


if __name__ == "__main__":  # `make openapi`
    import json
    import sys

    import app  # noqa: F401  (registers every route)

    json.dump(build_document(), sys.stdout, indent=2, sort_keys=False)
    sys.stdout.write("\n")
