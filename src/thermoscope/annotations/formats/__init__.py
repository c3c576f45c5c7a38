"""Interchange formats for annotated items: COCO, YOLO, CVAT XML, Label Studio, Pascal VOC.

Each format module has pure ``reduce`` / ``emit`` / ``parse`` and thin ``save`` / ``load``
(see ``thermoscope.annotations.formats.base``); its docstring lists what the format keeps and
what it cannot hold, which ``save`` reports as ``LossWarning`` records. ``FORMATS`` has them
by name, with the variant (YOLO task, CVAT mode) bound::

    from thermoscope.annotations.formats import FORMATS

    report = FORMATS["coco"].save(items, "export", schema=schema, frames=frames_by_id)
    for warning in report.warnings:
        print(warning)
    result = FORMATS["coco"].load("export", skip_invalid=True)
    result.items, result.skipped, result.load_frames(result.items[0].item_id)
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from functools import partial
from types import ModuleType
from typing import Any

from thermoscope.annotations.formats import coco, cvat, label_studio, voc, yolo
from thermoscope.annotations.formats.base import (
    AnnotationFormatError,
    AnnotationLossError,
    Export,
    ExportReport,
    FrameFile,
    ImportDefaults,
    ImportResult,
    LossWarning,
    Skipped,
)


@dataclass(frozen=True, slots=True)
class AnnotationFormat:
    """One interchange format (with its variant bound).

    Attributes:
        name: registry key (``"yolo-segment"``).
        description: one line for users.
        module: the format module; its docstring lists what the format cannot hold.
        save: ``save(items, folder, *, schema=None, frames=None, sidecar="tiff",
            overwrite=False, strict=False, ...) -> ExportReport``.
        load: ``load(path, *, schema=None, skip_invalid=False, defaults=None) ->
            ImportResult``.
        emit: pure ``emit(items, *, schema=None, ...) -> Export``.
        parse: pure ``parse(files, *, schema=None, skip_invalid=False, defaults=None, ...) ->
            ImportResult``.
        reduce: ``reduce(items, *, defaults=None, ...) -> (items as kept, warnings)``.
    """

    name: str
    description: str
    module: ModuleType
    save: Callable[..., ExportReport]
    load: Callable[..., ImportResult]
    emit: Callable[..., Export]
    parse: Callable[..., ImportResult]
    reduce: Callable[..., tuple[list[Any], list[LossWarning]]]


def _format(name: str, description: str, module: ModuleType, **bound: Any) -> AnnotationFormat:
    def bind(fn: Callable[..., Any]) -> Callable[..., Any]:
        return partial(fn, **bound) if bound else fn

    return AnnotationFormat(
        name=name,
        description=description,
        module=module,
        save=bind(module.save),
        load=bind(module.load) if "task" not in bound else module.load,
        emit=bind(module.emit),
        parse=bind(module.parse) if "task" not in bound else module.parse,
        reduce=bind(module.reduce),
    )


#: The formats by name.
FORMATS: dict[str, AnnotationFormat] = {
    f.name: f
    for f in (
        _format("coco", "COCO instances JSON (boxes, polygons, RLE masks)", coco),
        _format("yolo-detect", "YOLO detection labels (Ultralytics layout)", yolo, task="detect"),
        _format("yolo-segment", "YOLO segmentation labels (polygons)", yolo, task="segment"),
        _format("cvat-images", "CVAT for images 1.1 XML", cvat, mode="images"),
        _format("cvat-video", "CVAT for video 1.1 XML (tracks)", cvat, mode="video"),
        _format(
            "label-studio", "Label Studio JSON tasks (annotations and predictions)", label_studio
        ),
        _format("voc", "Pascal VOC XML (boxes)", voc),
    )
}


def get_format(name: str) -> AnnotationFormat:
    """The format called ``name``; raises ``AnnotationFormatError`` naming the known ones."""
    try:
        return FORMATS[name]
    except KeyError:
        known = ", ".join(FORMATS)
        raise AnnotationFormatError(f"unknown format {name!r}; one of {known}") from None


__all__ = [
    "FORMATS",
    "AnnotationFormat",
    "AnnotationFormatError",
    "AnnotationLossError",
    "Export",
    "ExportReport",
    "FrameFile",
    "ImportDefaults",
    "ImportResult",
    "LossWarning",
    "Skipped",
    "get_format",
]
