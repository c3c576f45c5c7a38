"""Housekeeping the job workers run now and then: abandoned resumable uploads are removed.

An upload left open (no chunk stored) for ``upload_max_age_s`` seconds is marked ``expired``
with a conditional ``UPDATE`` (so of several processes sweeping at once exactly one removes a
given upload's chunks), then its chunk blobs are deleted. A client that comes back to an
expired upload gets 409 and starts a new one.

Then chunk blobs nobody will read are swept: those under an upload that is complete or expired,
or whose row is gone, left behind when a process stopped between updating the row and deleting
the chunks (or a chunk was stored as its upload expired). An open upload's chunks are never
touched: it is the one state in which chunks are written and read.
"""

from __future__ import annotations

import logging
from datetime import timedelta
from typing import TYPE_CHECKING

from sqlalchemy import select, update

from thermoscope.server.db.models import Upload, now

if TYPE_CHECKING:
    from thermoscope.server.context import ServerContext

log = logging.getLogger(__name__)

#: Uploads expired by one sweep at most (the next sweep takes the rest).
SWEEP_BATCH = 500


def expire_uploads(ctx: ServerContext, max_age_s: float | None = None) -> int:
    """Expire the uploads open and untouched for ``max_age_s`` seconds (default: the setting
    ``upload_max_age_s``) and delete their chunks; returns how many this call expired."""
    age = ctx.settings.upload_max_age_s if max_age_s is None else max_age_s
    moment = now()
    cutoff = moment - timedelta(seconds=age)
    with ctx.db.read() as session:
        stale = session.execute(
            select(Upload.id, Upload.chunks)
            .where(Upload.state == "open", Upload.updated_at < cutoff)
            .limit(SWEEP_BATCH)
        ).all()
    expired = 0
    for upload_id, chunks in stale:
        with ctx.db.write() as session:
            result = session.execute(
                update(Upload)
                .where(Upload.id == upload_id, Upload.state == "open", Upload.updated_at < cutoff)
                .values(state="expired", offset=0, chunks=[], updated_at=moment)
                .execution_options(synchronize_session=False)
            )
        if getattr(result, "rowcount", 0) != 1:
            continue  # a chunk arrived meanwhile, or another process expired it
        expired += 1
        for key in chunks:
            ctx.blobs.delete(str(key))
        # a chunk stored but not yet recorded when the upload expired is left under its prefix
        for key in list(ctx.blobs.keys(f"uploads/{upload_id}/")):
            ctx.blobs.delete(key)
    if expired:
        log.info("expired %d abandoned uploads", expired)
    return expired


def sweep_chunks(ctx: ServerContext) -> int:
    """Delete the chunk blobs (``uploads/<id>/...``) of uploads that are not open (complete,
    expired or gone); returns how many blobs this call deleted."""
    by_upload: dict[str, list[str]] = {}
    for key in ctx.blobs.keys("uploads/"):
        by_upload.setdefault(key.split("/")[1], []).append(key)
    if not by_upload:
        return 0
    ids = list(by_upload)
    open_ids: set[str] = set()
    with ctx.db.read() as session:
        for start in range(0, len(ids), SWEEP_BATCH):
            batch = ids[start : start + SWEEP_BATCH]
            open_ids.update(
                session.scalars(
                    select(Upload.id).where(Upload.id.in_(batch), Upload.state == "open")
                )
            )
    deleted = 0
    for upload_id, keys in by_upload.items():
        if upload_id in open_ids:
            continue
        for key in keys:
            ctx.blobs.delete(key)
            deleted += 1
    if deleted:
        log.info("deleted %d chunks of finished uploads", deleted)
    return deleted


def clean_uploads(ctx: ServerContext) -> int:
    """The workers' housekeeping: ``expire_uploads`` then ``sweep_chunks``; returns how many
    uploads were expired."""
    expired = expire_uploads(ctx)
    sweep_chunks(ctx)
    return expired
