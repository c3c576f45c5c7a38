"""Nearest annotated examples: a feature index that maps each stored vector to its frame and spot.

"Looks like these 3 confirmed cold joints": every vector in a ``FeatureIndex`` comes from an
annotated frame of the ground-truth library (a whole-frame embedding, or a patch feature at a
position) and keeps a reference to it (frame id, x, y, label). ``nearest`` does an exact
k-nearest-neighbour search in NumPy (cosine or Euclidean distance): one matrix-vector product
and a partial sort, a few milliseconds for 100 000 vectors of 128 floats.

The index travels inside a release as ``index.npz`` (``to_bytes`` / ``from_bytes``: plain
arrays, no pickles).
"""

from __future__ import annotations

import io
import math
import zipfile
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np
from numpy.typing import ArrayLike, NDArray

from thermoscope.models.errors import ModelError

Metric = Literal["cosine", "l2"]
METRICS: tuple[Metric, ...] = ("cosine", "l2")
#: Name of the index file inside a release.
INDEX_FILE = "index.npz"
_ARRAYS = ("vectors", "frame_ids", "xs", "ys", "labels", "metric")
#: Largest index file read, bytes (100 000 x 512 float32 is 205 MB).
MAX_INDEX_BYTES = 1 << 30


@dataclass(frozen=True, slots=True)
class Neighbour:
    """One nearest annotated example.

    Attributes:
        frame_id: id of the frame in the ground-truth library.
        x, y: pixel (column, row) of the feature in that frame (-1 for whole-frame vectors).
        label: its confirmed label (``"cold_joint"``, ``"ok"`` ...).
        distance: cosine distance (1 - cos, in [0, 2]) or Euclidean distance.
    """

    frame_id: str
    x: int
    y: int
    label: str
    distance: float

    def to_json(self) -> dict[str, Any]:
        """The neighbour as a JSON object (keys frame_id, x, y, label, distance)."""
        return {
            "frame_id": self.frame_id,
            "x": self.x,
            "y": self.y,
            "label": self.label,
            "distance": self.distance,
        }


class FeatureIndex:
    """Feature vectors with their references, searched exactly.

    Args:
        vectors: (M, D) feature vectors (any float type; stored float32), finite.
        frame_ids: M frame ids.
        xs, ys: M pixel positions in their frames (-1 for whole-frame vectors).
        labels: M labels.
        metric: ``"cosine"`` (vectors compared by direction) or ``"l2"``.

    Raises:
        ModelError: shapes disagree, a vector is not finite, or the metric is unknown.
    """

    def __init__(
        self,
        vectors: ArrayLike,
        frame_ids: Sequence[str],
        xs: ArrayLike,
        ys: ArrayLike,
        labels: Sequence[str],
        *,
        metric: str = "cosine",
    ) -> None:
        v = np.asarray(vectors)
        if v.ndim != 2 or v.shape[1] == 0:
            raise ModelError(f"index vectors must be (M, D) with D >= 1, got shape {v.shape}")
        if not (np.issubdtype(v.dtype, np.floating) or np.issubdtype(v.dtype, np.integer)):
            raise ModelError(f"index vectors must be numeric, got dtype {v.dtype}")
        v = np.ascontiguousarray(v, dtype=np.float32)
        if not np.isfinite(v).all():
            raise ModelError("index vectors must be finite")
        if metric not in METRICS:
            raise ModelError(f"index metric must be one of {METRICS}, got {metric!r}")
        m = v.shape[0]
        self.frame_ids = np.asarray(list(frame_ids), dtype=str)
        self.labels = np.asarray(list(labels), dtype=str)
        self.xs = _positions(xs, "xs")
        self.ys = _positions(ys, "ys")
        for name, arr in (
            ("frame_ids", self.frame_ids),
            ("labels", self.labels),
            ("xs", self.xs),
            ("ys", self.ys),
        ):
            if arr.shape != (m,):
                raise ModelError(f"index {name} must hold {m} entries, got shape {arr.shape}")
        self.metric: Metric = "cosine" if metric == "cosine" else "l2"
        self.vectors = v
        if self.metric == "cosine":
            norms = np.linalg.norm(v, axis=1, keepdims=True)
            self._search = v / np.maximum(norms, 1e-12)
            self._sq_norms = np.zeros(0, dtype=np.float32)
        else:
            self._search = v
            self._sq_norms = np.einsum("ij,ij->i", v, v)

    def __len__(self) -> int:
        return int(self.vectors.shape[0])

    @property
    def dim(self) -> int:
        """Vector length D."""
        return int(self.vectors.shape[1])

    def nearest(self, vector: ArrayLike, k: int = 3) -> list[Neighbour]:
        """The ``k`` stored examples nearest ``vector`` (D,), nearest first.

        Raises:
            ModelError: the vector's length is not ``dim`` or it is not finite.
        """
        return self.nearest_batch(np.asarray(vector, dtype=np.float32).reshape(1, -1), k)[0]

    def nearest_batch(self, vectors: ArrayLike, k: int = 3) -> list[list[Neighbour]]:
        """The ``k`` nearest examples of each query (Q, D), nearest first."""
        q = np.asarray(vectors, dtype=np.float32)
        if q.ndim != 2 or q.shape[1] != self.dim:
            raise ModelError(f"query vectors must be (Q, {self.dim}), got shape {q.shape}")
        if not np.isfinite(q).all():
            raise ModelError("query vectors must be finite")
        if isinstance(k, bool) or not isinstance(k, int) or k < 1:
            raise ModelError(f"k must be a positive integer, got {k!r}")
        k = min(k, len(self))
        if k == 0:
            return [[] for _ in range(q.shape[0])]
        distances = self._distances(q)
        if k < len(self):
            part = np.argpartition(distances, k - 1, axis=1)[:, :k]
        else:
            part = np.broadcast_to(np.arange(len(self)), (q.shape[0], len(self)))
        out: list[list[Neighbour]] = []
        for row, idx in zip(distances, part, strict=True):
            order = idx[np.argsort(row[idx], kind="stable")]
            out.append(
                [
                    Neighbour(
                        frame_id=str(self.frame_ids[i]),
                        x=int(self.xs[i]),
                        y=int(self.ys[i]),
                        label=str(self.labels[i]),
                        distance=float(row[i]),
                    )
                    for i in order
                ]
            )
        return out

    def _distances(self, q: NDArray[np.float32]) -> NDArray[np.float32]:
        if self.metric == "cosine":
            qn = q / np.maximum(np.linalg.norm(q, axis=1, keepdims=True), 1e-12)
            d: NDArray[np.float32] = 1.0 - qn @ self._search.T
            return np.clip(d, 0.0, 2.0)
        sq = np.einsum("ij,ij->i", q, q)[:, None] - 2.0 * (q @ self._search.T) + self._sq_norms
        root: NDArray[np.float32] = np.sqrt(np.maximum(sq, 0.0))
        return root

    def to_bytes(self) -> bytes:
        """The index as ``.npz`` bytes (``index.npz`` in a release)."""
        buf = io.BytesIO()
        np.savez_compressed(
            buf,
            vectors=self.vectors,
            frame_ids=self.frame_ids,
            xs=self.xs,
            ys=self.ys,
            labels=self.labels,
            metric=np.asarray(self.metric),
        )
        return buf.getvalue()

    @classmethod
    def from_bytes(cls, data: bytes, *, source: str = INDEX_FILE) -> FeatureIndex:
        """The index of ``to_bytes`` output.

        Raises:
            ModelError: naming ``source``: not an index file, missing arrays, or bad shapes.
        """
        if len(data) > MAX_INDEX_BYTES:
            raise ModelError(f"{source}: larger than {MAX_INDEX_BYTES} bytes")
        try:
            with np.load(io.BytesIO(data), allow_pickle=False) as npz:
                missing = [name for name in _ARRAYS if name not in npz.files]
                if missing:
                    raise ModelError(f"{source}: not a feature index (missing {missing})")
                arrays = {name: npz[name] for name in _ARRAYS}
        except ModelError:
            raise
        except (ValueError, OSError, EOFError, zipfile.BadZipFile, KeyError) as exc:
            raise ModelError(f"{source}: not a feature index ({exc})") from None
        if arrays["frame_ids"].dtype.kind != "U" or arrays["labels"].dtype.kind != "U":
            raise ModelError(f"{source}: frame_ids and labels must be strings")
        try:
            return cls(
                arrays["vectors"],
                [str(s) for s in arrays["frame_ids"].reshape(-1)],
                arrays["xs"],
                arrays["ys"],
                [str(s) for s in arrays["labels"].reshape(-1)],
                metric=str(arrays["metric"]),
            )
        except ModelError as exc:
            raise ModelError(f"{source}: {exc}") from None


def _positions(values: ArrayLike, name: str) -> NDArray[np.int32]:
    a = np.asarray(values)
    if a.size and not np.issubdtype(a.dtype, np.integer):
        raise ModelError(f"index {name} must be integer pixel positions, got dtype {a.dtype}")
    return a.astype(np.int32).reshape(-1)


def neighbours_json(neighbours: Sequence[Neighbour]) -> list[dict[str, Any]]:
    """Neighbours as JSON objects, distances rounded to 6 decimals (finite only)."""
    return [
        {**n.to_json(), "distance": round(n.distance, 6) if math.isfinite(n.distance) else None}
        for n in neighbours
    ]


__all__ = ["INDEX_FILE", "METRICS", "FeatureIndex", "Metric", "Neighbour", "neighbours_json"]
