"""The ResNet generator of pix2pix / CycleGAN (Johnson et al. 2016, as used by Isola et al. 2017
and Zhu et al. 2017), with the anti-aliasing of Zhang (2019).

The reference (junyanz/pytorch-CycleGAN-and-pix2pix, ``models/networks.py``, ``ResnetGenerator``
with ``n_blocks`` = 9 for ``resnet_9blocks``, 6 for ``resnet_6blocks``) is this chain:

    stem:       relu(norm(conv7(reflect_pad3(x))))                   in -> ngf
    encoder i:  relu(norm(conv3_s2(h)))     (zero padding 1)         ngf -> 2ngf -> 4ngf
    block j:    h + norm(conv3(pad1(dropout(relu(norm(conv3(pad1(h))))))))   (reflect padding)
    decoder i:  relu(norm(convT3_s2(h)))    (padding 1, output_padding 1)   4ngf -> 2ngf -> ngf
    head:       tanh(conv7(reflect_pad3(h)))                          ngf -> out

Convs have a bias only where the norm has no affine shift (instance norm), except the head's,
which always has one: 11,383,427 parameters for resnet_9blocks (ngf 64, 3 -> 3, batch norm),
11,378,179 with instance norm.

Anti-aliasing reuses the U-Net's resolved layer factories (:class:`~pix2pix_aa.networks.antialias.
Downsample`): ``antialias`` = a filter turns each strided conv into the paper's ConvBlurPool,
conv3(stride 1) -> norm -> relu -> BlurPool(stride 2) (the stride-1, padding-1 3x3 conv sampled
at even positions is exactly the reference's stride-2 conv, so the weights keep their meaning);
``upsample_antialias`` blurs after each transposed conv (anti-imaging). Adaptive polyphase
sampling (``antialias="aps"``, ``"aps_bin5"`` ...; Chaman & Dokmanic 2021) replaces both
subsamplings by APS and both transposed convs by APS-U at the remembered phase; with every conv
padded circularly the generator is then exactly equivariant to circular shifts (up to float
rounding). No option adds parameters.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Optional, Union

import torch
from torch import nn

from pix2pix_aa.layers.filters import FilterSpec
from pix2pix_aa.networks.antialias import resolve_antialias
from pix2pix_aa.networks.base import Generator, check_generator_options
from pix2pix_aa.networks.blocks import Level, assemble, up_conv
from pix2pix_aa.networks.convs import PaddedConv2d, conv3, norm_factory

__all__ = ["ResNetGenerator", "ResidualBlock"]

#: Downsamplings of the reference ResNet generator (fixed there: ``n_downsampling = 2``).
NUM_DOWNS = 2


def _conv(in_channels: int, out_channels: int, kernel_size: int, stride: int, pad_type: str,
          bias: bool) -> nn.Conv2d:
    """A conv padded by (k - 1) / 2 on every side; zero padding uses ``nn.Conv2d``'s own."""
    p = (kernel_size - 1) // 2
    if pad_type in ("zero", "zeros"):
        return nn.Conv2d(in_channels, out_channels, kernel_size, stride=stride, padding=p, bias=bias)
    return PaddedConv2d(in_channels, out_channels, kernel_size, stride=stride, pad=(p, p, p, p),
                        pad_type=pad_type, bias=bias)


class ResidualBlock(nn.Module):
    """The reference ``ResnetBlock``: ``x + norm(conv3(dropout(relu(norm(conv3(x))))))``, the
    3x3 convs padded by 1 (``pad_type``: reflect in the reference).

    ``conv_block`` always holds the dropout (``nn.Dropout(0)`` when off), so the state_dict keys
    do not depend on it.

    Shape: (N, C, H, W) -> (N, C, H, W).
    """

    def __init__(self, channels: int, norm: str, pad_type: str = "reflect", dropout: float = 0.0,
                 bias: bool = False) -> None:
        super().__init__()
        norm_layer = norm_factory(norm)
        self.conv_block = nn.Sequential(
            conv3(channels, channels, pad_type, bias), norm_layer(channels), nn.ReLU(True),
            nn.Dropout(dropout),
            conv3(channels, channels, pad_type, bias), norm_layer(channels))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.conv_block(x)


class ResNetGenerator(Generator):
    """pix2pix / CycleGAN ResNet generator (``resnet_9blocks`` / ``resnet_6blocks``) with
    optional anti-aliasing.

    Source: Johnson et al., "Perceptual losses for real-time style transfer" (ECCV 2016), as in
    junyanz/pytorch-CycleGAN-and-pix2pix ``models/networks.py`` (``ResnetGenerator``,
    ``ResnetBlock``); anti-aliasing: Zhang, "Making Convolutional Networks Shift-Invariant
    Again" (ICML 2019); APS: Chaman & Dokmanic (CVPR 2021).

    Args:
        in_channels / out_channels: image channels.
        n_blocks: residual blocks at 1/4 resolution: 9 (``resnet_9blocks``) or 6
            (``resnet_6blocks``); any n >= 0 is accepted.
        ngf: filters of the stem conv (2ngf and 4ngf after the two downsamplings).
        norm: ``batch`` | ``instance`` (no affine, no running stats, as the reference) | ``none``.
        dropout: dropout rate between the two convs of each residual block (0 = off). The
            reference's pix2pix training uses 0.5 unless ``--no_dropout``; CycleGAN uses none.
        antialias: ``none`` (the reference), a low-pass filter (``bin5``, ``tri3``, ``kaiser7``
            ...; or a list of two, one per downsampling, outermost first) for ConvBlurPool, or an
            APS variant (``aps``, ``aps_bin5`` ...) for both downsamplings.
        antialias_mode: ``conv_blur`` (the paper) or ``blur_conv`` (blur -> strided conv; cheap,
            not the paper's method); or a list of two.
        upsample_antialias: blur after each upsampling: ``None`` = the filter of the matching
            downsampling (off where that is ``none``), ``True`` = the same but requiring one,
            ``False`` = none, a filter name = that filter; or a list of two (outermost, i.e. the
            last upsampling, first).
        upsample: ``transpose`` (the reference's 3x3 transposed conv, stride 2, padding 1,
            output_padding 1), ``nearest`` or ``bilinear`` (resize x2, then a 3x3 conv; not the
            reference, fewer parameters); or a list of two.
        pad_type: ``None`` = the reference's paddings (reflect for the 7x7 and residual convs,
            zero for the strided convs); a mode (``reflect``, ``replicate``, ``zero``,
            ``circular``) pads every conv with it. APS needs (and defaults to) ``circular``.
        blur_pad_type: padding of the blurs; default reflect (circular with circular convs).
        pad_input: reflect-pad inputs to a multiple of 4 and crop the output back (default:
            sizes off the multiple raise).
        aps_norm: APS only: ``l2`` or ``l1``.

    Attributes:
        size_multiple: 4 (= 2**num_downs with num_downs = 2): input sizes must be multiples.

    Shape:
        (N, in_channels, H, W) -> (N, out_channels, H, W) in [-1, 1], H and W multiples of 4.
    """

    def __init__(self, in_channels: int = 3, out_channels: int = 3, n_blocks: int = 9, ngf: int = 64,
                 norm: str = "batch", dropout: float = 0.5,
                 antialias: Union[FilterSpec, Sequence[FilterSpec]] = "none",
                 antialias_mode: Union[str, Sequence[str]] = "conv_blur",
                 upsample_antialias: Optional[Union[bool, FilterSpec, Sequence[Union[bool, FilterSpec]]]] = None,
                 upsample: Union[str, Sequence[str]] = "transpose", pad_type: Optional[str] = None,
                 blur_pad_type: Optional[str] = None, pad_input: bool = False, aps_norm: str = "l2") -> None:
        super().__init__()
        if n_blocks < 0:
            raise ValueError(f"n_blocks must be >= 0, got {n_blocks}")
        n = NUM_DOWNS
        check_generator_options(ngf, in_channels, out_channels, dropout, norm)
        # The reference pads the 7x7 and residual convs by reflection, the strided ones with zeros.
        aa = resolve_antialias(n, antialias, antialias_mode, upsample_antialias, upsample, pad_type,
                               blur_pad_type, aps_norm, conv_pad_default="reflect", levels="both downsamplings")
        conv_pad = aa.conv_pad_type

        self.in_channels, self.out_channels, self.n_blocks, self.ngf = in_channels, out_channels, n_blocks, ngf
        self.num_downs, self.pad_input, self.is_aps = n, pad_input, aa.aps
        bias = norm in ("instance", "none")
        norm_layer = norm_factory(norm)
        widths = [ngf * 2 ** i for i in range(n + 1)]  # ngf, 2ngf, 4ngf

        self.stem = Level(_conv(in_channels, ngf, 7, 1, conv_pad, bias), norm_layer(ngf), nn.ReLU(True))
        self.encoder = nn.ModuleList(
            assemble(d.pre(widths[i]), _conv(widths[i], widths[i + 1], 3, d.conv_stride, d.pad_type, bias),
                     norm_layer(widths[i + 1]), nn.ReLU(True), d.post(widths[i + 1]))
            for i, d in enumerate(aa.down))
        self.blocks = nn.Sequential(*[ResidualBlock(widths[-1], norm, conv_pad, dropout, bias)
                                      for _ in range(n_blocks)])
        # decoder[i] mirrors encoder[i] (index 0 is the last upsampling, which writes ngf maps); the
        # reference's transposed convs are 3x3 (padding 1, output_padding 1).
        decoder = [Level(up_conv(widths[i + 1], widths[i], up=aa.up[i], bias=bias, kernel_size=3),
                         norm_layer(widths[i]), nn.ReLU(True))
                   for i in range(n)]
        self.decoder = nn.ModuleList(decoder)
        self.head = Level(_conv(ngf, out_channels, 7, 1, conv_pad, True), nn.Tanh())

    def _size_reason(self) -> str:
        return f"{self.size_multiple} (the ResNet generator downsamples twice)"

    def features(self, x: torch.Tensor) -> dict[str, tuple[torch.Tensor, int]]:
        """Named intermediate maps with their cumulative stride, for the feature-distance metric.

        Keys: ``stem`` (stride 1), ``enc1`` (2), ``enc2`` (4), ``res`` (after the residual blocks,
        4), ``dec2`` (2), ``dec1`` (1), ``out`` (1). Same computation as ``forward``.
        """
        return super().features(x)

    def _run(self, x: torch.Tensor, taps: Optional[dict] = None, phases_out: Optional[list] = None) -> torch.Tensor:
        feat, _ = self.stem.run(x)
        if taps is not None:
            taps["stem"] = (feat, 1)
        phases = []
        for i, level in enumerate(self.encoder):
            feat, phase = level.run(feat)
            phases.append(phase)
            if taps is not None:
                taps[f"enc{i + 1}"] = (feat, 2 ** (i + 1))
        if phases_out is not None:
            phases_out.extend(phases)
        feat = self.blocks(feat)
        if taps is not None:
            taps["res"] = (feat, 2 ** self.num_downs)
        for i in range(self.num_downs - 1, -1, -1):
            feat, _ = self.decoder[i].run(feat, phases[i])
            if taps is not None:
                taps[f"dec{i + 1}"] = (feat, 2 ** i)
        feat, _ = self.head.run(feat)
        return feat
