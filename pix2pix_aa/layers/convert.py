"""``antialias(model)``: rewrite a classifier's subsampling in place the way Zhang (2019) does.

Rules (all parameter-free, so the parameter count is unchanged and a state_dict of the original
model loads strictly into the converted one):

* ``Conv(stride s) -> [norm] -> act`` inside a ``nn.Sequential`` (DenseNet's stem, AlexNet,
  MobileNet-style stacks): the conv runs at stride 1 and ``BlurPool(s)`` follows the activation
  (the paper's order: dense conv and non-linearity, blurred subsampling).
* torchvision ResNets: the block's strided conv runs at stride 1 and its *next* conv (after
  BN + ReLU) becomes ``BlurPool(s) -> conv`` (:class:`BlurConv2d`); the 1x1 shortcut conv becomes
  ``BlurPool(s) -> conv 1x1``; the stem conv runs at stride 1 with BlurPool after its ReLU.
  This is the layout of ``antialiased_cnns.resnet*``.
* any other strided conv (activation not adjacent): ``BlurPool(s) -> conv`` (BlurConv2d) for a
  "same" conv (3x3 with padding 1, 1x1), else ``Blur -> conv stride s``: either keeps its output size.
* ``MaxPool2d(k, s, p)`` -> ``MaxPool2d(k, 1, p) -> BlurPool(s)`` (MaxBlurPool).
* ``AvgPool2d(s)`` -> ``BlurPool(s)``. Adaptive pools (global pooling) are left alone.

Layers it cannot rewrite so that the output keeps its size (``ceil_mode`` pools, ``AvgPool2d``
with a kernel other than its stride, subclasses of ``nn.Conv2d``, strided 1-D / 3-D convs and
pools, LPPool) are refused before anything changes, never left aliased without a word.

With ``keep_stem=True`` the first strided conv (the 7x7 stem) stays strided, as
``antialiased-cnns`` does by default (``pool_only=True``): the stem at stride 1 costs 4x its
compute for little gain.
"""

from __future__ import annotations

from torch import nn

from pix2pix_aa.layers.blur_pool import BlurPool, FilterSpec, filter_size
from pix2pix_aa.layers.conv_blur_pool import BlurConv2d
from pix2pix_aa.layers.padding import pad_mode
from pix2pix_aa.layers.pooling import MaxBlurPool, blur_pool_from_avg_pool, max_blur_pool_from_max_pool

__all__ = ["antialias", "count_parameters"]

_NORMS = (nn.BatchNorm2d, nn.GroupNorm, nn.InstanceNorm2d, nn.LayerNorm, nn.LocalResponseNorm)
_ACTS = (nn.ReLU, nn.ReLU6, nn.LeakyReLU, nn.ELU, nn.SELU, nn.CELU, nn.GELU, nn.SiLU, nn.Mish,
         nn.Hardswish, nn.Hardtanh, nn.Tanh, nn.Sigmoid, nn.Hardsigmoid)


def count_parameters(model: nn.Module) -> int:
    """Number of parameter elements (shared parameters counted once)."""
    return sum(p.numel() for p in model.parameters())


def _stride(conv: nn.Conv2d) -> int:
    sh, sw = conv.stride
    if sh != sw:
        raise ValueError(f"only square strides can be anti-aliased, got {conv}")
    return sh


def _is_strided_conv(m: nn.Module) -> bool:
    return type(m) is nn.Conv2d and max(m.stride) > 1  # BlurConv2d (a subclass) is done already


class _Converter:
    def __init__(self, filt_size: FilterSpec, pad_type: str, keep_stem: bool) -> None:
        self.filt_size, self.pad_type = filt_size, pad_type
        self.stem_left = keep_stem  # True until the first strided conv has been skipped
        self.kept: set[int] = set()  # ids of convs deliberately left strided (the stem)
        self.count = 0

    def blur(self, channels: int | None, stride: int) -> BlurPool:
        return BlurPool(channels, self.filt_size, stride=stride, pad_type=self.pad_type)

    def skip_stem(self, conv: nn.Conv2d) -> bool:
        """True (once) for the first strided conv when ``keep_stem``; it is then left alone."""
        if self.stem_left:
            self.stem_left = False
            self.kept.add(id(conv))
            return True
        return False

    def todo(self, m: nn.Module) -> bool:
        return _is_strided_conv(m) and id(m) not in self.kept

    # -- torchvision ResNet ------------------------------------------------------------------
    def resnet(self, model: nn.Module) -> None:
        conv1 = model.conv1
        s = _stride(conv1)
        if s > 1 and not self.skip_stem(conv1):
            conv1.stride = (1, 1)
            model.relu = nn.Sequential(model.relu, self.blur(conv1.out_channels, s).to(conv1.weight.device))
            self.count += 1
        for layer in (model.layer1, model.layer2, model.layer3, model.layer4):
            for block in layer:
                self.resnet_block(block)

    def resnet_block(self, block: nn.Module) -> None:
        # BasicBlock: conv1 (stride) -> bn1 -> relu -> conv2; Bottleneck (V1.5): conv2 carries it.
        strided, follower = ("conv2", "conv3") if hasattr(block, "conv3") else ("conv1", "conv2")
        conv = getattr(block, strided)
        s = _stride(conv)
        if s > 1:
            conv.stride = (1, 1)
            setattr(block, follower, BlurConv2d.from_conv(getattr(block, follower), self.filt_size,
                                                          self.pad_type, blur_stride=s))
            self.count += 1
        down = getattr(block, "downsample", None)
        if isinstance(down, nn.Sequential) and len(down) and self.todo(down[0]):
            down[0] = BlurConv2d.from_conv(down[0], self.filt_size, self.pad_type)
            self.count += 1

    # -- generic -----------------------------------------------------------------------------
    def sequential(self, seq: nn.Sequential) -> None:
        """``Conv(s) -> [norm] -> act`` in a Sequential: stride 1, BlurPool after the act."""
        mods = list(seq._modules.items())
        for i, (_, conv) in enumerate(mods):
            if not self.todo(conv):
                continue
            j = i + 1
            while j < len(mods) and isinstance(mods[j][1], _NORMS):
                j += 1
            if j < len(mods) and isinstance(mods[j][1], _ACTS) and not list(mods[j][1].parameters()):
                if self.skip_stem(conv):
                    continue
                s = _stride(conv)
                conv.stride = (1, 1)
                name, act = mods[j]
                seq._modules[name] = nn.Sequential(act, self.blur(conv.out_channels, s).to(conv.weight.device))
                self.count += 1

    def leftovers(self, model: nn.Module) -> None:
        """Strided convs no rule above matched, and the pools."""
        for parent in list(model.modules()):
            for name, child in list(parent._modules.items()):
                if self.todo(child):
                    if self.skip_stem(child):
                        continue
                    parent._modules[name] = BlurConv2d.from_conv(child, self.filt_size, self.pad_type)
                elif type(child) is nn.MaxPool2d and _int_stride(child.stride) > 1:
                    parent._modules[name] = max_blur_pool_from_max_pool(child, None, self.filt_size, self.pad_type)
                elif type(child) is nn.AvgPool2d and _int_stride(child.stride or child.kernel_size) > 1:
                    parent._modules[name] = blur_pool_from_avg_pool(child, None, self.filt_size, self.pad_type)
                else:
                    continue
                self.count += 1


def _int_stride(stride: int | tuple[int, ...]) -> int:
    return stride if isinstance(stride, int) else max(stride)


def _not_convertible(m: nn.Module) -> str | None:
    """Why the subsampling layer ``m`` cannot be converted so that its output keeps its size, or
    None (converted, already anti-aliased, or not subsampling)."""
    from torch.nn.modules.conv import _ConvNd
    from torch.nn.modules.pooling import _AvgPoolNd, _LPPoolNd, _MaxPoolNd

    if isinstance(m, (BlurPool, BlurConv2d, MaxBlurPool)):
        return None
    if isinstance(m, _ConvNd) and not m.transposed:
        strided = _int_stride(m.stride) > 1
    elif isinstance(m, (_MaxPoolNd, _AvgPoolNd, _LPPoolNd)):
        strided = _int_stride(m.stride if m.stride is not None else m.kernel_size) > 1
    else:
        return None
    if not strided:
        return None
    pair = nn.modules.utils._pair
    if type(m) is nn.Conv2d:
        return None if m.stride[0] == m.stride[1] else "a non-square stride"
    if type(m) is nn.MaxPool2d:
        if m.ceil_mode or m.return_indices or pair(m.dilation) != (1, 1):
            return "ceil_mode, return_indices or dilation"
        k, stride, pad = (pair(v) for v in (m.kernel_size, m.stride or m.kernel_size, m.padding))
        return None if k[0] == k[1] and stride[0] == stride[1] and pad[0] == pad[1] else "not square"
    if type(m) is nn.AvgPool2d:
        if m.divisor_override is not None:  # a sum (or scaled) pool: the unit-gain blur would change its scale
            return f"divisor_override={m.divisor_override}"
        k, stride, pad = (pair(v) for v in (m.kernel_size, m.stride or m.kernel_size, m.padding))
        return None if k == stride and stride[0] == stride[1] and pad == (0, 0) and not m.ceil_mode else \
            "kernel size not its stride, not square, padding or ceil_mode (its blur replacement would change the " \
            "output size)"
    return "a layer type this function does not rewrite"


def _is_torchvision_resnet(model: nn.Module) -> bool:
    try:
        from torchvision.models.resnet import ResNet
    except ImportError:  # pragma: no cover - torchvision is a dependency
        return False
    return isinstance(model, ResNet)


def antialias(model: nn.Module, filt_size: FilterSpec = 4, pad_type: str = "reflect",
              keep_stem: bool = False) -> nn.Module:
    """Anti-alias ``model``'s strided convs and pools in place (see the module docstring).

    Args:
        model: e.g. ``torchvision.models.resnet18()``, ``vgg16()``, ``densenet121()``.
        filt_size: blur filter 1..7 or a name (``"bin4"``, the paper's default for ImageNet;
            ``"kaiser7_c0.2_w0.1"``: :func:`pix2pix_aa.layers.filters.parse_filter`).
        pad_type: padding of the blurs.
        keep_stem: leave the first strided conv strided (``antialiased-cnns``' ``pool_only``).

    Returns:
        The same ``model`` object, converted. Its parameters (the same tensors) and state_dict
        keys are unchanged; spatial output sizes match the original for inputs whose sides are
        divisible by the total stride.

    Raises:
        ValueError: unknown filter / pad type, nothing to anti-alias in ``model``, a subsampling
            layer it cannot rewrite (named; nothing changed), or a bare conv / pool (no parent).
    """
    if filter_size(filt_size) == 0:
        raise ValueError("antialias needs a filter (1..7 or a name such as 'bin4'), got 'none'")
    pad_mode(pad_type)
    # Checked before anything changes: a model left partly aliased, or whose sizes changed, would
    # be a plausible wrong answer.
    left = [f"{name or '(the model)'} ({type(m).__name__}, stride {m.stride}: {why})"
            for name, m in model.named_modules() if (why := _not_convertible(m))]
    uses: dict[int, list[str]] = {}
    for name, m in model.named_modules(remove_duplicate=False):
        if _is_strided_conv(m) or type(m) in (nn.MaxPool2d, nn.AvgPool2d):
            uses.setdefault(id(m), []).append(name)
    # One layer in two places: the rewrite of one place (its stride set to 1) would reach the other.
    left += [f"{' and '.join(names)} (one {type(model.get_submodule(names[0])).__name__} in {len(names)} places)"
             for names in uses.values() if len(names) > 1]
    if left:
        raise ValueError(f"antialias cannot anti-alias {len(left)} subsampling layer(s) of {type(model).__name__} "
                         f"and keep the output size: {'; '.join(left[:3])}{' ...' if len(left) > 3 else ''}; replace "
                         "them by nn.Conv2d / nn.MaxPool2d / nn.AvgPool2d(k), or add BlurPool yourself")
    if not model._modules and _is_strided_conv(model) or type(model) in (nn.MaxPool2d, nn.AvgPool2d):
        raise ValueError(f"antialias rewrites a model's layers in place, and a bare {type(model).__name__} has no "
                         f"parent to hold its replacement: pass nn.Sequential({type(model).__name__}(...))")
    before = count_parameters(model)
    conv = _Converter(filt_size, pad_type, keep_stem)  # the spec itself: a Kaiser name was once cut to its taps
    if _is_torchvision_resnet(model):
        conv.resnet(model)
    for m in list(model.modules()):
        if isinstance(m, nn.Sequential):
            conv.sequential(m)
    conv.leftovers(model)
    params = list(model.parameters())
    if params:  # new blurs were built on the CPU: put their filters beside the weights
        for m in model.modules():
            if isinstance(m, BlurPool):
                m.to(device=params[0].device)
    if conv.count == 0:
        raise ValueError(f"antialias found no strided conv or pool in {type(model).__name__}")
    if count_parameters(model) != before:  # pragma: no cover - guards the rules above
        raise RuntimeError("antialias changed the parameter count; this is a bug")
    return model
