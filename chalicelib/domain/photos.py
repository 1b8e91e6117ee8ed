"""Where photos live in the bucket, and what a key says about them.

`photos/<merchant_id>/<return_id>/<line_item_id | "parcel">/<photo_id>.<ext>`; the thumbnail of a photo is
`thumbs/<same path>.jpg`. Keys are made by the API (presigned POST), so the path can be trusted once the
upload event arrives; the content cannot (it is checked by its bytes).
"""

from __future__ import annotations

from dataclasses import dataclass

PARCEL = "parcel"
IMAGE_TYPES = {"image/jpeg": "jpg", "image/png": "png", "image/webp": "webp", "image/heic": "heic"}


@dataclass(frozen=True)
class PhotoKey:
    merchant_id: str
    return_id: str
    line_item_id: str | None  # None: a photo of the parcel
    name: str

    @property
    def key(self) -> str:
        return f"photos/{self.merchant_id}/{self.return_id}/{self.line_item_id or PARCEL}/{self.name}"

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
    return PhotoKey(merchant_id, return_id, None if line == PARCEL else line, name)


@dataclass(frozen=True)
class ParcelPhotoKey:
    """`parcels/<warehouse_id>/<parcel_id>/<name>`: a photo of an unidentified parcel (no merchant known yet)."""

    warehouse_id: str
    parcel_id: str
    name: str

    @property
    def key(self) -> str:
        return f"parcels/{self.warehouse_id}/{self.parcel_id}/{self.name}"

    @property
    def thumbnail_key(self) -> str:
        return thumbnail_key(self.key)


def parcel_photo_key(warehouse_id: str, parcel_id: str, photo_id: str, content_type: str) -> str:
    return ParcelPhotoKey(warehouse_id, parcel_id, f"{photo_id}.{IMAGE_TYPES[content_type]}").key


def parse_parcel_photo_key(key: str) -> ParcelPhotoKey | None:
    parts = key.split("/")
    if len(parts) != 4 or parts[0] != "parcels" or not all(parts[1:]):
        return None
    return ParcelPhotoKey(parts[1], parts[2], parts[3])


def thumbnail_key(key: str) -> str:
    """`photos/m/r/l/x.png` -> `thumbs/m/r/l/x.jpg`; `parcels/w/p/x.png` -> `thumbs/parcels/w/p/x.jpg`."""
    return "thumbs/" + key.removeprefix("photos/").rsplit(".", 1)[0] + ".jpg"
