"""The pix2pix U-Net generator (Isola et al. 2017), with the anti-aliasing of Zhang (2019).

The reference (junyanz/pytorch-CycleGAN-and-pix2pix) builds the U-Net from recursive skip
blocks whose in-place LeakyReLU also rewrites the skip tensor. Unrolled, it is this chain,
which is what we build (same parameters, same function):

    encoder level i:  h_i = act(norm(conv4_s2(h_{i-1})))   (no norm at the first and innermost
                      level; act = LeakyReLU(0.2), ReLU at the innermost level)
    decoder level i:  u_i = dropout(norm(convT4_s2(relu(cat(h_i, u_{i+1})))))
                      (innermost: no cat, no relu; outermost: tanh, no norm, bias)

Anti-aliasing (``antialias`` = a filter name) turns each encoder level into the paper's
ConvBlurPool, conv(stride 1) -> norm -> act -> BlurPool(stride 2): the activation is applied
at full resolution *before* the blur-subsample, and the next level starts with a conv, so no
nonlinearity follows the subsampling before the next low-pass. The skip tensors are the
anti-aliased h_i. ``upsample_antialias`` adds a blur after each transposed conv.
"""

from __future__ import annotations

import math
from typing import Optional

import torch
import torch.nn.functional as F
from torch import nn

from pix2pix_aa.layers import filter_size
from pix2pix_aa.layers.blur_pool import FilterSpec, _pad_mode
from pix2pix_aa.networks.blocks import (
    ANTIALIAS_MODES,
    NORMS,
    check_choice,
    default_blur_pad,
    down_block,
    norm_factory,
    up_conv,
)

__all__ = ["UNetGenerator"]


class UNetGenerator(nn.Module):
    """pix2pix U-Net generator with optional anti-aliasing.

    Args:
        in_channels / out_channels: image channels (3 -> 3 for facades).
        num_downs: number of 2x downsamplings; 8 for 256x256 (``unet_256``), 7 for 128x128.
        ngf: filters in the first conv layer.
        norm: ``batch`` | ``instance`` | ``none``.
        dropout: dropout rate in the three innermost non-bottleneck decoder levels (0 = off).
        antialias: ``none`` (the reference) or a BlurPool filter: ``rect2``, ``tri3``, ``bin4``,
            ``bin5`` (or a size 1..7).
        antialias_mode: ``conv_blur`` (the paper: conv s1 -> act -> BlurPool) or ``blur_conv``
            (cheap: blur -> strided conv; not the paper's method).
        upsample_antialias: blur after each upsampling; ``None`` = on whenever ``antialias``
            is on. Set False for encoder-only anti-aliasing.
        pad_type: conv padding, ``zero`` (reference), ``reflect``, ``replicate``, ``circular``.
        blur_pad_type: padding of the blurs; default reflect (circular with circular convs).
        upsample: ``transpose`` (reference), ``nearest`` or ``bilinear`` (+ 3x3 conv).
        pad_input: if True, inputs whose size is not a multiple of 2**num_downs are reflect-
            padded up to one and the output is cropped back; if False (default) they raise.

    Shape:
        (N, in_channels, H, W) -> (N, out_channels, H, W) in [-1, 1], H and W multiples of
        2**num_downs.
    """

    def __init__(self, in_channels: int = 3, out_channels: int = 3, num_downs: int = 8, ngf: int = 64,
                 norm: str = "batch", dropout: float = 0.5, antialias: FilterSpec = "none",
                 antialias_mode: str = "conv_blur", upsample_antialias: Optional[bool] = None,
                 pad_type: str = "zero", blur_pad_type: Optional[str] = None, upsample: str = "transpose",
                 pad_input: bool = False) -> None:
        super().__init__()
        if num_downs < 2:
            raise ValueError(f"num_downs must be >= 2, got {num_downs}")
        if ngf < 1 or in_channels < 1 or out_channels < 1:
            raise ValueError("ngf, in_channels and out_channels must be positive")
        if not 0.0 <= dropout < 1.0:
            raise ValueError(f"dropout must be in [0, 1), got {dropout}")
        check_choice("norm", norm, NORMS)
        check_choice("antialias_mode", antialias_mode, ANTIALIAS_MODES)
        _pad_mode(pad_type)
        aa_size = filter_size(antialias)
        if upsample_antialias is None:
            upsample_antialias = aa_size > 0
        if upsample_antialias and not aa_size:
            raise ValueError("upsample_antialias=True needs an antialias filter (got 'none')")
        blur_pad = blur_pad_type or default_blur_pad(pad_type)
        _pad_mode(blur_pad)

        self.in_channels, self.out_channels, self.num_downs = in_channels, out_channels, num_downs
        self.pad_input = pad_input
        # pix2pix gives convs a bias only when the norm has no affine shift of its own.
        bias = norm == "instance" or norm == "none"

        # Channels: in -> ngf -> 2ngf -> 4ngf -> 8ngf -> 8ngf ... (capped at 8 * ngf).
        widths = [min(ngf * 2 ** i, ngf * 8) for i in range(num_downs)]
        ins = [in_channels] + widths[:-1]
        last = num_downs - 1
        down = dict(antialias=antialias, mode=antialias_mode, pad_type=pad_type, blur_pad_type=blur_pad)
        self.encoder = nn.ModuleList(
            down_block(ins[i], widths[i],
                       norm=None if i in (0, last) else norm,
                       act=nn.ReLU(True) if i == last else nn.LeakyReLU(0.2, True),
                       bias=bias, **down)
            for i in range(num_downs))

        up_aa = antialias if upsample_antialias else "none"
        norm_layer = norm_factory(norm)
        decoder = []
        for i in range(num_downs):
            outermost, innermost = i == 0, i == last
            layers: list[nn.Module] = [] if innermost else [nn.ReLU(True)]
            layers.append(up_conv(widths[i] * (1 if innermost else 2), out_channels if outermost else ins[i],
                                  upsample=upsample, antialias=up_aa, blur_pad_type=blur_pad,
                                  bias=True if outermost else bias))
            if outermost:
                layers.append(nn.Tanh())
            else:
                layers.append(norm_layer(ins[i]))
                # The reference puts dropout in the 8ngf->8ngf levels between the first four and
                # the innermost: num_downs - 5 of them (three for unet_256).
                if dropout > 0 and 4 <= i < last:
                    layers.append(nn.Dropout(dropout))
            decoder.append(nn.Sequential(*layers))
        self.decoder = nn.ModuleList(decoder)

    # -- shapes ---------------------------------------------------------------------------
    @property
    def size_multiple(self) -> int:
        return 2 ** self.num_downs

    def _check_input(self, x: torch.Tensor) -> None:
        if x.dim() != 4 or x.shape[1] != self.in_channels:
            raise ValueError(f"UNetGenerator expects (N, {self.in_channels}, H, W), got {tuple(x.shape)}")
        if self.pad_input:
            return
        m = self.size_multiple
        bad = [s for s in x.shape[-2:] if s % m]
        if bad:
            def nearest(s: int) -> str:
                lo, hi = (s // m) * m, math.ceil(s / m) * m
                return f"{s} -> {lo or m} or {hi}"
            raise ValueError(
                f"input size {tuple(x.shape[-2:])} is not a multiple of 2**num_downs = {m} "
                f"(num_downs={self.num_downs}); nearest valid: {'; '.join(nearest(s) for s in bad)}. "
                "Resize/crop the input, lower num_downs, or pass pad_input=True to pad and crop.")

    # -- forward --------------------------------------------------------------------------
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self._run(x, None)

    def features(self, x: torch.Tensor) -> dict[str, tuple[torch.Tensor, int]]:
        """Named intermediate maps with their cumulative stride, for the feature-distance metric.

        Keys: ``enc1..encN`` (encoder level outputs, stride 2**i), ``dec N..dec1`` (decoder level
        outputs, stride 2**(i-1)) and ``out`` (stride 1). Same computation as ``forward``.
        """
        taps: dict[str, tuple[torch.Tensor, int]] = {}
        taps["out"] = (self._run(x, taps), 1)
        return taps

    def _run(self, x: torch.Tensor, taps: Optional[dict]) -> torch.Tensor:
        self._check_input(x)
        h, w = x.shape[-2:]
        if self.pad_input:
            m = self.size_multiple
            ph, pw = (-h) % m, (-w) % m
            if ph or pw:
                x = F.pad(x, (0, pw, 0, ph), mode="reflect" if ph < h and pw < w else "replicate")
        skips = []
        feat = x
        for i, level in enumerate(self.encoder):
            feat = level(feat)
            skips.append(feat)
            if taps is not None:
                taps[f"enc{i + 1}"] = (feat, 2 ** (i + 1))
        feat = self.decoder[-1](skips[-1])
        if taps is not None:
            taps[f"dec{self.num_downs}"] = (feat, 2 ** (self.num_downs - 1))
        for i in range(self.num_downs - 2, -1, -1):
            feat = self.decoder[i](torch.cat([skips[i], feat], dim=1))
            if taps is not None and i > 0:
                taps[f"dec{i + 1}"] = (feat, 2 ** i)
        return feat[..., :h, :w]
