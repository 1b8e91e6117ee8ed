"""Photo uploads end to end in moto: presigned POST -> object in S3 -> S3 event notification on the photo queue
-> functions/photo_processor -> recorded with a thumbnail (an image) or deleted with a reason (anything else).

In-process moto patches botocore, not `requests`, so the upload itself is a boto3 put_object at the key the API
handed out (moto would not check the POST policy anyway: PLATFORM-NOTES); the policy's conditions are checked
from the signed document. The notification is the one moto really enqueued.
"""

from __future__ import annotations

import base64
import io
import json
import time
from typing import Any

import boto3
import pytest
from chalice.test import Client
from PIL import Image

from app import app
from chalicelib.domain.photos import thumbnail_key
from chalicelib.services.photos import Outcome, process_notification, uploads_in
from infrastructure import definitions as d
from local.lambda_router import call_handler
from tests.support import OPERATOR_KEY, Api, sqs_event, unique

MAX_BYTES = 10 * 1024 * 1024  # Settings.photo_max_bytes


@pytest.fixture
def api(aws) -> Any:
    with Client(app) as client:
        yield Api(client)


def jpeg(size: tuple[int, int] = (1200, 900), color: str = "navy") -> bytes:
    out = io.BytesIO()
    Image.new("RGB", size, color).save(out, "JPEG", quality=85)
    return out.getvalue()


def png(size: tuple[int, int] = (640, 480)) -> bytes:
    out = io.BytesIO()
    Image.new("RGBA", size, (0, 128, 0, 128)).save(out, "PNG")
    return out.getvalue()


def upload_slot(api: Api, t: dict[str, Any], ret: dict[str, Any], content_type: str = "image/jpeg", **body: Any):
    out = api.ok(
        "POST",
        f"/v1/warehouse/returns/{ret['id']}/photos",
        t["wh_key"],
        {"content_type": content_type, **body},
        201,
    )
    return out["key"], out["upload"]


def put(aws, key: str, data: bytes, content_type: str = "image/jpeg") -> None:
    """What the warehouse app's POST to S3 amounts to."""
    boto3.client("s3").put_object(Bucket=aws.bucket_name, Key=key, Body=data, ContentType=content_type)


def exists(aws, key: str) -> bool:
    found = boto3.client("s3").list_objects_v2(Bucket=aws.bucket_name, Prefix=key).get("Contents", [])
    return any(o["Key"] == key for o in found)


def notifications(aws) -> list[dict[str, Any]]:
    """Every message waiting on the photo queue (moto enqueues S3 notifications synchronously)."""
    sqs = boto3.client("sqs")
    url = aws.queue_urls[d.PHOTO_QUEUE.name]
    messages: list[dict[str, Any]] = []
    while batch := sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10, WaitTimeSeconds=0).get("Messages", []):
        messages += batch
    return messages


def deliver(messages: list[dict[str, Any]]) -> dict[str, Any]:
    """Play the SQS event source mapping: the consumer named in the definitions gets the batch."""
    assert d.PHOTO_QUEUE.consumer == "photo_processor"
    result: dict[str, Any] = call_handler(d.PHOTO_QUEUE.consumer, sqs_event(messages))
    return result


def uploaded(aws, keys: list[str]) -> list[dict[str, Any]]:
    """The notifications for `keys`, after checking moto's first message was S3's test event."""
    messages = notifications(aws)
    bodies = [json.loads(m["Body"]) for m in messages]
    assert bodies[0]["Event"] == "s3:TestEvent"
    events = [m for m, b in zip(messages, bodies, strict=True) if "Records" in b]
    assert sorted(uploads_in(m["Body"])[0].key for m in events) == sorted(keys)
    assert deliver(messages[:1]) == {"batchItemFailures": []}  # the test event is acknowledged
    return events


def view(api: Api, t: dict[str, Any], ret: dict[str, Any]) -> dict[str, Any]:
    out: dict[str, Any] = api.ok("GET", f"/v1/returns/{ret['id']}", t["m_key"])
    return out


def timeline(api: Api, t: dict[str, Any], ret: dict[str, Any], type_: str) -> list[dict[str, Any]]:
    return [e for e in view(api, t, ret)["timeline"] if e["type"] == type_]


# -- the upload slot -------------------------------------------------------------------------------------------


def test_the_signed_post_policy_pins_key_type_and_size(api: Api) -> None:
    t = api.tenant()
    ret = api.create_return(t)
    key, upload = upload_slot(api, t, ret, "image/png", line_item_id="L1")
    assert key.endswith(".png") and key.startswith(f"photos/{ret['merchant_id']}/{ret['id']}/L1/")
    policy = json.loads(base64.b64decode(upload["fields"]["policy"]))
    conditions = policy["conditions"]
    assert {"key": key} in conditions
    assert {"Content-Type": "image/png"} in conditions
    assert ["content-length-range", 1, MAX_BYTES] in conditions
    assert upload["fields"]["Content-Type"] == "image/png"


# -- images ----------------------------------------------------------------------------------------------------


def test_a_jpeg_is_recorded_on_its_item_with_a_thumbnail(api: Api, aws) -> None:
    # Given an upload slot for item L1 and a real JPEG put there
    t = api.tenant()
    ret = api.create_return(t)
    key, _ = upload_slot(api, t, ret, line_item_id="L1")
    put(aws, key, jpeg((1200, 900)))

    # When the notification S3 sent is delivered to the processor
    events = uploaded(aws, [key])
    assert deliver(events) == {"batchItemFailures": []}

    # Then the merchant sees the photo on the item, with presigned URLs for it and its thumbnail
    (item,) = [i for i in view(api, t, ret)["items"] if i["line_item_id"] == "L1"]
    (photo,) = item["photos"]
    assert photo["key"] == key
    assert "X-Amz-Signature=" in photo["url"] or "Signature=" in photo["url"]
    assert thumbnail_key(key) in photo["thumbnail_url"]
    # and the thumbnail is a JPEG within 320 px, aspect ratio kept
    thumb = Image.open(
        io.BytesIO(boto3.client("s3").get_object(Bucket=aws.bucket_name, Key=thumbnail_key(key))["Body"].read())
    )
    assert thumb.format == "JPEG" and thumb.size == (320, 240)
    assert exists(aws, key)
    (added,) = timeline(api, t, ret, "photo.added")
    assert added["key"] == key and added["line_item_id"] == "L1" and added["actor"] == "system:photos"


def test_a_png_of_the_parcel_is_recorded_on_the_return(api: Api, aws) -> None:
    t = api.tenant()
    ret = api.create_return(t)
    key, _ = upload_slot(api, t, ret, "image/png")
    put(aws, key, png(), "image/png")
    assert deliver(uploaded(aws, [key])) == {"batchItemFailures": []}
    out = view(api, t, ret)
    assert [p["key"] for p in out["parcel_photos"]] == [key]
    assert all(not i["photos"] for i in out["items"])
    assert exists(aws, thumbnail_key(key))


def test_the_same_event_twice_records_the_photo_once(api: Api, aws) -> None:
    t = api.tenant()
    ret = api.create_return(t)
    key, _ = upload_slot(api, t, ret, line_item_id="L1")
    put(aws, key, jpeg())
    events = uploaded(aws, [key])
    assert deliver(events) == {"batchItemFailures": []}
    assert deliver(events + events) == {"batchItemFailures": []}  # redelivered, and twice in one batch
    (item,) = [i for i in view(api, t, ret)["items"] if i["line_item_id"] == "L1"]
    assert [p["key"] for p in item["photos"]] == [key]
    assert len(timeline(api, t, ret, "photo.added")) == 1
    # and the operator bills it once
    month = time.strftime("%Y-%m", time.gmtime())
    bill = api.ok("GET", f"/v1/admin/billing?merchant_id={t['merchant']['id']}&month={month}", OPERATOR_KEY)
    assert bill["photos"] == 1


def test_a_heic_is_recorded_without_a_thumbnail(api: Api, aws) -> None:
    t = api.tenant()
    ret = api.create_return(t)
    key, _ = upload_slot(api, t, ret, "image/heic", line_item_id="L1")
    heic = b"\x00\x00\x00\x18ftypheic\x00\x00\x00\x00mif1heic" + b"\x00" * 2000
    put(aws, key, heic, "image/heic")
    assert deliver(uploaded(aws, [key])) == {"batchItemFailures": []}
    assert len(timeline(api, t, ret, "photo.added")) == 1
    assert exists(aws, key) and not exists(aws, thumbnail_key(key))  # Pillow decodes no HEIC without a plugin


# -- everything else -------------------------------------------------------------------------------------------


def test_a_pdf_uploaded_as_a_jpeg_is_deleted_and_the_rejection_is_on_the_timeline(api: Api, aws) -> None:
    t = api.tenant()
    ret = api.create_return(t)
    key, _ = upload_slot(api, t, ret, line_item_id="L1")
    put(aws, key, b"%PDF-1.7\n%\xe2\xe3\xcf\xd3\n1 0 obj\n<< /Type /Catalog >>\nendobj\n" * 50, "image/jpeg")
    assert deliver(uploaded(aws, [key])) == {"batchItemFailures": []}
    assert not exists(aws, key) and not exists(aws, thumbnail_key(key))
    (rejected,) = timeline(api, t, ret, "photo.rejected")
    assert rejected["key"] == key and rejected["reason"] == "not_an_image"
    assert not timeline(api, t, ret, "photo.added")
    assert all(not i["photos"] for i in view(api, t, ret)["items"])


def test_an_oversized_object_is_deleted_without_being_read(api: Api, aws) -> None:
    t = api.tenant()
    ret = api.create_return(t)
    key, _ = upload_slot(api, t, ret, line_item_id="L1")
    data = jpeg()
    put(aws, key, data + b"\x00" * (MAX_BYTES + 1 - len(data)))  # a valid JPEG start, one byte over the cap
    assert deliver(uploaded(aws, [key])) == {"batchItemFailures": []}
    assert not exists(aws, key)
    (rejected,) = timeline(api, t, ret, "photo.rejected")
    assert rejected["reason"] == "too_large"


@pytest.mark.parametrize(
    ("data", "content_type", "reason"),
    [
        (jpeg()[:300], "image/jpeg", "unreadable_image"),  # a JPEG cut off after its headers
        (b"", "image/jpeg", "empty"),
        (jpeg(), "text/html", "content_type_not_allowed"),  # a stored type the POST policy would have refused
        (b"<svg xmlns='http://www.w3.org/2000/svg'><script>alert(1)</script></svg>", "image/png", "not_an_image"),
    ],
)
def test_other_bad_uploads_are_deleted_with_their_reason(
    api: Api, aws, data: bytes, content_type: str, reason: str
) -> None:
    t = api.tenant()
    ret = api.create_return(t)
    key, _ = upload_slot(api, t, ret, line_item_id="L1")
    put(aws, key, data, content_type)
    assert deliver(uploaded(aws, [key])) == {"batchItemFailures": []}
    assert not exists(aws, key)
    assert [e["reason"] for e in timeline(api, t, ret, "photo.rejected")] == [reason]


def test_a_key_naming_another_merchant_is_deleted_without_touching_any_return(api: Api, aws) -> None:
    # Given two tenants with a return each
    a, b = api.tenant(), api.tenant()
    ret_a, ret_b = api.create_return(a), api.create_return(b)
    before = {r["id"]: view(api, t, r) for t, r in ((a, ret_a), (b, ret_b))}
    # When objects appear under keys that pair one merchant with the other's return, or a return that does not exist
    keys = [
        f"photos/{ret_b['merchant_id']}/{ret_a['id']}/L1/ph_{unique('x')}.jpg",
        f"photos/{ret_a['merchant_id']}/{ret_b['id']}/parcel/ph_{unique('x')}.jpg",
        f"photos/{ret_a['merchant_id']}/ret_{unique('none')}/parcel/ph_{unique('x')}.jpg",
    ]
    for key in keys:
        put(aws, key, jpeg())
    assert deliver(uploaded(aws, keys)) == {"batchItemFailures": []}
    # Then they are gone, and neither return changed
    assert not any(exists(aws, k) or exists(aws, thumbnail_key(k)) for k in keys)
    for t, r in ((a, ret_a), (b, ret_b)):
        after = view(api, t, r)
        assert after["timeline"] == before[r["id"]]["timeline"]
        assert after["updated_at"] == before[r["id"]]["updated_at"]
        assert all(not i["photos"] for i in after["items"]) and not after["parcel_photos"]


def test_an_unknown_line_item_is_rejected_on_the_return(api: Api, aws) -> None:
    t = api.tenant()
    ret = api.create_return(t)
    key = f"photos/{ret['merchant_id']}/{ret['id']}/L9/ph_{unique('x')}.jpg"
    put(aws, key, jpeg())
    assert deliver(uploaded(aws, [key])) == {"batchItemFailures": []}
    assert not exists(aws, key)
    assert [e["reason"] for e in timeline(api, t, ret, "photo.rejected")] == ["unknown_line_item"]


# -- the notification itself -----------------------------------------------------------------------------------


def test_thumbnails_and_other_prefixes_raise_no_notification(api: Api, aws) -> None:
    t = api.tenant()
    ret = api.create_return(t)
    key, _ = upload_slot(api, t, ret, line_item_id="L1")
    put(aws, key, jpeg())
    deliver(uploaded(aws, [key]))
    assert exists(aws, thumbnail_key(key))
    put(aws, "exports/report.csv", b"a,b\n", "text/csv")
    assert notifications(aws) == []  # the thumbnail the processor wrote, and the export, announced nothing


def test_keys_are_url_decoded_and_events_for_gone_objects_are_acknowledged(aws) -> None:
    from chalicelib.bootstrap import container

    body = json.dumps(
        {
            "Records": [
                {
                    "eventSource": "aws:s3",
                    "eventName": "ObjectCreated:Post",
                    "s3": {
                        "bucket": {"name": aws.bucket_name},
                        "object": {"key": "photos/m/r/parcel/a+b%2Bc.jpg", "size": 3},
                    },
                },
                {
                    "eventSource": "aws:s3",
                    "eventName": "ObjectRemoved:Delete",
                    "s3": {"bucket": {"name": aws.bucket_name}, "object": {"key": "photos/m/r/parcel/x.jpg"}},
                },
            ]
        }
    )
    (upload,) = uploads_in(body)
    assert upload.key == "photos/m/r/parcel/a b+c.jpg" and upload.size == 3
    assert process_notification(container(), body) == [Outcome.IGNORED]  # no such object (any more)
    other = body.replace(aws.bucket_name, "someone-elses-bucket")
    assert process_notification(container(), other) == [Outcome.IGNORED]
    assert uploads_in(json.dumps({"Service": "Amazon S3", "Event": "s3:TestEvent"})) == []


def test_a_message_that_is_no_notification_fails_alone(api: Api, aws) -> None:
    t = api.tenant()
    ret = api.create_return(t)
    key, _ = upload_slot(api, t, ret, line_item_id="L1")
    put(aws, key, jpeg())
    events = uploaded(aws, [key])
    poison = {**events[0], "MessageId": "poison", "Body": "not json"}
    assert deliver([poison, *events]) == {"batchItemFailures": [{"itemIdentifier": "poison"}]}
    assert len(timeline(api, t, ret, "photo.added")) == 1


# -- photos of unidentified parcels --------------------------------------------------------------------------------
def test_a_parcel_photo_is_checked_kept_on_the_parcel_and_moves_to_the_return_when_matched(api: Api, aws) -> None:
    # Given a parcel that matched nothing, photographed twice: one real image, one PDF claiming to be a JPEG
    t = api.tenant()
    ret = api.create_return(t)
    parcel_id = json.loads(api.call("POST", "/v1/warehouse/scans", t["wh_key"], {"barcode": "NO-LABEL"}).body)[
        "unidentified_parcel_id"
    ]
    slot = api.ok(
        "POST",
        f"/v1/warehouse/unidentified-parcels/{parcel_id}/photos",
        t["wh_key"],
        {"content_type": "image/jpeg"},
        201,
    )
    bad = api.ok(
        "POST",
        f"/v1/warehouse/unidentified-parcels/{parcel_id}/photos",
        t["wh_key"],
        {"content_type": "image/jpeg"},
        201,
    )
    assert slot["key"].startswith(f"parcels/{t['warehouse']['id']}/{parcel_id}/")
    put(aws, slot["key"], jpeg())
    put(aws, bad["key"], b"%PDF-1.7 not an image")
    # When the photo processor gets the upload events (twice: at-least-once delivery)
    events = uploaded(aws, [slot["key"], bad["key"]])
    assert deliver(events) == {"batchItemFailures": []}
    assert deliver(events[:1]) == {"batchItemFailures": []}
    # Then the image is on the parcel with a thumbnail, and the PDF is gone
    (listed,) = api.ok("GET", "/v1/warehouse/unidentified-parcels", t["wh_key"])["items"]
    assert [p["key"] for p in listed["photos"]] == [slot["key"]]
    assert listed["photos"][0]["thumbnail_url"]
    assert exists(aws, thumbnail_key(slot["key"])) and not exists(aws, bad["key"])
    # And another warehouse cannot upload for it
    other = api.tenant()
    resp = api.call(
        "POST",
        f"/v1/warehouse/unidentified-parcels/{parcel_id}/photos",
        other["wh_key"],
        {"content_type": "image/jpeg"},
    )
    assert resp.status_code == 404
    # When the parcel is matched, its photos go with it to the return, and are billed to that merchant
    api.ok("POST", f"/v1/warehouse/unidentified-parcels/{parcel_id}/match", t["wh_key"], {"return_id": ret["id"]})
    assert [p["key"] for p in view(api, t, ret)["parcel_photos"]] == [slot["key"]]
    month = time.strftime("%Y-%m", time.gmtime())
    bill = api.ok("GET", f"/v1/admin/billing?merchant_id={t['merchant']['id']}&month={month}", OPERATOR_KEY)
    assert (bill["photos"], bill["receipts"]) == (1, 1)
