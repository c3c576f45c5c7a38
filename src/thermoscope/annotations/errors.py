"""The annotation layer's error type."""

from __future__ import annotations

from thermoscope.core.errors import ThermoscopeError


class AnnotationError(ThermoscopeError, ValueError):
    """An annotation, shape, schema or annotated item is malformed.

    The message names the item and the field at fault, e.g.
    ``annotations[2] (id 'a7'): attribute 'severity': 'huge' is not one of low, high``.
    """
