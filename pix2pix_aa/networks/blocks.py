"""Building blocks shared by the generator and the discriminator: norm factory, padded conv,
the resolved down- and up-sampling of a level, and the blocks built from them.

Anti-aliasing follows timm's ``create_aa`` pattern: a config value is resolved *once* into a
:class:`Downsample` / :class:`Upsample` (what to put before the conv, the conv's stride, what
to put after it), and the blocks assemble whatever those return, never branching on the
anti-aliasing themselves. Layers resolved to ``nn.Identity`` are left out of the block, so a
block's module indices (hence its state_dict keys) are those of the reference pix2pix for the
baseline and are unchanged by any anti-aliasing option (docs/DESIGN.md section 3).
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from dataclasses import dataclass
from typing import Optional

import torch
from torch import nn

from pix2pix_aa.layers.blur_pool import Blur, BlurPool, FilterSpec, filter_size
from pix2pix_aa.layers.padding import pad_mode, safe_pad
from pix2pix_aa.layers.polyphase import APSConvTranspose2d, APSDown

NORMS = ("batch", "instance", "none")
#: How a strided conv is anti-aliased. ``conv_blur`` is the paper's ConvBlurPool (conv at
#: stride 1 -> norm -> activation -> BlurPool); ``blur_conv`` is the cheaper StyleGAN2-style
#: blur -> strided conv, which is *not* the paper's method (it low-passes the input, but the
#: nonlinearity after the conv can alias again).
ANTIALIAS_MODES = ("conv_blur", "blur_conv")
#: Upsampling layers of a decoder level: the reference's transposed conv, or resize + 3x3 conv.
UPSAMPLE_MODES = ("transpose", "nearest", "bilinear")


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
    """``value`` if it is one of ``valid``, else a ValueError naming the valid choices."""
    if value not in valid:
        raise ValueError(f"unknown {name} {value!r}; valid: {', '.join(map(repr, valid))}")
    return value


class PaddedConv2d(nn.Conv2d):
    """Conv2d with explicit (left, right, top, bottom) padding of any mode.

    The stride-1 4x4 conv of the anti-aliased encoder needs asymmetric padding (1, 2): output
    i then sees inputs i-1..i+2, so subsampling it at even positions sees exactly what the
    reference's stride-2, padding-1 conv sees (same receptive field and alignment).
    Keeps ``weight``/``bias`` names, so parameter counts and state_dict keys match nn.Conv2d.

    Shape:
        (N, C_in, H, W) -> (N, C_out, H', W') with H' = (H + top + bottom - k) // stride + 1.
    """

    def __init__(self, in_channels: int, out_channels: int, kernel_size: int, stride: int = 1,
                 pad: tuple[int, int, int, int] = (0, 0, 0, 0), pad_type: str = "zero",
                 bias: bool = True) -> None:
        super().__init__(in_channels, out_channels, kernel_size, stride=stride, padding=0, bias=bias)
        self.pad, self.pad_mode = tuple(pad), pad_mode(pad_type)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return super().forward(safe_pad(x, self.pad, self.pad_mode))

    def extra_repr(self) -> str:
        return super().extra_repr() + f", pad={self.pad}, pad_mode={self.pad_mode!r}"


def conv4(in_channels: int, out_channels: int, stride: int, pad_type: str, bias: bool) -> nn.Conv2d:
    """The pix2pix 4x4 conv. Stride 2: symmetric padding 1 (the reference). Stride 1: padding
    (1, 2) so it lines up with the stride-2 version (see PaddedConv2d)."""
    if stride == 2 and pad_type in ("zero", "zeros"):
        return nn.Conv2d(in_channels, out_channels, 4, stride=2, padding=1, bias=bias)
    pad = (1, 1, 1, 1) if stride == 2 else (1, 2, 1, 2)
    return PaddedConv2d(in_channels, out_channels, 4, stride=stride, pad=pad, pad_type=pad_type, bias=bias)


def conv3(in_channels: int, out_channels: int, pad_type: str, bias: bool) -> nn.Conv2d:
    """A stride-1 3x3 conv padded by 1 on every side; zero padding uses ``nn.Conv2d``'s own.

    Shape: (N, in, H, W) -> (N, out, H, W).
    """
    if pad_type in ("zero", "zeros"):
        return nn.Conv2d(in_channels, out_channels, 3, padding=1, bias=bias)
    return PaddedConv2d(in_channels, out_channels, 3, pad=(1, 1, 1, 1), pad_type=pad_type, bias=bias)


def default_blur_pad(pad_type: str) -> str:
    """Blur padding that goes with a conv padding: circular stays circular (exact circular
    equivariance), anything else blurs with reflect padding (the paper's default)."""
    return "circular" if pad_type == "circular" else "reflect"


# -- resolved anti-aliasing --------------------------------------------------------------------
@dataclass(frozen=True)
class Downsample:
    """How a 4x4 conv level halves the resolution, resolved once from the config.

    Attributes:
        filt: the low-pass filter (``none``: the reference strided conv).
        mode: ``conv_blur`` (paper: conv s1 -> norm -> act -> BlurPool), ``blur_conv`` (Blur ->
            conv s2) or ``aps`` (conv s1 -> norm -> act -> [circular blur] -> APS).
        pad_type: the conv's padding; blur_pad_type: the blur's.
        aps_norm: APS only: the norm that picks the polyphase component.
    """

    filt: FilterSpec = "none"
    mode: str = "conv_blur"
    pad_type: str = "zero"
    blur_pad_type: str = "reflect"
    aps_norm: str = "l2"

    @property
    def conv_stride(self) -> int:
        """2 for the reference and ``blur_conv``; 1 when the subsampling comes after the act."""
        dense = self.mode == "aps" or (self.mode == "conv_blur" and filter_size(self.filt) > 0)
        return 1 if dense else 2

    def pre(self, channels: int) -> nn.Module:
        """The layer before the conv: a stride-1 Blur for ``blur_conv``, else Identity."""
        if self.mode == "blur_conv" and filter_size(self.filt):
            return Blur(channels, self.filt, pad_type=self.blur_pad_type)
        return nn.Identity()

    def post(self, channels: int) -> nn.Module:
        """The layer after the activation: BlurPool (``conv_blur``), APSDown (``aps``) or Identity."""
        if self.mode == "aps":
            return APSDown(channels, filter_size(self.filt), stride=2, norm=self.aps_norm)
        if self.mode == "conv_blur" and filter_size(self.filt):
            return BlurPool(channels, self.filt, stride=2, pad_type=self.blur_pad_type)
        return nn.Identity()


@dataclass(frozen=True)
class Upsample:
    """How a decoder level doubles the resolution, resolved once from the config.

    Attributes:
        kind: ``transpose`` (4x4 transposed conv, stride 2, padding 1: the reference),
            ``nearest`` / ``bilinear`` (resize x2, then a 3x3 conv) or ``aps`` (APS-U).
        filt: the anti-imaging low-pass after the upsampling (``none``: no blur).
        pad_type: the 3x3 conv's padding; blur_pad_type: the blur's.
    """

    kind: str = "transpose"
    filt: FilterSpec = "none"
    pad_type: str = "zero"
    blur_pad_type: str = "reflect"

    def layers(self, in_channels: int, out_channels: int, bias: bool) -> list[nn.Module]:
        """The upsampling layers, then the blur (or Identity)."""
        if self.kind == "aps":
            return [APSConvTranspose2d(in_channels, out_channels, 4, 2, 1, bias=bias, pad_type="circular",
                                       filt_size=filter_size(self.filt))]
        if self.kind == "transpose":
            up: list[nn.Module] = [nn.ConvTranspose2d(in_channels, out_channels, 4, 2, 1, bias=bias)]
        else:
            up = [nn.Upsample(scale_factor=2, mode=self.kind), conv3(in_channels, out_channels, self.pad_type, bias)]
        blur = Blur(out_channels, self.filt, pad_type=self.blur_pad_type) if filter_size(self.filt) else nn.Identity()
        return [*up, blur]


class Level(nn.Sequential):
    """A block of a U-Net level: its layers in order, with the APS polyphase index threaded
    through (APSDown produces it, APS-U consumes it; every other layer ignores it).

    ``forward`` is ``nn.Sequential``'s (for blocks without APS); :meth:`run` is what the U-Net
    calls. The phase is a local value of the call, never module state (safe under DDP,
    threads and ``torch.no_grad``).
    """

    def run(self, x: torch.Tensor, phase: Optional[torch.Tensor] = None
            ) -> tuple[torch.Tensor, Optional[torch.Tensor]]:
        """Shape: (N, C, H, W), (N,) or None -> (N, C', H', W'), (N,) or None."""
        for layer in self:
            if isinstance(layer, Level):
                x, phase = layer.run(x, phase)
            elif isinstance(layer, APSDown):
                x, phase = layer(x)
            elif isinstance(layer, APSConvTranspose2d):
                x = layer(x, phase)
            else:
                x = layer(x)
        return x, phase


def _assemble(*layers: nn.Module) -> Level:
    """A Level of ``layers`` without the Identity placeholders (the reference's indices)."""
    return Level(*[layer for layer in layers if not isinstance(layer, nn.Identity)])


def resolve_downsample(antialias: FilterSpec = "none", mode: str = "conv_blur", pad_type: str = "zero",
                       blur_pad_type: Optional[str] = None) -> Downsample:
    """A :class:`Downsample` from config values, validated (unknown filters / modes raise)."""
    filter_size(antialias)
    check_choice("antialias_mode", mode, ANTIALIAS_MODES)
    blur_pad = blur_pad_type or default_blur_pad(pad_type)
    pad_mode(pad_type)
    pad_mode(blur_pad)
    return Downsample(antialias, mode, pad_type, blur_pad)


def down_block(in_channels: int, out_channels: int, *, norm: str | None, act: nn.Module | None,
               antialias: FilterSpec | Downsample = "none", mode: str = "conv_blur", pad_type: str = "zero",
               blur_pad_type: str | None = None, bias: bool = True) -> Level:
    """A 4x4 downsampling conv block: ``conv(stride 2) -> norm -> act`` and its anti-aliased forms.

    * ``antialias="none"``: conv stride 2 -> norm -> act (the pix2pix reference).
    * ``conv_blur`` (paper): conv stride 1 -> norm -> act -> BlurPool(stride 2). The activation
      comes *before* the blur-subsample, so no nonlinearity acts after it to re-alias.
    * ``blur_conv`` (cheap, StyleGAN2-like): Blur(stride 1) -> conv stride 2 -> norm -> act.
    * a resolved :class:`Downsample` (``antialias=Downsample(...)``; ``mode`` etc. then unused),
      which is also how the APS form is built.

    Shape: (N, in, H, W) -> (N, out, H/2, W/2) (APS: ``run`` also returns the (N,) phase).
    No mode adds parameters.
    """
    spec = antialias if isinstance(antialias, Downsample) else \
        resolve_downsample(antialias, mode, pad_type, blur_pad_type)
    return _assemble(spec.pre(in_channels),
                     conv4(in_channels, out_channels, spec.conv_stride, spec.pad_type, bias),
                     norm_factory(norm)(out_channels) if norm is not None else nn.Identity(),
                     act if act is not None else nn.Identity(),
                     spec.post(out_channels))


def up_conv(in_channels: int, out_channels: int, *, upsample: str | Upsample = "transpose",
            antialias: FilterSpec = "none", blur_pad_type: str = "reflect", bias: bool = True,
            pad_type: str = "zero") -> Level:
    """2x upsampling conv, optionally followed by a blur at the high resolution (anti-imaging).

    ``transpose``: 4x4 transposed conv, stride 2, padding 1 (the reference).
    ``nearest`` / ``bilinear``: resize x2 then a 3x3 conv (fewer parameters than ``transpose``;
    not the reference architecture). A resolved :class:`Upsample` is used as it is.
    The blur's filter sums to 1, so it keeps a constant map constant.

    Shape: (N, in, H, W) -> (N, out, 2H, 2W).
    """
    if not isinstance(upsample, Upsample):
        if upsample not in UPSAMPLE_MODES:
            raise ValueError(f"unknown upsample {upsample!r}; valid: 'transpose', 'nearest', 'bilinear'")
        filter_size(antialias)
        upsample = Upsample(upsample, antialias, pad_type, blur_pad_type)
    return _assemble(*upsample.layers(in_channels, out_channels, bias))


def aps_down_block(in_channels: int, out_channels: int, *, norm: str | None, act: nn.Module | None,
                   filt_size: int = 0, aps_norm: str = "l2", bias: bool = True) -> Level:
    """The APS form of the 4x4 downsampling block (always circular padding):
    conv(stride 1, circular (1, 2) padding) -> norm -> act -> [circular blur] -> APS(stride 2).

    Phase 0 of the stride-1 conv is the sampling grid of the stride-2, padding-1 conv (see
    PaddedConv2d). Module indices (conv 0, norm 1) match :func:`down_block`, so state_dict keys
    are those of the baseline. ``run`` returns ``(features, phase)``: the last module is
    :class:`~pix2pix_aa.layers.polyphase.APSDown`.

    Shape: (N, in, H, W) -> ((N, out, H/2, W/2), (N,) int64).
    """
    spec = Downsample(filt_size, "aps", "circular", "circular", aps_norm)
    return down_block(in_channels, out_channels, norm=norm, act=act, antialias=spec, bias=bias)


def aps_up_conv(in_channels: int, out_channels: int, *, filt_size: int, bias: bool) -> Level:
    """APS-U counterpart of :func:`up_conv` (``transpose``): the 4x4, stride-2, padding-1
    transposed conv applied as zero insertion at the encoder's phase -> stride-1 transposed conv
    with circular padding [-> circular blur]. Same parameters and state_dict keys as ``up_conv``;
    call it as ``level.run(x, phase)``.

    Shape: (N, in, H, W), (N,) -> (N, out, 2H, 2W).
    """
    return up_conv(in_channels, out_channels, upsample=Upsample("aps", filt_size), bias=bias)
