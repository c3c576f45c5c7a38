"""Jobs of the project's models: ``train_model`` trains a model from a dataset version of a
project (the release lands as one of the project's models); ``score_frames`` scores the
project's frames with its active model (for the review queue's uncertainty order).

The version's single-frame items with a verdict (OK or NG, what people made or took on) are
the labelled data; their °C come from the blob store. Training is ``thermoscope.models``'
(``models.workflow.train_release``: a seeded, leak-free held-out part, the release's own
evaluation in its metrics). The release is signed with the ``model_signing_key`` setting when
one is set (then it may be activated at once), else stored unsigned and inactive until a
project admin activates it.
"""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Any

import numpy as np
from sqlalchemy import select

from thermoscope.core import ThermalFrame
from thermoscope.datasets.versions import Version
from thermoscope.models.fitting import train_release
from thermoscope.models.labelled import LabelledData
from thermoscope.models.release_zip import pack_release
from thermoscope.server.db.models import DatasetVersion, Frame
from thermoscope.server.errors import ApiError, not_found
from thermoscope.server.jobs import JobContext
from thermoscope.server.releases import (
    active_release,
    add_release,
    heatmap_key,
    margin,
    newest_version,
)
from thermoscope.storage.identity import read_celsius

#: The class of a good part (the verdict OK).
NORMAL = "OK"


def labelled_data(job: JobContext, project_id: int, version_id: str) -> LabelledData:
    """The dataset version's single-frame items with a verdict, as labelled °C frames.

    Raises:
        ApiError: 404 without the version, 422 when no item carries a verdict.
    """
    ctx = job.ctx
    with ctx.db.read() as session:
        row = session.get(DatasetVersion, version_id)
        if row is None or row.project_id != project_id:
            raise not_found(f"dataset version {version_id} of project {project_id}")
        frames = {
            f.content_hash: f
            for f in session.scalars(select(Frame).where(Frame.project_id == project_id))
        }
    version = Version.from_manifest(ctx.blobs.get(row.manifest_key), expected_id=row.content_hash)
    chosen = [
        r for r in version if r.verdict in ("OK", "NG") and len(r.frames) == 1 and r.id in frames
    ]
    if not chosen:
        raise ApiError(
            422,
            f"dataset version {version_id}: no single-frame item carries a verdict (OK or NG); "
            "annotate and accept some first",
        )
    inputs = []
    for i, record in enumerate(chosen):
        frame = frames[record.id]
        data = read_celsius(ctx.blobs, frame.celsius_prefix, 0)
        inputs.append(np.frombuffer(data, dtype="<f4").reshape(frame.height, frame.width))
        if i % 25 == 0:
            job.progress(0.4 * i / len(chosen), f"read {i} of {len(chosen)} frames")
    labels = tuple(str(r.verdict) for r in chosen)
    return LabelledData(
        inputs=inputs,
        labels=labels,
        sources=tuple(frames[r.id].filename for r in chosen),
        groups=tuple(r.serial or r.id for r in chosen),
        classes=tuple(sorted(set(labels), key=lambda c: c != NORMAL)),
        normal=NORMAL if NORMAL in labels else None,
        unit="celsius",
        dataset_hash=row.content_hash,
    )


def train_model(job: JobContext) -> dict[str, Any]:
    """Job ``train_model``: train, release (signed when the server has a key) and add it to
    the project's models."""
    params = job.params
    project_id = int(params["project_id"])
    ctx = job.ctx
    data = labelled_data(job, project_id, str(params["version_id"]))
    with ctx.db.read() as session:
        version = (newest_version(session, project_id) or 0) + 1
    job.progress(0.5, f"training a {params['kind']} model on {len(data)} items")
    key = ctx.settings.model_signing_key
    with tempfile.TemporaryDirectory(prefix="thermoscope-train-") as tmp:
        trained = train_release(
            data,
            Path(tmp) / "release",
            kind=str(params["kind"]),
            name=str(params["name"]),
            version=version,
            seed=int(params["seed"]),
            holdout=float(params["holdout"]),
            private_key=key,
        )
        zipped = pack_release(trained.folder)
    job.progress(0.9, f"storing release v{version}")
    row = add_release(
        ctx,
        project_id,
        zipped,
        signed=key is not None,
        by=str(params.get("username", "")),
        activate=bool(params.get("activate")) and key is not None,
    )
    return {
        "project_id": project_id,
        "model_version": row.version,
        "name": row.name,
        "signed": row.signed,
        "active": row.active,
        "metrics": row.manifest.get("metrics", {}),
    }


#: Report progress every this many frames.
PROGRESS_EVERY = 25


def score_frames(job: JobContext) -> dict[str, Any]:
    """Job ``score_frames``: the active model's score, margin and heat map of every frame of
    the project not yet accepted (frame 0 of a sequence); frames it already scored are skipped
    unless ``all``. Drafts stay as they are."""
    params = job.params
    project_id = int(params["project_id"])
    ctx = job.ctx
    with ctx.db.read() as session:
        release = active_release(session, project_id)
        if release is None:
            raise ApiError(422, f"project {project_id} has no active model to score with")
        rows = session.execute(
            select(
                Frame.id,
                Frame.content_hash,
                Frame.celsius_prefix,
                Frame.width,
                Frame.height,
                Frame.model_version,
            )
            .where(Frame.project_id == project_id, Frame.status != "accepted")
            .order_by(Frame.created_at, Frame.id)
        ).all()
    model = ctx.loaded_model(release)
    tag = f"{model.name}:{model.version}"
    todo = [r for r in rows if params.get("all") or r.model_version != tag]
    for i, row in enumerate(todo):
        data = read_celsius(ctx.blobs, row.celsius_prefix, 0)
        celsius = np.frombuffer(data, dtype="<f4").reshape(row.height, row.width)
        said = model.predict(ThermalFrame(celsius=celsius.copy()))
        key = None
        if said.heatmap is not None:
            key = heatmap_key(row.content_hash, tag)
            ctx.blobs.put(key, said.heatmap.astype("<f4").tobytes())
        with ctx.db.write() as session:
            frame = session.get(Frame, row.id)
            if frame is not None:
                frame.model_score = said.score
                frame.model_margin = margin(said)
                frame.model_version = tag
                frame.heatmap_key = key
        if i % PROGRESS_EVERY == 0:
            job.progress(i / max(1, len(todo)), f"{i} of {len(todo)} frames")
    return {"project_id": project_id, "model_version": tag, "scored": len(todo)}
