"""A project's label schema: the labels annotators may use and their typed attributes.

An attribute is one of four types: ``enum`` (one of ``values``), ``text``, ``number`` (finite,
within ``minimum``/``maximum`` when given, both inclusive, in the attribute's own unit) and
``bool``. A required attribute must be present unless it has a default; ``resolve`` fills
defaults in.

Dict form (``LabelSchema.to_dict``)::

    {"labels": [{"name": "hot_spot", "description": "",
                 "attributes": [{"name": "severity", "type": "enum", "values": ["low", "high"],
                                 "minimum": null, "maximum": null, "required": true,
                                 "default": "low", "description": ""}]}]}
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from thermoscope.annotations import _read
from thermoscope.annotations.errors import AnnotationError

#: The value of an attribute: enum member or text (str), number (int or float), bool.
AttributeValue = str | int | float | bool


class AttributeType(StrEnum):
    """The type of an attribute's values."""

    ENUM = "enum"
    TEXT = "text"
    NUMBER = "number"
    BOOL = "bool"


@dataclass(frozen=True, slots=True)
class AttributeSpec:
    """One typed attribute of a label.

    Attributes:
        name: key in an annotation's ``attributes``.
        type: enum, text, number or bool.
        values: the allowed values of an enum (non-empty, unique); empty for other types.
        minimum, maximum: inclusive bounds of a number (``None`` = unbounded).
        required: whether an annotation must carry it (a default satisfies it).
        default: value filled in by ``LabelSchema.resolve`` when absent (``None`` = no default).
        description: what it means, for annotators.
    """

    name: str
    type: AttributeType
    values: tuple[str, ...] = ()
    minimum: float | None = None
    maximum: float | None = None
    required: bool = False
    default: AttributeValue | None = None
    description: str = ""

    def __post_init__(self) -> None:
        where = f"attribute {self.name!r}"
        if not self.name:
            raise AnnotationError("attribute: name must not be empty")
        try:
            kind = AttributeType(self.type)
        except ValueError:
            raise AnnotationError(
                f"{where}: unknown type {self.type!r}; one of {[t.value for t in AttributeType]}"
            ) from None
        object.__setattr__(self, "type", kind)
        values = tuple(self.values)
        object.__setattr__(self, "values", values)
        if kind is AttributeType.ENUM:
            if not values or not all(isinstance(v, str) and v for v in values):
                raise AnnotationError(f"{where}: an enum needs non-empty string values")
            if len(set(values)) != len(values):
                raise AnnotationError(f"{where}: enum values must be unique, got {values}")
        elif values:
            raise AnnotationError(f"{where}: only an enum has values")
        if kind is not AttributeType.NUMBER and (
            self.minimum is not None or self.maximum is not None
        ):
            raise AnnotationError(f"{where}: only a number has minimum/maximum")
        for bound in (self.minimum, self.maximum):
            if bound is not None and not math.isfinite(bound):
                raise AnnotationError(f"{where}: bounds must be finite")
        if self.minimum is not None and self.maximum is not None and self.minimum > self.maximum:
            raise AnnotationError(f"{where}: minimum {self.minimum} > maximum {self.maximum}")
        if self.default is not None:
            self.check(self.default, "default")

    def check(self, value: object, where: str = "") -> None:
        """Raise ``AnnotationError`` unless ``value`` is a valid value of this attribute."""
        prefix = f"{where + ': ' if where else ''}attribute {self.name!r}"
        kind = self.type
        if kind is AttributeType.BOOL:
            if not isinstance(value, bool):
                raise AnnotationError(f"{prefix}: expected true or false, got {value!r}")
        elif kind is AttributeType.TEXT:
            if not isinstance(value, str):
                raise AnnotationError(f"{prefix}: expected text, got {value!r}")
        elif kind is AttributeType.ENUM:
            if not isinstance(value, str) or value not in self.values:
                raise AnnotationError(f"{prefix}: {value!r} is not one of {', '.join(self.values)}")
        else:
            if isinstance(value, bool) or not isinstance(value, int | float):
                raise AnnotationError(f"{prefix}: expected a number, got {value!r}")
            if not math.isfinite(value):
                raise AnnotationError(f"{prefix}: expected a finite number, got {value!r}")
            if self.minimum is not None and value < self.minimum:
                raise AnnotationError(f"{prefix}: {value} is below the minimum {self.minimum}")
            if self.maximum is not None and value > self.maximum:
                raise AnnotationError(f"{prefix}: {value} is above the maximum {self.maximum}")

    def to_dict(self) -> dict[str, Any]:
        """The JSON-ready dict form."""
        return {
            "name": self.name,
            "type": self.type.value,
            "values": list(self.values),
            "minimum": self.minimum,
            "maximum": self.maximum,
            "required": self.required,
            "default": self.default,
            "description": self.description,
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any], path: str = "attribute") -> AttributeSpec:
        """The spec of a dict written by ``to_dict`` (all keys but name and type optional)."""
        d = _read.mapping(data, path)
        optional = ("values", "minimum", "maximum", "required", "default", "description")
        _read.keys(d, ("name", "type"), optional, path)
        default = d.get("default")
        if default is not None and not isinstance(default, str | int | float | bool):
            raise AnnotationError(f"{path}.default: expected a plain value, got {default!r}")
        try:
            return cls(
                name=_read.string(d["name"], f"{path}.name"),
                type=_read.choice(d["type"], AttributeType, f"{path}.type"),
                values=tuple(
                    _read.string(v, f"{path}.values")
                    for v in _read.array(d.get("values", []), f"{path}.values")
                ),
                minimum=_read.optional_number(d.get("minimum"), f"{path}.minimum"),
                maximum=_read.optional_number(d.get("maximum"), f"{path}.maximum"),
                required=_read.boolean(d.get("required", False), f"{path}.required"),
                default=default,
                description=_read.string(d.get("description", ""), f"{path}.description"),
            )
        except ValueError as exc:
            if isinstance(exc, AnnotationError) and str(exc).startswith(path):
                raise
            raise AnnotationError(f"{path}: {exc}") from exc


@dataclass(frozen=True, slots=True)
class LabelSpec:
    """A label (a defect class, a region kind ...) and the attributes its annotations carry."""

    name: str
    attributes: tuple[AttributeSpec, ...] = ()
    description: str = ""

    def __post_init__(self) -> None:
        if not self.name:
            raise AnnotationError("label: name must not be empty")
        attributes = tuple(self.attributes)
        names = [a.name for a in attributes]
        duplicates = sorted({n for n in names if names.count(n) > 1})
        if duplicates:
            raise AnnotationError(f"label {self.name!r}: duplicate attribute(s) {duplicates}")
        object.__setattr__(self, "attributes", attributes)

    def attribute(self, name: str) -> AttributeSpec | None:
        """The spec of attribute ``name``, or ``None``."""
        return next((a for a in self.attributes if a.name == name), None)

    def to_dict(self) -> dict[str, Any]:
        """The JSON-ready dict form."""
        return {
            "name": self.name,
            "description": self.description,
            "attributes": [a.to_dict() for a in self.attributes],
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any], path: str = "label") -> LabelSpec:
        """The spec of a dict written by ``to_dict``."""
        d = _read.mapping(data, path)
        _read.keys(d, ("name",), ("description", "attributes"), path)
        attrs = _read.array(d.get("attributes", []), f"{path}.attributes")
        return cls(
            name=_read.string(d["name"], f"{path}.name"),
            attributes=tuple(
                AttributeSpec.from_dict(a, f"{path}.attributes[{i}]") for i, a in enumerate(attrs)
            ),
            description=_read.string(d.get("description", ""), f"{path}.description"),
        )


@dataclass(frozen=True, slots=True)
class LabelSchema:
    """The labels of a project; annotations are validated against it."""

    labels: tuple[LabelSpec, ...]

    def __post_init__(self) -> None:
        labels = tuple(self.labels)
        names = [label.name for label in labels]
        duplicates = sorted({n for n in names if names.count(n) > 1})
        if duplicates:
            raise AnnotationError(f"label schema: duplicate label(s) {duplicates}")
        object.__setattr__(self, "labels", labels)

    def label(self, name: str) -> LabelSpec | None:
        """The spec of label ``name``, or ``None``."""
        return next((spec for spec in self.labels if spec.name == name), None)

    def validate(self, label: str, attributes: Mapping[str, object], where: str = "") -> None:
        """Raise ``AnnotationError`` naming ``where`` and the field unless the label is known
        and every attribute is known, of the right type and within bounds, and every required
        attribute without a default is present."""
        prefix = f"{where}: " if where else ""
        spec = self.label(label)
        if spec is None:
            known = ", ".join(s.name for s in self.labels)
            raise AnnotationError(f"{prefix}unknown label {label!r}; the schema has {known}")
        for name, value in attributes.items():
            attr = spec.attribute(name)
            if attr is None:
                known = ", ".join(a.name for a in spec.attributes) or "none"
                raise AnnotationError(
                    f"{prefix}unknown attribute {name!r} of label {label!r}; it has {known}"
                )
            attr.check(value, where)
        for attr in spec.attributes:
            if attr.required and attr.default is None and attr.name not in attributes:
                raise AnnotationError(f"{prefix}label {label!r} requires attribute {attr.name!r}")

    def resolve(
        self, label: str, attributes: Mapping[str, AttributeValue], where: str = ""
    ) -> dict[str, AttributeValue]:
        """The validated attributes with every absent attribute's default filled in."""
        self.validate(label, attributes, where)
        spec = self.label(label)
        assert spec is not None  # validate raised otherwise
        out = dict(attributes)
        for attr in spec.attributes:
            if attr.name not in out and attr.default is not None:
                out[attr.name] = attr.default
        return out

    def to_dict(self) -> dict[str, Any]:
        """The JSON-ready dict form (see the module docstring)."""
        return {"labels": [label.to_dict() for label in self.labels]}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any], path: str = "schema") -> LabelSchema:
        """The schema of a dict written by ``to_dict``."""
        d = _read.mapping(data, path)
        _read.keys(d, ("labels",), (), path)
        labels = _read.array(d["labels"], f"{path}.labels")
        return cls(
            tuple(LabelSpec.from_dict(x, f"{path}.labels[{i}]") for i, x in enumerate(labels))
        )
