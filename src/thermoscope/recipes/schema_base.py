"""Building blocks shared by the recipe's schema modules: the strict base model, names,
temperatures, file paths and the tolerance band (:class:`Limits`)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationInfo, model_validator
from pydantic_core import PydanticCustomError

#: Widest temperature any limit or reading may name, °C.
_T_LO, _T_HI = -273.15, 10000.0
_NAME_PATTERN = r"^[A-Za-z0-9_][A-Za-z0-9_.\-]*$"

Statistic = Literal["max", "min", "mean", "median"]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, allow_inf_nan=False)


def _problem(path: str, message: str) -> PydanticCustomError:
    return PydanticCustomError("recipe", "{path}: {message}", {"path": path, "message": message})


def _resolve(value: Path, info: ValidationInfo) -> Path:
    base = (info.context or {}).get("base_dir")
    path = value if value.is_absolute() or base is None else Path(base) / value
    try:
        exists = path.is_file()
    except (OSError, ValueError) as exc:
        raise ValueError(f"cannot use file {str(value)!r}: {exc}") from None
    if not exists:
        raise ValueError(f"file not found: {path}")
    return path


FilePath = Annotated[Path, Field(description="file path, relative to the recipe file's folder")]
Name = Annotated[
    str,
    Field(min_length=1, max_length=64, pattern=_NAME_PATTERN, description="a region's name"),
]
Temperature = Annotated[float, Field(ge=_T_LO, le=_T_HI, description="temperature in °C")]


def _fmt(value: float) -> str:
    return f"{value:g}"


class Limits(_Strict):
    """A tolerance band: NG outside ``[min, max]``, WARN outside ``[warn_min, warn_max]``.

    All bounds are in the rule's unit and inclusive (a value equal to a limit is inside it).
    """

    min: float | None = Field(
        default=None, ge=-1e9, le=1e9, description="lowest value that is not NG"
    )
    max: float | None = Field(
        default=None, ge=-1e9, le=1e9, description="highest value that is not NG"
    )
    warn_min: float | None = Field(
        default=None, ge=-1e9, le=1e9, description="values below it (but not NG) are WARN"
    )
    warn_max: float | None = Field(
        default=None, ge=-1e9, le=1e9, description="values above it (but not NG) are WARN"
    )

    @model_validator(mode="after")
    def _ordered(self) -> Limits:
        lo, hi, wlo, whi = self.min, self.max, self.warn_min, self.warn_max
        if lo is None and hi is None:
            raise ValueError("give at least one NG limit (min or max)")
        if lo is not None and hi is not None and lo > hi:
            raise ValueError(f"inverted range: min {_fmt(lo)} > max {_fmt(hi)}")
        if wlo is not None and whi is not None and wlo > whi:
            raise ValueError(f"inverted range: warn_min {_fmt(wlo)} > warn_max {_fmt(whi)}")
        for name, warn in (("warn_min", wlo), ("warn_max", whi)):
            if warn is None:
                continue
            if lo is not None and warn < lo:
                raise ValueError(f"{name} {_fmt(warn)} is below min {_fmt(lo)}")
            if hi is not None and warn > hi:
                raise ValueError(f"{name} {_fmt(warn)} is above max {_fmt(hi)}")
        return self
