"""Part-record manifests: a small YAML/JSON file naming everything captured of one part.

A manifest lists the part's thermal views (view name → radiometric file, read with
:func:`thermoscope.io.open_path`), its sensor files (name → WAV/CSV/NumPy file read with
:func:`thermoscope.io.sensor_series.load_sensor`, with the sample rate and unit the format does
not carry), the times that align them and the ambient conditions of the capture. Paths are
relative to the manifest's folder. :func:`load_record_manifest` gives the
:class:`~thermoscope.core.PartRecord`; anything wrong is a :class:`RecordManifestError` naming
the manifest, the field and the reason. Example (docs/part-records.md describes every field)::

    part_id: MOT-000003
    timestamp_s: 30.0
    views:
      drive_end: {file: drive_end.npy, timestamp_s: 30.0}
      fan_end: {file: fan_end.tiff}
    sensors:
      vib: {file: vib.wav, unit: g, full_scale: 2.0, start_s: 29.5}
    ambient: {temperature_c: 24.1, relative_humidity_pct: 41}
"""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path
from typing import Annotated, Any

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from thermoscope.core.errors import ThermoscopeError
from thermoscope.core.frame import ThermalFrame
from thermoscope.core.part_record import CaptureConditions, PartRecord, SensorSeries, View
from thermoscope.io.errors import ThermoscopeFormatError
from thermoscope.io.registry import open_path
from thermoscope.io.sensor_series import load_sensor

#: Largest manifest read, bytes (a manifest names files; it never holds data).
MAX_MANIFEST_BYTES = 1 << 20

_Name = Annotated[str, Field(pattern=r"^[A-Za-z0-9_][A-Za-z0-9_.\-]*$", max_length=64)]
_Seconds = Annotated[float, Field(ge=-1e12, le=1e12)]


class RecordManifestError(ThermoscopeFormatError):
    """A part-record manifest is unreadable or invalid, or a file it names is."""


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, allow_inf_nan=False)


class ViewEntry(_Model):
    """One thermal view: its radiometric file and, when the file has none, its time."""

    file: str = Field(min_length=1, description="radiometric file, relative to the manifest")
    camera: str = Field(
        default="", max_length=200, description="the camera's serial or station label"
    )
    timestamp_s: _Seconds | None = Field(
        default=None, description="time of the view's first frame on the record's clock, s"
    )
    frame_interval_s: float | None = Field(
        default=None,
        gt=0.0,
        le=3600.0,
        description="time between frames, s, for a sequence whose file stores no frame times",
    )


class SensorEntry(_Model):
    """One sensor file and what its format does not say."""

    file: str = Field(min_length=1, description="WAV, CSV, .npy or .npz file")
    unit: str | None = Field(
        default=None,
        min_length=1,
        max_length=32,
        description="unit of the values (checked if stored)",
    )
    sample_rate_hz: float | None = Field(
        default=None,
        gt=0.0,
        le=10_000_000.0,
        description="samples per second, Hz (checked if stored)",
    )
    full_scale: float = Field(
        default=1.0,
        gt=0.0,
        le=1e9,
        description="WAV only: the value of a full-scale sample, in unit",
    )
    start_s: _Seconds | None = Field(
        default=None, description="time of the first sample on the record's clock, s (WAV, .npy)"
    )
    kind: str = Field(
        default="vibration", min_length=1, max_length=32, description="what it measures"
    )


class AmbientEntry(_Model):
    """The ambient conditions of the capture (as :class:`~thermoscope.core.CaptureConditions`)."""

    temperature_c: float | None = Field(default=None, ge=-273.15, le=10000.0, description="air, °C")
    relative_humidity_pct: float | None = Field(default=None, ge=0.0, le=100.0, description="RH, %")
    airflow_m_s: float | None = Field(default=None, ge=0.0, le=1000.0, description="air speed, m/s")


class RecordManifest(_Model):
    """A part-record manifest (see the module docstring)."""

    part_id: str = Field(min_length=1, max_length=200, description="the part's serial or label")
    timestamp_s: _Seconds | None = Field(default=None, description="when the part was captured, s")
    views: dict[_Name, ViewEntry] = Field(min_length=1, description="view name → view")
    sensors: dict[_Name, SensorEntry] = Field(
        default_factory=dict, description="sensor name → sensor file"
    )
    ambient: AmbientEntry = Field(default=AmbientEntry(), description="capture ambient")
    metadata: dict[str, str | int | float | bool] = Field(
        default_factory=dict, description="free per-part details (station, shift, lot...)"
    )


def _problem(exc: ValidationError) -> str:
    problems = []
    for err in exc.errors(include_url=False):
        where = ".".join(str(p) for p in err["loc"]) or "manifest"
        if err["type"] == "extra_forbidden":
            problems.append(f"{where}: unknown field")
        else:
            problems.append(f"{where}: {err['msg']}")
    return "; ".join(problems)


def parse_record_manifest(data: bytes | str) -> RecordManifest:
    """Validate manifest text (YAML or JSON).

    Raises:
        RecordManifestError: not YAML/JSON, not a mapping, or a field is unknown or invalid.
    """
    try:
        raw: Any = yaml.safe_load(data)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" at line {mark.line + 1}" if mark is not None else ""
        raise RecordManifestError(f"not valid YAML/JSON{where}") from None
    if not isinstance(raw, dict):
        raise RecordManifestError("a manifest must be a mapping of fields to values")
    try:
        return RecordManifest.model_validate(raw)
    except ValidationError as exc:
        raise RecordManifestError(_problem(exc)) from None


def _view(name: str, entry: ViewEntry, folder: Path) -> View:
    where = f"views.{name}"
    with open_path(folder / entry.file) as seq:
        frames = [seq[i] for i in range(len(seq))]
    if entry.timestamp_s is not None:
        stamps = [f.metadata.timestamp_s for f in frames]
        if all(s is not None for s in stamps):
            first = float(stamps[0] or 0.0)
            times = [entry.timestamp_s + float(s or 0.0) - first for s in stamps]
        elif len(frames) == 1 or entry.frame_interval_s is not None:
            step = entry.frame_interval_s or 0.0
            times = [entry.timestamp_s + i * step for i in range(len(frames))]
        else:
            raise RecordManifestError(
                f"{where}: {len(frames)} frames without stored times; give frame_interval_s"
            )
        frames = [_at(f, t) for f, t in zip(frames, times, strict=True)]
    return View(name, tuple(frames), camera=entry.camera)


def _at(frame: ThermalFrame, time_s: float) -> ThermalFrame:
    """The frame stamped at ``time_s`` (s, record clock); pixels and raw counts unchanged."""
    return replace(frame, metadata=replace(frame.metadata, timestamp_s=time_s))


def _sensor(name: str, entry: SensorEntry, folder: Path) -> SensorSeries:
    return load_sensor(
        folder / entry.file,
        name=name,
        unit=entry.unit,
        sample_rate_hz=entry.sample_rate_hz,
        full_scale=entry.full_scale,
        start_s=entry.start_s or 0.0,
        kind=entry.kind,
    )


def _check_overlap(views: list[View], sensors: list[SensorSeries]) -> None:
    spans = [v.time_span_s for v in views]
    known = [s for s in spans if s is not None]
    if not known:
        return
    t0, t1 = min(s[0] for s in known), max(s[1] for s in known)
    for series in sensors:
        if series.start_s > t1 or series.end_s < t0:
            raise RecordManifestError(
                f"sensors.{series.name}: its samples cover {series.start_s:g}..{series.end_s:g} s"
                f", the views' frames {t0:g}..{t1:g} s: the times do not overlap (check the "
                "start times)"
            )


def load_record_manifest(path: str | Path) -> PartRecord:
    """Read a manifest and every file it names into a part record.

    Raises:
        RecordManifestError: naming the manifest, the field (``views.<name>``,
            ``sensors.<name>``...) and the reason: the manifest is invalid, a file is missing
            or unreadable, a sensor's rate or unit differs from the stated one, or a sensor's
            samples do not overlap the frames' times.
    """
    path = Path(path)
    source = str(path)
    try:
        with path.open("rb") as fh:
            data = fh.read(MAX_MANIFEST_BYTES + 1)
    except OSError as exc:
        raise RecordManifestError(f"cannot read: {exc.strerror or exc}", source) from None
    if len(data) > MAX_MANIFEST_BYTES:
        raise RecordManifestError(f"larger than {MAX_MANIFEST_BYTES} bytes", source)
    try:
        manifest = parse_record_manifest(data)
    except RecordManifestError as exc:
        raise exc.with_source(source) from None
    folder = path.parent
    views: list[View] = []
    sensors: list[SensorSeries] = []
    field = "views"
    try:
        for name, view in manifest.views.items():
            field = f"views.{name}"
            views.append(_view(name, view, folder))
        for name, sensor in manifest.sensors.items():
            field = f"sensors.{name}"
            sensors.append(_sensor(name, sensor, folder))
        _check_overlap(views, sensors)
        field = "ambient"
        ambient = CaptureConditions(**manifest.ambient.model_dump())
        field = "manifest"
        return PartRecord(
            manifest.part_id,
            tuple(views),
            tuple(sensors),
            ambient,
            manifest.timestamp_s,
            dict(manifest.metadata),
        )
    except RecordManifestError as exc:
        raise exc.with_source(source) from None
    except ThermoscopeError as exc:
        raise RecordManifestError(f"{field}: {exc}", source) from None
