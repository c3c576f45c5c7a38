"""Frame content ids (exact, streaming; ``storage.identity``) and perceptual hashes."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import thermoscope.io as tio
from synthetic_frames import planck_frame
from thermoscope.core import FrameMetadata, ThermalFrame
from thermoscope.datasets.hashing import hamming, near_pairs, perceptual_hash
from thermoscope.io import ThermoscopeFormatError
from thermoscope.storage.identity import array_id, content_id, frame_id, hash_file, sequence_id


def reference_id(celsius: np.ndarray, raw: np.ndarray | None = None) -> str:
    """The documented definition, written out independently."""
    header = {"celsius": "<f4", "raw": None if raw is None else "<u2", "shape": list(celsius.shape)}
    c = np.ascontiguousarray(celsius, dtype="<f4").copy()
    c.view(np.uint32)[np.isnan(c)] = 0x7FC00000
    digest = hashlib.sha256(
        b"thermoscope-frame-v1\n"
        + json.dumps(header, sort_keys=True, separators=(",", ":")).encode()
        + b"\n"
        + c.tobytes()
    )
    if raw is not None:
        digest.update(np.ascontiguousarray(raw, dtype="<u2").tobytes())
    return digest.hexdigest()


def test_frame_id_follows_the_documented_definition() -> None:
    frame = planck_frame()
    assert frame.raw is not None
    assert frame_id(frame) == reference_id(frame.celsius, frame.raw)
    assert frame_id(ThermalFrame(frame.celsius)) == reference_id(frame.celsius)


def test_frame_id_ignores_metadata_but_not_counts_or_shape() -> None:
    frame = planck_frame()
    renamed = ThermalFrame(frame.celsius, frame.raw, FrameMetadata(source="elsewhere.jpg"))
    assert frame_id(renamed) == frame_id(frame)
    assert frame_id(ThermalFrame(frame.celsius)) != frame_id(frame)
    reshaped = ThermalFrame(frame.celsius.reshape(frame.width, frame.height))
    assert frame_id(reshaped) != frame_id(ThermalFrame(frame.celsius))
    warmer = ThermalFrame(np.nextafter(frame.celsius, np.float32(np.inf)))
    assert frame_id(warmer) != frame_id(ThermalFrame(frame.celsius))


def test_every_nan_hashes_alike() -> None:
    a = np.zeros((4, 5), dtype=np.float32)
    b = a.copy()
    a[1, 2] = np.nan
    b.view(np.uint32)[1, 2] = 0xFFC12345  # another NaN payload, negative sign
    assert np.isnan(b[1, 2])
    assert array_id(a) == array_id(b) == reference_id(a)


def test_array_id_is_layout_and_dtype_independent() -> None:
    values = np.random.default_rng(0).normal(30, 5, (7, 9)).astype(np.float32)
    assert array_id(values) == array_id(np.asfortranarray(values))
    assert array_id(values) == array_id(values.astype(">f4"))
    assert array_id(values) == array_id(values.astype(np.float64))


def test_array_id_refuses_infinity() -> None:
    values = np.zeros((3, 3), dtype=np.float32)
    values[0, 0] = np.inf
    with pytest.raises(ValueError, match="inf"):
        array_id(values)


def test_chunking_does_not_change_the_id(monkeypatch: pytest.MonkeyPatch) -> None:
    from thermoscope.storage import identity

    values = np.random.default_rng(1).normal(20, 3, (37, 41)).astype(np.float32)
    values[5, 5] = np.nan
    whole = array_id(values)
    monkeypatch.setattr(identity, "CHUNK_VALUES", 100)
    assert array_id(values) == whole == reference_id(values)


@pytest.mark.parametrize("suffix", [".npy", ".tif", ".seq", ".csv"])
def test_hash_file_matches_frame_ids_of_what_the_reader_returns(
    tmp_path: Path, suffix: str
) -> None:
    frames = [planck_frame(seed=i, index=i) for i in range(4)]
    path = tmp_path / f"frames{suffix}"
    tio.save(frames if suffix != ".csv" else frames[0], path)
    with tio.open_path(path) as seq:
        expected = [frame_id(f) for f in seq]
    assert hash_file(path) == expected
    assert hash_file(path, workers=1) == expected


def test_hash_file_maps_npy_of_any_float_layout(tmp_path: Path) -> None:
    values = np.random.default_rng(2).normal(25, 4, (3, 6, 5))
    expected = [array_id(v) for v in values]
    for name, arr in {
        "le32": values.astype("<f4"),
        "be64": values.astype(">f8"),
        "fortran": np.asfortranarray(values.astype("<f4")),
    }.items():
        path = tmp_path / f"{name}.npy"
        np.save(path, arr)
        assert hash_file(path) == expected, name
    single = tmp_path / "single.npy"
    np.save(single, values[0].astype("<f4"))
    assert hash_file(single) == expected[:1]


def test_hash_file_refuses_what_the_reader_refuses(tmp_path: Path) -> None:
    counts = tmp_path / "counts.npy"
    np.save(counts, np.zeros((4, 4), dtype=np.uint16))
    with pytest.raises(ThermoscopeFormatError):
        hash_file(counts)
    infinite = tmp_path / "inf.npy"
    np.save(infinite, np.full((4, 4), np.inf, dtype=np.float32))
    with pytest.raises(ThermoscopeFormatError, match="inf"):
        hash_file(infinite)
    with pytest.raises(ThermoscopeFormatError):
        hash_file(tmp_path / "missing.npy")


def test_sequence_and_content_ids() -> None:
    frames = [planck_frame(seed=i) for i in range(3)]
    ids = [frame_id(f) for f in frames]
    assert content_id(frames[:1]) == ids[0]
    assert content_id(frames) == sequence_id(ids)
    assert sequence_id(ids) != sequence_id(ids[::-1])


def test_perceptual_hash_ignores_offset_and_gain_but_not_content() -> None:
    frame = planck_frame(48, 64)
    base = perceptual_hash(frame.celsius)
    assert base is not None
    assert len(base) == 16
    assert perceptual_hash(frame.celsius * 1.5 + 7.0) == base
    noisy = frame.celsius + np.random.default_rng(0).normal(0, 0.05, frame.shape)
    assert hamming(str(perceptual_hash(noisy)), base) <= 4
    other = perceptual_hash(np.rot90(frame.celsius, 2))
    assert hamming(str(other), base) > 10


def test_perceptual_hash_of_flat_or_empty_frames_is_none() -> None:
    assert perceptual_hash(np.full((8, 8), 21.5, dtype=np.float32)) is None
    assert perceptual_hash(np.full((8, 8), np.nan, dtype=np.float32)) is None
    partly = planck_frame().celsius.copy()
    partly[:3] = np.nan
    assert perceptual_hash(partly) is not None


@settings(max_examples=60, deadline=None)
@given(
    values=st.lists(st.integers(0, (1 << 63) - 1), min_size=0, max_size=60),
    flips=st.lists(st.integers(0, 62), max_size=6),
    distance=st.integers(0, 8),
)
def test_near_pairs_equals_brute_force(values: list[int], flips: list[int], distance: int) -> None:
    # add close relatives of the first value so that there is something to find
    if values:
        for n in range(1, len(flips) + 1):
            v = values[0]
            for bit in flips[:n]:
                v ^= 1 << bit
            values.append(v)
    hashes = np.array(values, dtype=np.uint64)
    found = {tuple(p) for p in near_pairs(hashes, distance).tolist()}
    expected = {
        (i, j)
        for i in range(len(values))
        for j in range(i + 1, len(values))
        if (values[i] ^ values[j]).bit_count() <= distance
    }
    assert found == expected
