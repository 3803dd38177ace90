"""Anti-aliased strided convolutions (Zhang 2019, section 3).

Two orders, both parameter-free additions to a conv:

* :class:`ConvBlurPool` -- the paper's ``Conv(stride 1) -> [norm] -> act -> BlurPool(stride)``:
  the conv and the non-linearity are evaluated densely, and only the subsampling is blurred.
  Used where the activation follows the conv directly.
* :class:`BlurConv2d` -- ``BlurPool(stride) -> Conv(stride 1)``: Zhang's choice in the
  antialiased ResNets where the strided conv is not followed by its own activation (the 1x1
  shortcut conv, or the block conv whose activation is shared). It is a ``nn.Conv2d`` subclass,
  so it keeps the conv's parameter names and a trained state_dict loads unchanged.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
import torch.nn.functional as F
from torch import nn

from pix2pix_aa.layers.blur_pool import BlurPool, FilterSpec, blur_pool2d

__all__ = ["ConvBlurPool", "conv_blur_pool2d", "BlurConv2d"]


def conv_blur_pool2d(x: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor | None = None,
                     stride: int = 2, padding: int | tuple[int, int] = 0,
                     activation: Callable[[torch.Tensor], torch.Tensor] | None = F.relu,
                     filt_size: FilterSpec = 4, pad_type: str = "reflect") -> torch.Tensor:
    """Functional :class:`ConvBlurPool` (no norm): ``blur_pool(act(conv(x, stride=1)), stride)``.

    Args:
        x: (N, C_in, H, W); weight: (C_out, C_in, kh, kw).
        activation: applied between conv and blur; None for none.

    Returns:
        (N, C_out, ceil(H' / stride), ceil(W' / stride)), H' the stride-1 conv's output height.
    """
    y = F.conv2d(x, weight, bias, stride=1, padding=padding)
    if activation is not None:
        y = activation(y)
    return blur_pool2d(y, filt_size, stride=stride, pad_type=pad_type)


class ConvBlurPool(nn.Module):
    """``Conv(stride 1) -> [norm] -> activation -> BlurPool(stride)``, the paper's anti-aliased
    replacement for ``Conv(stride) -> [norm] -> activation``.

    Args:
        in_channels, out_channels, kernel_size, padding, bias: of the conv (stride is fixed at 1).
        stride: subsampling factor, done by the BlurPool.
        norm: a norm module for ``out_channels`` (e.g. ``nn.BatchNorm2d(out_channels)``) or None.
        activation: module or None (identity).
        filt_size, pad_type: of the BlurPool.

    Shape:
        (N, C_in, H, W) -> (N, C_out, ceil(H' / stride), ceil(W' / stride)) with H' the stride-1
        conv's output height (= H for 'same' padding).

    Same parameters as the strided block it replaces (the blur is a non-persistent buffer), at
    stride**2 times the conv's compute.
    """

    def __init__(self, in_channels: int, out_channels: int, kernel_size: int = 3, stride: int = 2,
                 padding: int | tuple[int, int] = 1, bias: bool = True, norm: nn.Module | None = None,
                 activation: nn.Module | None = None, filt_size: FilterSpec = 4,
                 pad_type: str = "reflect") -> None:
        super().__init__()
        self.conv = nn.Conv2d(in_channels, out_channels, kernel_size, stride=1, padding=padding, bias=bias)
        self.norm = norm if norm is not None else nn.Identity()
        self.act = activation if activation is not None else nn.Identity()
        self.blur = BlurPool(out_channels, filt_size, stride=stride, pad_type=pad_type)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.blur(self.act(self.norm(self.conv(x))))


class BlurConv2d(nn.Conv2d):
    """``BlurPool(blur_stride)`` on the input, then this convolution at stride 1; or, with
    ``blur_stride=1`` and a conv ``stride`` s, a stride-1 blur, then the conv at stride s.

    Either way the input is low-passed before it is subsampled, once. The second form keeps the
    output size of any strided conv (the first keeps it only for "same" convs, 2 * padding ==
    dilation * (kernel_size - 1): 3x3 with padding 1, 1x1 without).

    Args:
        in_channels, out_channels, kernel_size, padding, dilation, groups, bias, padding_mode:
            as ``nn.Conv2d``.
        blur_stride: the subsampling factor of the blur (the replaced conv's stride), or 1.
        stride: the conv's stride: 1, or the subsampling factor when ``blur_stride`` is 1.
        filt_size, pad_type: of the BlurPool.

    Shape:
        (N, C_in, H, W) -> the conv's output on (N, C_in, ceil(H / s), ceil(W / s)); with
        ``blur_stride=1``, the strided conv's output on (N, C_in, H, W).
    """

    def __init__(self, in_channels: int, out_channels: int, kernel_size: int | tuple[int, int],
                 blur_stride: int = 2, filt_size: FilterSpec = 4, pad_type: str = "reflect",
                 **conv_kwargs) -> None:
        stride = conv_kwargs.pop("stride", 1)
        if blur_stride != 1 and stride not in (1, (1, 1)):
            raise ValueError("BlurConv2d subsamples once: by the blur (blur_stride, the conv at stride 1) or by the "
                             "conv (its stride, with blur_stride 1)")
        super().__init__(in_channels, out_channels, kernel_size, stride=stride, **conv_kwargs)
        self.blur = BlurPool(in_channels, filt_size, stride=blur_stride, pad_type=pad_type)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return super().forward(self.blur(x))

    @classmethod
    def from_conv(cls, conv: nn.Conv2d, filt_size: FilterSpec = 4, pad_type: str = "reflect",
                  blur_stride: int | None = None) -> BlurConv2d:
        """Anti-alias a strided ``conv`` (or, with ``blur_stride``, a stride-1 conv that should
        take over a subsampling moved from elsewhere). The new module *shares* the conv's weight
        and bias Parameters, so optimisers and state_dicts still refer to the same tensors.

        A "same" conv (3x3 with padding 1, 1x1 without) becomes BlurPool(s) -> conv at stride 1,
        ``antialiased-cnns``' layout; any other (pix2pix's 4x4 with padding 1, a 7x7 without
        padding) a stride-1 blur -> the conv at stride s, the only order of the two that keeps
        its output size."""
        sh, sw = conv.stride
        if sh != sw:
            raise ValueError(f"only square strides can be anti-aliased, got {conv}")
        stride = 1
        if blur_stride is None:
            same = all(2 * p == d * (k - 1) for p, d, k in zip(conv.padding, conv.dilation, conv.kernel_size)) \
                if isinstance(conv.padding, tuple) else False
            blur_stride, stride = (sh, 1) if same else (1, sh)
        elif sh != 1:
            raise ValueError(f"blur_stride given for an already strided conv {conv}")
        new = cls(conv.in_channels, conv.out_channels, conv.kernel_size, blur_stride=blur_stride, stride=stride,
                  filt_size=filt_size, pad_type=pad_type, padding=conv.padding, dilation=conv.dilation,
                  groups=conv.groups, bias=conv.bias is not None, padding_mode=conv.padding_mode,
                  device=conv.weight.device, dtype=conv.weight.dtype)
        new.blur.to(device=conv.weight.device)
        new.weight = conv.weight
        if conv.bias is not None:
            new.bias = conv.bias
        new.train(conv.training)
        return new
