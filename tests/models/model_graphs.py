"""Tiny ONNX graphs built with onnx.helper for runtime tests (no training framework needed).

- ``anomaly_graph``: ``anomaly_map`` = the first input channel, ``score`` = its maximum, and
  optionally ``features`` = the per-channel mean (N, C);
- ``classifier_graph``: logits = (mean of the first channel) x ``slopes`` + ``offsets``, so a
  warmer part scores higher on classes with a larger slope.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

Dim = int | str


def _model(
    nodes: list[onnx.NodeProto],
    inputs: list[onnx.ValueInfoProto],
    outputs: list[onnx.ValueInfoProto],
    init: list[onnx.TensorProto],
) -> bytes:
    graph = helper.make_graph(nodes, "test", inputs, outputs, initializer=init)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    onnx.checker.check_model(model)
    data: bytes = model.SerializeToString()
    return data


def anomaly_graph(
    channels: int, height: int, width: int, *, batch: Dim = "N", features: bool = False
) -> bytes:
    """Score = max of channel 0, map = channel 0; ``features`` = per-channel mean (N, C)."""
    init = [
        numpy_helper.from_array(np.array([0], np.int64), "start"),
        numpy_helper.from_array(np.array([1], np.int64), "end"),
        numpy_helper.from_array(np.array([1], np.int64), "axis1"),
    ]
    nodes = [
        helper.make_node("Slice", ["input", "start", "end", "axis1"], ["first"]),
        helper.make_node("Squeeze", ["first", "axis1"], ["anomaly_map"]),
        helper.make_node("ReduceMax", ["anomaly_map"], ["score"], axes=[1, 2], keepdims=0),
    ]
    outputs = [
        helper.make_tensor_value_info("score", TensorProto.FLOAT, [batch]),
        helper.make_tensor_value_info("anomaly_map", TensorProto.FLOAT, [batch, height, width]),
    ]
    if features:
        nodes.append(
            helper.make_node("ReduceMean", ["input"], ["features"], axes=[2, 3], keepdims=0)
        )
        outputs.append(
            helper.make_tensor_value_info("features", TensorProto.FLOAT, [batch, channels])
        )
    inputs = [
        helper.make_tensor_value_info("input", TensorProto.FLOAT, [batch, channels, height, width])
    ]
    return _model(nodes, inputs, outputs, init)


def classifier_graph(
    channels: int,
    height: int,
    width: int,
    slopes: Sequence[float],
    offsets: Sequence[float],
    *,
    cam: bool = False,
) -> bytes:
    """Logits (N, K) = mean(channel 0) * slopes + offsets; ``cam`` (N, K, H, W) = channel 0 *
    slopes (each class's activation follows the temperature, scaled by its slope)."""
    k = len(slopes)
    init = [
        numpy_helper.from_array(np.array([0], np.int64), "start"),
        numpy_helper.from_array(np.array([1], np.int64), "end"),
        numpy_helper.from_array(np.array([1], np.int64), "axis1"),
        numpy_helper.from_array(np.asarray(slopes, np.float32).reshape(1, k), "slopes"),
        numpy_helper.from_array(np.asarray(offsets, np.float32).reshape(1, k), "offsets"),
    ]
    nodes = [
        helper.make_node("Slice", ["input", "start", "end", "axis1"], ["first"]),
        helper.make_node("ReduceMean", ["first"], ["mean"], axes=[1, 2, 3], keepdims=1),
        helper.make_node("Reshape", ["mean", "shape"], ["column"]),
        helper.make_node("Mul", ["column", "slopes"], ["scaled"]),
        helper.make_node("Add", ["scaled", "offsets"], ["logits"]),
    ]
    init.append(numpy_helper.from_array(np.array([-1, 1], np.int64), "shape"))
    inputs = [
        helper.make_tensor_value_info("input", TensorProto.FLOAT, ["N", channels, height, width])
    ]
    outputs = [helper.make_tensor_value_info("logits", TensorProto.FLOAT, ["N", k])]
    if cam:
        init.append(
            numpy_helper.from_array(
                np.asarray(slopes, np.float32).reshape(1, k, 1, 1), "cam_slopes"
            )
        )
        nodes.append(helper.make_node("Mul", ["first", "cam_slopes"], ["cam"]))
        outputs.append(
            helper.make_tensor_value_info("cam", TensorProto.FLOAT, ["N", k, height, width])
        )
    return _model(nodes, inputs, outputs, init)
