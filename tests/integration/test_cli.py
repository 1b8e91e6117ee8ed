"""The command line (infrastructure/cli.py) against the API in-process: its requests go through a transport that
hands them to the Chalice test client, so the real argument parsing, paging and output run."""

from __future__ import annotations

import io
import json
from collections.abc import Iterator
from typing import Any
from urllib.parse import urlsplit

import pytest
import requests
from chalice.test import Client
from requests.adapters import BaseAdapter
from requests.structures import CaseInsensitiveDict

from app import app
from infrastructure import cli
from tests.support import OPERATOR_KEY, Api

API = "http://boomerang.test"


class ChaliceTransport(BaseAdapter):
    def __init__(self, client: Client) -> None:
        super().__init__()
        self.client = client

    def send(self, request: requests.PreparedRequest, **kwargs: Any) -> requests.Response:  # type: ignore[override]
        url = urlsplit(request.url or "")
        path = url.path + (f"?{url.query}" if url.query else "")
        body = request.body.encode() if isinstance(request.body, str) else (request.body or b"")
        answer = self.client.http.request(request.method or "GET", path, headers=dict(request.headers), body=body)
        resp = requests.Response()
        resp.status_code = answer.status_code
        resp._content = answer.body
        resp.headers = CaseInsensitiveDict(answer.headers)
        resp.url = request.url or ""
        resp.request = request
        return resp

    def close(self) -> None:
        pass


@pytest.fixture
def env(aws) -> Iterator[tuple[Api, requests.Session]]:
    with Client(app) as client:
        session = requests.Session()
        session.mount(API, ChaliceTransport(client))
        yield Api(client), session


def run(session: requests.Session, key: str, *argv: str) -> tuple[int, str]:
    out = io.StringIO()
    code = cli.main(["--api", API, "--key", key, *argv], session=session, out=out)
    return code, out.getvalue()


def test_list_show_and_attention(env: tuple[Api, requests.Session]) -> None:
    api, session = env
    t = api.tenant()
    first = api.create_return(t, [{"line_item_id": "L1", "quantity": 1, "reason": "too_small"}])
    api.create_return(t, [{"line_item_id": "L2", "quantity": 1, "reason": "too_large"}])
    code, text = run(session, t["m_key"], "returns", "list", "--reason", "too_small", "--json")
    assert code == 0 and [r["id"] for r in json.loads(text)] == [first["id"]]
    code, text = run(session, t["m_key"], "returns", "list")
    assert (
        code == 0
        and first["id"] in text
        and text.splitlines()[0].split() == ["id", "order", "status", "created", "items", "refund"]
    )
    assert len(text.splitlines()) == 4  # header, rule, two returns
    code, text = run(session, t["m_key"], "returns", "show", first["id"])
    assert code == 0 and "SHIRT-M" in text and "return.label_created" in text
    code, text = run(session, t["m_key"], "attention")
    assert code == 0 and "(none)" in text
    # a parcel the warehouse asks the merchant to identify is listed with its id
    scan = api.call("POST", "/v1/warehouse/scans", t["wh_key"], {"barcode": "SMUDGED-1"})
    parcel_id = json.loads(scan.body)["unidentified_parcel_id"]
    body = {"merchant_id": t["merchant"]["id"]}
    api.ok("POST", f"/v1/warehouse/unidentified-parcels/{parcel_id}/assign", t["wh_key"], body)
    code, text = run(session, t["m_key"], "attention")
    assert code == 0 and parcel_id in text and "unidentified_parcel" in text


def test_key_rotation_from_the_command_line(env: tuple[Api, requests.Session]) -> None:
    api, session = env
    t = api.tenant()
    mid = t["merchant"]["id"]
    code, text = run(session, OPERATOR_KEY, "keys", "add", mid)
    assert code == 0
    new_key = text.split("api key ")[1].split()[0]
    assert api.call("GET", "/v1/returns", new_key).status_code == 200
    code, text = run(session, OPERATOR_KEY, "keys", "revoke", mid, t["merchant"]["key_id"])
    assert code == 0 and "revoked" in text
    assert api.call("GET", "/v1/returns", t["m_key"]).status_code == 401


def test_problems_are_printed_and_exit_1(env: tuple[Api, requests.Session], capsys: pytest.CaptureFixture[str]) -> None:
    api, session = env
    t = api.tenant()
    code, _ = run(session, t["m_key"], "returns", "list", "--grade", "D")
    assert code == 1
    assert "grade" in capsys.readouterr().err
    code, _ = run(session, t["m_key"], "returns", "show", "ret_nope")
    assert code == 1
    assert "not found" in capsys.readouterr().err.lower()
