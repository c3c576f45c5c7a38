"""Browser fixes of issue 9, against the real server in Debian Chromium: the °C readout follows
the frame under a still pointer, sequences open where there is something to see (in the editor
and in the review preview), the review queue keeps "to review" and "to annotate" apart and
offers Accept only on submitted frames, machine drafts are shown apart from people's work, an
edit conflict merges instead of discarding, number keys pick the next shape's label, findings
say which side their limit is on, and the curve's axis label never runs into a tick label.
"""

from __future__ import annotations

import json
import re
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from test_ui import drag, hover_pixel, open_frame, open_page, saved, screen_point
from web_support import API, LiveServer

sync_api = pytest.importorskip("playwright.sync_api", reason="Playwright is not installed")
Page = sync_api.Page

FRAMES = 6
HEIGHT, WIDTH = 120, 160


@pytest.fixture
def page(browser: sync_api.Browser, live: LiveServer) -> Iterator[Page]:
    """A logged-in page; the test fails on any script error."""
    page = open_page(browser, live)
    yield page
    errors = page.errors  # type: ignore[attr-defined]
    page.context.close()
    assert errors == []


def heating(seed: int) -> np.ndarray:
    """A (FRAMES, HEIGHT, WIDTH) °C sequence that warms by 3 °C a frame (the last is hottest)."""
    rng = np.random.default_rng(seed)
    y, x = np.mgrid[0:HEIGHT, 0:WIDTH].astype(np.float32)
    scene = 20.0 + x / 16.0 + y / 32.0 + rng.normal(0, 0.05, (HEIGHT, WIDTH))
    return np.stack([scene + 3.0 * i for i in range(FRAMES)]).astype(np.float32)


def ingest_array(
    live: LiveServer, tmp_path: Path, name: str, celsius: np.ndarray, **fields: str
) -> dict[str, Any]:
    """Ingest a °C array (a frame, or a sequence when 3-D) as a ``.npy`` file."""
    path = tmp_path / f"{name}.npy"
    np.save(path, celsius)
    return live.ingest(path, **fields)


def edge_ng(frame: int | None = None) -> dict[str, Any]:
    """An edge inspection that says NG, with one hot spot (a machine draft) on ``frame``."""
    finding = {
        "rule": "overheat",
        "value": 41.5,
        "limit": 40.0,
        "verdict": "NG",
        "x": 120,
        "y": 30,
        "explanation": "hot spot above 40 °C",
    }
    return {"source": "cam-1", "frame": frame, "verdict": "NG", "model": "edge-net"} | {
        "findings": [finding]
    }


def readout(page: Page) -> float | None:
    """The °C the status bar shows, or None for a dash."""
    match = re.fullmatch(r"(-?\d+\.\d\d) °C", page.inner_text(".cursor-temp"))
    return float(match.group(1)) if match else None


def frame_shown(page: Page) -> int:
    """The index of the frame the player shows (0-based)."""
    match = re.match(r"(\d+) / \d+", page.inner_text(".frame-label"))
    assert match, page.inner_text(".frame-label")
    return int(match.group(1)) - 1


def wait_readout(page: Page, celsius: np.ndarray, col: int, row: int) -> None:
    """Wait until the readout shows the pixel's °C on the frame shown (fails after 5 s)."""
    deadline = time.monotonic() + 5
    while True:
        index = frame_shown(page)
        shown = readout(page)
        if shown is not None and abs(shown - float(celsius[index, row, col])) < 0.006:
            return
        assert time.monotonic() < deadline, (index, shown, celsius[:, row, col])
        page.wait_for_timeout(50)


# ---- the readout follows the frame ---------------------------------------------------------


def test_readout_follows_the_frame_under_a_still_pointer(
    page: Page, live: LiveServer, tmp_path: Path
) -> None:
    celsius = heating(1)
    fid = ingest_array(live, tmp_path, "readout", celsius)["frame_id"]
    page.goto(f"{live.url}/#/f/{fid}?frame=0")
    page.wait_for_function(
        "() => document.querySelector("
        f"\"canvas.thermogram[data-frame-id='{fid}']\")?.dataset.scale > 0"
    )
    col, row = 70, 40
    _, shown = hover_pixel(page, col, row)
    assert shown == pytest.approx(float(celsius[0, row, col]), abs=0.006)
    page.keyboard.press("End")
    page.wait_for_selector(f".frame-label:has-text('{FRAMES} / {FRAMES}')")
    wait_readout(page, celsius, col, row)
    page.keyboard.press("ArrowLeft")
    page.wait_for_selector(f".frame-label:has-text('{FRAMES - 1} / {FRAMES}')")
    wait_readout(page, celsius, col, row)
    page.keyboard.press("Home")
    page.wait_for_selector(f".frame-label:has-text('1 / {FRAMES}')")
    page.keyboard.press(" ")  # play, then pause: the readout is of the frame it stopped on
    page.wait_for_selector(f".frame-label:has-text('3 / {FRAMES}')")
    page.keyboard.press(" ")
    wait_readout(page, celsius, col, row)
    assert frame_shown(page) >= 2


# ---- where a sequence opens, and the review queue ------------------------------------------


def test_sequences_open_where_their_drafts_are_or_on_the_hottest_frame(
    page: Page, live: LiveServer, tmp_path: Path
) -> None:
    drafted = ingest_array(
        live, tmp_path, "drafted", heating(2), findings=json.dumps(edge_ng(frame=3))
    )["frame_id"]
    page.goto(f"{live.url}/#/f/{drafted}")
    page.wait_for_selector(f".frame-label:has-text('4 / {FRAMES}')")
    canvas = page.locator("canvas.thermogram")
    assert canvas.get_attribute("data-opening") == "first machine draft"
    assert page.locator(".objects .badge.draft").count() == 1  # the draft is on this frame

    plain = ingest_array(live, tmp_path, "plain", heating(3))["frame_id"]
    page.goto(f"{live.url}/#/f/{plain}")
    page.wait_for_selector(f"canvas.thermogram[data-frame-id='{plain}']")
    # nothing annotated and no findings: the hottest frame, once every frame is read
    page.wait_for_selector(f".frame-label:has-text('{FRAMES} / {FRAMES}')")
    assert page.locator("canvas.thermogram").get_attribute("data-opening") == "hottest"


def test_review_queue_separates_stages_and_shows_machine_drafts_apart(
    page: Page, live: LiveServer, tmp_path: Path
) -> None:
    fid = ingest_array(live, tmp_path, "queued", heating(4), findings=json.dumps(edge_ng(frame=2)))[
        "frame_id"
    ]
    submitted = ingest_array(live, tmp_path, "submitted", heating(5)[0] + 7.0)["frame_id"]
    current = live.annotations(submitted)
    verdict = {
        "id": "v-ok",
        "frame": None,
        "verdict": "OK",
        "provenance": {"author": "admin", "created": "2025-01-01T00:00:00+00:00"},
    }
    item = {**current["item"], "verdicts": [verdict]}
    answer = live.api.put(
        f"{API}/frames/{submitted}/annotations",
        json={"item": item, "revision": current["revision"]},
    )
    assert answer.status_code == 200, answer.text
    answer = live.api.post(f"{API}/frames/{submitted}/review", json={"action": "submit"})
    assert answer.status_code == 200, answer.text

    page.goto(f"{live.url}/#/p/{live.project_id}/review?stage=annotate")
    entry = page.locator(f".queue-entry[data-frame-id='{fid}']")
    assert entry.locator(".machine-verdict").inner_text() == "machine NG"  # not the people's
    entry.click()
    assert page.locator(f".queue-entry[data-frame-id='{submitted}']").count() == 0
    # the preview opens on the frame of the drafts and draws them
    page.wait_for_function(
        "() => document.querySelector('.preview-pane canvas.thermogram')?.dataset.frame === '2'"
        f" && document.querySelector('.preview-pane canvas').dataset.frameId === '{fid}'"
    )
    assert page.inner_text(".preview-frame-label") == f"frame 3 / {FRAMES}"
    details = page.locator(".review-details")
    assert "machine draft" in details.locator(".object.machine").inner_text()
    assert details.locator(".verdict-entry.machine").count() == 1
    assert details.locator(".people-verdict").inner_text().strip() == "—"
    assert details.locator(".machine-verdict").inner_text().strip() == "NG"
    assert "1 machine draft" in details.locator(".object-counts").inner_text()
    # nobody submitted it: no Accept, and the key does nothing
    assert details.locator(".review-actions").count() == 0
    assert details.locator(".not-submitted").count() == 1
    page.keyboard.press("a")
    page.wait_for_selector(".toast:has-text('Nobody has submitted this frame')")
    assert live.api.get(f"{API}/frames/{fid}").json()["status"] == "new"
    # stepping through the sequence in the preview
    page.keyboard.press("ArrowRight")
    page.wait_for_selector(f".preview-frame-label:has-text('frame 4 / {FRAMES}')")

    page.click(".queue-stage[data-stage=review]")
    page.wait_for_selector(f".queue-entry[data-frame-id='{submitted}']")
    assert page.locator(f".queue-entry[data-frame-id='{fid}']").count() == 0
    page.locator(f".queue-entry[data-frame-id='{submitted}']").click()
    page.wait_for_selector(".review-details .review-actions button.accept")
    counts = {
        stage: int(page.inner_text(f".queue-stage[data-stage={stage}] .count"))
        for stage in ("review", "annotate")
    }
    for stage, total in counts.items():
        queue = live.api.get(
            f"{API}/projects/{live.project_id}/review-queue", params={"stage": stage}
        ).json()
        assert queue["total"] == total


# ---- edit conflicts ------------------------------------------------------------------------


def test_a_conflict_merges_both_edits_and_keeps_the_image_in_place(
    browser: sync_api.Browser, live: LiveServer, tmp_path: Path
) -> None:
    fid = ingest_array(live, tmp_path, "conflict", heating(6)[-1])["frame_id"]
    first, second = open_page(browser, live), open_page(browser, live)
    for page in (first, second):
        open_frame(page, live, fid)
        page.keyboard.press("b")
    drag(first, (10, 10), (50, 50))
    saved(first)
    canvas = second.locator("canvas.thermogram")
    before = canvas.bounding_box(), screen_point(second, 0, 0), screen_point(second, 160, 120)
    drag(second, (100, 60), (140, 90))  # saved over a stale revision: a conflict
    second.wait_for_selector(".banner:has-text('merged')")
    after = canvas.bounding_box(), screen_point(second, 0, 0), screen_point(second, 160, 120)
    assert after == before  # the banner lies over the stage; the image stays where it was
    assert second.locator(".objects .object").count() == 2
    saved(second)
    shapes = sorted(
        (a["shape"]["x"], a["shape"]["y"]) for a in live.annotations(fid)["item"]["annotations"]
    )
    assert shapes == [(10, 10), (100, 60)]

    # both pages change the same box differently: both versions are kept until one is chosen
    for page in (first, second):  # both read the same revision again
        page.reload()
        open_frame(page, live, fid)
    box_id = next(
        a["id"] for a in live.annotations(fid)["item"]["annotations"] if a["shape"]["x"] == 10
    )
    for page, key in ((first, "2"), (second, "3")):
        page.click(f".objects .object[data-record-id='{box_id}']")
        page.keyboard.press(key)
    saved(first)
    conflict = second.locator(".banner .conflict[data-what=both-changed]")
    conflict.wait_for()
    assert second.locator(".objects .object").count() == 3
    saved(second)
    labels = sorted(a["label"] for a in live.annotations(fid)["item"]["annotations"])
    assert labels == ["cold_joint", "hot_spot", "part"]
    conflict.locator("button.keep-mine").click()
    assert second.locator(".banner .conflict").count() == 0
    saved(second)
    labels = sorted(a["label"] for a in live.annotations(fid)["item"]["annotations"])
    assert labels == ["hot_spot", "part"]
    for page in (first, second):
        errors = page.errors  # type: ignore[attr-defined]
        page.context.close()
        assert errors == []


# ---- labels, findings, the curve -----------------------------------------------------------


def test_number_keys_pick_the_next_label_and_relabel_only_a_chosen_shape(
    page: Page, live: LiveServer, tmp_path: Path
) -> None:
    fid = ingest_array(live, tmp_path, "labels", heating(7)[0] + 1.0)["frame_id"]
    open_frame(page, live, fid)
    page.keyboard.press("b")
    drag(page, (10, 10), (40, 40))
    page.keyboard.press("2")  # the box just drawn stays hot_spot; the next one is cold_joint
    assert page.inner_text(".label-choice.active .label-name") == "cold_joint"
    drag(page, (60, 10), (90, 40))
    saved(page)
    by_x = {a["shape"]["x"]: a for a in live.annotations(fid)["item"]["annotations"]}
    assert {x: a["label"] for x, a in by_x.items()} == {10: "hot_spot", 60: "cold_joint"}
    # a shape the user picks is relabelled by a number key
    page.click(f".objects .object[data-record-id='{by_x[10]['id']}']")
    page.keyboard.press("3")
    saved(page)
    labels = {a["shape"]["x"]: a["label"] for a in live.annotations(fid)["item"]["annotations"]}
    assert labels == {10: "part", 60: "cold_joint"}


def test_findings_say_which_side_the_limit_is_on(
    page: Page, live: LiveServer, tmp_path: Path
) -> None:
    findings = [
        {"rule": "overheat", "value": 16.8, "limit": 12.0, "verdict": "NG"},
        {"rule": "too_cold", "value": 3.0, "limit": 5.0, "verdict": "NG"},
        {"rule": "warm_enough", "value": 16.8, "limit": 12.0, "verdict": "OK"},
        {
            "rule": "rate",
            "value": 0.4,
            "limit": 0.5,
            "verdict": "WARN",
            "unit": "°C/s",
            "explanation": "U1 rise 0.4 °C/s is over its 0.45 °C/s warning limit, 0.1 °C/s "
            "below its 0.5 °C/s limit",
        },
    ]
    edge = {"source": "cam", "frame": 0, "verdict": "NG", "findings": findings}
    fid = ingest_array(live, tmp_path, "findings", heating(8)[0], findings=json.dumps(edge))[
        "frame_id"
    ]
    open_frame(page, live, fid)
    rows = page.locator(".findings .finding")
    shown = {
        rows.nth(i).locator(".label-name").inner_text(): rows.nth(i)
        .locator("span.small.muted")
        .inner_text()
        for i in range(rows.count())
    }
    assert shown == {
        "overheat": "16.8 °C > max 12.0 °C",
        "too_cold": "3.0 °C < min 5.0 °C",
        "warm_enough": "16.8 °C ≥ min 12.0 °C",
        "rate": "0.4 °C/s ≤ max 0.5 °C/s",
    }


def test_the_curve_axis_label_never_overlaps_a_tick_label(
    page: Page, live: LiveServer, tmp_path: Path
) -> None:
    fid = ingest_array(live, tmp_path, "curve", heating(9))["frame_id"]
    page.goto(f"{live.url}/#/f/{fid}?frame=0")
    page.wait_for_function(
        "() => document.querySelector("
        f"\"canvas.thermogram[data-frame-id='{fid}']\")?.dataset.scale > 0"
    )
    page.keyboard.press("b")
    drag(page, (20, 20), (60, 50))  # a track (sequences make tracks), selected: its curve shows
    page.wait_for_function(
        "() => JSON.parse(document.querySelector('.plot-host').dataset.points || '[]').length"
        f" == {FRAMES}"
    )
    boxes = page.evaluate(
        """() => {
             const svg = document.querySelector('svg.plot');
             const box = (t) => { const b = t.getBBox(); return [b.x, b.y, b.width, b.height]; };
             return {
               label: box(svg.querySelector('text.axis-label')),
               ticks: [...svg.querySelectorAll('text[text-anchor=middle]')].map(box),
             };
           }"""
    )
    lx, ly, lw, lh = boxes["label"]
    assert lw > 0
    assert len(boxes["ticks"]) >= 2
    for x, y, w, h in boxes["ticks"]:
        overlaps = x < lx + lw and lx < x + w and y < ly + lh and ly < y + h
        assert not overlaps, (boxes["label"], (x, y, w, h))


# ---- the merge, case by case ---------------------------------------------------------------


def test_three_way_merge_keeps_every_side(module_page: Page) -> None:
    """``annotate/merge.js``: one-sided changes taken, the same change once, conflicts kept."""
    result = module_page.evaluate(
        """async () => {
             const m = await import('/js/annotate/merge.js');
             const rec = (id, label, x = 0) => ({id, label, frame: 0,
               shape: {type: 'point', x, y: 0}, provenance: {author: 'a'}});
             const verdict = (v) => ({id: 'v' + v, frame: null, verdict: v});
             const item = (annotations, verdicts = []) =>
               ({annotations, tracks: [], tolerances: [], verdicts, metadata: {}});
             const base = item([rec('same', 'a'), rec('mine', 'a'), rec('theirs', 'a'),
               rec('both', 'a'), rec('gone-here', 'a'), rec('gone-there', 'a')], [verdict('OK')]);
             const mine = item([rec('same', 'a'), rec('mine', 'b'), rec('theirs', 'a'),
               rec('both', 'b'), rec('gone-there', 'b'), rec('new-here', 'a')], [verdict('NG')]);
             const theirs = item([rec('same', 'a'), rec('mine', 'a'), rec('theirs', 'c'),
               rec('both', 'c'), rec('gone-here', 'c'), rec('new-there', 'a')],
               [{...verdict('OK'), reason: 'fine'}]);
             const {item: merged, conflicts} = m.mergeItems(base, mine, theirs);
             const labels = merged.annotations.map(
               (r) => `${r.id.length > 20 ? 'copy' : r.id}:${r.label}`);
             const kinds = conflicts.map((c) => `${c.kind}:${c.what}`);
             const both = conflicts.find(
               (c) => c.kind === 'annotations' && c.what === 'both-changed');
             const kept = structuredClone(merged);
             m.resolve(kept, both, 'mine');
             const verdictConflict = conflicts.find((c) => c.kind === 'verdicts');
             m.resolve(kept, verdictConflict, 'mine');
             return {labels, kinds,
                     verdicts: merged.verdicts.map((v) => v.verdict),
                     keptBoth: kept.annotations.filter((r) => r.label === 'b' || r.id === 'both')
                       .map((r) => r.label),
                     keptVerdicts: kept.verdicts.map((v) => v.verdict)};
           }"""
    )
    assert sorted(result["labels"]) == sorted(
        [
            "same:a",
            "mine:b",  # changed here only
            "theirs:c",  # changed there only
            "both:c",  # both changed: theirs under its id ...
            "copy:b",  # ... and mine as a copy
            "gone-here:c",  # deleted here, changed there: kept, and asked
            "gone-there:b",  # deleted there, changed here: kept, and asked
            "new-here:a",
            "new-there:a",
        ]
    )
    assert sorted(result["kinds"]) == [
        "annotations:both-changed",
        "annotations:deleted-here",
        "annotations:deleted-there",
        "verdicts:both-changed",
    ]
    assert result["verdicts"] == ["OK"]  # one verdict per scope: theirs until chosen
    assert sorted(result["keptBoth"]) == ["b", "b", "b"]  # mine, gone-there and my copy
    assert result["keptVerdicts"] == ["NG"]
