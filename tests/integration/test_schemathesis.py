"""Property-based API testing from our own OpenAPI document: no input may produce a 5xx.

Requests go through a requests adapter into Chalice's in-process test client, against moto.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import boto3
import pytest
import requests
import schemathesis
from chalice.test import Client
from hypothesis import HealthCheck, settings
from moto import mock_aws
from schemathesis.checks import not_a_server_error

from app import app
from chalicelib import bootstrap
from chalicelib.api.openapi import build_document
from local import lambda_router, moto_fixes
from local.provision import provision
from tests.conftest import FAST, MOTO_CONFIG
from tests.support import OPERATOR_KEY, Api

schema = schemathesis.openapi.from_dict(build_document())


class ChaliceAdapter(requests.adapters.BaseAdapter):
    """Serve requests' PreparedRequests from the Chalice test client (no sockets, no threads)."""

    def __init__(self, client: Client) -> None:
        super().__init__()
        self.client = client

    def send(self, request: requests.PreparedRequest, **kwargs: Any) -> requests.Response:  # type: ignore[override]
        if request.method in ("OPTIONS", "HEAD", "TRACE"):
            # API Gateway answers these itself for routes that do not define them; the app is never called.
            out = requests.Response()
            out.status_code, out._content, out.url, out.request = 405, b"", request.url or "", request
            return out
        url = requests.utils.urlparse(request.url)
        path = url.path + (f"?{url.query}" if url.query else "")
        body = request.body.encode() if isinstance(request.body, str) else request.body
        resp = self.client.http.request(request.method or "GET", path, headers=dict(request.headers), body=body or b"")
        out = requests.Response()
        out.status_code = resp.status_code
        out._content = resp.body if isinstance(resp.body, bytes) else (resp.body or "").encode()
        out.headers.update(resp.headers)
        out.url = request.url or ""
        out.request = request
        out.encoding = "utf-8"
        return out

    def close(self) -> None:
        pass


@pytest.fixture(scope="module")
def world() -> Iterator[dict[str, Any]]:
    mp = pytest.MonkeyPatch()
    with mock_aws(config=MOTO_CONFIG):  # type: ignore[arg-type]
        lambda_router.install()
        moto_fixes.install()
        resources = provision(boto3.session.Session(), settings_overrides=FAST)
        for key, value in resources.env().items():
            mp.setenv(key, value)
        bootstrap.reset()
        with Client(app) as client:
            api = Api(client)
            t = api.tenant()
            ret = api.create_return(t)
            session = requests.Session()
            session.mount("http://boomerang.test", ChaliceAdapter(client))
            yield {"session": session, "tenant": t, "return": ret, "portal": ret["_token"]}
        bootstrap.reset()
    mp.undo()


def credentials(path: str, world: dict[str, Any]) -> dict[str, str]:
    t = world["tenant"]
    if path.startswith("/v1/admin/"):
        key = OPERATOR_KEY
    elif path.startswith("/v1/warehouse/"):
        key = t["wh_key"]
    elif path.startswith("/v1/portal/") and not path.endswith("/sessions"):
        key = world["portal"]
    elif path.startswith(("/v1/settings/", "/v1/orders", "/v1/returns")):
        key = t["m_key"]
    else:
        return {}
    return {"Authorization": f"Bearer {key}"}


@schema.parametrize()
@settings(max_examples=25, deadline=None, suppress_health_check=list(HealthCheck), derandomize=True)
def test_no_input_produces_a_server_error(case: schemathesis.Case, world: dict[str, Any]) -> None:
    # Given real credentials for the audience of the path (and sometimes the real return id)
    if case.path_parameters and "return_id" in case.path_parameters and hash(json.dumps(case.body, default=str)) % 2:
        case.path_parameters["return_id"] = world["return"]["id"]
    headers = credentials(case.path, world)
    # When schemathesis sends generated input, Then the answer is never a 5xx
    response = case.call(base_url="http://boomerang.test", session=world["session"], headers=headers)
    case.validate_response(response, checks=[not_a_server_error])
    # 405/415 come from API Gateway / Chalice's router before any view runs (documented in the OpenAPI file)
    if response.status_code >= 400 and response.status_code not in (405, 415):
        problem = json.loads(response.text)  # errors are problem+json with the status repeated in the body
        assert problem.get("status") == response.status_code and problem.get("title"), (
            case.method,
            case.path,
            response.status_code,
            response.text,
        )
