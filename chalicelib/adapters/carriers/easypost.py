"""Return labels through EasyPost (any carrier account connected to the operator's EasyPost account).

Labels, as EasyPost documents returns: create a shipment with ``is_return: true`` and the addresses *of the
original outbound shipment* (``to_address`` = the customer, ``from_address`` = the warehouse); EasyPost swaps them
for the return label. Then buy the cheapest rate (``POST /v2/shipments/{id}/buy``) and download the PDF label
(``postage_label.label_pdf_url``, else ``label_url``: a public file URL, fetched without credentials).
Authentication is HTTP Basic with the API key as user and an empty password (credential ``api_key`` of carrier
``easypost``; optional ``carrier_accounts``, comma-separated EasyPost carrier account ids to rate with).

A bought label is money spent, so `create_label` never leaves one behind on a failure it reports as transient
(which the caller retries): a timed-out purchase is looked up before giving up, and a label that was bought but
could not be downloaded is refunded (best effort) before the error is raised.

Cancelling: ``POST /v2/shipments/{id}/refund``. The shipment id is `Label.carrier_reference`; without it the
tracker EasyPost created when the label was bought names it (``GET /v2/trackers?tracking_codes[]=...``).
Tracking: ``GET /v2/trackers?tracking_codes[]=...`` (up to 100 numbers a page) reads the trackers bought labels
already have, without creating (and paying for) new ones; EasyPost's statuses are the normalized vocabulary
(its ``error`` counts as ``failure``).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from decimal import Decimal, InvalidOperation
from typing import Any

import requests

from chalicelib.adapters.carriers.base import (
    CarrierError,
    CredentialSource,
    Label,
    LabelRequest,
    TrackingUpdate,
)
from chalicelib.adapters.carriers.http import (
    CarrierHttp,
    Credentials,
    as_pdf,
    error_body,
    join_sentences,
    json_object,
    parse_timestamp,
)
from chalicelib.domain.addresses import Address
from chalicelib.domain.customs import CustomsDeclaration
from chalicelib.observability import logger

BASE_URL = "https://api.easypost.com/v2"

_DISPLAY_NAME = "EasyPost"
_GRAMS_PER_OUNCE = Decimal("28.349523125")
_TRACKERS_PAGE_SIZE = 100
_REFUNDED = frozenset({"submitted", "refunded", "not_applicable"})  # not_applicable: billed on scan, so unbilled
_STATUSES = {
    "unknown": "unknown",
    "pre_transit": "pre_transit",
    "in_transit": "in_transit",
    "out_for_delivery": "out_for_delivery",
    "available_for_pickup": "available_for_pickup",
    "delivered": "delivered",
    "return_to_sender": "return_to_sender",
    "failure": "failure",
    "cancelled": "cancelled",
    "error": "failure",
}


class EasyPostCarrier:
    """Return labels from the cheapest rate EasyPost offers for the account; tracking through its trackers."""

    name = "easypost"
    methods: frozenset[str] = frozenset({"label"})

    def __init__(self, credentials: CredentialSource, http: requests.Session) -> None:
        self._credentials = Credentials(credentials, self.name)
        self._http = CarrierHttp(
            http,
            carrier=self.name,
            display_name=_DISPLAY_NAME,
            credentials=self._credentials,
            describe_error=_describe_error,
        )

    def _auth(self, account: str | None) -> tuple[str, str]:
        return (self._credentials.require(account, "api_key", display_name=_DISPLAY_NAME), "")

    # ----- labels ------------------------------------------------------------------------------------------
    def create_label(self, request: LabelRequest) -> Label:
        if request.method not in self.methods:
            raise CarrierError(f"EasyPost does not offer the return method {request.method!r}.")
        auth = self._auth(request.account)
        created = json_object(
            self._http.send(
                "POST", f"{BASE_URL}/shipments", auth=auth, json=self.shipment_body(request), ok=(200, 201)
            ),
            display_name=_DISPLAY_NAME,
        )
        shipment_id = str(created.get("id") or "")
        if not shipment_id:
            raise CarrierError("EasyPost answered without a shipment id.", transient=True)
        rate = _cheapest_rate(created)
        bought = self._buy(shipment_id, rate, auth)
        tracking_number = str(bought.get("tracking_code") or "")
        postage_label = bought.get("postage_label")
        label: dict[str, Any] = postage_label if isinstance(postage_label, dict) else {}
        label_url = str(label.get("label_pdf_url") or label.get("label_url") or "")
        if not tracking_number or not label_url:
            self._refund_quietly(shipment_id, auth)
            raise CarrierError("EasyPost bought the label but sent no tracking number or label.", transient=True)
        try:
            content = as_pdf(
                self._download(label_url),
                title=f"Return label {tracking_number}",
                caption=[f"Return {request.return_id}", f"Tracking {tracking_number}"],
                display_name=_DISPLAY_NAME,
            )
        except CarrierError:
            self._refund_quietly(shipment_id, auth)
            raise CarrierError("EasyPost's label could not be downloaded; please try again.", transient=True)
        logger.info("carrier label created", carrier=self.name, return_id=request.return_id, method=request.method)
        return Label(
            carrier=self.name,
            tracking_number=tracking_number,
            content=content,
            content_type="application/pdf",
            qr_payload=tracking_number,
            carrier_reference=shipment_id,
        )

    def shipment_body(self, request: LabelRequest) -> dict[str, Any]:
        """The ``shipment`` to create: the outbound shipment's addresses plus ``is_return`` (EasyPost swaps them)."""
        shipment: dict[str, Any] = {
            "is_return": True,
            "to_address": _address(request.sender),  # the customer: the outbound shipment went to them
            "from_address": _address(request.recipient),  # the warehouse: the outbound shipment came from it
            "parcel": {"weight": _ounces(request.parcel_weight_grams)},
            "reference": request.return_id,
            "options": {"label_format": "PDF", "print_custom_1": request.order_number[:35]},
        }
        if request.customs is not None:
            shipment["customs_info"] = _customs_info(request.customs, signer=request.sender.name)
        carrier_accounts = self._credentials.get(request.account, "carrier_accounts")
        if carrier_accounts:
            shipment["carrier_accounts"] = [a.strip() for a in carrier_accounts.split(",") if a.strip()]
        return {"shipment": shipment}

    def _buy(self, shipment_id: str, rate_id: str, auth: tuple[str, str]) -> dict[str, Any]:
        url = f"{BASE_URL}/shipments/{shipment_id}/buy"
        try:
            response = self._http.send("POST", url, auth=auth, json={"rate": {"id": rate_id}}, ok=(200, 201))
        except CarrierError as exc:
            if not exc.transient:
                raise
            # The purchase may have gone through before the answer was lost: never buy a second label for it.
            shipment = self._shipment_if_bought(shipment_id, auth)
            if shipment is None:
                raise
            return shipment
        return json_object(response, display_name=_DISPLAY_NAME)

    def _shipment_if_bought(self, shipment_id: str, auth: tuple[str, str]) -> dict[str, Any] | None:
        try:
            shipment = self._get_shipment(shipment_id, auth)
        except CarrierError:
            return None
        return shipment if shipment.get("postage_label") else None

    def _get_shipment(self, shipment_id: str, auth: tuple[str, str]) -> dict[str, Any]:
        response = self._http.send("GET", f"{BASE_URL}/shipments/{shipment_id}", auth=auth, ok=(200,))
        return json_object(response, display_name=_DISPLAY_NAME)

    def _download(self, url: str) -> bytes:
        """The label file: a plain public URL, so the API key is not sent along."""
        response = self._http.send("GET", url, headers={"Accept": "application/pdf"}, ok=(200,))
        return response.content

    def _refund_quietly(self, shipment_id: str, auth: tuple[str, str]) -> None:
        try:
            self._refund(shipment_id, auth)
        except CarrierError:
            logger.warning("could not refund an unusable label", carrier=self.name, shipment_id=shipment_id)

    # ----- cancelling --------------------------------------------------------------------------------------
    def cancel_label(
        self, tracking_number: str, account: str | None = None, *, carrier_reference: str | None = None
    ) -> None:
        """Refund the label's shipment. Idempotent: a refund EasyPost already has (submitted or refunded) counts
        as done. A refund the carrier rejects (the parcel is already moving) is a CarrierError."""
        auth = self._auth(account)
        shipment_id = carrier_reference or self._shipment_id_for(tracking_number, auth)
        self._refund(shipment_id, auth)

    def _shipment_id_for(self, tracking_number: str, auth: tuple[str, str]) -> str:
        trackers = self._trackers([tracking_number], auth)
        for tracker in trackers:
            if tracker.get("tracking_code") == tracking_number and tracker.get("shipment_id"):
                return str(tracker["shipment_id"])
        raise CarrierError("EasyPost knows no label with this tracking number.")

    def _refund(self, shipment_id: str, auth: tuple[str, str]) -> None:
        url = f"{BASE_URL}/shipments/{shipment_id}/refund"
        try:
            response = self._http.send("POST", url, auth=auth, ok=(200, 201))
            status = str(json_object(response, display_name=_DISPLAY_NAME).get("refund_status") or "")
        except CarrierError as exc:
            if exc.transient:
                raise
            # Refunding twice is refused; the shipment then says whether the first refund stands.
            status = str(self._get_shipment(shipment_id, auth).get("refund_status") or "")
            if status not in _REFUNDED:
                raise
        if status not in _REFUNDED:
            raise CarrierError("The carrier refused to void this label; the parcel may already be on its way.")
        logger.info("carrier label voided", carrier=self.name, refund_status=status)

    # ----- tracking ----------------------------------------------------------------------------------------
    def fetch_tracking(self, tracking_numbers: Sequence[str], account: str | None = None) -> list[TrackingUpdate]:
        numbers = list(dict.fromkeys(tracking_numbers))
        if not numbers:
            return []
        auth = self._auth(account)
        updates: dict[str, TrackingUpdate] = {}
        for start in range(0, len(numbers), _TRACKERS_PAGE_SIZE):
            wanted = set(numbers[start : start + _TRACKERS_PAGE_SIZE])
            for tracker in self._trackers(numbers[start : start + _TRACKERS_PAGE_SIZE], auth):
                if tracker.get("tracking_code") in wanted:
                    for update in _tracker_updates(tracker):
                        updates[update.event_id] = update
        return sorted(updates.values(), key=lambda u: (u.occurred_at, u.tracking_number))

    def _trackers(self, numbers: Sequence[str], auth: tuple[str, str]) -> list[dict[str, Any]]:
        """Every tracker of these numbers, following ``has_more`` pages (newest first, paged by ``before_id``)."""
        found: list[dict[str, Any]] = []
        before_id: str | None = None
        while True:
            params: list[tuple[str, str | int]] = [("tracking_codes[]", n) for n in numbers]
            params.append(("page_size", _TRACKERS_PAGE_SIZE))
            if before_id:
                params.append(("before_id", before_id))
            response = self._http.send("GET", f"{BASE_URL}/trackers", auth=auth, params=params, ok=(200,))
            page = json_object(response, display_name=_DISPLAY_NAME)
            trackers = [t for t in page.get("trackers") or [] if isinstance(t, dict)]
            found.extend(trackers)
            if not page.get("has_more") or not trackers or not trackers[-1].get("id"):
                return found
            before_id = str(trackers[-1]["id"])


# ----- mapping -------------------------------------------------------------------------------------------------
def _address(address: Address) -> dict[str, Any]:
    return {
        "name": address.name,
        "street1": f"{address.street} {address.house_number}".strip(),
        "city": address.city,
        "zip": address.postal_code,
        "country": address.country.upper(),
    }


def _ounces(grams: int) -> float:
    """EasyPost weighs in ounces (one decimal place, at least 0.1)."""
    return max(float((Decimal(grams) / _GRAMS_PER_OUNCE).quantize(Decimal("0.1"))), 0.1)


def _customs_info(customs: CustomsDeclaration, *, signer: str) -> dict[str, Any]:
    return {
        "contents_type": "returned_goods",
        "contents_explanation": f"Return {customs.return_id} of order {customs.reference}"[:255],
        "customs_certify": True,
        "customs_signer": signer,
        "non_delivery_option": "return",
        "restriction_type": "none",
        "customs_items": [
            {
                "description": (line.description or line.sku)[:255],
                "quantity": line.quantity,
                "value": float(line.value),  # the line's total value
                "currency": customs.currency,
                "weight": _ounces(line.weight_grams),  # the line's total weight
                "code": line.sku,
                **({"hs_tariff_number": line.hs_code} if line.hs_code else {}),
                **({"origin_country": line.country_of_origin} if line.country_of_origin else {}),
            }
            for line in customs.lines
        ],
    }


def _cheapest_rate(shipment: dict[str, Any]) -> str:
    priced: list[tuple[Decimal, str]] = []
    for rate in shipment.get("rates") or []:
        if not isinstance(rate, dict) or not rate.get("id"):
            continue
        try:
            priced.append((Decimal(str(rate.get("rate"))), str(rate["id"])))
        except InvalidOperation:
            continue
    if not priced:
        messages = "; ".join(_messages(shipment.get("messages") or []))
        raise CarrierError("EasyPost found no carrier rate for this return" + (f": {messages}" if messages else "."))
    return min(priced)[1]


def _messages(messages: Iterable[Any]) -> list[str]:
    return [
        join_sentences(m.get("carrier"), m.get("message")) for m in messages if isinstance(m, dict) and m.get("message")
    ]


def _describe_error(response: requests.Response) -> str | None:
    """EasyPost's error: ``{"error": {"code", "message", "errors": [{"field", "message"}]}}``."""
    error = error_body(response).get("error")
    if not isinstance(error, dict):
        return None
    fields = [
        join_sentences(e.get("field"), e.get("message"))
        for e in error.get("errors") or []
        if isinstance(e, dict) and e.get("message")
    ]
    text = join_sentences(error.get("message") or error.get("code"))
    return (f"{text} ({'; '.join(fields)})" if fields else text) or None


def _tracker_updates(tracker: dict[str, Any]) -> list[TrackingUpdate]:
    number = str(tracker.get("tracking_code") or "")
    details = [d for d in tracker.get("tracking_details") or [] if isinstance(d, dict)]
    if not details and tracker.get("status") not in (None, "unknown") and tracker.get("updated_at"):
        details = [{"status": tracker["status"], "datetime": tracker["updated_at"], "message": None}]
    updates = []
    for detail in details:
        if not detail.get("datetime"):
            continue
        carrier_status = str(detail.get("status") or "unknown")
        occurred_at = parse_timestamp(str(detail["datetime"]))
        event_id = f"{number}:{carrier_status}:{occurred_at.isoformat()}"
        updates.append(
            TrackingUpdate(
                tracking_number=number,
                status=_STATUSES.get(carrier_status, "unknown"),
                carrier_status=carrier_status,
                occurred_at=occurred_at,
                event_id=event_id,
                detail=join_sentences(detail.get("message"), detail.get("description")) or None,
            )
        )
    return updates
