"""A product's QC recipe: regions, tolerance bands and rules, validated on load.

A recipe is YAML or JSON. Every object refuses unknown keys; every number is bounded; errors are
raised as one :class:`RecipeError` naming the file and the field path
(``rules[3].limits: inverted range: min 80 > max 70``). Paths to files (masks, reference frames,
golden curves) are relative to the recipe file's folder.

Example::

    name: pcb-a1
    version: "1.2"
    product: Controller board A1
    frame: {width: 640, height: 512}
    camera: {emissivity: 0.95, pixel_pitch_mm: 0.25}
    ambient: {region: background}            # or {value_c: 23.5}
    regions:
      - {name: U3, box: {x: 300, y: 200, width: 40, height: 30}}
      - {name: U4, box: {x: 360, y: 200, width: 40, height: 30}, pair: U3}
      - {name: C1, polygon: [[100, 100], [140, 100], [120, 140]], emissivity: 0.9}
      - {name: seal, mask: masks/seal.png}
      - {name: background, box: {x: 0, y: 0, width: 40, height: 40}}
    rules:
      - {type: max, region: U3, limits: {max: 70, warn_max: 65}}
      - {type: delta_t, region: U3, reference: ambient, limits: {max: 45}}
      - {type: hot_spot_area, region: seal, above_median_c: 5, limits: {max: 20}}
      - {type: asymmetry, region: U3, limits: {min: -3, max: 3}}
      - {type: heating_rate, region: U3, window_s: [0.5, 3.0], limits: {min: 2.0, max: 6.0}}

Top level (:class:`Recipe`):

- ``name`` (text), ``version`` (text; numbers are accepted and kept as text), ``product``,
  ``description``.
- ``frame``: ``width``, ``height`` in pixels: the frame size the recipe expects.
- ``camera``: ``emissivity``, ``reflected_temp_c``, ``atmospheric_temp_c``,
  ``relative_humidity_pct``, ``object_distance_m`` (each optional; when one is set the frame's
  temperatures are recomputed from its calibration before inspection), and ``pixel_pitch_mm``
  (size of one pixel on the part, for areas in mm² and gradients in °C/mm).
- ``ambient``: ``region`` (a region whose ``statistic``, default median, is the ambient) or
  ``value_c`` (a fixed reading); a reading passed to ``inspect`` overrides both.
- ``alignment``: ``reference`` (a frame of a well-placed part: ``.npy``, ``.npz`` with a
  ``celsius`` array, or a single-channel TIFF/PNG), ``fiducials`` (regions used as templates; none
  = whole-frame phase correlation), ``motion`` (``translation`` or ``rigid`` = translation and a
  small rotation), ``max_shift_px``, ``max_rotation_deg``. Parts are registered onto the reference
  before the regions apply.
- ``sequence``: ``frame_rate_hz`` (used when frames carry no timestamps) and ``frame`` (index of
  the frame that the single-frame rules inspect in a sequence; default -1, the last).
- ``regions``: a list of named regions, each exactly one of ``box`` (``x``, ``y``, ``width``,
  ``height``), ``polygon`` (at least three ``[x, y]`` points) or ``mask`` (an image or ``.npy``
  file of the frame's size, nonzero = inside); optional ``emissivity`` (recomputes that region
  with its own emissivity) and ``pair`` (the mirror-image partner for asymmetry rules).
- ``rules``: a list; each has ``type``, ``region``, ``limits`` and an optional ``name`` (default
  ``"<region> <type>"``). Types and their extra fields:

  ============== =============================================================== =========
  type           measures                                                        unit
  ============== =============================================================== =========
  max, min, mean the region's maximum, minimum or mean temperature               °C
  percentile     the ``percentile`` (0..100) of the region's temperatures        °C
  delta_t        ``statistic`` of the region minus that of ``reference`` (a      °C
                 region, or ``ambient``; ``reference_statistic`` defaults to the
                 same statistic)
  hot_spot_area  largest connected area hotter than ``threshold_c`` or than the  px / mm²
                 region median + ``above_median_c``; ``unit`` px or mm2
  cold_spot_area largest connected area colder than ``threshold_c`` or than the  px / mm²
                 region median - ``below_median_c``; ``unit`` px or mm2
  asymmetry      ``statistic`` of the region minus that of its ``pair``; with    °C
                 ``mirror`` (horizontal/vertical) the largest pixel-wise
                 difference against the mirrored partner
  gradient       largest temperature gradient magnitude; ``unit`` px or mm       °C/px,
                                                                                 °C/mm
  heating_rate   robust (Theil-Sen) slope of the region ``statistic`` over       °C/s
                 ``window_s`` [t0, t1] (default: the whole sequence)
  cooling_rate   the same, as a positive cooling speed (minus the slope)         °C/s
  time_to_reach  first time the ``statistic`` crosses ``temperature_c``          s
                 (``direction`` rising or falling), interpolated
  curve_shape    deviation of the ``statistic`` curve from a golden curve        °C
                 (``golden``: [[t_s, °C], ...] or ``golden_file``: a CSV of two
                 columns): the signed deviation with the largest magnitude, so
                 ``limits`` is the tolerance envelope
  ============== =============================================================== =========

  ``statistic`` is one of max, min, mean, median (default max for delta_t, mean otherwise).

Limits (:class:`Limits`): ``min``/``max`` are the NG limits, ``warn_min``/``warn_max`` the warning
limits inside them; each is optional but at least one NG limit is required. A value beyond an NG
limit is NG, beyond a warning limit WARN, else OK; the limits themselves are inside tolerance.

Part records (several views, sensors, the capture; :mod:`thermoscope.recipes.record`): ``view``
(the name of the view the top-level regions and rules inspect, default ``main``), ``views``
(other views, each with its own ``regions`` and ``rules``), ``sensors`` (series the record must
carry, with unit and rate), ``protocol`` (framing, focus floor and ambient range; a capture
outside it is RETAKE), ``reference_emitter`` (a known-temperature patch that measures the
camera's own offset), and the rule types ``sensor``, ``all_of`` and ``any_of``
(:mod:`thermoscope.recipes.rule_schema`, :mod:`thermoscope.recipes.capture`).
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Annotated, Any, Literal

import cv2
import numpy as np
import yaml
from numpy.typing import NDArray
from pydantic import (
    Field,
    ValidationError,
    ValidationInfo,
    field_validator,
    model_validator,
)

from thermoscope.core.errors import ThermoscopeError
from thermoscope.core.frame import MAX_SIDE
from thermoscope.core.regions import Box, MaskRegion, Polygon, Region, RegionError
from thermoscope.recipes.capture import (
    ProtocolSpec,
    ReferenceEmitterSpec,
    SensorRule,
    SensorSpec,
)
from thermoscope.recipes.rule_schema import (
    AMBIENT as AMBIENT,
)
from thermoscope.recipes.rule_schema import (
    RULE_TYPES as RULE_TYPES,
)
from thermoscope.recipes.rule_schema import (
    SEQUENCE_RULES as SEQUENCE_RULES,
)
from thermoscope.recipes.rule_schema import (
    AllOfRule,
    AnyOfRule,
    AsymmetryRule,
    DeltaTRule,
    Rule,
)
from thermoscope.recipes.schema_base import (
    FilePath,
    Name,
    Statistic,
    Temperature,
    _problem,
    _resolve,
    _Strict,
)
from thermoscope.recipes.schema_base import (
    Limits as Limits,
)


class RecipeError(ThermoscopeError, ValueError):
    """A recipe cannot be read or is invalid.

    Attributes:
        problems: ``(field path, message)`` pairs, the path like ``rules[3].limits``
            (``""`` for the whole document).
        file: the recipe file, when it came from one.
    """

    def __init__(self, problems: list[tuple[str, str]], file: Path | None = None) -> None:
        self.problems = problems
        self.file = file
        lines = [f"{path}: {msg}" if path else msg for path, msg in problems]
        where = f"{file}: " if file is not None else ""
        head = f"{where}invalid recipe" if len(lines) > 1 else f"{where}{lines[0]}"
        super().__init__(head if len(lines) == 1 else head + "\n  " + "\n  ".join(lines))

    @property
    def path(self) -> str:
        """The field path of the first problem."""
        return self.problems[0][0]


# --------------------------------------------------------------------------- settings


class FrameSize(_Strict):
    """The frame size a recipe is drawn for."""

    width: int = Field(ge=1, le=MAX_SIDE, description="frame width in pixels")
    height: int = Field(ge=1, le=MAX_SIDE, description="frame height in pixels")


class CameraSettings(_Strict):
    """Measurement settings applied to every frame before inspection (all optional)."""

    emissivity: float | None = Field(
        default=None,
        gt=0.0,
        le=1.0,
        description="object emissivity for the whole frame, 0 < e <= 1",
    )
    reflected_temp_c: Temperature | None = Field(
        default=None, description="reflected apparent temperature, °C"
    )
    atmospheric_temp_c: Temperature | None = Field(
        default=None, description="air temperature between camera and part, °C"
    )
    relative_humidity_pct: float | None = Field(
        default=None, ge=0.0, le=100.0, description="relative humidity in percent (0..100)"
    )
    object_distance_m: float | None = Field(
        default=None, ge=0.0, le=10000.0, description="camera-to-part distance, metres"
    )
    pixel_pitch_mm: float | None = Field(
        default=None, gt=0.0, le=1000.0, description="size of one pixel on the part, millimetres"
    )

    def object_parameters(self) -> dict[str, float]:
        """The object-parameter changes this recipe asks for (only the fields that are set)."""
        names = (
            "emissivity",
            "reflected_temp_c",
            "atmospheric_temp_c",
            "relative_humidity_pct",
            "object_distance_m",
        )
        return {n: float(v) for n in names if (v := getattr(self, n)) is not None}


class AmbientSpec(_Strict):
    """Where the ambient temperature for ``delta_t`` rules comes from: a region or a reading."""

    region: Name | None = Field(default=None, description="region whose statistic is the ambient")
    value_c: Temperature | None = Field(default=None, description="a fixed ambient reading, °C")
    statistic: Statistic = Field(default="median", description="statistic of the ambient region")

    @model_validator(mode="after")
    def _one_source(self) -> AmbientSpec:
        if (self.region is None) == (self.value_c is None):
            raise ValueError("give exactly one of region or value_c")
        return self


class AlignmentSpec(_Strict):
    """Registration of each part onto a reference frame before regions are applied."""

    reference: FilePath = Field(
        description="frame of a well-placed part: .npy, .npz (array 'celsius') or TIFF/PNG"
    )
    fiducials: list[Name] = Field(
        default_factory=list,
        max_length=16,
        description="regions used as templates (none: phase correlation of the whole frame)",
    )
    motion: Literal["translation", "rigid"] = Field(
        default="translation", description="translation only, or translation and a small rotation"
    )
    max_shift_px: float = Field(
        default=20.0, ge=0.0, le=1000.0, description="largest shift accepted, pixels"
    )
    max_rotation_deg: float = Field(
        default=5.0,
        ge=0.0,
        le=45.0,
        description="largest rotation accepted (rigid motion), degrees",
    )

    @field_validator("reference")
    @classmethod
    def _exists(cls, value: Path, info: ValidationInfo) -> Path:
        return _resolve(value, info)


class SequenceSettings(_Strict):
    """How sequences are timed and which frame the single-frame rules inspect."""

    frame_rate_hz: float | None = Field(
        default=None,
        gt=0.0,
        le=100000.0,
        description="frame rate used when frames have no timestamps",
    )
    frame: int = Field(
        default=-1,
        ge=-100000,
        le=100000,
        description="index of the frame single-frame rules inspect (negative: from the end)",
    )


# --------------------------------------------------------------------------- regions


class BoxSpec(_Strict):
    """An axis-aligned box: top-left corner and size, pixels."""

    x: int = Field(ge=0, le=MAX_SIDE, description="left column, pixels")
    y: int = Field(ge=0, le=MAX_SIDE, description="top row, pixels")
    width: int = Field(ge=1, le=MAX_SIDE, description="width, pixels")
    height: int = Field(ge=1, le=MAX_SIDE, description="height, pixels")


Point = tuple[
    Annotated[float, Field(ge=-MAX_SIDE, le=2 * MAX_SIDE)],
    Annotated[float, Field(ge=-MAX_SIDE, le=2 * MAX_SIDE)],
]


class RegionSpec(_Strict):
    """A named region: exactly one of box, polygon or mask file."""

    name: Name = Field(description="unique name, used by rules and in explanations")
    box: BoxSpec | None = Field(default=None, description="axis-aligned box")
    polygon: list[Point] | None = Field(
        default=None,
        min_length=3,
        max_length=10000,
        description="closed polygon, [x, y] pixel points",
    )
    mask: FilePath | None = Field(
        default=None, description="mask image or .npy of the frame's size, nonzero = inside"
    )
    emissivity: float | None = Field(
        default=None, gt=0.0, le=1.0, description="this region's own emissivity, 0 < e <= 1"
    )
    pair: Name | None = Field(default=None, description="mirror-image partner region (asymmetry)")
    description: str = Field(default="", max_length=1000, description="free text")

    @field_validator("mask")
    @classmethod
    def _exists(cls, value: Path | None, info: ValidationInfo) -> Path | None:
        return None if value is None else _resolve(value, info)

    @model_validator(mode="after")
    def _one_shape(self) -> RegionSpec:
        given = [k for k in ("box", "polygon", "mask") if getattr(self, k) is not None]
        if len(given) != 1:
            raise ValueError(
                "give exactly one of box, polygon or mask"
                + (f" (got {', '.join(given)})" if given else "")
            )
        if self.name == AMBIENT:
            raise ValueError(f"{AMBIENT!r} is reserved for the recipe's ambient")
        if self.pair == self.name:
            raise ValueError("a region cannot be its own pair")
        return self

    def to_region(self) -> Region:
        """The core region this spec describes (a mask file is read here)."""
        if self.box is not None:
            b = self.box
            return Box(b.x, b.y, b.width, b.height)
        if self.polygon is not None:
            return Polygon(tuple(self.polygon))
        assert self.mask is not None
        return MaskRegion(read_mask(self.mask))


def read_mask(path: Path) -> NDArray[np.bool_]:
    """A boolean mask from ``.npy`` or a single-channel image (nonzero = inside).

    Raises:
        RegionError: the file cannot be read or is not a 2-D mask.
    """
    arr: Any
    if path.suffix.lower() == ".npy":
        try:
            arr = np.load(path, allow_pickle=False)
        except (OSError, ValueError) as exc:
            raise RegionError(f"cannot read mask {path}: {exc}") from None
    else:
        arr = cv2.imread(str(path), cv2.IMREAD_UNCHANGED)
        if arr is None:
            raise RegionError(f"cannot read mask {path}: not an image OpenCV reads")
    arr = np.asarray(arr)
    if arr.ndim == 3 and arr.shape[2] == 1:
        arr = arr[:, :, 0]
    if arr.ndim != 2:
        raise RegionError(f"mask {path} must be single-channel 2-D, got shape {arr.shape}")
    return np.asarray(arr != 0)


class ViewSpec(_Strict):
    """Another view of the part (angle or camera) with its own regions and rules."""

    name: Name = Field(description="the view's name in the part record")
    regions: list[RegionSpec] = Field(
        min_length=1, max_length=1000, description="named regions of this view"
    )
    rules: list[Rule] = Field(min_length=1, max_length=1000, description="this view's checks")
    description: str = Field(default="", max_length=1000, description="free text")


# --------------------------------------------------------------------------- recipe


def _need(regions: list[RegionSpec], path: str, name: str | None) -> None:
    if name is not None and all(r.name != name for r in regions):
        known = ", ".join(r.name for r in regions)
        raise _problem(path, f"unknown region {name!r} (known: {known})")


def _check_view(
    recipe: Recipe, regions: list[RegionSpec], rules: list[Any], prefix: str, sensors: set[str]
) -> None:
    """Check one view's regions and rules: unique names, known regions, pairs, sensors."""
    shape = (recipe.frame.height, recipe.frame.width)
    names: dict[str, int] = {}
    for i, region in enumerate(regions):
        if region.name in names:
            raise _problem(
                f"{prefix}regions[{i}].name",
                f"duplicate region name {region.name!r} (also regions[{names[region.name]}])",
            )
        names[region.name] = i
        try:
            region.to_region().mask(shape)
        except RegionError as exc:
            raise _problem(f"{prefix}regions[{i}]", f"region {region.name!r}: {exc}") from None
    pairs: dict[str, str] = {}
    for i, region in enumerate(regions):
        _need(regions, f"{prefix}regions[{i}].pair", region.pair)
        if region.pair is not None:
            for a, b in ((region.name, region.pair), (region.pair, region.name)):
                if pairs.setdefault(a, b) != b:
                    raise _problem(
                        f"{prefix}regions[{i}].pair",
                        f"region {a!r} is paired with both {pairs[a]!r} and {b!r}",
                    )
    labels: dict[str, str] = {}
    _check_rules(recipe, regions, pairs, rules, f"{prefix}rules", sensors, labels, nested=False)


def _check_rules(
    recipe: Recipe,
    regions: list[RegionSpec],
    pairs: dict[str, str],
    rules: list[Any],
    where: str,
    sensors: set[str],
    labels: dict[str, str],
    *,
    nested: bool,
) -> None:
    pitch = recipe.camera.pixel_pitch_mm
    for i, rule in enumerate(rules):
        path = f"{where}[{i}]"
        if rule.label in labels:
            raise _problem(
                f"{path}.name", f"duplicate rule name {rule.label!r} (also {labels[rule.label]})"
            )
        labels[rule.label] = path
        if isinstance(rule, (AllOfRule, AnyOfRule)):
            _check_rules(
                recipe, regions, pairs, rule.rules, f"{path}.rules", sensors, labels, nested=True
            )
            continue
        if nested and rule.type in SEQUENCE_RULES:
            raise _problem(f"{path}.type", "sequence rules cannot be combined")
        if isinstance(rule, SensorRule):
            if rule.sensor not in sensors:
                known = ", ".join(sorted(sensors)) or "none declared under sensors"
                raise _problem(f"{path}.sensor", f"unknown sensor {rule.sensor!r} ({known})")
            continue
        _need(regions, f"{path}.region", rule.region)
        if isinstance(rule, DeltaTRule):
            if rule.reference == AMBIENT:
                if recipe.ambient is None:
                    raise _problem(f"{path}.reference", "the recipe has no ambient section")
                if recipe.ambient.region is not None and where.startswith("views"):
                    _need(regions, f"{path}.reference", recipe.ambient.region)
            else:
                _need(regions, f"{path}.reference", rule.reference)
        if isinstance(rule, AsymmetryRule):
            if rule.pair is None and rule.region not in pairs:
                raise _problem(f"{path}.pair", f"region {rule.region!r} has no pair; name one here")
            _need(regions, f"{path}.pair", rule.pair)
            partner = rule.pair or pairs[rule.region]
            if partner == rule.region:
                raise _problem(f"{path}.pair", "a region cannot be compared with itself")
        unit = getattr(rule, "unit", "px")
        if unit != "px" and pitch is None:
            raise _problem(f"{path}.unit", f"unit {unit} needs camera.pixel_pitch_mm")


class Recipe(_Strict):
    """A product's QC recipe (see the module docstring for the format)."""

    name: str = Field(min_length=1, max_length=100, description="recipe name")
    version: str = Field(default="1", min_length=1, max_length=40, description="recipe version")
    product: str = Field(default="", max_length=200, description="product the recipe inspects")
    description: str = Field(default="", max_length=5000, description="free text")
    frame: FrameSize = Field(description="frame size the recipe expects")
    camera: CameraSettings = Field(default=CameraSettings(), description="measurement settings")
    ambient: AmbientSpec | None = Field(default=None, description="ambient temperature source")
    alignment: AlignmentSpec | None = Field(default=None, description="registration of each part")
    sequence: SequenceSettings = Field(
        default=SequenceSettings(), description="timing of sequences"
    )
    regions: list[RegionSpec] = Field(
        min_length=1, max_length=1000, description="named regions of the part"
    )
    rules: list[Rule] = Field(min_length=1, max_length=1000, description="the checks")
    view: Name = Field(
        default="main", description="name of the view the top-level regions and rules inspect"
    )
    views: list[ViewSpec] = Field(
        default_factory=list, max_length=16, description="other views of the part"
    )
    protocol: ProtocolSpec | None = Field(
        default=None, description="capture protocol; a frame outside it is RETAKE"
    )
    reference_emitter: ReferenceEmitterSpec | None = Field(
        default=None, description="a known-temperature patch in the main view"
    )
    sensors: list[SensorSpec] = Field(
        default_factory=list, max_length=64, description="sensor series a part record carries"
    )

    @field_validator("version", mode="before")
    @classmethod
    def _version_text(cls, value: Any) -> Any:
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            return str(value)
        return value

    @model_validator(mode="after")
    def _consistent(self) -> Recipe:
        sensors = {}
        for i, sensor in enumerate(self.sensors):
            if sensor.name in sensors:
                raise _problem(f"sensors[{i}].name", f"duplicate sensor name {sensor.name!r}")
            sensors[sensor.name] = i
        _check_view(self, self.regions, self.rules, "", set(sensors))
        view_names = {self.view}
        for v, view in enumerate(self.views):
            if view.name in view_names:
                raise _problem(f"views[{v}].name", f"duplicate view name {view.name!r}")
            view_names.add(view.name)
            _check_view(self, view.regions, view.rules, f"views[{v}].", set(sensors))
            for i, rule in enumerate(view.rules):
                if rule.type in SEQUENCE_RULES:
                    raise _problem(
                        f"views[{v}].rules[{i}].type",
                        "sequence rules belong to the main view (its regions and rules)",
                    )
        if self.alignment is not None:
            for j, fid in enumerate(self.alignment.fiducials):
                _need(self.regions, f"alignment.fiducials[{j}]", fid)
        if self.ambient is not None:
            _need(self.regions, "ambient.region", self.ambient.region)
        if self.reference_emitter is not None:
            _need(self.regions, "reference_emitter.region", self.reference_emitter.region)
        return self

    def pair_of(self, name: str, regions: list[RegionSpec] | None = None) -> str | None:
        """The declared pair of region ``name`` (declared on either side), or ``None``; among
        ``regions`` (default: the main view's)."""
        for region in self.regions if regions is None else regions:
            if region.name == name and region.pair is not None:
                return region.pair
            if region.pair == name:
                return region.name
        return None

    @property
    def has_sequence_rules(self) -> bool:
        """Whether any rule needs a sequence."""
        return any(r.type in SEQUENCE_RULES for r in self.rules)


# --------------------------------------------------------------------------- loading


class _UniqueKeyLoader(yaml.SafeLoader):
    """A safe YAML loader that refuses a key given twice in one mapping."""


def _construct_mapping(loader: yaml.SafeLoader, node: yaml.MappingNode) -> dict[Any, Any]:
    loader.flatten_mapping(node)
    seen: dict[Any, Any] = {}
    for key_node, value_node in node.value:
        key = loader.construct_object(key_node, deep=True)
        try:
            duplicate = key in seen
        except TypeError:
            raise yaml.constructor.ConstructorError(
                None, None, f"unhashable key {key!r}", key_node.start_mark
            ) from None
        if duplicate:
            raise yaml.constructor.ConstructorError(
                None, None, f"key {key!r} given twice", key_node.start_mark
            )
        seen[key] = loader.construct_object(value_node, deep=True)
    return seen


_UniqueKeyLoader.add_constructor(
    yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG,
    _construct_mapping,
)


def _loc_path(loc: tuple[int | str, ...]) -> str:
    out = ""
    skip_tag = False
    for part in loc:
        if isinstance(part, int):
            out += f"[{part}]"
            skip_tag = out.endswith(f"rules[{part}]")
            continue
        if skip_tag and part in RULE_TYPES:
            skip_tag = False
            continue  # the discriminator pydantic puts into the path
        skip_tag = False
        out += f".{part}" if out else str(part)
    return out


def _problems(exc: ValidationError) -> list[tuple[str, str]]:
    problems = []
    for err in exc.errors(include_url=False):
        ctx = err.get("ctx") or {}
        path = _loc_path(tuple(err["loc"]))
        if err["type"] == "recipe":
            path, msg = str(ctx["path"]), str(ctx["message"])
        elif err["type"] == "union_tag_invalid":
            path, msg = (
                f"{path}.type",
                f"unknown rule type {ctx['tag']!r} (one of {', '.join(RULE_TYPES)})",
            )
        elif err["type"] == "union_tag_not_found":
            path, msg = f"{path}.type", f"missing rule type (one of {', '.join(RULE_TYPES)})"
        elif err["type"] == "extra_forbidden":
            msg = f"unknown key {str(err['loc'][-1])!r}"
        else:
            msg = err["msg"].removeprefix("Value error, ").removeprefix("Assertion failed, ")
        problems.append((path, msg))
    return problems


def parse_recipe(
    source: str | bytes | Mapping[str, Any],
    *,
    base_dir: str | Path | None = None,
    file: Path | None = None,
) -> Recipe:
    """Validate a recipe given as YAML/JSON text or as an already-parsed mapping.

    Args:
        source: YAML or JSON text (JSON is YAML), or a mapping.
        base_dir: folder that relative file paths in the recipe are resolved against (default:
            the current directory).
        file: the file the text came from, named in errors.

    Raises:
        RecipeError: the text is not YAML, or the recipe is invalid; the message names the field.
    """
    data: Any = source
    if isinstance(source, (str, bytes)):
        try:
            data = yaml.load(source, Loader=_UniqueKeyLoader)
        except yaml.YAMLError as exc:
            mark = getattr(exc, "problem_mark", None)
            where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark else ""
            problem = getattr(exc, "problem", None) or str(exc)
            raise RecipeError([("", f"not valid YAML/JSON{where}: {problem}")], file) from None
        except (UnicodeDecodeError, ValueError) as exc:
            raise RecipeError([("", f"not valid YAML/JSON: {exc}")], file) from None
    if not isinstance(data, Mapping):
        got = "nothing" if data is None else type(data).__name__
        raise RecipeError([("", f"a recipe must be a mapping of keys to values, got {got}")], file)
    context = {"base_dir": Path(base_dir) if base_dir is not None else None}
    try:
        return Recipe.model_validate(data, context=context)
    except ValidationError as exc:
        raise RecipeError(_problems(exc), file) from None
    except RecursionError:
        raise RecipeError([("", "the recipe is nested too deeply")], file) from None


def load_recipe(path: str | Path) -> Recipe:
    """Read and validate a recipe file (YAML or JSON); file paths inside are relative to it.

    Raises:
        RecipeError: the file cannot be read or the recipe is invalid.
    """
    path = Path(path)
    try:
        text = path.read_bytes()
    except OSError as exc:
        raise RecipeError([("", f"cannot read the recipe: {exc.strerror or exc}")], path) from None
    return parse_recipe(text, base_dir=path.parent, file=path)


def recipe_json_schema() -> dict[str, Any]:
    """The JSON Schema of a recipe (for editors and other tools)."""
    return Recipe.model_json_schema()
