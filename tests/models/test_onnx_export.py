"""torch → ONNX export with the release conventions, and the torch-vs-ONNX parity check."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch import Tensor, nn

from thermoscope.models.errors import ModelError
from thermoscope.models.onnx_export import (
    OPSET,
    PARITY_TOLERANCE,
    check_parity,
    export_onnx,
    parity,
    torch_outputs,
)
from thermoscope.models.runtime import onnx_session


class TwoHeads(nn.Module):
    """A small anomaly-style network: a normalised score and a map."""

    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Conv2d(1, 4, 3, padding=1)

    def forward(self, x: Tensor) -> tuple[Tensor, Tensor]:
        m = torch.sigmoid(self.conv(x).mean(dim=1))
        return m.amax(dim=(1, 2)), m


class Untraceable(nn.Module):
    def forward(self, x: Tensor) -> Tensor:
        return torch.from_numpy(np.asarray(x.detach().numpy()) + 1)


def test_export_follows_the_convention_and_matches_torch() -> None:
    torch.manual_seed(0)
    module = TwoHeads()
    onnx = export_onnx(
        module,
        np.zeros((1, 1, 16, 20), np.float32),
        output_names=("score", "anomaly_map"),
        opset=OPSET,
    )
    session = onnx_session(onnx)
    assert [i.name for i in session.get_inputs()] == ["input"]
    assert [o.name for o in session.get_outputs()] == ["score", "anomaly_map"]
    x = np.random.default_rng(0).random((3, 1, 16, 20), dtype=np.float32)
    score, heat = session.run(None, {"input": x})  # batch of 3 from an example of 1
    assert score.shape == (3,)
    assert heat.shape == (3, 16, 20)
    assert check_parity(module, onnx, x) <= PARITY_TOLERANCE
    np.testing.assert_allclose(torch_outputs(module, x)[0], score, atol=1e-5)


def test_parity_catches_a_different_graph() -> None:
    torch.manual_seed(0)
    exported, other = TwoHeads(), TwoHeads()
    onnx = export_onnx(
        exported, np.zeros((1, 1, 8, 8), np.float32), output_names=("score", "anomaly_map")
    )
    x = np.random.default_rng(1).random((2, 1, 8, 8), dtype=np.float32)
    assert parity(other, onnx, x) > 1e-3
    with pytest.raises(ModelError, match=r"differ by .* the export is not faithful"):
        check_parity(other, onnx, x)


def test_export_refusals() -> None:
    with pytest.raises(ModelError, match="distinct and non-empty"):
        export_onnx(TwoHeads(), np.zeros((1, 1, 8, 8)), output_names=("a", "a"))
    with pytest.raises(ModelError, match="must be batched"):
        export_onnx(TwoHeads(), np.zeros(8), output_names=("score",))
    with pytest.raises(ModelError, match="Untraceable cannot be exported"):
        export_onnx(Untraceable(), np.zeros((1, 1, 4, 4)), output_names=("logits",))
