"""Decode limits in every reader: sizes a file's headers declare beyond ``DecodeLimits`` are refused
before any pixel is decoded (bounded memory, measured with tracemalloc), with the io layer's error
naming the file and the limit; a recording whose last frame is cut short says so wherever it is
used."""

from __future__ import annotations

import io
import struct
import tracemalloc
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
import tifffile
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from typer.testing import CliRunner

import thermoscope.io as tio
from flir_records import constant_csq, record_set
from synthetic_frames import planck_frame
from thermoscope.cli.main import app
from thermoscope.core import ThermalFrame, ThermalSequence
from thermoscope.core.frame import MAX_SIDE
from thermoscope.io import DecodeLimitError, DecodeLimits, csv_format, dji, numpy_format
from thermoscope.io.flir_writer import emit_csq
from thermoscope.io.limits import DECODED_BYTES_PER_PIXEL, jpeg_within

MIB = 1 << 20
#: The bomb of the report: 8 constant 8192x8192 frames (64 Mi pixels each) in a CSQ.
BOMB_SIDE, BOMB_FRAMES = 8192, 8


@pytest.fixture(scope="module")
def bomb() -> bytes:
    """A real CSQ bomb: every frame a valid JPEG-LS stream of a constant 8192x8192 image."""
    data = constant_csq(BOMB_SIDE, BOMB_FRAMES)
    assert len(data) < 40_000  # a few kilobytes that decode to gigabytes
    return data


def peak_bytes(action: Callable[[], object]) -> int:
    """Peak Python-tracked allocation while ``action`` runs (NumPy's buffers are tracked)."""
    tracemalloc.start()
    try:
        action()
    except DecodeLimitError:
        pass
    finally:
        _, peak = tracemalloc.get_traced_memory()
        tracemalloc.stop()
    return peak


@pytest.mark.parametrize(
    ("limits", "reason"),
    [
        (DecodeLimits(max_frame_pixels=16 * MIB), "pixels per frame"),
        (DecodeLimits(max_frames=4), "frames per file"),
        (DecodeLimits(max_decoded_bytes=1 << 31), "bytes per file"),
    ],
)
def test_csq_bomb_is_refused_from_its_headers(
    bomb: bytes, tmp_path: Path, limits: DecodeLimits, reason: str
) -> None:
    with pytest.raises(DecodeLimitError, match=reason):
        tio.parse_bytes(bomb, ".csq", limits=limits)
    path = tmp_path / "bomb.csq"
    path.write_bytes(bomb)
    with pytest.raises(DecodeLimitError, match=reason) as caught:
        tio.open_path(path, limits=limits)
    assert caught.value.source == str(path)
    # refused before decoding: far below one decoded frame (64 Mi pixels, 384 MiB)
    assert peak_bytes(lambda: tio.parse_bytes(bomb, ".csq", limits=limits)) < 4 * MIB


def test_bomb_within_the_library_defaults_opens_lazily(bomb: bytes) -> None:
    """The defaults admit 64 Mi-pixel frames; opening indexes headers and decodes nothing."""
    holder: list[ThermalSequence] = []
    peak = peak_bytes(lambda: holder.append(tio.parse_bytes(bomb, ".csq")))
    assert len(holder[0]) == BOMB_FRAMES
    assert peak < 4 * MIB


def _refused(limits: DecodeLimits, width: int, height: int, frames: int) -> bool:
    pixels = width * height
    return (
        frames > limits.max_frames
        or pixels > limits.max_frame_pixels
        or pixels * frames * DECODED_BYTES_PER_PIXEL > limits.max_decoded_bytes
    )


limit_values = st.builds(
    DecodeLimits,
    max_frame_pixels=st.integers(1, 1 << 30),
    max_frames=st.integers(1, 8),
    max_decoded_bytes=st.integers(1, 1 << 34),
)


@settings(max_examples=200, deadline=None)
@given(
    width=st.integers(1, 65535),
    height=st.integers(1, 65535),
    frames=st.integers(1, 6),
    limits=limit_values,
)
def test_flir_headers_property(width: int, height: int, frames: int, limits: DecodeLimits) -> None:
    """Any declared size: refused exactly when beyond a limit, otherwise indexed (not decoded)."""
    data = record_set(width, height, b"\xff\xd8\xff\xf7" + bytes(16)) * frames
    if _refused(limits, width, height, frames):
        with pytest.raises(DecodeLimitError):
            tio.parse_bytes(data, ".csq", limits=limits)
    else:
        with tio.parse_bytes(data, ".csq", limits=limits) as seq:
            assert len(seq) == frames


def _segment(marker: int, payload: bytes) -> bytes:
    return struct.pack(">BBH", 0xFF, marker, len(payload) + 2) + payload


def flir_rjpeg(fff: bytes) -> bytes:
    """A JPEG whose one FLIR APP1 segment (chunk 0 of 0) carries the record set ``fff``."""
    return b"\xff\xd8" + _segment(0xE1, b"FLIR\x00\x01\x00\x00" + fff) + b"\xff\xd9"


@settings(max_examples=100, deadline=None)
@given(width=st.integers(1, 65535), height=st.integers(1, 65535), limits=limit_values)
def test_flir_rjpeg_header_property(width: int, height: int, limits: DecodeLimits) -> None:
    """An R-JPEG whose raw record declares any size is refused exactly when beyond a limit
    (within them a side beyond MAX_SIDE is absurd, and its 16 bytes of counts decode or are
    too few)."""
    data = flir_rjpeg(record_set(width, height, bytes(16)))
    if _refused(limits, width, height, 1):
        with pytest.raises(DecodeLimitError):
            tio.parse_bytes(data, ".jpg", limits=limits)
        return
    if max(width, height) > MAX_SIDE:
        with pytest.raises(tio.AbsurdSizeError, match="raw image claims"):
            tio.parse_bytes(data, ".jpg", limits=limits)
    elif width * height * 2 <= 16:
        assert tio.parse_bytes(data, ".jpg", limits=limits)[0].shape == (height, width)
    else:
        with pytest.raises(tio.TruncatedFileError, match="raw data holds 16 bytes"):
            tio.parse_bytes(data, ".jpg", limits=limits)


@settings(max_examples=100, deadline=None)
@given(
    width=st.integers(1, 65535),
    height=st.integers(1, 65535),
    marker=st.sampled_from([0xC0, 0xC1, 0xC2, 0xC3]),
    limits=limit_values,
)
def test_jpeg_frame_header_property(
    width: int, height: int, marker: int, limits: DecodeLimits
) -> None:
    """The start-of-frame size DJI's reader checks first: refused exactly beyond the limits."""
    sof = struct.pack(">BHHB", 8, height, width, 1) + b"\x01\x11\x00"
    data = b"\xff\xd8" + _segment(0xE0, b"JFIF\x00") + _segment(marker, sof) + b"\xff\xd9"
    if _refused(limits, width, height, 1):
        with pytest.raises(DecodeLimitError):
            jpeg_within(data, limits)
    else:
        assert jpeg_within(data, limits) is data


small_limits = st.builds(
    DecodeLimits,
    max_frame_pixels=st.integers(1, 600),
    max_frames=st.integers(1, 4),
    max_decoded_bytes=st.integers(1, 12_000),
)


def _npy(frames: np.ndarray) -> bytes:
    out = io.BytesIO()
    np.save(out, frames if len(frames) > 1 else frames[0])
    return out.getvalue()


def _tiff(frames: np.ndarray) -> bytes:
    out = io.BytesIO()
    with tifffile.TiffWriter(out) as tif:
        for frame in frames:
            tif.write(frame, photometric="minisblack")
    return out.getvalue()


def _csv(frames: np.ndarray) -> bytes:
    return csv_format.emit([ThermalFrame(f) for f in frames])


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    shape=st.tuples(st.integers(1, 5), st.integers(1, 30), st.integers(1, 30)),
    limits=small_limits,
    kind=st.sampled_from(["npy", "tiff", "csv"]),
)
def test_simple_formats_property(
    shape: tuple[int, int, int], limits: DecodeLimits, kind: str
) -> None:
    frames, height, width = shape
    values = np.linspace(20.0, 40.0, frames * height * width, dtype=np.float32).reshape(shape)
    emit, suffix = {"npy": (_npy, ".npy"), "tiff": (_tiff, ".tif"), "csv": (_csv, ".csv")}[kind]
    data = emit(values)
    if _refused(limits, width, height, frames):
        with pytest.raises(DecodeLimitError):
            tio.parse_bytes(data, suffix, limits=limits)
    else:
        with tio.parse_bytes(data, suffix, limits=limits) as seq:
            assert len(seq) == frames
            assert seq[frames - 1].shape == (height, width)


def test_npy_bomb_header_is_refused_before_mapping(tmp_path: Path) -> None:
    path = tmp_path / "big.npy"
    np.lib.format.open_memmap(path, mode="w+", dtype=np.float32, shape=(3, 2048, 2048)).flush()
    with pytest.raises(DecodeLimitError, match="frames per file") as caught:
        numpy_format.open_file(path, DecodeLimits(max_frames=2))
    assert caught.value.source == str(path)
    with pytest.raises(DecodeLimitError, match="pixels per frame"):
        tio.open_path(path, limits=DecodeLimits(max_frame_pixels=1 << 20))


def test_flir_rjpeg_sample_is_refused_from_its_raw_header(samples: Path) -> None:
    path = samples / "flir" / "FLIR_E40.jpg"
    frame = tio.load(path)
    height, width = frame.shape
    with pytest.raises(DecodeLimitError, match=f"{width}x{height}") as caught:
        tio.load(path, limits=DecodeLimits(max_frame_pixels=width * height - 1))
    assert caught.value.source == str(path)


def test_dji_sample_is_refused_from_its_header_dimensions(samples: Path) -> None:
    path = samples / "dji" / "M30T_DJI_0001_R.JPG"
    raw = dji.parse_raw(path.read_bytes())
    assert raw.raw.size > 1000
    with pytest.raises(DecodeLimitError, match="pixels per frame") as caught:
        tio.open_path(path, limits=DecodeLimits(max_frame_pixels=1000))
    assert caught.value.source == str(path)


def test_limits_are_checked_on_construction() -> None:
    with pytest.raises(ValueError, match="max_frames"):
        DecodeLimits(max_frames=0)
    with pytest.raises(ValueError, match="max_decoded_bytes"):
        DecodeLimits(max_decoded_bytes=True)


# ------------------------------------------------------------------ a truncated last frame


def _cut_csq(tmp_path: Path) -> tuple[Path, int]:
    frames = [planck_frame(24, 32, seed=i, index=i) for i in range(3)]
    data = emit_csq(frames)
    path = tmp_path / "cut.csq"
    path.write_bytes(data[: len(data) - 700])  # inside the last frame's records
    return path, len(frames)


def test_truncated_last_csq_frame_is_reported_and_the_format_is_csq(tmp_path: Path) -> None:
    path, written = _cut_csq(tmp_path)
    with tio.open_path(path) as seq:
        assert len(seq) == written - 1
        assert seq.issues
        assert f"frame {written - 1}" in seq.issues[0]
        assert seq[0].metadata.format == "flir-csq"


def test_inspect_warns_about_a_truncated_last_frame(tmp_path: Path) -> None:
    runner = CliRunner()
    out = tmp_path / "run"
    made = runner.invoke(app, ["synth", "pcb", "--out", str(out), "--parts", "1", "--seed", "3"])
    assert made.exit_code == 0, made.output
    part = next(out.glob("*.seq"))
    data = part.read_bytes() * 3  # the part's frame three times: a recording
    part.write_bytes(data[: len(data) - 500])
    recipe = Path(__file__).resolve().parents[1] / "examples" / "pcb.yaml"
    result = runner.invoke(app, ["inspect", str(part), "--recipe", str(recipe)])
    assert "1 parts inspected" in result.output, result.output
    assert "warning" in result.output
    assert "unreadable" in result.output
    assert part.name in result.output
