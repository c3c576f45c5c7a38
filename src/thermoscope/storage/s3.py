"""Blobs in an S3-compatible store through boto3.

A ``put_object`` is atomic by itself; a file (``put_file``) larger than one part goes up as a
multipart upload, one part in memory at a time, and appears only when the upload is completed
(a failed one is aborted, so no part lingers).
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import Any, BinaryIO

import boto3
from botocore.config import Config
from botocore.exceptions import ClientError

from thermoscope.storage.base import STREAM_CHUNK, BlobNotFoundError, check_key

#: Bytes per part of a multipart upload: the most ``put_file`` holds in memory.
PART_BYTES = 8 << 20
#: The least S3 accepts for every part but the last.
MIN_PART_BYTES = 5 << 20
_MISSING = ("NoSuchKey", "404", "NotFound")


class S3BlobStore:
    """A bucket (and key prefix) of an S3-compatible store.

    Args:
        bucket: the bucket; created when missing.
        prefix: prepended to every key (``"thermoscope/"``); may be empty.
        endpoint_url: the store's endpoint for non-AWS stores (``http://127.0.0.1:8333``).
        region: the region name.
        access_key_id, secret_access_key: credentials (default: boto3's own lookup).
        part_bytes: bytes per part of a multipart upload (at least 5 MiB).
    """

    def __init__(
        self,
        bucket: str,
        prefix: str = "",
        *,
        endpoint_url: str | None = None,
        region: str = "us-east-1",
        access_key_id: str | None = None,
        secret_access_key: str | None = None,
        part_bytes: int = PART_BYTES,
    ) -> None:
        if not bucket:
            raise ValueError("an s3:// blob URL needs a bucket: s3://bucket/prefix")
        if part_bytes < MIN_PART_BYTES:
            raise ValueError(f"part_bytes {part_bytes} is below S3's minimum {MIN_PART_BYTES}")
        self.part_bytes = part_bytes
        self.bucket = bucket
        self.prefix = prefix.strip("/") + "/" if prefix.strip("/") else ""
        self.client: Any = boto3.client(
            "s3",
            endpoint_url=endpoint_url,
            region_name=region,
            aws_access_key_id=access_key_id,
            aws_secret_access_key=secret_access_key,
            config=Config(
                retries={"max_attempts": 5, "mode": "standard"},
                max_pool_connections=50,
                s3={"addressing_style": "path"},
            ),
        )
        self._ensure_bucket()

    def _ensure_bucket(self) -> None:
        try:
            self.client.head_bucket(Bucket=self.bucket)
        except ClientError:
            self.client.create_bucket(Bucket=self.bucket)

    def _key(self, key: str) -> str:
        return self.prefix + check_key(key)

    def put(self, key: str, data: bytes) -> None:
        """Store ``data`` under ``key`` (atomic: S3 objects appear whole)."""
        self.client.put_object(Bucket=self.bucket, Key=self._key(key), Body=data)

    def put_file(self, key: str, source: BinaryIO) -> int:
        """Store the rest of ``source`` under ``key``: one ``put_object`` when it fits in a
        part, else a multipart upload read one part at a time; returns the bytes stored."""
        part = source.read(self.part_bytes)
        if len(part) < self.part_bytes:
            self.put(key, part)
            return len(part)
        name = self._key(key)
        upload_id = self.client.create_multipart_upload(Bucket=self.bucket, Key=name)["UploadId"]
        parts: list[dict[str, Any]] = []
        stored = 0
        try:
            while part:
                number = len(parts) + 1
                answer = self.client.upload_part(
                    Bucket=self.bucket, Key=name, UploadId=upload_id, PartNumber=number, Body=part
                )
                parts.append({"ETag": answer["ETag"], "PartNumber": number})
                stored += len(part)
                part = b""  # let the part go before the next one is read
                part = source.read(self.part_bytes)
            self.client.complete_multipart_upload(
                Bucket=self.bucket, Key=name, UploadId=upload_id, MultipartUpload={"Parts": parts}
            )
        except BaseException:
            with contextlib.suppress(ClientError):
                self.client.abort_multipart_upload(Bucket=self.bucket, Key=name, UploadId=upload_id)
            raise
        return stored

    def get(self, key: str) -> bytes:
        """The blob under ``key``."""
        try:
            response = self.client.get_object(Bucket=self.bucket, Key=self._key(key))
        except ClientError as exc:
            if exc.response.get("Error", {}).get("Code") in _MISSING:
                raise BlobNotFoundError(key) from None
            raise
        data: bytes = response["Body"].read()
        return data

    def size(self, key: str) -> int:
        """The blob's length in bytes."""
        try:
            head = self.client.head_object(Bucket=self.bucket, Key=self._key(key))
        except ClientError as exc:
            if exc.response.get("Error", {}).get("Code") in _MISSING:
                raise BlobNotFoundError(key) from None
            raise
        return int(head["ContentLength"])

    def read_stream(self, key: str, start: int = 0, stop: int | None = None) -> Iterator[bytes]:
        """Bytes ``start:stop`` of the blob (one ranged ``get_object`` when first iterated),
        1 MiB at a time."""
        if stop is not None and stop <= start:
            return
        wanted = f"bytes={start}-" + ("" if stop is None else str(stop - 1))
        try:
            response = self.client.get_object(Bucket=self.bucket, Key=self._key(key), Range=wanted)
        except ClientError as exc:
            if exc.response.get("Error", {}).get("Code") in _MISSING:
                raise BlobNotFoundError(key) from None
            raise
        body = response["Body"]
        try:
            yield from body.iter_chunks(STREAM_CHUNK)
        finally:
            body.close()

    def exists(self, key: str) -> bool:
        """Whether ``key`` is stored."""
        try:
            self.client.head_object(Bucket=self.bucket, Key=self._key(key))
        except ClientError as exc:
            if exc.response.get("Error", {}).get("Code") in _MISSING:
                return False
            raise
        return True

    def delete(self, key: str) -> None:
        """Remove ``key`` (no error when absent)."""
        self.client.delete_object(Bucket=self.bucket, Key=self._key(key))

    def keys(self, prefix: str) -> Iterator[str]:
        """Keys starting with ``prefix``, in lexical order."""
        paginator = self.client.get_paginator("list_objects_v2")
        for page in paginator.paginate(Bucket=self.bucket, Prefix=self.prefix + prefix):
            for obj in page.get("Contents", []):
                yield obj["Key"][len(self.prefix) :]
