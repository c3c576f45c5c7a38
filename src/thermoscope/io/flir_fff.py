"""FLIR FFF records: the container inside R-JPEG, FFF, SEQ and CSQ files.

Layout (facts from FLIR's format as documented by ExifTool's FLIR tag tables): a 64-byte header
(``FFF\\0``, creator, version, index offset, entry count) whose byte order is told by the version
field (100..199 when read big-endian); an index of 32-byte entries (type, subtype, version, id,
offset, length, ...), offsets relative to the header. Each record carries its own byte order:
its first 16-bit word reads 2 in the order the record uses.

Record types read here: 0x01 raw thermal data (16-bit PNG, JPEG-LS or uncompressed words),
0x0E embedded visual image (JPEG, or PNG holding Y, Cb, Cr planes), 0x20 camera info (Planck
constants, object parameters, camera identification, capture time), 0x22 palette, 0x2A
picture-in-picture (the camera's own visual-to-thermal alignment), 0x2B GPS.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import cv2
import imagecodecs
import numpy as np
from numpy.typing import NDArray

from thermoscope.core import (
    AtmosphereConstants,
    CameraInfo,
    FrameMetadata,
    GpsPosition,
    ObjectParameters,
    PlanckCalibration,
    PlanckConstants,
    RadiometryError,
    ThermalFrame,
)
from thermoscope.core.frame import MAX_SIDE
from thermoscope.io.errors import (
    AbsurdSizeError,
    CorruptDataError,
    TruncatedFileError,
    UnknownFormatError,
    UnsupportedCompressionError,
    format_errors,
)
from thermoscope.io.jpeg_segments import iter_segments

MAGIC = b"FFF\x00"
HEADER_SIZE = 64
ENTRY_SIZE = 32
#: More index entries than this means a corrupt header, not a real file.
MAX_ENTRIES = 4096
#: Largest raw image accepted (pixels); thermal sensors are far smaller, so more is corruption.
MAX_PIXELS = 64 * 1024 * 1024

RAW_DATA = 0x01
EMBEDDED_IMAGE = 0x0E
CAMERA_INFO = 0x20
PALETTE_INFO = 0x22
PIP_INFO = 0x2A
GPS_INFO = 0x2B

_KELVIN = 273.15
_PNG_MAGIC = b"\x89PNG"
_SOF_JPEG_LS = 0xF7
_JPEG_MAGIC = b"\xff\xd8\xff"


@dataclass(frozen=True, slots=True)
class Entry:
    """One index entry: record ``kind`` and where its bytes lie (relative to the FFF start)."""

    kind: int
    offset: int
    length: int


@dataclass(frozen=True, slots=True)
class Directory:
    """The parsed header and index of one FFF record set."""

    creator: str
    byte_order: str
    entries: tuple[Entry, ...]

    @property
    def end(self) -> int:
        """Byte just past the last record, relative to the FFF start (where a next frame starts)."""
        return max((e.offset + e.length for e in self.entries), default=HEADER_SIZE)

    def find(self, kind: int) -> Entry | None:
        """The first entry of ``kind``, if any."""
        return next((e for e in self.entries if e.kind == kind), None)


def read_directory(view: memoryview, base: int = 0) -> Directory:
    """Parse the FFF header at ``base`` and its index (no record payloads are touched).

    Raises:
        UnknownFormatError: no ``FFF\\0`` magic at ``base``.
        TruncatedFileError: the header, index or a record runs past the data.
    """
    size = len(view)
    if size - base < HEADER_SIZE:
        if bytes(view[base : base + 4]) == MAGIC[: max(0, size - base)] or size - base >= 4:
            raise TruncatedFileError(
                f"FFF header at byte {base} is cut short ({size - base} bytes)"
            )
        raise UnknownFormatError("no FFF header")
    if bytes(view[base : base + 4]) != MAGIC:
        raise UnknownFormatError(f"no FFF magic at byte {base}")
    version = struct.unpack_from(">I", view, base + 20)[0]
    order = ">" if 100 <= version < 200 else "<"
    version, index_offset, count = struct.unpack_from(order + "III", view, base + 20)
    if not 100 <= version < 200:
        raise CorruptDataError(f"FFF header at byte {base} has unknown version {version}")
    if count > MAX_ENTRIES:
        raise AbsurdSizeError(f"FFF index claims {count} entries (at most {MAX_ENTRIES})")
    index_end = base + index_offset + count * ENTRY_SIZE
    if index_offset < HEADER_SIZE or index_end > size:
        raise TruncatedFileError(
            f"FFF index at byte {base + index_offset} ({count} entries) runs past the data "
            f"({size} bytes)"
        )
    creator = bytes(view[base + 4 : base + 20]).split(b"\x00", 1)[0].decode("latin-1")
    entries = []
    for kind, _sub, _ver, _id, offset, length in struct.iter_unpack(
        order + "HHIIII12x", view[base + index_offset : index_end]
    ):
        if kind == 0:
            continue
        if offset < HEADER_SIZE or base + offset + length > size:
            raise TruncatedFileError(
                f"FFF record 0x{kind:02x} at byte {base + offset} ({length} bytes) runs past "
                f"the data ({size} bytes)"
            )
        entries.append(Entry(kind, offset, length))
    return Directory(creator, order, tuple(entries))


def _record_order(record: memoryview, fallback: str) -> str:
    """A record's byte order: its first word is 2 in the order it is written in."""
    if len(record) < 2:
        return fallback
    if struct.unpack_from("<H", record)[0] == 2:
        return "<"
    if struct.unpack_from(">H", record)[0] == 2:
        return ">"
    return fallback


def _string(record: memoryview, offset: int, size: int) -> str:
    raw = bytes(record[offset : offset + size]).split(b"\x00", 1)[0]
    return raw.decode("utf-8", errors="replace").strip()


@dataclass(frozen=True, slots=True)
class CameraRecord:
    """What the camera-info record (0x20) holds, in SI units and °C."""

    parameters: ObjectParameters
    calibration: PlanckCalibration
    camera: CameraInfo
    capture_time: datetime | None
    extra: dict[str, Any]


_CAMERA_INFO_SIZE = 0x390


def parse_camera_info(record: memoryview, fallback_order: str) -> CameraRecord:
    """Decode the camera-info record (object parameters, Planck constants, identification)."""
    if len(record) < _CAMERA_INFO_SIZE:
        raise TruncatedFileError(
            f"camera info record has {len(record)} bytes, needs {_CAMERA_INFO_SIZE}"
        )
    o = _record_order(record, fallback_order)

    def f32(offset: int) -> float:
        return float(struct.unpack_from(o + "f", record, offset)[0])

    emissivity, distance, refl_k, atm_k, win_k, win_t = struct.unpack_from(o + "6f", record, 0x20)
    humidity = f32(0x3C)
    r1, b, f = struct.unpack_from(o + "3f", record, 0x58)
    a1, a2, b1, b2, x = struct.unpack_from(o + "5f", record, 0x70)
    range_max_k, range_min_k = struct.unpack_from(o + "2f", record, 0x90)
    planck_o = struct.unpack_from(o + "i", record, 0x308)[0]
    r2 = f32(0x30C)
    try:
        parameters = ObjectParameters(
            emissivity=emissivity,
            object_distance_m=distance,
            reflected_temp_c=refl_k - _KELVIN,
            atmospheric_temp_c=atm_k - _KELVIN,
            # FLIR stores humidity as a fraction; the equation wants percent.
            relative_humidity_pct=humidity * 100.0 if humidity <= 1.0 else humidity,
            ir_window_temp_c=win_k - _KELVIN,
            ir_window_transmission=win_t,
        )
        calibration = PlanckCalibration(
            PlanckConstants(r1=r1, b=b, f=f, o=float(planck_o), r2=r2),
            AtmosphereConstants(alpha1=a1, alpha2=a2, beta1=b1, beta2=b2, x=x),
        )
    except RadiometryError as exc:
        raise CorruptDataError(f"camera info: {exc}") from exc
    camera = CameraInfo(
        make="FLIR",
        model=_string(record, 0xD4, 32),
        serial=_string(record, 0x104, 16),
        lens=_string(record, 0x170, 32),
        software=_string(record, 0x114, 16),
    )
    extra: dict[str, Any] = {
        "camera_part_number": _string(record, 0xF4, 16),
        "camera_range_c": (range_min_k - _KELVIN, range_max_k - _KELVIN),
        "field_of_view_deg": f32(0x1B4),
        "filter": _string(record, 0x1EC, 16),
        # not in ExifTool's table: 1.0 on every sample but the T640's 1.6, whose own JPEG
        # shows the frame's centre enlarged 1.60x (docs/fusion.md)
        "digital_zoom": f32(0x36C),
    }
    return CameraRecord(parameters, calibration, camera, _capture_time(record, o), extra)


def _capture_time(record: memoryview, order: str) -> datetime | None:
    """Capture time: seconds since 1970 (UTC), milliseconds and the zone offset in minutes."""
    seconds, millis, tz_minutes = struct.unpack_from(order + "IIh", record, 0x384)
    if seconds == 0 or millis >= 1000 or abs(tz_minutes) > 14 * 60:
        return None
    zone = timezone(timedelta(minutes=-tz_minutes))
    moment = datetime.fromtimestamp(seconds, UTC) + timedelta(milliseconds=millis)
    return moment.astimezone(zone)


def _decode_png(payload: bytes, width: int, height: int) -> NDArray[np.uint16]:
    if len(payload) < 33 or payload[12:16] != b"IHDR":
        raise CorruptDataError("raw PNG has no IHDR header")
    png_width, png_height, depth = struct.unpack_from(">IIB", payload, 16)
    if (png_width, png_height, depth) != (width, height, 16):
        raise CorruptDataError(
            f"raw PNG is {png_width}x{png_height} at {depth} bits, "
            f"the record says {width}x{height}x16"
        )
    image = cv2.imdecode(np.frombuffer(payload, np.uint8), cv2.IMREAD_UNCHANGED)
    if image is None or image.dtype != np.uint16 or image.shape != (height, width):
        raise CorruptDataError(
            f"raw PNG does not decode to {width}x{height} 16-bit"
            + ("" if image is None else f" (got {image.dtype} {image.shape})")
        )
    return np.asarray(image, dtype=np.uint16)


def _decode_jpegls(payload: bytes, width: int, height: int) -> NDArray[np.uint16]:
    try:
        image = imagecodecs.jpegls_decode(payload)
    except imagecodecs.JpeglsError as exc:
        raise CorruptDataError(f"raw JPEG-LS frame does not decode: {exc}") from exc
    if image.dtype != np.uint16 or image.shape != (height, width):
        raise CorruptDataError(
            f"raw JPEG-LS frame is {image.dtype} {image.shape}, expected {width}x{height}"
        )
    return np.asarray(image, dtype=np.uint16)


def _jpeg_ls_size(payload: memoryview) -> tuple[int, int] | None:
    """``(width, height)`` of a JPEG-LS stream (start-of-frame 0xF7, as in CSQ), else ``None``."""
    for seg in iter_segments(payload):
        if seg.marker == _SOF_JPEG_LS:
            if len(seg.payload) < 5:
                raise CorruptDataError("JPEG-LS frame header is cut short")
            height, width = struct.unpack_from(">HH", seg.payload, 1)
            return int(width), int(height)
    return None


def _png_byte_order(image: NDArray[np.uint16]) -> NDArray[np.uint16]:
    """FLIR PNGs usually hold byte-swapped words, but not on every camera.

    Thermal scenes are smooth: in the right byte order neighbouring pixels differ by a few
    counts, in the wrong one the noisy low byte lands in the high byte. Keep the smoother one
    (ties go to the usual swapped order).
    """
    swapped = image.byteswap()
    rows = slice(None, None, max(1, image.shape[0] // 32))

    def roughness(img: NDArray[np.uint16]) -> float:
        return (
            float(np.abs(np.diff(img[rows].astype(np.int32), axis=1)).mean())
            if img.shape[1] > 1
            else 0.0
        )

    return image if roughness(image) < roughness(swapped) else swapped


def raw_size(view: memoryview, base: int, directory: Directory) -> tuple[int, int] | None:
    """``(width, height)`` the raw-data record of the record set at ``base`` declares, read
    from its header alone (``None`` without a raw-data record)."""
    entry = directory.find(RAW_DATA)
    if entry is None or entry.length < 6:
        return None
    record = view[base + entry.offset : base + entry.offset + 6]
    width, height = struct.unpack_from(
        _record_order(record, directory.byte_order) + "2H", record, 2
    )
    return int(width), int(height)


def raw_is_jpeg(view: memoryview, base: int, directory: Directory) -> bool:
    """Whether the raw data of the record set at ``base`` is JPEG(-LS) compressed (as in CSQ)."""
    entry = directory.find(RAW_DATA)
    if entry is None or entry.length < 35:
        return False
    start = base + entry.offset + 32
    return bytes(view[start : start + 3]) == _JPEG_MAGIC


def parse_raw_record(record: memoryview, fallback_order: str) -> NDArray[np.uint16]:
    """Decode raw counts (uint16, H x W) from a raw-data record (0x01)."""
    if len(record) < 32:
        raise TruncatedFileError(f"raw data record has {len(record)} bytes, needs at least 32")
    o = _record_order(record, fallback_order)
    width, height = struct.unpack_from(o + "2H", record, 2)
    if not (0 < width <= MAX_SIDE and 0 < height <= MAX_SIDE) or width * height > MAX_PIXELS:
        raise AbsurdSizeError(f"raw image claims {width}x{height} pixels")
    payload = record[32:]
    head = bytes(payload[:4])
    if head == _PNG_MAGIC:
        return _png_byte_order(_decode_png(bytes(payload), width, height))
    if head[:3] == _JPEG_MAGIC:
        size = _jpeg_ls_size(payload)
        if size is not None:
            if size != (width, height):
                raise CorruptDataError(
                    f"JPEG-LS frame is {size[0]}x{size[1]}, the record says {width}x{height}"
                )
            return _decode_jpegls(bytes(payload), width, height)
        raise UnsupportedCompressionError("raw data is a lossy JPEG, not JPEG-LS; not radiometric")
    needed = width * height * 2
    if len(payload) < needed:
        raise TruncatedFileError(
            f"raw data holds {len(payload)} bytes, {width}x{height} needs {needed}"
        )
    words = np.frombuffer(payload, dtype=o + "u2", count=width * height).reshape(height, width)
    return words.astype(np.uint16)


def _parse_palette(record: memoryview) -> dict[str, Any]:
    """Palette name and colours (RGB uint8, N x 3) from the palette record (stored as YCrCb)."""
    if len(record) < 0x70:
        return {}
    count = record[0]
    name = _string(record, 0x50, 32)
    colours = bytes(record[0x70 : 0x70 + 3 * count])
    if len(colours) != 3 * count or count == 0:
        return {"palette_name": name}
    ycrcb = np.frombuffer(colours, np.uint8).reshape(1, count, 3)
    rgb = cv2.cvtColor(ycrcb, cv2.COLOR_YCrCb2RGB).reshape(count, 3)
    return {"palette_name": name, "palette_rgb": rgb}


def _parse_gps(record: memoryview, order: str) -> GpsPosition | None:
    if len(record) < 0x24:
        return None
    valid = struct.unpack_from(order + "I", record, 0)[0]
    lat_ref = bytes(record[0x08:0x09])
    lon_ref = bytes(record[0x0A:0x0B])
    lat, lon = struct.unpack_from(order + "2d", record, 0x10)
    alt = struct.unpack_from(order + "f", record, 0x20)[0]
    if valid != 1 or not (-90 <= lat <= 90 and -180 <= lon <= 180) or (lat == 0 and lon == 0):
        return None
    lat = -lat if lat_ref == b"S" else lat
    lon = -lon if lon_ref == b"W" else lon
    return GpsPosition(float(lat), float(lon), float(alt) if np.isfinite(alt) else None)


def _embedded_image(record: memoryview) -> tuple[str, bytes] | None:
    """The visual camera's image, ``("jpeg" | "png", bytes)``, when the record holds one."""
    payload = bytes(record[32:])
    if payload[:3] == _JPEG_MAGIC:
        return "jpeg", payload
    if payload[:4] == _PNG_MAGIC:
        return "png", payload
    return None


#: Plausible ``Real2IR`` values: how many times wider the visual photo is than the thermal frame.
_REAL2IR_RANGE = (0.05, 100.0)


def parse_pip(record: memoryview) -> dict[str, float | int] | None:
    """The picture-in-picture record (0x2A): ``Real2IR`` (float32 at byte 0), then int16
    ``OffsetX``, ``OffsetY``, ``PiPX1``, ``PiPX2``, ``PiPY1``, ``PiPY2`` (bytes 4..15), as
    ExifTool's FLIR ``PiP`` table lays them out.

    The record has no byte-order mark, so the order whose ``Real2IR`` is plausible and whose box
    is not inverted wins (little-endian first, as cameras write it). ``None`` when neither is.
    """
    if len(record) < 16:
        return None
    for order in ("<", ">"):
        real2ir = struct.unpack_from(order + "f", record, 0)[0]
        ox, oy, x1, x2, y1, y2 = struct.unpack_from(order + "6h", record, 4)
        lo, hi = _REAL2IR_RANGE
        if np.isfinite(real2ir) and lo <= real2ir <= hi and x1 <= x2 and y1 <= y2:
            return {
                "real2ir": float(real2ir),
                "offset_x": ox,
                "offset_y": oy,
                "pip_x1": x1,
                "pip_x2": x2,
                "pip_y1": y1,
                "pip_y2": y2,
            }
    return None


@format_errors
def parse_frame(
    data: bytes | memoryview,
    base: int = 0,
    *,
    source: str = "<bytes>",
    fmt: str = "flir-fff",
    frame_index: int | None = None,
    directory: Directory | None = None,
) -> ThermalFrame:
    """Decode the FFF record set at ``base`` into a ``ThermalFrame`` (°C, raw counts, metadata)."""
    view = memoryview(data)
    d = directory or read_directory(view, base)

    def record(entry: Entry) -> memoryview:
        return view[base + entry.offset : base + entry.offset + entry.length]

    cam_entry = d.find(CAMERA_INFO)
    raw_entry = d.find(RAW_DATA)
    if cam_entry is None or raw_entry is None:
        missing = "camera info" if cam_entry is None else "raw data"
        raise CorruptDataError(f"FFF record set at byte {base} has no {missing} record")
    cam = parse_camera_info(record(cam_entry), d.byte_order)
    raw = parse_raw_record(record(raw_entry), d.byte_order)
    extra: dict[str, Any] = dict(cam.extra)
    extra["creator"] = d.creator
    palette = d.find(PALETTE_INFO)
    if palette is not None:
        extra.update(_parse_palette(record(palette)))
    embedded = d.find(EMBEDDED_IMAGE)
    if embedded is not None and (image := _embedded_image(record(embedded))) is not None:
        extra[f"embedded_image_{image[0]}"] = image[1]
    pip_entry = d.find(PIP_INFO)
    if pip_entry is not None and (pip := parse_pip(record(pip_entry))) is not None:
        extra["pip"] = pip
    gps_entry = d.find(GPS_INFO)
    gps = _parse_gps(record(gps_entry), d.byte_order) if gps_entry is not None else None
    metadata = FrameMetadata(
        source=source,
        format=fmt,
        camera=cam.camera,
        capture_time=cam.capture_time,
        parameters=cam.parameters,
        calibration=cam.calibration,
        gps=gps,
        frame_index=frame_index,
        extra=extra,
    )
    celsius = cam.calibration.to_celsius(raw, cam.parameters)
    return ThermalFrame(celsius=celsius, raw=raw, metadata=metadata)
