"""Shift grids and shift operators shared by the stability metrics.

Convention everywhere: a shift (dy, dx) moves image content *down/right*, as
``torch.roll(x, (dy, dx), dims=(-2, -1))`` does; the crop protocol's window at offset (dy, dx)
shows content moved *up/left* by (dy, dx), and is compared accordingly.
"""

from __future__ import annotations

import random
from collections.abc import Iterable, Sequence

import torch
import torch.nn.functional as F

__all__ = ["Shift", "shift_grid", "validate_shifts", "grid_size_for", "reflect_pad_source", "fourier_shift",
           "shift_features"]

Shift = tuple[int, int]


def shift_grid(max_shift: int = 8, num_shifts: int | None = None, seed: int = 0) -> list[Shift]:
    """Shifts (dy, dx) with 0 <= dy, dx < ``max_shift``.

    Args:
        max_shift: S; the grid is [0, S)^2 (S = 8 gives the paper's 64 shifts).
        num_shifts: None -> every shift in row-major order; otherwise a seeded sample of that
            many distinct shifts (sorted), drawn without replacement. (0, 0) can be drawn; the
            stability metrics skip it (trivially infinite PSNR).
        seed: seed of the sample (``random.Random(seed)``: the same on every machine).
    """
    if not isinstance(max_shift, int) or max_shift < 1:
        raise ValueError(f"max_shift must be a positive int, got {max_shift!r}")
    grid = [(dy, dx) for dy in range(max_shift) for dx in range(max_shift)]
    if num_shifts is None:
        return grid
    if not 1 <= num_shifts <= len(grid):
        raise ValueError(f"num_shifts must be in 1..{len(grid)} for max_shift={max_shift}, got {num_shifts}")
    return sorted(random.Random(seed).sample(grid, num_shifts))


def validate_shifts(shifts: Iterable[Sequence[int]], limit: tuple[int, int] | None = None) -> list[Shift]:
    """Turn ``shifts`` into a list of (int, int), checking 0 <= dy, dx (<= limit if given).
    Whole pixels only: a fractional shift (0.5) is refused, not truncated to another one."""
    out: list[Shift] = []
    for s in shifts:
        try:
            if isinstance(s, (str, bytes)) or any(isinstance(v, (bool, str, bytes)) for v in s):
                raise ValueError  # "12" would be (1, 2); True would be 1
            pair = [float(v) for v in s]
            if len(pair) != 2 or any(v != int(v) for v in pair):
                raise ValueError
            dy, dx = (int(v) for v in pair)
        except (TypeError, ValueError, OverflowError):
            raise ValueError(f"each shift must be a pair (dy, dx) of whole pixels, got {s!r}") from None
        if dy < 0 or dx < 0:
            raise ValueError(f"shifts must be non-negative (0 <= dy, dx < S), got {(dy, dx)}")
        if limit is not None and (dy > limit[0] or dx > limit[1]):
            raise ValueError(f"shift {(dy, dx)} exceeds the padding of the source: at most {limit} "
                             f"(pad the source by S with reflect_pad_source(x, S))")
        out.append((dy, dx))
    if not out:
        raise ValueError("no shifts given")
    return out


def grid_size_for(shifts: Sequence[Shift], grid_size: int | None = None) -> int:
    """Side S of the (S, S) per-shift array: ``grid_size`` or 1 + the largest shift component."""
    needed = 1 + max(max(s) for s in shifts)
    if grid_size is None:
        return needed
    if grid_size < needed:
        raise ValueError(f"grid_size={grid_size} too small for shift {needed - 1}")
    return grid_size


def reflect_pad_source(x: torch.Tensor, max_shift: int) -> torch.Tensor:
    """Pad (N, C, H, W) -> (N, C, H + S, W + S) by reflection at the bottom/right, to make a crop
    protocol source when no larger original exists.

    Raises:
        ValueError: if S >= H or W (reflection needs pad < size).
    """
    if x.dim() != 4:
        raise ValueError(f"reflect_pad_source expects (N, C, H, W), got shape {tuple(x.shape)}")
    h, w = x.shape[-2:]
    if not 0 <= max_shift < min(h, w):
        raise ValueError(f"reflect padding by S={max_shift} needs 0 <= S < min(H, W) = {min(h, w)}")
    return F.pad(x, (0, max_shift, 0, max_shift), mode="reflect") if max_shift else x


def fourier_shift(x: torch.Tensor, dy: float, dx: float) -> torch.Tensor:
    """Circularly shift the last two axes by a possibly fractional (dy, dx) with a Fourier phase ramp.

    For integer shifts this equals ``torch.roll(x, (dy, dx), (-2, -1))`` up to float error.
    The result is the real part of the inverse FFT: for even sizes the Nyquist component
    of a fractional shift is not representable in a real signal and is attenuated by
    cos(pi * frac), the usual convention (e.g. ``scipy.ndimage.fourier_shift``).

    Args:
        x: (..., h, w) real tensor.
    Returns:
        Tensor of the same shape and dtype.
    """
    h, w = x.shape[-2:]
    work = x.to(torch.float64) if x.dtype != torch.float64 else x
    ky = torch.fft.fftfreq(h, dtype=torch.float64, device=x.device)
    kx = torch.fft.fftfreq(w, dtype=torch.float64, device=x.device)
    ramp = torch.exp(-2j * torch.pi * (ky[:, None] * dy + kx[None, :] * dx))
    return torch.fft.ifft2(torch.fft.fft2(work) * ramp).real.to(x.dtype)


def shift_features(f: torch.Tensor, dy: float, dx: float) -> torch.Tensor:
    """Circular shift of a feature map: exact ``torch.roll`` for integer shifts, Fourier otherwise."""
    if float(dy).is_integer() and float(dx).is_integer():
        return torch.roll(f, (int(dy), int(dx)), dims=(-2, -1))
    return fourier_shift(f, dy, dx)
