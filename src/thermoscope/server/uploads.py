"""Completing a resumable upload without holding the file in memory.

The chunks are copied from the blob store, in order and 1 MiB at a time, into a temporary file
(in ``TMPDIR``) while their SHA-256 is computed; a file whose hash is not the one announced is
refused and its chunks dropped (the client uploads it again). A file that matches is decoded
from the temporary file and copied into the store as the frame's original, again in pieces;
then the upload is marked complete and its chunks deleted. So a completion costs about one
1 MiB piece (plus one decoded frame) of memory, whatever the file's size.
"""

from __future__ import annotations

import hashlib
import re
import tempfile
from collections.abc import Sequence
from pathlib import Path, PurePath
from typing import BinaryIO

from sqlalchemy import update

from thermoscope.server.auth import Principal
from thermoscope.server.context import ServerContext
from thermoscope.server.db.models import Upload, now
from thermoscope.server.errors import ApiError
from thermoscope.server.ingest import ingest_file
from thermoscope.server.schemas.frames import EdgeInspection, IngestOut
from thermoscope.storage import BlobStore

#: A file name suffix kept on the temporary file (readers recognise formats by it).
_SUFFIX = re.compile(r"^\.[a-z0-9]{1,16}$")


def copy_chunks(blobs: BlobStore, keys: Sequence[str], into: BinaryIO) -> str:
    """Append the blobs ``keys``, in order, to ``into`` in 1 MiB pieces; returns the SHA-256
    (lower-case hex) of everything written."""
    digest = hashlib.sha256()
    for key in keys:
        for piece in blobs.read_stream(key):
            digest.update(piece)
            into.write(piece)
    return digest.hexdigest()


def _spool_name(filename: str) -> str:
    suffix = PurePath(filename).suffix.lower()
    return "upload" + (suffix if _SUFFIX.match(suffix) else "")


def complete(ctx: ServerContext, caller: Principal, upload: Upload) -> IngestOut:
    """Check an upload whose every byte arrived against its SHA-256 and ingest it (422, with
    its chunks dropped and its offset back at 0, when the hash differs)."""
    with tempfile.TemporaryDirectory(prefix="thermoscope-upload-") as folder:
        path = Path(folder) / _spool_name(upload.filename)
        with path.open("wb") as fh:
            digest = copy_chunks(ctx.blobs, upload.chunks, fh)
        if digest != upload.sha256:
            _restart(ctx, upload)
            raise ApiError(
                422, "the uploaded bytes do not match the declared sha256; upload them again"
            )
        edge = None if upload.findings is None else EdgeInspection.model_validate(upload.findings)
        result = ingest_file(
            ctx,
            upload.project_id,
            caller,
            path,
            upload.filename,
            sha256=digest,
            edge=edge,
            meta=upload.meta,
        )
    with ctx.db.write() as session:
        session.execute(
            update(Upload)
            .where(Upload.id == upload.id)
            .values(state="complete", frame_id=result.frame_id, chunks=[], updated_at=now())
            .execution_options(synchronize_session=False)
        )
    for key in upload.chunks:
        ctx.blobs.delete(key)
    return result


def _restart(ctx: ServerContext, upload: Upload) -> None:
    """Drop an upload's chunks: it starts again at byte 0."""
    with ctx.db.write() as session:
        session.execute(
            update(Upload)
            .where(Upload.id == upload.id)
            .values(offset=0, chunks=[], updated_at=now())
            .execution_options(synchronize_session=False)
        )
    for key in upload.chunks:
        ctx.blobs.delete(key)
