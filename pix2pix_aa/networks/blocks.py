"""Building blocks shared by the generator and the discriminator: a level (:class:`Level`, which
threads the APS phase) and the down- and up-sampling blocks built from a resolved spec.

Anti-aliasing follows timm's ``create_aa`` pattern: the config is resolved *once*
(pix2pix_aa.networks.antialias) into a :class:`Downsample` / :class:`Upsample` per level (what to
put before the conv, the conv's stride, what to put after it), and the blocks assemble whatever
those return, never branching on the anti-aliasing themselves. Layers resolved to
``nn.Identity`` are left out of the block, so a block's module indices (hence its state_dict
keys) are those of the reference pix2pix for the baseline and are unchanged by any
anti-aliasing option (docs/DESIGN.md section 3).
"""

from __future__ import annotations

from typing import Optional

import torch
from torch import nn

from pix2pix_aa.layers.polyphase import APSConvTranspose2d, APSDown
from pix2pix_aa.networks.antialias import Downsample, Upsample
from pix2pix_aa.networks.convs import conv4, norm_factory


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


def assemble(*layers: nn.Module) -> Level:
    """A Level of ``layers`` without the Identity placeholders (the reference's indices)."""
    return Level(*[layer for layer in layers if not isinstance(layer, nn.Identity)])


def down_block(in_channels: int, out_channels: int, *, norm: str | None, act: nn.Module | None,
               down: Downsample, bias: bool = True) -> Level:
    """A 4x4 downsampling conv block: ``conv(stride 2) -> norm -> act`` and its anti-aliased forms,
    as the resolved ``down`` says (pix2pix_aa.networks.antialias):

    * no filter: conv stride 2 -> norm -> act (the pix2pix reference).
    * ``conv_blur`` (paper): conv stride 1 -> norm -> act -> BlurPool(stride 2). The activation
      comes *before* the blur-subsample, so no nonlinearity acts after it to re-alias.
    * ``blur_conv`` (cheap, StyleGAN2-like): Blur(stride 1) -> conv stride 2 -> norm -> act.
    * ``aps``: conv stride 1 (circular) -> norm -> act -> [circular blur] -> APS(stride 2); phase
      0 of the stride-1 conv is the sampling grid of the stride-2, padding-1 conv (PaddedConv2d).

    Shape: (N, in, H, W) -> (N, out, H/2, W/2) (APS: ``run`` also returns the (N,) phase).
    No mode adds parameters, and the module indices (conv, norm) are the reference's.
    """
    return assemble(down.pre(in_channels),
                    conv4(in_channels, out_channels, down.conv_stride, down.pad_type, bias),
                    norm_factory(norm)(out_channels) if norm is not None else nn.Identity(),
                    act if act is not None else nn.Identity(),
                    down.post(out_channels))


def up_conv(in_channels: int, out_channels: int, *, up: Upsample, bias: bool = True, kernel_size: int = 4) -> Level:
    """2x upsampling conv as the resolved ``up`` says, optionally followed by a blur at the high
    resolution (anti-imaging).

    ``transpose``: 4x4 transposed conv, stride 2, padding 1 (the reference U-Net's; ``kernel_size``
    3: the ResNet's, with output_padding 1).
    ``nearest`` / ``bilinear``: resize x2 then a 3x3 conv (fewer parameters than ``transpose``;
    not the reference architecture). ``aps``: APS-U, the transposed conv applied as zero
    insertion at the encoder's phase (call it as ``level.run(x, phase)``).
    The blur's filter sums to 1, so it keeps a constant map constant.

    Shape: (N, in, H, W) -> (N, out, 2H, 2W).
    """
    return assemble(*up.layers(in_channels, out_channels, bias, kernel_size))
