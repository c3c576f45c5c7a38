"""Content identity of radiometric frames (an exact SHA-256 id) and where their data is stored.

Frame id (``frame_id``), version 1, is the lower-case hex SHA-256 of, in this order:

1. the ASCII header ``thermoscope-frame-v1\\n``;
2. the canonical JSON (sorted keys, no spaces) of ``{"celsius": "<f4", "raw": "<u2" or null,
   "shape": [height, width]}`` followed by ``\\n``;
3. the temperatures: ``height * width`` float32 °C, little-endian, C (row-major) order, with every
   NaN written as the one quiet NaN ``0x7FC00000`` (``-0.0`` and ``+0.0`` stay distinct);
4. when the frame has raw counts, ``height * width`` uint16 counts, little-endian, C order.

So the id depends on the temperatures and counts only: not on the file format, the file name or
any other metadata, and two frames with equal ids hold bit-identical radiometric data. Frames are
hashed in chunks straight from their (possibly memory-mapped) arrays: nothing is copied unless a
chunk holds NaN or needs a byte-order or type conversion, so hashing runs at the speed of SHA-256
(about 0.7-0.9 GB/s per core) or of the disk, whichever is slower.

A sequence's id (``sequence_id``) hashes its frame ids in order; ``content_id`` is the id of a
part (its frame's, or its sequence's). In a blob store, a part's °C lie under
``celsius_prefix(content_id)``, frame ``i`` at ``celsius_key(prefix, i)`` (float32 little-endian,
gzip); the server's frame row id is ``frame_key(project_id, content_id)``.
"""

from __future__ import annotations

import gzip
import hashlib
import json
import os
from collections import deque
from collections.abc import Callable, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import NDArray

import thermoscope.io as tio
from thermoscope.core import ThermalFrame, ThermalSequence
from thermoscope.io import numpy_format
from thermoscope.io.errors import CorruptDataError, ThermoscopeFormatError
from thermoscope.storage.base import BlobStore

#: Leading bytes of every frame digest (the id format version).
FRAME_HASH_PREFIX = b"thermoscope-frame-v1\n"
#: The bit pattern every NaN temperature is hashed as.
CANONICAL_NAN = np.uint32(0x7FC00000)
#: Values hashed per update (float32: 1 MiB); small enough to stay in cache for the NaN check.
CHUNK_VALUES = 1 << 18

_LE_F4 = np.dtype("<f4")
_LE_U2 = np.dtype("<u2")


def frame_header(shape: tuple[int, int], *, has_raw: bool) -> bytes:
    """The bytes hashed before the pixels of a frame of ``shape`` (H, W): prefix and JSON."""
    doc = {"celsius": "<f4", "raw": "<u2" if has_raw else None, "shape": [shape[0], shape[1]]}
    text = json.dumps(doc, sort_keys=True, separators=(",", ":"))
    return FRAME_HASH_PREFIX + text.encode("ascii") + b"\n"


def _update_celsius(digest: Any, values: NDArray[Any]) -> None:
    """Feed °C values (any float dtype and layout, any shape) to ``digest`` canonically.

    Raises:
        ValueError: a value is ±inf or beyond the float32 range (frames never hold those).
    """
    flat = values.reshape(-1, order="C")
    for start in range(0, flat.size, CHUNK_VALUES):
        chunk = flat[start : start + CHUNK_VALUES]
        if chunk.dtype != _LE_F4:
            with np.errstate(over="ignore"):
                chunk = chunk.astype(_LE_F4)
        if not np.isfinite(chunk).all():
            if np.isinf(chunk).any():
                raise ValueError("±inf temperature (or one beyond the float32 range)")
            bits = chunk.view(np.uint32).copy()
            bits[np.isnan(chunk)] = CANONICAL_NAN
            chunk = bits.view(_LE_F4)
        digest.update(np.ascontiguousarray(chunk).data)


def _update_raw(digest: Any, raw: NDArray[Any]) -> None:
    flat = raw.reshape(-1, order="C")
    for start in range(0, flat.size, 2 * CHUNK_VALUES):
        chunk = flat[start : start + 2 * CHUNK_VALUES]
        digest.update(np.ascontiguousarray(chunk, dtype=_LE_U2).data)


def array_id(celsius: NDArray[Any], raw: NDArray[Any] | None = None) -> str:
    """The frame id of a (H, W) array of °C and optional uint16 counts of the same shape.

    Raises:
        ValueError: wrong dimensions, mismatched shapes, or ±inf temperatures.
    """
    if celsius.ndim != 2:
        raise ValueError(f"celsius must be 2-D (H, W), got shape {celsius.shape}")
    if raw is not None and (raw.shape != celsius.shape or raw.dtype.kind != "u"):
        raise ValueError(f"raw must be unsigned counts of shape {celsius.shape}")
    digest = hashlib.sha256(
        frame_header((int(celsius.shape[0]), int(celsius.shape[1])), has_raw=raw is not None)
    )
    _update_celsius(digest, celsius)
    if raw is not None:
        _update_raw(digest, raw)
    return digest.hexdigest()


def frame_id(frame: ThermalFrame) -> str:
    """The content id of a frame: SHA-256 of its °C and raw counts (see the module docstring)."""
    return array_id(frame.celsius, frame.raw)


def sequence_id(frame_ids: list[str]) -> str:
    """The id of an ordered series of frames: SHA-256 of their ids, one per line."""
    digest = hashlib.sha256(b"thermoscope-sequence-v1\n")
    for fid in frame_ids:
        digest.update(fid.encode("ascii") + b"\n")
    return digest.hexdigest()


def content_id(frames: Sequence[ThermalFrame]) -> str:
    """The content id of one frame (its frame id) or of a sequence of frames (``sequence_id``
    of their frame ids): what ``AnnotatedItem.item_id`` holds."""
    ids = [frame_id(f) for f in frames]
    return ids[0] if len(ids) == 1 else sequence_id(ids)


def _npy_frames(path: Path) -> NDArray[Any] | None:
    """A read-only memory map of a ``.npy`` file as frames x H x W, or ``None`` if not ``.npy``.

    The header is checked by thermoscope's ``.npy`` reader first (so the same files are
    refused), then NumPy maps the data without copying it.
    """
    with path.open("rb") as fh:
        if not fh.read(len(numpy_format.MAGIC)).startswith(numpy_format.MAGIC):
            return None
    numpy_format.open_file(path).close()
    mapped: NDArray[Any] = np.load(path, mmap_mode="r", allow_pickle=False)
    return mapped if mapped.ndim == 3 else mapped[np.newaxis]


def _hash_in_pool(count: int, hash_one: Callable[[int], str], workers: int) -> list[str]:
    """``hash_one(i)`` for ``i < count`` on ``workers`` threads (it must be thread-safe)."""
    if workers <= 1 or count <= 1:
        return [hash_one(i) for i in range(count)]
    with ThreadPoolExecutor(max_workers=workers) as pool:
        return list(pool.map(hash_one, range(count)))


def _hash_decoded(seq: ThermalSequence, workers: int) -> list[str]:
    """Decode frames in order on this thread (readers share a file handle), hash them on others."""
    if workers <= 1 or len(seq) <= 1:
        return [frame_id(frame) for frame in seq]
    pending: deque[Future[str]] = deque()
    ids: list[str] = []
    with ThreadPoolExecutor(max_workers=workers) as pool:
        for frame in seq:
            pending.append(pool.submit(frame_id, frame))
            if len(pending) > 2 * workers:
                ids.append(pending.popleft().result())
        ids.extend(f.result() for f in pending)
    return ids


def hash_file(path: str | os.PathLike[str], *, workers: int | None = None) -> list[str]:
    """Frame ids of every frame of a radiometric file, in order, equal to ``frame_id(frame)``.

    ``.npy`` files are hashed straight from a memory map (no decode, no copy for little-endian
    float32); other formats are read frame by frame with ``thermoscope.io``. Frames are hashed
    on ``workers`` threads (default: the CPU count, at most 8); SHA-256 releases the GIL.

    Raises:
        ThermoscopeFormatError: the file cannot be read, or holds ±inf temperatures.
    """
    p = Path(path)
    n_workers = workers if workers is not None else min(8, os.cpu_count() or 1)
    try:
        found = _npy_frames(p)
    except OSError as exc:
        raise ThermoscopeFormatError(f"cannot read: {exc.strerror or exc}", str(p)) from exc
    except ThermoscopeFormatError as exc:
        raise exc.with_source(str(p)) from exc
    if found is not None:
        frames = found

        def hash_npy(i: int) -> str:
            try:
                return array_id(frames[i])
            except ValueError as exc:
                raise CorruptDataError(f"frame {i}: {exc}", str(p)) from exc

        try:
            return _hash_in_pool(len(frames), hash_npy, n_workers)
        finally:
            del frames
    with tio.open_path(p) as seq:
        return _hash_decoded(seq, n_workers)


def frame_key(project_id: int, content: str) -> str:
    """The server's frame id of radiometric content ``content`` (a content id) in a project:
    the first 32 hex digits of SHA-256 of ``"<project_id>/<content>"``."""
    return hashlib.sha256(f"{project_id}/{content}".encode("ascii")).hexdigest()[:32]


def celsius_prefix(content: str) -> str:
    """The blob key prefix under which the °C of content ``content``'s frames are stored."""
    return f"celsius/{content[:2]}/{content}"


def celsius_key(prefix: str, index: int) -> str:
    """The blob key of frame ``index``'s °C under a frame's ``celsius_prefix``: float32
    little-endian HxW, gzip-compressed (served as is to clients that accept gzip)."""
    return f"{prefix}/{index}.f32.gz"


def put_celsius(blobs: BlobStore, prefix: str, index: int, celsius: NDArray[Any]) -> None:
    """Store frame ``index``'s °C (float32 little-endian, gzip level 1, no time stamp)."""
    data = np.ascontiguousarray(celsius, dtype="<f4").tobytes()
    blobs.put(celsius_key(prefix, index), gzip.compress(data, compresslevel=1, mtime=0))


def read_celsius(blobs: BlobStore, prefix: str, index: int) -> bytes:
    """The float32 little-endian °C bytes of frame ``index`` (uncompressed)."""
    return gzip.decompress(blobs.get(celsius_key(prefix, index)))
