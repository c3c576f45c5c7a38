"""Pascal VOC detection XML: one file of labelled boxes per image.

Layout of an export (the one datumaro's ``voc`` importer reads)::

    Annotations/<stem>.xml          one per frame
    ImageSets/Main/<subset>.txt     the stems, one a line
    labelmap.txt                    "name:::" per label, in schema order (datumaro's label map)
    JPEGImages/<stem>.png           8-bit renderings (when frames are given)
    radiometric/<stem>.tiff         float32 °C side-cars (see ``formats.base``)

A file holds ``filename``, ``size`` (``width``, ``height`` px, ``depth`` 3) and one
``object`` per box: ``name`` (the label), ``pose``, ``truncated``, ``difficult``, ``occluded``
and ``bndbox`` (``xmin``, ``ymin``, ``xmax``, ``ymax``: the box's corners in px, zero-based
as datumaro and CVAT write them; pass ``one_based=True`` to read files that count pixels from
1 as the original VOC devkit does), plus the record's attributes as text in an ``attributes``
element (the datumaro / CVAT extension), typed again on import by the schema.

Kept: labels, boxes (to the last bit of their corners), attributes (as text; typed again when
the schema is given to ``parse``), the ``difficult``, ``truncated`` and ``occluded`` flags and
the ``pose`` (record metadata).

Import also reads labelImg folders (the XML files beside their images, no ``Annotations``);
``labelmap.txt`` labels are all kept, ``background`` included (datumaro writes it first). A
file with a document type declaration is refused (see ``files.parse_xml``).

VOC cannot hold (``save`` warns): polygons, rotated boxes and masks (become their bounding
boxes), polylines and points (dropped), tracks (flattened to per-frame boxes), OK/NG
verdicts, tolerance labels, provenance, scores, review state, other metadata, record ids and
item metadata.
"""

from __future__ import annotations

import xml.etree.ElementTree as ET
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from thermoscope.annotations.formats.base import (
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
    read_text,
)
from thermoscope.annotations.formats.naming import (
    frame_stem,
    group_frames,
    stem_of,
)
from thermoscope.annotations.formats.records import (
    DRAFT,
    bounding_box,
    drop_review,
    flatten_tracks,
    item_losses,
    kept_annotation,
    make_item,
    note_provenance,
    rename,
    shape_inside,
    where,
    with_records,
)
from thermoscope.annotations.formats.values import (
    attribute_text,
    check_labels,
    infer_schema,
    number_text,
    schema_of,
    text_round_trip,
    typed_attributes,
)
from thermoscope.annotations.item import AnnotatedItem
from thermoscope.annotations.model import Annotation
from thermoscope.annotations.schema import LabelSchema
from thermoscope.annotations.shapes import Box, Shape

NAME = "voc"
ANNOTATION_DIR = "Annotations"
IMAGE_DIR = "JPEGImages"
LABELMAP = "labelmap.txt"
_FLAGS = ("difficult", "truncated", "occluded")
_DEFAULT_POSE = "Unspecified"


def _box_of(x0: float, y0: float, x1: float, y1: float) -> Box:
    return Box(x0, y0, x1 - x0, y1 - y0)


def _corners(box: Box) -> tuple[float, float, float, float]:
    return box.x, box.y, box.x + box.width, box.y + box.height


def _kept_box(
    shape: Shape, item: AnnotatedItem, path: str, losses: Losses, coded: bool
) -> Box | None:
    if isinstance(shape, Box):
        return _box_of(*_corners(shape)) if coded else shape
    box = bounding_box(shape)
    if box is None:
        losses.add(shape.kind, f"{shape.kind}s (VOC has boxes only)", where(item, path))
        return None
    losses.add(shape.kind, f"{shape.kind}s become their bounding boxes", where(item, path))
    return _box_of(*_corners(box)) if coded else box


def _metadata(
    metadata: Mapping[str, object], item: AnnotatedItem, path: str, losses: Losses
) -> dict[str, object]:
    out: dict[str, object] = {k: True for k in _FLAGS if metadata.get(k) is True}
    pose = metadata.get("pose")
    if isinstance(pose, str) and pose.strip() and pose.strip() != _DEFAULT_POSE:
        out["pose"] = pose.strip()
    if any(k not in (*_FLAGS, "pose") for k in metadata):
        losses.add("metadata", "record metadata (kept: flags and pose)", where(item, path))
    return out


def _reduce(
    item: AnnotatedItem,
    schema: LabelSchema | None,
    defaults: ImportDefaults,
    losses: Losses,
    coded: bool,
) -> AnnotatedItem:
    item_losses(item, losses, verdicts=False)
    index = {a.id: i for i, a in enumerate(item.annotations)}
    annotations: list[Annotation] = []
    for a in flatten_tracks(item, losses):
        path = f"annotations[{index[a.id]}]" if a.id in index else f"track shape {a.id}"
        box = _kept_box(a.shape, item, path, losses, coded)
        if box is None:
            continue
        annotations.append(
            kept_annotation(
                id=rename("a", len(annotations)),
                label=a.label,
                shape=box,
                frame=a.frame,
                attributes=text_round_trip(a.attributes, a.label, schema),
                metadata=_metadata(a.metadata, item, path, losses),
                provenance=note_provenance(a.provenance, defaults.human(), item, path, losses),
                review=drop_review(a, item, path, losses),
            )
        )
    return with_records(item, annotations=annotations)


def reduce(
    items: Sequence[AnnotatedItem],
    *,
    schema: LabelSchema | None = None,
    defaults: ImportDefaults | None = None,
    coded: bool = True,
) -> tuple[list[AnnotatedItem], list[LossWarning]]:
    """The items as a VOC export keeps them (what ``parse`` with the same ``schema`` and
    ``defaults`` returns), and what is lost; ``coded=False`` leaves box corners as they are
    (what ``emit`` writes)."""
    defaults = defaults or ImportDefaults()
    losses = Losses(NAME)
    kept = [_reduce(item, schema, defaults, losses, coded) for item in items]
    return kept, losses.warnings()


def _document(item: AnnotatedItem, annotations: Sequence[Annotation], stem: str) -> bytes:
    out = XmlWriter()
    out.open("annotation")
    out.leaf("folder", text=IMAGE_DIR)
    out.leaf("filename", text=f"{stem}.png")
    out.open("source")
    out.leaf("database", text="thermoscope")
    out.close("source")
    out.open("size")
    out.leaf("width", text=str(item.width))
    out.leaf("height", text=str(item.height))
    out.leaf("depth", text="3")
    out.close("size")
    out.leaf("segmented", text="0")
    for a in annotations:
        assert isinstance(a.shape, Box)
        out.open("object")
        out.leaf("name", text=a.label)
        out.leaf("pose", text=str(a.metadata.get("pose", _DEFAULT_POSE)))
        for flag in _FLAGS:
            out.leaf(flag, text="1" if a.metadata.get(flag) is True else "0")
        out.open("bndbox")
        for tag, corner in zip(("xmin", "ymin", "xmax", "ymax"), _corners(a.shape), strict=True):
            out.leaf(tag, text=number_text(corner))
        out.close("bndbox")
        if a.attributes:
            out.open("attributes")
            for name, value in a.attributes.items():
                out.open("attribute")
                out.leaf("name", text=name)
                out.leaf("value", text=attribute_text(value))
                out.close("attribute")
            out.close("attributes")
        out.close("object")
    out.close("annotation")
    return out.data()


def emit(
    items: Sequence[AnnotatedItem],
    *,
    schema: LabelSchema | None = None,
    subset: str = "default",
) -> Export:
    """The VOC export of ``items`` (label map from ``schema``, default the labels used).

    Raises:
        AnnotationFormatError: a record's label is not in ``schema``.
    """
    schema = schema or infer_schema(items)
    check_labels(schema, items, NAME)
    kept, warnings = reduce(items, schema=schema, coded=False)
    files: dict[str, bytes] = {}
    frames: list[FrameFile] = []
    stems: list[str] = []
    for original, item in zip(items, kept, strict=True):
        per_frame: dict[int, list[Annotation]] = {}
        for a in item.annotations:
            per_frame.setdefault(a.frame, []).append(a)
        for f in range(item.frame_count):
            stem = frame_stem(item.item_id, f, item.frame_count)
            files[f"{ANNOTATION_DIR}/{stem}.xml"] = _document(item, per_frame.get(f, []), stem)
            frames.append(FrameFile(original.item_id, f, f"{IMAGE_DIR}/{stem}.png"))
            stems.append(stem)
    files[f"ImageSets/Main/{subset}.txt"] = "".join(s + "\n" for s in stems).encode()
    labelmap = "# label:color_rgb:parts:actions\n" + "".join(
        f"{spec.name}:::\n" for spec in schema.labels
    )
    files[LABELMAP] = labelmap.encode("utf-8")
    return Export(files, warnings, frames)


def _labelmap(data: bytes) -> list[str]:
    names = []
    for line in read_text(data, LABELMAP).splitlines():
        line = line.strip()
        if line and not line.startswith("#"):
            name = line.split(":", 1)[0].strip()
            if name:
                names.append(name)
    return names


def _text(el: ET.Element, path: str) -> str:
    found = el.find(path)
    if found is None or found.text is None or not found.text.strip():
        raise ValueError(f"{path} is missing")
    return found.text.strip()


def _flag(el: ET.Element, tag: str) -> bool:
    found = el.find(tag)
    return found is not None and (found.text or "").strip() in ("1", "true", "True")


def parse(
    files: Mapping[str, bytes],
    *,
    sizes: Mapping[str, tuple[int, int]] | None = None,
    schema: LabelSchema | None = None,
    skip_invalid: bool = False,
    defaults: ImportDefaults | None = None,
    one_based: bool = False,
) -> ImportResult:
    """Read VOC annotation files.

    Args:
        files: by relative path: the ``.xml`` annotation files (those under ``Annotations/``
            when there are any; items come in the mapping's order) and ``labelmap.txt`` if
            present.
        sizes: ``(width, height)`` px by stem for files without a ``size``.
        schema: labels and attribute types to check against and type attributes with
            (default: the label map, or the labels met).
        skip_invalid: leave out invalid objects and files instead of raising.
        defaults: provenance of the records.
        one_based: corners count pixels from 1 (the VOC devkit); 1 is taken off
            ``xmin``/``ymin``.

    Raises:
        AnnotationFormatError: (without ``skip_invalid``) malformed XML, a missing size, a
            box outside its image or a label not in the label map or schema.
    """
    defaults = defaults or ImportDefaults()
    problems = Problems(skip_invalid)
    mapped = _labelmap(files[LABELMAP]) if LABELMAP in files else None
    known = set(mapped) if mapped is not None else None
    if schema is not None:
        known = {spec.name for spec in schema.labels}
    xmls = [n for n in files if n.endswith(".xml")]
    under = [n for n in xmls if n.startswith(f"{ANNOTATION_DIR}/")]
    entries = []
    seen: list[str] = []
    for rel in under or xmls:
        stem = stem_of(rel)
        frame = problems.attempt(rel, "", _frame, files[rel], rel, stem, sizes or {}, one_based)
        if frame is not None:
            entries.append((stem, (rel, frame)))
    items: list[AnnotatedItem] = []
    for item_id, frames in group_frames(entries, problems, ANNOTATION_DIR):
        dims = {frame[0] for _, frame in frames}
        if len(dims) > 1:
            problems.fail(frames[0][0], f"item {item_id!r}", "its frames differ in size")
            continue
        width, height = dims.pop()
        annotations: list[Annotation] = []
        for f, (rel, (_, objects)) in enumerate(frames):
            for k, obj in enumerate(objects):
                what = f"object[{k}]"
                if isinstance(obj, str):
                    problems.fail(rel, what, obj)
                    continue
                label, box, attributes, metadata = obj
                if known is not None and label not in known:
                    problems.fail(rel, what, f"unknown label {label!r}")
                    continue
                problem = shape_inside(box, width, height)
                if problem:
                    problems.fail(rel, what, problem)
                    continue
                record = problems.attempt(
                    rel,
                    what,
                    _annotation,
                    rename("a", len(annotations)),
                    label,
                    box,
                    f,
                    attributes,
                    metadata,
                    schema,
                    defaults,
                )
                if record is not None:
                    annotations.append(record)
                    seen.append(label)
        item = problems.attempt(
            frames[0][0],
            f"item {item_id!r}",
            make_item,
            item_id,
            width,
            height,
            len(frames),
            annotations,
        )
        if item is not None:
            items.append(item)
    result_schema = schema or schema_of(mapped if mapped is not None else seen)
    return ImportResult(items, result_schema, problems.skipped)


ParsedObject = tuple[str, Box, dict[str, str], dict[str, object]] | str


def _frame(
    data: bytes, rel: str, stem: str, sizes: Mapping[str, tuple[int, int]], one_based: bool
) -> tuple[tuple[int, int], list[ParsedObject]]:
    """The image size and the objects of one file (an object that cannot be read is the
    text of its problem)."""
    try:
        root = parse_xml(data, rel)
    except AnnotationFormatError as exc:
        raise ValueError(exc.detail) from None
    if root.tag != "annotation":
        raise ValueError(f"root element is <{root.tag}>, not <annotation>")
    size = None
    try:
        w, h = int(_text(root, "size/width")), int(_text(root, "size/height"))
        if w > 0 and h > 0:
            size = (w, h)
    except ValueError:
        size = None
    size = size or sizes.get(stem)
    if size is None:
        raise ValueError("no image size: no size element and no image")
    objects: list[ParsedObject] = []
    for obj in root.iterfind("object"):
        try:
            label = _text(obj, "name")
            x0, y0, x1, y1 = (
                float(_text(obj, f"bndbox/{t}")) for t in ("xmin", "ymin", "xmax", "ymax")
            )
            if one_based:
                x0, y0 = x0 - 1, y0 - 1
            box = _box_of(x0, y0, x1, y1)
        except ValueError as exc:
            objects.append(str(exc))
            continue
        attributes = {}
        for attr in obj.iterfind("attributes/attribute"):
            name = (attr.findtext("name") or "").strip()
            if name:
                attributes[name] = attr.findtext("value") or ""
        metadata: dict[str, object] = {k: True for k in _FLAGS if _flag(obj, k)}
        pose = (obj.findtext("pose") or "").strip()
        if pose and pose != _DEFAULT_POSE:
            metadata["pose"] = pose
        objects.append((label, box, attributes, metadata))
    return size, objects


def _annotation(
    record_id: str,
    label: str,
    box: Box,
    frame: int,
    attributes: dict[str, str],
    metadata: dict[str, object],
    schema: LabelSchema | None,
    defaults: ImportDefaults,
) -> Annotation:
    typed = typed_attributes(attributes, label, schema)
    if schema is not None:
        schema.validate(label, typed)
    return Annotation(
        review=DRAFT,
        id=record_id,
        label=label,
        shape=box,
        frame=frame,
        attributes=typed,
        metadata=metadata,
        provenance=defaults.human(),
    )


def _find(p: Path, options: Mapping[str, Any]) -> Found:
    if p.is_file():
        root, files = p.parent, {p.name: p.read_bytes()}
    else:
        root = p
        listed = [
            line.strip()
            for lst in sorted((p / "ImageSets" / "Main").glob("*.txt"))
            for line in lst.read_text(encoding="utf-8").splitlines()
            if line.strip() and "_" not in lst.stem
        ]
        found = {x.stem: x for x in sorted((p / ANNOTATION_DIR).glob("*.xml"))}
        if not found:  # labelImg: the XML files beside the images
            found = {x.stem: x for x in sorted(p.glob("*.xml"))}
        order = [s for s in dict.fromkeys(listed) if s in found]
        seen = set(order)
        order += [s for s in found if s not in seen]
        files = {f"{ANNOTATION_DIR}/{s}.xml": found[s].read_bytes() for s in order}
        if (p / LABELMAP).is_file():
            files[LABELMAP] = (p / LABELMAP).read_bytes()
    stems = [stem_of(rel) for rel in files if rel.endswith(".xml")]
    sizes = ImageSizes(
        stems, lambda stem: find_image(root / IMAGE_DIR, stem) or find_image(root, stem)
    )
    return Found(root, files, {"sizes": sizes})


save = export_saver(
    emit,
    """Write a VOC export folder atomically (layout in the module docstring).

    ``save(items, path, *, schema=None, subset="default", frames=None, sidecar="tiff",
    palette="iron", overwrite=False, strict=False) -> ExportReport`` (see
    ``files.export_saver``).
    """,
)

load = export_loader(
    parse,
    _find,
    """Read a VOC folder (``Annotations/*.xml`` in the order of the ``ImageSets/Main`` lists,
    ``labelmap.txt``), or one VOC ``.xml`` file; files without a size take it from their image
    in ``JPEGImages``.

    ``load(path, *, schema=None, skip_invalid=False, defaults=None, one_based=False) ->
    ImportResult``.
    """,
)
