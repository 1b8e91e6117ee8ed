"""Two aids for the security probes (tests/security), active only when their variables are set; local mode only.

- `LOCAL_CONNECT_AUDIT=<file>`: every outbound socket connection this process opens (the API, the Lambda handlers
  the router runs in threads, the pollers) is appended to the file as one JSON line `{"host": ..., "port": ...}`,
  through a `socket.connect` audit hook, whatever library opened it. The probes read it to prove that no request
  ever reached a forbidden address.
- `LOCAL_HOSTS_FILE=<file>`: host names listed in the file (JSON `{"name": ["ip", ...]}`) resolve to those addresses.
  The file is read at every lookup, so a probe can change a name's answer between two lookups (DNS rebinding) on a
  machine without a DNS server. Names not listed resolve as usual.
"""

from __future__ import annotations

import json
import os
import socket
import sys
import threading
from pathlib import Path
from typing import Any

_installed = False
_real_getaddrinfo = socket.getaddrinfo


def install() -> None:
    global _installed
    if _installed:
        return
    _installed = True
    audit = os.environ.get("LOCAL_CONNECT_AUDIT")
    if audit:
        _audit_connections(Path(audit))
    hosts = os.environ.get("LOCAL_HOSTS_FILE")
    if hosts:
        _resolve_from(Path(hosts))


def _audit_connections(path: Path) -> None:
    lock = threading.Lock()
    out = path.open("a", buffering=1, encoding="utf-8")

    def hook(event: str, args: tuple[Any, ...]) -> None:
        if event != "socket.connect":
            return
        sock, address = args
        if getattr(sock, "family", None) not in (socket.AF_INET, socket.AF_INET6) or not isinstance(address, tuple):
            return
        line = json.dumps({"host": str(address[0]), "port": int(address[1])}) + "\n"
        with lock:
            out.write(line)

    sys.addaudithook(hook)


def _resolve_from(path: Path) -> None:
    def getaddrinfo(host: Any, port: Any, *args: Any, **kwargs: Any) -> Any:
        name = host.decode() if isinstance(host, bytes) else host
        try:
            table = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            table = {}
        addresses = table.get(str(name).lower().rstrip(".")) if name else None
        if not addresses:
            return _real_getaddrinfo(host, port, *args, **kwargs)
        answers: list[Any] = []
        for address in addresses:
            answers += _real_getaddrinfo(address, port, *args, **kwargs)
        return answers

    socket.getaddrinfo = getaddrinfo  # type: ignore[assignment]
