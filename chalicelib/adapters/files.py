"""S3: labels, photos and exports in one private bucket; handed out only as short-lived presigned URLs."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from chalicelib.adapters.aws_clients import client


@dataclass(frozen=True)
class StoredObject:
    size: int
    content_type: str | None


class S3Files:
    def __init__(self, bucket: str) -> None:
        self.bucket = bucket

    def put(self, key: str, body: bytes, content_type: str) -> None:
        client("s3").put_object(
            Bucket=self.bucket, Key=key, Body=body, ContentType=content_type, ServerSideEncryption="AES256"
        )

    def delete(self, key: str) -> None:
        client("s3").delete_object(Bucket=self.bucket, Key=key)

    def get(self, key: str) -> bytes:
        data: bytes = client("s3").get_object(Bucket=self.bucket, Key=key)["Body"].read()
        return data

    def head(self, key: str) -> StoredObject | None:
        """Size and stored Content-Type of an object; None if there is no such object.

        (Without s3:ListBucket, S3 answers 403 instead of 404 for a missing key: that stays an error here.)
        """
        from botocore.exceptions import ClientError

        try:
            meta = client("s3").head_object(Bucket=self.bucket, Key=key)
        except ClientError as exc:
            if exc.response.get("Error", {}).get("Code") in {"404", "NoSuchKey", "NotFound"}:
                return None
            raise
        return StoredObject(size=int(meta["ContentLength"]), content_type=meta.get("ContentType"))

    def get_head(self, key: str, length: int) -> bytes:
        """The first `length` bytes of an object (all of it if it is shorter; the object must not be empty)."""
        data: bytes = client("s3").get_object(Bucket=self.bucket, Key=key, Range=f"bytes=0-{length - 1}")["Body"].read()
        return data[:length]

    def presigned_get(self, key: str, expires_in: int) -> str:
        url: str = client("s3").generate_presigned_url(
            "get_object", Params={"Bucket": self.bucket, "Key": key}, ExpiresIn=expires_in
        )
        return url

    def presigned_post(self, key: str, content_type: str, max_bytes: int, expires_in: int) -> dict[str, Any]:
        """A POST policy restricted to this key, this content type and a size cap."""
        post: dict[str, Any] = client("s3").generate_presigned_post(
            Bucket=self.bucket,
            Key=key,
            Fields={"Content-Type": content_type},
            Conditions=[{"Content-Type": content_type}, ["content-length-range", 1, max_bytes]],
            ExpiresIn=expires_in,
        )
        return post

    # ----- multipart uploads (exports: a file streamed in parts, never held whole) --------------------------------
    def start_multipart(self, key: str, content_type: str) -> str:
        """CreateMultipartUpload: the upload id. Parts are at least 5 MiB each, except the last."""
        upload_id: str = client("s3").create_multipart_upload(
            Bucket=self.bucket, Key=key, ContentType=content_type, ServerSideEncryption="AES256"
        )["UploadId"]
        return upload_id

    def upload_part(self, key: str, upload_id: str, number: int, body: bytes) -> str:
        """UploadPart (numbers 1..10,000): the part's ETag, for completing the upload."""
        etag: str = client("s3").upload_part(
            Bucket=self.bucket, Key=key, UploadId=upload_id, PartNumber=number, Body=body
        )["ETag"]
        return etag

    def complete_multipart(self, key: str, upload_id: str, etags: list[str]) -> None:
        """CompleteMultipartUpload with the parts' ETags in part-number order (1, 2, ...)."""
        client("s3").complete_multipart_upload(
            Bucket=self.bucket,
            Key=key,
            UploadId=upload_id,
            MultipartUpload={"Parts": [{"PartNumber": n, "ETag": etag} for n, etag in enumerate(etags, start=1)]},
        )

    def abort_multipart(self, key: str, upload_id: str) -> None:
        """AbortMultipartUpload; an upload already gone (completed, aborted, expired) is not an error."""
        from botocore.exceptions import ClientError

        try:
            client("s3").abort_multipart_upload(Bucket=self.bucket, Key=key, UploadId=upload_id)
        except ClientError as exc:
            if exc.response.get("Error", {}).get("Code") not in {"NoSuchUpload", "404"}:
                raise
