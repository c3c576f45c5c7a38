"""Blob storage: the files and decoded frames the database rows point to.

``BlobStore`` is a small interface with two backends: ``LocalBlobStore`` (a folder, the embedded
default) and ``S3BlobStore`` (any S3-compatible store through boto3). Keys are ``/``-separated
relative names (``celsius/ab/abcd.../0.f32``). A ``put`` is atomic: a reader sees the old
value, or none, or the whole new one, never a part.
"""

from __future__ import annotations

from thermoscope.server.settings import Settings
from thermoscope.server.storage.base import BlobNotFoundError, BlobStore, check_key
from thermoscope.server.storage.local import LocalBlobStore


def open_blob_store(settings: Settings) -> BlobStore:
    """The blob store ``settings.resolved_blob_url`` names (a folder or ``s3://bucket/prefix``)."""
    url = settings.resolved_blob_url
    if url.startswith("s3://"):
        from thermoscope.server.storage.s3 import S3BlobStore

        bucket, _, prefix = url.removeprefix("s3://").partition("/")
        secret = settings.s3_secret_access_key
        return S3BlobStore(
            bucket,
            prefix,
            endpoint_url=settings.s3_endpoint_url,
            region=settings.s3_region,
            access_key_id=settings.s3_access_key_id,
            secret_access_key=None if secret is None else secret.get_secret_value(),
        )
    return LocalBlobStore(url.removeprefix("file://"), fsync=settings.fsync_blobs)


__all__ = ["BlobNotFoundError", "BlobStore", "LocalBlobStore", "check_key", "open_blob_store"]
