"""What every blob backend shares: the interface, the not-found error and key checking."""

from __future__ import annotations

from collections.abc import Iterator
from typing import BinaryIO, Protocol

#: Bytes per piece when a blob is read or copied as a stream (1 MiB).
STREAM_CHUNK = 1 << 20


class BlobNotFoundError(KeyError):
    """No blob under the key."""


class BlobStore(Protocol):
    """Where blobs live; every method is thread-safe."""

    def put(self, key: str, data: bytes) -> None:
        """Store ``data`` under ``key`` atomically (replacing what was there)."""

    def put_file(self, key: str, source: BinaryIO) -> int:
        """Store what ``source`` holds from its position to its end under ``key`` atomically,
        copied in pieces (never the whole file in memory); returns the bytes stored."""

    def get(self, key: str) -> bytes:
        """The blob under ``key``; raises ``BlobNotFoundError``."""

    def size(self, key: str) -> int:
        """The length of the blob under ``key`` in bytes; raises ``BlobNotFoundError``."""

    def read_stream(self, key: str, start: int = 0, stop: int | None = None) -> Iterator[bytes]:
        """Bytes ``start`` up to ``stop`` (exclusive; default: the end) of the blob under
        ``key``, in pieces of at most ``STREAM_CHUNK`` bytes. Nothing is read until the first
        piece is asked for; a missing blob raises ``BlobNotFoundError`` then."""

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
