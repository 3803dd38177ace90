"""Anti-aliased pooling (Zhang 2019, section 3): MaxBlurPool and BlurPool as the AvgPool
replacement.

The paper's observation: ``MaxPool(k, stride s)`` = ``subsample_s . max_k``; the max is
evaluated densely and only the subsampling aliases. So keep the dense max (stride 1) and replace
the subsampling by a blur-then-subsample (BlurPool). Average pooling already blurs, but with a
box filter whose sidelobes alias; a binomial BlurPool replaces it outright.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from pix2pix_aa.layers.blur_pool import BlurPool, FilterSpec, blur_pool2d, filter_size

__all__ = ["MaxBlurPool", "max_blur_pool2d", "blur_pool_from_avg_pool", "max_blur_pool_from_max_pool"]


def _pair(v: int | tuple[int, ...]) -> tuple[int, int]:
    return (v, v) if isinstance(v, int) else (int(v[0]), int(v[1]))


def max_blur_pool2d(x: torch.Tensor, filt_size: FilterSpec = 4, stride: int = 2, kernel_size: int = 2,
                    padding: int = 0, pad_type: str = "reflect") -> torch.Tensor:
    """Functional :class:`MaxBlurPool`: dense max over ``kernel_size`` (stride 1), then BlurPool.

    Args:
        x: (N, C, H, W).

    Returns:
        (N, C, ceil(H' / stride), ceil(W' / stride)) with H' = H + 2 * padding - kernel_size + 1.
    """
    if x.dim() != 4:
        raise ValueError(f"max_blur_pool2d expects a (N, C, H, W) tensor, got shape {tuple(x.shape)}")
    x = F.max_pool2d(x, kernel_size, stride=1, padding=padding)
    return blur_pool2d(x, filt_size, stride=stride, pad_type=pad_type)


class MaxBlurPool(nn.Module):
    """MaxPool(kernel_size, stride 1) -> BlurPool(stride): the paper's anti-aliased max pooling.

    Args:
        channels: C of the input.
        filt_size: blur filter, 1..7 or a name (``"bin5"``).
        stride: subsampling factor of the BlurPool.
        kernel_size, padding: of the dense max (the paper uses 2 and 0; a converted torchvision
            ``MaxPool2d(3, 2, 1)`` keeps 3 and 1).
        pad_type: padding of the blur (``reflect`` | ``replicate`` | ``zero`` | ``circular``).

    Shape:
        (N, C, H, W) -> (N, C, ceil(H' / stride), ceil(W' / stride)),
        H' = H + 2 * padding - kernel_size + 1.

    Has no parameters and no state_dict entries, so it can replace a ``MaxPool2d`` in a trained
    model.
    """

    def __init__(self, channels: int, filt_size: FilterSpec = 4, stride: int = 2, kernel_size: int = 2,
                 padding: int = 0, pad_type: str = "reflect") -> None:
        super().__init__()
        if kernel_size < 1:
            raise ValueError(f"kernel_size must be >= 1, got {kernel_size}")
        if not 0 <= 2 * padding <= kernel_size:
            raise ValueError(f"padding must be in 0..kernel_size//2 (max pooling rule), got {padding} "
                             f"for kernel_size {kernel_size}")
        self.kernel_size, self.padding = kernel_size, padding
        self.blur = BlurPool(channels, filt_size, stride=stride, pad_type=pad_type)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.dim() != 4:
            raise ValueError(f"MaxBlurPool expects a (N, C, H, W) tensor, got shape {tuple(x.shape)}")
        return self.blur(F.max_pool2d(x, self.kernel_size, stride=1, padding=self.padding))

    def extra_repr(self) -> str:
        return f"kernel_size={self.kernel_size}, padding={self.padding}"


def max_blur_pool_from_max_pool(pool: nn.MaxPool2d, channels: int, filt_size: FilterSpec = 4,
                                pad_type: str = "reflect") -> nn.Module:
    """``MaxPool2d(k, stride s, padding p)`` -> ``MaxBlurPool`` with the same k and p (dense max)
    and BlurPool stride s. A stride-1 pool is returned unchanged (nothing aliases)."""
    ks, stride, pad = _pair(pool.kernel_size), _pair(pool.stride), _pair(pool.padding)
    if ks[0] != ks[1] or stride[0] != stride[1] or pad[0] != pad[1]:
        raise ValueError(f"only square max pools can be anti-aliased, got {pool}")
    if _pair(pool.dilation) != (1, 1):
        raise ValueError(f"dilated max pools are not supported, got {pool}")
    if stride[0] == 1:
        return pool
    return MaxBlurPool(channels, filt_size, stride=stride[0], kernel_size=ks[0], padding=pad[0],
                       pad_type=pad_type)


def blur_pool_from_avg_pool(pool: nn.AvgPool2d, channels: int, filt_size: FilterSpec = 4,
                            pad_type: str = "reflect") -> nn.Module:
    """``AvgPool2d(k, stride s)`` -> ``BlurPool(stride s)``: the box filter is replaced by the
    binomial one (for k = s = 2 with ``filt_size=2`` the two agree on even maps).

    Output size is ``ceil(H / s)`` instead of the pool's ``floor((H - k) / s) + 1``; they agree
    for k = s on maps divisible by s (the torchvision cases).
    """
    stride = _pair(pool.stride if pool.stride is not None else pool.kernel_size)
    if stride[0] != stride[1]:
        raise ValueError(f"only square average pools can be replaced, got {pool}")
    if stride[0] == 1:
        return pool
    filter_size(filt_size)  # validate early with the usual message
    return BlurPool(channels, filt_size, stride=stride[0], pad_type=pad_type)
