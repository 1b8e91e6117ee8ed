"""The local stack as a newcomer gets it (`python -m local` in a subprocess), for the suites that drive it over HTTP
(tests/e2e, tests/security)."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import requests

from chalicelib.domain.signatures import easypost_signature

ROOT = Path(__file__).resolve().parents[2]
READY_TIMEOUT = 90
STOP_TIMEOUT = 20


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass
class Stack:
    proc: subprocess.Popen[bytes]
    state_dir: Path
    creds: dict[str, Any]
    http: requests.Session

    @property
    def api(self) -> str:
        return str(self.creds["api"])

    def logs(self) -> str:
        out = []
        for name in ("stdout.log", "stderr.log"):
            path = self.state_dir / name
            if path.exists():
                out.append(f"--- {name} (tail) ---\n" + path.read_text(errors="replace")[-4000:])
        return "\n".join(out)

    def call(
        self,
        method: str,
        path: str,
        key: str | None = None,
        body: Any = None,
        expect: int = 200,
        **kwargs: Any,
    ) -> Any:
        headers = {"Authorization": f"Bearer {key}"} if key else {}
        resp = self.http.request(method, f"{self.api}{path}", json=body, headers=headers, timeout=30, **kwargs)
        assert resp.status_code == expect, (method, path, resp.status_code, resp.text[:500])
        return resp.json() if resp.content else None

    def easypost(self, body: dict[str, Any], secret: str | None = None) -> requests.Response:
        raw = json.dumps(body, separators=(",", ":")).encode()
        signature = easypost_signature(secret or self.creds["easypost_webhook_secret"], raw)
        return self.http.post(
            f"{self.api}/v1/webhooks/easypost",
            data=raw,
            headers={"Content-Type": "application/json", "X-Hmac-Signature": signature},
            timeout=30,
        )


def _start(state_dir: Path, extra_env: dict[str, str]) -> tuple[subprocess.Popen[bytes], dict[str, Any]]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AWS_", "BOOMERANG_", "PORTAL_", "EASYPOST_"))}
    env.update(
        {
            "LOCAL_STATE_DIR": str(state_dir),
            "PYTHONUNBUFFERED": "1",
            # a refund target that never answers fails within seconds (6 attempts, 1 s apart)
            "REFUND_RETRY_BASE_SECONDS": "1",
            "REFUND_RETRY_MAX_WAIT_SECONDS": "1",
            **extra_env,
        }
    )
    api_port, moto_port = free_port(), free_port()
    while moto_port == api_port:
        moto_port = free_port()
    with (state_dir / "stdout.log").open("wb") as out, (state_dir / "stderr.log").open("wb") as err:
        proc = subprocess.Popen(
            [sys.executable, "-m", "local", "--port", str(api_port), "--moto-port", str(moto_port)],
            cwd=ROOT,
            env=env,
            stdout=out,
            stderr=err,
        )
    credentials = state_dir / "credentials.json"
    deadline = time.monotonic() + READY_TIMEOUT
    while not credentials.exists():
        if proc.poll() is not None or time.monotonic() > deadline:
            proc.kill()
            logs = (state_dir / "stderr.log").read_text(errors="replace")[-4000:]
            pytest.fail(f"the local stack did not become ready (exit {proc.returncode}):\n{logs}")
        time.sleep(0.2)
    return proc, json.loads(credentials.read_text())


@contextmanager
def running_stack(state_dir: Path, extra_env: dict[str, str] | None = None) -> Iterator[Stack]:
    """`python -m local` on free ports with its state in `state_dir`, stopped with SIGINT afterwards."""
    started = time.monotonic()
    proc, creds = _start(state_dir, extra_env or {})
    sys.stderr.write(f"\nlocal stack ready in {time.monotonic() - started:.1f} s\n")
    with requests.Session() as http:
        try:
            yield Stack(proc, state_dir, creds, http)
        finally:
            if proc.poll() is None:
                proc.send_signal(signal.SIGINT)
                try:
                    proc.wait(STOP_TIMEOUT)
                except subprocess.TimeoutExpired:
                    proc.kill()
                    proc.wait()
