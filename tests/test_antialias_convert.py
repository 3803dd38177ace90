"""antialias(model): torchvision classifiers rewritten the way Zhang (2019) does, no weights
downloaded (weights=None), parameters and state_dict unchanged, and more shift-consistent."""

from __future__ import annotations

import ast
import copy
import functools
import pathlib
import re

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from pix2pix_aa.layers import BlurConv2d, BlurPool, MaxBlurPool, antialias, count_parameters

torchvision = pytest.importorskip("torchvision")



@functools.cache
def _original(name: str) -> nn.Module:
    """Built once per module run: initialising VGG's 130M parameters takes seconds."""
    torch.manual_seed(0)
    return getattr(torchvision.models, name)(weights=None).eval()


def _converted(name: str, **kwargs) -> tuple[nn.Module, nn.Module]:
    original = _original(name)
    return original, antialias(copy.deepcopy(original), **kwargs)


@pytest.mark.parametrize("name", ["resnet18", "resnet34", "resnet50", "vgg11", "vgg16", "densenet121"])
def test_parameters_state_dict_and_shapes_unchanged(name: str) -> None:
    original, aa = _converted(name)
    assert count_parameters(aa) == count_parameters(original)
    assert set(aa.state_dict()) == set(original.state_dict())
    aa.load_state_dict(original.state_dict(), strict=True)
    assert any(isinstance(m, BlurPool) for m in aa.modules())
    with torch.no_grad():
        x = torch.randn(1, 3, 32, 32)
        assert aa(x).shape == original(x).shape == (1, 1000)


def test_resnet_layout_matches_zhang() -> None:
    original, aa = _converted("resnet50")
    assert aa.conv1.stride == (1, 1) and isinstance(aa.relu[1], BlurPool)
    assert isinstance(aa.maxpool, MaxBlurPool) and aa.maxpool.kernel_size == 3
    block = aa.layer2[0]  # Bottleneck: conv2 carried the stride
    assert block.conv2.stride == (1, 1)
    assert isinstance(block.conv3, BlurConv2d) and block.conv3.blur.stride == 2
    assert isinstance(block.downsample[0], BlurConv2d) and block.downsample[0].kernel_size == (1, 1)
    torch.testing.assert_close(block.conv3.weight, original.layer2[0].conv3.weight)
    basic = antialias(torchvision.models.resnet18(weights=None)).layer3[0]
    assert basic.conv1.stride == (1, 1) and isinstance(basic.conv2, BlurConv2d)
    no_strided = [m for m in aa.modules() if type(m) is nn.Conv2d and m.stride != (1, 1)]
    assert no_strided == []


def test_keep_stem_leaves_the_first_conv_strided() -> None:
    _, aa = _converted("resnet18", keep_stem=True)
    assert aa.conv1.stride == (2, 2) and isinstance(aa.relu, nn.ReLU)
    _, dense = _converted("densenet121", keep_stem=True)
    assert dense.features.conv0.stride == (2, 2)


@pytest.mark.parametrize("spec", ["kaiser7_c0.2_w0.1", "kaiser12", "tri3"])
def test_every_blur_has_the_filter_asked_for(spec: str) -> None:
    """A Kaiser name was cut to its number of taps: ``filt_size="kaiser7"`` built Bin-7 blurs, and
    ``"kaiser12"`` (a valid name) was refused as a size outside 1..7."""
    aa = antialias(torchvision.models.resnet18(weights=None), filt_size=spec)
    blurs = [m for m in aa.modules() if isinstance(m, BlurPool)]
    assert len(blurs) == 2 + 3 * 2  # the stem and the maxpool; each strided block: its next conv, its shortcut
    for blur in blurs:
        torch.testing.assert_close(blur.filt, BlurPool(None, spec).filt, rtol=0, atol=0)


def test_densenet_and_vgg_rules() -> None:
    _, dense = _converted("densenet121")
    f = dense.features
    assert f.conv0.stride == (1, 1) and isinstance(f.relu0[1], BlurPool)
    assert isinstance(f.pool0, MaxBlurPool)
    assert isinstance(f.transition1.pool, BlurPool)  # AvgPool2d(2) -> BlurPool
    _, vgg = _converted("vgg11")
    assert sum(isinstance(m, MaxBlurPool) for m in vgg.features) == 5
    assert not any(isinstance(m, nn.MaxPool2d) for m in vgg.modules())


def test_resnet18_is_more_shift_consistent() -> None:
    """Eval mode, random weights, seeded random images: two crops one pixel apart (diagonal).
    Measured (64x64 would take longer; 32x32, 8 images): 1 - cos of the logits ~2e-2 plain vs
    ~4e-5 anti-aliased, argmax agreement 0.75 vs 1.0 on 4 images."""
    original, aa = _converted("resnet18")
    x = torch.rand(8, 3, 33, 33, generator=torch.Generator().manual_seed(1))
    stats = {}
    with torch.no_grad():
        for name, model in (("plain", original), ("aa", aa)):
            a, b = model(x[:, :, :-1, :-1]), model(x[:, :, 1:, 1:])
            stats[name] = ((a.argmax(1) == b.argmax(1)).float().mean().item(),
                           1 - F.cosine_similarity(a, b).mean().item())
    assert stats["aa"][1] < 0.05 * stats["plain"][1], stats
    assert stats["aa"][0] >= stats["plain"][0], stats


def test_errors() -> None:
    with pytest.raises(ValueError, match="needs a filter"):
        antialias(torchvision.models.resnet18(weights=None), filt_size="none")
    with pytest.raises(ValueError, match="valid"):
        antialias(torchvision.models.resnet18(weights=None), filt_size="bin9")
    with pytest.raises(ValueError, match="no strided conv or pool"):
        antialias(nn.Sequential(nn.Conv2d(3, 3, 3), nn.ReLU()))
    model = antialias(torchvision.models.resnet18(weights=None))
    with pytest.raises(ValueError, match="no strided conv or pool"):  # already converted
        antialias(model)


def test_package_never_imports_antialiased_cnns() -> None:
    layers = pathlib.Path(__file__).resolve().parents[1] / "pix2pix_aa"
    for path in layers.rglob("*.py"):
        tree = ast.parse(path.read_text())
        for node in ast.walk(tree):
            names = []
            if isinstance(node, ast.Import):
                names = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom):
                names = [node.module or ""]
            assert not any(n.split(".")[0] == "antialiased_cnns" for n in names), path


@pytest.mark.parametrize("conv", [nn.Conv2d(3, 8, 4, stride=2, padding=1), nn.Conv2d(3, 8, 7, stride=2),
                                  nn.Conv2d(3, 8, 5, stride=3, padding=1), nn.Conv2d(3, 8, 3, stride=2, padding=1)])
def test_a_strided_conv_keeps_its_output_size_and_its_weights(conv) -> None:
    """BlurPool(s) -> conv at stride 1 changed the size of any conv but the "same" ones (pix2pix's
    4x4 with padding 1: 16 -> 15 on 32 px); those now blur at stride 1 and keep their stride."""
    net = nn.Sequential(nn.Identity(), conv)  # no activation after it: the blur goes before the conv
    keys = list(net.state_dict())
    for side in (32, 33):
        x = torch.randn(1, 3, side, side)
        expected = net(x).shape
        converted = antialias(copy.deepcopy(net), filt_size=3)
        assert converted(x).shape == expected and list(converted.state_dict()) == keys
    same = conv.padding[0] * 2 == conv.kernel_size[0] - 1
    assert (converted[1].blur.stride, converted[1].stride) == ((2, (1, 1)) if same else (1, conv.stride))


class _MyConv(nn.Conv2d):
    pass


@pytest.mark.parametrize("layer, why", [
    (_MyConv(3, 3, 3, stride=2, padding=1), "_MyConv, stride (2, 2): a layer type this function does not rewrite"),
    (nn.MaxPool2d(2, ceil_mode=True), "MaxPool2d, stride 2: ceil_mode"),
    (nn.AvgPool2d(4, 2), "AvgPool2d, stride 2: kernel size not its stride"),
    # A 2x2 sum pool became a unit-gain blur: outputs a quarter of what they were, without a word.
    (nn.AvgPool2d(2, divisor_override=1), "AvgPool2d, stride 2: divisor_override=1"),
    (nn.Conv1d(3, 3, 3, stride=2), "Conv1d, stride (2,): a layer type"),
    # The plain conv before it was rewritten, then the refusal came:
    (nn.Conv2d(3, 3, 3, stride=(2, 1), padding=1), "Conv2d, stride (2, 1): a non-square stride"),
    # MaxBlurPool returns one tensor: the user's MaxUnpool2d then failed deep in forward.
    (nn.MaxPool2d(2, return_indices=True), "MaxPool2d, stride 2: ceil_mode, return_indices or dilation"),
])
def test_a_layer_it_cannot_rewrite_is_named_and_nothing_changes(layer, why) -> None:
    """A strided Conv2d subclass was left aliased without a word (the plain conv beside it
    converted); ceil_mode and AvgPool2d(4, 2) lost their output size."""
    net = nn.Sequential(nn.Conv2d(3, 3, 3, stride=2, padding=1), nn.ReLU(), layer)
    before = copy.deepcopy(net)
    with pytest.raises(ValueError, match=rf"cannot anti-alias 1 subsampling layer\(s\) of Sequential and keep the "
                                         rf"output size: 2 \({re.escape(why)}"):
        antialias(net)
    assert str(net) == str(before)  # checked before anything changed
    with pytest.raises(ValueError, match=r"a bare Conv2d has no parent .*nn.Sequential\(Conv2d"):
        antialias(nn.Conv2d(3, 8, 3, stride=2, padding=1))


def test_a_strided_layer_used_in_two_places_is_refused() -> None:
    """Its stride set to 1 for one place left the other without its subsampling: 16 -> 32 px."""
    shared = nn.Conv2d(3, 3, 3, stride=2, padding=1)
    net = nn.Sequential(nn.Sequential(shared, nn.ReLU()), nn.Upsample(scale_factor=2), nn.Sequential(shared))
    with pytest.raises(ValueError, match=r"0.0 and 2.0 \(one Conv2d in 2 places\)"):
        antialias(net)
    assert shared.stride == (2, 2)
