"""A real annotation server for the edge tests: uvicorn serving ``create_app`` in a thread on a
fixed loopback port, stoppable and restartable on the same port and data (a server outage), with
an ``edge`` user (annotator in one project) and an API token with only the ``ingest`` scope."""

from __future__ import annotations

import io
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import uvicorn

from thermoscope.server import Settings, create_app
from thermoscope.storage.identity import array_id

ADMIN_PASSWORD = "admin-password-1"
EDGE_PASSWORD = "edge-password-1"
API = "/api/v1"


def npy_frame(seed: int, shape: tuple[int, int] = (24, 32)) -> tuple[bytes, str]:
    """A small float32 °C frame as ``.npy`` bytes and its content id (seeds differ: contents
    differ)."""
    rng = np.random.default_rng(seed)
    celsius = (25.0 + rng.normal(0, 2, size=shape)).astype(np.float32)
    buffer = io.BytesIO()
    np.save(buffer, celsius)
    return buffer.getvalue(), array_id(celsius)


@dataclass
class LiveServer:
    """The server on ``port`` with its data under ``root``; ``start`` / ``stop`` at will."""

    root: Path
    port: int
    settings: dict[str, Any] = field(default_factory=dict)  # more Settings fields
    _server: uvicorn.Server | None = field(default=None, init=False)
    _thread: threading.Thread | None = field(default=None, init=False)

    @property
    def url(self) -> str:
        """The base URL."""
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> None:
        """Serve (same database and blobs as before); returns once it answers."""
        settings = Settings(
            data_dir=self.root,
            admin_password=ADMIN_PASSWORD,
            argon2_memory_kib=64,
            argon2_time_cost=1,
            fsync_blobs=False,
            sqlite_synchronous="NORMAL",
            worker_threads=1,
            **self.settings,
        )
        config = uvicorn.Config(
            create_app(settings), host="127.0.0.1", port=self.port, log_level="warning", ws="none"
        )
        self._server = uvicorn.Server(config)
        self._thread = threading.Thread(target=self._server.run, daemon=True)
        self._thread.start()
        deadline = time.monotonic() + 20
        while not self._server.started:
            if time.monotonic() > deadline or not self._thread.is_alive():
                raise RuntimeError(f"the server did not start on port {self.port}")
            time.sleep(0.02)

    def stop(self) -> None:
        """Stop serving (connections are refused until ``start``)."""
        if self._server is not None and self._thread is not None:
            self._server.should_exit = True
            self._thread.join(timeout=20)
            self._server = self._thread = None

    @contextmanager
    def admin(self) -> Iterator[httpx.Client]:
        """A client logged in as the administrator (CSRF token set)."""
        with httpx.Client(base_url=self.url + API, timeout=30) as client:
            answer = client.post(
                "/auth/login", json={"username": "admin", "password": ADMIN_PASSWORD}
            )
            answer.raise_for_status()
            client.headers["X-CSRF-Token"] = answer.json()["csrf_token"]
            yield client

    def edge_token(self, project_id: int) -> str:
        """A new ``edge`` user, annotator in ``project_id``, and an API token of it with the
        ``ingest`` scope only."""
        with self.admin() as admin:
            admin.post(
                "/users", json={"username": "edge", "password": EDGE_PASSWORD}
            ).raise_for_status()
            admin.put(
                f"/projects/{project_id}/members/edge", json={"role": "annotator"}
            ).raise_for_status()
        with httpx.Client(base_url=self.url + API, timeout=30) as edge:
            answer = edge.post("/auth/login", json={"username": "edge", "password": EDGE_PASSWORD})
            answer.raise_for_status()
            edge.headers["X-CSRF-Token"] = answer.json()["csrf_token"]
            token = edge.post(
                "/tokens", json={"name": "edge-agent", "scopes": ["ingest"], "expires_in_s": 3600}
            )
            token.raise_for_status()
            return str(token.json()["token"])

    def project(self, name: str = "line-1") -> int:
        """A new project's id."""
        with self.admin() as admin:
            answer = admin.post("/projects", json={"name": name})
            answer.raise_for_status()
            return int(answer.json()["id"])

    def frames(self, project_id: int) -> list[dict[str, object]]:
        """Every frame of a project (details: content hash, verdict, findings, meta)."""
        with self.admin() as admin:
            listed = admin.get(f"/projects/{project_id}/frames", params={"limit": 500})
            listed.raise_for_status()
            return [
                admin.get(f"/frames/{item['id']}").raise_for_status().json()
                for item in listed.json()["items"]
            ]
