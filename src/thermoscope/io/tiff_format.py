"""Radiometric TIFF: temperature images as floating-point °C, or 16-bit counts with a known scale.

Reading (one frame per full-resolution page; reduced-resolution and mask pages are skipped):

* float16/32/64 pages are °C (or the unit the file names, converted to °C);
* integer pages are counts, turned into °C by ``°C = counts * scale + offset``. The scale and
  offset come from the ``{"thermoscope": {...}}`` JSON ImageDescription this module writes
  (keys ``scale``, ``offset``, ``unit``), or from GDAL metadata (``scale_factor`` /
  ``add_offset`` items, or GDAL's band ``SCALE`` / ``OFFSET`` items, with ``UNITTYPE``), or from
  the ``scale`` / ``offset`` arguments of `parse` and `open_file`. Without any of these the
  reader raises `TemperatureUnavailableError`: it never guesses (FLIR Duo/Vue and DJI XT2
  TIFFs use 0.04 or 0.4 K per count depending on the gain mode, for example);
* units ``degC`` (default), ``K`` and ``degF`` are understood; ``GDAL_NODATA`` pixels become NaN;
  uint16 pages keep their counts in ``ThermalFrame.raw``.

Writing (`emit`): one uncompressed float32 °C page per frame (frames may differ in size), each
with a JSON ImageDescription holding ``version``, ``unit``, the source, the format the frame was
read from, camera make/model/serial/lens/software, capture time (ISO 8601), object parameters,
a Planck calibration (constants and atmosphere model), GPS position, frame index, timestamp and
the JSON-representable entries of ``metadata.extra``. Our reader restores all of these.

What the TIFF writer loses: raw counts (only °C is stored), calibrations other than
`PlanckCalibration`, ``extra`` values that are not JSON (arrays, bytes, embedded images; tuples
come back as lists). Temperatures are stored exactly (float32). A frame read from a TIFF reports
format ``"tiff"``; the format it originally came from is kept in ``extra["origin_format"]``.
"""

from __future__ import annotations

import io
import json
import math
import os
import struct
import xml.etree.ElementTree as ET
from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

import numpy as np
import tifffile
from numpy.typing import NDArray

from thermoscope.core import (
    AtmosphereConstants,
    CameraInfo,
    FrameMetadata,
    GpsPosition,
    ObjectParameters,
    PlanckCalibration,
    PlanckConstants,
    ThermalFrame,
    ThermalSequence,
    ThermoscopeError,
)
from thermoscope.core.frame import MAX_SIDE
from thermoscope.io.errors import (
    AbsurdSizeError,
    CorruptDataError,
    TemperatureUnavailableError,
    ThermoscopeFormatError,
    TruncatedFileError,
    UnknownFormatError,
    UnsupportedCompressionError,
    format_errors,
)
from thermoscope.io.limits import DEFAULT_LIMITS, DecodeLimits
from thermoscope.io.registry import FormatReader, FormatWriter

NAME = "tiff"
#: Top-level key of the JSON ImageDescription written by `emit`.
METADATA_KEY = "thermoscope"
METADATA_VERSION = 1

_MAGICS = (b"II*\x00", b"MM\x00*", b"II+\x00", b"MM\x00+")
_GDAL_METADATA_TAG = 42112
_GDAL_NODATA_TAG = 42113
_COMPRESSION_NONE = 1
# A compressed page may decode to at most this many times its stored size, plus a fixed
# allowance; a few bytes claiming gigabytes of pixels are refused before anything is allocated.
_MAX_EXPANSION = 1100
_EXPANSION_ALLOWANCE = 16 * 1024 * 1024
_MAX_TILE_BYTES = 256 * 1024 * 1024
_SUBFILE_REDUCED_OR_MASK = 0b101
_KELVIN = 273.15
# unit name (lower case) -> (a, b) with °C = a * value + b
_UNITS: dict[str, tuple[float, float]] = {
    **dict.fromkeys(("degc", "°c", "c", "celsius", "deg c", "degree celsius"), (1.0, 0.0)),
    **dict.fromkeys(("k", "kelvin"), (1.0, -_KELVIN)),
    **dict.fromkeys(("degf", "°f", "f", "fahrenheit", "deg f"), (5.0 / 9.0, -32.0 * 5.0 / 9.0)),
}


@dataclass(frozen=True, slots=True)
class _Page:
    """What decoding one frame needs, checked when the file is opened."""

    page: int
    dtype: np.dtype[Any]
    compression: int
    scale: float
    offset: float
    nodata: float | None
    stored: Mapping[str, Any] | None


# ---------------------------------------------------------------- reading


def _sniff(head: bytes, suffix: str) -> bool:
    return head[:4] in _MAGICS


def _own_metadata(description: str) -> Mapping[str, Any] | None:
    """The ``thermoscope`` object of a JSON ImageDescription, ``None`` for any other text."""
    if not isinstance(description, str) or not description.lstrip().startswith("{"):
        return None
    try:
        doc = json.loads(description)
    except (ValueError, RecursionError):
        return None
    if isinstance(doc, dict) and isinstance(doc.get(METADATA_KEY), dict):
        own: dict[str, Any] = doc[METADATA_KEY]
        return own
    return None


def _gdal_items(page: tifffile.TiffPage) -> dict[str, str]:
    """GDAL metadata items by lower-case name (band items of sample 0, or dataset items)."""
    tag = page.tags.get(_GDAL_METADATA_TAG)
    if tag is None or not isinstance(tag.value, str):
        return {}
    text = tag.value
    if "<!" in text:  # DOCTYPE / ENTITY declarations: refuse instead of expanding them
        raise CorruptDataError("GDAL metadata contains XML declarations")
    try:
        root = ET.fromstring(text)
    except ET.ParseError as exc:
        raise CorruptDataError(f"GDAL metadata is not valid XML: {exc}") from exc
    items: dict[str, str] = {}
    for item in root.iter("Item"):
        if item.get("sample", "0") != "0":
            continue
        name = (item.get("role") or item.get("name") or "").lower()
        items[name] = (item.text or "").strip()
    return items


def _number(value: Any, what: str) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float, str)):
        raise CorruptDataError(f"{what} is not a number: {value!r}")
    try:
        number = float(value)
    except ValueError as exc:
        raise CorruptDataError(f"{what} is not a number: {value!r}") from exc
    if not math.isfinite(number):
        raise CorruptDataError(f"{what} is not finite: {value!r}")
    return number


def _unit(value: Any) -> tuple[float, float]:
    if not isinstance(value, str):
        raise CorruptDataError(f"unit is not a string: {value!r}")
    found = _UNITS.get(value.strip().lower())
    if found is None:
        raise TemperatureUnavailableError(
            f"pixel unit {value!r} is not a temperature unit (degC, K or degF)"
        )
    return found


def _calibration(
    page: tifffile.TiffPage,
    stored: Mapping[str, Any] | None,
    dtype: np.dtype[Any],
    override: tuple[float, float] | None,
) -> tuple[float, float]:
    """``(scale, offset)`` turning stored values into °C for one page."""
    if override is not None:
        return override
    scale: float | None = None
    offset = 0.0
    unit = (1.0, 0.0)
    if stored is not None:
        if "scale" in stored:
            scale = _number(stored["scale"], "scale")
        offset = _number(stored.get("offset", 0.0), "offset")
        unit = _unit(stored.get("unit", "degC"))
    else:
        items = _gdal_items(page)
        raw_scale = items.get("scale_factor", items.get("scale"))
        if raw_scale is not None:
            scale = _number(raw_scale, "GDAL scale")
        raw_offset = items.get("add_offset", items.get("offset"))
        if raw_offset is not None:
            offset = _number(raw_offset, "GDAL offset")
        raw_unit = items.get("unittype", items.get("units", items.get("unit")))
        if raw_unit:
            unit = _unit(raw_unit)
    if scale is None:
        if dtype.kind in "iu":
            raise TemperatureUnavailableError(
                f"{dtype} counts without a scale: the conversion to °C is unknown (no "
                "thermoscope JSON description and no GDAL scale/offset metadata); read it "
                "with thermoscope.io.tiff_format.open_file(path, scale=..., offset=...), "
                "°C = counts * scale + offset"
            )
        scale = 1.0
    if scale == 0.0:
        raise CorruptDataError("scale is zero")
    a, b = unit
    return a * scale, a * offset + b


def _nodata(page: tifffile.TiffPage) -> float | None:
    tag = page.tags.get(_GDAL_NODATA_TAG)
    if tag is None:
        return None
    try:
        value = float(str(tag.value).strip().rstrip("\x00"))
    except ValueError as exc:
        raise CorruptDataError(f"GDAL_NODATA is not a number: {tag.value!r}") from exc
    return None if math.isnan(value) else value


def _int_field(page: tifffile.TiffPage, name: str) -> int:
    """An integer header field, checked (tifffile keeps tags of unexpected types as they are)."""
    value = getattr(page, name)
    if isinstance(value, (int, np.integer)) and not isinstance(value, bool):
        return int(value)
    raise CorruptDataError(f"{name} is not an integer: {value!r:.40}")


def _ints(values: Any, name: str) -> list[int]:
    if not isinstance(values, tuple) or not all(
        isinstance(v, (int, np.integer)) and not isinstance(v, bool) for v in values
    ):
        raise CorruptDataError(f"{name} are not integers: {values!r:.40}")
    return [int(v) for v in values]


def _compression_name(code: int) -> str:
    try:
        return tifffile.COMPRESSION(code).name
    except ValueError:
        return str(code)


def _check_layout(page: tifffile.TiffPage, size: int) -> tuple[np.dtype[Any], int]:
    """Pixel type and compression, after checking shape, size and data extents against the file."""
    samples = _int_field(page, "samplesperpixel")
    depth = _int_field(page, "imagedepth")
    shape = _ints(page.shape, "image dimensions")
    if samples != 1 or depth != 1 or len(shape) != 2:
        raise TemperatureUnavailableError(
            f"image of shape {tuple(shape)} with {samples} samples per pixel is not a "
            "single-channel temperature image (frames stacked as colour planes? tifffile "
            "writes 3 or 4 frames that way unless given photometric='minisblack')"
        )
    height, width = shape
    if not (0 < height <= MAX_SIDE and 0 < width <= MAX_SIDE):
        raise AbsurdSizeError(f"image size {width}x{height} outside 1..{MAX_SIDE} pixels per side")
    if page.dtype is None:
        raise CorruptDataError(
            f"unsupported sample format {page.sampleformat!r:.20} "
            f"with {page.bitspersample!r:.20} bits"
        )
    dtype = np.dtype(page.dtype)
    if dtype.kind not in "fiu":
        raise TemperatureUnavailableError(f"{dtype} pixels are not temperatures or counts")
    compression = _int_field(page, "compression")
    if compression not in tifffile.TIFF.DECOMPRESSORS:
        raise UnsupportedCompressionError(
            f"compression {_compression_name(compression)} is not supported"
        )
    offsets = _ints(page.dataoffsets, "data offsets")
    counts = _ints(page.databytecounts, "data byte counts")
    if not offsets or len(offsets) != len(counts):
        raise CorruptDataError("no image data (strip or tile offsets missing)")
    for start, length in zip(offsets, counts, strict=True):
        if start < 0 or length < 0 or start + length > size:
            raise TruncatedFileError(
                f"image data at byte {start} (+{length}) runs past the end ({size} bytes)"
            )
    if page.is_tiled:
        tile = _int_field(page, "tilewidth") * _int_field(page, "tilelength") * dtype.itemsize
        if tile > _MAX_TILE_BYTES:
            raise AbsurdSizeError(f"tiles of {page.tilewidth}x{page.tilelength} pixels")
    needed = height * width * dtype.itemsize
    stored = sum(counts)
    if compression == _COMPRESSION_NONE:
        if stored < needed:
            raise TruncatedFileError(f"image needs {needed} bytes, the file stores {stored}")
    elif needed > _MAX_EXPANSION * stored + _EXPANSION_ALLOWANCE:
        raise AbsurdSizeError(
            f"{stored} compressed bytes cannot hold {needed} bytes of {width}x{height} pixels"
        )
    return dtype, compression


@format_errors
def _walk_ifds(read_at: Callable[[int, int], bytes], size: int) -> tuple[int, tuple[str, ...]]:
    """Count the image file directories by following the chain from the header.

    tifffile does not notice every circular chain, so the chain is walked here first: an
    offset seen before, an IFD that does not fit in the file or a chain longer than the file
    could hold ends the walk. The directories before such a break stay readable and the
    break is reported as an issue; a broken first directory is an error.
    """
    header = read_at(0, 16)
    if len(header) < 8:
        raise TruncatedFileError(f"TIFF header needs 8 bytes, the file has {size}")
    order = "<" if header[:2] == b"II" else ">"
    big = struct.unpack_from(order + "H", header, 2)[0] == 43
    if big and len(header) < 16:
        raise TruncatedFileError(f"BigTIFF header needs 16 bytes, the file has {size}")
    count_fmt, entry_size, next_fmt = ("Q", 20, "Q") if big else ("H", 12, "I")
    count_size, next_size = struct.calcsize(count_fmt), struct.calcsize(next_fmt)
    offset = struct.unpack_from(order + next_fmt, header, 8 if big else 4)[0]
    seen: set[int] = set()
    used = 0
    while offset:
        problem = None
        if offset in seen:
            problem = f"circular IFD chain back to byte {offset}"
        elif offset + count_size > size:
            problem = f"IFD offset {offset} past the end ({size} bytes)"
        else:
            entries = struct.unpack(order + count_fmt, read_at(offset, count_size))[0]
            length = count_size + entries * entry_size + next_size
            used += length
            if entries == 0 or offset + length > size or used > size:
                problem = f"IFD at byte {offset} with {entries} entries does not fit the file"
        if problem is not None:
            if not seen:
                raise CorruptDataError(problem)
            return len(seen), (f"IFD chain ends after {len(seen)} pages: {problem}",)
        seen.add(offset)
        offset = struct.unpack(order + next_fmt, read_at(offset + length - next_size, next_size))[0]
    if not seen:
        raise CorruptDataError("the TIFF has no image file directory")
    return len(seen), ()


def _index(
    tif: tifffile.TiffFile, count: int, size: int, override: tuple[float, float] | None
) -> list[_Page]:
    """Check the first ``count`` pages' headers; the frames are the full-resolution pages."""
    pages: list[_Page] = []
    for number in range(count):
        try:
            page = tif.pages[number]
        except Exception as exc:  # tifffile's failures on a damaged directory vary in type
            raise CorruptDataError(f"page {number}: unreadable directory: {exc}") from exc
        if not isinstance(page, tifffile.TiffPage):
            raise CorruptDataError(f"page {number} could not be read")
        try:
            if _int_field(page, "subfiletype") & _SUBFILE_REDUCED_OR_MASK:
                continue
            dtype, compression = _check_layout(page, size)
            stored = _own_metadata(page.description)
            scale, offset = _calibration(page, stored, dtype, override)
            nodata = _nodata(page)
        except ThermoscopeFormatError as exc:
            raise type(exc)(f"page {number}: {exc.reason}") from exc
        pages.append(_Page(number, dtype, compression, scale, offset, nodata, stored))
    if not pages:
        raise CorruptDataError("no full-resolution image in the TIFF")
    return pages


def _text(doc: Mapping[str, Any], key: str) -> str:
    value = doc.get(key, "")
    if not isinstance(value, str):
        raise CorruptDataError(f"metadata {key!r} is not a string")
    return value


def _optional_float(doc: Mapping[str, Any], key: str) -> float | None:
    value = doc.get(key)
    return None if value is None else _number(value, f"metadata {key!r}")


def _mapping(doc: Mapping[str, Any], key: str) -> Mapping[str, Any] | None:
    value = doc.get(key)
    if value is None:
        return None
    if not isinstance(value, dict):
        raise CorruptDataError(f"metadata {key!r} is not an object")
    return value


def _floats(doc: Mapping[str, Any], what: str) -> dict[str, float]:
    return {str(k): _number(v, f"metadata {what}.{k}") for k, v in doc.items()}


def _restore(stored: Mapping[str, Any], source: str, default_index: int | None) -> FrameMetadata:
    """Frame metadata from our JSON description (validated: wrong types are corrupt data)."""
    camera_doc = _mapping(stored, "camera") or {}
    camera = CameraInfo(**{k: _text(camera_doc, k) for k in camera_doc})
    captured = _text(stored, "capture_time")
    capture_time = datetime.fromisoformat(captured) if captured else None
    params_doc = _mapping(stored, "parameters")
    parameters = ObjectParameters(**_floats(params_doc, "parameters")) if params_doc else None
    calibration = None
    cal_doc = _mapping(stored, "calibration")
    if cal_doc is not None and cal_doc.get("kind") == "planck":
        planck = _floats(_mapping(cal_doc, "planck") or {}, "calibration.planck")
        atmosphere = _floats(_mapping(cal_doc, "atmosphere") or {}, "calibration.atmosphere")
        calibration = PlanckCalibration(
            PlanckConstants(**planck), AtmosphereConstants(**atmosphere)
        )
    gps_doc = _mapping(stored, "gps")
    gps = GpsPosition(**_floats(gps_doc, "gps")) if gps_doc else None
    index = stored.get("frame_index", default_index)
    if index is not None and (isinstance(index, bool) or not isinstance(index, int) or index < 0):
        raise CorruptDataError(f"metadata 'frame_index' is not a frame number: {index!r}")
    extra = dict(_mapping(stored, "extra") or {})
    origin = _text(stored, "format")
    if origin and origin != NAME:
        extra["origin_format"] = origin
    return FrameMetadata(
        source=_text(stored, "source") or source,
        format=NAME,
        camera=camera,
        capture_time=capture_time,
        parameters=parameters,
        calibration=calibration,
        gps=gps,
        frame_index=index,
        timestamp_s=_optional_float(stored, "timestamp_s"),
        extra=extra,
    )


def _metadata(info: _Page, source: str, default_index: int | None) -> FrameMetadata:
    if info.stored is None:
        return FrameMetadata(source=source, format=NAME, frame_index=default_index)
    try:
        return _restore(info.stored, source, default_index)
    except ThermoscopeFormatError as exc:
        raise type(exc)(f"page {info.page}: {exc.reason}") from exc
    except (ThermoscopeError, TypeError, ValueError) as exc:
        raise CorruptDataError(f"page {info.page}: invalid thermoscope metadata: {exc}") from exc


def _decode(tif: tifffile.TiffFile, info: _Page, metadata: FrameMetadata) -> ThermalFrame:
    page = tif.pages[info.page]
    if not isinstance(page, tifffile.TiffPage):
        raise CorruptDataError(f"page {info.page} could not be read")
    try:
        values = np.asarray(page.asarray(maxworkers=1))
    except Exception as exc:  # any codec failure on damaged data (codec types vary)
        raise CorruptDataError(
            f"cannot decode {_compression_name(info.compression)} pixels: "
            f"{type(exc).__name__}: {exc}"
        ) from exc
    if values.shape != page.shape:
        raise CorruptDataError(f"decoded {values.shape} pixels, header says {page.shape}")
    with np.errstate(over="ignore", invalid="ignore"):
        if info.scale == 1.0 and info.offset == 0.0:
            celsius = values.astype(np.float32)
        else:
            celsius = (values.astype(np.float64) * info.scale + info.offset).astype(np.float32)
    if info.nodata is not None:
        celsius[values == info.nodata] = np.nan
    infinite = int(np.isinf(celsius).sum())
    if infinite:
        raise CorruptDataError(f"{infinite} pixels are ±inf °C (NaN marks undefined pixels)")
    raw: NDArray[np.uint16] | None = values if values.dtype == np.uint16 else None
    return ThermalFrame(celsius, raw=raw, metadata=metadata)


@format_errors
def _sequence(
    tif: tifffile.TiffFile,
    chain: tuple[int, tuple[str, ...]],
    size: int,
    source: str,
    override: tuple[float, float] | None,
    limits: DecodeLimits,
) -> ThermalSequence:
    count, issues = chain
    limits.check_count(count)
    pages = _index(tif, count, size, override)
    shapes = [_ints(tif.pages[info.page].shape, "image dimensions") for info in pages]
    limits.check_sizes([(width, height) for height, width in shapes])
    multi = len(pages) > 1
    metadata = [_metadata(info, source, i if multi else None) for i, info in enumerate(pages)]

    @format_errors
    def read(i: int) -> ThermalFrame:
        try:
            return _decode(tif, pages[i], metadata[i])
        except ThermoscopeFormatError as exc:
            raise type(exc)(f"frame {i}: {exc.reason}", source) from exc
        except ThermoscopeError as exc:
            raise CorruptDataError(f"frame {i}: {exc}", source) from exc

    return ThermalSequence(len(pages), read, source=source, close=tif.close, issues=issues)


def _override(scale: float | None, offset: float) -> tuple[float, float] | None:
    if scale is None:
        return None
    if not (math.isfinite(scale) and math.isfinite(offset)) or scale == 0.0:
        raise ValueError(f"scale must be finite and non-zero, offset finite: {scale}, {offset}")
    return scale, offset


@format_errors
def _open_tiff(source: io.BytesIO | Path) -> tifffile.TiffFile:
    try:
        return tifffile.TiffFile(source)
    except Exception as exc:  # tifffile's failures on a damaged structure vary in type
        raise CorruptDataError(f"unreadable TIFF structure: {type(exc).__name__}: {exc}") from exc


def parse(
    data: bytes,
    *,
    scale: float | None = None,
    offset: float = 0.0,
    limits: DecodeLimits = DEFAULT_LIMITS,
) -> ThermalSequence:
    """A sequence over TIFF content in memory (headers checked now, pixels decoded on access).

    Args:
        data: the file's bytes.
        scale: °C per stored unit, overriding any scale in the file (for counts whose
            conversion the file does not record).
        offset: °C added after scaling (used with ``scale``).
        limits: pages, pixels and decoded bytes the headers may declare.

    Raises:
        ThermoscopeFormatError: not a TIFF, not a temperature image, or damaged.
        DecodeLimitError: the headers declare more than ``limits`` allow.
        ValueError: ``scale`` is zero or not finite.
    """
    override = _override(scale, offset)
    if bytes(data[:4]) not in _MAGICS:
        raise UnknownFormatError(f"not a TIFF (starts with {bytes(data[:4])!r})")
    chain = _walk_ifds(lambda start, length: bytes(data[start : start + length]), len(data))
    tif = _open_tiff(io.BytesIO(data))
    try:
        return _sequence(tif, chain, len(data), "<bytes>", override, limits)
    except BaseException:
        tif.close()
        raise


def open_file(
    path: str | Path,
    *,
    scale: float | None = None,
    offset: float = 0.0,
    limits: DecodeLimits = DEFAULT_LIMITS,
) -> ThermalSequence:
    """Open a TIFF file: headers are read now, each frame's pixels when it is accessed.

    ``scale`` and ``offset`` are as in `parse`. Close the sequence (or use ``with``) to release
    the file.
    """
    p = Path(path)
    override = _override(scale, offset)

    def read_at(start: int, length: int) -> bytes:
        fh.seek(start)
        return fh.read(length)

    try:
        with p.open("rb") as fh:
            size = os.fstat(fh.fileno()).st_size
            head = fh.read(4)
            if head not in _MAGICS:
                raise UnknownFormatError(f"not a TIFF (starts with {head!r})", str(p))
            chain = _walk_ifds(read_at, size)
        tif = _open_tiff(p)
    except OSError as exc:
        raise CorruptDataError(f"cannot read: {exc.strerror or exc}", str(p)) from exc
    except ThermoscopeFormatError as exc:
        raise exc.with_source(str(p)) from exc
    try:
        return _sequence(tif, chain, size, str(p), override, limits)
    except ThermoscopeFormatError as exc:
        tif.close()
        raise exc.with_source(str(p)) from exc
    except BaseException:
        tif.close()
        raise


# ---------------------------------------------------------------- writing


_SKIP = object()


def _jsonable(value: Any) -> Any:
    """``value`` as plain JSON types, or ``_SKIP`` when it has no faithful JSON form."""
    if value is None or isinstance(value, (str, bool)):
        return value
    if isinstance(value, (int, np.integer)):
        return int(value)
    if isinstance(value, (float, np.floating)):
        return float(value) if math.isfinite(value) else _SKIP
    if isinstance(value, (list, tuple)):
        items = [_jsonable(v) for v in value]
        return _SKIP if any(v is _SKIP for v in items) else items
    if isinstance(value, Mapping):
        if not all(isinstance(k, str) for k in value):
            return _SKIP
        entries = {k: _jsonable(v) for k, v in value.items()}
        return _SKIP if any(v is _SKIP for v in entries.values()) else entries
    return _SKIP


def _finite(*values: float | None) -> bool:
    return all(v is None or math.isfinite(v) for v in values)


def metadata_document(frame: ThermalFrame) -> dict[str, Any]:
    """The JSON ImageDescription `emit` writes for ``frame`` (``{"thermoscope": {...}}``)."""
    meta = frame.metadata
    doc: dict[str, Any] = {"version": METADATA_VERSION, "unit": "degC"}
    if meta.source:
        doc["source"] = meta.source
    if meta.format:
        doc["format"] = meta.format
    camera = {k: v for k, v in asdict(meta.camera).items() if v}
    if camera:
        doc["camera"] = camera
    if meta.capture_time is not None:
        doc["capture_time"] = meta.capture_time.isoformat()
    if meta.parameters is not None:
        doc["parameters"] = meta.parameters.as_dict()
    if isinstance(meta.calibration, PlanckCalibration) and _finite(
        *asdict(meta.calibration.atmosphere).values()
    ):
        doc["calibration"] = {
            "kind": "planck",
            "planck": asdict(meta.calibration.planck),
            "atmosphere": asdict(meta.calibration.atmosphere),
        }
    gps = meta.gps
    if gps is not None and _finite(gps.latitude, gps.longitude, gps.altitude_m):
        doc["gps"] = {k: v for k, v in asdict(gps).items() if v is not None}
    if meta.frame_index is not None:
        doc["frame_index"] = meta.frame_index
    if meta.timestamp_s is not None and _finite(meta.timestamp_s):
        doc["timestamp_s"] = meta.timestamp_s
    extra = {k: _jsonable(v) for k, v in meta.extra.items() if isinstance(k, str)}
    extra = {k: v for k, v in extra.items() if v is not _SKIP}
    if extra:
        doc["extra"] = extra
    return {METADATA_KEY: doc}


def _check_writable(frames: Sequence[ThermalFrame]) -> None:
    if not frames:
        raise ThermoscopeFormatError("nothing to write: no frames")
    for i, frame in enumerate(frames):
        if np.isinf(frame.celsius).any():
            raise ThermoscopeFormatError(
                f"frame {i} has ±inf temperatures; only finite values and NaN can be written"
            )


def emit(frames: Sequence[ThermalFrame]) -> bytes:
    """A float32 °C TIFF, one page per frame, each page described by `metadata_document`."""
    _check_writable(frames)
    total = sum(f.celsius.nbytes for f in frames)
    buffer = io.BytesIO()
    with tifffile.TiffWriter(buffer, byteorder="<", bigtiff=total > 2**32 - 2**28) as writer:
        for frame in frames:
            description = json.dumps(metadata_document(frame), ensure_ascii=True, allow_nan=False)
            writer.write(
                frame.celsius,
                photometric="minisblack",
                description=description,
                metadata=None,
                software=False,
            )
    return buffer.getvalue()


READER = FormatReader(
    name=NAME,
    description="Radiometric TIFF: float °C pages, or 16-bit counts with a recorded scale",
    suffixes=(".tif", ".tiff"),
    sniff=_sniff,
    parse=lambda data, limits: parse(data, limits=limits),
    open=lambda path, limits: open_file(path, limits=limits),
)
WRITER = FormatWriter(
    name=NAME,
    description="float32 °C TIFF, one page per frame, metadata as JSON ImageDescription",
    suffixes=(".tif", ".tiff"),
    emit=emit,
)
