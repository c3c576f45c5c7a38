"""Dataset versions: immutable manifests of items, identified by the hash of their canonical JSON.

An item is one frame or one sequence of a dataset with its annotation and the facts that splits
and statistics need.
A version's manifest is the canonical JSON (UTF-8, sorted keys, no spaces, items sorted by id) of::

    {"format": "thermoscope-dataset-version", "format_version": 1,
     "schema": <label schema dict or null>,
     "items": [<ItemRecord.to_dict()>, ...]}

and its id is the SHA-256 of exactly those bytes, so equal content always gets the same id and
any change to an item, an annotation or the schema gives a new one. Names, messages and times
are kept outside the manifest (see ``DatasetStore.tag``).
"""

from __future__ import annotations

import hashlib
import json
from collections import Counter
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field, fields, replace
from types import MappingProxyType
from typing import Any

from thermoscope.core.errors import ThermoscopeError
from thermoscope.storage.identity import sequence_id

MANIFEST_FORMAT = "thermoscope-dataset-version"
MANIFEST_VERSION = 1
#: The verdict values an item may carry.
VERDICTS = ("OK", "NG")


class DatasetError(ThermoscopeError, ValueError):
    """A dataset, version or item is malformed, missing or would be overwritten."""


def canonical_json(value: Any) -> bytes:
    """UTF-8 JSON with sorted keys and no insignificant whitespace (NaN and ±inf refused)."""
    return json.dumps(
        value, sort_keys=True, separators=(",", ":"), ensure_ascii=False, allow_nan=False
    ).encode("utf-8")


def content_hash(data: bytes) -> str:
    """Lower-case hex SHA-256 of ``data``."""
    return hashlib.sha256(data).hexdigest()


@dataclass(frozen=True, slots=True)
class ItemRecord:
    """One item of a dataset version: a frame or a sequence, its annotation and grouping facts.

    Attributes:
        id: the item's key, unique in a dataset (by default its ``content`` id).
        frames: content ids of its frames in order (see ``storage.identity.frame_id``); one for a
            single frame.
        height, width: frame size in pixels.
        annotation: SHA-256 of the annotation's canonical JSON, ``None`` when unannotated.
        phash: perceptual hash of the °C image (16 hex digits), ``None`` without contrast.
        product: product (part type) the item shows.
        serial: serial number of the part (items of one part never straddle splits).
        sequence: id of the recording a single-frame item was cut from
            (``storage.identity.sequence_id``).
        frame_index: its position in that recording (0-based).
        duplicate_group: a known duplicate group (items of one group never straddle splits).
        source: where the item came from (a file name, never a full path).
        labels: number of annotations per label name in the annotation.
        verdict: ``"OK"`` or ``"NG"`` when the annotation has a verdict (see
            ``store.summarise``).
        review: review state of that verdict (``"accepted"`` ...).
        golden: a reference example of its product (see ``GroundTruthLibrary``).
    """

    id: str
    frames: tuple[str, ...]
    height: int
    width: int
    annotation: str | None = None
    phash: str | None = None
    product: str | None = None
    serial: str | None = None
    sequence: str | None = None
    frame_index: int | None = None
    duplicate_group: str | None = None
    source: str | None = None
    labels: Mapping[str, int] = field(default_factory=dict)
    verdict: str | None = None
    review: str | None = None
    golden: bool = False

    def __post_init__(self) -> None:
        if not self.id:
            raise DatasetError("an item needs a non-empty id")
        object.__setattr__(self, "frames", tuple(self.frames))
        if not self.frames:
            raise DatasetError(f"item {self.id}: no frames")
        if self.verdict is not None and self.verdict not in VERDICTS:
            raise DatasetError(f"item {self.id}: verdict must be OK or NG, got {self.verdict!r}")
        if self.height <= 0 or self.width <= 0:
            raise DatasetError(f"item {self.id}: frame size {self.width}x{self.height}")
        object.__setattr__(self, "labels", MappingProxyType(dict(sorted(self.labels.items()))))

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON-ready dict, every field present."""
        out = {f.name: getattr(self, f.name) for f in fields(self)}
        out["labels"] = dict(self.labels)
        out["frames"] = list(self.frames)
        return out

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> ItemRecord:
        """Inverse of ``to_dict``; unknown keys are refused.

        Raises:
            DatasetError: a key is missing or unknown, or a value has the wrong type.
        """
        names = {f.name for f in fields(cls)}
        unknown = sorted(set(data) - names)
        if unknown:
            raise DatasetError(f"item {data.get('id')!r}: unknown key(s) {', '.join(unknown)}")
        try:
            return cls(**data)
        except TypeError as exc:
            raise DatasetError(f"item {data.get('id')!r}: {exc}") from exc

    @property
    def content(self) -> str:
        """The content id of the item's radiometric data: the frame id of a single frame, the
        ``storage.identity.sequence_id`` of the frame ids of a sequence."""
        return self.frames[0] if len(self.frames) == 1 else sequence_id(list(self.frames))

    @property
    def frame_count(self) -> int:
        """Frames in the item (1 for a single frame)."""
        return len(self.frames)

    def with_changes(self, **changes: Any) -> ItemRecord:
        """A copy with the given fields changed."""
        return replace(self, **changes)


@dataclass(frozen=True, slots=True)
class Version:
    """An immutable dataset version: items sorted by id and the label schema.

    Attributes:
        items: the items, sorted by id, ids unique.
        schema: the label schema as a plain dict (``LabelSchema.to_dict``), or ``None``.
    """

    items: tuple[ItemRecord, ...]
    schema: Mapping[str, Any] | None = None
    _by_id: dict[str, ItemRecord] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        ordered = tuple(sorted(self.items, key=lambda item: item.id))
        by_id = {item.id: item for item in ordered}
        if len(by_id) != len(ordered):
            dupes = sorted(k for k, n in Counter(i.id for i in ordered).items() if n > 1)
            raise DatasetError(f"duplicate item id(s) in a version: {', '.join(dupes[:5])}")
        object.__setattr__(self, "items", ordered)
        object.__setattr__(self, "_by_id", by_id)

    @classmethod
    def of(cls, items: Iterable[ItemRecord], schema: Mapping[str, Any] | None = None) -> Version:
        """A version of ``items`` (any order)."""
        return cls(tuple(items), schema)

    def __len__(self) -> int:
        return len(self.items)

    def __iter__(self) -> Iterator[ItemRecord]:
        return iter(self.items)

    def __contains__(self, item_id: object) -> bool:
        return item_id in self._by_id

    def __getitem__(self, item_id: str) -> ItemRecord:
        try:
            return self._by_id[item_id]
        except KeyError:
            raise DatasetError(f"no item {item_id!r} in this version") from None

    def to_dict(self) -> dict[str, Any]:
        """The manifest as a plain dict."""
        return {
            "format": MANIFEST_FORMAT,
            "format_version": MANIFEST_VERSION,
            "schema": None if self.schema is None else dict(self.schema),
            "items": [item.to_dict() for item in self.items],
        }

    def manifest(self) -> bytes:
        """The canonical JSON bytes whose SHA-256 is the version id."""
        return canonical_json(self.to_dict())

    @property
    def id(self) -> str:
        """The version id: SHA-256 of ``manifest()``."""
        return content_hash(self.manifest())

    @classmethod
    def from_manifest(cls, data: bytes, *, expected_id: str | None = None) -> Version:
        """Parse manifest bytes, checking them against ``expected_id`` when given.

        Raises:
            DatasetError: not a manifest, or its hash is not ``expected_id`` (changed on disk).
        """
        if expected_id is not None and content_hash(data) != expected_id:
            raise DatasetError(f"version {expected_id} was modified on disk (hash mismatch)")
        try:
            doc = json.loads(data)
        except (UnicodeDecodeError, json.JSONDecodeError) as exc:
            raise DatasetError(f"not a version manifest: {exc}") from exc
        if not isinstance(doc, dict) or doc.get("format") != MANIFEST_FORMAT:
            raise DatasetError("not a thermoscope dataset version manifest")
        if doc.get("format_version") != MANIFEST_VERSION:
            raise DatasetError(f"manifest format_version {doc.get('format_version')!r} unknown")
        items = doc.get("items")
        if not isinstance(items, list) or not all(isinstance(i, dict) for i in items):
            raise DatasetError("manifest items must be a list of objects")
        return cls(tuple(ItemRecord.from_dict(i) for i in items), doc.get("schema"))


@dataclass(frozen=True, slots=True)
class VersionDiff:
    """What changed from version ``a`` to version ``b``.

    Attributes:
        added: ids of items in ``b`` only (sorted).
        removed: ids of items in ``a`` only (sorted).
        changed: ids in both whose record differs (annotation, frame or metadata; sorted).
        label_deltas: per label, annotations in ``b`` minus in ``a`` (non-zero only).
        verdict_deltas: per verdict (``OK``, ``NG``, ``none``), items in ``b`` minus in ``a``.
        schema_changed: whether the label schema differs.
    """

    added: tuple[str, ...]
    removed: tuple[str, ...]
    changed: tuple[str, ...]
    label_deltas: Mapping[str, int]
    verdict_deltas: Mapping[str, int]
    schema_changed: bool

    @property
    def empty(self) -> bool:
        """Whether the two versions hold the same items and schema."""
        return not (self.added or self.removed or self.changed or self.schema_changed)


def _deltas(before: Counter[str], after: Counter[str]) -> dict[str, int]:
    keys = sorted(set(before) | set(after))
    return {k: after[k] - before[k] for k in keys if after[k] != before[k]}


def diff(a: Version, b: Version) -> VersionDiff:
    """Items added, removed and changed from ``a`` to ``b``, and label/verdict count deltas."""
    a_ids, b_ids = set(a._by_id), set(b._by_id)
    changed = sorted(i for i in a_ids & b_ids if a[i] != b[i])
    sa, sb = stats(a), stats(b)
    return VersionDiff(
        added=tuple(sorted(b_ids - a_ids)),
        removed=tuple(sorted(a_ids - b_ids)),
        changed=tuple(changed),
        label_deltas=_deltas(Counter(sa.labels), Counter(sb.labels)),
        verdict_deltas=_deltas(Counter(sa.verdicts), Counter(sb.verdicts)),
        schema_changed=a.schema != b.schema,
    )


@dataclass(frozen=True, slots=True)
class VersionStats:
    """Counts over a version's items.

    Attributes:
        items: number of items.
        frames: number of distinct frames (items sharing a frame hold the same data).
        annotated: items with an annotation.
        labels: annotations per label name.
        items_per_label: items with at least one annotation of the label.
        verdicts: items per verdict: ``OK``, ``NG`` and ``none`` (no verdict).
        products: items per product (``""`` for items without one).
        product_verdicts: per product, items per verdict (as ``verdicts``).
        golden: golden reference items per product.
    """

    items: int
    frames: int
    annotated: int
    labels: Mapping[str, int]
    items_per_label: Mapping[str, int]
    verdicts: Mapping[str, int]
    products: Mapping[str, int]
    product_verdicts: Mapping[str, Mapping[str, int]]
    golden: Mapping[str, int]

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON-ready dict."""
        return {f.name: _plain(getattr(self, f.name)) for f in fields(self)}


def _plain(value: Any) -> Any:
    if isinstance(value, Mapping):
        return {k: _plain(v) for k, v in value.items()}
    return value


def _verdict_key(item: ItemRecord) -> str:
    return item.verdict or "none"


def stats(version: Version | Iterable[ItemRecord]) -> VersionStats:
    """Counts per label, per verdict (OK/NG/none) and per product of a version's items."""
    items = list(version)
    labels: Counter[str] = Counter()
    items_per_label: Counter[str] = Counter()
    verdicts: Counter[str] = Counter({"OK": 0, "NG": 0, "none": 0})
    products: Counter[str] = Counter()
    product_verdicts: dict[str, Counter[str]] = {}
    golden: Counter[str] = Counter()
    for item in items:
        labels.update(item.labels)
        items_per_label.update(k for k, n in item.labels.items() if n > 0)
        verdicts[_verdict_key(item)] += 1
        product = item.product or ""
        products[product] += 1
        product_verdicts.setdefault(product, Counter())[_verdict_key(item)] += 1
        if item.golden:
            golden[product] += 1
    return VersionStats(
        items=len(items),
        frames=len({fid for item in items for fid in item.frames}),
        annotated=sum(1 for item in items if item.annotation is not None),
        labels=dict(sorted(labels.items())),
        items_per_label=dict(sorted(items_per_label.items())),
        verdicts=dict(verdicts),
        products=dict(sorted(products.items())),
        product_verdicts={p: dict(sorted(c.items())) for p, c in sorted(product_verdicts.items())},
        golden=dict(sorted(golden.items())),
    )
