"""The models layer's error types: one family, each message naming the file or field and why."""

from __future__ import annotations

from pathlib import Path

from thermoscope.core.errors import ThermoscopeError


class ModelError(ThermoscopeError, ValueError):
    """A model, its input contract or its input cannot be used; the message names what and why."""


class ReleaseError(ModelError):
    """A release folder is refused (unsigned, altered, expired, too old, malformed ...).

    Attributes:
        path: the file of the release the refusal is about (``manifest.json``, ``model.onnx`` ...).
        reason: what is wrong with it, without the path.
    """

    def __init__(self, path: str | Path, reason: str) -> None:
        super().__init__(f"{path}: {reason}")
        self.path = str(path)
        self.reason = reason


__all__ = ["ModelError", "ReleaseError"]
