"""Inspection results: per-rule findings and the verdict of a part, and their JSON contract.

The JSON form (``Inspection.to_json``) is the one lossless contract every producer and reader
shares (CLI JSON lines, the server's ingest schema, the edge's outbox). Its keys, in order:
``{"source", "frame", "verdict", "findings": [{"rule", "region", "value", "limit", "verdict",
"x", "y", "explanation", "margin", "unit", "score", "extra"}]}``. The first eight finding keys
are the original ones, in their original order (other tools read them); ``value``, ``limit``
and ``margin`` are in ``unit`` (°C, °C/s, s, px, score ...), ``score`` is a model's confidence
in [0, 1] or ``null``, ``extra`` a JSON object of rule- or model-specific details.

Round trip: ``Finding.from_json(f.to_json()) == f`` for every finding whose numbers are finite
and whose ``extra`` is already JSON (str keys; str, bool, int, finite float, None, list, dict);
floats are written at full precision. JSON has no NaN or infinity: a non-finite ``value`` is
written ``null`` and read back as NaN, a non-finite ``limit`` or ``margin`` as ``None``.
``to_json`` turns NumPy scalars and arrays and tuples in ``extra`` into JSON numbers and lists,
so ``to_json(from_json(j)) == j`` for every JSON object ``to_json`` writes. ``from_json`` also
reads the original eight-key findings (the four newer keys take their defaults) and refuses
unknown keys and wrong types with a ``ContractError`` naming the field.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

import numpy as np

from thermoscope.core.errors import ThermoscopeError

#: Finding keys of the JSON contract, in order (the first eight are required when reading).
FINDING_KEYS = (
    "rule",
    "region",
    "value",
    "limit",
    "verdict",
    "x",
    "y",
    "explanation",
    "margin",
    "unit",
    "score",
    "extra",
)
#: Inspection keys of the JSON contract, in order (all required when reading).
INSPECTION_KEYS = ("source", "frame", "verdict", "findings")
_REQUIRED_FINDING_KEYS = FINDING_KEYS[:8]


class ContractError(ThermoscopeError, ValueError):
    """A JSON object is not an inspection or finding of the contract (names the field)."""


class Verdict(StrEnum):
    """Outcome of a rule or a part, ordered OK < WARN < NG < RETAKE.

    RETAKE is not a judgement of the part: the capture broke the recipe's protocol (framing,
    focus, ambient range, reference emitter out of tolerance) so the part must be captured
    again. It ranks above NG in :meth:`worst` because a part with an unusable capture cannot be
    called OK or NG, whatever its other findings say.
    """

    OK = "OK"
    WARN = "WARN"
    NG = "NG"
    RETAKE = "RETAKE"

    @property
    def severity(self) -> int:
        """0 for OK, 1 for WARN, 2 for NG, 3 for RETAKE (the capture must be repeated)."""
        return ("OK", "WARN", "NG", "RETAKE").index(self.value)

    @staticmethod
    def worst(verdicts: list[Verdict]) -> Verdict:
        """The most severe verdict (OK for an empty list; RETAKE above NG)."""
        return max(verdicts, key=lambda v: v.severity, default=Verdict.OK)


@dataclass(frozen=True, slots=True)
class Finding:
    """The result of one rule on one part.

    Attributes:
        rule: the rule's name in the recipe.
        region: the region it measured (``"a-b"`` style names for pairs; ``""`` for whole frame).
        value: what was measured, in ``unit`` (°C, °C/s, s, pixels, mm² ...).
        limit: the limit the value was held against (the one crossed, or the nearest), same unit.
        verdict: OK, WARN, NG or RETAKE (the capture must be repeated).
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
        """The finding as the contract's JSON object (see the module docstring).

        Raises:
            ContractError: ``extra`` holds something JSON cannot (a non-str key, an object).
        """
        return {
            "rule": self.rule,
            "region": self.region,
            "value": _finite(self.value),
            "limit": _finite(self.limit),
            "verdict": self.verdict.value,
            "x": None if self.x is None else int(self.x),
            "y": None if self.y is None else int(self.y),
            "explanation": self.explanation,
            "margin": _finite(self.margin),
            "unit": self.unit,
            "score": _finite(self.score),
            "extra": _json_value(self.extra, "extra"),
        }

    @classmethod
    def from_json(cls, obj: Any, *, what: str = "finding") -> Finding:
        """The finding of a contract JSON object (the inverse of ``to_json``).

        Args:
            obj: the decoded JSON object.
            what: how errors name the object (``"findings[3]"``).

        Raises:
            ContractError: a required key is missing, a key unknown or a value of the wrong type.
        """
        d = _object(obj, _REQUIRED_FINDING_KEYS, FINDING_KEYS, what)
        value = _number(d["value"], f"{what}.value")
        score = _number(d.get("score"), f"{what}.score")
        if score is not None and not 0.0 <= score <= 1.0:
            raise ContractError(f"{what}.score must be in [0, 1] or null, got {score!r}")
        extra = d.get("extra", {})
        if not isinstance(extra, dict):
            raise ContractError(f"{what}.extra must be an object, got {type(extra).__name__}")
        return cls(
            rule=_string(d["rule"], f"{what}.rule"),
            region=_string(d["region"], f"{what}.region"),
            value=math.nan if value is None else value,
            limit=_number(d["limit"], f"{what}.limit"),
            verdict=_verdict(d["verdict"], f"{what}.verdict"),
            explanation=_string(d["explanation"], f"{what}.explanation"),
            x=_pixel(d["x"], f"{what}.x"),
            y=_pixel(d["y"], f"{what}.y"),
            margin=_number(d.get("margin"), f"{what}.margin"),
            unit=_string(d.get("unit", "°C"), f"{what}.unit"),
            extra=_json_value(extra, f"{what}.extra"),
            score=score,
        )


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
        """The part as the contract's JSON object (see the module docstring)."""
        return {
            "source": self.source,
            "frame": None if self.frame is None else int(self.frame),
            "verdict": self.verdict.value,
            "findings": [f.to_json() for f in self.findings],
        }

    @classmethod
    def from_json(cls, obj: Any, *, what: str = "inspection") -> Inspection:
        """The inspection of a contract JSON object (the inverse of ``to_json``); the verdict
        is taken as written, not recomputed from the findings.

        Raises:
            ContractError: a key is missing or unknown, or a value has the wrong type.
        """
        d = _object(obj, INSPECTION_KEYS, INSPECTION_KEYS, what)
        findings = d["findings"]
        if not isinstance(findings, list):
            raise ContractError(f"{what}.findings must be a list")
        frame = d["frame"]
        if frame is not None and (isinstance(frame, bool) or not isinstance(frame, int)):
            raise ContractError(f"{what}.frame must be an integer or null, got {frame!r}")
        return cls(
            source=_string(d["source"], f"{what}.source"),
            frame=frame,
            verdict=_verdict(d["verdict"], f"{what}.verdict"),
            findings=tuple(
                Finding.from_json(f, what=f"{what}.findings[{i}]") for i, f in enumerate(findings)
            ),
        )


def _finite(value: float | None) -> float | None:
    """``value`` as a Python float; ``None`` for a missing or non-finite one (JSON has no NaN)."""
    if value is None or not math.isfinite(value):
        return None
    return float(value)


def _json_value(value: Any, what: str) -> Any:
    """``value`` as plain JSON data: NumPy scalars and arrays and tuples become numbers and
    lists, non-finite floats ``None``; anything JSON cannot hold is a ``ContractError``."""
    if value is None or isinstance(value, str | bool):
        return value
    if isinstance(value, int):
        return int(value)
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, np.generic):
        return _json_value(value.item(), what)
    if isinstance(value, np.ndarray):
        return _json_value(value.tolist(), what)
    if isinstance(value, list | tuple):
        return [_json_value(v, f"{what}[{i}]") for i, v in enumerate(value)]
    if isinstance(value, dict):
        out: dict[str, Any] = {}
        for key, item in value.items():
            if not isinstance(key, str):
                raise ContractError(f"{what}: key {key!r} is not a string")
            out[key] = _json_value(item, f"{what}.{key}")
        return out
    raise ContractError(f"{what}: {type(value).__name__} is not JSON data")


def _object(
    value: Any, required: tuple[str, ...], known: tuple[str, ...], what: str
) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise ContractError(f"{what} must be a JSON object, got {type(value).__name__}")
    missing = [k for k in required if k not in value]
    unknown = [k for k in value if k not in known]
    if missing or unknown:
        raise ContractError(f"{what}: missing keys {missing}, unknown keys {unknown}")
    return value


def _string(value: Any, what: str) -> str:
    if not isinstance(value, str):
        raise ContractError(f"{what} must be a string, got {value!r}")
    return value


def _number(value: Any, what: str) -> float | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise ContractError(f"{what} must be a number or null, got {value!r}")
    if not math.isfinite(value):
        raise ContractError(f"{what} must be finite, got {value!r}")
    return float(value)


def _pixel(value: Any, what: str) -> int | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise ContractError(f"{what} must be a pixel index (integer >= 0) or null, got {value!r}")
    return value


def _verdict(value: Any, what: str) -> Verdict:
    try:
        return Verdict(value)
    except ValueError:
        raise ContractError(
            f"{what} must be OK, WARN or NG (or RETAKE, a capture to repeat), got {value!r}"
        ) from None
