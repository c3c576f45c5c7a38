"""DJI-native radiometric JPEG (R-JPEG): raw counts and metadata natively, °C through DJI's SDK.

DJI thermal cameras (Zenmuse H20T/H20N/H30T/XT S, Mavic 2 Enterprise Advanced, M30T, Mavic 3
Thermal, Matrice 4T...) save an ordinary JPEG rendering plus, in APPn segments:

* the raw sensor image, ``W x H`` little-endian 16-bit words split over consecutive segments of one
  marker (APP3 on most models, APP4 on the XT S, which keeps a temperature table in APP3);
* a header with the measurement parameters, whose layout depends on the camera generation:

  ========== ============================== =============================================== =====
  layout     where                          parameters                                      raw
  ========== ============================== =============================================== =====
  ``iirp``   APP4 ``FF D2 D1 FF "iirp"``    float32 at 32: ambient °C, distance m,          >> 2
             (H20N, H30T, M30T, M3T, M4T)   emissivity, humidity (fraction), reflected °C
  ``float``  APP4, no magic (M2EA)          the same five float32 from byte 0               >> 2
  ``hirp``   APP4 ``FF D2 D1 FF "hirp"``    Q13 u32 (value x 8192): emissivity at 88;       as is
             (M3TD, M4T)                    humidity m% at 116; byte 100 = 1: Q13 distance
                                            at 92, reflected °C 96, ambient °C 132; byte
                                            100 = 0: Q13 distance at 80, m°C at 112 for
                                            reflected and ambient
  ``girp``   APP4 ``FF D2 D1 FF "girp"``    ``AA 55`` record at 32, u16 from 36: humidity   as is
             (M30T, later firmware)         %, distance 0.1 m, emissivity/100, reflected
                                            0.1 °C (int16)
  ``aa55``   APP4 ``AA 55`` (H20T)          u16 at 68: distance m, humidity %,              as is
                                            emissivity/100, reflected 0.1 °C (int16)
  ``plug``   APP2 ``"Plug"`` (XT S)         u16 at 1174 distance m, 1178 reflected 0.1 °C   as is
                                            (int16), 1182 emissivity/100; humidity: the
                                            SDK's 70 % (the 0.1 % at 1190 is only stored)
  ========== ============================== =============================================== =====

  Values a header stores but DJI's SDK does not use (the XT S humidity, the M4T camera's own
  distance and temperature) are kept in ``DjiImage.stored``.

  The ``iirp`` and ``float`` cameras store 14-bit counts shifted left by two; the counts returned
  here are those of DJI's SDK (``dirp_get_original_raw``), i.e. the stored words ``>> 2``.

DJI's count-to-temperature conversion is proprietary and not derivable from the files (see
``temperatures``): ``parse_raw`` always returns counts and metadata, while the ``FormatReader``
(``parse``/``open``) produces °C only through DJI's Thermal SDK, loaded with ``ctypes`` from
the path in the environment variable ``THERMOSCOPE_DJI_SDK`` (``libdirp.so``).
"""

from __future__ import annotations

import ctypes
import math
import os
import struct
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from functools import lru_cache
from pathlib import Path
from typing import Any

import numpy as np

from thermoscope.core import (
    CameraInfo,
    FrameMetadata,
    GpsPosition,
    ObjectParameters,
    ThermalFrame,
    ThermalSequence,
)
from thermoscope.core.frame import MAX_SIDE
from thermoscope.core.radiometry import FloatArray, RawArray
from thermoscope.io.errors import (
    AbsurdSizeError,
    CorruptDataError,
    TemperatureUnavailableError,
    ThermoscopeFormatError,
    TruncatedFileError,
    UnknownFormatError,
    format_errors,
)
from thermoscope.io.jpeg_segments import Segment, is_jpeg, iter_segments
from thermoscope.io.limits import jpeg_file_within, jpeg_within
from thermoscope.io.registry import FormatReader

NAME = "dji-rjpeg"
#: Environment variable naming DJI's Thermal SDK library (``libdirp.so`` / ``libdirp.dll``).
SDK_ENV = "THERMOSCOPE_DJI_SDK"

_APP1, _APP2, _APP3, _APP4 = 0xE1, 0xE2, 0xE3, 0xE4
_SOF_MARKERS = frozenset({0xC0, 0xC1, 0xC2})
_IRP_MAGIC = b"\xff\xd2\xd1\xff"
_FLIR_TAG = b"FLIR\x00"
_EXIF_TAG = b"Exif\x00\x00"
#: Layouts whose raw words hold 14-bit counts shifted left by two bits.
_SHIFTED_LAYOUTS = frozenset({"iirp", "float"})
#: Width:height ratios of DJI thermal sensors, tried when no header states the raw size.
_SENSOR_ASPECTS = ((5, 4), (4, 3))


@dataclass(frozen=True, slots=True)
class DjiParameters:
    """Measurement parameters a DJI camera embeds (the SDK's ``dirp_measurement_params_t``).

    Attributes:
        distance_m: camera-to-object distance in metres.
        humidity_pct: relative humidity in percent (0..100).
        emissivity: object emissivity, 0 < e <= 1.
        reflected_temp_c: reflected apparent temperature in °C.
        ambient_temp_c: air temperature in °C, ``None`` where the layout has none.
    """

    distance_m: float
    humidity_pct: float
    emissivity: float
    reflected_temp_c: float
    ambient_temp_c: float | None = None

    def __post_init__(self) -> None:
        values = (self.distance_m, self.humidity_pct, self.emissivity, self.reflected_temp_c)
        if not all(math.isfinite(v) for v in values):
            raise CorruptDataError(f"non-finite DJI measurement parameter in {self}")
        if self.ambient_temp_c is not None and not math.isfinite(self.ambient_temp_c):
            raise CorruptDataError(f"non-finite DJI ambient temperature in {self}")
        if not (0.0 < self.emissivity <= 1.0 and 0.0 <= self.humidity_pct <= 100.0):
            raise CorruptDataError(f"implausible DJI measurement parameters {self}")
        air = self.reflected_temp_c if self.ambient_temp_c is None else self.ambient_temp_c
        if self.distance_m < 0.0 or min(self.reflected_temp_c, air) <= -273.15:
            raise CorruptDataError(f"implausible DJI measurement parameters {self}")

    def object_parameters(self) -> ObjectParameters:
        """The same conditions as ``ObjectParameters`` (ambient, else reflected, as air °C)."""
        air = self.reflected_temp_c if self.ambient_temp_c is None else self.ambient_temp_c
        return ObjectParameters(
            emissivity=self.emissivity,
            object_distance_m=self.distance_m,
            reflected_temp_c=self.reflected_temp_c,
            atmospheric_temp_c=air,
            relative_humidity_pct=self.humidity_pct,
        )


@dataclass(frozen=True, slots=True, eq=False)
class DjiImage:
    """What a DJI R-JPEG holds besides temperatures.

    Attributes:
        raw: sensor counts, uint16 (H, W), as DJI's SDK reports them (``dirp_get_original_raw``).
        layout: header generation (``"iirp"``, ``"float"``, ``"hirp"``, ``"aa55"``, ``"plug"``,
            or ``"unknown"`` when the file carries raw data in a header nobody decoded yet).
        raw_marker: APPn marker byte that holds the raw image (0xE3 = APP3).
        camera: make, model, serial and firmware from EXIF.
        capture_time: EXIF DateTimeOriginal (timezone-aware when the file gives an offset).
        gps: EXIF position, when present.
        parameters: the embedded measurement parameters DJI's SDK uses, ``None`` for an
            ``"unknown"`` layout.
        stored: values the header also stores but DJI's SDK does not use for its conversion
            (name with unit suffix -> value), e.g. the XT S's ``humidity_pct``.
    """

    raw: RawArray
    layout: str
    raw_marker: int
    camera: CameraInfo
    capture_time: datetime | None
    gps: GpsPosition | None
    parameters: DjiParameters | None
    stored: Mapping[str, float] = field(default_factory=dict)

    @property
    def shape(self) -> tuple[int, int]:
        """(height, width) in pixels."""
        h, w = self.raw.shape
        return int(h), int(w)


# --- EXIF ---------------------------------------------------------------------------------------

_TIFF_SIZES = {1: 1, 2: 1, 3: 2, 4: 4, 5: 8, 6: 1, 7: 1, 8: 2, 9: 4, 10: 8, 11: 4, 12: 8}
_MAX_IFD_ENTRIES = 512
_EXIF_IFD, _GPS_IFD = 0x8769, 0x8825
_MAKE, _MODEL, _SOFTWARE, _DATETIME = 0x010F, 0x0110, 0x0131, 0x0132
_DATETIME_ORIGINAL, _OFFSET_TIME_ORIGINAL = 0x9003, 0x9011
_WIDTH, _HEIGHT, _SERIAL = 0xA002, 0xA003, 0xA431

_ExifValue = str | tuple[float, ...]


def _tiff_value(order: str, kind: int, count: int, data: bytes) -> _ExifValue:
    """Decode one TIFF field: ASCII as ``str``, numbers (rationals as floats) as a tuple."""
    if kind == 2:
        return data.split(b"\x00", 1)[0].decode("latin-1").strip()
    if kind in (5, 10):
        pairs = struct.unpack(f"{order}{2 * count}{'I' if kind == 5 else 'i'}", data)
        return tuple(n / d if d else math.nan for n, d in zip(pairs[::2], pairs[1::2], strict=True))
    code = {1: "B", 3: "H", 4: "I", 6: "b", 8: "h", 9: "i", 11: "f", 12: "d"}.get(kind)
    if code is None:
        return ()
    return tuple(float(v) for v in struct.unpack(f"{order}{count}{code}", data))


def _read_ifd(tiff: bytes, order: str, offset: int) -> dict[int, _ExifValue]:
    """Fields of the IFD at ``offset`` of a TIFF block (pointers are not followed).

    Raises:
        CorruptDataError: the IFD or a value lies outside the block.
    """
    if offset + 2 > len(tiff):
        raise CorruptDataError(f"EXIF IFD offset {offset} outside the {len(tiff)}-byte block")
    (n,) = struct.unpack_from(f"{order}H", tiff, offset)
    if n > _MAX_IFD_ENTRIES or offset + 2 + 12 * n > len(tiff):
        raise CorruptDataError(f"EXIF IFD at {offset} claims {n} entries")
    fields: dict[int, _ExifValue] = {}
    for entry in range(offset + 2, offset + 2 + 12 * n, 12):
        tag, kind, count = struct.unpack_from(f"{order}HHI", tiff, entry)
        size = _TIFF_SIZES.get(kind, 0) * count
        where = entry + 8 if size <= 4 else struct.unpack_from(f"{order}I", tiff, entry + 8)[0]
        if where + size > len(tiff):
            raise CorruptDataError(f"EXIF tag 0x{tag:04x} points outside the EXIF block")
        fields[tag] = _tiff_value(order, kind, count, tiff[where : where + size])
    return fields


@dataclass(frozen=True, slots=True)
class _Exif:
    """The EXIF fields this reader uses: IFD0 merged with the Exif IFD, and the GPS IFD."""

    main: Mapping[int, _ExifValue]
    gps: Mapping[int, _ExifValue]

    def text(self, tag: int) -> str:
        value = self.main.get(tag, "")
        return value if isinstance(value, str) else ""

    def number(self, tag: int) -> int | None:
        value = self.main.get(tag)
        return int(value[0]) if isinstance(value, tuple) and value else None


@format_errors
def _read_exif(segments: list[Segment]) -> _Exif:
    """EXIF of the first APP1 ``Exif`` segment (empty when the file has none)."""
    for seg in segments:
        if seg.marker == _APP1 and bytes(seg.payload[:6]) == _EXIF_TAG:
            tiff = bytes(seg.payload[6:])
            order = {b"II": "<", b"MM": ">"}.get(tiff[:2])
            if order is None or len(tiff) < 8:
                raise CorruptDataError("EXIF block without a TIFF byte-order mark")
            main = _read_ifd(tiff, order, struct.unpack_from(f"{order}I", tiff, 4)[0])
            gps: dict[int, _ExifValue] = {}
            for pointer, target in ((_EXIF_IFD, main), (_GPS_IFD, gps)):
                value = main.get(pointer)
                if isinstance(value, tuple) and value:
                    target.update(_read_ifd(tiff, order, int(value[0])))
            return _Exif(main, gps)
    return _Exif({}, {})


def _capture_time(exif: _Exif) -> datetime | None:
    """DateTimeOriginal (else DateTime); DJI writes ``2022:03:24 16:42:02`` or with dashes."""
    text = exif.text(_DATETIME_ORIGINAL) or exif.text(_DATETIME)
    try:
        stamp = datetime.strptime(text.replace("-", ":"), "%Y:%m:%d %H:%M:%S")
    except ValueError:
        return None
    offset = exif.text(_OFFSET_TIME_ORIGINAL)
    if len(offset) == 6 and offset[0] in "+-" and offset[3] == ":":
        try:
            minutes = int(offset[1:3]) * 60 + int(offset[4:6])
        except ValueError:
            return stamp
        sign = -1 if offset[0] == "-" else 1
        return stamp.replace(tzinfo=timezone(timedelta(minutes=sign * minutes)))
    return stamp


def _gps(exif: _Exif) -> GpsPosition | None:
    """WGS84 position from the GPS IFD (degrees, metres), ``None`` when incomplete."""
    lat, lon = exif.gps.get(2), exif.gps.get(4)
    if not (isinstance(lat, tuple) and isinstance(lon, tuple) and len(lat) == len(lon) == 3):
        return None
    latitude = lat[0] + lat[1] / 60 + lat[2] / 3600
    longitude = lon[0] + lon[1] / 60 + lon[2] / 3600
    if exif.gps.get(1) == "S":
        latitude = -latitude
    if exif.gps.get(3) == "W":
        longitude = -longitude
    if not (abs(latitude) <= 90 and abs(longitude) <= 180):
        return None
    alt = exif.gps.get(6)
    altitude = alt[0] if isinstance(alt, tuple) and alt and math.isfinite(alt[0]) else None
    if altitude is not None and exif.gps.get(5) == (1.0,):
        altitude = -altitude
    return GpsPosition(latitude, longitude, altitude)


# --- measurement header -------------------------------------------------------------------------


def _concat(segments: list[Segment], marker: int) -> bytes:
    """The payloads of all segments with ``marker``, joined in file order."""
    return b"".join(bytes(seg.payload) for seg in segments if seg.marker == marker)


def _first(segments: list[Segment], marker: int) -> bytes:
    """Payload of the first segment with ``marker`` (empty when absent)."""
    return next((bytes(s.payload) for s in segments if s.marker == marker), b"")


def _float_block(block: bytes, at: int) -> DjiParameters:
    """Five float32: ambient °C, distance m, emissivity, humidity fraction, reflected °C."""
    ambient, distance, emissivity, humidity, reflected = struct.unpack_from("<5f", block, at)
    return DjiParameters(distance, humidity * 100.0, emissivity, reflected, ambient)


def _hirp_block(block: bytes) -> tuple[DjiParameters, dict[str, float]]:
    """``hirp`` header: Q13 (value * 8192) and milli-unit fields, chosen by the flag at 100.

    Emissivity (Q13 at 88) and humidity (m% at 116) are always where DJI's SDK reads them. When
    the byte at 100 is 1 (user-set parameters, M4T), distance, reflected and ambient °C are the Q13
    words at 92, 96 and 132, and the camera's own distance (80) and temperature (m°C at 112) are
    kept as stored extras; when it is 0 (M3TD), the SDK takes the distance at 80 and the m°C
    temperature at 112 for both reflected and ambient.
    """
    (default_distance, emissivity) = struct.unpack_from("<I4xI", block, 80)
    temp_mc, humidity_m = struct.unpack_from("<iI", block, 112)
    if block[100] == 1:
        distance, reflected = struct.unpack_from("<Ii", block, 92)
        (ambient,) = struct.unpack_from("<i", block, 132)
        stored = {"distance_m": default_distance / 8192, "temperature_c": temp_mc / 1000}
        params = DjiParameters(
            distance / 8192, humidity_m / 1000, emissivity / 8192, reflected / 8192, ambient / 8192
        )
        return params, stored
    temp = temp_mc / 1000
    return DjiParameters(
        default_distance / 8192, humidity_m / 1000, emissivity / 8192, temp, temp
    ), {}


def _girp_block(block: bytes) -> DjiParameters:
    """``girp`` header (M30T, later firmware): an ``AA 55`` record at 32 with u16 humidity %,
    distance in 0.1 m, emissivity/100 and int16 reflected 0.1 °C from byte 36."""
    humidity, distance, emissivity, reflected = struct.unpack_from("<HHHh", block, 36)
    return DjiParameters(distance / 10, float(humidity), emissivity / 100, reflected / 10)


def _aa55_block(block: bytes) -> DjiParameters:
    """H20T header: u16 distance m, humidity %, emissivity/100, int16 reflected 0.1 °C at 68."""
    distance, humidity, emissivity, reflected = struct.unpack_from("<HHHh", block, 68)
    return DjiParameters(float(distance), float(humidity), emissivity / 100, reflected / 10)


#: Relative humidity (%) DJI's SDK applies to XT S files: it ignores the humidity they store.
PLUG_SDK_HUMIDITY_PCT = 70.0


def _plug_block(block: bytes) -> tuple[DjiParameters, dict[str, float]]:
    """XT S ``Plug`` header (APP2): distance, reflected, emissivity from 1174; humidity stored.

    The u16 at 1190 (0.1 %) varies from shot to shot, but DJI's SDK does not use it: it measures
    XT S files at its default 70 %. The stored value is kept as an extra.
    """
    (distance,) = struct.unpack_from("<H", block, 1174)
    (reflected,) = struct.unpack_from("<h", block, 1178)
    (emissivity,) = struct.unpack_from("<H", block, 1182)
    (humidity,) = struct.unpack_from("<H", block, 1190)
    params = DjiParameters(float(distance), PLUG_SDK_HUMIDITY_PCT, emissivity / 100, reflected / 10)
    return params, {"humidity_pct": humidity / 10}


_Header = tuple[str, DjiParameters | None, dict[str, float]]


def _measurement_header(segments: list[Segment]) -> _Header:
    """The header layout, the parameters DJI's SDK uses, and stored values it does not use.

    ``("unknown", None, {})`` when the header is not recognised.

    Raises:
        TruncatedFileError: a recognised header is too short for its parameters.
        CorruptDataError: the parameters are implausible.
    """
    app4, app2 = _first(segments, _APP4), _first(segments, _APP2)
    magic = app4[4:8] if app4[:4] == _IRP_MAGIC else b""
    if magic == b"iirp":
        return "iirp", _float_block(_need(app4, 52, "iirp"), 32), {}
    if magic == b"hirp":
        return "hirp", *_hirp_block(_need(app4, 136, "hirp"))
    if magic == b"girp" and app4[32:34] == b"\xaa\x55":
        return "girp", _girp_block(_need(app4, 44, "girp")), {}
    if app4[:2] == b"\xaa\x55":
        return "aa55", _aa55_block(_need(app4, 76, "aa55")), {}
    if app2[:4] == b"Plug":
        return "plug", *_plug_block(_need(app2, 1192, "Plug"))
    if _looks_like_float_block(app4):
        return "float", _float_block(app4, 0), {}
    return "unknown", None, {}


def _need(block: bytes, size: int, name: str) -> bytes:
    """``block`` if it has at least ``size`` bytes, else a ``TruncatedFileError``."""
    if len(block) < size:
        raise TruncatedFileError(f"DJI {name} header has {len(block)} bytes, needs {size}")
    return block


def _looks_like_float_block(block: bytes) -> bool:
    """True for the headerless float32 parameter block of the Mavic 2 Enterprise Advanced."""
    if len(block) < 20:
        return False
    ambient, distance, emissivity, humidity, reflected = struct.unpack_from("<5f", block, 0)
    return (
        all(math.isfinite(v) for v in (ambient, distance, emissivity, humidity, reflected))
        and 0.0 < emissivity <= 1.0
        and 0.0 <= humidity <= 1.0
        and 0.0 <= distance <= 10_000.0
        and -273.15 < min(ambient, reflected) <= max(ambient, reflected) < 10_000.0
    )


# --- raw image ----------------------------------------------------------------------------------


def _sof_size(segments: list[Segment]) -> tuple[int, int] | None:
    """(width, height) of the JPEG frame header."""
    for seg in segments:
        if seg.marker in _SOF_MARKERS and len(seg.payload) >= 5:
            height, width = struct.unpack_from(">HH", seg.payload, 1)
            return int(width), int(height)
    return None


def _candidate_shapes(exif: _Exif, segments: list[Segment], pixels: int) -> list[tuple[int, int]]:
    """(width, height) guesses: EXIF and JPEG sizes, their halves, then sensor aspect ratios.

    The visual JPEG of some models is upscaled 2x from the thermal sensor (M30T: 1280x1024
    picture, 640x512 raw), hence the halves.
    """
    stated: list[tuple[int, int]] = []
    ew, eh = exif.number(_WIDTH), exif.number(_HEIGHT)
    if ew and eh:
        stated.append((ew, eh))
    sof = _sof_size(segments)
    if sof is not None:
        stated.append(sof)
    shapes = stated + [(w // 2, h // 2) for w, h in stated]
    for aw, ah in _SENSOR_ASPECTS:
        unit = math.isqrt(pixels // (aw * ah)) if pixels > 0 else 0
        shapes.append((aw * unit, ah * unit))
    return [(w, h) for w, h in shapes if 0 < w <= MAX_SIDE and 0 < h <= MAX_SIDE]


def _raw_image(segments: list[Segment], exif: _Exif, layout: str) -> tuple[RawArray, int]:
    """The raw counts (H, W) and the marker that holds them.

    Raises:
        CorruptDataError: no APP3/APP4 data matches an image size.
    """
    blocks = {m: _concat(segments, m) for m in (_APP3, _APP4)}
    for marker, block in blocks.items():
        for width, height in _candidate_shapes(exif, segments, len(block) // 2):
            if len(block) == width * height * 2:
                words = np.frombuffer(block, dtype="<u2").reshape(height, width)
                raw = words >> 2 if layout in _SHIFTED_LAYOUTS else words
                return np.ascontiguousarray(raw, dtype=np.uint16), marker
    sizes = ", ".join(f"APP{m - 0xE0} {len(b)} bytes" for m, b in blocks.items())
    raise CorruptDataError(f"no DJI raw thermal image found ({sizes} match no image size)")


# --- public parsing -----------------------------------------------------------------------------


@format_errors
def parse_raw(data: bytes | memoryview) -> DjiImage:
    """Decode the raw counts and metadata of a DJI R-JPEG (no temperatures; always works).

    Raises:
        UnknownFormatError: not a JPEG, or a FLIR R-JPEG (use the FLIR reader).
        TruncatedFileError: the header segments end early.
        CorruptDataError: no raw image, or inconsistent headers.
    """
    segments = list(iter_segments(data))
    if any(s.marker == _APP1 and bytes(s.payload[:5]) == _FLIR_TAG for s in segments):
        raise UnknownFormatError("a FLIR R-JPEG, not a DJI-native one")
    exif = _read_exif(segments)
    layout, parameters, stored = _measurement_header(segments)
    raw, marker = _raw_image(segments, exif, layout)
    camera = CameraInfo(
        make=exif.text(_MAKE),
        model=exif.text(_MODEL),
        serial=exif.text(_SERIAL),
        software=exif.text(_SOFTWARE),
    )
    return DjiImage(
        raw, layout, marker, camera, _capture_time(exif), _gps(exif), parameters, stored
    )


def temperatures(data: bytes | memoryview, image: DjiImage) -> FloatArray:
    """°C (float32, H x W) for a parsed DJI R-JPEG, from DJI's Thermal SDK.

    DJI's conversion is proprietary. The files hold calibration tables whose indexing depends on
    undocumented per-camera constants, so thermoscope has no native conversion: it uses the SDK
    named by ``THERMOSCOPE_DJI_SDK`` with the file's embedded parameters.

    Raises:
        TemperatureUnavailableError: the SDK is not configured, cannot be loaded or refuses.
    """
    library = os.environ.get(SDK_ENV, "")
    model = image.camera.model or "unknown model"
    if not library:
        raise TemperatureUnavailableError(
            f"DJI {model} R-JPEG: raw counts and metadata were read, but thermoscope has no "
            f"native temperature conversion for DJI cameras; DJI's Thermal SDK is needed: set "
            f"{SDK_ENV} to the path of libdirp.so (dji.parse_raw reads counts without it)"
        )
    celsius = sdk_temperatures(data, library)
    if celsius.shape != image.shape:
        raise CorruptDataError(
            f"DJI Thermal SDK gives a {celsius.shape} image, the raw data is {image.shape}"
        )
    return celsius


@format_errors
def parse_frame(data: bytes | memoryview, *, source: str = "<bytes>") -> ThermalFrame:
    """A DJI R-JPEG as a ``ThermalFrame`` (°C from DJI's SDK, see ``temperatures``).

    Raises:
        TemperatureUnavailableError: no conversion to °C is available (``parse_raw`` still works).
        ThermoscopeFormatError: the file is not a readable DJI R-JPEG.
    """
    image = parse_raw(data)
    metadata = FrameMetadata(
        source=source,
        format=NAME,
        camera=image.camera,
        capture_time=image.capture_time,
        parameters=None if image.parameters is None else image.parameters.object_parameters(),
        gps=image.gps,
        extra=_extra(image),
    )
    try:
        celsius = temperatures(data, image)
    except TemperatureUnavailableError as exc:
        exc.raw, exc.metadata = image.raw, metadata
        raise
    return ThermalFrame(celsius, image.raw, metadata)


def _extra(image: DjiImage) -> dict[str, Any]:
    """Format-specific metadata: header layout, raw marker, the ambient °C as stated (or None)."""
    extra: dict[str, Any] = {"dji_layout": image.layout, "raw_marker": image.raw_marker}
    if image.parameters is not None:
        extra["dji_ambient_temp_c"] = image.parameters.ambient_temp_c
    if image.stored:
        extra["dji_stored"] = dict(image.stored)
    return extra


def parse(data: bytes | memoryview) -> ThermalSequence:
    """A DJI R-JPEG as a sequence of one frame (the registry's pure parser)."""
    return ThermalSequence.of([parse_frame(data)])


def open_file(path: Path) -> ThermalSequence:
    """Read a DJI R-JPEG file (errors name the file)."""
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise ThermoscopeFormatError(f"cannot read: {exc.strerror or exc}", str(path)) from exc
    try:
        return ThermalSequence.of([parse_frame(data, source=str(path))], source=str(path))
    except ThermoscopeFormatError as exc:
        raise exc.with_source(str(path)) from exc


def sniff(head: bytes, suffix: str) -> bool:
    """True for a DJI-native R-JPEG: EXIF make ``DJI``, an APP3 segment, no FLIR APP1 data."""
    if not is_jpeg(head):
        return False
    found_app3 = dji_make = False
    try:
        for seg in iter_segments(head):
            if seg.marker == _APP1 and bytes(seg.payload[:5]) == _FLIR_TAG:
                return False
            if seg.marker == _APP1 and bytes(seg.payload[:6]) == _EXIF_TAG:
                dji_make = _read_exif([seg]).text(_MAKE).upper().startswith("DJI")
            found_app3 = found_app3 or seg.marker == _APP3
    except ThermoscopeFormatError:
        pass  # the head ends inside a segment (or the header is broken): judge what was seen
    return dji_make and found_app3


# --- DJI Thermal SDK (ctypes) -------------------------------------------------------------------


class _Resolution(ctypes.Structure):
    """``dirp_resolution_t``: image width and height in pixels."""

    _fields_ = (("width", ctypes.c_int32), ("height", ctypes.c_int32))


@lru_cache(maxsize=4)
def _load_sdk(path: str) -> ctypes.CDLL:
    """Load ``libdirp`` and declare the four functions thermoscope calls."""
    lib = ctypes.CDLL(path)
    handle_p = ctypes.POINTER(ctypes.c_void_p)
    _declare(lib.dirp_create_from_rjpeg, [ctypes.c_char_p, ctypes.c_int32, handle_p])
    _declare(lib.dirp_get_rjpeg_resolution, [ctypes.c_void_p, ctypes.POINTER(_Resolution)])
    _declare(lib.dirp_measure_ex, [ctypes.c_void_p, ctypes.POINTER(ctypes.c_float), ctypes.c_int32])
    _declare(lib.dirp_destroy, [ctypes.c_void_p])
    return lib


def _declare(func: Any, argtypes: list[Any]) -> None:
    """Set a C function's argument types; every DIRP function returns ``int32_t``."""
    func.argtypes = argtypes
    func.restype = ctypes.c_int32


def _check(code: int, call: str) -> None:
    """Turn a negative DIRP status into ``TemperatureUnavailableError``."""
    if code < 0:
        raise TemperatureUnavailableError(f"DJI Thermal SDK: {call} failed with status {code}")


def sdk_temperatures(data: bytes | memoryview, library: str | os.PathLike[str]) -> FloatArray:
    """°C (float32, H x W) from DJI's Thermal SDK at ``library`` with the embedded parameters.

    Calls ``dirp_create_from_rjpeg``, ``dirp_get_rjpeg_resolution``, ``dirp_measure_ex`` and
    ``dirp_destroy`` of the SDK's public C API.

    Raises:
        TemperatureUnavailableError: the library cannot be loaded or returns an error status.
        AbsurdSizeError: the SDK reports an impossible resolution.
    """
    try:
        lib = _load_sdk(os.fspath(library))
    except (OSError, AttributeError) as exc:
        raise TemperatureUnavailableError(
            f"cannot load DJI Thermal SDK from {os.fspath(library)!r} ({SDK_ENV}): {exc}"
        ) from exc
    blob = bytes(data)
    handle = ctypes.c_void_p()
    _check(
        lib.dirp_create_from_rjpeg(blob, len(blob), ctypes.byref(handle)), "dirp_create_from_rjpeg"
    )
    try:
        return _measure(lib, handle)
    finally:
        lib.dirp_destroy(handle)


def _measure(lib: ctypes.CDLL, handle: ctypes.c_void_p) -> FloatArray:
    """Resolution and float temperatures of an SDK handle."""
    size = _Resolution()
    _check(lib.dirp_get_rjpeg_resolution(handle, ctypes.byref(size)), "dirp_get_rjpeg_resolution")
    if not (0 < size.width <= MAX_SIDE and 0 < size.height <= MAX_SIDE):
        raise AbsurdSizeError(f"DJI Thermal SDK reports a {size.width}x{size.height} image")
    out = np.empty((size.height, size.width), dtype=np.float32)
    pointer = out.ctypes.data_as(ctypes.POINTER(ctypes.c_float))
    _check(lib.dirp_measure_ex(handle, pointer, out.nbytes), "dirp_measure_ex")
    return out


READER = FormatReader(
    name=NAME,
    description="DJI radiometric JPEG (raw counts in APP3/APP4; °C via DJI's Thermal SDK)",
    suffixes=(".jpg", ".jpeg"),
    sniff=sniff,
    parse=lambda data, limits: parse(jpeg_within(data, limits)),
    open=lambda path, limits: open_file(jpeg_file_within(path, limits)),
)
