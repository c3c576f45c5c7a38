"""The input contract: a model's preprocessing, stored in its release and applied everywhere.

Training, the server and the edge all call ``InputContract.apply``, so a model sees the same
numbers wherever it runs. The steps, in order:

1. ``check``: refuse a frame most of whose pixels fall outside the window (a window that
   clips most pixels means a wrong recipe or dataset, not a part to score);
2. ``crop`` (x0, y0, x1, y1 in source pixels, end-exclusive);
3. resize to ``height`` x ``width``: ``"stretch"`` (bilinear, aspect not kept) or ``"pad"``
   (bilinear to fit inside, aspect kept, centred, the border filled with 0);
4. the channels, each float32:

   - ``"celsius"``: ``(T - lo) / (hi - lo)`` clipped to [0, 1] with the fixed window
     ``window_c = (lo, hi)`` (never per-image min/max, so absolute temperature survives);
     for 8-bit picture datasets the window is in intensity units (``unit="intensity"``,
     usually ``(0, 255)``);
   - ``"delta_ambient"``: ``(T - ambient_c) / (hi - lo)`` clipped to [-1, 1] (needs
     ``ambient_c``);
   - ``"gradient"``: the magnitude of the spatial gradient of the ``"celsius"`` channel at the
     output size (central differences, window units per output pixel), clipped to [0, 1];
   - ``"visual"``: the visual image aligned with the frame (same H, W; grey or RGB, 8-bit or
     [0, 1] float), as grey in [0, 1].

NaN pixels (no signal) count as clipped and become the window's low end (0) in ``"celsius"``,
0 in the other channels.

``to_frame`` maps a model-sized map (an anomaly map, a class activation) back onto the source
frame, undoing the resize, the padding and the crop, so findings are in frame pixels.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal, cast

import cv2
import numpy as np
from numpy.typing import NDArray

from thermoscope.models.errors import ModelError

Channel = Literal["celsius", "delta_ambient", "gradient", "visual"]
CHANNELS: tuple[Channel, ...] = ("celsius", "delta_ambient", "gradient", "visual")
Resize = Literal["stretch", "pad"]
RESIZES: tuple[Resize, ...] = ("stretch", "pad")
Unit = Literal["celsius", "intensity"]
UNITS: tuple[Unit, ...] = ("celsius", "intensity")
#: Largest model input side in pixels.
MAX_SIDE = 4096
#: Keys of the contract's dict form (``to_dict``); ``unit`` and ``max_clipped`` may be absent.
CONTRACT_KEYS = ("window_c", "channels", "height", "width", "resize", "crop", "max_clipped", "unit")
_REQUIRED_KEYS = ("window_c", "channels", "height", "width")


@dataclass(frozen=True, slots=True)
class Placement:
    """Where the (cropped) source lies inside the model input, in model pixels.

    Attributes:
        top, left: offset of the resized source inside the model input.
        height, width: size of the resized source (the whole input for ``"stretch"``).
    """

    top: int
    left: int
    height: int
    width: int


@dataclass(frozen=True, slots=True)
class InputContract:
    """A model's preprocessing (see the module docstring for the steps).

    Attributes:
        window_c: fixed window ``(lo, hi)`` mapped to [0, 1], in °C (intensity units for
            ``unit="intensity"``).
        channels: input channels in order, from ``CHANNELS``; no repeats.
        height, width: model input size in pixels (1..4096).
        resize: ``"stretch"`` or ``"pad"``.
        crop: ``(x0, y0, x1, y1)`` source pixels kept (end-exclusive), or ``None`` for all.
        max_clipped: share of pixels (0..1) that may fall outside the window (or be NaN) before
            ``check`` refuses the frame.
        unit: what the window is in: ``"celsius"`` (radiometric) or ``"intensity"`` (8-bit
            picture datasets, 0..255).
    """

    window_c: tuple[float, float]
    channels: tuple[str, ...] = ("celsius",)
    height: int = 128
    width: int = 160
    resize: str = "stretch"
    crop: tuple[int, int, int, int] | None = None
    max_clipped: float = 0.5
    unit: str = "celsius"

    def __post_init__(self) -> None:
        lo, hi = _window(self.window_c)
        object.__setattr__(self, "window_c", (lo, hi))
        object.__setattr__(self, "channels", _channels(self.channels))
        for name in ("height", "width"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int | np.integer):
                raise ModelError(f"contract.{name} must be an integer, got {value!r}")
            if not 1 <= int(value) <= MAX_SIDE:
                raise ModelError(f"contract.{name} must be in 1..{MAX_SIDE} pixels, got {value}")
            object.__setattr__(self, name, int(value))
        if self.resize not in RESIZES:
            raise ModelError(f"contract.resize must be one of {RESIZES}, got {self.resize!r}")
        if self.unit not in UNITS:
            raise ModelError(f"contract.unit must be one of {UNITS}, got {self.unit!r}")
        object.__setattr__(self, "crop", _crop(self.crop))
        clipped = self.max_clipped
        if (
            isinstance(clipped, bool)
            or not isinstance(clipped, int | float)
            or not 0.0 <= float(clipped) <= 1.0
        ):
            raise ModelError(f"contract.max_clipped must be a share in [0, 1], got {clipped!r}")
        object.__setattr__(self, "max_clipped", float(clipped))

    @property
    def num_channels(self) -> int:
        """Number of input channels C."""
        return len(self.channels)

    @property
    def input_shape(self) -> tuple[int, int, int]:
        """(C, height, width) of one contract-applied frame."""
        return (self.num_channels, self.height, self.width)

    # -- dict form ------------------------------------------------------------------------

    def to_dict(self) -> dict[str, Any]:
        """The contract as JSON-ready values (keys ``CONTRACT_KEYS``)."""
        return {
            "window_c": [self.window_c[0], self.window_c[1]],
            "channels": list(self.channels),
            "height": self.height,
            "width": self.width,
            "resize": self.resize,
            "crop": None if self.crop is None else list(self.crop),
            "max_clipped": self.max_clipped,
            "unit": self.unit,
        }

    @classmethod
    def from_dict(cls, d: Any, *, what: str = "contract") -> InputContract:
        """The contract of a ``to_dict`` mapping (strict: unknown keys and wrong types refused).

        Raises:
            ModelError: naming the field and the reason.
        """
        if not isinstance(d, Mapping):
            raise ModelError(f"{what} must be an object, got {type(d).__name__}")
        unknown = sorted(str(k) for k in d if k not in CONTRACT_KEYS)
        if unknown:
            raise ModelError(f"{what}: unknown keys {unknown}")
        missing = [k for k in _REQUIRED_KEYS if k not in d]
        if missing:
            raise ModelError(f"{what}: missing keys {missing}")
        window = d["window_c"]
        if not isinstance(window, list | tuple) or len(window) != 2:
            raise ModelError(f"{what}.window_c must be a list [lo, hi], got {window!r}")
        channels = d["channels"]
        if not isinstance(channels, list | tuple):
            raise ModelError(f"{what}.channels must be a list, got {channels!r}")
        crop = d.get("crop")
        if crop is not None and (not isinstance(crop, list | tuple) or len(crop) != 4):
            raise ModelError(f"{what}.crop must be null or [x0, y0, x1, y1], got {crop!r}")
        try:
            return cls(
                window_c=(window[0], window[1]),
                channels=tuple(channels),
                height=d["height"],
                width=d["width"],
                resize=d.get("resize", "stretch"),
                crop=None if crop is None else (crop[0], crop[1], crop[2], crop[3]),
                max_clipped=d.get("max_clipped", 0.5),
                unit=d.get("unit", "celsius"),
            )
        except ModelError as exc:
            raise ModelError(f"{what}: {exc}") from None
        except TypeError as exc:  # unhashable channel names and the like
            raise ModelError(f"{what}: {exc}") from None

    # -- applying it ----------------------------------------------------------------------

    def clipped_share(self, celsius: NDArray[Any]) -> float:
        """Share of the (cropped) pixels outside the window or NaN, in [0, 1]."""
        region = self._cropped(self._plane(celsius, "celsius"))
        lo, hi = self.window_c
        with np.errstate(invalid="ignore"):
            inside = np.count_nonzero((region >= lo) & (region <= hi))
        return 1.0 - inside / region.size

    def check(self, celsius: NDArray[Any], *, source: str = "frame") -> None:
        """Refuse a frame whose pixels mostly fall outside the window.

        Raises:
            ModelError: more than ``max_clipped`` of the pixels are outside ``window_c`` or NaN,
                or the frame is not a 2-D array the crop fits in.
        """
        share = self.clipped_share(celsius)
        if share > self.max_clipped:
            lo, hi = self.window_c
            unit = "°C" if self.unit == "celsius" else "(intensity)"
            raise ModelError(
                f"{source}: {share:.0%} of the pixels fall outside the contract's window "
                f"{lo:g}..{hi:g} {unit} (at most {self.max_clipped:.0%} may); the window does "
                "not fit these frames (wrong recipe, dataset or units?)"
            )

    def placement_for(self, shape: tuple[int, int]) -> Placement:
        """Where a cropped source of ``shape`` (H, W) lands in the model input."""
        h, w = shape
        if self.resize == "stretch":
            return Placement(0, 0, self.height, self.width)
        scale = min(self.height / h, self.width / w)
        ph = min(self.height, max(1, round(h * scale)))
        pw = min(self.width, max(1, round(w * scale)))
        return Placement((self.height - ph) // 2, (self.width - pw) // 2, ph, pw)

    def apply(
        self,
        celsius: NDArray[Any],
        *,
        ambient_c: float | None = None,
        visual: NDArray[Any] | None = None,
        check: bool = True,
        source: str = "frame",
    ) -> NDArray[np.float32]:
        """The model input of one frame: float32 (C, height, width).

        Args:
            celsius: temperatures (H, W) in °C (intensity for ``unit="intensity"``).
            ambient_c: ambient temperature in °C, needed by ``"delta_ambient"``.
            visual: the visual image aligned with the frame, (H, W) or (H, W, 3), needed by
                ``"visual"``.
            check: refuse a frame the window clips too much (``check``).
            source: how errors name the frame.

        Raises:
            ModelError: the frame is not 2-D, the crop does not fit, the window clips most
                pixels, or a channel's extra input (ambient, visual) is missing or misshapen.
        """
        plane = self._plane(celsius, "celsius")
        if check:
            self.check(plane, source=source)
        lo, hi = self.window_c
        span = hi - lo
        region = self._cropped(plane)
        placement = self.placement_for(region.shape)
        out = np.zeros((self.num_channels, self.height, self.width), dtype=np.float32)
        temps = _resize_into(region, placement, self.height, self.width, fill=np.nan)
        finite = np.isfinite(temps)
        normalised = np.where(finite, np.clip((temps - lo) / span, 0.0, 1.0), 0.0).astype(
            np.float32
        )
        for i, channel in enumerate(self.channels):
            if channel == "celsius":
                out[i] = normalised
            elif channel == "delta_ambient":
                if ambient_c is None or not math.isfinite(float(ambient_c)):
                    raise ModelError(
                        f"{source}: the contract's delta_ambient channel needs ambient_c (°C), "
                        f"got {ambient_c!r}"
                    )
                delta = np.clip((temps - float(ambient_c)) / span, -1.0, 1.0)
                out[i] = np.where(finite, delta, 0.0)
            elif channel == "gradient":
                out[i] = _gradient(normalised, placement)
            else:
                grey = self._visual(visual, plane.shape, source)
                out[i] = _resize_into(self._cropped(grey), placement, self.height, self.width)
        return out

    def apply_batch(
        self,
        frames: Sequence[NDArray[Any]],
        *,
        ambient_c: float | Sequence[float | None] | None = None,
        visual: Sequence[NDArray[Any] | None] | None = None,
        check: bool = True,
    ) -> NDArray[np.float32]:
        """Model inputs of many frames: float32 (N, C, height, width).

        ``ambient_c`` is one value for all frames or one per frame; ``visual`` one per frame.
        Errors name the frame by its index (``frames[3]``).
        """
        n = len(frames)
        ambients: Sequence[float | None]
        if ambient_c is None or isinstance(ambient_c, int | float):
            ambients = [ambient_c] * n
        else:
            ambients = list(ambient_c)
        visuals: Sequence[NDArray[Any] | None] = [None] * n if visual is None else list(visual)
        if len(ambients) != n or len(visuals) != n:
            raise ModelError(
                f"apply_batch: {n} frames but {len(ambients)} ambient values and "
                f"{len(visuals)} visual images"
            )
        out = np.empty((n, *self.input_shape), dtype=np.float32)
        for i, frame in enumerate(frames):
            out[i] = self.apply(
                frame, ambient_c=ambients[i], visual=visuals[i], check=check, source=f"frames[{i}]"
            )
        return out

    def to_frame(self, model_map: NDArray[Any], shape: tuple[int, int]) -> NDArray[np.float32]:
        """A model-space map (any h, w covering the model input) as a frame-sized map.

        The map is first resized to the model input, then the padding is cut off, the rest
        resized to the crop and placed in a frame of ``shape`` (H, W); pixels outside the crop
        are 0. Bilinear throughout.

        Raises:
            ModelError: the map is not 2-D or the crop does not fit ``shape``.
        """
        m = np.asarray(model_map, dtype=np.float32)
        if m.ndim != 2 or m.size == 0:
            raise ModelError(f"a model map must be 2-D and non-empty, got shape {m.shape}")
        h, w = int(shape[0]), int(shape[1])
        x0, y0, x1, y1 = self._crop_box((h, w))
        p = self.placement_for((y1 - y0, x1 - x0))
        full = _resize(m, self.height, self.width)
        inner = full[p.top : p.top + p.height, p.left : p.left + p.width]
        out = np.zeros((h, w), dtype=np.float32)
        out[y0:y1, x0:x1] = _resize(inner, y1 - y0, x1 - x0)
        return out

    # -- helpers --------------------------------------------------------------------------

    def _plane(self, array: NDArray[Any], what: str) -> NDArray[np.float32]:
        a = np.asarray(array)
        if a.ndim != 2 or a.size == 0:
            raise ModelError(f"{what} must be a non-empty 2-D array (H, W), got shape {a.shape}")
        if not (np.issubdtype(a.dtype, np.floating) or np.issubdtype(a.dtype, np.integer)):
            raise ModelError(f"{what} must be numeric, got dtype {a.dtype}")
        self._crop_box(a.shape)
        return a.astype(np.float32, copy=False)

    def _crop_box(self, shape: tuple[int, ...]) -> tuple[int, int, int, int]:
        h, w = int(shape[0]), int(shape[1])
        if self.crop is None:
            return (0, 0, w, h)
        _, _, x1, y1 = self.crop
        if x1 > w or y1 > h:
            raise ModelError(
                f"contract.crop {list(self.crop)} does not fit a {w}x{h} frame (width x height)"
            )
        return self.crop

    def _cropped(self, plane: NDArray[np.float32]) -> NDArray[np.float32]:
        x0, y0, x1, y1 = self._crop_box(plane.shape)
        return plane[y0:y1, x0:x1]

    def _visual(
        self, visual: NDArray[Any] | None, shape: tuple[int, ...], source: str
    ) -> NDArray[np.float32]:
        if visual is None:
            raise ModelError(f"{source}: the contract's visual channel needs a visual image")
        v = np.asarray(visual)
        if v.ndim == 3 and v.shape[2] in (3, 4):
            v = v[..., :3].astype(np.float32) @ np.array([0.299, 0.587, 0.114], np.float32)
        elif v.ndim != 2:
            raise ModelError(f"{source}: visual must be (H, W) or (H, W, 3), got {v.shape}")
        if v.shape[:2] != tuple(shape):
            raise ModelError(
                f"{source}: visual image {v.shape[:2]} is not aligned with the frame {tuple(shape)}"
            )
        grey = v.astype(np.float32)
        finite = grey[np.isfinite(grey)]
        eight_bit = np.issubdtype(np.asarray(visual).dtype, np.integer)
        scale = 255.0 if eight_bit or (finite.size and float(finite.max()) > 1.0) else 1.0
        out: NDArray[np.float32] = np.clip(np.nan_to_num(grey / scale, nan=0.0), 0.0, 1.0)
        return out.astype(np.float32, copy=False)


def resize_map(array: NDArray[Any], height: int, width: int) -> NDArray[np.float32]:
    """A 2-D array resized to (height, width) by bilinear interpolation (half-pixel centres)."""
    a = np.asarray(array, dtype=np.float32)
    if a.ndim != 2 or a.size == 0:
        raise ModelError(f"resize_map needs a non-empty 2-D array, got shape {a.shape}")
    return _resize(a, height, width)


def _resize(a: NDArray[np.float32], height: int, width: int) -> NDArray[np.float32]:
    if a.shape == (height, width):
        return np.ascontiguousarray(a, dtype=np.float32)
    out = cv2.resize(
        np.ascontiguousarray(a, dtype=np.float32), (width, height), interpolation=cv2.INTER_LINEAR
    )
    return cast(NDArray[np.float32], out.reshape(height, width))


def _resize_into(
    region: NDArray[np.float32], p: Placement, height: int, width: int, *, fill: float = 0.0
) -> NDArray[np.float32]:
    if p.top == 0 and p.left == 0 and (p.height, p.width) == (height, width):
        return _resize(region, height, width)
    out = np.full((height, width), fill, dtype=np.float32)
    out[p.top : p.top + p.height, p.left : p.left + p.width] = _resize(region, p.height, p.width)
    return out


def _gradient(normalised: NDArray[np.float32], p: Placement) -> NDArray[np.float32]:
    """Gradient magnitude of the placed part of ``normalised`` (0 in the padding)."""
    out = np.zeros_like(normalised)
    inner = normalised[p.top : p.top + p.height, p.left : p.left + p.width]
    if min(inner.shape) > 1:
        gy, gx = np.gradient(inner)
        out[p.top : p.top + p.height, p.left : p.left + p.width] = np.clip(np.hypot(gx, gy), 0, 1)
    return out


def _number(value: Any, what: str) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float | np.integer | np.floating):
        raise ModelError(f"{what} must be a number, got {value!r}")
    f = float(value)
    if not math.isfinite(f):
        raise ModelError(f"{what} must be finite, got {value!r}")
    return f


def _window(window: Any) -> tuple[float, float]:
    if not isinstance(window, tuple | list) or len(window) != 2:
        raise ModelError(f"contract.window_c must be (lo, hi), got {window!r}")
    lo = _number(window[0], "contract.window_c[0]")
    hi = _number(window[1], "contract.window_c[1]")
    if not hi > lo:
        raise ModelError(f"contract.window_c must have lo < hi, got ({lo:g}, {hi:g})")
    return lo, hi


def _channels(channels: Any) -> tuple[str, ...]:
    if not isinstance(channels, tuple | list) or not channels:
        raise ModelError(f"contract.channels must be a non-empty list, got {channels!r}")
    for c in channels:
        if not isinstance(c, str) or c not in CHANNELS:
            raise ModelError(f"contract.channels: {c!r} is not one of {CHANNELS}")
    if len(set(channels)) != len(channels):
        raise ModelError(f"contract.channels repeats a channel: {list(channels)}")
    return tuple(channels)


def _crop(crop: Any) -> tuple[int, int, int, int] | None:
    if crop is None:
        return None
    if not isinstance(crop, tuple | list) or len(crop) != 4:
        raise ModelError(f"contract.crop must be (x0, y0, x1, y1) or None, got {crop!r}")
    values = []
    for name, v in zip(("x0", "y0", "x1", "y1"), crop, strict=True):
        if isinstance(v, bool) or not isinstance(v, int | np.integer):
            raise ModelError(f"contract.crop.{name} must be an integer, got {v!r}")
        values.append(int(v))
    x0, y0, x1, y1 = values
    if not (0 <= x0 < x1 and 0 <= y0 < y1):
        raise ModelError(f"contract.crop must have 0 <= x0 < x1 and 0 <= y0 < y1, got {values}")
    return (x0, y0, x1, y1)


__all__ = [
    "CHANNELS",
    "CONTRACT_KEYS",
    "RESIZES",
    "UNITS",
    "Channel",
    "InputContract",
    "Placement",
    "Resize",
    "Unit",
    "resize_map",
]
