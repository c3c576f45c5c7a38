"""FLIR readers against reference temperatures computed by tools nobody here wrote."""

from __future__ import annotations

from pathlib import Path

import flyr
import numpy as np
import pytest

import thermoscope.io as tio
from sample_data import reference_cases, reference_for
from synthetic_frames import planck_frame
from thermoscope.io import flir_writer
from thermoscope.io.flir_rjpeg import extract_fff

TOLERANCE_C = 0.01
FLYR_READABLE = ("ax8.jpg", "flir_example.jpg", "FLIR_B60.jpg", "FLIR_E40.jpg", "FLIR_T640.jpg")


@pytest.mark.parametrize("path", reference_cases("flir"))
def test_every_flir_sample_matches_its_reference_pixel_by_pixel(path: Path) -> None:
    ref = np.load(reference_for(path))
    celsius, raw = ref["celsius"], ref["raw"]
    if celsius.ndim == 2:
        celsius, raw = celsius[None], raw[None]
    with tio.open_path(path) as seq:
        assert len(seq) == len(celsius)
        assert seq.issues == ()
        for i, frame in enumerate(seq):
            assert frame.shape == celsius[i].shape
            assert frame.raw is not None
            np.testing.assert_array_equal(frame.raw, raw[i])
            assert np.abs(frame.celsius - celsius[i]).max() <= TOLERANCE_C
            params = frame.metadata.parameters
            assert params is not None
            assert params.emissivity == pytest.approx(float(np.ravel(ref["E"])[i]), abs=1e-6)
            assert params.relative_humidity_pct == pytest.approx(
                float(np.ravel(ref["RH"])[i]), abs=1e-4
            )


@pytest.mark.parametrize("name", FLYR_READABLE)
@pytest.mark.parametrize(
    ("ours", "theirs"),
    [
        ({"emissivity": 0.8}, {"emissivity": 0.8}),
        (
            {"emissivity": 0.6, "reflected_temp_c": 35.0},
            {"emissivity": 0.6, "reflected_apparent_temperature": 308.15},
        ),
        ({"object_distance_m": 12.0}, {"object_distance": 12.0}),
    ],
    ids=["e0.8", "e0.6-refl35", "dist12"],
)
def test_recomputing_parameters_matches_flyr(
    samples: Path, name: str, ours: dict[str, float], theirs: dict[str, float]
) -> None:
    path = samples / "flir" / name
    frame = tio.load(path).with_parameters(**ours)
    with np.errstate(invalid="ignore"):  # flyr takes log of negatives for very cold pixels
        expected = flyr.unpack(str(path)).adjust_metadata(**theirs).celsius
    np.testing.assert_array_equal(np.isnan(frame.celsius), np.isnan(expected))
    # flyr rounds the stored Kelvin temperatures (293.1499939 -> 293.15); near the Planck
    # asymptote (below -60 °C, far outside any LWIR calibration) that moves results by 0.02 °C.
    calibrated = expected > -60.0
    assert np.abs(frame.celsius - expected)[calibrated].max() <= TOLERANCE_C
    assert frame.metadata.parameters is not None
    assert frame.metadata.parameters.emissivity == ours.get(
        "emissivity", frame.metadata.parameters.emissivity
    )


def test_recompute_in_a_region_only_touches_that_region(samples: Path) -> None:
    frame = tio.load(samples / "flir" / "FLIR_T640.jpg")
    mask = np.zeros(frame.shape, dtype=bool)
    mask[100:200, 300:400] = True
    changed = frame.with_parameters(emissivity=0.7, mask=mask)
    whole = frame.with_parameters(emissivity=0.7)
    np.testing.assert_array_equal(changed.celsius[~mask], frame.celsius[~mask])
    np.testing.assert_array_equal(changed.celsius[mask], whole.celsius[mask])
    assert changed.metadata.parameters == frame.metadata.parameters


def test_recompute_from_temperatures_alone_matches_recompute_from_counts() -> None:
    frame = planck_frame()
    no_raw = type(frame)(frame.celsius, raw=None, metadata=frame.metadata)
    np.testing.assert_allclose(
        no_raw.with_parameters(emissivity=0.7).celsius,
        frame.with_parameters(emissivity=0.7).celsius,
        atol=1e-3,
    )


def test_metadata_of_an_r_jpeg(samples: Path) -> None:
    frame = tio.load(samples / "flir" / "FLIR_T640.jpg")
    meta = frame.metadata
    assert meta.format == "flir-rjpeg"
    assert meta.camera.model == "FLIR T640"
    assert meta.capture_time is not None
    assert meta.capture_time.year == 2020
    assert meta.extra["palette_name"] == "Iron"
    assert meta.extra["palette_rgb"].shape[1] == 3
    assert meta.extra["embedded_image_jpeg"][:3] == b"\xff\xd8\xff"


def test_content_decides_the_reader_not_the_suffix(samples: Path, tmp_path: Path) -> None:
    for name in ("ax8.jpg", "frame_000000_le.fff"):
        disguised = tmp_path / (name + ".dat")
        disguised.write_bytes((samples / "flir" / name).read_bytes())
        assert tio.load(disguised).shape == tio.load(samples / "flir" / name).shape


def test_sequence_frames_carry_index_and_time(samples: Path) -> None:
    with tio.open_path(samples / "flir" / "test.seq") as seq:
        last = seq[-1]
        first = seq[0]
    assert (first.metadata.frame_index, last.metadata.frame_index) == (0, 6)
    assert first.metadata.timestamp_s == 0.0
    assert last.metadata.timestamp_s is not None
    assert last.metadata.timestamp_s > 0


def _recording(n: int = 5) -> list:  # type: ignore[type-arg]
    return [planck_frame(seed=i, index=i) for i in range(n)]


@pytest.mark.parametrize("suffix", [".seq", ".csq"])
def test_written_recordings_read_back_exactly(tmp_path: Path, suffix: str) -> None:
    frames = _recording()
    path = tio.save(frames, tmp_path / f"run{suffix}")
    with tio.open_path(path) as seq:
        assert len(seq) == len(frames)
        for ours, back in zip(frames, seq, strict=True):
            np.testing.assert_array_equal(back.raw, ours.raw)
            # constants are stored as float32, as FLIR does
            np.testing.assert_allclose(back.celsius, ours.celsius, atol=1e-4)
            assert back.metadata.camera.model == "Synthetic"
        assert seq[4].metadata.timestamp_s == pytest.approx(2.0, abs=1e-3)


def test_little_endian_fff_round_trip() -> None:
    frame = planck_frame()
    data = flir_writer.emit_fff(frame, byte_order="<")
    back = tio.parse_bytes(data)[0]
    np.testing.assert_array_equal(back.raw, frame.raw)


def test_csq_with_a_truncated_last_frame_reports_it_and_reads_the_rest(tmp_path: Path) -> None:
    data = flir_writer.emit_csq(_recording(4))
    path = tmp_path / "cut.csq"
    path.write_bytes(data[:-300])
    with tio.open_path(path) as seq:
        assert len(seq) == 3
        assert len(seq.issues) == 1
        assert "frame 3" in seq.issues[0]
        assert all(frame.shape == (24, 32) for frame in seq)


def test_a_corrupt_frame_fails_alone_frames_decode_on_access(tmp_path: Path) -> None:
    frames = _recording(3)
    blobs = [flir_writer.emit_fff(f, compression="jpegls") for f in frames]
    middle = bytearray(blobs[1])
    middle[128 + 2 : 128 + 4] = (999).to_bytes(2, "big")  # frame 1's raw record: wrong width
    path = tmp_path / "damaged.csq"
    path.write_bytes(blobs[0] + bytes(middle) + blobs[2])
    with tio.open_path(path) as seq:
        assert len(seq) == 3
        np.testing.assert_array_equal(seq[2].raw, frames[2].raw)
        np.testing.assert_array_equal(seq[0].raw, frames[0].raw)
        with pytest.raises(tio.ThermoscopeFormatError, match="frame 1"):
            _ = seq[1]


def test_r_jpeg_with_a_missing_chunk_is_truncated(samples: Path) -> None:
    data = (samples / "flir" / "FLIR_T640.jpg").read_bytes()
    start = data.index(b"FLIR\x00", data.index(b"FLIR\x00") + 10) - 4  # the second chunk's APP1
    length = int.from_bytes(data[start + 2 : start + 4], "big")
    damaged = data[:start] + data[start + 2 + length :]
    with pytest.raises(tio.TruncatedFileError, match="chunk"):
        tio.parse_bytes(damaged)


def test_extract_fff_needs_flir_segments() -> None:
    with pytest.raises(tio.UnknownFormatError):
        extract_fff(b"\xff\xd8\xff\xe0\x00\x04ab\xff\xd9")


def test_errors_name_the_file(tmp_path: Path) -> None:
    path = tmp_path / "garbage.seq"
    path.write_bytes(b"FFF\x00" + b"\x01" * 100)
    with pytest.raises(tio.ThermoscopeFormatError) as info:
        tio.load(path)
    assert str(path) in str(info.value)
    with pytest.raises(tio.ThermoscopeFormatError, match="cannot open"):
        tio.load(tmp_path / "missing.jpg")
