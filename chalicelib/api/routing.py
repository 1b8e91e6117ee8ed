"""The `endpoint` decorator: auth, body/query parsing into pydantic models, error mapping, JSON out.

Every route registers a RouteSpec here; the OpenAPI document is generated from these specs, so the
document cannot drift from the code.
"""

from __future__ import annotations

import base64
import functools
import json
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import Any

from chalice.app import Blueprint, Response
from pydantic import BaseModel, ValidationError

from chalicelib.api.problems import Forbidden, from_error, problem
from chalicelib.bootstrap import container
from chalicelib.domain.errors import DomainError, MalformedInput, NotFound, ValidationFailed
from chalicelib.domain.returns import iso
from chalicelib.domain.tenants import Principal
from chalicelib.domain.text import has_control
from chalicelib.observability import logger


@dataclass(frozen=True)
class RouteSpec:
    path: str
    method: str
    summary: str
    tag: str
    auth: tuple[str, ...]
    body: type[BaseModel] | None
    query: type[BaseModel] | None
    status: int
    response: type[BaseModel] | None
    raw_body: bool
    errors: tuple[int, ...]
    content_types: tuple[str, ...] = ()  # request media types beyond JSON (e.g. text/csv for raw-body routes)


ROUTES: list[RouteSpec] = []

#: The longest path value any route takes. Ids and tokens are 30-40 characters, slugs at most 63; a longer value names
#: nothing (and would exceed DynamoDB's key size in a lookup): 404 before anything reads it.
MAX_PATH_VALUE = 200


def _unknown_path_value(params: dict[str, str]) -> bool:
    return any(len(value) > MAX_PATH_VALUE or has_control(value) for value in params.values())


@dataclass
class Call:
    """What a view receives: the authenticated principal, parsed body/query, the raw request."""

    principal: Principal | None
    body: Any
    query: Any
    request: Any

    def header(self, name: str) -> str | None:
        value = self.request.headers.get(name.lower())
        return str(value) if value is not None else None

    def idempotency_key(self) -> str | None:
        """The `Idempotency-Key` header (it becomes part of a table key): 1 to 200 characters, one line."""
        value = self.header("Idempotency-Key")
        if value is not None and (not 1 <= len(value) <= MAX_PATH_VALUE or has_control(value)):
            raise ValidationFailed.at(["headers", "Idempotency-Key"], "1 to 200 characters, no control characters")
        return value

    @property
    def client_ip(self) -> str:
        identity = (self.request.context or {}).get("identity") or {}
        return str(identity.get("sourceIp") or "unknown")


def _json_default(value: Any) -> Any:
    if isinstance(value, Decimal):
        return str(value)
    if isinstance(value, datetime):
        return iso(value)
    raise TypeError(type(value).__name__)


def json_response(data: Any, status: int = 200, headers: dict[str, str] | None = None) -> Response:
    return Response(
        body=json.dumps(data, default=_json_default),
        status_code=status,
        headers={"Content-Type": "application/json", **(headers or {})},
    )


def _validation_errors(exc: ValidationError, raw: Any = None) -> ValidationFailed:
    errors = []
    for e in exc.errors(include_url=False):
        loc = _body_loc(list(e["loc"]), raw)
        if e["type"] in ("union_tag_invalid", "union_tag_not_found"):  # the discriminator field itself is wrong
            loc = [*loc, str((e.get("ctx") or {}).get("discriminator", "")).strip("'\"")]
        errors.append({"loc": loc, "msg": e["msg"]})
    first = errors[0] if errors else {"loc": [], "msg": "invalid"}
    where = ".".join(str(p) for p in first["loc"]) or "body"
    return ValidationFailed(f"{where}: {first['msg']}", errors)


def _body_loc(loc: list[Any], raw: Any) -> list[Any]:
    """pydantic puts a discriminated union's tag first (`["shopify", "shop_domain"]`); CONTRACT.md wants `loc`
    relative to the request body, so a leading tag that is the body's own discriminator value is dropped."""
    if loc and isinstance(raw, dict) and isinstance(loc[0], str) and loc[0] not in raw and loc[0] in raw.values():
        return loc[1:]
    return loc


def encode_cursor(key: dict[str, Any] | None) -> str | None:
    if not key:
        return None
    return base64.urlsafe_b64encode(json.dumps(key, separators=(",", ":")).encode()).decode()


def decode_cursor(cursor: str | None) -> dict[str, Any] | None:
    if not cursor:
        return None
    try:
        value = json.loads(base64.urlsafe_b64decode(cursor.encode()))
        if not isinstance(value, dict):
            raise ValueError
        return value
    except ValueError:
        raise ValidationFailed.at(["cursor"], "not a cursor this API returned") from None


def endpoint(
    bp: Blueprint,
    path: str,
    method: str,
    *,
    summary: str,
    tag: str,
    auth: tuple[str, ...] = (),
    body: type[BaseModel] | None = None,
    query: type[BaseModel] | None = None,
    status: int = 200,
    response: type[BaseModel] | None = None,
    raw_body: bool = False,
    errors: tuple[int, ...] = (),
    content_types: tuple[str, ...] = (),
) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """Register a Chalice route whose view gets a `Call` and path parameters, and returns data or a Response.
    `content_types`: request media types accepted besides the defaults (Chalice answers 415 to any other)."""
    ROUTES.append(
        RouteSpec(path, method, summary, tag, auth, body, query, status, response, raw_body, errors, content_types)
    )

    def decorate(fn: Callable[..., Any]) -> Callable[..., Any]:
        @functools.wraps(fn)
        def view(**params: str) -> Response:
            request = bp.current_request
            if _unknown_path_value(params):
                return from_error(NotFound("no such resource"))
            try:
                c = container()
                principal = None
                if auth:
                    from chalicelib.services.auth import authenticate

                    principal = authenticate(c, request.headers.get("authorization"))
                    if principal.kind not in auth:
                        raise Forbidden(f"this endpoint is for {' or '.join(auth)} credentials")
                parsed_body: Any = None
                if body is not None:
                    try:
                        raw = json.loads(request.raw_body or b"null")
                    except (ValueError, UnicodeDecodeError):
                        raise MalformedInput("the request body is not valid JSON") from None
                    if (
                        raw is None
                        and not request.raw_body
                        and not any(f.is_required() for f in body.model_fields.values())
                    ):
                        raw = {}  # every field optional: an empty request means all defaults
                    if raw is None:
                        raise ValidationFailed.at([], "a JSON body is required")
                    try:
                        parsed_body = body.model_validate(raw)
                    except ValidationError as exc:
                        raise _validation_errors(exc, raw) from None
                parsed_query: Any = None
                if query is not None:
                    try:
                        parsed_query = query.model_validate(dict(request.query_params or {}))
                    except ValidationError as exc:
                        raise _validation_errors(exc) from None
                result = fn(Call(principal, parsed_body, parsed_query, request), **params)
            except DomainError as exc:
                return from_error(exc)
            except Exception:
                logger.exception("unhandled error", route=path, method=method)
                return problem(500, "Internal error", "an unexpected error occurred")
            if isinstance(result, Response):
                return result
            return json_response(result, status)

        bp.route(
            path,
            methods=[method],
            content_types=["application/json", "text/plain", "application/x-www-form-urlencoded", *content_types],
        )(view)
        return view

    return decorate
