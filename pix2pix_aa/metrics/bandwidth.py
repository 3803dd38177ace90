"""Bandwidth-aware views of stability and sharpness (docs/DESIGN.md section 5b).

* :func:`lowpass`: the common filter of the *equal-bandwidth* stability (both compared outputs
  go through it before the error): any of the anti-aliasing filters (binomial or Kaiser sinc),
  named and designed by :mod:`pix2pix_aa.layers.filters`, the one home of the filter names.
* :func:`band_energy`: windowed spectral energy of images in radial octave bands, the building
  block of the *stability spectrum* (10 log10 of output energy / inconsistency energy per band).
* :func:`high_frequency_energy`: energy above half Nyquist, for the sharpness ratio to targets.

Frequencies are radial, rho = sqrt(fy^2 + fx^2) in cycles per pixel (Nyquist = 0.5). Octave band
edges: 0, 0.5 / 2^(B-1), ..., 0.125, 0.25, sqrt(0.5); the top band (0.25, sqrt(0.5)] also holds
the spectrum's corners beyond 0.5. Spectra use a separable Hann window (``torch.hann_window``,
symmetric) so that the edges of a non-periodic region do not leak energy into every band;
torch.fft is used for the transforms.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Callable
from typing import Optional, Union

import torch

# The filter design is plain torch (no nn.Module, no Lightning): sharing it keeps one list of
# filter names, so every filter a network takes is also an equal-bandwidth filter.
from pix2pix_aa.layers.filters import FILTER_NAMES, LowPass, lowpass_filter, parse_filter

__all__ = ["LOWPASS_CHOICES", "NUM_BANDS", "band_edges", "band_energy", "band_index", "hann_window2d",
           "high_frequency_energy", "lowpass", "lowpass_radius", "resolve_lowpass", "spectrum_db"]

#: The equal-bandwidth filters, for help texts: the anti-aliasing filters (Zhang 2019's binomials
#: Rect-2 [1, 1] ... Bin-7, and Kaiser-windowed sincs); ``none`` turns the figure off.
LOWPASS_CHOICES: str = FILTER_NAMES

#: Octave bands of the stability spectrum.
NUM_BANDS: int = 5

#: A low-pass: (N, C, H, W) -> (N, C, H, W). A callable may carry ``radius`` (pixels of support
#: on each side) so the crop protocol can leave out the pixels its padding touches.
LowpassFn = Callable[[torch.Tensor], torch.Tensor]


def parse_lowpass(name: str) -> LowPass:
    """The filter of an equal-bandwidth name (``bin5``, ``kaiser9``, ``kaiser9_c0.2_w0.15`` ...).

    Raises:
        ValueError: ``unknown low-pass filter ...`` for a name the anti-aliasing filters do not
            have, and for ``none`` (no filter; :func:`resolve_lowpass` handles it).
    """
    try:
        lp = parse_filter(name)
    except ValueError:
        lp = None
    if lp is None or lp.size == 0:
        raise ValueError(f"unknown low-pass filter {name!r}; valid: {LOWPASS_CHOICES} or none")
    return lp


def lowpass(x: torch.Tensor, name: str = "bin5", border: str = "reflect") -> torch.Tensor:
    """Depthwise blur at full resolution (stride 1) with an anti-aliasing filter, the
    equal-bandwidth filter.

    Source: the binomial filters of Zhang, "Making Convolutional Networks Shift-Invariant Again"
    (ICML 2019), Bin-5 = [1, 4, 6, 4, 1] / 16 in each direction, or the Kaiser-windowed sinc
    filters of the alias-free GAN (:mod:`pix2pix_aa.layers.filters`). Applied with
    ``kornia.filters.filter2d`` (``same`` padding).

    Args:
        x: images.
        name: a filter name (:data:`LOWPASS_CHOICES`).
        border: ``reflect`` (crop protocol), ``circular`` (circular protocol: the filter then
            commutes exactly with ``torch.roll``), ``replicate`` or ``constant``.

    Shape:
        (N, C, H, W) -> (N, C, H, W) (also (C, H, W) -> (C, H, W)).

    Raises:
        ValueError: unknown name, or an image smaller than the filter.
    """
    lp = parse_lowpass(name)
    import kornia

    size = lp.size
    squeeze = x.dim() == 3
    x4 = x[None] if squeeze else x
    if min(x4.shape[-2:]) <= size:
        raise ValueError(f"low-pass {name} needs images larger than {size} px, got {tuple(x4.shape[-2:])}")
    k = lowpass_filter(lp, dtype=x4.dtype, device=x4.device)[None]
    out = kornia.filters.filter2d(x4, k, border_type=border)
    return out[0] if squeeze else out


def lowpass_radius(name: str) -> int:
    """Pixels on each side that a ``lowpass(name)`` output pixel depends on (size // 2)."""
    return parse_lowpass(name).size // 2


def resolve_lowpass(spec: Union[str, LowpassFn, None]) -> tuple[Optional[str], Optional[LowpassFn],
                                                                 Optional[LowpassFn], int]:
    """(name, crop-protocol filter, circular-protocol filter, radius) of a low-pass spec.

    ``spec``: a filter name (:data:`LOWPASS_CHOICES`), ``None`` / ``"none"`` (no equal-bandwidth
    figure), or a callable used for both protocols (its ``radius`` attribute, default 0, is
    trimmed in the crop protocol).

    Raises:
        ValueError: unknown name.
    """
    if spec is None or (isinstance(spec, str) and spec.lower() == "none"):
        return None, None, None, 0
    if isinstance(spec, str):
        parse_lowpass(spec)
        return (spec, lambda t: lowpass(t, spec, "reflect"), lambda t: lowpass(t, spec, "circular"),
                lowpass_radius(spec))
    if not callable(spec):
        raise ValueError(f"lowpass must be a filter name, none or a callable, got {type(spec).__name__}")
    return getattr(spec, "__name__", "custom"), spec, spec, int(getattr(spec, "radius", 0))


def band_edges(num_bands: int = NUM_BANDS) -> list[float]:
    """Radial band edges in cycles/pixel, low to high: [0, 0.5/2^(B-1), ..., 0.25, sqrt(0.5)]."""
    if num_bands < 1:
        raise ValueError(f"num_bands must be >= 1, got {num_bands}")
    return [0.0] + [0.5 / 2 ** k for k in range(num_bands - 1, 0, -1)] + [math.sqrt(0.5)]


def band_index(h: int, w: int, num_bands: int = NUM_BANDS, device: torch.device | str = "cpu") -> torch.Tensor:
    """Band of every bin of an (h, w) ``torch.fft.fft2``: band b holds edges[b] < rho <= edges[b+1]
    (band 0 also holds rho = 0).

    Shape:
        () -> (h, w) int64 in [0, num_bands).
    """
    fy = torch.fft.fftfreq(h, dtype=torch.float64, device=device)
    fx = torch.fft.fftfreq(w, dtype=torch.float64, device=device)
    rho = torch.sqrt(fy[:, None] ** 2 + fx[None, :] ** 2)
    inner = torch.tensor(band_edges(num_bands)[1:-1], dtype=torch.float64, device=device)
    return torch.bucketize(rho, inner, right=False)  # rho <= edge -> lower band


def hann_window2d(h: int, w: int, dtype: torch.dtype = torch.float64,
                  device: torch.device | str = "cpu") -> torch.Tensor:
    """The separable, symmetric Hann window of the spectra (module docstring).

    Shape: (h, w).
    """
    wy = torch.hann_window(h, periodic=False, dtype=dtype, device=device) if h > 1 else torch.ones(1, dtype=dtype)
    wx = torch.hann_window(w, periodic=False, dtype=dtype, device=device) if w > 1 else torch.ones(1, dtype=dtype)
    return wy[:, None] * wx[None, :]


def _power(x: torch.Tensor, window: bool) -> torch.Tensor:
    x = x.detach().to(torch.float64)
    if window:
        x = x * hann_window2d(x.shape[-2], x.shape[-1], x.dtype, x.device)
    return torch.fft.fft2(x).abs().square()


@functools.lru_cache(maxsize=512)
def _half_plan(h: int, w: int, num_bands: int, window: bool, device: str
               ) -> tuple[Optional[torch.Tensor], torch.Tensor]:
    """(window or None, (num_bands, H * (W // 2 + 1) * 2) float64 band weights) of an (h, w) rfft2:
    a half-spectrum bin stands for itself and its mirror (weight 2), except the columns that are
    their own mirror (0, and W / 2 for even W; weight 1). Cached per size: the regions of the
    crop protocol come in a few dozen sizes, each used for every image."""
    dev = torch.device(device)
    win = hann_window2d(h, w, torch.float64, dev) if window else None
    half = w // 2 + 1
    idx = band_index(h, w, num_bands, dev)[:, :half]  # rho is even in (fy, fx): the full index's half
    mult = torch.full((half,), 2.0, dtype=torch.float64, device=dev)
    mult[0] = 1.0
    if w % 2 == 0:
        mult[-1] = 1.0
    weights = torch.zeros(num_bands, h, half, dtype=torch.float64, device=dev)
    weights.scatter_(0, idx[None], mult.expand(h, half)[None].clone())
    return win, weights[..., None].expand(-1, -1, -1, 2).flatten(1)  # one weight per re and im


def band_energy(x: torch.Tensor, num_bands: int = NUM_BANDS, window: bool = True) -> torch.Tensor:
    """Spectral energy of ``x`` per radial octave band, summed over channels (float64).

    Energy is sum |FFT2(w * x)|^2 / (H * W) over the band's bins (Parseval: without a window the
    bands sum to the sum of squares of x). Computed from the half spectrum of the real input
    (``torch.fft.rfft2``, each bin weighted for its mirror), |z|^2 as re^2 + im^2: the same sums
    as over the full ``fft2`` to float64 rounding (relative 1e-15), at a third of the cost.

    Shape:
        (..., C, H, W) -> (..., num_bands).
    """
    if x.dim() < 3:
        raise ValueError(f"band_energy expects (..., C, H, W), got shape {tuple(x.shape)}")
    h, w = x.shape[-2:]
    win, weights = _half_plan(int(h), int(w), num_bands, window, str(x.device))
    x = x.detach().to(torch.float64)
    if win is not None:
        x = x * win
    spec = torch.view_as_real(torch.fft.rfft2(x))  # (..., C, H, W // 2 + 1, 2)
    p = spec.square().sum(-4).flatten(-3)  # (..., H * (W // 2 + 1) * 2): re^2, im^2 summed over C
    return (p @ weights.t() / (h * w)).cpu()


def high_frequency_energy(x: torch.Tensor, window: bool = True) -> torch.Tensor:
    """Per-image spectral energy above half Nyquist (rho > 0.25 cycles/pixel), Hann-windowed, per
    channel: sum |FFT2(w * x)|^2 / (C * H * W) over those bins, which by Parseval is the sum over
    pixels of the squared high-pass part, averaged over channels. It grows with the image's area
    (a +-1 checkerboard: 64 at 8x8, 256 at 16x16, unwindowed), so compare it only between images of
    one size: the HF ratio (outputs over their targets) does.

    Shape:
        (N, C, H, W) -> (N,) float64.
    """
    if x.dim() != 4:
        raise ValueError(f"high_frequency_energy expects (N, C, H, W), got shape {tuple(x.shape)}")
    c, h, w = x.shape[-3:]
    fy = torch.fft.fftfreq(h, dtype=torch.float64, device=x.device)
    fx = torch.fft.fftfreq(w, dtype=torch.float64, device=x.device)
    mask = torch.sqrt(fy[:, None] ** 2 + fx[None, :] ** 2) > 0.25
    return (_power(x, window) * mask).sum((-3, -2, -1)).cpu() / (c * h * w)


def spectrum_db(output_energy: torch.Tensor, error_energy: torch.Tensor, max_db: float = 200.0) -> torch.Tensor:
    """10 log10(output energy / inconsistency energy) per band, capped at ``max_db`` (an error
    energy of 0 gives the cap; an output energy of 0 with error 0 also gives the cap).

    Shape:
        (B,) and (B,) -> (B,) float64 dB.
    """
    y = torch.as_tensor(output_energy, dtype=torch.float64)
    e = torch.as_tensor(error_energy, dtype=torch.float64)
    with torch.no_grad():
        ratio = 10.0 * torch.log10(y / e)
    ratio = torch.where(e == 0, torch.full_like(ratio, max_db), ratio)
    return ratio.clamp(max=max_db)
