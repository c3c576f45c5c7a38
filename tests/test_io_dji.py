"""DJI R-JPEG reader: sample files against the SDK's references, the SDK binding, robustness.

The sample tests run over every R-JPEG in the ``dji`` sample folder (new files are covered by the
glob). Synthetic R-JPEGs built here cover every header layout without sample data; the ctypes
binding is exercised against a small fake ``libdirp`` compiled from C with the same ABI.
"""

from __future__ import annotations

import contextlib
import ctypes
import os
import shutil
import struct
import subprocess
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from numpy.typing import NDArray

import thermoscope.io as tio
from sample_data import samples_dir
from thermoscope.io import dji

# --- synthetic DJI R-JPEGs ----------------------------------------------------------------------

PARAMS: dict[str, float] = {
    "distance": 7.0,
    "humidity": 40.0,
    "emissivity": 0.9,
    "reflection": 18.5,
    "ambient": 12.25,
}


def _segment(marker: int, payload: bytes) -> bytes:
    return b"\xff" + bytes([marker]) + struct.pack(">H", len(payload) + 2) + payload


def _ifd(entries: list[tuple[int, int, int, bytes]], start: int) -> bytes:
    """A little-endian TIFF IFD at offset ``start``; values over 4 bytes follow the IFD."""
    head = struct.pack("<H", len(entries))
    data = b""
    data_at = start + 2 + 12 * len(entries) + 4
    for tag, kind, count, value in entries:
        if len(value) <= 4:
            head += struct.pack("<HHI", tag, kind, count) + value.ljust(4, b"\x00")
        else:
            head += struct.pack("<HHII", tag, kind, count, data_at + len(data))
            data += value + b"\x00" * (len(value) % 2)
    return head + b"\x00\x00\x00\x00" + data


def _ascii(tag: int, text: str) -> tuple[int, int, int, bytes]:
    raw = text.encode() + b"\x00"
    return tag, 2, len(raw), raw


def _rationals(tag: int, *values: float) -> tuple[int, int, int, bytes]:
    packed = b"".join(struct.pack("<II", round(v * 10000), 10000) for v in values)
    return tag, 5, len(values), packed


def exif_block(
    model: str, width: int, height: int, *, gps: bool = False, offset: str = ""
) -> bytes:
    """An ``Exif`` APP1 payload: make/model/software, capture time, size and optionally GPS."""
    exif_entries = [
        _ascii(0x9003, "2023:05:06 07:08:09"),
        (0xA002, 4, 1, struct.pack("<I", width)),
        (0xA003, 4, 1, struct.pack("<I", height)),
        _ascii(0xA431, "SN123"),
    ]
    if offset:
        exif_entries.append(_ascii(0x9011, offset))
    gps_entries = [
        _ascii(1, "S"),
        _rationals(2, 33.0, 51.0, 36.0),
        _ascii(3, "E"),
        _rationals(4, 151.0, 12.0, 36.0),
        (5, 1, 1, b"\x00"),
        _rationals(6, 120.5),
    ]
    ifd0_count = 5 if gps else 4
    ifd0_size = 2 + 12 * ifd0_count + 4
    base = [_ascii(0x010F, "DJI"), _ascii(0x0110, model), _ascii(0x0131, "01.02.03.04")]
    strings = sum(len(v) + len(v) % 2 for _, _, _, v in base if len(v) > 4)
    exif_at = 8 + ifd0_size + strings
    exif_ifd = _ifd(exif_entries, exif_at)
    pointers = [(0x8769, 4, 1, struct.pack("<I", exif_at))]
    if gps:
        pointers.append((0x8825, 4, 1, struct.pack("<I", exif_at + len(exif_ifd))))
    ifd0 = _ifd(base + pointers, 8)
    assert len(ifd0) == ifd0_size + strings
    tiff = b"II*\x00" + struct.pack("<I", 8) + ifd0 + exif_ifd
    if gps:
        tiff += _ifd(gps_entries, len(tiff))
    return b"Exif\x00\x00" + tiff


def _param_header(layout: str, p: dict[str, float]) -> tuple[int, bytes]:
    """(marker, payload) of the measurement header of ``layout``."""
    d, h, e, r, a = p["distance"], p["humidity"], p["emissivity"], p["reflection"], p["ambient"]
    floats = struct.pack("<5f", a, d, e, h / 100, r)
    if layout == "iirp":
        return 0xE4, (b"\xff\xd2\xd1\xffiirp".ljust(32, b"\x00") + floats).ljust(256, b"\x00")
    if layout == "float":
        return 0xE4, floats.ljust(224, b"\xff")
    if layout == "hirp":
        block = bytearray(b"\xff\xd2\xd1\xffhirp".ljust(144, b"\x00"))
        struct.pack_into("<I", block, 80, round(d * 8192))
        struct.pack_into("<I", block, 88, round(e * 8192))
        struct.pack_into("<iI", block, 112, round(r * 1000), round(h * 1000))
        return 0xE4, bytes(block)
    if layout == "hirp-user":  # M4T: user-set Q13 parameters, the camera's own kept aside
        block = bytearray(b"\xff\xd2\xd1\xffhirp".ljust(144, b"\x00"))
        struct.pack_into("<I", block, 80, 8192)  # the camera's 1 m, not used
        struct.pack_into("<I", block, 88, round(e * 8192))
        struct.pack_into("<Ii", block, 92, round(d * 8192), round(r * 8192))
        block[100] = 1
        struct.pack_into("<iI", block, 112, 31_500, round(h * 1000))  # 31.5 °C, not used
        struct.pack_into("<i", block, 132, round(a * 8192))
        return 0xE4, bytes(block)
    if layout == "girp":
        block = bytearray(b"\xff\xd2\xd1\xffgirp".ljust(316, b"\x00"))
        struct.pack_into(
            "<2sHHHHh",
            block,
            32,
            b"\xaa\x55",
            56,
            round(h),
            round(d * 10),
            round(e * 100),
            round(r * 10),
        )
        return 0xE4, bytes(block)
    if layout == "aa55":
        block = bytearray(b"\xaa\x55".ljust(128, b"\x00"))
        struct.pack_into("<HHHh", block, 68, round(d), round(h), round(e * 100), round(r * 10))
        return 0xE4, bytes(block)
    block = bytearray(b"Plug".ljust(1260, b"\x00"))
    for at, fmt, value in ((1174, "<H", d), (1178, "<h", r * 10), (1182, "<H", e * 100)):
        struct.pack_into(fmt, block, at, round(value))
    struct.pack_into("<H", block, 1190, round(h * 10))
    return 0xE2, bytes(block)


LAYOUTS = ("iirp", "float", "hirp", "hirp-user", "girp", "aa55", "plug")


def make_rjpeg(
    raw: NDArray[np.uint16],
    layout: str = "aa55",
    *,
    model: str = "ZH20T",
    params: dict[str, float] | None = None,
    chunk: int = 1000,
    exif: bytes | None = None,
) -> bytes:
    """A DJI-native R-JPEG around ``raw`` (H, W) with the header of ``layout``."""
    h, w = raw.shape
    shifted = (raw.astype(np.uint16) << 2) if layout in ("iirp", "float") else raw
    body = shifted.astype("<u2").tobytes()
    marker, header = _param_header(layout, params or PARAMS)
    raw_marker = 0xE4 if layout == "plug" else 0xE3
    out = bytearray(b"\xff\xd8")
    out += _segment(0xE1, exif if exif is not None else exif_block(model, w, h))
    if layout == "plug":
        out += _segment(marker, header) + _segment(0xE3, b"\x3e\xfe" * 64)  # a small °C table
    out += b"".join(_segment(raw_marker, body[i : i + chunk]) for i in range(0, len(body), chunk))
    if layout != "plug":
        out += _segment(marker, header)
    out += _segment(0xC0, b"\x08" + struct.pack(">HH", h, w) + b"\x01\x01\x11\x00")
    out += _segment(0xDA, b"\x01\x01\x00\x00\x3f\x00") + b"\x00" * 16 + b"\xff\xd9"
    return bytes(out)


def ramp(h: int = 12, w: int = 16, start: int = 4000) -> NDArray[np.uint16]:
    """Distinct counts, row-major (so a transposed or shifted read shows)."""
    return (start + np.arange(h * w, dtype=np.uint16)).reshape(h, w)


# --- synthetic files: layouts, metadata, errors -------------------------------------------------


@pytest.mark.parametrize("layout", LAYOUTS)
def test_every_layout_reads_raw_and_parameters(layout: str) -> None:
    raw = ramp()
    image = dji.parse_raw(make_rjpeg(raw, layout))
    assert image.layout == layout.split("-")[0]
    assert image.raw_marker == (0xE4 if layout == "plug" else 0xE3)
    np.testing.assert_array_equal(image.raw, raw)
    p = image.parameters
    assert p is not None
    assert p.distance_m == pytest.approx(PARAMS["distance"])
    # the XT S stores a humidity that DJI's SDK ignores: kept aside, 70 % is what it uses
    humidity = dji.PLUG_SDK_HUMIDITY_PCT if layout == "plug" else PARAMS["humidity"]
    assert p.humidity_pct == pytest.approx(humidity, abs=1e-4)
    assert p.emissivity == pytest.approx(PARAMS["emissivity"], abs=2e-4)
    assert p.reflected_temp_c == pytest.approx(PARAMS["reflection"], abs=2e-4)
    ambient = {
        "iirp": PARAMS["ambient"],
        "float": PARAMS["ambient"],
        "hirp": PARAMS["reflection"],
        "hirp-user": PARAMS["ambient"],
    }
    if layout in ambient:
        assert p.ambient_temp_c == pytest.approx(ambient[layout], abs=2e-4)
    else:
        assert p.ambient_temp_c is None
    stored = {
        "plug": {"humidity_pct": PARAMS["humidity"]},
        "hirp-user": {"distance_m": 1.0, "temperature_c": 31.5},
    }
    assert dict(image.stored) == pytest.approx(stored.get(layout, {}))


def test_exif_metadata_camera_time_and_gps() -> None:
    raw = ramp()
    data = make_rjpeg(raw, exif=exif_block("M3T", 16, 12, gps=True, offset="+02:00"))
    image = dji.parse_raw(data)
    assert image.camera.make == "DJI"
    assert image.camera.model == "M3T"
    assert image.camera.serial == "SN123"
    assert image.camera.software == "01.02.03.04"
    assert image.capture_time == datetime(2023, 5, 6, 7, 8, 9, tzinfo=timezone(timedelta(hours=2)))
    assert image.gps is not None
    assert image.gps.latitude == pytest.approx(-(33 + 51 / 60 + 36 / 3600))
    assert image.gps.longitude == pytest.approx(151 + 12 / 60 + 36 / 3600)
    assert image.gps.altitude_m == pytest.approx(120.5)


def test_raw_size_found_from_an_upscaled_visual_image() -> None:
    """M30T-style files: EXIF and JPEG say 2x the thermal size; the raw is the half."""
    raw = ramp(8, 10)
    data = make_rjpeg(raw, exif=exif_block("M30T", 20, 16))
    np.testing.assert_array_equal(dji.parse_raw(data).raw, raw)


def test_reader_without_sdk_says_what_is_missing(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(dji.SDK_ENV, raising=False)
    data = make_rjpeg(ramp(), model="ZH20T")
    assert tio.detect(data).name == "dji-rjpeg"
    with pytest.raises(tio.TemperatureUnavailableError) as err:
        tio.parse_bytes(data)
    message = str(err.value)
    assert "ZH20T" in message
    assert "Thermal SDK" in message
    assert dji.SDK_ENV in message


def test_open_names_the_file(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.delenv(dji.SDK_ENV, raising=False)
    path = tmp_path / "DJI_0001_R.JPG"
    path.write_bytes(make_rjpeg(ramp()))
    with pytest.raises(tio.TemperatureUnavailableError) as err:
        tio.load(path)
    assert err.value.source == str(path)


@pytest.mark.parametrize(
    ("data", "error"),
    [
        (b"not a jpeg at all", tio.UnknownFormatError),
        (b"\xff\xd8" + _segment(0xE1, b"FLIR\x00\x01\x00\x00" + b"x" * 32), tio.UnknownFormatError),
        (make_rjpeg(ramp())[:400], tio.TruncatedFileError),
        (b"\xff\xd8" + _segment(0xE3, b"\x00" * 7) + b"\xff\xd9", tio.CorruptDataError),
    ],
    ids=["not-jpeg", "flir", "truncated", "no-raw"],
)
def test_specific_errors(data: bytes, error: type[Exception]) -> None:
    with pytest.raises(error):
        dji.parse_raw(data)


def test_implausible_parameters_are_corrupt_data() -> None:
    bad = dict(PARAMS, emissivity=1.5)
    with pytest.raises(tio.CorruptDataError, match="implausible"):
        dji.parse_raw(make_rjpeg(ramp(), "iirp", params=bad))


def test_sniff_rejects_flir_and_plain_jpegs() -> None:
    flir = b"\xff\xd8" + _segment(0xE1, b"FLIR\x00\x01\x00\x00") + _segment(0xE3, b"x" * 8)
    plain = b"\xff\xd8" + _segment(0xE1, exif_block("FC3170", 16, 12)) + b"\xff\xd9"
    assert not dji.sniff(flir, ".jpg")
    assert not dji.sniff(plain, ".jpg")
    assert dji.sniff(make_rjpeg(ramp())[:2000], ".jpg")  # a head cut inside the raw data


# --- the SDK binding against a fake libdirp -----------------------------------------------------

FAKE_W, FAKE_H = 16, 12
FAKE_DIRP = r"""
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
typedef struct { int32_t width; int32_t height; } dirp_resolution_t;
typedef struct { uint16_t *raw; } fake_t;
static int live = 0;
int fake_live_handles(void) { return live; }
int32_t dirp_create_from_rjpeg(const uint8_t *data, int32_t size, void **ph) {
    if (!data || !ph || size < 4 || data[0] != 0xFF || data[1] != 0xD8) return -2;
    uint8_t *raw = malloc((size_t)size);
    int32_t bytes = 0, pos = 2;
    while (pos + 4 <= size && data[pos] == 0xFF && data[pos + 1] != 0xDA) {
        int32_t len = (data[pos + 2] << 8) | data[pos + 3];
        if (len < 2 || pos + 2 + len > size) break;
        if (data[pos + 1] == 0xE3) {
            memcpy(raw + bytes, data + pos + 4, len - 2);
            bytes += len - 2;
        }
        pos += 2 + len;
    }
    if (bytes != FAKE_W * FAKE_H * 2) { free(raw); return -3; }
    fake_t *h = malloc(sizeof *h);
    h->raw = (uint16_t *)raw;
    *ph = h;
    live++;
    return 0;
}
int32_t dirp_get_rjpeg_resolution(void *ph, dirp_resolution_t *r) {
    if (!ph || !r) return -1;
    r->width = FAKE_W; r->height = FAKE_H;
    return 0;
}
int32_t dirp_measure_ex(void *ph, float *out, int32_t size) {
    fake_t *h = ph;
    if (!h || !out) return -1;
    if (size != FAKE_W * FAKE_H * (int32_t)sizeof(float)) return -4;
    for (int i = 0; i < FAKE_W * FAKE_H; i++) out[i] = h->raw[i] / 10.0f;
    return 0;
}
int32_t dirp_destroy(void *ph) {
    fake_t *h = ph;
    if (!h) return -1;
    free(h->raw); free(h); live--;
    return 0;
}
"""


@pytest.fixture(scope="module")
def fake_sdk(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A shared library with libdirp's ABI: temperatures are raw/10 of the APP3 words."""
    gcc = shutil.which("gcc")
    if gcc is None:
        pytest.skip("gcc is needed to build the fake DJI Thermal SDK")
    folder = tmp_path_factory.mktemp("fake_dirp")
    lib, source = folder / "libdirp.so", folder / "dirp.c"
    source.write_text(FAKE_DIRP)
    size = (f"-DFAKE_W={FAKE_W}", f"-DFAKE_H={FAKE_H}")
    subprocess.run(
        [gcc, "-shared", "-fPIC", *size, "-o", str(lib), str(source)],
        check=True,
        capture_output=True,
    )
    return lib


def _live_handles(lib: Path) -> int:
    return int(ctypes.CDLL(str(lib)).fake_live_handles())


def test_sdk_binding_gives_temperatures(fake_sdk: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(dji.SDK_ENV, str(fake_sdk))
    raw = ramp(FAKE_H, FAKE_W, start=2000)
    frame = tio.parse_bytes(make_rjpeg(raw, "aa55"))[0]
    np.testing.assert_array_equal(frame.raw, raw)
    np.testing.assert_array_equal(frame.celsius, (raw / np.float32(10)).astype(np.float32))
    assert frame.metadata.format == "dji-rjpeg"
    assert frame.metadata.calibration is None
    params = frame.metadata.parameters
    assert params is not None
    assert params.emissivity == pytest.approx(PARAMS["emissivity"])
    assert params.object_distance_m == pytest.approx(PARAMS["distance"])
    assert _live_handles(fake_sdk) == 0


def test_sdk_errors_become_temperature_unavailable(fake_sdk: Path) -> None:
    with pytest.raises(
        tio.TemperatureUnavailableError, match="dirp_create_from_rjpeg failed with status -2"
    ):
        dji.sdk_temperatures(b"garbage", fake_sdk)
    too_small = make_rjpeg(ramp(4, 5))
    with pytest.raises(tio.TemperatureUnavailableError, match="status -3"):
        dji.sdk_temperatures(too_small, fake_sdk)
    assert _live_handles(fake_sdk) == 0


def test_sdk_resolution_must_match_the_raw(fake_sdk: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(dji.SDK_ENV, str(fake_sdk))
    other_shape = ramp(8, 24)  # same pixel count as the fake's 16x12, another shape
    with pytest.raises(tio.CorruptDataError, match="SDK gives"):
        tio.parse_bytes(make_rjpeg(other_shape))


def test_missing_sdk_library_is_named(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(dji.SDK_ENV, str(tmp_path / "libdirp.so"))
    with pytest.raises(tio.TemperatureUnavailableError, match=dji.SDK_ENV):
        tio.parse_bytes(make_rjpeg(ramp()))


# --- sample files -------------------------------------------------------------------------------

#: Reference tolerance (°C) for the real DJI SDK, per the sample README; M3TD "hirp" is looser.
MAX_ERR = {"hirp": 0.21}


def _dji_files() -> list[Any]:
    root = samples_dir()
    names = [] if root is None else sorted(p.name for p in (root / "dji").glob("*.[jJ][pP][gG]"))
    return names or [pytest.param("", id="no-samples")]


def _sample(samples: Path, name: str) -> tuple[Path, dict[str, NDArray[Any]]]:
    """A sample file and its reference arrays/parameters (skips without samples)."""
    if not name:
        pytest.skip("no DJI sample files")
    path = samples / "dji" / name
    with np.load(path.with_name(path.name.split(".")[0] + ".reference.npz")) as npz:
        return path, {key: npz[key] for key in npz.files}


@pytest.mark.parametrize("name", _dji_files())
def test_sample_raw_is_identical(samples: Path, name: str) -> None:
    path, ref = _sample(samples, name)
    image = dji.parse_raw(path.read_bytes())
    assert image.raw.dtype == np.uint16
    np.testing.assert_array_equal(image.raw, ref["raw"])


@pytest.mark.parametrize("name", _dji_files())
def test_sample_parameters_and_metadata(samples: Path, name: str) -> None:
    path, ref = _sample(samples, name)
    image = dji.parse_raw(path.read_bytes())
    p = image.parameters
    assert p is not None
    assert p.distance_m == pytest.approx(float(ref["distance"]), abs=1e-4)
    assert p.humidity_pct == pytest.approx(float(ref["humidity"]), abs=1e-4)
    assert p.emissivity == pytest.approx(float(ref["emissivity"]), abs=1e-6)
    assert p.reflected_temp_c == pytest.approx(float(ref["reflection"]), abs=1e-4)
    if "ambient_temp" in ref:
        assert p.ambient_temp_c == pytest.approx(float(ref["ambient_temp"]), abs=1e-4)
    assert image.camera.make == "DJI"
    assert image.camera.model
    assert image.capture_time is not None


@pytest.mark.parametrize("name", _dji_files())
def test_sample_temperatures_need_the_sdk(
    samples: Path, name: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    path, _ = _sample(samples, name)
    monkeypatch.delenv(dji.SDK_ENV, raising=False)
    assert tio.detect(path.read_bytes()[: 256 * 1024], path.suffix).name == "dji-rjpeg"
    model = dji.parse_raw(path.read_bytes()).camera.model
    with pytest.raises(tio.TemperatureUnavailableError, match=dji.SDK_ENV) as err:
        tio.load(path)
    assert model in str(err.value)
    assert err.value.source == str(path)


@pytest.mark.parametrize("name", _dji_files())
def test_sample_temperatures_with_the_real_sdk(samples: Path, name: str) -> None:
    """Runs only where the user has DJI's Thermal SDK and points THERMOSCOPE_DJI_SDK at it."""
    if not os.environ.get(dji.SDK_ENV):
        pytest.skip(f"{dji.SDK_ENV} not set: DJI's Thermal SDK is not installed here")
    path, ref = _sample(samples, name)
    frame = tio.load(path)
    err = np.abs(frame.celsius - ref["celsius"])
    layout = frame.metadata.extra["dji_layout"]
    assert err.max() <= MAX_ERR.get(layout, 0.05)
    assert err.mean() <= 0.01


# --- robustness: truncated, bit-flipped and random input ----------------------------------------

#: A small file per layout, its raw data split over several segments.
SEEDS: dict[str, bytes] = {layout: make_rjpeg(ramp(6, 8), layout, chunk=40) for layout in LAYOUTS}
FUZZ = settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def _read_or_format_error(data: bytes) -> None:
    """Sniffing never raises; parsing succeeds or raises ``ThermoscopeFormatError``."""
    assert isinstance(dji.sniff(data[: 256 * 1024], ".jpg"), bool)
    try:
        image = dji.parse_raw(data)
    except tio.ThermoscopeFormatError:
        return
    assert image.raw.dtype == np.uint16
    with contextlib.suppress(tio.ThermoscopeFormatError):
        dji.parse(data)


@pytest.mark.parametrize("layout", LAYOUTS)
@FUZZ
@given(cut=st.floats(0.0, 1.0, exclude_max=True))
def test_truncated_input(layout: str, cut: float) -> None:
    data = SEEDS[layout]
    _read_or_format_error(data[: int(len(data) * cut)])


@pytest.mark.parametrize("layout", LAYOUTS)
@FUZZ
@given(
    flips=st.lists(
        st.tuples(st.floats(0.0, 1.0, exclude_max=True), st.integers(0, 7)), min_size=1, max_size=8
    )
)
def test_bit_flipped_input(layout: str, flips: list[tuple[float, int]]) -> None:
    data = bytearray(SEEDS[layout])
    for where, bit in flips:
        data[int(where * len(data))] ^= 1 << bit
    _read_or_format_error(bytes(data))


@FUZZ
@given(data=st.binary(max_size=2048), prefix=st.booleans())
def test_random_input(data: bytes, prefix: bool) -> None:
    _read_or_format_error((b"\xff\xd8\xff" if prefix else b"") + data)


@settings(
    max_examples=25,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
)
@given(
    flips=st.lists(
        st.tuples(st.floats(0.0, 0.1, exclude_max=True), st.integers(0, 7)), min_size=1, max_size=4
    ),
    cut=st.floats(0.02, 1.0),
)
def test_real_file_mutations(samples: Path, flips: list[tuple[float, int]], cut: float) -> None:
    """Bit flips in the headers of a real file (the first 10 %), then a cut."""
    files = sorted((samples / "dji").glob("XTS*.jpg")) or sorted((samples / "dji").glob("*.JPG"))
    if not files:
        pytest.skip("no DJI sample files")
    data = bytearray(files[0].read_bytes())
    for where, bit in flips:
        data[int(where * len(data))] ^= 1 << bit
    _read_or_format_error(bytes(data[: int(len(data) * cut)]))
