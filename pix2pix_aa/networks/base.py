"""What every image -> image generator here shares: the input check, pad-and-crop for sizes that
are not multiples of its downsampling, and the ``features`` / ``phases`` views of one forward pass.

Subclasses set ``in_channels``, ``num_downs``, ``pad_input`` and ``is_aps`` and implement
``_run(x, taps, phases_out)`` on inputs whose size is a multiple of :attr:`size_multiple`.
Their constructors share the option checks below (:func:`check_generator_options`) and read
their anti-aliasing options once through :func:`pix2pix_aa.networks.antialias.resolve_antialias`.
"""

from __future__ import annotations

import math
from typing import Optional

import torch
from torch import nn

from pix2pix_aa.layers.padding import pad_to_multiple
from pix2pix_aa.networks.convs import NORMS, check_choice

__all__ = ["Generator", "check_generator_options"]


def check_generator_options(ngf: int, in_channels: int, out_channels: int, dropout: float, norm: str) -> None:
    """The checks both generators make on their widths, dropout and norm (the anti-aliasing
    options are read by :func:`~pix2pix_aa.networks.antialias.resolve_antialias`).

    Raises:
        ValueError: naming the option, the value and the valid ones.
    """
    if ngf < 1 or in_channels < 1 or out_channels < 1:
        raise ValueError("ngf, in_channels and out_channels must be positive")
    if not 0.0 <= dropout < 1.0:
        raise ValueError(f"dropout must be in [0, 1), got {dropout}")
    check_choice("norm", norm, NORMS)


class Generator(nn.Module):
    """Base of :class:`~pix2pix_aa.networks.UNetGenerator` and
    :class:`~pix2pix_aa.networks.ResNetGenerator`.

    Shape: (N, in_channels, H, W) -> (N, out_channels, H, W); H and W multiples of
    :attr:`size_multiple`, or any size with ``pad_input`` (reflect-padded on the bottom/right,
    cropped back).
    """

    in_channels: int
    num_downs: int
    pad_input: bool
    is_aps: bool
    #: What the size error suggests besides resizing and pad_input (e.g. ", lower num_downs").
    size_hint: str = ""

    def _size_reason(self) -> str:
        """The multiple and why, for the size error."""
        return f"2**num_downs = {self.size_multiple} (num_downs={self.num_downs})"

    @property
    def size_multiple(self) -> int:
        """Input sizes must be multiples of this (2 ** num_downs)."""
        return 2 ** self.num_downs

    def size_problem(self, size: tuple[int, int]) -> Optional[str]:
        """Why an input of spatial size ``(H, W)`` (pixels) is refused, naming the nearest valid
        sizes, or None when it is accepted (any size with ``pad_input``). Shared by ``forward``
        and by callers that check their data before running (evaluate.py)."""
        if self.pad_input:
            return None
        m = self.size_multiple
        bad = list(dict.fromkeys(s for s in size if s % m))  # a square input names its size once
        if not bad:
            return None

        def nearest(s: int) -> str:
            below, above = (s // m) * m, math.ceil(s / m) * m
            return f"{s} -> {above}" if below == 0 else f"{s} -> {below} or {above}"

        near = "; ".join(nearest(s) for s in bad)
        return f"input size {tuple(size)} is not a multiple of {self._size_reason()}; nearest valid: {near}"

    def _check_input(self, x: torch.Tensor) -> None:
        if x.dim() != 4 or x.shape[1] != self.in_channels:
            raise ValueError(f"{type(self).__name__} expects (N, {self.in_channels}, H, W), got {tuple(x.shape)}")
        problem = self.size_problem(tuple(x.shape[-2:]))
        if problem:
            raise ValueError(f"{problem}. Resize/crop the input{self.size_hint}, or pass pad_input=True to pad and "
                             "crop.")

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self._padded_run(x)

    def features(self, x: torch.Tensor) -> dict[str, tuple[torch.Tensor, int]]:
        """Named intermediate maps with their cumulative stride (for the feature-distance
        metric), from the same computation as ``forward``; ``out`` is the output (stride 1)."""
        taps: dict[str, tuple[torch.Tensor, int]] = {}
        taps["out"] = (self._padded_run(x, taps), 1)
        return taps

    def phases(self, x: torch.Tensor) -> list[torch.Tensor]:
        """APS only: the polyphase index chosen at each downsampling, each (N,) int64 with
        p = i * 2 + j for the component ``[..., i::2, j::2]``."""
        if not self.is_aps:
            raise ValueError("phases() is only defined for APS generators (antialias='aps...')")
        out: list[torch.Tensor] = []
        self._padded_run(x, None, out)
        return out

    def _padded_run(self, x: torch.Tensor, taps: Optional[dict] = None,
                    phases_out: Optional[list] = None) -> torch.Tensor:
        self._check_input(x)
        h, w = x.shape[-2:]
        if self.pad_input:
            x = pad_to_multiple(x, self.size_multiple)
        return self._run(x, taps, phases_out)[..., :h, :w]

    def _run(self, x: torch.Tensor, taps: Optional[dict], phases_out: Optional[list]) -> torch.Tensor:
        raise NotImplementedError
