"""The pipeline layer's error type."""

from __future__ import annotations

from thermoscope.core.errors import ThermoscopeError


class PipelineError(ThermoscopeError, ValueError):
    """A part cannot go through the pipeline: its file cannot be decoded, or it does not fit.

    Attributes:
        source: the file (or part) it is about.
        reason: what is wrong, without the source.
        too_large: the file declares more pixels, frames or bytes than the decode limits allow.
    """

    def __init__(self, source: str, reason: str, *, too_large: bool = False) -> None:
        super().__init__(f"{source}: {reason}")
        self.source = source
        self.reason = reason
        self.too_large = too_large
