"""Return labels through Sendcloud's Returns API v3 (any return product of the carriers in the Sendcloud account).

Labels: ``POST /api/v3/returns/announce-synchronously``, the synchronous twin of ``POST /api/v3/returns``: same
body (``CreateReturn``), same answer (``return_id``, ``parcel_id``), but it answers only once the carrier has
announced the parcel, so the tracking number and label exist when it returns (the asynchronous endpoint would
leave us polling for them inside the customer's request). Then ``GET /api/v3/returns/{id}`` for the tracking
number and ``label.label_printer`` (the A6 PDF), which is downloaded with the same credentials.
``from_address`` is the customer (where the return starts), ``to_address`` the warehouse. ``parcel_items``,
mandatory for returns from outside the EU, come from the customs declaration, as do ``customs_invoice_nr`` and
``customs_information`` (``export_reason: returned_goods``, as Sendcloud requires for returns).
``external_reference`` is our return id, which Sendcloud keeps unique: a repeated request cannot buy a second
label (it is refused, and the caller moves on to its next carrier); a return announced but not handed out (its
label could not be fetched) is cancelled before the error is raised. Only printed labels
(``delivery_option: drop_off_point``): the API has a label-less option, but documents no way to fetch the QR code
it produces.

Credentials (carrier ``sendcloud``): ``public_key`` and ``secret_key`` (HTTP Basic), ``shipping_option_code`` (the
return product, e.g. ``dpd:return/return``), optionally ``contract`` and ``brand_id`` (numeric ids).

Cancelling: ``PATCH /api/v3/returns/{id}/cancel`` (a request the carrier may still refuse). The return id is
`Label.carrier_reference`; without it the returns of the last `LOOKUP_DAYS` days are searched for the tracking
number. Tracking: ``GET /api/v3/parcels/tracking/{tracking_number}``, one request per number; its events carry
Sendcloud's status codes, mapped to the normalized vocabulary below.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any
from urllib.parse import quote, urlsplit, urlunsplit

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

BASE_URL = "https://panel.sendcloud.sc/api/v3"
_HOST = "panel.sendcloud.sc"

#: How far back `cancel_label` searches for a return by tracking number when it is not given the return id.
LOOKUP_DAYS = 60
_LOOKUP_MAX_PAGES = 25
_LOOKUP_PAGE_SIZE = 40  # the API's maximum

_DISPLAY_NAME = "Sendcloud"
_CANCELLED = frozenset({"cancelled", "cancelled_upstream", "cancelling", "cancelling_upstream"})

#: Sendcloud status codes (tracking events, and the returns' parent statuses), "-" read as "_".
STATUSES: dict[str, str] = {
    **dict.fromkeys(
        ("ready_to_send", "announced", "announcing", "being_announced", "no_label", "announced_uncollected"),
        "pre_transit",
    ),
    **dict.fromkeys(
        (
            "accepted",
            "in_transit",
            "to_sorting",
            "en_route_to_sorting_center",
            "at_sorting_centre",
            "sorting",
            "being_sorted",
            "sorted",
            "unsorted",
            "unsorted2",
            "delayed",
            "at_customs",
            "shipment_on_route",
            "parcel_en_route",
            "picked_up_by_driver",
            "shipment_picked_up_by_driver",
            "delivery_date_changed",
            "delivery_address_changed",
            "delivery_method_changed",
        ),
        "in_transit",
    ),
    **dict.fromkeys(("driver_on_route", "driver_en_route", "out_for_delivery"), "out_for_delivery"),
    **dict.fromkeys(
        ("awaiting_customer_pickup", "ready_for_pickup", "awaiting_pickup", "available_for_pickup"),
        "available_for_pickup",
    ),
    **dict.fromkeys(
        ("delivered", "delivery_forced", "collected_by_customer", "shipment_collected_by_customer"), "delivered"
    ),
    **dict.fromkeys(
        (
            "delivery_failed",
            "delivery_attempt_failed",
            "collect_error",
            "error_collecting",
            "undeliverable",
            "unable_to_deliver",
            "announcement_failed",
            "refused_by_recipient",
            "address_invalid",
            "exception",
        ),
        "failure",
    ),
    **dict.fromkeys(("returned_to_sender", "return_to_sender", "returned"), "return_to_sender"),
    "lost": "lost",
    **dict.fromkeys(("cancelled", "cancelled_upstream"), "cancelled"),
}


def normalize_status(code: str) -> str:
    return STATUSES.get(code.strip().lower().replace("-", "_").replace(" ", "_"), "unknown")


class SendcloudCarrier:
    """Return labels announced through Sendcloud, per account (warehouse) or the operator's default account."""

    name = "sendcloud"
    methods: frozenset[str] = frozenset({"label"})

    def __init__(
        self,
        credentials: CredentialSource,
        http: requests.Session,
        *,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        self._credentials = Credentials(credentials, self.name)
        self._http = CarrierHttp(
            http,
            carrier=self.name,
            display_name=_DISPLAY_NAME,
            credentials=self._credentials,
            describe_error=_describe_error,
        )
        self._clock = clock

    def _auth(self, account: str | None) -> tuple[str, str]:
        return (
            self._credentials.require(account, "public_key", display_name=_DISPLAY_NAME),
            self._credentials.require(account, "secret_key", display_name=_DISPLAY_NAME),
        )

    # ----- labels ------------------------------------------------------------------------------------------
    def create_label(self, request: LabelRequest) -> Label:
        if request.method not in self.methods:
            raise CarrierError(f"Sendcloud does not offer the return method {request.method!r}.")
        auth = self._auth(request.account)
        body = self.return_body(request)
        created = json_object(
            self._http.send("POST", f"{BASE_URL}/returns/announce-synchronously", auth=auth, json=body, ok=(200, 201)),
            display_name=_DISPLAY_NAME,
        )
        return_id = str(created.get("return_id") or "")
        if not return_id:
            raise CarrierError("Sendcloud answered without a return id.", transient=True)
        try:
            tracking_number, content = self._announced_label(request, return_id, created.get("parcel_id"), auth)
        except CarrierError:
            # A return we cannot hand out is cancelled, so a retry does not leave a label to pay for behind.
            self._cancel_quietly(return_id, auth)
            raise
        logger.info("carrier label created", carrier=self.name, return_id=request.return_id, method=request.method)
        return Label(
            carrier=self.name,
            tracking_number=tracking_number,
            content=content,
            content_type="application/pdf",
            qr_payload=tracking_number,
            carrier_reference=return_id,
        )

    def _announced_label(
        self, request: LabelRequest, return_id: str, parcel_id: object, auth: tuple[str, str]
    ) -> tuple[str, bytes]:
        """The tracking number and label PDF of a return Sendcloud has just announced."""
        details = json_object(
            self._http.send("GET", f"{BASE_URL}/returns/{return_id}", auth=auth, ok=(200,)),
            display_name=_DISPLAY_NAME,
        )
        tracking_number = str(details.get("tracking_number") or "")
        if not tracking_number:
            raise CarrierError("Sendcloud did not announce the parcel; please try again.", transient=True)
        url, label_auth = _with_credentials(_label_url(details, parcel_id), auth)
        response = self._http.send("GET", url, auth=label_auth, headers={"Accept": "application/pdf"}, ok=(200,))
        content = as_pdf(
            response.content,
            title=f"Return label {tracking_number}",
            caption=[f"Return {request.return_id}", f"Tracking {tracking_number}"],
            display_name=_DISPLAY_NAME,
        )
        return tracking_number, content

    def return_body(self, request: LabelRequest) -> dict[str, Any]:
        """The ``CreateReturn`` body for `request` (public so the mapping can be read and tested on its own)."""
        account = request.account
        ship_with: dict[str, Any] = {
            "type": "shipping_option_code",
            "shipping_option_code": self._credentials.require(
                account, "shipping_option_code", display_name=_DISPLAY_NAME
            ),
        }
        contract = self._credentials.get(account, "contract")
        if contract and contract.isdigit():
            ship_with["contract"] = int(contract)
        body: dict[str, Any] = {
            "from_address": _address(request.sender),  # the customer sends the return
            "to_address": _address(request.recipient),  # to the warehouse
            "ship_with": ship_with,
            "weight": {"value": _kilograms(request.parcel_weight_grams), "unit": "kg"},
            "collo_count": max(request.parcel_count, 1),
            "order_number": request.order_number,
            "external_reference": request.return_id,
            "send_tracking_emails": False,
            "delivery_option": "drop_off_point",
        }
        brand_id = self._credentials.get(account, "brand_id")
        if brand_id and brand_id.isdigit():
            body["brand_id"] = int(brand_id)
        if request.customs is not None:
            body.update(_customs(request.customs))
        return body

    def _cancel_quietly(self, return_id: str, auth: tuple[str, str]) -> None:
        try:
            self._request_cancellation(return_id, auth)
        except CarrierError:
            logger.warning("could not cancel an unusable return label", carrier=self.name, carrier_id=return_id)

    # ----- cancelling --------------------------------------------------------------------------------------
    def cancel_label(
        self, tracking_number: str, account: str | None = None, *, carrier_reference: str | None = None
    ) -> None:
        """Request the cancellation. Idempotent: a return already cancelled (or being cancelled) counts as done;
        one Sendcloud calls not cancellable any more (the parcel is moving) is a CarrierError."""
        auth = self._auth(account)
        return_id = carrier_reference or self._return_id_for(tracking_number, auth)
        self._request_cancellation(return_id, auth)

    def _request_cancellation(self, return_id: str, auth: tuple[str, str]) -> None:
        url = f"{BASE_URL}/returns/{return_id}/cancel"
        try:
            self._http.send("PATCH", url, auth=auth, ok=(200, 202))
        except CarrierError as exc:
            if exc.transient:
                raise
            if not self._is_cancelled(return_id, auth):
                raise
        logger.info("carrier label voided", carrier=self.name)

    def _is_cancelled(self, return_id: str, auth: tuple[str, str]) -> bool:
        try:
            response = self._http.send("GET", f"{BASE_URL}/returns/{return_id}", auth=auth, ok=(200,))
        except CarrierError:
            return False
        history = json_object(response, display_name=_DISPLAY_NAME).get("status_history") or []
        latest = history[-1] if history and isinstance(history[-1], dict) else {}
        status = str(latest.get("parent_status") or "").strip().lower().replace("-", "_").replace(" ", "_")
        return status in _CANCELLED

    def _return_id_for(self, tracking_number: str, auth: tuple[str, str]) -> str:
        """Search the returns of the last `LOOKUP_DAYS` days (the API filters by date, not by tracking number)."""
        now = self._clock().astimezone(UTC)
        params: dict[str, Any] | None = {
            "from_date": (now - timedelta(days=LOOKUP_DAYS)).strftime("%Y-%m-%d %H:%M:%S"),
            "to_date": (now + timedelta(days=1)).strftime("%Y-%m-%d %H:%M:%S"),
            "page_size": _LOOKUP_PAGE_SIZE,
        }
        url = f"{BASE_URL}/returns"
        for _page in range(_LOOKUP_MAX_PAGES):
            page = json_object(
                self._http.send("GET", url, auth=auth, params=params, ok=(200,)), display_name=_DISPLAY_NAME
            )
            for item in page.get("data") or []:
                if isinstance(item, dict) and item.get("tracking_number") == tracking_number and item.get("id"):
                    return str(item["id"])
            next_url, next_auth = _with_credentials(str(page.get("next") or ""), auth)
            if next_auth is None:  # no next page, or one that is not Sendcloud's: stop rather than leak credentials
                break
            url, params = next_url, None
        raise CarrierError("Sendcloud knows no recent return with this tracking number.")

    # ----- tracking ----------------------------------------------------------------------------------------
    def fetch_tracking(self, tracking_numbers: Sequence[str], account: str | None = None) -> list[TrackingUpdate]:
        if not tracking_numbers:
            return []
        auth = self._auth(account)
        updates: list[TrackingUpdate] = []
        for number in dict.fromkeys(tracking_numbers):
            url = f"{BASE_URL}/parcels/tracking/{quote(number, safe='')}"
            response = self._http.send("GET", url, auth=auth, ok=(200, 404))
            if response.status_code == 404:  # "Parcel does not exist"
                continue
            updates.extend(_tracking_updates(number, json_object(response, display_name=_DISPLAY_NAME)))
        return updates


# ----- mapping -------------------------------------------------------------------------------------------------
def _address(address: Address) -> dict[str, Any]:
    return {
        "name": address.name,
        "address_line_1": address.street,
        "house_number": address.house_number,
        "postal_code": address.postal_code,
        "city": address.city,
        "country_code": address.country.upper(),
    }


def _kilograms(grams: int) -> float:
    return max(float((Decimal(grams) / 1000).quantize(Decimal("0.001"))), 0.001)


def _customs(customs: CustomsDeclaration) -> dict[str, Any]:
    """``parcel_items`` (per unit, as Sendcloud's items are), the invoice number and the customs information."""
    items = []
    for line in customs.lines:
        item: dict[str, Any] = {
            "description": (line.description or line.sku)[:255],
            "quantity": line.quantity,
            "weight": {"value": _kilograms(max(line.weight_grams // line.quantity, 1)), "unit": "kg"},
            "price": {
                "value": float((line.value / line.quantity).quantize(Decimal("0.01"))),
                "currency": customs.currency,
            },
            "sku": line.sku,
        }
        if line.hs_code:
            item["hs_code"] = line.hs_code[:12]
        if line.country_of_origin:
            item["origin_country"] = line.country_of_origin
        items.append(item)
    return {
        "parcel_items": items,
        "total_order_value": {"value": float(customs.total_value), "currency": customs.currency},
        "customs_invoice_nr": customs.return_id[:40],
        "customs_information": {
            "invoice_number": customs.return_id[:40],
            "export_reason": "returned_goods",
            "export_type": "private",
        },
    }


def _label_url(details: dict[str, Any], parcel_id: object) -> str:
    label = details.get("label")
    url = label.get("label_printer") if isinstance(label, dict) else None
    url = url or details.get("label_url")
    if url:
        return str(url)
    if parcel_id:  # the documented parcel documents endpoint
        return f"{BASE_URL}/parcels/{parcel_id}/documents/label"
    raise CarrierError("Sendcloud answered without a label.", transient=True)


def _with_credentials(url: str, auth: tuple[str, str]) -> tuple[str, tuple[str, str] | None]:
    """`url` over https with the credentials if it is Sendcloud's own; unchanged and without them otherwise."""
    parts = urlsplit(url)
    if parts.hostname != _HOST:
        return url, None
    return urlunsplit(("https", parts.netloc, parts.path, parts.query, "")), auth


def _describe_error(response: requests.Response) -> str | None:
    """Sendcloud answers errors in three shapes: ``{"errors": [{"field", "message"}]}``, JSON:API
    ``{"errors": [{"title", "detail", "source": {"pointer"}}]}``, and ``{"error": {"code", "message"}}``."""
    body = error_body(response)
    texts: list[str] = []
    for error in body.get("errors") or []:
        if not isinstance(error, dict):
            continue
        source = error.get("source")
        where = error.get("field") or (source.get("pointer") if isinstance(source, dict) else None)
        message = error.get("message") or error.get("detail") or error.get("title")
        text = join_sentences(where, message)
        if text:
            texts.append(text)
    single = body.get("error")
    if isinstance(single, dict):
        texts.append(join_sentences(single.get("message") or single.get("code")))
    detail = body.get("detail")
    if isinstance(detail, str):
        texts.append(detail)
    return "; ".join(t for t in texts if t) or None


def _tracking_updates(number: str, data: dict[str, Any]) -> list[TrackingUpdate]:
    updates: dict[str, TrackingUpdate] = {}
    for event in data.get("events") or []:
        if not isinstance(event, dict) or not event.get("event_at"):
            continue
        code = str(event.get("status_code") or "unknown")
        occurred_at = parse_timestamp(str(event["event_at"]))
        event_id = f"{number}:{code}:{occurred_at.isoformat()}"
        updates[event_id] = TrackingUpdate(
            tracking_number=number,
            status=normalize_status(code),
            carrier_status=code,
            occurred_at=occurred_at,
            event_id=event_id,
            detail=str(event.get("status_description") or "") or None,
        )
    return sorted(updates.values(), key=lambda u: u.occurred_at)
