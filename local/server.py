"""Serve the Chalice app over HTTP in this process: chalice's own local gateway, one thread per connection.

Differences from `chalice local`: the event's `requestContext.identity.sourceIp` is the real client address
(chalice hard-codes 127.0.0.1; the portal rate limit counts per address), and the request log names
method, route and status only (no query strings, no tracking tokens).
"""

from __future__ import annotations

import re
import sys
import threading
from pathlib import Path
from typing import Any

from chalice.local import (
    ChaliceRequestHandler,
    CustomLocalChalice,
    LocalChalice,
    LocalDevServer,
    LocalGateway,
    ThreadedHTTPServer,
)

ROOT = Path(__file__).resolve().parent.parent
_SECRET_PATH_PARTS = re.compile(r"(/v1/track/)[^/?\s]+")


class RequestHandler(ChaliceRequestHandler):
    def __init__(
        self, request: Any, client_address: tuple[str, int], server: Any, app_object: Any, config: Any
    ) -> None:
        self.local_gateway = LocalGateway(app_object, config)
        # An instance attribute shadows chalice's class-level constant.
        self.local_gateway.event_converter.LOCAL_SOURCE_IP = client_address[0]  # type: ignore[misc]
        # Skip ChaliceRequestHandler.__init__ (it would build a second gateway); the base class handles the request.
        super(ChaliceRequestHandler, self).__init__(request, client_address, server)

    def log_request(self, code: int | str = "-", size: int | str = "-") -> None:
        path = _SECRET_PATH_PARTS.sub(r"\1<token>", self.path.split("?", 1)[0])
        sys.stderr.write(f"api  {self.command} {path} -> {code}\n")

    def log_message(self, format: str, *args: Any) -> None:
        sys.stderr.write("api  " + (format % args) + "\n")


class Server(ThreadedHTTPServer):
    """Chalice's threaded server with a listen backlog for bursts: socketserver's default of 5 resets connections
    when a few dozen clients connect at once (seen with 25 parallel portal requests)."""

    request_queue_size = 128
    daemon_threads = True


class ApiServer:
    """The API on host:port in a daemon thread. `start()` binds (raises OSError when the port is taken)."""

    def __init__(self, host: str, port: int) -> None:
        self.host = host
        self.port = port
        self._server: Any = None
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        from chalice.config import Config

        from app import app

        config = Config.create(chalice_stage="dev", app_name="boomerang", project_dir=str(ROOT), chalice_app=app)
        if not isinstance(app, LocalChalice):
            # What chalice.local.create_local_server does: current_request becomes thread-local, since
            # the server runs one thread per connection.
            CustomLocalChalice.__bases__ = (LocalChalice, app.__class__)
            app.__class__ = CustomLocalChalice
        self._server = LocalDevServer(
            app, config, self.host, self.port, handler_cls=RequestHandler, server_cls=Server
        ).server
        self._thread = threading.Thread(target=self._server.serve_forever, name="api-server", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
        if self._thread is not None:
            self._thread.join(timeout=5)
