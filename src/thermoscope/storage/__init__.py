"""Storage below the server and the edge: blob stores and the content identity of frames.

``BlobStore`` is a small interface with two backends: ``LocalBlobStore`` (a folder, the embedded
default) and ``S3BlobStore`` (any S3-compatible store through boto3). Keys are ``/``-separated
relative names (``celsius/ab/abcd.../0.f32``). A ``put`` is atomic: a reader sees the old
value, or none, or the whole new one, never a part.

``thermoscope.storage.identity`` holds the content ids of frames (``frame_id``, ``content_id``
...) and where a frame's data lies in a blob store (``celsius_key``, ``read_celsius``).
"""

from __future__ import annotations

from thermoscope.storage.base import BlobNotFoundError, BlobStore, check_key
from thermoscope.storage.local import LocalBlobStore


def open_blob_store(
    url: str,
    *,
    fsync: bool = True,
    s3_endpoint_url: str | None = None,
    s3_region: str = "us-east-1",
    s3_access_key_id: str | None = None,
    s3_secret_access_key: str | None = None,
) -> BlobStore:
    """The blob store ``url`` names: ``s3://bucket/prefix`` or a folder (``file://`` optional).

    Args:
        url: where the blobs live.
        fsync: for a folder, flush each blob to disk before ``put`` returns.
        s3_endpoint_url, s3_region, s3_access_key_id, s3_secret_access_key: the S3 store's
            endpoint, region and credentials (default: boto3's own lookup).
    """
    if url.startswith("s3://"):
        from thermoscope.storage.s3 import S3BlobStore

        bucket, _, prefix = url.removeprefix("s3://").partition("/")
        return S3BlobStore(
            bucket,
            prefix,
            endpoint_url=s3_endpoint_url,
            region=s3_region,
            access_key_id=s3_access_key_id,
            secret_access_key=s3_secret_access_key,
        )
    return LocalBlobStore(url.removeprefix("file://"), fsync=fsync)


__all__ = ["BlobNotFoundError", "BlobStore", "LocalBlobStore", "check_key", "open_blob_store"]
