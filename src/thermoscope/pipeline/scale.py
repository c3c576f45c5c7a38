"""Batch work over many files or a dataset version, on one process or on Ray.

``reinspect`` inspects every part again with a recipe (and/or a model: ``recipe=None`` runs a
model over every frame), ``frame_statistics`` gives each frame's °C minimum, maximum and mean
and one histogram over all of them. Both take ``engine="local"`` (this process, the same path
as ``batch.inspect_files``: ``decode_path`` → ``Pipeline.inspect_part``) or ``engine="ray"``
(Ray tasks, each reading its files' bytes and decoding them with our own ``decode_bytes``, so
temperatures are never lost to an image reader). Ray is an optional extra (``pip install
thermoscope[ray]``), imported only when ``engine="ray"``; a Ray runtime already started
(``ray.init``) is used as it is, otherwise one is started on this machine with ``workers`` CPUs.

Results come back in input order whichever engine ran them, and the same input gives the same
findings on both (tests/test_batch_engines.py compares them).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import numpy as np

from thermoscope.core import Inspection, ThermalFrame, ThermoscopeError
from thermoscope.datasets.store import DatasetStore
from thermoscope.datasets.versions import Version
from thermoscope.pipeline.decode import DecodedPart, FrameKeep, decode_bytes, decode_path
from thermoscope.pipeline.errors import PipelineError
from thermoscope.pipeline.part import PartModel, Pipeline
from thermoscope.recipes import Recipe

#: The engines a batch runs on.
Engine = Literal["local", "ray"]
ENGINES: tuple[Engine, ...] = ("local", "ray")
#: Parts per Ray task: enough that a task's start-up cost is small beside its work.
DEFAULT_CHUNK = 64
#: Default histogram range, °C, and bin count of ``frame_statistics``.
DEFAULT_RANGE_C = (-40.0, 200.0)
DEFAULT_BINS = 240


@dataclass(frozen=True, slots=True)
class DatasetItems:
    """The items of a dataset version as batch inputs (each item is one part).

    Attributes:
        root: the dataset's folder (``DatasetStore.open`` opens it inside each task).
        version: the version whose items are read, in its order.
    """

    root: Path
    version: Version


#: What a batch takes: files (one part each) or a dataset version's items.
Inputs = Sequence[Path] | DatasetItems


@dataclass(frozen=True, slots=True)
class _Unit:
    """One part to read: a file, or a dataset item's frames."""

    name: str
    path: Path | None = None
    root: Path | None = None
    frames: tuple[str, ...] = ()


@dataclass(slots=True)
class ReinspectResult:
    """What a re-inspection found, in input order.

    Attributes:
        inspections: one per part inspected.
        failures: ``(part, reason)`` for parts that could not be read or inspected.
    """

    inspections: list[Inspection] = field(default_factory=list)
    failures: list[tuple[str, str]] = field(default_factory=list)


@dataclass(frozen=True, slots=True)
class FrameStats:
    """One frame's °C statistics over its finite pixels (``nan`` when it has none).

    Attributes:
        source: the part (file or dataset item) it belongs to.
        index: its frame index in the part.
        min_c, max_c, mean_c: minimum, maximum and mean, °C.
        pixels: finite pixels counted.
    """

    source: str
    index: int
    min_c: float
    max_c: float
    mean_c: float
    pixels: int


@dataclass(slots=True)
class DatasetStatistics:
    """Per-frame statistics and one histogram over every finite pixel of every frame.

    Attributes:
        frames: one per frame, in input order.
        edges_c: histogram bin edges, °C (``bins + 1`` values).
        counts: pixels per bin (pixels outside the range are not counted).
        failures: ``(part, reason)`` for parts that could not be read.
    """

    frames: list[FrameStats]
    edges_c: np.ndarray
    counts: np.ndarray
    failures: list[tuple[str, str]] = field(default_factory=list)


class BatchError(ThermoscopeError, ValueError):
    """A batch cannot run: an unknown engine, Ray not installed, a bad option."""


def reinspect(
    inputs: Inputs,
    recipe: Recipe | None,
    *,
    model: PartModel | None = None,
    ambient_c: float | None = None,
    engine: Engine = "local",
    workers: int | None = None,
    chunk: int = DEFAULT_CHUNK,
) -> ReinspectResult:
    """Inspect every part again with ``recipe`` (and ``model``, which must pickle for Ray).

    Args:
        inputs: files (one part each) or ``DatasetItems``.
        recipe: the recipe; ``None`` runs only ``model`` over every part.
        model: a learned model whose findings join the recipe's.
        ambient_c: an ambient reading in °C for every part.
        engine: ``"local"`` (this process) or ``"ray"``.
        workers: CPUs of a Ray runtime started here (default: all); ignored locally.
        chunk: parts per Ray task.

    Raises:
        BatchError: no recipe and no model, an unknown engine, Ray missing.
        RecipeError: the recipe does not compile.
    """
    if recipe is None and model is None:
        raise BatchError("reinspect needs a recipe, a model or both")
    Pipeline(recipe, model)  # a recipe that does not compile fails here, before any work
    outcomes = _run(_units(inputs), _inspect_chunk, (recipe, model, ambient_c, engine), engine,
                    workers, chunk)  # fmt: skip
    result = ReinspectResult()
    for name, outcome in outcomes:
        if isinstance(outcome, Inspection):
            result.inspections.append(outcome)
        else:
            result.failures.append((name, outcome))
    return result


def frame_statistics(
    inputs: Inputs,
    *,
    range_c: tuple[float, float] = DEFAULT_RANGE_C,
    bins: int = DEFAULT_BINS,
    engine: Engine = "local",
    workers: int | None = None,
    chunk: int = DEFAULT_CHUNK,
) -> DatasetStatistics:
    """Each frame's °C min/max/mean and a histogram of every finite pixel in ``range_c``.

    Raises:
        BatchError: an empty range or no bins, an unknown engine, Ray missing.
    """
    low, high = range_c
    if not (math.isfinite(low) and math.isfinite(high) and low < high) or bins < 1:
        raise BatchError(f"histogram range {range_c} °C with {bins} bins is not usable")
    edges = np.linspace(low, high, bins + 1)
    outcomes = _run(_units(inputs), _stats_chunk, (edges, engine), engine, workers, chunk)
    stats = DatasetStatistics(frames=[], edges_c=edges, counts=np.zeros(bins, np.int64))
    for name, outcome in outcomes:
        if isinstance(outcome, str):
            stats.failures.append((name, outcome))
            continue
        frames, counts = outcome
        stats.frames.extend(frames)
        stats.counts += counts
    return stats


def _units(inputs: Inputs) -> list[_Unit]:
    if isinstance(inputs, DatasetItems):
        return [_Unit(item.id, root=inputs.root, frames=item.frames) for item in inputs.version]
    return [_Unit(str(path), path=Path(path)) for path in inputs]


def _run(
    units: list[_Unit],
    work: Callable[[list[_Unit], Any], list[tuple[str, Any]]],
    args: Any,
    engine: Engine,
    workers: int | None,
    chunk: int,
) -> list[tuple[str, Any]]:
    """``work`` over ``units`` in chunks, here or as Ray tasks; results in input order."""
    if engine not in ENGINES:
        raise BatchError(f"engine {engine!r} is not one of {', '.join(ENGINES)}")
    if chunk < 1:
        raise BatchError(f"chunk {chunk} must be at least 1")
    chunks = [units[i : i + chunk] for i in range(0, len(units), chunk)]
    if engine == "local":
        return [out for part in chunks for out in work(part, args)]
    ray = _ray(workers)
    remote = ray.remote(work)
    shared = ray.put(args)
    pending = [remote.remote(part, shared) for part in chunks]
    return [out for part in ray.get(pending) for out in part]


def _ray(workers: int | None) -> Any:
    try:
        import ray
    except ImportError:
        raise BatchError("engine 'ray' needs Ray: pip install 'thermoscope[ray]'") from None
    if not ray.is_initialized():
        ray.init(num_cpus=workers, include_dashboard=False, log_to_driver=False)
    return ray


def _decoded(
    unit: _Unit, from_bytes: bool, keep: FrameKeep | None = None
) -> DecodedPart | list[ThermalFrame]:
    """The unit's part: a file decoded (from its bytes inside Ray tasks, lazily from disk
    locally) keeping the frames ``keep`` names, or a dataset item's frames."""
    if unit.root is not None:
        store = DatasetStore.open(unit.root)
        return [store.load_frame(fid) for fid in unit.frames]
    assert unit.path is not None
    if not from_bytes:
        return decode_path(unit.path, keep=keep)
    try:
        data = unit.path.read_bytes()
    except OSError as exc:
        raise PipelineError(unit.name, f"cannot read: {exc.strerror or exc}") from None
    return decode_bytes(data, unit.name, keep=keep)


def _frames(part: DecodedPart | list[ThermalFrame]) -> Iterator[ThermalFrame]:
    if isinstance(part, list):
        yield from part
    else:
        for index in range(part.frame_count):
            yield part.frame(index)


def _close(part: DecodedPart | list[ThermalFrame]) -> None:
    if isinstance(part, DecodedPart):
        part.close()


def _inspect_chunk(units: list[_Unit], args: Any) -> list[tuple[str, Any]]:
    """Inspect each unit: ``(name, Inspection)`` or ``(name, reason)``."""
    recipe, model, ambient_c, engine = args
    pipeline = Pipeline(recipe, model)
    out: list[tuple[str, Any]] = []
    for unit in units:
        try:
            part = _decoded(unit, engine == "ray", pipeline.frames_needed)
            try:
                out.append((unit.name, pipeline.inspect_part(part, source=unit.name,
                                                            ambient_c=ambient_c)))  # fmt: skip
            finally:
                _close(part)
        except (ThermoscopeError, OSError) as exc:
            out.append((unit.name, _reason(unit.name, exc)))
    return out


def _stats_chunk(units: list[_Unit], args: Any) -> list[tuple[str, Any]]:
    """Each unit's frame statistics and histogram counts, or ``(name, reason)``."""
    edges, engine = args
    out: list[tuple[str, Any]] = []
    for unit in units:
        try:
            part = _decoded(unit, engine == "ray")
        except (ThermoscopeError, OSError) as exc:
            out.append((unit.name, _reason(unit.name, exc)))
            continue
        try:
            frames: list[FrameStats] = []
            counts = np.zeros(len(edges) - 1, np.int64)
            for index, frame in enumerate(_frames(part)):
                finite = frame.celsius[np.isfinite(frame.celsius)].astype(np.float64)
                frames.append(_frame_stats(unit.name, index, finite))
                counts += np.histogram(finite, bins=edges)[0]
            out.append((unit.name, (frames, counts)))
        finally:
            _close(part)
    return out


def _frame_stats(source: str, index: int, finite: np.ndarray) -> FrameStats:
    if not finite.size:
        return FrameStats(source, index, math.nan, math.nan, math.nan, 0)
    return FrameStats(source, index, float(finite.min()), float(finite.max()),
                      float(finite.mean()), int(finite.size))  # fmt: skip


def _reason(name: str, exc: BaseException) -> str:
    message = str(exc)
    return message if name in message else f"{name}: {message}"
