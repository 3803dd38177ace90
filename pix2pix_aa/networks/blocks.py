"""Building blocks shared by the generator and the discriminator: norm factory, padded conv,
and the (optionally anti-aliased) downsampling conv block."""

from __future__ import annotations

import functools
from typing import Callable

import torch
from torch import nn

from pix2pix_aa.layers import Blur, BlurPool, filter_size
from pix2pix_aa.layers.blur_pool import FilterSpec, _pad_mode, _safe_pad
from pix2pix_aa.layers.polyphase import APSConvTranspose2d, APSDown

NORMS = ("batch", "instance", "none")
#: How a strided conv is anti-aliased. ``conv_blur`` is the paper's ConvBlurPool (conv at
#: stride 1 -> norm -> activation -> BlurPool); ``blur_conv`` is the cheaper StyleGAN2-style
#: blur -> strided conv, which is *not* the paper's method (it low-passes the input, but the
#: nonlinearity after the conv can alias again).
ANTIALIAS_MODES = ("conv_blur", "blur_conv")


def norm_factory(norm: str) -> Callable[[int], nn.Module]:
    """``batch`` (affine, running stats), ``instance`` (no affine, no running stats, as pix2pix)
    or ``none``."""
    if norm == "batch":
        return functools.partial(nn.BatchNorm2d, affine=True, track_running_stats=True)
    if norm == "instance":
        return functools.partial(nn.InstanceNorm2d, affine=False, track_running_stats=False)
    if norm == "none":
        return lambda channels: nn.Identity()
    raise ValueError(f"unknown norm {norm!r}; valid: {', '.join(map(repr, NORMS))}")


def check_choice(name: str, value: str, valid: tuple[str, ...]) -> str:
    if value not in valid:
        raise ValueError(f"unknown {name} {value!r}; valid: {', '.join(map(repr, valid))}")
    return value


class PaddedConv2d(nn.Conv2d):
    """Conv2d with explicit (left, right, top, bottom) padding of any mode.

    The stride-1 4x4 conv of the anti-aliased encoder needs asymmetric padding (1, 2): output
    i then sees inputs i-1..i+2, so subsampling it at even positions sees exactly what the
    reference's stride-2, padding-1 conv sees (same receptive field and alignment).
    Keeps ``weight``/``bias`` names, so parameter counts and state_dict keys match nn.Conv2d.
    """

    def __init__(self, in_channels: int, out_channels: int, kernel_size: int, stride: int = 1,
                 pad: tuple[int, int, int, int] = (0, 0, 0, 0), pad_type: str = "zero",
                 bias: bool = True) -> None:
        super().__init__(in_channels, out_channels, kernel_size, stride=stride, padding=0, bias=bias)
        self.pad, self.pad_mode = tuple(pad), _pad_mode(pad_type)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return super().forward(_safe_pad(x, self.pad, self.pad_mode))

    def extra_repr(self) -> str:
        return super().extra_repr() + f", pad={self.pad}, pad_mode={self.pad_mode!r}"


def conv4(in_channels: int, out_channels: int, stride: int, pad_type: str, bias: bool) -> nn.Conv2d:
    """The pix2pix 4x4 conv. Stride 2: symmetric padding 1 (the reference). Stride 1: padding
    (1, 2) so it lines up with the stride-2 version (see PaddedConv2d)."""
    if stride == 2 and pad_type in ("zero", "zeros"):
        return nn.Conv2d(in_channels, out_channels, 4, stride=2, padding=1, bias=bias)
    pad = (1, 1, 1, 1) if stride == 2 else (1, 2, 1, 2)
    return PaddedConv2d(in_channels, out_channels, 4, stride=stride, pad=pad, pad_type=pad_type, bias=bias)


def default_blur_pad(pad_type: str) -> str:
    """Blur padding that goes with a conv padding: circular stays circular (exact circular
    equivariance), anything else blurs with reflect padding (the paper's default)."""
    return "circular" if pad_type == "circular" else "reflect"


def down_block(in_channels: int, out_channels: int, *, norm: str | None, act: nn.Module | None,
               antialias: FilterSpec = "none", mode: str = "conv_blur", pad_type: str = "zero",
               blur_pad_type: str | None = None, bias: bool = True) -> nn.Sequential:
    """A 4x4 downsampling conv block: ``conv(stride 2) -> norm -> act`` and its anti-aliased forms.

    * ``antialias="none"``: conv stride 2 -> norm -> act (the pix2pix reference).
    * ``conv_blur`` (paper): conv stride 1 -> norm -> act -> BlurPool(stride 2). The activation
      comes *before* the blur-subsample, so no nonlinearity acts after it to re-alias.
    * ``blur_conv`` (cheap, StyleGAN2-like): Blur(stride 1) -> conv stride 2 -> norm -> act.

    Shape: (N, in, H, W) -> (N, out, H/2, W/2). No mode adds parameters.
    """
    size = filter_size(antialias)
    check_choice("antialias_mode", mode, ANTIALIAS_MODES)
    blur_pad = blur_pad_type or default_blur_pad(pad_type)
    layers: list[nn.Module] = []
    if size and mode == "blur_conv":
        layers.append(Blur(in_channels, size, pad_type=blur_pad))
    paper = bool(size) and mode == "conv_blur"
    layers.append(conv4(in_channels, out_channels, 1 if paper else 2, pad_type, bias))
    if norm is not None:
        layers.append(norm_factory(norm)(out_channels))
    if act is not None:
        layers.append(act)
    if paper:
        layers.append(BlurPool(out_channels, size, stride=2, pad_type=blur_pad))
    return nn.Sequential(*layers)


def up_conv(in_channels: int, out_channels: int, *, upsample: str, antialias: FilterSpec,
            blur_pad_type: str, bias: bool) -> nn.Sequential:
    """2x upsampling conv, optionally followed by a blur at the high resolution (anti-imaging).

    ``transpose``: 4x4 transposed conv, stride 2, padding 1 (the reference).
    ``nearest`` / ``bilinear``: resize x2 then a 3x3 conv (fewer parameters than ``transpose``;
    not the reference architecture).
    The blur's filter sums to 1, so it keeps a constant map constant.
    """
    if upsample == "transpose":
        layers: list[nn.Module] = [nn.ConvTranspose2d(in_channels, out_channels, 4, 2, 1, bias=bias)]
    elif upsample in ("nearest", "bilinear"):
        layers = [nn.Upsample(scale_factor=2, mode=upsample),
                  nn.Conv2d(in_channels, out_channels, 3, padding=1, bias=bias)]
    else:
        raise ValueError(f"unknown upsample {upsample!r}; valid: 'transpose', 'nearest', 'bilinear'")
    size = filter_size(antialias)
    if size:
        layers.append(Blur(out_channels, size, pad_type=blur_pad_type))
    return nn.Sequential(*layers)


def aps_down_block(in_channels: int, out_channels: int, *, norm: str | None, act: nn.Module | None,
                   filt_size: int = 0, aps_norm: str = "l2", bias: bool = True) -> nn.Sequential:
    """The APS form of the 4x4 downsampling block (always circular padding):
    conv(stride 1, circular (1, 2) padding) -> norm -> act -> [circular blur] -> APS(stride 2).

    Phase 0 of the stride-1 conv is the sampling grid of the stride-2, padding-1 conv (see
    PaddedConv2d). Module indices (conv 0, norm 1) match :func:`down_block`, so state_dict keys
    are those of the baseline. Returns ``(features, phase)``: the last module is
    :class:`~pix2pix_aa.layers.polyphase.APSDown`.

    Shape: (N, in, H, W) -> ((N, out, H/2, W/2), (N,) int64).
    """
    layers: list[nn.Module] = [conv4(in_channels, out_channels, 1, "circular", bias)]
    if norm is not None:
        layers.append(norm_factory(norm)(out_channels))
    if act is not None:
        layers.append(act)
    layers.append(APSDown(out_channels, filt_size, stride=2, norm=aps_norm))
    return nn.Sequential(*layers)


def aps_up_conv(in_channels: int, out_channels: int, *, filt_size: int, bias: bool) -> nn.Sequential:
    """APS-U counterpart of :func:`up_conv` (``transpose``): the 4x4, stride-2, padding-1
    transposed conv applied as zero insertion at the encoder's phase -> stride-1 transposed conv
    with circular padding [-> circular blur]. Same parameters and state_dict keys as ``up_conv``;
    call the layer as ``layer[0](x, phase)``."""
    return nn.Sequential(APSConvTranspose2d(in_channels, out_channels, 4, 2, 1, bias=bias,
                                            pad_type="circular", filt_size=filt_size))
