"""The AWS emulation of local mode: moto in server mode, in this process (local mode and e2e tests only).

In the same process as the API, so moto's Step Functions engine reaches our Lambda handlers through
`local.lambda_router` (moto runs no Lambda code without Docker).
"""

from __future__ import annotations

import errno
import json
import logging
import socket
import urllib.request
from typing import Any

#: What moto needs to really execute our ASL and to route Lambda invokes to the simple (patched) backend.
MOTO_CONFIG = {"stepfunctions": {"execute_state_machine": True}, "lambda": {"use_docker": False}}

#: moto's default EventBridge -> target template leaves out `account`, which Powertools' EventBridgeModel
#: requires (PLATFORM-NOTES). Same template with `account` added.
EVENT_TEMPLATE_WITH_ACCOUNT = (
    '{"id": "<id>", "time": <time>, "version": "0", "detail-type": "<detail-type>", "source": "<source>", '
    '"account": "<account>", "region": "<region>", "resources": <resources>, "detail": <detail>}'
)


class PortInUse(RuntimeError):
    pass


def ensure_port_free(host: str, port: int, what: str) -> None:
    """Fail early with a clear message (ThreadedMotoServer.start() would wait forever on a taken port)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((host, port))
        except OSError as exc:
            if exc.errno == errno.EADDRINUSE:
                raise PortInUse(f"port {port} ({what}) is already in use; pick another one") from None
            raise


def quiet_logs() -> None:
    """moto's werkzeug server logs every request (the pollers long-poll SQS all the time)."""
    for name in ("werkzeug", "moto", "botocore", "urllib3"):
        logging.getLogger(name).setLevel(logging.WARNING)


def patch_event_template() -> None:
    from moto.events.utils import EventTemplateParser

    EventTemplateParser.DEFAULT_EVENT_INPUT_TEMPLATE = EVENT_TEMPLATE_WITH_ACCOUNT


def start_moto(host: str, port: int) -> Any:
    """Start moto's server in a daemon thread of this process; returns the ThreadedMotoServer (call .stop())."""
    ensure_port_free(host, port, "AWS emulation")
    quiet_logs()
    from moto.server import ThreadedMotoServer

    server = ThreadedMotoServer(ip_address=host, port=port, verbose=False)
    server.start()
    configure(f"http://{host}:{port}")
    patch_event_template()
    return server


def configure(endpoint: str) -> None:
    """POST /moto-api/config: execute state machines, Lambda without Docker."""
    request = urllib.request.Request(  # noqa: S310 (a fixed http URL of our own server)
        f"{endpoint}/moto-api/config",
        data=json.dumps(MOTO_CONFIG).encode(),
        headers={"Content-Type": "application/json"},
        method="POST",
    )
    with urllib.request.urlopen(request, timeout=10) as resp:  # noqa: S310
        if resp.status not in (200, 201):
            raise RuntimeError(f"moto refused its configuration: HTTP {resp.status}")
