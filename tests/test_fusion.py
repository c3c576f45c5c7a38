"""Visual + thermal: reading the photo FLIR files carry, registering it, fused views."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

import cv2
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from tests.sample_data import SKIP_REASON, samples_dir

import thermoscope.io as tio
from thermoscope.analysis.fusion_registration import (
    VisualRegistration,
    checkerboard_corners,
    edge_distance,
    fit_points,
    from_camera_alignment,
    fused_view,
    mutual_information,
    pair_key,
    picture_box,
    plain_resize,
    registration_for,
    reprojection_errors,
    warp_to_thermal,
)
from thermoscope.analysis.spatial import AnalysisError
from thermoscope.core import Inspection, PartRecord, PartRecordError, ThermalFrame, View
from thermoscope.core.visual import CameraAlignment, VisualImage
from thermoscope.io.errors import ThermoscopeFormatError, TruncatedFileError
from thermoscope.io.visual import decode_image, embedded_visual
from thermoscope.io.visual import load as load_visual
from thermoscope.io.visual import parse as parse_visual
from thermoscope.models.contract import InputContract
from thermoscope.render import encode_png
from thermoscope.render.errors import RenderError
from thermoscope.render.fusion import fuse
from thermoscope.reports import ReportPart, build_html_report

#: The FLIR files that carry a visual photo: (file, photo width, height, exiftool -n values of
#: Real2IR, OffsetX, OffsetY, PiPX1, PiPX2, PiPY1, PiPY2).
WITH_PHOTO = [
    ("FLIR_B60.jpg", 480, 480, (1.71874856948853, 2, -10, 36, 142, 36, 142)),
    ("FLIR_T640.jpg", 2592, 1944, (3.49618411064148, -144, -27, 160, 479, 120, 359)),
    ("ax8.jpg", 640, 480, (1.16241121292114, 0, 0, 0, 80, 0, 60)),
    ("flir_example.jpg", 480, 640, (1.40396988391876, 14, -14, 0, 239, 0, 319)),
]


def _flir(name: str) -> ThermalFrame:
    root = samples_dir()
    if root is None:
        pytest.skip(SKIP_REASON)
    with tio.open_path(root / "flir" / name) as seq:
        return seq[0]


@pytest.mark.parametrize(("name", "width", "height", "pip"), WITH_PHOTO)
def test_embedded_photo_and_alignment_match_exiftool(
    name: str, width: int, height: int, pip: tuple[float, ...]
) -> None:
    visual = embedded_visual(_flir(name))
    assert visual is not None
    assert visual.shape == (height, width)
    a = visual.alignment
    assert a is not None
    got = (a.real_to_ir, a.offset_x, a.offset_y, a.pip_x1, a.pip_x2, a.pip_y1, a.pip_y2)
    assert got == pytest.approx(pip, abs=1e-6)


def test_b60_png_photo_is_converted_from_ycbcr() -> None:
    # the B60 stores Y, Cb, Cr planes in its PNG: read as RGB the sky would be orange-green;
    # converted, the sky (top right) is blue and the photo's mean is no longer green-tinted
    rgb = embedded_visual(_flir("FLIR_B60.jpg")).rgb  # type: ignore[union-attr]
    sky = rgb[:60, -60:].reshape(-1, 3).mean(axis=0)
    assert sky[2] > sky[0] + 20, sky


def test_files_without_photo_give_none() -> None:
    assert embedded_visual(_flir("FLIR_E40.jpg")) is None


def _alignment_figures(name: str) -> tuple[float, float, float, float]:
    """Edge distance (px) and mutual information (nats) of the metadata registration and of a
    plain resize, both over the thermal pixels both photos cover (so the figures compare)."""
    frame = _flir(name)
    visual = embedded_visual(frame)
    assert visual is not None
    size = (frame.width, frame.height)
    meta = registration_for(visual, size)
    plain = plain_resize(visual_size=(visual.shape[1], visual.shape[0]), thermal_size=size)
    (grey_meta, covered_meta), (grey_plain, covered_plain) = (
        warp_to_thermal(visual.grey(), reg) for reg in (meta, plain)
    )
    common = covered_meta & covered_plain
    return (
        edge_distance(frame.celsius, grey_meta, common),
        mutual_information(frame.celsius, grey_meta, common),
        edge_distance(frame.celsius, grey_plain, common),
        mutual_information(frame.celsius, grey_plain, common),
    )


def test_metadata_registration_puts_visual_edges_on_thermal_edges() -> None:
    """The camera's own alignment against a plain resize of the whole photo (printed): on
    every file with a photo, far better by edge distance (at most half) or by mutual
    information (at least 1.5 times); never worse by both."""
    rows = {name: _alignment_figures(name) for name, *_ in WITH_PHOTO}
    print("\nfile               edge px meta / plain   MI nats meta / plain")
    for name, (e_meta, mi_meta, e_plain, mi_plain) in rows.items():
        print(f"{name:18} {e_meta:7.2f} / {e_plain:6.2f}   {mi_meta:.4f} / {mi_plain:.4f}")
    for name, (e_meta, mi_meta, e_plain, mi_plain) in rows.items():
        assert e_meta <= 0.5 * e_plain or mi_meta >= 1.5 * mi_plain, name
        assert e_meta < e_plain or mi_meta > mi_plain, name
    # scenes with clear outlines: visual edges land at least twice as close to thermal ones
    for name in ("FLIR_B60.jpg", "ax8.jpg", "flir_example.jpg"):
        assert rows[name][0] <= 0.5 * rows[name][2], name
    # the T640's cluttered cabinet defeats the edge measure; its intensities agree far better
    assert rows["FLIR_T640.jpg"][1] >= 1.5 * rows["FLIR_T640.jpg"][3]


def test_camera_alignment_mapping_and_letterbox() -> None:
    """Offsets are visual pixels from the photo's centre; a digital zoom shrinks the photo on
    the frame; black letterbox bars are not counted as covered."""
    a = CameraAlignment(real_to_ir=1.5, offset_x=40, offset_y=-20, digital_zoom=1.25)
    reg = from_camera_alignment(a, visual_size=(640, 480), thermal_size=(160, 120))
    centre = reg.apply([[319.5 + 40, 239.5 - 20]])[0]
    assert centre == pytest.approx([79.5, 59.5])
    # one visual pixel spans 160 * 1.5 / (1.25 * 640) = 0.3 thermal pixels
    step = reg.apply([[100.0, 100.0], [110.0, 100.0]])
    assert step[1, 0] - step[0, 0] == pytest.approx(3.0)
    photo = np.full((480, 640), 200, np.uint8)
    photo[:60] = photo[-60:] = 0  # letterbox bars
    photo[:, :40] = 9
    assert picture_box(photo) == (40, 60, 640, 420)
    _, covered = warp_to_thermal(photo, plain_resize(visual_size=(640, 480), thermal_size=(64, 48)))
    assert not covered[:5].any()
    assert not covered[:, :3].any()
    assert covered[10:38, 5:].all()
    dark = np.zeros((48, 64), np.uint8)
    dark[20:22, 30:32] = 255  # a dark scene, not bars: the whole photo counts
    assert picture_box(dark) == (0, 0, 64, 48)


def _gradient(image: np.ndarray) -> np.ndarray:
    blurred = cv2.GaussianBlur(image.astype(np.float32), (0, 0), 1.0)
    return np.asarray(
        np.hypot(cv2.Sobel(blurred, cv2.CV_32F, 1, 0), cv2.Sobel(blurred, cv2.CV_32F, 0, 1))
    )


@pytest.mark.parametrize("name", ["FLIR_B60.jpg", "ax8.jpg", "flir_example.jpg"])
def test_metadata_places_the_photo_as_the_cameras_own_msx_picture(name: str) -> None:
    """The file's own JPEG is the camera's MSX picture (the photo's edges drawn over the
    thermogram, showing the whole frame): the photo's edges, scaled and moved to match it best,
    sit where the metadata says: Real2IR photo widths per picture width, the picture's centre
    (OffsetX, OffsetY) photo pixels from the photo's centre."""
    frame = _flir(name)
    visual = embedded_visual(frame)
    assert visual is not None
    a = visual.alignment
    assert a is not None
    root = samples_dir()
    assert root is not None
    shown = cv2.imdecode(np.frombuffer((root / "flir" / name).read_bytes(), np.uint8), 0)
    sh, sw = shown.shape
    inner = _gradient(shown)[sh // 6 : 5 * sh // 6, sw // 6 : 5 * sw // 6]
    vh, vw = visual.shape
    best = (-2.0, 0.0, 0.0, 0.0)
    for ratio in np.linspace(0.95, 1.05, 41) * a.real_to_ir:
        k = sw * ratio / vw  # picture pixels per photo pixel
        scaled = cv2.resize(
            visual.grey(), (round(vw * k), round(vh * k)), interpolation=cv2.INTER_AREA
        )
        found = cv2.matchTemplate(_gradient(scaled), inner, cv2.TM_CCOEFF_NORMED)
        _, score, _, (x, y) = cv2.minMaxLoc(found)
        # the picture's centre in photo pixels, from the photo's centre
        cx = (x + (sw - 1) / 2 - sw // 6 + 0.5) / k - 0.5 - (vw - 1) / 2
        cy = (y + (sh - 1) / 2 - sh // 6 + 0.5) / k - 0.5 - (vh - 1) / 2
        best = max(best, (score, float(ratio), cx, cy))
    score, ratio, cx, cy = best
    print(f"\n{name}: {ratio:.3f} (Real2IR {a.real_to_ir:.3f}), centre ({cx:.1f}, {cy:.1f})")
    assert score > 0.5
    assert ratio == pytest.approx(a.real_to_ir, rel=0.015)
    assert (cx, cy) == pytest.approx((a.offset_x, a.offset_y), abs=2.0)


def _zoom_of_own_jpeg(name: str) -> float:
    """How much the camera's own JPEG (its rendering of the frame) enlarges the thermal frame,
    found by correlating the °C with the JPEG's grey levels over zooms 1.00..2.00."""
    frame = _flir(name)
    root = samples_dir()
    assert root is not None
    shown = cv2.imdecode(np.frombuffer((root / "flir" / name).read_bytes(), np.uint8), 0)
    sh, sw = shown.shape
    inner = shown[sh // 4 : 3 * sh // 4, sw // 4 : 3 * sw // 4].astype(np.float32)
    best = (-2.0, 0.0)
    for zoom in np.arange(1.0, 2.001, 0.02):
        k = zoom * sw / frame.width
        size = (round(frame.width * k), round(frame.height * k))
        big = cv2.resize(frame.celsius.astype(np.float32), size, interpolation=cv2.INTER_LINEAR)
        score = float(cv2.matchTemplate(big, inner, cv2.TM_CCOEFF_NORMED).max())
        best = max(best, (score, float(zoom)))
    return best[1]


@pytest.mark.parametrize("name", ["FLIR_B60.jpg", "FLIR_T640.jpg", "flir_example.jpg"])
def test_digital_zoom_is_the_one_the_camera_showed(name: str) -> None:
    """The T640 picture was taken zoomed 1.6x: its own JPEG shows the frame's centre
    enlarged 1.6x, and its Real2IR is stated for that view; the others were not zoomed."""
    visual = embedded_visual(_flir(name))
    assert visual is not None
    assert visual.alignment is not None
    assert _zoom_of_own_jpeg(name) == pytest.approx(visual.alignment.digital_zoom, abs=0.021)


def test_calibration_from_matched_points_recovers_known_transform() -> None:
    rng = np.random.default_rng(7)
    truth = np.array([[0.31, 0.02, -12.0], [-0.015, 0.30, 8.5], [2e-5, -1e-5, 1.0]])
    visual_pts = rng.uniform([0, 0], [1280, 960], size=(24, 2))
    known = VisualRegistration(truth, visual_size=(1280, 960), thermal_size=(320, 240))
    thermal_pts = known.apply(visual_pts) + rng.normal(0.0, 0.05, size=(24, 2))
    fitted = fit_points(visual_pts, thermal_pts, visual_size=(1280, 960), thermal_size=(320, 240))
    grid = np.stack(np.meshgrid(np.linspace(0, 1279, 9), np.linspace(0, 959, 7)), -1)
    grid = grid.reshape(-1, 2)
    worst = float(np.abs(fitted.apply(grid) - known.apply(grid)).max())
    print(
        f"\nhomography from 24 noisy points: max error over the photo {worst:.3f} px, "
        f"reported RMS {fitted.rms_error_px:.3f} px"
    )
    assert worst < 0.5
    assert fitted.rms_error_px is not None
    assert fitted.rms_error_px < 0.2
    # affine from 3 exact points is exact
    affine = np.array([[0.25, 0.01, 3.0], [0.0, 0.26, -4.0], [0, 0, 1.0]])
    known_a = VisualRegistration(affine, visual_size=(640, 480), thermal_size=(160, 120))
    pts = np.array([[10.0, 10.0], [600.0, 40.0], [300.0, 470.0]])
    fit_a = fit_points(
        pts, known_a.apply(pts), visual_size=(640, 480), thermal_size=(160, 120), model="affine"
    )
    assert np.allclose(fit_a.matrix, affine, atol=1e-9)
    residuals = reprojection_errors(fitted, visual_pts, thermal_pts)
    assert float(np.sqrt(np.mean(residuals**2))) == pytest.approx(fitted.rms_error_px)
    # the calibration is stored per camera pair as JSON and reads back the same
    assert pair_key("vis 01", "T640/5590") == "vis_01--T640_5590"
    stored = VisualRegistration.from_json(fitted.to_json())
    assert np.allclose(stored.matrix, fitted.matrix)
    assert stored.points == 24


def test_checkerboard_calibration_on_a_synthetic_pair() -> None:
    # a heated checkerboard seen by a 640x480 visual camera and a 160x120 thermal one
    squares = np.kron((np.indices((7, 9)).sum(axis=0) % 2).astype(np.float32), np.ones((40, 40)))
    board = np.pad(squares, 40, constant_values=0.5)  # 360 x 440
    to_visual = np.array([[1.2, 0.05, 60.0], [-0.04, 1.15, 40.0], [0, 0, 1.0]])
    truth = np.array([[0.24, 0.004, 6.0], [-0.003, 0.245, 3.0], [0, 0, 1.0]])  # visual -> thermal
    visual = cv2.warpPerspective(board * 200 + 30, to_visual, (640, 480), borderValue=130)
    thermal = cv2.warpPerspective(
        board * 25 + 20, truth @ to_visual, (160, 120), borderValue=32.5, flags=cv2.INTER_AREA
    )
    fitted = fit_points(
        checkerboard_corners(visual, (8, 6)),
        checkerboard_corners(thermal, (8, 6)),
        visual_size=(640, 480),
        thermal_size=(160, 120),
        model="affine",
    )
    known = VisualRegistration(truth, visual_size=(640, 480), thermal_size=(160, 120))
    corners = checkerboard_corners(visual, (8, 6))
    worst = float(np.abs(fitted.apply(corners) - known.apply(corners)).max())
    print(f"\ncheckerboard affine: max error {worst:.3f} px, RMS {fitted.rms_error_px:.3f} px")
    assert worst < 0.5


@pytest.mark.parametrize(
    ("visual_pts", "thermal_pts", "model", "message"),
    [
        ([[0, 0], [1, 1], [2, 0]], [[0, 0], [1, 1], [2, 0]], "homography", "at least 4"),
        ([[0, 0], [1, 1]], [[0, 0], [1, 1]], "affine", "at least 3"),
        (
            [[0, 0], [1, 1], [2, 2], [3, 3]],
            [[0, 0], [1, 2], [2, 1], [3, 3]],
            "homography",
            "one line",
        ),
        ([[0, 0], [1, 1], [2, 0]], [[0, 0], [1, 1]], "affine", "2 thermal"),
        ([[0, 0], [1, np.nan], [2, 0]], [[0, 0], [1, 1], [2, 0]], "affine", "finite"),
    ],
)
def test_bad_calibrations_are_refused_clearly(
    visual_pts: list[list[float]], thermal_pts: list[list[float]], model: str, message: str
) -> None:
    with pytest.raises(AnalysisError, match=message):
        fit_points(
            visual_pts,
            thermal_pts,
            visual_size=(64, 48),
            thermal_size=(16, 12),
            model=model,  # type: ignore[arg-type]
        )


def test_calibration_file_errors_name_the_problem() -> None:
    with pytest.raises(AnalysisError, match="not JSON"):
        VisualRegistration.from_json("{nope")
    with pytest.raises(AnalysisError, match="format"):
        VisualRegistration.from_json(json.dumps({"matrix": [[1, 0, 0]]}))
    good = plain_resize(visual_size=(64, 48), thermal_size=(16, 12)).to_dict()
    with pytest.raises(AnalysisError, match="invalid"):
        VisualRegistration.from_dict({**good, "matrix": [[1, 0], [0, 1]]})


def _jpeg(rgb: np.ndarray) -> bytes:
    ok, data = cv2.imencode(".jpg", rgb)
    assert ok
    return bytes(data.tobytes())


@settings(max_examples=40, deadline=None)
@given(data=st.binary(max_size=400))
def test_garbage_visual_files_give_format_errors(data: bytes) -> None:
    with pytest.raises(ThermoscopeFormatError):
        parse_visual(data, source="junk.jpg")


@settings(max_examples=30, deadline=None)
@given(cut=st.integers(min_value=1, max_value=2000))
def test_truncated_visual_records_give_format_errors(cut: int) -> None:
    rgb = np.random.default_rng(1).integers(0, 255, (40, 60, 3), dtype=np.uint8)
    data = _jpeg(rgb)
    png = cv2.imencode(".png", rgb)[1].tobytes()
    for blob in (data, png):
        with pytest.raises(ThermoscopeFormatError):
            decode_image(blob[: max(0, len(blob) - cut)])


def test_truncated_embedded_photo_names_the_file() -> None:
    frame = _flir("ax8.jpg")
    jpeg = frame.metadata.extra["embedded_image_jpeg"]
    broken = replace(
        frame.metadata, extra={**frame.metadata.extra, "embedded_image_jpeg": jpeg[:-500]}
    )
    with pytest.raises(TruncatedFileError, match=r"ax8\.jpg.*embedded visual image"):
        embedded_visual(ThermalFrame(frame.celsius, frame.raw, broken))


def test_plain_visual_file_and_missing_alignment(tmp_path: Path) -> None:
    rgb = np.zeros((48, 64, 3), np.uint8)
    rgb[:, :, 0] = 200  # blue in OpenCV's BGR
    path = tmp_path / "cam.jpg"
    path.write_bytes(_jpeg(rgb))
    visual = load_visual(path, camera="vis-1")
    assert visual.shape == (48, 64)
    assert visual.rgb[..., 2].mean() > 150
    with pytest.raises(AnalysisError, match="no camera alignment"):
        registration_for(visual, (16, 12))


def test_fused_views_and_visual_model_channel() -> None:
    frame = _flir("flir_example.jpg")
    visual = embedded_visual(frame)
    assert visual is not None
    reg = registration_for(visual, (frame.width, frame.height))
    views = {m: fused_view(frame.celsius, visual, reg, mode=m) for m in ("pip", "blend", "edges")}
    for mode, view in views.items():
        assert view.shape == (frame.height, frame.width, 3), mode
        assert view.dtype == np.uint8, mode
        assert encode_png(view)[:4] == b"\x89PNG"
    # the views differ from each other and from the plain thermogram
    assert not np.array_equal(views["pip"], views["blend"])
    assert not np.array_equal(views["blend"], views["edges"])
    # the registered photo feeds a model's "visual" input channel
    warped, _ = warp_to_thermal(visual.rgb, reg)
    contract = InputContract(
        window_c=(20.0, 70.0), channels=("celsius", "visual"), height=64, width=48
    )
    x = contract.apply(frame.celsius, visual=warped)
    assert x.shape == (2, 64, 48)
    assert 0.05 < float(x[1].mean()) < 0.95  # real photo content, not the empty border
    with pytest.raises(RenderError, match="unknown fusion mode"):
        fuse(frame.celsius, warped, mode="x-ray")  # type: ignore[arg-type]


def test_core_visual_image_checks() -> None:
    with pytest.raises(ValueError, match="uint8"):
        VisualImage(np.zeros((4, 4), np.uint8))
    with pytest.raises(ValueError, match="real_to_ir"):
        CameraAlignment(real_to_ir=0.0)
    with pytest.raises(ValueError, match="digital_zoom"):
        CameraAlignment(real_to_ir=1.2, digital_zoom=0.5)


def test_html_report_shows_a_fused_view_when_the_part_has_a_photo() -> None:
    frame = _flir("flir_example.jpg")
    visual = embedded_visual(frame)
    inspection = Inspection.of("mug.jpg", None, [])
    with_photo = ReportPart(inspection, celsius=frame, visual=visual)
    without = ReportPart(Inspection.of("mug2.jpg", None, []), celsius=frame)
    document = build_html_report([with_photo, without], title="fusion")
    assert document.count('class="overlay fused"') == 1
    assert "visual + thermal view of mug.jpg" in document


def test_a_view_of_a_part_record_carries_its_photo() -> None:
    frame = _flir("ax8.jpg")
    visual = embedded_visual(frame)
    record = PartRecord("p1", (View("top", (frame,), camera="ax8", visual=visual),))
    assert record.view("top").visual is visual
    with pytest.raises(PartRecordError, match="not a VisualImage"):
        View("top", (frame,), visual=frame.celsius)  # type: ignore[arg-type]
