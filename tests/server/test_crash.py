"""Crash safety: a real server process (uvicorn) killed with SIGKILL in the middle of ingest.

While one client streams a large resumable upload and another ingests small frames, the
server is killed. After a restart on the same data folder: every acknowledged frame is there
with all its data, the upload resumes from an offset at or past its last acknowledged chunk,
completes, and no frame row points at missing data (no half frame).
"""

from __future__ import annotations

import gzip
import hashlib
import io
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx2 as httpx
import numpy as np
import pytest
from server_support import ADMIN_PASSWORD, API, npy_file
from sqlalchemy import create_engine, text

import thermoscope.io as tio
from thermoscope.datasets.synthetic import simulate_run

CHUNK = 1024 * 1024


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


class ServerProcess:
    """``uvicorn --factory thermoscope.server.app:app_from_env`` on a data folder."""

    def __init__(self, data_dir: Path) -> None:
        self.data_dir = data_dir
        self.process: subprocess.Popen[bytes] | None = None
        self.url = ""
        self.log = (data_dir.parent / "server.log").open("ab")

    def start(self) -> None:
        port = _free_port()
        env = {
            **os.environ,
            "THERMOSCOPE_DATA_DIR": str(self.data_dir),
            "THERMOSCOPE_ADMIN_PASSWORD": ADMIN_PASSWORD,
            "THERMOSCOPE_ARGON2_MEMORY_KIB": "64",
            "THERMOSCOPE_ARGON2_TIME_COST": "1",
        }
        env.pop("THERMOSCOPE_CONFIG", None)
        env.pop("THERMOSCOPE_DATABASE_URL", None)
        env.pop("THERMOSCOPE_BLOB_URL", None)
        self.process = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "uvicorn",
                "--factory",
                "thermoscope.server.app:app_from_env",
                "--host",
                "127.0.0.1",
                "--port",
                str(port),
                "--log-level",
                "warning",
            ],
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=self.log,
        )
        self.url = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise AssertionError("the server exited at start; see server.log")
            try:
                if httpx.get(f"{self.url}{API}/health", timeout=1).status_code == 200:
                    return
            except httpx.TransportError:
                time.sleep(0.1)
        raise AssertionError("the server did not answer within 30 s")

    def kill(self) -> None:
        assert self.process is not None
        os.kill(self.process.pid, signal.SIGKILL)
        self.process.wait()

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        self.log.close()


@pytest.fixture
def server_process(tmp_path: Path) -> Iterator[ServerProcess]:
    """A server process on a fresh data folder (stopped at the end)."""
    data = tmp_path / "data"
    data.mkdir()
    server = ServerProcess(data)
    server.start()
    try:
        yield server
    finally:
        server.stop()


def _token(url: str) -> dict[str, str]:
    client = httpx.Client(base_url=url)
    login = client.post(f"{API}/auth/login", json={"username": "admin", "password": ADMIN_PASSWORD})
    csrf = {"X-CSRF-Token": login.json()["csrf_token"]}
    made = client.post(
        f"{API}/tokens", json={"name": "crash", "scopes": ["read", "ingest", "admin"]}, headers=csrf
    )
    client.close()
    return {"Authorization": f"Bearer {made.json()['token']}"}


def _large_file() -> bytes:
    part = next(
        iter(
            simulate_run(
                "pcb", parts=1, defect_rate=0, rng=np.random.default_rng(0), sequence=True, scale=4
            )
        )
    )
    writer = next(w for w in tio.writers() if w.name == "flir-seq")
    return writer.emit(list(part.frames))


def test_kill_mid_ingest_loses_nothing_acknowledged(server_process: ServerProcess) -> None:
    auth = _token(server_process.url)
    client = httpx.Client(base_url=server_process.url, headers=auth, timeout=30)
    pid = client.post(f"{API}/projects", json={"name": "crash"}).json()["id"]
    data = _large_file()
    assert len(data) > 10 * 1024 * 1024
    sha = hashlib.sha256(data).hexdigest()
    upload = client.post(
        f"{API}/uploads",
        json={"project_id": pid, "filename": "big.seq", "size": len(data), "sha256": sha},
    ).json()
    uid = upload["upload_id"]
    acked_offset = 0
    acked_frames: dict[str, bytes] = {}
    stop = threading.Event()
    ingesting = threading.Event()

    def stream() -> None:
        nonlocal acked_offset
        ingesting.wait(30)  # both kinds of ingest are in flight when the kill comes
        with httpx.Client(base_url=server_process.url, headers=auth, timeout=30) as uploader:
            offset = 0
            while offset < len(data) and not stop.is_set():
                last = min(offset + CHUNK, len(data)) - 1
                try:
                    response = uploader.put(
                        f"{API}/uploads/{uid}",
                        content=data[offset : last + 1],
                        headers={"Content-Range": f"bytes {offset}-{last}/{len(data)}"},
                    )
                except httpx.TransportError:
                    return
                assert response.status_code == 200, response.text
                offset = acked_offset = response.json()["offset"]

    def small_frames() -> None:
        with httpx.Client(base_url=server_process.url, headers=auth, timeout=30) as ingester:
            seed = 0
            while not stop.is_set():
                body = npy_file(1000 + seed, shape=(64, 80))
                seed += 1
                try:
                    response = ingester.post(
                        f"{API}/projects/{pid}/frames", files={"file": ("f.npy", body)}
                    )
                except httpx.TransportError:
                    return
                assert response.status_code == 201, response.text
                acked_frames[response.json()["frame_id"]] = body
                ingesting.set()

    threads = [threading.Thread(target=stream), threading.Thread(target=small_frames)]
    for thread in threads:
        thread.start()
    deadline = time.monotonic() + 60
    while acked_offset < len(data) // 3 and time.monotonic() < deadline:
        time.sleep(0.01)
    server_process.kill()
    stop.set()
    for thread in threads:
        thread.join(30)
    assert 0 < acked_offset < len(data), "the kill came before or after the upload"
    assert acked_frames, "no small frame was acknowledged before the kill"

    client.close()
    server_process.start()
    client = httpx.Client(base_url=server_process.url, headers=auth, timeout=60)
    for fid, body in acked_frames.items():
        served = client.get(f"{API}/frames/{fid}/celsius")
        assert served.status_code == 200, f"acknowledged frame {fid} lost"
        expected = np.load(io.BytesIO(body))
        np.testing.assert_array_equal(
            np.frombuffer(served.content, "<f4").reshape(64, 80), expected
        )
    state = client.get(f"{API}/uploads/{uid}").json()
    assert state["offset"] >= acked_offset, "an acknowledged chunk was lost"
    offset = state["offset"]
    while offset < len(data):
        last = min(offset + CHUNK, len(data)) - 1
        offset = client.put(
            f"{API}/uploads/{uid}",
            content=data[offset : last + 1],
            headers={"Content-Range": f"bytes {offset}-{last}/{len(data)}"},
        ).json()["offset"]
    done = client.post(f"{API}/uploads/{uid}/complete")
    assert done.status_code == 201, done.text
    assert done.json()["frame_count"] == 20
    fid = done.json()["frame_id"]
    frames = list(tio.parse_bytes(data, ".seq"))
    last = np.frombuffer(client.get(f"{API}/frames/{fid}/celsius?frame=19").content, "<f4")
    np.testing.assert_array_equal(last.reshape(480, 640), frames[19].celsius)
    _assert_no_half_frame(server_process.data_dir, client, pid)
    client.close()


def _assert_no_half_frame(data_dir: Path, client: Any, pid: int) -> None:
    """Every frame row has its original and every frame's °C, whole."""
    engine = create_engine(f"sqlite:///{data_dir / 'thermoscope.db'}")
    with engine.connect() as conn:
        rows = conn.execute(
            text("SELECT id, celsius_prefix, original_key, frame_count, width, height FROM frames")
        ).all()
    engine.dispose()
    blobs = data_dir / "blobs"
    for fid, prefix, original, count, width, height in rows:
        assert (blobs / original).is_file(), f"frame {fid}: original missing"
        for index in range(count):
            data = gzip.decompress((blobs / prefix / f"{index}.f32.gz").read_bytes())
            assert len(data) == width * height * 4, f"frame {fid}: °C {index} partial"
    listed = client.get(f"{API}/projects/{pid}/frames?limit=500").json()
    assert listed["total"] == len(rows)
