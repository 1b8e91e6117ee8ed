"""Plumbing the real carrier adapters share: credentials per account, HTTP calls with explicit timeouts and one
mapping of failures to `CarrierError` (`CarrierHttp`: `chalicelib.adapters.http.OutboundHttp` set up for
carriers), JSON and timestamp parsing, and turning a carrier's image into a PDF.

Failure mapping (every adapter): a timeout, a connection error, HTTP 408, 429 or 5xx is transient (the same call
may succeed later); 401/403 is "credentials rejected" and never repeats what was sent; any other 4xx is the
carrier's refusal, described from its error body. Nothing secret reaches a log line or an error message: logs carry
the carrier, HTTP method, status and URL path only, and every message built from a carrier's answer has the
account's credential values masked.
"""

from __future__ import annotations

import io
from collections.abc import Sequence
from datetime import UTC, datetime, tzinfo
from typing import Any

import requests

from chalicelib.adapters.carriers.base import CarrierError, CredentialSource
from chalicelib.adapters.http import CONNECT_TIMEOUT, ErrorDescriber, OutboundHttp, json_body, mask_values
from chalicelib.observability import logger

#: Seconds to wait for a connection, and for the answer once connected.
READ_TIMEOUT = 10.0
TIMEOUT = (CONNECT_TIMEOUT, READ_TIMEOUT)


class Credentials:
    """One carrier's credentials, fetched on first use per account and cached for the adapter's lifetime.

    A key the account does not have falls back to the default account (None), key by key. Values that were never
    found are not cached, so credentials added later are picked up without a restart.
    """

    def __init__(self, source: CredentialSource, carrier: str) -> None:
        self._source = source
        self._carrier = carrier
        self._cache: dict[tuple[str | None, str], str] = {}

    def get(self, account: str | None, key: str) -> str | None:
        cached = self._cache.get((account, key))
        if cached is not None:
            return cached
        value = self._source.carrier_credential(account, self._carrier, key)
        if not value and account is not None:
            value = self._source.carrier_credential(None, self._carrier, key)
        if not value:
            return None
        self._cache[(account, key)] = value
        return value

    def require(self, account: str | None, key: str, *, display_name: str) -> str:
        value = self.get(account, key)
        if value is None:
            logger.warning("carrier credential missing", carrier=self._carrier, account=account, key=key)
            raise CarrierError(f"{display_name} is not set up for this warehouse yet (a credential is missing).")
        return value

    def mask(self, text: str) -> str:
        """`text` with every credential value this adapter has read replaced by ``***``."""
        return mask_values(text, self._cache.values())


def carrier_error(detail: str, transient: bool, retry_after: float | None) -> CarrierError:
    """`OutboundHttp`'s error factory for carriers (a carrier's Retry-After is not kept: nothing uses it)."""
    return CarrierError(detail, transient=transient)


class CarrierHttp(OutboundHttp[CarrierError]):
    """`OutboundHttp` for one carrier: `CarrierError`, a 10 s read timeout, masking through the account's
    `Credentials` (whatever was read so far), ``carrier=`` in the logs."""

    def __init__(
        self,
        session: requests.Session,
        *,
        carrier: str,
        display_name: str,
        credentials: Credentials,
        describe_error: ErrorDescriber,
    ) -> None:
        super().__init__(
            session,
            kind="carrier",
            vendor=carrier,
            display_name=display_name,
            make_error=carrier_error,
            mask=credentials.mask,
            timeout=TIMEOUT,
            describe_error=describe_error,
        )
        self.carrier = carrier


def json_object(response: requests.Response, *, display_name: str) -> dict[str, Any]:
    """The response's JSON object; an answer that is not one is a carrier fault worth retrying."""
    data = json_body(response)
    if not isinstance(data, dict):
        raise CarrierError(f"{display_name} sent an answer that could not be read.", transient=True)
    return data


def error_body(response: requests.Response) -> dict[str, Any]:
    """The JSON object of an error response, or {} when there is none."""
    data = json_body(response)
    return data if isinstance(data, dict) else {}


def join_sentences(*parts: object) -> str:
    """Non-empty parts joined with ": ", a part dropped when the next one already starts with it."""
    texts = [str(p).strip() for p in parts if p not in (None, "") and str(p).strip()]
    kept = [t for i, t in enumerate(texts) if not (i + 1 < len(texts) and texts[i + 1].startswith(t))]
    return ": ".join(kept)


def parse_timestamp(raw: str, *, naive_zone: tzinfo = UTC) -> datetime:
    """An ISO 8601 timestamp as an aware UTC datetime; one without an offset is read in `naive_zone`."""
    moment = datetime.fromisoformat(raw.strip())
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=naive_zone)
    return moment.astimezone(UTC)


# ----- documents -----------------------------------------------------------------------------------------------
_PDF_MAGIC = b"%PDF-"
_IMAGE_MAGICS = (b"\x89PNG\r\n\x1a\n", b"\xff\xd8\xff", b"GIF87a", b"GIF89a")

# An A6 page with the image centred near the top and the caption below it, in millimetres.
_PAGE_WIDTH = 105.0
_PAGE_HEIGHT = 148.0
_MARGIN = 6.0
_IMAGE_SIZE = 80.0
_IMAGE_TOP = 14.0


def is_pdf(content: bytes) -> bool:
    return content.lstrip()[:5] == _PDF_MAGIC


def is_image(content: bytes) -> bool:
    return content.startswith(_IMAGE_MAGICS)


def as_pdf(content: bytes, *, title: str, caption: Sequence[str], display_name: str) -> bytes:
    """`content` if it is a PDF; an image (PNG, JPEG, GIF) placed on one A6 page above `caption` otherwise.

    fpdf2 is imported on first use (through `chalicelib.adapters.documents.pdf`): the API app imports the carrier
    modules and must not pay for it at cold start.
    """
    if is_pdf(content):
        return content
    if not is_image(content):
        raise CarrierError(f"{display_name} sent a document in a format that cannot be printed.")
    from chalicelib.adapters.documents.pdf import new_document, start_page, text_lines

    pdf = new_document(width=_PAGE_WIDTH, height=_PAGE_HEIGHT, margin=_MARGIN, title=title)
    start_page(pdf)
    pdf.image(
        io.BytesIO(content),
        x=(_PAGE_WIDTH - _IMAGE_SIZE) / 2,
        y=_IMAGE_TOP,
        w=_IMAGE_SIZE,
        h=_IMAGE_SIZE,
        keep_aspect_ratio=True,
    )
    text_lines(
        pdf,
        _MARGIN,
        _IMAGE_TOP + _IMAGE_SIZE + 6,
        caption,
        size=9,
        line_height=5.0,
        width=_PAGE_WIDTH - 2 * _MARGIN,
        align="C",
    )
    return bytes(pdf.output())
