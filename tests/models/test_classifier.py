"""Classifier networks: EfficientNet-Lite0 against the shipped ImageNet weights, the compact CNN."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from thermoscope.models.classifier import (
    CompactCNN,
    EfficientNetLite0,
    build_classifier,
    default_weights_path,
    load_pretrained,
)
from thermoscope.models.errors import ModelError


def test_lite0_loads_every_imagenet_tensor_with_a_grey_stem() -> None:
    path = default_weights_path()
    state = torch.load(path, map_location="cpu", weights_only=True)
    model = EfficientNetLite0(12, in_channels=1)
    loaded = load_pretrained(model, path)
    own = model.state_dict()
    assert len(loaded) == len(state) - 2  # all but the 1000-class _fc weight and bias
    assert not [k for k in own if not k.startswith("_fc.") and k not in loaded]
    torch.testing.assert_close(own["_conv_stem.weight"], state["_conv_stem.weight"].sum(1, True))
    torch.testing.assert_close(
        own["_blocks.15._project_conv.weight"], state["_blocks.15._project_conv.weight"]
    )
    three = EfficientNetLite0(4, in_channels=3)
    load_pretrained(three, path)
    grey = torch.full((1, 1, 40, 24), 0.4)
    one = EfficientNetLite0(4, in_channels=1)
    load_pretrained(one, path)
    one.eval()
    three.eval()
    with torch.no_grad():
        torch.testing.assert_close(one.features(grey), three.features(grey.repeat(1, 3, 1, 1)))


def test_forward_shapes() -> None:
    x = torch.rand(3, 1, 40, 24)
    for arch in ("compact", "efficientnet_lite0"):
        model = build_classifier(arch, 12).eval()
        with torch.no_grad():
            assert model(x).shape == (3, 12)
    assert build_classifier("efficientnet_lite0", 5, stem_stride=1, in_channels=2)(
        torch.rand(2, 2, 16, 16)
    ).shape == (2, 5)
    assert isinstance(build_classifier("compact", 2, width=8), CompactCNN)


def test_bad_weights_and_settings_are_named(tmp_path: Path) -> None:
    model = EfficientNetLite0(3)
    with pytest.raises(ModelError, match="not found"):
        load_pretrained(model, tmp_path / "none.pth")
    junk = tmp_path / "junk.pth"
    junk.write_bytes(b"not a state dict")
    with pytest.raises(ModelError, match=r"junk\.pth: not a readable torch state dict"):
        load_pretrained(model, junk)
    state = torch.load(default_weights_path(), map_location="cpu", weights_only=True)
    partial = tmp_path / "partial.pth"
    torch.save({k: v for k, v in state.items() if "_blocks.3." not in k}, partial)
    with pytest.raises(ModelError, match=r"partial\.pth: 18 weight\(s\) missing .*_blocks\.3\."):
        load_pretrained(model, partial)
    wrong = tmp_path / "wrong.pth"
    torch.save({**state, "_conv_head.weight": torch.zeros(1280, 10, 1, 1)}, wrong)
    with pytest.raises(ModelError, match=r"_conv_head\.weight"):
        load_pretrained(model, wrong)
    with pytest.raises(ModelError, match="architecture"):
        build_classifier("resnet", 3)
    with pytest.raises(ModelError, match="at least 2"):
        build_classifier("compact", 1)
