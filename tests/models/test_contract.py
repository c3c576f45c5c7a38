"""InputContract: fixed windows, channels, crop, resize, the clip check, and strict parsing."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from thermoscope.models.contract import (
    CHANNELS,
    CONTRACT_KEYS,
    RESIZES,
    UNITS,
    InputContract,
    Placement,
    resize_map,
)
from thermoscope.models.errors import ModelError


def test_fixed_window_keeps_absolute_temperature() -> None:
    contract = InputContract(window_c=(20.0, 60.0), height=4, width=5)
    warm = contract.apply(np.full((8, 10), 40.0, np.float32))
    hot = contract.apply(np.full((8, 10), 50.0, np.float32))
    # Per-image min/max would make both frames identical; the fixed window does not.
    np.testing.assert_allclose(warm, 0.5)
    np.testing.assert_allclose(hot, 0.75)
    assert warm.dtype == np.float32
    assert warm.shape == contract.input_shape == (1, 4, 5)


def test_values_outside_the_window_are_clipped_and_nan_is_zero() -> None:
    contract = InputContract(window_c=(0.0, 10.0), height=2, width=4, max_clipped=1.0)
    frame = np.array([[-5.0, 0.0, 10.0, 20.0], [5.0, np.nan, 2.5, 7.5]], np.float32)
    out = contract.apply(frame)[0]
    np.testing.assert_allclose(out, [[0.0, 0.0, 1.0, 1.0], [0.5, 0.0, 0.25, 0.75]])


def test_check_refuses_a_window_that_clips_most_pixels() -> None:
    contract = InputContract(window_c=(20.0, 30.0), height=4, width=4)
    frame = np.full((10, 10), 45.0, np.float32)
    frame[:3] = 25.0
    assert contract.clipped_share(frame) == pytest.approx(0.7)
    with pytest.raises(ModelError, match=r"part-7: 70% of the pixels fall outside .* 20\.\.30"):
        contract.check(frame, source="part-7")
    with pytest.raises(ModelError, match="70%"):
        contract.apply(frame)
    assert contract.apply(frame, check=False).shape == (1, 4, 4)
    lenient = InputContract(window_c=(20.0, 30.0), height=4, width=4, max_clipped=0.7)
    lenient.check(frame)


def test_nan_pixels_count_as_clipped() -> None:
    contract = InputContract(window_c=(0.0, 10.0), height=2, width=2, max_clipped=0.25)
    frame = np.full((4, 4), 5.0, np.float32)
    frame[:2] = np.nan
    with pytest.raises(ModelError, match="50%"):
        contract.check(frame)


def test_intensity_window_for_8_bit_pictures() -> None:
    contract = InputContract(window_c=(0.0, 255.0), unit="intensity", height=3, width=3)
    picture = np.arange(9, dtype=np.uint8).reshape(3, 3) * 30
    out = contract.apply(picture)
    np.testing.assert_allclose(out[0], picture / 255.0, atol=1e-6)
    with pytest.raises(ModelError, match=r"\(intensity\)"):
        InputContract(window_c=(0.0, 10.0), unit="intensity", height=3, width=3).check(picture)


def test_delta_ambient_channel_needs_the_ambient() -> None:
    contract = InputContract(
        window_c=(20.0, 60.0), channels=("celsius", "delta_ambient"), height=2, width=2
    )
    frame = np.full((2, 2), 30.0, np.float32)
    out = contract.apply(frame, ambient_c=25.0)
    np.testing.assert_allclose(out[0], 0.25)
    np.testing.assert_allclose(out[1], 5.0 / 40.0)
    with pytest.raises(ModelError, match="delta_ambient channel needs ambient_c"):
        contract.apply(frame)


def test_gradient_channel_of_a_ramp() -> None:
    contract = InputContract(window_c=(0.0, 100.0), channels=("gradient",), height=8, width=10)
    ramp = np.tile(np.arange(10, dtype=np.float32) * 10.0, (8, 1))
    out = contract.apply(ramp, check=False)[0]
    # 10 °C per pixel in a 100 °C window: 0.1 window units per pixel everywhere.
    np.testing.assert_allclose(out, 0.1, atol=1e-5)


def test_visual_channel_is_grey_and_must_be_aligned() -> None:
    contract = InputContract(
        window_c=(0.0, 50.0), channels=("celsius", "visual"), height=4, width=4
    )
    frame = np.full((4, 4), 25.0, np.float32)
    rgb = np.zeros((4, 4, 3), np.uint8)
    rgb[..., 1] = 255
    out = contract.apply(frame, visual=rgb)
    np.testing.assert_allclose(out[1], 0.587, atol=1e-5)
    with pytest.raises(ModelError, match="needs a visual image"):
        contract.apply(frame)
    with pytest.raises(ModelError, match="not aligned"):
        contract.apply(frame, visual=np.zeros((5, 4), np.uint8))
    with pytest.raises(ModelError, match=r"\(H, W\) or \(H, W, 3\)"):
        contract.apply(frame, visual=np.zeros((4, 4, 2), np.uint8))


def test_crop_is_applied_before_resize() -> None:
    frame = np.full((20, 30), 10.0, np.float32)
    frame[5:10, 10:20] = 30.0
    contract = InputContract(window_c=(0.0, 40.0), crop=(10, 5, 20, 10), height=5, width=10)
    np.testing.assert_allclose(contract.apply(frame), 0.75)
    with pytest.raises(ModelError, match=r"crop \[10, 5, 20, 10\] does not fit a 15x8 frame"):
        contract.apply(np.zeros((8, 15), np.float32))


def test_pad_keeps_the_aspect_and_to_frame_inverts_it() -> None:
    contract = InputContract(window_c=(0.0, 1.0), resize="pad", height=32, width=32)
    p = contract.placement_for((60, 120))
    assert p == Placement(top=8, left=0, height=16, width=32)
    frame = np.full((60, 120), 0.5, np.float32)
    out = contract.apply(frame)[0]
    assert out[:8].max() == 0.0
    assert out[24:].max() == 0.0
    np.testing.assert_allclose(out[8:24], 0.5)
    # A blob in model space lands at the same relative place of the frame.
    model_map = np.zeros((32, 32), np.float32)
    model_map[14:18, 22:26] = 1.0
    back = contract.to_frame(model_map, (60, 120))
    row, col = np.unravel_index(np.argmax(back), back.shape)
    assert 22 <= row <= 38
    assert 82 <= col <= 98


def test_to_frame_places_the_crop() -> None:
    contract = InputContract(window_c=(0.0, 1.0), crop=(40, 10, 80, 30), height=10, width=20)
    back = contract.to_frame(np.ones((5, 10), np.float32), (50, 100))
    assert back.shape == (50, 100)
    assert back[10:30, 40:80].min() == 1.0
    assert back.sum() == pytest.approx(20 * 40)
    with pytest.raises(ModelError, match="2-D"):
        contract.to_frame(np.ones(5, np.float32), (50, 100))


def test_resize_map_is_bilinear_with_half_pixel_centres() -> None:
    np.testing.assert_allclose(resize_map(np.array([[0.0, 1.0]]), 1, 4), [[0.0, 0.25, 0.75, 1.0]])
    with pytest.raises(ModelError):
        resize_map(np.zeros((0, 3)), 2, 2)


def test_apply_batch_takes_one_ambient_per_frame() -> None:
    contract = InputContract(window_c=(0.0, 40.0), channels=("delta_ambient",), height=2, width=2)
    frames = [np.full((3, 3), 20.0, np.float32)] * 2
    out = contract.apply_batch(frames, ambient_c=[10.0, 20.0])
    np.testing.assert_allclose(out[:, 0, 0, 0], [0.25, 0.0])
    with pytest.raises(ModelError, match="2 frames but 3 ambient values"):
        contract.apply_batch(frames, ambient_c=[1.0, 2.0, 3.0])
    with pytest.raises(ModelError, match=r"frames\[1\]: .* outside"):
        contract.apply_batch([frames[0], np.full((3, 3), 99.0)], ambient_c=10.0)


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"window_c": (30.0, 20.0)}, "lo < hi"),
        ({"window_c": (0.0, float("inf"))}, "finite"),
        ({"channels": ()}, "non-empty"),
        ({"channels": ("celsius", "celsius")}, "repeats"),
        ({"channels": ("infrared",)}, "not one of"),
        ({"height": 0}, "1..4096"),
        ({"width": 2.5}, "integer"),
        ({"resize": "crop"}, "resize"),
        ({"crop": (5, 0, 5, 10)}, "x0 < x1"),
        ({"crop": (0, 0, 1)}, "x0, y0, x1, y1"),
        ({"max_clipped": 1.5}, r"\[0, 1\]"),
        ({"unit": "kelvin"}, "unit"),
    ],
)
def test_invalid_contracts_are_refused(changes: dict[str, Any], message: str) -> None:
    fields: dict[str, Any] = {"window_c": (0.0, 1.0), **changes}
    with pytest.raises(ModelError, match=message):
        InputContract(**fields)


def test_dict_round_trip_and_strictness() -> None:
    contract = InputContract(
        window_c=(15.0, 75.0),
        channels=CHANNELS[:3],
        height=64,
        width=96,
        resize=RESIZES[1],
        crop=(1, 2, 300, 200),
        max_clipped=0.2,
        unit=UNITS[0],
    )
    d = contract.to_dict()
    assert tuple(d) == CONTRACT_KEYS
    assert InputContract.from_dict(d) == contract
    with pytest.raises(ModelError, match=r"unknown keys \['mean'\]"):
        InputContract.from_dict({**d, "mean": 0.5})
    with pytest.raises(ModelError, match=r"missing keys \['height'\]"):
        InputContract.from_dict({k: v for k, v in d.items() if k != "height"})
    minimal = InputContract.from_dict(
        {"window_c": [0, 255], "channels": ["celsius"], "height": 8, "width": 8}
    )
    assert minimal.resize == "stretch"
    assert minimal.crop is None


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=8),
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4)
    ),
    max_leaves=10,
)


@settings(max_examples=200, deadline=None)
@given(json_values)
def test_garbage_is_refused_with_model_error(value: Any) -> None:
    with pytest.raises(ModelError, match="contract"):
        InputContract.from_dict(value)


@settings(max_examples=200, deadline=None)
@given(key=st.sampled_from(CONTRACT_KEYS), value=json_values)
def test_a_garbled_field_gives_model_error_or_a_valid_contract(key: str, value: Any) -> None:
    d = InputContract(window_c=(0.0, 1.0)).to_dict()
    d[key] = value
    try:
        contract = InputContract.from_dict(d)
    except ModelError as exc:
        message = str(exc)
    else:
        assert InputContract.from_dict(contract.to_dict()) == contract
        return
    assert message.startswith("contract")


@settings(max_examples=50, deadline=None)
@given(st.lists(st.floats(allow_nan=True, allow_infinity=True, width=32), min_size=1, max_size=30))
def test_any_frame_values_give_finite_inputs(values: list[float]) -> None:
    contract = InputContract(
        window_c=(0.0, 1.0), channels=CHANNELS[:3], height=3, width=3, max_clipped=1.0
    )
    frame = np.asarray(values, np.float32).reshape(1, -1)
    out = contract.apply(frame, ambient_c=0.5)
    assert np.isfinite(out).all()
    assert out.min() >= -1.0
    assert out.max() <= 1.0
