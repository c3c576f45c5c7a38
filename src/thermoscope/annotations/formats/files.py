"""Files of an export: image headers, radiometric side-cars, the atomic export folder, the
shared ``save`` / ``load`` wrappers and safe XML parsing."""

from __future__ import annotations

import contextlib
import gc
import os
import re
import shutil
import struct
import tempfile
from collections import defaultdict
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from xml.etree import ElementTree as ET
from xml.sax.saxutils import escape

import orjson
from defusedxml import DTDForbidden, EntitiesForbidden, ExternalReferenceForbidden
from defusedxml.ElementTree import fromstring as defused_fromstring

from thermoscope.annotations.formats.base import (
    SIDECAR_DIR,
    AnnotationFormatError,
    AnnotationLossError,
    Export,
    ExportReport,
    FrameFile,
    FrameSource,
    ImportResult,
    SidecarKind,
)
from thermoscope.annotations.formats.naming import frame_stem
from thermoscope.annotations.item import AnnotatedItem
from thermoscope.core import ThermalFrame

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
        made: set[str] = {""}
        base = str(tmp)
        for rel, data in export.files.items():
            folder = rel.rpartition("/")[0]
            if folder not in made:
                (tmp / folder).mkdir(parents=True, exist_ok=True)
                made.add(folder)
            _write(os.path.join(base, rel), data)
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


def _write(path: str, data: bytes) -> None:
    """Write a new file with plain system calls (exports write thousands of small files,
    where a buffered file object per file costs more than the write)."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o666)
    try:
        view = memoryview(data)
        while view:
            view = view[os.write(fd, view) :]
    finally:
        os.close(fd)


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


@dataclass(frozen=True, slots=True)
class Found:
    """What a format's ``load`` found at a path, for its ``parse``.

    Attributes:
        root: the export's root folder (where ``radiometric/`` side-cars are looked for).
        files: the annotation files by relative path (or the bytes of the one file).
        options: further keyword arguments for ``parse`` (``sizes``, ``source`` ...).
    """

    root: Path
    files: Mapping[str, bytes] | bytes
    options: Mapping[str, Any] = field(default_factory=dict)


def export_saver(emit: Callable[..., Export], doc: str) -> Callable[..., ExportReport]:
    """The thin ``save`` of a format: ``emit(items, **options)`` written by ``save_export``.

    The function made is ``save(items, path, *, frames=None, sidecar="tiff", palette="iron",
    overwrite=False, strict=False, **options) -> ExportReport``, where ``options`` (``schema``
    and the format's own, e.g. ``mode`` or ``subset``) go to ``emit``; ``path`` is the export
    folder (must not exist unless ``overwrite``), ``frames`` the radiometric frames by item id
    (each frame then gets a PNG rendering in ``palette`` and a ``sidecar`` of ``"tiff"`` or
    ``"npy"``), and ``strict`` raises ``AnnotationLossError`` (writing nothing) when anything
    would be lost.
    """

    def save(
        items: Sequence[AnnotatedItem],
        path: str | os.PathLike[str],
        *,
        frames: FrameSource | None = None,
        sidecar: SidecarKind = "tiff",
        palette: str = "iron",
        overwrite: bool = False,
        strict: bool = False,
        **options: Any,
    ) -> ExportReport:
        with bulk():
            return save_export(
                emit(items, **options),
                items,
                path,
                frames=frames,
                sidecar=sidecar,
                palette=palette,
                overwrite=overwrite,
                strict=strict,
            )

    save.__doc__ = doc
    return save


def export_loader(
    parse: Callable[..., ImportResult],
    find: Callable[[Path, Mapping[str, Any]], Found],
    doc: str,
) -> Callable[..., ImportResult]:
    """The thin ``load`` of a format: ``find(path, options)`` gathers the files, ``parse``
    reads them, and the side-cars under the export's root are listed in ``frames``.

    The function made is ``load(path, *, schema=None, skip_invalid=False, defaults=None,
    **options) -> ImportResult`` (``options``: the format's own, e.g. ``mode``); a path that
    does not exist is an ``AnnotationFormatError`` naming it.
    """

    def load(path: str | os.PathLike[str], **options: Any) -> ImportResult:
        p = Path(path)
        if not p.exists():
            raise AnnotationFormatError("no such file or folder", file=str(p))
        with bulk():
            try:
                found = find(p, options)
            except OSError as exc:
                raise AnnotationFormatError(
                    f"cannot read: {exc.strerror or exc}", file=str(exc.filename or p)
                ) from exc
            result = parse(found.files, **found.options, **options)
            result.frames = sidecars(found.root, result.items)
        return result

    load.__doc__ = doc
    return load


#: Characters that need escaping in XML text or attribute values.
_SPECIAL = re.compile(r'[&<>"\n\r\t]')
_ATTRIBUTE_ESCAPES = {'"': "&quot;", "\n": "&#10;", "\r": "&#13;", "\t": "&#9;"}


class XmlWriter:
    """Writes an indented XML document as text, element by element (several times faster
    than building an ``ElementTree`` of tens of thousands of shapes and serialising it)."""

    def __init__(self) -> None:
        self._parts: list[str] = ['<?xml version="1.0" encoding="utf-8"?>\n']
        self._depth = 0

    @staticmethod
    def _attributes(attrib: Mapping[str, str]) -> str:
        return "".join(
            f' {k}="{escape(v, _ATTRIBUTE_ESCAPES) if _SPECIAL.search(v) else v}"'
            for k, v in attrib.items()
        )

    def open(self, tag: str, attrib: Mapping[str, str] | None = None) -> None:
        """Start an element with children."""
        self._parts.append(f"{'  ' * self._depth}<{tag}{self._attributes(attrib or {})}>\n")
        self._depth += 1

    def close(self, tag: str) -> None:
        """End the element ``open`` started last."""
        self._depth -= 1
        self._parts.append(f"{'  ' * self._depth}</{tag}>\n")

    def leaf(self, tag: str, attrib: Mapping[str, str] | None = None, text: str = "") -> None:
        """An element without children: empty, or holding ``text``."""
        head = f"{'  ' * self._depth}<{tag}{self._attributes(attrib or {})}"
        if not text:
            self._parts.append(f"{head} />\n")
        else:
            body = escape(text) if _SPECIAL.search(text) else text
            self._parts.append(f"{head}>{body}</{tag}>\n")

    def tree(self, element: ET.Element) -> None:
        """An ``ElementTree`` element and its children, indented in place."""
        ET.indent(element, space="  ", level=self._depth)
        self._parts.append("  " * self._depth + ET.tostring(element, encoding="unicode") + "\n")

    def data(self) -> bytes:
        """The document as UTF-8 bytes."""
        return "".join(self._parts).encode("utf-8")


def parse_xml(data: bytes, file: str) -> ET.Element:
    """The root element of an XML file. A document type declaration is refused (defusedxml's
    ``forbid_dtd``), so no entity is ever expanded: neither internal entities that blow a
    few hundred bytes up to megabytes (billion laughs) nor external ones that read files.

    Text without ``<!DOCTYPE`` anywhere cannot declare an entity (XML allows a DTD only
    there), so it goes to the standard library's C parser, which expands nothing but the five
    predefined entities and character references; any other text is parsed by defusedxml.

    Raises:
        AnnotationFormatError: not UTF-8, not well-formed, or with a DTD.
    """
    text = read_text(data, file)
    try:
        root: ET.Element = (
            defused_fromstring(text, forbid_dtd=True)
            if "<!DOCTYPE" in text
            else ET.fromstring(text)
        )
    except (DTDForbidden, EntitiesForbidden, ExternalReferenceForbidden) as exc:
        raise AnnotationFormatError(
            "XML with a document type declaration (DTD) is refused: annotation files need "
            f"no entities, and expanding them can exhaust memory ({type(exc).__name__})",
            file=file,
        ) from None
    except ET.ParseError as exc:
        raise AnnotationFormatError(f"not well-formed XML: {exc}", file=file) from None
    return root


def dump_json(doc: Any) -> bytes:
    """Compact UTF-8 JSON of ``doc`` (orjson: floats in their shortest round-trip form)."""
    return orjson.dumps(doc)


def load_json(data: bytes, file: str) -> Any:
    """The JSON document in a file's bytes (a leading UTF-8 BOM is dropped).

    Raises:
        AnnotationFormatError: not UTF-8 or not valid JSON, naming the file.
    """
    if data.startswith(b"\xef\xbb\xbf"):
        data = data[3:]
    try:
        return orjson.loads(data)
    except orjson.JSONDecodeError as exc:
        raise AnnotationFormatError(f"not valid JSON: {exc}", file=file) from exc


def read_text(data: bytes, file: str) -> str:
    """UTF-8 text of a file (a leading BOM is dropped)."""
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise AnnotationFormatError(f"not UTF-8 text: {exc}", file=file) from exc


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
