"""Radiometric TIFF, NumPy .npy and FLIR-style CSV: round trips, real-world variants, damage.

Every sample is made here (with tifffile, numpy or as text written the way FLIR software
exports it), so the suite needs no sample data.
"""

from __future__ import annotations

import codecs
import io
import json
import struct
import tracemalloc
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import tifffile
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from numpy.typing import NDArray

import thermoscope.io as tio
from synthetic_frames import planck_frame
from thermoscope.core import FrameMetadata, GpsPosition, ThermalFrame, ThermalSequence
from thermoscope.core.frame import MAX_SIDE
from thermoscope.io import csv_format, numpy_format, registry, tiff_format

Parser = Callable[[bytes], ThermalSequence]


def temperatures(height: int, width: int, seed: int = 0) -> NDArray[np.float32]:
    """A float32 °C scene from -40 to 600 °C with one undefined (NaN) pixel."""
    rng = np.random.default_rng(seed)
    celsius = rng.uniform(-40.0, 600.0, (height, width)).astype(np.float32)
    celsius[0, -1] = np.nan
    return celsius


def plain(height: int = 6, width: int = 9, seed: int = 0) -> ThermalFrame:
    return ThermalFrame(temperatures(height, width, seed))


def read_all(parse: Parser, data: bytes) -> list[ThermalFrame]:
    with parse(data) as seq:
        return list(seq)


def assert_same(a: NDArray[Any], b: NDArray[Any]) -> None:
    np.testing.assert_array_equal(a, b)  # NaN == NaN here


def tiff_bytes(array: NDArray[Any], **kwargs: Any) -> bytes:
    buffer = io.BytesIO()
    tifffile.imwrite(buffer, array, **kwargs)
    return buffer.getvalue()


def gdal_xml(**items: str) -> str:
    body = "".join(f'<Item name="{k}">{v}</Item>' for k, v in items.items())
    return f"<GDALMetadata>{body}</GDALMetadata>"


def npy_bytes(array: NDArray[Any]) -> bytes:
    buffer = io.BytesIO()
    np.save(buffer, array, allow_pickle=True)
    return buffer.getvalue()


def npy_header(descr: str, shape: tuple[int, ...]) -> bytes:
    """A version 1.0 .npy header (as numpy writes it) announcing ``shape``; no data."""
    text = f"{{'descr': '{descr}', 'fortran_order': False, 'shape': {shape}, }}"
    text += " " * (63 - (10 + len(text)) % 64) + "\n"
    return b"\x93NUMPY\x01\x00" + struct.pack("<H", len(text)) + text.encode("latin-1")


# ---------------------------------------------------------------- TIFF


def test_tiff_round_trip_is_exact() -> None:
    frame = plain()
    (back,) = read_all(tiff_format.parse, tiff_format.emit([frame]))
    assert_same(back.celsius, frame.celsius)
    assert back.celsius.dtype == np.float32
    assert back.metadata.format == "tiff"
    assert back.metadata.frame_index is None
    assert back.raw is None


def test_tiff_writer_output_is_a_plain_float32_tiff() -> None:
    frames = [plain(seed=1), plain(seed=2)]
    with tifffile.TiffFile(io.BytesIO(tiff_format.emit(frames))) as tif:
        assert len(tif.pages) == 2
        for page, frame in zip(tif.pages, frames, strict=True):
            assert isinstance(page, tifffile.TiffPage)
            assert page.dtype == np.float32
            assert_same(page.asarray(), frame.celsius)
            doc = json.loads(page.description)
            assert doc["thermoscope"]["unit"] == "degC"


def test_tiff_sequence_of_frames_of_different_sizes() -> None:
    frames = [plain(4, 5, 0), plain(7, 3, 1), plain(4, 5, 2)]
    back = read_all(tiff_format.parse, tiff_format.emit(frames))
    assert [f.shape for f in back] == [(4, 5), (7, 3), (4, 5)]
    assert [f.metadata.frame_index for f in back] == [0, 1, 2]
    for a, b in zip(back, frames, strict=True):
        assert_same(a.celsius, b.celsius)


def test_tiff_restores_the_metadata_it_wrote() -> None:
    frame = planck_frame(12, 16, index=3)
    meta = FrameMetadata(
        source="IR_0042.jpg",
        format="flir-rjpeg",
        camera=frame.metadata.camera,
        capture_time=datetime(2026, 5, 6, 7, 8, 9, 250000, tzinfo=UTC),
        parameters=frame.metadata.parameters,
        calibration=frame.metadata.calibration,
        gps=GpsPosition(59.33, 18.07, 12.5),
        frame_index=3,
        timestamp_s=1.5,
        extra={"palette": "iron", "range_c": (-20.0, 120.0), "thumbnail": np.zeros(4), "x": b"1"},
    )
    original = ThermalFrame(frame.celsius, raw=frame.raw, metadata=meta)
    (back,) = read_all(tiff_format.parse, tiff_format.emit([original]))
    got = back.metadata
    assert got.source == "IR_0042.jpg"
    assert got.format == "tiff"
    assert got.camera == meta.camera
    assert got.capture_time == meta.capture_time
    assert got.parameters == meta.parameters
    assert got.calibration == meta.calibration
    assert got.gps == meta.gps
    assert got.frame_index == 3
    assert got.timestamp_s == 1.5
    # JSON-representable extras survive (tuples as lists), arrays and bytes are dropped
    assert got.extra == {
        "palette": "iron",
        "range_c": [-20.0, 120.0],
        "origin_format": "flir-rjpeg",
    }
    assert back.raw is None  # TIFF stores °C only
    # the restored calibration still recomputes temperatures for other parameters
    np.testing.assert_allclose(
        back.with_parameters(emissivity=0.7).celsius,
        ThermalFrame(frame.celsius, metadata=meta).with_parameters(emissivity=0.7).celsius,
        atol=1e-4,
    )
    # a second round keeps the original format and everything else
    (again,) = read_all(tiff_format.parse, tiff_format.emit([back]))
    assert again.metadata == got


@pytest.mark.parametrize("byteorder", ["<", ">"])
@pytest.mark.parametrize("dtype", [np.float16, np.float32, np.float64])
def test_third_party_float_tiff_is_celsius(byteorder: str, dtype: type) -> None:
    celsius: NDArray[Any] = temperatures(5, 7).astype(dtype)
    (frame,) = read_all(tiff_format.parse, tiff_bytes(celsius, byteorder=byteorder))
    assert_same(frame.celsius, celsius.astype(np.float32))
    assert frame.metadata.source == "<bytes>"


@pytest.mark.parametrize("compression", ["zlib", "lzw", "packbits", "zstd"])
@pytest.mark.parametrize("tile", [None, (16, 16)])
def test_compressed_and_tiled_tiffs(compression: str, tile: tuple[int, int] | None) -> None:
    celsius = temperatures(20, 35)
    data = tiff_bytes(celsius, compression=compression, tile=tile, predictor=None)
    (frame,) = read_all(tiff_format.parse, data)
    assert_same(frame.celsius, celsius)


def test_imagej_float_stack_is_a_sequence() -> None:
    stack = np.stack([temperatures(6, 8, seed) for seed in range(3)])
    frames = read_all(tiff_format.parse, tiff_bytes(stack, imagej=True))
    assert len(frames) == 3
    for frame, expected in zip(frames, stack, strict=True):
        assert_same(frame.celsius, expected)


def test_counts_with_our_json_scale_and_kelvin_unit() -> None:
    counts = np.array([[7315, 7815], [8315, 10000]], dtype=np.uint16)
    description = json.dumps({"thermoscope": {"unit": "K", "scale": 0.04, "offset": 0.0}})
    (frame,) = read_all(tiff_format.parse, tiff_bytes(counts, description=description))
    np.testing.assert_allclose(frame.celsius, counts * 0.04 - 273.15, atol=1e-4)
    assert frame.raw is not None
    assert_same(frame.raw, counts)


@pytest.mark.parametrize(
    "xml",
    [
        gdal_xml(scale_factor="0.01", add_offset="-273.15"),
        '<GDALMetadata><Item name="OFFSET" sample="0" role="offset">-273.15</Item>'
        '<Item name="SCALE" sample="0" role="scale">0.01</Item></GDALMetadata>',
    ],
    ids=["scale_factor", "band-scale-offset"],
)
def test_counts_with_gdal_scale(xml: str) -> None:
    counts = np.array([[29315, 30315], [31315, 37315]], dtype=np.uint16)
    data = tiff_bytes(counts, extratags=[(42112, "s", 0, xml, True)], compression="zlib")
    (frame,) = read_all(tiff_format.parse, data)
    np.testing.assert_allclose(frame.celsius, [[20.0, 30.0], [40.0, 100.0]], atol=1e-4)
    assert frame.raw is not None
    assert_same(frame.raw, counts)


def test_gdal_nodata_becomes_nan_and_units_convert() -> None:
    xml = (
        '<GDALMetadata><Item name="SCALE" sample="0" role="scale">0.1</Item>'
        '<Item name="UNITTYPE" sample="0" role="unittype">degF</Item></GDALMetadata>'
    )
    counts = np.array([[320, 2120, 0]], dtype=np.int16)
    data = tiff_bytes(counts, extratags=[(42112, "s", 0, xml, True), (42113, "s", 0, "0", True)])
    (frame,) = read_all(tiff_format.parse, data)
    np.testing.assert_allclose(frame.celsius, [[0.0, 100.0, np.nan]], atol=1e-4)
    assert frame.raw is None  # only uint16 counts are kept as raw


def test_counts_without_scale_are_refused_not_guessed(tmp_path: Path) -> None:
    counts = np.full((4, 5), 30000, dtype=np.uint16)
    path = tmp_path / "DJI_0001_R.tif"
    path.write_bytes(tiff_bytes(counts))
    with pytest.raises(tio.TemperatureUnavailableError, match="scale") as caught:
        tio.load(path)
    assert caught.value.source == str(path)
    with tiff_format.open_file(path, scale=0.01, offset=-273.15) as seq:
        np.testing.assert_allclose(seq[0].celsius, 26.85, atol=1e-4)
    with pytest.raises(ValueError, match="scale"):
        tiff_format.parse(path.read_bytes(), scale=0.0)


def test_unit_that_is_no_temperature_is_refused() -> None:
    data = tiff_bytes(
        np.ones((3, 3), np.float32), extratags=[(42112, "s", 0, gdal_xml(units="metre"), True)]
    )
    with pytest.raises(tio.TemperatureUnavailableError, match="metre"):
        tiff_format.parse(data)


@pytest.mark.parametrize(
    ("array", "kwargs"),
    [
        (np.zeros((4, 4, 3), np.uint8), {"photometric": "rgb"}),
        (np.zeros((4, 4), bool), {}),
        (np.zeros((4, 4), np.complex64), {}),
    ],
    ids=["rgb", "bilevel", "complex"],
)
def test_non_temperature_tiffs_are_refused(array: NDArray[Any], kwargs: dict[str, Any]) -> None:
    with pytest.raises(tio.ThermoscopeFormatError):
        read_all(tiff_format.parse, tiff_bytes(array, **kwargs))


def test_reduced_resolution_pages_are_skipped() -> None:
    buffer = io.BytesIO()
    with tifffile.TiffWriter(buffer) as writer:
        writer.write(temperatures(8, 8))
        writer.write(temperatures(4, 4), subfiletype=1)
    frames = read_all(tiff_format.parse, buffer.getvalue())
    assert [f.shape for f in frames] == [(8, 8)]


def test_infinite_pixels_are_refused_nan_kept() -> None:
    celsius = temperatures(3, 4)
    celsius[1, 1] = np.inf
    with pytest.raises(tio.CorruptDataError, match="inf"):
        read_all(tiff_format.parse, tiff_bytes(celsius))


def patch_tag(data: bytes, code: int, value: int) -> bytes:
    """``data`` with the (inline, integer) value of tag ``code`` of the first page replaced."""
    with tifffile.TiffFile(io.BytesIO(data)) as tif:
        page = tif.pages[0]
        assert isinstance(page, tifffile.TiffPage)
        tag = page.tags[code]
        fmt = {3: "<H", 4: "<I"}[int(tag.dtype)]
        offset = tag.valueoffset
    out = bytearray(data)
    struct.pack_into(fmt, out, offset, value)
    return bytes(out)


def test_tiff_claiming_a_huge_image_from_a_few_bytes_is_refused() -> None:
    data = tiff_bytes(np.zeros((8, 8), np.float32), compression="zlib")
    for code in (256, 257, 278):  # width, length, rows per strip
        data = patch_tag(data, code, MAX_SIDE)
    tracemalloc.start()
    try:
        with pytest.raises(tio.AbsurdSizeError):
            tiff_format.parse(data)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < 1 << 20


def test_tiff_wider_than_a_frame_may_be_is_refused() -> None:
    data = patch_tag(tiff_bytes(np.zeros((8, 8), np.float32)), 256, MAX_SIDE + 1)
    with pytest.raises(tio.AbsurdSizeError):
        tiff_format.parse(data)


def test_uncompressed_tiff_cut_short_is_truncated() -> None:
    data = tiff_format.emit([plain(30, 40)])
    with pytest.raises(tio.TruncatedFileError):
        tiff_format.parse(data[: len(data) - 100])


def ifd_next_pointer(data: bytes, page: int) -> tuple[int, int]:
    """(position of page's next-IFD pointer, IFD offset of page 0) in a little-endian TIFF."""
    with tifffile.TiffFile(io.BytesIO(data)) as tif:
        first = tif.pages[0].offset
        offset = tif.pages[page].offset
    (entries,) = struct.unpack_from("<H", data, offset)
    return offset + 2 + 12 * entries, first


@pytest.mark.parametrize("loop_from", [0, 1])
def test_circular_ifd_chain_ends_without_hanging(loop_from: int) -> None:
    data = bytearray(tiff_format.emit([plain(seed=0), plain(seed=1)]))
    pointer, first = ifd_next_pointer(bytes(data), loop_from)
    struct.pack_into("<I", data, pointer, first)
    with tiff_format.parse(bytes(data)) as seq:
        assert len(seq) == loop_from + 1
        assert "circular" in seq.issues[0]
        assert all(frame.shape == (6, 9) for frame in seq)


def test_gdal_metadata_with_entity_declarations_is_refused() -> None:
    xml = '<!DOCTYPE x [<!ENTITY a "9">]><GDALMetadata><Item name="scale">&a;</Item></GDALMetadata>'
    data = tiff_bytes(np.ones((2, 2), np.uint16), extratags=[(42112, "s", 0, xml, True)])
    with pytest.raises(tio.CorruptDataError, match="declarations"):
        tiff_format.parse(data)


def test_tiff_open_file_reads_pages_on_access(tmp_path: Path) -> None:
    frames = [plain(seed=i) for i in range(4)]
    path = tmp_path / "seq.tiff"
    path.write_bytes(tiff_format.emit(frames))
    with tiff_format.open_file(path) as seq:
        assert len(seq) == 4
        assert_same(seq[2].celsius, frames[2].celsius)
        assert seq[2].metadata.source == str(path)


# ---------------------------------------------------------------- .npy


def test_npy_round_trip_single_frame_is_2d() -> None:
    frame = plain()
    data = numpy_format.emit([frame])
    stored = np.load(io.BytesIO(data), allow_pickle=False)
    assert stored.shape == (6, 9)
    assert stored.dtype == np.dtype("<f4")
    (back,) = read_all(numpy_format.parse, data)
    assert_same(back.celsius, frame.celsius)
    assert back.metadata.frame_index is None
    assert back.metadata.format == "npy"


def test_npy_round_trip_sequence_is_3d() -> None:
    frames = [plain(seed=i) for i in range(3)]
    data = numpy_format.emit(frames)
    assert np.load(io.BytesIO(data), allow_pickle=False).shape == (3, 6, 9)
    back = read_all(numpy_format.parse, data)
    assert [f.metadata.frame_index for f in back] == [0, 1, 2]
    for a, b in zip(back, frames, strict=True):
        assert_same(a.celsius, b.celsius)


@pytest.mark.parametrize("dtype", ["<f2", ">f4", "<f8", ">f8"])
@pytest.mark.parametrize("fortran", [False, True])
def test_npy_float_arrays_of_any_layout(dtype: str, fortran: bool) -> None:
    stack = np.stack([temperatures(5, 7, seed) for seed in range(2)]).astype(dtype)
    if fortran:
        stack = np.asfortranarray(stack)
    frames = read_all(numpy_format.parse, npy_bytes(stack))
    for frame, expected in zip(frames, stack, strict=True):
        assert_same(frame.celsius, expected.astype(np.float32))
        assert frame.celsius.flags.c_contiguous
        assert frame.celsius.flags.writeable


def test_npy_counts_are_not_celsius() -> None:
    with pytest.raises(tio.TemperatureUnavailableError, match="counts"):
        numpy_format.parse(npy_bytes(np.zeros((4, 4), np.uint16)))


class Exploding:
    """Would run code if unpickled."""

    def __reduce__(self) -> tuple[Any, ...]:
        return (pytest.fail, ("unpickled!",))


@pytest.mark.parametrize(
    "array",
    [
        np.array([[Exploding(), 1]], dtype=object),
        np.zeros((3, 3), dtype=[("t", "<f4"), ("q", "<u1")]),
        np.zeros((3, 3), dtype=bool),
        np.zeros((3, 3), dtype=np.complex64),
        np.zeros(9, dtype=np.float32),
        np.zeros((2, 2, 2, 2), dtype=np.float32),
        np.zeros((0, 3, 3), dtype=np.float32),
        np.array([["a", "b"]]),
    ],
    ids=["pickle", "structured", "bool", "complex", "1d", "4d", "empty", "text"],
)
def test_npy_arrays_that_hold_no_temperatures(array: NDArray[Any]) -> None:
    with pytest.raises(tio.CorruptDataError):
        read_all(numpy_format.parse, npy_bytes(array))


def test_npy_header_claiming_gigabytes_is_refused_before_allocating() -> None:
    tracemalloc.start()
    try:
        with pytest.raises(tio.TruncatedFileError, match="needs"):
            numpy_format.parse(npy_header("<f8", (100000, 16384, 16384)) + b"\x00" * 64)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < 1 << 20


def test_npy_frame_larger_than_allowed_is_absurd() -> None:
    with pytest.raises(tio.AbsurdSizeError):
        numpy_format.parse(npy_header("<f4", (2, MAX_SIDE + 1)))


@pytest.mark.parametrize("bad", [np.inf, -np.inf, 1e300])
def test_npy_infinite_values_are_refused(bad: float) -> None:
    array = temperatures(4, 4).astype(np.float64)
    array[2, 3] = bad
    with pytest.raises(tio.CorruptDataError, match="inf"):
        read_all(numpy_format.parse, npy_bytes(array))


def test_npy_file_is_memory_mapped_and_read_per_frame(tmp_path: Path) -> None:
    frames, height, width = 32, 256, 256
    stack = np.arange(frames * height * width, dtype=np.float32).reshape(frames, height, width)
    path = tmp_path / "recording.npy"
    np.save(path, stack)
    frame_bytes = height * width * 4
    tracemalloc.start()
    try:
        seq = numpy_format.open_file(path)
        frame = seq[20]
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert_same(frame.celsius, stack[20])
    assert peak < 3 * frame_bytes < stack.nbytes // 8  # one frame, not the 8 MiB file
    # frames come from the file when accessed: a change on disk after opening shows up
    header = path.stat().st_size - stack.nbytes
    with path.open("r+b") as fh:
        fh.seek(header + 25 * frame_bytes)
        fh.write(np.full((height, width), -5.0, np.float32).tobytes())
    assert float(seq[25].celsius.max()) == -5.0
    assert float(frame.celsius[0, 0]) == 20 * frame_bytes / 4  # copies, not views of the map
    seq.close()
    with pytest.raises(tio.ThermoscopeFormatError, match="closed"):
        seq[0]


# ---------------------------------------------------------------- CSV

#: A FLIR Research Studio export: header block, a label column ("Frame N" / empty), trailing
#: commas, CRLF line ends, Windows-1252 text.
RESEARCH_STUDIO = (
    "File:,Rec-000123.csq\r\n"
    "\r\n"
    "Parameters:,Emissivity:,0.95\r\n"
    ",Object Distance:,1.00 m\r\n"
    ",Reflected Temperature:,20.0 °C\r\n"
    ",Atmospheric Temperature:,20.0 °C\r\n"
    ",Relative Humidity:,50.0 %\r\n"
    "\r\n"
    "Frame 1,21.503,21.611,22.104,\r\n"
    ",21.498,21.702,35.250,\r\n"
    "Frame 2,21.510,21.615,22.120,\r\n"
    ",21.495,21.699,35.610,\r\n"
).encode("cp1252")

#: FLIR Tools with a German locale: semicolons, decimal commas, an "Image 1" label column.
FLIR_TOOLS_DE = (
    "File:;FLIR0042.jpg\n"
    "Temperatur;°C\n"
    "Image 1;-3,5;-3,25;0,125\n"
    ";-2,75;-1;18,375\n"
    ";12,5;19,0;20,25\n"
).encode()

#: "Unicode text" (UTF-16, tab-separated) as a spreadsheet saves it.
UTF16_TABS = ("Temperature [°C]\n24.5\t24.6\t24.7\n25.5\t25.6\tnan\n").encode("utf-16")


def test_csv_flir_research_studio_export() -> None:
    frames = read_all(csv_format.parse, RESEARCH_STUDIO)
    assert len(frames) == 2
    np.testing.assert_allclose(
        frames[0].celsius, [[21.503, 21.611, 22.104], [21.498, 21.702, 35.25]], atol=1e-5
    )
    np.testing.assert_allclose(frames[1].celsius[1, 2], 35.61, atol=1e-5)
    assert [f.metadata.frame_index for f in frames] == [0, 1]
    header = frames[0].metadata.extra["csv_header"]
    assert header[0] == "File:,Rec-000123.csq"
    assert ",Reflected Temperature:,20.0 °C" in header


def test_csv_flir_tools_decimal_comma_export() -> None:
    (frame,) = read_all(csv_format.parse, FLIR_TOOLS_DE)
    np.testing.assert_allclose(
        frame.celsius, [[-3.5, -3.25, 0.125], [-2.75, -1.0, 18.375], [12.5, 19.0, 20.25]]
    )
    assert frame.metadata.frame_index is None
    assert frame.metadata.extra["csv_header"] == ["File:;FLIR0042.jpg", "Temperatur;°C"]


def test_csv_utf16_tab_separated() -> None:
    (frame,) = read_all(csv_format.parse, UTF16_TABS)
    np.testing.assert_allclose(frame.celsius, [[24.5, 24.6, 24.7], [25.5, 25.6, np.nan]])


def test_csv_plain_grid_with_blank_lines_and_spaces() -> None:
    text = b"\n 1.5, 2.5 ,3\n\n4,5e1,-6.25\n\n\n"
    (frame,) = read_all(csv_format.parse, text)
    np.testing.assert_allclose(frame.celsius, [[1.5, 2.5, 3.0], [4.0, 50.0, -6.25]])


def test_csv_round_trip_within_half_a_thousandth() -> None:
    frames = [plain(12, 17, seed) for seed in range(3)]
    back = read_all(csv_format.parse, csv_format.emit(frames))
    assert [f.metadata.frame_index for f in back] == [0, 1, 2]
    for a, b in zip(back, frames, strict=True):
        # 3 decimals: 0.0005 °C, plus the float32 rounding of the value read back
        np.testing.assert_allclose(a.celsius, b.celsius, atol=5e-4, rtol=2**-24)
        assert np.isnan(a.celsius[0, -1])


def test_csv_writer_format() -> None:
    frame = ThermalFrame(np.array([[21.25, -3.0004], [np.nan, 100.0]], np.float32))
    assert csv_format.emit([frame]) == b"21.250,-3.000\nnan,100.000\n"
    two = csv_format.emit([frame, frame]).decode()
    assert two.splitlines()[0] == "Frame 1"
    assert two.splitlines()[3] == "Frame 2"


@pytest.mark.parametrize(
    ("text", "error", "match"),
    [
        (b"1,2,3\n4,5,6\n7,8\n", tio.CorruptDataError, "line 3: 2 values, expected 3"),
        (b"h\n1,2,3\n4,x,6\n", tio.CorruptDataError, "line 3: value 2 is 'x'"),
        (b"1,2\n3,inf\n", tio.CorruptDataError, "line 2, value 2: 'inf'"),
        (b"1;2\n3;1e39\n", tio.CorruptDataError, "float32"),
        (b"Frame 1\n1,2\nFrame 2\n1,2\n3,4\n", tio.CorruptDataError, "same size"),
        (b"Frame 1\n1,2\nFrame 2\n", tio.CorruptDataError, "line 3: frame label without data"),
        (b"File:,a.jpg\nno numbers here\n", tio.CorruptDataError, "no grid"),
        (b"", tio.TruncatedFileError, "empty"),
        (b"1,2\x00,3\n", tio.UnknownFormatError, "NUL"),
        (",".join(["1"] * (MAX_SIDE + 1)).encode(), tio.AbsurdSizeError, "values"),
        (b"1\n" * (MAX_SIDE + 1), tio.AbsurdSizeError, "rows"),
    ],
    ids=[
        "ragged",
        "word",
        "inf",
        "overflow",
        "frame-sizes",
        "empty-frame",
        "no-grid",
        "empty",
        "binary",
        "wide",
        "tall",
    ],
)
def test_csv_errors_name_the_problem(text: bytes, error: type[Exception], match: str) -> None:
    with pytest.raises(error, match=match):
        csv_format.parse(text)


# ---------------------------------------------------------------- registry and files

SUFFIXES = [".tif", ".tiff", ".npy", ".csv"]
TOLERANCE = {".tif": 0.0, ".tiff": 0.0, ".npy": 0.0, ".csv": 5e-4}


@pytest.mark.parametrize("suffix", SUFFIXES)
def test_save_and_load_through_the_registry(tmp_path: Path, suffix: str) -> None:
    frames = [plain(5, 8, seed) for seed in range(3)]
    path = tio.save(frames, tmp_path / f"out{suffix}")
    with tio.open_path(path) as seq:
        assert len(seq) == 3
        assert seq[1].metadata.source == str(path)
    second = tio.load(path, frame=1)
    np.testing.assert_allclose(second.celsius, frames[1].celsius, atol=TOLERANCE[suffix], rtol=1e-6)
    single = tio.save(frames[0], tmp_path / f"one{suffix}")
    np.testing.assert_allclose(
        tio.load(single).celsius, frames[0].celsius, atol=TOLERANCE[suffix], rtol=1e-6
    )


@pytest.mark.parametrize(
    ("emit", "suffix", "name"),
    [
        (tiff_format.emit, "", "tiff"),
        (numpy_format.emit, "", "npy"),
        (csv_format.emit, ".csv", "csv"),
    ],
)
def test_detect_by_content(
    emit: Callable[[list[ThermalFrame]], bytes], suffix: str, name: str
) -> None:
    data = emit([plain()])
    assert tio.detect(data[: registry.SNIFF_BYTES], suffix).name == name
    assert tio.parse_bytes(data, suffix)[0].shape == (6, 9)


def test_csv_is_not_claimed_without_its_suffix_or_when_binary() -> None:
    reader = csv_format.READER
    assert not reader.sniff(b"1,2,3\n", ".txt")
    assert not reader.sniff(b"1,2\x00,3\n", ".csv")
    assert reader.sniff(codecs.BOM_UTF16_LE + "1,2".encode("utf-16-le"), ".csv")


@pytest.mark.parametrize("suffix", SUFFIXES)
def test_failed_save_leaves_the_previous_file_and_no_partial_one(
    tmp_path: Path, suffix: str
) -> None:
    target = tmp_path / f"out{suffix}"
    target.write_bytes(b"previous")
    infinite = ThermalFrame(np.full((6, 9), np.inf, np.float32))
    with pytest.raises(tio.ThermoscopeFormatError, match="inf"):
        tio.save([plain(), infinite], target)
    assert target.read_bytes() == b"previous"
    assert [p.name for p in tmp_path.iterdir()] == [target.name]


@pytest.mark.parametrize("suffix", [".npy", ".csv"])
def test_frames_of_different_sizes_cannot_share_one_array_or_grid(
    tmp_path: Path, suffix: str
) -> None:
    with pytest.raises(tio.ThermoscopeFormatError, match="one size"):
        tio.save([plain(4, 4), plain(5, 5)], tmp_path / f"x{suffix}")
    assert list(tmp_path.iterdir()) == []


def test_write_interrupted_at_rename_leaves_nothing(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def fail(*args: object) -> None:
        raise OSError("disk full")

    monkeypatch.setattr(registry.os, "replace", fail)
    with pytest.raises(OSError, match="disk full"):
        tio.save([plain()], tmp_path / "x.tiff")
    assert list(tmp_path.iterdir()) == []


# ---------------------------------------------------------------- damaged input (properties)

SEEDS: dict[str, tuple[Parser, Callable[[], bytes]]] = {
    "tiff": (tiff_format.parse, lambda: tiff_format.emit([planck_frame(6, 8), plain(5, 4)])),
    "tiff-counts-zlib": (
        tiff_format.parse,
        lambda: tiff_bytes(
            np.arange(48, dtype=np.uint16).reshape(6, 8) + 29000,
            compression="zlib",
            extratags=[(42112, "s", 0, gdal_xml(scale_factor="0.01", add_offset="-273.15"), True)],
        ),
    ),
    "npy": (numpy_format.parse, lambda: numpy_format.emit([plain(4, 5, 0), plain(4, 5, 1)])),
    "npy-fortran-f8": (
        numpy_format.parse,
        lambda: npy_bytes(np.asfortranarray(np.ones((2, 3, 4)))),
    ),
    "csv": (csv_format.parse, lambda: csv_format.emit([plain(4, 5, 0), plain(4, 5, 1)])),
    "csv-flir": (csv_format.parse, lambda: RESEARCH_STUDIO),
    "csv-de": (csv_format.parse, lambda: FLIR_TOOLS_DE),
}
PREFIXES = {"tiff": b"II*\x00", "npy": b"\x93NUMPY\x01\x00", "csv": b""}
PARSERS: dict[str, Parser] = {
    "tiff": tiff_format.parse,
    "npy": numpy_format.parse,
    "csv": csv_format.parse,
}

FUZZ = settings(max_examples=120, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def decode_or_format_error(parse: Parser, data: bytes) -> bool:
    """Decode every frame (checking it) or raise a format error; True when it decoded."""
    try:
        frames = read_all(parse, data)
    except tio.ThermoscopeFormatError:
        return False
    for frame in frames:
        assert frame.celsius.dtype == np.float32
        assert frame.celsius.ndim == 2
        assert not np.isinf(frame.celsius).any()
    return True


@pytest.mark.parametrize("kind", sorted(SEEDS))
def test_seed_files_decode(kind: str) -> None:
    parse, make = SEEDS[kind]
    assert decode_or_format_error(parse, make())


@pytest.mark.parametrize("kind", sorted(SEEDS))
@FUZZ
@given(cut=st.floats(0.0, 1.0, exclude_max=True))
def test_truncated(kind: str, cut: float) -> None:
    parse, make = SEEDS[kind]
    data = make()
    decoded = decode_or_format_error(parse, data[: int(len(data) * cut)])
    if kind.startswith("npy"):
        assert not decoded  # every byte of an .npy file is needed


@pytest.mark.parametrize("kind", sorted(SEEDS))
@FUZZ
@given(
    flips=st.lists(
        st.tuples(st.floats(0.0, 1.0, exclude_max=True), st.integers(0, 7)), min_size=1, max_size=8
    )
)
def test_bit_flipped(kind: str, flips: list[tuple[float, int]]) -> None:
    parse, make = SEEDS[kind]
    data = bytearray(make())
    for where, bit in flips:
        data[int(len(data) * where)] ^= 1 << bit
    decode_or_format_error(parse, bytes(data))


@pytest.mark.parametrize("kind", sorted(PARSERS))
@FUZZ
@given(body=st.binary(max_size=1024), with_magic=st.booleans())
def test_random_bytes(kind: str, body: bytes, with_magic: bool) -> None:
    prefix = PREFIXES[kind] if with_magic else b""
    decode_or_format_error(PARSERS[kind], prefix + body)


@FUZZ
@given(
    lines=st.lists(
        st.lists(
            st.one_of(
                st.floats(allow_nan=True, allow_infinity=True).map(repr),
                st.sampled_from(["", "Frame 2", "Image 1", "nan", "1e400", "-", "°C", "x"]),
            ),
            max_size=6,
        ),
        max_size=12,
    ),
    separator=st.sampled_from([",", ";", "\t"]),
)
def test_random_csv_text(lines: list[list[str]], separator: str) -> None:
    text = "\n".join(separator.join(fields) for fields in lines)
    decode_or_format_error(csv_format.parse, text.encode())


@FUZZ
@given(
    descr=st.sampled_from(["<f4", ">f8", "<u2", "|b1", "<c8", "|O", "(1,f4", "<f4']", "x"]),
    shape=st.lists(st.integers(0, 40000), max_size=4).map(tuple),
    payload=st.binary(max_size=256),
)
def test_random_npy_headers(descr: str, shape: tuple[int, ...], payload: bytes) -> None:
    decode_or_format_error(numpy_format.parse, npy_header(descr, shape) + payload)
