"""``ThermalSequence``: an indexable, lazily read series of frames."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from types import TracebackType

from thermoscope.core.errors import ThermoscopeError
from thermoscope.core.frame import ThermalFrame


class ThermalSequence:
    """Frames of a multi-frame recording, decoded one at a time on access.

    A reader builds it from a frame count and a function that decodes frame ``i``; nothing is
    decoded until asked for, so a sequence of any length costs only its index in memory.
    """

    def __init__(
        self,
        length: int,
        read_frame: Callable[[int], ThermalFrame],
        *,
        source: str = "",
        close: Callable[[], None] | None = None,
        issues: tuple[str, ...] = (),
    ) -> None:
        self._length = length
        self._read_frame = read_frame
        self._close = close
        self.source = source
        #: Problems found while indexing that did not stop the readable frames (e.g. a
        #: truncated last frame); callers report them.
        self.issues = issues

    def __len__(self) -> int:
        return self._length

    def __getitem__(self, index: int) -> ThermalFrame:
        if index < 0:
            index += self._length
        if not 0 <= index < self._length:
            raise IndexError(f"frame {index} out of range for {self._length} frames")
        return self._read_frame(index)

    def __iter__(self) -> Iterator[ThermalFrame]:
        for i in range(self._length):
            yield self._read_frame(i)

    def close(self) -> None:
        """Release the underlying file, if any."""
        if self._close is not None:
            self._close()
            self._close = None

    def __enter__(self) -> ThermalSequence:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    @classmethod
    def of(cls, frames: list[ThermalFrame], *, source: str = "") -> ThermalSequence:
        """A sequence over frames already in memory."""
        if not frames:
            raise ThermoscopeError("a sequence needs at least one frame")
        return cls(len(frames), frames.__getitem__, source=source)
