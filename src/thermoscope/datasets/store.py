"""A dataset on the embedded default, a local folder: frames stored once by content, annotations
as JSON, a working state you add to, and immutable versions.

Layout under the dataset's root folder (all JSON is UTF-8)::

    dataset.json                     {"format": "thermoscope-dataset", "format_version": 1,
                                      "name": str}
    working.json                     the working state: {"format": "thermoscope-dataset-working",
                                      "schema": ..., "items": [ItemRecord dicts]}
    frames/<id[:2]>/<id>.tiff        float32 °C and metadata (thermoscope's TIFF writer)
    frames/<id[:2]>/<id>.raw.npy     uint16 raw counts, only for frames that have them
    annotations/<h[:2]>/<h>.json     an annotation's canonical JSON; ``h`` is its SHA-256
    versions/<id>.json               a version manifest; ``id`` is its SHA-256 (read-only file)
    tags/<name>.json                 {"version": id, "message": str, "created": ISO 8601}
    splits/<id>.json                 a saved split: version, parameters and the ids per part
    log.jsonl                        one line per commit: version, time, message, tag

Frames, annotations, versions, splits and tags are immutable: written once to a temporary file
and linked into place, never overwritten (a second write of the same content is a no-op, a
different content under an existing name is refused). ``working.json`` is the only file that is
rewritten, atomically (temporary file + rename) under an exclusive lock on ``.lock``; changes
made by another process in the meantime are kept (per item, the last writer wins).
"""

from __future__ import annotations

import fcntl
import io
import json
import os
import re
from collections import Counter
from collections.abc import Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Literal

import numpy as np
from numpy.typing import NDArray

import thermoscope.io as tio
from thermoscope.annotations import AnnotatedItem, LabelSchema
from thermoscope.core import ThermalFrame, ThermalSequence, Verdict
from thermoscope.datasets.hashing import perceptual_hash
from thermoscope.datasets.versions import (
    DatasetError,
    ItemRecord,
    Version,
    VersionDiff,
    VersionStats,
    canonical_json,
    content_hash,
    diff,
    stats,
)
from thermoscope.storage.identity import frame_id, sequence_id

DATASET_FORMAT = "thermoscope-dataset"
WORKING_FORMAT = "thermoscope-dataset-working"
FORMAT_VERSION = 1
#: The reference that names the working state rather than a version.
WORKING = "working"
_HEX64 = re.compile(r"[0-9a-f]{64}")
_TAG = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,99}")
#: Item metadata that ``add`` and ``update`` accept.
METADATA_FIELDS = ("product", "serial", "sequence", "frame_index", "duplicate_group", "source")

AddStatus = Literal["added", "unchanged", "updated"]
#: An annotation as the model or as its ``to_dict()``.
AnnotationLike = AnnotatedItem | Mapping[str, Any]


@dataclass(frozen=True, slots=True)
class AddResult:
    """What ``add`` did with one frame: ``added`` a new item, found it ``unchanged``, or
    ``updated`` an existing item (only with ``replace=True``)."""

    item: ItemRecord
    status: AddStatus


@dataclass(frozen=True, slots=True)
class VersionInfo:
    """A committed version as listed by ``log``: id, commit time, message, tag, item count."""

    id: str
    created: str
    message: str
    tag: str | None
    items: int


def _link_new(path: Path, data: bytes, *, read_only: bool = False) -> bool:
    """Create ``path`` with ``data`` atomically, never replacing an existing file.

    Returns ``True`` when written, ``False`` when the file already holds exactly ``data``.

    Raises:
        DatasetError: the file exists with other content.
    """
    if path.exists():
        if path.read_bytes() == data:
            return False
        raise DatasetError(f"refusing to overwrite {path.name}: it exists with other content")
    fd, tmp = tio.registry.new_temp_file(path)  # mode as open() gives: 0666 minus the umask
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        if read_only:
            os.chmod(tmp, 0o444)
        try:
            os.link(tmp, path)
        except FileExistsError:
            if path.read_bytes() != data:
                raise DatasetError(
                    f"refusing to overwrite {path.name}: it exists with other content"
                ) from None
            return False
    finally:
        tmp.unlink(missing_ok=True)
    return True


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")


class DatasetStore:
    """A dataset in a local folder (see the module docstring for the layout).

    Open with ``DatasetStore.create(root)`` or ``DatasetStore.open(root)``. Changes to the
    working state (``add``, ``annotate``, ``update``, ``remove``, ``set_schema``) are saved at
    once, or at the end of a ``with store.batch():`` block, which is much faster for many items.
    """

    def __init__(self, root: Path, name: str) -> None:
        self.root = root
        self.name = name
        self._items: dict[str, ItemRecord] = {}
        self._schema: dict[str, Any] | None = None
        self._pending: list[tuple[str, Any]] = []
        self._batch_depth = 0
        self._reload()

    # -- opening -----------------------------------------------------------------------------

    @classmethod
    def create(
        cls,
        root: str | os.PathLike[str],
        *,
        name: str | None = None,
        schema: LabelSchema | Mapping[str, Any] | None = None,
    ) -> DatasetStore:
        """Create an empty dataset in ``root`` (which may exist but must not hold a dataset).

        Args:
            root: the dataset folder.
            name: a display name (default: the folder's name).
            schema: the label schema (or its ``to_dict()``).

        Raises:
            DatasetError: ``root`` already holds a dataset.
            AnnotationError: the schema is malformed.
        """
        path = Path(root)
        marker = path / "dataset.json"
        if marker.exists():
            raise DatasetError(f"{path} already holds a dataset")
        doc = {
            "format": DATASET_FORMAT,
            "format_version": FORMAT_VERSION,
            "name": name or path.resolve().name,
        }
        path.mkdir(parents=True, exist_ok=True)
        working: dict[str, Any] = {
            "format": WORKING_FORMAT,
            "schema": _schema_dict(schema),
            "items": [],
        }
        tio.registry.write_atomic(path / "working.json", canonical_json(working))
        _link_new(marker, canonical_json(doc))
        return cls(path, str(doc["name"]))

    @classmethod
    def open(cls, root: str | os.PathLike[str]) -> DatasetStore:
        """Open the dataset in ``root``.

        Raises:
            DatasetError: no dataset there, or one of an unknown format version.
        """
        path = Path(root)
        try:
            doc = json.loads((path / "dataset.json").read_bytes())
        except FileNotFoundError:
            raise DatasetError(f"{path} holds no dataset (no dataset.json)") from None
        except (OSError, ValueError) as exc:
            raise DatasetError(f"{path}/dataset.json is unreadable: {exc}") from exc
        if not isinstance(doc, dict) or doc.get("format") != DATASET_FORMAT:
            raise DatasetError(f"{path}/dataset.json is not a thermoscope dataset")
        if doc.get("format_version") != FORMAT_VERSION:
            raise DatasetError(f"dataset format version {doc.get('format_version')!r} unknown")
        return cls(path, str(doc.get("name", path.name)))

    # -- working state -----------------------------------------------------------------------

    def _read_working(self) -> tuple[dict[str, ItemRecord], dict[str, Any] | None]:
        path = self.root / "working.json"
        try:
            doc = json.loads(path.read_bytes())
        except (OSError, ValueError) as exc:
            raise DatasetError(f"{path} is unreadable: {exc}") from exc
        if not isinstance(doc, dict) or doc.get("format") != WORKING_FORMAT:
            raise DatasetError(f"{path} is not a dataset working state")
        items = {}
        for entry in doc.get("items", []):
            record = ItemRecord.from_dict(entry)
            items[record.id] = record
        return items, doc.get("schema")

    def _reload(self) -> None:
        self._items, self._schema = self._read_working()

    @contextmanager
    def _locked(self) -> Iterator[None]:
        with (self.root / ".lock").open("a+b") as fh:
            fcntl.flock(fh.fileno(), fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(fh.fileno(), fcntl.LOCK_UN)

    def flush(self) -> None:
        """Save pending working-state changes (merged with changes other processes saved)."""
        if not self._pending:
            return
        with self._locked():
            items, schema = self._read_working()
            for op, value in self._pending:
                if op == "put":
                    items[value.id] = value
                elif op == "remove":
                    items.pop(value, None)
                else:
                    schema = value
            doc = {
                "format": WORKING_FORMAT,
                "schema": schema,
                "items": [items[k].to_dict() for k in sorted(items)],
            }
            tio.registry.write_atomic(self.root / "working.json", canonical_json(doc))
        self._pending.clear()
        self._items, self._schema = items, schema

    @contextmanager
    def batch(self) -> Iterator[DatasetStore]:
        """Group working-state changes into one save at the end of the block (also on errors:
        the changes made before an exception are kept)."""
        self._batch_depth += 1
        try:
            yield self
        finally:
            self._batch_depth -= 1
            if self._batch_depth == 0:
                self.flush()

    def _change(self, op: str, value: Any) -> None:
        self._pending.append((op, value))
        if op == "put":
            self._items[value.id] = value
        elif op == "remove":
            self._items.pop(value, None)
        else:
            self._schema = value
        if self._batch_depth == 0:
            self.flush()

    @property
    def schema(self) -> dict[str, Any] | None:
        """The working state's label schema (a dict), or ``None``."""
        return None if self._schema is None else dict(self._schema)

    def set_schema(self, schema: LabelSchema | Mapping[str, Any] | None) -> None:
        """Replace the working state's label schema (existing annotations are not rechecked).

        Raises:
            AnnotationError: the schema is malformed.
        """
        self._change("schema", _schema_dict(schema))

    def items(self) -> list[ItemRecord]:
        """The working state's items, sorted by id."""
        return [self._items[k] for k in sorted(self._items)]

    def item(self, item_id: str) -> ItemRecord:
        """One working-state item.

        Raises:
            DatasetError: no such item.
        """
        try:
            return self._items[item_id]
        except KeyError:
            raise DatasetError(f"no item {item_id!r} in the working state") from None

    def __len__(self) -> int:
        return len(self._items)

    def __contains__(self, item_id: object) -> bool:
        return item_id in self._items

    def working(self) -> Version:
        """The working state as a (not yet committed) version."""
        return Version.of(self._items.values(), self._schema)

    # -- frames and annotations --------------------------------------------------------------

    def _frame_path(self, fid: str, suffix: str) -> Path:
        return self.root / "frames" / fid[:2] / f"{fid}{suffix}"

    def has_frame(self, fid: str) -> bool:
        """Whether the frame with content id ``fid`` is stored."""
        return self._frame_path(fid, ".tiff").is_file()

    def put_frame(self, frame: ThermalFrame, fid: str | None = None) -> str:
        """Store a frame once (by content id) and return its id.

        Temperatures go to a float32 TIFF with the frame's metadata (``source`` reduced to a
        file name), raw counts to a ``.raw.npy`` beside it.
        """
        fid = fid or frame_id(frame)
        if self.has_frame(fid):
            return fid
        if frame.raw is not None:
            buffer = io.BytesIO()
            np.save(buffer, np.ascontiguousarray(frame.raw, dtype="<u2"), allow_pickle=False)
            tio.registry.write_atomic(self._frame_path(fid, ".raw.npy"), buffer.getvalue())
        meta = frame.metadata
        portable = replace(frame, metadata=replace(meta, source=Path(meta.source).name))
        tio.save(portable, self._frame_path(fid, ".tiff"))
        return fid

    def load_frame(self, fid: str, *, verify: bool = False) -> ThermalFrame:
        """The stored frame with content id ``fid`` (with its raw counts when it had them).

        Args:
            fid: the frame's content id.
            verify: recompute the id from the loaded data and compare.

        Raises:
            DatasetError: no such frame, or (``verify``) its content does not match its id.
        """
        path = self._frame_path(fid, ".tiff")
        if not path.is_file():
            raise DatasetError(f"frame {fid} is not stored in {self.root}")
        frame = tio.load(path)
        raw_path = self._frame_path(fid, ".raw.npy")
        if raw_path.is_file():
            raw = np.load(raw_path, allow_pickle=False)
            frame = replace(frame, raw=np.asarray(raw, dtype=np.uint16))
        if verify and frame_id(frame) != fid:
            raise DatasetError(f"frame {fid} was modified on disk (hash mismatch)")
        return frame

    def _annotation_path(self, digest: str) -> Path:
        return self.root / "annotations" / digest[:2] / f"{digest}.json"

    def put_annotation(self, annotation: AnnotatedItem) -> str:
        """Store an annotation's canonical JSON once; return its SHA-256."""
        data = canonical_json(annotation.to_dict())
        digest = content_hash(data)
        path = self._annotation_path(digest)
        if not path.is_file():
            _link_new(path, data)
        return digest

    def load_annotation(self, digest: str) -> AnnotatedItem:
        """The annotation stored under ``digest``.

        Raises:
            DatasetError: not stored, or modified on disk.
        """
        try:
            data = self._annotation_path(digest).read_bytes()
        except FileNotFoundError:
            raise DatasetError(f"annotation {digest} is not stored in {self.root}") from None
        if content_hash(data) != digest:
            raise DatasetError(f"annotation {digest} was modified on disk (hash mismatch)")
        return AnnotatedItem.from_dict(json.loads(data))

    # -- adding ------------------------------------------------------------------------------

    def _annotated(
        self, annotation: AnnotationLike, content: str, data: _Ingested
    ) -> AnnotatedItem:
        """The annotation as a checked ``AnnotatedItem`` of this data (schema included)."""
        schema = None if self._schema is None else LabelSchema.from_dict(self._schema)
        if isinstance(annotation, AnnotatedItem):
            item = annotation
            if schema is not None:
                item.validate(schema)
        else:
            item = AnnotatedItem.from_dict(annotation, schema=schema)
        found = (item.item_id, item.width, item.height, item.frame_count)
        if found != (content, data.width, data.height, len(data.ids)):
            raise DatasetError(
                f"the annotation is for item {item.item_id} ({item.width}x{item.height}, "
                f"{item.frame_count} frames), the data is {content} ({data.width}x"
                f"{data.height}, {len(data.ids)} frames)"
            )
        return item

    def _ingest(self, frames: Iterable[ThermalFrame]) -> _Ingested:
        """Hash and store frames one at a time (a long recording is never held whole)."""
        ids: list[str] = []
        size: tuple[int, int] | None = None
        mean = _RunningMean()
        for frame in frames:
            if size is not None and frame.shape != size:
                raise DatasetError(
                    f"the frames of one item differ in size: frame {len(ids)} is "
                    f"{frame.width}x{frame.height}, frame 0 is {size[1]}x{size[0]}"
                )
            size = frame.shape
            ids.append(self.put_frame(frame))
            mean.add(frame.celsius)
        if size is None:
            raise DatasetError("an item needs at least one frame")
        return _Ingested(ids, size[0], size[1], perceptual_hash(mean.value()))

    def _record(
        self,
        data: _Ingested,
        annotation: AnnotationLike | None,
        item_id: str | None,
        golden: bool,
        metadata: Mapping[str, Any],
    ) -> tuple[ItemRecord, AnnotatedItem | None]:
        content = data.ids[0] if len(data.ids) == 1 else sequence_id(data.ids)
        annotated = None if annotation is None else self._annotated(annotation, content, data)
        summary = summarise(annotated)
        source = metadata.get("source")
        record = ItemRecord(
            id=item_id or content,
            frames=tuple(data.ids),
            height=data.height,
            width=data.width,
            annotation=None if annotated is None else _annotation_hash(annotated),
            phash=data.phash,
            labels=summary.labels,
            verdict=summary.verdict,
            review=summary.review,
            golden=golden,
            **{**metadata, "source": Path(source).name if source else None},
        )
        return record, annotated

    def _upsert(
        self, record: ItemRecord, annotated: AnnotatedItem | None, replace: bool
    ) -> AddResult:
        old = self._items.get(record.id)
        if old is not None:
            if old == record.with_changes(source=old.source):
                return AddResult(old, "unchanged")
            if not replace:
                raise DatasetError(
                    f"item {record.id} exists with other content "
                    f"({', '.join(_differences(old, record))}); pass replace to update it"
                )
        if annotated is not None:
            self.put_annotation(annotated)
        self._change("put", record)
        return AddResult(record, "added" if old is None else "updated")

    def add(
        self,
        frames: ThermalFrame | Sequence[ThermalFrame] | ThermalSequence,
        *,
        annotation: AnnotationLike | None = None,
        item_id: str | None = None,
        golden: bool = False,
        replace: bool = False,
        **metadata: Any,
    ) -> AddResult:
        """Add a frame, or a sequence of frames as one item, to the working state.

        Frames are stored once by content, read one at a time (a ``ThermalSequence`` is never
        decoded whole); the annotation is checked (against the label schema, and its
        ``item_id``, size and frame count against the data) and stored by its hash.

        Args:
            frames: one frame, or the frames of a sequence (all the same size).
            annotation: an ``AnnotatedItem`` (or its ``to_dict()``) whose ``item_id`` is the
                item's content id (``ItemRecord.content``), if annotated.
            item_id: the item's key (default: its content id).
            golden: mark it a golden reference example of its product.
            replace: let an item with the same id but other content be replaced.
            **metadata: ``product``, ``serial``, ``sequence``, ``frame_index``,
                ``duplicate_group``, ``source`` (reduced to a file name).

        Returns:
            the item and whether it was added, unchanged (an equal item exists; its ``source``
            is kept) or updated.

        Raises:
            DatasetError: an item with this id exists with other content and ``replace`` is
                false, the annotation does not fit, or the metadata has unknown keys.
            AnnotationError: the annotation is malformed or breaks the label schema.
        """
        _check_metadata(metadata)
        data = self._ingest([frames] if isinstance(frames, ThermalFrame) else frames)
        record, annotated = self._record(data, annotation, item_id, golden, metadata)
        return self._upsert(record, annotated, replace)

    def add_file(
        self,
        path: str | os.PathLike[str],
        *,
        key: Literal["content", "name"] = "content",
        per_frame: bool = False,
        golden: bool = False,
        replace: bool = False,
        **metadata: Any,
    ) -> list[AddResult]:
        """Add a radiometric file: one item, or with ``per_frame`` one item per frame.

        A multi-frame file is one sequence item by default. With ``per_frame`` its frames become
        single-frame items that share a ``sequence`` id (``storage.identity.sequence_id`` of
        their frame ids) and carry their ``frame_index``, so splits can keep them together.
        Frames are read one at a time.

        Args:
            path: any file ``thermoscope.io`` reads.
            key: item ids by ``content`` (default), or by file ``name`` (plus ``#<index>`` per
                frame with ``per_frame``), which keeps byte-identical files as separate items.
            per_frame: one item per frame instead of one per file.
            golden, replace, metadata: as for ``add`` (for every item).

        Raises:
            ThermoscopeFormatError: the file cannot be read (no item of it is added).
            DatasetError: as for ``add``.
        """
        _check_metadata(metadata)
        p = Path(path)
        shared: dict[str, Any] = {"source": p.name, **metadata}
        with tio.open_path(p) as seq:
            if not per_frame or len(seq) == 1:
                item_id = p.name if key == "name" else None
                return [self.add(seq, item_id=item_id, golden=golden, replace=replace, **shared)]
            parts = [self._ingest([frame]) for frame in seq]
        shared.setdefault("sequence", sequence_id([d.ids[0] for d in parts]))
        results = []
        with self.batch():
            for index, data in enumerate(parts):
                item_id = f"{p.name}#{index}" if key == "name" else None
                record, _ = self._record(
                    data, None, item_id, golden, {"frame_index": index, **shared}
                )
                results.append(self._upsert(record, None, replace))
        return results

    def annotate(self, item_id: str, annotation: AnnotationLike | None) -> ItemRecord:
        """Set (or with ``None`` clear) the annotation of an existing item (checked as in
        ``add``)."""
        old = self.item(item_id)
        annotated = None
        if annotation is not None:
            data = _Ingested(list(old.frames), old.height, old.width, old.phash)
            annotated = self._annotated(annotation, old.content, data)
            self.put_annotation(annotated)
        summary = summarise(annotated)
        record = old.with_changes(
            annotation=None if annotated is None else _annotation_hash(annotated),
            labels=summary.labels,
            verdict=summary.verdict,
            review=summary.review,
        )
        self._change("put", record)
        return record

    def update(self, item_id: str, *, golden: bool | None = None, **metadata: Any) -> ItemRecord:
        """Change an item's metadata (``METADATA_FIELDS``) or golden flag."""
        _check_metadata(metadata)
        changes = dict(metadata)
        if golden is not None:
            changes["golden"] = golden
        record = self.item(item_id).with_changes(**changes)
        self._change("put", record)
        return record

    def remove(self, item_id: str) -> None:
        """Remove an item from the working state (its frame stays stored for older versions)."""
        self.item(item_id)
        self._change("remove", item_id)

    # -- versions ----------------------------------------------------------------------------

    def _version_path(self, vid: str) -> Path:
        return self.root / "versions" / f"{vid}.json"

    def write_version(self, version: Version) -> str:
        """Store a version's manifest immutably and return its id (idempotent).

        Raises:
            DatasetError: a frame or annotation it names is not stored, or a different file
                already sits under its id.
        """
        for item in version:
            for fid in item.frames:
                if not self.has_frame(fid):
                    raise DatasetError(f"item {item.id}: frame {fid} is not stored")
            if item.annotation is not None and not self._annotation_path(item.annotation).is_file():
                raise DatasetError(f"item {item.id}: annotation {item.annotation} is not stored")
        data = version.manifest()
        vid = content_hash(data)
        _link_new(self._version_path(vid), data, read_only=True)
        return vid

    def commit(self, *, message: str = "", tag: str | None = None) -> str:
        """Freeze the working state as a version; return its id.

        Committing content equal to an existing version returns that version's id.

        Args:
            message: a note for the log.
            tag: a name for the version (see ``tag``).
        """
        self.flush()
        if tag is not None:
            _check_tag(tag)
            if (self.root / "tags" / f"{tag}.json").exists():
                raise DatasetError(f"tag {tag!r} exists; tags never move")
        vid = self.write_version(self.working())
        if tag is not None:
            self.tag(tag, vid, message=message)
        line = {"version": vid, "created": _now(), "message": message, "tag": tag}
        with self._locked(), (self.root / "log.jsonl").open("ab") as fh:
            fh.write(canonical_json(line) + b"\n")
        return vid

    def tag(self, name: str, ref: str, *, message: str = "") -> str:
        """Name a version; tags are immutable (a tag never moves). Returns the version id.

        Raises:
            DatasetError: a bad name, an unknown version, or the tag names another version.
        """
        _check_tag(name)
        vid = self.resolve(ref)
        path = self.root / "tags" / f"{name}.json"
        if path.exists():
            existing = json.loads(path.read_bytes())
            if existing.get("version") == vid:
                return vid
            raise DatasetError(f"tag {name!r} names version {existing.get('version')}")
        doc = {"version": vid, "message": message, "created": _now()}
        _link_new(path, canonical_json(doc), read_only=True)
        return vid

    def tags(self) -> dict[str, str]:
        """Tag name -> version id."""
        folder = self.root / "tags"
        if not folder.is_dir():
            return {}
        return {
            p.stem: str(json.loads(p.read_bytes())["version"])
            for p in sorted(folder.glob("*.json"))
        }

    def log(self) -> list[VersionInfo]:
        """Committed versions, oldest first (one entry per commit)."""
        path = self.root / "log.jsonl"
        if not path.is_file():
            return []
        out = []
        for line in path.read_text(encoding="utf-8").splitlines():
            try:
                doc = json.loads(line)
            except ValueError:
                continue  # a commit cut short by a crash; its version file is complete or absent
            vid = str(doc["version"])
            if self._version_path(vid).is_file():
                items = len(self.version(vid))
                out.append(VersionInfo(vid, doc["created"], doc["message"], doc["tag"], items))
        return out

    def version_ids(self) -> list[str]:
        """Ids of all stored versions (sorted)."""
        folder = self.root / "versions"
        return sorted(p.stem for p in folder.glob("*.json")) if folder.is_dir() else []

    def resolve(self, ref: str) -> str:
        """The version id a reference names: a full id, a unique prefix (4+ hex digits) or a tag.

        Raises:
            DatasetError: nothing or more than one version matches.
        """
        if ref == WORKING:
            raise DatasetError("the working state is not a version: commit it first")
        tag_path = self.root / "tags" / f"{ref}.json"
        if _TAG.fullmatch(ref) and tag_path.is_file():
            return str(json.loads(tag_path.read_bytes())["version"])
        if _HEX64.fullmatch(ref) and self._version_path(ref).is_file():
            return ref
        if len(ref) >= 4 and re.fullmatch(r"[0-9a-f]+", ref):
            matches = [v for v in self.version_ids() if v.startswith(ref)]
            if len(matches) == 1:
                return matches[0]
            if len(matches) > 1:
                raise DatasetError(f"version prefix {ref!r} is ambiguous ({len(matches)} match)")
        raise DatasetError(f"no version or tag {ref!r} in {self.root}")

    def version(self, ref: str) -> Version:
        """A stored version (its file checked against its id), or the working state for
        ``"working"``."""
        if ref == WORKING:
            return self.working()
        vid = self.resolve(ref)
        return Version.from_manifest(self._version_path(vid).read_bytes(), expected_id=vid)

    def diff(self, a: str, b: str = WORKING) -> VersionDiff:
        """What changed from version ``a`` to ``b`` (default: the working state)."""
        return diff(self.version(a), self.version(b))

    def stats(self, ref: str = WORKING) -> VersionStats:
        """Counts per label, verdict and product of a version (default: the working state)."""
        return stats(self.version(ref))

    # -- splits ------------------------------------------------------------------------------

    def save_split(self, ref: str, parts: Mapping[str, Sequence[str]], **parameters: Any) -> str:
        """Store a split of a version immutably; return its id (SHA-256 of its JSON).

        Args:
            ref: the version split.
            parts: part name -> item ids.
            **parameters: how it was made (seed, fractions, grouping ...), kept with it.

        Raises:
            DatasetError: an id is not in the version, or one is in two parts.
        """
        vid = self.resolve(ref)
        version = self.version(vid)
        seen: dict[str, str] = {}
        for part, ids in parts.items():
            for item_id in ids:
                if item_id not in version:
                    raise DatasetError(f"split part {part!r}: no item {item_id!r} in {vid}")
                if item_id in seen:
                    raise DatasetError(f"item {item_id!r} is in parts {seen[item_id]} and {part}")
                seen[item_id] = part
        doc = {
            "version": vid,
            "parameters": dict(parameters),
            "parts": {k: sorted(v) for k, v in parts.items()},
        }
        data = canonical_json(doc)
        sid = content_hash(data)
        _link_new(self.root / "splits" / f"{sid}.json", data, read_only=True)
        return sid

    def load_split(self, sid: str) -> dict[str, Any]:
        """A saved split: ``{"version", "parameters", "parts"}``.

        Raises:
            DatasetError: not stored, or modified on disk.
        """
        path = self.root / "splits" / f"{sid}.json"
        try:
            data = path.read_bytes()
        except FileNotFoundError:
            raise DatasetError(f"no split {sid} in {self.root}") from None
        if content_hash(data) != sid:
            raise DatasetError(f"split {sid} was modified on disk (hash mismatch)")
        doc: dict[str, Any] = json.loads(data)
        return doc


@dataclass(frozen=True, slots=True)
class Summary:
    """What an annotation says about its item: label counts, verdict and its review state."""

    labels: Mapping[str, int]
    verdict: str | None
    review: str | None


def summarise(item: AnnotatedItem | None) -> Summary:
    """The facts an ``ItemRecord`` keeps of an annotation.

    ``labels`` counts annotations and tracks per label. The verdict is the item's own
    (``AnnotatedItem.verdict``); without one, NG when any frame is NG, OK when every verdict is
    OK. ``review`` is the review state of the verdict that decided it (of an NG frame's, or the
    least advanced of the OK frames': draft < submitted < rejected < accepted).
    """
    if item is None:
        return Summary({}, None, None)
    labels = Counter(a.label for a in item.annotations)
    labels.update(t.label for t in item.tracks)
    decided = item.verdict
    if decided is None and item.verdicts:
        bad = [v for v in item.verdicts if v.verdict is Verdict.NG]
        order = ("draft", "submitted", "rejected", "accepted")
        decided = bad[0] if bad else min(item.verdicts, key=lambda v: order.index(v.review.state))
    if decided is None:
        return Summary(dict(labels), None, None)
    return Summary(dict(labels), decided.verdict.value, decided.review.state.value)


def _schema_dict(schema: LabelSchema | Mapping[str, Any] | None) -> dict[str, Any] | None:
    """The schema's dict form, checked by parsing it."""
    if schema is None:
        return None
    parsed = schema if isinstance(schema, LabelSchema) else LabelSchema.from_dict(schema)
    return parsed.to_dict()


def _annotation_hash(item: AnnotatedItem) -> str:
    return content_hash(canonical_json(item.to_dict()))


@dataclass(frozen=True, slots=True)
class _Ingested:
    """Frames stored for one item: their ids, size (px) and perceptual hash."""

    ids: list[str]
    height: int
    width: int
    phash: str | None


class _RunningMean:
    """Per-pixel mean °C over frames added one at a time, ignoring NaN."""

    def __init__(self) -> None:
        self.total: NDArray[np.float64] | None = None
        self.count: NDArray[np.int64] | None = None
        self.first: NDArray[np.float32] | None = None

    def add(self, celsius: NDArray[np.float32]) -> None:
        if self.first is None:
            self.first = celsius
            return
        if self.total is None or self.count is None:
            finite = np.isfinite(self.first)
            self.total = np.where(finite, self.first, 0.0)
            self.count = finite.astype(np.int64)
        finite = np.isfinite(celsius)
        self.total += np.where(finite, celsius, 0.0)
        self.count += finite

    def value(self) -> NDArray[np.float64]:
        """The mean image (NaN where a pixel never has a value)."""
        if self.total is None or self.count is None:
            return np.asarray(self.first, dtype=np.float64)
        with np.errstate(invalid="ignore", divide="ignore"):
            return np.where(self.count > 0, self.total / np.maximum(self.count, 1), np.nan)


def _check_metadata(metadata: Mapping[str, Any]) -> None:
    unknown = sorted(set(metadata) - set(METADATA_FIELDS))
    if unknown:
        raise DatasetError(f"unknown item metadata: {', '.join(unknown)}")


def _differences(a: ItemRecord, b: ItemRecord) -> list[str]:
    da, db = a.to_dict(), b.to_dict()
    return [k for k in da if k != "source" and da[k] != db[k]]


def _check_tag(name: str) -> None:
    if not _TAG.fullmatch(name) or _HEX64.fullmatch(name) or name == WORKING:
        raise DatasetError(
            f"bad tag name {name!r}: letters, digits, '.', '_', '-' (not a version id, "
            f"not {WORKING!r})"
        )
