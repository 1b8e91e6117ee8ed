"""Where photos live in the bucket, and what a key says about them.

`photos/<merchant_id>/<return_id>/<line_item_id | "parcel">/<photo_id>.<ext>`; the thumbnail of a photo is
`thumbs/<same path>.jpg`. Keys are made by the API (presigned POST), so the path can be trusted once the
upload event arrives; the content cannot (it is checked by its bytes).

An identifier the shop chose (a line item id such as Shopify's `gid://shopify/LineItem/1`) is one `segment` of a key:
`/` and `%` are percent-encoded, so no id can add a level to the key or pass for another line's (or the parcel's);
`parse_segment` gives the id back. Ids without `/`, `%` or control characters keep the key they always had.
"""

from __future__ import annotations

from dataclasses import dataclass
from urllib.parse import quote, unquote

from chalicelib.domain.text import is_control

PARCEL = "parcel"
IMAGE_TYPES = {"image/jpeg": "jpg", "image/png": "png", "image/webp": "webp", "image/heic": "heic"}
_RESERVED = "/%"


def segment(value: str) -> str:
    """`value` as one segment of a key: `/`, `%` and control characters percent-encoded (UTF-8), all else kept. A
    value that reads like the `parcel` marker has its first letter encoded, so it cannot pass for it."""
    out = "".join(quote(ch, safe="") if ch in _RESERVED or is_control(ch) else ch for ch in value)
    return f"%{ord(out[0]):02X}{out[1:]}" if out == PARCEL else out


def parse_segment(text: str) -> str:
    """The value a `segment` was made from."""
    return unquote(text, errors="strict")


@dataclass(frozen=True)
class PhotoKey:
    merchant_id: str
    return_id: str
    line_item_id: str | None  # None: a photo of the parcel
    name: str

    @property
    def key(self) -> str:
        line = PARCEL if self.line_item_id is None else segment(self.line_item_id)
        return f"photos/{segment(self.merchant_id)}/{segment(self.return_id)}/{line}/{self.name}"

    @property
    def thumbnail_key(self) -> str:
        return thumbnail_key(self.key)


def photo_key(merchant_id: str, return_id: str, line_item_id: str | None, photo_id: str, content_type: str) -> str:
    return PhotoKey(merchant_id, return_id, line_item_id, f"{photo_id}.{IMAGE_TYPES[content_type]}").key


def parse_photo_key(key: str) -> PhotoKey | None:
    parts = key.split("/")
    if len(parts) != 5 or parts[0] != "photos" or not all(parts[1:]):
        return None
    _, merchant_id, return_id, line, name = parts
    try:
        return PhotoKey(
            parse_segment(merchant_id), parse_segment(return_id), None if line == PARCEL else parse_segment(line), name
        )
    except UnicodeDecodeError:  # not a key `segment` made
        return None


@dataclass(frozen=True)
class ParcelPhotoKey:
    """`parcels/<warehouse_id>/<parcel_id>/<name>`: a photo of an unidentified parcel (no merchant known yet)."""

    warehouse_id: str
    parcel_id: str
    name: str

    @property
    def key(self) -> str:
        return f"parcels/{segment(self.warehouse_id)}/{segment(self.parcel_id)}/{self.name}"

    @property
    def thumbnail_key(self) -> str:
        return thumbnail_key(self.key)


def parcel_photo_key(warehouse_id: str, parcel_id: str, photo_id: str, content_type: str) -> str:
    return ParcelPhotoKey(warehouse_id, parcel_id, f"{photo_id}.{IMAGE_TYPES[content_type]}").key


def parse_parcel_photo_key(key: str) -> ParcelPhotoKey | None:
    parts = key.split("/")
    if len(parts) != 4 or parts[0] != "parcels" or not all(parts[1:]):
        return None
    try:
        return ParcelPhotoKey(parse_segment(parts[1]), parse_segment(parts[2]), parts[3])
    except UnicodeDecodeError:
        return None


def thumbnail_key(key: str) -> str:
    """`photos/m/r/l/x.png` -> `thumbs/m/r/l/x.jpg`; `parcels/w/p/x.png` -> `thumbs/parcels/w/p/x.jpg`."""
    return "thumbs/" + key.removeprefix("photos/").rsplit(".", 1)[0] + ".jpg"
