"""Storage below the server and the edge: opening a blob store by URL, where a part's °C lie."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from thermoscope.storage import BlobNotFoundError, LocalBlobStore, open_blob_store
from thermoscope.storage.identity import (
    array_id,
    celsius_key,
    celsius_prefix,
    frame_key,
    put_celsius,
    read_celsius,
)


@pytest.mark.parametrize("scheme", ["", "file://"])
def test_a_folder_url_opens_a_local_store(tmp_path: Path, scheme: str) -> None:
    store = open_blob_store(f"{scheme}{tmp_path / 'blobs'}", fsync=False)
    assert isinstance(store, LocalBlobStore)
    assert store.root == tmp_path / "blobs"
    assert (store.root.stat().st_mode & 0o777) == 0o700


def test_celsius_blobs_round_trip_under_the_contents_prefix(tmp_path: Path) -> None:
    store = LocalBlobStore(tmp_path, fsync=False)
    celsius = np.random.default_rng(2).normal(30.0, 4.0, (6, 9)).astype(">f4")
    content = array_id(celsius)
    prefix = celsius_prefix(content)
    assert prefix == f"celsius/{content[:2]}/{content}"
    put_celsius(store, prefix, 3, celsius)
    assert celsius_key(prefix, 3) in list(store.keys(prefix))
    back = np.frombuffer(read_celsius(store, prefix, 3), dtype="<f4").reshape(6, 9)
    np.testing.assert_array_equal(back, celsius)
    with pytest.raises(BlobNotFoundError):
        read_celsius(store, prefix, 4)


def test_frame_keys_follow_project_and_content() -> None:
    content = "ab" * 32
    assert frame_key(1, content) == frame_key(1, content)
    assert frame_key(1, content) != frame_key(2, content)
    assert len(frame_key(1, content)) == 32
