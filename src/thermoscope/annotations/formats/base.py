"""What every interchange format shares: errors, loss warnings, import reports, file naming,
record conversions and the atomic export folder with images and radiometric side-cars.

Every format module has the same two layers:

- pure ``reduce(item, ...)`` (the item as the format keeps it, and ``LossWarning`` records for
  what it drops or changes), ``emit(items, ...) -> Export`` (the annotation files as bytes, by
  relative path) and ``parse(files, ...) -> ImportResult``; ``parse(emit(items).files)`` gives
  ``reduce(item)`` for every item, which is the round-trip contract the tests check;
- thin ``save(items, folder, ...)`` (writes the export folder atomically, with a rendered 8-bit
  PNG per frame and a float32 °C side-car when frames are given) and ``load(path, ...)``.

Frame files: each frame of an item becomes one image named by ``frame_stem``: the item id
(percent-quoted beyond ``A-Z a-z 0-9 . _ -``) for a single-frame item, ``<id>@<frame:06d>`` for
the frames of a sequence; importers group ``<id>@NNNNNN`` stems back into sequences when their
frames run 0..n-1 without gaps. The radiometric side-car of a frame is
``radiometric/<stem>.tiff`` (or ``.npy``) at the export's root, float32 °C written and read with
``thermoscope.io``.

Imported records get ids the format kept, or positional ones (``a0, a1, ...`` for annotations,
``t0 ...`` for tracks, ``v0 ...`` for verdicts), and the provenance of ``ImportDefaults``: a
person (``author``) unless the format marks the record as machine-made, then a model
(``model``, with the score where the format keeps one). Reviews come back as drafts.
"""

from __future__ import annotations

import contextlib
import functools
import gc
import math
import os
import re
import shutil
import struct
import tempfile
from collections import defaultdict
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from types import MappingProxyType
from typing import Any, Literal, TypeVar
from urllib.parse import quote, unquote

import cv2
import numpy as np

from thermoscope.annotations.errors import AnnotationError
from thermoscope.annotations.item import AnnotatedItem
from thermoscope.annotations.model import Annotation, Provenance, Review, VerdictLabel
from thermoscope.annotations.schema import (
    AttributeSpec,
    AttributeType,
    AttributeValue,
    LabelSchema,
    LabelSpec,
)
from thermoscope.annotations.shapes import Box, Mask, Polygon, RotatedBox, Shape
from thermoscope.annotations.tracks import Keyframe, Track
from thermoscope.core import ThermalFrame, ThermoscopeError

T = TypeVar("T")

#: Folder of the radiometric side-cars at the root of every export.
SIDECAR_DIR = "radiometric"
#: Side-car file types: float32 °C TIFF (with thermoscope's metadata) or NumPy ``.npy``.
SidecarKind = Literal["tiff", "npy"]
#: How many record paths a ``LossWarning`` quotes as examples.
MAX_EXAMPLES = 3
#: The id an imported record has until it gets its positional one (``renamed``).
PENDING = "pending"
#: Labels CVAT and Label Studio exports use for frame verdicts (reserved in label schemas).
VERDICT_LABELS = ("OK", "NG")

FrameSource = Mapping[str, Sequence[ThermalFrame]] | Callable[[str], Sequence[ThermalFrame]]


class AnnotationFormatError(ThermoscopeError, ValueError):
    """An annotation file cannot be read or written.

    The message names the file and the item at fault, e.g.
    ``instances.json: annotations[17]: bbox extends outside image 3 (640x512)``.

    Attributes:
        file: the file (relative to the export, or as given); empty when not about a file.
        item: the entry within the file (``annotations[17]``, ``image 'a.png'``); may be empty.
        detail: what is wrong.
    """

    def __init__(self, detail: str, *, file: str = "", item: str = "") -> None:
        self.file = file
        self.item = item
        self.detail = detail
        super().__init__(": ".join(part for part in (file, item, detail) if part))


@dataclass(frozen=True, slots=True)
class LossWarning:
    """Something an export cannot hold, summed over every record it concerns.

    Attributes:
        format: the format's name (``"voc"``).
        kind: a short code (``"polygon"``, ``"provenance"``, ``"track"``, ``"verdict"`` ...).
        message: what is dropped or changed, for people.
        count: how many records it concerns.
        examples: the first few of them (``"item 'a1': annotations[3]"``).
    """

    format: str
    kind: str
    message: str
    count: int
    examples: tuple[str, ...]

    def __str__(self) -> str:
        where = ", ".join(self.examples)
        more = (
            f" and {self.count - len(self.examples)} more"
            if self.count > len(self.examples)
            else ""
        )
        return f"{self.format}: {self.message} ({self.count}: {where}{more})"


class AnnotationLossError(AnnotationFormatError):
    """A strict export would lose something (``warnings`` says what); nothing was written."""

    def __init__(self, warnings: Sequence[LossWarning], *, file: str = "") -> None:
        self.warnings = tuple(warnings)
        lines = "; ".join(str(w) for w in self.warnings)
        super().__init__(f"the export would lose information: {lines}", file=file)


class Losses:
    """Collects what ``reduce`` drops, grouped by kind (one ``LossWarning`` each)."""

    def __init__(self, format_name: str) -> None:
        self.format = format_name
        self._messages: dict[str, str] = {}
        self._counts: dict[str, int] = defaultdict(int)
        self._examples: dict[str, list[str]] = defaultdict(list)

    def add(self, kind: str, message: str, where: str) -> None:
        """Record one record (``where``) that loses ``kind`` (described by ``message``)."""
        self._messages.setdefault(kind, message)
        self._counts[kind] += 1
        if len(self._examples[kind]) < MAX_EXAMPLES:
            self._examples[kind].append(where)

    def warnings(self) -> list[LossWarning]:
        """One warning per kind, in the order the kinds first occurred."""
        return [
            LossWarning(self.format, k, m, self._counts[k], tuple(self._examples[k]))
            for k, m in self._messages.items()
        ]


@dataclass(frozen=True, slots=True)
class Skipped:
    """An entry an import with ``skip_invalid=True`` left out, and why."""

    file: str
    item: str
    reason: str

    def __str__(self) -> str:
        return ": ".join(part for part in (self.file, self.item, self.reason) if part)


class Problems:
    """Invalid entries met while parsing: raised at once, or recorded with ``skip_invalid``."""

    def __init__(self, skip_invalid: bool) -> None:
        self.skip_invalid = skip_invalid
        self.skipped: list[Skipped] = []

    def fail(self, file: str, item: str, detail: str) -> None:
        """Raise ``AnnotationFormatError`` (or record it when skipping invalid entries)."""
        if not self.skip_invalid:
            raise AnnotationFormatError(detail, file=file, item=item)
        self.skipped.append(Skipped(file, item, detail))

    def attempt(self, file: str, item: str, build: Callable[..., T], *args: Any) -> T | None:
        """``build(*args)``, or ``None`` after ``fail`` when it raises ``AnnotationError`` (or
        a ``ValueError``, ``TypeError``, ``KeyError`` or ``IndexError`` from malformed input)."""
        try:
            return build(*args)
        except AnnotationFormatError:
            raise
        except (AnnotationError, ValueError, TypeError, KeyError, IndexError) as exc:
            self.fail(file, item, _describe(exc))
            return None


def _describe(exc: Exception) -> str:
    if isinstance(exc, KeyError):
        return f"missing {exc}"
    return str(exc) or type(exc).__name__


def _now() -> datetime:
    return datetime.now(UTC)


@functools.lru_cache(maxsize=16)
def _human(author: str, created: datetime) -> Provenance:
    return Provenance(author=author, created=created)


@dataclass(frozen=True, slots=True)
class ImportDefaults:
    """Provenance for imported records that their format does not keep.

    Attributes:
        author: the person credited with records the format marks as made by hand (or not
            marked at all).
        model: the model credited with records the format marks as machine-made, when the
            format does not name one.
        created: their creation time (default: the time of the import).
    """

    author: str = "import"
    model: str = "import"
    created: datetime = field(default_factory=_now)

    def human(self) -> Provenance:
        """The provenance of a hand-made record (one shared, immutable instance)."""
        return _human(self.author, self.created)

    def machine(
        self, *, score: float | None = None, model: str = "", version: str = ""
    ) -> Provenance:
        """The provenance of a machine-made record (``model`` defaults to ``self.model``)."""
        return Provenance(
            model=model or self.model, model_version=version, score=score, created=self.created
        )


@dataclass(slots=True)
class ImportResult:
    """What an import read.

    Attributes:
        items: the annotated items, in the order they first appear.
        schema: the schema given to the import, or one built from the file's own label list
            (and attribute declarations where the format has them).
        skipped: entries left out by ``skip_invalid=True`` (empty otherwise).
        notes: conversions made on the way in (e.g. a multi-part COCO polygon split in parts).
        frames: by item id, the radiometric side-car of each frame (``load`` only; items
            without a complete set of side-cars are absent).
    """

    items: list[AnnotatedItem]
    schema: LabelSchema
    skipped: list[Skipped] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    frames: dict[str, list[Path]] = field(default_factory=dict)

    def load_frames(self, item_id: str) -> list[ThermalFrame]:
        """The radiometric frames of ``item_id`` from its side-cars (°C, via ``thermoscope.io``).

        Raises:
            AnnotationFormatError: the item has no side-cars, or one does not fit its size.
        """
        from thermoscope import io as tio

        paths = self.frames.get(item_id)
        if not paths:
            raise AnnotationFormatError("no radiometric side-cars", item=f"item {item_id!r}")
        item = next(i for i in self.items if i.item_id == item_id)
        out = []
        for path in paths:
            frame = tio.load(path)
            if frame.shape != (item.height, item.width):
                raise AnnotationFormatError(
                    f"side-car is {frame.width}x{frame.height}, the item is "
                    f"{item.width}x{item.height}",
                    file=path.name,
                    item=f"item {item_id!r}",
                )
            out.append(frame)
        return out


@dataclass(frozen=True, slots=True)
class FrameFile:
    """Where ``save`` puts the image of one frame: ``image`` is relative to the export root."""

    item_id: str
    frame: int
    image: str


@dataclass(slots=True)
class Export:
    """The pure result of ``emit``.

    Attributes:
        files: annotation files by path relative to the export root (``/`` separated).
        warnings: what the export does not hold.
        images: the image path of every frame, which ``save`` fills with a rendering.
    """

    files: dict[str, bytes]
    warnings: list[LossWarning]
    images: list[FrameFile]


@dataclass(frozen=True, slots=True)
class ExportReport:
    """What ``save`` wrote: the export folder, its files (relative paths) and the warnings."""

    path: Path
    files: tuple[str, ...]
    warnings: tuple[LossWarning, ...]


# ---------------------------------------------------------------------------------------------
# Naming


_SAFE = "._-"
_STEM_FRAME = re.compile(r"(.+)@(\d{6,})")


def frame_stem(item_id: str, frame: int, frame_count: int) -> str:
    """The file stem of ``frame`` of an item (see the module docstring)."""
    base = quote(item_id, safe=_SAFE)
    return base if frame_count == 1 else f"{base}@{frame:06d}"


def item_id_of(name: str) -> str:
    """An item id from a file name or stem written by another tool: unquoted, whitespace
    runs replaced by ``_`` (``"item"`` when nothing is left)."""
    text = re.sub(r"\s+", "_", unquote(name)).strip("_")
    return text or "item"


def split_stem(stem: str) -> tuple[str, int | None]:
    """``(item id, frame)`` of a stem; ``frame`` is ``None`` unless it ends in ``@NNNNNN``."""
    match = _STEM_FRAME.fullmatch(stem)
    if match:
        return item_id_of(match.group(1)), int(match.group(2))
    return item_id_of(stem), None


def stem_of(path: str) -> str:
    """The stem of a ``/`` or ``\\`` separated path (file name without its last suffix)."""
    name = re.split(r"[\\/]", path)[-1]
    return name.rsplit(".", 1)[0] if "." in name[1:] else name


@dataclass(slots=True)
class FrameGroup:
    """The frames of one item met in a file, payloads by frame index."""

    item_id: str
    frames: dict[int, Any] = field(default_factory=dict)


def group_frames(
    entries: Iterable[tuple[str, T]], problems: Problems, file: str
) -> list[tuple[str, list[T]]]:
    """Group ``(stem, payload)`` entries into items: stems ``<id>@NNNNNN`` whose frames run
    0..n-1 become one item; anything else is an item of one frame. Returns ``(item id,
    payloads by frame)`` in the order items first appear; a second entry for the same frame
    is a problem (reported, then ignored)."""
    groups: dict[str, dict[int, tuple[str, T]]] = {}
    singles: dict[str, tuple[str, T]] = {}
    order: list[tuple[str, str]] = []
    for stem, payload in entries:
        item_id, frame = split_stem(stem)
        if frame is None:
            if item_id in singles or item_id in groups:
                problems.fail(file, f"image {stem!r}", f"a second image of item {item_id!r}")
                continue
            singles[item_id] = (stem, payload)
            order.append(("single", item_id))
            continue
        frames = groups.setdefault(item_id, {})
        if not frames:
            order.append(("group", item_id))
        if frame in frames:
            problems.fail(file, f"image {stem!r}", f"a second image of frame {frame}")
            continue
        frames[frame] = (stem, payload)
    out: list[tuple[str, list[T]]] = []
    taken: set[str] = set()
    for kind, item_id in order:
        if kind == "single":
            out.append((item_id, [singles[item_id][1]]))
            taken.add(item_id)
            continue
        frames = groups[item_id]
        if sorted(frames) == list(range(len(frames))) and item_id not in singles:
            out.append((item_id, [frames[f][1] for f in range(len(frames))]))
            taken.add(item_id)
        else:  # not a complete sequence: every frame is an item of its own
            for f in sorted(frames):
                stem = frames[f][0]
                own = item_id_of(stem)
                if own in taken:
                    problems.fail(file, f"image {stem!r}", f"a second image of item {own!r}")
                    continue
                taken.add(own)
                out.append((own, [frames[f][1]]))
    return out


# ---------------------------------------------------------------------------------------------
# Numbers and attribute values in text formats


def number_text(value: float) -> str:
    """The shortest text that reads back as exactly ``value`` (integers without ``.0``)."""
    v = float(value)
    return str(int(v)) if v.is_integer() and abs(v) < 1e15 else repr(v)


def attribute_text(value: AttributeValue) -> str:
    """An attribute value as text: ``true``/``false``, shortest round-trip numbers, text."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        return repr(value)
    return value


def attribute_from_text(text: str, kind: AttributeType | None) -> AttributeValue:
    """A value read from text, typed as ``kind`` (``None``: left as text).

    Raises:
        ValueError: the text is not a value of that type.
    """
    if kind is AttributeType.BOOL:
        low = text.strip().lower()
        if low in ("true", "1", "yes"):
            return True
        if low in ("false", "0", "no", ""):
            return False
        raise ValueError(f"{text!r} is not true or false")
    if kind is AttributeType.NUMBER:
        stripped = text.strip()
        if re.fullmatch(r"[+-]?\d+", stripped):
            return int(stripped)
        value = float(stripped)
        if not math.isfinite(value):
            raise ValueError(f"{text!r} is not a finite number")
        return value
    return text


def attribute_kind(schema: LabelSchema | None, label: str, name: str) -> AttributeType | None:
    """The schema's type of attribute ``name`` of ``label`` (``None`` when not declared)."""
    if schema is None:
        return None
    spec = schema.label(label)
    attr = spec.attribute(name) if spec is not None else None
    return attr.type if attr is not None else None


def typed_attributes(
    values: Mapping[str, str], label: str, schema: LabelSchema | None
) -> dict[str, AttributeValue]:
    """Text attribute values typed by ``schema`` (undeclared ones stay text)."""
    return {
        name: attribute_from_text(text, attribute_kind(schema, label, name))
        for name, text in values.items()
    }


def text_round_trip(
    attributes: Mapping[str, AttributeValue], label: str, schema: LabelSchema | None
) -> dict[str, AttributeValue]:
    """The attributes as an import from a text format gives them back (``reduce`` helper)."""
    return typed_attributes({k: attribute_text(v) for k, v in attributes.items()}, label, schema)


def infer_schema(items: Sequence[AnnotatedItem]) -> LabelSchema:
    """A label schema from the labels and attribute values the items use (first-seen order):
    bool values make bool attributes, numbers number attributes, text text attributes."""
    labels: dict[str, dict[str, AttributeType]] = {}

    def note(label: str, attributes: Mapping[str, AttributeValue]) -> None:
        attrs = labels.setdefault(label, {})
        for name, value in attributes.items():
            if isinstance(value, bool):
                kind = AttributeType.BOOL
            elif isinstance(value, int | float):
                kind = AttributeType.NUMBER
            else:
                kind = AttributeType.TEXT
            attrs.setdefault(name, kind)

    for item in items:
        for a in item.annotations:
            note(a.label, a.attributes)
        for t in item.tracks:
            note(t.label, t.attributes)
    return LabelSchema(
        tuple(
            LabelSpec(name, tuple(AttributeSpec(n, k) for n, k in attrs.items()))
            for name, attrs in labels.items()
        )
    )


def schema_of(names: Iterable[str]) -> LabelSchema:
    """A schema of plain labels (no attributes), duplicates dropped."""
    return LabelSchema(tuple(LabelSpec(n) for n in dict.fromkeys(names)))


def check_labels(schema: LabelSchema, items: Sequence[AnnotatedItem], fmt: str) -> None:
    """Raise ``AnnotationFormatError`` when a record's label is not in ``schema``."""
    known = {spec.name for spec in schema.labels}
    for item in items:
        labels = [(f"annotations[{i}]", a.label) for i, a in enumerate(item.annotations)]
        labels += [(f"tracks[{i}]", t.label) for i, t in enumerate(item.tracks)]
        for path, label in labels:
            if label not in known:
                raise AnnotationFormatError(
                    f"label {label!r} is not in the label schema",
                    file=fmt,
                    item=f"item {item.item_id!r}: {path}",
                )


# ---------------------------------------------------------------------------------------------
# Record conversions used by reduce


def where(item: AnnotatedItem, path: str) -> str:
    """``item '<id>': <path>``, the way loss warnings name a record."""
    return f"item {item.item_id!r}: {path}"


def flatten_tracks(item: AnnotatedItem, losses: Losses | None) -> list[Annotation]:
    """The item's annotations and its tracks' shape on every frame where they are visible,
    frame by frame (on each frame the annotations first, then the tracks, in item order).
    A track's shape on frame ``f`` gets the id ``<track id>@<f>``."""
    per_frame: dict[int, list[Annotation]] = defaultdict(list)
    for a in item.annotations:
        per_frame[a.frame].append(a)
    for i, track in enumerate(item.tracks):
        if losses is not None:
            losses.add(
                "track",
                "tracks become separate shapes on each frame where they are visible "
                "(keyframes and track identity are not kept)",
                where(item, f"tracks[{i}]"),
            )
        for f in track.visible_frames(item.frame_count):
            shape = track.shape_at(f)
            assert shape is not None
            per_frame[f].append(
                kept_annotation(
                    id=f"{track.id}@{f}",
                    label=track.label,
                    shape=shape,
                    frame=f,
                    attributes=track.attributes,
                    metadata=track.metadata,
                    provenance=track.provenance,
                    review=track.review,
                )
            )
    return [a for f in sorted(per_frame) for a in per_frame[f]]


def drop_review(record: Any, item: AnnotatedItem, path: str, losses: Losses) -> Review:
    """A fresh draft review, noting the loss when the record's review was anything else."""
    if record.review != Review():
        losses.add("review", "review state (always back as draft)", where(item, path))
    return Review()


def keep_metadata(
    metadata: Mapping[str, Any],
    kept: Mapping[str, type | tuple[type, ...]],
    item: AnnotatedItem,
    path: str,
    losses: Losses,
) -> dict[str, Any]:
    """The metadata entries whose key is in ``kept`` with a value of its type."""
    out = {k: v for k, v in metadata.items() if k in kept and isinstance(v, kept[k])}
    if len(out) != len(metadata):
        names = ", ".join(sorted(kept)) or "none"
        losses.add("metadata", f"record metadata (kept: {names})", where(item, path))
    return out


def item_losses(item: AnnotatedItem, losses: Losses, *, verdicts: bool) -> None:
    """Note the item-level losses every format shares: tolerance labels and item metadata,
    and verdicts unless the format holds them (``verdicts=True``)."""
    for i, _ in enumerate(item.tolerances):
        losses.add(
            "tolerance", "tolerance labels (temperature ranges)", where(item, f"tolerances[{i}]")
        )
    if item.metadata:
        losses.add("item-metadata", "item metadata", where(item, "metadata"))
    if not verdicts:
        for i, _ in enumerate(item.verdicts):
            losses.add("verdict", "OK/NG verdicts", where(item, f"verdicts[{i}]"))


def frame_verdicts(
    item: AnnotatedItem, losses: Losses, *, whole_on_single: bool = True
) -> list[tuple[int, VerdictLabel]]:
    """``(frame, verdict)`` pairs a per-frame format can hold, in frame order: a single-frame
    item's verdict on the whole item (or else on frame 0) sits on frame 0; on a sequence the
    whole-item verdict is lost."""
    whole = [(i, v) for i, v in enumerate(item.verdicts) if v.frame is None]
    if item.frame_count == 1 and whole_on_single:
        chosen = (
            whole[0]
            if whole
            else next(((i, v) for i, v in enumerate(item.verdicts) if v.frame == 0), None)
        )
        for i in range(len(item.verdicts)):
            if chosen is None or i != chosen[0]:
                losses.add(
                    "verdict",
                    "a second verdict on a single frame (the whole-item one is kept)",
                    where(item, f"verdicts[{i}]"),
                )
        return [] if chosen is None else [(0, chosen[1])]
    for i, _ in whole:
        losses.add(
            "verdict-item",
            "verdicts on a whole sequence (only per-frame verdicts are kept)",
            where(item, f"verdicts[{i}]"),
        )
    framed = [(v.frame, v) for v in item.verdicts if v.frame is not None]
    return sorted(framed, key=lambda fv: fv[0])


def rename(prefix: str, index: int) -> str:
    """A positional record id (``a0``, ``t3`` ...)."""
    return f"{prefix}{index}"


def rotated_corners(shape: RotatedBox) -> Polygon:
    """A rotated box as the 4-point polygon of its corners."""
    return Polygon(shape.corners())


def bounding_box(shape: Shape) -> Box | None:
    """The axis-aligned box around a shape (``None`` when it has no area: a point or a
    horizontal or vertical line)."""
    x0, y0, x1, y1 = mask_bounds(shape) if isinstance(shape, Mask) else shape.bounds()
    if x1 <= x0 or y1 <= y0:
        return None
    return Box(x0, y0, x1 - x0, y1 - y0)


def mask_bounds(mask: Mask) -> tuple[float, float, float, float]:
    """``(x0, y0, x1, y1)`` px of the pixels a mask selects, from its runs (no decoding)."""
    counts = np.asarray(mask.counts, dtype=np.int64)
    starts = np.concatenate(([0], np.cumsum(counts)[:-1]))
    on = np.arange(len(counts)) % 2 == 1
    on &= counts > 0
    first = starts[on]
    last = starts[on] + counts[on] - 1
    h = mask.height
    cols0, cols1 = first // h, last // h
    rows = np.concatenate((first % h, last % h))
    spans_columns = cols1 > cols0
    y0 = 0 if spans_columns.any() else int(rows.min())
    y1 = h - 1 if spans_columns.any() else int(rows.max())
    return float(cols0.min()), float(y0), float(cols1.max() + 1), float(y1 + 1)


def rebuild_track(shapes: Sequence[tuple[int, Shape]], frame_count: int) -> tuple[Keyframe, ...]:
    """Keyframes that show ``shapes`` (frame, shape) on exactly their frames: a keyframe on
    each, and an ``outside`` one after each frame not followed by the next."""
    keys: list[Keyframe] = []
    ordered = sorted(shapes, key=lambda fs: fs[0])
    for n, (frame, shape) in enumerate(ordered):
        keys.append(Keyframe(frame, shape))
        nxt = ordered[n + 1][0] if n + 1 < len(ordered) else frame_count
        if nxt > frame + 1 and frame + 1 < frame_count:
            keys.append(Keyframe(frame + 1, shape, outside=True))
    return tuple(keys)


def track_as_frames(track: Track, frame_count: int) -> tuple[Keyframe, ...]:
    """The keyframes ``rebuild_track`` gives for the track's visible shapes."""
    shapes = []
    for f in track.visible_frames(frame_count):
        shape = track.shape_at(f)
        assert shape is not None
        shapes.append((f, shape))
    return rebuild_track(shapes, frame_count)


def with_records(
    item: AnnotatedItem,
    *,
    annotations: Sequence[Annotation] = (),
    tracks: Sequence[Track] = (),
    verdicts: Sequence[VerdictLabel] = (),
) -> AnnotatedItem:
    """A copy of ``item`` with the given records and nothing else (no tolerances, no
    metadata). The records come from ``item``'s own, which fit it, so its checks are not
    repeated (``reduce`` is on the export path)."""
    return _assembled(
        AnnotatedItem,
        item_id=item.item_id,
        width=item.width,
        height=item.height,
        frame_count=item.frame_count,
        annotations=tuple(annotations),
        tracks=tuple(tracks),
        verdicts=tuple(verdicts),
        tolerances=(),
        metadata=MappingProxyType({}),
    )


def kept_annotation(
    *,
    id: str,
    label: str,
    shape: Shape,
    frame: int,
    provenance: Provenance,
    attributes: Mapping[str, AttributeValue] | None = None,
    metadata: Mapping[str, Any] | None = None,
    review: Review | None = None,
) -> Annotation:
    """An annotation assembled from the parts of a valid one (a label, shape, frame,
    attribute values and JSON metadata taken from it or converted by a format), without
    repeating ``Annotation``'s checks; attributes are stored sorted by name, as it does."""
    return _assembled(
        Annotation,
        id=id,
        label=label,
        shape=shape,
        frame=frame,
        attributes=MappingProxyType(dict(sorted((attributes or {}).items()))),
        metadata=MappingProxyType(dict(metadata or {})),
        provenance=provenance,
        review=review if review is not None else Review(),
    )


def _assembled(cls: type[T], **fields: Any) -> T:
    record = object.__new__(cls)
    for name, value in fields.items():
        object.__setattr__(record, name, value)
    return record


def make_item(
    item_id: str,
    width: int,
    height: int,
    frame_count: int,
    annotations: Sequence[Annotation] = (),
    tracks: Sequence[Track] = (),
    verdicts: Sequence[VerdictLabel] = (),
) -> AnnotatedItem:
    """An imported item (positional arguments, for ``Problems.attempt``)."""
    return AnnotatedItem(
        item_id=item_id,
        width=width,
        height=height,
        frame_count=frame_count,
        annotations=tuple(annotations),
        tracks=tuple(tracks),
        verdicts=tuple(verdicts),
    )


def renamed(record: T, new_id: str) -> T:
    """A copy of a valid record with the (non-empty) id ``new_id``."""
    copy = object.__new__(type(record))
    for name in record.__dataclass_fields__:  # type: ignore[attr-defined]
        if hasattr(record, name):
            object.__setattr__(copy, name, getattr(record, name))
    object.__setattr__(copy, "id", new_id)
    return copy


def shape_inside(shape: Shape, width: int, height: int) -> str | None:
    """``None`` when ``shape`` lies in a ``width`` x ``height`` frame, else why not."""
    if shape.inside(width, height):
        return None
    if isinstance(shape, Mask):
        return f"mask is {shape.width}x{shape.height}, the image {width}x{height}"
    x0, y0, x1, y1 = shape.bounds()
    return (
        f"{shape.kind} spans x {x0:g}..{x1:g}, y {y0:g}..{y1:g}: outside the {width}x{height} image"
    )


# ---------------------------------------------------------------------------------------------
# Images and side-cars


def image_size(data: bytes) -> tuple[int, int] | None:
    """``(width, height)`` px from the header of a PNG, JPEG, BMP or GIF file (``None`` for
    other files)."""
    if data[:8] == b"\x89PNG\r\n\x1a\n" and len(data) >= 24:
        w, h = struct.unpack(">II", data[16:24])
        return int(w), int(h)
    if data[:6] in (b"GIF87a", b"GIF89a") and len(data) >= 10:
        w, h = struct.unpack("<HH", data[6:10])
        return int(w), int(h)
    if data[:2] == b"BM" and len(data) >= 26:
        w, h = struct.unpack("<ii", data[18:26])
        return abs(int(w)), abs(int(h))
    if data[:2] == b"\xff\xd8":
        pos = 2
        while pos + 9 < len(data):
            if data[pos] != 0xFF:
                return None
            marker = data[pos + 1]
            if marker in (0xD8, 0x01) or 0xD0 <= marker <= 0xD7:
                pos += 2
                continue
            length = struct.unpack(">H", data[pos + 2 : pos + 4])[0]
            if 0xC0 <= marker <= 0xCF and marker not in (0xC4, 0xC8, 0xCC):
                h, w = struct.unpack(">HH", data[pos + 5 : pos + 9])
                return int(w), int(h)
            pos += 2 + length
    return None


def read_image_size(path: Path) -> tuple[int, int] | None:
    """``image_size`` of a file's first 64 KiB (``None`` when missing or unknown)."""
    try:
        with path.open("rb") as fh:
            return image_size(fh.read(65536))
    except OSError:
        return None


IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".gif", ".tif", ".tiff", ".webp")


def find_image(folder: Path, stem: str) -> Path | None:
    """An image file ``stem`` + one of ``IMAGE_SUFFIXES`` in ``folder`` (any case)."""
    for suffix in IMAGE_SUFFIXES:
        for candidate in (folder / (stem + suffix), folder / (stem + suffix.upper())):
            if candidate.is_file():
                return candidate
    return None


def sidecars(root: Path, items: Sequence[AnnotatedItem]) -> dict[str, list[Path]]:
    """By item id, the side-car of every frame under ``root/radiometric`` (items missing
    one are left out)."""
    folder = root / SIDECAR_DIR
    if not folder.is_dir():
        return {}
    out: dict[str, list[Path]] = {}
    for item in items:
        paths = []
        for f in range(item.frame_count):
            stem = frame_stem(item.item_id, f, item.frame_count)
            found = next(
                (folder / (stem + s) for s in (".tiff", ".npy") if (folder / (stem + s)).is_file()),
                None,
            )
            if found is None:
                break
            paths.append(found)
        else:
            out[item.item_id] = paths
    return out


def _frames_of(source: FrameSource, item: AnnotatedItem) -> Sequence[ThermalFrame]:
    frames = source[item.item_id] if isinstance(source, Mapping) else source(item.item_id)
    if len(frames) != item.frame_count:
        raise AnnotationFormatError(
            f"{len(frames)} frames given, the item has {item.frame_count}",
            item=f"item {item.item_id!r}",
        )
    return frames


def save_export(
    export: Export,
    items: Sequence[AnnotatedItem],
    path: str | os.PathLike[str],
    *,
    frames: FrameSource | None,
    sidecar: SidecarKind,
    palette: str,
    overwrite: bool,
    strict: bool,
) -> ExportReport:
    """Write an export folder atomically: everything goes into a temporary folder beside
    ``path`` that is renamed into place at the end (an existing folder is replaced only with
    ``overwrite``); on any failure the temporary folder is removed and ``path`` is untouched.

    With ``frames`` (by item id), each frame's image gets an 8-bit PNG rendering (``palette``,
    automatic range) and its side-car ``radiometric/<stem>.<sidecar>`` the °C values.
    """
    from thermoscope import io as tio
    from thermoscope.render import encode_png, render

    target = Path(path)
    if strict and export.warnings:
        raise AnnotationLossError(export.warnings, file=str(target))
    if target.exists() and not overwrite:
        raise AnnotationFormatError("already exists (pass overwrite=True)", file=str(target))
    if sidecar not in ("tiff", "npy"):
        raise AnnotationFormatError(f"unknown side-car type {sidecar!r}; tiff or npy")
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{target.name}.", suffix=".tmp", dir=target.parent))
    written: list[str] = []
    try:
        made: set[Path] = {tmp}
        for rel, data in export.files.items():
            dest = tmp / rel
            if dest.parent not in made:
                dest.parent.mkdir(parents=True, exist_ok=True)
                made.add(dest.parent)
            dest.write_bytes(data)
            written.append(rel)
        if frames is not None:
            by_id = {item.item_id: item for item in items}
            by_item: dict[str, list[FrameFile]] = defaultdict(list)
            for ff in export.images:
                by_item[ff.item_id].append(ff)
            for item_id, files in by_item.items():
                item = by_id[item_id]
                seq = _frames_of(frames, item)
                for ff in files:
                    frame = seq[ff.frame]
                    if frame.shape != (item.height, item.width):
                        raise AnnotationFormatError(
                            f"frame {ff.frame} is {frame.width}x{frame.height}, the item "
                            f"{item.width}x{item.height}",
                            item=f"item {item_id!r}",
                        )
                    image = tmp / ff.image
                    image.parent.mkdir(parents=True, exist_ok=True)
                    image.write_bytes(encode_png(render(frame.celsius, palette=palette)))
                    stem = frame_stem(item_id, ff.frame, item.frame_count)
                    rel = f"{SIDECAR_DIR}/{stem}.{sidecar}"
                    tio.save(frame, tmp / rel)
                    written.extend((ff.image, rel))
        if target.exists():
            old = Path(
                tempfile.mkdtemp(prefix=f".{target.name}.", suffix=".old", dir=target.parent)
            )
            os.replace(target, old / "x")
            os.replace(tmp, target)
            shutil.rmtree(old, ignore_errors=True)
        else:
            os.replace(tmp, target)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return ExportReport(target, tuple(sorted(written)), tuple(export.warnings))


@contextlib.contextmanager
def bulk() -> Iterator[None]:
    """Pause CPython's cyclic garbage collector while many small records are built: the
    records hold no reference cycles, and repeated full collections over tens of thousands
    of live objects would otherwise cost a third of an import."""
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()


F = TypeVar("F", bound=Callable[..., Any])


def in_bulk(fn: F) -> F:
    """Run ``fn`` inside ``bulk()`` (for the thin ``save`` and ``load`` wrappers)."""

    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        with bulk():
            return fn(*args, **kwargs)

    return wrapper  # type: ignore[return-value]


def read_text(data: bytes, file: str) -> str:
    """UTF-8 text of a file (a leading BOM is dropped)."""
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise AnnotationFormatError(f"not UTF-8 text: {exc}", file=file) from exc


def relative_files(root: Path, pattern: str) -> dict[str, bytes]:
    """Files under ``root`` matching the glob ``pattern``, by ``/`` separated relative path."""
    return {
        p.relative_to(root).as_posix(): p.read_bytes()
        for p in sorted(root.glob(pattern))
        if p.is_file()
    }


def note_provenance(
    original: Provenance, kept: Provenance, item: AnnotatedItem, path: str, losses: Losses
) -> Provenance:
    """``kept``, noting a loss when it differs from ``original``."""
    if kept != original:
        losses.add(
            "provenance", "provenance (who or what made a record, and when)", where(item, path)
        )
    return kept


def mask_polygons(mask: Mask) -> list[Polygon]:
    """The outer outlines of a mask's connected parts as polygons through the centres of their
    boundary pixels (OpenCV contours; holes and parts thinner than 3 outline points are
    lost)."""
    from thermoscope.annotations import rle

    x0, y0, x1, y1 = (int(v) for v in mask_bounds(mask))
    arr = rle.decode(mask.counts, mask.height, mask.width)[y0:y1, x0:x1].astype(np.uint8)
    contours, _ = cv2.findContours(arr, cv2.RETR_EXTERNAL, cv2.CHAIN_APPROX_SIMPLE)
    out = []
    for contour in contours:
        pts = contour.reshape(-1, 2).astype(np.float64) + np.array([x0 + 0.5, y0 + 0.5])
        if len(pts) < 3:
            continue
        try:
            out.append(Polygon(tuple((float(x), float(y)) for x, y in pts)))
        except AnnotationError:
            continue
    return out


class ImageSizes(Mapping[str, tuple[int, int]]):
    """``(width, height)`` px by stem, read from an image's header only when asked for.

    ``locate(stem)`` gives the image file (or ``None``); stems without a readable image are
    absent.
    """

    def __init__(self, stems: Iterable[str], locate: Callable[[str], Path | None]) -> None:
        self._stems = list(stems)
        self._locate = locate

    def __getitem__(self, stem: str) -> tuple[int, int]:
        path = self._locate(stem)
        size = read_image_size(path) if path is not None else None
        if size is None:
            raise KeyError(stem)
        return size

    def __iter__(self) -> Iterator[str]:
        return iter(self._stems)

    def __len__(self) -> int:
        return len(self._stems)


def normal_angle(degrees: float) -> float:
    """An angle in [0, 360) degrees (``-1e-300`` gives 0, not 360)."""
    turned = degrees % 360.0
    return 0.0 if turned >= 360.0 else turned
