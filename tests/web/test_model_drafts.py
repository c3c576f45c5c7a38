"""The annotate view shows a project model's learned findings as drafts beside the recipe's
(badge "learned <score>", the Model group of the findings) and lays the model's heat map over
the thermogram on request.

The model is trained on the server from a dataset version (golden statistics of OK frames,
unsigned because the test server has no signing key), activated by the project admin, and
pre-annotates the next ingested frame, which carries a hot spot.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from web_support import ADMIN, ADMIN_PASSWORD, API, LiveServer

sync_api = pytest.importorskip("playwright.sync_api", reason="Playwright is not installed")
Page = sync_api.Page

H, W = 48, 64
SPOT = (30, 44)  # row, column of the hot spot


def frame_file(folder: Path, name: str, seed: int, spot: float = 0.0) -> Path:
    """A 48x64 °C frame near 25 °C as .npy, with ``spot`` °C added around ``SPOT``."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:H, 0:W]
    celsius = 25.0 + rng.normal(0, 0.3, size=(H, W))
    celsius += spot * np.exp(-((yy - SPOT[0]) ** 2 + (xx - SPOT[1]) ** 2) / 8.0)
    path = folder / name
    np.save(path, celsius.astype(np.float32))
    return path


def wait_job(live: LiveServer, job_id: str) -> dict[str, Any]:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        job: dict[str, Any] = live.api.get(f"{API}/jobs/{job_id}").json()
        if job["state"] in ("done", "failed"):
            return job
        time.sleep(0.05)
    raise AssertionError(f"job {job_id} did not finish")


def set_verdict(live: LiveServer, fid: str, value: str) -> None:
    current = live.annotations(fid)
    verdict = {
        "id": "v1",
        "frame": None,
        "verdict": value,
        "reason": "hot spot" if value == "NG" else "",
        "provenance": {"author": ADMIN, "created": "2026-01-01T00:00:00+00:00"},
    }
    item = {**current["item"], "annotations": [], "verdicts": [verdict]}
    saved = live.api.put(
        f"{API}/frames/{fid}/annotations", json={"item": item, "revision": current["revision"]}
    )
    assert saved.status_code == 200, saved.text


@pytest.fixture
def page(browser: sync_api.Browser, live: LiveServer) -> Iterator[Page]:
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


def pixel(page: Page, col: float, row: float) -> list[int]:
    """The RGBA the thermogram canvas shows at frame position (col, row)."""
    value: list[int] = page.locator("canvas.thermogram").evaluate(
        """(c, [col, row]) => {
            const s = +c.dataset.scale, x = +c.dataset.panX, y = +c.dataset.panY;
            const dpr = window.devicePixelRatio || 1;
            const d = c.getContext("2d").getImageData(
                Math.floor((x + col * s) * dpr), Math.floor((y + row * s) * dpr), 1, 1).data;
            return [d[0], d[1], d[2], d[3]];
        }""",
        [col, row],
    )
    return value


def test_learned_findings_and_heat_map(page: Page, live: LiveServer, tmp_path: Path) -> None:
    pid = live.project_id
    for i in range(6):
        fid = live.ingest(frame_file(tmp_path, f"ok{i}.npy", 10 + i))["frame_id"]
        set_verdict(live, fid, "OK")
    fid = live.ingest(frame_file(tmp_path, "ng0.npy", 30, spot=8.0))["frame_id"]
    set_verdict(live, fid, "NG")
    made = live.api.post(f"{API}/projects/{pid}/dataset-versions", json={})
    vid = wait_job(live, made.json()["job_id"])["result"]["version_id"]
    trained = live.api.post(
        f"{API}/projects/{pid}/models/train", json={"version_id": vid, "name": "board"}
    )
    job = wait_job(live, trained.json()["job_id"])
    assert job["state"] == "done", job
    version = job["result"]["model_version"]
    assert live.api.post(f"{API}/projects/{pid}/models/{version}/activate").status_code == 200

    frame_id = live.ingest(frame_file(tmp_path, "next.npy", 40, spot=9.0))["frame_id"]
    detail = live.api.get(f"{API}/frames/{frame_id}").json()
    assert detail["heatmap"] is True
    score = detail["model_score"]
    assert score > 0.5

    page.goto(f"{live.url}/#/f/{frame_id}")
    canvas = f"canvas.thermogram[data-frame-id='{frame_id}']"
    page.wait_for_function(f'() => document.querySelector("{canvas}")?.dataset.scale > 0')
    page.wait_for_selector(".objects")
    # the learned finding: a draft labelled with its class, badge "learned <score>"
    page.wait_for_function(
        """() => [...document.querySelectorAll('.objects .object')].some((b) =>
            b.querySelector('.label-name')?.textContent === 'anomaly'
            && /^learned 0\\.\\d\\d$/.test(
                b.querySelector('.draft-kind.learned')?.textContent))"""
    )
    badge = page.locator(".objects .draft-kind.learned").text_content()
    assert badge == f"learned {score:.2f}"
    groups = page.locator(".findings .finding-group").all_inner_texts()
    assert any(g.startswith("Model") and "model:board" in g for g in groups), groups

    # the heat map overlay: off by default, on at the toggle, off again
    heat = live.api.get(f"{API}/frames/{frame_id}/heatmap")
    plane = np.frombuffer(heat.content, dtype="<f4").reshape(H, W)
    row, col = np.unravel_index(int(np.argmax(plane)), plane.shape)
    assert abs(row - SPOT[0]) <= 2
    assert abs(col - SPOT[1]) <= 2
    centre = (col + 0.5, row + 0.5)
    before = pixel(page, *centre)
    toggle = page.locator(".display input[name=heatmap]")
    assert not toggle.is_checked()
    toggle.check()
    page.wait_for_function(f'() => document.querySelector("{canvas}").dataset.heatmap === "on"')
    peak = page.locator("canvas.thermogram").get_attribute("data-heatmap-peak")
    assert peak == f"{col},{row}"
    tinted = pixel(page, *centre)
    assert tinted != before
    assert tinted[1] < before[1]  # magenta (no green) over the hottest, whitest pixel
    page.locator(".display input[name=heatmap]").uncheck()
    page.wait_for_function(f'() => document.querySelector("{canvas}").dataset.heatmap === "off"')
    assert pixel(page, *centre) == before

    # the review queue ordered by model uncertainty: the frames nearest the threshold first
    queue = live.api.get(
        f"{API}/projects/{pid}/review-queue", params={"stage": "annotate", "order": "uncertainty"}
    ).json()
    expected = [e["frame"]["id"] for e in queue["items"]]
    margins = [e["frame"]["model_margin"] for e in queue["items"]]
    assert margins[0] is not None
    page.goto(f"{live.url}/#/p/{pid}/review?stage=annotate&order=uncertainty")
    page.wait_for_function(
        """() => document.querySelector('.queue-order-choice.active')?.dataset.order
            === 'uncertainty' && document.querySelectorAll('.queue-entry').length > 0"""
    )
    shown = page.locator(".queue-entry").evaluate_all("els => els.map((e) => e.dataset.frameId)")
    assert shown == expected[: len(shown)]
