"""PatchGAN discriminators (Isola et al. 2017): the N-layer (70x70 for n_layers=3) and the
1x1 ``pixel`` variant, with optional anti-aliasing of the strided convs."""

from __future__ import annotations

from typing import Optional

import torch
from torch import nn

from pix2pix_aa.layers.blur_pool import FilterSpec
from pix2pix_aa.networks.antialias import resolve_downsample
from pix2pix_aa.networks.blocks import down_block
from pix2pix_aa.networks.convs import NORMS, check_choice, norm_factory

__all__ = ["PatchGANDiscriminator", "PixelDiscriminator"]


class PatchGANDiscriminator(nn.Module):
    """Conditional PatchGAN: classifies each overlapping patch of concat(input, image) as real/fake.

    Args:
        in_channels: channels of the concatenated pair (3 + 3 = 6 for RGB -> RGB).
        ndf: filters in the first layer.
        n_layers: number of stride-2 convs; 3 gives the 70x70 receptive field.
        norm: ``batch`` | ``instance`` | ``none``.
        antialias: ``none`` or a BlurPool filter for the strided convs (paper's ConvBlurPool).
        antialias_mode / pad_type / blur_pad_type: as in ``UNetGenerator``.

    Shape:
        (N, in_channels, H, W) -> (N, 1, H/2**n_layers - 2, W/2**n_layers - 2) patch logits
        (30x30 for 256x256 inputs, n_layers=3).
    """

    def __init__(self, in_channels: int = 6, ndf: int = 64, n_layers: int = 3, norm: str = "batch",
                 antialias: FilterSpec = "none", antialias_mode: str = "conv_blur",
                 pad_type: str = "zero", blur_pad_type: Optional[str] = None) -> None:
        super().__init__()
        if n_layers < 1:
            raise ValueError(f"n_layers must be >= 1, got {n_layers}")
        if ndf < 1 or in_channels < 1:  # ndf 0 failed inside batch norm with a traceback
            raise ValueError(f"ndf and in_channels must be positive, got ndf {ndf}, in_channels {in_channels}")
        check_choice("norm", norm, NORMS)
        self.in_channels = in_channels
        bias = norm != "batch"
        down = resolve_downsample(antialias, antialias_mode, pad_type, blur_pad_type)
        layers: list[nn.Module] = [down_block(in_channels, ndf, norm=None, act=nn.LeakyReLU(0.2, True),
                                              down=down, bias=True)]
        mult = 1
        for n in range(1, n_layers):
            prev, mult = mult, min(2 ** n, 8)
            layers.append(down_block(ndf * prev, ndf * mult, norm=norm, act=nn.LeakyReLU(0.2, True),
                                     down=down, bias=bias))
        prev, mult = mult, min(2 ** n_layers, 8)
        # Two stride-1 4x4 convs with padding 1, as the reference (each shrinks the map by 1).
        layers += [nn.Conv2d(ndf * prev, ndf * mult, 4, stride=1, padding=1, bias=bias),
                   norm_factory(norm)(ndf * mult), nn.LeakyReLU(0.2, True),
                   nn.Conv2d(ndf * mult, 1, 4, stride=1, padding=1)]
        self.model = nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.dim() != 4 or x.shape[1] != self.in_channels:
            raise ValueError(f"PatchGANDiscriminator expects (N, {self.in_channels}, H, W) "
                             f"(input and image concatenated), got {tuple(x.shape)}")
        return self.model(x)


class PixelDiscriminator(nn.Module):
    """1x1 PatchGAN ("pixelGAN"): classifies every pixel independently.

    Shape: (N, in_channels, H, W) -> (N, 1, H, W).
    """

    def __init__(self, in_channels: int = 6, ndf: int = 64, norm: str = "batch") -> None:
        super().__init__()
        check_choice("norm", norm, NORMS)
        self.in_channels = in_channels
        bias = norm != "batch"
        self.model = nn.Sequential(
            nn.Conv2d(in_channels, ndf, 1), nn.LeakyReLU(0.2, True),
            nn.Conv2d(ndf, ndf * 2, 1, bias=bias), norm_factory(norm)(ndf * 2), nn.LeakyReLU(0.2, True),
            nn.Conv2d(ndf * 2, 1, 1, bias=bias))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.dim() != 4 or x.shape[1] != self.in_channels:
            raise ValueError(f"PixelDiscriminator expects (N, {self.in_channels}, H, W), got {tuple(x.shape)}")
        return self.model(x)
