"""Model family 1: golden-reference statistics from OK parts only (NumPy; no training framework).

Fitting: every OK frame goes through the input contract; per pixel and channel the mean mu and
standard deviation sigma over the frames are kept (sigma floored at ``sigma_floor`` window
units, so a pixel that never varies does not turn noise into infinite z). Scoring a frame x:

    z      = max over channels of |x - mu| / sigma                    (H, W), the z-score map
    zp     = mean of z over a ``pool`` x ``pool`` window         (zero padding counted; pool 1 = z)
    raw    = max(zp), or the mean of its ``top_k`` largest values
    score  = 1 - 2^(-raw / t),         anomaly_map = 1 - 2^(-zp / t)

where ``t`` is the ``quantile`` of the OK frames' leave-one-out raw scores (each OK frame scored
against the statistics of the others, computed exactly in closed form), so an OK part scores
about 0.5 at most and the release threshold is ``{"anomaly": 0.5}``. The normalisation is
strictly increasing and never clips, so scores keep their order (no ties at 1 to spoil an
AUROC) and the map keeps its peak where the defect is.

``GoldenStatistics.to_onnx`` writes the same computation as an ONNX graph with ``onnx.helper``
(input ``input`` (N, C, H, W), outputs ``score`` (N,) and ``anomaly_map`` (N, H, W)), so the edge
runs it through ONNX Runtime like any other release; NumPy and ONNX agree to float rounding.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
import onnx
from numpy.typing import NDArray
from onnx import TensorProto, helper, numpy_helper

from thermoscope.core import ThermalFrame
from thermoscope.models.contract import InputContract
from thermoscope.models.errors import ModelError
from thermoscope.models.release import write_release

#: ONNX opset of the golden graph.
GOLDEN_OPSET = 17
#: The release threshold on the normalised score (the calibrated OK level maps to it).
GOLDEN_THRESHOLD = 0.5
#: Frames per block of the leave-one-out calibration (bounds its memory).
_CHUNK = 64


@dataclass(frozen=True, slots=True)
class GoldenSettings:
    """How golden statistics are fitted and scored (stored in the release's ``training``).

    Attributes:
        sigma_floor: smallest sigma, in contract units (window fraction; 0.01 of a 40 °C window
            is 0.4 °C).
        pool: side of the square averaging window over the z map, odd, pixels (1 = none).
        top_k: the score is the mean of the ``top_k`` largest pooled z values (1 = the max).
        quantile: quantile of the OK frames' leave-one-out raw scores that maps to 0.5.
    """

    sigma_floor: float = 0.01
    pool: int = 3
    top_k: int = 1
    quantile: float = 0.99

    def __post_init__(self) -> None:
        if not (math.isfinite(self.sigma_floor) and self.sigma_floor > 0):
            raise ModelError(f"golden sigma_floor must be positive, got {self.sigma_floor!r}")
        if not (isinstance(self.pool, int) and self.pool >= 1 and self.pool % 2 == 1):
            raise ModelError(f"golden pool must be an odd integer >= 1, got {self.pool!r}")
        if not (isinstance(self.top_k, int) and self.top_k >= 1):
            raise ModelError(f"golden top_k must be an integer >= 1, got {self.top_k!r}")
        if not 0.5 <= self.quantile <= 1.0:
            raise ModelError(f"golden quantile must be in [0.5, 1], got {self.quantile!r}")


@dataclass(frozen=True, eq=False)
class GoldenStatistics:
    """Fitted golden statistics (see the module docstring).

    Attributes:
        contract: the input contract the statistics are in.
        mean, std: (C, H, W) float32 per-pixel mean and floored standard deviation.
        level: the raw score ``t`` that maps to 0.5 (> 0).
        settings: how they were fitted and are scored.
        count: number of OK frames fitted.
    """

    contract: InputContract
    mean: NDArray[np.float32]
    std: NDArray[np.float32]
    level: float
    settings: GoldenSettings
    count: int

    def __post_init__(self) -> None:
        shape = self.contract.input_shape
        if self.mean.shape != shape or self.std.shape != shape:
            raise ModelError(
                f"golden mean/std must be {shape}, got {self.mean.shape} and {self.std.shape}"
            )
        if not (math.isfinite(self.level) and self.level > 0):
            raise ModelError(f"golden level must be positive, got {self.level!r}")
        if self.settings.top_k > self.contract.height * self.contract.width:
            raise ModelError(f"golden top_k {self.settings.top_k} exceeds the pixel count")

    def raw(self, inputs: NDArray[Any]) -> tuple[NDArray[np.float32], NDArray[np.float32]]:
        """Raw scores (N,) and pooled z maps (N, H, W) of contract-applied inputs (N, C, H, W)."""
        x = np.asarray(inputs, dtype=np.float32)
        if x.ndim != 4 or x.shape[1:] != self.contract.input_shape:
            raise ModelError(
                f"golden inputs must be (N, {', '.join(map(str, self.contract.input_shape))}), "
                f"got {x.shape}"
            )
        inv = (np.float32(1.0) / self.std).astype(np.float32)
        z = (np.abs(x - self.mean) * inv).max(axis=1)
        zp = _avg_pool(z, self.settings.pool)
        return _top_k_mean(zp, self.settings.top_k), zp

    def score(self, inputs: NDArray[Any]) -> tuple[NDArray[np.float32], NDArray[np.float32]]:
        """Normalised scores (N,) and anomaly maps (N, H, W), both in [0, 1] (0.5 = OK level)."""
        raw, zp = self.raw(inputs)
        return self._normalise(raw), self._normalise(zp)

    def _normalise(self, raw: NDArray[np.float32]) -> NDArray[np.float32]:
        """1 - 2^(-raw / level) in float32, as the ONNX graph computes it."""
        rate = np.float32(-math.log(2.0) / self.level)
        out: NDArray[np.float32] = (np.float32(1.0) - np.exp(raw * rate)).astype(np.float32)
        return out

    def to_onnx(self) -> bytes:
        """The scoring as an ONNX graph (input ``input``; outputs ``score``, ``anomaly_map``)."""
        c, h, w = self.contract.input_shape
        pool, k = self.settings.pool, self.settings.top_k
        inv = (np.float32(1.0) / self.std).astype(np.float32)
        rate = np.float32(-math.log(2.0) / self.level)
        init = [
            numpy_helper.from_array(self.mean.astype(np.float32), "mean"),
            numpy_helper.from_array(inv, "inv_std"),
            numpy_helper.from_array(np.array(rate, np.float32), "rate"),
            numpy_helper.from_array(np.array(1.0, np.float32), "one"),
            numpy_helper.from_array(np.array([1], np.int64), "axis1"),
            numpy_helper.from_array(np.array([0, -1], np.int64), "flat_shape"),
            numpy_helper.from_array(np.array([k], np.int64), "k"),
        ]
        nodes = [
            helper.make_node("Sub", ["input", "mean"], ["diff"]),
            helper.make_node("Abs", ["diff"], ["absdiff"]),
            helper.make_node("Mul", ["absdiff", "inv_std"], ["z_all"]),
            helper.make_node("ReduceMax", ["z_all"], ["z"], axes=[1], keepdims=1),
        ]
        if pool > 1:
            half = pool // 2
            nodes.append(
                helper.make_node(
                    "AveragePool",
                    ["z"],
                    ["zp"],
                    kernel_shape=[pool, pool],
                    pads=[half, half, half, half],
                    strides=[1, 1],
                    count_include_pad=1,
                )
            )
        else:
            nodes.append(helper.make_node("Identity", ["z"], ["zp"]))
        nodes += [
            helper.make_node("Reshape", ["zp", "flat_shape"], ["flat"]),
            helper.make_node("TopK", ["flat", "k"], ["top", "top_idx"], axis=1, largest=1),
            helper.make_node("ReduceMean", ["top"], ["raw"], axes=[1], keepdims=0),
            helper.make_node("Mul", ["raw", "rate"], ["score_exponent"]),
            helper.make_node("Exp", ["score_exponent"], ["score_rest"]),
            helper.make_node("Sub", ["one", "score_rest"], ["score"]),
            helper.make_node("Mul", ["zp", "rate"], ["map_exponent"]),
            helper.make_node("Exp", ["map_exponent"], ["map_rest"]),
            helper.make_node("Sub", ["one", "map_rest"], ["map_normalised"]),
            helper.make_node("Squeeze", ["map_normalised", "axis1"], ["anomaly_map"]),
        ]
        graph = helper.make_graph(
            nodes,
            "golden_statistics",
            [helper.make_tensor_value_info("input", TensorProto.FLOAT, ["N", c, h, w])],
            [
                helper.make_tensor_value_info("score", TensorProto.FLOAT, ["N"]),
                helper.make_tensor_value_info("anomaly_map", TensorProto.FLOAT, ["N", h, w]),
            ],
            initializer=init,
        )
        model = helper.make_model(
            graph,
            opset_imports=[helper.make_opsetid("", GOLDEN_OPSET)],
            producer_name="thermoscope.models.golden",
        )
        model.ir_version = 8
        onnx.checker.check_model(model)
        data: bytes = model.SerializeToString()
        return data

    def training(self) -> dict[str, Any]:
        """The settings and fitted figures for the release's ``training`` field."""
        return {
            "family": "golden",
            **asdict(self.settings),
            "ok_frames": self.count,
            "level": self.level,
        }

    def write_release(
        self,
        folder: Path,
        *,
        name: str,
        version: int,
        dataset_hash: str = "",
        code_version: str = "",
        metrics: Mapping[str, Any] | None = None,
        private_key: Path | None = None,
    ) -> Path:
        """Write these statistics as a ``golden`` release (threshold ``{"anomaly": 0.5}``)."""
        return write_release(
            folder,
            name=name,
            version=version,
            kind="golden",
            contract=self.contract,
            onnx=self.to_onnx(),
            classes=("ok", "anomaly"),
            thresholds={"anomaly": GOLDEN_THRESHOLD},
            dataset_hash=dataset_hash,
            code_version=code_version,
            training=self.training(),
            metrics=metrics,
            private_key=private_key,
        )


def fit_golden(
    frames: Sequence[ThermalFrame | NDArray[Any]],
    contract: InputContract,
    *,
    ambient_c: float | Sequence[float | None] | None = None,
    settings: GoldenSettings | None = None,
) -> GoldenStatistics:
    """Golden statistics of OK frames (at least 3; every one must be a good part).

    Args:
        frames: OK frames in °C (``ThermalFrame`` or (H, W) arrays).
        contract: the input contract to fit in.
        ambient_c: ambient temperature(s) in °C for a ``delta_ambient`` channel.
        settings: fitting and scoring settings.

    Raises:
        ModelError: fewer than 3 frames, or a frame does not fit the contract.
    """
    settings = settings or GoldenSettings()
    if len(frames) < 3:
        raise ModelError(f"golden statistics need at least 3 OK frames, got {len(frames)}")
    arrays = [f.celsius if isinstance(f, ThermalFrame) else np.asarray(f) for f in frames]
    x = contract.apply_batch(arrays, ambient_c=ambient_c).astype(np.float64)
    n = x.shape[0]
    s1 = x.sum(axis=0)
    s2 = np.square(x).sum(axis=0)
    mean = s1 / n
    std = np.sqrt(np.maximum(s2 / n - mean**2, 0.0))
    floor = settings.sigma_floor
    # Leave-one-out statistics of every frame, in closed form, to calibrate the OK level.
    loo_raw = np.empty(n, dtype=np.float32)
    for start in range(0, n, _CHUNK):
        xc = x[start : start + _CHUNK]
        loo_mean = (s1[None] - xc) / (n - 1)
        loo_var = np.maximum((s2[None] - np.square(xc)) / (n - 1) - loo_mean**2, 0.0)
        z = (np.abs(xc - loo_mean) / np.maximum(np.sqrt(loo_var), floor)).max(axis=1)
        zp = _avg_pool(z.astype(np.float32), settings.pool)
        loo_raw[start : start + _CHUNK] = _top_k_mean(zp, settings.top_k)
    level = float(np.quantile(loo_raw.astype(np.float64), settings.quantile))
    if not (math.isfinite(level) and level > 0):
        level = 1.0
    return GoldenStatistics(
        contract=contract,
        mean=mean.astype(np.float32),
        std=np.maximum(std, floor).astype(np.float32),
        level=level,
        settings=settings,
        count=n,
    )


def _avg_pool(z: NDArray[np.float32], pool: int) -> NDArray[np.float32]:
    """Mean over a ``pool`` x ``pool`` window with zero padding counted (ONNX AveragePool with
    ``count_include_pad=1``); z is (N, H, W)."""
    if pool == 1:
        return z.astype(np.float32, copy=False)
    half = pool // 2
    padded = np.pad(z.astype(np.float64), ((0, 0), (half + 1, half), (half + 1, half)))
    c = padded.cumsum(axis=1).cumsum(axis=2)
    h, w = z.shape[1], z.shape[2]
    total = (
        c[:, pool : pool + h, pool : pool + w]
        - c[:, :h, pool : pool + w]
        - c[:, pool : pool + h, :w]
        + c[:, :h, :w]
    )
    pooled: NDArray[np.float32] = (total / (pool * pool)).astype(np.float32)
    return pooled


def _top_k_mean(zp: NDArray[np.float32], k: int) -> NDArray[np.float32]:
    flat = zp.reshape(zp.shape[0], -1)
    out: NDArray[np.float32]
    if k == 1:
        out = flat.max(axis=1).astype(np.float32)
    else:
        top = np.partition(flat, flat.shape[1] - k, axis=1)[:, -k:]
        out = top.mean(axis=1, dtype=np.float64).astype(np.float32)
    return out


__all__ = [
    "GOLDEN_OPSET",
    "GOLDEN_THRESHOLD",
    "GoldenSettings",
    "GoldenStatistics",
    "fit_golden",
]
