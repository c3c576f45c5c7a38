"""``PartRecord``: everything captured of one part, inspected together.

A part may be seen by several thermal views (angles or cameras, each a frame or a sequence with
its view name), under recorded ambient conditions, with time series from other sensors
(vibration, acoustic, process values) that keep their sample rate and unit. Times are seconds
on one clock shared by the record: a sensor series starts at ``start_s``, a frame carries its
``metadata.timestamp_s`` (when it has one), and the record its own ``timestamp_s``. Everything
is checked on construction and raises :class:`PartRecordError` naming the field.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from dataclasses import dataclass, field

import numpy as np
from numpy.typing import NDArray

from thermoscope.core.errors import ThermoscopeError
from thermoscope.core.frame import ThermalFrame
from thermoscope.core.visual import VisualImage

_NAME = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_.\-]*$")
#: Highest sample rate a series may state, Hz (anything faster is taken as a mistake).
MAX_SAMPLE_RATE_HZ = 10_000_000.0


class PartRecordError(ThermoscopeError, ValueError):
    """A part record, view or sensor series was built from inconsistent data."""


def _name(value: str, what: str) -> str:
    if not isinstance(value, str) or not _NAME.match(value) or len(value) > 64:
        raise PartRecordError(
            f"{what} must be 1..64 letters, digits, '_', '.' or '-', got {value!r}"
        )
    return value


def _finite(value: float | None, what: str) -> None:
    if value is not None and not math.isfinite(value):
        raise PartRecordError(f"{what} must be finite, got {value!r}")


@dataclass(frozen=True, slots=True, eq=False)
class SensorSeries:
    """One sensor's samples, evenly spaced in time.

    Attributes:
        name: the sensor's name (``"vib"``, ``"mic"``...), as recipes refer to it.
        values: samples in ``unit``, float64, 1-D, all finite.
        sample_rate_hz: samples per second, Hz.
        unit: the unit of the values (``"g"``, ``"m/s²"``, ``"Pa"``, ``"A"``...).
        start_s: time of the first sample on the record's clock, s.
        kind: what it measures (``"vibration"``, ``"acoustic"``, ``"process"``...).
    """

    name: str
    values: NDArray[np.float64]
    sample_rate_hz: float
    unit: str
    start_s: float = 0.0
    kind: str = "vibration"

    def __post_init__(self) -> None:
        _name(self.name, "sensor name")
        values = np.asarray(self.values)
        if values.ndim != 1 or values.size < 2:
            raise PartRecordError(
                f"sensor {self.name!r}: values must be 1-D with at least 2 samples, "
                f"got shape {values.shape}"
            )
        if not (np.issubdtype(values.dtype, np.number) and not np.iscomplexobj(values)):
            raise PartRecordError(f"sensor {self.name!r}: values must be real numbers")
        values = np.ascontiguousarray(values, dtype=np.float64)
        if not bool(np.isfinite(values).all()):
            raise PartRecordError(f"sensor {self.name!r}: values must all be finite")
        object.__setattr__(self, "values", values)
        rate = self.sample_rate_hz
        if not (isinstance(rate, (int, float)) and 0.0 < rate <= MAX_SAMPLE_RATE_HZ):
            raise PartRecordError(
                f"sensor {self.name!r}: sample_rate_hz must be in (0, {MAX_SAMPLE_RATE_HZ:g}] "
                f"Hz, got {rate!r}"
            )
        if not isinstance(self.unit, str) or not self.unit.strip():
            raise PartRecordError(f"sensor {self.name!r}: unit must be a non-empty string")
        _finite(self.start_s, f"sensor {self.name!r} start_s")

    @property
    def duration_s(self) -> float:
        """Time covered by the samples, s (``len / rate``)."""
        return self.values.size / self.sample_rate_hz

    @property
    def end_s(self) -> float:
        """End of the covered time, s (exclusive)."""
        return self.start_s + self.duration_s

    def times_s(self) -> NDArray[np.float64]:
        """The time of every sample on the record's clock, s."""
        return self.start_s + np.arange(self.values.size, dtype=np.float64) / self.sample_rate_hz

    def window(self, t0_s: float, t1_s: float) -> SensorSeries:
        """The samples whose times lie in ``[t0_s, t1_s)`` (record clock, s).

        Raises:
            PartRecordError: the window is inverted, or holds fewer than 2 samples of this
                series (the times do not overlap).
        """
        if not t1_s > t0_s:
            raise PartRecordError(f"sensor {self.name!r}: window [{t0_s:g}, {t1_s:g}) s is empty")
        i0 = max(0, math.ceil((t0_s - self.start_s) * self.sample_rate_hz - 1e-9))
        i1 = min(self.values.size, math.ceil((t1_s - self.start_s) * self.sample_rate_hz - 1e-9))
        if i1 - i0 < 2:
            raise PartRecordError(
                f"sensor {self.name!r} covers {self.start_s:g}..{self.end_s:g} s, which does not "
                f"overlap the window {t0_s:g}..{t1_s:g} s"
            )
        return SensorSeries(
            self.name,
            self.values[i0:i1],
            self.sample_rate_hz,
            self.unit,
            self.start_s + i0 / self.sample_rate_hz,
            self.kind,
        )


@dataclass(frozen=True, slots=True, eq=False)
class View:
    """One thermal view of the part: a frame or a sequence from one angle or camera.

    Attributes:
        name: the view's name (``"drive_end"``, ``"top"``...), as recipes refer to it.
        frames: the frames in time order (one for a still image).
        camera: the camera's identification (serial or station label), ``""`` if unknown.
        visual: the visual photo taken with the view (the one its file carries, or a separate
            visual camera's), registered onto the frames by ``analysis.fusion_registration``.
    """

    name: str
    frames: tuple[ThermalFrame, ...]
    camera: str = ""
    visual: VisualImage | None = None

    def __post_init__(self) -> None:
        _name(self.name, "view name")
        frames = (self.frames,) if isinstance(self.frames, ThermalFrame) else tuple(self.frames)
        if not frames:
            raise PartRecordError(f"view {self.name!r} has no frames")
        for i, frame in enumerate(frames):
            if not isinstance(frame, ThermalFrame):
                raise PartRecordError(
                    f"view {self.name!r} frames[{i}] is a {type(frame).__name__}, "
                    "not a ThermalFrame"
                )
            if frame.shape != frames[0].shape:
                raise PartRecordError(
                    f"view {self.name!r} frames[{i}] is {frame.width}x{frame.height}, "
                    f"frames[0] {frames[0].width}x{frames[0].height}"
                )
        if self.visual is not None and not isinstance(self.visual, VisualImage):
            raise PartRecordError(
                f"view {self.name!r} visual is a {type(self.visual).__name__}, not a VisualImage"
            )
        object.__setattr__(self, "frames", frames)

    @property
    def time_span_s(self) -> tuple[float, float] | None:
        """First and last frame timestamps, s, when every frame has one."""
        stamps = [f.metadata.timestamp_s for f in self.frames]
        if any(s is None for s in stamps):
            return None
        values = [float(s) for s in stamps if s is not None]
        return min(values), max(values)


@dataclass(frozen=True, slots=True)
class CaptureConditions:
    """The ambient conditions of the capture (each ``None`` when not measured).

    Attributes:
        temperature_c: air temperature at the station, °C.
        relative_humidity_pct: relative humidity, percent (0..100).
        airflow_m_s: air speed across the part, m/s.
    """

    temperature_c: float | None = None
    relative_humidity_pct: float | None = None
    airflow_m_s: float | None = None

    def __post_init__(self) -> None:
        _finite(self.temperature_c, "ambient temperature_c")
        if self.temperature_c is not None and not -273.15 <= self.temperature_c <= 10000.0:
            raise PartRecordError(f"ambient temperature_c {self.temperature_c:g} °C is impossible")
        rh = self.relative_humidity_pct
        _finite(rh, "ambient relative_humidity_pct")
        if rh is not None and not 0.0 <= rh <= 100.0:
            raise PartRecordError(f"ambient relative_humidity_pct {rh:g} is outside 0..100 %")
        _finite(self.airflow_m_s, "ambient airflow_m_s")
        if self.airflow_m_s is not None and self.airflow_m_s < 0:
            raise PartRecordError(f"ambient airflow_m_s {self.airflow_m_s:g} is negative")


@dataclass(frozen=True, slots=True, eq=False)
class PartRecord:
    """Everything captured of one part.

    Attributes:
        part_id: the part's serial or label (names it in findings).
        views: its thermal views, names unique.
        sensors: its sensor time series, names unique.
        ambient: the ambient conditions of the capture.
        timestamp_s: when the part was captured, s on the record's clock (``None`` if unknown).
        metadata: free per-part details (station, shift, lot...).
    """

    part_id: str
    views: tuple[View, ...]
    sensors: tuple[SensorSeries, ...] = ()
    ambient: CaptureConditions = CaptureConditions()
    timestamp_s: float | None = None
    metadata: Mapping[str, object] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if not isinstance(self.part_id, str):
            raise PartRecordError(f"part_id must be a string, got {self.part_id!r}")
        views = tuple(self.views)
        sensors = tuple(self.sensors)
        if not views:
            raise PartRecordError(f"part {self.part_id!r} has no thermal view")
        for kind, items, cls in (("view", views, View), ("sensor", sensors, SensorSeries)):
            seen: set[str] = set()
            for i, item in enumerate(items):
                if not isinstance(item, cls):
                    raise PartRecordError(
                        f"part {self.part_id!r} {kind}s[{i}] is a {type(item).__name__}, "
                        f"not a {cls.__name__}"
                    )
                if item.name in seen:
                    raise PartRecordError(
                        f"part {self.part_id!r} has two {kind}s named {item.name!r}"
                    )
                seen.add(item.name)
        if not isinstance(self.ambient, CaptureConditions):
            raise PartRecordError("ambient must be CaptureConditions")
        _finite(self.timestamp_s, "timestamp_s")
        object.__setattr__(self, "views", views)
        object.__setattr__(self, "sensors", sensors)

    def view(self, name: str) -> View:
        """The view called ``name``.

        Raises:
            PartRecordError: there is none.
        """
        for v in self.views:
            if v.name == name:
                return v
        known = ", ".join(v.name for v in self.views)
        raise PartRecordError(f"part {self.part_id!r} has no view {name!r} (it has: {known})")

    def sensor(self, name: str) -> SensorSeries:
        """The sensor series called ``name``.

        Raises:
            PartRecordError: there is none.
        """
        for s in self.sensors:
            if s.name == name:
                return s
        known = ", ".join(s.name for s in self.sensors) or "none"
        raise PartRecordError(f"part {self.part_id!r} has no sensor {name!r} (it has: {known})")

    def sensors_during(self, view: str, *, margin_s: float = 0.0) -> dict[str, SensorSeries]:
        """Every sensor cut to the time the view's frames span (± ``margin_s``), by name.

        When the view's frames carry no timestamps the series are returned whole.

        Raises:
            PartRecordError: a sensor's samples do not overlap the view's frame times.
        """
        span = self.view(view).time_span_s
        if span is None:
            return {s.name: s for s in self.sensors}
        t0, t1 = span[0] - margin_s, span[1] + margin_s
        if t1 <= t0:
            raise PartRecordError(
                f"view {view!r} spans one instant ({span[0]:g} s); give margin_s > 0 to cut "
                "sensor series around it"
            )
        return {s.name: s.window(t0, t1) for s in self.sensors}
