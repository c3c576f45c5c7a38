"""Browser fixtures for the web UI: Debian Chromium driven by Playwright, and a static server.

Every browser test skips with a clear reason when Chromium or Playwright is missing.
"""

from __future__ import annotations

import functools
import shutil
import threading
from collections.abc import Iterator
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
]
#: The UI's files, as the server serves them at ``/``.
STATIC = Path(__file__).resolve().parents[2] / "src" / "thermoscope" / "web" / "static"

sync_api = pytest.importorskip("playwright.sync_api", reason="Playwright is not installed")

if shutil.which(CHROMIUM) is None:
    pytest.skip(
        f"{CHROMIUM} is absent (Debian package chromium: apt-get install -y chromium)",
        allow_module_level=True,
    )


@pytest.fixture(scope="session")
def browser() -> Iterator[sync_api.Browser]:
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
def module_page(browser: sync_api.Browser, static_url: str) -> Iterator[sync_api.Page]:
    """A page on the static server's origin, failing the test on any script error."""
    context = browser.new_context()
    page = context.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    page.goto(f"{static_url}/blank")
    yield page
    context.close()
    assert errors == []
