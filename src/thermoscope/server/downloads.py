"""Blobs sent to clients as streams, whole or one byte range (``Range: bytes=a-b``).

A download reads the blob store 1 MiB at a time while it is sent, so a large export costs the
server a piece of memory per client, not the file. One range of the forms ``a-b``, ``a-`` and
``-n`` is answered with 206 and ``Content-Range``; a range past the end with 416; anything else
(several ranges, another unit, bad syntax) is ignored and the whole blob sent, as HTTP allows.
"""

from __future__ import annotations

import re

from fastapi import Response
from fastapi.responses import StreamingResponse

from thermoscope.storage import BlobStore

_RANGE = re.compile(r"^bytes=(\d{0,19})-(\d{0,19})$")


def byte_range(header: str | None, size: int) -> tuple[int, int] | None:
    """The ``(start, stop)`` bytes (stop exclusive) a ``Range`` header asks of a blob of
    ``size`` bytes, or ``None`` for the whole blob.

    Raises:
        ValueError: the range starts past the end (answer 416).
    """
    match = _RANGE.match((header or "").strip())
    if match is None or match.groups() == ("", ""):
        return None
    first, last = match.groups()
    if first == "":  # the last n bytes
        start, stop = max(0, size - int(last)), size
    else:
        start, stop = int(first), size if last == "" else min(size, int(last) + 1)
    if start >= size or stop <= start:
        raise ValueError(f"bytes {header} outside a blob of {size} bytes")
    return start, stop


def blob_response(
    blobs: BlobStore,
    key: str,
    range_header: str | None,
    *,
    media_type: str,
    headers: dict[str, str],
) -> Response:
    """The blob under ``key`` streamed from the store with ``headers`` (``Content-Disposition``
    ...): 200 whole, 206 for a satisfiable ``Range``, 416 for one past the end."""
    size = blobs.size(key)
    headers = {**headers, "Accept-Ranges": "bytes"}
    try:
        wanted = byte_range(range_header, size)
    except ValueError:
        return Response(status_code=416, headers={**headers, "Content-Range": f"bytes */{size}"})
    start, stop = (0, size) if wanted is None else wanted
    headers["Content-Length"] = str(stop - start)
    if wanted is not None:
        headers["Content-Range"] = f"bytes {start}-{stop - 1}/{size}"
    return StreamingResponse(
        blobs.read_stream(key, start, stop),
        status_code=200 if wanted is None else 206,
        media_type=media_type,
        headers=headers,
    )
