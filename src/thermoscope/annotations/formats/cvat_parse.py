"""Reading CVAT for images / video 1.1 XML (see ``cvat`` for the formats and what is kept;
skeletons and other shapes without a thermoscope kind are refused by name)."""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET
from collections.abc import Mapping, Sequence
from functools import partial
from pathlib import Path
from typing import Any

from thermoscope.annotations.errors import AnnotationError
from thermoscope.annotations.formats.base import (
    PENDING,
    VERDICT_LABELS,
    AnnotationFormatError,
    ImportDefaults,
    ImportResult,
    Problems,
)
from thermoscope.annotations.formats.cvat_codec import (
    MACHINE_SOURCES,
    SHAPE_TAGS,
    TYPES_OF_INPUT,
    Mode,
    one_frame,
    shapes_of,
)
from thermoscope.annotations.formats.files import (
    parse_xml,
)
from thermoscope.annotations.formats.naming import (
    group_frames,
    item_id_of,
    stem_of,
)
from thermoscope.annotations.formats.records import (
    kept_annotation,
    make_item,
    rename,
    renamed,
    shape_inside,
)
from thermoscope.annotations.formats.values import (
    attribute_from_text,
    infer_schema,
)
from thermoscope.annotations.item import AnnotatedItem
from thermoscope.annotations.model import Annotation, Provenance, VerdictLabel
from thermoscope.annotations.schema import AttributeSpec, AttributeType, LabelSchema, LabelSpec
from thermoscope.annotations.shapes import (
    Shape,
)
from thermoscope.annotations.tracks import Keyframe, Track
from thermoscope.core import Verdict

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
    kind = TYPES_OF_INPUT.get((el.findtext("input_type") or "text").strip(), AttributeType.TEXT)
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
        self._kinds_of: dict[str, dict[str, AttributeType]] = {}

    def provenance(self, el: ET.Element) -> Provenance:
        machine = el.get("source", "manual").strip().lower() in MACHINE_SOURCES
        return self.defaults.machine() if machine else self.defaults.human()

    def _kinds(self, label: str) -> dict[str, AttributeType]:
        """The declared attribute types of ``label`` (looked up once per label)."""
        kinds = self._kinds_of.get(label)
        if kinds is None:
            spec = self.types.label(label) if self.types is not None else None
            kinds = {a.name: a.type for a in spec.attributes} if spec is not None else {}
            self._kinds_of[label] = kinds
        return kinds

    def attributes(self, el: ET.Element, label: str) -> dict[str, Any]:
        values = {a.get("name", ""): a.text or "" for a in el.iterfind("attribute")}
        if not values:
            return {}
        kinds = self._kinds(label)
        return {
            name: attribute_from_text(text, kinds.get(name))
            for name, text in values.items()
            if name
        }

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
        shapes = shapes_of(el.tag, el.attrib, width, height)
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
        """The annotations of a shape element, with ids ``a<first>``, ``a<first + 1>`` ...

        Their parts are checked here (a known, non-empty label; attribute values typed from
        text, finite numbers; ``occluded``/``z_order`` metadata; shapes inside the image), so
        they are assembled without ``Annotation``'s checks again (tens of thousands per file).
        """
        label = self.label(el)
        attributes = self.attributes(el, label)
        if self.schema is not None:
            self.schema.validate(label, attributes)
        metadata = self.metadata(el)
        provenance = self.provenance(el)
        return [
            kept_annotation(
                id=rename("a", first + k),
                label=label,
                shape=shape,
                frame=frame,
                attributes=attributes,
                metadata=metadata,
                provenance=provenance,
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
    for n, track in enumerate(root.iterfind("track")):
        problems.fail(
            file,
            f"track[{n}] (id {track.get('id', '?')})",
            "tracks beside images are not read by the CVAT for images importer; "
            "import the file as cvat-video",
        )
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
        for el in image:
            where_el = partial(_where, what, image, el)
            if el.tag in SHAPE_TAGS:
                got = problems.attempt(
                    file, where_el, reader.annotations, el, f, width, height, len(annotations)
                )
                annotations.extend(got or [])
            elif el.tag == "tag":
                v = problems.attempt(file, where_el, reader.verdict, el, None if single else f)
                if v is not None:
                    verdicts.append(renamed(v, rename("v", len(verdicts))))
            else:
                problems.fail(file, where_el(), _unsupported(el))
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


def _where(what: str, image: ET.Element, el: ET.Element) -> str:
    """``image 'a.png': box[2]``: an element named by its tag and place among its kind."""
    same = [child for child in image if child.tag == el.tag]
    return f"{what}: {el.tag}[{next(k for k, x in enumerate(same) if x is el)}]"


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
            frame = one_frame(t, frame_count)
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
    shapes = [s for s in el if s.tag in SHAPE_TAGS]
    other = next((s for s in el if s.tag not in SHAPE_TAGS and s.tag != "attribute"), None)
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
