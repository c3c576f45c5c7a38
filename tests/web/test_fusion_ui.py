"""The measure view's visual + thermal toggle in Chromium: a FLIR file that carries a visual photo
offers the thermogram, visual edges over it (MSX-style), a blend and picture in picture, each the
server's fused PNG of the frame; a frame without a photo offers no toggle."""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any

import numpy as np
import pytest
from web_support import ADMIN, ADMIN_PASSWORD, API, LiveServer

import thermoscope.io as tio
from sample_data import SKIP_REASON, samples_dir
from thermoscope.analysis.fusion_registration import fused_view, registration_for
from thermoscope.io.visual import embedded_visual

sync_api = pytest.importorskip("playwright.sync_api", reason="Playwright is not installed")
Page = sync_api.Page

#: The page is served under a strict policy (no inline script or style, images from the
#: server only); a violation is a console error and fails the test.
STRICT_CSP = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "connect-src 'self'; object-src 'none'; base-uri 'none'; form-action 'self'"
)
#: The one console error a working page prints: ``/auth/me``'s 401 before logging in.
EXPECTED_CONSOLE = re.compile(r"Failed to load resource: the server responded with a status of 401")


def _strict(route: Any) -> None:
    response = route.fetch()
    route.fulfill(
        response=response, headers={**response.headers, "content-security-policy": STRICT_CSP}
    )


@pytest.fixture
def page(browser: sync_api.Browser) -> Iterator[Page]:
    """A fresh page under ``STRICT_CSP``; the test fails on any script or console error."""
    context = browser.new_context(viewport={"width": 1440, "height": 900})
    context.route(re.compile(r"^http://127\.0\.0\.1:\d+/(index\.html)?$"), _strict)
    page = context.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    page.on(
        "console",
        lambda m: (
            errors.append(m.text)
            if m.type == "error" and not EXPECTED_CONSOLE.search(m.text)
            else None
        ),
    )
    yield page
    context.close()
    assert errors == []


def _open_measure(page: Page, live: LiveServer, fid: str) -> None:
    answer = page.context.request.post(
        f"{live.url}{API}/auth/login", data={"username": ADMIN, "password": ADMIN_PASSWORD}
    )
    assert answer.ok, answer.text()
    with page.expect_response(re.compile(rf"{API}/frames/{fid}/visual")):
        page.goto(f"{live.url}/#/f/{fid}/measure")
    page.wait_for_selector("canvas.thermogram[data-scale]", timeout=10000)


def _shown_pixels(page: Page) -> np.ndarray:
    """The RGB pixels of the fused image the page shows, read back through a canvas."""
    page.wait_for_function(
        "() => { const i = document.querySelector('img.fused-view');"
        " return i && !i.hidden && i.complete && i.naturalWidth > 0; }"
    )
    width, height, data = page.evaluate(
        """() => {
          const img = document.querySelector('img.fused-view');
          const c = document.createElement('canvas');
          c.width = img.naturalWidth;
          c.height = img.naturalHeight;
          const g = c.getContext('2d');
          g.drawImage(img, 0, 0);
          return [c.width, c.height, Array.from(g.getImageData(0, 0, c.width, c.height).data)];
        }"""
    )
    return np.array(data, dtype=np.uint8).reshape(height, width, 4)[..., :3]


def test_fusion_toggle_shows_the_servers_fused_views(page: Page, live: LiveServer) -> None:
    root = samples_dir()
    if root is None:
        pytest.skip(SKIP_REASON)
    path = root / "flir" / "flir_example.jpg"
    fid = live.ingest(path)["frame_id"]
    with tio.open_path(path) as seq:
        frame = seq[0]
    visual = embedded_visual(frame)
    assert visual is not None
    registration = registration_for(visual, (frame.width, frame.height))
    _open_measure(page, live, fid)
    toggle = page.locator("section.fusion select[name=fusion]")
    toggle.wait_for()
    options = toggle.locator("option").evaluate_all("os => os.map((o) => o.value)")
    assert options == ["thermal", "edges", "blend", "pip"]
    assert page.locator("img.fused-view").is_hidden()
    for mode in ("edges", "blend", "pip"):
        toggle.select_option(mode)
        shown = _shown_pixels(page)
        expected = fused_view(frame.celsius, visual, registration, mode=mode)  # type: ignore[arg-type]
        assert np.array_equal(shown, expected), mode
        assert page.locator("div.canvas-host").is_hidden()
    # another palette redraws the fused view with it
    page.select_option("select[name=palette]", "grey")
    page.wait_for_function(
        "() => document.querySelector('img.fused-view').src.includes('palette=grey')"
    )
    expected = fused_view(frame.celsius, visual, registration, mode="pip", palette="grey")
    assert np.array_equal(_shown_pixels(page), expected)
    # back to the thermogram: the canvas (and its spot meter) again
    toggle.select_option("thermal")
    assert page.locator("img.fused-view").is_hidden()
    assert page.locator("canvas.thermogram").is_visible()


def test_no_toggle_without_a_photo(page: Page, live: LiveServer, tmp_path: Any) -> None:
    path = tmp_path / "plain.npy"
    np.save(path, np.full((24, 32), 25.0, np.float32))
    fid = live.ingest(path)["frame_id"]
    _open_measure(page, live, fid)
    page.wait_for_function("() => document.querySelector('section.fusion').hidden")
    assert page.locator("section.fusion select").count() == 0
    assert page.locator("img.fused-view").is_hidden()
