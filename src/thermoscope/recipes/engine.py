"""The inspection engine: a recipe compiled once, then applied to frames or sequences.

``compile_recipe`` turns a :class:`~thermoscope.recipes.schema.Recipe` into an
:class:`InspectionPlan`: each region becomes its bounding box in the frame and, when it does not
fill that box, a mask of the box's size; limits become plain numbers; mask and golden files are
read and the alignment reference is loaded. Per frame only the regions' crops are touched.
``inspect`` applies a plan (or a recipe, compiled on first use and remembered) and returns a
:class:`~thermoscope.core.findings.Inspection` with one finding per rule. The compiled regions
and the per-rule checks live in ``thermoscope.recipes.checks``, the registration of a part onto
the reference in ``thermoscope.recipes.alignment``; this module holds the plan that runs them.

A rule's finding carries the measured value (°C; °C/s for rates; s for times; px or mm² for
areas; °C/px or °C/mm for gradients), the NG limit it was held against (the one crossed, else
the nearest), the margin to that limit (positive = inside tolerance), the pixel of the extreme
that decided it, and a one-line explanation. A value the engine cannot measure (no valid pixel,
a temperature never reached, too few frames in a window) is NG and says why. When alignment is
configured and the part cannot be registered within its bounds, the inspection holds a single
NG finding ``alignment`` and no rule is evaluated.
"""

from __future__ import annotations

import weakref
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import cv2
import numpy as np
from numpy.typing import NDArray

from thermoscope.analysis import registration
from thermoscope.core.errors import RadiometryError, ThermoscopeError
from thermoscope.core.findings import Finding, Inspection
from thermoscope.core.frame import ThermalFrame
from thermoscope.core.part_record import SensorSeries
from thermoscope.core.sequence import ThermalSequence
from thermoscope.recipes import schema
from thermoscope.recipes.alignment import (
    CompiledAlignment,
    FrameLoader,
    compile_alignment,
    read_reference_frame,
    register,
)
from thermoscope.recipes.checks import (
    AmbientSource,
    BoolImage,
    Check,
    CompiledRegion,
    Context,
    FloatImage,
    compile_region,
)
from thermoscope.recipes.fusion import compile_rule
from thermoscope.recipes.schema import SEQUENCE_RULES, Recipe


class InspectionError(ThermoscopeError, ValueError):
    """A frame or sequence cannot be inspected with this recipe (wrong size, no calibration for
    the recipe's emissivity, no timestamps...)."""


@dataclass(frozen=True, slots=True, eq=False)
class InspectionPlan:
    """A recipe compiled for frames of one size: regions as crops and masks, rules as checks.

    Build it with :func:`compile_recipe`; apply it with :func:`inspect` (or its methods).
    """

    name: str
    shape: tuple[int, int]
    regions: dict[str, CompiledRegion]
    checks: tuple[Check, ...]
    sequence_rules: tuple[str, ...]
    ambient: AmbientSource
    object_parameters: dict[str, float]
    alignment: CompiledAlignment | None
    sequence: schema.SequenceSettings

    def inspect_frame(
        self,
        frame: ThermalFrame,
        *,
        ambient_c: float | None = None,
        source: str | None = None,
        sensors: Mapping[str, SensorSeries] | None = None,
        offset_c: float = 0.0,
    ) -> Inspection:
        """Inspect one frame (the recipe must have no sequence rules).

        Args:
            sensors: the part's sensor series by name, for sensor rules.
            offset_c: the camera's offset (from a reference emitter), °C, subtracted from the
                temperatures before the rules.
        """
        if self.sequence_rules:
            names = ", ".join(self.sequence_rules)
            raise InspectionError(
                f"recipe {self.name!r} has sequence rules ({names}); "
                "inspect a sequence of frames, not a single frame"
            )
        label = frame.metadata.source if source is None else source
        self._check_shape(frame.shape, label)
        failed, images = self._prepare([frame], 0, label, offset_c)
        if failed is not None:
            return Inspection.of(label, frame.metadata.frame_index, [failed])
        ctx = Context(self.ambient, images[0], ambient_c, sensors=sensors)
        findings = [check.evaluate(ctx) for check in self.checks]
        return Inspection.of(label, frame.metadata.frame_index, findings)

    def inspect_sequence(
        self,
        frames: ThermalSequence | Sequence[ThermalFrame],
        *,
        ambient_c: float | None = None,
        source: str | None = None,
        sensors: Mapping[str, SensorSeries] | None = None,
        offset_c: float = 0.0,
    ) -> Inspection:
        """Inspect a part's sequence: sequence rules on every frame, single-frame rules on the
        frame the recipe's ``sequence.frame`` names. ``Inspection.frame`` is that frame's index.
        Alignment is estimated on that frame and applied to all. ``sensors`` and ``offset_c``
        as for :meth:`inspect_frame`.
        """
        items = list(frames)
        if not items:
            raise InspectionError("the sequence has no frames")
        for item in items:
            if not isinstance(item, ThermalFrame):
                raise InspectionError(
                    f"inspect takes a ThermalFrame or a sequence of them, not {type(item).__name__}"
                )
        if source is not None:
            label = source
        elif isinstance(frames, ThermalSequence) and frames.source:
            label = frames.source
        else:
            label = items[0].metadata.source
        for item in items:
            self._check_shape(item.shape, label)
        index = self.sequence.frame
        if not -len(items) <= index < len(items):
            raise InspectionError(
                f"sequence.frame {index} is outside the {len(items)} frames of {label or 'input'}"
            )
        index %= len(items)
        times = self._times(items, label) if self.sequence_rules else None
        failed, images = self._prepare(items, index, label, offset_c)
        if failed is not None:
            return Inspection.of(label, index, [failed])
        ctx = Context(self.ambient, images[index], ambient_c, images, times, sensors)
        findings = [check.evaluate(ctx) for check in self.checks]
        return Inspection.of(label, index, findings)

    # ---------------------------------------------------------------- per part

    def _check_shape(self, shape: tuple[int, int], label: str) -> None:
        if shape != self.shape:
            raise InspectionError(
                f"{label or 'frame'} is {shape[1]}x{shape[0]} pixels but recipe "
                f"{self.name!r} expects {self.shape[1]}x{self.shape[0]}"
            )

    def _prepare(
        self, frames: list[ThermalFrame], index: int, label: str, offset_c: float = 0.0
    ) -> tuple[Finding | None, list[FloatImage]]:
        """Temperatures of every frame in reference coordinates: registered (on frame
        ``index``), recomputed with the recipe's parameters, warped back onto the reference."""
        motion = None
        if self.alignment is not None:
            failed, motion = register(self.alignment, frames[index].celsius)
            if failed is not None:
                return failed, []
        masks = self._emissivity_masks(motion)
        images = [self._temperatures(f, label, masks) for f in frames]
        if offset_c:
            images = [image - np.float32(offset_c) for image in images]
        if motion is not None:
            images = [registration.warp_to_reference(image, motion) for image in images]
        return None, images

    def _emissivity_masks(
        self, motion: registration.Motion | None
    ) -> list[tuple[BoolImage, float]]:
        """Full-frame masks of the regions with their own emissivity, moved with the part."""
        out = []
        for region in self.regions.values():
            if region.emissivity is None or region.frame_mask is None:
                continue
            mask = region.frame_mask
            if motion is not None:
                moved = cv2.warpAffine(
                    mask.view(np.uint8),
                    motion.matrix(),
                    (self.shape[1], self.shape[0]),
                    flags=cv2.INTER_NEAREST,
                )
                mask = np.asarray(moved, dtype=bool)
            out.append((mask, region.emissivity))
        return out

    def _temperatures(
        self, frame: ThermalFrame, label: str, masks: list[tuple[BoolImage, float]]
    ) -> FloatImage:
        try:
            if self.object_parameters:
                frame = frame.with_parameters(mask=None, **self.object_parameters)
            for mask, emissivity in masks:
                frame = frame.with_parameters(mask=mask, emissivity=emissivity)
        except RadiometryError as exc:
            raise InspectionError(
                f"recipe {self.name!r} sets measurement parameters (emissivity...) but "
                f"{label or 'the frame'} cannot be recomputed: {exc}"
            ) from None
        return frame.celsius

    def _times(self, items: list[ThermalFrame], label: str) -> NDArray[np.float64]:
        stamps = [f.metadata.timestamp_s for f in items]
        if all(s is not None for s in stamps):
            times = np.array(stamps, dtype=np.float64)
            times -= times[0]
            if len(times) > 1 and not bool(np.all(np.diff(times) > 0)):
                raise InspectionError(f"the frame timestamps of {label or 'input'} do not increase")
            return times
        rate = self.sequence.frame_rate_hz
        if rate is None:
            raise InspectionError(
                f"the frames of {label or 'input'} carry no timestamps; "
                "set sequence.frame_rate_hz in the recipe"
            )
        return np.arange(len(items), dtype=np.float64) / rate


def compile_recipe(
    recipe: Recipe,
    shape: tuple[int, int] | None = None,
    *,
    load_frame: FrameLoader | None = None,
    view: str | None = None,
) -> InspectionPlan:
    """Prepare a recipe for fast inspection of frames of one size.

    Args:
        recipe: a validated recipe.
        shape: (height, width) of the frames to come; must be the recipe's frame size (default).
        load_frame: reads the alignment reference file into a 2-D °C array (default
            :func:`read_reference_frame`; pass one built on ``thermoscope.io`` for camera files).
        view: one of the recipe's ``views`` to compile (its regions and rules, no alignment);
            default the main view (the top-level regions and rules).

    Raises:
        InspectionError: ``shape`` is not the recipe's frame size.
        RecipeError: a file the recipe names cannot be used.
    """
    expected = (recipe.frame.height, recipe.frame.width)
    if shape is not None and tuple(shape) != expected:
        raise InspectionError(
            f"recipe {recipe.name!r} is drawn for {expected[1]}x{expected[0]} frames, "
            f"not {shape[1]}x{shape[0]}"
        )
    region_specs, rules = recipe.regions, recipe.rules
    if view is not None and view != recipe.view:
        found = [v for v in recipe.views if v.name == view]
        if not found:
            known = ", ".join([recipe.view, *(v.name for v in recipe.views)])
            raise InspectionError(f"recipe {recipe.name!r} has no view {view!r} ({known})")
        region_specs, rules = found[0].regions, found[0].rules
    pairs = {}
    for spec in region_specs:
        if spec.pair is not None:
            pairs[spec.name], pairs[spec.pair] = spec.pair, spec.name
    regions = {spec.name: compile_region(spec, expected) for spec in region_specs}
    checks = [compile_rule(rule, regions, recipe, pairs) for rule in rules]
    ambient: AmbientSource = None
    if recipe.ambient is not None:
        if recipe.ambient.value_c is not None:
            ambient = float(recipe.ambient.value_c)
        elif recipe.ambient.region in regions:
            ambient = (regions[recipe.ambient.region], recipe.ambient.statistic)
    alignment = None
    if recipe.alignment is not None and region_specs is recipe.regions:
        alignment = compile_alignment(
            recipe.alignment, regions, expected, load_frame or read_reference_frame
        )
    return InspectionPlan(
        recipe.name,
        expected,
        regions,
        tuple(checks),
        tuple(rule.label for rule in rules if rule.type in SEQUENCE_RULES),
        ambient,
        recipe.camera.object_parameters(),
        alignment,
        recipe.sequence,
    )


_PLANS: dict[int, InspectionPlan] = {}


def _plan_for(recipe: Recipe) -> InspectionPlan:
    # a plan holds no reference to its recipe, and an entry leaves with its recipe, so an id
    # found here is the live recipe's
    plan = _PLANS.get(id(recipe))
    if plan is None:
        plan = compile_recipe(recipe)
        _PLANS[id(recipe)] = plan
        weakref.finalize(recipe, _PLANS.pop, id(recipe), None)
    return plan


def inspect(
    subject: ThermalFrame | ThermalSequence | Sequence[ThermalFrame],
    recipe: Recipe | InspectionPlan,
    *,
    ambient_c: float | None = None,
    source: str | None = None,
) -> Inspection:
    """Inspect a part: one frame, or a sequence of frames (for recipes with sequence rules).

    Args:
        subject: a frame, or the part's frames in time order.
        recipe: a recipe (compiled on first use and remembered while it lives) or a plan from
            :func:`compile_recipe`.
        ambient_c: an ambient reading, °C, overriding the recipe's ambient.
        source: the part's name in the result (default: the frame's or sequence's source).

    Raises:
        InspectionError: the input does not fit the recipe (frame size, calibration, timing).
    """
    plan = recipe if isinstance(recipe, InspectionPlan) else _plan_for(recipe)
    if isinstance(subject, np.ndarray):
        raise InspectionError("inspect takes a ThermalFrame or a sequence of them, not an array")
    if isinstance(subject, ThermalFrame):
        return plan.inspect_frame(subject, ambient_c=ambient_c, source=source)
    return plan.inspect_sequence(subject, ambient_c=ambient_c, source=source)
