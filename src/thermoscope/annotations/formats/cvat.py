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
per point; tags other than OK/NG are skipped and noted. A project export's images carry a
``subset`` (Train, Validation, Test ...) and may reuse a name across subsets: with more than
one subset, items are ``<subset>/<name>`` with the subset in the item's metadata. What
thermoscope cannot hold is refused by name, never dropped (``skip_invalid`` leaves it out
and lists it): skeletons (on images and as tracks), ellipses, cuboids and any other shape
element, and shapes without a label. A file with a document type declaration is refused
(see ``files.parse_xml``).
"""

from __future__ import annotations

import xml.etree.ElementTree as ET
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from thermoscope.annotations.formats.base import (
    PENDING,
    VERDICT_LABELS,
    AnnotationFormatError,
    Export,
    FrameFile,
    ImportDefaults,
    Losses,
    LossWarning,
)
from thermoscope.annotations.formats.cvat_codec import (
    ANNOTATION_FILE,
    INPUT_TYPES,
    NAME,
    Mode,
    codec,
    one_frame,
    shape_geometry,
)
from thermoscope.annotations.formats.cvat_parse import parse
from thermoscope.annotations.formats.files import (
    Found,
    ImageSizes,
    XmlWriter,
    export_loader,
    export_saver,
    find_image,
)
from thermoscope.annotations.formats.naming import (
    frame_stem,
)
from thermoscope.annotations.formats.records import (
    drop_review,
    flatten_tracks,
    frame_verdicts,
    item_losses,
    kept_annotation,
    note_provenance,
    rename,
    where,
    with_records,
)
from thermoscope.annotations.formats.values import (
    attribute_text,
    check_labels,
    infer_schema,
    number_text,
    text_round_trip,
)
from thermoscope.annotations.item import AnnotatedItem
from thermoscope.annotations.model import Annotation, Provenance, VerdictLabel
from thermoscope.annotations.schema import AttributeType, LabelSchema
from thermoscope.annotations.shapes import (
    Shape,
)
from thermoscope.annotations.tracks import Keyframe, Track

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
        shape=codec(a.shape, item.width, item.height, coded),
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


def _video_keyframes(track: Track, item: AnnotatedItem, coded: bool) -> tuple[Keyframe, ...]:
    """The track's keyframes with their shapes as a CVAT file gives them back."""
    return tuple(
        Keyframe(k.frame, codec(k.shape, item.width, item.height, coded), k.outside)
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
        frame = one_frame(t, item.frame_count)
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
            _sub(attr, "input_type", INPUT_TYPES[a.type])
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
    tag, geometry = shape_geometry(shape)
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
