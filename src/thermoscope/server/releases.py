"""Model releases held by projects: unpacking an uploaded zip, verifying it with the trusted
keys, loading a stored release, and a model wrapper that keeps its last
prediction (for the heat map of a pre-annotation).

A release travels as a zip of its folder (``model.onnx``, ``manifest.json``, ``manifest.sig``
and extra files; a single top-level folder inside the zip is allowed). The server verifies it
with ``thermoscope.models.release.verify_release`` against each trusted public key (the
``model_public_keys`` setting, plus the public half of ``model_signing_key``): a release signed
by none of them, altered, expired or not newer than the project's newest is refused (422 with
the reason). The zip itself is stored in the blob store, and verified again whenever it is
loaded.
"""

from __future__ import annotations

import hashlib
import logging
import tempfile
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING

from cryptography.hazmat.primitives import serialization
from sqlalchemy import func, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from thermoscope.core import Finding, ThermalFrame
from thermoscope.models.errors import ModelError, ReleaseError
from thermoscope.models.manifest import SIGNATURE_FILE, Manifest
from thermoscope.models.release import check_release, verify_release
from thermoscope.models.release_zip import unpack_release
from thermoscope.models.runtime import LoadedModel, Prediction, load_model
from thermoscope.models.signing import load_private_key
from thermoscope.server.db.models import ModelRelease, now
from thermoscope.server.errors import ApiError, not_found
from thermoscope.server.settings import Settings

if TYPE_CHECKING:
    from thermoscope.server.context import ServerContext

log = logging.getLogger(__name__)


@contextmanager
def unpacked(data: bytes, *, limit: int) -> Iterator[Path]:
    """The release folder a zip holds, unpacked by ``models.release_zip.unpack_release`` into
    a temporary folder (removed on exit).

    Args:
        data: the zip's bytes.
        limit: most bytes its files may unpack to.

    Raises:
        ApiError: 422 when it is not a zip, holds unsafe names (absolute, ``..``), too many or
            too large files.
    """
    with tempfile.TemporaryDirectory(prefix="thermoscope-release-") as tmp:
        folder = Path(tmp) / "release"
        try:
            unpack_release(data, folder, limit=limit)
        except ReleaseError as exc:
            raise ApiError(422, str(exc)) from None
        yield folder


@contextmanager
def trusted_keys(settings: Settings) -> Iterator[list[Path]]:
    """The public key files a release may be signed with: ``model_public_keys`` and the
    public half of ``model_signing_key`` (written to a temporary file while in use)."""
    keys = list(settings.model_public_keys)
    with tempfile.TemporaryDirectory(prefix="thermoscope-keys-") as tmp:
        if settings.model_signing_key is not None:
            public = load_private_key(settings.model_signing_key).public_key()
            path = Path(tmp) / "server-signing.pub"
            path.write_bytes(
                public.public_bytes(
                    serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
                )
            )
            keys.append(path)
        yield keys


def verify(folder: Path, keys: Sequence[Path], *, min_version: int | None) -> tuple[Manifest, Path]:
    """The manifest of a release signed by one of ``keys`` and the key that signed it.

    Raises:
        ReleaseError: unsigned, signed by none of the keys, altered, expired or older than
            ``min_version`` (the reason of the key whose signature matched, if one did).
    """
    if not (folder / SIGNATURE_FILE).is_file():
        raise ReleaseError(SIGNATURE_FILE, "missing: the release is unsigned")
    if not keys:
        raise ReleaseError(
            SIGNATURE_FILE, "the server trusts no key (set model_public_keys); nothing is accepted"
        )
    for key in keys:
        try:
            return verify_release(folder, key, min_version=min_version), key
        except ReleaseError as exc:
            if Path(exc.path).name != SIGNATURE_FILE:
                raise  # the signature matched: the release itself is refused
    raise ReleaseError(SIGNATURE_FILE, f"signed by none of the server's {len(keys)} trusted key(s)")


def reason(exc: ReleaseError, root: Path) -> str:
    """A refusal's message with the file named relative to the release (no server paths)."""
    path = Path(exc.path)
    try:
        name = path.relative_to(root).as_posix()
    except ValueError:
        name = path.name
    return f"{name}: {exc.reason}"


def verify_zip(
    data: bytes, settings: Settings, *, min_version: int | None, signed: bool = True
) -> Manifest:
    """The manifest of an uploaded (or stored) release zip, verified.

    Args:
        data: the zip.
        settings: the trusted keys and size limits.
        min_version: refuse a release older than this.
        signed: check the signature (``False`` only for a training job's own unsigned release:
            then the files' hashes, the expiry and the version are still checked).

    Raises:
        ApiError: 422 naming the file and the reason of a refusal.
    """
    with unpacked(data, limit=settings.max_model_bytes) as folder:
        try:
            if not signed:
                return check_release(folder, min_version=min_version)
            with trusted_keys(settings) as keys:
                return verify(folder, keys, min_version=min_version)[0]
        except ReleaseError as exc:
            raise ApiError(422, f"release refused: {reason(exc, folder)}") from None
        except ModelError as exc:
            raise ApiError(422, f"release refused: {exc}") from None


def load_zip(data: bytes, settings: Settings, *, signed: bool) -> LoadedModel:
    """A stored release loaded through ``models.runtime.load_model`` (verified again).

    Raises:
        ModelError: the release is refused now (expired since, key no longer trusted) or its
            graph does not load.
    """
    try:
        with unpacked(data, limit=settings.max_model_bytes) as folder:
            if not signed:
                return load_model(folder)
            with trusted_keys(settings) as keys:
                key = verify(folder, keys, min_version=None)[1]
                return load_model(folder, public_key=key)
    except ApiError as exc:
        raise ModelError(f"stored release: {exc.detail}") from None


class RecordingModel:
    """A loaded model as the pipeline's ``PartModel`` that keeps its last prediction (the heat
    map and the score the server stores beside the drafts). One per inspection: not shared
    between threads."""

    def __init__(self, model: LoadedModel) -> None:
        self.model = model
        self.prediction: Prediction | None = None

    @property
    def name(self) -> str:
        """The model's name."""
        return self.model.name

    @property
    def version(self) -> str:
        """The release version."""
        return self.model.version

    def findings(self, frame: ThermalFrame, *, ambient_c: float | None = None) -> list[Finding]:
        """The model's findings on ``frame``; the prediction is kept in ``prediction``."""
        self.prediction = self.model.predict(frame, ambient_c=ambient_c)
        return list(self.prediction.findings)


def heatmap_key(content: str, model: str) -> str:
    """The blob key of a model's heat map (float32 little-endian, H x W) over the frame of
    content id ``content``; ``model`` is ``name:version``."""
    return f"heatmaps/{content[:2]}/{content}/{model}.f32"


def margin(prediction: Prediction) -> float:
    """How far a prediction's score lies from its decision threshold, in [0, 1] (0: the
    model could not be less sure): |value - limit| of its finding, else |score - 0.5|."""
    for finding in prediction.findings:
        if finding.limit is not None:
            return abs(float(finding.value) - float(finding.limit))
    return abs(prediction.score - 0.5)


def active_release(session: Session, project_id: int) -> ModelRelease | None:
    """The project's active release, if it has one."""
    return session.scalars(
        select(ModelRelease).where(ModelRelease.project_id == project_id, ModelRelease.active)
    ).first()


def active_model(ctx: ServerContext, session: Session, project_id: int) -> LoadedModel | None:
    """The project's active model, loaded; ``None`` without one, or when it no longer loads
    (expired, key withdrawn: logged, and frames are then drafted by the recipe alone)."""
    release = active_release(session, project_id)
    if release is None:
        return None
    try:
        return ctx.loaded_model(release)
    except ModelError as exc:
        log.warning("project %s: active model v%s not used: %s", project_id, release.version, exc)
        return None


def newest_version(session: Session, project_id: int) -> int | None:
    """The highest release version a project holds (``None``: none yet)."""
    value = session.scalar(
        select(func.max(ModelRelease.version)).where(ModelRelease.project_id == project_id)
    )
    return None if value is None else int(value)


def add_release(
    ctx: ServerContext,
    project_id: int,
    data: bytes,
    *,
    signed: bool,
    by: str,
    activate: bool = False,
) -> ModelRelease:
    """Verify a release zip, store it in the blob store and add it to a project.

    Args:
        data: the release zip.
        signed: verify its signature with the trusted keys (``False``: a training job's
            unsigned release, checked for intact files and expiry only).
        by: who adds it.
        activate: make it the project's active release.

    Raises:
        ApiError: 422 when the release is refused (the reason named), 409 when a release of
            the same version was added meanwhile.
    """
    with ctx.db.read() as session:
        newest = newest_version(session, project_id)
    manifest = verify_zip(
        data, ctx.settings, min_version=None if newest is None else newest + 1, signed=signed
    )
    digest = hashlib.sha256(data).hexdigest()
    key = f"models/{project_id}/{manifest.version}-{digest[:16]}.zip"
    ctx.blobs.put(key, data)
    try:
        with ctx.db.write() as session:
            if activate:
                _deactivate(session, project_id)
            row = ModelRelease(
                project_id=project_id,
                name=manifest.name,
                version=manifest.version,
                kind=manifest.kind,
                manifest=manifest.to_dict(),
                sha256=digest,
                blob_key=key,
                size_bytes=len(data),
                signed=signed,
                active=activate,
                created=manifest.created,
                expires=manifest.expires,
                uploaded_by=by,
                uploaded_at=now(),
            )
            session.add(row)
            session.flush()
            session.expunge(row)
            return row
    except IntegrityError:
        raise ApiError(
            409, f"a release version {manifest.version} was just added to this project"
        ) from None


def _deactivate(session: Session, project_id: int) -> None:
    session.execute(
        update(ModelRelease)
        .where(ModelRelease.project_id == project_id, ModelRelease.active)
        .values(active=False)
        .execution_options(synchronize_session=False)
    )


def activate(session: Session, project_id: int, version: int) -> ModelRelease:
    """Make a project's release of ``version`` its only active one (404 when it has none)."""
    row = session.scalars(
        select(ModelRelease).where(
            ModelRelease.project_id == project_id, ModelRelease.version == version
        )
    ).first()
    if row is None:
        raise not_found(f"model version {version} of project {project_id}")
    _deactivate(session, project_id)
    row.active = True
    session.flush()
    return row
