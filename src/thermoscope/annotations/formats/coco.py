"""COCO instances JSON: boxes, polygons and RLE masks per image, categories from the schema.

Layout of an export (the one datumaro's ``coco_instances`` importer reads)::

    annotations/instances_default.json
    images/default/<stem>.png          8-bit renderings (when frames are given)
    radiometric/<stem>.tiff            float32 °C side-cars (see ``formats.base``)

Each frame is an image entry (``id``, ``file_name``, ``width``, ``height`` px); categories are
the schema's labels with ids 1..n. An annotation has ``bbox`` ``[x, y, width, height]`` px,
``area`` px², ``iscrowd``, ``segmentation`` (``[]`` for a box, ``[[x0, y0, x1, y1, ...]]`` for a
polygon, ``{"size": [h, w], "counts": "<compressed RLE>"}`` for a mask), ``attributes`` (the
record's attribute values as JSON, plus ``occluded`` and ``track_id`` as CVAT writes them) and,
for machine-made records with a score, ``score`` (0..1).

Kept exactly: labels, boxes, polygons, masks, attribute values (JSON types), machine-made
records' scores, the ``occluded`` and ``iscrowd`` flags (record metadata), and tracks as the
shape on every frame where they are visible with their ``track_id`` (read back as a track with
a keyframe on each such frame and ``outside`` keyframes at the gaps).

COCO instances cannot hold (``save`` warns): rotated boxes (become 4-point polygons), polylines
and points (dropped), OK/NG verdicts, tolerance labels, provenance beyond a score (author,
model name and version, time), review state, other metadata, record ids, item metadata, and
a track's own keyframes and interpolation.

Import notes: a segmentation made of several polygons becomes one polygon annotation per part;
``iscrowd`` becomes the ``iscrowd`` metadata flag.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Mapping, Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any, TypeGuard

from thermoscope.annotations import rle
from thermoscope.annotations.formats.base import (
    PENDING,
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
    dump_json,
    export_loader,
    export_saver,
    load_json,
)
from thermoscope.annotations.formats.naming import (
    frame_stem,
    group_frames,
    stem_of,
)
from thermoscope.annotations.formats.records import (
    DRAFT,
    drop_review,
    item_losses,
    keep_metadata,
    kept_annotation,
    make_item,
    mask_bounds,
    note_provenance,
    rebuild_track,
    rename,
    shape_inside,
    track_as_frames,
    where,
    with_id,
    with_records,
)
from thermoscope.annotations.formats.values import (
    check_labels,
    infer_schema,
    schema_of,
)
from thermoscope.annotations.item import AnnotatedItem
from thermoscope.annotations.model import Annotation, Provenance
from thermoscope.annotations.schema import LabelSchema
from thermoscope.annotations.shapes import (
    Box,
    Mask,
    Point,
    Polygon,
    Polyline,
    RotatedBox,
    Shape,
    polygon_area,
)
from thermoscope.annotations.tracks import Keyframe, Track

NAME = "coco"
#: The annotation file of an export, relative to its root.
ANNOTATION_FILE = "annotations/instances_default.json"
#: The folder of the rendered images, relative to the export root.
IMAGE_DIR = "images/default"
#: Record metadata kept, with its type.
KEPT_METADATA: Mapping[str, type] = {"occluded": bool, "iscrowd": bool}
#: Attribute names COCO writers use for their own flags (not the schema's attributes).
RESERVED_ATTRIBUTES = ("occluded", "track_id", "keyframe")


# ---------------------------------------------------------------------------------------------
# reduce


def _shape(shape: Shape, item: AnnotatedItem, path: str, losses: Losses) -> Shape | None:
    if isinstance(shape, RotatedBox):
        losses.add("rotated_box", "rotated boxes become 4-point polygons", where(item, path))
        return Polygon(shape.corners())
    if isinstance(shape, Polyline | Point):
        losses.add(shape.kind, f"{shape.kind}s (COCO instances have none)", where(item, path))
        return None
    return shape


def _provenance(p: Provenance, defaults: ImportDefaults) -> Provenance:
    if p.machine_made and p.score is not None:
        return defaults.machine(score=p.score)
    return defaults.human()


def _attributes(record: Any, item: AnnotatedItem, path: str, losses: Losses) -> dict[str, Any]:
    out = {k: v for k, v in record.attributes.items() if k not in RESERVED_ATTRIBUTES}
    if len(out) != len(record.attributes):
        losses.add(
            "attribute",
            f"attributes named {', '.join(RESERVED_ATTRIBUTES)} (COCO writers' own flags)",
            where(item, path),
        )
    return out


def _reduce(item: AnnotatedItem, defaults: ImportDefaults, losses: Losses) -> AnnotatedItem:
    item_losses(item, losses, verdicts=False)
    annotations: list[Annotation] = []
    own = sorted(enumerate(item.annotations), key=lambda ia: ia[1].frame)
    for i, a in own:
        path = f"annotations[{i}]"
        shape = _shape(a.shape, item, path, losses)
        if shape is None:
            continue
        annotations.append(
            kept_annotation(
                id=rename("a", len(annotations)),
                label=a.label,
                shape=shape,
                frame=a.frame,
                attributes=_attributes(a, item, path, losses),
                metadata=keep_metadata(a.metadata, KEPT_METADATA, item, path, losses),
                provenance=note_provenance(
                    a.provenance, _provenance(a.provenance, defaults), item, path, losses
                ),
                review=drop_review(a, item, path, losses),
            )
        )
    tracks: list[tuple[int, int, Track]] = []
    for i, t in enumerate(item.tracks):
        path = f"tracks[{i}]"
        kept = track_as_frames(t, item.frame_count)
        if not kept or _shape(kept[0].shape, item, path, losses) is None:
            continue
        if kept != t.keyframes:
            losses.add(
                "keyframes",
                "track keyframes (every frame where a track is visible becomes a keyframe)",
                where(item, path),
            )
        keys = tuple(
            Keyframe(k.frame, Polygon(k.shape.corners()), k.outside)
            if isinstance(k.shape, RotatedBox)
            else k
            for k in kept
        )
        track = Track(
            id=t.id,
            label=t.label,
            keyframes=keys,
            attributes=_attributes(t, item, path, losses),
            metadata=keep_metadata(t.metadata, KEPT_METADATA, item, path, losses),
            provenance=note_provenance(
                t.provenance, _provenance(t.provenance, defaults), item, path, losses
            ),
            review=drop_review(t, item, path, losses),
        )
        tracks.append((keys[0].frame, i, track))
    tracks.sort(key=lambda fit: (fit[0], fit[1]))
    return with_records(
        item,
        annotations=annotations,
        tracks=[replace(t, id=rename("t", n)) for n, (_, _, t) in enumerate(tracks)],
    )


def reduce(
    items: Sequence[AnnotatedItem], *, defaults: ImportDefaults | None = None
) -> tuple[list[AnnotatedItem], list[LossWarning]]:
    """The items as a COCO export keeps them (what ``parse`` returns with the same
    ``defaults``), and what is lost."""
    defaults = defaults or ImportDefaults()
    losses = Losses(NAME)
    return [_reduce(item, defaults, losses) for item in items], losses.warnings()


# ---------------------------------------------------------------------------------------------
# emit


def _geometry(shape: Shape) -> tuple[list[float], float, Any]:
    """``(bbox, area, segmentation)`` of a kept shape."""
    if isinstance(shape, Box):
        return [shape.x, shape.y, shape.width, shape.height], shape.area, []
    if isinstance(shape, Polygon):
        x0, y0, x1, y1 = shape.bounds()
        flat = [v for point in shape.points for v in point]
        return [x0, y0, x1 - x0, y1 - y0], polygon_area(shape.points), [flat]
    assert isinstance(shape, Mask)
    x0, y0, x1, y1 = mask_bounds(shape)
    seg = {"size": [shape.height, shape.width], "counts": shape.to_string()}
    return [x0, y0, x1 - x0, y1 - y0], shape.area, seg


def emit(
    items: Sequence[AnnotatedItem],
    *,
    schema: LabelSchema | None = None,
) -> Export:
    """The COCO export of ``items`` (categories from ``schema``, default: the labels used).

    Raises:
        AnnotationFormatError: a record's label is not in ``schema``.
    """
    schema = schema or infer_schema(items)
    check_labels(schema, items, NAME)
    kept, warnings = reduce(items)
    category = {spec.name: n + 1 for n, spec in enumerate(schema.labels)}
    images: list[dict[str, Any]] = []
    annotations: list[dict[str, Any]] = []
    frames: list[FrameFile] = []
    next_track = 1
    for original, item in zip(items, kept, strict=True):
        per_frame: dict[int, list[tuple[Annotation | Track, Shape, int | None]]] = defaultdict(list)
        for a in item.annotations:
            per_frame[a.frame].append((a, a.shape, None))
        track_ids = {}
        for t in item.tracks:
            track_ids[t.id] = next_track
            next_track += 1
            for f in t.visible_frames(item.frame_count):
                shape = t.shape_at(f)
                assert shape is not None
                per_frame[f].append((t, shape, track_ids[t.id]))
        for f in range(item.frame_count):
            stem = frame_stem(item.item_id, f, item.frame_count)
            image_id = len(images) + 1
            images.append(
                {
                    "id": image_id,
                    "file_name": f"{stem}.png",
                    "width": item.width,
                    "height": item.height,
                }
            )
            frames.append(FrameFile(original.item_id, f, f"{IMAGE_DIR}/{stem}.png"))
            for record, shape, track_id in per_frame.get(f, []):
                bbox, area, segmentation = _geometry(shape)
                attributes: dict[str, Any] = dict(record.attributes)
                if "occluded" in record.metadata:
                    attributes["occluded"] = record.metadata["occluded"]
                if track_id is not None:
                    attributes["track_id"] = track_id
                entry: dict[str, Any] = {
                    "id": len(annotations) + 1,
                    "image_id": image_id,
                    "category_id": category[record.label],
                    "segmentation": segmentation,
                    "area": area,
                    "bbox": bbox,
                    "iscrowd": int(bool(record.metadata.get("iscrowd", False))),
                    "attributes": attributes,
                }
                if record.provenance.machine_made and record.provenance.score is not None:
                    entry["score"] = record.provenance.score
                annotations.append(entry)
    doc = {
        "info": {"description": "thermoscope export", "version": "1.0"},
        "licenses": [],
        "categories": [
            {"id": category[spec.name], "name": spec.name, "supercategory": ""}
            for spec in schema.labels
        ],
        "images": images,
        "annotations": annotations,
    }
    data = dump_json(doc)
    return Export({ANNOTATION_FILE: data}, warnings, frames)


# ---------------------------------------------------------------------------------------------
# parse


def _number(value: Any, what: str) -> float:
    kind = type(value)
    if kind is float or kind is int:
        return float(value)
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise ValueError(f"{what} must be a number, got {value!r}")
    return float(value)


def _shapes(
    ann: Mapping[str, Any], width: int, height: int, image_id: Any
) -> tuple[list[Shape], str | None]:
    """The shapes of an annotation (several for a multi-part polygon) and a note."""
    seg = ann.get("segmentation", [])
    if isinstance(seg, Mapping):
        size = seg.get("size")
        if not isinstance(size, list) or len(size) != 2:
            raise ValueError("RLE segmentation needs size [height, width]")
        if [size[0], size[1]] != [height, width]:
            raise ValueError(
                f"RLE size {size[0]}x{size[1]} (HxW) is not that of image {image_id} "
                f"({width}x{height})"
            )
        counts = seg.get("counts")
        if isinstance(counts, str):
            runs = rle.from_string(counts)
        elif isinstance(counts, list):
            runs = [int(_number(c, "RLE count")) for c in counts]
        else:
            raise ValueError("RLE counts must be a string or a list of integers")
        return [Mask(height, width, tuple(runs))], None
    if not isinstance(seg, list):
        raise ValueError(f"segmentation must be a list or an RLE object, got {type(seg).__name__}")
    parts = [p for p in seg if p != []]
    if parts:
        shapes: list[Shape] = []
        for p in parts:
            if not isinstance(p, list) or len(p) % 2 or len(p) < 6:
                raise ValueError("a segmentation polygon needs at least 3 (x, y) pairs")
            values = [_number(v, "polygon coordinate") for v in p]
            shapes.append(Polygon(tuple(zip(values[0::2], values[1::2], strict=True))))
        note = f"a segmentation of {len(parts)} polygons split in parts" if len(parts) > 1 else None
        return shapes, note
    bbox = ann.get("bbox")
    if not isinstance(bbox, list) or len(bbox) != 4:
        raise ValueError("bbox must be [x, y, width, height]")
    x, y, w, h = (_number(v, "bbox value") for v in bbox)
    box = Box(x, y, w, h)
    if not box.inside(width, height):
        raise ValueError(f"bbox extends outside image {image_id} ({width}x{height})")
    return [box], None


def parse(
    files: Mapping[str, bytes] | bytes,
    *,
    schema: LabelSchema | None = None,
    skip_invalid: bool = False,
    defaults: ImportDefaults | None = None,
    source: str = ANNOTATION_FILE,
) -> ImportResult:
    """Read a COCO instances file.

    Args:
        files: the export's files by relative path (the first ``*.json`` under
            ``annotations/`` is read), or the bytes of one instances file.
        schema: labels and attributes to check against (default: the file's categories).
        skip_invalid: leave out invalid entries (listed in ``skipped``) instead of raising.
        defaults: provenance of the records (see ``ImportDefaults``).
        source: the file name errors give when ``files`` is bytes.

    Raises:
        AnnotationFormatError: the file is not COCO JSON, or (without ``skip_invalid``) an
            entry is invalid; the message names the file and the entry.
    """
    defaults = defaults or ImportDefaults()
    if isinstance(files, bytes):
        data = files
    else:
        names = [n for n in files if n.endswith(".json")]
        preferred = [n for n in names if n.startswith("annotations/")] or names
        if not preferred:
            raise AnnotationFormatError("no COCO instances .json file")
        source = preferred[0]
        data = files[source]
    file = Path(source).name
    doc = load_json(data, file)
    if not isinstance(doc, dict):
        raise AnnotationFormatError("expected a JSON object with images and annotations", file=file)
    for key in ("images", "annotations", "categories"):
        if not isinstance(doc.get(key), list):
            raise AnnotationFormatError(f"{key!r} must be a list", file=file)
    problems = Problems(skip_invalid)
    notes: list[str] = []

    categories: dict[int, str] = {}
    for i, cat in enumerate(doc["categories"]):
        if not isinstance(cat, dict) or not isinstance(cat.get("name"), str) or not cat["name"]:
            problems.fail(file, f"categories[{i}]", "a category needs an id and a name")
            continue
        cid = cat.get("id")
        if isinstance(cid, bool) or not isinstance(cid, int) or cid in categories:
            problems.fail(file, f"categories[{i}]", f"id {cid!r} is not a new integer")
            continue
        categories[cid] = cat["name"]
    result_schema = schema or schema_of(categories.values())

    images: dict[Any, tuple[str, int, int]] = {}
    entries: list[tuple[str, Any]] = []
    for i, img in enumerate(doc["images"]):
        what = f"images[{i}]"
        if not isinstance(img, dict):
            problems.fail(file, what, "an image entry must be an object")
            continue
        iid, name, w, h = (img.get(k) for k in ("id", "file_name", "width", "height"))
        if not isinstance(name, str) or not name:
            problems.fail(file, what, "file_name is missing")
            continue
        if iid is None or iid in images or isinstance(iid, dict | list):
            problems.fail(file, what, f"id {iid!r} is missing or used twice")
            continue
        if not (_positive(w) and _positive(h)):
            problems.fail(file, what, f"width and height must be positive integers ({name})")
            continue
        images[iid] = (name, w, h)
        entries.append((stem_of(name), iid))
    grouped = group_frames(entries, problems, file)
    frame_of: dict[Any, tuple[str, int]] = {}
    sizes: dict[str, tuple[int, int]] = {}
    counts: dict[str, int] = {}
    for item_id, image_ids in grouped:
        dims = {images[iid][1:] for iid in image_ids}
        if len(dims) > 1:
            problems.fail(file, f"item {item_id!r}", "its frames differ in size")
            continue
        sizes[item_id] = dims.pop()
        counts[item_id] = len(image_ids)
        for f, iid in enumerate(image_ids):
            frame_of[iid] = (item_id, f)

    own: dict[str, list[Annotation]] = defaultdict(list)
    tracked: dict[str, dict[Any, list[tuple[int, Annotation]]]] = defaultdict(dict)
    for i, ann in enumerate(doc["annotations"]):
        what = f"annotations[{i}]"
        if not isinstance(ann, dict):
            problems.fail(file, what, "an annotation must be an object")
            continue
        iid = ann.get("image_id")
        if isinstance(iid, dict | list) or iid not in images:
            problems.fail(file, what, f"image_id {iid!r} is not among the images")
            continue
        if iid not in frame_of:
            continue  # its image was invalid and skipped
        item_id, frame = frame_of[iid]
        width, height = sizes[item_id]
        cid = ann.get("category_id")
        if isinstance(cid, bool) or not isinstance(cid, int) or cid not in categories:
            problems.fail(file, what, f"category_id {cid!r} is not among the categories")
            continue
        label = categories[cid]
        built = problems.attempt(
            file, what, _record, ann, label, frame, width, height, iid, defaults
        )
        if built is None:
            continue
        records, note, track_id = built
        if note:
            notes.append(f"{file}: {what}: {note}")
        keypoints = ann.get("keypoints")
        if isinstance(keypoints, list) and keypoints:
            notes.append(
                f"{file}: {what}: COCO keypoints are not read ({len(keypoints) // 3} points); "
                "its box or segmentation is"
            )
        for record in records:
            if schema is not None and problems.attempt(file, what, _valid, schema, record) is None:
                break
            if track_id is None:
                own[item_id].append(record)
            else:
                tracked[item_id].setdefault(track_id, []).append((frame, record))

    items: list[AnnotatedItem] = []
    for item_id, _ in grouped:
        if item_id not in sizes:
            continue
        width, height = sizes[item_id]
        frame_count = counts[item_id]
        annotations = [with_id(a, rename("a", n)) for n, a in enumerate(own.get(item_id, []))]
        tracks = []
        for n, (track_id, shapes) in enumerate(tracked.get(item_id, {}).items()):
            what = f"item {item_id!r}: track_id {track_id!r}"
            track = problems.attempt(file, what, _track, rename("t", n), shapes, frame_count)
            if track is not None:
                tracks.append(track)
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
        )
        if item is not None:
            items.append(item)
    return ImportResult(items, result_schema, problems.skipped, notes)


def _positive(value: Any) -> TypeGuard[int]:
    return isinstance(value, int) and not isinstance(value, bool) and value > 0


def _valid(schema: LabelSchema, record: Annotation) -> bool:
    schema.validate(record.label, record.attributes)
    return True


def _track(track_id: str, shapes: list[tuple[int, Annotation]], frame_count: int) -> Track:
    first = shapes[0][1]
    return Track(
        id=track_id,
        label=first.label,
        keyframes=rebuild_track([(f, r.shape) for f, r in shapes], frame_count),
        attributes=first.attributes,
        metadata=first.metadata,
        provenance=first.provenance,
    )


def _record(
    ann: Mapping[str, Any],
    label: str,
    frame: int,
    width: int,
    height: int,
    image_id: Any,
    defaults: ImportDefaults,
) -> tuple[list[Annotation], str | None, Any]:
    shapes, note = _shapes(ann, width, height, image_id)
    for shape in shapes:
        problem = shape_inside(shape, width, height)
        if problem:
            raise ValueError(problem)
    raw = ann.get("attributes", {})
    if not isinstance(raw, dict):
        raise ValueError("attributes must be an object")
    attributes: dict[str, Any] = {}
    metadata: dict[str, Any] = {}
    track_id = None
    for key, value in raw.items():
        if key == "occluded":
            metadata["occluded"] = bool(value)
        elif key == "track_id":
            track_id = value
        elif key == "keyframe":
            continue
        else:
            attributes[key] = value
    if ann.get("iscrowd"):
        metadata["iscrowd"] = True
    score = ann.get("score")
    if score is not None:
        provenance = defaults.machine(score=_number(score, "score"))
    else:
        provenance = defaults.human()
    records = [
        Annotation(
            review=DRAFT,
            id=PENDING,
            label=label,
            shape=shape,
            frame=frame,
            attributes=attributes,
            metadata=metadata,
            provenance=provenance,
        )
        for shape in shapes
    ]
    if track_id is not None and (isinstance(track_id, dict | list) or len(records) > 1):
        raise ValueError("track_id must be a plain value on a single-part shape")
    return records, note, track_id


# ---------------------------------------------------------------------------------------------
# files


def _find(p: Path, options: Mapping[str, Any]) -> Found:
    file = p if p.is_file() else next(iter(sorted((p / "annotations").glob("*.json"))), None)
    if file is None:
        raise AnnotationFormatError("no annotations/*.json file", file=str(p))
    root = file.parent.parent if file.parent.name == "annotations" else file.parent
    return Found(root, file.read_bytes(), {"source": file.name})


save = export_saver(
    emit,
    """Write a COCO export folder atomically (see the module docstring for its layout).

    ``save(items, path, *, schema=None, frames=None, sidecar="tiff", palette="iron",
    overwrite=False, strict=False) -> ExportReport``: ``schema`` gives the categories (default:
    the labels the items use); the other arguments are those of ``files.export_saver``.
    """,
)

load = export_loader(
    parse,
    _find,
    """Read a COCO export folder (its first ``annotations/*.json``) or one instances file;
    side-cars in ``radiometric/`` are listed in ``frames``.

    ``load(path, *, schema=None, skip_invalid=False, defaults=None) -> ImportResult``.
    """,
)
