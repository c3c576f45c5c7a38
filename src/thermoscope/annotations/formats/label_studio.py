"""Label Studio JSON: tasks with human ``annotations`` and machine ``predictions``.

Layout of an export::

    tasks.json                  a list of tasks, one per frame
    label_config.xml            a labelling configuration whose control names match the results
    images/<stem>.png           8-bit renderings (when frames are given)
    radiometric/<stem>.tiff     float32 °C side-cars (see ``formats.base``)

A task is ``{"id", "data": {"image": "images/<stem>.png", "image_width", "image_height"},
"annotations": [{"result": [...]}], "predictions": [{"model_version", "score", "result"}]}``.
Hand-made records go into the task's one annotation, machine-made ones into a prediction per
model (``model_version`` is ``<model>@<version>``, or the model alone) with each result's
``score``. Region results carry the record's id and ``original_width``/``original_height``;
their ``value`` is in percent of the image size:

- ``rectanglelabels``: ``x, y, width, height, rotation``; Label Studio rotates a rectangle by
  ``rotation`` degrees clockwise about its top-left corner ``(x, y)``, which is where a rotated
  box's first corner goes;
- ``polygonlabels``: ``points`` ``[[x, y], ...]``;
- ``keypointlabels``: ``x, y``;
- ``brushlabels``: ``format: "rle"`` and ``rle``, Label Studio's own run-length code
  (``encode_brush`` / ``decode_brush``) of the frame as RGBA bytes, a mask pixel being 255
  in all four channels (on import, alpha >= 128).

Attribute values are per-region results with the region's id: ``choices`` (enum values, and
bools as ``"true"``/``"false"``), ``number`` and ``textarea`` (text), named after the
attribute. A frame verdict is a ``choices`` result named ``verdict`` (``OK`` or ``NG``) and a
``textarea`` named ``reason`` with the verdict's id.

Kept: labels, record ids, boxes, rotated boxes, polygons, points and masks (coordinates to
about 1e-13 px after the percent conversion), attribute values, per-frame verdicts with their
reason, whether a record is machine-made, and a machine record's model, version and score.

On import, a region's results are grouped by their ``id`` within one annotation or prediction
only (an annotation made from a prediction keeps the prediction's region ids; the two are
separate records, a second one with the same id getting ``<id>@<container>``), and regions
reaching past the image by at most ``OVERSHOOT_PCT`` of its larger side are clipped to it
(noted).

Label Studio cannot hold (``save`` warns): polylines (dropped), tracks (flattened to
per-frame shapes), verdicts on a whole sequence, tolerance labels, who made a hand-made record
and when, review state, metadata and item metadata. A rotated box at 0° comes back as a box.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, unquote, urlparse

import numpy as np
from numpy.typing import NDArray

from thermoscope.annotations.errors import AnnotationError
from thermoscope.annotations.formats.base import (
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
    dump_json,
    export_loader,
    export_saver,
    find_image,
    load_json,
)
from thermoscope.annotations.formats.naming import (
    frame_stem,
    group_frames,
    stem_of,
)
from thermoscope.annotations.formats.records import (
    DRAFT,
    clip_shape,
    drop_review,
    flatten_tracks,
    frame_verdicts,
    item_losses,
    kept_annotation,
    make_item,
    normal_angle,
    note_provenance,
    shape_inside,
    where,
    with_records,
)
from thermoscope.annotations.formats.values import (
    check_labels,
    infer_schema,
    schema_of,
)
from thermoscope.annotations.item import AnnotatedItem
from thermoscope.annotations.model import Annotation, Provenance, VerdictLabel
from thermoscope.annotations.schema import AttributeType, AttributeValue, LabelSchema
from thermoscope.annotations.shapes import (
    Box,
    Mask,
    Point,
    Polygon,
    Polyline,
    RotatedBox,
    Shape,
)
from thermoscope.core import Verdict

NAME = "label-studio"
TASKS_FILE = "tasks.json"
CONFIG_FILE = "label_config.xml"
IMAGE_DIR = "images"
#: Result type and control name per shape kind.
_CONTROLS = {
    "box": ("rectanglelabels", "rectangle"),
    "rotated_box": ("rectanglelabels", "rectangle"),
    "polygon": ("polygonlabels", "polygon"),
    "point": ("keypointlabels", "keypoint"),
    "mask": ("brushlabels", "brush"),
}
_REGION_TYPES = ("rectanglelabels", "polygonlabels", "keypointlabels", "brushlabels")
#: Bit widths of Label Studio's brush run lengths (``rle-pack``).
_RLE_SIZES = (3, 4, 8, 16)
#: Alpha at or above which a brush pixel belongs to the mask.
ALPHA_THRESHOLD = 128


# ---------------------------------------------------------------------------------------------
# Label Studio's brush run-length code


def encode_brush(mask: NDArray[np.bool_]) -> list[int]:
    """Label Studio's ``rle`` of a boolean (H, W) mask: the RGBA bytes of the frame, row by
    row (255 in all four channels on the mask, 0 elsewhere), packed as ``rle-pack`` does: a
    32-bit value count, the word size less 1 (5 bits, 7 for bytes), the four run-length bit
    widths less 1 (4 bits each), then for each run a 1 bit (a repeated value), a 2-bit width
    index, the run length less 1 in that many bits and the byte; zero bits pad the last byte.
    """
    flat = np.repeat(np.asarray(mask, dtype=bool).ravel(), 4)
    n = int(flat.size)
    bits = [f"{n:032b}", f"{7:05b}", *(f"{s - 1:04b}" for s in _RLE_SIZES)]
    if n:
        edges = np.flatnonzero(flat[1:] != flat[:-1]) + 1
        starts = np.concatenate(([0], edges))
        lengths = np.diff(np.concatenate((starts, [n])))
        for start, length in zip(starts.tolist(), lengths.tolist(), strict=True):
            value = "11111111" if flat[start] else "00000000"
            while length > 0:
                chunk = min(length, 1 << _RLE_SIZES[-1])
                size = next(i for i, s in enumerate(_RLE_SIZES) if chunk - 1 < (1 << s))
                bits.append(f"1{size:02b}{chunk - 1:0{_RLE_SIZES[size]}b}{value}")
                length -= chunk
    text = "".join(bits)
    text += "0" * (-len(text) % 8)
    return list(int(text, 2).to_bytes(len(text) // 8, "big"))


def decode_brush(data: Sequence[int], width: int, height: int) -> NDArray[np.bool_]:
    """The boolean (H, W) mask of a brush ``rle`` (pixels whose alpha is at least
    ``ALPHA_THRESHOLD``).

    Raises:
        ValueError: the code is truncated or does not hold ``width * height`` RGBA pixels.
    """
    raw = bytes(int(v) & 0xFF for v in data)
    bits = bin(int.from_bytes(raw, "big"))[2:].zfill(len(raw) * 8) if raw else ""
    pos = 0

    def read(count: int) -> int:
        nonlocal pos
        if pos + count > len(bits):
            raise ValueError("brush RLE ends early")
        value = int(bits[pos : pos + count], 2) if count else 0
        pos += count
        return value

    num = read(32)
    if num != width * height * 4:
        raise ValueError(
            f"brush RLE holds {num} values, a {width}x{height} RGBA image has {width * height * 4}"
        )
    word = read(5) + 1
    sizes = [read(4) + 1 for _ in range(4)]
    values: list[int] = []
    runs: list[int] = []
    i = 0
    while i < num:
        repeat = read(1)
        count = 1 + read(sizes[read(2)])
        if repeat:
            values.append(read(word))
            runs.append(count)
        else:
            for _ in range(count):
                values.append(read(word))
                runs.append(1)
        i += count
    flat = np.repeat(np.asarray(values, dtype=np.int64), runs)[:num]
    rgba = flat.reshape(height, width, 4)
    return np.asarray(rgba[:, :, 3] >= ALPHA_THRESHOLD)


# ---------------------------------------------------------------------------------------------
# geometry codec


#: Regions that overshoot the image by at most this much (percent of its larger side; Label
#: Studio lets a drag end a little past the edge) are clipped to it on import, as YOLO's
#: rounding is; farther out is an error.
OVERSHOOT_PCT = 1.0


def _pct(value: float, size: int) -> float:
    return value / size * 100.0


def _px(value: float, size: int) -> float:
    return value * size / 100.0


def _value(shape: Shape, width: int, height: int) -> dict[str, Any]:
    """The ``value`` of a region result (without its labels)."""
    if isinstance(shape, Box):
        return {
            "x": _pct(shape.x, width),
            "y": _pct(shape.y, height),
            "width": _pct(shape.width, width),
            "height": _pct(shape.height, height),
            "rotation": 0,
        }
    if isinstance(shape, RotatedBox):
        x0, y0 = shape.corners()[0]
        return {
            "x": _pct(x0, width),
            "y": _pct(y0, height),
            "width": _pct(shape.width, width),
            "height": _pct(shape.height, height),
            "rotation": normal_angle(shape.angle_deg),
        }
    if isinstance(shape, Polygon):
        return {"points": [[_pct(x, width), _pct(y, height)] for x, y in shape.points]}
    if isinstance(shape, Point):
        return {"x": _pct(shape.x, width), "y": _pct(shape.y, height), "width": 1.0}
    assert isinstance(shape, Mask)
    return {"format": "rle", "rle": encode_brush(shape.to_mask((height, width)))}


def _shape_of(kind: str, value: Mapping[str, Any], width: int, height: int) -> Shape:
    if kind == "rectanglelabels":
        x, y = _px(_num(value, "x"), width), _px(_num(value, "y"), height)
        w, h = _px(_num(value, "width"), width), _px(_num(value, "height"), height)
        angle = float(value.get("rotation") or 0.0)
        if angle % 360.0 == 0.0:
            return Box(x, y, w, h)
        theta = np.radians(angle)
        cos, sin = float(np.cos(theta)), float(np.sin(theta))
        cx = x + w / 2 * cos - h / 2 * sin
        cy = y + w / 2 * sin + h / 2 * cos
        return RotatedBox(cx, cy, w, h, angle)
    if kind == "polygonlabels":
        points = value.get("points")
        if not isinstance(points, list):
            raise ValueError("polygon points must be a list of [x, y]")
        return Polygon(tuple((_px(float(p[0]), width), _px(float(p[1]), height)) for p in points))
    if kind == "keypointlabels":
        return Point(_px(_num(value, "x"), width), _px(_num(value, "y"), height))
    if value.get("format", "rle") != "rle" or not isinstance(value.get("rle"), list):
        raise ValueError("a brush region needs format 'rle' and an rle list")
    return Mask.from_array(decode_brush(value["rle"], width, height))


def _num(value: Mapping[str, Any], key: str) -> float:
    v = value.get(key)
    if isinstance(v, bool) or not isinstance(v, int | float):
        raise ValueError(f"value.{key} must be a number, got {v!r}")
    return float(v)


def _codec(shape: Shape, width: int, height: int, coded: bool) -> Shape:
    """``shape`` after writing and reading it back (``coded``), or as it is (for ``emit``)."""
    if not coded:
        return shape
    result_type = _CONTROLS[shape.kind][0]
    return _shape_of(result_type, _value(shape, width, height), width, height)


def _model_version(p: Provenance) -> str:
    return f"{p.model}@{p.model_version}" if p.model_version else p.model


def _model_of(text: str) -> tuple[str, str]:
    model, at, version = text.rpartition("@")
    return (model, version) if at and model else (text, "")


def _provenance(p: Provenance, defaults: ImportDefaults) -> Provenance:
    if not p.machine_made:
        return defaults.human()
    model, version = _model_of(_model_version(p))
    return defaults.machine(model=model, version=version, score=p.score)


# ---------------------------------------------------------------------------------------------
# attribute values


def _emit_kind(value: AttributeValue, kind: AttributeType | None) -> str:
    """The result type an attribute value is written as."""
    if kind is AttributeType.ENUM or kind is AttributeType.BOOL or isinstance(value, bool):
        return "choices"
    if kind is AttributeType.NUMBER or (kind is None and isinstance(value, int | float)):
        return "number"
    return "textarea"


def _attribute_result(
    value: AttributeValue, kind: AttributeType | None
) -> tuple[str, dict[str, Any]]:
    result_type = _emit_kind(value, kind)
    if result_type == "choices":
        text = ("true" if value else "false") if isinstance(value, bool) else str(value)
        return "choices", {"choices": [text]}
    if result_type == "number":
        return "number", {"number": value}
    return "textarea", {"text": [str(value)]}


def _attribute_value(
    result_type: str, value: Mapping[str, Any], kind: AttributeType | None
) -> AttributeValue:
    if result_type == "number":
        v = value.get("number")
        if isinstance(v, bool) or not isinstance(v, int | float):
            raise ValueError(f"number value must be a number, got {v!r}")
        return v
    if result_type == "choices":
        choices = value.get("choices")
        if not isinstance(choices, list) or len(choices) != 1 or not isinstance(choices[0], str):
            raise ValueError("an attribute's choices must hold one choice")
        text = choices[0]
        if kind is AttributeType.BOOL or (kind is None and text in ("true", "false")):
            return text == "true"
        if kind is AttributeType.NUMBER:
            return float(text)
        return text
    texts = value.get("text")
    if isinstance(texts, str):
        return texts
    if not isinstance(texts, list):
        raise ValueError("textarea text must be a list of strings")
    return "\n".join(str(t) for t in texts)


def _kind(schema: LabelSchema | None, label: str, name: str) -> AttributeType | None:
    spec = schema.label(label) if schema is not None else None
    attr = spec.attribute(name) if spec is not None else None
    return attr.type if attr is not None else None


def _attributes_back(
    attributes: Mapping[str, AttributeValue],
    label: str,
    written: LabelSchema,
    read: LabelSchema | None,
) -> dict[str, AttributeValue]:
    out = {}
    for name, value in attributes.items():
        result_type, v = _attribute_result(value, _kind(written, label, name))
        out[name] = _attribute_value(result_type, v, _kind(read, label, name))
    return out


# ---------------------------------------------------------------------------------------------
# reduce


def _reduce(
    item: AnnotatedItem,
    written: LabelSchema,
    read: LabelSchema | None,
    defaults: ImportDefaults,
    losses: Losses,
    coded: bool,
) -> AnnotatedItem:
    item_losses(item, losses, verdicts=True)
    index = {a.id: i for i, a in enumerate(item.annotations)}
    per_frame: dict[int, list[Annotation]] = {}
    for a in flatten_tracks(item, losses):
        path = f"annotations[{index[a.id]}]" if a.id in index else f"track shape {a.id}"
        if isinstance(a.shape, Polyline):
            losses.add("polyline", "polylines (Label Studio has none)", where(item, path))
            continue
        if a.metadata:
            losses.add("metadata", "record metadata", where(item, path))
        if isinstance(a.shape, RotatedBox) and a.shape.angle_deg % 360.0 == 0.0:
            losses.add("rotated_box", "rotated boxes at 0° come back as boxes", where(item, path))
        per_frame.setdefault(a.frame, []).append(
            kept_annotation(
                id=a.id,
                label=a.label,
                shape=_codec(a.shape, item.width, item.height, coded),
                frame=a.frame,
                attributes=_attributes_back(a.attributes, a.label, written, read),
                provenance=note_provenance(
                    a.provenance, _provenance(a.provenance, defaults), item, path, losses
                ),
                review=drop_review(a, item, path, losses),
            )
        )
    annotations = []
    for f in sorted(per_frame):
        annotations.extend(_task_order(per_frame[f]))
    verdicts = []
    single = item.frame_count == 1
    for i, (frame, v) in enumerate(frame_verdicts(item, losses)):
        path = f"verdicts[{i}]"
        verdicts.append(
            VerdictLabel(
                id=v.id,
                verdict=v.verdict,
                reason=v.reason,
                frame=None if single else frame,
                provenance=note_provenance(
                    v.provenance, _provenance(v.provenance, defaults), item, path, losses
                ),
                review=drop_review(v, item, path, losses),
            )
        )
    return with_records(item, annotations=annotations, verdicts=verdicts)


def _group(p: Provenance) -> str | None:
    """``None`` for a hand-made record, else its prediction's ``model_version``."""
    return _model_version(p) if p.machine_made else None


def _task_order(records: Sequence[Any]) -> list[Any]:
    """Records in the order a task lists them: hand-made first, then each prediction."""
    groups: dict[str | None, list[Any]] = {None: []}
    for r in records:
        groups.setdefault(_group(r.provenance), []).append(r)
    return [r for g in groups.values() for r in g]


def reduce(
    items: Sequence[AnnotatedItem],
    *,
    schema: LabelSchema | None = None,
    defaults: ImportDefaults | None = None,
    written: LabelSchema | None = None,
    coded: bool = True,
) -> tuple[list[AnnotatedItem], list[LossWarning]]:
    """The items as a Label Studio export keeps them (what ``parse`` with ``schema`` and
    ``defaults`` returns), and what is lost; ``written`` is the schema the export was written
    with (default: inferred from the items). ``coded=False`` leaves coordinates as they are
    (what ``emit`` writes)."""
    defaults = defaults or ImportDefaults()
    written = written or infer_schema(items)
    losses = Losses(NAME)
    kept = [_reduce(i, written, schema, defaults, losses, coded) for i in items]
    return kept, losses.warnings()


# ---------------------------------------------------------------------------------------------
# emit


def _region(a: Annotation, width: int, height: int, schema: LabelSchema) -> list[dict[str, Any]]:
    result_type, control = _CONTROLS[a.shape.kind]
    value = _value(a.shape, width, height)
    value[result_type] = [a.label]
    region: dict[str, Any] = {
        "id": a.id,
        "type": result_type,
        "from_name": control,
        "to_name": "image",
        "original_width": width,
        "original_height": height,
        "image_rotation": 0,
        "value": value,
    }
    out = [region]
    for name, v in a.attributes.items():
        kind, attr_value = _attribute_result(v, _kind(schema, a.label, name))
        out.append(
            {"id": a.id, "type": kind, "from_name": name, "to_name": "image", "value": attr_value}
        )
    if a.provenance.machine_made and a.provenance.score is not None:
        for r in out:
            r["score"] = a.provenance.score
    return out


def _verdict_results(v: VerdictLabel) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = [
        {
            "id": v.id,
            "type": "choices",
            "from_name": "verdict",
            "to_name": "image",
            "value": {"choices": [v.verdict.value]},
        }
    ]
    if v.reason:
        out.append(
            {
                "id": v.id,
                "type": "textarea",
                "from_name": "reason",
                "to_name": "image",
                "value": {"text": [v.reason]},
            }
        )
    if v.provenance.machine_made and v.provenance.score is not None:
        for r in out:
            r["score"] = v.provenance.score
    return out


def label_config(schema: LabelSchema, *, verdicts: bool = True) -> str:
    """A Label Studio labelling configuration whose controls match an export's results."""
    labels = "".join(f'<Label value="{_xml(spec.name)}"/>' for spec in schema.labels)
    lines = ["<View>", '  <Image name="image" value="$image"/>']
    for tag, name in (
        ("RectangleLabels", "rectangle"),
        ("PolygonLabels", "polygon"),
        ("KeyPointLabels", "keypoint"),
        ("BrushLabels", "brush"),
    ):
        lines.append(f'  <{tag} name="{name}" toName="image">{labels}</{tag}>')
    seen: set[str] = set()
    for spec in schema.labels:
        for attr in spec.attributes:
            if attr.name in seen:
                continue
            seen.add(attr.name)
            name = _xml(attr.name)
            if attr.type is AttributeType.ENUM:
                choices = "".join(f'<Choice value="{_xml(v)}"/>' for v in attr.values)
                lines.append(
                    f'  <Choices name="{name}" toName="image" perRegion="true">{choices}</Choices>'
                )
            elif attr.type is AttributeType.BOOL:
                lines.append(
                    f'  <Choices name="{name}" toName="image" perRegion="true">'
                    '<Choice value="true"/><Choice value="false"/></Choices>'
                )
            elif attr.type is AttributeType.NUMBER:
                lines.append(f'  <Number name="{name}" toName="image" perRegion="true"/>')
            else:
                lines.append(f'  <TextArea name="{name}" toName="image" perRegion="true"/>')
    if verdicts:
        lines.append(
            '  <Choices name="verdict" toName="image" choice="single">'
            '<Choice value="OK"/><Choice value="NG"/></Choices>'
        )
        lines.append('  <TextArea name="reason" toName="image" maxSubmissions="1"/>')
    lines.append("</View>")
    return "\n".join(lines) + "\n"


def _xml(text: str) -> str:
    return (
        text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;").replace('"', "&quot;")
    )


def emit(
    items: Sequence[AnnotatedItem],
    *,
    schema: LabelSchema | None = None,
    image_prefix: str = f"{IMAGE_DIR}/",
) -> Export:
    """The Label Studio export of ``items``: ``tasks.json`` and ``label_config.xml``.

    Args:
        items: what to export.
        schema: labels and attribute types (default: those the items use).
        image_prefix: put before each image file name in ``data.image`` (e.g. the
            ``/data/local-files/?d=`` path of a local storage).

    Raises:
        AnnotationFormatError: a record's label is not in ``schema``.
    """
    schema = schema or infer_schema(items)
    check_labels(schema, items, NAME)
    kept, warnings = reduce(items, written=schema, coded=False)
    tasks: list[dict[str, Any]] = []
    frames: list[FrameFile] = []
    for original, item in zip(items, kept, strict=True):
        per_frame: dict[int, list[Any]] = {}
        for a in item.annotations:
            per_frame.setdefault(a.frame, []).append(a)
        for v in item.verdicts:
            per_frame.setdefault(0 if v.frame is None else v.frame, []).append(v)
        for f in range(item.frame_count):
            stem = frame_stem(item.item_id, f, item.frame_count)
            groups: dict[str | None, list[dict[str, Any]]] = {None: []}
            for record in per_frame.get(f, []):
                results = (
                    _region(record, item.width, item.height, schema)
                    if isinstance(record, Annotation)
                    else _verdict_results(record)
                )
                groups.setdefault(_group(record.provenance), []).extend(results)
            task: dict[str, Any] = {
                "id": len(tasks) + 1,
                "data": {
                    "image": f"{image_prefix}{stem}.png",
                    "image_width": item.width,
                    "image_height": item.height,
                },
                "annotations": [],
                "predictions": [],
            }
            human = groups.pop(None)
            if human:
                task["annotations"].append(
                    {"result": human, "was_cancelled": False, "ground_truth": False}
                )
            for model_version, results in groups.items():
                scores = [r["score"] for r in results if "score" in r]
                prediction: dict[str, Any] = {"model_version": model_version, "result": results}
                if scores:
                    prediction["score"] = sum(scores) / len(scores)
                task["predictions"].append(prediction)
            tasks.append(task)
            frames.append(FrameFile(original.item_id, f, f"{IMAGE_DIR}/{stem}.png"))
    files = {
        TASKS_FILE: dump_json(tasks),
        CONFIG_FILE: label_config(schema).encode("utf-8"),
    }
    return Export(files, warnings, frames)


# ---------------------------------------------------------------------------------------------
# parse


def image_path(data: Mapping[str, Any]) -> str | None:
    """The image path of a task's ``data``: its ``image`` (or first text) value, with a
    local-storage ``?d=`` path or a URL reduced to its path."""
    value = data.get("image")
    if not isinstance(value, str):
        value = next((v for v in data.values() if isinstance(v, str) and v), None)
    if value is None:
        return None
    parsed = urlparse(value)
    query = parse_qs(parsed.query)
    if "d" in query:
        return unquote(query["d"][0])
    return unquote(parsed.path) or value


Result = tuple[str, str | None, Mapping[str, Any]]


def _results(task: Mapping[str, Any]) -> list[Result]:
    """``(where, model_version, result)`` for every result of a task's annotations (model
    ``None``; cancelled ones left out) and predictions (model ``""`` when unnamed)."""
    out: list[Result] = []
    for key in ("annotations", "predictions"):
        containers = task.get(key) or []
        if not isinstance(containers, list):
            raise ValueError(f"{key} must be a list")
        for n, container in enumerate(containers):
            if not isinstance(container, dict) or container.get("was_cancelled"):
                continue
            results = container.get("result") or []
            if not isinstance(results, list):
                raise ValueError(f"{key}[{n}].result must be a list")
            model = str(container.get("model_version") or "") if key == "predictions" else None
            for k, result in enumerate(results):
                if isinstance(result, dict):
                    out.append((f"{key}[{n}].result[{k}]", model, result))
    return out


def parse(
    files: Mapping[str, bytes] | bytes,
    *,
    sizes: Mapping[str, tuple[int, int]] | None = None,
    schema: LabelSchema | None = None,
    skip_invalid: bool = False,
    defaults: ImportDefaults | None = None,
    source: str = TASKS_FILE,
) -> ImportResult:
    """Read a Label Studio JSON export (a list of tasks, or one task).

    Args:
        files: the export's files by relative path (``tasks.json`` or the first ``.json``),
            or the bytes of the JSON file.
        sizes: ``(width, height)`` px by image stem, for tasks whose results and data do not
            give it.
        schema: labels and attribute types to check against and type attributes with.
        skip_invalid: leave out invalid results and tasks instead of raising.
        defaults: provenance of hand-made records, and the time of all records.
        source: the file name errors give when ``files`` is bytes.

    Raises:
        AnnotationFormatError: not JSON tasks, or (without ``skip_invalid``) an invalid task
            or result.
    """
    defaults = defaults or ImportDefaults()
    if isinstance(files, bytes):
        data = files
    else:
        names = (
            [TASKS_FILE] if TASKS_FILE in files else sorted(n for n in files if n.endswith(".json"))
        )
        if not names:
            raise AnnotationFormatError("no Label Studio .json file")
        source = names[0]
        data = files[source]
    file = Path(source).name
    doc = load_json(data, file)
    tasks = [doc] if isinstance(doc, dict) else doc
    if not isinstance(tasks, list):
        raise AnnotationFormatError("expected a list of tasks", file=file)
    problems = Problems(skip_invalid)
    notes: list[str] = []
    entries = []
    for n, task in enumerate(tasks):
        what = f"tasks[{n}]" + (
            f" (id {task.get('id')})" if isinstance(task, dict) and "id" in task else ""
        )
        if not isinstance(task, dict) or not isinstance(task.get("data"), dict):
            problems.fail(file, what, "a task must be an object with data")
            continue
        path = image_path(task["data"])
        if path is None:
            problems.fail(file, what, "the task's data names no image")
            continue
        entries.append((stem_of(path), (what, task)))
    items: list[AnnotatedItem] = []
    labels_seen: list[str] = []
    for item_id, frames in group_frames(entries, problems, file):
        records = []
        dims = set()
        ok = True
        for f, (what, task) in enumerate(frames):
            got = problems.attempt(
                file,
                what,
                _task,
                task,
                f,
                len(frames),
                sizes or {},
                schema,
                defaults,
                problems,
                notes,
                file,
                what,
            )
            if got is None:
                ok = False
                break
            size, annotations, verdicts = got
            dims.add(size)
            records.append((annotations, verdicts))
        if not ok:
            continue
        if len(dims) > 1:
            problems.fail(file, f"item {item_id!r}", "its frames differ in size")
            continue
        width, height = dims.pop()
        annotations = [a for r in records for a in r[0]]
        verdicts = [v for r in records for v in r[1]]
        labels_seen.extend(a.label for a in annotations)
        item = problems.attempt(
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
        )
        if item is not None:
            items.append(item)
    return ImportResult(items, schema or schema_of(labels_seen), problems.skipped, notes)


def _task(
    task: Mapping[str, Any],
    frame: int,
    frame_count: int,
    sizes: Mapping[str, tuple[int, int]],
    schema: LabelSchema | None,
    defaults: ImportDefaults,
    problems: Problems,
    notes: list[str],
    file: str,
    what: str,
) -> tuple[tuple[int, int], list[Annotation], list[VerdictLabel]]:
    results = _results(task)
    data = task["data"]
    size = None
    for _, _, r in results:
        w, h = r.get("original_width"), r.get("original_height")
        if isinstance(w, int) and isinstance(h, int) and w > 0 and h > 0:
            size = (w, h)
            break
    if size is None:
        w, h = data.get("image_width"), data.get("image_height")
        if isinstance(w, int) and isinstance(h, int) and w > 0 and h > 0:
            size = (w, h)
    if size is None:
        path = image_path(data)
        size = sizes.get(stem_of(path)) if path is not None else None
    if size is None:
        raise ValueError("image size unknown: no original_width/height and no image")
    width, height = size
    # a region's results share its id within one annotation or prediction only: the same id
    # in another one (a prediction the annotator accepted, say) is another region
    groups: dict[tuple[str, str], list[Result]] = {}
    loose: list[Result] = []
    for where_r, model, r in results:
        rid = r.get("id")
        if isinstance(rid, str) and rid:
            groups.setdefault((where_r.split(".result[")[0], rid), []).append((where_r, model, r))
        else:
            loose.append((where_r, model, r))
    annotations: list[Annotation] = []
    verdicts: list[VerdictLabel] = []
    taken: set[str] = set()
    for (container, rid), group in [
        *groups.items(),
        *(((x[0], f"r{n}"), [x]) for n, x in enumerate(loose)),
    ]:
        first_where = f"{what}: {group[0][0]}"
        if rid in taken:
            rid = f"{rid}@{container}"
        taken.add(rid)
        region = next((x for x in group if x[2].get("type") in _REGION_TYPES), None)
        if region is not None:
            record = problems.attempt(
                file,
                first_where,
                _annotation,
                rid,
                region,
                group,
                frame,
                width,
                height,
                schema,
                defaults,
                notes,
                f"{file}: {first_where}",
            )
            if record is not None:
                annotations.append(record)
            continue
        verdict = next(
            (
                x
                for x in group
                if x[2].get("type") == "choices"
                and (x[2].get("value") or {}).get("choices") in (["OK"], ["NG"])
            ),
            None,
        )
        if verdict is not None:
            v = problems.attempt(
                file,
                first_where,
                _verdict,
                rid,
                verdict,
                group,
                None if frame_count == 1 else frame,
                defaults,
            )
            if v is not None:
                verdicts.append(v)
            continue
        kinds = sorted({str(x[2].get("type")) for x in group})
        notes.append(
            f"{file}: {first_where}: {', '.join(kinds)} result skipped (no thermoscope record)"
        )
    return (width, height), annotations, verdicts


def _machine(model: str | None, result: Mapping[str, Any], defaults: ImportDefaults) -> Provenance:
    if model is None:
        return defaults.human()
    score = result.get("score")
    if score is not None and (isinstance(score, bool) or not isinstance(score, int | float)):
        raise ValueError(f"score must be a number, got {score!r}")
    name, version = _model_of(model)
    return defaults.machine(
        model=name, version=version, score=None if score is None else float(score)
    )


def _annotation(
    rid: str,
    region: Result,
    group: Sequence[Result],
    frame: int,
    width: int,
    height: int,
    schema: LabelSchema | None,
    defaults: ImportDefaults,
    notes: list[str],
    place: str,
) -> Annotation:
    _, model, result = region
    kind = str(result["type"])
    value = result.get("value")
    if not isinstance(value, dict):
        raise ValueError("the result has no value")
    labels = value.get(kind)
    if not isinstance(labels, list) or len(labels) != 1 or not isinstance(labels[0], str):
        raise ValueError(f"value.{kind} must hold one label")
    label = labels[0]
    w = result.get("original_width", width)
    h = result.get("original_height", height)
    shape = _shape_of(kind, value, int(w), int(h))
    if not shape.inside(width, height):
        margin = OVERSHOOT_PCT / 100.0 * max(width, height)
        clipped = clip_shape(shape, width, height, margin=margin)
        if clipped is None:
            raise ValueError(shape_inside(shape, width, height))
        notes.append(f"{place}: {shape.kind} overshooting the image clipped to it")
        shape = clipped
    attributes: dict[str, AttributeValue] = {}
    for _, _, r in group:
        if r is result:
            continue
        name = r.get("from_name")
        if not isinstance(name, str) or not name:
            continue
        attributes[name] = _attribute_value(
            str(r.get("type")), r.get("value") or {}, _kind(schema, label, name)
        )
    if schema is not None:
        schema.validate(label, attributes)
    return Annotation(
        review=DRAFT,
        id=rid,
        label=label,
        shape=shape,
        frame=frame,
        attributes=attributes,
        provenance=_machine(model, result, defaults),
    )


def _verdict(
    rid: str,
    verdict: Result,
    group: Sequence[Result],
    frame: int | None,
    defaults: ImportDefaults,
) -> VerdictLabel:
    _, model, result = verdict
    reason = ""
    for _, _, r in group:
        if r.get("type") == "textarea":
            reason = str(_attribute_value("textarea", r.get("value") or {}, None))
    choice = result["value"]["choices"][0]
    if choice not in VERDICT_LABELS:
        raise ValueError(f"verdict {choice!r} is not OK or NG")
    try:
        return VerdictLabel(
            id=rid,
            verdict=Verdict(choice),
            reason=reason,
            frame=frame,
            provenance=_machine(model, result, defaults),
        )
    except AnnotationError as exc:
        raise ValueError(str(exc)) from None


# ---------------------------------------------------------------------------------------------
# files


def _find(p: Path, options: Mapping[str, Any]) -> Found:
    file = p / TASKS_FILE if p.is_dir() else p
    if not file.is_file():
        raise AnnotationFormatError("no tasks.json", file=str(p))
    root = file.parent
    sizes = ImageSizes(
        [], lambda stem: find_image(root / IMAGE_DIR, stem) or find_image(root, stem)
    )
    return Found(root, file.read_bytes(), {"sizes": sizes, "source": file.name})


save = export_saver(
    emit,
    """Write a Label Studio export folder atomically (layout in the module docstring).

    ``save(items, path, *, schema=None, image_prefix="images/", frames=None, sidecar="tiff",
    palette="iron", overwrite=False, strict=False) -> ExportReport`` (see
    ``files.export_saver``).
    """,
)

load = export_loader(
    parse,
    _find,
    """Read a Label Studio export folder (its ``tasks.json``) or one JSON file; tasks
    without sizes take them from their image in ``images/``.

    ``load(path, *, schema=None, skip_invalid=False, defaults=None) -> ImportResult``.
    """,
)
