"""Blobs in a local folder: one file per key (0600, in 0700 folders), written to a temporary
file and renamed."""

from __future__ import annotations

import os
import tempfile
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import BinaryIO

from thermoscope.storage.base import STREAM_CHUNK, BlobNotFoundError, check_key
from thermoscope.storage.files import private_dir


class LocalBlobStore:
    """A folder as a blob store (the embedded default).

    Args:
        root: the folder (created when missing).
        fsync: flush each blob (and its folder entry) to disk before ``put`` returns, so an
            acknowledged blob survives a power cut, not only a process crash.
    """

    def __init__(self, root: str | os.PathLike[str], *, fsync: bool = True) -> None:
        self.root = private_dir(Path(root))
        self.fsync = fsync

    def _path(self, key: str) -> Path:
        return self.root / check_key(key)

    def put(self, key: str, data: bytes) -> None:
        """Store ``data`` under ``key`` atomically."""
        self._write(key, (data,))

    def put_file(self, key: str, source: BinaryIO) -> int:
        """Store the rest of ``source`` under ``key`` atomically, copied 1 MiB at a time;
        returns the bytes stored."""
        return self._write(key, iter(lambda: source.read(STREAM_CHUNK), b""))

    def _write(self, key: str, pieces: Iterable[bytes]) -> int:
        """Write ``pieces`` to a temporary file beside the blob, flush it (with ``fsync``) and
        rename it into place; returns the bytes written."""
        path = self._path(key)
        if not path.parent.is_dir():
            private_dir(path.parent)
        fd, tmp = tempfile.mkstemp(prefix=".tmp-", dir=path.parent)
        written = 0
        try:
            with os.fdopen(fd, "wb") as fh:
                for piece in pieces:
                    fh.write(piece)
                    written += len(piece)
                if self.fsync:
                    fh.flush()
                    os.fsync(fh.fileno())
            os.replace(tmp, path)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise
        if self.fsync:
            dir_fd = os.open(path.parent, os.O_RDONLY)
            try:
                os.fsync(dir_fd)
            finally:
                os.close(dir_fd)
        return written

    def get(self, key: str) -> bytes:
        """The blob under ``key``."""
        try:
            return self._path(key).read_bytes()
        except FileNotFoundError:
            raise BlobNotFoundError(key) from None

    def size(self, key: str) -> int:
        """The blob's length in bytes."""
        try:
            return self._path(key).stat().st_size
        except FileNotFoundError:
            raise BlobNotFoundError(key) from None

    def read_stream(self, key: str, start: int = 0, stop: int | None = None) -> Iterator[bytes]:
        """Bytes ``start:stop`` of the blob, 1 MiB at a time (opened when first iterated)."""
        try:
            fh = self._path(key).open("rb")
        except FileNotFoundError:
            raise BlobNotFoundError(key) from None
        with fh:
            fh.seek(start)
            left = None if stop is None else max(0, stop - start)
            while left is None or left > 0:
                piece = fh.read(STREAM_CHUNK if left is None else min(STREAM_CHUNK, left))
                if not piece:
                    return
                if left is not None:
                    left -= len(piece)
                yield piece

    def exists(self, key: str) -> bool:
        """Whether ``key`` is stored."""
        return self._path(key).is_file()

    def delete(self, key: str) -> None:
        """Remove ``key`` (no error when absent)."""
        self._path(key).unlink(missing_ok=True)

    def keys(self, prefix: str) -> Iterator[str]:
        """Keys starting with ``prefix`` (temporary files excluded), sorted."""
        head = prefix.rsplit("/", 1)[0] if "/" in prefix else ""
        base = self.root / head if head else self.root
        if not base.is_dir():
            return iter(())
        found = []
        for path in base.rglob("*"):
            if path.is_file() and not path.name.startswith(".tmp-"):
                key = path.relative_to(self.root).as_posix()
                if key.startswith(prefix):
                    found.append(key)
        return iter(sorted(found))
