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
anything fails). ``sign_release`` adds ``manifest.sig`` (also atomically); ``verify_release``
checks the signature, then the manifest, every file's hash (no file missing, none added), the
expiry and the minimum version, and raises ``ReleaseError`` naming the file and the reason.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import re
import shutil
import tempfile
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path, PurePosixPath
from typing import Any, Literal

import numpy as np

from thermoscope.models.contract import InputContract
from thermoscope.models.errors import ModelError, ReleaseError
from thermoscope.models.signing import (
    generate_keys,
    load_private_key,
    load_public_key,
    sign_bytes,
    signature_matches,
)

Kind = Literal["classifier", "anomaly", "golden", "temporal"]
KINDS: tuple[Kind, ...] = ("classifier", "anomaly", "golden", "temporal")
MODEL_FILE = "model.onnx"
MANIFEST_FILE = "manifest.json"
SIGNATURE_FILE = "manifest.sig"
#: Value of the manifest's ``format`` key.
FORMAT = "thermoscope.release/1"
#: Keys of ``manifest.json``, in order.
MANIFEST_KEYS = (
    "format",
    "name",
    "version",
    "kind",
    "created",
    "expires",
    "classes",
    "thresholds",
    "contract",
    "dataset_hash",
    "code_version",
    "training",
    "metrics",
    "files",
)
#: Largest manifest read, bytes.
MAX_MANIFEST_BYTES = 4 * 1024 * 1024
#: Default validity of a release, days.
DEFAULT_VALID_DAYS = 365.0
_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,127}")
_SHA256 = re.compile(r"[0-9a-f]{64}")
_RESERVED = frozenset({MANIFEST_FILE, SIGNATURE_FILE})


@dataclass(frozen=True)
class Manifest:
    """What a release is: its identity, contract, decision thresholds and file hashes.

    Attributes:
        name: model name (letters, digits, ``._-``; up to 128 characters).
        version: release version, an integer ≥ 1 that only grows from release to release.
        kind: ``"classifier"``, ``"anomaly"``, ``"golden"`` or ``"temporal"``.
        created, expires: UTC times (timezone-aware); a release is refused from ``expires`` on.
        classes: class names in logit order (classifiers); ``("ok", "anomaly")`` style for
            anomaly models.
        thresholds: decision thresholds on scores in [0, 1], by class or ``"anomaly"``.
        contract: the input contract every caller applies before the model.
        dataset_hash: hash of the dataset version it was trained on.
        code_version: version of the code that trained it.
        training: training settings (JSON object).
        metrics: evaluation figures (JSON object).
        files: SHA-256 hex of every release file but the manifest and its signature, by
            relative POSIX path.
    """

    name: str
    version: int
    kind: str
    created: datetime
    expires: datetime
    classes: tuple[str, ...]
    thresholds: Mapping[str, float]
    contract: InputContract
    dataset_hash: str = ""
    code_version: str = ""
    training: Mapping[str, Any] = field(default_factory=dict)
    metrics: Mapping[str, Any] = field(default_factory=dict)
    files: Mapping[str, str] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        """The manifest as JSON-ready values (keys ``MANIFEST_KEYS``)."""
        return {
            "format": FORMAT,
            "name": self.name,
            "version": self.version,
            "kind": self.kind,
            "created": _iso(self.created),
            "expires": _iso(self.expires),
            "classes": list(self.classes),
            "thresholds": dict(self.thresholds),
            "contract": self.contract.to_dict(),
            "dataset_hash": self.dataset_hash,
            "code_version": self.code_version,
            "training": dict(self.training),
            "metrics": dict(self.metrics),
            "files": dict(self.files),
        }

    def to_json_bytes(self) -> bytes:
        """``manifest.json``'s bytes (UTF-8, indented, a final newline); NumPy scalars and
        arrays and tuples in ``training`` and ``metrics`` are written as numbers and lists.

        Raises:
            ReleaseError: ``training`` or ``metrics`` hold something JSON cannot (NaN,
                infinity, objects).
        """
        try:
            text = json.dumps(
                self.to_dict(), indent=2, ensure_ascii=False, allow_nan=False, default=_plain
            )
        except (TypeError, ValueError) as exc:
            raise ReleaseError(MANIFEST_FILE, f"cannot be written as JSON: {exc}") from None
        return (text + "\n").encode("utf-8")

    @classmethod
    def from_dict(cls, d: Any, *, source: str | Path = MANIFEST_FILE) -> Manifest:
        """The manifest of a ``to_dict`` mapping (strict: unknown keys and wrong types refused).

        Raises:
            ReleaseError: naming ``source``, the field and the reason.
        """
        if not isinstance(d, Mapping):
            raise ReleaseError(source, f"manifest must be a JSON object, got {type(d).__name__}")
        unknown = sorted(str(k) for k in d if k not in MANIFEST_KEYS)
        if unknown:
            raise ReleaseError(source, f"unknown manifest keys {unknown}")
        missing = [k for k in MANIFEST_KEYS if k not in d]
        if missing:
            raise ReleaseError(source, f"missing manifest keys {missing}")
        if d["format"] != FORMAT:
            raise ReleaseError(source, f"format must be {FORMAT!r}, got {d['format']!r}")
        try:
            contract = InputContract.from_dict(d["contract"])
        except ReleaseError:
            raise
        except ModelError as exc:
            raise ReleaseError(source, str(exc)) from None
        try:
            return cls(
                name=d["name"],
                version=d["version"],
                kind=d["kind"],
                created=_parse_time(d["created"], "created"),
                expires=_parse_time(d["expires"], "expires"),
                classes=_string_list(d["classes"], "classes"),
                thresholds=d["thresholds"],
                contract=contract,
                dataset_hash=d["dataset_hash"],
                code_version=d["code_version"],
                training=d["training"],
                metrics=d["metrics"],
                files=d["files"],
            )
        except ReleaseError as exc:
            raise ReleaseError(source, exc.reason) from None

    def __post_init__(self) -> None:
        if not isinstance(self.name, str) or not _NAME.fullmatch(self.name):
            raise ReleaseError(
                MANIFEST_FILE,
                f"name must be 1..128 letters, digits or ._- (starting with a letter or digit), "
                f"got {self.name!r}",
            )
        v = self.version
        if isinstance(v, bool) or not isinstance(v, int) or v < 1:
            raise ReleaseError(MANIFEST_FILE, f"version must be an integer >= 1, got {v!r}")
        if self.kind not in KINDS:
            raise ReleaseError(MANIFEST_FILE, f"kind must be one of {KINDS}, got {self.kind!r}")
        for name in ("created", "expires"):
            t = getattr(self, name)
            if not isinstance(t, datetime) or t.tzinfo is None:
                raise ReleaseError(MANIFEST_FILE, f"{name} must be a timezone-aware datetime")
            object.__setattr__(self, name, t.astimezone(UTC))
        if self.expires <= self.created:
            raise ReleaseError(MANIFEST_FILE, "expires must be after created")
        object.__setattr__(self, "classes", _string_list(self.classes, "classes"))
        if not isinstance(self.contract, InputContract):
            raise ReleaseError(MANIFEST_FILE, "contract must be an InputContract")
        object.__setattr__(self, "thresholds", _thresholds(self.thresholds))
        for name in ("dataset_hash", "code_version"):
            if not isinstance(getattr(self, name), str):
                raise ReleaseError(MANIFEST_FILE, f"{name} must be a string")
        for name in ("training", "metrics"):
            value = getattr(self, name)
            if not isinstance(value, Mapping) or not all(isinstance(k, str) for k in value):
                raise ReleaseError(MANIFEST_FILE, f"{name} must be a JSON object")
            object.__setattr__(self, name, dict(value))
        object.__setattr__(self, "files", _files(self.files))

    def threshold(self, key: str, default: float = 0.5) -> float:
        """The decision threshold for ``key`` (a class or ``"anomaly"``), else ``default``."""
        return float(self.thresholds.get(key, default))


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
        onnx: the model's ONNX bytes (written as ``model.onnx``).
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
        rel = _safe_relative(rel)
        if rel in payload or rel in _RESERVED:
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
        files={rel: hashlib.sha256(data).hexdigest() for rel, data in sorted(payload.items())},
    )
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
            f"release {manifest.name} v{manifest.version} expired on {_iso(manifest.expires)}",
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
    extra = sorted(present - set(manifest.files) - _RESERVED)
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


def _safe_relative(rel: Any) -> str:
    if not isinstance(rel, str) or not rel or "\\" in rel or "\x00" in rel:
        raise ReleaseError(str(rel), f"release file name {rel!r} must be a non-empty POSIX path")
    p = PurePosixPath(rel)
    if p.is_absolute() or any(part in ("", ".", "..") for part in rel.split("/")):
        raise ReleaseError(rel, f"release file name {rel!r} must be relative, without . or ..")
    return p.as_posix()


def _plain(value: Any) -> Any:
    """JSON stand-ins for NumPy values (``json.dumps``' ``default``)."""
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, np.ndarray):
        return value.tolist()
    raise TypeError(f"{type(value).__name__} is not JSON")


def _iso(t: datetime) -> str:
    return t.astimezone(UTC).isoformat().replace("+00:00", "Z")


def _parse_time(value: Any, name: str) -> datetime:
    if not isinstance(value, str):
        raise ReleaseError(MANIFEST_FILE, f"{name} must be an ISO-8601 string, got {value!r}")
    try:
        t = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        raise ReleaseError(MANIFEST_FILE, f"{name} is not ISO-8601: {value!r}") from None
    if t.tzinfo is None:
        raise ReleaseError(MANIFEST_FILE, f"{name} must carry a time zone (Z), got {value!r}")
    return t


def _string_list(value: Any, name: str) -> tuple[str, ...]:
    if not isinstance(value, list | tuple):
        raise ReleaseError(MANIFEST_FILE, f"{name} must be a list of strings, got {value!r}")
    if not all(isinstance(s, str) and s for s in value):
        raise ReleaseError(MANIFEST_FILE, f"{name} must hold non-empty strings, got {value!r}")
    if len(set(value)) != len(value):
        raise ReleaseError(MANIFEST_FILE, f"{name} repeats a name: {list(value)}")
    return tuple(value)


def _thresholds(value: Any) -> dict[str, float]:
    if not isinstance(value, Mapping):
        raise ReleaseError(MANIFEST_FILE, f"thresholds must be an object, got {value!r}")
    out: dict[str, float] = {}
    for k, v in value.items():
        if not isinstance(k, str) or isinstance(v, bool) or not isinstance(v, int | float):
            raise ReleaseError(MANIFEST_FILE, f"thresholds[{k!r}] must be a number, got {v!r}")
        if not (math.isfinite(v) and 0.0 <= v <= 1.0):
            raise ReleaseError(MANIFEST_FILE, f"thresholds[{k!r}] must be in [0, 1], got {v!r}")
        out[k] = float(v)
    return out


def _files(value: Any) -> dict[str, str]:
    if not isinstance(value, Mapping) or not value:
        raise ReleaseError(MANIFEST_FILE, "files must be a non-empty object {path: sha256}")
    out: dict[str, str] = {}
    for rel, digest in value.items():
        rel = _safe_relative(rel)
        if rel in _RESERVED:
            raise ReleaseError(MANIFEST_FILE, f"files lists the reserved name {rel!r}")
        if not isinstance(digest, str) or not _SHA256.fullmatch(digest):
            raise ReleaseError(MANIFEST_FILE, f"files[{rel!r}] must be 64 lowercase hex digits")
        out[rel] = digest
    if MODEL_FILE not in out:
        raise ReleaseError(MANIFEST_FILE, f"files must list {MODEL_FILE}")
    return out


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
