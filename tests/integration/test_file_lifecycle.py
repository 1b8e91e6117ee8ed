"""The local stack's files bucket expires personal data like the CDK stack's: both from d.FILE_LIFECYCLE."""

from __future__ import annotations

from datetime import UTC, datetime

import boto3

from infrastructure import definitions as d
from local.provision import Resources

NOW = datetime(2026, 1, 1, tzinfo=UTC)


def test_the_local_bucket_carries_the_defined_lifecycle_rules(aws: Resources) -> None:
    got = boto3.client("s3").get_bucket_lifecycle_configuration(Bucket=aws.bucket_name)["Rules"]
    assert got == d.file_lifecycle_configuration()["Rules"]
    expiry = {r["Filter"]["Prefix"]: r["Expiration"]["Days"] for r in got if "Expiration" in r}
    assert expiry == {
        "labels/": 180,
        "photos/": 1460,
        "parcels/": 1460,
        "customer/": 1460,
        "thumbs/": 1460,
        "exports/": 7,
    }


def test_every_prefix_the_product_writes_under_expires() -> None:
    """A key made by the product's own helpers falls under an expiring rule (no prefix is forgotten)."""
    from chalicelib.domain.exports import Export
    from chalicelib.domain.photos import parcel_photo_key, photo_key, thumbnail_key
    from chalicelib.services.photos import customer_photo_prefix

    keys = [
        "labels/m1/r1.pdf",
        "labels/m1/r1-cn23.pdf",
        photo_key("m1", "r1", "li1", "p1", "image/jpeg"),
        parcel_photo_key("w1", "pa1", "p1", "image/png"),
        thumbnail_key(photo_key("m1", "r1", None, "p1", "image/jpeg")),
        thumbnail_key(parcel_photo_key("w1", "pa1", "p1", "image/png")),
        customer_photo_prefix("m1", "#1001", "li1") + "photo.jpg",
        Export("e1", "m1", "returns", NOW, NOW, NOW).key,
    ]
    expiring = [r.prefix for r in d.FILE_LIFECYCLE if r.expiration_days is not None and r.prefix]
    for key in keys:
        assert any(key.startswith(p) for p in expiring), key
