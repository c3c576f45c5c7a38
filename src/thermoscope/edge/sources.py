"""Where the agent's frames come from: each ``acquire`` returns one part's frame as file bytes.

Every source hands the agent what a camera would: the bytes of a radiometric file and its name,
so every part goes through the same decode (``thermoscope.pipeline.decode_bytes``) whatever its
origin.

- ``FolderSource``: files as a camera writes them into a folder (taken once their size has
  settled; moved to a ``done`` folder or deleted once the agent has recorded the part).
- ``SyntheticSource``: the synthetic production line, for demos and tests. In free-run it makes
  parts ``0..count-1`` at ``rate_hz``; under a trigger the trigger's id picks the part
  (``id % count``), so a part triggered again after a restart is the same part.
- ``ReplaySource``: files held in memory, replayed in turn (benchmarks, demos).
- ``GenICamSource``: a GenICam camera through ``harvesters`` and a GenTL producer; only where
  both are installed (``open`` says what is missing otherwise).
"""

from __future__ import annotations

import asyncio
import contextlib
import importlib
import io
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

import numpy as np

import thermoscope.io as tio
from thermoscope.core import ThermalFrame
from thermoscope.datasets.synthetic import ProductLine, SyntheticPart
from thermoscope.edge import EdgeError
from thermoscope.edge.config import (
    FolderSourceConfig,
    GenICamSourceConfig,
    SourceConfig,
    SyntheticSourceConfig,
)


class SourceError(EdgeError):
    """A source cannot deliver frames (names the source and why)."""


@dataclass(frozen=True)
class Capture:
    """One part's frame as a camera delivers it.

    Attributes:
        data: the file's bytes.
        filename: its name (the suffix tells its format).
        part_id: the part's name (a serial, the file's stem).
        captured_ns: when it was taken (``time.monotonic_ns()``, ns).
        truth: what a synthetic part really is (``index``, ``serial``, ``defects``), else empty.
        path: the file it came from (a folder source), else ``None``.
    """

    data: bytes
    filename: str
    part_id: str
    captured_ns: int
    truth: dict[str, Any] = field(default_factory=dict)
    path: Path | None = None


class FrameSource(Protocol):
    """Gives the agent one part's frame at a time."""

    async def open(self) -> None:
        """Get ready (connect a camera, check a folder)."""
        ...

    async def acquire(self, hint: int | None = None) -> Capture | None:
        """The next part's frame; ``hint`` is the trigger's id where there is one. ``None``
        when the source has no more parts (a finite run)."""
        ...

    async def done(self, capture: Capture) -> None:
        """The agent has recorded the part (a folder source moves or deletes its file)."""
        ...

    async def close(self) -> None:
        """Let go of the camera or folder."""
        ...


def encode_frames(frames: Sequence[ThermalFrame], suffix: str) -> bytes:
    """Frames (a part's recording) as the bytes of a ``suffix`` file."""
    return tio.registry.writer_for(f"x{suffix}").emit(list(frames))


class SyntheticSource:
    """The synthetic line as a camera (see the module docstring)."""

    def __init__(self, config: SyntheticSourceConfig, *, free_run: bool = True) -> None:
        self.config = config
        self.free_run = free_run
        self.line = ProductLine(
            config.product,
            rng=np.random.default_rng(config.seed),
            scale=config.scale,
            difficulty=config.difficulty,  # type: ignore[arg-type]  # checked by the config
        )
        self._plan = self.line.plan(config.count, defect_rate=config.defect_rate)
        self._next = 0
        self._due = 0.0

    def part(self, index: int) -> SyntheticPart:
        """Part ``index`` of the run (the same part every time)."""
        return self.line.part(index, defect=self._plan.get(index))

    def capture(self, index: int) -> Capture:
        """Part ``index`` as its camera file (synchronous; the agent calls it in a thread)."""
        part = self.part(index)
        data = encode_frames(part.frames, self.config.format)
        truth = {
            "index": index,
            "serial": part.serial,
            "defects": [d.kind for d in part.defects],
        }
        return Capture(
            data, f"{part.serial}{self.config.format}", part.serial, time.monotonic_ns(), truth
        )

    async def open(self) -> None:
        self._due = time.monotonic()

    async def acquire(self, hint: int | None = None) -> Capture | None:
        if hint is not None and not self.free_run:
            return await asyncio.to_thread(self.capture, hint % self.config.count)
        if self._next >= self.config.count:
            return None
        if self.config.rate_hz > 0:
            wait = self._due - time.monotonic()
            if wait > 0:
                await asyncio.sleep(wait)
            self._due = max(self._due, time.monotonic() - 1.0) + 1.0 / self.config.rate_hz
        index, self._next = self._next, self._next + 1
        return await asyncio.to_thread(self.capture, index)

    async def done(self, capture: Capture) -> None:
        return None

    async def close(self) -> None:
        return None


class ReplaySource:
    """Files held in memory, given out in turn (cycling) at ``rate_hz`` (0: at once), ``count``
    parts in all (``None``: without end)."""

    def __init__(
        self,
        files: Sequence[tuple[str, bytes]],
        *,
        rate_hz: float = 0.0,
        count: int | None = None,
    ) -> None:
        if not files:
            raise SourceError("replay source: no files to replay")
        self.files = list(files)
        self.rate_hz = rate_hz
        self.count = count
        self.given = 0
        self._due = 0.0

    async def open(self) -> None:
        self._due = time.monotonic()

    async def acquire(self, hint: int | None = None) -> Capture | None:
        if self.count is not None and self.given >= self.count:
            return None
        if self.rate_hz > 0:
            wait = self._due - time.monotonic()
            if wait > 0:
                await asyncio.sleep(wait)
            self._due = max(self._due, time.monotonic() - 1.0) + 1.0 / self.rate_hz
        name, data = self.files[self.given % len(self.files)]
        self.given += 1
        return Capture(data, name, Path(name).stem, time.monotonic_ns())

    async def done(self, capture: Capture) -> None:
        return None

    async def close(self) -> None:
        return None


class FolderSource:
    """New files in a folder, oldest first (see the module docstring)."""

    def __init__(self, config: FolderSourceConfig) -> None:
        self.config = config
        self._sizes: dict[Path, tuple[int, float]] = {}
        self._taken: set[Path] = set()

    async def open(self) -> None:
        folder = self.config.path
        if not folder.is_dir():
            raise SourceError(f"folder source {folder}: not a folder")
        if self.config.done is not None:
            try:
                self.config.done.mkdir(parents=True, exist_ok=True)
            except OSError as exc:
                raise SourceError(
                    f"folder source done {self.config.done}: {exc.strerror}"
                ) from None

    def _ready(self) -> Path | None:
        """The oldest file whose size has settled, if any (synchronous)."""
        now = time.monotonic()
        found: list[tuple[float, str, Path]] = []
        for path in self.config.path.glob(self.config.pattern):
            if path in self._taken or not path.is_file() or path.name.startswith("."):
                continue
            try:
                stat = path.stat()
            except OSError:
                continue  # gone meanwhile
            seen = self._sizes.get(path)
            if seen is None or seen[0] != stat.st_size:
                self._sizes[path] = (stat.st_size, now)
                if self.config.settle_s > 0:
                    continue
            elif now - seen[1] < self.config.settle_s:
                continue
            found.append((stat.st_mtime, path.name, path))
        return min(found)[2] if found else None

    async def acquire(self, hint: int | None = None) -> Capture | None:
        while True:
            path = await asyncio.to_thread(self._ready)
            if path is not None:
                try:
                    data = await asyncio.to_thread(path.read_bytes)
                except OSError:
                    self._sizes.pop(path, None)  # taken away meanwhile: look again
                    continue
                self._taken.add(path)
                self._sizes.pop(path, None)
                return Capture(data, path.name, path.stem, time.monotonic_ns(), path=path)
            await asyncio.sleep(self.config.poll_interval_s)

    async def done(self, capture: Capture) -> None:
        path = capture.path
        if path is None:
            return
        try:
            if self.config.done is None:
                await asyncio.to_thread(path.unlink)
            else:
                await asyncio.to_thread(path.replace, self.config.done / path.name)
        except FileNotFoundError:
            pass
        except OSError as exc:
            raise SourceError(
                f"folder source {path}: cannot move it away: {exc.strerror}"
            ) from None
        self._taken.discard(path)

    async def close(self) -> None:
        return None


class GenICamSource:
    """A GenICam camera through ``harvesters`` (see ``GenICamSourceConfig``): each buffer's
    16-bit counts become °C (``counts * kelvin_per_count + offset_k - 273.15``), handed on as a
    float32 ``.npy`` file."""

    def __init__(self, config: GenICamSourceConfig) -> None:
        self.config = config
        self._harvester: Any = None
        self._camera: Any = None
        self._count = 0

    async def open(self) -> None:
        try:
            harvesters = importlib.import_module("harvesters.core")
        except ImportError:
            raise SourceError(
                "genicam source: the harvesters package is not installed "
                "(pip install harvesters; see docs/edge.md)"
            ) from None
        producer = self.config.producer
        if not producer.is_file():
            raise SourceError(f"genicam source: no GenTL producer at {producer}")
        harvester = harvesters.Harvester()
        harvester.add_file(str(producer))
        harvester.update()
        wanted = {} if self.config.serial is None else {"serial_number": self.config.serial}
        try:
            camera = harvester.create(wanted)
        except (IndexError, ValueError) as exc:
            harvester.reset()
            raise SourceError(f"genicam source: no camera {wanted or ''} ({exc})") from None
        camera.start()
        self._harvester, self._camera = harvester, camera

    def _grab(self) -> bytes:
        with self._camera.fetch(timeout=self.config.timeout_s) as buffer:
            component = buffer.payload.components[0]
            counts = np.asarray(component.data, dtype=np.float32).reshape(
                component.height, component.width
            )
        kelvin = counts * np.float32(self.config.kelvin_per_count) + np.float32(
            self.config.offset_k
        )
        out = io.BytesIO()
        np.save(out, (kelvin - np.float32(273.15)).astype(np.float32))
        return out.getvalue()

    async def acquire(self, hint: int | None = None) -> Capture | None:
        if self._camera is None:
            raise SourceError("genicam source: acquire before open")
        data = await asyncio.to_thread(self._grab)
        self._count += 1
        name = f"frame-{self._count:08d}"
        return Capture(data, f"{name}.npy", name, time.monotonic_ns())

    async def done(self, capture: Capture) -> None:
        return None

    async def close(self) -> None:
        if self._camera is not None:
            with contextlib.suppress(Exception):  # a camera unplugged meanwhile
                self._camera.stop()
                self._camera.destroy()
            self._harvester.reset()
            self._camera = self._harvester = None


def make_source(config: SourceConfig, *, free_run: bool) -> FrameSource:
    """The source a configuration names."""
    if isinstance(config, SyntheticSourceConfig):
        return SyntheticSource(config, free_run=free_run)
    if isinstance(config, FolderSourceConfig):
        return FolderSource(config)
    return GenICamSource(config)
