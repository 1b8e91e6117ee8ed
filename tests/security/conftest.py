"""The security probes run against the local stack as `make run` starts it (a subprocess on free ports), watched from
outside: every outbound connection the stack opens is in its connection audit (local/netwatch.py), host names the
probes invent resolve through a table they can change between two lookups, and the emulated AWS account is read
directly to prove that a refused request changed nothing."""

from __future__ import annotations

import ipaddress
import json
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import boto3
import pytest

from tests.support.local_stack import Stack, running_stack

ADDRESS = {
    "name": "Probe Warehouse",
    "street": "Lagerstr.",
    "house_number": "1",
    "postal_code": "10115",
    "city": "Berlin",
    "country": "DE",
}


@dataclass
class Probe:
    """The running stack plus what the probes watch it through."""

    stack: Stack
    audit: Path
    hosts: Path

    def connections(self) -> list[tuple[str, int]]:
        if not self.audit.exists():
            return []
        lines = self.audit.read_text(encoding="utf-8").splitlines()
        return [(entry["host"], entry["port"]) for entry in map(json.loads, lines)]

    def resolve(self, table: dict[str, list[str]]) -> None:
        tmp = self.hosts.with_suffix(".tmp")
        tmp.write_text(json.dumps(table), encoding="utf-8")
        tmp.replace(self.hosts)

    @property
    def op(self) -> str:
        return str(self.stack.creds["operator_key"])

    def call(self, method: str, path: str, key: str | None = None, body: Any = None, **kwargs: Any) -> Any:
        headers = {"Authorization": f"Bearer {key}"} if key else {}
        headers.update(kwargs.pop("headers", {}))
        return self.stack.http.request(
            method, f"{self.stack.api}{path}", json=body, headers=headers, timeout=30, **kwargs
        )

    def ok(self, method: str, path: str, key: str | None, body: Any = None, expect: int = 200) -> Any:
        resp = self.call(method, path, key, body)
        assert resp.status_code == expect, (method, path, resp.status_code, resp.text[:500])
        return resp.json() if resp.content else None

    def tenant(self, name: str) -> dict[str, Any]:
        """A warehouse, a merchant and one delivered order `<name>-1` of kim@example.com."""
        wh = self.ok("POST", "/v1/admin/warehouses", self.op, {"name": f"{name} wh", "address": ADDRESS}, 201)
        slug = f"{name.lower()}-{uuid.uuid4().hex[:8]}"
        body = {"name": f"{name} Shop", "slug": slug, "warehouse_id": wh["id"], "contact_email": "ops@probe.example"}
        m = self.ok("POST", "/v1/admin/merchants", self.op, body, 201)
        order = {
            "order_number": f"{name}-1",
            "email": "kim@example.com",
            "currency": "EUR",
            "ordered_at": "2026-11-01T10:00:00Z",
            "delivered_at": datetime.now(UTC).isoformat(),
            "shipping_address": ADDRESS,
            "external_id": "4242",  # the shop's order id (a refund into the shop names it)
            "items": [
                {
                    "line_item_id": "L1",
                    "sku": "S-1",
                    "name": "Shirt",
                    "quantity": 3,
                    "unit_price": "10.00",
                    "external_id": "31",
                }
            ],
        }
        self.ok("POST", "/v1/orders", m["api_key"], order, 201)
        return {
            "warehouse": wh,
            "merchant": m,
            "m_key": m["api_key"],
            "wh_key": wh["api_key"],
            "slug": slug,
            "order": order,
        }

    # ----- the emulated account, read directly --------------------------------------------------------------
    def _client(self, service: str) -> Any:
        return boto3.client(
            service,
            endpoint_url=self.stack.creds["moto"],
            region_name="eu-central-1",
            aws_access_key_id="testing",
            aws_secret_access_key="testing",
        )

    def state(self) -> dict[str, Any]:
        """Every item of every table, every object key and every parameter: what a refused request must not change.
        Rate-limit counters are left out (a refused guess is allowed to count), and so is when a key was last used."""
        ddb = self._client("dynamodb")
        items: list[str] = []
        for table in ddb.list_tables()["TableNames"]:
            for page in ddb.get_paginator("scan").paginate(TableName=table):
                for item in page["Items"]:
                    if "RATELIMIT" in item.get("pk", {}).get("S", "").upper():
                        continue
                    item.pop("last_used_at", None)  # an API key's use is noted whatever the request's outcome
                    items.append(f"{table}:{json.dumps(item, sort_keys=True)}")
        s3 = self._client("s3")
        keys = [
            f"{b['Name']}/{o['Key']}"
            for b in s3.list_buckets()["Buckets"]
            for page in s3.get_paginator("list_objects_v2").paginate(Bucket=b["Name"])
            for o in page.get("Contents", [])
        ]
        ssm = self._client("ssm")
        params = [
            f"{p['Name']}={p['Version']}"
            for page in ssm.get_paginator("describe_parameters").paginate()
            for p in page["Parameters"]
        ]
        return {"items": sorted(items), "objects": sorted(keys), "parameters": sorted(params)}

    def settled(self, quiet: float = 0.6, timeout: float = 30) -> dict[str, Any]:
        """`state()` once the stack's background work (outbox, notifications, workflows) has left it unchanged for
        `quiet` seconds."""
        deadline = time.monotonic() + timeout
        current, since = self.state(), time.monotonic()
        while time.monotonic() - since < quiet and time.monotonic() < deadline:
            time.sleep(0.2)
            again = self.state()
            if again != current:
                current, since = again, time.monotonic()
        return current

    def changes(self, before: dict[str, Any]) -> list[str]:
        """What changed in the account since `before` (a `state()`): added and removed entries, readable."""
        after = self.state()
        out: list[str] = []
        for kind, entries in before.items():
            old, new = set(entries), set(after[kind])
            out += [f"+ {kind}: {x[:300]}" for x in sorted(new - old)]
            out += [f"- {kind}: {x[:300]}" for x in sorted(old - new)]
        return out


@pytest.fixture(scope="module")
def probe(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Probe]:
    state_dir = tmp_path_factory.mktemp("probe-stack")
    audit, hosts = state_dir / "connections.jsonl", state_dir / "hosts.json"
    hosts.write_text("{}", encoding="utf-8")
    env = {"LOCAL_CONNECT_AUDIT": str(audit), "LOCAL_HOSTS_FILE": str(hosts)}
    with running_stack(state_dir, env) as stack:
        yield Probe(stack, audit, hosts)


def forbidden(host: str, port: int, allowed_ports: set[int]) -> bool:
    """A connection the stack must never open: anything but a public address or one of this machine's known
    listeners on exactly 127.0.0.1."""
    ip = ipaddress.ip_address(host.split("%", 1)[0])
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped
    if str(ip) == "127.0.0.1":
        return port not in allowed_ports
    return not ip.is_global


#: Ports of every receiver the probes started in this process: the stack may connect to these (and only these,
#: its API and its AWS emulation) on 127.0.0.1.
RECEIVER_PORTS: set[int] = set()


@dataclass
class Receiver:
    """An HTTP server on 127.0.0.1 answering every request with `answer(handler)` and remembering the paths hit."""

    answer: Callable[[BaseHTTPRequestHandler], None]
    hits: list[str] = field(default_factory=list)
    server: ThreadingHTTPServer | None = None

    @property
    def port(self) -> int:
        assert self.server is not None
        return int(self.server.server_address[1])

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def wait_for_hits(self, count: int = 1, timeout: float = 30) -> None:
        deadline = time.monotonic() + timeout
        while len(self.hits) < count:
            assert time.monotonic() < deadline, f"{len(self.hits)} requests reached the receiver, expected {count}"
            time.sleep(0.1)


@pytest.fixture
def receiver() -> Iterator[Callable[[Callable[[BaseHTTPRequestHandler], None]], Receiver]]:
    started: list[ThreadingHTTPServer] = []

    def start(answer: Callable[[BaseHTTPRequestHandler], None]) -> Receiver:
        rec = Receiver(answer)

        class Handler(BaseHTTPRequestHandler):
            def _any(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                if length:
                    self.rfile.read(length)
                rec.hits.append(self.path)
                answer(self)

            do_GET = do_POST = do_PUT = _any  # noqa: N815

            def log_message(self, *args: Any) -> None:
                pass

        server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        threading.Thread(target=server.serve_forever, daemon=True).start()
        rec.server = server
        RECEIVER_PORTS.add(rec.port)
        started.append(server)
        return rec

    yield start
    for server in started:
        server.shutdown()
        server.server_close()
