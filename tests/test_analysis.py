"""Analysis functions on hand-made arrays with known answers, and properties on random ones."""

from __future__ import annotations

import math

import hypothesis.extra.numpy as hnp
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from thermoscope.analysis import registration, spatial, temporal
from thermoscope.analysis.spatial import AnalysisError, PixelValue


def flat(value: float = 20.0, shape: tuple[int, int] = (8, 10)) -> np.ndarray:
    return np.full(shape, value, dtype=np.float32)


# --------------------------------------------------------------------------- extremes


def test_max_and_min_report_value_and_pixel_with_origin() -> None:
    a = flat()
    a[3, 7] = 55.5
    a[6, 1] = -4.0
    assert spatial.region_max(a) == PixelValue(55.5, 7, 3)
    assert spatial.region_min(a) == PixelValue(-4.0, 1, 6)
    assert spatial.region_max(a, origin=(100, 200)) == PixelValue(55.5, 107, 203)


def test_mask_limits_the_region() -> None:
    a = flat()
    a[3, 7] = 55.5
    a[1, 1] = 30.0
    mask = np.zeros(a.shape, bool)
    mask[:3, :3] = True
    assert spatial.region_max(a, mask) == PixelValue(30.0, 1, 1)
    assert spatial.region_mean(a, mask) == pytest.approx((8 * 20 + 30) / 9)


def test_nan_pixels_are_outside_and_an_all_nan_region_has_no_value() -> None:
    a = flat()
    a[0, 0] = np.nan
    a[2, 2] = 21.0
    assert spatial.region_max(a) == PixelValue(21.0, 2, 2)
    assert spatial.region_mean(a) == pytest.approx((78 * 20 + 21) / 79)
    empty = np.full((3, 3), np.nan, np.float32)
    result = spatial.region_max(empty)
    assert math.isnan(result.value)
    assert (result.x, result.y) == (None, None)
    assert math.isnan(spatial.region_mean(empty))
    assert math.isnan(spatial.region_percentile(empty, q=50).value)


def test_ties_report_the_first_pixel_in_row_major_order() -> None:
    a = flat()
    a[4, 2] = a[2, 5] = 30.0
    assert spatial.region_max(a) == PixelValue(30.0, 5, 2)


def test_percentile_and_median_match_numpy_and_point_at_the_nearest_pixel() -> None:
    a = np.arange(100, dtype=np.float32).reshape(10, 10)
    p = spatial.region_percentile(a, q=95)
    assert p.value == pytest.approx(np.percentile(a, 95))
    assert (p.x, p.y) == (4, 9)  # 94.05 is nearest to 94
    assert spatial.region_median(a) == pytest.approx(49.5)
    with pytest.raises(AnalysisError, match=r"0\.\.100"):
        spatial.region_percentile(a, q=101)


def test_statistic_dispatch() -> None:
    a = flat()
    a[1, 2] = 40.0
    assert spatial.region_statistic(a, statistic="max") == PixelValue(40.0, 2, 1)
    assert spatial.region_statistic(a, statistic="median").value == 20.0
    assert spatial.region_statistic(a, statistic="mean").x is None
    with pytest.raises(AnalysisError, match="unknown statistic"):
        spatial.region_statistic(a, statistic="mode")  # type: ignore[arg-type]


def test_shape_checks() -> None:
    with pytest.raises(AnalysisError, match="2-D"):
        spatial.region_max(np.zeros(5, np.float32))
    with pytest.raises(AnalysisError, match="mask shape"):
        spatial.region_max(flat(), np.ones((2, 2), bool))


# --------------------------------------------------------------------------- spots


def test_hot_spot_area_is_the_largest_connected_blob_with_its_hottest_pixel() -> None:
    a = flat(shape=(20, 20))
    a[2:5, 2:5] = 50.0  # 9 px
    a[10:14, 10:14] = 45.0  # 16 px, hottest pixel below
    a[12, 13] = 47.0
    a[14, 14] = 60.0  # diagonal neighbour of the 16 px blob: 8-connected, 17 px
    s = spatial.hot_spot_area(a, threshold=40.0, origin=(100, 0))
    assert (s.area_px, s.total_px, s.spots) == (17, 26, 2)
    assert (s.x, s.y) == (114, 14)
    assert s.threshold == 40.0


def test_hot_spot_relative_to_median_and_no_spot() -> None:
    a = flat(shape=(10, 10))
    a[5, 5] = 26.0
    s = spatial.hot_spot_area(a, above_median=5.0)
    assert (s.area_px, s.x, s.y, s.threshold) == (1, 5, 5, 25.0)
    none = spatial.hot_spot_area(a, threshold=30.0)
    assert (none.area_px, none.x, none.y, none.spots) == (0, None, None, 0)
    with pytest.raises(AnalysisError, match="exactly one threshold"):
        spatial.hot_spot_area(a)


def test_cold_spot_area_uses_a_threshold_below_and_the_coldest_pixel() -> None:
    a = flat(shape=(10, 10))
    a[1:3, 1:4] = 12.0
    a[2, 3] = 10.0
    mask = np.ones(a.shape, bool)
    mask[1, 1] = False  # a masked-out pixel does not count
    s = spatial.cold_spot_area(a, mask, below_median=5.0)
    assert (s.area_px, s.x, s.y, s.threshold) == (5, 3, 2, 15.0)
    assert spatial.cold_spot_area(a, threshold=11.0).area_px == 1


# --------------------------------------------------------------------------- ΔT, asymmetry


def test_delta_t_between_regions_and_against_an_ambient_reading() -> None:
    a, b = flat(), flat(18.0)
    a[2, 3] = 50.0
    d = spatial.delta_t(a, b, origin=(10, 10))
    assert d == PixelValue(32.0, 13, 12)
    assert spatial.delta_t(a, 23.0).value == pytest.approx(27.0)
    mean_vs_max = spatial.delta_t(a, b, statistic="mean", reference_statistic="max")
    assert mean_vs_max.value == pytest.approx(a.mean(dtype=np.float64) - 18.0)
    assert mean_vs_max.x is None


def test_asymmetry_of_statistics_and_mirrored_pixel_by_pixel() -> None:
    left = np.tile(np.arange(6, dtype=np.float32), (4, 1))  # rises to the right
    right = np.flip(left, axis=1).copy()  # its mirror image
    assert spatial.asymmetry(left, right).value == pytest.approx(0.0)
    assert spatial.asymmetry(left, right, mirror="horizontal").value == pytest.approx(0.0)
    right[2, 1] += 3.0  # a defect in the partner, mirrored onto column 4 of the region
    p = spatial.asymmetry(left, right, mirror="horizontal", origin=(50, 60))
    assert p == PixelValue(-3.0, 54, 62)
    top = np.arange(12, dtype=np.float32).reshape(4, 3)
    assert spatial.asymmetry(top, np.flip(top, 0), mirror="vertical").value == 0.0
    with pytest.raises(AnalysisError, match="equal shapes"):
        spatial.asymmetry(left, left[:, :3], mirror="horizontal")
    warm = left + 2.5
    assert spatial.asymmetry(warm, left, statistic="max") == PixelValue(2.5, 5, 0)


# --------------------------------------------------------------------------- gradient


def test_gradient_of_a_ramp_and_a_step() -> None:
    ramp = np.tile(np.arange(10, dtype=np.float32) * 2.0, (5, 1))
    assert spatial.max_gradient(ramp).value == pytest.approx(2.0)
    assert spatial.max_gradient(ramp, pixel_pitch_mm=0.5).value == pytest.approx(4.0)
    step = flat(shape=(6, 6))
    step[:, 3:] = 30.0
    g = spatial.max_gradient(step, origin=(1, 1))
    assert g.value == pytest.approx(5.0)  # central difference (30 - 20) / 2
    assert (g.x, g.y) == (3, 1)  # column 2, row 0, plus origin
    with pytest.raises(AnalysisError, match="positive"):
        spatial.max_gradient(step, pixel_pitch_mm=0.0)
    assert spatial.max_gradient(np.ones((1, 1), np.float32)).value == 0.0


# --------------------------------------------------------------------------- curves


def test_theil_sen_ignores_outliers() -> None:
    t = np.arange(20, dtype=float)
    v = 20 + 1.5 * t
    v[[3, 11, 17]] += [30, -25, 40]
    fit = temporal.theil_sen(t, v)
    assert fit.slope == pytest.approx(1.5)
    assert fit.intercept == pytest.approx(20.0)
    assert fit.points == 20
    with pytest.raises(AnalysisError, match="at least 2"):
        temporal.theil_sen([1.0], [2.0])


def test_heating_rate_over_a_window() -> None:
    t = np.linspace(0, 10, 51)
    v = np.where(t < 4, 20 + 5 * t, 40 - 2 * (t - 4))
    assert temporal.heating_rate(t, v, window_s=(0, 3.9)).slope == pytest.approx(5.0)
    assert temporal.heating_rate(t, v, window_s=(5, 10)).slope == pytest.approx(-2.0)
    with pytest.raises(AnalysisError, match="at least 2"):
        temporal.heating_rate(t, v, window_s=(3.01, 3.1))
    with pytest.raises(AnalysisError, match="t0 < t1"):
        temporal.heating_rate(t, v, window_s=(5, 5))
    with pytest.raises(AnalysisError, match="increasing"):
        temporal.heating_rate([0, 2, 1], [1, 2, 3])


def test_time_to_reach_interpolates() -> None:
    t = [0.0, 1.0, 2.0, 3.0]
    v = [20.0, 40.0, 60.0, 80.0]
    assert temporal.time_to_reach(t, v, 50.0) == pytest.approx(1.5)
    assert temporal.time_to_reach(t, v, 10.0) == 0.0
    assert temporal.time_to_reach(t, v, 90.0) is None
    assert temporal.time_to_reach(t, v[::-1], 30.0, direction="falling") == pytest.approx(2.5)
    assert temporal.time_to_reach(t, [20.0, np.nan, 60.0, 80.0], 40.0) == pytest.approx(1.0)


def test_curve_deviation_against_a_golden_curve() -> None:
    t = np.arange(0, 6, 0.5)
    golden_t, golden_v = [0.0, 5.0], [20.0, 70.0]
    v = 20 + 10 * t
    v[7] += 2.5  # t = 3.5
    v[2] -= 1.0
    d = temporal.curve_deviation(t, v, golden_t, golden_v)
    assert (d.value, d.time_s, d.index, d.compared) == (pytest.approx(2.5), 3.5, 7, 11)
    with pytest.raises(AnalysisError, match="span"):
        temporal.curve_deviation([10.0, 11.0], [1.0, 2.0], golden_t, golden_v)


def test_series_statistic_per_frame() -> None:
    stack = np.stack([flat(20.0 + i, (4, 4)) for i in range(3)])
    stack[1, 0, 0] = 90.0
    stack[2, 1, 1] = np.nan
    mask = np.ones((4, 4), bool)
    assert temporal.series_statistic(stack, statistic="max").tolist() == [20, 90, 22]
    assert temporal.series_statistic(stack, mask, statistic="mean")[2] == pytest.approx(22.0)
    assert temporal.series_statistic(stack, statistic="median").tolist() == [20, 21, 22]
    assert temporal.series_statistic(stack, statistic="min").tolist() == [20, 21, 22]
    with pytest.raises(AnalysisError, match=r"\(N, H, W\)"):
        temporal.series_statistic(stack[0], statistic="max")


# --------------------------------------------------------------------------- registration


def blobs(shape: tuple[int, int] = (120, 160)) -> np.ndarray:
    yy, xx = np.mgrid[0 : shape[0], 0 : shape[1]]
    scene = np.full(shape, 25.0)
    for cx, cy, r in ((40, 30, 6), (110, 40, 9), (70, 85, 7), (130, 95, 5)):
        scene += 30 * np.exp(-((xx - cx) ** 2 + (yy - cy) ** 2) / (2 * r * r))
    return scene.astype(np.float32)


def shifted(image: np.ndarray, dx: float, dy: float, angle: float = 0.0) -> np.ndarray:
    h, w = image.shape
    motion = registration.Motion(dx, dy, angle, ((w - 1) / 2, (h - 1) / 2))
    import cv2

    return cv2.warpAffine(image, motion.matrix(), (w, h), flags=cv2.INTER_LINEAR, borderValue=25.0)


def test_phase_correlation_finds_a_shift() -> None:
    ref = blobs()
    m = registration.estimate_translation(ref, shifted(ref, 5.0, -3.0))
    assert (m.dx, m.dy) == (pytest.approx(5.0, abs=0.4), pytest.approx(-3.0, abs=0.4))
    assert (round(m.dx), round(m.dy)) == (5, -3)
    assert m.shift_px == pytest.approx(math.hypot(5, 3), abs=0.4)
    far = registration.estimate_translation(ref, shifted(ref, -12.0, 7.0), max_shift_px=20)
    assert (round(far.dx), round(far.dy)) == (-12, 7)


def test_rigid_registration_finds_a_small_rotation() -> None:
    ref = blobs()
    m = registration.estimate_rigid(ref, shifted(ref, 2.0, 1.0, 3.0))
    assert m.angle_deg == pytest.approx(3.0, abs=0.2)
    back = registration.warp_to_reference(shifted(ref, 2.0, 1.0, 3.0), m)
    inner = (slice(15, -15), slice(15, -15))
    assert np.nanmax(np.abs(back[inner] - ref[inner])) < 3.0


def test_templates_and_point_fit() -> None:
    ref = blobs()
    moved = shifted(ref, 3.0, 2.0)
    x, y, score = registration.locate_template(moved, ref[20:41, 30:51], near=(30, 20), search_px=6)
    assert (x, y) == (pytest.approx(33.0, abs=0.2), pytest.approx(22.0, abs=0.2))
    assert score > 0.99
    src = [(0.0, 0.0), (10.0, 0.0), (0.0, 10.0)]
    a = math.radians(5.0)
    dst = [
        (px * math.cos(a) + py * math.sin(a) + 1, -px * math.sin(a) + py * math.cos(a))
        for px, py in src
    ]
    m = registration.fit_rigid(src, dst)
    assert m.angle_deg == pytest.approx(5.0)
    matrix = m.matrix()
    for (px, py), (qx, qy) in zip(src, dst, strict=True):
        assert matrix @ [px, py, 1.0] == pytest.approx([qx, qy])
    assert registration.fit_rigid(src, dst, rotation=False).angle_deg == 0.0
    with pytest.raises(AnalysisError, match="same"):
        registration.fit_rigid(src, dst[:2])


def test_warp_keeps_measured_values_and_marks_the_outside_nan() -> None:
    ref = blobs()
    back = registration.warp_to_reference(ref, registration.Motion(4.0, 0.0))
    np.testing.assert_array_equal(back[:, :-4], ref[:, 4:])
    assert np.isnan(back[:, -4:]).all()


# --------------------------------------------------------------------------- properties

images = hnp.arrays(
    np.float32,
    st.tuples(st.integers(1, 12), st.integers(1, 12)),
    elements=st.floats(-50, 500, width=32) | st.just(float("nan")),
)


@st.composite
def image_and_mask(draw: st.DrawFn) -> tuple[np.ndarray, np.ndarray]:
    image = draw(images)
    mask = draw(hnp.arrays(np.bool_, image.shape))
    return image, mask


@settings(max_examples=200, deadline=None)
@given(image_and_mask())
def test_extremes_equal_numpy_on_the_masked_pixels(case: tuple[np.ndarray, np.ndarray]) -> None:
    image, mask = case
    before = image.copy(), mask.copy()
    valid = image[mask & ~np.isnan(image)]
    hi, lo = spatial.region_max(image, mask), spatial.region_min(image, mask)
    mean = spatial.region_mean(image, mask)
    if valid.size == 0:
        assert math.isnan(hi.value)
        assert math.isnan(lo.value)
        assert math.isnan(mean)
    else:
        assert hi.value == valid.max()
        assert lo.value == valid.min()
        assert hi.x is not None
        assert hi.y is not None
        assert mask[hi.y, hi.x]
        assert image[hi.y, hi.x] == hi.value
        assert mean == pytest.approx(valid.mean(dtype=np.float64), rel=1e-9, abs=1e-9)
        for q in (0.0, 37.5, 50.0, 100.0):
            p = spatial.region_percentile(image, mask, q=q)
            assert p.value == pytest.approx(float(np.percentile(valid, q)), rel=1e-6, abs=1e-4)
            assert p.x is not None
            assert p.y is not None
            assert mask[p.y, p.x]
    np.testing.assert_array_equal(image, before[0])
    np.testing.assert_array_equal(mask, before[1])


@settings(max_examples=200, deadline=None)
@given(image_and_mask(), st.floats(-50, 500))
def test_spot_areas_are_bounded_by_the_pixels_beyond_the_threshold(
    case: tuple[np.ndarray, np.ndarray], threshold: float
) -> None:
    image, mask = case
    hot = spatial.hot_spot_area(image, mask, threshold=threshold)
    cold = spatial.cold_spot_area(image, mask, threshold=threshold)
    assert hot.total_px == int(np.sum((image > threshold) & mask))
    assert cold.total_px == int(np.sum((image < threshold) & mask))
    for s, beyond in ((hot, image > threshold), (cold, image < threshold)):
        assert 0 <= s.area_px <= s.total_px
        assert (s.spots == 0) == (s.area_px == 0)
        if s.area_px:
            assert s.x is not None
            assert s.y is not None
            assert beyond[s.y, s.x]
            assert mask[s.y, s.x]


@settings(max_examples=200, deadline=None)
@given(images.filter(lambda a: not np.isnan(a).any()))
def test_gradient_equals_numpy_gradient(image: np.ndarray) -> None:
    gy = np.gradient(image, axis=0) if image.shape[0] > 1 else np.zeros_like(image)
    gx = np.gradient(image, axis=1) if image.shape[1] > 1 else np.zeros_like(image)
    expected = np.hypot(gx, gy)
    g = spatial.max_gradient(image)
    assert g.value == pytest.approx(float(expected.max()), rel=1e-5, abs=1e-3)
    assert g.x is not None
    assert g.y is not None
    assert expected[g.y, g.x] == pytest.approx(g.value, rel=1e-5, abs=1e-3)
