"""``models.release_zip``: a packed folder unpacks to the same files; untrusted zips (bombs by
count and by size, path traversal, garbage) are refused with ``ReleaseError``, never more."""

from __future__ import annotations

import contextlib
import io
import tempfile
import zipfile
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from thermoscope.models.errors import ReleaseError
from thermoscope.models.release_zip import MAX_MEMBERS, pack_release, unpack_release


def zip_of(files: dict[str, bytes], *, compression: int = zipfile.ZIP_STORED) -> bytes:
    """Zip bytes holding ``files`` under their names, as given."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", compression=compression) as out:
        for name, data in files.items():
            out.writestr(name, data)
    return buffer.getvalue()


def files_under(folder: Path) -> dict[str, bytes]:
    """Every file under ``folder`` by its relative POSIX name."""
    return {
        p.relative_to(folder).as_posix(): p.read_bytes() for p in folder.rglob("*") if p.is_file()
    }


def test_pack_is_deterministic_and_unpacks_to_the_same_files(tmp_path: Path) -> None:
    source = tmp_path / "release"
    (source / "extra").mkdir(parents=True)
    (source / "manifest.json").write_bytes(b"{}")
    (source / "model.onnx").write_bytes(bytes(range(256)) * 10)
    (source / "extra" / "index.npz").write_bytes(b"npz")
    first = pack_release(source)
    assert pack_release(source) == first
    unpack_release(first, tmp_path / "out", limit=10_000)
    assert files_under(tmp_path / "out") == files_under(source)


def test_one_top_level_folder_is_dropped(tmp_path: Path) -> None:
    unpack_release(zip_of({"r/manifest.json": b"{}", "r/a/b": b"x"}), tmp_path, limit=100)
    assert files_under(tmp_path) == {"manifest.json": b"{}", "a/b": b"x"}


@pytest.mark.parametrize("name", ["../manifest.json", "/etc/passwd", "a/../../b", "a\\..\\b"])
def test_traversal_is_refused(tmp_path: Path, name: str) -> None:
    target = tmp_path / "out"
    with pytest.raises(ReleaseError, match="unsafe file name"):
        unpack_release(zip_of({"manifest.json": b"{}", name: b"x"}), target, limit=100)
    assert not target.exists()  # refused before anything was written
    assert [p.name for p in tmp_path.iterdir()] == []


def test_bomb_by_count_is_refused(tmp_path: Path) -> None:
    many = {f"f{i}": b"" for i in range(MAX_MEMBERS + 1)}
    with pytest.raises(ReleaseError, match=f"more than {MAX_MEMBERS}"):
        unpack_release(zip_of(many), tmp_path / "out", limit=100)


def test_bomb_by_size_is_refused_even_when_the_declared_size_lies(tmp_path: Path) -> None:
    bomb = zip_of({"manifest.json": bytes(1_000_000)}, compression=zipfile.ZIP_DEFLATED)
    assert len(bomb) < 5_000
    with pytest.raises(ReleaseError, match="more than 1000 bytes"):
        unpack_release(bomb, tmp_path / "a", limit=1000)
    # the central directory claims 10 bytes; the stream holds a million
    lying = bytearray(bomb)
    directory = lying.rindex(b"PK\x01\x02")
    lying[directory + 24 : directory + 28] = (10).to_bytes(4, "little")
    with pytest.raises(ReleaseError) as refused:
        unpack_release(bytes(lying), tmp_path / "b", limit=1000)
    assert "more than 1000 bytes" in str(refused.value) or "cannot be unpacked" in str(
        refused.value
    )
    assert sum(len(v) for v in files_under(tmp_path / "b").values()) <= 1000


def test_not_a_zip_is_refused(tmp_path: Path) -> None:
    with pytest.raises(ReleaseError, match="not a zip of a release folder"):
        unpack_release(b"PK not really", tmp_path, limit=100)


@settings(max_examples=150, deadline=None)
@given(
    data=st.one_of(
        st.binary(max_size=600),
        # a valid zip with bytes flipped, cut or spliced
        st.tuples(
            st.dictionaries(st.text(min_size=1, max_size=12), st.binary(max_size=64), max_size=4),
            st.integers(min_value=0, max_value=400),
            st.binary(min_size=1, max_size=8),
        ).map(lambda t: _damaged(zip_of(t[0], compression=zipfile.ZIP_DEFLATED), t[1], t[2])),
    )
)
def test_garbage_raises_only_release_error_and_stays_inside(data: bytes) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        target = root / "inside" / "out"
        with contextlib.suppress(ReleaseError):  # anything else fails the test
            unpack_release(data, target, limit=2000)
        outside = [p for p in root.rglob("*") if not p.is_relative_to(root / "inside")]
        assert outside == []
        assert sum(len(v) for v in files_under(root).values()) <= 2000


def _damaged(data: bytes, at: int, patch: bytes) -> bytes:
    """``data`` with ``patch`` written over it at ``at`` (wrapped to its length)."""
    at %= max(len(data), 1)
    return data[:at] + patch + data[at + len(patch) :]
