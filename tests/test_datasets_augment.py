"""Thermal-aware augmentation: invariants, shapes moving with the pixels, inputs untouched."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from synthetic_frames import planck_frame
from thermoscope.annotations import (
    AnnotatedItem,
    Annotation,
    Box,
    Keyframe,
    Mask,
    Point,
    Polygon,
    Polyline,
    Provenance,
    RotatedBox,
    Shape,
    ToleranceLabel,
    Track,
    VerdictLabel,
)
from thermoscope.core import FrameMetadata, ObjectParameters, ThermalFrame, Verdict
from thermoscope.datasets import augment as aug
from thermoscope.storage.identity import content_id

ME = Provenance.human("tester")
H, W = 24, 32


def frame() -> ThermalFrame:
    return planck_frame(H, W)


def shapes() -> list[Shape]:
    mask = np.zeros((H, W), dtype=bool)
    mask[3:7, 20:26] = True
    return [
        Box(2, 3, 6, 4),
        RotatedBox(12, 10, 6, 3, 30),
        # binary fractions (exact under mirroring), no pixel centre on an edge
        Polygon(((1.25, 1.125), (10.375, 2.375), (5.125, 9.25))),
        Polyline(((0, 0), (8, 20))),
        Point(4.5, 7.5),
        Mask.from_array(mask),
    ]


def item(frames: list[ThermalFrame]) -> AnnotatedItem:
    n = len(frames)
    return AnnotatedItem(
        item_id=content_id(frames),
        width=W,
        height=H,
        frame_count=n,
        annotations=tuple(
            Annotation(label="x", shape=s, frame=i % n, provenance=ME)
            for i, s in enumerate(shapes())
        ),
        tracks=(
            Track(
                label="t",
                keyframes=(Keyframe(0, Box(2, 2, 4, 4)), Keyframe(max(n - 1, 1), Box(10, 8, 4, 4)))
                if n > 1
                else (Keyframe(0, Box(2, 2, 4, 4)),),
                provenance=ME,
            ),
        ),
        verdicts=(VerdictLabel(verdict=Verdict.NG, reason="r", frame=n - 1, provenance=ME),),
        tolerances=(ToleranceLabel(name="zone", shape=Box(0, 0, 8, 8), high_c=80, provenance=ME),),
    )


def snapshot(frames: list[ThermalFrame]) -> list[tuple[np.ndarray, np.ndarray | None]]:
    return [(f.celsius.copy(), None if f.raw is None else f.raw.copy()) for f in frames]


def same(frames: list[ThermalFrame], snap: list[tuple[np.ndarray, np.ndarray | None]]) -> bool:
    for f, (c, r) in zip(frames, snap, strict=True):
        if not np.array_equal(f.celsius, c, equal_nan=True):
            return False
        if (f.raw is None) != (r is None) or (r is not None and not np.array_equal(f.raw, r)):
            return False
    return True


def test_flips_twice_are_the_identity_for_pixels_counts_shapes_and_annotations() -> None:
    f = frame()
    ann = item([f])
    for direction in ("horizontal", "vertical"):
        once = aug.flip(f, direction=direction, shapes=shapes(), annotation=ann)
        assert not np.array_equal(once.frame.celsius, f.celsius)
        twice = aug.flip(
            once.frames,
            direction=direction,
            shapes=[s for s in once.shapes if s is not None],
            annotation=once.annotation,
        )
        assert np.array_equal(twice.frame.celsius, f.celsius)
        assert twice.frame.raw is not None
        assert np.array_equal(twice.frame.raw, f.raw)
        assert twice.annotation == ann
        assert list(twice.shapes) == _normalised(shapes())


def _normalised(items: list[Shape]) -> list[Shape]:
    """Rotated-box angles come back in (-180, 180]."""
    return [
        RotatedBox(s.cx, s.cy, s.width, s.height, (s.angle_deg + 180) % 360 - 180)
        if isinstance(s, RotatedBox)
        else s
        for s in items
    ]


def test_four_quarter_turns_are_the_identity() -> None:
    f = frame()
    ann = item([f])
    result = aug.rotate90(f, 1, annotation=ann, shapes=shapes())
    assert result.frame.shape == (W, H)
    assert result.annotation is not None
    assert (result.annotation.width, result.annotation.height) == (H, W)
    for _ in range(3):
        result = aug.rotate90(
            result.frames,
            1,
            annotation=result.annotation,
            shapes=[s for s in result.shapes if s is not None],
        )
    assert np.array_equal(result.frame.celsius, f.celsius)
    assert result.annotation == ann
    for got, want in zip(result.shapes, _normalised(shapes()), strict=True):
        assert _close(got, want)


def _close(a: object, b: object) -> bool:
    if isinstance(a, Mask) or isinstance(b, Mask):
        return a == b
    da, db = a.to_dict(), b.to_dict()
    return da.keys() == db.keys() and all(
        np.allclose(da[k], db[k], atol=1e-9) if k != "type" else da[k] == db[k] for k in da
    )


@pytest.mark.parametrize("k", [1, 2, 3])
@pytest.mark.parametrize("direction", ["horizontal", "vertical"])
def test_shapes_select_the_same_pixels_after_exact_geometry(k: int, direction: str) -> None:
    """A shape's mask, transformed like the image, is the transformed shape's mask."""
    f = frame()
    for op, transform in (
        (lambda s: aug.rotate90(f, k, shapes=s), lambda m: np.rot90(m, k)),
        (
            lambda s: aug.flip(f, direction=direction, shapes=s),
            (lambda m: m[:, ::-1]) if direction == "horizontal" else (lambda m: m[::-1]),
        ),
    ):
        out = op(shapes())
        height, width = out.frame.shape
        for before, after in zip(shapes(), out.shapes, strict=True):
            assert after is not None
            if isinstance(before, Polyline):
                continue  # line rasterisation breaks ties by direction; vertices checked below
            expected = transform(before.to_mask((H, W)))
            assert np.array_equal(after.to_mask((height, width)), expected), before


def test_polyline_vertices_move_like_point_arrays() -> None:
    f = frame()
    line = Polyline(((4.25, 4.5), (12.0, 18.0)))  # stays inside (no clamping)
    points = np.array(line.points)
    for op in (
        lambda s: aug.rotate90(f, 3, shapes=s),
        lambda s: aug.flip(f, direction="vertical", shapes=s),
        lambda s: aug.rotate(f, 4.0, shapes=s),
    ):
        moved, plain = op([line, points]).shapes
        assert isinstance(moved, Polyline)
        assert np.allclose(np.array(moved.points), plain)


def test_plain_point_arrays_move_with_the_pixels() -> None:
    f = frame()
    hot = np.unravel_index(np.argmax(f.celsius), f.shape)
    centre = np.array([[hot[1] + 0.5, hot[0] + 0.5]])  # (x, y) of the hottest pixel's centre
    for result in (
        aug.rotate90(f, 1, shapes=[centre]),
        aug.flip(f, direction="vertical", shapes=[centre]),
        aug.rotate(f, 0.0, shapes=[centre]),
    ):
        ((x, y),) = np.asarray(result.shapes[0])
        assert result.frame.celsius[int(y), int(x)] == pytest.approx(result.frame.celsius.max())


def test_small_rotation_keeps_size_drops_counts_and_clips_shapes() -> None:
    f = frame()
    ann = item([f])
    result = aug.rotate(f, 12.0, annotation=ann, shapes=shapes())
    assert result.frame.shape == f.shape
    assert result.frame.raw is None
    assert result.frame.metadata == f.metadata
    assert isinstance(result.shapes[0], RotatedBox)
    assert result.shapes[0].angle_deg == pytest.approx(-12.0)
    assert result.annotation is not None
    assert result.annotation.item_id == content_id(list(result.frames))
    for record in (*result.annotation.annotations, *result.annotation.tolerances):
        assert record.shape.inside(W, H)
    # the rotation about the centre keeps the centre's temperature
    flat = ThermalFrame(np.tile(np.arange(33, dtype=np.float32), (25, 1)))  # odd: a centre pixel
    turned = aug.rotate(flat, 90.0).frame
    assert turned.celsius[12, 16] == pytest.approx(flat.celsius[12, 16])
    assert turned.celsius[11, 16] == pytest.approx(flat.celsius[12, 17])  # x to -y (CCW)
    nan_border = aug.rotate(flat, 30.0, border="nan").frame
    assert np.isnan(nan_border.celsius[0, 0])
    assert not np.isnan(aug.rotate(flat, 30.0).frame.celsius).any()


def test_a_shape_turned_out_of_the_frame_is_dropped() -> None:
    f = frame()
    corner = Point(0.2, 0.2)
    result = aug.rotate(f, 20.0, shapes=[corner, Box(0, 0, 1, 1)])
    assert result.shapes[0] is None


@settings(max_examples=30, deadline=None)
@given(netd=st.floats(0.01, 2.0), seed=st.integers(0, 2**32 - 1))
def test_noise_has_the_given_netd(netd: float, seed: int) -> None:
    f = ThermalFrame(np.full((128, 128), 30.0, dtype=np.float32))
    noisy = aug.add_noise(f, netd_c=netd, rng=np.random.default_rng(seed))
    residual = noisy.celsius.astype(np.float64) - 30.0
    # 16384 samples: the sample std is within ~2 % (4.5 sigma) of the true one
    assert np.std(residual) == pytest.approx(netd, rel=0.035)
    assert abs(np.mean(residual)) < 5 * netd / 128
    assert noisy.raw is None


def test_noise_is_reproducible_for_a_seed() -> None:
    f = frame()
    a = aug.add_noise(f, netd_c=0.05, rng=np.random.default_rng(7))
    b = aug.add_noise(f, netd_c=0.05, rng=np.random.default_rng(7))
    assert np.array_equal(a.celsius, b.celsius)


def test_ambient_offset_shifts_scene_and_surroundings() -> None:
    f = frame()
    warm = aug.offset_ambient(f, offset_c=3.0)
    assert np.allclose(warm.celsius, f.celsius + 3.0, atol=1e-4)
    params = f.metadata.parameters
    assert params is not None
    assert warm.metadata.parameters == params.updated(
        reflected_temp_c=params.reflected_temp_c + 3,
        atmospheric_temp_c=params.atmospheric_temp_c + 3,
    )


@pytest.mark.parametrize("calibrated", [True, False])
def test_emissivity_change_round_trips_and_moves_hot_pixels(calibrated: bool) -> None:
    f = frame()
    if not calibrated:
        f = ThermalFrame(f.celsius, metadata=FrameMetadata(parameters=ObjectParameters(0.95)))
    low = aug.change_emissivity(f, emissivity=0.7)
    assert low.metadata.parameters is not None
    assert low.metadata.parameters.emissivity == 0.7
    # less emissive surfaces read hotter for the same signal, above the reflected 20 °C
    hot = f.celsius > 25
    assert (low.celsius[hot] > f.celsius[hot]).all()
    back = aug.change_emissivity(low, emissivity=0.95)
    assert np.allclose(back.celsius, f.celsius, atol=1e-3)


def test_the_radiance_approximation_is_close_to_the_calibration() -> None:
    f = frame()
    exact = aug.change_emissivity(f, emissivity=0.8)
    bare = ThermalFrame(f.celsius, metadata=FrameMetadata(parameters=f.metadata.parameters))
    approx = aug.change_emissivity(bare, emissivity=0.8)
    assert np.abs(approx.celsius - exact.celsius).max() < 0.5  # °C, over 25-75 °C


def test_time_shift_and_crop_move_annotations() -> None:
    frames = [planck_frame(H, W, seed=i, index=i) for i in range(6)]
    frames = [
        ThermalFrame(f.celsius, f.raw, FrameMetadata(frame_index=i, timestamp_s=0.5 * i))
        for i, f in enumerate(frames)
    ]
    ann = item(frames)
    shifted, moved = aug.shift_time(frames, shift=2, annotation=ann)
    assert [f.metadata.timestamp_s for f in shifted] == [0.5 * i for i in range(6)]
    assert np.array_equal(shifted[0].celsius, frames[0].celsius)
    assert np.array_equal(shifted[1].celsius, frames[0].celsius)
    assert np.array_equal(shifted[5].celsius, frames[3].celsius)
    assert moved is not None
    assert moved.item_id == content_id(shifted)
    assert [a.frame for a in moved.annotations] == [f + 2 for f in (0, 1, 2, 3)]
    assert moved.verdicts == ()  # the verdict on frame 5 left the sequence
    cropped, window = aug.crop_time(frames, start=1, length=3, annotation=ann)
    assert [f.metadata.frame_index for f in cropped] == [0, 1, 2]
    assert [f.metadata.timestamp_s for f in cropped] == [0.0, 0.5, 1.0]
    assert window is not None
    assert window.frame_count == 3
    track = window.tracks[0]
    assert [k.frame for k in track.keyframes] == [0, 2]
    assert track.shape_at(1) == ann.tracks[0].shape_at(2)  # interpolation kept
    with pytest.raises(ValueError, match="window"):
        aug.crop_time(frames, start=4, length=3)


def test_augment_policy_is_reproducible_and_keeps_annotations_valid() -> None:
    frames = [planck_frame(H, W, seed=i, index=i) for i in range(4)]
    ann = item(frames)
    policy = aug.AugmentPolicy(
        quarter_turns=True,
        max_angle_deg=8.0,
        netd_c=(0.02, 0.05),
        ambient_offset_c=(-2.0, 2.0),
        emissivity=(0.85, 0.98),
        time_shift=(-1, 1),
    )
    a = aug.augment(frames, rng=np.random.default_rng(5), policy=policy, annotation=ann)
    b = aug.augment(frames, rng=np.random.default_rng(5), policy=policy, annotation=ann)
    assert all(
        np.array_equal(x.celsius, y.celsius) for x, y in zip(a.frames, b.frames, strict=True)
    )
    assert a.annotation == b.annotation
    assert a.annotation is not None
    assert a.annotation.item_id == content_id(list(a.frames))
    AnnotatedItem.from_dict(a.annotation.to_dict())  # still a valid item


def test_no_function_modifies_its_inputs() -> None:
    frames = [planck_frame(H, W, seed=i, index=i) for i in range(3)]
    ann = item(frames)
    points = [np.array([[1.0, 2.0], [3.0, 4.0]])]
    before, ann_before, points_before = snapshot(frames), ann.to_dict(), [p.copy() for p in points]
    rng = np.random.default_rng(0)
    aug.rotate90(frames, 1, shapes=points, annotation=ann)
    aug.flip(frames, shapes=points, annotation=ann)
    aug.rotate(frames, 10.0, shapes=points, annotation=ann)
    aug.add_noise(frames[0], netd_c=0.1, rng=rng)
    aug.offset_ambient(frames[0], offset_c=2.0)
    aug.change_emissivity(frames[0], emissivity=0.8)
    aug.shift_time(frames, shift=1, annotation=ann)
    aug.crop_time(frames, start=1, length=2, annotation=ann)
    aug.augment(frames, rng=rng, policy=aug.AugmentPolicy(max_angle_deg=5), annotation=ann)
    assert same(frames, before)
    assert ann.to_dict() == ann_before
    assert all(np.array_equal(p, q) for p, q in zip(points, points_before, strict=True))


def test_bad_arguments_are_refused() -> None:
    f = frame()
    rng = np.random.default_rng(0)
    with pytest.raises(ValueError, match="netd"):
        aug.add_noise(f, netd_c=-1.0, rng=rng)
    with pytest.raises(ValueError, match="emissivity"):
        aug.change_emissivity(f, emissivity=0.0)
    with pytest.raises(ValueError, match="finite"):
        aug.rotate(f, float("nan"))
    with pytest.raises(ValueError, match="same size"):
        aug.rotate90([f, planck_frame(H + 1, W)])
