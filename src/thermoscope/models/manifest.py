"""The release manifest: what a release is, its contract, thresholds and file hashes.

``Manifest`` is ``manifest.json`` as a checked value (``to_dict`` / ``from_dict``, strict);
``embed_metadata`` writes the manifest's identity, input contract, classes, thresholds and
dataset hash into the ONNX model's metadata (``metadata_props``, keys ``thermoscope.*``), so a
``model.onnx`` taken out of its release still says how to feed it, and ``embedded_metadata``
reads them back. ``thermoscope.models.release`` writes, signs and verifies release folders.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path, PurePosixPath
from typing import Any, Literal

import numpy as np
import onnx
from google.protobuf.message import DecodeError

from thermoscope.models.contract import InputContract
from thermoscope.models.errors import ModelError, ReleaseError

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
_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,127}")
_SHA256 = re.compile(r"[0-9a-f]{64}")
RESERVED_FILES = frozenset({MANIFEST_FILE, SIGNATURE_FILE})


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
            "created": iso_time(self.created),
            "expires": iso_time(self.expires),
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


def safe_relative(rel: Any) -> str:
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


def iso_time(t: datetime) -> str:
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
        rel = safe_relative(rel)
        if rel in RESERVED_FILES:
            raise ReleaseError(MANIFEST_FILE, f"files lists the reserved name {rel!r}")
        if not isinstance(digest, str) or not _SHA256.fullmatch(digest):
            raise ReleaseError(MANIFEST_FILE, f"files[{rel!r}] must be 64 lowercase hex digits")
        out[rel] = digest
    if MODEL_FILE not in out:
        raise ReleaseError(MANIFEST_FILE, f"files must list {MODEL_FILE}")
    return out


#: Prefix of the ONNX metadata keys a release writes into its model.
METADATA_PREFIX = "thermoscope."
#: Manifest fields embedded in the ONNX model (JSON values under ``thermoscope.<field>``).
EMBEDDED_FIELDS = ("name", "version", "kind", "classes", "thresholds", "contract", "dataset_hash")


def embed_metadata(model: bytes, manifest: Manifest) -> bytes:
    """``model`` with the manifest's ``EMBEDDED_FIELDS`` in its ONNX metadata.

    Bytes that are not an ONNX model with a graph are returned unchanged (ONNX Runtime
    refuses them when the release is loaded, naming the file).
    """
    proto = onnx.ModelProto()
    try:
        proto.ParseFromString(model)
    except (DecodeError, ValueError, RuntimeError):
        return model
    if not proto.HasField("graph") or not proto.graph.node:
        return model
    values = manifest.to_dict()
    kept = [p for p in proto.metadata_props if not p.key.startswith(METADATA_PREFIX)]
    del proto.metadata_props[:]
    proto.metadata_props.extend(kept)
    for name in EMBEDDED_FIELDS:
        entry = proto.metadata_props.add()
        entry.key = METADATA_PREFIX + name
        entry.value = json.dumps(values[name], sort_keys=True)
    data: bytes = proto.SerializeToString()
    return data


def embedded_metadata(metadata: Mapping[str, str]) -> dict[str, Any]:
    """The ``thermoscope.*`` fields of an ONNX model's metadata map, decoded from JSON
    (fields that are not valid JSON are left out)."""
    out: dict[str, Any] = {}
    for key, value in metadata.items():
        if key.startswith(METADATA_PREFIX):
            try:
                out[key[len(METADATA_PREFIX) :]] = json.loads(value)
            except ValueError:
                continue
    return out


__all__ = [
    "EMBEDDED_FIELDS",
    "FORMAT",
    "KINDS",
    "MANIFEST_FILE",
    "MANIFEST_KEYS",
    "METADATA_PREFIX",
    "MODEL_FILE",
    "RESERVED_FILES",
    "SIGNATURE_FILE",
    "Kind",
    "Manifest",
    "embed_metadata",
    "embedded_metadata",
    "iso_time",
    "safe_relative",
]
