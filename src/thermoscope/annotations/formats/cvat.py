"""CVAT for images 1.1 and CVAT for video 1.1 XML.

**CVAT for images** (``mode="images"``), layout of an export::

    annotations.xml                 <annotations><version>1.1</version><meta>...labels...</meta>
                                      <image id name width height> shapes and tags </image> ...
    images/<stem>.png               8-bit renderings (when frames are given)
    radiometric/<stem>.tiff         float32 °C side-cars (see ``formats.base``)

Each frame is an ``image``; its shapes are ``box`` (``xtl ytl xbr ybr`` px, ``rotation`` in
degrees clockwise about the centre for rotated boxes), ``polygon`` and ``polyline``
(``points="x,y;x,y;..."``), ``points`` (one point each) and ``mask`` (CVAT's run lengths over
the mask's bounding box ``left top width height``, row by row, starting with a run of 0s),
each with ``label``, ``source`` (``manual``, or ``auto`` for machine-made records),
``occluded``, ``z_order`` and ``<attribute name="...">value</attribute>`` children. An OK/NG
verdict is a ``<tag label="OK|NG">`` with a ``reason`` attribute.

Kept: labels and their attribute declarations (``meta``: enum → select, bool → checkbox,
number → number with min/max, text → text), every shape type, attribute values (typed by the
declarations), per-frame verdicts with their reason (a single-frame item's whole-item verdict
is its frame's tag), whether a record is machine-made, the ``occluded`` flag and ``z_order``
(record metadata).

CVAT for images cannot hold (``save`` warns): tracks (flattened to per-frame shapes), verdicts
on a whole sequence, tolerance labels, provenance beyond machine-made or not (author, model,
version, score, time), review state, other metadata, record ids, item metadata.

**CVAT for video** (``mode="video"``): one folder per item, ``<stem>/annotations.xml`` and
``<stem>/images/frame_NNNNNN.png``. Every record is a ``track``: a track's keyframes are
written with ``keyframe="1"`` (and their ``outside`` flag), the frames between them with their
interpolated shape and ``keyframe="0"``, as CVAT writes them; an annotation on frame f is a
track with a keyframe on f and an ``outside`` keyframe on f+1. On import only keyframes are
read (CVAT interpolates the rest), frames are counted from ``start_frame`` by the
``frame_filter`` step, and a track that shows a shape on one frame only becomes an
annotation again. Tags carry per-frame verdicts.

Kept: as for images, plus tracks with their keyframes and ``outside`` flags. CVAT for video
cannot hold: verdicts on a whole sequence, the ``occluded``/``z_order`` of single keyframes
(a track's come from its first keyframe), and what CVAT for images cannot hold apart from
tracks. An annotation and a track with one visible frame look alike: both come back as
annotations.

Import notes: a ``points`` shape with several points becomes one point annotation (or track)
per point; tags other than OK/NG are skipped and noted.
"""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, Literal

import numpy as np

from thermoscope.annotations import rle
from thermoscope.annotations.errors import AnnotationError
from thermoscope.annotations.formats.base import (
    PENDING,
    VERDICT_LABELS,
    AnnotationFormatError,
    Export,
    FrameFile,
    ImportDefaults,
    ImportResult,
    Losses,
    LossWarning,
    Problems,
)
from thermoscope.annotations.formats.files import (
    Found,
    ImageSizes,
    XmlWriter,
    export_loader,
    export_saver,
    find_image,
    parse_xml,
)
from thermoscope.annotations.formats.naming import (
    frame_stem,
    group_frames,
    item_id_of,
    stem_of,
)
from thermoscope.annotations.formats.records import (
    drop_review,
    flatten_tracks,
    frame_verdicts,
    item_losses,
    kept_annotation,
    make_item,
    mask_bounds,
    normal_angle,
    note_provenance,
    rename,
    renamed,
    shape_inside,
    where,
    with_records,
)
from thermoscope.annotations.formats.values import (
    attribute_from_text,
    attribute_text,
    check_labels,
    infer_schema,
    number_text,
    text_round_trip,
)
from thermoscope.annotations.item import AnnotatedItem
from thermoscope.annotations.model import Annotation, Provenance, VerdictLabel
from thermoscope.annotations.schema import AttributeSpec, AttributeType, LabelSchema, LabelSpec
from thermoscope.annotations.shapes import (
    Box,
    Mask,
    Point,
    Polygon,
    Polyline,
    RotatedBox,
    Shape,
)
from thermoscope.annotations.tracks import Keyframe, Track
from thermoscope.core import Verdict

NAME = "cvat"
Mode = Literal["images", "video"]
ANNOTATION_FILE = "annotations.xml"
_INPUT_TYPES = {
    AttributeType.ENUM: "select",
    AttributeType.BOOL: "checkbox",
    AttributeType.NUMBER: "number",
    AttributeType.TEXT: "text",
}
_TYPES_OF_INPUT = {
    "select": AttributeType.ENUM,
    "radio": AttributeType.ENUM,
    "checkbox": AttributeType.BOOL,
    "number": AttributeType.NUMBER,
    "text": AttributeType.TEXT,
}
_SHAPE_TAGS = ("box", "polygon", "polyline", "points", "mask")
_MACHINE_SOURCES = ("auto", "semi-auto")


# ---------------------------------------------------------------------------------------------
# geometry codec


def _points_text(points: Sequence[tuple[float, float]]) -> str:
    return ";".join(f"{number_text(x)},{number_text(y)}" for x, y in points)


def _points_of(text: str) -> list[tuple[float, float]]:
    out = []
    for pair in text.strip().split(";"):
        x, y = pair.split(",")
        out.append((float(x), float(y)))
    return out


def _mask_runs(mask: Mask) -> tuple[list[int], int, int, int, int]:
    """CVAT's run lengths of a mask and its box ``left, top, width, height`` (px)."""
    x0, y0, x1, y1 = (int(v) for v in mask_bounds(mask))
    crop = rle.decode(mask.counts, mask.height, mask.width)[y0:y1, x0:x1]
    return rle.encode(crop.T), x0, y0, x1 - x0, y1 - y0


def _mask_of(
    runs: Sequence[int], left: int, top: int, w: int, h: int, width: int, height: int
) -> Mask:
    if left < 0 or top < 0 or w <= 0 or h <= 0 or left + w > width or top + h > height:
        raise ValueError(
            f"mask box {w}x{h} at ({left}, {top}) does not fit the {width}x{height} image"
        )
    crop = rle.decode(runs, w, h).T
    full = np.zeros((height, width), dtype=bool)
    full[top : top + h, left : left + w] = crop
    return Mask.from_array(full)


def _geometry(shape: Shape) -> tuple[str, dict[str, str]]:
    """The element tag and geometry attributes of a shape."""
    if isinstance(shape, Box):
        return "box", {
            "xtl": number_text(shape.x),
            "ytl": number_text(shape.y),
            "xbr": number_text(shape.x + shape.width),
            "ybr": number_text(shape.y + shape.height),
        }
    if isinstance(shape, RotatedBox):
        return "box", {
            "xtl": number_text(shape.cx - shape.width / 2),
            "ytl": number_text(shape.cy - shape.height / 2),
            "xbr": number_text(shape.cx + shape.width / 2),
            "ybr": number_text(shape.cy + shape.height / 2),
            "rotation": number_text(normal_angle(shape.angle_deg)),
        }
    if isinstance(shape, Polygon | Polyline):
        return shape.kind, {"points": _points_text(shape.points)}
    if isinstance(shape, Point):
        return "points", {"points": _points_text([(shape.x, shape.y)])}
    runs, left, top, w, h = _mask_runs(shape)
    return "mask", {
        "rle": ", ".join(map(str, runs)),
        "left": str(left),
        "top": str(top),
        "width": str(w),
        "height": str(h),
    }


def _shapes_of(tag: str, attrib: Mapping[str, str], width: int, height: int) -> list[Shape]:
    """The shapes of an element (several for a ``points`` element with several points)."""
    if tag == "box":
        x0, y0, x1, y1 = (float(attrib[k]) for k in ("xtl", "ytl", "xbr", "ybr"))
        if "rotation" in attrib:
            return [
                RotatedBox(
                    (x0 + x1) / 2, (y0 + y1) / 2, x1 - x0, y1 - y0, float(attrib["rotation"])
                )
            ]
        return [Box(x0, y0, x1 - x0, y1 - y0)]
    if tag == "polygon":
        return [Polygon(tuple(_points_of(attrib["points"])))]
    if tag == "polyline":
        return [Polyline(tuple(_points_of(attrib["points"])))]
    if tag == "points":
        return [Point(x, y) for x, y in _points_of(attrib["points"])]
    runs = [int(v) for v in re.split(r"\s*,\s*", attrib["rle"].strip())]
    left, top, w, h = (int(float(attrib[k])) for k in ("left", "top", "width", "height"))
    return [_mask_of(runs, left, top, w, h, width, height)]


def _codec(shape: Shape, width: int, height: int, coded: bool) -> Shape:
    """``shape`` after writing and reading it back (``coded``), or as it is (for ``emit``,
    which writes the original numbers)."""
    if not coded:
        return shape
    tag, attrib = _geometry(shape)
    return _shapes_of(tag, attrib, width, height)[0]


# ---------------------------------------------------------------------------------------------
# reduce


def _metadata(
    metadata: Mapping[str, Any], item: AnnotatedItem, path: str, losses: Losses
) -> dict[str, Any]:
    out: dict[str, Any] = {}
    if metadata.get("occluded") is True:
        out["occluded"] = True
    z = metadata.get("z_order")
    if isinstance(z, int) and not isinstance(z, bool) and z != 0:
        out["z_order"] = z
    if any(k not in ("occluded", "z_order") for k in metadata):
        losses.add("metadata", "record metadata (kept: occluded, z_order)", where(item, path))
    return out


def _provenance(p: Provenance, defaults: ImportDefaults) -> Provenance:
    return defaults.machine() if p.machine_made else defaults.human()


def _annotation(
    a: Annotation,
    new_id: str,
    item: AnnotatedItem,
    path: str,
    schema: LabelSchema,
    defaults: ImportDefaults,
    losses: Losses,
    coded: bool,
) -> Annotation:
    return kept_annotation(
        id=new_id,
        label=a.label,
        shape=_codec(a.shape, item.width, item.height, coded),
        frame=a.frame,
        attributes=text_round_trip(a.attributes, a.label, schema),
        metadata=_metadata(a.metadata, item, path, losses),
        provenance=note_provenance(
            a.provenance, _provenance(a.provenance, defaults), item, path, losses
        ),
        review=drop_review(a, item, path, losses),
    )


def _verdict(
    v: VerdictLabel,
    frame: int | None,
    new_id: str,
    item: AnnotatedItem,
    path: str,
    defaults: ImportDefaults,
    losses: Losses,
) -> VerdictLabel:
    return VerdictLabel(
        id=new_id,
        verdict=v.verdict,
        reason=v.reason,
        frame=frame,
        provenance=note_provenance(
            v.provenance, _provenance(v.provenance, defaults), item, path, losses
        ),
        review=drop_review(v, item, path, losses),
    )


def _image_verdicts(
    item: AnnotatedItem, defaults: ImportDefaults, losses: Losses
) -> list[VerdictLabel]:
    out: list[VerdictLabel] = []
    single = item.frame_count == 1
    index = {id(v): i for i, v in enumerate(item.verdicts)}
    for frame, v in frame_verdicts(item, losses):
        path = f"verdicts[{index[id(v)]}]"
        out.append(
            _verdict(
                v, None if single else frame, rename("v", len(out)), item, path, defaults, losses
            )
        )
    return out


def _reduce_images(
    item: AnnotatedItem,
    schema: LabelSchema,
    defaults: ImportDefaults,
    losses: Losses,
    coded: bool,
) -> AnnotatedItem:
    item_losses(item, losses, verdicts=True)
    index = {a.id: i for i, a in enumerate(item.annotations)}
    annotations: list[Annotation] = []
    for a in flatten_tracks(item, losses):
        path = f"annotations[{index[a.id]}]" if a.id in index else f"track shape {a.id}"
        annotations.append(
            _annotation(
                a, rename("a", len(annotations)), item, path, schema, defaults, losses, coded
            )
        )
    return with_records(
        item, annotations=annotations, verdicts=_image_verdicts(item, defaults, losses)
    )


def _one_frame(track: Track, frame_count: int) -> int | None:
    """The frame of a track that shows a shape there only, as an annotation exported to CVAT
    for video looks (``None`` for any other track)."""
    keys = track.keyframes
    first = keys[0]
    if first.outside:
        return None
    if len(keys) == 1 and first.frame == frame_count - 1:
        return first.frame
    if len(keys) == 2 and keys[1].outside and keys[1].frame == first.frame + 1:
        return first.frame
    return None


def _video_keyframes(track: Track, item: AnnotatedItem, coded: bool) -> tuple[Keyframe, ...]:
    """The track's keyframes with their shapes as a CVAT file gives them back."""
    return tuple(
        Keyframe(k.frame, _codec(k.shape, item.width, item.height, coded), k.outside)
        for k in track.keyframes
    )


def _reduce_video(
    item: AnnotatedItem,
    schema: LabelSchema,
    defaults: ImportDefaults,
    losses: Losses,
    coded: bool,
) -> AnnotatedItem:
    item_losses(item, losses, verdicts=True)
    converted: list[Annotation] = []
    tracks: list[Track] = []
    for i, t in enumerate(item.tracks):
        path = f"tracks[{i}]"
        keys = _video_keyframes(t, item, coded)
        frame = _one_frame(t, item.frame_count)
        common: dict[str, Any] = {
            "label": t.label,
            "attributes": text_round_trip(t.attributes, t.label, schema),
            "metadata": _metadata(t.metadata, item, path, losses),
            "provenance": note_provenance(
                t.provenance, _provenance(t.provenance, defaults), item, path, losses
            ),
            "review": drop_review(t, item, path, losses),
        }
        if frame is not None:
            losses.add(
                "track-one-frame",
                "tracks visible on one frame only (come back as annotations)",
                where(item, path),
            )
            converted.append(kept_annotation(id="x", shape=keys[0].shape, frame=frame, **common))
        else:
            tracks.append(Track(id=rename("t", len(tracks)), keyframes=keys, **common))
    annotations = [
        kept_annotation(
            id=rename("a", n),
            label=a.label,
            shape=a.shape,
            frame=a.frame,
            attributes=a.attributes,
            metadata=a.metadata,
            provenance=a.provenance,
        )
        for n, a in enumerate(
            [
                *converted,
                *(
                    _annotation(a, "x", item, f"annotations[{i}]", schema, defaults, losses, coded)
                    for i, a in enumerate(item.annotations)
                ),
            ]
        )
    ]
    verdicts = _image_verdicts(item, defaults, losses)
    return with_records(item, annotations=annotations, tracks=tracks, verdicts=verdicts)


def reduce(
    items: Sequence[AnnotatedItem],
    *,
    mode: Mode = "images",
    schema: LabelSchema | None = None,
    defaults: ImportDefaults | None = None,
    coded: bool = True,
) -> tuple[list[AnnotatedItem], list[LossWarning]]:
    """The items as a CVAT ``mode`` export keeps them (what ``parse`` returns with the same
    ``defaults``), and what is lost; ``schema`` is the one the export declares (default: the
    one inferred from the items). ``coded=False`` leaves coordinates as they are (what
    ``emit`` writes)."""
    defaults = defaults or ImportDefaults()
    schema = schema or infer_schema(items)
    losses = Losses(f"{NAME}-{mode}")
    step = _reduce_images if mode == "images" else _reduce_video
    return [step(item, schema, defaults, losses, coded) for item in items], losses.warnings()


# ---------------------------------------------------------------------------------------------
# emit


def _sub(parent: ET.Element, tag: str, text: str | None = None, **attrib: str) -> ET.Element:
    el = ET.SubElement(parent, tag, attrib)
    if text is not None:
        el.text = text
    return el


def _labels(parent: ET.Element, schema: LabelSchema, verdicts: bool) -> None:
    labels = _sub(parent, "labels")
    for spec in schema.labels:
        label = _sub(labels, "label")
        _sub(label, "name", spec.name)
        _sub(label, "type", "any")
        attrs = _sub(label, "attributes")
        for a in spec.attributes:
            attr = _sub(attrs, "attribute")
            _sub(attr, "name", a.name)
            _sub(attr, "mutable", "False")
            _sub(attr, "input_type", _INPUT_TYPES[a.type])
            if a.type is AttributeType.ENUM:
                values = list(a.values)
                default = a.default if a.default is not None else values[0]
            elif a.type is AttributeType.BOOL:
                values = ["false", "true"]
                default = a.default if a.default is not None else False
            elif a.type is AttributeType.NUMBER:
                low = a.minimum if a.minimum is not None else -1e9
                high = a.maximum if a.maximum is not None else 1e9
                values = [number_text(low), number_text(high), "1"]
                default = a.default if a.default is not None else max(low, min(0.0, high))
            else:
                values = []
                default = a.default if a.default is not None else ""
            _sub(attr, "default_value", attribute_text(default))
            _sub(attr, "values", "\n".join(values))
    if verdicts:
        for name in VERDICT_LABELS:
            label = _sub(labels, "label")
            _sub(label, "name", name)
            _sub(label, "type", "tag")
            attr = _sub(_sub(label, "attributes"), "attribute")
            _sub(attr, "name", "reason")
            _sub(attr, "mutable", "False")
            _sub(attr, "input_type", "text")
            _sub(attr, "default_value", "")
            _sub(attr, "values", "")


def _source(p: Provenance) -> str:
    return "auto" if p.machine_made else "manual"


def _shape_element(
    out: XmlWriter,
    shape: Shape,
    record: Annotation | Track,
    extra: Mapping[str, str],
) -> None:
    tag, geometry = _geometry(shape)
    attrib = {**extra, "occluded": "1" if record.metadata.get("occluded") is True else "0"}
    attrib.update(geometry)
    attrib["z_order"] = str(record.metadata.get("z_order", 0))
    if not record.attributes:
        out.leaf(tag, attrib)
        return
    out.open(tag, attrib)
    for name, value in record.attributes.items():
        out.leaf("attribute", {"name": name}, attribute_text(value))
    out.close(tag)


def _tag(out: XmlWriter, v: VerdictLabel, **extra: str) -> None:
    out.open("tag", {"label": v.verdict.value, "source": _source(v.provenance), **extra})
    out.leaf("attribute", {"name": "reason"}, v.reason)
    out.close("tag")


def _check_schema(schema: LabelSchema) -> None:
    for name in VERDICT_LABELS:
        if schema.label(name) is not None:
            raise AnnotationFormatError(
                f"label {name!r} is reserved for verdicts in CVAT exports", file=NAME
            )


def emit(
    items: Sequence[AnnotatedItem],
    *,
    mode: Mode = "images",
    schema: LabelSchema | None = None,
) -> Export:
    """The CVAT ``mode`` export of ``items`` (labels from ``schema``, default the labels and
    attribute types the items use).

    Raises:
        AnnotationFormatError: a record's label is not in ``schema``, or the schema has a label
            named OK or NG (reserved for verdict tags).
    """
    schema = schema or infer_schema(items)
    check_labels(schema, items, NAME)
    _check_schema(schema)
    kept, warnings = reduce(items, mode=mode, schema=schema, coded=False)
    has_verdicts = any(item.verdicts for item in kept)
    if mode == "images":
        return _emit_images(items, kept, schema, has_verdicts, warnings)
    if mode == "video":
        return _emit_video(items, kept, schema, has_verdicts, warnings)
    raise AnnotationFormatError(f"unknown CVAT mode {mode!r}; images or video")


def _emit_images(
    items: Sequence[AnnotatedItem],
    kept: Sequence[AnnotatedItem],
    schema: LabelSchema,
    has_verdicts: bool,
    warnings: list[LossWarning],
) -> Export:
    out = XmlWriter()
    out.open("annotations")
    out.leaf("version", text="1.1")
    meta = ET.Element("meta")
    task = _sub(meta, "task")
    _sub(task, "name", "thermoscope export")
    _sub(task, "size", str(sum(item.frame_count for item in kept)))
    _sub(task, "mode", "annotation")
    _labels(task, schema, has_verdicts)
    out.tree(meta)
    frames: list[FrameFile] = []
    for original, item in zip(items, kept, strict=True):
        per_frame: dict[int, list[Annotation]] = {}
        for a in item.annotations:
            per_frame.setdefault(a.frame, []).append(a)
        tags: dict[int, list[VerdictLabel]] = {}
        for v in item.verdicts:
            tags.setdefault(0 if v.frame is None else v.frame, []).append(v)
        for f in range(item.frame_count):
            stem = frame_stem(item.item_id, f, item.frame_count)
            attrib = {
                "id": str(len(frames)),
                "name": f"{stem}.png",
                "width": str(item.width),
                "height": str(item.height),
            }
            shapes, verdicts = per_frame.get(f, []), tags.get(f, [])
            if not shapes and not verdicts:
                out.leaf("image", attrib)
            else:
                out.open("image", attrib)
                for a in shapes:
                    _shape_element(
                        out, a.shape, a, {"label": a.label, "source": _source(a.provenance)}
                    )
                for v in verdicts:
                    _tag(out, v)
                out.close("image")
            frames.append(FrameFile(original.item_id, f, f"images/{stem}.png"))
    out.close("annotations")
    return Export({ANNOTATION_FILE: out.data()}, warnings, frames)


def _emit_video(
    items: Sequence[AnnotatedItem],
    kept: Sequence[AnnotatedItem],
    schema: LabelSchema,
    has_verdicts: bool,
    warnings: list[LossWarning],
) -> Export:
    files: dict[str, bytes] = {}
    frames: list[FrameFile] = []
    for original, item in zip(items, kept, strict=True):
        stem = frame_stem(item.item_id, 0, 1)
        out = XmlWriter()
        out.open("annotations")
        out.leaf("version", text="1.1")
        meta = ET.Element("meta")
        task = _sub(meta, "task")
        _sub(task, "name", stem)
        _sub(task, "size", str(item.frame_count))
        _sub(task, "mode", "interpolation")
        _sub(task, "start_frame", "0")
        _sub(task, "stop_frame", str(item.frame_count - 1))
        _sub(task, "frame_filter", "")
        _labels(task, schema, has_verdicts)
        size = _sub(task, "original_size")
        _sub(size, "width", str(item.width))
        _sub(size, "height", str(item.height))
        out.tree(meta)
        records: list[tuple[Annotation | Track, tuple[Keyframe, ...]]] = [
            (t, t.keyframes) for t in item.tracks
        ]
        for a in item.annotations:
            shown = [Keyframe(a.frame, a.shape)]
            if a.frame + 1 < item.frame_count:
                shown.append(Keyframe(a.frame + 1, a.shape, outside=True))
            records.append((a, tuple(shown)))
        for n, (record, keys) in enumerate(records):
            track_attrib = {
                "id": str(n),
                "label": record.label,
                "source": _source(record.provenance),
            }
            out.open("track", track_attrib)
            # shapes from the first keyframe on; nothing shows after a final outside keyframe
            last = keys[-1].frame if keys[-1].outside else item.frame_count - 1
            track = None
            at = {k.frame: k for k in keys}
            for f in range(keys[0].frame, last + 1):
                key = at.get(f)
                if key is None and track is None:
                    track = Track(
                        id=PENDING, label=record.label, keyframes=keys, provenance=record.provenance
                    )
                shape = key.shape if key is not None else track.shape_at(f) if track else None
                if shape is None:
                    continue
                extra = {
                    "frame": str(f),
                    "keyframe": "1" if key is not None else "0",
                    "outside": "1" if key is not None and key.outside else "0",
                }
                _shape_element(out, shape, record, extra)
            out.close("track")
        for v in item.verdicts:
            _tag(out, v, frame=str(0 if v.frame is None else v.frame))
        out.close("annotations")
        files[f"{stem}/{ANNOTATION_FILE}"] = out.data()
        frames.extend(
            FrameFile(original.item_id, f, f"{stem}/images/frame_{f:06d}.png")
            for f in range(item.frame_count)
        )
    return Export(files, warnings, frames)


# ---------------------------------------------------------------------------------------------
# parse


def _meta_schema(root: ET.Element) -> LabelSchema | None:
    labels_el = root.find("meta/task/labels")
    if labels_el is None:
        labels_el = root.find("meta/project/labels")
    if labels_el is None:
        return None
    specs = []
    for label in labels_el.iterfind("label"):
        name = (label.findtext("name") or "").strip()
        if not name or name in VERDICT_LABELS:
            continue
        attrs = []
        for attr in label.iterfind("attributes/attribute"):
            spec = _attribute_spec(attr)
            if spec is not None:
                attrs.append(spec)
        try:
            specs.append(LabelSpec(name, tuple(attrs)))
        except AnnotationError:
            specs.append(LabelSpec(name))
    return LabelSchema(tuple(specs))


def _attribute_spec(el: ET.Element) -> AttributeSpec | None:
    name = (el.findtext("name") or "").strip()
    if not name:
        return None
    kind = _TYPES_OF_INPUT.get((el.findtext("input_type") or "text").strip(), AttributeType.TEXT)
    raw = el.findtext("values") or ""
    values = [v for v in (raw.split("\n") if "\n" in raw else raw.split()) if v]
    default_text = el.findtext("default_value")
    try:
        if kind is AttributeType.ENUM:
            spec = AttributeSpec(name, kind, values=tuple(dict.fromkeys(values)))
        elif kind is AttributeType.NUMBER and len(values) >= 2:
            spec = AttributeSpec(name, kind, minimum=float(values[0]), maximum=float(values[1]))
        else:
            spec = AttributeSpec(name, kind)
    except (AnnotationError, ValueError):  # values that do not fit the type: keep the type
        spec = AttributeSpec(name, kind if kind is not AttributeType.ENUM else AttributeType.TEXT)
    if default_text is not None:
        try:
            default = attribute_from_text(default_text, spec.type)
            spec = AttributeSpec(
                spec.name, spec.type, spec.values, spec.minimum, spec.maximum, default=default
            )
        except (AnnotationError, ValueError):
            pass
    return spec


class _Reader:
    """Reads the records of one CVAT document."""

    def __init__(
        self,
        file: str,
        problems: Problems,
        schema: LabelSchema | None,
        declared: LabelSchema | None,
        defaults: ImportDefaults,
        notes: list[str],
    ) -> None:
        self.file = file
        self.problems = problems
        self.schema = schema
        self.types = schema or declared
        source = schema or declared
        self.known = (
            None if source is None else {s.name for s in source.labels} | set(VERDICT_LABELS)
        )
        self.defaults = defaults
        self.notes = notes

    def provenance(self, el: ET.Element) -> Provenance:
        machine = el.get("source", "manual").strip().lower() in _MACHINE_SOURCES
        return self.defaults.machine() if machine else self.defaults.human()

    def attributes(self, el: ET.Element, label: str) -> dict[str, Any]:
        values = {a.get("name", ""): a.text or "" for a in el.iterfind("attribute")}
        out = {}
        for name, text in values.items():
            if not name:
                continue
            spec = self.types.label(label) if self.types is not None else None
            attr = spec.attribute(name) if spec is not None else None
            out[name] = attribute_from_text(text, attr.type if attr is not None else None)
        return out

    def metadata(self, el: ET.Element) -> dict[str, Any]:
        out: dict[str, Any] = {}
        if el.get("occluded", "0").strip() in ("1", "true", "True"):
            out["occluded"] = True
        z = int(el.get("z_order", "0") or 0)
        if z:
            out["z_order"] = z
        return out

    def label(self, el: ET.Element) -> str:
        label = el.get("label", "")
        if not label:
            raise ValueError("the shape has no label")
        if self.known is not None and label not in self.known:
            raise ValueError(f"unknown label {label!r}")
        return label

    def shapes(self, el: ET.Element, width: int, height: int) -> list[Shape]:
        shapes = _shapes_of(el.tag, el.attrib, width, height)
        for shape in shapes:
            problem = shape_inside(shape, width, height)
            if problem:
                raise ValueError(problem)
        if len(shapes) > 1:
            self.notes.append(f"{self.file}: a points shape with {len(shapes)} points split")
        return shapes

    def annotations(
        self, el: ET.Element, frame: int, width: int, height: int, first: int
    ) -> list[Annotation]:
        """The annotations of a shape element, with ids ``a<first>``, ``a<first + 1>`` ..."""
        label = self.label(el)
        attributes = self.attributes(el, label)
        if self.schema is not None:
            self.schema.validate(label, attributes)
        return [
            Annotation(
                id=rename("a", first + k),
                label=label,
                shape=shape,
                frame=frame,
                attributes=attributes,
                metadata=self.metadata(el),
                provenance=self.provenance(el),
            )
            for k, shape in enumerate(self.shapes(el, width, height))
        ]

    def verdict(self, el: ET.Element, frame: int | None) -> VerdictLabel | None:
        label = el.get("label", "")
        if label not in VERDICT_LABELS:
            self.notes.append(f"{self.file}: tag {label!r} skipped (only OK/NG tags are read)")
            return None
        reason = next(
            (a.text or "" for a in el.iterfind("attribute") if a.get("name") == "reason"), ""
        )
        return VerdictLabel(
            id=PENDING,
            verdict=Verdict(label),
            reason=reason,
            frame=frame,
            provenance=self.provenance(el),
        )


def _root(data: bytes, file: str) -> ET.Element:
    root = parse_xml(data, file)
    if root.tag != "annotations":
        raise AnnotationFormatError(f"root element is <{root.tag}>, not <annotations>", file=file)
    return root


def parse(
    files: Mapping[str, bytes],
    *,
    mode: Mode = "images",
    sizes: Mapping[str, tuple[int, int]] | None = None,
    schema: LabelSchema | None = None,
    skip_invalid: bool = False,
    defaults: ImportDefaults | None = None,
) -> ImportResult:
    """Read CVAT XML files.

    Args:
        files: by relative path, the ``.xml`` files (images: the first one; video: each is
            one item, in the mapping's order).
        mode: ``"images"`` or ``"video"``.
        sizes: video only: ``(width, height)`` px by item name for files without
            ``original_size``.
        schema: labels and attributes to check against and type attributes with (default:
            the file's label declarations).
        skip_invalid: leave out invalid shapes, images and tracks instead of raising.
        defaults: provenance of the records.

    Raises:
        AnnotationFormatError: malformed XML, or (without ``skip_invalid``) an invalid entry.
    """
    defaults = defaults or ImportDefaults()
    xmls = [n for n in files if n.endswith(".xml")]
    if not xmls:
        raise AnnotationFormatError("no CVAT .xml file")
    problems = Problems(skip_invalid)
    notes: list[str] = []
    if mode == "images":
        items, declared = _parse_images(xmls[0], files[xmls[0]], problems, schema, defaults, notes)
    elif mode == "video":
        items, declared = [], None
        for rel in xmls:
            item, declared_here = _parse_video(
                rel, files[rel], sizes or {}, problems, schema, defaults, notes
            )
            declared = declared or declared_here
            if item is not None:
                items.append(item)
    else:
        raise AnnotationFormatError(f"unknown CVAT mode {mode!r}; images or video")
    result_schema = schema or declared or infer_schema(items)
    return ImportResult(items, result_schema, problems.skipped, notes)


def _parse_images(
    rel: str,
    data: bytes,
    problems: Problems,
    schema: LabelSchema | None,
    defaults: ImportDefaults,
    notes: list[str],
) -> tuple[list[AnnotatedItem], LabelSchema | None]:
    file = Path(rel).name
    root = _root(data, file)
    if root.find("image") is None and root.find("track") is not None:
        raise AnnotationFormatError("a CVAT for video file (tracks, no images)", file=file)
    declared = _meta_schema(root)
    reader = _Reader(file, problems, schema, declared, defaults, notes)
    entries: dict[str, list[tuple[str, tuple[str, int, int, ET.Element]]]] = {}
    for n, image in enumerate(root.iterfind("image")):
        name = image.get("name", "")
        what = f"image {name!r}" if name else f"image[{n}]"
        try:
            width, height = int(image.get("width", "")), int(image.get("height", ""))
            if width <= 0 or height <= 0:
                raise ValueError
        except ValueError:
            problems.fail(file, what, "width and height must be positive integers")
            continue
        if not name:
            problems.fail(file, what, "the image has no name")
            continue
        subset = image.get("subset", "").strip()
        entries.setdefault(subset, []).append((stem_of(name), (what, width, height, image)))
    items = []
    for subset, subset_entries in entries.items():
        for item_id, frames in group_frames(subset_entries, problems, file):
            item = _image_item(
                file,
                item_id if len(entries) == 1 else f"{subset}/{item_id}",
                {"subset": subset} if subset else {},
                frames,
                reader,
                problems,
            )
            if item is not None:
                items.append(item)
    return items, declared


def _image_item(
    file: str,
    item_id: str,
    metadata: Mapping[str, Any],
    frames: Sequence[tuple[str, int, int, ET.Element]],
    reader: _Reader,
    problems: Problems,
) -> AnnotatedItem | None:
    """The item of one or more ``image`` elements (its frames)."""
    dims = {(w, h) for _, w, h, _ in frames}
    if len(dims) > 1:
        problems.fail(file, f"item {item_id!r}", "its frames differ in size")
        return None
    width, height = dims.pop()
    single = len(frames) == 1
    annotations: list[Annotation] = []
    verdicts: list[VerdictLabel] = []
    for f, (what, _, _, image) in enumerate(frames):
        counts: dict[str, int] = {}
        for el in image:
            k = counts[el.tag] = counts.get(el.tag, -1) + 1
            where_el = f"{what}: {el.tag}[{k}]"
            if el.tag in _SHAPE_TAGS:
                got = problems.attempt(
                    file, where_el, reader.annotations, el, f, width, height, len(annotations)
                )
                annotations.extend(got or [])
            elif el.tag == "tag":
                v = problems.attempt(file, where_el, reader.verdict, el, None if single else f)
                if v is not None:
                    verdicts.append(renamed(v, rename("v", len(verdicts))))
            else:
                problems.fail(file, where_el, _unsupported(el))
    return problems.attempt(
        file,
        f"item {item_id!r}",
        make_item,
        item_id,
        width,
        height,
        len(frames),
        annotations,
        (),
        verdicts,
        metadata,
    )


def _unsupported(el: ET.Element) -> str:
    """Why an element of an image or track cannot be read, naming the CVAT feature."""
    label = el.get("label")
    named = f" {label!r}" if label else ""
    if el.tag == "skeleton":
        parts = len(el.findall("points"))
        return (
            f"CVAT skeletons are not supported (skeleton{named} with {parts} points): "
            "thermoscope has no shape for a structured group of points; export the "
            "skeleton's points as separate points shapes, or leave it out with skip_invalid"
        )
    return (
        f"CVAT {el.tag} shapes are not supported ({el.tag}{named}): thermoscope holds boxes, "
        "rotated boxes, polygons, polylines, points and masks; leave it out with skip_invalid"
    )


def _labelled(el: ET.Element, track: ET.Element) -> ET.Element:
    """A copy of a track's shape element with the track's label (for messages)."""
    copy = ET.Element(el.tag, {**el.attrib, "label": track.get("label", "")})
    copy.extend(list(el))
    return copy


def _frame_map(task: ET.Element | None, file: str) -> tuple[int, int, int | None]:
    """``(start_frame, step, size)`` of a task's frame numbering."""
    if task is None:
        return 0, 1, None
    start = int(task.findtext("start_frame") or 0)
    step = 1
    match = re.search(r"step\s*=\s*(\d+)", task.findtext("frame_filter") or "")
    if match:
        step = max(1, int(match.group(1)))
    size_text = task.findtext("size")
    size = int(size_text) if size_text and size_text.strip().isdigit() else None
    return start, step, size


def _parse_video(
    rel: str,
    data: bytes,
    sizes: Mapping[str, tuple[int, int]],
    problems: Problems,
    schema: LabelSchema | None,
    defaults: ImportDefaults,
    notes: list[str],
) -> tuple[AnnotatedItem | None, LabelSchema | None]:
    file = rel
    root = _root(data, file)
    declared = _meta_schema(root)
    reader = _Reader(file, problems, schema, declared, defaults, notes)
    task = root.find("meta/task")
    name = (task.findtext("name") if task is not None else None) or Path(rel).parent.name or "video"
    item_id = item_id_of(name.strip())
    start, step, size = _frame_map(task, file)
    width_text = root.findtext("meta/task/original_size/width")
    height_text = root.findtext("meta/task/original_size/height")
    if width_text and height_text:
        width, height = int(width_text), int(height_text)
    elif stem_of(name) in sizes:
        width, height = sizes[stem_of(name)]
    else:
        problems.fail(file, "meta", "no original_size and no image to take the frame size from")
        return None, declared

    def index(frame_text: str | None) -> int:
        frame = int(frame_text or "")
        if (frame - start) % step or frame < start:
            raise ValueError(f"frame {frame} is not on the task's frames ({start} + k*{step})")
        return (frame - start) // step

    annotations: list[Annotation] = []
    tracks: list[Track] = []
    verdicts: list[VerdictLabel] = []
    last = 0
    parsed: list[tuple[int, list[Track]]] = []
    for n, track_el in enumerate(root.iterfind("track")):
        what = f"track[{n}] (id {track_el.get('id', '?')})"
        got = problems.attempt(file, what, _track, reader, track_el, index, width, height)
        if got is not None:
            parsed.append((n, got))
            last = max([last, *(k.frame for t in got for k in t.keyframes)])
    tags = []
    for n, tag in enumerate(root.iterfind("tag")):
        what = f"tag[{n}]"
        frame = problems.attempt(file, what, index, tag.get("frame"))
        if frame is not None:
            tags.append((what, frame, tag))
            last = max(last, frame)
    frame_count = size if size is not None else last + 1
    for _, got in parsed:
        for t in got:
            frame = _one_frame(t, frame_count)
            if frame is not None:
                annotations.append(
                    kept_annotation(
                        id=rename("a", len(annotations)),
                        label=t.label,
                        shape=t.keyframes[0].shape,
                        frame=frame,
                        attributes=t.attributes,
                        metadata=t.metadata,
                        provenance=t.provenance,
                    )
                )
            else:
                tracks.append(renamed(t, rename("t", len(tracks))))
    for what, frame, tag in tags:
        v = problems.attempt(file, what, reader.verdict, tag, None if frame_count == 1 else frame)
        if v is not None:
            verdicts.append(renamed(v, rename("v", len(verdicts))))
    item = problems.attempt(
        file,
        f"item {item_id!r}",
        make_item,
        item_id,
        width,
        height,
        frame_count,
        annotations,
        tracks,
        verdicts,
    )
    return item, declared


def _track(reader: _Reader, el: ET.Element, index: Any, width: int, height: int) -> list[Track]:
    label = reader.label(el)
    shapes = [s for s in el if s.tag in _SHAPE_TAGS]
    other = next((s for s in el if s.tag not in _SHAPE_TAGS and s.tag != "attribute"), None)
    if other is not None:
        raise ValueError(_unsupported(other if other.get("label") else _labelled(other, el)))
    if not shapes:
        raise ValueError("the track has no shapes")
    keyed = [s for s in shapes if s.get("keyframe", "1").strip() in ("1", "true", "True")]
    first = shapes[0]
    if first not in keyed:
        keyed.insert(0, first)
    attributes = reader.attributes(first, label)
    if reader.schema is not None:
        reader.schema.validate(label, attributes)
    per_point: list[list[Keyframe]] = []
    for s in keyed:
        frame = index(s.get("frame"))
        geometry = reader.shapes(s, width, height)
        if not per_point:
            per_point = [[] for _ in geometry]
        if len(geometry) != len(per_point):
            raise ValueError("the track's points shapes differ in their number of points")
        outside = s.get("outside", "0").strip() in ("1", "true", "True")
        for keys, shape in zip(per_point, geometry, strict=True):
            keys.append(Keyframe(frame, shape, outside))
    return [
        Track(
            id=PENDING,
            label=label,
            keyframes=tuple(keys),
            attributes=attributes,
            metadata=reader.metadata(first),
            provenance=reader.provenance(el),
        )
        for keys in per_point
    ]


# ---------------------------------------------------------------------------------------------
# files


def _find(p: Path, options: Mapping[str, Any]) -> Found:
    mode = options.get("mode", "images")
    if p.is_file():
        root = p.parent
        files = {p.name: p.read_bytes()}
    else:
        root = p
        if mode == "images":
            found = p / ANNOTATION_FILE
            xml = found if found.is_file() else next(iter(sorted(p.glob("*.xml"))), None)
            files = {xml.name: xml.read_bytes()} if xml is not None else {}
        else:
            files = {
                x.relative_to(p).as_posix(): x.read_bytes()
                for x in sorted([*p.glob("*.xml"), *p.glob(f"*/{ANNOTATION_FILE}")])
            }
    if not files:
        raise AnnotationFormatError("no CVAT .xml file", file=str(p))
    sizes = ImageSizes(
        [],
        lambda stem: (
            find_image(root / stem / "images", "frame_000000")
            or find_image(root / "images", "frame_000000")
        ),
    )
    return Found(root, files, {"sizes": sizes})


save = export_saver(
    emit,
    """Write a CVAT export folder atomically (layout in the module docstring).

    ``save(items, path, *, mode="images", schema=None, frames=None, sidecar="tiff",
    palette="iron", overwrite=False, strict=False) -> ExportReport`` (see
    ``files.export_saver``).
    """,
)

load = export_loader(
    parse,
    _find,
    """Read a CVAT export: a folder (images: its ``annotations.xml`` or first ``.xml``;
    video: every ``annotations.xml`` in it or its sub-folders) or one ``.xml`` file.

    ``load(path, *, mode="images", schema=None, skip_invalid=False, defaults=None) ->
    ImportResult``.
    """,
)
