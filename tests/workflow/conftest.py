from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest
from chalice.test import Client

from app import app
from tests.support import Api
from tests.support.shop_matrix import Shop, make_shop


@pytest.fixture(autouse=True)
def local_receivers(monkeypatch: pytest.MonkeyPatch) -> None:
    """Local mode (as `make run`): the receivers below listen on http://127.0.0.1:<port>, the one loopback form the
    outbound URL policy accepts there (chalicelib/domain/urls.py). Autouse, so it is set before `aws` reads the
    settings."""
    monkeypatch.setenv("WEBHOOKS_ALLOW_LOOPBACK", "true")


@pytest.fixture
def api(aws) -> Iterator[Api]:
    with Client(app) as client:
        yield Api(client)


class RefundTarget:
    """A real HTTP server on loopback playing the merchant's refund webhook; answers from a script."""

    def __init__(self) -> None:
        self.requests: list[dict[str, Any]] = []  # refunds
        self.restocks: list[dict[str, Any]] = []
        self.script: list[int] = []
        self.default = 200
        self.lock = threading.Lock()
        target = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers["Content-Length"]))
                with target.lock:
                    if json.loads(body).get("type") == "restock":
                        # restock syncs (to the restock webhook) answer 2xx and are kept apart
                        target.restocks.append({"headers": dict(self.headers), "body": body})
                        status = 200
                    else:
                        target.requests.append({"headers": dict(self.headers), "body": body})
                        status = target.script.pop(0) if target.script else target.default
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.end_headers()
                self.wfile.write(json.dumps({"ok": status < 300}).encode())

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/refunds"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def refund_target() -> Iterator[RefundTarget]:
    target = RefundTarget()
    yield target
    target.close()


@pytest.fixture(params=["woocommerce", "shopify"])
def shop(request: pytest.FixtureRequest, aws: Any) -> Shop:
    """The merchant's shop (tests/support/shop_matrix.py), mounted after the `aws` fixture's `bootstrap.reset()`,
    which would forget it."""
    return make_shop(request.param)
