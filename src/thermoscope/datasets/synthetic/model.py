"""Building blocks of the synthetic scenes: heat sources, their unit maps, and the product model.

A part's temperature field is linear in its heat sources: ambient plus the sum of unit maps (peak
1, in the product's nominal pixel coordinates) scaled by each source's temperature change, which
follows a first-order time response (heating after power-on, cooling after sealing, or
constant). Part-to-part variation scales the amplitudes; a defect or a process drift is one more
source (positive or negative), so its own temperature change, and hence its ground-truth mask, is
known exactly.
"""

from __future__ import annotations

import math
from abc import ABC, abstractmethod
from dataclasses import dataclass, replace
from typing import ClassVar, Literal

import cv2
import numpy as np
from numpy.typing import NDArray

from thermoscope.core import Box, Polygon

FloatMap = NDArray[np.float32]
Response = Literal["heat", "cool", "const"]


@dataclass(frozen=True, slots=True, eq=False)
class UnitMap:
    """Where a source heats, relative to its peak: float32 (H, W) values and their support.

    Attributes:
        values: the map (peak 1 for a source's own map), nominal coordinates.
        window: ``(rows, columns)`` slices holding every value above ``FLOOR``; the rest of the
            map is treated as 0 (so a frame only touches what a source heats).
    """

    values: FloatMap
    window: tuple[slice, slice]

    #: Values at or below this (relative to a peak of 1) are left out of the window.
    FLOOR: ClassVar[float] = 1e-5

    @classmethod
    def of(cls, values: NDArray[np.floating]) -> UnitMap:
        """A unit map of ``values`` with its window found."""
        arr = np.asarray(values, dtype=np.float32)
        inside = np.abs(arr) > cls.FLOOR
        rows, cols = np.flatnonzero(inside.any(axis=1)), np.flatnonzero(inside.any(axis=0))
        if rows.size == 0:
            return cls(arr, (slice(0, 0), slice(0, 0)))
        return cls(arr, (slice(rows[0], rows[-1] + 1), slice(cols[0], cols[-1] + 1)))


@dataclass(frozen=True, slots=True, eq=False)
class Source:
    """A heat source or sink on the part.

    Attributes:
        name: what it is (a component, a cell, the seam, a defect).
        unit: where it heats, peak 1, in nominal (unjittered) coordinates.
        amplitude_c: temperature change at the map's peak (°C): the steady-state rise for
            ``"heat"``, the initial excess for ``"cool"``, the offset for ``"const"``.
        tau_s: time constant of the first-order response (s); unused for ``"const"``.
        response: ``"heat"`` (amplitude · (1 - exp(-t/τ))), ``"cool"`` (amplitude · exp(-t/τ))
            or ``"const"``.
    """

    name: str
    unit: UnitMap
    amplitude_c: float
    tau_s: float = 1.0
    response: Response = "const"

    def level(self, t_s: float) -> float:
        """Temperature change at the map's peak (°C), ``t_s`` seconds into the recording."""
        if self.response == "heat":
            return self.amplitude_c * (1.0 - math.exp(-t_s / self.tau_s))
        if self.response == "cool":
            return self.amplitude_c * math.exp(-t_s / self.tau_s)
        return self.amplitude_c

    def scaled(self, factor: float) -> Source:
        """The same source with its amplitude multiplied by ``factor``."""
        return replace(self, amplitude_c=self.amplitude_c * factor)


def field(sources: list[Source], t_s: float, shape: tuple[int, int]) -> FloatMap:
    """Temperature change over ambient (°C), float32 (H, W), of ``sources`` at time ``t_s``."""
    out = np.zeros(shape, dtype=np.float32)
    for source in sources:
        level = source.level(t_s)
        if level != 0.0:
            window = source.unit.window
            out[window] += np.float32(level) * source.unit.values[window]
    return out


@dataclass(frozen=True, slots=True)
class DefectSpec:
    """A defect as the product model injects it: extra sources and where it sits.

    Attributes:
        kind: defect class (``"hot_spot"``, ``"cold_joint"``, ``"hot_cell"``, ``"seal_gap"``).
        where: the region it affects (component, cell, or seam side name).
        sources: extra heat sources (negative amplitude for a cold defect).
    """

    kind: str
    where: str
    sources: tuple[Source, ...]


def grid(shape: tuple[int, int]) -> tuple[FloatMap, FloatMap]:
    """Pixel-centre coordinates ``(x, y)`` (float32 (H, W)) in corner-origin pixel units."""
    height, width = shape
    yy, xx = np.mgrid[0:height, 0:width].astype(np.float32)
    return xx + np.float32(0.5), yy + np.float32(0.5)


def blur(image: NDArray[np.floating], sigma_px: float) -> FloatMap:
    """Gaussian blur (standard deviation ``sigma_px`` in pixels), float32, edges replicated."""
    out = np.asarray(image, dtype=np.float32)
    if sigma_px <= 0.0:
        return out.copy()
    return np.asarray(
        cv2.GaussianBlur(out, (0, 0), sigmaX=sigma_px, borderType=cv2.BORDER_REPLICATE),
        dtype=np.float32,
    )


def box_mask(shape: tuple[int, int], box: Box) -> NDArray[np.bool_]:
    """Boolean (H, W) mask of ``box``, clipped to the frame."""
    out = np.zeros(shape, dtype=bool)
    out[max(box.y, 0) : box.y + box.height, max(box.x, 0) : box.x + box.width] = True
    return out


def package_map(
    shape: tuple[int, int],
    box: Box,
    *,
    dome: float,
    spread_px: float,
    spread_share: float,
) -> FloatMap:
    """Unit rise map of a heat source with a rectangular footprint.

    The footprint is warmest at its centre (``dome``: fraction by which its corners are cooler,
    half that at the middle of its edges: a die inside a package, a cell's core), and heat
    spreads into what surrounds it (the board, the housing): a Gaussian of ``spread_px`` pixels
    carrying ``spread_share`` of the footprint's temperature.
    """
    xx, yy = grid(shape)
    cx, cy = box.x + box.width / 2, box.y + box.height / 2
    u = (xx - np.float32(cx)) / np.float32(box.width / 2)
    v = (yy - np.float32(cy)) / np.float32(box.height / 2)
    profile = np.float32(1.0) - np.float32(dome) * np.minimum(u * u + v * v, 2.0) / np.float32(2.0)
    footprint = np.where(box_mask(shape, box), profile, np.float32(0.0)).astype(np.float32)
    spread = blur(footprint, spread_px) * np.float32(spread_share)
    out: FloatMap = np.maximum(footprint, spread)
    return out


def apparent_peak(
    unit: UnitMap, emissivity: FloatMap, *, t_s: float, tau_s: float, configured: float = 0.95
) -> float:
    """Largest apparent change at ``t_s`` per °C of a heating source's amplitude.

    A camera configured for emissivity ``configured`` sees a true change on a surface of
    emissivity ``ε`` as about ``ε / configured`` of it; the source has reached
    ``1 - exp(-t/τ)`` of its amplitude. Divide a wanted apparent change by this to get the
    amplitude.
    """
    seen = np.abs(unit.values) * emissivity / np.float32(configured)
    return float(seen.max()) * (1.0 - math.exp(-t_s / tau_s))


def gaussian_map(shape: tuple[int, int], x: float, y: float, sigma_px: float) -> FloatMap:
    """Unit Gaussian spot centred on ``(x, y)``, standard deviation ``sigma_px`` (pixels)."""
    xx, yy = grid(shape)
    r2 = (xx - np.float32(x)) ** 2 + (yy - np.float32(y)) ** 2
    return np.exp(-r2 / np.float32(2.0 * sigma_px**2)).astype(np.float32)


def smooth_noise(
    shape: tuple[int, int], *, sigma_px: float, rms: float, rng: np.random.Generator
) -> FloatMap:
    """A low-frequency random field of the given rms (float32 (H, W)), e.g. a heater profile."""
    noise = blur(rng.standard_normal(shape).astype(np.float32), sigma_px)
    std = float(noise.std())
    return noise * np.float32(rms / std) if std > 0 else noise


class Product(ABC):
    """A product on the line: its geometry, materials, heat sources, defects and drift knobs.

    Subclasses set the class attributes and build ``regions``, ``emissivity`` and their unit
    maps in ``__init__``; geometry is given for a 160x120 frame and multiplied by ``scale``.

    Attributes:
        name: product key (``"pcb"``).
        serial_prefix: start of the part serial numbers.
        defect_kinds: defect classes this product can carry.
        cycle_s: seconds between two parts on the line.
        fps, frames, start_s: a part's recording: frame rate (Hz), frame count, and the time of
            its first frame after the process step (power-on, load, sealing) in seconds; single
            frames are taken at the last of these times.
        drift_targets: quantities a slow process drift can act on.
        size: frame (width, height) in pixels.
        regions: nominal region geometry by name (``Box`` / ``Polygon``, frame pixels).
        emissivity: true emissivity per pixel (H, W), nominal coordinates.
    """

    name: ClassVar[str]
    serial_prefix: ClassVar[str]
    defect_kinds: ClassVar[tuple[str, ...]]
    cycle_s: ClassVar[float]
    fps: ClassVar[float]
    frames: ClassVar[int]
    start_s: ClassVar[float] = 0.0
    base_size: ClassVar[tuple[int, int]] = (160, 120)

    def __init__(self, *, scale: int, rng: np.random.Generator) -> None:
        if scale < 1:
            raise ValueError(f"scale must be a positive integer, got {scale}")
        self.scale = scale
        self.size = (self.base_size[0] * scale, self.base_size[1] * scale)
        self.regions: dict[str, Box | Polygon] = {}
        self.emissivity: FloatMap = np.full(self.shape, 0.95, dtype=np.float32)
        self.drift_targets: tuple[str, ...] = ()
        self.build(rng)

    @property
    def shape(self) -> tuple[int, int]:
        """(height, width) in pixels."""
        return self.size[1], self.size[0]

    def box(self, x: float, y: float, width: float, height: float) -> Box:
        """A box given in 160x120 units, scaled to this product's frame."""
        s = self.scale
        return Box(round(x * s), round(y * s), round(width * s), round(height * s))

    def times(self) -> NDArray[np.float64]:
        """Times of a recording's frames after the process step (s); the last is inspected."""
        return self.start_s + np.arange(self.frames, dtype=np.float64) / self.fps

    @abstractmethod
    def build(self, rng: np.random.Generator) -> None:
        """Build regions, emissivity and unit maps (``rng``: fixed, per-line patterns)."""

    @abstractmethod
    def nominal(self, rng: np.random.Generator) -> list[Source]:
        """The heat sources of one good part, with its part-to-part variation."""

    @abstractmethod
    def defect(
        self, kind: str, sources: list[Source], rng: np.random.Generator, where: str | None
    ) -> DefectSpec:
        """Inject a defect of ``kind`` into a part (``where``: a region name, or random)."""

    @abstractmethod
    def drift(self, target: str, delta_c: float) -> Source:
        """A source that changes ``target`` by ``delta_c`` °C at inspection time."""

    def check_kind(self, kind: str) -> None:
        """Raise ``ValueError`` unless this product has defects of ``kind``."""
        if kind not in self.defect_kinds:
            raise ValueError(
                f"{self.name} has no defect {kind!r}; it has {', '.join(self.defect_kinds)}"
            )

    def check_target(self, target: str) -> None:
        """Raise ``ValueError`` unless ``target`` is one of this product's drift targets."""
        if target not in self.drift_targets:
            raise ValueError(
                f"{self.name} has no drift target {target!r}; "
                f"it has {', '.join(self.drift_targets)}"
            )
