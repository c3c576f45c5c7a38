"""Measurement views: temperatures recomputed with other object parameters."""

from __future__ import annotations

import math
from typing import Any

from pydantic import Field, field_validator

from thermoscope.core import ObjectParameters
from thermoscope.server.schemas.common import Request

#: Absolute zero, °C (ObjectParameters refuses temperatures at or below it).
ABSOLUTE_ZERO_C = -273.15


def _described(name: str) -> str:
    """The description of an ``ObjectParameters`` field, from its docstring."""
    for line in (ObjectParameters.__doc__ or "").splitlines():
        head, _, text = line.strip().partition(":")
        if head == name:
            return text.strip()
    raise KeyError(name)  # a renamed core field must not go unnoticed


class RecomputeIn(Request):
    """Which frame to recompute, the object parameters to change (``ObjectParameters``
    fields; omitted ones keep the file's values) and the pixels to change them for."""

    frame: int = Field(default=0, ge=0, le=10**7, description="frame of a sequence (0-based)")
    emissivity: float | None = Field(
        default=None, gt=0.0, le=1.0, description=_described("emissivity")
    )
    reflected_temp_c: float | None = Field(
        default=None,
        gt=ABSOLUTE_ZERO_C,
        le=10000.0,
        description=_described("reflected_temp_c"),
    )
    region: dict[str, Any] | None = Field(
        default=None,
        description="an annotation shape (box, rotated_box, polygon or mask, as in "
        "annotation items): only its pixels are recomputed; null for the whole frame",
    )

    @field_validator("emissivity", "reflected_temp_c")
    @classmethod
    def _finite(cls, value: float | None) -> float | None:
        if value is not None and not math.isfinite(value):
            raise ValueError("must be a finite number")
        return value
