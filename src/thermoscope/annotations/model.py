"""Annotation records: provenance, review state, shape annotations, verdicts, tolerance ranges.

Every record is an immutable dataclass (keyword-only fields) with an ``id``, a ``provenance``
(who or what made it, when) and a ``review`` (its place in draft → submitted → accepted /
rejected). ``submit``, ``accept``, ``reject``, ``reopen`` and ``edit`` return new records;
invalid transitions raise ``AnnotationError``. An edit of a submitted, accepted or rejected
record puts it back to draft.

Dict forms (``to_dict``; read back with each class's ``from_dict``)::

    provenance: {"author": str, "model": str, "model_version": str, "score": float | null,
                 "created": ISO 8601 with UTC offset}
    review:     {"state": "draft" | "submitted" | "accepted" | "rejected", "reviewer": str,
                 "comment": str, "updated": ISO 8601 | null}
    annotation: {"id", "label", "frame": int, "shape": {shape dict}, "attributes": {name: value},
                 "metadata": {...}, "provenance": {...}, "review": {...}}
    verdict:    {"id", "frame": int | null, "verdict": "OK" | "NG", "reason": str,
                 "provenance": {...}, "review": {...}}
    tolerance:  {"id", "name", "shape": {shape dict}, "low_c": float | null,
                 "high_c": float | null, "description": str, "provenance": {...},
                 "review": {...}}
"""

from __future__ import annotations

import json
import math
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from enum import StrEnum
from types import MappingProxyType
from typing import Any, Self, TypeVar, cast

from thermoscope.annotations import _read
from thermoscope.annotations.errors import AnnotationError
from thermoscope.annotations.schema import AttributeValue
from thermoscope.annotations.shapes import (
    Box,
    Mask,
    Point,
    Polygon,
    Polyline,
    RotatedBox,
    Shape,
    shape_from_dict,
)
from thermoscope.core.findings import Verdict

T = TypeVar("T")


def new_id() -> str:
    """A fresh random record id (32 hex digits)."""
    return uuid.uuid4().hex


def _now() -> datetime:
    return datetime.now(UTC)


def _check_time(value: datetime, what: str) -> None:
    if not isinstance(value, datetime) or value.utcoffset() is None:
        raise AnnotationError(f"{what} must be a timezone-aware datetime, got {value!r}")


def _read_time(value: Any, path: str) -> datetime:
    text = _read.string(value, path)
    try:
        out = datetime.fromisoformat(text)
    except ValueError as exc:
        raise AnnotationError(f"{path}: not an ISO 8601 time: {text!r}") from exc
    if out.utcoffset() is None:
        raise AnnotationError(f"{path}: time {text!r} has no UTC offset")
    return out


def freeze_json(value: Any, what: str) -> Mapping[str, Any]:
    """A read-only copy of a JSON-ready mapping (str keys; str, finite numbers, bool, null,
    lists and objects), so that ``to_dict`` / ``from_dict`` round-trips it exactly."""
    if not isinstance(value, Mapping):
        raise AnnotationError(f"{what} must be a mapping, got {type(value).__name__}")
    if not value:
        return MappingProxyType({})
    try:
        text = json.dumps(dict(value), allow_nan=False, sort_keys=True)
    except (TypeError, ValueError) as exc:
        raise AnnotationError(f"{what} must be JSON-ready: {exc}") from exc
    if json.loads(text) != dict(value):
        raise AnnotationError(f"{what} must hold only lists, objects and plain values")
    return MappingProxyType(json.loads(text))


@dataclass(frozen=True, slots=True, kw_only=True)
class Provenance:
    """Who or what made a record.

    Attributes:
        author: the person (user name or id); empty for machine-made records.
        model: the model or rule engine that proposed it; empty for human records.
        model_version: the model's version.
        score: the model's confidence in [0, 1], or ``None``.
        created: when it was made (timezone-aware).
    """

    author: str = ""
    model: str = ""
    model_version: str = ""
    score: float | None = None
    created: datetime = field(default_factory=_now)

    def __post_init__(self) -> None:
        _check_text(self, ("author", "model", "model_version"), "provenance")
        if not self.author and not self.model:
            raise AnnotationError("provenance needs an author or a model")
        if self.score is not None:
            if isinstance(self.score, bool) or not 0.0 <= float(self.score) <= 1.0:
                raise AnnotationError(f"provenance score must lie in [0, 1], got {self.score!r}")
            object.__setattr__(self, "score", float(self.score))
        _check_time(self.created, "provenance created")

    @classmethod
    def human(cls, author: str, *, created: datetime | None = None) -> Provenance:
        """A record made by ``author`` (now, unless ``created`` is given)."""
        return cls(author=author, created=created or _now())

    @classmethod
    def machine(
        cls,
        model: str,
        version: str,
        *,
        score: float | None = None,
        created: datetime | None = None,
    ) -> Provenance:
        """A record proposed by ``model`` at ``version`` with confidence ``score``."""
        return cls(model=model, model_version=version, score=score, created=created or _now())

    @property
    def machine_made(self) -> bool:
        """Whether a model (not a person) made it."""
        return bool(self.model) and not self.author

    def to_dict(self) -> dict[str, Any]:
        """The JSON-ready dict form."""
        return {
            "author": self.author,
            "model": self.model,
            "model_version": self.model_version,
            "score": self.score,
            "created": self.created.isoformat(),
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any], path: str = "provenance") -> Provenance:
        """The provenance of a dict written by ``to_dict``."""
        d = _read.mapping(data, path)
        _read.keys(d, ("created",), ("author", "model", "model_version", "score"), path)
        return _wrap(
            path,
            lambda: cls(
                author=_read.string(d.get("author", ""), f"{path}.author"),
                model=_read.string(d.get("model", ""), f"{path}.model"),
                model_version=_read.string(d.get("model_version", ""), f"{path}.model_version"),
                score=_read.optional_number(d.get("score"), f"{path}.score"),
                created=_read_time(d["created"], f"{path}.created"),
            ),
        )


class ReviewState(StrEnum):
    """Where a record is in review."""

    DRAFT = "draft"
    SUBMITTED = "submitted"
    ACCEPTED = "accepted"
    REJECTED = "rejected"


#: Allowed review transitions (``edit`` additionally returns any state to draft).
TRANSITIONS: Mapping[ReviewState, frozenset[ReviewState]] = MappingProxyType(
    {
        ReviewState.DRAFT: frozenset({ReviewState.SUBMITTED}),
        ReviewState.SUBMITTED: frozenset(
            {ReviewState.ACCEPTED, ReviewState.REJECTED, ReviewState.DRAFT}
        ),
        ReviewState.ACCEPTED: frozenset({ReviewState.DRAFT}),
        ReviewState.REJECTED: frozenset({ReviewState.DRAFT}),
    }
)


@dataclass(frozen=True, slots=True, kw_only=True)
class Review:
    """The review state of a record.

    Attributes:
        state: draft, submitted, accepted or rejected.
        reviewer: who moved it to this state (empty for a fresh draft).
        comment: the reviewer's comment (required for a rejection).
        updated: when it entered this state (``None`` for a fresh draft).
    """

    state: ReviewState = ReviewState.DRAFT
    reviewer: str = ""
    comment: str = ""
    updated: datetime | None = None

    def __post_init__(self) -> None:
        _check_text(self, ("reviewer", "comment"), "review")
        try:
            object.__setattr__(self, "state", ReviewState(self.state))
        except ValueError:
            raise AnnotationError(f"unknown review state {self.state!r}") from None
        if self.state is ReviewState.REJECTED and not self.comment.strip():
            raise AnnotationError("a rejection needs a comment")
        if self.updated is not None:
            _check_time(self.updated, "review updated")

    def to(
        self, state: ReviewState, *, by: str = "", comment: str = "", at: datetime | None = None
    ) -> Review:
        """The review after moving to ``state``; raises ``AnnotationError`` when not allowed."""
        state = ReviewState(state)
        if state not in TRANSITIONS[self.state]:
            allowed = ", ".join(sorted(s.value for s in TRANSITIONS[self.state]))
            raise AnnotationError(
                f"review cannot go from {self.state.value} to {state.value} (allowed: {allowed})"
            )
        return Review(state=state, reviewer=by, comment=comment, updated=at or _now())

    def to_dict(self) -> dict[str, Any]:
        """The JSON-ready dict form."""
        return {
            "state": self.state.value,
            "reviewer": self.reviewer,
            "comment": self.comment,
            "updated": None if self.updated is None else self.updated.isoformat(),
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any], path: str = "review") -> Review:
        """The review of a dict written by ``to_dict``."""
        d = _read.mapping(data, path)
        _read.keys(d, ("state",), ("reviewer", "comment", "updated"), path)
        updated = d.get("updated")
        state = _read.choice(d["state"], ReviewState, f"{path}.state")
        return _wrap(
            path,
            lambda: cls(
                state=state,
                reviewer=_read.string(d.get("reviewer", ""), f"{path}.reviewer"),
                comment=_read.string(d.get("comment", ""), f"{path}.comment"),
                updated=None if updated is None else _read_time(updated, f"{path}.updated"),
            ),
        )


class Reviewable:
    """Review transitions shared by every record (dataclasses with a ``review`` field)."""

    __slots__ = ()
    review: Review

    def _moved(self, state: ReviewState, by: str, comment: str, at: datetime | None) -> Self:
        return cast(
            Self,
            replace(cast(Any, self), review=self.review.to(state, by=by, comment=comment, at=at)),
        )

    def submit(self, *, by: str = "", at: datetime | None = None) -> Self:
        """The record submitted for review (from draft)."""
        return self._moved(ReviewState.SUBMITTED, by, "", at)

    def accept(self, *, by: str, comment: str = "", at: datetime | None = None) -> Self:
        """The record accepted by reviewer ``by`` (from submitted)."""
        return self._moved(ReviewState.ACCEPTED, by, comment, at)

    def reject(self, *, by: str, comment: str, at: datetime | None = None) -> Self:
        """The record rejected by ``by`` with a (non-empty) ``comment`` (from submitted)."""
        return self._moved(ReviewState.REJECTED, by, comment, at)

    def reopen(self, *, by: str = "", at: datetime | None = None) -> Self:
        """The record back in draft (from submitted, accepted or rejected)."""
        return self._moved(ReviewState.DRAFT, by, "", at)

    def edit(self, **changes: Any) -> Self:
        """A copy with ``changes`` applied (validated again), back in draft review state."""
        if "review" in changes or "id" in changes:
            raise AnnotationError("edit cannot change a record's id or review")
        return cast(Self, replace(cast(Any, self), review=Review(), **changes))


def _frozen_attributes(value: Mapping[str, AttributeValue], what: str) -> Mapping[str, Any]:
    if not isinstance(value, Mapping):
        raise AnnotationError(f"{what}: attributes must be a mapping")
    for name, v in value.items():
        if not isinstance(name, str) or not name:
            raise AnnotationError(f"{what}: attribute names must be non-empty strings")
        if not isinstance(v, str | int | float | bool) or (
            isinstance(v, float) and not math.isfinite(v)
        ):
            raise AnnotationError(
                f"{what}: attribute {name!r} must be text, a finite number or a bool"
            )
    return MappingProxyType(dict(sorted(value.items())))


def _check_text(record: object, names: tuple[str, ...], what: str) -> None:
    for name in names:
        if not isinstance(getattr(record, name), str):
            raise AnnotationError(f"{what}: {name} must be a string")


def _check_id(value: str, what: str) -> None:
    if not isinstance(value, str) or not value or value != value.strip():
        raise AnnotationError(f"{what}: id must be a non-empty string without outer spaces")


@dataclass(frozen=True, slots=True, kw_only=True)
class Annotation(Reviewable):
    """A labelled shape on one frame.

    Attributes:
        id: unique within its item.
        label: the label's name in the project schema.
        shape: the geometry, px (see ``thermoscope.annotations.shapes``).
        frame: 0-based frame index within the item (0 for a single frame).
        attributes: attribute values by name (checked against the schema by the item).
        metadata: JSON-ready extras (format-specific flags such as ``occluded``).
        provenance: who or what made it.
        review: its review state.
    """

    label: str
    shape: Shape
    frame: int = 0
    attributes: Mapping[str, AttributeValue] = field(default_factory=dict)
    metadata: Mapping[str, Any] = field(default_factory=dict)
    provenance: Provenance
    review: Review = field(default_factory=Review)
    id: str = field(default_factory=new_id)

    def __post_init__(self) -> None:
        _check_id(self.id, "annotation")
        what = f"annotation {self.id!r}"
        if not isinstance(self.label, str) or not self.label:
            raise AnnotationError(f"{what}: label must be a non-empty string")
        if isinstance(self.frame, bool) or not isinstance(self.frame, int) or self.frame < 0:
            raise AnnotationError(f"{what}: frame must be an integer >= 0, got {self.frame!r}")
        object.__setattr__(self, "attributes", _frozen_attributes(self.attributes, what))
        object.__setattr__(self, "metadata", freeze_json(self.metadata, f"{what}: metadata"))

    def to_dict(self) -> dict[str, Any]:
        """The JSON-ready dict form (see the module docstring)."""
        return {
            "id": self.id,
            "label": self.label,
            "frame": self.frame,
            "shape": self.shape.to_dict(),
            "attributes": dict(self.attributes),
            "metadata": dict(self.metadata),
            "provenance": self.provenance.to_dict(),
            "review": self.review.to_dict(),
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any], path: str = "annotation") -> Annotation:
        """The annotation of a dict written by ``to_dict``."""
        d = _read.mapping(data, path)
        _read.keys(
            d,
            ("id", "label", "shape", "provenance"),
            ("frame", "attributes", "metadata", "review"),
            path,
        )
        return _wrap(
            path,
            lambda: cls(
                id=_read.string(d["id"], f"{path}.id"),
                label=_read.string(d["label"], f"{path}.label"),
                frame=_read.integer(d.get("frame", 0), f"{path}.frame"),
                shape=shape_from_dict(d["shape"], f"{path}.shape"),
                attributes=_read.mapping(d.get("attributes", {}), f"{path}.attributes"),
                metadata=_read.mapping(d.get("metadata", {}), f"{path}.metadata"),
                provenance=Provenance.from_dict(d["provenance"], f"{path}.provenance"),
                review=_review(d, path),
            ),
        )


@dataclass(frozen=True, slots=True, kw_only=True)
class VerdictLabel(Reviewable):
    """The ground-truth OK / NG decision on a frame or a whole item.

    Attributes:
        id: unique within its item.
        verdict: ``Verdict.OK`` or ``Verdict.NG`` (WARN is a rule outcome and RETAKE a capture to
            repeat, neither is ground truth about the part).
        reason: why (required for NG), e.g. "U1 above 85 °C".
        frame: 0-based frame index, or ``None`` for the whole item (the part).
        provenance: who or what decided it.
        review: its review state.
    """

    verdict: Verdict
    reason: str = ""
    frame: int | None = None
    provenance: Provenance
    review: Review = field(default_factory=Review)
    id: str = field(default_factory=new_id)

    def __post_init__(self) -> None:
        _check_id(self.id, "verdict")
        what = f"verdict {self.id!r}"
        _check_text(self, ("reason",), what)
        try:
            verdict = Verdict(self.verdict)
        except ValueError:
            raise AnnotationError(f"{what}: unknown verdict {self.verdict!r}") from None
        if verdict not in (Verdict.OK, Verdict.NG):
            raise AnnotationError(f"{what}: a ground-truth verdict is OK or NG, not {verdict}")
        object.__setattr__(self, "verdict", verdict)
        if verdict is Verdict.NG and not self.reason.strip():
            raise AnnotationError(f"{what}: an NG verdict needs a reason")
        if self.frame is not None and (
            isinstance(self.frame, bool) or not isinstance(self.frame, int) or self.frame < 0
        ):
            raise AnnotationError(f"{what}: frame must be an integer >= 0 or None")

    def to_dict(self) -> dict[str, Any]:
        """The JSON-ready dict form (see the module docstring)."""
        return {
            "id": self.id,
            "frame": self.frame,
            "verdict": self.verdict.value,
            "reason": self.reason,
            "provenance": self.provenance.to_dict(),
            "review": self.review.to_dict(),
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any], path: str = "verdict") -> VerdictLabel:
        """The verdict of a dict written by ``to_dict``."""
        d = _read.mapping(data, path)
        _read.keys(d, ("id", "verdict", "provenance"), ("frame", "reason", "review"), path)
        verdict = _read.choice(d["verdict"], Verdict, f"{path}.verdict")
        return _wrap(
            path,
            lambda: cls(
                id=_read.string(d["id"], f"{path}.id"),
                verdict=verdict,
                reason=_read.string(d.get("reason", ""), f"{path}.reason"),
                frame=_read.optional_integer(d.get("frame"), f"{path}.frame"),
                provenance=Provenance.from_dict(d["provenance"], f"{path}.provenance"),
                review=_review(d, path),
            ),
        )


@dataclass(frozen=True, slots=True, kw_only=True)
class ToleranceLabel(Reviewable):
    """A region with its allowed temperature range: the seed of a recipe rule.

    Attributes:
        id: unique within its item.
        name: the region's name (becomes the recipe region's name).
        shape: the region, px; an area shape (box, rotated box, polygon or mask).
        low_c: lowest allowed temperature in °C, or ``None`` (no lower limit).
        high_c: highest allowed temperature in °C, or ``None`` (no upper limit).
        description: what the range protects, for the recipe's readers.
        provenance, review: as for every record.
    """

    name: str
    shape: Shape
    low_c: float | None = None
    high_c: float | None = None
    description: str = ""
    provenance: Provenance
    review: Review = field(default_factory=Review)
    id: str = field(default_factory=new_id)

    def __post_init__(self) -> None:
        _check_id(self.id, "tolerance")
        what = f"tolerance {self.id!r}"
        _check_text(self, ("name", "description"), what)
        if not isinstance(self.name, str) or not self.name.strip():
            raise AnnotationError(f"{what}: name must not be empty")
        if isinstance(self.shape, Point | Polyline):
            raise AnnotationError(
                f"{what}: a tolerance region needs an area shape, not a {self.shape.kind}"
            )
        if self.low_c is None and self.high_c is None:
            raise AnnotationError(f"{what}: give low_c, high_c or both")
        for name in ("low_c", "high_c"):
            value = getattr(self, name)
            if value is not None:
                if isinstance(value, bool) or not math.isfinite(value):
                    raise AnnotationError(f"{what}: {name} must be a finite number in °C")
                object.__setattr__(self, name, float(value))
        if self.low_c is not None and self.high_c is not None and self.low_c >= self.high_c:
            raise AnnotationError(
                f"{what}: low_c {self.low_c} °C must be below high_c {self.high_c} °C"
            )

    def to_recipe_rules(self, *, mask_path: str | None = None) -> dict[str, Any]:
        """The range as plain dicts in the recipe file's form (no dependency on
        ``thermoscope.recipes``; see ``thermoscope.recipes.schema``)::

            {"region": {"name": name, "description": ..., "box": {"x", "y", "width", "height"}
                                                      | "polygon": [[x, y], ...]
                                                      | "mask": mask_path},
             "rules": [{"name": "<name> max", "type": "max", "region": name,
                        "limits": {"max": high_c}},
                       {"name": "<name> min", "type": "min", "region": name,
                        "limits": {"min": low_c}}]}

        A rule for each limit that is set (°C): the region's hottest pixel must not exceed
        ``high_c`` and its coldest must not fall below ``low_c``. A box with whole-pixel
        coordinates stays a box; other boxes, rotated boxes and polygons become polygons (px).
        Either way the recipe covers the pixels of ``to_mask`` (one rasterisation, see
        ``thermoscope.core.regions``). A recipe reads masks from files: write
        ``shape.to_mask(...)`` to a ``.npy`` and pass its path (relative to the recipe) as
        ``mask_path``.
        """
        region: dict[str, Any] = {"name": self.name}
        if self.description:
            region["description"] = self.description
        shape = self.shape
        if isinstance(shape, Mask):
            if mask_path is None:
                raise AnnotationError(
                    f"tolerance {self.id!r} ({self.name}): a mask region needs mask_path, the "
                    "file the recipe reads it from"
                )
            region["mask"] = mask_path
        elif isinstance(shape, Box) and all(
            float(v).is_integer() for v in (shape.x, shape.y, shape.width, shape.height)
        ):
            region["box"] = {
                "x": int(shape.x),
                "y": int(shape.y),
                "width": int(shape.width),
                "height": int(shape.height),
            }
        elif isinstance(shape, Box | RotatedBox):
            region["polygon"] = [[x, y] for x, y in shape.corners()]
        elif isinstance(shape, Polygon):
            region["polygon"] = [[x, y] for x, y in shape.points]
        rules: list[dict[str, Any]] = []
        for kind, limit in (("max", self.high_c), ("min", self.low_c)):
            if limit is not None:
                rules.append(
                    {
                        "name": f"{self.name} {kind}",
                        "type": kind,
                        "region": self.name,
                        "limits": {kind: limit},
                    }
                )
        return {"region": region, "rules": rules}

    def to_dict(self) -> dict[str, Any]:
        """The JSON-ready dict form (see the module docstring)."""
        return {
            "id": self.id,
            "name": self.name,
            "shape": self.shape.to_dict(),
            "low_c": self.low_c,
            "high_c": self.high_c,
            "description": self.description,
            "provenance": self.provenance.to_dict(),
            "review": self.review.to_dict(),
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any], path: str = "tolerance") -> ToleranceLabel:
        """The tolerance label of a dict written by ``to_dict``."""
        d = _read.mapping(data, path)
        _read.keys(
            d,
            ("id", "name", "shape", "provenance"),
            ("low_c", "high_c", "description", "review"),
            path,
        )
        return _wrap(
            path,
            lambda: cls(
                id=_read.string(d["id"], f"{path}.id"),
                name=_read.string(d["name"], f"{path}.name"),
                shape=shape_from_dict(d["shape"], f"{path}.shape"),
                low_c=_read.optional_number(d.get("low_c"), f"{path}.low_c"),
                high_c=_read.optional_number(d.get("high_c"), f"{path}.high_c"),
                description=_read.string(d.get("description", ""), f"{path}.description"),
                provenance=Provenance.from_dict(d["provenance"], f"{path}.provenance"),
                review=_review(d, path),
            ),
        )


def _review(d: Mapping[str, Any], path: str) -> Review:
    raw = d.get("review")
    return Review() if raw is None else Review.from_dict(raw, f"{path}.review")


def _wrap(path: str, build: Callable[[], T]) -> T:
    """Run ``build()``; prefix a construction error with ``path`` unless it names a path."""
    try:
        return build()
    except ValueError as exc:
        if isinstance(exc, AnnotationError) and str(exc).startswith(path):
            raise
        raise AnnotationError(f"{path}: {exc}") from exc
