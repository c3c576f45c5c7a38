"""The registry's messages for files no reader takes, and the file modes of atomic writes."""

from __future__ import annotations

import os
import stat
from collections.abc import Iterator
from pathlib import Path

import cv2
import numpy as np
import pytest

import thermoscope.io as tio
from synthetic_frames import planck_frame
from thermoscope.datasets.store import DatasetStore
from thermoscope.io.registry import write_atomic


def _segment(marker: int, payload: bytes) -> bytes:
    return bytes([0xFF, marker]) + (len(payload) + 2).to_bytes(2, "big") + payload


def _radiometric_like_jpeg() -> bytes:
    """JFIF APP0, then a 7,000-byte APP1 'FLIR' segment, then the image data (as cameras write)."""
    app0 = _segment(0xE0, b"JFIF\x00\x01\x01\x00\x00\x01\x00\x01\x00\x00")
    app1 = _segment(0xE1, b"FLIR\x00\x01\x01\x02" + bytes(7000))
    return b"\xff\xd8" + app0 + app1 + _segment(0xDA, bytes(10)) + bytes(100) + b"\xff\xd9"


def test_a_jpeg_cut_in_its_header_is_reported_as_truncated(tmp_path: Path) -> None:
    path = tmp_path / "cut.jpg"
    path.write_bytes(_radiometric_like_jpeg()[:5000])
    with pytest.raises(tio.TruncatedFileError) as err:
        tio.open_path(path)
    message = str(err.value)
    assert message.startswith(f"{path}: truncated JPEG")
    assert "ends at byte 5000" in message
    assert "unknown signature" not in message
    assert "<bytes>" not in message


def test_a_jpeg_cut_right_after_its_start_marker_is_truncated() -> None:
    with pytest.raises(tio.TruncatedFileError, match="ends at byte 20"):
        tio.parse_bytes(_radiometric_like_jpeg()[:20])


def test_a_plain_jpeg_is_said_to_hold_no_radiometric_data() -> None:
    ok, encoded = cv2.imencode(".jpg", np.zeros((8, 8), np.uint8))
    assert ok
    with pytest.raises(tio.UnknownFormatError, match="JPEG without radiometric data"):
        tio.parse_bytes(encoded.tobytes())


def test_other_content_shows_its_signature_in_hex() -> None:
    with pytest.raises(tio.UnknownFormatError, match="unknown signature 50 4b 03 04"):
        tio.parse_bytes(b"PK\x03\x04" + bytes(40))


def test_sample_jpegs_cut_after_5000_bytes_say_truncated(samples: Path, tmp_path: Path) -> None:
    for source in sorted((samples / "flir").glob("*.jpg")):
        path = tmp_path / source.name
        path.write_bytes(source.read_bytes()[:5000])
        with pytest.raises(tio.TruncatedFileError) as err:
            tio.open_path(path)
        assert str(err.value).startswith(f"{path}: "), source.name


@pytest.fixture
def umask() -> Iterator[None]:
    """Restore the process umask after a test that sets it."""
    old = os.umask(0o022)
    os.umask(old)
    yield
    os.umask(old)


@pytest.mark.usefixtures("umask")
@pytest.mark.parametrize(("mask", "expected"), [(0o022, 0o644), (0o002, 0o664), (0o077, 0o600)])
def test_write_atomic_honours_the_umask(tmp_path: Path, mask: int, expected: int) -> None:
    os.umask(mask)
    path = write_atomic(tmp_path / "out" / "f.bin", b"data")
    assert stat.S_IMODE(path.stat().st_mode) == expected
    assert path.read_bytes() == b"data"
    assert [p.name for p in path.parent.iterdir()] == ["f.bin"]  # no temp file left


@pytest.mark.usefixtures("umask")
def test_write_atomic_keeps_the_mode_of_the_file_it_replaces(tmp_path: Path) -> None:
    os.umask(0o022)
    path = tmp_path / "f.bin"
    path.write_bytes(b"old")
    path.chmod(0o640)
    write_atomic(path, b"new")
    assert stat.S_IMODE(path.stat().st_mode) == 0o640
    assert path.read_bytes() == b"new"


def test_a_failed_write_leaves_no_temp_file(tmp_path: Path) -> None:
    with pytest.raises(TypeError):
        write_atomic(tmp_path / "f.bin", "text, not bytes")  # type: ignore[arg-type]
    assert list(tmp_path.iterdir()) == []


@pytest.mark.usefixtures("umask")
def test_dataset_files_honour_the_umask(tmp_path: Path) -> None:
    os.umask(0o027)
    store = DatasetStore.create(tmp_path / "ds")
    store.add_file(tio.save(planck_frame(), tmp_path / "f.fff"))
    store.commit(tag="v1")
    files = [p for p in (tmp_path / "ds").rglob("*") if p.is_file()]
    modes = {stat.S_IMODE(p.stat().st_mode) for p in files}
    assert modes <= {0o640, 0o444}, {p.name: oct(stat.S_IMODE(p.stat().st_mode)) for p in files}
    assert 0o640 in modes
