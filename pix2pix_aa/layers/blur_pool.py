"""BlurPool: low-pass filter, then subsample (Zhang, "Making Convolutional Networks
Shift-Invariant Again", ICML 2019).

The filter is the normalised outer product of a binomial row (Pascal's triangle), so a
constant image stays constant. Sizes 1..7; the paper's named filters are Rect-2 ([1, 1]),
Tri-3 ([1, 2, 1]), Bin-4 ([1, 3, 3, 1]) and Bin-5 ([1, 4, 6, 4, 1]).

Written by hand rather than taken from kornia because kornia's ``BlurPool2D`` only pads with
zeros, while the paper (and ``antialiased-cnns``, which we match to float precision) uses
reflect padding; with ``pad_type="zero"`` the two are the same operator (tested).

Speed: ``antialiased-cnns`` pads with a copy of the input, then convolves. Here zero padding is
folded into the conv, and reflect / replicate / circular padding take a padding-free path
(``_fast_blur``: zero-padded conv plus an exact recomputation of the thin output border) that
costs about what kornia's zero-padded conv costs; see ``benchmarks/blurpool.py``.
"""

from __future__ import annotations

import math
from typing import Union

import torch
import torch.nn.functional as F
from torch import nn

from pix2pix_aa.layers import _fast_blur

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

#: Config names of the anti-aliasing filters -> filter size. ``none`` (0) is the baseline.
FILTER_SIZES: dict[str, int] = {
    "none": 0,
    "rect2": 2,
    "tri3": 3,
    "bin4": 4,
    "bin5": 5,
    "bin6": 6,
    "bin7": 7,
}

#: Padding modes; aliases accepted for compatibility with ``antialiased-cnns``.
PAD_TYPES: dict[str, str] = {
    "reflect": "reflect",
    "refl": "reflect",
    "replicate": "replicate",
    "repl": "replicate",
    "zero": "constant",
    "zeros": "constant",
    "constant": "constant",
    "circular": "circular",
}

FilterSpec = Union[str, int, None]


def filter_size(spec: FilterSpec) -> int:
    """Turn a filter name (``"bin5"``), a size (``5``) or ``None`` into a size; 0 = no blur.

    Raises:
        ValueError: for an unknown name or a size outside 1..7, listing the valid choices.
    """
    if spec is None:
        return 0
    if isinstance(spec, bool):  # bool is an int subclass: refuse it explicitly
        raise ValueError(f"antialias filter must be a name or a size, got {spec!r}")
    if isinstance(spec, int):
        if spec == 0 or 1 <= spec <= 7:
            return spec
        raise ValueError(f"antialias filter size must be 1..7 (or 0 for none), got {spec}")
    key = str(spec).strip().lower()
    if key.isdigit():
        return filter_size(int(key))
    if key not in FILTER_SIZES:
        valid = ", ".join(repr(k) for k in FILTER_SIZES)
        raise ValueError(f"unknown antialias filter {spec!r}; valid: {valid} or a size 1..7")
    return FILTER_SIZES[key]


def _pad_mode(pad_type: str) -> str:
    try:
        return PAD_TYPES[pad_type]
    except KeyError:
        valid = ", ".join(sorted({"reflect", "replicate", "zero", "circular"}))
        raise ValueError(f"unknown pad_type {pad_type!r}; valid: {valid}") from None


def binomial_filter(size: int, dtype: torch.dtype | None = None,
                    device: torch.device | str | None = None) -> torch.Tensor:
    """The normalised 2-D binomial filter of ``size`` x ``size`` (sums to 1).

    Returns:
        Tensor of shape (size, size).
    """
    if not 1 <= size <= 7:
        raise ValueError(f"binomial filter size must be 1..7, got {size}")
    row = torch.tensor([math.comb(size - 1, k) for k in range(size)], dtype=torch.float64)
    filt = torch.outer(row, row)
    filt = filt / filt.sum()
    return filt.to(dtype=dtype or torch.get_default_dtype(), device=device)


def _pad_amounts(size: int, pad_off: int = 0) -> tuple[int, int, int, int]:
    """(left, right, top, bottom) padding: floor/ceil((k - 1) / 2) + pad_off, as the paper."""
    lo, hi = (size - 1) // 2 + pad_off, size // 2 + pad_off
    return lo, hi, lo, hi


def _gather_pad(x: torch.Tensor, pad: tuple[int, int, int, int], mode: str) -> torch.Tensor:
    """``F.pad(x, pad, mode)`` as an index gather on the last two axes (any pad width)."""
    h, w = x.shape[-2:]
    rows = _fast_blur.index_map(h, -pad[2], h + pad[3], mode)[0]
    cols = _fast_blur.index_map(w, -pad[0], w + pad[1], mode)[0]
    return x.index_select(-2, torch.tensor(rows, device=x.device)).index_select(
        -1, torch.tensor(cols, device=x.device))


def _defined_mode(x: torch.Tensor, pad: tuple[int, int, int, int], mode: str) -> str:
    """``mode``, except that reflect padding wider than the map falls back to replicate.

    Reflection needs pad < size; 2x2 (or 1x1) maps at the bottom of a U-Net break that rule,
    and replicate is the closest mode that is defined there.
    """
    if mode == "reflect":
        h, w = x.shape[-2:]
        if max(pad[0], pad[1]) >= w or max(pad[2], pad[3]) >= h:
            return "replicate"
    return mode


def _safe_pad(x: torch.Tensor, pad: tuple[int, int, int, int], mode: str) -> torch.Tensor:
    """F.pad, except that reflect padding wider than the map falls back to replicate
    (:func:`_defined_mode`) and circular padding wider than the map wraps around as often as
    needed.
    """
    if not any(pad):
        return x
    mode = _defined_mode(x, pad, mode)
    if mode == "constant":
        return F.pad(x, pad)
    if mode == "replicate" and torch.compiler.is_compiling():
        # Inductor (torch 2.14, CPU) declares contiguous strides for replication_pad2d_backward
        # while the kernel returns channels-last ones, and the compiled backward fails its
        # stride assertion; the same padding as a gather compiles (docs/PERFORMANCE.md).
        return _gather_pad(x, pad, mode)
    if mode == "circular":
        h, w = x.shape[-2:]
        if max(pad[0], pad[1]) > w or max(pad[2], pad[3]) > h:
            # F.pad refuses to wrap more than once; gathering by index wraps any number of times.
            return _gather_pad(x, pad, mode)
    return F.pad(x, pad, mode=mode)


def _autocast_dtype(x: torch.Tensor) -> torch.dtype | None:
    """The dtype autocast would run a conv in for ``x``, or None when autocast is off."""
    kind = x.device.type
    if not x.is_floating_point() or not torch.is_autocast_enabled(kind):
        return None
    return torch.get_autocast_dtype(kind)


def _blur(x: torch.Tensor, filt: torch.Tensor, stride: int, pad_type: str, pad_off: int) -> torch.Tensor:
    """Depthwise blur of (N, C, H, W) ``x`` with the (k, k) ``filt``, padded as the paper, then
    subsampled by ``stride``. Chooses the cheapest exact route (see ``_fast_blur``)."""
    size = filt.shape[-1]
    if x.dim() != 4:
        raise ValueError(f"blur expects a (N, C, H, W) tensor, got shape {tuple(x.shape)}")
    channels = x.shape[1]
    mode = _pad_mode(pad_type)
    pad = _pad_amounts(size, pad_off)
    if size == 1:
        return _safe_pad(x, pad, mode)[:, :, ::stride, ::stride]
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
            weight, lo = _fast_blur.symmetric_filter(weight, lo, hi)
        return F.conv2d(x, weight, stride=stride, padding=lo, groups=channels)
    if _fast_blur.fast_blur_supported(x):
        y = _fast_blur.padded_blur(x, weight, stride, pad, _defined_mode(x, pad, mode))
        if y is not None:
            return y
    return F.conv2d(_safe_pad(x, pad, mode), weight, stride=stride, groups=channels)


def blur_pool2d(x: torch.Tensor, filt_size: FilterSpec = 4, stride: int = 2,
                pad_type: str = "reflect", pad_off: int = 0) -> torch.Tensor:
    """Functional BlurPool: blur with the binomial filter, then subsample by ``stride``.

    Args:
        x: (N, C, H, W).
        filt_size: filter size 1..7 or a name such as ``"bin5"``.
        stride: subsampling factor.
        pad_type: ``reflect`` | ``replicate`` | ``zero`` | ``circular``.

    Returns:
        (N, C, ceil(H / stride), ceil(W / stride)) for ``pad_off=0``.
    """
    size = filter_size(filt_size)
    if size == 0:
        raise ValueError("blur_pool2d needs a filter; 'none' has no blur")
    return _blur(x, binomial_filter(size, dtype=x.dtype, device=x.device), stride, pad_type, pad_off)


def blur2d(x: torch.Tensor, filt_size: FilterSpec = 4, pad_type: str = "reflect") -> torch.Tensor:
    """Stride-1 binomial blur (used after upsampling). Shape is kept for odd sizes; even sizes
    pad floor/ceil so the output still has the input's shape."""
    return blur_pool2d(x, filt_size, stride=1, pad_type=pad_type)


class BlurPool(nn.Module):
    """Blur-then-subsample (the paper's *BlurPool*), drop-in for ``antialiased_cnns.BlurPool``.

    Args:
        channels: number of channels C, checked on every call; None accepts any C (the filter
            is depthwise, so it does not depend on C; the model converter uses this for pools).
        filt_size: 1..7 or a filter name.
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
        size = filter_size(filt_size)
        if size == 0:
            raise ValueError("BlurPool needs a filter size 1..7; use create_blur_pool for 'none'")
        if stride < 1:
            raise ValueError(f"stride must be >= 1, got {stride}")
        _pad_mode(pad_type)  # validate early
        self.channels, self.filt_size, self.stride = channels, size, stride
        self.pad_type, self.pad_off = pad_type, pad_off
        # Non-persistent: the filter is not a parameter and not part of the state_dict.
        self.register_buffer("filt", binomial_filter(size), persistent=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.channels is not None and (x.dim() < 2 or x.shape[1] != self.channels):
            raise ValueError(f"BlurPool built for {self.channels} channels got input of shape {tuple(x.shape)}")
        return _blur(x, self.filt, self.stride, self.pad_type, self.pad_off)

    def extra_repr(self) -> str:
        channels = "any" if self.channels is None else self.channels
        return (f"{channels}, filt_size={self.filt_size}, stride={self.stride}, "
                f"pad_type={self.pad_type!r}")


class Blur(BlurPool):
    """Stride-1 BlurPool: the low-pass filter applied after upsampling (anti-imaging).

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
    size = filter_size(antialias)
    if size == 0:
        return nn.Identity()
    return BlurPool(channels, size, stride=stride, pad_type=pad_type)
