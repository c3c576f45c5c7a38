"""Write FLIR FFF record sets: single ``.fff`` frames, ``.seq`` recordings and ``.csq`` (JPEG-LS).

Only the records thermoscope itself reads back are written: raw data (0x01) and camera info
(0x20) with the object parameters, Planck and atmosphere constants, camera identification and
capture time. Palette, embedded visual image, GPS and FLIR's other records are not written.
Frames need raw counts and a Planck calibration; frames that have only °C get counts from the
calibration's inverse (rounded to whole counts).
"""

from __future__ import annotations

import struct
from collections.abc import Sequence

import imagecodecs
import numpy as np
from numpy.typing import NDArray

from thermoscope.core import PlanckCalibration, ThermalFrame
from thermoscope.io.errors import ThermoscopeFormatError
from thermoscope.io.flir_fff import CAMERA_INFO, ENTRY_SIZE, HEADER_SIZE, MAGIC, RAW_DATA
from thermoscope.io.registry import FormatWriter

_KELVIN = 273.15
_CAMERA_INFO_SIZE = 0x400
_RAW_HEADER = 32


def _counts(frame: ThermalFrame) -> tuple[NDArray[np.uint16], PlanckCalibration]:
    meta = frame.metadata
    if not isinstance(meta.calibration, PlanckCalibration) or meta.parameters is None:
        raise ThermoscopeFormatError(
            f"{meta.source or 'frame'} has no FLIR Planck calibration; FFF/SEQ/CSQ need one"
        )
    if frame.raw is not None:
        return frame.raw, meta.calibration
    signal = meta.calibration.to_signal(frame.celsius, meta.parameters)
    if not np.all(np.isfinite(signal)) or signal.min() < 0 or signal.max() > 65535:
        raise ThermoscopeFormatError("temperatures fall outside the camera's 16-bit count range")
    return np.rint(signal).astype(np.uint16), meta.calibration


def _camera_info(frame: ThermalFrame, calibration: PlanckCalibration, order: str) -> bytes:
    params = frame.metadata.parameters
    assert params is not None  # checked by _counts
    rec = bytearray(_CAMERA_INFO_SIZE)
    struct.pack_into(order + "H", rec, 0, 2)
    struct.pack_into(
        order + "6f",
        rec,
        0x20,
        params.emissivity,
        params.object_distance_m,
        params.reflected_temp_c + _KELVIN,
        params.atmospheric_temp_c + _KELVIN,
        params.ir_window_temp_c + _KELVIN,
        params.ir_window_transmission,
    )
    struct.pack_into(order + "f", rec, 0x3C, params.relative_humidity_pct / 100.0)
    p, a = calibration.planck, calibration.atmosphere
    struct.pack_into(order + "3f", rec, 0x58, p.r1, p.b, p.f)
    struct.pack_into(order + "5f", rec, 0x70, a.alpha1, a.alpha2, a.beta1, a.beta2, a.x)
    struct.pack_into(order + "i", rec, 0x308, round(p.o))
    struct.pack_into(order + "f", rec, 0x30C, p.r2)
    camera = frame.metadata.camera
    for offset, size, text in (
        (0xD4, 32, camera.model),
        (0x104, 16, camera.serial),
        (0x114, 16, camera.software),
        (0x170, 32, camera.lens),
    ):
        encoded = text.encode("utf-8")[: size - 1]
        rec[offset : offset + len(encoded)] = encoded
    moment = frame.metadata.capture_time
    if moment is not None:
        seconds = int(moment.timestamp())
        millis = round((moment.timestamp() - seconds) * 1000) % 1000
        zone = moment.utcoffset()
        minutes = -int(zone.total_seconds() // 60) if zone is not None else 0
        struct.pack_into(order + "IIh", rec, 0x384, seconds, millis, minutes)
    return bytes(rec)


def _raw_record(raw: NDArray[np.uint16], order: str, compression: str) -> bytes:
    height, width = raw.shape
    header = bytearray(_RAW_HEADER)
    struct.pack_into(order + "3H", header, 0, 2, width, height)
    if compression == "jpegls":
        payload = bytes(imagecodecs.jpegls_encode(np.ascontiguousarray(raw), level=0))
    else:
        payload = raw.astype(order + "u2").tobytes()
    return bytes(header) + payload


def emit_fff(frame: ThermalFrame, *, byte_order: str = ">", compression: str = "none") -> bytes:
    """One FFF record set for ``frame``.

    Args:
        byte_order: ``">"`` (big-endian, FLIR's usual) or ``"<"``.
        compression: ``"none"`` (16-bit words) or ``"jpegls"`` (lossless, as in CSQ files).
    """
    if byte_order not in (">", "<") or compression not in ("none", "jpegls"):
        raise ThermoscopeFormatError(f"unsupported FFF options {byte_order!r}/{compression!r}")
    raw, calibration = _counts(frame)
    records = [
        (RAW_DATA, _raw_record(raw, byte_order, compression)),
        (CAMERA_INFO, _camera_info(frame, calibration, byte_order)),
    ]
    index_offset = HEADER_SIZE
    offset = index_offset + ENTRY_SIZE * len(records)
    header = bytearray(HEADER_SIZE)
    header[:4] = MAGIC
    header[4:8] = b"CAP\x00" if compression == "jpegls" else b"FLIR"
    struct.pack_into(byte_order + "III", header, 20, 100, index_offset, len(records))
    index = bytearray()
    for number, (kind, payload) in enumerate(records, start=1):
        index += struct.pack(
            byte_order + "HHIIIIIII", kind, 0, 100, number, offset, len(payload), 0, 0, 0
        )
        offset += len(payload)
    return bytes(header) + bytes(index) + b"".join(payload for _, payload in records)


def emit_seq(frames: Sequence[ThermalFrame]) -> bytes:
    """A SEQ recording: uncompressed FFF record sets back to back."""
    return b"".join(emit_fff(f) for f in frames)


def emit_csq(frames: Sequence[ThermalFrame]) -> bytes:
    """A CSQ recording: FFF record sets with JPEG-LS compressed raw data."""
    return b"".join(emit_fff(f, compression="jpegls") for f in frames)


def _emit_single(frames: Sequence[ThermalFrame]) -> bytes:
    if len(frames) != 1:
        raise ThermoscopeFormatError(f"an .fff file holds one frame, got {len(frames)}; use .seq")
    return emit_fff(frames[0])


FFF_WRITER = FormatWriter("flir-fff", "FLIR FFF, one frame (raw counts)", (".fff",), _emit_single)
SEQ_WRITER = FormatWriter("flir-seq", "FLIR SEQ recording (raw counts)", (".seq",), emit_seq)
CSQ_WRITER = FormatWriter(
    "flir-csq", "FLIR CSQ recording (JPEG-LS raw counts)", (".csq",), emit_csq
)
