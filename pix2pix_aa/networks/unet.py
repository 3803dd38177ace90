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

Per level: ``antialias``, ``antialias_mode``, ``upsample_antialias`` and ``upsample`` each take
one value for every level or a list with one value per level, outermost first (index 0 is
encoder level 1, which reads the input, and decoder level 1, which writes the output), e.g.
``antialias: [none, bin5, bin5, bin5, bin5, bin5, bin5]``. The filters may be binomial
(``bin5``) or Kaiser-windowed sinc (``kaiser7``; pix2pix_aa.layers.filters).

Full-resolution path (``fullres_channels`` = c > 0): in an anti-aliased U-Net the finest
features sit at half resolution, and the top octave of the output can only come from the last
upsampling, which either blurs it away or aliases. The path adds features computed at the input
resolution by stride-1 convolutions only (exactly shift-equivariant away from the border):

    f = lrelu(norm(conv3(lrelu(conv3(x)))))           (in -> c -> c, full resolution)
    u_1 = norm(up(relu(cat(h_1, u_2))))               (last decoder level, -> c channels)
    y = tanh(conv3(relu(norm(conv3(cat(u_1, f))))))   (2c -> c -> out)

``head_layers`` = k > 1 puts k - 1 more ``relu(norm(conv3))`` blocks (c -> c) before the output
conv. Pointwise nonlinearities at full resolution commute with integer shifts, so a deeper head
can make detail above the last blur's cutoff (harmonics of the decoder's features, edges of the
path's) without costing integer-shift equivariance. With c = ngf the path adds 0.4-0.6%
parameters, each extra head block 9c^2 + 2c (docs/DESIGN_STUDY.md).

Adaptive polyphase sampling (``antialias="aps"``, ``"aps_bin5"``, ...; Chaman & Dokmanic 2021)
makes the network exactly equivariant to circular shifts (up to float rounding):

    encoder level i:  h_i, p_i = APS(blur(act(norm(conv4_s1_circular(h_{i-1})))))
    decoder level i:  u_i = dropout(norm(blur(APSU_convT4(relu(cat(h_i, u_{i+1})), p_i))))

p_i is the polyphase index chosen per sample at level i; it is a local variable of ``forward``
(no module state), so the model is safe under DDP, threads and ``torch.no_grad``. The blur is
there only for ``aps_<filter>`` variants. Every conv pads circularly; see ``pad_type``.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Optional, Union

import torch
from torch import nn

from pix2pix_aa.networks.antialias import PerLevel, UpsampleAntialias, resolve_antialias
from pix2pix_aa.networks.base import Generator, check_generator_options
from pix2pix_aa.networks.blocks import Level, down_block, up_conv
from pix2pix_aa.networks.convs import conv3, norm_factory

__all__ = ["UNetGenerator"]


class UNetGenerator(Generator):
    """pix2pix U-Net generator with optional anti-aliasing.

    Args:
        in_channels / out_channels: image channels (3 -> 3 for facades).
        num_downs: number of 2x downsamplings; 8 for 256x256 (``unet_256``), 7 for 128x128.
        ngf: filters in the first conv layer.
        norm: ``batch`` | ``instance`` | ``none``.
        dropout: dropout rate in the three innermost non-bottleneck decoder levels (0 = off).
        antialias: ``none`` (the reference) or a low-pass filter: ``rect2``, ``tri3``, ``bin4``,
            ``bin5`` (or a size 1..7), ``kaiser7`` ... (Kaiser-windowed sinc); or a list of
            those, one per encoder level, outermost first. Or adaptive polyphase sampling (all
            levels): ``aps``, ``aps_rect2``, ``aps_tri3``, ``aps_bin4``, ``aps_bin5``, ... (blur of
            that size before each APS downsampling and, unless ``upsample_antialias=False``,
            after each APS-U).
        antialias_mode: ``conv_blur`` (the paper: conv s1 -> act -> BlurPool) or ``blur_conv``
            (cheap: blur -> strided conv; not the paper's method); or a list per level.
        upsample_antialias: the blur after each upsampling. ``None`` = the level's ``antialias``
            filter (off where that is ``none``); ``True`` = the same, requiring a filter;
            ``False`` = no blur (encoder-only anti-aliasing: the transposed convs then alias
            and image on their own; docs/DESIGN_STUDY.md, candidate ``bin5_enc``); a filter
            name = that filter at every level; or a list per decoder level (outermost, i.e.
            the last upsampling, first) of those values.
        pad_type: conv padding, ``zero`` (reference), ``reflect``, ``replicate``, ``circular``.
            ``None`` (default) means ``zero``, and ``circular`` for APS. APS requires circular
            padding (its exactness rests on it): any other value raises ValueError.
        blur_pad_type: padding of the blurs; default reflect (circular with circular convs).
            APS: must be ``None`` or ``circular``.
        upsample: ``transpose`` (reference), ``nearest`` or ``bilinear`` (+ 3x3 conv); or a list
            per decoder level. The 3x3 conv after a resize pads with zeros whatever ``pad_type``
            is (kept so that checkpoints trained that way give the same outputs).
        pad_input: if True, inputs whose size is not a multiple of 2**num_downs are reflect-
            padded up to one and the output is cropped back; if False (default) they raise.
        aps_norm: APS only: the norm that picks the polyphase component, ``l2`` or ``l1``.
        fullres_channels: width c of the full-resolution path (module docstring); 0 = off (the
            reference).
        head_layers: 3x3 conv -> norm -> ReLU blocks of the path's head before its output conv
            (module docstring); 1 (default) = one. Other values need ``fullres_channels`` > 0.

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
                 norm: str = "batch", dropout: float = 0.5, antialias: PerLevel = "none",
                 antialias_mode: Union[str, Sequence[str]] = "conv_blur",
                 upsample_antialias: Optional[UpsampleAntialias] = None,
                 pad_type: Optional[str] = None, blur_pad_type: Optional[str] = None,
                 upsample: Union[str, Sequence[str]] = "transpose", pad_input: bool = False,
                 aps_norm: str = "l2", fullres_channels: int = 0, head_layers: int = 1) -> None:
        super().__init__()
        if num_downs < 2:
            raise ValueError(f"num_downs must be >= 2, got {num_downs}")
        if fullres_channels < 0:
            raise ValueError(f"fullres_channels must be >= 0 (0 = no full-resolution path), got {fullres_channels}")
        if head_layers < 1 or (head_layers != 1 and not fullres_channels):
            raise ValueError(f"head_layers must be >= 1 and needs fullres_channels > 0 (the head belongs to the "
                             f"full-resolution path), got head_layers={head_layers}, "
                             f"fullres_channels={fullres_channels}")
        n = num_downs
        check_generator_options(ngf, in_channels, out_channels, dropout, norm)
        # Resolve the anti-aliasing of every level once; the blocks only assemble what it gives.
        # The resize convs of ``upsample: nearest / bilinear`` pad with zeros whatever pad_type is.
        aa = resolve_antialias(n, antialias, antialias_mode, upsample_antialias, upsample, pad_type,
                               blur_pad_type, aps_norm, upsample_pad_type="zero")

        self.in_channels, self.out_channels, self.num_downs = in_channels, out_channels, num_downs
        self.pad_input, self.is_aps = pad_input, aa.aps
        self.fullres_channels = fullres_channels
        # pix2pix gives convs a bias only when the norm has no affine shift of its own.
        bias = norm == "instance" or norm == "none"
        norm_layer = norm_factory(norm)

        # Channels: in -> ngf -> 2ngf -> 4ngf -> 8ngf -> 8ngf ... (capped at 8 * ngf).
        widths = [min(ngf * 2 ** i, ngf * 8) for i in range(n)]
        ins = [in_channels] + widths[:-1]
        last = n - 1
        self.encoder = nn.ModuleList(
            down_block(ins[i], widths[i], norm=None if i in (0, last) else norm,
                       act=nn.ReLU(True) if i == last else nn.LeakyReLU(0.2, True),
                       down=aa.down[i], bias=bias)
            for i in range(n))

        c = fullres_channels
        decoder = []
        for i in range(n):
            image_out = i == 0 and not c  # the reference's outermost level writes the image
            innermost = i == last
            out_ch = out_channels if image_out else (c if i == 0 else ins[i])
            layers: list[nn.Module] = [] if innermost else [nn.ReLU(True)]
            layers.append(up_conv(widths[i] * (1 if innermost else 2), out_ch, up=aa.up[i],
                                  bias=True if image_out else bias))
            if image_out:
                layers.append(nn.Tanh())
            else:
                layers.append(norm_layer(out_ch))
                # The reference puts dropout in the 8ngf->8ngf levels between the first four and
                # the innermost: num_downs - 5 of them (three for unet_256).
                if dropout > 0 and 4 <= i < last:
                    layers.append(nn.Dropout(dropout))
            decoder.append(Level(*layers))
        self.decoder = nn.ModuleList(decoder)

        self.fullres: Optional[Level] = None
        self.head: Optional[Level] = None
        if c:
            conv_pad = aa.conv_pad_type
            self.fullres = Level(conv3(in_channels, c, conv_pad, True), nn.LeakyReLU(0.2, True),
                                 conv3(c, c, conv_pad, bias), norm_layer(c), nn.LeakyReLU(0.2, True))
            blocks: list[nn.Module] = []
            for k in range(head_layers):
                blocks += [conv3(2 * c if k == 0 else c, c, conv_pad, bias), norm_layer(c), nn.ReLU(True)]
            self.head = Level(*blocks, conv3(c, out_channels, conv_pad, True), nn.Tanh())

    size_hint = ", lower num_downs"

    def features(self, x: torch.Tensor) -> dict[str, tuple[torch.Tensor, int]]:
        """Named intermediate maps with their cumulative stride, for the feature-distance metric.

        Keys: ``enc1..encN`` (encoder level outputs, stride 2**i), ``dec N..dec2`` (decoder level
        outputs, stride 2**(i-1)), with the full-resolution path also ``dec1`` and ``fullres``
        (stride 1), and ``out`` (stride 1). Same computation as ``forward``.
        """
        return super().features(x)

    def _run(self, x: torch.Tensor, taps: Optional[dict] = None,
             phases_out: Optional[list] = None) -> torch.Tensor:
        """The one forward pass of every variant; APS phases travel from encoder level i to
        decoder level i (None for BlurPool levels)."""
        skips, phases = [], []
        feat = x
        for i, level in enumerate(self.encoder):
            feat, phase = level.run(feat)
            skips.append(feat)
            phases.append(phase)
            if taps is not None:
                taps[f"enc{i + 1}"] = (feat, 2 ** (i + 1))
        if phases_out is not None:
            phases_out.extend(phases)
        feat, _ = self.decoder[-1].run(skips[-1], phases[-1])
        if taps is not None:
            taps[f"dec{self.num_downs}"] = (feat, 2 ** (self.num_downs - 1))
        for i in range(self.num_downs - 2, -1, -1):
            feat, _ = self.decoder[i].run(torch.cat([skips[i], feat], dim=1), phases[i])
            if taps is not None and (i > 0 or self.head is not None):
                taps[f"dec{i + 1}"] = (feat, 2 ** i)
        if self.fullres is not None and self.head is not None:
            full, _ = self.fullres.run(x)
            if taps is not None:
                taps["fullres"] = (full, 1)
            feat, _ = self.head.run(torch.cat([feat, full], dim=1))
        return feat
