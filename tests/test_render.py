"""Palettes, rendering, colour bar and PNG output (thermoscope.render)."""

from __future__ import annotations

import math
import os
from collections.abc import Callable
from pathlib import Path

import cv2
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp
from numpy.typing import NDArray

from thermoscope.core import ThermalFrame, ThermoscopeError
from thermoscope.formats import PNG_WRITER
from thermoscope.io import save
from thermoscope.io.registry import writer_for
from thermoscope.render import (
    PALETTES,
    Isotherm,
    RenderError,
    auto_range,
    encode_png,
    palette_lut,
    render,
)
from thermoscope.render.colorbar import nice_ticks
from thermoscope.render.thermogram import MIN_BAR_HEIGHT, STATS_PIXELS

GOLDEN = Path(__file__).parent / "golden"
UPDATE_GOLDEN = os.environ.get("THERMOSCOPE_UPDATE_GOLDEN") == "1"
NAMES = ["iron", "rainbow", "rainbow-hc", "white-hot", "black-hot", "lava", "arctic", "grey"]


def luma(rgb: NDArray[np.uint8]) -> NDArray[np.float64]:
    """Rec. 601 luma of RGB rows."""
    return np.asarray(rgb, dtype=np.float64) @ np.array([0.299, 0.587, 0.114])


def scene(height: int = 64, width: int = 80) -> NDArray[np.float32]:
    """A deterministic scene in °C: 20..40 gradient left to right, a 95 °C blob, a NaN corner."""
    yy, xx = np.mgrid[0:height, 0:width].astype(np.float64)
    celsius = 20.0 + 20.0 * xx / (width - 1)
    celsius += 55.0 * np.exp(-((xx - 0.65 * width) ** 2 + (yy - 0.4 * height) ** 2) / 60.0)
    celsius[height - 3 :, :3] = np.nan
    return celsius.astype(np.float32)


def decode_png(data: bytes) -> NDArray[np.uint8]:
    bgr = cv2.imdecode(np.frombuffer(data, dtype=np.uint8), cv2.IMREAD_UNCHANGED)
    return np.ascontiguousarray(bgr[:, :, ::-1])


# --- palettes -------------------------------------------------------------------------------


def test_palette_names_and_tables() -> None:
    assert list(PALETTES) == NAMES
    for name in NAMES:
        lut = palette_lut(name)
        assert lut.shape == (256, 3)
        assert lut.dtype == np.uint8
        assert not lut.flags.writeable
        assert PALETTES[name].name == name


@pytest.mark.parametrize(
    ("name", "cold", "hot"),
    [
        ("white-hot", (0, 0, 0), (255, 255, 255)),
        ("grey", (0, 0, 0), (255, 255, 255)),
        ("black-hot", (255, 255, 255), (0, 0, 0)),
        ("iron", (0, 0, 0), (255, 255, 255)),
        ("lava", (0, 0, 0), (255, 255, 190)),
    ],
)
def test_palette_ends(name: str, cold: tuple[int, int, int], hot: tuple[int, int, int]) -> None:
    lut = palette_lut(name)
    assert tuple(lut[0]) == cold
    assert tuple(lut[255]) == hot


@pytest.mark.parametrize("name", ["iron", "grey", "white-hot"])
def test_luminance_rises_with_temperature(name: str) -> None:
    assert np.all(np.diff(luma(palette_lut(name))) > 0)


def test_black_hot_is_white_hot_reversed() -> None:
    np.testing.assert_array_equal(palette_lut("black-hot"), palette_lut("white-hot")[::-1])


def test_iron_runs_through_purple_red_orange_yellow() -> None:
    lut = palette_lut("iron").astype(int)
    r, g, b = lut[40]  # deep blue/purple
    assert b > max(r, g, 100)
    r, g, b = lut[140]  # red
    assert r > 200 > 80 > max(g, b)
    r, g, b = lut[180]  # orange
    assert r > 230 > 180 > g > 100 > 30 > b
    r, g, b = lut[220]  # yellow
    assert min(r, g) > 200 > 100 > b


def test_arctic_is_blue_then_golden() -> None:
    lut = palette_lut("arctic").astype(int)
    assert np.all(lut[:170, 2] > lut[:170, 0])  # the cold two thirds are blue
    r, g, b = lut[230]  # gold near the hot end
    assert min(r, g) > 190 > 100 > b


def test_rainbow_hc_has_more_contrast_than_rainbow() -> None:
    def colour_path_length(name: str) -> int:
        return int(np.abs(np.diff(palette_lut(name).astype(int), axis=0)).sum())

    assert colour_path_length("rainbow-hc") > 1.2 * colour_path_length("rainbow")


def test_unknown_palette_lists_valid_names() -> None:
    with pytest.raises(RenderError, match="unknown palette 'jet'") as info:
        palette_lut("jet")
    assert isinstance(info.value, ValueError)
    assert isinstance(info.value, ThermoscopeError)
    for name in NAMES:
        assert name in str(info.value)
    with pytest.raises(RenderError, match="valid palettes"):
        render(scene(), palette="Iron")


@pytest.mark.parametrize("name", NAMES)
def test_nan_colour_is_not_a_temperature_colour(name: str) -> None:
    pal = PALETTES[name]
    distance = np.abs(pal.lut.astype(int) - np.array(pal.nan_color)).sum(axis=1)
    assert distance.min() >= 100


# --- range and mapping ----------------------------------------------------------------------


def test_fixed_range_maps_ends_and_clips() -> None:
    celsius = np.array([[-50.0, 10.0, 15.0, 20.0, 99.0]], dtype=np.float32)
    lut = palette_lut("iron")
    out = render(celsius, range=(10.0, 20.0))
    assert out.shape == (1, 5, 3)
    assert out.dtype == np.uint8
    np.testing.assert_array_equal(out[0], lut[[0, 0, 128, 255, 255]])


def test_every_palette_step_is_reachable() -> None:
    lo, hi = -5.0, 45.0
    ramp = (lo + np.arange(256) / 255.0 * (hi - lo)).astype(np.float32)[None, :]
    for name in NAMES:
        out = render(ramp, palette=name, range=(lo, hi))
        np.testing.assert_array_equal(out[0], palette_lut(name))


def test_auto_range_is_percentiles_of_finite_pixels() -> None:
    celsius = scene()
    finite = celsius[np.isfinite(celsius)]
    expected = tuple(np.percentile(finite, (1.0, 99.0)))
    assert auto_range(celsius) == pytest.approx(expected)
    np.testing.assert_array_equal(render(celsius), render(celsius, range=expected))
    wide = tuple(np.percentile(finite, (0.0, 100.0)))
    assert auto_range(celsius, percentiles=(0.0, 100.0)) == pytest.approx(wide)
    np.testing.assert_array_equal(
        render(celsius, percentiles=(0.0, 100.0)), render(celsius, range=wide)
    )


def test_auto_range_ignores_infinities() -> None:
    celsius = scene()
    with_inf = celsius.copy()
    with_inf[0, :5] = np.inf
    with_inf[1, :5] = -np.inf
    finite = with_inf[np.isfinite(with_inf)]
    assert auto_range(with_inf) == pytest.approx(tuple(np.percentile(finite, (1.0, 99.0))))


def test_auto_range_of_a_large_frame_is_close_to_exact() -> None:
    height, width = 1024, 1280
    assert height * width > STATS_PIXELS
    yy, xx = np.mgrid[0:height, 0:width]
    celsius = (20.0 + 30.0 * np.sin(xx / 97.0) * np.cos(yy / 53.0) + xx / 200.0).astype(np.float32)
    lo, hi = auto_range(celsius) or (math.nan, math.nan)
    exact_lo, exact_hi = np.percentile(celsius, (1.0, 99.0))
    tolerance = 0.01 * (exact_hi - exact_lo)
    assert abs(lo - exact_lo) < tolerance
    assert abs(hi - exact_hi) < tolerance


def test_constant_frame_renders_mid_palette() -> None:
    celsius = np.full((12, 16), 36.6, dtype=np.float32)
    lo, hi = auto_range(celsius) or (math.nan, math.nan)
    assert lo == pytest.approx(36.1)
    assert hi == pytest.approx(37.1)
    out = render(celsius, palette="grey")
    assert np.all(out == out[0, 0])
    assert out[0, 0, 0] in (127, 128)
    assert render(celsius, colorbar=True).shape[1] > 16


def test_nearly_flat_frame_is_treated_as_flat() -> None:
    celsius = np.array([[20.0, 20.0005]], dtype=np.float32)
    lo, hi = auto_range(celsius, percentiles=(0.0, 100.0)) or (math.nan, math.nan)
    assert lo == pytest.approx(19.50025, abs=1e-5)
    assert hi == pytest.approx(20.50025, abs=1e-5)


def test_all_nan_frame() -> None:
    celsius = np.full((10, 10), np.nan, dtype=np.float32)
    assert auto_range(celsius) is None
    out = render(celsius)
    assert np.all(out == PALETTES["iron"].nan_color)
    with_bar = render(celsius, colorbar=True, isotherms=[Isotherm(0.0)])
    factor = with_bar.shape[0] // 10
    assert with_bar.shape[1] > 10 * factor
    with_range = render(celsius, range=(0.0, 10.0))
    assert np.all(with_range == PALETTES["iron"].nan_color)


def test_nan_pixels_get_the_nan_colour() -> None:
    celsius = scene()
    nan = np.isnan(celsius)
    for name in NAMES:
        out = render(celsius, palette=name)
        assert np.all(out[nan] == PALETTES[name].nan_color)
        assert not np.any(np.all(out[~nan] == PALETTES[name].nan_color, axis=-1))
    custom = render(celsius, nan_color=(1, 2, 3))
    assert np.all(custom[nan] == (1, 2, 3))
    with pytest.raises(RenderError, match="nan_color"):
        render(np.zeros((2, 2)), nan_color=(0, 0, 256))  # checked even without NaN pixels


def test_infinite_and_huge_values_take_the_end_colours() -> None:
    celsius = np.array([[np.inf, -np.inf, 1e30, -1e30, 3e38]], dtype=np.float32)
    lut = palette_lut("rainbow")
    out = render(celsius, palette="rainbow", range=(0.0, 1e-3))
    np.testing.assert_array_equal(out[0], lut[[255, 0, 255, 0, 255]])


@pytest.mark.parametrize(
    "bad", [(5.0, 5.0), (10.0, 0.0), (math.nan, 1.0), (0.0, math.inf), (0.0, 1e-300), (0.0, 1e39)]
)
def test_invalid_range(bad: tuple[float, float]) -> None:
    with pytest.raises(RenderError, match="range"):
        render(scene(), range=bad)


@pytest.mark.parametrize("bad", [(99.0, 1.0), (-1.0, 50.0), (50.0, 101.0), (5.0, 5.0)])
def test_invalid_percentiles(bad: tuple[float, float]) -> None:
    with pytest.raises(RenderError, match="percentiles"):
        render(scene(), percentiles=bad)


@pytest.mark.parametrize(
    "bad",
    [np.zeros((2, 3, 3), np.float32), np.zeros((0, 4), np.float32), np.array([["a", "b"]])],
)
def test_invalid_input(bad: NDArray[np.generic]) -> None:
    with pytest.raises(RenderError, match="2-D numeric"):
        render(bad)


def test_accepts_frames_and_other_numeric_types() -> None:
    celsius = scene()
    expected = render(celsius, range=(20.0, 60.0))
    np.testing.assert_array_equal(render(ThermalFrame(celsius), range=(20.0, 60.0)), expected)
    np.testing.assert_array_equal(render(celsius.astype(np.float64), range=(20.0, 60.0)), expected)
    ints = np.array([[20, 40, 60]], dtype=np.int16)
    np.testing.assert_array_equal(
        render(ints, range=(20.0, 60.0))[0], palette_lut("iron")[[0, 128, 255]]
    )


# --- isotherms ------------------------------------------------------------------------------


def test_isotherm_above_threshold() -> None:
    celsius = scene()
    out = render(celsius, isotherms=[Isotherm(60.0, color=(0, 255, 0))])
    hot = celsius >= 60.0
    assert hot.sum() > 10
    assert np.all(out[hot] == (0, 255, 0))
    np.testing.assert_array_equal(out[~hot], render(celsius)[~hot])


def test_isotherm_band_is_inclusive_and_later_ones_win() -> None:
    celsius = np.array([[10.0, 20.0, 25.0, 30.0, 40.0, np.nan]], dtype=np.float32)
    out = render(
        celsius,
        range=(0.0, 50.0),
        isotherms=[Isotherm(20.0, 30.0, (255, 0, 0)), Isotherm(30.0, color=(0, 0, 255))],
    )
    red, blue = (255, 0, 0), (0, 0, 255)
    assert [tuple(px) for px in out[0, 1:5]] == [red, red, blue, blue]
    assert tuple(out[0, 0]) == tuple(palette_lut("iron")[51])
    assert tuple(out[0, 5]) == PALETTES["iron"].nan_color


def test_cold_isotherm() -> None:
    celsius = np.array([[-5.0, 0.0, 5.0]], dtype=np.float32)
    out = render(celsius, range=(-10.0, 10.0), isotherms=[Isotherm(-math.inf, 0.0, (0, 0, 255))])
    assert [tuple(px) for px in out[0, :2]] == [(0, 0, 255), (0, 0, 255)]
    assert tuple(out[0, 2]) != (0, 0, 255)


def test_isotherm_validation() -> None:
    assert Isotherm(50.0) == Isotherm(50.0, math.inf, (0, 255, 0))
    assert Isotherm(1.0, 2.0, (np.uint8(3), np.int64(4), 5)).color == (3, 4, 5)
    with pytest.raises(RenderError, match="lo_c <= hi_c"):
        Isotherm(30.0, 20.0)
    with pytest.raises(RenderError, match="lo_c <= hi_c"):
        Isotherm(math.nan)
    with pytest.raises(RenderError, match="colour"):
        Isotherm(30.0, color=(0, 0, 300))
    with pytest.raises(RenderError, match="colour"):
        Isotherm(30.0, color=(0, 0))  # type: ignore[arg-type]
    with pytest.raises(RenderError, match="Isotherm objects"):
        render(scene(), isotherms=[(30.0, 40.0)])  # type: ignore[list-item]


# --- colour bar -----------------------------------------------------------------------------


def test_colour_bar_is_appended_on_the_right() -> None:
    celsius = np.tile(np.linspace(20.0, 40.0, 640, dtype=np.float32), (512, 1))
    plain = render(celsius, palette="arctic")  # end colours differ from black and white
    out = render(celsius, palette="arctic", colorbar=True)
    assert out.shape[0] == 512
    assert 640 + 40 < out.shape[1] < 640 + 200
    np.testing.assert_array_equal(out[:, :640], plain)
    bar = out[:, 640:]
    lut = palette_lut("arctic")
    # The strip holds the palette, hottest at the top; labels are white text.
    strip_column = bar[:, np.argmax([len(np.unique(bar[:, x], axis=0)) for x in range(30)])]
    colours = {tuple(c) for c in strip_column}
    assert tuple(lut[255]) in colours
    assert tuple(lut[0]) in colours
    rows_hot = np.flatnonzero(np.all(strip_column == lut[255], axis=1))
    rows_cold = np.flatnonzero(np.all(strip_column == lut[0], axis=1))
    assert rows_hot.max() < rows_cold.min()
    assert np.sum(np.all(bar > 160, axis=-1)) > 100  # white label text


def test_colour_bar_width_is_stable_across_ranges() -> None:
    celsius = scene(300, 400)
    widths = {
        render(celsius, range=r, colorbar=True).shape[1]
        for r in [(0.0, 1.0), (-20.0, 120.0), (20.1, 20.35), (-40.0, 0.0)]
    }
    assert len(widths) == 1


def test_tiny_frames_are_enlarged_for_the_bar() -> None:
    celsius = scene(60, 80)
    plain = render(celsius)
    out = render(celsius, colorbar=True)
    factor = math.ceil(MIN_BAR_HEIGHT / 60)
    assert out.shape[0] == 60 * factor
    enlarged = np.repeat(np.repeat(plain, factor, axis=0), factor, axis=1)
    np.testing.assert_array_equal(out[:, : 80 * factor], enlarged)
    one_row = render(np.linspace(0.0, 1.0, 50, dtype=np.float32)[None, :], colorbar=True)
    assert one_row.shape[0] == 8


def test_colour_bar_shows_isotherm_band() -> None:
    colour = (0, 255, 0)
    out = render(
        scene(), range=(20.0, 80.0), isotherms=[Isotherm(60.0, color=colour)], colorbar=True
    )
    bar = out[:, 80 * 4 :]
    assert np.sum(np.all(bar == colour, axis=-1)) > 100


@pytest.mark.parametrize(
    ("lo", "hi", "max_count", "ticks", "decimals"),
    [
        (26.6, 73.2, 8, [30.0, 40.0, 50.0, 60.0, 70.0], 0),
        (24.6, 25.4, 8, [24.6, 24.8, 25.0, 25.2, 25.4], 1),
        (0.0, 10.0, 8, [0.0, 2.0, 4.0, 6.0, 8.0, 10.0], 0),
        (0.0, 10.0, 5, [0.0, 2.5, 5.0, 7.5, 10.0], 1),
        (-0.3, 0.3, 8, [-0.3, -0.2, -0.1, 0.0, 0.1, 0.2, 0.3], 1),
        (0.0, 1000.0, 8, [0.0, 200.0, 400.0, 600.0, 800.0, 1000.0], 0),
        (-41.0, 1.0, 3, [-25.0, 0.0], 0),
    ],
)
def test_nice_ticks(
    lo: float, hi: float, max_count: int, ticks: list[float], decimals: int
) -> None:
    got, got_decimals = nice_ticks(lo, hi, max_count=max_count)
    assert got == pytest.approx(ticks)
    assert got_decimals == decimals
    assert all(lo <= t <= hi for t in got)
    assert "-0" not in "".join(f"{t:.{decimals}f}" for t in got if t == 0)


def test_nice_ticks_degenerate() -> None:
    assert nice_ticks(0.0, 1.0, max_count=1) == ([], 0)
    assert nice_ticks(1.0, 1.0, max_count=5) == ([], 0)
    assert nice_ticks(0.0, 5e-324, max_count=5) == ([], 0)


# --- inputs stay untouched --------------------------------------------------------------------


def test_input_is_never_modified() -> None:
    celsius = scene()
    before = celsius.copy()
    celsius.setflags(write=False)
    render(
        celsius,
        palette="lava",
        isotherms=[Isotherm(30.0, 35.0, (0, 0, 255))],
        colorbar=True,
        nan_color=(0, 0, 0),
    )
    render(celsius, range=(0.0, 100.0))
    auto_range(celsius)
    np.testing.assert_array_equal(celsius, before)
    assert palette_lut("iron").flags.writeable is False


@settings(max_examples=60, deadline=None)
@given(
    hnp.arrays(
        np.float32,
        hnp.array_shapes(min_dims=2, max_dims=2, min_side=1, max_side=40),
        elements=st.floats(width=32, allow_nan=True, allow_infinity=True),
    ),
    st.sampled_from(NAMES),
    st.booleans(),
)
def test_any_array_renders(celsius: NDArray[np.float32], palette: str, colorbar: bool) -> None:
    before = celsius.copy()
    out = render(celsius, palette=palette, colorbar=colorbar, isotherms=[Isotherm(0.0)])
    assert out.dtype == np.uint8
    assert out.ndim == 3
    assert out.shape[2] == 3
    if not colorbar:
        assert out.shape == (*celsius.shape, 3)
    np.testing.assert_array_equal(celsius, before)


# --- PNG ------------------------------------------------------------------------------------


def test_encode_png_keeps_rgb_order() -> None:
    rgb = np.zeros((4, 6, 3), dtype=np.uint8)
    rgb[..., 0] = 255  # pure red
    rgb[0, 0] = (0, 0, 255)
    data = encode_png(rgb)
    assert data.startswith(b"\x89PNG\r\n\x1a\n")
    np.testing.assert_array_equal(decode_png(data), rgb)


@pytest.mark.parametrize(
    "bad",
    [np.zeros((4, 4), np.uint8), np.zeros((4, 4, 3), np.float32), np.zeros((4, 4, 4), np.uint8)],
)
def test_encode_png_rejects_non_rgb(bad: NDArray[np.generic]) -> None:
    with pytest.raises(RenderError, match="RGB"):
        encode_png(bad)  # type: ignore[arg-type]


def test_png_writer_renders_the_first_frame(tmp_path: Path) -> None:
    first = ThermalFrame(scene())
    second = ThermalFrame(scene() + 10.0)
    assert PNG_WRITER.name == "png"
    assert PNG_WRITER.suffixes == (".png",)
    data = PNG_WRITER.emit([first, second])
    np.testing.assert_array_equal(decode_png(data), render(first.celsius, colorbar=True))
    with pytest.raises(RenderError, match="no frames"):
        PNG_WRITER.emit([])
    assert writer_for(tmp_path / "out.png") is PNG_WRITER
    path = save(first, tmp_path / "out.png")
    assert path.read_bytes() == data


def test_sample_thermogram_renders(samples: Path) -> None:
    celsius = np.load(samples / "flir" / "FLIR_T640.reference.npz")["celsius"]
    out = render(celsius, colorbar=True)
    assert out.shape[0] == celsius.shape[0]
    np.testing.assert_array_equal(out[:, : celsius.shape[1]], render(celsius))
    lo, hi = auto_range(celsius) or (math.nan, math.nan)
    assert 20.0 < lo < hi < 100.0


# --- golden images --------------------------------------------------------------------------

GOLDEN_CASES: dict[str, Callable[[NDArray[np.float32]], NDArray[np.uint8]]] = {
    "iron_isotherm_bar": lambda c: render(
        c, palette="iron", isotherms=[Isotherm(70.0, color=(0, 255, 0))], colorbar=True
    ),
    "rainbow_hc_fixed_bar": lambda c: render(
        c, palette="rainbow-hc", range=(15.0, 85.0), colorbar=True
    ),
    "white_hot_plain": lambda c: render(c, palette="white-hot"),
}


@pytest.mark.parametrize("case", sorted(GOLDEN_CASES))
def test_golden_image(case: str) -> None:
    """Compare with tests/golden/<case>.png; THERMOSCOPE_UPDATE_GOLDEN=1 rewrites them.

    The thermogram must match to within rounding; the colour bar may differ in a few text
    pixels, because OpenCV versions draw fonts differently.
    """
    celsius = scene()
    out = GOLDEN_CASES[case](celsius)
    path = GOLDEN / f"{case}.png"
    if UPDATE_GOLDEN:
        path.parent.mkdir(exist_ok=True)
        path.write_bytes(encode_png(out))
    expected = decode_png(path.read_bytes())
    assert out.shape == expected.shape
    factor = out.shape[0] // celsius.shape[0]
    split = celsius.shape[1] * factor
    image_diff = np.abs(out[:, :split].astype(int) - expected[:, :split]).max(axis=-1)
    assert np.mean(image_diff > 0) < 0.002
    assert image_diff.max() <= 8
    if split < out.shape[1]:  # label glyphs differ between OpenCV versions, layout does not
        bar_diff = np.any(out[:, split:] != expected[:, split:], axis=-1)
        assert np.mean(bar_diff) < 0.1
