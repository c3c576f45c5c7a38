"""The line model: site → line → station → camera and sensors, and each part's values.

Every class is pydantic with ``extra="forbid"``; a site is loaded from YAML/JSON
(:func:`load_site`) whose stations name their recipe file, from which the regions (with their
emissivity), the rules' expected values and limits, and the camera's measurement settings are
taken. :func:`compare` holds one part's inspection against its station: measured against
expected value per ``(rule, region)``.
"""

from __future__ import annotations

import json
from datetime import datetime
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from thermoscope.core.errors import ThermoscopeError
from thermoscope.core.findings import Inspection
from thermoscope.recipes.schema import Recipe, RecipeError, load_recipe

#: Twin ids: a letter, then letters, digits, ``_`` or ``-`` (safe in AAS idShorts and DTMIs
#: once ``-`` is mapped to ``_``).
ID_PATTERN = r"^[A-Za-z][A-Za-z0-9_-]{0,63}$"
SensorKind = Literal["ambient", "humidity", "airflow", "vibration", "acoustic", "process"]


class TwinError(ThermoscopeError, ValueError):
    """A twin file or export is invalid; the message names the file or field and the reason."""


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Sensor(_Strict):
    """A sensor at a station (ambient thermometer, hygrometer, accelerometer...)."""

    id: str = Field(pattern=ID_PATTERN, description="sensor id, unique in its station")
    kind: SensorKind = Field(description="what it measures")
    unit: str = Field(
        min_length=1, max_length=20, description="unit of its readings (°C, %, m/s, g)"
    )
    rate_hz: float | None = Field(
        default=None, gt=0.0, le=1e6, description="sample rate in Hz (none: one reading per part)"
    )


class Calibration(_Strict):
    """The camera's last calibration."""

    date: str = Field(default="", max_length=40, description="ISO date of the last calibration")
    reference: str = Field(
        default="", max_length=200, description="blackbody or reference emitter used"
    )
    offset_c: float = Field(
        default=0.0, ge=-50.0, le=50.0, description="offset found against the reference, °C"
    )


class Camera(_Strict):
    """The station's thermal camera and its measurement settings."""

    id: str = Field(pattern=ID_PATTERN, description="camera id")
    make: str = Field(default="", max_length=100, description="manufacturer")
    model: str = Field(default="", max_length=100, description="camera model")
    serial: str = Field(default="", max_length=100, description="serial number")
    emissivity: float | None = Field(
        default=None, gt=0.0, le=1.0, description="default emissivity the recipe sets"
    )
    distance_m: float | None = Field(
        default=None, ge=0.0, le=10000.0, description="camera-to-part distance, metres"
    )
    calibration: Calibration = Field(default=Calibration(), description="last calibration")


class Region(_Strict):
    """A region of the product as the station inspects it."""

    name: str = Field(min_length=1, max_length=100, description="region name in the recipe")
    emissivity: float | None = Field(
        default=None, gt=0.0, le=1.0, description="the region's emissivity (none: the camera's)"
    )


class Expected(_Strict):
    """What a rule should measure on a region: the centre of its band and its NG limits."""

    rule: str = Field(min_length=1, max_length=200, description="rule name in the recipe")
    region: str = Field(max_length=200, description="region it measures")
    expected: float | None = Field(
        default=None,
        description="expected value: the middle of the WARN band, else of the NG band (unit)",
    )
    min: float | None = Field(default=None, description="lowest value that is not NG (unit)")
    max: float | None = Field(default=None, description="highest value that is not NG (unit)")


class Station(_Strict):
    """One inspection station: its camera, sensors, recipe and model versions, and regions."""

    id: str = Field(pattern=ID_PATTERN, description="station id, unique in the site")
    name: str = Field(default="", max_length=200, description="display name")
    recipe: str = Field(min_length=1, max_length=100, description="recipe name")
    recipe_version: str = Field(min_length=1, max_length=40, description="recipe version")
    model_version: str | None = Field(
        default=None, max_length=100, description="active model release, if any"
    )
    parts_per_hour: float | None = Field(
        default=None, gt=0.0, le=1e6, description="line rate at this station, parts per hour"
    )
    ambient_c: float | None = Field(
        default=None, ge=-60.0, le=200.0, description="nominal ambient temperature, °C"
    )
    camera: Camera = Field(description="the thermal camera")
    sensors: list[Sensor] = Field(default=[], max_length=100, description="other sensors")
    regions: list[Region] = Field(default=[], max_length=1000, description="inspected regions")
    expected: list[Expected] = Field(default=[], max_length=1000, description="rule bands")


class Line(_Strict):
    """A production line: stations in flow order."""

    id: str = Field(pattern=ID_PATTERN, description="line id, unique in the site")
    name: str = Field(default="", max_length=200, description="display name")
    stations: list[Station] = Field(min_length=1, max_length=1000, description="stations")


class Site(_Strict):
    """A plant: its lines."""

    id: str = Field(pattern=ID_PATTERN, description="site id")
    name: str = Field(default="", max_length=200, description="display name")
    lines: list[Line] = Field(min_length=1, max_length=100, description="production lines")

    def stations(self) -> list[Station]:
        """Every station of every line, in order."""
        return [station for line in self.lines for station in line.stations]

    def station(self, station_id: str) -> Station:
        """The station with this id (:class:`TwinError` when there is none)."""
        for station in self.stations():
            if station.id == station_id:
                return station
        raise TwinError(f"site {self.id!r} has no station {station_id!r}")


class PartValue(_Strict):
    """One measured value of a part against its expected value."""

    station: str = Field(description="station id")
    part: str = Field(description="part serial or source")
    time: datetime | None = Field(default=None, description="when it was inspected")
    rule: str = Field(description="rule name")
    region: str = Field(description="region name")
    measured: float = Field(description="measured value (unit)")
    expected: float | None = Field(description="expected value (unit)")
    deviation: float | None = Field(description="measured - expected (unit)")
    unit: str = Field(description="unit of the values")
    verdict: str = Field(description="OK, WARN, NG or RETAKE")


def _middle(low: float | None, high: float | None) -> float | None:
    if low is not None and high is not None:
        return (low + high) / 2.0
    return None


def expected_values(recipe: Recipe) -> list[Expected]:
    """The expected value and NG limits of every recipe rule that has limits."""
    out = []
    for rule in recipe.rules:
        band = getattr(rule, "limits", None)
        region = getattr(rule, "region", None) or ""
        pair = getattr(rule, "pair", None)
        if band is None or rule.name is None:
            continue
        if pair:
            region = f"{region}-{pair}"
        centre = _middle(band.warn_min, band.warn_max)
        if centre is None:
            centre = _middle(band.min, band.max)
        out.append(
            Expected(rule=rule.name, region=region, expected=centre, min=band.min, max=band.max)
        )
    return out


def station_from_recipe(recipe: Recipe, station: dict[str, Any], *, where: str) -> Station:
    """A station from its config entry (id, name, camera, sensors, ...) and its recipe."""
    fields = {k: v for k, v in station.items() if k != "recipe_file"}
    camera = dict(fields.pop("camera", {}) or {})
    camera.setdefault("emissivity", recipe.camera.emissivity)
    camera.setdefault("distance_m", recipe.camera.object_distance_m)
    regions = [Region(name=r.name, emissivity=r.emissivity) for r in recipe.regions]
    try:
        return Station(
            recipe=recipe.name,
            recipe_version=recipe.version,
            camera=Camera(**camera),
            regions=regions,
            expected=expected_values(recipe),
            ambient_c=fields.pop("ambient_c", recipe.camera.atmospheric_temp_c),
            **fields,
        )
    except (ValidationError, TypeError) as exc:
        raise TwinError(f"{where}: {exc}") from exc


def parse_site(text: str, *, base: Path, source: str = "<site>") -> Site:
    """A site from YAML/JSON text; each station's ``recipe_file`` is relative to ``base``."""
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise TwinError(f"{source}: not YAML/JSON: {exc}") from exc
    if not isinstance(data, dict) or not isinstance(data.get("lines"), list):
        raise TwinError(f"{source}: expected a mapping with a list of lines")
    lines = []
    for i, line in enumerate(data["lines"]):
        if not isinstance(line, dict) or not isinstance(line.get("stations"), list):
            raise TwinError(f"{source}: lines[{i}] needs a list of stations")
        stations = []
        for j, entry in enumerate(line["stations"]):
            where = f"{source}: lines[{i}].stations[{j}]"
            if not isinstance(entry, dict) or not isinstance(entry.get("recipe_file"), str):
                raise TwinError(f"{where}: needs recipe_file, the station's recipe")
            try:
                recipe = load_recipe(base / entry["recipe_file"])
            except (RecipeError, OSError) as exc:
                raise TwinError(f"{where}.recipe_file: {exc}") from exc
            stations.append(station_from_recipe(recipe, entry, where=where))
        lines.append({**line, "stations": stations})
    try:
        return Site.model_validate({**data, "lines": lines})
    except ValidationError as exc:
        raise TwinError(f"{source}: {exc}") from exc


def load_site(path: Path) -> Site:
    """A site from a YAML/JSON file (see :func:`parse_site`)."""
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise TwinError(f"{path}: cannot read: {exc}") from exc
    return parse_site(text, base=path.parent, source=str(path))


def site_from_json(data: Any, *, source: str = "<twin>") -> Site:
    """A site from its own JSON form (``Site.model_dump(mode="json")``)."""
    try:
        return Site.model_validate(json.loads(data) if isinstance(data, str) else data)
    except (ValidationError, json.JSONDecodeError) as exc:
        raise TwinError(f"{source}: {exc}") from exc


def compare(
    station: Station, inspection: Inspection, *, time: datetime | None = None
) -> list[PartValue]:
    """Each finding of a part against its station's expected value (None: no band known)."""
    bands = {(e.rule, e.region): e.expected for e in station.expected}
    by_rule = {e.rule: e.expected for e in station.expected}
    values = []
    for finding in inspection.findings:
        expected = bands.get((finding.rule, finding.region), by_rule.get(finding.rule))
        measured = float(finding.value)
        values.append(
            PartValue(
                station=station.id,
                part=inspection.source,
                time=time,
                rule=finding.rule,
                region=finding.region,
                measured=measured,
                expected=expected,
                deviation=None if expected is None else measured - expected,
                unit=finding.unit,
                verdict=finding.verdict.value,
            )
        )
    return values
