"""The UI's new screens against the real server, in Debian Chromium: a new user does everything
through the browser (log in, create a project, labels, a user and member, upload files with
their errors, make an API token and use it over HTTP, revoke it), only who may manage sees the
settings, and the measure view: °C recomputed with another emissivity / reflected temperature
equal to ``ThermalFrame.with_parameters``, colour bar ticks equal to ``nice_ticks``, isotherm and
saturation colours equal to ``render``'s, and the spot meter reading the frame's values.
"""

from __future__ import annotations

import dataclasses
import json
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pytest
from web_support import ADMIN, ADMIN_PASSWORD, API, LiveServer

import thermoscope.io as tio
from sample_data import SKIP_REASON, reference_for, samples_dir
from thermoscope.annotations import AnnotatedItem
from thermoscope.annotations.model import Annotation, Provenance
from thermoscope.annotations.shapes import Polygon
from thermoscope.datasets.synthetic import simulate_run
from thermoscope.render import Isotherm, palette_lut, render
from thermoscope.render.colorbar import nice_ticks

sync_api = pytest.importorskip("playwright.sync_api", reason="Playwright is not installed")
Page = sync_api.Page

#: Console messages a working page may print: the 401 of ``/auth/me`` before logging in, and
#: the refusals the tests provoke (a broken upload is 422, a member who is no user 404).
EXPECTED_CONSOLE = re.compile(
    r"Failed to load resource: the server responded with a status of 4(01|04|22)"
)
PASSWORD = "password-123"


#: A strict policy the page is served under: no inline script or style, no eval (a violation
#: is a console error, which fails the test).
STRICT_CSP = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "connect-src 'self'; object-src 'none'; base-uri 'none'; form-action 'self'"
)


def _strict(route: Any) -> None:
    """Serve the page with ``STRICT_CSP``."""
    response = route.fetch()
    route.fulfill(
        response=response, headers={**response.headers, "content-security-policy": STRICT_CSP}
    )


def new_page(browser: sync_api.Browser) -> Page:
    """A page in a fresh context, its document served under ``STRICT_CSP``, that records
    script errors in ``page.errors``."""
    context = browser.new_context(viewport={"width": 1440, "height": 900})
    context.route(re.compile(r"^http://127\.0\.0\.1:\d+/(index\.html)?$"), _strict)
    page = context.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    page.on(
        "console",
        lambda m: (
            errors.append(f"{m.text} at {m.location}")
            if m.type == "error" and not EXPECTED_CONSOLE.search(m.text)
            else None
        ),
    )
    page.errors = errors  # type: ignore[attr-defined]
    return page


def log_in(page: Page, live: LiveServer, username: str, password: str) -> None:
    """Sign in through the login form."""
    page.goto(f"{live.url}/#/login")
    page.wait_for_selector("form.login")
    page.fill("input[name=username]", username)
    page.fill("input[name=password]", password)
    page.click("button[type=submit]")
    page.wait_for_selector("h1:has-text('Projects')")


def close(page: Page) -> None:
    """Close the page's context; fail on any script error it saw."""
    errors = page.errors  # type: ignore[attr-defined]
    page.context.close()
    assert errors == []


@pytest.fixture
def page(browser: sync_api.Browser) -> Iterator[Page]:
    """A fresh page; the test fails on any script error."""
    page = new_page(browser)
    yield page
    close(page)


def scene(seed: int) -> np.ndarray:
    """A small °C frame with a warm blob."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:48, 0:64]
    blob = 30.0 * np.exp(-((xx - 40) ** 2 + (yy - 20) ** 2) / 60.0)
    return (20.0 + blob + rng.normal(0, 0.3, size=(48, 64))).astype(np.float32)


# ---- a new user, without curl ----------------------------------------------------------------


def test_a_new_user_does_everything_in_the_browser(
    page: Page, browser: sync_api.Browser, live: LiveServer, tmp_path: Path
) -> None:
    log_in(page, live, ADMIN, ADMIN_PASSWORD)
    # a project with two labels, then a third label
    page.click("a:has-text('New project')")
    page.fill("input[name=name]", "Kiln 7")
    page.fill("input[name=labels]", "hot_spot, crack")
    page.click("button:has-text('Create')")
    page.wait_for_selector(".label-list li[data-label='crack']")
    pid = int(re.search(r"#/p/(\d+)/settings", page.url).group(1))  # type: ignore[union-attr]
    page.fill(".add-label input[name=label]", "glaze")
    page.fill(".add-label input[name=description]", "a glaze defect")
    page.click("button:has-text('Add label')")
    page.wait_for_selector(".label-list li[data-label='glaze']")
    project = live.api.get(f"{API}/projects/{pid}").json()
    assert [label["name"] for label in project["label_schema"]["labels"]] == [
        "hot_spot",
        "crack",
        "glaze",
    ]
    assert project["role"] == "admin"
    # a member who is no user yet is refused with the server's reason
    page.fill(".add-member input[name=username]", "ann")
    page.click("button:has-text('Add member')")
    page.wait_for_selector(".toast:has-text('Member not added')")
    # a user, made on the account page, then made a member
    page.click("header a.user")
    page.fill("input[name=new_username]", "ann")
    page.fill("input[name=new_password]", PASSWORD)
    page.click("button:has-text('Add user')")
    page.wait_for_selector(".user-list li[data-username='ann']")
    page.goto(f"{live.url}/#/p/{pid}/settings")
    page.fill(".add-member input[name=username]", "ann")
    page.select_option(".add-member select[name=role]", "annotator")
    page.click("button:has-text('Add member')")
    page.wait_for_selector("tr[data-member='ann']")
    members = live.api.get(f"{API}/projects/{pid}/members").json()["items"]
    assert {"username": "ann", "role": "annotator"} in members
    # upload two good files and a broken one in one go
    good = [tmp_path / "kiln-a.npy", tmp_path / "kiln-b.npy"]
    for seed, path in enumerate(good):
        np.save(path, scene(seed))
    broken = tmp_path / "broken.jpg"
    broken.write_bytes(b"\xff\xd8\xff\xe0" + b"\0" * 100)
    page.click("nav.tabs a:has-text('Upload')")
    page.set_input_files("input[name=files]", [str(p) for p in [*good, broken]])
    page.click("button:has-text('Upload')")
    page.wait_for_selector(".upload-item[data-name='broken.jpg'][data-state='error']")
    for path in good:
        assert page.get_attribute(f".upload-item[data-name='{path.name}']", "data-state") == "done"
    error = page.inner_text(".upload-item[data-name='broken.jpg'] .upload-status")
    assert error.startswith("Not added: broken.jpg:")
    frames = live.api.get(f"{API}/projects/{pid}/frames").json()
    assert sorted(f["filename"] for f in frames["items"]) == ["kiln-a.npy", "kiln-b.npy"]
    # see an uploaded file: its temperatures reach the annotate view
    fid = page.get_attribute(".upload-item[data-name='kiln-a.npy']", "data-frame-id")
    page.click(".upload-item[data-name='kiln-a.npy'] a")
    page.wait_for_selector(f"canvas.thermogram[data-frame-id='{fid}'][data-scale]")
    # the same file again is found, not doubled
    page.goto(f"{live.url}/#/p/{pid}/upload")
    page.set_input_files("input[name=files]", str(good[0]))
    page.click("button:has-text('Upload')")
    page.wait_for_selector(".upload-item[data-state='done'] a:has-text('already there')")
    # an API token with two scopes: shown once, listed, used over HTTP, revoked
    page.click("header a.user")
    page.fill("input[name=token_name]", "kiln agent")
    page.check("input[name=scope][value=ingest]")
    page.click("button:has-text('Make token')")
    text = page.inner_text(".token-once .token-text")
    page.wait_for_selector("tr[data-token-name='kiln agent']")
    assert "ingest, read" in page.inner_text("tr[data-token-name='kiln agent']")
    assert text not in page.inner_text("table.tokens")
    with httpx.Client(base_url=live.url, headers={"Authorization": f"Bearer {text}"}) as client:
        listed = client.get(f"{API}/projects/{pid}/frames")
        assert listed.status_code == 200
        assert listed.json()["total"] == 2
        path = tmp_path / "kiln-c.npy"
        np.save(path, scene(7))
        sent = client.post(
            f"{API}/projects/{pid}/frames",
            files={"file": (path.name, path.read_bytes(), "application/octet-stream")},
        )
        assert sent.status_code == 201, sent.text
        page.click("tr[data-token-name='kiln agent'] button:has-text('Revoke')")
        page.wait_for_selector("p:has-text('No API tokens')")
        assert client.get(f"{API}/projects/{pid}/frames").status_code == 401
    # the annotator uploads but does not see the settings
    other = new_page(browser)
    log_in(other, live, "ann", PASSWORD)
    other.goto(f"{live.url}/#/p/{pid}")
    other.wait_for_selector("nav.tabs a:has-text('Upload')")
    assert other.locator("nav.tabs a:has-text('Settings')").count() == 0
    assert other.locator("a:has-text('New project')").count() == 0
    other.goto(f"{live.url}/#/p/{pid}/settings")
    other.wait_for_selector(".empty:has-text('Only the project')")
    assert other.locator(".add-member").count() == 0
    close(other)


# ---- measure: parameters, colour bar, isotherm, spot meter -------------------------------------


def radiometric_file(which: str, tmp_path: Path) -> Path:
    """A 160x120 file with calibration and parameters: a SEQ written by our writer (runs on
    every machine), or the FLIR E40 sample (skips without the shared samples)."""
    if which == "synthetic":
        writer = next(w for w in tio.writers() if w.name == "flir-seq")
        run = simulate_run("pcb", parts=1, defect_rate=1, rng=np.random.default_rng(4))
        path = tmp_path / "board.seq"
        path.write_bytes(writer.emit([next(iter(run)).frame]))
        return path
    root = samples_dir()
    if root is None:
        pytest.skip(SKIP_REASON)
    return root / "flir" / "FLIR_E40.jpg"


def with_region(live: LiveServer, fid: str, points: list[list[float]]) -> None:
    """Save a polygon annotation on the frame through the API."""
    saved = live.annotations(fid)
    item = AnnotatedItem.from_dict(saved["item"])
    region = Annotation(
        label="hot_spot",
        shape=Polygon(tuple((float(x), float(y)) for x, y in points)),
        attributes={"severity": "minor"},
        provenance=Provenance(author=ADMIN),
    )
    item = dataclasses.replace(item, annotations=(*item.annotations, region))
    answer = live.api.put(
        f"{API}/frames/{fid}/annotations",
        json={"item": item.to_dict(), "revision": saved["revision"]},
    )
    assert answer.status_code == 200, answer.text


def open_measure(page: Page, live: LiveServer, fid: str) -> None:
    """Log in through the API and open the measure view of a frame."""
    answer = page.context.request.post(
        f"{live.url}{API}/auth/login", data={"username": ADMIN, "password": ADMIN_PASSWORD}
    )
    assert answer.ok, answer.text()
    page.goto(f"{live.url}/#/f/{fid}/measure")
    try:
        page.wait_for_selector("canvas.thermogram[data-scale]", timeout=10000)
        page.wait_for_selector(".scale-bar[data-ticks]", timeout=10000)
    except sync_api.TimeoutError:
        errors = page.errors  # type: ignore[attr-defined]
        raise AssertionError(
            f"measure view not drawn: {page.inner_text('#view')!r} {errors}"
        ) from None


def screen_point(page: Page, x: float, y: float) -> tuple[float, float]:
    """The page position of frame position (x, y) px."""
    canvas = page.locator("canvas.thermogram")
    box = canvas.bounding_box()
    assert box is not None
    scale, pan_x, pan_y = canvas.evaluate(
        "c => [+c.dataset.scale, +c.dataset.panX, +c.dataset.panY]"
    )
    return box["x"] + pan_x + x * scale, box["y"] + pan_y + y * scale


def stat(page: Page, row: str, which: str) -> float:
    """The exact value behind a statistics cell."""
    value = page.get_attribute(f"tr[data-stats='{row}'] td[data-stat='{which}']", "data-value")
    assert value is not None
    return float(value)


def celsius_text(value: float) -> str:
    """°C as the UI writes it."""
    return f"{value:.2f} °C"


@pytest.mark.parametrize("which", ["synthetic", "sample"])
def test_parameters_recompute_as_the_library(
    page: Page, live: LiveServer, tmp_path: Path, which: str
) -> None:
    path = radiometric_file(which, tmp_path)
    fid = live.ingest(path)["frame_id"]
    points = [[10.0, 15.0], [140.0, 20.0], [80.0, 110.0]]
    with_region(live, fid, points)
    frame = tio.load(path)
    assert frame.metadata.parameters is not None
    open_measure(page, live, fid)
    # the camera and the file's parameters
    assert page.inner_text("dd[data-fact='Camera']").endswith(frame.metadata.camera.model)
    shown = float(page.inner_text("dd[data-fact='Emissivity']"))
    assert shown == round(frame.metadata.parameters.emissivity, 2)
    assert stat(page, "Frame", "max") == float(np.nanmax(frame.celsius))
    if which == "sample":  # the spot meter reads the reference temperatures (exiftool's)
        reference = np.load(reference_for(path))["celsius"]
        for row, col in [(0, 0), (60, 80), np.unravel_index(np.nanargmax(reference), (120, 160))]:
            page.mouse.move(*screen_point(page, col + 0.5, row + 0.5))
            shown = float(page.inner_text(".spot-cursor").removesuffix(" °C"))
            assert shown == pytest.approx(float(reference[row, col]), abs=0.01)
    # the whole frame with another emissivity and reflected temperature
    page.fill("input[name=emissivity]", "0.8")
    page.fill("input[name=reflected_temp_c]", "5")
    page.click("button:has-text('Recompute')")
    page.wait_for_selector("canvas.thermogram[data-recomputed='true']")
    expected = frame.with_parameters(emissivity=0.8, reflected_temp_c=5.0).celsius
    assert stat(page, "Frame", "max") == float(expected.max())
    assert stat(page, "Frame", "min") == float(expected.min())
    # the spot meter at the cursor and at a fixed spot read the recomputed °C
    col, row = 80, 50
    page.mouse.move(*screen_point(page, col + 0.5, row + 0.5))
    assert page.inner_text(".statusbar .cursor-pos") == f"x {col} · y {row}"
    assert page.inner_text(".spot-cursor") == celsius_text(float(expected[row, col]))
    page.mouse.click(*screen_point(page, col + 0.5, row + 0.5))
    spot = f".spot-list li[data-col='{col}'][data-row='{row}'] .spot-temp"
    assert page.inner_text(spot) == celsius_text(float(expected[row, col]))
    # only the region's pixels, with their own emissivity
    page.click("button:has-text('As stored')")
    page.wait_for_selector("canvas.thermogram[data-recomputed='false']")
    assert page.inner_text(spot) == celsius_text(float(frame.celsius[row, col]))
    page.fill("input[name=emissivity]", "0.5")
    page.select_option("select[name=scope]", label="hot_spot #1")
    page.click("button:has-text('Recompute')")
    page.wait_for_selector(".params-state:not(.muted)")
    assert "changed" in (page.get_attribute(".params-state", "class") or ""), page.inner_text(
        ".params-state"
    )
    mask = Polygon(tuple((x, y) for x, y in points)).to_mask(frame.shape)
    reflected = frame.metadata.parameters.reflected_temp_c
    regional = frame.with_parameters(mask=mask, emissivity=0.5, reflected_temp_c=reflected)
    inside = regional.celsius[mask]
    assert stat(page, "hot_spot #1", "max") == pytest.approx(float(inside.max()), abs=0)
    assert stat(page, "hot_spot #1", "mean") == pytest.approx(float(inside.mean()), rel=1e-6)
    assert stat(page, "Frame", "max") == float(regional.celsius.max())
    assert page.inner_text(spot) == celsius_text(float(regional.celsius[row, col]))
    assert mask[row, col]


def test_colour_bar_ticks_equal_nice_ticks(module_page: Page) -> None:
    rng = np.random.default_rng(3)
    ranges = [(20.0, 80.0), (-5.0, 5.0), (0.0, 1.0), (21.37, 21.52), (-40.0, 650.0), (3, 3)]
    ranges += [tuple(sorted(rng.uniform(-50, 500, 2))) for _ in range(200)]
    ranges += [
        (lo, lo + span)
        for lo, span in zip(rng.uniform(-20, 60, 100), 10.0 ** rng.uniform(-3, 3, 100), strict=True)
    ]
    got = module_page.evaluate(
        "async (ranges) => { const m = await import('/js/measure/colorbar.js');"
        " return ranges.map(([lo, hi]) => m.niceTicks(lo, hi)); }",
        [list(map(float, r)) for r in ranges],
    )
    for (lo, hi), answer in zip(ranges, got, strict=True):
        ticks, decimals = nice_ticks(float(lo), float(hi), max_count=8)
        assert answer == {"ticks": ticks, "decimals": decimals}, (lo, hi)


def test_isotherm_and_saturation_paint_as_render(module_page: Page) -> None:
    rng = np.random.default_rng(5)
    celsius = rng.uniform(10, 90, size=(40, 50)).astype(np.float32)
    celsius[3, 4] = np.nan
    low, high, iso = 25.0, 75.0, (55.0, 65.0)
    painted = module_page.evaluate(
        """async ({values, low, high, iso}) => {
          const pal = (await import('/js/palettes.js'));
          const m = await import('/js/measure/paint.js');
          const celsius = new Float32Array(values.map((v) => (v === null ? NaN : v)));
          const out = new Uint32Array(celsius.length);
          const marks = {isotherm: {lo: iso[0], hi: iso[1], rgba: pal.packRgba(0, 255, 0)},
                         below: pal.packRgba(0, 0, 255), above: pal.packRgba(255, 0, 0)};
          m.paintMarked(celsius, out, pal.palette('iron'), low, high, marks);
          return Array.from(new Uint8Array(out.buffer));
        }""",
        {
            "values": [None if np.isnan(v) else float(v) for v in celsius.ravel()],
            "low": low,
            "high": high,
            "iso": list(iso),
        },
    )
    rgb = np.array(painted, dtype=np.uint8).reshape(40, 50, 4)[..., :3]
    expected = render(
        celsius, palette="iron", range=(low, high), isotherms=[Isotherm(*iso, (0, 255, 0))]
    )
    outside = ~((celsius >= iso[0]) & (celsius <= iso[1]))
    expected[(celsius < low) & outside] = (0, 0, 255)
    expected[(celsius > high) & outside] = (255, 0, 0)
    np.testing.assert_array_equal(rgb, expected)
    assert (rgb == (0, 0, 255)).all(axis=-1).sum() == ((celsius < low) & outside).sum() > 0
    assert palette_lut("iron").shape == (256, 3)


def test_measure_view_colour_bar_and_isotherm(page: Page, live: LiveServer, tmp_path: Path) -> None:
    path = tmp_path / "bar.npy"
    np.save(path, scene(11))
    fid = live.ingest(path)["frame_id"]
    open_measure(page, live, fid)
    page.fill("input[name=low]", "21.5")
    page.fill("input[name=high]", "48.25")
    page.dispatch_event("input[name=high]", "change")
    page.wait_for_selector(".scale-bar[data-high='48.25']")
    ticks = json.loads(page.get_attribute(".scale-bar", "data-ticks") or "[]")
    expected, decimals = nice_ticks(21.5, 48.25, max_count=8)
    assert ticks == expected
    labels = page.locator(".scale-bar .tick").all_inner_texts()
    assert labels == [f"{t:.{decimals}f}" for t in expected]
    # ticks run bottom (low) to top (high) along the strip
    tops = [page.locator(".scale-bar .tick").nth(i).bounding_box()["y"] for i in range(len(ticks))]  # type: ignore[index]
    assert tops == sorted(tops, reverse=True)
    # saturation colours appear beside the bar when switched on
    assert page.locator(".scale-bar .saturation").count() == 0
    page.check("input[name=saturation]")
    page.wait_for_selector(".scale-bar .saturation.above")
    page.wait_for_selector(".scale-bar .saturation.below")


def test_measure_steps_through_a_sequence(page: Page, live: LiveServer, tmp_path: Path) -> None:
    writer = next(w for w in tio.writers() if w.name == "flir-seq")
    run = simulate_run("pcb", parts=3, defect_rate=0.5, rng=np.random.default_rng(9))
    path = tmp_path / "line.seq"
    path.write_bytes(writer.emit([part.frame for part in run]))
    fid = live.ingest(path)["frame_id"]
    with tio.open_path(path) as sequence:
        frames = [sequence[i] for i in range(len(sequence))]
    assert len(frames) == 3
    open_measure(page, live, fid)
    page.click(".panel-links a:has-text('next')")
    page.wait_for_selector(".panel-links:has-text('frame 2 / 3')")
    page.wait_for_selector(".scale-bar[data-ticks]")
    assert stat(page, "Frame", "max") == float(np.nanmax(frames[1].celsius))
    page.fill("input[name=emissivity]", "0.7")
    page.click("button:has-text('Recompute')")
    page.wait_for_selector("canvas.thermogram[data-recomputed='true']")
    expected = frames[1].with_parameters(emissivity=0.7)
    assert stat(page, "Frame", "max") == float(expected.celsius.max())
    assert stat(page, "Frame", "mean") == pytest.approx(float(expected.celsius.mean()), rel=1e-6)
