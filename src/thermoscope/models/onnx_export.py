"""Export torch modules to ONNX bytes and check that ONNX Runtime agrees with torch (needs torch).

The only module of ``thermoscope.models`` besides the training ones that imports torch; the rest
of the layer (contract, releases, runtime, golden statistics) works without it.

``export_onnx`` follows the release convention: one input ``input`` float32 (N, C, H, W) with
a dynamic batch dimension, outputs named as the kind requires (``logits``; or ``score`` and
``anomaly_map``; optional ``features``, ``cam``). It uses torch's TorchScript-based exporter
(the newer ``torch.export``-based one needs ``onnxscript``, which we do not depend on) and
silences that exporter's deprecation notices. ``parity`` runs the module and the exported graph
on the same inputs and returns the largest absolute difference over all outputs;
``check_parity`` raises ``ModelError`` above a tolerance (1e-4 by default).
"""

from __future__ import annotations

import tempfile
import warnings
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
from numpy.typing import NDArray

from thermoscope.models.errors import ModelError
from thermoscope.models.runtime import onnx_session

#: ONNX opset the exports target (ONNX Runtime ≥ 1.18 runs it).
OPSET = 17
#: Default largest absolute torch-vs-ONNX difference accepted.
PARITY_TOLERANCE = 1e-4


def export_onnx(
    module: torch.nn.Module,
    example: NDArray[Any] | torch.Tensor,
    *,
    output_names: Sequence[str],
    opset: int = OPSET,
) -> bytes:
    """The module (put in eval mode) as ONNX bytes, with a dynamic batch dimension.

    Args:
        module: maps a float32 (N, C, H, W) tensor to one tensor or a tuple of tensors, in the
            order of ``output_names``.
        example: an input of the right shape (its values do not matter).
        output_names: the graph's output names (``("logits",)``, ``("score", "anomaly_map")``).
        opset: ONNX opset version.

    Raises:
        ModelError: the module cannot be exported (an unsupported operator ...).
    """
    x = (
        torch.as_tensor(np.asarray(example, dtype=np.float32))
        if not isinstance(example, torch.Tensor)
        else example.float()
    )
    if x.ndim < 2:
        raise ModelError(
            f"export_onnx: the example input must be batched, got shape {tuple(x.shape)}"
        )
    names = list(output_names)
    if not names or len(set(names)) != len(names):
        raise ModelError(f"export_onnx: output_names must be distinct and non-empty: {names}")
    module = module.eval()
    axes: dict[str, dict[int, str]] = {"input": {0: "N"}}
    axes.update({name: {0: "N"} for name in names})
    try:
        with warnings.catch_warnings(), torch.no_grad(), tempfile.TemporaryDirectory() as tmp:
            warnings.simplefilter("ignore", DeprecationWarning)
            warnings.simplefilter("ignore", FutureWarning)
            warnings.simplefilter("ignore", UserWarning)
            torch.onnx.export(
                module,
                (x,),
                str(Path(tmp) / "model.onnx"),
                input_names=["input"],
                output_names=names,
                dynamic_axes=axes,
                opset_version=opset,
                dynamo=False,
                do_constant_folding=True,
            )
            data = (Path(tmp) / "model.onnx").read_bytes()
    except Exception as exc:  # torch raises many exception types for unexportable modules
        raise ModelError(
            f"export_onnx: {type(module).__name__} cannot be exported ({exc})"
        ) from None
    return data


def torch_outputs(module: torch.nn.Module, inputs: NDArray[Any]) -> list[NDArray[np.float32]]:
    """The module's outputs (eval mode, no gradients) on ``inputs`` as float32 arrays."""
    module = module.eval()
    with torch.no_grad():
        out = module(torch.as_tensor(np.ascontiguousarray(inputs, dtype=np.float32)))
    tensors = out if isinstance(out, tuple | list) else (out,)
    return [t.detach().cpu().numpy().astype(np.float32) for t in tensors]


def parity(module: torch.nn.Module, onnx: bytes, inputs: NDArray[Any]) -> float:
    """Largest absolute difference between the module and the ONNX graph over all outputs.

    Raises:
        ModelError: the graph does not load, or the output counts or shapes differ.
    """
    x = np.ascontiguousarray(inputs, dtype=np.float32)
    expected = torch_outputs(module, x)
    got = onnx_session(onnx, source="exported graph").run(None, {"input": x})
    if len(got) != len(expected):
        raise ModelError(f"parity: torch gives {len(expected)} outputs, ONNX {len(got)}")
    worst = 0.0
    for i, (a, b) in enumerate(zip(expected, got, strict=True)):
        b = np.asarray(b, dtype=np.float32)
        if a.shape != b.shape:
            raise ModelError(f"parity: output {i} is {a.shape} in torch but {b.shape} in ONNX")
        if a.size:
            worst = max(worst, float(np.max(np.abs(a.astype(np.float64) - b))))
    return worst


def check_parity(
    module: torch.nn.Module,
    onnx: bytes,
    inputs: NDArray[Any],
    *,
    tolerance: float = PARITY_TOLERANCE,
) -> float:
    """``parity``, refused above ``tolerance``; returns the difference.

    Raises:
        ModelError: the outputs differ by more than ``tolerance``.
    """
    diff = parity(module, onnx, inputs)
    if not diff <= tolerance:
        raise ModelError(
            f"torch and ONNX outputs differ by {diff:.3g} (more than {tolerance:g}); the export "
            "is not faithful"
        )
    return diff


__all__ = [
    "OPSET",
    "PARITY_TOLERANCE",
    "check_parity",
    "export_onnx",
    "parity",
    "torch_outputs",
]
