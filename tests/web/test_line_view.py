"""The line view in Debian Chromium against the real server: stations the edge reported (meta
and findings with each frame), each with its status, open drift alarms and recent NG parts."""

from __future__ import annotations

import io
import json
from collections.abc import Iterator
from typing import Any

import numpy as np
import pytest
from web_support import ADMIN, ADMIN_PASSWORD, API, LiveServer

sync_api = pytest.importorskip("playwright.sync_api", reason="Playwright is not installed")
Page = sync_api.Page


def _npy(seed: int) -> bytes:
    frame = (25.0 + np.random.default_rng(seed).normal(0, 1, (8, 8))).astype(np.float32)
    buffer = io.BytesIO()
    np.save(buffer, frame)
    return buffer.getvalue()


def _send(live: LiveServer, seed: int, station: str, part: int, q1: float) -> None:
    verdict = "NG" if q1 > 45.0 else "OK"
    findings = {
        "verdict": verdict,
        "findings": [
            {"rule": "Q1 rise", "region": "Q1", "value": q1, "limit": 45.0, "verdict": verdict}
        ],
    }
    meta = {"site": "plant-1", "line": "L1", "station": station, "part": part, "recipe": "pcb"}
    response = live.api.post(
        f"{API}/projects/{live.project_id}/frames",
        files={"file": (f"p{seed}.npy", _npy(seed), "application/octet-stream")},
        data={"findings": json.dumps(findings), "meta": json.dumps(meta)},
    )
    assert response.status_code in (200, 201), response.text


@pytest.fixture
def page(browser: Any, live: LiveServer) -> Iterator[Page]:
    """A logged-in page; the test fails on any script error."""
    context = browser.new_context(viewport={"width": 1280, "height": 800})
    page = context.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    answer = context.request.post(
        f"{live.url}{API}/auth/login", data={"username": ADMIN, "password": ADMIN_PASSWORD}
    )
    assert answer.ok, answer.text()
    yield page
    context.close()
    assert errors == []


@pytest.mark.slow
def test_line_view_shows_status_drift_and_recent_ng(page: Page, live: LiveServer) -> None:
    wobble = [0.3 * ((k * 7) % 5 - 2) for k in range(140)]
    for k in range(135):  # st3: steady, then drifting up from part 110
        _send(live, 100 + k, "st3", k, 30.0 + wobble[k] + (0.3 * (k - 110) if k > 110 else 0.0))
    _send(live, 900, "st3", 135, 46.5)  # an NG part
    for k in range(3):
        _send(live, 1000 + k, "st1", k, 30.0)
    page.goto(f"{live.url}/#/p/{live.project_id}/line")
    page.wait_for_function("() => document.querySelector('.line-view[data-loaded]') !== null")
    cards = page.locator("article.station")
    assert cards.count() == 2
    st3 = page.locator("article.station[data-station='st3']")
    st1 = page.locator("article.station[data-station='st1']")
    assert st3.locator(".badge").get_attribute("data-status") == "ng"
    assert st1.locator(".badge").get_attribute("data-status") == "ok"
    assert st3.locator("[data-field='parts']").inner_text() == "136"
    assert st3.locator("[data-field='ng']").inner_text() == "1"
    drift = st3.locator(".drift li[data-rule='Q1 rise']")
    assert drift.count() >= 1
    assert "drifting up" in drift.first.inner_text()
    assert st3.locator(".recent-ng a").inner_text() == "part 135"
    assert st1.locator(".drift-none").count() == 1
    page.locator("nav.tabs a[aria-current='page']").wait_for()
    assert page.locator("nav.tabs a[aria-current='page']").inner_text() == "Line"
    st3.locator(".recent-ng a").click()
    page.wait_for_function("() => location.hash.startsWith('#/f/')")
