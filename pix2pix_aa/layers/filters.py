"""Low-pass filters for anti-aliasing: the binomial family of Zhang (2019) and Kaiser-windowed
sinc filters designed for a cutoff, as the alias-free GAN (StyleGAN3) designs its filters.

Every filter is separable: the 2-D kernel is the outer product of a 1-D row that sums to 1
(unit gain at DC, so a constant map stays constant). Config names:

* binomial (Zhang 2019, section 3; ``antialiased_cnns.BlurPool``): ``rect2`` [1, 1], ``tri3``
  [1, 2, 1], ``bin4`` [1, 3, 3, 1], ``bin5`` [1, 4, 6, 4, 1], ``bin6``, ``bin7`` or a size 1..7;
  the row of size k is binomial(k - 1, j) / 2**(k - 1), with frequency response
  ``cos(pi f)**(k - 1)`` (f in cycles per pixel): gain 0.5**((k - 1) / 2) at f = 0.25, the
  Nyquist frequency after 2x subsampling. Bin-5 is at -12 dB there and already at -2.7 dB at
  f = 0.125: the passband droop is what makes a Bin-5 network's outputs smoother.
* Kaiser-windowed sinc, ``kaiser<N>`` or ``kaiser<N>_c<cutoff>_w<width>``: N taps, cutoff
  (-6 dB point) ``cutoff`` and transition band ``width``, both in cycles per pixel of the map
  being filtered; defaults cutoff 0.25 (the Nyquist frequency after 2x subsampling, a
  half-band filter) and width 0.25 (passband edge 0.125, stopband edge 0.375). The row is
  ``scipy.signal.firwin(N, cutoff, width=width, fs=1)`` (tested against it): the ideal low-pass
  ``2 cutoff sinc(2 cutoff n)`` times a Kaiser window whose beta comes from Kaiser's formulas
  for the attenuation that N taps reach over the transition band (Oppenheim & Schafer,
  eq. 7.62-7.63), normalised to unit DC gain. StyleGAN3 (Karras et al. 2021,
  ``torch_utils/ops/upfirdn2d`` / ``design_lowpass_filter``) designs its filters the same way.
  Unlike the binomials, sinc filters have negative taps (a little ringing at edges).
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from typing import Union

import torch

__all__ = [
    "FILTER_NAMES",
    "FILTER_SIZES",
    "FilterSpec",
    "LowPass",
    "binomial_filter",
    "filter_size",
    "frequency_response",
    "is_filter_name",
    "kaiser_beta",
    "kaiser_sinc_row",
    "lowpass_filter",
    "parse_filter",
]

#: Config names of the binomial anti-aliasing filters -> filter size. ``none`` (0) is the baseline.
FILTER_SIZES: dict[str, int] = {
    "none": 0,
    "rect2": 2,
    "tri3": 3,
    "bin4": 4,
    "bin5": 5,
    "bin6": 6,
    "bin7": 7,
}

#: Defaults of the ``kaiser<N>`` filters, in cycles per pixel (module docstring).
KAISER_CUTOFF = 0.25
KAISER_WIDTH = 0.25
_MAX_TAPS = 15
_NUMBER = r"(\d+(?:\.\d*)?|\.\d+)"  # 0.2, .2, 2.: one number (a looser [0-9.]+ let "0.2.5" reach float())
_KAISER_RE = re.compile(rf"^kaiser(\d+)(?:_c{_NUMBER})?(?:_w{_NUMBER})?$")

FilterSpec = Union[str, int, None]

#: The filter names for messages and help texts (besides ``none`` and the sizes 1..7).
FILTER_NAMES = (", ".join(repr(k) for k in FILTER_SIZES if k != "none")
                + f" or 'kaiser<N>[_c<cutoff>][_w<width>]' (N = 2..{_MAX_TAPS} taps)")


@dataclass(frozen=True)
class LowPass:
    """A parsed low-pass filter: ``kind`` is ``binomial`` or ``kaiser``; ``size`` taps (0: no
    filter); ``cutoff`` and ``width`` in cycles per pixel (Kaiser only, else None)."""

    kind: str
    size: int
    cutoff: float | None = None
    width: float | None = None

    @property
    def name(self) -> str:
        """The canonical config name (``bin5``, ``kaiser7``, ``kaiser7_c0.2_w0.2``)."""
        if self.kind == "kaiser":
            if (self.cutoff, self.width) == (KAISER_CUTOFF, KAISER_WIDTH):
                return f"kaiser{self.size}"
            return f"kaiser{self.size}_c{self.cutoff:g}_w{self.width:g}"
        return next((k for k, v in FILTER_SIZES.items() if v == self.size), str(self.size))

    def row(self, dtype: torch.dtype = torch.float64) -> torch.Tensor:
        """The 1-D filter row (sums to 1). Shape: (size,)."""
        if self.kind == "kaiser":
            return kaiser_sinc_row(self.size, self.cutoff, self.width).to(dtype)
        row = torch.tensor([math.comb(self.size - 1, k) for k in range(self.size)], dtype=torch.float64)
        return (row / row.sum()).to(dtype)


def _unknown(spec: object) -> ValueError:
    valid = ", ".join(repr(k) for k in FILTER_SIZES)
    return ValueError(f"unknown antialias filter {spec!r}; valid: {valid} or a size 1..7, or "
                      f"'kaiser<N>[_c<cutoff>][_w<width>]' (N = 2..{_MAX_TAPS} taps)")


def parse_filter(spec: FilterSpec) -> LowPass:
    """Read a filter config value: a binomial name (``"bin5"``), a size (``5``), a Kaiser name
    (``"kaiser7"``, ``"kaiser9_c0.2_w0.15"``), or ``None`` / ``"none"`` (size 0).

    Raises:
        ValueError: for an unknown name, a binomial size outside 1..7, Kaiser taps outside
            2..15, a cutoff outside (0, 0.5) or a width <= 0.
    """
    if spec is None:
        return LowPass("binomial", 0)
    if isinstance(spec, LowPass):
        return spec
    if isinstance(spec, bool):  # bool is an int subclass: refuse it explicitly
        raise ValueError(f"antialias filter must be a name or a size, got {spec!r}")
    if isinstance(spec, int):
        if spec == 0 or 1 <= spec <= 7:
            return LowPass("binomial", spec)
        raise ValueError(f"antialias filter size must be 1..7 (or 0 for none), got {spec}")
    if not isinstance(spec, str):
        raise _unknown(spec)
    key = spec.strip().lower()
    if key.isdigit():
        return parse_filter(int(key))
    if key in FILTER_SIZES:
        return LowPass("binomial", FILTER_SIZES[key])
    match = _KAISER_RE.match(key)
    if not match:
        raise _unknown(spec)
    taps = int(match.group(1))
    cutoff = float(match.group(2)) if match.group(2) else KAISER_CUTOFF
    width = float(match.group(3)) if match.group(3) else KAISER_WIDTH
    if not 2 <= taps <= _MAX_TAPS:
        raise ValueError(f"kaiser filter taps must be 2..{_MAX_TAPS}, got {taps} in {spec!r}")
    if not 0.0 < cutoff < 0.5 or width <= 0.0:
        raise ValueError(f"kaiser filter {spec!r}: need 0 < cutoff < 0.5 and width > 0 (cycles per pixel)")
    return LowPass("kaiser", taps, cutoff, width)


def is_filter_name(spec: FilterSpec) -> bool:
    """True when ``spec`` is a valid filter config value (see :func:`parse_filter`)."""
    try:
        parse_filter(spec)
    except ValueError:
        return False
    return True


def filter_size(spec: FilterSpec) -> int:
    """Turn a filter name (``"bin5"``, ``"kaiser7"``), a size (``5``) or ``None`` into its number
    of taps; 0 = no blur.

    Raises:
        ValueError: for an unknown name or a size outside 1..7, listing the valid choices.
    """
    return parse_filter(spec).size


def kaiser_beta(attenuation_db: float) -> float:
    """Kaiser's window parameter for a stop-band attenuation in dB (Kaiser 1974; Oppenheim &
    Schafer eq. 7.62; ``scipy.signal.kaiser_beta``)."""
    a = attenuation_db
    if a > 50:
        return 0.1102 * (a - 8.7)
    if a > 21:
        return 0.5842 * (a - 21) ** 0.4 + 0.07886 * (a - 21)
    return 0.0


def kaiser_sinc_row(numtaps: int, cutoff: float, width: float) -> torch.Tensor:
    """Kaiser-windowed sinc low-pass row, ``scipy.signal.firwin(numtaps, cutoff, width=width,
    fs=1)``: cutoff and transition width in cycles per pixel, unit DC gain.

    The attenuation N taps reach over the transition band is ``2.285 (N - 1) pi (2 width) + 7.95``
    dB (Oppenheim & Schafer eq. 7.63; ``scipy.signal.kaiser_atten``), which sets beta.

    Shape:
        () -> (numtaps,), float64.
    """
    atten = 2.285 * (numtaps - 1) * math.pi * (2.0 * width) + 7.95
    beta = kaiser_beta(atten)
    n = torch.arange(numtaps, dtype=torch.float64) - (numtaps - 1) / 2
    ideal = 2.0 * cutoff * torch.sinc(2.0 * cutoff * n)
    window = torch.kaiser_window(numtaps, periodic=False, beta=beta, dtype=torch.float64)
    row = ideal * window
    return row / row.sum()


def lowpass_filter(spec: FilterSpec, dtype: torch.dtype | None = None,
                   device: torch.device | str | None = None) -> torch.Tensor:
    """The 2-D separable kernel of a filter config value (outer product of its row, sums to 1).

    Shape:
        (size, size).
    """
    lp = parse_filter(spec)
    if lp.size == 0:
        raise ValueError("'none' has no filter kernel")
    row = lp.row()
    return torch.outer(row, row).to(dtype=dtype or torch.get_default_dtype(), device=device)


def binomial_filter(size: int, dtype: torch.dtype | None = None,
                    device: torch.device | str | None = None) -> torch.Tensor:
    """The normalised 2-D binomial filter of ``size`` x ``size`` (sums to 1).

    Returns:
        Tensor of shape (size, size).
    """
    if not 1 <= size <= 7:
        raise ValueError(f"binomial filter size must be 1..7, got {size}")
    return lowpass_filter(size, dtype, device)


def frequency_response(spec: FilterSpec, freqs: torch.Tensor) -> torch.Tensor:
    """Magnitude of the 1-D row's response at ``freqs`` (cycles per pixel), |sum_n h[n] e^{-2 pi i f n}|.

    Shape:
        (F,) -> (F,), float64.
    """
    row = parse_filter(spec).row()
    n = torch.arange(row.numel(), dtype=torch.float64)
    phase = 2 * math.pi * freqs.to(torch.float64)[:, None] * n[None, :]
    re_, im = (row * torch.cos(phase)).sum(1), (row * torch.sin(phase)).sum(1)
    return torch.sqrt(re_ ** 2 + im ** 2)
