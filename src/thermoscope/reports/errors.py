"""The reports layer's error type."""

from thermoscope.core.errors import ThermoscopeError


class ReportError(ThermoscopeError, ValueError):
    """A report input is malformed: a JSON-lines record, an overlay image, a chart series."""
