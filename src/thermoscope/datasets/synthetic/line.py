"""The synthetic production line: parts one after another, seen by one camera over a shift.

A ``ProductLine`` owns one product model and one camera (its fixed-pattern noise drawn once).
Part ``i`` passes the camera ``i * cycle_s`` seconds into the shift, at the ambient temperature
of that moment, lying on the conveyor with a small random shift and rotation; its heat sources
vary from part to part, a defect adds sources of its own, and a slow process drift adds a
source that grows part after part. Every part draws from its own generators (its variation and
the sensor noise, both derived from the line's seed and its index), so ``line.part(i)`` is the
same whether or not the parts before it were made, and the same part made with and without a
defect differs by the defect alone.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Literal, get_args

import cv2
import numpy as np
from numpy.typing import NDArray

from thermoscope.core import (
    Box,
    CameraInfo,
    FrameMetadata,
    Polygon,
    ThermalFrame,
    ThermalSequence,
)
from thermoscope.datasets.synthetic.battery import Battery
from thermoscope.datasets.synthetic.battery_hard import HardBattery
from thermoscope.datasets.synthetic.camera import CameraModel, Sensor
from thermoscope.datasets.synthetic.model import (
    DefectSpec,
    FloatMap,
    Product,
    Source,
    blur,
    field,
    smooth_noise,
)
from thermoscope.datasets.synthetic.pcb import Pcb
from thermoscope.datasets.synthetic.pcb_hard import HardPcb
from thermoscope.datasets.synthetic.seal import Seal
from thermoscope.datasets.synthetic.seal_hard import HardSeal

#: The products the line can make, by name.
PRODUCTS: dict[str, type[Product]] = {"pcb": Pcb, "battery": Battery, "seal": Seal}
#: How hard the line makes inspection: ``"normal"`` (clean parts, clear defects: a threshold
#: separates them) or ``"hard"`` (heat spreading, shiny metal reflecting the surroundings, a
#: noisier camera, subtle defects).
Difficulty = Literal["normal", "hard"]
DIFFICULTIES: tuple[str, ...] = get_args(Difficulty)
#: The ``hard`` version of each product, by name.
HARD_PRODUCTS: dict[str, type[Product]] = {
    "pcb": HardPcb,
    "battery": HardBattery,
    "seal": HardSeal,
}
#: The ``hard`` camera: a cheaper core, older non-uniformity correction, stronger vignetting.
HARD_CAMERA = CameraModel(
    netd_c=0.08, pixel_offset_c=0.15, column_offset_c=0.08, vignetting_c=1.0, gain_rms=0.01
)
#: Optical blur of the ``hard`` camera's lens (standard deviation, pixels at scale 1).
HARD_OPTICS_PX = 0.6
#: A defect is present in the frames where it changes some pixel by at least this much (°C).
VISIBLE_C = 1.0


@dataclass(frozen=True, slots=True)
class Ambient:
    """Air temperature over a shift: a half-sine warm-up plus the HVAC's cycling.

    ``T(t) = start_c + rise_c · sin(π t / shift_s) + wobble_c · sin(2π t / wobble_period_s)``
    for ``t`` seconds into the shift.

    Attributes:
        start_c: temperature at the start of the shift (°C); the camera is configured with it.
        rise_c: warm-up at mid-shift (°C).
        shift_s: shift length (s).
        wobble_c: amplitude of the HVAC cycling (°C).
        wobble_period_s: its period (s).
    """

    start_c: float = 22.0
    rise_c: float = 4.0
    shift_s: float = 8 * 3600.0
    wobble_c: float = 0.3
    wobble_period_s: float = 1200.0

    def at(self, t_s: float) -> float:
        """Ambient temperature (°C) ``t_s`` seconds into the shift."""
        return (
            self.start_c
            + self.rise_c * math.sin(math.pi * min(t_s, self.shift_s) / self.shift_s)
            + self.wobble_c * math.sin(2.0 * math.pi * t_s / self.wobble_period_s)
        )


#: Air over a ``hard`` shift: a warmer hall and a stronger HVAC cycle.
HARD_AMBIENT = Ambient(rise_c=6.0, wobble_c=1.0, wobble_period_s=900.0)


@dataclass(frozen=True, slots=True)
class Drift:
    """A slow process drift: from part ``start_part`` on, ``target`` changes part after part.

    Part ``i`` is changed by ``step_c + per_part_c · u · (1 + u / (2 · doubling_parts))`` °C with
    ``u = i - start_part`` (nothing before ``start_part``), measured at inspection time (the last
    frame of a recording). The defaults give a linear drift; a finite ``doubling_parts`` an
    accelerating wear (the rate grows linearly, doubling every ``doubling_parts`` parts: a heat
    sink's contact opening up), a non-zero ``step_c`` a step then a ramp (a pump losing part of
    its flow at once, then wearing on). Targets per product: ``pcb`` a component name (it runs
    hotter, e.g. a heat sink losing contact), ``battery`` ``"cooling"`` (every cell warmer, a
    failing coolant pump) or ``"busbar"`` (weld electrodes wearing), ``seal`` ``"seal"`` (the
    seam; negative for a failing jaw heater).

    Attributes:
        target: what drifts (see above).
        per_part_c: change per part at the start (°C per part), signed.
        start_part: index of the first part that drifts (0-based).
        doubling_parts: parts over which the rate doubles (``math.inf``: a constant rate).
        step_c: jump at ``start_part`` (°C), signed.
    """

    target: str
    per_part_c: float
    start_part: int = 0
    doubling_parts: float = math.inf
    step_c: float = 0.0

    def __post_init__(self) -> None:
        if not self.doubling_parts > 0.0:
            raise ValueError(f"doubling_parts must be > 0, got {self.doubling_parts}")

    def offset_c(self, index: int) -> float:
        """How far part ``index`` has drifted (°C)."""
        if index < self.start_part:
            return 0.0
        u = index - self.start_part
        return self.step_c + self.per_part_c * u * (1.0 + u / (2.0 * self.doubling_parts))


@dataclass(frozen=True, slots=True)
class Pose:
    """Where the part lies on the conveyor relative to its nominal position.

    Attributes:
        dx_px, dy_px: shift in pixels (x to the right, y down).
        angle_deg: rotation about the frame centre in degrees (counter-clockwise as seen).
    """

    dx_px: float = 0.0
    dy_px: float = 0.0
    angle_deg: float = 0.0


@dataclass(frozen=True, slots=True, eq=False)
class Defect:
    """Ground truth of one defect.

    Attributes:
        kind: defect class (``"hot_spot"``, ``"cold_joint"``, ``"hot_cell"``, ``"seal_gap"``).
        where: the nominal region it sits in (``"Q1"``, ``"B4"``, ``"seam_left"``).
        mask: bool (H, W) in frame coordinates (jitter applied): the pixels where the defect
            changes the apparent temperature by at least half its largest change, at inspection
            time (apparent: the true change times the surface's emissivity over the camera's
            setting, so a defect under a shiny busbar counts where it shows).
        frames: ``(first, stop)`` frame indices (stop exclusive) in which it changes some pixel's
            apparent temperature by at least ``VISIBLE_C`` °C; ``(0, 1)`` for a single frame.
        part_index: index of the part in the run (0-based).
        serial: serial number of the part.
        delta_c: its largest apparent temperature change at inspection time (°C, negative when
            cold).
    """

    kind: str
    where: str
    mask: NDArray[np.bool_]
    frames: tuple[int, int]
    part_index: int
    serial: str
    delta_c: float

    @property
    def bbox(self) -> tuple[int, int, int, int]:
        """The mask's bounding box ``(x0, y0, x1, y1)`` in pixels, ``x1``/``y1`` exclusive."""
        rows = np.flatnonzero(self.mask.any(axis=1))
        cols = np.flatnonzero(self.mask.any(axis=0))
        return int(cols[0]), int(rows[0]), int(cols[-1]) + 1, int(rows[-1]) + 1


@dataclass(frozen=True, slots=True, eq=False)
class SyntheticPart:
    """One part off the line, as the camera saw it, with its ground truth.

    Attributes:
        index: position in the run (0-based).
        serial: serial number (``"PCB-000123"``).
        product: product name.
        frames: the recording (one frame unless a sequence was asked for); the last is the
            inspection frame.
        defects: ground truth, empty for a good part.
        ambient_c: actual ambient temperature when it was seen (°C).
        drift_c: how far the process had drifted for this part (°C at inspection).
        pose: its shift and rotation on the conveyor.
    """

    index: int
    serial: str
    product: str
    frames: tuple[ThermalFrame, ...]
    defects: tuple[Defect, ...]
    ambient_c: float
    drift_c: float
    pose: Pose

    @property
    def frame(self) -> ThermalFrame:
        """The inspection frame (the last of the recording)."""
        return self.frames[-1]

    @property
    def is_defective(self) -> bool:
        """Whether the part carries a defect (process drift does not count as one)."""
        return bool(self.defects)

    def sequence(self) -> ThermalSequence:
        """The recording as a ``ThermalSequence``."""
        return ThermalSequence.of(list(self.frames), source=self.serial)


class ProductLine:
    """A production line making one product, with one camera over one shift.

    Args:
        product: ``"pcb"``, ``"battery"`` or ``"seal"``.
        rng: draws the camera's fixed pattern, the machine's own patterns (jaw heater profile)
            and the seed every part's generator derives from.
        scale: frame size multiplier; 1 gives 160x120 frames, 2 gives 320x240 (geometry scales).
        camera: noise and non-uniformity of the camera.
        ambient: air temperature over the shift.
        jitter_px: largest shift of a part on the conveyor, in pixels at scale 1 (uniform).
        jitter_deg: largest rotation of a part, in degrees (uniform).
        cycle_s: seconds between parts (default: the product's own).
        shift_start: when the shift starts (timezone-aware).
        difficulty: ``"normal"``, or ``"hard"``: the product's hard model (heat spreading
            through the part, shiny metal reflecting warm surroundings that change from part to
            part, subtle defects), ``HARD_CAMERA`` and ``HARD_AMBIENT`` unless given, and the
            lens's blur (``HARD_OPTICS_PX``).
    """

    def __init__(
        self,
        product: str,
        *,
        rng: np.random.Generator,
        scale: int = 1,
        camera: CameraModel | None = None,
        ambient: Ambient | None = None,
        jitter_px: float = 3.0,
        jitter_deg: float = 1.0,
        cycle_s: float | None = None,
        shift_start: datetime | None = None,
        difficulty: Difficulty = "normal",
    ) -> None:
        if product not in PRODUCTS:
            raise ValueError(f"unknown product {product!r}; choose from {', '.join(PRODUCTS)}")
        if difficulty not in DIFFICULTIES:
            raise ValueError(
                f"unknown difficulty {difficulty!r}; choose from {', '.join(DIFFICULTIES)}"
            )
        if jitter_px < 0 or jitter_deg < 0:
            raise ValueError("jitter must be >= 0")
        hard = difficulty == "hard"
        self.difficulty = difficulty
        self.model = (HARD_PRODUCTS if hard else PRODUCTS)[product](scale=scale, rng=rng)
        self.ambient = ambient or (HARD_AMBIENT if hard else Ambient())
        self.optics_px = HARD_OPTICS_PX * scale if hard else 0.0
        self.sensor = Sensor(
            camera or (HARD_CAMERA if hard else CameraModel()),
            self.model.shape,
            configured_ambient_c=self.ambient.start_c,
            rng=rng,
        )
        self.jitter_px = jitter_px * scale
        self.jitter_deg = jitter_deg
        self.cycle_s = self.model.cycle_s if cycle_s is None else cycle_s
        self.shift_start = shift_start or datetime(2026, 1, 5, 6, 0, 0, tzinfo=UTC)
        self._seed = int(rng.integers(2**63))
        self._camera_info = CameraInfo(
            make="FLIR", model="thermoscope synthetic", serial=f"{self._seed % 100000:05d}"
        )

    @property
    def product(self) -> str:
        """The product's name."""
        return self.model.name

    @property
    def layout(self) -> dict[str, Box | Polygon]:
        """Nominal region geometry by name (frame pixels, before jitter)."""
        return dict(self.model.regions)

    def serial(self, index: int) -> str:
        """Serial number of part ``index``."""
        return f"{self.model.serial_prefix}-{index + 1:06d}"

    def part(
        self,
        index: int,
        *,
        defect: str | None = None,
        where: str | None = None,
        sequence: bool = False,
        drift: Drift | None = None,
    ) -> SyntheticPart:
        """Make and record part ``index``.

        Args:
            index: position in the run (0-based); sets its time in the shift and its randomness.
            defect: defect class to inject, or ``None`` for a good part.
            where: region name the defect goes into (random when ``None``).
            sequence: record the whole heating/cooling sequence instead of one frame.
            drift: a slow process drift acting on the line.
        """
        if index < 0:
            raise ValueError(f"part index must be >= 0, got {index}")
        model = self.model
        # part variation and sensor noise are separate streams: the same part made with and
        # without a defect differs only by the defect
        rng = np.random.default_rng([self._seed, 0, index])
        noise = np.random.default_rng([self._seed, 1, index])
        serial = self.serial(index)
        t_part = index * self.cycle_s
        ambient_c = self.ambient.at(t_part)
        pose = Pose(
            float(rng.uniform(-self.jitter_px, self.jitter_px)),
            float(rng.uniform(-self.jitter_px, self.jitter_px)),
            float(rng.uniform(-self.jitter_deg, self.jitter_deg)),
        )
        warp = self._warp_matrix(pose)
        sources = model.nominal(rng)
        drift_c = 0.0
        if drift is not None:
            model.check_target(drift.target)
            drift_c = drift.offset_c(index)
            if drift_c != 0.0:
                sources.append(model.drift(drift.target, drift_c))
        extra: list[Source] = []
        spec = None
        if defect is not None:
            spec = model.defect(defect, sources, rng, where)
            extra = list(spec.sources)
        times = model.times() if sequence else model.times()[-1:]
        emissivity = self._warp(model.emissivity, warp, edge=0.95)
        reflected = None
        if self.difficulty == "hard":
            surroundings = np.random.default_rng([self._seed, 3, index])
            reflected = ambient_c + self._surroundings(surroundings)
        exposure = self.sensor.exposure(emissivity, ambient_c=ambient_c, reflected_c=reflected)
        frames = []
        for k, t in enumerate(times):
            scene = field(sources + extra, float(t), model.shape)
            celsius = ambient_c + self._seen(scene, warp)
            raw = exposure.counts(celsius, noise)
            elapsed = float(t - times[0])
            meta = FrameMetadata(
                source=serial,
                format="synthetic",
                camera=self._camera_info,
                capture_time=self.shift_start + timedelta(seconds=t_part + float(t)),
                parameters=self.sensor.parameters,
                calibration=self.sensor.calibration,
                frame_index=k if sequence else None,
                timestamp_s=elapsed if sequence else None,
                extra={"product": model.name, "serial": serial, "part_index": index},
            )
            frames.append(ThermalFrame(self.sensor.to_celsius(raw), raw=raw, metadata=meta))
        defects: tuple[Defect, ...] = ()
        if spec is not None:
            defects = (self._ground_truth(spec, times, warp, emissivity, index),)
        return SyntheticPart(
            index, serial, model.name, tuple(frames), defects, ambient_c, drift_c, pose
        )

    def plan(self, parts: int, *, defect_rate: float = 0.05) -> dict[int, str]:
        """The defects of a run of ``parts`` parts, as ``run`` makes them: part index ->
        defect class, for ``round(parts * defect_rate)`` parts chosen at random (classes drawn
        uniformly from the product's). Depends only on the line's seed, ``parts`` and
        ``defect_rate``.

        Raises:
            ValueError: ``parts`` < 0 or ``defect_rate`` outside [0, 1].
        """
        if parts < 0 or not 0.0 <= defect_rate <= 1.0:
            raise ValueError("parts must be >= 0 and defect_rate within [0, 1]")
        rng = np.random.default_rng([self._seed, 2, parts])
        count = round(parts * defect_rate)
        chosen = rng.choice(parts, size=count, replace=False) if count else np.array([], int)
        kinds = rng.choice(len(self.model.defect_kinds), size=count)
        return {int(i): self.model.defect_kinds[int(k)] for i, k in zip(chosen, kinds, strict=True)}

    def run(
        self,
        parts: int,
        *,
        defect_rate: float = 0.05,
        drift: Drift | None = None,
        sequence: bool = False,
    ) -> Iterator[SyntheticPart]:
        """Parts ``0..parts-1``, defective as ``plan`` says.

        Raises:
            ValueError: ``parts`` < 0 or ``defect_rate`` outside [0, 1].
        """
        plan = self.plan(parts, defect_rate=defect_rate)
        for index in range(parts):
            yield self.part(index, defect=plan.get(index), sequence=sequence, drift=drift)

    def _warp_matrix(self, pose: Pose) -> NDArray[np.float64]:
        height, width = self.model.shape
        matrix = cv2.getRotationMatrix2D((width / 2.0, height / 2.0), pose.angle_deg, 1.0)
        matrix[0, 2] += pose.dx_px
        matrix[1, 2] += pose.dy_px
        return np.asarray(matrix, dtype=np.float64)

    def _seen(self, scene: FloatMap, matrix: NDArray[np.float64]) -> FloatMap:
        """A temperature change map as it reaches the sensor: moved with the part, then blurred
        by the lens (``hard`` only)."""
        moved = self._warp(scene, matrix, edge=0.0)
        return blur(moved, self.optics_px) if self.optics_px > 0 else moved

    def _surroundings(self, rng: np.random.Generator) -> FloatMap:
        """What shiny surfaces reflect, over ambient (°C, (H, W), camera coordinates): warm
        machinery and lamps around the station, a different mix for every part (2 °C cooler to
        5 °C warmer, a gradient of up to ±2 °C across the frame, a lamp's patchy reflection)."""
        shape = self.model.shape
        xx = np.linspace(-0.5, 0.5, shape[1], dtype=np.float32)[None, :]
        yy = np.linspace(-0.5, 0.5, shape[0], dtype=np.float32)[:, None]
        gx, gy = rng.uniform(-2.0, 2.0, size=2)
        patches = smooth_noise(shape, sigma_px=20.0 * self.model.scale, rms=0.5, rng=rng)
        base = np.float32(rng.uniform(-2.0, 5.0))
        return (base + np.float32(gx) * xx + np.float32(gy) * yy + patches).astype(np.float32)

    def _warp(self, image: FloatMap, matrix: NDArray[np.float64], *, edge: float) -> FloatMap:
        """``image`` moved to where the part lies; uncovered pixels get ``edge``."""
        height, width = image.shape
        return np.asarray(
            cv2.warpAffine(
                image,
                matrix,
                (width, height),
                flags=cv2.INTER_LINEAR,
                borderMode=cv2.BORDER_CONSTANT,
                borderValue=edge,
            ),
            dtype=np.float32,
        )

    def _ground_truth(
        self,
        spec: DefectSpec,
        times: NDArray[np.float64],
        warp: NDArray[np.float64],
        emissivity: FloatMap,
        index: int,
    ) -> Defect:
        """Mask (half of the largest apparent change), frame range and size of a defect."""
        shape = self.model.shape
        extra = list(spec.sources)
        # what the camera sees of a temperature change scales with the surface's emissivity
        seen = emissivity / np.float32(self.sensor.parameters.emissivity)
        change = self._seen(field(extra, float(times[-1]), shape), warp) * seen
        peak = float(change.flat[np.argmax(np.abs(change))])
        mask = np.abs(change) >= 0.5 * abs(peak)
        nominal_seen = self.model.emissivity / np.float32(self.sensor.parameters.emissivity)
        visible = [
            k
            for k, t in enumerate(times)
            if np.abs(field(extra, float(t), shape) * nominal_seen).max() >= VISIBLE_C
        ]
        frames = (visible[0], visible[-1] + 1) if visible else (len(times) - 1, len(times))
        return Defect(spec.kind, spec.where, mask, frames, index, self.serial(index), peak)


def simulate_run(
    product: str,
    *,
    parts: int,
    defect_rate: float,
    rng: np.random.Generator,
    drift: Drift | None = None,
    sequence: bool = False,
    scale: int = 1,
    difficulty: Difficulty = "normal",
) -> Iterator[SyntheticPart]:
    """A run of ``parts`` parts of ``product`` on a fresh line (see ``ProductLine``).

    Example:
        >>> parts = list(simulate_run("seal", parts=10, defect_rate=0.1,
        ...                           rng=np.random.default_rng(1)))
        >>> sum(p.is_defective for p in parts)
        1
    """
    line = ProductLine(product, rng=rng, scale=scale, difficulty=difficulty)
    return line.run(parts, defect_rate=defect_rate, drift=drift, sequence=sequence)


def product_layout(product: str, *, scale: int = 1) -> dict[str, Box | Polygon]:
    """Nominal region geometry of ``product`` by name (frame pixels at ``scale``)."""
    if product not in PRODUCTS:
        raise ValueError(f"unknown product {product!r}; choose from {', '.join(PRODUCTS)}")
    return dict(PRODUCTS[product](scale=scale, rng=np.random.default_rng(0)).regions)
