"""The local stack as a newcomer gets it (`python -m local`, a subprocess), driven over real HTTP.

One stack per module: the whole lifecycle with `requests`, a poison carrier message that must end in the
DLQ without blocking the queue, the printed curl walk-through run by bash, then a clean stop on SIGINT.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from email import policy
from email.parser import BytesParser
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
import requests

from local import banner
from local.seed import demo_orders
from tests.support.local_stack import STOP_TIMEOUT, Stack, free_port, running_stack

pytestmark = pytest.mark.e2e

ROOT = Path(__file__).resolve().parents[2]
LIFECYCLE = [
    "requested",
    "label_created",
    "in_transit",
    "delivered",
    "received",
    "inspected",
    "awaiting_feedback",
    "completed",
    "refunded",
]
POISON_EVENT_ID = "evt_e2e_poison"
#: Set by the whole lifecycle once it has run: the log scan (after the stack has stopped) needs its log lines.
LIFECYCLE_RAN: list[str] = []


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    with running_stack(tmp_path_factory.mktemp("local-state")) as running:
        yield running


@pytest.fixture(scope="module")
def poison(stack: Stack) -> str:
    """A correctly signed webhook the consumer cannot process (no `result`), queued with the lifecycle's events."""
    resp = stack.easypost({"id": POISON_EVENT_ID, "object": "Event", "description": "tracker.updated"})
    assert resp.status_code == 200, resp.text
    return POISON_EVENT_ID


def poll(read: Callable[[], dict[str, Any]], status: str, timeout: float = 30) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    while True:
        current = read()
        if current["status"] == status:
            return current
        assert time.monotonic() < deadline, f"still {current['status']!r}, expected {status!r}"
        time.sleep(0.2)


def tracker_event(event_id: str, tracking_code: str, status: str) -> dict[str, Any]:
    at = datetime.now(UTC).isoformat()  # microseconds: milestones sort by time
    return {
        "id": event_id,
        "object": "Event",
        "description": "tracker.updated",
        "result": {
            "object": "Tracker",
            "tracking_code": tracking_code,
            "status": status,
            "updated_at": at,
            "tracking_details": [{"status": status, "datetime": at, "message": "scan"}],
        },
    }


def test_credentials_describe_the_seeded_stack(stack: Stack) -> None:
    creds = stack.creds
    assert stack.call("GET", "/v1/health") == {"status": "ok"}
    assert creds["merchant"]["slug"] == "demo-fashion"
    assert {"order_number": "DEMO-1001", "email": "erika@example.com"} in creds["orders"]
    assert creds["operator_key"] and creds["easypost_webhook_secret"]
    assert urlsplit(creds["moto"]).port != urlsplit(creds["api"]).port
    # The operator key works, a wrong key does not
    stack.call("POST", "/v1/admin/warehouses", "wrong-key", {}, 401)
    stack.call("POST", "/v1/admin/warehouses", creds["operator_key"], {}, 422)


def test_serves_concurrent_requests_each_with_its_own_request(stack: Stack) -> None:
    """One thread per connection, and chalice's current_request kept per thread."""

    def open_session(order: dict[str, str]) -> tuple[str, str]:
        with requests.Session() as http:
            resp = http.post(f"{stack.api}/v1/portal/merchants/demo-fashion/sessions", json=order, timeout=30)
            assert resp.status_code == 201, resp.text
            headers = {"Authorization": f"Bearer {resp.json()['token']}"}
            seen = http.get(f"{stack.api}/v1/portal/order", headers=headers, timeout=30)
        assert seen.status_code == 200, seen.text
        return order["order_number"], seen.json()["order_number"]

    with ThreadPoolExecutor(max_workers=12) as pool:
        results = list(pool.map(open_session, stack.creds["orders"] * 2))
    assert len(results) == 2 * len(stack.creds["orders"])
    assert all(asked == got for asked, got in results), results


def test_whole_lifecycle_over_http(stack: Stack, poison: str) -> None:
    creds = stack.creds
    m_key, wh_key = creds["merchant"]["api_key"], creds["warehouse"]["api_key"]
    order = next(o for o in creds["orders"] if o["order_number"] == "DEMO-1002")

    # The customer opens a portal session and sees the order with each item's eligibility
    token = stack.call("POST", "/v1/portal/merchants/demo-fashion/sessions", None, order, 201)["token"]
    seen = stack.call("GET", "/v1/portal/order", token)
    eligibility = {i["line_item_id"]: (i["returnable"], i.get("not_returnable_reason")) for i in seen["items"]}
    assert eligibility == {"L1": (True, None), "L2": (True, None), "L3": (False, "final_sale")}

    # ... creates a return and gets a label: a PDF served by the AWS emulation through a presigned URL
    ret = stack.call(
        "POST",
        "/v1/portal/returns",
        token,
        {
            "items": [
                {"line_item_id": "L1", "quantity": 1, "reason": "too_large"},
                {"line_item_id": "L2", "quantity": 1, "reason": "damaged", "comment": "zip broken"},
            ]
        },
        201,
    )
    assert ret["status"] == "label_created"
    rid, tn, tracking_token = ret["id"], ret["tracking_number"], ret["tracking_token"]
    label_url = ret["label"]["url"]
    assert urlsplit(label_url).netloc == urlsplit(creds["moto"]).netloc
    label = requests.get(label_url, timeout=30)
    assert label.status_code == 200 and label.content.startswith(b"%PDF")

    def customer_view() -> dict[str, Any]:
        return dict(stack.call("GET", f"/v1/portal/returns/{rid}", token))

    def merchant_view() -> dict[str, Any]:
        return dict(stack.call("GET", f"/v1/returns/{rid}", m_key))

    # The carrier reports through EasyPost; a bad signature changes nothing
    forged = stack.easypost(tracker_event("evt_forged", tn, "delivered"), secret="not-the-secret")
    assert forged.status_code == 401
    assert stack.easypost(tracker_event(f"evt_{tn}_1", tn, "in_transit")).status_code == 200
    poll(customer_view, "in_transit")
    assert stack.easypost(tracker_event(f"evt_{tn}_2", tn, "delivered")).status_code == 200
    poll(customer_view, "delivered")

    # The warehouse scans the label's barcode and inspects: one item damaged
    assert stack.call("POST", "/v1/warehouse/scans", wh_key, {"barcode": tn})["status"] == "received"
    stack.call(
        "POST",
        f"/v1/warehouse/returns/{rid}/inspection",
        wh_key,
        {
            "items": [
                {"line_item_id": "L1", "received_quantity": 1, "checks": {"damaged": False}},
                {"line_item_id": "L2", "received_quantity": 1, "checks": {"damaged": True}, "notes": "zip broken"},
            ]
        },
        202,
    )

    # The state machine grades by the guideline and waits for the merchant
    waiting = poll(merchant_view, "awaiting_feedback")
    grades = {i["line_item_id"]: (i["grade"], i["disposition"]) for i in waiting["items"]}
    assert grades == {"L1": ("A", "restock"), "L2": ("B", "refurbish")}

    # The merchant approves: completed, and the automatic refund goes out
    stack.call("POST", f"/v1/returns/{rid}/feedback", m_key, {"decision": "approve"})
    done = poll(merchant_view, "refunded")
    assert done["refund"]["status"] == "succeeded"
    # 89.00 + 59.00 less the demo policy's 10% for grade B
    assert done["refund"]["amount"] == {"amount": "142.10", "currency": "EUR"}
    refunds = stack.call("GET", f"/v1/returns/{rid}/refunds", m_key)["items"]
    assert [r["status"] for r in refunds] == ["succeeded"]
    deductions = [d for line in refunds[0]["breakdown"]["lines"] for d in line["deductions"]]
    assert deductions == [{"reason": "grade B: 10%", "amount": "5.90"}]

    # Track & trace: public, every milestone in order, no personal data
    resp = stack.http.get(f"{stack.api}/v1/track/{tracking_token}", timeout=30)
    assert resp.status_code == 200
    tracked = resp.json()
    assert tracked["status"] == "refunded"
    assert [m["status"] for m in tracked["milestones"]] == LIFECYCLE
    assert order["email"] not in resp.text and "Mustermann" not in resp.text
    LIFECYCLE_RAN.append(rid)  # for test_no_personal_data_in_any_log_line, last in this module


def test_poison_message_ends_in_the_dlq(stack: Stack, poison: str) -> None:
    import boto3

    sqs = boto3.client(
        "sqs",
        endpoint_url=stack.creds["moto"],
        region_name="eu-central-1",
        aws_access_key_id="local",
        aws_secret_access_key="local",
    )
    dlq = sqs.get_queue_url(QueueName="boomerang-tracking-dlq")["QueueUrl"]
    deadline = time.monotonic() + 30
    while True:
        messages = sqs.receive_message(QueueUrl=dlq, MaxNumberOfMessages=10, WaitTimeSeconds=1).get("Messages", [])
        if any(poison in m["Body"] for m in messages):
            break
        assert time.monotonic() < deadline, "the poison message never reached the DLQ"


ADDRESS = {
    "name": "Lager",
    "street": "Weg",
    "house_number": "1",
    "postal_code": "20457",
    "city": "Hamburg",
    "country": "DE",
}


def fresh_tenant(stack: Stack, name: str, **merchant: Any) -> tuple[dict[str, Any], dict[str, Any], str]:
    """A warehouse and a merchant of their own (the demo tenant's orders stay for the walkthrough), one delivered
    order "<name>-1" from kim@example.com, and a portal session for it: (warehouse, merchant, portal token)."""
    op = stack.creds["operator_key"]
    wh = stack.call("POST", "/v1/admin/warehouses", op, {"name": f"{name} test", "address": ADDRESS}, 201)
    slug = f"{name.lower()}-{int(time.time() * 1000)}"
    body = {"name": f"{name} Shop", "slug": slug, "warehouse_id": wh["id"], **merchant}
    m = stack.call("POST", "/v1/admin/merchants", op, body, 201)
    order = {
        "order_number": f"{name}-1",
        "email": "kim@example.com",
        "currency": "EUR",
        "ordered_at": "2026-11-01T10:00:00Z",
        "delivered_at": datetime.now(UTC).isoformat(),
        "shipping_address": ADDRESS,
        "items": [{"line_item_id": "L1", "sku": "S", "name": "Shirt", "quantity": 1, "unit_price": "10.00"}],
    }
    stack.call("POST", "/v1/orders", m["api_key"], order, 201)
    session = {"order_number": f"{name}-1", "email": "kim@example.com"}
    token = stack.call("POST", f"/v1/portal/merchants/{slug}/sessions", None, session, 201)["token"]
    return wh, m, token


def test_a_subscribed_merchant_gets_the_event_signed_at_their_receiver(stack: Stack) -> None:
    # Given a merchant subscribed to return.requested with a receiver on this machine
    received: list[tuple[dict[str, str], bytes]] = []

    class Receiver(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            received.append((dict(self.headers), self.rfile.read(int(self.headers["Content-Length"]))))
            self.send_response(204)
            self.end_headers()

        def log_message(self, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Receiver)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        _, m, token = fresh_tenant(stack, "Hooks")
        secret = "hooks-secret-0123456789"
        url = f"http://127.0.0.1:{server.server_address[1]}/boomerang"
        body = {"url": url, "events": ["return.requested"], "secret": secret}
        sub = stack.call("POST", "/v1/subscriptions", m["api_key"], body, 201)
        # When the customer asks for a return
        lines = {"items": [{"line_item_id": "L1", "quantity": 1, "reason": "too_small"}]}
        ret = stack.call("POST", "/v1/portal/returns", token, lines, 201)
        # Then the receiver gets it through the outbox, the bus, the queue and the dispatcher, signed with the secret
        deadline = time.monotonic() + 30
        while not received:
            assert time.monotonic() < deadline, "no delivery reached the receiver"
            time.sleep(0.2)
        headers, raw = received[0]
        expected = "sha256=" + hmac.new(secret.encode(), raw, hashlib.sha256).hexdigest()
        assert headers["X-Boomerang-Signature"] == expected
        delivered = json.loads(raw)
        assert delivered["type"] == "return.requested" and delivered["data"]["return_id"] == ret["id"]
        # And the merchant's delivery log says delivered
        deliveries = stack.call("GET", f"/v1/subscriptions/{sub['id']}/deliveries", m["api_key"])["items"]
        assert [(d["event_id"], d["status"]) for d in deliveries] == [(delivered["id"], "delivered")]
        stack.call("DELETE", f"/v1/subscriptions/{sub['id']}", m["api_key"], None, 204)
    finally:
        server.shutdown()
        server.server_close()


def test_a_failed_refund_emails_the_merchant_into_the_outbox(stack: Stack) -> None:
    # Given a merchant whose refund webhook points at a port nobody listens on
    wh, m, token = fresh_tenant(stack, "Outbox", contact_email="finance@outbox.example")
    mk = m["api_key"]
    stack.call(
        "PUT",
        "/v1/settings/refunds",
        mk,
        {
            "target": "webhook",
            "auto_refund": False,
            "webhook_url": f"http://127.0.0.1:{free_port()}/refunds",
            "webhook_secret": "outbox-secret-0123456789",
        },
    )
    ret = stack.call(
        "POST",
        "/v1/portal/returns",
        token,
        {"items": [{"line_item_id": "L1", "quantity": 1, "reason": "too_small"}]},
        201,
    )
    stack.call("POST", "/v1/warehouse/scans", wh["api_key"], {"barcode": ret["tracking_number"]})
    stack.call(
        "POST",
        f"/v1/warehouse/returns/{ret['id']}/inspection",
        wh["api_key"],
        {"items": [{"line_item_id": "L1", "received_quantity": 1, "checks": {}}]},
        202,
    )
    poll(lambda: stack.call("GET", f"/v1/returns/{ret['id']}", mk), "completed")
    # When the merchant clicks refund and the target never answers
    refund = stack.call("POST", f"/v1/returns/{ret['id']}/refund", mk, {}, 202)
    poll(lambda: stack.call("GET", f"/v1/returns/{ret['id']}", mk)["refund"], "failed", timeout=60)
    # Then an email to the merchant's contact lands in the outbox as an .eml file
    outbox = Path(stack.creds["outbox"])
    deadline = time.monotonic() + 15
    while True:
        mails = [BytesParser(policy=policy.default).parsebytes(p.read_bytes()) for p in outbox.glob("*.eml")]
        mine = [msg for msg in mails if msg["To"] == "finance@outbox.example"]
        if mine:
            break
        assert time.monotonic() < deadline, "no email in the outbox"
        time.sleep(0.2)
    assert refund["refund_id"] in mine[0]["Subject"]
    assert "kim@example.com" not in mine[0].get_content()


@pytest.mark.skipif(
    not all(shutil.which(tool) for tool in ("bash", "curl", "openssl")), reason="needs bash, curl and openssl"
)
def test_printed_walkthrough_runs(stack: Stack) -> None:
    script = stack.state_dir / "walkthrough.sh"
    env = {**os.environ, "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}"}
    result = subprocess.run(
        ["bash", str(script)], cwd=stack.state_dir, env=env, capture_output=True, text=True, timeout=90, check=False
    )
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    for status in ("label_created", "in_transit", "delivered", "received", "awaiting_feedback", "refunded"):
        assert status in lines, result.stdout
    assert "%PDF" in result.stdout
    tracked = json.loads(lines[-1])
    assert [m["status"] for m in tracked["milestones"]] == LIFECYCLE


def test_refuses_a_taken_port_and_removes_stale_credentials(tmp_path: Path) -> None:
    stale = tmp_path / "credentials.json"
    stale.write_text("{}")
    env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = str(taken.getsockname()[1])
        result = subprocess.run(
            [
                sys.executable,
                "-m",
                "local",
                "--port",
                port,
                "--moto-port",
                str(free_port()),
                "--state-dir",
                str(tmp_path),
            ],
            cwd=ROOT,
            env=env,
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
    assert result.returncode == 1, result.stderr
    assert f"port {port} (API) is already in use" in result.stderr
    assert not stale.exists()


def test_stops_cleanly_on_sigint(stack: Stack) -> None:
    """Last in this module: stops the stack."""
    stack.proc.send_signal(signal.SIGINT)
    try:
        code = stack.proc.wait(STOP_TIMEOUT)
    except subprocess.TimeoutExpired:
        pytest.fail(f"the local stack did not stop within {STOP_TIMEOUT} s\n{stack.logs()}")
    assert code == 0, stack.logs()
    assert not (stack.state_dir / "credentials.json").exists()


# -- no personal data in logs, metrics or traces ---------------------------------------------------------------------


def _word(text: str) -> str:
    return rf"(?<!\w){re.escape(text)}(?!\w)"


def personal_data(customer: dict[str, Any]) -> dict[str, Callable[[str], bool]]:
    """What identifies a customer in a log line: the email (any case), the name (any case; the surname as a word),
    the street (as a word), and the postal code together with the city on one line."""
    a = customer["shipping_address"]
    email = re.compile(re.escape(customer["email"]), re.IGNORECASE)
    name = re.compile(re.escape(a["name"]), re.IGNORECASE)
    surname = re.compile(_word(a["name"].split()[-1]))
    street = re.compile(_word(a["street"]), re.IGNORECASE)
    postal_code, city = re.compile(_word(a["postal_code"])), re.compile(_word(a["city"]), re.IGNORECASE)
    return {
        f"{customer['order_number']}'s email": lambda line: bool(email.search(line)),
        f"{customer['order_number']}'s name": lambda line: bool(name.search(line) or surname.search(line)),
        f"{customer['order_number']}'s street": lambda line: bool(street.search(line)),
        f"{customer['order_number']}'s postal code and city": (
            lambda line: bool(postal_code.search(line) and city.search(line))
        ),
    }


def test_personal_data_is_found_by_the_scan() -> None:
    """The scan below would see each kind of personal data, in a log line as Powertools writes it."""
    (customer,) = [o for o in demo_orders(datetime.now(UTC)) if o["order_number"] == "DEMO-1002"]
    checks = personal_data(customer)
    leaks = {
        "email": json.dumps({"level": "INFO", "message": "session opened", "email": "MAX@Example.com"}),
        "name": json.dumps({"message": "label made", "to": "Mustermann"}),
        "street": json.dumps({"message": "label made", "street": "beispielstrasse"}),
        "postal code and city": json.dumps({"message": "x", "postal_code": "80331", "city": "Muenchen"}),
    }
    for kind, line in leaks.items():
        assert [k for k, found in checks.items() if found(line)] == [f"DEMO-1002's {kind}"], line
    clean = json.dumps({"message": "return created", "return_id": "ret_80331", "city_count": 1, "port": 10115})
    assert not [k for k, found in checks.items() if found(clean)]


def test_no_personal_data_in_any_log_line(stack: Stack) -> None:
    """Last in this module (the stack has stopped, its logs are complete): every line the local stack wrote while the
    lifecycle ran (API, functions, state machines, pollers, EMF metrics on stdout) at the deployed log level carries
    none of the demo customers' emails, names or addresses. The banner, which tells a developer the demo
    customers' credentials, is not a log line and is taken out first, exactly as printed."""
    if not LIFECYCLE_RAN:
        pytest.skip("the lifecycle did not run in this session (its log lines are what is scanned)")
    assert stack.proc.poll() is not None, "runs after test_stops_cleanly_on_sigint"
    out = (stack.state_dir / "stdout.log").read_text(errors="replace")
    err = (stack.state_dir / "stderr.log").read_text(errors="replace")
    printed = banner.render(
        stack.creds,
        str(stack.state_dir.resolve() / "credentials.json"),
        str(stack.state_dir.resolve() / "walkthrough.sh"),
    )
    assert out.count(printed) == 1, "the banner is printed once, as rendered"
    lines = out.replace(printed, "", 1).splitlines() + err.splitlines()
    assert any(LIFECYCLE_RAN[0] in line for line in lines), "the lifecycle's log lines are in the logs"
    checks: dict[str, Callable[[str], bool]] = {}
    for customer in demo_orders(datetime.now(UTC)):
        checks.update(personal_data(customer))
    checks["kim@example.com"] = lambda line: "kim@example.com" in line.lower()  # fresh_tenant's customer
    leaks = [f"{kind}: {line[:300]}" for line in lines for kind, found in checks.items() if found(line)]
    assert not leaks, f"{len(leaks)} log lines carry personal data:\n" + "\n".join(leaks[:20])
