"""Batch work on one process and on Ray give the same findings and statistics.

A few hundred small radiometric files (°C ``.npy``) with a hot box near the recipe's limit, a
broken file among them, and a dataset version: re-inspected with ``engine="local"`` (the
single-process ``decode_path`` → ``Pipeline`` path) and ``engine="ray"`` (Ray tasks decoding the
files' bytes with ``decode_bytes``) on a Ray runtime of 2 CPUs started once for this module.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from thermoscope.core import FrameMetadata, ThermalFrame, Verdict
from thermoscope.datasets.store import DatasetStore
from thermoscope.pipeline.scale import (
    BatchError,
    DatasetItems,
    frame_statistics,
    reinspect,
)
from thermoscope.recipes import Recipe, parse_recipe

H, W = 40, 60
FILES = 300


def _recipe(limit_c: float) -> Recipe:
    return parse_recipe(
        {
            "name": "board",
            "version": "3",
            "frame": {"width": W, "height": H},
            "regions": [{"name": "U3", "box": {"x": 10, "y": 5, "width": 10, "height": 8}}],
            "rules": [
                {"type": "max", "region": "U3", "limits": {"max": limit_c, "warn_max": limit_c - 4}}
            ],
        }
    )


def _image(u3_c: float) -> np.ndarray:
    image = np.full((H, W), 20.0, np.float32)
    image[5:13, 10:20] = u3_c
    image[0, 0] = np.nan  # a dead pixel: statistics count finite pixels only
    return image


@pytest.fixture(scope="module")
def files(tmp_path_factory: pytest.TempPathFactory) -> list[Path]:
    folder = tmp_path_factory.mktemp("frames")
    rng = np.random.default_rng(7)
    paths = []
    for i in range(FILES):
        path = folder / f"part{i:04d}.npy"
        np.save(path, _image(float(rng.uniform(55.0, 85.0))))
        paths.append(path)
    broken = folder / "part-broken.npy"
    broken.write_bytes(b"\x93NUMPY not really")
    paths.insert(FILES // 2, broken)
    return paths


@pytest.fixture(scope="module")
def ray_runtime() -> Iterator[Any]:
    ray = pytest.importorskip("ray", reason="the 'ray' extra is not installed")
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
    yield ray
    ray.shutdown()


@pytest.mark.slow
def test_reinspection_on_ray_gives_the_local_findings(files: list[Path], ray_runtime: Any) -> None:
    recipe = _recipe(68.0)  # "what if the limit had been 2 °C lower"
    local = reinspect(files, recipe, engine="local")
    on_ray = reinspect(files, recipe, engine="ray", chunk=32)
    assert len(local.inspections) == FILES
    assert [i.to_json() for i in on_ray.inspections] == [i.to_json() for i in local.inspections]
    assert on_ray.failures == local.failures
    assert [name for name, _ in local.failures] == [str(files[FILES // 2])]
    verdicts = {i.verdict for i in local.inspections}
    assert verdicts == {Verdict.OK, Verdict.WARN, Verdict.NG}
    laxer = reinspect(files, _recipe(70.0), engine="ray")
    ng = sum(i.verdict is Verdict.NG for i in local.inspections)
    assert sum(i.verdict is Verdict.NG for i in laxer.inspections) < ng

    stats = frame_statistics(files, engine="local")
    stats_ray = frame_statistics(files, engine="ray")
    assert stats_ray.frames == stats.frames
    assert np.array_equal(stats_ray.counts, stats.counts)
    assert int(stats.counts.sum()) == FILES * (H * W - 1)
    hot = stats.frames[0]
    assert (hot.min_c, hot.pixels) == (20.0, H * W - 1)


@pytest.mark.slow
def test_dataset_version_on_ray(tmp_path: Path, ray_runtime: Any) -> None:
    store = DatasetStore.create(tmp_path / "ds", name="boards")
    for u3 in (60.0, 69.0, 80.0):
        store.add(ThermalFrame(_image(u3), metadata=FrameMetadata()))
    version = store.working()
    items = DatasetItems(tmp_path / "ds", version)
    local = reinspect(items, _recipe(70.0))
    on_ray = reinspect(items, _recipe(70.0), engine="ray")
    assert [i.to_json() for i in on_ray.inspections] == [i.to_json() for i in local.inspections]
    assert sorted(i.verdict.value for i in local.inspections) == ["NG", "OK", "WARN"]


def test_options_are_checked(files: list[Path]) -> None:
    with pytest.raises(BatchError, match="engine 'spark'"):
        reinspect(files[:2], _recipe(70.0), engine="spark")  # type: ignore[arg-type]
    with pytest.raises(BatchError, match="needs a recipe, a model or both"):
        reinspect(files[:2], None)
    with pytest.raises(BatchError, match="not usable"):
        frame_statistics(files[:2], range_c=(10.0, 10.0))
