"""The browser UI says when a recording's last frame was cut short (and names a CSQ as such)."""

from __future__ import annotations

from pathlib import Path

import pytest
from web_support import ADMIN, ADMIN_PASSWORD, API, LiveServer

from synthetic_frames import planck_frame
from thermoscope.io.flir_writer import emit_csq

sync_api = pytest.importorskip("playwright.sync_api", reason="Playwright is not installed")


def test_annotate_view_shows_a_truncated_last_frame(
    browser: sync_api.Browser, live: LiveServer, tmp_path: Path
) -> None:
    whole = emit_csq([planck_frame(24, 32, seed=40 + i, index=i) for i in range(3)])
    path = tmp_path / "cut.csq"
    path.write_bytes(whole[:-700])
    frame = live.ingest(path)
    assert frame["issues"]
    context = browser.new_context(viewport={"width": 1280, "height": 800})
    errors: list[str] = []
    page = context.new_page()
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    answer = context.request.post(
        f"{live.url}{API}/auth/login", data={"username": ADMIN, "password": ADMIN_PASSWORD}
    )
    assert answer.ok, answer.text()
    page.goto(f"{live.url}/#/f/{frame['frame_id']}")
    notice = page.wait_for_selector(".file-issues")
    assert notice is not None
    text = notice.inner_text()
    context.close()
    assert text.startswith("flir-csq: ")
    assert "frame 2" in text
    assert frame["issues"][0] in text
    assert errors == []
