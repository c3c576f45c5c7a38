"""The render layer's error type."""

from thermoscope.core.errors import ThermoscopeError


class RenderError(ThermoscopeError, ValueError):
    """A frame cannot be rendered as asked: unknown palette, bad range, bad isotherm or image."""
