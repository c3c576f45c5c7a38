"""Browser fixtures for the web UI: Debian Chromium driven by Playwright, the real server
(``create_app`` on a temporary SQLite database, served by uvicorn in a thread on a free port)
and a plain static server for the JavaScript modules.

Every browser test skips with a clear reason when Chromium or Playwright is missing.
"""

from __future__ import annotations

import functools
import shutil
import socket
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pytest
import uvicorn

from thermoscope.server import Settings, create_app

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
]
ADMIN = "admin"
ADMIN_PASSWORD = "admin-password-1"
API = "/api/v1"
#: The label schema of the test project (the server adds the labels of pre-annotations).
LABEL_SCHEMA = {
    "labels": [
        {
            "name": "hot_spot",
            "description": "a component running too hot",
            "attributes": [
                {"name": "severity", "type": "enum", "values": ["minor", "major"]}
                | {"default": "minor", "required": True}
            ],
        },
        {"name": "cold_joint", "attributes": [{"name": "note", "type": "text"}]},
        {"name": "part", "description": "a part followed across frames"},
    ]
}
#: The UI's files, as the server serves them at ``/``.
STATIC = Path(__file__).resolve().parents[2] / "src" / "thermoscope" / "web" / "static"


@pytest.fixture(scope="session")
def browser() -> Iterator[Any]:
    """Debian Chromium under Playwright (skips when either is missing)."""
    sync_api = pytest.importorskip("playwright.sync_api", reason="Playwright is not installed")
    if shutil.which(CHROMIUM) is None:
        pytest.skip(f"{CHROMIUM} is absent (Debian package chromium: apt-get install -y chromium)")
    with sync_api.sync_playwright() as p:
        launched = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield launched
        launched.close()


class _StaticHandler(SimpleHTTPRequestHandler):
    """The static folder, plus an empty page at ``/blank`` to import modules from."""

    def do_GET(self) -> None:
        if self.path == "/blank":
            body = b"<!doctype html><title>blank</title>"
            self.send_response(200)
            self.send_header("Content-Type", "text/html")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)
            return
        super().do_GET()

    def log_message(self, format: str, *args: object) -> None:
        pass


@pytest.fixture(scope="session")
def static_url() -> Iterator[str]:
    """Base URL of a plain HTTP server of the static folder (for the JavaScript modules)."""
    handler = functools.partial(_StaticHandler, directory=str(STATIC))
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


@pytest.fixture
def module_page(browser: Any, static_url: str) -> Iterator[Any]:
    """A page on the static server's origin, failing the test on any script error."""
    context = browser.new_context()
    page = context.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    page.goto(f"{static_url}/blank")
    yield page
    context.close()
    assert errors == []


@dataclass
class LiveServer:
    """The real server on a loopback port, an administrator's API client and a project."""

    url: str
    api: httpx.Client
    project_id: int

    def ingest(self, path: Path, **fields: str) -> dict[str, Any]:
        """Upload a radiometric file to the project through the API (idempotent)."""
        response = self.api.post(
            f"{API}/projects/{self.project_id}/frames",
            files={"file": (path.name, path.read_bytes(), "application/octet-stream")},
            data=fields,
        )
        assert response.status_code in (200, 201), response.text
        frame: dict[str, Any] = response.json()
        return frame

    def annotations(self, frame_id: str) -> dict[str, Any]:
        """The frame's saved item and revision."""
        response = self.api.get(f"{API}/frames/{frame_id}/annotations")
        assert response.status_code == 200, response.text
        body: dict[str, Any] = response.json()
        return body

    def celsius(self, frame_id: str, index: int = 0) -> Any:
        """The °C the server serves for one frame, as a (H, W) float32 array."""
        response = self.api.get(f"{API}/frames/{frame_id}/celsius", params={"frame": index})
        assert response.status_code == 200, response.text
        shape = int(response.headers["X-Height"]), int(response.headers["X-Width"])
        return np.frombuffer(response.content, dtype="<f4").reshape(shape)


@pytest.fixture(scope="module")
def live(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    """``create_app`` on a fresh SQLite database in a temp folder, served by uvicorn."""
    settings = Settings(
        data_dir=tmp_path_factory.mktemp("server"),
        admin_username=ADMIN,
        admin_password=ADMIN_PASSWORD,
        argon2_memory_kib=64,
        argon2_time_cost=1,
        fsync_blobs=False,
        sqlite_synchronous="NORMAL",
        worker_threads=1,
    )
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    config = uvicorn.Config(create_app(settings), log_level="warning", ws="none", lifespan="on")
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not server.started:
        assert thread.is_alive(), "the server stopped while starting"
        assert time.monotonic() < deadline, "the server did not start within 30 s"
        time.sleep(0.02)
    url = f"http://127.0.0.1:{port}"
    api = httpx.Client(base_url=url, timeout=30)
    login = api.post(f"{API}/auth/login", json={"username": ADMIN, "password": ADMIN_PASSWORD})
    assert login.status_code == 200, login.text
    api.headers["X-CSRF-Token"] = login.json()["csrf_token"]
    created = api.post(f"{API}/projects", json={"name": "Line 3", "label_schema": LABEL_SCHEMA})
    assert created.status_code == 201, created.text
    try:
        yield LiveServer(url, api, created.json()["id"])
    finally:
        api.close()
        server.should_exit = True
        thread.join(timeout=30)
        sock.close()
