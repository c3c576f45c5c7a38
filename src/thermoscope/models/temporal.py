"""Model family 4: heating / cooling sequences judged from their region curves.

A part's recording (frames over time) becomes a small array of curves: for each named region
and each statistic (mean, max, min) the region's temperature per frame, in °C above the
ambient, resampled to a fixed number of points over the recording (``CurveFeatures``, which
uses ``thermoscope.analysis.temporal.series_statistic``, the recipes' curve code). A small
multi-layer perceptron, trained with NumPy alone (full-batch Adam, class-balanced softmax
cross-entropy, seeded), maps the curves to classes (``"ok"`` and the defect kinds).

Exported to ONNX with ``onnx.helper`` (no training framework needed): one input ``input``,
float32 (N, C, T) curves as ``CurveFeatures.extract`` gives them, one output ``logits``
(N, K); the standardisation is inside the graph, so NumPy and ONNX Runtime agree to float
rounding.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import onnx
from numpy.typing import ArrayLike, NDArray
from onnx import TensorProto, helper, numpy_helper

from thermoscope.analysis.temporal import series_statistic
from thermoscope.core import Box, Polygon, ThermalFrame
from thermoscope.core.regions import Region, RegionError
from thermoscope.models.contract import InputContract
from thermoscope.models.errors import ModelError

#: Statistics a curve may follow: plain ones (``series_statistic``) and percentiles "p01" to
#: "p99" ("p05": 5th), which a few pixels of a shifted part's edge cannot move.
PLAIN_STATISTICS = ("mean", "max", "min", "median")
#: The statistics of each region that make its curves unless told otherwise.
STATISTICS = ("mean", "max", "min", "p05", "p95")
#: ONNX opset of exported temporal models.
OPSET = 17
#: Release file holding a temporal model's curve settings (``CurveFeatures.to_dict``).
CURVES_FILE = "curves.json"

_F32 = NDArray[np.float32]
_F64 = NDArray[np.float64]


def region_to_dict(region: Region) -> dict[str, Any]:
    """``{"box": [x, y, width, height]}`` or ``{"polygon": [[x, y], ...]}`` (pixels)."""
    if isinstance(region, Box):
        return {"box": [region.x, region.y, region.width, region.height]}
    if isinstance(region, Polygon):
        return {"polygon": [list(p) for p in region.points]}
    raise ModelError(f"temporal model: region {region!r} is neither a box nor a polygon")


def region_from_dict(data: Mapping[str, Any], name: str) -> Box | Polygon:
    """The region ``region_to_dict`` wrote; ``ModelError`` naming ``name`` when malformed."""
    try:
        if set(data) == {"box"}:
            x, y, w, h = (int(v) for v in data["box"])
            return Box(x, y, w, h)
        if set(data) == {"polygon"}:
            return Polygon(tuple((float(x), float(y)) for x, y in data["polygon"]))
    except (TypeError, ValueError, RegionError) as exc:
        raise ModelError(f"temporal model: region {name!r}: {exc}") from None
    raise ModelError(f"temporal model: region {name!r} wants one key, box or polygon")


@dataclass(frozen=True, slots=True, eq=False)
class CurveFeatures:
    """How a recording becomes curves: regions, statistics and resampling.

    Attributes:
        regions: region geometry by name, in frame pixels.
        shape: (height, width) of the frames, pixels.
        points: samples per curve after resampling over the recording's time span.
        statistics: statistics per region (from ``STATISTICS``).
    """

    regions: Mapping[str, Box | Polygon]
    shape: tuple[int, int]
    points: int = 8
    statistics: tuple[str, ...] = STATISTICS
    _masks: dict[str, tuple[slice, slice, NDArray[np.bool_]]] = field(
        default_factory=dict, repr=False
    )

    def __post_init__(self) -> None:
        if not self.regions:
            raise ModelError("temporal model: no regions to follow")
        if self.points < 2:
            raise ModelError(f"temporal model: points must be >= 2, got {self.points}")
        unknown = [s for s in self.statistics if not _known_statistic(s)]
        if unknown or not self.statistics:
            raise ModelError(
                f"temporal model: unknown statistics {unknown}; use {PLAIN_STATISTICS} or p01..p99"
            )
        for name, region in self.regions.items():
            try:
                mask = region.mask(self.shape)
            except RegionError as exc:
                raise ModelError(f"temporal model: region {name!r}: {exc}") from None
            rows, cols = np.flatnonzero(mask.any(axis=1)), np.flatnonzero(mask.any(axis=0))
            if rows.size == 0:
                raise ModelError(f"temporal model: region {name!r} covers no pixel")
            ys = slice(int(rows[0]), int(rows[-1]) + 1)
            xs = slice(int(cols[0]), int(cols[-1]) + 1)
            self._masks[name] = (ys, xs, mask[ys, xs])

    @property
    def channels(self) -> int:
        """Curves per recording: regions x statistics."""
        return len(self.regions) * len(self.statistics)

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON-ready data (stored in a release)."""
        return {
            "regions": {name: region_to_dict(r) for name, r in self.regions.items()},
            "shape": list(self.shape),
            "points": self.points,
            "statistics": list(self.statistics),
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> CurveFeatures:
        """Strict inverse of ``to_dict``: unknown or missing keys are a ``ModelError``."""
        keys = {"regions", "shape", "points", "statistics"}
        if set(data) != keys:
            raise ModelError(f"temporal model: curve settings want keys {sorted(keys)}")
        regions = {str(n): region_from_dict(r, str(n)) for n, r in dict(data["regions"]).items()}
        height, width = (int(v) for v in data["shape"])
        return cls(regions, (height, width), int(data["points"]), tuple(data["statistics"]))

    def extract(
        self,
        frames: Sequence[ThermalFrame] | ArrayLike,
        *,
        times_s: ArrayLike | None = None,
        ambient_c: float | None = None,
    ) -> _F32:
        """(C, T) curves of one recording, °C above ambient, float32.

        Args:
            frames: the recording, as frames or an (N, H, W) stack in °C.
            times_s: time of each frame in seconds (default: the frames' ``timestamp_s``,
                else one per second).
            ambient_c: the ambient temperature; default the median of the first frame.

        Raises:
            ModelError: fewer than 2 frames, a frame size the regions do not fit, times that
                do not increase, or non-finite temperatures.
        """
        stack, times = _stack(frames, times_s)
        if stack.shape[1:] != self.shape:
            raise ModelError(
                f"temporal model: frames are {stack.shape[2]}x{stack.shape[1]}, the model "
                f"wants {self.shape[1]}x{self.shape[0]}"
            )
        ambient = float(np.median(stack[0])) if ambient_c is None else float(ambient_c)
        grid = np.linspace(times[0], times[-1], self.points)
        curves = [
            np.interp(grid, times, curve)
            for name in self.regions
            for curve in _curves(stack, self._masks[name], self.statistics)
        ]
        out = np.asarray(curves, dtype=np.float64) - ambient
        if not np.isfinite(out).all():
            raise ModelError("temporal model: the recording holds non-finite temperatures")
        return out.astype(np.float32)


def recording_curves(
    contract: InputContract,
    features: CurveFeatures,
    frames: Sequence[ThermalFrame],
    *,
    source: str,
) -> _F32:
    """A recording's curves as the release computes them (ambient: the first frame's median),
    after ``contract`` has refused a first or last frame whose pixels its window mostly clips.

    Raises:
        ModelError: the window clips the frames, or ``CurveFeatures.extract`` refuses them.
    """
    for frame in (frames[0], frames[-1]):
        contract.check(frame.celsius, source=source)
    return features.extract(frames)


def _known_statistic(name: str) -> bool:
    if name in PLAIN_STATISTICS:
        return True
    return len(name) == 3 and name[0] == "p" and name[1:].isdigit() and 1 <= int(name[1:]) <= 99


def _curves(
    stack: _F64, region: tuple[slice, slice, NDArray[np.bool_]], statistics: Sequence[str]
) -> list[_F64]:
    """Each statistic of a region in every frame of an (N, H, W) stack, °C."""
    ys, xs, mask = region
    crop = stack[:, ys, xs]
    wanted = [float(s[1:]) for s in statistics if s.startswith("p")]
    found: Iterator[_F64] = iter(np.percentile(crop[:, mask], wanted, axis=1) if wanted else [])
    return [
        np.asarray(next(found), dtype=np.float64)
        if s.startswith("p")
        else series_statistic(crop, mask, statistic=s)  # type: ignore[arg-type]
        for s in statistics
    ]


def _stack(
    frames: Sequence[ThermalFrame] | ArrayLike, times_s: ArrayLike | None
) -> tuple[_F64, _F64]:
    items = list(frames) if isinstance(frames, Sequence) else None
    if items and all(isinstance(f, ThermalFrame) for f in items):
        stack = np.stack([np.asarray(f.celsius, dtype=np.float64) for f in items])
        stamps = [f.metadata.timestamp_s for f in items]
        default = stamps if all(s is not None for s in stamps) else None
    else:
        stack = np.asarray(frames, dtype=np.float64)
        default = None
    if stack.ndim != 3 or stack.shape[0] < 2:
        raise ModelError(f"temporal model: a recording needs 2 or more frames, got {stack.shape}")
    source = times_s if times_s is not None else default
    times = (
        np.arange(stack.shape[0], dtype=np.float64)
        if source is None
        else np.asarray(source, dtype=np.float64)
    )
    if times.shape != (stack.shape[0],) or not bool(np.all(np.diff(times) > 0)):
        raise ModelError("temporal model: frame times must be one per frame and increasing")
    return stack, times


@dataclass(frozen=True, slots=True, eq=False)
class TemporalClassifier:
    """A trained curve classifier: standardisation, one hidden ReLU layer, class logits.

    Attributes:
        classes: class names, in output order.
        mean, std: per-input standardisation, (C * T,).
        w1, b1: hidden layer, (C * T, H) and (H,).
        w2, b2: output layer, (H, K) and (K,).
        channels, points: the input's (C, T).
    """

    classes: tuple[str, ...]
    mean: _F32
    std: _F32
    w1: _F32
    b1: _F32
    w2: _F32
    b2: _F32
    channels: int
    points: int

    def logits(self, curves: ArrayLike) -> _F32:
        """(N, K) logits of (N, C, T) curves, computed in float32 as the ONNX graph does."""
        x = np.asarray(curves, dtype=np.float32)
        if x.ndim != 3 or x.shape[1:] != (self.channels, self.points):
            raise ModelError(
                f"temporal model: input must be (N, {self.channels}, {self.points}), got {x.shape}"
            )
        flat = (x.reshape(len(x), -1) - self.mean) / self.std
        hidden = np.maximum(flat @ self.w1 + self.b1, np.float32(0))
        return np.asarray(hidden @ self.w2 + self.b2, dtype=np.float32)

    def probabilities(self, curves: ArrayLike) -> _F64:
        """(N, K) softmax of the logits."""
        return softmax(self.logits(curves).astype(np.float64))

    def to_onnx(self, *, name: str = "temporal") -> bytes:
        """The model as an ONNX graph (input ``input`` (N, C, T), output ``logits`` (N, K))."""
        c, t, k = self.channels, self.points, len(self.classes)
        inits = [
            numpy_helper.from_array(np.asarray(v, dtype=np.float32), n)
            for n, v in (
                ("mean", self.mean),
                ("std", self.std),
                ("w1", self.w1),
                ("b1", self.b1),
                ("w2", self.w2),
                ("b2", self.b2),
            )
        ]
        nodes = [
            helper.make_node("Flatten", ["input"], ["flat"], axis=1),
            helper.make_node("Sub", ["flat", "mean"], ["centred"]),
            helper.make_node("Div", ["centred", "std"], ["scaled"]),
            helper.make_node("Gemm", ["scaled", "w1", "b1"], ["pre"]),
            helper.make_node("Relu", ["pre"], ["hidden"]),
            helper.make_node("Gemm", ["hidden", "w2", "b2"], ["logits"]),
        ]
        graph = helper.make_graph(
            nodes,
            name,
            [helper.make_tensor_value_info("input", TensorProto.FLOAT, ["N", c, t])],
            [helper.make_tensor_value_info("logits", TensorProto.FLOAT, ["N", k])],
            initializer=inits,
        )
        model = helper.make_model(
            graph,
            opset_imports=[helper.make_opsetid("", OPSET)],
            producer_name="thermoscope",
        )
        model.ir_version = 8
        onnx.checker.check_model(model)
        return bytes(model.SerializeToString())


def softmax(logits: _F64) -> _F64:
    """Row-wise softmax of (N, K) logits."""
    shifted = logits - logits.max(axis=1, keepdims=True)
    e = np.exp(shifted)
    return np.asarray(e / e.sum(axis=1, keepdims=True), dtype=np.float64)


@dataclass(frozen=True, slots=True)
class TemporalSettings:
    """Training settings (all stored in the release's ``training``).

    Attributes:
        hidden: hidden units.
        epochs: full-batch Adam steps.
        learning_rate: Adam step size.
        weight_decay: L2 penalty on the weights.
        seed: seeds the initial weights.
    """

    hidden: int = 16
    epochs: int = 300
    learning_rate: float = 0.01
    weight_decay: float = 0.05
    seed: int = 0


def train_temporal(
    curves: ArrayLike,
    labels: Sequence[str],
    *,
    classes: Sequence[str] | None = None,
    settings: TemporalSettings | None = None,
) -> TemporalClassifier:
    """Fit a ``TemporalClassifier`` to (N, C, T) curves and their class names.

    Classes default to the sorted distinct labels; every class weighs the same in the loss
    (rare defect classes are not drowned by OK parts). Seeded: the same data and settings
    give the same weights.

    Raises:
        ModelError: fewer than two classes, a label outside ``classes``, or shapes that differ.
    """
    x = np.asarray(curves, dtype=np.float64)
    names = tuple(sorted(set(labels))) if classes is None else tuple(classes)
    if x.ndim != 3 or x.shape[0] != len(labels):
        raise ModelError(f"temporal model: {len(labels)} labels for curves of shape {x.shape}")
    if len(names) < 2:
        raise ModelError(f"temporal model: training needs 2 or more classes, got {list(names)}")
    unknown = sorted(set(labels) - set(names))
    if unknown:
        raise ModelError(f"temporal model: labels {unknown} are not among {list(names)}")
    settings = settings or TemporalSettings()
    y = np.array([names.index(label) for label in labels])
    n, c, t = x.shape
    flat = x.reshape(n, -1)
    mean = flat.mean(axis=0)
    std = np.maximum(flat.std(axis=0), 1e-3)
    z = (flat - mean) / std
    counts = np.bincount(y, minlength=len(names)).astype(np.float64)
    sample_w = (n / (len(names) * np.maximum(counts, 1.0)))[y] / n
    rng = np.random.default_rng(settings.seed)
    params = [
        rng.normal(0.0, np.sqrt(2.0 / z.shape[1]), (z.shape[1], settings.hidden)),
        np.zeros(settings.hidden),
        rng.normal(0.0, np.sqrt(1.0 / settings.hidden), (settings.hidden, len(names))),
        np.zeros(len(names)),
    ]
    _adam(params, z, y, sample_w, settings)
    w1, b1, w2, b2 = (p.astype(np.float32) for p in params)
    return TemporalClassifier(
        names, mean.astype(np.float32), std.astype(np.float32), w1, b1, w2, b2, c, t
    )


def _adam(
    params: list[_F64],
    z: _F64,
    y: NDArray[np.int64],
    sample_w: _F64,
    settings: TemporalSettings,
) -> None:
    """Full-batch Adam on the weighted softmax cross-entropy, updating ``params`` in place."""
    m = [np.zeros_like(p) for p in params]
    v = [np.zeros_like(p) for p in params]
    onehot = np.eye(params[3].size)[y]
    beta1, beta2, eps = 0.9, 0.999, 1e-8
    for step in range(1, settings.epochs + 1):
        w1, b1, w2, b2 = params
        pre = z @ w1 + b1
        hidden = np.maximum(pre, 0.0)
        probs = softmax(hidden @ w2 + b2)
        d_out = (probs - onehot) * sample_w[:, None]
        d_hidden = (d_out @ w2.T) * (pre > 0)
        grads = [
            z.T @ d_hidden + settings.weight_decay * w1,
            d_hidden.sum(axis=0),
            hidden.T @ d_out + settings.weight_decay * w2,
            d_out.sum(axis=0),
        ]
        for i, g in enumerate(grads):
            m[i] = beta1 * m[i] + (1 - beta1) * g
            v[i] = beta2 * v[i] + (1 - beta2) * g * g
            m_hat = m[i] / (1 - beta1**step)
            v_hat = v[i] / (1 - beta2**step)
            params[i] -= settings.learning_rate * m_hat / (np.sqrt(v_hat) + eps)
