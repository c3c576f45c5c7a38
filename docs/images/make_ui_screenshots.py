"""Regenerate ``docs/images/ui-annotate.png`` and ``docs/images/ui-review.png``, in Chromium.

Usage (from the repository root, with Debian Chromium installed)::

    .venv/bin/python docs/images/make_ui_screenshots.py [--out FOLDER]

Starts the annotation server (``create_app`` on a temporary SQLite database) with the demo
project of the synthetic PCB line (``thermoscope serve --demo``), then drives the browser UI:

- annotate: a 20-frame heating recording; the recipe's machine draft accepted, the processor
  U1 followed by a track (its box from the shipped recipe), the track's max / mean curve, the
  pointer over U1;
- review: a few boards annotated and submitted through the API (one where the person and the
  recipe disagree), the queue with the first board selected.
"""

from __future__ import annotations

import argparse
import socket
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

import httpx
import uvicorn
from playwright.sync_api import Page, sync_playwright

from thermoscope.pipeline.demo import example_recipe
from thermoscope.recipes import load_recipe
from thermoscope.server import Settings, create_app
from thermoscope.server.demo import seed_demo

HERE = Path(__file__).resolve().parent
CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
]
API = "/api/v1"
ADMIN, PASSWORD = "admin", "demo-password-1"


def start_server(data: Path) -> tuple[str, uvicorn.Server, threading.Thread]:
    """The server with the demo project, on a free loopback port."""
    settings = Settings(
        data_dir=data,
        admin_username=ADMIN,
        admin_password=PASSWORD,
        argon2_memory_kib=64,
        argon2_time_cost=1,
        fsync_blobs=False,
        sqlite_synchronous="NORMAL",
    )
    app = create_app(settings)
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    server = uvicorn.Server(uvicorn.Config(app, log_level="warning", ws="none"))
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    while not server.started:
        time.sleep(0.05)
    seed_demo(app.state.ctx, ADMIN, parts=24, sequences=3)
    return f"http://127.0.0.1:{sock.getsockname()[1]}", server, thread


def review_some_boards(api: httpx.Client, project_id: int) -> None:
    """Annotate and submit a few single boards as a person would (one disagreeing)."""
    frames = api.get(f"{API}/projects/{project_id}/frames", params={"limit": 100}).json()
    boards = [f for f in frames["items"] if f["frame_count"] == 1][:6]
    u1 = next(r for r in load_recipe(example_recipe("pcb")).regions if r.name == "U1")
    box = u1.to_region()
    for i, board in enumerate(boards):
        saved = api.get(f"{API}/frames/{board['id']}/annotations").json()
        item = saved["item"]
        now = "2025-01-31T12:00:00+00:00"
        human = {"author": ADMIN, "model": "", "model_version": "", "score": None, "created": now}
        draft = {"state": "draft", "reviewer": "", "comment": "", "updated": None}
        item["annotations"].append(
            {
                "id": f"{i:032x}",
                "label": "hot_spot",
                "frame": 0,
                "shape": {"type": "box", "x": box.x, "y": box.y}
                | {"width": box.width, "height": box.height},
                "attributes": {"severity": "minor"},
                "metadata": {},
                "provenance": human,
                "review": draft,
            }
        )
        verdict = "OK" if i % 2 else "NG"
        item["verdicts"] = [
            {
                "id": f"{i + 100:032x}",
                "frame": 0,
                "verdict": verdict,
                "reason": "" if verdict == "OK" else "U1 runs hot",
                "provenance": human,
                "review": draft,
            }
        ]
        put = api.put(
            f"{API}/frames/{board['id']}/annotations",
            json={"item": item, "revision": saved["revision"]},
        )
        put.raise_for_status()
        if i < 4:
            api.post(f"{API}/frames/{board['id']}/review", json={"action": "submit"})


def screen(page: Page, x: float, y: float) -> tuple[float, float]:
    """Page position of a frame position."""
    canvas = page.locator("canvas.thermogram")
    box = canvas.bounding_box()
    assert box is not None
    scale, pan_x, pan_y = canvas.evaluate(
        "c => [+c.dataset.scale, +c.dataset.panX, +c.dataset.panY]"
    )
    return box["x"] + pan_x + x * scale, box["y"] + pan_y + y * scale


def annotate_view(page: Page, url: str, api: httpx.Client, project_id: int, out: Path) -> None:
    """The heating recording with a track over U1 and its curve."""
    frames = api.get(f"{API}/projects/{project_id}/frames", params={"limit": 100}).json()
    recording = next(f for f in frames["items"] if f["frame_count"] > 1 and f["verdict"] == "NG")
    page.goto(f"{url}/#/f/{recording['id']}")
    page.wait_for_selector(".player")
    page.wait_for_timeout(1500)  # every frame loaded: the range covers the recording
    page.keyboard.press("End")
    page.keyboard.press("a")  # the recipe's draft on the last frame
    page.keyboard.press("Escape")
    page.keyboard.press("Home")
    page.keyboard.press("3")  # component
    page.keyboard.press("b")
    u1 = next(r for r in load_recipe(example_recipe("pcb")).regions if r.name == "U1")
    region: Any = u1.to_region()
    page.mouse.move(*screen(page, region.x, region.y))
    page.mouse.down()
    page.mouse.move(*screen(page, region.x + region.width, region.y + region.height), steps=5)
    page.mouse.up()
    page.keyboard.press("End")
    page.keyboard.press("k")
    page.keyboard.press("Home")
    for _ in range(12):
        page.keyboard.press("ArrowRight")
    page.keyboard.press("v")
    page.wait_for_timeout(600)
    page.mouse.move(*screen(page, region.x + 17.5, region.y + 15.5))
    page.wait_for_timeout(300)
    page.screenshot(path=str(out / "ui-annotate.png"))


def review_view(page: Page, url: str, project_id: int, out: Path) -> None:
    """The review queue with its first board selected and the pointer over it."""
    page.goto(f"{url}/#/p/{project_id}/review")
    page.wait_for_selector(".queue-entry.active")
    page.wait_for_selector(".review-actions")
    page.wait_for_timeout(400)
    page.mouse.move(*screen(page, 40, 36))
    page.wait_for_timeout(200)
    page.screenshot(path=str(out / "ui-review.png"))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=HERE, help="folder of the PNG files")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        url, server, thread = start_server(Path(tmp))
        api = httpx.Client(base_url=url, timeout=60)
        login = api.post(f"{API}/auth/login", json={"username": ADMIN, "password": PASSWORD})
        api.headers["X-CSRF-Token"] = login.json()["csrf_token"]
        project_id = api.get(f"{API}/projects").json()["items"][0]["id"]
        review_some_boards(api, project_id)
        with sync_playwright() as p:
            browser = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
            context = browser.new_context(viewport={"width": 1600, "height": 1000})
            context.request.post(
                f"{url}{API}/auth/login", data={"username": ADMIN, "password": PASSWORD}
            )
            page = context.new_page()
            annotate_view(page, url, api, project_id, args.out)
            review_view(page, url, project_id, args.out)
            browser.close()
        api.close()
        server.should_exit = True
        thread.join()
    print(f"wrote {args.out / 'ui-annotate.png'} and {args.out / 'ui-review.png'}")


if __name__ == "__main__":
    main()
