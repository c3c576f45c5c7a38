"""FeatureIndex: exact nearest annotated examples, references kept, safe file round trip."""

from __future__ import annotations

import io

import numpy as np
import pytest

from thermoscope.models.errors import ModelError
from thermoscope.models.explain import (
    INDEX_FILE,
    MAX_INDEX_BYTES,
    METRICS,
    FeatureIndex,
    Neighbour,
    neighbours_json,
)


def random_index(metric: str, m: int = 500, d: int = 16) -> tuple[FeatureIndex, np.ndarray]:
    rng = np.random.default_rng(3)
    vectors = rng.normal(size=(m, d)).astype(np.float32)
    index = FeatureIndex(
        vectors,
        [f"frame-{i}" for i in range(m)],
        np.arange(m),
        np.arange(m) * 2,
        ["cold_joint" if i % 3 == 0 else "ok" for i in range(m)],
        metric=metric,
    )
    return index, vectors


@pytest.mark.parametrize("metric", METRICS)
def test_nearest_is_exact(metric: str) -> None:
    index, vectors = random_index(metric)
    query = np.random.default_rng(4).normal(size=16).astype(np.float32)
    if metric == "cosine":
        unit = vectors / np.linalg.norm(vectors, axis=1, keepdims=True)
        brute = 1.0 - unit @ (query / np.linalg.norm(query))
    else:
        brute = np.linalg.norm(vectors - query, axis=1)
    expected = np.argsort(brute)[:5]
    found = index.nearest(query, k=5)
    assert [n.frame_id for n in found] == [f"frame-{i}" for i in expected]
    np.testing.assert_allclose([n.distance for n in found], brute[expected], rtol=1e-4, atol=1e-4)
    first = found[0]
    assert (first.x, first.y) == (int(expected[0]), int(expected[0]) * 2)
    assert first.label == ("cold_joint" if expected[0] % 3 == 0 else "ok")


def test_a_stored_vector_is_its_own_nearest_and_k_is_capped() -> None:
    index, vectors = random_index("l2", m=4)
    (n,) = index.nearest(vectors[2], k=1)
    assert n.frame_id == "frame-2"
    assert n.distance == pytest.approx(0.0, abs=1e-3)
    assert len(index.nearest(vectors[0], k=10)) == len(index) == 4
    batch = index.nearest_batch(vectors[:3], k=2)
    assert [b[0].frame_id for b in batch] == ["frame-0", "frame-1", "frame-2"]


def test_file_round_trip_without_pickles() -> None:
    index, vectors = random_index("cosine", m=50)
    data = index.to_bytes()
    again = FeatureIndex.from_bytes(data)
    assert again.metric == "cosine"
    assert again.dim == 16
    assert index.nearest(vectors[7], k=3) == again.nearest(vectors[7], k=3)
    with np.load(io.BytesIO(data), allow_pickle=False) as npz:
        assert all(npz[name].dtype != object for name in npz.files)


def test_bad_index_files_are_refused() -> None:
    with pytest.raises(ModelError, match=f"{INDEX_FILE}: not a feature index"):
        FeatureIndex.from_bytes(b"not a zip")
    buf = io.BytesIO()
    np.savez(buf, vectors=np.zeros((2, 3)))
    with pytest.raises(ModelError, match="missing"):
        FeatureIndex.from_bytes(buf.getvalue())
    buf = io.BytesIO()
    np.savez(
        buf,
        vectors=np.zeros((2, 3)),
        frame_ids=np.array([1, 2]),
        xs=np.zeros(2, int),
        ys=np.zeros(2, int),
        labels=np.array(["a", "b"]),
        metric=np.array("l2"),
    )
    with pytest.raises(ModelError, match="must be strings"):
        FeatureIndex.from_bytes(buf.getvalue())
    buf = io.BytesIO()
    np.savez(
        buf,
        vectors=np.zeros((2, 3)),
        frame_ids=np.array(["a", "b"], dtype=object),
        xs=np.zeros(2, int),
        ys=np.zeros(2, int),
        labels=np.array(["a", "b"]),
        metric=np.array("l2"),
    )
    with pytest.raises(ModelError, match="not a feature index"):
        FeatureIndex.from_bytes(buf.getvalue())
    assert MAX_INDEX_BYTES >= 1 << 20


def test_inconsistent_indexes_and_queries_are_refused() -> None:
    with pytest.raises(ModelError, match=r"\(M, D\)"):
        FeatureIndex(np.zeros(3), ["a"], [0], [0], ["x"])
    with pytest.raises(ModelError, match="frame_ids must hold 2 entries"):
        FeatureIndex(np.zeros((2, 3)), ["a"], [0, 0], [0, 0], ["x", "y"])
    with pytest.raises(ModelError, match="finite"):
        FeatureIndex(np.full((1, 2), np.nan), ["a"], [0], [0], ["x"])
    with pytest.raises(ModelError, match="metric"):
        FeatureIndex(np.zeros((1, 2)), ["a"], [0], [0], ["x"], metric="manhattan")
    with pytest.raises(ModelError, match="integer pixel positions"):
        FeatureIndex(np.zeros((1, 2)), ["a"], [0.5], [0], ["x"])
    index = FeatureIndex(np.ones((1, 2)), ["a"], [0], [0], ["x"])
    with pytest.raises(ModelError, match=r"\(Q, 2\)"):
        index.nearest(np.zeros(3))
    with pytest.raises(ModelError, match="positive integer"):
        index.nearest(np.zeros(2), k=0)


def test_neighbours_as_json() -> None:
    n = Neighbour("f1", 3, 4, "crack", 0.123456789)
    assert n.to_json() == {
        "frame_id": "f1",
        "x": 3,
        "y": 4,
        "label": "crack",
        "distance": 0.123456789,
    }
    assert neighbours_json([n])[0]["distance"] == 0.123457
