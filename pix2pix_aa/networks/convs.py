"""The primitive layers of the networks: norms, and convs padded as the reference (or any mode),
with the check that names an option's valid choices."""

from __future__ import annotations

import functools
from collections.abc import Callable

import torch
from torch import nn

from pix2pix_aa.layers.padding import pad_mode, safe_pad

__all__ = ["NORMS", "PaddedConv2d", "check_choice", "conv3", "conv4", "norm_factory"]

NORMS = ("batch", "instance", "none")


def norm_factory(norm: str) -> Callable[[int], nn.Module]:
    """``batch`` (affine, running stats), ``instance`` (no affine, no running stats, as pix2pix)
    or ``none``."""
    if norm == "batch":
        return functools.partial(nn.BatchNorm2d, affine=True, track_running_stats=True)
    if norm == "instance":
        return functools.partial(nn.InstanceNorm2d, affine=False, track_running_stats=False)
    if norm == "none":
        return lambda channels: nn.Identity()
    raise ValueError(f"unknown norm {norm!r}; valid: {', '.join(map(repr, NORMS))}")


def check_choice(name: str, value: str, valid: tuple[str, ...]) -> str:
    """``value`` if it is one of ``valid``, else a ValueError naming the valid choices."""
    if value not in valid:
        raise ValueError(f"unknown {name} {value!r}; valid: {', '.join(map(repr, valid))}")
    return value


class PaddedConv2d(nn.Conv2d):
    """Conv2d with explicit (left, right, top, bottom) padding of any mode.

    The stride-1 4x4 conv of the anti-aliased encoder needs asymmetric padding (1, 2): output
    i then sees inputs i-1..i+2, so subsampling it at even positions sees exactly what the
    reference's stride-2, padding-1 conv sees (same receptive field and alignment).
    Keeps ``weight``/``bias`` names, so parameter counts and state_dict keys match nn.Conv2d.

    Shape:
        (N, C_in, H, W) -> (N, C_out, H', W') with H' = (H + top + bottom - k) // stride + 1.
    """

    def __init__(self, in_channels: int, out_channels: int, kernel_size: int, stride: int = 1,
                 pad: tuple[int, int, int, int] = (0, 0, 0, 0), pad_type: str = "zero",
                 bias: bool = True) -> None:
        super().__init__(in_channels, out_channels, kernel_size, stride=stride, padding=0, bias=bias)
        self.pad, self.pad_mode = tuple(pad), pad_mode(pad_type)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return super().forward(safe_pad(x, self.pad, self.pad_mode))

    def extra_repr(self) -> str:
        return super().extra_repr() + f", pad={self.pad}, pad_mode={self.pad_mode!r}"


def conv4(in_channels: int, out_channels: int, stride: int, pad_type: str, bias: bool) -> nn.Conv2d:
    """The pix2pix 4x4 conv. Stride 2: symmetric padding 1 (the reference). Stride 1: padding
    (1, 2) so it lines up with the stride-2 version (see PaddedConv2d)."""
    if stride == 2 and pad_type in ("zero", "zeros"):
        return nn.Conv2d(in_channels, out_channels, 4, stride=2, padding=1, bias=bias)
    pad = (1, 1, 1, 1) if stride == 2 else (1, 2, 1, 2)
    return PaddedConv2d(in_channels, out_channels, 4, stride=stride, pad=pad, pad_type=pad_type, bias=bias)


def conv3(in_channels: int, out_channels: int, pad_type: str, bias: bool) -> nn.Conv2d:
    """A stride-1 3x3 conv padded by 1 on every side; zero padding uses ``nn.Conv2d``'s own.

    Shape: (N, in, H, W) -> (N, out, H, W).
    """
    if pad_type in ("zero", "zeros"):
        return nn.Conv2d(in_channels, out_channels, 3, padding=1, bias=bias)
    return PaddedConv2d(in_channels, out_channels, 3, pad=(1, 1, 1, 1), pad_type=pad_type, bias=bias)
