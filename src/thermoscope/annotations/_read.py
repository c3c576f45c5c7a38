"""Strict readers for the plain dicts of ``from_dict``: each names the path of a bad value."""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from enum import StrEnum
from typing import Any, TypeVar

from thermoscope.annotations.errors import AnnotationError

E = TypeVar("E", bound=StrEnum)


def mapping(value: Any, path: str) -> Mapping[str, Any]:
    """``value`` as a mapping with string keys."""
    if not isinstance(value, Mapping) or not all(isinstance(k, str) for k in value):
        raise AnnotationError(f"{path}: expected an object, got {type(value).__name__}")
    return value


def keys(d: Mapping[str, Any], required: Iterable[str], optional: Iterable[str], path: str) -> None:
    """Every required key present, no key outside required + optional."""
    required = tuple(required)
    missing = [k for k in required if k not in d]
    if missing:
        raise AnnotationError(f"{path}: missing {', '.join(repr(k) for k in missing)}")
    allowed = set(required) | set(optional)
    unknown = sorted(k for k in d if k not in allowed)
    if unknown:
        raise AnnotationError(f"{path}: unknown key(s) {', '.join(repr(k) for k in unknown)}")


def number(value: Any, path: str) -> float:
    """A finite int or float (not a bool) as float."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise AnnotationError(f"{path}: expected a number, got {value!r}")
    out = float(value)
    if not math.isfinite(out):
        raise AnnotationError(f"{path}: expected a finite number, got {value!r}")
    return out


def optional_number(value: Any, path: str) -> float | None:
    """``None`` or a finite number."""
    return None if value is None else number(value, path)


def integer(value: Any, path: str) -> int:
    """An int (not a bool)."""
    if isinstance(value, bool) or not isinstance(value, int):
        raise AnnotationError(f"{path}: expected an integer, got {value!r}")
    return value


def optional_integer(value: Any, path: str) -> int | None:
    """``None`` or an int."""
    return None if value is None else integer(value, path)


def string(value: Any, path: str) -> str:
    """A str."""
    if not isinstance(value, str):
        raise AnnotationError(f"{path}: expected a string, got {value!r}")
    return value


def boolean(value: Any, path: str) -> bool:
    """A bool."""
    if not isinstance(value, bool):
        raise AnnotationError(f"{path}: expected true or false, got {value!r}")
    return value


def array(value: Any, path: str) -> list[Any]:
    """A list (or tuple) as list."""
    if not isinstance(value, list | tuple):
        raise AnnotationError(f"{path}: expected a list, got {type(value).__name__}")
    return list(value)


def choice(value: Any, enum: type[E], path: str) -> E:
    """A member of the string enum ``enum`` by its value."""
    text = string(value, path)
    try:
        return enum(text)
    except ValueError:
        allowed = ", ".join(str(m.value) for m in enum)
        raise AnnotationError(f"{path}: unknown value {text!r}; one of {allowed}") from None
