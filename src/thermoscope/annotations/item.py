"""``AnnotatedItem``: everything annotated on one frame or one sequence, and its dict layout.

An item is identified by ``item_id``, the content hash of its radiometric data, computed by the
caller (the datasets layer). Its frames are ``width`` x ``height`` px, ``frame_count`` of them
(1 for a single frame). The item checks on construction that every record fits it: shapes
inside the frame, frame indices in ``0 .. frame_count-1``, ids unique across all its records,
at most one verdict per frame (and one for the whole item), and, when a ``LabelSchema`` is
passed as ``schema=``, every annotation's and track's label and attributes.

Dict layout (``to_dict`` / ``from_dict``, JSON-ready, lossless, version 1)::

    {
      "format": "thermoscope.annotated-item",
      "version": 1,
      "item_id": str,
      "width": int, "height": int,          # px
      "frame_count": int,
      "annotations": [annotation, ...],     # see thermoscope.annotations.model
      "tracks": [track, ...],               # see thermoscope.annotations.tracks
      "verdicts": [verdict, ...],
      "tolerances": [tolerance, ...],
      "metadata": {...}                     # JSON-ready extras of the item
    }

    annotation: {"id", "label", "frame": int, "shape": shape, "attributes": {name: value},
                 "metadata": {...}, "provenance": provenance, "review": review}
    track:      {"id", "label", "keyframes": [{"frame": int, "shape": shape,
                 "outside": bool}], "attributes", "metadata", "provenance", "review"}
    verdict:    {"id", "frame": int | null (null = whole item), "verdict": "OK" | "NG",
                 "reason": str, "provenance", "review"}
    tolerance:  {"id", "name", "shape": shape, "low_c": °C | null, "high_c": °C | null,
                 "description": str, "provenance", "review"}
    provenance: {"author": str, "model": str, "model_version": str,
                 "score": 0..1 | null, "created": ISO 8601 with offset}
    review:     {"state": "draft" | "submitted" | "accepted" | "rejected",
                 "reviewer": str, "comment": str, "updated": ISO 8601 | null}
    shape:      {"type": "box", "x", "y", "width", "height"}
              | {"type": "rotated_box", "cx", "cy", "width", "height", "angle_deg"}
              | {"type": "polygon" | "polyline", "points": [[x, y], ...]}
              | {"type": "point", "x", "y"}
              | {"type": "mask", "size": [height, width], "counts": COCO compressed RLE str}

Coordinates are px (x = column, y = row, origin at the frame's top-left corner), angles degrees
clockwise, temperatures °C. Records keep their order. ``to_dict`` writes every key; ``from_dict``
also accepts dicts that leave out defaults (``frame_count`` 1, empty lists and mappings, an
annotation's ``frame`` 0, a draft ``review``, empty strings, null score), and rejects unknown
keys and other versions with an ``AnnotationError`` naming the path
(``annotations[3].shape.points``).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import InitVar, dataclass, field
from typing import Any, TypeVar

from thermoscope.annotations import _read
from thermoscope.annotations.errors import AnnotationError
from thermoscope.annotations.model import Annotation, ToleranceLabel, VerdictLabel, freeze_json
from thermoscope.annotations.schema import LabelSchema
from thermoscope.annotations.shapes import Shape
from thermoscope.annotations.tracks import Track
from thermoscope.core.frame import MAX_SIDE

R = TypeVar("R")

#: The ``format`` tag of an item dict.
FORMAT = "thermoscope.annotated-item"
#: The version of the dict layout ``to_dict`` writes and ``from_dict`` reads.
VERSION = 1


@dataclass(frozen=True, slots=True, kw_only=True)
class AnnotatedItem:
    """The annotations of one frame or one sequence (see the module docstring).

    Attributes:
        item_id: content hash of the radiometric data (given by the caller).
        width, height: frame size, px.
        frame_count: frames in the item (1 for a single frame).
        annotations: shapes on single frames.
        tracks: objects followed across frames.
        verdicts: OK / NG per frame and / or for the whole item.
        tolerances: regions with their allowed temperature ranges.
        metadata: JSON-ready extras (source file, product, serial ...).
        schema: when given, labels and attributes are checked against it (not stored).
    """

    item_id: str
    width: int
    height: int
    frame_count: int = 1
    annotations: tuple[Annotation, ...] = ()
    tracks: tuple[Track, ...] = ()
    verdicts: tuple[VerdictLabel, ...] = ()
    tolerances: tuple[ToleranceLabel, ...] = ()
    metadata: Mapping[str, Any] = field(default_factory=dict)
    schema: InitVar[LabelSchema | None] = None

    def __post_init__(self, schema: LabelSchema | None) -> None:
        if (
            not isinstance(self.item_id, str)
            or not self.item_id
            or self.item_id.split() != [self.item_id]
        ):
            raise AnnotationError(
                f"item_id must be a non-empty string without spaces, got {self.item_id!r}"
            )
        what = f"item {self.item_id!r}"
        for name, value, top in (
            ("width", self.width, MAX_SIDE),
            ("height", self.height, MAX_SIDE),
            ("frame_count", self.frame_count, None),
        ):
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise AnnotationError(f"{what}: {name} must be a positive integer, got {value!r}")
            if top is not None and value > top:
                raise AnnotationError(f"{what}: {name} {value} exceeds {top} px")
        for name in ("annotations", "tracks", "verdicts", "tolerances"):
            object.__setattr__(self, name, tuple(getattr(self, name)))
        object.__setattr__(self, "metadata", freeze_json(self.metadata, f"{what}: metadata"))
        self._check_records(what)
        if schema is not None:
            self.validate(schema)

    def _check_records(self, what: str) -> None:
        types = (
            ("annotations", Annotation),
            ("tracks", Track),
            ("verdicts", VerdictLabel),
            ("tolerances", ToleranceLabel),
        )
        for name, cls in types:
            for i, record in enumerate(getattr(self, name)):
                if not isinstance(record, cls):
                    raise AnnotationError(
                        f"{what}: {name}[{i}] is a {type(record).__name__}, not a {cls.__name__}"
                    )
        seen: dict[str, str] = {}
        for where, record in self._records():
            if record.id in seen:
                raise AnnotationError(
                    f"{what}: {where}: id {record.id!r} also used by {seen[record.id]}"
                )
            seen[record.id] = where
        for i, a in enumerate(self.annotations):
            where = f"{what}: annotations[{i}] (id {a.id!r})"
            self._check_frame(a.frame, where)
            self._check_shape(a.shape, where)
        for i, track in enumerate(self.tracks):
            for j, key in enumerate(track.keyframes):
                where = f"{what}: tracks[{i}] (id {track.id!r}) keyframe {j}"
                self._check_frame(key.frame, where)
                self._check_shape(key.shape, where)
        frames: set[int | None] = set()
        for i, v in enumerate(self.verdicts):
            where = f"{what}: verdicts[{i}] (id {v.id!r})"
            if v.frame is not None:
                self._check_frame(v.frame, where)
            if v.frame in frames:
                on = "the whole item" if v.frame is None else f"frame {v.frame}"
                raise AnnotationError(f"{where}: a second verdict on {on}")
            frames.add(v.frame)
        for i, t in enumerate(self.tolerances):
            self._check_shape(t.shape, f"{what}: tolerances[{i}] (id {t.id!r})")

    def _records(self) -> list[tuple[str, Annotation | Track | VerdictLabel | ToleranceLabel]]:
        out: list[tuple[str, Annotation | Track | VerdictLabel | ToleranceLabel]] = []
        for name in ("annotations", "tracks", "verdicts", "tolerances"):
            out.extend((f"{name}[{i}]", r) for i, r in enumerate(getattr(self, name)))
        return out

    def _check_frame(self, frame: int, where: str) -> None:
        if not 0 <= frame < self.frame_count:
            raise AnnotationError(f"{where}: frame {frame} out of range 0..{self.frame_count - 1}")

    def _check_shape(self, shape: Shape, where: str) -> None:
        if not shape.inside(self.width, self.height):
            x0, y0, x1, y1 = shape.bounds()
            raise AnnotationError(
                f"{where}: {shape.kind} spans x {x0:g}..{x1:g}, y {y0:g}..{y1:g}: "
                f"outside the {self.width}x{self.height} frame"
            )

    def validate(self, schema: LabelSchema) -> None:
        """Raise ``AnnotationError`` naming the record and field unless every annotation's and
        track's label and attributes satisfy ``schema``."""
        what = f"item {self.item_id!r}"
        for i, a in enumerate(self.annotations):
            schema.validate(a.label, a.attributes, f"{what}: annotations[{i}] (id {a.id!r})")
        for i, t in enumerate(self.tracks):
            schema.validate(t.label, t.attributes, f"{what}: tracks[{i}] (id {t.id!r})")

    @property
    def verdict(self) -> VerdictLabel | None:
        """The verdict on the whole item (``frame=None``), or for a single frame item the one on
        frame 0; ``None`` when there is none."""
        whole = next((v for v in self.verdicts if v.frame is None), None)
        if whole is None and self.frame_count == 1:
            return next((v for v in self.verdicts if v.frame == 0), None)
        return whole

    def annotations_at(self, frame: int) -> tuple[Annotation, ...]:
        """The single-frame annotations on ``frame``."""
        return tuple(a for a in self.annotations if a.frame == frame)

    def track_shapes_at(self, frame: int) -> list[tuple[Track, Shape]]:
        """Every track visible on ``frame`` with its (interpolated) shape."""
        out = []
        for track in self.tracks:
            shape = track.shape_at(frame)
            if shape is not None:
                out.append((track, shape))
        return out

    def recipe_rules(self, *, mask_paths: Mapping[str, str] | None = None) -> dict[str, Any]:
        """A recipe fragment from the tolerance labels, in the recipe file's form::

            {"frame": {"width": w, "height": h}, "regions": [...], "rules": [...]}

        (see ``ToleranceLabel.to_recipe_rules``); add a ``name`` and it is a recipe the recipes
        layer loads. ``mask_paths`` gives, by region name, the file of each mask region.
        """
        regions: list[dict[str, Any]] = []
        rules: list[dict[str, Any]] = []
        paths = mask_paths or {}
        for tolerance in self.tolerances:
            part = tolerance.to_recipe_rules(mask_path=paths.get(tolerance.name))
            regions.append(part["region"])
            rules.extend(part["rules"])
        return {
            "frame": {"width": self.width, "height": self.height},
            "regions": regions,
            "rules": rules,
        }

    def to_dict(self) -> dict[str, Any]:
        """The JSON-ready dict (layout in the module docstring)."""
        return {
            "format": FORMAT,
            "version": VERSION,
            "item_id": self.item_id,
            "width": self.width,
            "height": self.height,
            "frame_count": self.frame_count,
            "annotations": [a.to_dict() for a in self.annotations],
            "tracks": [t.to_dict() for t in self.tracks],
            "verdicts": [v.to_dict() for v in self.verdicts],
            "tolerances": [t.to_dict() for t in self.tolerances],
            "metadata": dict(self.metadata),
        }

    @classmethod
    def from_dict(
        cls, data: Mapping[str, Any], *, schema: LabelSchema | None = None
    ) -> AnnotatedItem:
        """The item of a dict written by ``to_dict`` (checked against ``schema`` when given)."""
        d = _read.mapping(data, "item")
        _read.keys(
            d,
            ("format", "version", "item_id", "width", "height"),
            ("frame_count", "annotations", "tracks", "verdicts", "tolerances", "metadata"),
            "item",
        )
        if d["format"] != FORMAT:
            raise AnnotationError(f"item.format: expected {FORMAT!r}, got {d['format']!r}")
        if d["version"] != VERSION:
            raise AnnotationError(
                f"item.version: this thermoscope reads version {VERSION}, got {d['version']!r}"
            )
        return cls(
            item_id=_read.string(d["item_id"], "item_id"),
            width=_read.integer(d["width"], "width"),
            height=_read.integer(d["height"], "height"),
            frame_count=_read.integer(d.get("frame_count", 1), "frame_count"),
            annotations=_records(d, "annotations", Annotation.from_dict),
            tracks=_records(d, "tracks", Track.from_dict),
            verdicts=_records(d, "verdicts", VerdictLabel.from_dict),
            tolerances=_records(d, "tolerances", ToleranceLabel.from_dict),
            metadata=_read.mapping(d.get("metadata", {}), "metadata"),
            schema=schema,
        )


def _records(d: Mapping[str, Any], key: str, read: Callable[[Any, str], R]) -> tuple[R, ...]:
    items: Sequence[Any] = _read.array(d.get(key, []), key)
    return tuple(read(x, f"{key}[{i}]") for i, x in enumerate(items))
