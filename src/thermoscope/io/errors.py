"""The io layer's error family: every reader failure names the file and the reason."""

from __future__ import annotations

import functools
import struct
from collections.abc import Callable
from typing import ParamSpec, TypeVar

import numpy as np
from numpy.typing import NDArray

from thermoscope.core.errors import ThermoscopeError
from thermoscope.core.frame import FrameMetadata

P = ParamSpec("P")
R = TypeVar("R")


class ThermoscopeFormatError(ThermoscopeError, ValueError):
    """A file could not be read or written.

    Attributes:
        source: the file (or ``"<bytes>"`` for in-memory data).
        reason: what is wrong, in words a user can act on.
    """

    def __init__(self, reason: str, source: str = "<bytes>") -> None:
        self.source = source
        self.reason = reason
        super().__init__(f"{source}: {reason}")

    def with_source(self, source: str) -> ThermoscopeFormatError:
        """The same error (same class) naming ``source``; used by the file wrappers."""
        err = type(self)(self.reason, source)
        extras = {k: v for k, v in vars(self).items() if k not in ("source", "reason")}
        vars(err).update(extras)
        err.__cause__ = self.__cause__
        return err


class TruncatedFileError(ThermoscopeFormatError):
    """The data ends before a structure it announces."""


class UnknownFormatError(ThermoscopeFormatError):
    """No reader recognises the content signature."""


class UnsupportedCompressionError(ThermoscopeFormatError):
    """The data is compressed with a codec thermoscope cannot decode."""


class AbsurdSizeError(ThermoscopeFormatError):
    """Declared dimensions or lengths are impossible or implausibly large."""


class CorruptDataError(ThermoscopeFormatError):
    """The data is structurally invalid (bad offsets, inconsistent fields, undecodable payload)."""


class TemperatureUnavailableError(ThermoscopeFormatError):
    """Raw counts were read but no conversion to °C is available (names what is missing).

    Attributes:
        raw: the counts that were read (uint16, H x W), when the reader got that far.
        metadata: the frame's metadata (camera, parameters...), when the reader got that far.
    """

    raw: NDArray[np.uint16] | None = None
    metadata: FrameMetadata | None = None


_LOW_LEVEL_ERRORS = (
    ValueError,
    IndexError,
    KeyError,
    OverflowError,
    ZeroDivisionError,
    TypeError,
    EOFError,
    MemoryError,
    RuntimeError,
)


def format_errors(func: Callable[P, R]) -> Callable[P, R]:
    """Decorate a parser so low-level failures surface as ``CorruptDataError``.

    Parsers raise specific ``ThermoscopeFormatError`` subclasses where they detect a problem; this
    catches what slips past them (a codec's ``ValueError``, ``struct.error``...) so that no
    traceback from deep inside NumPy or a codec reaches a user.
    """

    @functools.wraps(func)
    def wrapper(*args: P.args, **kwargs: P.kwargs) -> R:
        try:
            return func(*args, **kwargs)
        except ThermoscopeFormatError:
            raise
        except ThermoscopeError as exc:
            raise CorruptDataError(str(exc)) from exc
        except (struct.error, *_LOW_LEVEL_ERRORS) as exc:
            raise CorruptDataError(f"{type(exc).__name__}: {exc}") from exc

    return wrapper
