"""Numbers and attribute values as text, and label schemas from what a file holds."""

from __future__ import annotations

import math
import re
from collections.abc import Iterable, Mapping, Sequence

from thermoscope.annotations.formats.base import AnnotationFormatError
from thermoscope.annotations.item import AnnotatedItem
from thermoscope.annotations.schema import (
    AttributeSpec,
    AttributeType,
    AttributeValue,
    LabelSchema,
    LabelSpec,
)

# ---------------------------------------------------------------------------------------------
# Numbers and attribute values in text formats


def number_text(value: float) -> str:
    """The shortest text that reads back as exactly ``value`` (integers without ``.0``)."""
    v = float(value)
    return str(int(v)) if v.is_integer() and abs(v) < 1e15 else repr(v)


def attribute_text(value: AttributeValue) -> str:
    """An attribute value as text: ``true``/``false``, shortest round-trip numbers, text."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        return repr(value)
    return value


def attribute_from_text(text: str, kind: AttributeType | None) -> AttributeValue:
    """A value read from text, typed as ``kind`` (``None``: left as text).

    Raises:
        ValueError: the text is not a value of that type.
    """
    if kind is AttributeType.BOOL:
        low = text.strip().lower()
        if low in ("true", "1", "yes"):
            return True
        if low in ("false", "0", "no", ""):
            return False
        raise ValueError(f"{text!r} is not true or false")
    if kind is AttributeType.NUMBER:
        stripped = text.strip()
        if re.fullmatch(r"[+-]?\d+", stripped):
            return int(stripped)
        value = float(stripped)
        if not math.isfinite(value):
            raise ValueError(f"{text!r} is not a finite number")
        return value
    return text


def attribute_kind(schema: LabelSchema | None, label: str, name: str) -> AttributeType | None:
    """The schema's type of attribute ``name`` of ``label`` (``None`` when not declared)."""
    if schema is None:
        return None
    spec = schema.label(label)
    attr = spec.attribute(name) if spec is not None else None
    return attr.type if attr is not None else None


def typed_attributes(
    values: Mapping[str, str], label: str, schema: LabelSchema | None
) -> dict[str, AttributeValue]:
    """Text attribute values typed by ``schema`` (undeclared ones stay text)."""
    return {
        name: attribute_from_text(text, attribute_kind(schema, label, name))
        for name, text in values.items()
    }


def text_round_trip(
    attributes: Mapping[str, AttributeValue], label: str, schema: LabelSchema | None
) -> dict[str, AttributeValue]:
    """The attributes as an import from a text format gives them back (``reduce`` helper)."""
    return typed_attributes({k: attribute_text(v) for k, v in attributes.items()}, label, schema)


def infer_schema(items: Sequence[AnnotatedItem]) -> LabelSchema:
    """A label schema from the labels and attribute values the items use (first-seen order):
    bool values make bool attributes, numbers number attributes, text text attributes."""
    labels: dict[str, dict[str, AttributeType]] = {}

    def note(label: str, attributes: Mapping[str, AttributeValue]) -> None:
        attrs = labels.setdefault(label, {})
        for name, value in attributes.items():
            if isinstance(value, bool):
                kind = AttributeType.BOOL
            elif isinstance(value, int | float):
                kind = AttributeType.NUMBER
            else:
                kind = AttributeType.TEXT
            attrs.setdefault(name, kind)

    for item in items:
        for a in item.annotations:
            note(a.label, a.attributes)
        for t in item.tracks:
            note(t.label, t.attributes)
    return LabelSchema(
        tuple(
            LabelSpec(name, tuple(AttributeSpec(n, k) for n, k in attrs.items()))
            for name, attrs in labels.items()
        )
    )


def schema_of(names: Iterable[str]) -> LabelSchema:
    """A schema of plain labels (no attributes), duplicates dropped."""
    return LabelSchema(tuple(LabelSpec(n) for n in dict.fromkeys(names)))


def check_labels(schema: LabelSchema, items: Sequence[AnnotatedItem], fmt: str) -> None:
    """Raise ``AnnotationFormatError`` when a record's label is not in ``schema``."""
    known = {spec.name for spec in schema.labels}
    for item in items:
        labels = [(f"annotations[{i}]", a.label) for i, a in enumerate(item.annotations)]
        labels += [(f"tracks[{i}]", t.label) for i, t in enumerate(item.tracks)]
        for path, label in labels:
            if label not in known:
                raise AnnotationFormatError(
                    f"label {label!r} is not in the label schema",
                    file=fmt,
                    item=f"item {item.item_id!r}: {path}",
                )
