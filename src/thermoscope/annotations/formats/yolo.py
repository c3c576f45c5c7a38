"""YOLO detect and segment label files (Ultralytics layout), normalised coordinates.

Layout of an export::

    data.yaml                      path, train/val image folders, names {index: label}
    images.meta                    "<stem> <height> <width>" per image (px), so that labels can
                                   be read back without the images (datumaro reads it too)
    images/<subset>/<stem>.png     8-bit renderings (when frames are given)
    labels/<subset>/<stem>.txt     one line per shape, one file per frame (empty: no shapes)
    radiometric/<stem>.tiff        float32 °C side-cars (see ``formats.base``)

A line is ``<class> <cx> <cy> <w> <h>`` for a box (``task="detect"``) or ``<class> <x1> <y1>
<x2> <y2> ...`` for a polygon (``task="segment"``); coordinates are divided by the image width
(x) and height (y), so they lie in 0..1, and written with the shortest text that reads back as
the same double. Class indices count from 0 in schema order.

Kept: labels and the geometry of boxes (detect) or polygons (segment), to the last bit of the
normalised value (px coordinates come back within about 1e-12 px).

YOLO cannot hold (``save`` warns): attributes, OK/NG verdicts, tolerance labels, provenance,
scores, review state, metadata, record ids, tracks (flattened to per-frame shapes). Detect:
rotated boxes, polygons and masks become their bounding boxes; polylines and points are dropped.
Segment: boxes and rotated boxes become 4-point polygons, masks become the outlines of their
parts (through boundary pixel centres; holes lost), polylines and points are dropped.

Import reads this layout, the darknet layout (``obj.data``, ``obj.names``, ``train.txt``, labels
next to their images), ``labels/`` folders with ``classes.txt``, and labelImg folders (a
``classes.txt`` and each label file beside its image); image sizes come from
``images.meta`` or the images' headers. Coordinates outside 0..1 by at most ``ROUNDING``
(rounded to 6 decimals by the writer) are clipped to the image.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any, Literal

import yaml

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
    IMAGE_SUFFIXES,
    Found,
    export_loader,
    export_saver,
    find_image,
    read_image_size,
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
    clip_shape,
    drop_review,
    flatten_tracks,
    item_losses,
    kept_annotation,
    make_item,
    mask_polygons,
    note_provenance,
    rename,
    shape_inside,
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
from thermoscope.annotations.model import Annotation, Provenance, Review
from thermoscope.annotations.schema import LabelSchema
from thermoscope.annotations.shapes import Box, Mask, Polygon, Polyline, RotatedBox, Shape

NAME = "yolo"
#: Normalised coordinates outside 0..1 by at most this much (files written with 6 decimals
#: round that far) are clipped to the image on import; farther out is an error.
ROUNDING = 1e-5
Task = Literal["detect", "segment"]
#: The image-size file of an export (datumaro's name and layout).
META_FILE = "images.meta"
_NAME_FILES = ("obj.names", "classes.txt")
_LABEL_DIRS = re.compile(r"(^|/)(labels|annotations|obj_[^/]*_data)(/|$)", re.IGNORECASE)


# ---------------------------------------------------------------------------------------------
# geometry codec (shared by emit, parse and reduce so that reduce predicts parse exactly)


def _box_line(box: Box, width: int, height: int) -> list[float]:
    return [
        (box.x + box.width / 2) / width,
        (box.y + box.height / 2) / height,
        box.width / width,
        box.height / height,
    ]


def _box_of(values: Sequence[float], width: int, height: int) -> Box:
    cx, cy, w, h = values
    bw, bh = w * width, h * height
    return Box(cx * width - bw / 2, cy * height - bh / 2, bw, bh)


def _polygon_line(polygon: Polygon, width: int, height: int) -> list[float]:
    return [v for x, y in polygon.points for v in (x / width, y / height)]


def _polygon_of(values: Sequence[float], width: int, height: int) -> Polygon:
    return Polygon(
        tuple((x * width, y * height) for x, y in zip(values[0::2], values[1::2], strict=True))
    )


def _kept_shapes(
    shape: Shape, task: Task, item: AnnotatedItem, path: str, losses: Losses
) -> list[Shape]:
    """The shapes a label file stores for ``shape`` (before normalisation)."""
    if isinstance(shape, Polyline) or shape.kind == "point":
        losses.add(shape.kind, f"{shape.kind}s (YOLO has none)", where(item, path))
        return []
    if task == "detect":
        if isinstance(shape, Box):
            return [shape]
        box = bounding_box(shape)
        losses.add(shape.kind, f"{shape.kind}s become their bounding boxes", where(item, path))
        return [box] if box is not None else []
    if isinstance(shape, Polygon):
        return [shape]
    if isinstance(shape, Box | RotatedBox):
        losses.add(shape.kind, f"{shape.kind}es become 4-point polygons", where(item, path))
        return [Polygon(shape.corners())]
    assert isinstance(shape, Mask)
    losses.add("mask", "masks become polygon outlines of their parts", where(item, path))
    return list(mask_polygons(shape))


def _line(shape: Shape, width: int, height: int) -> list[float]:
    if isinstance(shape, Box):
        return _box_line(shape, width, height)
    assert isinstance(shape, Polygon)
    return _polygon_line(shape, width, height)


def _shape_of(values: Sequence[float], width: int, height: int) -> Shape:
    if len(values) == 4:
        return _box_of(values, width, height)
    if len(values) >= 6 and len(values) % 2 == 0:
        return _polygon_of(values, width, height)
    raise ValueError(
        f"expected 4 box values or at least 3 (x, y) polygon points, got {len(values)} values"
    )


# ---------------------------------------------------------------------------------------------
# reduce / emit


def _kept(
    item: AnnotatedItem, task: Task, defaults: ImportDefaults, losses: Losses
) -> Iterator[tuple[Annotation, Shape, Provenance, Review]]:
    """Each record a label file keeps of the item, with the shape it stores (before
    normalisation) and its provenance and review as read back; notes what is lost."""
    item_losses(item, losses, verdicts=False)
    index = {a.id: i for i, a in enumerate(item.annotations)}
    for a in flatten_tracks(item, losses):
        path = f"annotations[{index[a.id]}]" if a.id in index else f"track shape {a.id}"
        if a.attributes:
            losses.add("attribute", "attributes", where(item, path))
        if a.metadata:
            losses.add("metadata", "record metadata", where(item, path))
        provenance = note_provenance(a.provenance, defaults.human(), item, path, losses)
        review = drop_review(a, item, path, losses)
        for shape in _kept_shapes(a.shape, task, item, path, losses):
            yield a, shape, provenance, review


def _reduce(
    item: AnnotatedItem, task: Task, defaults: ImportDefaults, losses: Losses, coded: bool
) -> AnnotatedItem:
    annotations: list[Annotation] = []
    for a, shape, provenance, review in _kept(item, task, defaults, losses):
        back = (
            _shape_of(_line(shape, item.width, item.height), item.width, item.height)
            if coded
            else shape
        )
        annotations.append(
            kept_annotation(
                id=rename("a", len(annotations)),
                label=a.label,
                shape=back,
                frame=a.frame,
                provenance=provenance,
                review=review,
            )
        )
    return with_records(item, annotations=annotations)


def reduce(
    items: Sequence[AnnotatedItem],
    *,
    task: Task = "detect",
    defaults: ImportDefaults | None = None,
    coded: bool = True,
) -> tuple[list[AnnotatedItem], list[LossWarning]]:
    """The items as a YOLO ``task`` export keeps them (what ``parse`` returns), and what is
    lost; ``coded=False`` leaves coordinates unnormalised (what ``emit`` writes)."""
    defaults = defaults or ImportDefaults()
    losses = Losses(f"{NAME}-{task}")
    kept = [_reduce(item, task, defaults, losses, coded) for item in items]
    return kept, losses.warnings()


def emit(
    items: Sequence[AnnotatedItem],
    *,
    task: Task = "detect",
    schema: LabelSchema | None = None,
    subset: str = "train",
) -> Export:
    """The YOLO export of ``items`` (class indices in ``schema`` order, default the labels
    used; images and labels under ``<subset>`` folders).

    Raises:
        AnnotationFormatError: a record's label is not in ``schema``, or an unknown ``task``.
    """
    if task not in ("detect", "segment"):
        raise AnnotationFormatError(f"unknown YOLO task {task!r}; detect or segment")
    schema = schema or infer_schema(items)
    check_labels(schema, items, NAME)
    index = {spec.name: str(n) for n, spec in enumerate(schema.labels)}
    defaults = ImportDefaults()
    losses = Losses(f"{NAME}-{task}")
    files: dict[str, bytes] = {}
    frames: list[FrameFile] = []
    meta: list[str] = []
    for item in items:
        lines: dict[int, list[str]] = {f: [] for f in range(item.frame_count)}
        for a, shape, _, _ in _kept(item, task, defaults, losses):
            values = _line(shape, item.width, item.height)
            lines[a.frame].append(" ".join([index[a.label], *map(repr, values)]))
        for f in range(item.frame_count):
            stem = frame_stem(item.item_id, f, item.frame_count)
            text = "".join(line + "\n" for line in lines[f])
            files[f"labels/{subset}/{stem}.txt"] = text.encode("utf-8")
            frames.append(FrameFile(item.item_id, f, f"images/{subset}/{stem}.png"))
            meta.append(f"{stem} {item.height} {item.width}\n")
    warnings = losses.warnings()
    data = {
        "path": ".",
        "train": f"images/{subset}",
        "val": f"images/{subset}",
        "names": dict(enumerate(index)),
    }
    files["data.yaml"] = yaml.safe_dump(data, sort_keys=False, allow_unicode=True).encode()
    files[META_FILE] = "".join(meta).encode("utf-8")
    return Export(files, warnings, frames)


# ---------------------------------------------------------------------------------------------
# parse


def _names(files: Mapping[str, bytes]) -> tuple[list[str], str]:
    yamls = sorted(n for n in files if "/" not in n and n.endswith((".yaml", ".yml")))
    for name in yamls:
        try:
            doc = yaml.safe_load(read_text(files[name], name))
        except yaml.YAMLError as exc:
            raise AnnotationFormatError(f"not valid YAML: {exc}", file=name) from exc
        if not isinstance(doc, dict) or "names" not in doc:
            continue
        names = doc["names"]
        if isinstance(names, dict):
            keys = sorted(names)
            if keys != list(range(len(keys))):
                raise AnnotationFormatError("names must be numbered 0..n-1", file=name)
            return [str(names[k]) for k in keys], name
        if isinstance(names, list):
            return [str(n) for n in names], name
        raise AnnotationFormatError("names must be a list or a mapping", file=name)
    for name in sorted(files, key=lambda n: (n.count("/"), n)):
        if name.rsplit("/", 1)[-1] in _NAME_FILES:
            lines = read_text(files[name], name).splitlines()
            return [line.strip() for line in lines if line.strip()], name
    raise AnnotationFormatError("no class names: data.yaml, obj.names or classes.txt")


def _meta_sizes(files: Mapping[str, bytes]) -> dict[str, tuple[int, int]]:
    data = files.get(META_FILE)
    if data is None:
        return {}
    sizes = {}
    for n, line in enumerate(read_text(data, META_FILE).splitlines()):
        fields = line.split("#", 1)[0].split()
        if not fields:
            continue
        try:
            name, h, w = fields[0], int(fields[1]), int(fields[2])
        except (IndexError, ValueError) as exc:
            raise AnnotationFormatError(
                "expected '<name> <height> <width>'", file=META_FILE, item=f"line {n + 1}"
            ) from exc
        sizes[stem_of(name) if name.lower().endswith(IMAGE_SUFFIXES) else name] = (w, h)
    return sizes


def label_files(files: Mapping[str, bytes]) -> list[str]:
    """The label files among an export's files (in the mapping's order): ``.txt`` files in a
    ``labels``, ``annotations`` or darknet ``obj_*_data`` folder, or, when there is no such
    folder (labelImg saves each label file beside its image), every ``.txt`` file but the
    class names."""
    texts = [n for n in files if n.endswith(".txt")]
    found = [n for n in texts if _LABEL_DIRS.search(n.rsplit("/", 1)[0] if "/" in n else "")]
    if found:
        return found
    return [n for n in texts if n.rsplit("/", 1)[-1] not in (*_NAME_FILES, META_FILE)]


def parse(
    files: Mapping[str, bytes],
    *,
    sizes: Mapping[str, tuple[int, int]] | None = None,
    schema: LabelSchema | None = None,
    skip_invalid: bool = False,
    defaults: ImportDefaults | None = None,
) -> ImportResult:
    """Read YOLO label files.

    Args:
        files: the export's files by relative path: the names file (``data.yaml``,
            ``obj.names`` or ``classes.txt``), the label files and ``images.meta`` if any.
        sizes: ``(width, height)`` px by image stem, for images ``images.meta`` leaves out.
        schema: labels to check against (default: the class names).
        skip_invalid: leave out invalid label lines and files instead of raising.
        defaults: provenance of the records.

    Raises:
        AnnotationFormatError: no class names, or (without ``skip_invalid``) a malformed
            line, an unknown class, a shape outside its image or an image of unknown size.
    """
    defaults = defaults or ImportDefaults()
    names, _ = _names(files)
    known = dict(_meta_sizes(files))
    known.update(sizes or {})
    problems = Problems(skip_invalid)
    entries = []
    for rel in label_files(files):
        stem = stem_of(rel)
        size = known.get(stem)
        if size is None:
            problems.fail(rel, "", "image size unknown: no image and no images.meta entry")
            continue
        entries.append((stem, (rel, size)))
    items: list[AnnotatedItem] = []
    for item_id, frames in group_frames(entries, problems, "labels"):
        dims = {size for _, size in frames}
        if len(dims) > 1:
            problems.fail(frames[0][0], f"item {item_id!r}", "its frames differ in size")
            continue
        width, height = dims.pop()
        annotations: list[Annotation] = []
        for f, (rel, _) in enumerate(frames):
            text = problems.attempt(rel, "", read_text, files[rel], rel)
            for n, line in enumerate((text or "").splitlines()):
                if not line.strip():
                    continue
                record = problems.attempt(
                    rel, f"line {n + 1}", _record, line, names, f, width, height, defaults
                )
                if record is None:
                    continue
                if schema is not None and not problems.attempt(
                    rel, f"line {n + 1}", _known, schema, record.label
                ):
                    continue
                annotations.append(with_id(record, rename("a", len(annotations))))
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
    return ImportResult(items, schema or schema_of(names), problems.skipped)


def _known(schema: LabelSchema, label: str) -> bool:
    schema.validate(label, {})
    return True


def _record(
    line: str, names: Sequence[str], frame: int, width: int, height: int, d: ImportDefaults
) -> Annotation:
    fields = line.split()
    try:
        cls = int(fields[0])
    except ValueError:
        raise ValueError(f"class {fields[0]!r} is not an integer") from None
    if not 0 <= cls < len(names):
        raise ValueError(f"class {cls} is not among the {len(names)} class names")
    try:
        values = [float(v) for v in fields[1:]]
    except ValueError:
        raise ValueError(f"coordinates must be numbers: {line.strip()!r}") from None
    shape = _shape_of(values, width, height)
    if not shape.inside(width, height):
        clipped = clip_shape(shape, width, height, margin=ROUNDING * max(width, height))
        if clipped is None:
            raise ValueError(shape_inside(shape, width, height))
        shape = clipped
    return Annotation(
        id=PENDING, review=DRAFT, label=names[cls], shape=shape, frame=frame, provenance=d.human()
    )


# ---------------------------------------------------------------------------------------------
# files


save = export_saver(
    emit,
    """Write a YOLO export folder atomically (layout in the module docstring).

    ``save(items, path, *, task="detect", schema=None, subset="train", frames=None,
    sidecar="tiff", palette="iron", overwrite=False, strict=False) -> ExportReport`` (see
    ``files.export_saver``).
    """,
)


def _image_for(root: Path, rel: str) -> Path | None:
    """The image of label file ``rel``: beside it, or in the matching ``images`` folder."""
    label = root / rel
    stem = label.stem
    folders = [label.parent]
    parts = list(Path(rel).parent.parts)
    for n, part in enumerate(parts):
        low = part.lower()
        if low in ("labels", "annotations"):
            for other in ("images", "Images", "JPEGImages"):
                folders.append(root.joinpath(*parts[:n], other, *parts[n + 1 :]))
    for folder in folders:
        found = find_image(folder, stem)
        if found is not None:
            return found
    return None


def _find(p: Path, options: Mapping[str, Any]) -> Found:
    if not p.is_dir():
        raise AnnotationFormatError("not a folder", file=str(p))
    root = p
    files: dict[str, bytes] = {}
    for f in root.iterdir():
        if f.is_file() and (f.suffix in (".yaml", ".yml") or f.name in (*_NAME_FILES, META_FILE)):
            files[f.name] = f.read_bytes()
    for f in sorted(root.rglob("*.txt")):
        rel = f.relative_to(root).as_posix()
        if rel not in files and f.is_file():
            files[rel] = f.read_bytes()
    meta = _meta_sizes(files)
    sizes: dict[str, tuple[int, int]] = {}
    for rel in label_files(files):
        if stem_of(rel) in meta:
            continue
        image = _image_for(root, rel)
        size = read_image_size(image) if image is not None else None
        if size is not None:
            sizes[stem_of(rel)] = size
    return Found(root, files, {"sizes": sizes})


load = export_loader(
    parse,
    _find,
    """Read a YOLO folder (any layout in the module docstring); image sizes come from
    ``images.meta`` or the images' headers; side-cars are listed in ``frames``.

    ``load(path, *, schema=None, skip_invalid=False, defaults=None) -> ImportResult``.
    """,
)
