"""Resumable uploads without the file in memory: completion streams the chunks through a
temporary file (hashed on the way) into the blob store; chunks nobody needs are swept."""

from __future__ import annotations

import asyncio
import hashlib
import io
import tracemalloc
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import numpy as np
import pytest
from fastapi.testclient import TestClient
from server_support import ADMIN_PASSWORD, API, make_settings
from sqlalchemy import update
from starlette.types import Message

from thermoscope.server import create_app
from thermoscope.server.app import build_context
from thermoscope.server.db.models import Project, Upload, User, now
from thermoscope.server.housekeeping import clean_uploads, sweep_chunks

#: A 40 MiB upload: 128 frames of 256 x 320 float32 noise, sent in 4 MiB chunks.
FRAMES, SHAPE, CHUNK = 128, (256, 320), 4 << 20
#: The most completing it may allocate (tracemalloc's peak over its baseline).
UPLOAD_MEMORY_BOUND = 8 << 20


@pytest.fixture
def client(tmp_path: Path) -> Iterator[TestClient]:
    """A logged-in administrator of a fresh app on SQLite."""
    with TestClient(create_app(make_settings(tmp_path))) as client:
        login = client.post(
            f"{API}/auth/login", json={"username": "admin", "password": ADMIN_PASSWORD}
        )
        client.headers["X-CSRF-Token"] = login.json()["csrf_token"]
        yield client


def _upload(client: TestClient, pid: int, data: bytes, sha256: str) -> str:
    """Open an upload of ``data`` announced with ``sha256`` and send every chunk."""
    opened = client.post(
        f"{API}/uploads",
        json={"project_id": pid, "filename": "long.NPY", "size": len(data), "sha256": sha256},
    )
    upload_id: str = opened.json()["upload_id"]
    for first in range(0, len(data), CHUNK):
        last = min(len(data), first + CHUNK) - 1
        sent = client.put(
            f"{API}/uploads/{upload_id}",
            content=data[first : last + 1],
            headers={"Content-Range": f"bytes {first}-{last}/{len(data)}"},
        )
        assert sent.status_code == 200, sent.text
    return upload_id


@pytest.mark.slow
def test_completing_an_upload_holds_a_piece_not_the_file(client: TestClient) -> None:
    stack = np.random.default_rng(3).normal(30.0, 5.0, (FRAMES, *SHAPE)).astype(np.float32)
    buffer = io.BytesIO()
    np.save(buffer, stack)
    data = buffer.getvalue()
    sha256 = hashlib.sha256(data).hexdigest()
    pid = client.post(f"{API}/projects", json={"name": "long"}).json()["id"]
    upload_id = _upload(client, pid, data, sha256)
    tracemalloc.start()
    try:
        baseline = tracemalloc.get_traced_memory()[0]
        done = client.post(f"{API}/uploads/{upload_id}/complete")
        peak = tracemalloc.get_traced_memory()[1] - baseline
    finally:
        tracemalloc.stop()
    assert done.status_code == 201, done.text
    assert done.json()["frame_count"] == FRAMES
    frame_id = done.json()["frame_id"]
    original = client.get(f"{API}/frames/{frame_id}/original").content
    assert hashlib.sha256(original).hexdigest() == sha256
    tail = client.get(f"{API}/frames/{frame_id}/original", headers={"Range": "bytes=-1000"})
    assert (tail.status_code, tail.content) == (206, data[-1000:])
    last = client.get(f"{API}/frames/{frame_id}/celsius", params={"frame": FRAMES - 1})
    np.testing.assert_array_equal(np.frombuffer(last.content, "<f4").reshape(SHAPE), stack[-1])
    assert peak < UPLOAD_MEMORY_BOUND, f"{peak} bytes allocated completing {len(data)} bytes"


def test_a_wrong_hash_found_while_streaming_drops_the_chunks(
    client: TestClient, tmp_path: Path
) -> None:
    data = np.zeros((3, *SHAPE), np.float32).tobytes()  # 3 chunks, not even a .npy
    pid = client.post(f"{API}/projects", json={"name": "wrong"}).json()["id"]
    upload_id = _upload(client, pid, data, "ab" * 32)
    refused = client.post(f"{API}/uploads/{upload_id}/complete")
    assert refused.status_code == 422
    assert "sha256" in refused.json()["detail"]
    assert client.get(f"{API}/uploads/{upload_id}").json()["offset"] == 0
    assert not list((tmp_path / "data" / "blobs").glob(f"uploads/{upload_id}/*"))


def test_a_chunk_without_credentials_is_refused_before_its_body_is_read(tmp_path: Path) -> None:
    """``PUT /uploads/{id}`` checks the caller before it reads a byte of the chunk."""
    app = create_app(make_settings(tmp_path))
    pieces, size = 64, 64 * 65536
    received = 0
    answers: list[Message] = []

    async def receive() -> Message:
        nonlocal received
        received += 1
        return {"type": "http.request", "body": b"x" * 65536, "more_body": received < pieces}

    async def send(message: Message) -> None:
        answers.append(message)

    path = f"{API}/uploads/{'a' * 32}"
    scope = {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": "PUT",
        "scheme": "http",
        "path": path,
        "raw_path": path.encode(),
        "root_path": "",
        "query_string": b"",
        "headers": [(b"content-range", f"bytes 0-{size - 1}/{size}".encode())],
        "client": ("127.0.0.1", 50000),
        "server": ("testserver", 80),
    }
    with TestClient(app):  # runs the lifespan: the app's context is built
        asyncio.run(app(scope, receive, send))
    assert answers[0]["status"] == 401
    assert received == 0


def test_chunks_left_behind_by_finished_uploads_are_swept(tmp_path: Path) -> None:
    """A chunk under an upload that is complete, expired or gone (a crash between the row's
    update and the chunk's deletion) is deleted; an open upload's chunks stay."""
    ctx = build_context(make_settings(tmp_path, worker_threads=0))
    ctx.db.migrate()
    with ctx.db.write() as session:
        user = User(username="u", password_hash="x", is_admin=False)
        project = Project(name="p", label_schema={})
        session.add_all([user, project])
        session.flush()
        for upload_id, state in (("a" * 32, "open"), ("b" * 32, "complete"), ("c" * 32, "expired")):
            session.add(
                Upload(
                    id=upload_id,
                    project_id=project.id,
                    user_id=user.id,
                    filename="f.npy",
                    size=10,
                    sha256="0" * 64,
                    offset=0,
                    chunks=[],
                    state=state,
                )
            )
    for upload_id in ("a" * 32, "b" * 32, "c" * 32, "d" * 32):
        ctx.blobs.put(f"uploads/{upload_id}/{0:020d}-0000", b"chunk")
    assert sweep_chunks(ctx) == 3
    assert list(ctx.blobs.keys("uploads/")) == [f"uploads/{'a' * 32}/{0:020d}-0000"]
    assert sweep_chunks(ctx) == 0
    # the housekeeping the workers run expires the stale open upload, then sweeps
    with ctx.db.write() as session:
        session.execute(
            update(Upload)
            .where(Upload.id == "a" * 32)
            .values(updated_at=now() - timedelta(days=30))
            .execution_options(synchronize_session=False)
        )
    assert clean_uploads(ctx) == 1
    assert list(ctx.blobs.keys("uploads/")) == []
    ctx.db.dispose()
