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

Adaptive polyphase sampling (``antialias="aps"``, ``"aps_bin5"``, ...; Chaman & Dokmanic 2021)
makes the network exactly equivariant to circular shifts (up to float rounding):

    encoder level i:  h_i, p_i = APS(blur(act(norm(conv4_s1_circular(h_{i-1})))))
    decoder level i:  u_i = dropout(norm(blur(APSU_convT4(relu(cat(h_i, u_{i+1})), p_i))))

p_i is the polyphase index chosen per sample at level i; it is a local variable of ``forward``
(no module state), so the model is safe under DDP, threads and ``torch.no_grad``. The blur is
there only for ``aps_<filter>`` variants. Every conv pads circularly; see ``pad_type``.
"""

from __future__ import annotations

import functools
import math
from typing import Optional

import torch
import torch.nn.functional as F
from torch import nn

from pix2pix_aa.layers.blur_pool import FilterSpec, _pad_mode
from pix2pix_aa.layers.polyphase import APSConvTranspose2d, parse_antialias
from pix2pix_aa.networks.blocks import (
    ANTIALIAS_MODES,
    NORMS,
    aps_down_block,
    aps_up_conv,
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
            ``bin5`` (or a size 1..7); or adaptive polyphase sampling: ``aps``, ``aps_rect2``,
            ``aps_tri3``, ``aps_bin4``, ``aps_bin5``, ... (blur of that size before each APS
            downsampling and, unless ``upsample_antialias=False``, after each APS-U).
        antialias_mode: ``conv_blur`` (the paper: conv s1 -> act -> BlurPool) or ``blur_conv``
            (cheap: blur -> strided conv; not the paper's method).
        upsample_antialias: blur after each upsampling; ``None`` = on whenever ``antialias``
            is on. Set False for encoder-only anti-aliasing.
        pad_type: conv padding, ``zero`` (reference), ``reflect``, ``replicate``, ``circular``.
            ``None`` (default) means ``zero``, and ``circular`` for APS. APS requires circular
            padding (its exactness rests on it): any other value raises ValueError.
        blur_pad_type: padding of the blurs; default reflect (circular with circular convs).
            APS: must be ``None`` or ``circular``.
        upsample: ``transpose`` (reference), ``nearest`` or ``bilinear`` (+ 3x3 conv).
        pad_input: if True, inputs whose size is not a multiple of 2**num_downs are reflect-
            padded up to one and the output is cropped back; if False (default) they raise.
        aps_norm: APS only: the norm that picks the polyphase component, ``l2`` or ``l1``.

    APS features: with an input rolled by (dy, dx), each tap of :meth:`features` at stride s is
    the unshifted tap rolled by an *integer* (dy_s, dx_s), dy_s = (dy + P - P') / s where P, P'
    are the absolute phases of the two inputs at that level (:meth:`phases`); dy_s = dy / s
    whenever s divides dy, and otherwise dy_s is floor(dy / s) or ceil(dy / s), depending on
    the data. So feature distances are ~0 at shifts that are multiples of the layer's stride,
    but not against a Fourier (fractional) shift by dy / s at other shifts.

    Shape:
        (N, in_channels, H, W) -> (N, out_channels, H, W) in [-1, 1], H and W multiples of
        2**num_downs.
    """

    def __init__(self, in_channels: int = 3, out_channels: int = 3, num_downs: int = 8, ngf: int = 64,
                 norm: str = "batch", dropout: float = 0.5, antialias: FilterSpec = "none",
                 antialias_mode: str = "conv_blur", upsample_antialias: Optional[bool] = None,
                 pad_type: Optional[str] = None, blur_pad_type: Optional[str] = None,
                 upsample: str = "transpose", pad_input: bool = False, aps_norm: str = "l2") -> None:
        super().__init__()
        if num_downs < 2:
            raise ValueError(f"num_downs must be >= 2, got {num_downs}")
        if ngf < 1 or in_channels < 1 or out_channels < 1:
            raise ValueError("ngf, in_channels and out_channels must be positive")
        if not 0.0 <= dropout < 1.0:
            raise ValueError(f"dropout must be in [0, 1), got {dropout}")
        check_choice("norm", norm, NORMS)
        check_choice("antialias_mode", antialias_mode, ANTIALIAS_MODES)
        is_aps, aa_size = parse_antialias(antialias)
        if is_aps:
            pad_type = _check_aps_options(pad_type, blur_pad_type, upsample, antialias_mode, aps_norm)
        elif pad_type is None:
            pad_type = "zero"
        _pad_mode(pad_type)
        if upsample_antialias is None:
            upsample_antialias = aa_size > 0
        if upsample_antialias and not aa_size:
            raise ValueError("upsample_antialias=True needs an antialias filter (got 'none')")
        blur_pad = blur_pad_type or default_blur_pad(pad_type)
        _pad_mode(blur_pad)

        self.in_channels, self.out_channels, self.num_downs = in_channels, out_channels, num_downs
        self.pad_input, self.is_aps = pad_input, is_aps
        # pix2pix gives convs a bias only when the norm has no affine shift of its own.
        bias = norm == "instance" or norm == "none"

        # Channels: in -> ngf -> 2ngf -> 4ngf -> 8ngf -> 8ngf ... (capped at 8 * ngf).
        widths = [min(ngf * 2 ** i, ngf * 8) for i in range(num_downs)]
        ins = [in_channels] + widths[:-1]
        last = num_downs - 1
        if is_aps:
            make_down = functools.partial(aps_down_block, filt_size=aa_size, aps_norm=aps_norm)
        else:
            make_down = functools.partial(down_block, antialias=antialias, mode=antialias_mode,
                                          pad_type=pad_type, blur_pad_type=blur_pad)
        self.encoder = nn.ModuleList(
            make_down(ins[i], widths[i],
                      norm=None if i in (0, last) else norm,
                      act=nn.ReLU(True) if i == last else nn.LeakyReLU(0.2, True),
                      bias=bias)
            for i in range(num_downs))

        up_aa = antialias if upsample_antialias else "none"
        if is_aps:
            make_up = functools.partial(aps_up_conv, filt_size=aa_size if upsample_antialias else 0)
        else:
            make_up = functools.partial(up_conv, upsample=upsample, antialias=up_aa, blur_pad_type=blur_pad)
        norm_layer = norm_factory(norm)
        decoder = []
        for i in range(num_downs):
            outermost, innermost = i == 0, i == last
            layers: list[nn.Module] = [] if innermost else [nn.ReLU(True)]
            layers.append(make_up(widths[i] * (1 if innermost else 2), out_channels if outermost else ins[i],
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

    def phases(self, x: torch.Tensor) -> list[torch.Tensor]:
        """APS only: the polyphase index chosen at each encoder level, ``[p_1, ..., p_N]``, each
        (N,) int64 with p = i * 2 + j for the component ``[..., i::2, j::2]``.

        The absolute sampling offset of level L (in input pixels, per axis) is
        sum_l 2**(l-1) * (i_l or j_l) for l <= L.
        """
        if not self.is_aps:
            raise ValueError("phases() is only defined for APS generators (antialias='aps...')")
        out: list[torch.Tensor] = []
        self._run(x, None, out)
        return out

    def _run(self, x: torch.Tensor, taps: Optional[dict],
             phases_out: Optional[list] = None) -> torch.Tensor:
        self._check_input(x)
        h, w = x.shape[-2:]
        if self.pad_input:
            m = self.size_multiple
            ph, pw = (-h) % m, (-w) % m
            if ph or pw:
                x = F.pad(x, (0, pw, 0, ph), mode="reflect" if ph < h and pw < w else "replicate")
        if self.is_aps:
            return self._run_aps(x, taps, phases_out)[..., :h, :w]
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

    def _run_aps(self, x: torch.Tensor, taps: Optional[dict], phases_out: Optional[list]) -> torch.Tensor:
        """The APS forward pass: the phase of encoder level i goes to decoder level i."""
        skips, phases = [], []
        feat = x
        for i, level in enumerate(self.encoder):
            feat, phase = level(feat)
            skips.append(feat)
            phases.append(phase)
            if taps is not None:
                taps[f"enc{i + 1}"] = (feat, 2 ** (i + 1))
        if phases_out is not None:
            phases_out.extend(phases)
        feat = _apply_aps_level(self.decoder[-1], skips[-1], phases[-1])
        if taps is not None:
            taps[f"dec{self.num_downs}"] = (feat, 2 ** (self.num_downs - 1))
        for i in range(self.num_downs - 2, -1, -1):
            feat = _apply_aps_level(self.decoder[i], torch.cat([skips[i], feat], dim=1), phases[i])
            if taps is not None and i > 0:
                taps[f"dec{i + 1}"] = (feat, 2 ** i)
        return feat


def _apply_aps_level(level: nn.Sequential, x: torch.Tensor, phase: torch.Tensor) -> torch.Tensor:
    """Run a decoder level, handing ``phase`` to its APS-U layer (which nn.Sequential cannot)."""
    for layer in level:
        if isinstance(layer, nn.Sequential):
            x = _apply_aps_level(layer, x, phase)
        elif isinstance(layer, APSConvTranspose2d):
            x = layer(x, phase)
        else:
            x = layer(x)
    return x


def _check_aps_options(pad_type: Optional[str], blur_pad_type: Optional[str], upsample: str,
                       antialias_mode: str, aps_norm: str) -> str:
    """Validate the options an APS generator accepts; returns the conv padding (circular)."""
    if pad_type is not None and pad_type != "circular":
        raise ValueError(f"antialias='aps...' needs pad_type='circular' (APS is exactly shift-equivariant only "
                         f"with circular padding), got pad_type={pad_type!r}; leave it unset or set 'circular'")
    if blur_pad_type not in (None, "circular"):
        raise ValueError(f"antialias='aps...' blurs with circular padding; got blur_pad_type={blur_pad_type!r}")
    if upsample != "transpose":
        raise ValueError(f"antialias='aps...' upsamples with APS-U transposed convs; got upsample={upsample!r} "
                         "(use 'transpose')")
    if antialias_mode != "conv_blur":
        raise ValueError(f"antialias_mode={antialias_mode!r} applies to BlurPool filters, not to APS "
                         "(which is always conv stride 1 -> norm -> act -> [blur] -> APS)")
    if aps_norm not in ("l2", "l1"):
        raise ValueError(f"unknown aps_norm {aps_norm!r}; valid: 'l2', 'l1'")
    return "circular"
