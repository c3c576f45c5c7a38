"""Inspection results: per-rule findings and the verdict of a part.

The JSON form (``Inspection.to_json``) is read by other tools; its keys are fixed:
``{"source", "frame", "verdict", "findings": [{"rule", "region", "value", "limit", "verdict",
"x", "y", "explanation"}]}`` with values in °C (rates in °C/s).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any


class Verdict(StrEnum):
    """Outcome of a rule or a part, ordered OK < WARN < NG."""

    OK = "OK"
    WARN = "WARN"
    NG = "NG"

    @property
    def severity(self) -> int:
        """0 for OK, 1 for WARN, 2 for NG."""
        return ("OK", "WARN", "NG").index(self.value)

    @staticmethod
    def worst(verdicts: list[Verdict]) -> Verdict:
        """The most severe verdict (OK for an empty list)."""
        return max(verdicts, key=lambda v: v.severity, default=Verdict.OK)


@dataclass(frozen=True, slots=True)
class Finding:
    """The result of one rule on one part.

    Attributes:
        rule: the rule's name in the recipe.
        region: the region it measured (``"a-b"`` style names for pairs; ``""`` for whole frame).
        value: what was measured, in ``unit`` (°C, °C/s, s, pixels, mm² ...).
        limit: the limit the value was held against (the one crossed, or the nearest), same unit.
        verdict: OK, WARN or NG.
        x, y: pixel (column, row) of the extreme that decided it, when there is one.
        explanation: one line a line operator understands.
        margin: distance to the NG limit in ``unit`` (positive = inside tolerance).
        unit: unit of ``value``, ``limit`` and ``margin``.
        extra: rule-specific details (e.g. the curve, the hot-spot mask area).
        score: a learned model's confidence or anomaly score in [0, 1] (``None`` for rules).
    """

    rule: str
    region: str
    value: float
    limit: float | None
    verdict: Verdict
    explanation: str
    x: int | None = None
    y: int | None = None
    margin: float | None = None
    unit: str = "°C"
    extra: dict[str, Any] = field(default_factory=dict)
    score: float | None = None

    def to_json(self) -> dict[str, Any]:
        """The finding as the stable JSON-lines object."""
        return {
            "rule": self.rule,
            "region": self.region,
            "value": _round(self.value),
            "limit": _round(self.limit),
            "verdict": self.verdict.value,
            "x": self.x,
            "y": self.y,
            "explanation": self.explanation,
        }


@dataclass(frozen=True, slots=True)
class Inspection:
    """The verdict of one part (a frame or a sequence) and every rule's finding."""

    source: str
    frame: int | None
    verdict: Verdict
    findings: tuple[Finding, ...]

    @classmethod
    def of(cls, source: str, frame: int | None, findings: list[Finding]) -> Inspection:
        """An inspection whose verdict is the worst finding's."""
        return cls(source, frame, Verdict.worst([f.verdict for f in findings]), tuple(findings))

    def to_json(self) -> dict[str, Any]:
        """The stable JSON-lines object of this part."""
        return {
            "source": self.source,
            "frame": self.frame,
            "verdict": self.verdict.value,
            "findings": [f.to_json() for f in self.findings],
        }


def _round(value: float | None) -> float | None:
    """Four decimals; ``None`` for a missing or non-finite value (JSON has no NaN)."""
    if value is None or not math.isfinite(value):
        return None
    return round(float(value), 4)
