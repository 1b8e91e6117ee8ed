"""Photo uploads, checked after the fact: S3 -> SQS -> functions/photo_processor -> `process_upload`.

Warehouse staff upload straight to S3 with a presigned POST (services/warehouse.photo_upload), so no code of ours
sees the bytes on the way in. The POST policy limits the key, the declared type and the size, but the declared
type is only what the client claims (and moto does not check the policy at all: PLATFORM-NOTES). So when the
upload event arrives, the object is checked again: its size, its stored Content-Type, and its *bytes* (magic
numbers, chalicelib.domain.images); then it is decoded to make a thumbnail. An image is recorded on its item of
the return (or the parcel); anything else is deleted and, where the return is the key's own, a `photo.rejected`
entry says why.

SQS delivers at least once, so a repeated event must do no harm: a second event for a recorded photo changes
nothing (Return.record_photo is idempotent; the thumbnail is written again, identical), and an event for an object
that is gone (deleted as rejected) is acknowledged without doing anything.
"""

from __future__ import annotations

import hashlib
import io
import json
from dataclasses import dataclass
from enum import StrEnum
from typing import Any
from urllib.parse import unquote_plus

from chalicelib.bootstrap import Container
from chalicelib.domain.errors import NotFound, ValidationFailed
from chalicelib.domain.floor import billing_month
from chalicelib.domain.identifiers import new_id
from chalicelib.domain.images import HEADER_BYTES, ImageType, sniff
from chalicelib.domain.photos import IMAGE_TYPES, PhotoKey, parse_parcel_photo_key, parse_photo_key, segment
from chalicelib.domain.returns import Return
from chalicelib.observability import logger
from chalicelib.services.common import change_return

ACTOR = "system:photos"
THUMBNAIL_BOX = (320, 320)
THUMBNAIL_QUALITY = 80
#: Decoded size limit. A small file can decode to a huge bitmap (a "decompression bomb"); 64 MP is more than a
#: phone camera's full resolution, and bounds the bitmap at ~256 MB (RGBA) in a 1 GB Lambda. Checked from the
#: header, before anything is decoded; Pillow's own limit (DecompressionBombError, ~179 MP) stays in force too.
MAX_PIXELS = 64_000_000
#: The types Pillow decodes without a plugin. HEIC/HEIF needs libheif (pillow-heif), which Boomerang does not ship:
#: such photos are recorded without a thumbnail (there is no thumbnail object, so their thumbnail URL answers 404).
PILLOW_FORMATS = {ImageType.JPEG: "JPEG", ImageType.PNG: "PNG", ImageType.WEBP: "WEBP"}


class Outcome(StrEnum):
    RECORDED = "recorded"
    DUPLICATE = "duplicate"  # recorded before (a repeated event, or the inspection named the key first)
    REJECTED = "rejected"  # deleted
    IGNORED = "ignored"  # not a photo key, or the object is gone already


class Rejected(Exception):
    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


@dataclass(frozen=True)
class Upload:
    """One object-created record of an S3 event notification."""

    bucket: str
    key: str  # decoded
    size: int | None


def uploads_in(body: str) -> list[Upload]:
    """The object-created records of an S3 notification (the body of an SQS message).

    The `s3:TestEvent` S3 sends when the notification is configured has no records: []. Keys arrive URL-encoded
    (`+` for a space, `%2F` possibly for `/`).
    """
    message: dict[str, Any] = json.loads(body)
    if message.get("Event") == "s3:TestEvent":
        return []
    uploads = []
    for record in message.get("Records") or []:
        if record.get("eventSource") != "aws:s3" or not str(record.get("eventName", "")).startswith("ObjectCreated"):
            continue
        obj = record["s3"]["object"]
        size = obj.get("size")
        uploads.append(
            Upload(
                bucket=record["s3"]["bucket"]["name"],
                key=unquote_plus(obj["key"]),
                size=int(size) if size is not None else None,
            )
        )
    return uploads


def process_notification(c: Container, body: str) -> list[Outcome]:
    """Process every upload an SQS message (an S3 event notification) names."""
    outcomes = []
    for upload in uploads_in(body):
        if upload.bucket != c.settings.bucket_name:
            logger.warning("upload ignored: not our bucket", bucket=upload.bucket)
            outcomes.append(Outcome.IGNORED)
            continue
        outcomes.append(process_upload(c, upload.key, upload.size))
    return outcomes


def process_upload(c: Container, key: str, size: int | None = None) -> Outcome:
    """Check one uploaded object and record it (an image) or delete it (anything else).

    `size` is the event's, for the log: the object's own metadata is what is checked.
    """
    if key.startswith("parcels/"):
        return process_parcel_upload(c, key)
    photo = parse_photo_key(key)
    if photo is None:
        logger.info("upload ignored: not a photo key", key=key)
        return Outcome.IGNORED
    stored = c.files.head(key)
    if stored is None:
        logger.info("upload ignored: the object is gone", key=key)
        return Outcome.IGNORED
    ret = _return_of(c, photo)
    if ret is None:
        # A key no return of ours made (the API names keys after the return's merchant): nobody's photo.
        c.files.delete(key)
        logger.warning("upload deleted: no such return of this merchant", key=key, size=size)
        return Outcome.REJECTED
    try:
        if photo.line_item_id is not None and photo.line_item_id not in {i.line_item_id for i in ret.items}:
            raise Rejected("unknown_line_item")
        kind, thumbnail = _check_image(c, key, stored)
    except Rejected as rejection:
        # The rejection is recorded before the object goes: should the delete fail, the retried message records
        # it a second time, rather than finding no object and leaving the return to name a photo that is gone.
        _reject(c, ret.id, key, rejection.reason)
        c.files.delete(key)
        logger.info("photo rejected", key=key, return_id=ret.id, reason=rejection.reason, size=stored.size)
        return Outcome.REJECTED
    if thumbnail is not None:
        c.files.put(photo.thumbnail_key, thumbnail, "image/jpeg")
    if kind.value != stored.content_type:
        logger.info("photo type differs from the declared one", key=key, declared=stored.content_type, found=kind)
    recorded = _record(c, ret.id, photo)
    logger.info("photo recorded" if recorded else "photo already recorded", key=key, return_id=ret.id, type=kind)
    return Outcome.RECORDED if recorded else Outcome.DUPLICATE


def _check_image(c: Container, key: str, stored: Any) -> tuple[ImageType, bytes | None]:
    """Size, stored type, magic bytes, then a decode that makes the thumbnail. Raises Rejected."""
    if stored.size == 0:
        raise Rejected("empty")
    if stored.size > c.settings.photo_max_bytes:
        raise Rejected("too_large")
    if stored.content_type not in IMAGE_TYPES:
        raise Rejected("content_type_not_allowed")
    kind = sniff(c.files.get_head(key, HEADER_BYTES))
    if kind is None:
        raise Rejected("not_an_image")
    return kind, make_thumbnail(c.files.get(key), kind) if kind in PILLOW_FORMATS else None


def process_parcel_upload(c: Container, key: str) -> Outcome:
    """A photo of an unidentified parcel: checked like any photo, kept on the parcel (its merchant is not known
    yet; the photos move to the return, and are billed, when the parcel is matched)."""
    photo = parse_parcel_photo_key(key)
    if photo is None:
        logger.info("upload ignored: not a parcel photo key", key=key)
        return Outcome.IGNORED
    stored = c.files.head(key)
    if stored is None:
        return Outcome.IGNORED
    try:
        parcel = c.store.get_parcel(photo.parcel_id)
    except NotFound:
        parcel = None
    if parcel is None or parcel.warehouse_id != photo.warehouse_id:
        c.files.delete(key)
        logger.warning("upload deleted: no such parcel of this warehouse", key=key)
        return Outcome.REJECTED
    try:
        _kind, thumbnail = _check_image(c, key, stored)
    except Rejected as rejection:
        c.files.delete(key)
        logger.info("parcel photo rejected", key=key, parcel_id=parcel.id, reason=rejection.reason)
        return Outcome.REJECTED
    if thumbnail is not None:
        c.files.put(photo.thumbnail_key, thumbnail, "image/jpeg")
    recorded = c.store.add_parcel_photo(parcel.id, key)
    return Outcome.RECORDED if recorded else Outcome.DUPLICATE


def make_thumbnail(data: bytes, kind: ImageType) -> bytes:
    """A JPEG of at most THUMBNAIL_BOX, upright (EXIF orientation applied), transparency on white.

    Raises Rejected if the bytes do not decode as the `kind` they start as (truncated, corrupt, too many pixels).
    Once they have decoded, a failure is a fault of ours, not of the upload: it raises as it is, so the message is
    retried (and ends in the DLQ) while the object stays.
    """
    from PIL import Image, ImageOps  # only where thumbnails are made

    try:
        # `formats`: decode with the decoder of the sniffed type only, never Pillow's other ones.
        image = Image.open(io.BytesIO(data), formats=[PILLOW_FORMATS[kind]])
        width, height = image.size
        if width * height > MAX_PIXELS:
            raise Rejected("too_many_pixels")
        image.draft("RGB", THUMBNAIL_BOX)  # JPEG: decode at 1/2, 1/4 or 1/8 scale where that still covers the box
        image.load()
    except Image.DecompressionBombError:
        raise Rejected("too_many_pixels") from None
    except (OSError, SyntaxError, ValueError, EOFError) as exc:  # what Pillow raises for data it cannot decode
        logger.info("image does not decode", type=kind, error=type(exc).__name__)
        raise Rejected("unreadable_image") from None
    try:
        upright = ImageOps.exif_transpose(image) or image
    except Exception as exc:  # a broken EXIF block: the photo is fine, only its orientation is unknown
        logger.info("EXIF orientation unreadable", type=kind, error=type(exc).__name__)
        upright = image
    upright.thumbnail(THUMBNAIL_BOX)
    if upright.has_transparency_data:
        rgba = upright.convert("RGBA")
        upright = Image.new("RGB", rgba.size, "white")
        upright.paste(rgba, mask=rgba.getchannel("A"))
    out = io.BytesIO()
    upright.convert("RGB").save(out, "JPEG", quality=THUMBNAIL_QUALITY, optimize=True)
    return out.getvalue()


def _return_of(c: Container, photo: PhotoKey) -> Return | None:
    try:
        ret = c.store.get_return(photo.return_id)
    except NotFound:
        return None
    return ret if ret.merchant_id == photo.merchant_id else None


def _record(c: Container, return_id: str, photo: PhotoKey) -> bool:
    def change(ret: Return) -> bool:
        return ret.record_photo(photo.key, photo.line_item_id, actor=ACTOR, at=c.now())

    # each recorded photo is billed once: the counter is in the same transaction as the photo
    changed = [False]

    def record(ret: Return) -> bool:
        changed[0] = change(ret)
        return changed[0]

    def billing(ret: Return) -> list[Any]:
        return [c.store.billing(ret.merchant_id, billing_month(c.now()), photos=1)]

    change_return(c, return_id, record, updates=billing)
    return changed[0]


def _reject(c: Container, return_id: str, key: str, reason: str) -> None:
    def change(ret: Return) -> bool:
        ret.reject_photo(key, reason, actor=ACTOR, at=c.now())
        return True

    change_return(c, return_id, change)


# ----- photos customers add to a return reason (before any return exists) ----------------------------------------
def customer_photo_prefix(merchant_id: str, order_number: str, line_item_id: str) -> str:
    """`customer/<merchant>/<hash of the order number>/<line>/`: outside photos/, so the warehouse photo pipeline
    never sees them; the order number is hashed because it is the customer's credential."""
    order_ref = hashlib.sha256(order_number.encode()).hexdigest()[:32]
    return f"customer/{segment(merchant_id)}/{order_ref}/{segment(line_item_id)}/"


def customer_photo_upload(
    c: Container, merchant_id: str, order_number: str, line_item_id: str, content_type: str
) -> dict[str, Any]:
    """A presigned POST for one photo of an order line (e.g. of the damage), to cite in the return request."""
    if content_type not in IMAGE_TYPES:
        raise ValidationFailed.at(["content_type"], f"must be one of {', '.join(IMAGE_TYPES)}")
    order = c.store.get_order(merchant_id, order_number)
    if order is None:
        raise NotFound("order not found")
    if order.item(line_item_id) is None:
        raise ValidationFailed.at(["line_item_id"], f"'{line_item_id}' is not a line of this order")
    key = f"{customer_photo_prefix(merchant_id, order_number, line_item_id)}{new_id('ph')}.{IMAGE_TYPES[content_type]}"
    return {"key": key, "upload": c.files.presigned_post(key, content_type, c.settings.photo_max_bytes, 900)}


def check_customer_photos(
    c: Container, merchant_id: str, order_number: str, line_item_id: str, keys: list[str]
) -> list[tuple[int, str]]:
    """Problems with the photos a return line cites, by index: each must be this line's upload, be there, and be an
    image by its bytes (S3 calls only)."""
    prefix = customer_photo_prefix(merchant_id, order_number, line_item_id)
    problems: list[tuple[int, str]] = []
    for idx, key in enumerate(keys):
        if not key.startswith(prefix) or "/" in key.removeprefix(prefix):
            problems.append((idx, "not a photo uploaded for this item"))
            continue
        stored = c.files.head(key)
        if stored is None:
            problems.append((idx, "not uploaded (yet)"))
        elif stored.size == 0 or stored.size > c.settings.photo_max_bytes:
            problems.append((idx, "empty or too large"))
        elif stored.content_type not in IMAGE_TYPES or sniff(c.files.get_head(key, HEADER_BYTES)) is None:
            problems.append((idx, "not an image"))
    return problems
