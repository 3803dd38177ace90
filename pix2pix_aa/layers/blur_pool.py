"""BlurPool: low-pass filter, then subsample (Zhang, "Making Convolutional Networks
Shift-Invariant Again", ICML 2019).

The filter is the normalised outer product of a binomial row (Pascal's triangle), so a
constant image stays constant. Sizes 1..7; the paper's named filters are Rect-2 ([1, 1]),
Tri-3 ([1, 2, 1]), Bin-4 ([1, 3, 3, 1]) and Bin-5 ([1, 4, 6, 4, 1]). Kaiser-windowed sinc
filters designed for a cutoff (``kaiser7`` ...) are accepted wherever a filter name is; the
filters live in :mod:`pix2pix_aa.layers.filters`, the padding in :mod:`pix2pix_aa.layers.padding`.

Written by hand rather than taken from kornia because kornia's ``BlurPool2D`` only pads with
zeros, while the paper (and ``antialiased-cnns``, which we match to float precision) uses
reflect padding; with ``pad_type="zero"`` the two are the same operator (tested).

One route, the readable one: pad (reflect / replicate / circular, :func:`safe_pad`), then one
depthwise conv with the stride, as ``antialiased-cnns``; zero padding is folded into the conv (no
padded copy), as kornia does. A padding-free route (zero-padded conv plus an exact recomputation
of the output border, ~300 lines) was measured and removed: it saved 0-2% of a full training step
(docs/PERFORMANCE.md section 1), and it made outputs depend on the batch size at 1e-9 because it
was chosen by the input's size. Every output position is now computed by the same arithmetic, so
a generator's output for an image does not depend on what else is in its batch.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from pix2pix_aa.layers.filters import (
    FILTER_SIZES,
    FilterSpec,
    binomial_filter,
    filter_size,
    lowpass_filter,
    parse_filter,
)
from pix2pix_aa.layers.padding import (
    PAD_TYPES,
    pad_amounts,
    pad_mode,
    safe_pad,
)

__all__ = [
    "FILTER_SIZES",
    "PAD_TYPES",
    "binomial_filter",
    "filter_size",
    "blur_pool2d",
    "blur2d",
    "BlurPool",
    "Blur",
    "create_blur_pool",
]

def _autocast_dtype(x: torch.Tensor) -> torch.dtype | None:
    """The dtype autocast would run a conv in for ``x``, or None when autocast is off."""
    kind = x.device.type
    # meta: shape inference (the CLI's start-up size checks), where asking about autocast raises
    # "unknown device type" and every anti-aliased discriminator was refused as too small.
    if not x.is_floating_point() or x.is_meta or not torch.is_autocast_enabled(kind):
        return None
    return torch.get_autocast_dtype(kind)


def _symmetric_filter(weight: torch.Tensor, lo: int, hi: int) -> tuple[torch.Tensor, int]:
    """An even filter zero-padded (lo, hi = lo + 1) as the same filter with a leading zero row
    and column padded (hi, hi): symmetric padding, which ``conv2d(padding=...)`` folds in, so no
    padded or cropped copy is needed. Returns (weight of size k + 1, pad)."""
    if hi != lo + 1:
        raise ValueError(f"expected pads differing by one, got ({lo}, {hi})")
    return F.pad(weight, (1, 0, 1, 0)), hi


def _blur(x: torch.Tensor, filt: torch.Tensor, stride: int, pad_type: str, pad_off: int) -> torch.Tensor:
    """Depthwise blur of (N, C, H, W) ``x`` with the (k, k) ``filt``, padded as the paper, then
    subsampled by ``stride``: pad, then one strided depthwise conv."""
    size = filt.shape[-1]
    if x.dim() != 4:
        raise ValueError(f"blur expects a (N, C, H, W) tensor, got shape {tuple(x.shape)}")
    if not x.is_floating_point():  # the filter cast to an integer dtype is all zeros: a black output
        raise ValueError(f"blur expects a floating-point tensor, got {x.dtype} (for uint8 images: x.float())")
    channels = x.shape[1]
    mode = pad_mode(pad_type)
    pad = pad_amounts(size, pad_off)
    if size == 1:
        return safe_pad(x, pad, mode)[:, :, ::stride, ::stride]
    cast = _autocast_dtype(x)
    if cast is not None:
        # Run in autocast's dtype ourselves (as conv2d would), with autocast off inside, so the
        # custom backward sees one dtype throughout.
        with torch.autocast(x.device.type, enabled=False):
            return _blur(x.to(cast), filt, stride, pad_type, pad_off)
    weight = filt.to(dtype=x.dtype, device=x.device).expand(channels, 1, size, size)
    if mode == "constant":
        # Let the convolution pad (no padded copy of the input). Even sizes pad one more at the
        # end: padding lo on both sides gives the same outputs when the last window does not
        # reach the extra pixel (even maps at stride 2), else a zero-led (k+1) filter with
        # symmetric padding hi does.
        h, w = x.shape[-2:]
        lo, hi = pad[0], pad[1]
        if lo != hi and ((h + 2 * lo - size) // stride, (w + 2 * lo - size) // stride) != \
                ((h + lo + hi - size) // stride, (w + lo + hi - size) // stride):
            weight, lo = _symmetric_filter(weight, lo, hi)
        return F.conv2d(x, weight, stride=stride, padding=lo, groups=channels)
    return F.conv2d(safe_pad(x, pad, mode), weight, stride=stride, groups=channels)


def blur_pool2d(x: torch.Tensor, filt_size: FilterSpec = 4, stride: int = 2,
                pad_type: str = "reflect", pad_off: int = 0) -> torch.Tensor:
    """Functional BlurPool: blur with the low-pass filter, then subsample by ``stride``.

    Args:
        x: (N, C, H, W).
        filt_size: binomial size 1..7 or a filter name such as ``"bin5"`` or ``"kaiser7"``.
        stride: subsampling factor.
        pad_type: ``reflect`` | ``replicate`` | ``zero`` | ``circular``.

    Returns:
        (N, C, ceil(H / stride), ceil(W / stride)) for ``pad_off=0``.
    """
    size = filter_size(filt_size)
    if size == 0:
        raise ValueError("blur_pool2d needs a filter; 'none' has no blur")
    return _blur(x, lowpass_filter(filt_size, dtype=x.dtype, device=x.device), stride, pad_type, pad_off)


def blur2d(x: torch.Tensor, filt_size: FilterSpec = 4, pad_type: str = "reflect") -> torch.Tensor:
    """Stride-1 blur (used after upsampling). Shape is kept for odd sizes; even sizes
    pad floor/ceil so the output still has the input's shape."""
    return blur_pool2d(x, filt_size, stride=1, pad_type=pad_type)


class BlurPool(nn.Module):
    """Blur-then-subsample (the paper's *BlurPool*), drop-in for ``antialiased_cnns.BlurPool``.

    Args:
        channels: number of channels C, checked on every call; None accepts any C (the filter
            is depthwise, so it does not depend on C; the model converter uses this for pools).
        filt_size: binomial size 1..7 or a filter name (``bin5``, ``kaiser7``, ...; see
            :mod:`pix2pix_aa.layers.filters`).
        stride: subsampling factor.
        pad_type: ``reflect`` (default, as the paper), ``replicate``, ``zero`` or ``circular``.
            Reflect padding as wide as the map (2x2 or 1x1 maps deep in a U-Net with Bin-4 and
            up) is undefined and crashes ``antialiased-cnns``; here it falls back to replicate
            for that call. Circular padding wider than the map wraps around repeatedly.
        pad_off: extra padding on every side.

    Shape:
        (N, C, H, W) -> (N, C, ceil(H / stride), ceil(W / stride)).

    The filter is a non-persistent buffer (not in the state_dict), cast to the input's
    dtype/device on use; under autocast the blur runs in autocast's dtype, as a conv would.
    """

    filt: torch.Tensor

    def __init__(self, channels: int | None, filt_size: FilterSpec = 4, stride: int = 2,
                 pad_type: str = "reflect", pad_off: int = 0) -> None:
        super().__init__()
        if channels is not None and channels < 1:
            raise ValueError(f"channels must be >= 1 (or None for any), got {channels}")
        lowpass = parse_filter(filt_size)
        if lowpass.size == 0:
            raise ValueError("BlurPool needs a filter size 1..7; use create_blur_pool for 'none'")
        if isinstance(stride, bool) or not isinstance(stride, int) or stride < 1:
            raise ValueError(f"stride must be an int >= 1 (the same along both axes), got {stride!r}")
        pad_mode(pad_type)  # validate early
        self.channels, self.filt_size, self.stride = channels, lowpass.size, stride
        self.filter_name = lowpass.name
        self.pad_type, self.pad_off = pad_type, pad_off
        # Non-persistent: the filter is not a parameter and not part of the state_dict.
        self.register_buffer("filt", lowpass_filter(lowpass), persistent=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.channels is not None and (x.dim() < 2 or x.shape[1] != self.channels):
            raise ValueError(f"BlurPool built for {self.channels} channels got input of shape {tuple(x.shape)}")
        return _blur(x, self.filt, self.stride, self.pad_type, self.pad_off)

    def extra_repr(self) -> str:
        channels = "any" if self.channels is None else self.channels
        name = f", filter={self.filter_name!r}" if self.filter_name.startswith("kaiser") else ""
        return (f"{channels}, filt_size={self.filt_size}{name}, stride={self.stride}, "
                f"pad_type={self.pad_type!r}")


class Blur(BlurPool):
    """Stride-1 BlurPool: the low-pass filter applied after upsampling (anti-imaging).

    Shape: (N, C, H, W) -> (N, C, H, W).

    The filter sums to 1, so a constant map stays constant (the gain is already right for
    a learned transposed convolution, whose weights carry the upsampling gain).
    """

    def __init__(self, channels: int, filt_size: FilterSpec = 4, pad_type: str = "reflect") -> None:
        super().__init__(channels, filt_size, stride=1, pad_type=pad_type)


def create_blur_pool(antialias: FilterSpec, channels: int, stride: int = 2,
                     pad_type: str = "reflect") -> nn.Module:
    """Factory from a config value: ``BlurPool`` for a filter, ``nn.Identity`` for ``"none"``.

    Networks call this instead of branching on ``if antialias:``.
    """
    if filter_size(antialias) == 0:
        return nn.Identity()
    return BlurPool(channels, antialias, stride=stride, pad_type=pad_type)
