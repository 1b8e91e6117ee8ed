"""The real carrier adapters (DHL Parcel DE Returns, EasyPost, Sendcloud) against recorded HTTP.

Every recorded answer below follows a shape the vendor publishes; the comment above each fixture names it. No test
touches the network: `responses` answers, and a request nobody recorded fails the test.
"""

from __future__ import annotations

import base64
import io
import json
import uuid
from collections.abc import Iterator
from dataclasses import replace
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any
from urllib.parse import parse_qs, urlsplit

import boto3
import pypdfium2 as pdfium
import pytest
import requests
import responses
import segno
import zxingcpp
from moto import mock_aws
from responses import matchers

from chalicelib.adapters import aws_clients
from chalicelib.adapters.carriers import dhl, easypost, sendcloud
from chalicelib.adapters.carriers.base import CarrierError, Label, LabelRequest, TrackingUpdate
from chalicelib.adapters.carriers.dhl import DhlReturnsCarrier
from chalicelib.adapters.carriers.easypost import EasyPostCarrier
from chalicelib.adapters.carriers.http import TIMEOUT, as_pdf
from chalicelib.adapters.carriers.registry import build_carriers
from chalicelib.adapters.carriers.sandbox import SandboxCarrier, new_tracking_number
from chalicelib.adapters.carriers.sendcloud import SendcloudCarrier
from chalicelib.adapters.secrets import SsmSecrets
from chalicelib.domain.addresses import Address
from chalicelib.domain.customs import CustomsDeclaration, CustomsLine
from chalicelib.domain.tracking import CarrierStatus

DHL_BASE = dhl.SANDBOX_BASE_URL
DHL_ORDERS = f"{DHL_BASE}/orders"
EP = easypost.BASE_URL
SC = sendcloud.BASE_URL

# Credential values distinctive enough to be found in any message that leaks them.
DHL_API_KEY = "dhlkey-7Q2mVx9LpR4s"
DHL_USER = "retoure-user-83kd"
DHL_PASSWORD = "pw-Zk29!xQ7vB"
DHL_TRACKING_KEY = "trackkey-Hh72Lw0p"
EP_API_KEY = "EZTK-test-4f9c2a8b7e1d"
SC_PUBLIC = "sc-public-9a8b7c6d"
SC_SECRET = "sc-secret-1f2e3d4c5b"
SECRETS = (DHL_API_KEY, DHL_USER, DHL_PASSWORD, DHL_TRACKING_KEY, EP_API_KEY, SC_PUBLIC, SC_SECRET)


class FakeCredentials:
    """A CredentialSource over a dict; it records every lookup and, like a bare store, has no fallback itself."""

    def __init__(self, values: dict[tuple[str | None, str, str], str] | None = None) -> None:
        self.values = dict(values or {})
        self.lookups: list[tuple[str | None, str, str]] = []

    def carrier_credential(self, account: str | None, carrier: str, key: str) -> str | None:
        self.lookups.append((account, carrier, key))
        return self.values.get((account, carrier, key))


def default_credentials() -> FakeCredentials:
    return FakeCredentials(
        {
            (None, "dhl_de", "api_key"): DHL_API_KEY,
            (None, "dhl_de", "username"): DHL_USER,
            (None, "dhl_de", "password"): DHL_PASSWORD,
            (None, "easypost", "api_key"): EP_API_KEY,
            (None, "sendcloud", "public_key"): SC_PUBLIC,
            (None, "sendcloud", "secret_key"): SC_SECRET,
            (None, "sendcloud", "shipping_option_code"): "dhl_de:return/dropoff",
            (None, "sendcloud", "contract"): "4711",
        }
    )


@pytest.fixture
def rsps() -> Iterator[responses.RequestsMock]:
    with responses.RequestsMock(assert_all_requests_are_fired=True) as mock:
        yield mock


@pytest.fixture
def creds() -> FakeCredentials:
    return default_credentials()


# ----- requests and documents ----------------------------------------------------------------------------------
CUSTOMER_DE = Address("Jana Novak", "Kurfürstendamm", "195a", "10707", "Berlin", "DE")
CUSTOMER_GB = Address("Oliver Smith", "Baker Street", "221B", "NW1 6XE", "London", "GB")
WAREHOUSE = Address("Boomerang Returns Centre", "Industriestraße", "12", "47809", "Krefeld", "DE")


def a_request(
    *, sender: Address = CUSTOMER_DE, method: str = "label", account: str | None = None, customs: bool = False
) -> LabelRequest:
    suffix = uuid.uuid4().hex[:10].upper()
    request = LabelRequest(
        return_id=f"ret_{suffix}",
        order_number=f"ORD-{suffix}",
        merchant_name="Fjällräven Outlet",
        sender=sender,
        recipient=WAREHOUSE,
        method=method,
        weight_grams=1650,
        account=account,
    )
    return replace(request, customs=a_declaration(request)) if customs else request


def a_declaration(request: LabelRequest) -> CustomsDeclaration:
    return CustomsDeclaration(
        return_id=request.return_id,
        reference=request.order_number,
        currency="GBP",
        sender=request.sender,
        recipient=request.recipient,
        lines=(
            CustomsLine("TEE-1", "Cotton T-shirt", 2, "61091000", "CN", 400, Decimal("39.90")),
            CustomsLine("JKT-9", "Rain jacket", 1, "", "", 900, Decimal("120.00")),
        ),
    )


def a_pdf(text: str = "label") -> bytes:
    from fpdf import FPDF

    pdf = FPDF(unit="mm", format=(105, 148))
    pdf.add_page()
    pdf.set_font("Helvetica", size=12)
    pdf.cell(50, 10, text)
    return bytes(pdf.output())


def a_png_qr(payload: str) -> bytes:
    out = io.BytesIO()
    segno.make(payload, error="m").save(out, kind="png", scale=8, border=4)
    return out.getvalue()


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


def basic(user: str, password: str) -> str:
    return "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()


def sent_json(call: Any) -> Any:
    return json.loads(call.request.body)


def assert_no_secret(text: str) -> None:
    for secret in SECRETS:
        assert secret not in text


# ===== DHL Parcel DE Returns ===================================================================================
def dhl_confirmation(*, number: str, label: bytes | None = None, qr: bytes | None = None) -> dict[str, Any]:
    # Shape: DHL Parcel DE Returns API v1 (pp-parcel-returns.yaml 1.0.9), POST /orders -> 201 ReturnOrderConfirmation
    # {sstatus, shipmentNo, internationalShipmentNo, label.b64, qrLabel.b64, qrLink, routingCode}.
    body: dict[str, Any] = {
        "sstatus": {"title": "Created", "status": 201, "detail": "Created"},
        "shipmentNo": number,
        "internationalShipmentNo": f"CN{number[-9:]}DE",
        "routingCode": "40327653113+99000933090010",
    }
    if label is not None:
        body["label"] = {"b64": b64(label)}
    if qr is not None:
        body["qrLabel"] = {"b64": b64(qr)}
        body["qrLink"] = f"https://www.dhl.de/retoure/qr?c={number}"
    return body


def problem(status: int, title: str, detail: str) -> dict[str, Any]:
    # Shape: RFC 7807 JSONStatus of the returns and tracking APIs: {title, status, detail, type?, instance?}.
    return {"title": title, "status": status, "detail": detail, "type": "https://api.dhl.com/parcel/de/e0001.html"}


def dhl_carrier(creds: FakeCredentials, *, sandbox: bool = True) -> DhlReturnsCarrier:
    return DhlReturnsCarrier(creds, requests.Session(), sandbox=sandbox)


def test_dhl_domestic_request_follows_the_return_order_shape(
    rsps: responses.RequestsMock, creds: FakeCredentials
) -> None:
    # Given a German customer returning to a German warehouse
    request = a_request()
    rsps.add(
        responses.POST,
        DHL_ORDERS,
        match=[
            matchers.query_param_matcher({"labelType": "SHIPMENT_LABEL"}),
            matchers.header_matcher({"dhl-api-key": DHL_API_KEY, "Authorization": basic(DHL_USER, DHL_PASSWORD)}),
        ],
        json=dhl_confirmation(number="999990001234", label=a_pdf()),
        status=201,
    )

    # When the label is created
    dhl_carrier(creds).create_label(request)

    # Then the body is the documented ReturnOrder, field by field, and the call had explicit timeouts
    call = rsps.calls[0]
    assert sent_json(call) == {
        "receiverId": "deu",
        "customerReference": request.order_number,
        "shipmentReference": request.return_id,
        "shipper": {
            "name1": "Jana Novak",
            "addressStreet": "Kurfürstendamm",
            "addressHouse": "195a",
            "postalCode": "10707",
            "city": "Berlin",
        },
        "itemWeight": {"uom": "g", "value": 1650},
    }
    assert call.request.req_kwargs["timeout"] == TIMEOUT == (3.0, 10.0)
    assert call.request.headers["Content-Type"] == "application/json"


def test_dhl_sender_outside_the_eu_sends_the_customs_items(
    rsps: responses.RequestsMock, creds: FakeCredentials
) -> None:
    # Given a British customer whose return needs a CN23
    request = a_request(sender=CUSTOMER_GB, customs=True)
    rsps.add(responses.POST, DHL_ORDERS, json=dhl_confirmation(number="999990005678", label=a_pdf()), status=201)

    # When the label is created
    dhl_carrier(creds).create_label(request)

    # Then the receiver is DHL's one for British senders and the customs lines follow the Commodity shape
    body = sent_json(rsps.calls[0])
    assert body["receiverId"] == "gbr"
    assert body["shipper"] == {
        "name1": "Oliver Smith",
        "addressStreet": "Baker Street",
        "addressHouse": "221B",
        "postalCode": "NW1 6XE",
        "city": "London",
    }
    assert body["itemWeight"] == {"uom": "g", "value": 1650}
    assert body["itemValue"] == {"currency": "GBP", "value": 159.9}
    assert body["customsDetails"] == {
        "items": [
            {
                "itemDescription": "Cotton T-shirt",
                "packagedQuantity": 2,
                "itemWeight": {"uom": "g", "value": 400},
                "itemValue": {"currency": "GBP", "value": 39.9},
                "countryOfOrigin": "CHN",
                "hsCode": "61091000",
            },
            {  # no HS code or origin known: left out rather than sent empty
                "itemDescription": "Rain jacket",
                "packagedQuantity": 1,
                "itemWeight": {"uom": "g", "value": 900},
                "itemValue": {"currency": "GBP", "value": 120.0},
            },
        ]
    }


def test_dhl_label_is_the_decoded_pdf_with_dhl_numbers(rsps: responses.RequestsMock, creds: FakeCredentials) -> None:
    pdf = a_pdf("DHL Retoure")
    rsps.add(responses.POST, DHL_ORDERS, json=dhl_confirmation(number="999990001111", label=pdf), status=201)

    label = dhl_carrier(creds).create_label(a_request())

    assert label == Label(
        carrier="dhl_de",
        tracking_number="999990001111",
        content=pdf,
        content_type="application/pdf",
        qr_payload="999990001111",
        international_tracking_number="CN990001111DE",
    )
    assert label.content.startswith(b"%PDF-")
    assert len(pdfium.PdfDocument(label.content)) == 1


def test_dhl_qr_label_png_becomes_a_one_page_pdf_whose_code_scans(
    rsps: responses.RequestsMock, creds: FakeCredentials
) -> None:
    # Given DHL answers a QR_LABEL order with the QR code as a PNG
    payload = "DHL-RETOURE-QR-999990002222"
    rsps.add(
        responses.POST,
        DHL_ORDERS,
        match=[matchers.query_param_matcher({"labelType": "QR_LABEL"})],
        json=dhl_confirmation(number="999990002222", qr=a_png_qr(payload)),
        status=201,
    )

    # When a label-less return is created
    label = dhl_carrier(creds).create_label(a_request(method="qr"))

    # Then the customer gets a one-page PDF with the scannable code, and the app link is kept
    assert label.content_type == "application/pdf"
    assert label.content.startswith(b"%PDF-")
    document = pdfium.PdfDocument(label.content)
    assert len(document) == 1
    image = document[0].render(scale=200 / 72).to_pil()
    assert [b.text for b in zxingcpp.read_barcodes(image)] == [payload]
    assert label.qr_link == "https://www.dhl.de/retoure/qr?c=999990002222"
    assert label.qr_payload == label.qr_link
    assert label.tracking_number == "999990002222"


def test_dhl_qr_label_already_a_pdf_is_passed_through(rsps: responses.RequestsMock, creds: FakeCredentials) -> None:
    pdf = a_pdf("QR")
    rsps.add(responses.POST, DHL_ORDERS, json=dhl_confirmation(number="999990003333", qr=pdf), status=201)

    assert dhl_carrier(creds).create_label(a_request(method="qr")).content == pdf


def test_dhl_production_uses_the_production_base_url(rsps: responses.RequestsMock, creds: FakeCredentials) -> None:
    rsps.add(
        responses.POST,
        f"{dhl.PRODUCTION_BASE_URL}/orders",
        json=dhl_confirmation(number="999990004444", label=a_pdf()),
        status=201,
    )

    assert dhl_carrier(creds, sandbox=False).create_label(a_request()).tracking_number == "999990004444"


@pytest.mark.parametrize(
    ("status", "body", "expected"),
    [
        (
            400,
            problem(400, "Bad Request", "Invalid postal code for the shipper."),
            "DHL refused the request: Bad Request: Invalid postal code for the shipper.",
        ),
        (
            422,
            {"sstatus": problem(422, "Unprocessable", "Unprocessable Entity - shipper.addressHouse is missing")},
            "DHL refused the request: Unprocessable Entity - shipper.addressHouse is missing",
        ),
        (
            422,
            problem(422, "Unprocessable", "Unprocessable Entity - unable to process the content of the request."),
            # a title the detail starts with is said once
            "DHL refused the request: Unprocessable Entity - unable to process the content of the request.",
        ),
    ],
)
def test_dhl_refusals_are_clear_and_final(
    rsps: responses.RequestsMock, creds: FakeCredentials, status: int, body: dict[str, Any], expected: str
) -> None:
    rsps.add(responses.POST, DHL_ORDERS, body=json.dumps(body), status=status, content_type="application/problem+json")

    with pytest.raises(CarrierError) as raised:
        dhl_carrier(creds).create_label(a_request())

    assert raised.value.detail == expected
    assert raised.value.transient is False


@pytest.mark.parametrize(
    ("status", "transient", "fragment"),
    [
        (401, False, "carrier credentials rejected"),
        (403, False, "carrier credentials rejected"),
        (429, True, "busy"),
        (500, True, "server error"),
        (503, True, "server error"),
    ],
)
def test_dhl_http_failures_map_to_transient_or_not(
    rsps: responses.RequestsMock, creds: FakeCredentials, status: int, transient: bool, fragment: str
) -> None:
    title = {401: "Unauthorized", 403: "Forbidden", 429: "Too Many Requests"}.get(status, "Server Error")
    # The body even echoes the user name (some gateways do): it must not reach the message.
    rsps.add(
        responses.POST,
        DHL_ORDERS,
        body=json.dumps(problem(status, title, f"credentials of {DHL_USER} refused")),
        status=status,
        content_type="application/problem+json",
    )

    with pytest.raises(CarrierError) as raised:
        dhl_carrier(creds).create_label(a_request())

    assert raised.value.transient is transient
    assert fragment in raised.value.detail
    assert_no_secret(str(raised.value))


@pytest.mark.parametrize(
    "failure",
    [
        requests.exceptions.ConnectTimeout("connect timed out"),
        requests.exceptions.ReadTimeout("read timed out"),
        requests.exceptions.ConnectionError("connection reset"),
    ],
)
def test_dhl_timeouts_and_connection_errors_are_transient(
    rsps: responses.RequestsMock, creds: FakeCredentials, failure: Exception
) -> None:
    rsps.add(responses.POST, DHL_ORDERS, body=failure)

    with pytest.raises(CarrierError) as raised:
        dhl_carrier(creds).create_label(a_request())

    assert raised.value.transient is True
    assert_no_secret(str(raised.value))


def test_dhl_a_refusal_that_echoes_a_credential_has_it_masked(
    rsps: responses.RequestsMock, creds: FakeCredentials
) -> None:
    rsps.add(
        responses.POST,
        DHL_ORDERS,
        json=problem(400, "Bad Request", f"user {DHL_USER} has no receiver deu"),
        status=400,
    )

    with pytest.raises(CarrierError) as raised:
        dhl_carrier(creds).create_label(a_request())

    assert raised.value.detail == "DHL refused the request: Bad Request: user *** has no receiver deu"


def test_dhl_credentials_per_account_fall_back_to_the_default_key_by_key(rsps: responses.RequestsMock) -> None:
    # Given the operator's API key, and a warehouse with its own user, password and British receiver
    creds = FakeCredentials(
        {
            (None, "dhl_de", "api_key"): DHL_API_KEY,
            (None, "dhl_de", "username"): "operator-user",
            (None, "dhl_de", "password"): "operator-password",
            ("wh_1", "dhl_de", "username"): DHL_USER,
            ("wh_1", "dhl_de", "password"): DHL_PASSWORD,
            ("wh_1", "dhl_de", "receiver_id_gbr"): "gbr_krefeld",
        }
    )
    carrier = dhl_carrier(creds)
    for _ in range(2):
        rsps.add(
            responses.POST,
            DHL_ORDERS,
            match=[
                matchers.header_matcher({"dhl-api-key": DHL_API_KEY, "Authorization": basic(DHL_USER, DHL_PASSWORD)})
            ],
            json=dhl_confirmation(number="999990005555", label=a_pdf()),
            status=201,
        )

    # When two labels are made for that warehouse
    carrier.create_label(a_request(sender=CUSTOMER_GB, account="wh_1", customs=True))
    carrier.create_label(a_request(sender=CUSTOMER_GB, account="wh_1", customs=True))

    # Then the warehouse's values win, the API key comes from the default account, and each is read only once
    assert sent_json(rsps.calls[0])["receiverId"] == "gbr_krefeld"
    assert creds.lookups.count(("wh_1", "dhl_de", "api_key")) == 1
    assert creds.lookups.count((None, "dhl_de", "api_key")) == 1
    assert creds.lookups.count(("wh_1", "dhl_de", "username")) == 1
    assert (None, "dhl_de", "username") not in creds.lookups


def test_dhl_receiver_id_of_the_account_serves_german_senders_only(rsps: responses.RequestsMock) -> None:
    creds = default_credentials()
    creds.values[("wh_2", "dhl_de", "receiver_id")] = "deu_ggp"
    carrier = dhl_carrier(creds)

    assert carrier.order_body(a_request(account="wh_2"))["receiverId"] == "deu_ggp"
    assert carrier.order_body(a_request(sender=CUSTOMER_GB, account="wh_2", customs=True))["receiverId"] == "gbr"


def test_dhl_missing_credentials_are_a_clear_final_error_without_a_call(rsps: responses.RequestsMock) -> None:
    with pytest.raises(CarrierError) as raised:
        dhl_carrier(FakeCredentials({(None, "dhl_de", "api_key"): DHL_API_KEY})).create_label(a_request(account="wh_9"))

    assert raised.value.transient is False
    assert "not set up" in raised.value.detail
    assert_no_secret(raised.value.detail)


@pytest.mark.parametrize(
    ("sender", "message"),
    [
        (replace(CUSTOMER_DE, country="US"), "DHL Retoure does not collect returns from US."),
        (replace(CUSTOMER_DE, street="Unter den Linden", house_number=""), "DHL needs a house number"),
    ],
)
def test_dhl_requests_it_cannot_serve_are_refused_before_calling(
    rsps: responses.RequestsMock, creds: FakeCredentials, sender: Address, message: str
) -> None:
    with pytest.raises(CarrierError) as raised:
        dhl_carrier(creds).create_label(a_request(sender=sender))

    assert raised.value.detail.startswith(message)
    assert raised.value.transient is False


@pytest.mark.parametrize(
    ("street", "expected"),
    [("10 Downing Street", ("Downing Street", "10")), ("Hauptstraße 5a", ("Hauptstraße", "5a"))],
)
def test_dhl_house_number_written_into_the_street_is_split_off(
    creds: FakeCredentials, street: str, expected: tuple[str, str]
) -> None:
    shipper = dhl_carrier(creds).order_body(a_request(sender=replace(CUSTOMER_DE, street=street, house_number="")))[
        "shipper"
    ]

    assert (shipper["addressStreet"], shipper["addressHouse"]) == expected


@pytest.mark.parametrize("method", ["pickup", "drop_off", "courier"])
def test_dhl_offers_label_and_qr_only(rsps: responses.RequestsMock, creds: FakeCredentials, method: str) -> None:
    with pytest.raises(CarrierError) as raised:
        dhl_carrier(creds).create_label(a_request(method=method))

    assert method in raised.value.detail
    assert dhl_carrier(creds).methods == frozenset({"label", "qr"})


def test_dhl_cancel_is_a_no_op_because_unused_return_labels_are_not_charged(
    rsps: responses.RequestsMock, creds: FakeCredentials
) -> None:
    carrier = dhl_carrier(creds)

    carrier.cancel_label("999990001234")
    carrier.cancel_label("999990001234", "wh_1", carrier_reference="anything")  # as often as asked

    assert len(rsps.calls) == 0


# ----- DHL tracking ----------------------------------------------------------------------------------------------
def dhl_shipment(number: str, events: list[dict[str, Any]]) -> dict[str, Any]:
    # Shape: DHL Shipment Tracking - Unified, GET /track/shipments -> 200 {shipments: [{id, service, status,
    # events[]}]}, as in the API's sample response: events newest first; parcel-de events without an offset.
    return {
        "shipments": [
            {
                "id": number,
                "service": "parcel-de",
                "origin": {"address": {"countryCode": "DE", "addressLocality": "Berlin"}},
                "destination": {"address": {"countryCode": "DE", "addressLocality": "Krefeld"}},
                "status": {**events[0], "timestamp": events[0]["timestamp"]},
                "details": {"product": {"productName": "DHL Retoure"}},
                "events": events,
            }
        ]
    }


def dhl_event(timestamp: str, code: str, description: str, status: str | None = None) -> dict[str, Any]:
    event: dict[str, Any] = {
        "timestamp": timestamp,
        "location": {"address": {"addressLocality": "Germany"}},
        "statusCode": code,
        "description": description,
    }
    if status is not None:
        event["status"] = status
    return event


def test_dhl_tracking_events_become_normalized_updates(rsps: responses.RequestsMock) -> None:
    # Given a delivered DHL return with its history, and a separate tracking API key
    creds = default_credentials()
    creds.values[(None, "dhl_de", "tracking_api_key")] = DHL_TRACKING_KEY
    number = "00340434161094042557"
    events = [
        dhl_event("2026-11-19T09:12:00", "delivered", "The shipment has been successfully delivered", "Delivered"),
        dhl_event("2026-11-19T06:40:00", "transit", "The shipment has been loaded onto the delivery vehicle"),
        dhl_event("2026-11-18T21:03:00", "transit", "The shipment has been processed in the parcel center"),
        dhl_event(
            "2026-11-17T15:30:00+01:00",
            "pre-transit",
            "The instruction data for this shipment have been provided by the sender to DHL electronically",
        ),
    ]
    rsps.add(
        responses.GET,
        dhl.TRACKING_URL,
        match=[
            matchers.query_param_matcher({"trackingNumber": number}),
            matchers.header_matcher({"DHL-API-Key": DHL_TRACKING_KEY}),
        ],
        json=dhl_shipment(number, events),
    )

    # When its tracking is fetched
    updates = dhl_carrier(creds).fetch_tracking([number])

    # Then each event is one update, oldest first, in UTC (German local time where DHL gives no offset)
    assert [(u.status, u.carrier_status, u.occurred_at) for u in updates] == [
        ("pre_transit", "pre-transit", datetime(2026, 11, 17, 14, 30, tzinfo=UTC)),
        ("in_transit", "transit", datetime(2026, 11, 18, 20, 3, tzinfo=UTC)),
        ("out_for_delivery", "transit", datetime(2026, 11, 19, 5, 40, tzinfo=UTC)),
        ("delivered", "delivered", datetime(2026, 11, 19, 8, 12, tzinfo=UTC)),
    ]
    assert updates[-1] == TrackingUpdate(
        tracking_number=number,
        status="delivered",
        carrier_status="delivered",
        occurred_at=datetime(2026, 11, 19, 8, 12, tzinfo=UTC),
        event_id=f"{number}:delivered:2026-11-19T08:12:00+00:00",
        detail="Delivered: The shipment has been successfully delivered",
    )
    assert rsps.calls[0].request.req_kwargs["timeout"] == (3.0, 10.0)


def test_dhl_tracking_event_ids_are_stable_across_fetches(rsps: responses.RequestsMock, creds: FakeCredentials) -> None:
    number = "00340434161094042558"
    events = [dhl_event("2026-11-18T21:03:00", "transit", "The shipment has been processed in the parcel center")]
    for _ in range(2):
        rsps.add(responses.GET, dhl.TRACKING_URL, json=dhl_shipment(number, events))

    first, second = dhl_carrier(creds).fetch_tracking([number]), dhl_carrier(creds).fetch_tracking([number])

    assert [u.event_id for u in first] == [u.event_id for u in second]


def test_dhl_tracking_key_falls_back_to_the_api_key_and_asks_once_per_number(
    rsps: responses.RequestsMock, creds: FakeCredentials
) -> None:
    numbers = ["00340434161094042561", "00340434161094042562"]
    for number in numbers:
        rsps.add(
            responses.GET,
            dhl.TRACKING_URL,
            match=[
                matchers.query_param_matcher({"trackingNumber": number}),
                matchers.header_matcher({"DHL-API-Key": DHL_API_KEY}),
            ],
            json=dhl_shipment(number, [dhl_event("2026-11-18T10:00:00Z", "transit", "In transit")]),
        )

    updates = dhl_carrier(creds).fetch_tracking([numbers[0], numbers[1], numbers[0]])

    assert sorted(u.tracking_number for u in updates) == numbers
    assert len(rsps.calls) == 2


@pytest.mark.parametrize(
    ("description", "status"),
    [
        ("The shipment could not be delivered and is being returned to the sender", "return_to_sender"),
        ("Die Sendung wird an den Absender zurückgeschickt", "return_to_sender"),
        ("The shipment could not be delivered: recipient address unknown", "failure"),
        ("The shipment has been lost", "lost"),
    ],
)
def test_dhl_tracking_failures_say_where_the_parcel_goes(
    rsps: responses.RequestsMock, creds: FakeCredentials, description: str, status: str
) -> None:
    number = "00340434161094042559"
    rsps.add(
        responses.GET,
        dhl.TRACKING_URL,
        json=dhl_shipment(number, [dhl_event("2026-11-20T08:00:00", "failure", description)]),
    )

    [update] = dhl_carrier(creds).fetch_tracking([number])

    assert (update.status, update.carrier_status) == (status, "failure")


@pytest.mark.parametrize(
    ("code", "words", "status"),
    [
        ("pre-transit", "The instruction data for this shipment have been provided", "pre_transit"),
        ("transit", "The shipment has been processed in the parcel center of origin", "in_transit"),
        ("transit", "The shipment is on its way back to the parcel centre for the return", "in_transit"),
        ("transit", "The shipment is ready for pick-up at the PACKSTATION", "available_for_pickup"),
        ("transit", "Die Sendung wurde in das Zustellfahrzeug geladen", "out_for_delivery"),
        ("delivered", "The shipment has been successfully delivered", "delivered"),
        ("unknown", "", "unknown"),
        ("something-new", "", "unknown"),
    ],
)
def test_dhl_status_codes_map_to_the_vocabulary(code: str, words: str, status: str) -> None:
    assert dhl.normalize_status(code, words) == status


def test_dhl_tracking_unknown_number_is_no_updates(rsps: responses.RequestsMock, creds: FakeCredentials) -> None:
    # Shape: the Unified API's 404 RFC 7807 body for a number it does not know.
    rsps.add(
        responses.GET,
        dhl.TRACKING_URL,
        body=json.dumps(
            {
                "title": "No result found",
                "detail": "No shipment with given tracking number found.",
                "status": 404,
                "instance": "/shipments?trackingNumber=00340434161094000000",
            }
        ),
        status=404,
        content_type="application/problem+json",
    )

    assert dhl_carrier(creds).fetch_tracking(["00340434161094000000"]) == []


@pytest.mark.parametrize(("status", "transient"), [(429, True), (500, True), (401, False)])
def test_dhl_tracking_errors(
    rsps: responses.RequestsMock, creds: FakeCredentials, status: int, transient: bool
) -> None:
    rsps.add(
        responses.GET,
        dhl.TRACKING_URL,
        json=problem(status, "Too Many Requests", "You have exceeded the maximum number of requests"),
        status=status,
    )

    with pytest.raises(CarrierError) as raised:
        dhl_carrier(creds).fetch_tracking(["00340434161094042560"])

    assert raised.value.transient is transient
    assert_no_secret(str(raised.value))


# ===== EasyPost =================================================================================================
def ep_address(address: Address, address_id: str) -> dict[str, Any]:
    # Shape: EasyPost Address object (as embedded in a Shipment).
    return {
        "id": address_id,
        "object": "Address",
        "name": address.name,
        "street1": f"{address.street} {address.house_number}",
        "city": address.city,
        "zip": address.postal_code,
        "country": address.country,
        "verifications": {},
    }


def ep_shipment(shipment_id: str, *, tracking: str | None = None, label_url: str | None = None) -> dict[str, Any]:
    # Shape: EasyPost Shipment (POST /v2/shipments -> 201; POST /v2/shipments/{id}/buy -> 200), as recorded in
    # EasyPost's client library test cassettes: rates[{id, carrier, service, rate, currency}], postage_label
    # {label_url, label_pdf_url, label_file_type}, tracking_code, tracker, is_return, refund_status.
    rates = [
        {"id": "rate_express", "object": "Rate", "carrier": "DHLExpress", "service": "ExpressWorldwide",
         "rate": "34.15", "currency": "EUR", "shipment_id": shipment_id},
        {"id": "rate_cheap", "object": "Rate", "carrier": "DPD", "service": "Classic",
         "rate": "6.07", "currency": "EUR", "shipment_id": shipment_id},
        {"id": "rate_middle", "object": "Rate", "carrier": "UPS", "service": "Standard",
         "rate": "7.42", "currency": "EUR", "shipment_id": shipment_id},
    ]  # fmt: skip
    bought = tracking is not None
    return {
        "id": shipment_id,
        "object": "Shipment",
        "mode": "test",
        "is_return": True,
        "status": "unknown",
        "reference": "ret_x",
        "messages": [],
        "to_address": ep_address(CUSTOMER_DE, "adr_customer"),
        "from_address": ep_address(WAREHOUSE, "adr_warehouse"),
        "parcel": {"id": "prcl_1", "object": "Parcel", "weight": 58.2},
        "rates": rates,
        "selected_rate": rates[1] if bought else None,
        "postage_label": (
            {
                "object": "PostageLabel",
                "label_file_type": "application/pdf",
                "label_size": "4x6",
                "label_url": label_url,
                "label_pdf_url": label_url,
            }
            if bought
            else None
        ),
        "tracking_code": tracking,
        "tracker": {"id": "trk_1", "object": "Tracker", "tracking_code": tracking} if bought else None,
        "refund_status": None,
    }


def ep_error(code: str, message: str, errors: list[dict[str, Any]]) -> dict[str, Any]:
    # Shape: EasyPost error body {"error": {"code", "message", "errors": [{"field", "message"}]}} (422 etc.).
    return {"error": {"code": code, "message": message, "errors": errors}}


LABEL_FILE = "https://easypost-files.s3.us-west-2.amazonaws.com/files/postage_label/20261118/label.pdf"


def ep(creds: FakeCredentials) -> EasyPostCarrier:
    return EasyPostCarrier(creds, requests.Session())


def add_ep_create(rsps: responses.RequestsMock, shipment_id: str, tracking: str, *, pdf: bytes | None = None) -> None:
    rsps.add(responses.POST, f"{EP}/shipments", json=ep_shipment(shipment_id), status=201)
    rsps.add(
        responses.POST,
        f"{EP}/shipments/{shipment_id}/buy",
        match=[matchers.json_params_matcher({"rate": {"id": "rate_cheap"}})],
        json=ep_shipment(shipment_id, tracking=tracking, label_url=LABEL_FILE),
    )
    rsps.add(responses.GET, LABEL_FILE, body=pdf or a_pdf(), content_type="application/pdf")


def test_easypost_return_shipment_keeps_the_outbound_addresses(
    rsps: responses.RequestsMock, creds: FakeCredentials
) -> None:
    # Given a domestic return
    request = a_request()
    add_ep_create(rsps, "shp_dom", "9400100208303109505657")

    # When the label is created
    ep(creds).create_label(request)

    # Then the shipment is flagged as a return with the outbound addresses (EasyPost swaps them), API key as user
    create = rsps.calls[0]
    assert create.request.headers["Authorization"] == basic(EP_API_KEY, "")
    assert sent_json(create) == {
        "shipment": {
            "is_return": True,
            "to_address": {
                "name": "Jana Novak",
                "street1": "Kurfürstendamm 195a",
                "city": "Berlin",
                "zip": "10707",
                "country": "DE",
            },
            "from_address": {
                "name": "Boomerang Returns Centre",
                "street1": "Industriestraße 12",
                "city": "Krefeld",
                "zip": "47809",
                "country": "DE",
            },
            "parcel": {"weight": 58.2},  # 1650 g
            "reference": request.return_id,
            "options": {"label_format": "PDF", "print_custom_1": request.order_number},
        }
    }
    assert all(call.request.req_kwargs["timeout"] == (3.0, 10.0) for call in rsps.calls)
    assert "Authorization" not in rsps.calls[2].request.headers  # the label file is fetched without the key


def test_easypost_international_return_carries_customs_info(
    rsps: responses.RequestsMock, creds: FakeCredentials
) -> None:
    request = a_request(sender=CUSTOMER_GB, customs=True)
    add_ep_create(rsps, "shp_gb", "1Z999AA10123456784")

    ep(creds).create_label(request)

    customs = sent_json(rsps.calls[0])["shipment"]["customs_info"]
    assert customs == {
        "contents_type": "returned_goods",
        "contents_explanation": f"Return {request.return_id} of order {request.order_number}",
        "customs_certify": True,
        "customs_signer": "Oliver Smith",
        "non_delivery_option": "return",
        "restriction_type": "none",
        "customs_items": [
            {
                "description": "Cotton T-shirt",
                "quantity": 2,
                "value": 39.9,
                "currency": "GBP",
                "weight": 14.1,
                "code": "TEE-1",
                "hs_tariff_number": "61091000",
                "origin_country": "CN",
            },
            {
                "description": "Rain jacket",
                "quantity": 1,
                "value": 120.0,
                "currency": "GBP",
                "weight": 31.7,
                "code": "JKT-9",
            },
        ],
    }


def test_easypost_buys_the_cheapest_rate_and_returns_the_pdf(
    rsps: responses.RequestsMock, creds: FakeCredentials
) -> None:
    pdf = a_pdf("EasyPost")
    add_ep_create(rsps, "shp_happy", "9400100208303109505658", pdf=pdf)

    label = ep(creds).create_label(a_request())

    assert label == Label(
        carrier="easypost",
        tracking_number="9400100208303109505658",
        content=pdf,
        content_type="application/pdf",
        qr_payload="9400100208303109505658",
        carrier_reference="shp_happy",
    )


def test_easypost_carrier_accounts_of_the_warehouse_restrict_the_rates(rsps: responses.RequestsMock) -> None:
    creds = default_credentials()
    creds.values[("wh_1", "easypost", "carrier_accounts")] = "ca_dpd, ca_ups"

    body = ep(creds).shipment_body(a_request(account="wh_1"))

    assert body["shipment"]["carrier_accounts"] == ["ca_dpd", "ca_ups"]
    assert "carrier_accounts" not in ep(creds).shipment_body(a_request())["shipment"]


def test_easypost_without_rates_explains_why(rsps: responses.RequestsMock, creds: FakeCredentials) -> None:
    shipment = ep_shipment("shp_norates")
    shipment["rates"] = []
    # Shape: Shipment.messages[] {carrier, type: "rate_error", message}
    shipment["messages"] = [{"carrier": "DPD", "type": "rate_error", "message": "Unsupported destination"}]
    rsps.add(responses.POST, f"{EP}/shipments", json=shipment, status=201)

    with pytest.raises(CarrierError) as raised:
        ep(creds).create_label(a_request())

    assert raised.value.detail == "EasyPost found no carrier rate for this return: DPD: Unsupported destination"
    assert raised.value.transient is False


def test_easypost_422_is_a_clear_final_refusal(rsps: responses.RequestsMock, creds: FakeCredentials) -> None:
    rsps.add(
        responses.POST,
        f"{EP}/shipments",
        json=ep_error(
            "ADDRESS.VERIFY.FAILURE",
            "Unable to verify address.",
            [
                {"code": "E.ADDRESS.NOT_FOUND", "field": "address", "message": "Address not found"},
                {"code": "E.HOUSE_NUMBER.MISSING", "field": "street1", "message": "House number is missing"},
            ],
        ),
        status=422,
    )

    with pytest.raises(CarrierError) as raised:
        ep(creds).create_label(a_request())

    assert raised.value.detail == (
        "EasyPost refused the request: Unable to verify address. "
        "(address: Address not found; street1: House number is missing)"
    )
    assert raised.value.transient is False


@pytest.mark.parametrize(
    ("status", "body", "transient"),
    [
        (401, {"error": {"code": "APIKEY.INACTIVE", "message": f"key {EP_API_KEY} is inactive", "errors": []}}, False),
        (429, {"error": {"code": "RATE_LIMITED", "message": "Too many requests", "errors": []}}, True),
        (500, {"error": {"code": "INTERNAL_SERVER_ERROR", "message": "Something went wrong", "errors": []}}, True),
    ],
)
def test_easypost_http_failures(
    rsps: responses.RequestsMock, creds: FakeCredentials, status: int, body: dict[str, Any], transient: bool
) -> None:
    rsps.add(responses.POST, f"{EP}/shipments", json=body, status=status)

    with pytest.raises(CarrierError) as raised:
        ep(creds).create_label(a_request())

    assert raised.value.transient is transient
    assert_no_secret(str(raised.value))


def test_easypost_timeout_is_transient(rsps: responses.RequestsMock, creds: FakeCredentials) -> None:
    rsps.add(responses.POST, f"{EP}/shipments", body=requests.exceptions.ConnectTimeout("timed out"))

    with pytest.raises(CarrierError) as raised:
        ep(creds).create_label(a_request())

    assert raised.value.transient is True


def test_easypost_purchase_that_timed_out_but_went_through_is_not_bought_twice(
    rsps: responses.RequestsMock, creds: FakeCredentials
) -> None:
    rsps.add(responses.POST, f"{EP}/shipments", json=ep_shipment("shp_slow"), status=201)
    rsps.add(responses.POST, f"{EP}/shipments/shp_slow/buy", body=requests.exceptions.ReadTimeout("timed out"))
    rsps.add(
        responses.GET,
        f"{EP}/shipments/shp_slow",
        json=ep_shipment("shp_slow", tracking="9400100208303109505659", label_url=LABEL_FILE),
    )
    rsps.add(responses.GET, LABEL_FILE, body=a_pdf(), content_type="application/pdf")

    label = ep(creds).create_label(a_request())

    assert label.tracking_number == "9400100208303109505659"
    assert [c.request.method for c in rsps.calls].count("POST") == 2  # create and one buy


def test_easypost_purchase_that_timed_out_and_did_not_go_through_is_transient(
    rsps: responses.RequestsMock, creds: FakeCredentials
) -> None:
    rsps.add(responses.POST, f"{EP}/shipments", json=ep_shipment("shp_lost"), status=201)
    rsps.add(responses.POST, f"{EP}/shipments/shp_lost/buy", body=requests.exceptions.ReadTimeout("timed out"))
    rsps.add(responses.GET, f"{EP}/shipments/shp_lost", json=ep_shipment("shp_lost"))

    with pytest.raises(CarrierError) as raised:
        ep(creds).create_label(a_request())

    assert raised.value.transient is True


def test_easypost_label_that_cannot_be_downloaded_is_refunded(
    rsps: responses.RequestsMock, creds: FakeCredentials
) -> None:
    rsps.add(responses.POST, f"{EP}/shipments", json=ep_shipment("shp_nofile"), status=201)
    rsps.add(
        responses.POST,
        f"{EP}/shipments/shp_nofile/buy",
        json=ep_shipment("shp_nofile", tracking="9400100208303109505660", label_url=LABEL_FILE),
    )
    rsps.add(responses.GET, LABEL_FILE, status=503)
    refunded = {**ep_shipment("shp_nofile", tracking="9400100208303109505660"), "refund_status": "submitted"}
    rsps.add(responses.POST, f"{EP}/shipments/shp_nofile/refund", json=refunded)

    with pytest.raises(CarrierError) as raised:
        ep(creds).create_label(a_request())

    assert raised.value.transient is True  # a retry makes a fresh label; the paid one was refunded


def test_easypost_cancel_refunds_the_shipment_named_by_the_label(
    rsps: responses.RequestsMock, creds: FakeCredentials
) -> None:
    refunded = {**ep_shipment("shp_void", tracking="9400100208303109505661"), "refund_status": "submitted"}
    rsps.add(
        responses.POST,
        f"{EP}/shipments/shp_void/refund",
        match=[matchers.header_matcher({"Authorization": basic(EP_API_KEY, "")})],
        json=refunded,
    )

    ep(creds).cancel_label("9400100208303109505661", carrier_reference="shp_void")


def test_easypost_cancel_finds_the_shipment_through_its_tracker(
    rsps: responses.RequestsMock, creds: FakeCredentials
) -> None:
    number = "9400100208303109505662"
    rsps.add(responses.GET, f"{EP}/trackers", json={"trackers": [ep_tracker(number, "shp_found")], "has_more": False})
    refunded = {**ep_shipment("shp_found", tracking=number), "refund_status": "submitted"}
    rsps.add(responses.POST, f"{EP}/shipments/shp_found/refund", json=refunded)

    ep(creds).cancel_label(number)

    assert parse_qs(urlsplit(rsps.calls[0].request.url).query)["tracking_codes[]"] == [number]


def test_easypost_cancel_twice_succeeds(rsps: responses.RequestsMock, creds: FakeCredentials) -> None:
    rsps.add(
        responses.POST,
        f"{EP}/shipments/shp_twice/refund",
        json=ep_error("SHIPMENT.REFUND.UNAVAILABLE", "Refund already submitted.", []),
        status=422,
    )
    rsps.add(
        responses.GET,
        f"{EP}/shipments/shp_twice",
        json={**ep_shipment("shp_twice", tracking="9400100208303109505663"), "refund_status": "submitted"},
    )

    ep(creds).cancel_label("9400100208303109505663", carrier_reference="shp_twice")


def test_easypost_cancel_rejected_by_the_carrier_is_an_error(
    rsps: responses.RequestsMock, creds: FakeCredentials
) -> None:
    rejected = {**ep_shipment("shp_moving", tracking="9400100208303109505664"), "refund_status": "rejected"}
    rsps.add(responses.POST, f"{EP}/shipments/shp_moving/refund", json=rejected)

    with pytest.raises(CarrierError) as raised:
        ep(creds).cancel_label("9400100208303109505664", carrier_reference="shp_moving")

    assert raised.value.transient is False
    assert "refused to void" in raised.value.detail


def ep_tracker(number: str, shipment_id: str, details: list[dict[str, Any]] | None = None) -> dict[str, Any]:
    # Shape: EasyPost Tracker (GET /v2/trackers -> {trackers: [...], has_more}), as in the client library's
    # recorded cassettes: status, status_detail, shipment_id, tracking_details[{status, status_detail, datetime,
    # message, description, tracking_location}].
    return {
        "id": f"trk_{number[-6:]}",
        "object": "Tracker",
        "mode": "test",
        "tracking_code": number,
        "status": details[-1]["status"] if details else "pre_transit",
        "status_detail": "status_update",
        "created_at": "2026-11-17T10:00:00Z",
        "updated_at": "2026-11-19T09:12:00Z",
        "shipment_id": shipment_id,
        "carrier": "DPD",
        "tracking_details": details or [],
        "public_url": f"https://track.easypost.com/{number}",
    }


def ep_detail(status: str, at: str, message: str) -> dict[str, Any]:
    return {
        "object": "TrackingDetail",
        "message": message,
        "description": "",
        "status": status,
        "status_detail": "status_update",
        "datetime": at,
        "source": "DPD",
        "tracking_location": {"object": "TrackingLocation", "city": "Krefeld", "country": "DE"},
    }


def test_easypost_tracking_reads_the_existing_trackers(rsps: responses.RequestsMock, creds: FakeCredentials) -> None:
    number = "9400100208303109505665"
    details = [
        ep_detail("pre_transit", "2026-11-17T10:00:00Z", "Shipping Label Created"),
        ep_detail("in_transit", "2026-11-18T08:25:46Z", "Arrived at facility"),
        ep_detail("delivered", "2026-11-19T09:12:00Z", "Delivered"),
        ep_detail("error", "2026-11-19T09:13:00Z", "Tracker error"),
    ]
    rsps.add(
        responses.GET,
        f"{EP}/trackers",
        json={"trackers": [ep_tracker(number, "shp_t", details)], "has_more": False},
    )

    updates = ep(creds).fetch_tracking([number])

    assert [(u.status, u.carrier_status, u.detail) for u in updates] == [
        ("pre_transit", "pre_transit", "Shipping Label Created"),
        ("in_transit", "in_transit", "Arrived at facility"),
        ("delivered", "delivered", "Delivered"),
        ("failure", "error", "Tracker error"),
    ]
    assert updates[1].occurred_at == datetime(2026, 11, 18, 8, 25, 46, tzinfo=UTC)
    assert updates[1].event_id == f"{number}:in_transit:2026-11-18T08:25:46+00:00"
    query = parse_qs(urlsplit(rsps.calls[0].request.url).query)
    assert query == {"tracking_codes[]": [number], "page_size": ["100"]}


def test_easypost_tracking_follows_pages(rsps: responses.RequestsMock, creds: FakeCredentials) -> None:
    first, second = "9400100208303109505666", "9400100208303109505667"
    page_one = {
        "trackers": [ep_tracker(first, "shp_1", [ep_detail("in_transit", "2026-11-18T08:00:00Z", "In transit")])],
        "has_more": True,
    }
    page_two = {
        "trackers": [ep_tracker(second, "shp_2", [ep_detail("delivered", "2026-11-19T08:00:00Z", "Delivered")])],
        "has_more": False,
    }
    rsps.add(responses.GET, f"{EP}/trackers", json=page_one)
    rsps.add(
        responses.GET,
        f"{EP}/trackers",
        match=[matchers.query_param_matcher({"before_id": "trk_505666"}, strict_match=False)],
        json=page_two,
    )

    updates = ep(creds).fetch_tracking([first, second])

    assert [(u.tracking_number, u.status) for u in updates] == [(first, "in_transit"), (second, "delivered")]


# ===== Sendcloud ================================================================================================
def sc_created(return_id: int, parcel_id: int) -> dict[str, Any]:
    # Shape: Sendcloud Returns API v3, POST /returns/announce-synchronously -> 201 {return_id, parcel_id,
    # multi_collo_ids} (the same answer as POST /returns).
    return {"return_id": return_id, "parcel_id": parcel_id, "multi_collo_ids": []}


def sc_return(return_id: int, parcel_id: int, *, tracking: str | None, parent_status: str = "Announced") -> dict:
    # Shape: Sendcloud Returns API v3 Return object (GET /returns/{id} -> 200), as in the spec's example:
    # tracking_number, label {label_printer, normal_printer[]}, label_url (deprecated), status_history[].
    label_printer = f"{SC}/parcels/{parcel_id}/documents/label"
    return {
        "id": return_id,
        "created_at": "2026-11-18T15:34:21.869312+01:00",
        "is_cancellable": True,
        "tracking_number": tracking,
        "tracking_url": f"https://tracking.eu-central-1-0.sendcloud.sc/forward?code={tracking}" if tracking else None,
        "label_url": label_printer if tracking else None,
        "label": {"label_printer": label_printer, "normal_printer": [f"{label_printer}?paper_size=a4"] * 4}
        if tracking
        else {},
        "shipping_product": {"code": "dhl_de:return/dropoff"},
        "shipping_option": {"code": "dhl_de:return/dropoff"},
        "weight": {"value": 1.65, "unit": "kg"},
        "send_tracking_emails": False,
        "status_history": [
            {
                "carrier_update_timestamp": "2026-11-18T15:34:21.862840+01:00",
                "parcel_status_history_id": "1",
                "parent_status": parent_status,
                "carrier_code": "announced",
                "carrier_message": "",
            }
        ],
    }


def sc(creds: FakeCredentials) -> SendcloudCarrier:
    return SendcloudCarrier(creds, requests.Session(), clock=lambda: datetime(2026, 11, 20, 12, 0, tzinfo=UTC))


def add_sc_create(rsps: responses.RequestsMock, tracking: str, *, pdf: bytes | None = None) -> None:
    rsps.add(responses.POST, f"{SC}/returns/announce-synchronously", json=sc_created(12345, 67880), status=201)
    rsps.add(responses.GET, f"{SC}/returns/12345", json=sc_return(12345, 67880, tracking=tracking))
    rsps.add(
        responses.GET,
        f"{SC}/parcels/67880/documents/label",
        body=pdf or a_pdf(),
        content_type="application/pdf",
    )


def test_sendcloud_domestic_return_body(rsps: responses.RequestsMock, creds: FakeCredentials) -> None:
    request = a_request()
    add_sc_create(rsps, "JVGL1234567800001339")

    sc(creds).create_label(request)

    create = rsps.calls[0]
    assert create.request.headers["Authorization"] == basic(SC_PUBLIC, SC_SECRET)
    assert sent_json(create) == {
        "from_address": {
            "name": "Jana Novak",
            "address_line_1": "Kurfürstendamm",
            "house_number": "195a",
            "postal_code": "10707",
            "city": "Berlin",
            "country_code": "DE",
        },
        "to_address": {
            "name": "Boomerang Returns Centre",
            "address_line_1": "Industriestraße",
            "house_number": "12",
            "postal_code": "47809",
            "city": "Krefeld",
            "country_code": "DE",
        },
        "ship_with": {
            "type": "shipping_option_code",
            "shipping_option_code": "dhl_de:return/dropoff",
            "contract": 4711,
        },
        "weight": {"value": 1.65, "unit": "kg"},
        "collo_count": 1,
        "order_number": request.order_number,
        "external_reference": request.return_id,
        "send_tracking_emails": False,
        "delivery_option": "drop_off_point",
    }
    assert all(call.request.req_kwargs["timeout"] == (3.0, 10.0) for call in rsps.calls)


def test_sendcloud_return_from_outside_the_eu_lists_its_parcel_items(
    rsps: responses.RequestsMock, creds: FakeCredentials
) -> None:
    request = a_request(sender=CUSTOMER_GB, customs=True)
    add_sc_create(rsps, "JVGL1234567800001340")

    sc(creds).create_label(request)

    body = sent_json(rsps.calls[0])
    assert body["from_address"]["country_code"] == "GB"
    assert body["parcel_items"] == [
        {
            "description": "Cotton T-shirt",
            "quantity": 2,
            "weight": {"value": 0.2, "unit": "kg"},  # per unit
            "price": {"value": 19.95, "currency": "GBP"},  # per unit
            "sku": "TEE-1",
            "hs_code": "61091000",
            "origin_country": "CN",
        },
        {
            "description": "Rain jacket",
            "quantity": 1,
            "weight": {"value": 0.9, "unit": "kg"},
            "price": {"value": 120.0, "currency": "GBP"},
            "sku": "JKT-9",
        },
    ]
    assert body["total_order_value"] == {"value": 159.9, "currency": "GBP"}
    assert body["customs_invoice_nr"] == request.return_id
    assert body["customs_information"] == {
        "invoice_number": request.return_id,
        "export_reason": "returned_goods",
        "export_type": "private",
    }


def test_sendcloud_label_is_the_downloaded_pdf(rsps: responses.RequestsMock, creds: FakeCredentials) -> None:
    pdf = a_pdf("Sendcloud")
    add_sc_create(rsps, "JVGL1234567800001341", pdf=pdf)

    label = sc(creds).create_label(a_request())

    assert label == Label(
        carrier="sendcloud",
        tracking_number="JVGL1234567800001341",
        content=pdf,
        content_type="application/pdf",
        qr_payload="JVGL1234567800001341",
        carrier_reference="12345",
    )
    download = rsps.calls[2].request
    assert download.headers["Authorization"] == basic(SC_PUBLIC, SC_SECRET)
    assert download.headers["Accept"] == "application/pdf"


@pytest.mark.parametrize(
    ("body", "expected"),
    [
        (  # Shape: the spec's `errors` schema {errors: [{field, message, code}]}
            {"errors": [{"field": "to_address.postal_code", "message": "Invalid postal code", "code": "invalid"}]},
            "Sendcloud refused the request: to_address.postal_code: Invalid postal code",
        ),
        (  # Shape: the spec's 400 response {error: {code, request, message}}
            {
                "error": {
                    "code": "invalid",
                    "request": "api/v3/returns/announce-synchronously",
                    "message": "External reference has already been used in another return.",
                }
            },
            "Sendcloud refused the request: External reference has already been used in another return.",
        ),
        (  # Shape: JSON:API ErrorObject {errors: [{status, code, title, detail, source: {pointer}}]}
            {
                "errors": [
                    {
                        "status": "400",
                        "code": "parcel_announcement_error",
                        "title": "Announcement failed",
                        "detail": "The carrier rejected the parcel weight.",
                        "source": {"pointer": "/weight"},
                    }
                ]
            },
            "Sendcloud refused the request: /weight: The carrier rejected the parcel weight.",
        ),
    ],
)
def test_sendcloud_refusals_are_clear_and_final(
    rsps: responses.RequestsMock, creds: FakeCredentials, body: dict[str, Any], expected: str
) -> None:
    rsps.add(responses.POST, f"{SC}/returns/announce-synchronously", json=body, status=400)

    with pytest.raises(CarrierError) as raised:
        sc(creds).create_label(a_request())

    assert raised.value.detail == expected
    assert raised.value.transient is False


@pytest.mark.parametrize(
    ("failure", "transient"),
    [
        (401, False),
        (429, True),
        (500, True),
        (requests.exceptions.ConnectTimeout("timed out"), True),
    ],
)
def test_sendcloud_http_failures(
    rsps: responses.RequestsMock, creds: FakeCredentials, failure: int | Exception, transient: bool
) -> None:
    if isinstance(failure, int):
        rsps.add(
            responses.POST,
            f"{SC}/returns/announce-synchronously",
            json={"errors": [{"message": f"Invalid key {SC_PUBLIC}", "code": "authentication_failed"}]},
            status=failure,
        )
    else:
        rsps.add(responses.POST, f"{SC}/returns/announce-synchronously", body=failure)

    with pytest.raises(CarrierError) as raised:
        sc(creds).create_label(a_request())

    assert raised.value.transient is transient
    assert_no_secret(str(raised.value))


def test_sendcloud_return_without_a_tracking_number_is_cancelled_and_transient(
    rsps: responses.RequestsMock, creds: FakeCredentials
) -> None:
    rsps.add(responses.POST, f"{SC}/returns/announce-synchronously", json=sc_created(222, 333), status=201)
    rsps.add(responses.GET, f"{SC}/returns/222", json=sc_return(222, 333, tracking=None))
    # Shape: PATCH /returns/{id}/cancel -> 202 {message}
    rsps.add(
        responses.PATCH, f"{SC}/returns/222/cancel", json={"message": "Cancellation requested successfully"}, status=202
    )

    with pytest.raises(CarrierError) as raised:
        sc(creds).create_label(a_request())

    assert raised.value.transient is True


def test_sendcloud_label_that_cannot_be_downloaded_is_cancelled_and_transient(
    rsps: responses.RequestsMock, creds: FakeCredentials
) -> None:
    rsps.add(responses.POST, f"{SC}/returns/announce-synchronously", json=sc_created(444, 555), status=201)
    rsps.add(responses.GET, f"{SC}/returns/444", json=sc_return(444, 555, tracking="JVGL1234567800001345"))
    rsps.add(responses.GET, f"{SC}/parcels/555/documents/label", body=requests.exceptions.ReadTimeout("slow"))
    rsps.add(responses.PATCH, f"{SC}/returns/444/cancel", json={"message": "ok"}, status=202)

    with pytest.raises(CarrierError) as raised:
        sc(creds).create_label(a_request())

    assert raised.value.transient is True


def test_sendcloud_cancel_by_return_id(rsps: responses.RequestsMock, creds: FakeCredentials) -> None:
    rsps.add(
        responses.PATCH,
        f"{SC}/returns/12345/cancel",
        match=[matchers.header_matcher({"Authorization": basic(SC_PUBLIC, SC_SECRET)})],
        json={"message": "Cancellation requested successfully"},
        status=202,
    )

    sc(creds).cancel_label("JVGL1234567800001342", carrier_reference="12345")


def test_sendcloud_cancel_finds_the_return_by_tracking_number(
    rsps: responses.RequestsMock, creds: FakeCredentials
) -> None:
    number = "JVGL1234567800001343"
    # Shape: GET /returns -> 200 {next, previous, data: [Return]} (cursor pages)
    rsps.add(
        responses.GET,
        f"{SC}/returns",
        match=[
            matchers.query_param_matcher(
                {"from_date": "2026-09-21 12:00:00", "to_date": "2026-11-21 12:00:00", "page_size": "40"}
            )
        ],
        json={
            "next": "http://panel.sendcloud.sc/api/v3/returns?cursor=cD0z&page_size=40",
            "previous": None,
            "data": [sc_return(111, 1, tracking="JVGL0000000000000001")],
        },
    )
    rsps.add(
        responses.GET,
        f"{SC}/returns",
        match=[matchers.query_param_matcher({"cursor": "cD0z", "page_size": "40"})],
        json={"next": None, "previous": None, "data": [sc_return(777, 2, tracking=number)]},
    )
    rsps.add(responses.PATCH, f"{SC}/returns/777/cancel", json={"message": "ok"}, status=202)

    sc(creds).cancel_label(number)

    assert rsps.calls[1].request.url.startswith("https://")  # the http next link is followed over https only


def test_sendcloud_cancel_twice_succeeds(rsps: responses.RequestsMock, creds: FakeCredentials) -> None:
    # Shape: PATCH /returns/{id}/cancel -> 409 {errors: [{field, code, message}]}
    rsps.add(
        responses.PATCH,
        f"{SC}/returns/12345/cancel",
        json={"errors": [{"field": "returns", "code": 409, "message": "Return is not cancellable."}]},
        status=409,
    )
    rsps.add(responses.GET, f"{SC}/returns/12345", json=sc_return(12345, 1, tracking="X1", parent_status="Cancelled"))

    sc(creds).cancel_label("X1", carrier_reference="12345")


def test_sendcloud_cancel_of_a_moving_parcel_is_an_error(rsps: responses.RequestsMock, creds: FakeCredentials) -> None:
    rsps.add(
        responses.PATCH,
        f"{SC}/returns/12345/cancel",
        json={"errors": [{"field": "returns", "code": 409, "message": "Return is not cancellable."}]},
        status=409,
    )
    rsps.add(
        responses.GET, f"{SC}/returns/12345", json=sc_return(12345, 1, tracking="X2", parent_status="At sorting centre")
    )

    with pytest.raises(CarrierError) as raised:
        sc(creds).cancel_label("X2", carrier_reference="12345")

    assert raised.value.detail == "Sendcloud refused the request: returns: Return is not cancellable."
    assert raised.value.transient is False


def sc_tracking(number: str, events: list[dict[str, Any]]) -> dict[str, Any]:
    # Shape: Sendcloud Parcel Tracking v3, GET /parcels/tracking/{tracking_number} -> 200 parcel-tracking-response
    # {announced_at, created_at, details, events[{event_at, event_type, status_code, status_description,
    # status_type, sub_status_code}], tracking_numbers[], ...}.
    return {
        "announced_at": "2026-11-17T10:00:00Z",
        "created_at": "2026-11-17T10:00:00Z",
        "updated_at": "2026-11-17T10:00:00Z",
        "details": {"is_return": True, "is_to_service_point": False, "is_mail_box": False},
        "events": events,
        "from_address": {"city": "Berlin", "country_code": "DE"},
        "to_address": {"city": "Krefeld", "country_code": "DE"},
        "source_id": "ret_x",
        "tracking_numbers": [{"carrier_code": "dhl_de", "tracking_number": number}],
    }


def sc_event(code: str, at: str, description: str) -> dict[str, Any]:
    return {
        "event_at": at,
        "event_type": "carrier",
        "status_code": code,
        "status_description": description,
        "status_type": "success",
        "sub_status_code": "none",
    }


def test_sendcloud_tracking_events_become_updates(rsps: responses.RequestsMock, creds: FakeCredentials) -> None:
    number = "JVGL1234567800001344"
    rsps.add(
        responses.GET,
        f"{SC}/parcels/tracking/{number}",
        json=sc_tracking(
            number,
            [
                sc_event("delivered", "2026-11-19T09:12:00+01:00", "Parcel has been delivered."),
                sc_event("accepted", "2026-11-18T08:00:00Z", "Parcel has been accepted by the carrier."),
                sc_event("announced", "2026-11-17T10:00:00Z", "Parcel has been announced."),
                sc_event("awaiting-customer-pickup", "2026-11-18T18:00:00Z", "At the service point."),
            ],
        ),
    )
    rsps.add(responses.GET, f"{SC}/parcels/tracking/UNKNOWN1", json={"detail": "Parcel does not exist"}, status=404)

    updates = sc(creds).fetch_tracking([number, "UNKNOWN1"])

    assert [(u.status, u.carrier_status) for u in updates] == [
        ("pre_transit", "announced"),
        ("in_transit", "accepted"),
        ("available_for_pickup", "awaiting-customer-pickup"),
        ("delivered", "delivered"),
    ]
    assert updates[-1].occurred_at == datetime(2026, 11, 19, 8, 12, tzinfo=UTC)
    assert updates[-1].event_id == f"{number}:delivered:2026-11-19T08:12:00+00:00"
    assert updates[-1].detail == "Parcel has been delivered."


@pytest.mark.parametrize(
    ("code", "status"),
    [
        ("returned-to-sender", "return_to_sender"),
        ("delivery_failed", "failure"),
        ("driver-on-route", "out_for_delivery"),
        ("cancelled-upstream", "cancelled"),
        ("cancelling", "unknown"),
        ("brand_new_code", "unknown"),
    ],
)
def test_sendcloud_status_codes_map_to_the_vocabulary(code: str, status: str) -> None:
    assert sendcloud.normalize_status(code) == status


# ===== shared: registry, vocabulary, credentials ================================================================
def test_registry_builds_every_adapter_without_reading_credentials(creds: FakeCredentials) -> None:
    carriers = build_carriers(creds, requests.Session(), sandbox_env=True)

    assert set(carriers) == {"sandbox", "dhl_de", "easypost", "sendcloud"}
    assert {name: adapter.name for name, adapter in carriers.items()} == {n: n for n in carriers}
    assert carriers["dhl_de"].methods == frozenset({"label", "qr"})
    assert carriers["easypost"].methods == carriers["sendcloud"].methods == frozenset({"label"})
    assert isinstance(carriers["sandbox"], SandboxCarrier)
    assert creds.lookups == []


def test_registry_points_dhl_at_production_outside_the_sandbox_environment(creds: FakeCredentials) -> None:
    carrier = build_carriers(creds, requests.Session(), sandbox_env=False)["dhl_de"]

    assert isinstance(carrier, DhlReturnsCarrier)
    assert carrier.base_url == dhl.PRODUCTION_BASE_URL


def test_sandbox_carrier_takes_the_new_arguments_and_tracks_nothing() -> None:
    carrier = SandboxCarrier()
    number = new_tracking_number()

    carrier.cancel_label(number, "wh_1", carrier_reference="ignored")

    assert carrier.fetch_tracking([number], "wh_1") == []


def test_every_status_the_adapters_produce_is_in_the_domain_vocabulary() -> None:
    vocabulary = {s.value for s in CarrierStatus}
    phrases = [
        "",
        *dhl._RETURNED_TO_SENDER,
        *dhl._RETURN_WORDS,
        *dhl._LOST_WORDS,
        *dhl._OUT_FOR_DELIVERY,
        *dhl._PICKUP_WORDS,
    ]
    from_dhl = {dhl.normalize_status(code, words) for code in [*dhl._STATUS_BY_CODE, "new"] for words in phrases}

    assert from_dhl == vocabulary - {"cancelled"}  # DHL tracking has no cancellation
    assert set(sendcloud.STATUSES.values()) | {sendcloud.normalize_status("new")} == vocabulary
    assert set(easypost._STATUSES.values()) <= vocabulary


def test_an_image_label_is_wrapped_but_other_bytes_are_refused() -> None:
    wrapped = as_pdf(a_png_qr("X"), title="t", caption=["c"], display_name="Carrier")
    assert wrapped.startswith(b"%PDF-")

    with pytest.raises(CarrierError) as raised:
        as_pdf(b"<html>login</html>", title="t", caption=[], display_name="Carrier")
    assert raised.value.detail == "Carrier sent a document in a format that cannot be printed."


# ----- SSM secrets ------------------------------------------------------------------------------------------------
@pytest.fixture
def ssm() -> Iterator[SsmSecrets]:
    aws_clients.reset()
    with mock_aws():
        yield SsmSecrets("/boomerang-test/")
    aws_clients.reset()


def test_carrier_credentials_are_secure_strings_per_account_with_default_fallback(ssm: SsmSecrets) -> None:
    # Given an operator-wide key and a warehouse's own password
    ssm.put_carrier_credential(None, "dhl_de", "api_key", DHL_API_KEY)
    ssm.put_carrier_credential("wh_1", "dhl_de", "password", DHL_PASSWORD)

    # Then they are stored encrypted under carriers/<account>/<carrier>/<key>
    parameter = boto3.client("ssm").get_parameter(Name="/boomerang-test/carriers/wh_1/dhl_de/password")["Parameter"]
    assert parameter["Type"] == "SecureString"
    # And reads fall back to the default account key by key
    assert ssm.carrier_credential("wh_1", "dhl_de", "password") == DHL_PASSWORD
    assert ssm.carrier_credential("wh_1", "dhl_de", "api_key") == DHL_API_KEY
    assert ssm.carrier_credential(None, "dhl_de", "password") is None
    assert ssm.carrier_credential("wh_2", "easypost", "api_key") is None
    # And the merchant secrets work as before
    ssm.put("m_1", "webhook_secret", "whsec")
    assert ssm.get("m_1", "webhook_secret") == "whsec"


@pytest.mark.parametrize(("account", "key"), [("wh/../x", "api_key"), ("wh_1", ""), ("", "api_key")])
def test_carrier_credential_paths_cannot_escape_their_folder(ssm: SsmSecrets, account: str, key: str) -> None:
    with pytest.raises(ValueError, match="no '/'"):
        ssm.carrier_credential(account, "dhl_de", key)


def test_ssm_secrets_satisfy_the_credential_source(ssm: SsmSecrets) -> None:
    ssm.put_carrier_credential(None, "easypost", "api_key", EP_API_KEY)

    carriers = build_carriers(ssm, requests.Session(), sandbox_env=True)

    assert isinstance(carriers["easypost"], EasyPostCarrier)
    assert ssm.carrier_credential("wh_7", "easypost", "api_key") == EP_API_KEY
