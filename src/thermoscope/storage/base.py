"""What every blob backend shares: the interface, the not-found error and key checking."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Protocol


class BlobNotFoundError(KeyError):
    """No blob under the key."""


class BlobStore(Protocol):
    """Where blobs live; every method is thread-safe."""

    def put(self, key: str, data: bytes) -> None:
        """Store ``data`` under ``key`` atomically (replacing what was there)."""

    def get(self, key: str) -> bytes:
        """The blob under ``key``; raises ``BlobNotFoundError``."""

    def exists(self, key: str) -> bool:
        """Whether a blob is stored under ``key``."""

    def delete(self, key: str) -> None:
        """Remove the blob under ``key`` (no error when absent)."""

    def keys(self, prefix: str) -> Iterator[str]:
        """The keys that start with ``prefix``, in lexical order."""


def check_key(key: str) -> str:
    """``key`` when it is a safe relative name, else ``ValueError``."""
    parts = key.split("/")
    if not key or key.startswith("/") or any(p in ("", ".", "..") for p in parts):
        raise ValueError(f"invalid blob key {key!r}")
    return key
