"""``ingest_concurrency``: a server process decodes, inspects and stores at most that many
uploads at once; further ones wait for a slot (and then succeed) instead of competing for the
CPU with the annotators' requests."""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Any

from fastapi.testclient import TestClient
from server_support import ADMIN_PASSWORD, API, ingest, make_settings, npy_file

from thermoscope.server import create_app
from thermoscope.server.context import ServerContext


def test_an_upload_waits_for_a_free_ingest_slot(tmp_path: Path, database_url: str) -> None:
    app = create_app(make_settings(tmp_path, database_url, ingest_concurrency=1))
    with TestClient(app) as client:
        login = client.post(
            f"{API}/auth/login", json={"username": "admin", "password": ADMIN_PASSWORD}
        )
        client.headers["X-CSRF-Token"] = login.json()["csrf_token"]
        pid = client.post(f"{API}/projects", json={"name": "line-1"}).json()["id"]
        ctx: ServerContext = app.state.ctx
        answers: list[Any] = []
        upload = threading.Thread(target=lambda: answers.append(ingest(client, pid, npy_file(3))))
        assert ctx.ingest_slots.acquire(blocking=False)  # the one slot is taken
        try:
            upload.start()
            upload.join(timeout=1.0)
            assert upload.is_alive()  # still waiting for the slot
            assert client.get(f"{API}/projects/{pid}/frames").json()["total"] == 0
        finally:
            ctx.ingest_slots.release()
        upload.join(timeout=60)
        assert [answer.status_code for answer in answers] == [201]
        assert client.get(f"{API}/projects/{pid}/frames").json()["total"] == 1
