"""The per-part path: align → recipe rules + a model → verdict → findings → draft annotations.

``Pipeline`` is built once per recipe and model (the recipe compiled, its regions and rule
kinds looked up) and then inspects parts: a frame, the frames of a sequence, or a
``DecodedPart``. The CLI, the server and the edge agent all inspect through it, so one file
gives the same findings wherever it is inspected.

A sequence is inspected as a whole (every frame decoded at once) only when the recipe has
sequence rules (or names a frame outside the sequence, which the recipe engine reports);
otherwise the rules look at the one frame the recipe's ``sequence.frame`` names, and only that
frame is decoded. The model, when there is one, looks at that same frame; its findings join the
recipe's and the part's verdict is the worst of all (OK < WARN < NG).

``frames_needed`` says which frames ``inspect_part`` will look at: given to
``decode_bytes``/``decode_path`` as ``keep``, the decoder holds on to them during its one pass
over the file, so a decoded part's frames are decoded once, not once for the part's ids and
again for its inspection.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from typing import Protocol, runtime_checkable

from thermoscope.annotations import PreAnnotation, from_inspection
from thermoscope.core import Finding, Inspection, ThermalFrame, ThermalSequence, Verdict
from thermoscope.core import regions as core_regions
from thermoscope.pipeline.decode import DecodedPart
from thermoscope.pipeline.errors import PipelineError
from thermoscope.recipes import InspectionPlan, Recipe, compile_recipe

#: Rule names of a model's findings start with this (``model:<name>``).
MODEL_RULE_PREFIX = "model:"

#: What ``Pipeline.inspect_part`` takes: a frame, a sequence's frames, or a decoded file.
Part = ThermalFrame | ThermalSequence | Sequence[ThermalFrame] | DecodedPart


@runtime_checkable
class PartModel(Protocol):
    """A learned model as the pipeline uses it (``thermoscope.models``' ``LoadedModel`` is one).

    ``findings`` returns the model's findings on one frame, each with ``rule`` starting with
    ``"model:"``, ``unit`` and ``score`` (confidence in [0, 1]) set and, when known,
    ``extra["kind"]`` (the class, the label of its draft annotation).
    """

    @property
    def name(self) -> str:
        """The model's name."""
        ...

    @property
    def version(self) -> str:
        """The model's release version."""
        ...

    def findings(self, frame: ThermalFrame, *, ambient_c: float | None = None) -> list[Finding]:
        """The model's findings on ``frame`` (°C), given an ambient reading in °C if known."""
        ...


class Pipeline:
    """One recipe and one model, compiled once, inspecting parts.

    Args:
        recipe: the product's recipe (regions, rules); ``None`` for model findings only.
        model: a learned model; ``None`` for recipe findings only.
        plan: the recipe already compiled (``compile_recipe(recipe)``), to share one plan.

    Raises:
        RecipeError: the recipe does not compile (regions outside the frame, a missing file).
    """

    def __init__(
        self,
        recipe: Recipe | None = None,
        model: PartModel | None = None,
        *,
        plan: InspectionPlan | None = None,
    ) -> None:
        self.recipe = recipe
        self.model = model
        self.plan = None if recipe is None else plan if plan is not None else compile_recipe(recipe)
        self.regions: dict[str, core_regions.Region] = (
            {} if recipe is None else {spec.name: spec.to_region() for spec in recipe.regions}
        )
        self.kinds: dict[str, str] = (
            {} if recipe is None else {rule.label: rule.type for rule in recipe.rules}
        )

    def fits(self, shape: tuple[int, int]) -> bool:
        """Whether frames of ``shape`` (height, width) px are the recipe's size (always without
        a recipe)."""
        if self.recipe is None:
            return True
        return (self.recipe.frame.height, self.recipe.frame.width) == tuple(shape)

    def frames_needed(self, count: int) -> range | tuple[int, ...]:
        """The indices of the frames ``inspect_part`` looks at in a part of ``count`` frames:
        every frame when the recipe has sequence rules (or names a frame outside the part),
        else the one frame its rules and the model look at."""
        if count <= 1 or self.plan is None:
            return (0,)
        index = self.plan.sequence.frame
        if self.plan.sequence_rules or not -count <= index < count:
            return range(count)
        return (index % count,)

    def inspect_part(
        self, part: Part, *, source: str, ambient_c: float | None = None
    ) -> Inspection:
        """Inspect one part: recipe findings, then the model's, verdict the worst of them.

        Args:
            part: a frame, a sequence's frames in time order, or a decoded file.
            source: the part's name in the result (a file name, a serial).
            ambient_c: an ambient reading in °C (overrides the recipe's ambient).

        Raises:
            InspectionError: the part does not fit the recipe (size, calibration, timing).
            PipelineError: a sequence without frames.
        """
        frames = _frames(part, source)
        if self.plan is not None:
            inspection, frame = self._recipe(frames, source, ambient_c)
        else:
            frame = frames.frame(0)
            index = 0 if frames.count > 1 else frame.metadata.frame_index
            inspection = Inspection(source, index, Verdict.OK, ())
        if self.model is None:
            return inspection
        learned = self.model.findings(frame, ambient_c=ambient_c)
        return Inspection.of(source, inspection.frame, [*inspection.findings, *learned])

    def _recipe(
        self, frames: _Frames, source: str, ambient_c: float | None
    ) -> tuple[Inspection, ThermalFrame]:
        """The recipe's inspection and the frame its single-frame rules looked at."""
        plan = self.plan
        assert plan is not None
        count = frames.count
        if count == 1:
            frame = frames.frame(0)
            return plan.inspect_frame(frame, ambient_c=ambient_c, source=source), frame
        needed = self.frames_needed(count)
        if len(needed) > 1:
            every = frames.all()
            inspection = plan.inspect_sequence(every, ambient_c=ambient_c, source=source)
            return inspection, every[inspection.frame or 0]
        index = needed[0]
        frame = frames.frame(index)
        inspection = plan.inspect_frame(frame, ambient_c=ambient_c, source=source)
        return dataclasses.replace(inspection, frame=index), frame

    def drafts(self, inspection: Inspection, frame_shape: tuple[int, int]) -> PreAnnotation:
        """Draft annotations and a draft verdict of an inspection this pipeline made.

        Recipe findings are placed on the recipe's regions and labelled with their rule's kind
        (provenance ``recipe:<name>`` and the recipe's version); model findings (rule
        ``model:...``) at their pixel, labelled with ``extra["kind"]``, with the model's name,
        version and each finding's score. The draft verdict is the whole inspection's (named
        after the recipe when there is one, else after the model).

        Args:
            inspection: from ``inspect_part``.
            frame_shape: (height, width) px of the part's frames.
        """
        recipe_name, recipe_version = (
            ("pipeline", "") if self.recipe is None else self._recipe_provenance()
        )
        model_name, model_version = (
            ("model", "") if self.model is None else (self.model.name, self.model.version)
        )
        ruled = [f for f in inspection.findings if not f.rule.startswith(MODEL_RULE_PREFIX)]
        learned = [f for f in inspection.findings if f.rule.startswith(MODEL_RULE_PREFIX)]
        by_recipe = from_inspection(
            dataclasses.replace(inspection, findings=tuple(ruled)),
            self.regions,
            model_name=recipe_name,
            version=recipe_version,
            frame_shape=frame_shape,
            kinds=self.kinds,
        )
        if not learned:
            return by_recipe
        by_model = from_inspection(
            dataclasses.replace(inspection, findings=tuple(learned)),
            {},
            model_name=model_name,
            version=model_version,
            frame_shape=frame_shape,
        )
        # the verdict (and its reason) of every finding; placing them is done above
        verdict = from_inspection(
            inspection,
            {},
            model_name=recipe_name if self.recipe is not None else model_name,
            version=recipe_version if self.recipe is not None else model_version,
        ).verdict
        return PreAnnotation(
            (*by_recipe.annotations, *by_model.annotations),
            verdict,
            (*by_recipe.unplaced, *by_model.unplaced),
        )

    def _recipe_provenance(self) -> tuple[str, str]:
        assert self.recipe is not None
        return f"recipe:{self.recipe.name}", self.recipe.version


@dataclasses.dataclass(frozen=True, slots=True)
class _Frames:
    """A part's frames, decoded on demand."""

    part: Part
    count: int

    def frame(self, index: int) -> ThermalFrame:
        part = self.part
        if isinstance(part, ThermalFrame):
            return part
        return part.frame(index) if isinstance(part, DecodedPart) else part[index]

    def all(self) -> list[ThermalFrame]:
        part = self.part
        if isinstance(part, ThermalFrame):
            return [part]
        if isinstance(part, DecodedPart):
            return [part.frame(i) for i in range(part.frame_count)]
        return list(part)


def _frames(part: Part, source: str) -> _Frames:
    if isinstance(part, ThermalFrame):
        return _Frames(part, 1)
    count = part.frame_count if isinstance(part, DecodedPart) else len(part)
    if count == 0:
        raise PipelineError(source, "the part has no frame")
    return _Frames(part, count)
