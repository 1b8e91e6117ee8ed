"""DHL Parcel Germany returns ("DHL Retoure") through the Parcel DE Returns API v1, and DHL tracking through
Shipment Tracking - Unified.

Labels: ``POST {base}/orders?labelType=SHIPMENT_LABEL`` (method ``label``) or ``QR_LABEL`` (method ``qr``: a code
the customer shows at a DHL Packstation or retail outlet, no printer needed), authenticated with the
``dhl-api-key`` header and HTTP Basic (the business customer's user and password). The body follows the vendor's
OpenAPI (``ReturnOrder``, pp-parcel-returns 1.0.9): ``receiverId``, ``customerReference`` (our order number; the
first 30 characters are printed), ``shipmentReference`` (our return id), ``shipper``, ``itemWeight``,
``itemValue`` and, for a customs declaration, ``customsDetails.items`` (1 to 20 CN23 lines). The spec's
``ContactAddress`` has no country: the receiver id says where the parcel comes from. DHL sets up one receiver per
sender country, by default named after its ISO alpha-3 code (``deu``, ``aut``, ``che``, ``gbr``), so the receiver
id is the credential ``receiver_id_<alpha3>`` when the account has one, else (German senders only) the account's
``receiver_id``, else the sender country's alpha-3 code.

Credentials (``CredentialSource``, carrier ``dhl_de``): ``api_key``, ``username``, ``password``, optionally
``receiver_id`` / ``receiver_id_<alpha3>``, and ``tracking_api_key`` for tracking (falls back to ``api_key``).

Cancelling: the returns API has no cancellation, and DHL bills a return label only once the parcel is handed in,
so an unused label needs no voiding; `cancel_label` only records that the label is no longer wanted.

Tracking: ``GET https://api-eu.dhl.com/track/shipments?trackingNumber=...`` with header ``DHL-API-Key``, one
request per number (the API takes one). Each ``events[]`` entry becomes a `TrackingUpdate`; 404 (RFC 7807) means
DHL does not know the number (yet).
"""

from __future__ import annotations

import base64
import binascii
import re
from collections.abc import Sequence
from datetime import UTC, tzinfo
from decimal import Decimal
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

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
from chalicelib.domain.customs import CustomsDeclaration, CustomsLine
from chalicelib.observability import logger

SANDBOX_BASE_URL = "https://api-sandbox.dhl.com/parcel/de/shipping/returns/v1"
PRODUCTION_BASE_URL = "https://api-eu.dhl.com/parcel/de/shipping/returns/v1"
TRACKING_URL = "https://api-eu.dhl.com/track/shipments"

_DISPLAY_NAME = "DHL"
_LABEL_TYPES = {"label": "SHIPMENT_LABEL", "qr": "QR_LABEL"}
_CURRENCIES = frozenset({"EUR", "GBP", "CHF"})  # the spec's Value.currency enum
_MAX_CUSTOMS_ITEMS = 20
_MAX_WEIGHT_GRAMS = 31500

#: The countries DHL Retoure collects returns from (the spec's Country enum, which names the receivers).
SENDER_COUNTRIES: frozenset[str] = frozenset(
    {
        "bel", "bgr", "dnk", "deu", "est", "fin", "fra", "grc", "gbr", "irl", "ita", "hrv", "lva", "ltu", "lux",
        "mlt", "nld", "nor", "aut", "pol", "prt", "rou", "swe", "che", "svk", "svn", "esp", "cze", "hun", "cyp",
    }
)  # fmt: skip

#: ISO 3166-1 alpha-2 -> alpha-3 (receiver ids and the customs lines' countryOfOrigin).
_ALPHA3_TABLE = """
AD AND AE ARE AF AFG AG ATG AI AIA AL ALB AM ARM AO AGO AQ ATA AR ARG AS ASM AT AUT AU AUS AW ABW AX ALA AZ AZE
BA BIH BB BRB BD BGD BE BEL BF BFA BG BGR BH BHR BI BDI BJ BEN BL BLM BM BMU BN BRN BO BOL BQ BES BR BRA BS BHS
BT BTN BV BVT BW BWA BY BLR BZ BLZ CA CAN CC CCK CD COD CF CAF CG COG CH CHE CI CIV CK COK CL CHL CM CMR CN CHN
CO COL CR CRI CU CUB CV CPV CW CUW CX CXR CY CYP CZ CZE DE DEU DJ DJI DK DNK DM DMA DO DOM DZ DZA EC ECU EE EST
EG EGY EH ESH ER ERI ES ESP ET ETH FI FIN FJ FJI FK FLK FM FSM FO FRO FR FRA GA GAB GB GBR GD GRD GE GEO GF GUF
GG GGY GH GHA GI GIB GL GRL GM GMB GN GIN GP GLP GQ GNQ GR GRC GS SGS GT GTM GU GUM GW GNB GY GUY HK HKG HM HMD
HN HND HR HRV HT HTI HU HUN ID IDN IE IRL IL ISR IM IMN IN IND IO IOT IQ IRQ IR IRN IS ISL IT ITA JE JEY JM JAM
JO JOR JP JPN KE KEN KG KGZ KH KHM KI KIR KM COM KN KNA KP PRK KR KOR KW KWT KY CYM KZ KAZ LA LAO LB LBN LC LCA
LI LIE LK LKA LR LBR LS LSO LT LTU LU LUX LV LVA LY LBY MA MAR MC MCO MD MDA ME MNE MF MAF MG MDG MH MHL MK MKD
ML MLI MM MMR MN MNG MO MAC MP MNP MQ MTQ MR MRT MS MSR MT MLT MU MUS MV MDV MW MWI MX MEX MY MYS MZ MOZ NA NAM
NC NCL NE NER NF NFK NG NGA NI NIC NL NLD NO NOR NP NPL NR NRU NU NIU NZ NZL OM OMN PA PAN PE PER PF PYF PG PNG
PH PHL PK PAK PL POL PM SPM PN PCN PR PRI PS PSE PT PRT PW PLW PY PRY QA QAT RE REU RO ROU RS SRB RU RUS RW RWA
SA SAU SB SLB SC SYC SD SDN SE SWE SG SGP SH SHN SI SVN SJ SJM SK SVK SL SLE SM SMR SN SEN SO SOM SR SUR SS SSD
ST STP SV SLV SX SXM SY SYR SZ SWZ TC TCA TD TCD TF ATF TG TGO TH THA TJ TJK TK TKL TL TLS TM TKM TN TUN TO TON
TR TUR TT TTO TV TUV TW TWN TZ TZA UA UKR UG UGA UM UMI US USA UY URY UZ UZB VA VAT VC VCT VE VEN VG VGB VI VIR
VN VNM VU VUT WF WLF WS WSM YE YEM YT MYT ZA ZAF ZM ZMB ZW ZWE
"""
_TOKENS = _ALPHA3_TABLE.split()
ALPHA3: dict[str, str] = dict(zip(_TOKENS[::2], _TOKENS[1::2], strict=True))

_HOUSE_NUMBER_FIRST = re.compile(r"^(\d+[A-Za-z]?(?:[-/]\d+[A-Za-z]?)?)[,\s]+(.+)$")  # "10 Downing Street"
_HOUSE_NUMBER_LAST = re.compile(r"^(.+?)[,\s]+(\d+[A-Za-z]?(?:[-/]\d+[A-Za-z]?)?)$")  # "Hauptstr. 5a"

# Tracking: DHL statusCode values, refined by the words of status/description.
_STATUS_BY_CODE = {
    "pre-transit": "pre_transit",
    "transit": "in_transit",
    "delivered": "delivered",
    "failure": "failure",
    "unknown": "unknown",
}
_RETURNED_TO_SENDER = (
    "returned to sender",
    "return to sender",
    "returned to the sender",
    "being returned to the sender",
    "an den absender zur",  # "... an den Absender zurückgesendet / zurückgeschickt"
    "rücksendung an den absender",
)
_RETURN_WORDS = ("return", "retour", "back to the sender", "back to sender", "zurück", "ruecksend", "rücksend")
_LOST_WORDS = ("lost", "verloren", "nicht auffindbar")
_OUT_FOR_DELIVERY = ("out for delivery", "delivery vehicle", "zustellfahrzeug", "in zustellung")
_PICKUP_WORDS = (
    "ready for pick",
    "available for pick",
    "ready for collection",
    "awaiting collection",
    "zur abholung",
    "abholbereit",
)


def _local_zone() -> tzinfo:
    """Parcel Germany reports event times without an offset, in German local time."""
    try:
        return ZoneInfo("Europe/Berlin")
    except ZoneInfoNotFoundError:  # pragma: no cover - every runtime we deploy to has the tz database
        return UTC


class DhlReturnsCarrier:
    """DHL Retoure labels (printed or QR) and DHL tracking, per warehouse account."""

    name = "dhl_de"
    methods: frozenset[str] = frozenset({"label", "qr"})
    polls_tracking = True  # DHL sends no webhooks: functions/dhl_tracking_poller asks for returns in transit

    def __init__(self, credentials: CredentialSource, http: requests.Session, *, sandbox: bool) -> None:
        self.base_url = SANDBOX_BASE_URL if sandbox else PRODUCTION_BASE_URL
        self._credentials = Credentials(credentials, self.name)
        self._http = CarrierHttp(
            http,
            carrier=self.name,
            display_name=_DISPLAY_NAME,
            credentials=self._credentials,
            describe_error=_describe_problem,
        )

    # ----- labels ------------------------------------------------------------------------------------------
    def create_label(self, request: LabelRequest) -> Label:
        label_type = _LABEL_TYPES.get(request.method)
        if label_type is None:
            raise CarrierError(f"DHL does not offer the return method {request.method!r}.")
        account = request.account
        api_key = self._credentials.require(account, "api_key", display_name=_DISPLAY_NAME)
        username = self._credentials.require(account, "username", display_name=_DISPLAY_NAME)
        password = self._credentials.require(account, "password", display_name=_DISPLAY_NAME)
        body = self.order_body(request)
        response = self._http.send(
            "POST",
            f"{self.base_url}/orders",
            params={"labelType": label_type},
            auth=(username, password),
            headers={"dhl-api-key": api_key, "Accept": "application/json"},
            json=body,
            ok=(200, 201),
        )
        return self._label(request, json_object(response, display_name=_DISPLAY_NAME))

    def order_body(self, request: LabelRequest) -> dict[str, Any]:
        """The ``ReturnOrder`` for `request` (public so the mapping can be read and tested on its own)."""
        sender = request.sender
        country = _alpha3(sender.country)
        if country is None or country.lower() not in SENDER_COUNTRIES:
            raise CarrierError(f"DHL Retoure does not collect returns from {sender.country}.")
        body: dict[str, Any] = {
            "receiverId": self._receiver_id(request.account, country.lower()),
            "customerReference": request.order_number[:50],
            "shipmentReference": request.return_id[:50],
            "shipper": _shipper(sender),
            "itemWeight": {"uom": "g", "value": min(request.parcel_weight_grams, _MAX_WEIGHT_GRAMS)},
        }
        if request.customs is not None:
            body["itemValue"] = _value(request.customs.total_value, request.customs.currency)
            body["customsDetails"] = {"items": _customs_items(request.customs)}
        return body

    def _receiver_id(self, account: str | None, sender_alpha3: str) -> str:
        configured = self._credentials.get(account, f"receiver_id_{sender_alpha3}")
        if configured is None and sender_alpha3 == "deu":
            configured = self._credentials.get(account, "receiver_id")
        return configured or sender_alpha3

    def _label(self, request: LabelRequest, data: dict[str, Any]) -> Label:
        number = str(data.get("shipmentNo") or "")
        if not number:
            raise CarrierError("DHL answered without a shipment number.", transient=True)
        international = data.get("internationalShipmentNo")
        qr_link = data.get("qrLink") or None
        if request.method == "qr":
            title = f"DHL return code {number}"
            caption = [
                "Show this code at a DHL Packstation or retail outlet;",
                "they print the label for you.",
                f"Shipment {number} - Return {request.return_id}",
            ]
            raw = _document(data, "qrLabel")
        else:
            title = f"DHL return label {number}"
            caption = [f"Return {request.return_id}"]
            raw = _document(data, "label")
        content = as_pdf(raw, title=title, caption=caption, display_name=_DISPLAY_NAME)
        logger.info("carrier label created", carrier=self.name, return_id=request.return_id, method=request.method)
        return Label(
            carrier=self.name,
            tracking_number=number,
            content=content,
            content_type="application/pdf",
            qr_payload=str(qr_link or number),
            international_tracking_number=str(international) if international else None,
            qr_link=str(qr_link) if qr_link else None,
        )

    def cancel_label(
        self, tracking_number: str, account: str | None = None, *, carrier_reference: str | None = None
    ) -> None:
        """No call to DHL: the returns API cannot cancel, and an unused DHL return label is never charged (DHL bills
        a return once the parcel is handed in). Succeeds every time, so it is idempotent by construction."""
        logger.info("dhl return label left unused; nothing to void", carrier=self.name, account=account)

    # ----- tracking --------------------------------------------------------------------------------------------
    def fetch_tracking(self, tracking_numbers: Sequence[str], account: str | None = None) -> list[TrackingUpdate]:
        if not tracking_numbers:
            return []
        api_key = self._credentials.get(account, "tracking_api_key") or self._credentials.require(
            account, "api_key", display_name=_DISPLAY_NAME
        )
        updates: list[TrackingUpdate] = []
        for number in dict.fromkeys(tracking_numbers):  # one request per number, each once
            response = self._http.send(
                "GET",
                TRACKING_URL,
                params={"trackingNumber": number},
                headers={"DHL-API-Key": api_key, "Accept": "application/json"},
                ok=(200, 404),
            )
            if response.status_code == 404:  # RFC 7807 "No result found": DHL does not know the number (yet)
                continue
            updates.extend(_tracking_updates(number, json_object(response, display_name=_DISPLAY_NAME)))
        return updates


# ----- request mapping -----------------------------------------------------------------------------------------
def _alpha3(alpha2: str) -> str | None:
    return ALPHA3.get(alpha2.strip().upper())


def _shipper(sender: Address) -> dict[str, Any]:
    street, house = _street_and_house(sender)
    return {
        "name1": sender.name[:50],
        "addressStreet": street[:50],
        "addressHouse": house[:10],
        "postalCode": sender.postal_code.strip()[:10],
        "city": sender.city[:40],
    }


def _street_and_house(address: Address) -> tuple[str, str]:
    """DHL requires both street and house number; a number written into the street is split off."""
    street, house = address.street.strip(), address.house_number.strip()
    if house:
        return street, house
    for pattern, number_group, street_group in ((_HOUSE_NUMBER_FIRST, 1, 2), (_HOUSE_NUMBER_LAST, 2, 1)):
        match = pattern.match(street)
        if match:
            return match.group(street_group).strip(), match.group(number_group)
    raise CarrierError("DHL needs a house number in the sender's address.")


def _value(amount: Decimal, currency: str) -> dict[str, Any]:
    if currency not in _CURRENCIES:
        raise CarrierError(f"DHL Retoure accepts values in EUR, GBP or CHF only, not {currency}.")
    return {"currency": currency, "value": float(amount.quantize(Decimal("0.01")))}


def _customs_items(customs: CustomsDeclaration) -> list[dict[str, Any]]:
    if len(customs.lines) > _MAX_CUSTOMS_ITEMS:
        raise CarrierError(f"DHL accepts at most {_MAX_CUSTOMS_ITEMS} customs lines per return parcel.")
    return [_customs_item(line, customs.currency) for line in customs.lines]


def _customs_item(line: CustomsLine, currency: str) -> dict[str, Any]:
    item: dict[str, Any] = {
        "itemDescription": (line.description or line.sku)[:50],
        "packagedQuantity": line.quantity,
        "itemWeight": {"uom": "g", "value": max(line.weight_grams, 1)},
        "itemValue": _value(line.value, currency),
    }
    origin = _alpha3(line.country_of_origin) if line.country_of_origin else None
    if origin is not None:
        item["countryOfOrigin"] = origin
    if line.hs_code:
        item["hsCode"] = line.hs_code[:11]
    return item


# ----- response mapping ----------------------------------------------------------------------------------------
def _document(data: dict[str, Any], field: str) -> bytes:
    document = data.get(field)
    encoded = document.get("b64") if isinstance(document, dict) else None
    if not encoded:
        raise CarrierError(f"DHL answered without the {field} document.", transient=True)
    try:
        return base64.b64decode(encoded, validate=True)
    except (binascii.Error, ValueError):
        raise CarrierError("DHL sent a document that could not be decoded.", transient=True)


def _describe_problem(response: requests.Response) -> str | None:
    """RFC 7807 problem: title and detail, or those of the ``sstatus`` DHL nests them in."""
    body = error_body(response)
    nested = body.get("sstatus")
    status = nested if isinstance(nested, dict) else body
    return join_sentences(status.get("title"), status.get("detail")) or None


def _tracking_updates(number: str, data: dict[str, Any]) -> list[TrackingUpdate]:
    shipments = data.get("shipments") or []
    shipment = shipments[0] if shipments and isinstance(shipments[0], dict) else {}
    zone = _local_zone()
    updates: dict[str, TrackingUpdate] = {}
    raw_events = [e for e in shipment.get("events") or [] if isinstance(e, dict)]
    current = shipment.get("status")
    if not raw_events and isinstance(current, dict):
        raw_events = [current]
    for event in raw_events:
        timestamp = event.get("timestamp")
        if not timestamp:
            continue
        code = str(event.get("statusCode") or "unknown")
        words = " ".join(str(event.get(k) or "") for k in ("status", "description", "remark"))
        occurred_at = parse_timestamp(str(timestamp), naive_zone=zone)
        event_id = f"{number}:{code}:{occurred_at.isoformat()}"
        updates[event_id] = TrackingUpdate(
            tracking_number=number,
            status=normalize_status(code, words),
            carrier_status=code,
            occurred_at=occurred_at,
            event_id=event_id,
            detail=join_sentences(event.get("status"), event.get("description")) or None,
        )
    return sorted(updates.values(), key=lambda u: u.occurred_at)


def normalize_status(status_code: str, words: str = "") -> str:
    """DHL's statusCode (pre-transit, transit, delivered, failure, unknown), refined by its status/description."""
    code = status_code.strip().lower()
    text = words.lower()
    if any(phrase in text for phrase in _RETURNED_TO_SENDER):
        return "return_to_sender"
    if code == "failure":
        if any(word in text for word in _RETURN_WORDS):
            return "return_to_sender"
        if any(word in text for word in _LOST_WORDS):
            return "lost"
        return "failure"
    if code == "transit":
        if any(phrase in text for phrase in _OUT_FOR_DELIVERY):
            return "out_for_delivery"
        if any(phrase in text for phrase in _PICKUP_WORDS):
            return "available_for_pickup"
    return _STATUS_BY_CODE.get(code, "unknown")
