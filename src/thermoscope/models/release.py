"""Model releases: a folder with ``model.onnx``, extra files, ``manifest.json`` and its signature.

Layout of a release folder::

    model.onnx        the ONNX graph (input ``input``: float32 (N, C, H, W), contract-applied)
    <extra files>     e.g. ``index.npz`` (explanations), ``model_card.json``
    manifest.json     ``Manifest.to_dict`` as JSON: name, monotonic version, kind, created /
                      expires (UTC ISO-8601), classes, thresholds, the input contract, dataset
                      hash, code version, training settings, metrics, and the SHA-256 of
                      every other file
    manifest.sig      Ed25519 signature of manifest.json's bytes (64 raw bytes)

``write_release`` writes everything into a temporary folder beside the target and renames it
into place, so a reader sees either no release or a whole one (nothing half-written when
anything fails); the model's ONNX metadata carries the contract, classes, thresholds and
dataset hash too (``thermoscope.models.manifest``). ``sign_release`` adds ``manifest.sig``
(also atomically); ``verify_release`` checks the signature, then the manifest, every file's
hash (no file missing, none added), the expiry and the minimum version, and raises
``ReleaseError`` naming the file and the reason.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import math
import os
import shutil
import tempfile
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from thermoscope.models.contract import InputContract
from thermoscope.models.errors import ReleaseError
from thermoscope.models.manifest import (
    FORMAT,
    KINDS,
    MANIFEST_FILE,
    MANIFEST_KEYS,
    MODEL_FILE,
    RESERVED_FILES,
    SIGNATURE_FILE,
    Kind,
    Manifest,
    embed_metadata,
    iso_time,
    safe_relative,
)
from thermoscope.models.signing import (
    generate_keys,
    load_private_key,
    load_public_key,
    sign_bytes,
    signature_matches,
)

#: Largest manifest read, bytes.
MAX_MANIFEST_BYTES = 4 * 1024 * 1024
#: Default validity of a release, days.
DEFAULT_VALID_DAYS = 365.0


def write_release(
    folder: Path,
    *,
    name: str,
    version: int,
    kind: str,
    contract: InputContract,
    onnx: bytes,
    classes: Sequence[str] = (),
    thresholds: Mapping[str, float] | None = None,
    dataset_hash: str = "",
    code_version: str = "",
    training: Mapping[str, Any] | None = None,
    metrics: Mapping[str, Any] | None = None,
    extra_files: Mapping[str, bytes] | None = None,
    created: datetime | None = None,
    expires: datetime | None = None,
    valid_days: float = DEFAULT_VALID_DAYS,
    private_key: Path | None = None,
    overwrite: bool = False,
) -> Path:
    """Write a release folder atomically (a temporary folder beside it, renamed into place).

    Args:
        folder: the release folder to create; it must not exist unless ``overwrite``.
        name, version, kind, contract, classes, thresholds, dataset_hash, code_version,
            training, metrics: the manifest fields (see ``Manifest``).
        onnx: the model's ONNX bytes, written as ``model.onnx`` with the manifest's name,
            version, kind, classes, thresholds, contract and dataset hash in its metadata
            (``manifest.embed_metadata``).
        extra_files: more files by relative POSIX path (``index.npz``, ``card/model.json``).
        created: creation time (default now, UTC).
        expires: expiry time (default ``created + valid_days``).
        valid_days: validity in days when ``expires`` is not given.
        private_key: sign the manifest with this Ed25519 key before the folder appears.
        overwrite: replace an existing release folder (the old one is removed only after the
            new one is complete).

    Returns:
        The release folder.

    Raises:
        ReleaseError: a field is invalid, a file name unsafe, the folder exists, or writing
            failed (then nothing is left behind: neither the folder nor a temporary one).
    """
    folder = Path(folder)
    if not isinstance(onnx, bytes | bytearray) or not onnx:
        raise ReleaseError(MODEL_FILE, "the ONNX model must be non-empty bytes")
    payload: dict[str, bytes] = {MODEL_FILE: bytes(onnx)}
    for rel, data in (extra_files or {}).items():
        rel = safe_relative(rel)
        if rel in payload or rel in RESERVED_FILES:
            raise ReleaseError(rel, "reserved or repeated release file name")
        if not isinstance(data, bytes | bytearray):
            raise ReleaseError(rel, f"file content must be bytes, got {type(data).__name__}")
        payload[rel] = bytes(data)
    created = created or datetime.now(UTC)
    if not (math.isfinite(valid_days) and valid_days > 0):
        raise ReleaseError(MANIFEST_FILE, f"valid_days must be positive, got {valid_days!r}")
    manifest = Manifest(
        name=name,
        version=version,
        kind=kind,
        created=created,
        expires=expires or created + timedelta(days=valid_days),
        classes=tuple(classes),
        thresholds=dict(thresholds or {}),
        contract=contract,
        dataset_hash=dataset_hash,
        code_version=code_version,
        training=dict(training or {}),
        metrics=dict(metrics or {}),
        files=_hashes(payload),
    )
    payload[MODEL_FILE] = embed_metadata(payload[MODEL_FILE], manifest)
    manifest = dataclasses.replace(manifest, files=_hashes(payload))
    manifest_bytes = manifest.to_json_bytes()
    if private_key is not None:
        payload[SIGNATURE_FILE] = sign_bytes(load_private_key(private_key), manifest_bytes)
    payload[MANIFEST_FILE] = manifest_bytes
    if folder.exists() and not overwrite:
        raise ReleaseError(folder, "already exists; a release is never written over")
    parent = folder.parent
    try:
        parent.mkdir(parents=True, exist_ok=True)
        tmp = Path(tempfile.mkdtemp(prefix=f".{folder.name}.", suffix=".tmp", dir=parent))
    except OSError as exc:
        raise ReleaseError(parent, f"cannot create the release folder: {exc.strerror}") from None
    old: Path | None = None
    try:
        for rel, data in payload.items():
            _write_synced(tmp / rel, data)
        os.chmod(tmp, 0o755)
        if folder.exists():
            old = parent / f"{tmp.name}.old"
            os.replace(folder, old)
        os.replace(tmp, folder)
        _sync_dir(parent)
    except OSError as exc:
        shutil.rmtree(tmp, ignore_errors=True)
        if old is not None and not folder.exists():
            os.replace(old, folder)
        raise ReleaseError(folder, f"writing the release failed: {exc}") from None
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        if old is not None and not folder.exists():
            os.replace(old, folder)
        raise
    if old is not None:
        shutil.rmtree(old, ignore_errors=True)
    return folder


def sign_release(folder: Path, private_key_path: Path) -> Path:
    """Sign a release: write ``manifest.sig`` (Ed25519 over manifest.json's bytes) atomically.

    The files are checked against the manifest first, so an altered release is never signed.

    Returns:
        The signature file.

    Raises:
        ReleaseError: the manifest is missing or malformed, a file missing, altered or not
            listed, or the key unusable.
    """
    folder = Path(folder)
    manifest_bytes = _read_manifest_bytes(folder)
    _check_files(folder, _parse_manifest(manifest_bytes, folder / MANIFEST_FILE))
    signature = sign_bytes(load_private_key(private_key_path), manifest_bytes)
    target = folder / SIGNATURE_FILE
    tmp = folder / f".{SIGNATURE_FILE}.tmp"
    try:
        _write_synced(tmp, signature)
        os.replace(tmp, target)
    except OSError as exc:
        tmp.unlink(missing_ok=True)
        raise ReleaseError(target, f"cannot write the signature: {exc.strerror}") from None
    return target


def verify_release(
    folder: Path,
    public_key_path: Path,
    *,
    min_version: int | None = None,
    now: datetime | None = None,
) -> Manifest:
    """The manifest of a release that is signed by the key, intact, current and new enough.

    Checks, in order: the folder and ``manifest.json`` exist; ``manifest.sig`` exists and is the
    key's signature of the manifest's bytes; the manifest is well formed; every listed file is
    present with its SHA-256 and no other file is there; it has not expired at ``now``
    (default: the current time); its version is at least ``min_version``.

    Raises:
        ReleaseError: the first check that fails, naming the file and the reason.
    """
    folder = Path(folder)
    manifest_bytes = _read_manifest_bytes(folder)
    sig_path = folder / SIGNATURE_FILE
    if not sig_path.is_file():
        raise ReleaseError(sig_path, "missing: the release is unsigned")
    key = load_public_key(public_key_path)
    try:
        signature = sig_path.read_bytes()
    except OSError as exc:
        raise ReleaseError(sig_path, f"cannot read: {exc.strerror}") from None
    if not signature_matches(key, signature, manifest_bytes):
        raise ReleaseError(
            sig_path,
            f"signature does not match manifest.json for key {Path(public_key_path).name} "
            "(the manifest was altered or signed with another key)",
        )
    return check_release(folder, min_version=min_version, now=now)


def check_release(
    folder: Path,
    *,
    min_version: int | None = None,
    now: datetime | None = None,
) -> Manifest:
    """The manifest of an intact, current release, without checking a signature.

    For development releases and tools that only read; anything that runs a model on a line
    uses ``verify_release``. A naive ``now`` is taken as UTC.

    Raises:
        ReleaseError: malformed manifest, a missing, altered or unlisted file, expired, or
            older than ``min_version``.
    """
    folder = Path(folder)
    manifest_path = folder / MANIFEST_FILE
    manifest = _parse_manifest(_read_manifest_bytes(folder), manifest_path)
    _check_files(folder, manifest)
    moment = datetime.now(UTC) if now is None else now
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    if moment >= manifest.expires:
        raise ReleaseError(
            manifest_path,
            f"release {manifest.name} v{manifest.version} expired on {iso_time(manifest.expires)}",
        )
    if min_version is not None and manifest.version < min_version:
        raise ReleaseError(
            manifest_path,
            f"release {manifest.name} v{manifest.version} is older than the minimum version "
            f"{min_version} (a release is never rolled back)",
        )
    return manifest


def read_file(folder: Path, rel: str, manifest: Manifest) -> bytes:
    """A release file's bytes, checked against its SHA-256 in ``manifest``.

    Raises:
        ReleaseError: the file is not listed, missing, or altered.
    """
    path = Path(folder) / rel
    if rel not in manifest.files:
        raise ReleaseError(path, "not listed in the manifest")
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise ReleaseError(path, f"missing or unreadable ({exc.strerror})") from None
    if hashlib.sha256(data).hexdigest() != manifest.files[rel]:
        raise ReleaseError(path, "SHA-256 does not match the manifest (the file was altered)")
    return data


# -- helpers ------------------------------------------------------------------------------


def _hashes(payload: Mapping[str, bytes]) -> dict[str, str]:
    return {rel: hashlib.sha256(data).hexdigest() for rel, data in sorted(payload.items())}


def _read_manifest_bytes(folder: Path) -> bytes:
    if not folder.is_dir():
        raise ReleaseError(folder, "not a release folder (missing or not a directory)")
    path = folder / MANIFEST_FILE
    try:
        with path.open("rb") as f:
            data = f.read(MAX_MANIFEST_BYTES + 1)
    except OSError as exc:
        raise ReleaseError(path, f"missing or unreadable ({exc.strerror})") from None
    if len(data) > MAX_MANIFEST_BYTES:
        raise ReleaseError(path, f"larger than {MAX_MANIFEST_BYTES} bytes")
    return data


def _parse_manifest(data: bytes, path: Path) -> Manifest:
    try:
        obj = json.loads(data.decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError, RecursionError) as exc:
        raise ReleaseError(path, f"malformed manifest: not UTF-8 JSON ({exc})") from None
    try:
        return Manifest.from_dict(obj, source=path)
    except ReleaseError as exc:
        raise ReleaseError(path, f"malformed manifest: {exc.reason}") from None


def _check_files(folder: Path, manifest: Manifest) -> None:
    for rel in manifest.files:
        read_file(folder, rel, manifest)
    present = {
        p.relative_to(folder).as_posix() for p in folder.rglob("*") if p.is_file() or p.is_symlink()
    }
    extra = sorted(present - set(manifest.files) - RESERVED_FILES)
    if extra:
        raise ReleaseError(folder / extra[0], "not listed in the manifest (a file was added)")


def _write_synced(path: Path, data: bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("wb") as f:
        f.write(data)
        f.flush()
        os.fsync(f.fileno())


def _sync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


__all__ = [
    "DEFAULT_VALID_DAYS",
    "FORMAT",
    "KINDS",
    "MANIFEST_FILE",
    "MANIFEST_KEYS",
    "MAX_MANIFEST_BYTES",
    "MODEL_FILE",
    "SIGNATURE_FILE",
    "Kind",
    "Manifest",
    "check_release",
    "generate_keys",
    "read_file",
    "sign_release",
    "verify_release",
    "write_release",
]
