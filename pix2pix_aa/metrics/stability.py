"""Generation stability: how much G's output changes when its input shifts (docs/DESIGN.md section 5).

Two protocols, both reported in dB of PSNR (images in [-1, 1], data range 2):

* **crop** (non-circular, the realistic one): from a source of (H+S) x (W+S) take the window at
  (0, 0) and at (dy, dx); compare G(x_0)[dy:, dx:] with G(x_s)[:H-dy, :W-dx], the region both
  outputs show, minus an optional margin m on every border of that region.
* **circular**: compare G(roll(x, (dy, dx))) with roll(G(x), (dy, dx)) over the whole image;
  exact (>= 100 dB) for a circularly padded, shift-equivariant network.

Choices (documented here and in :class:`StabilityResult`):

* Shift (0, 0) compares an output with itself (infinite PSNR). It is skipped -- no forward
  pass, left out of every mean, NaN in the per-shift array.
* An MSE of 0 (or tiny float noise) would give infinite PSNR; every PSNR here is capped at
  :data:`~pix2pix_aa.metrics.psnr.MAX_PSNR_DB` (200 dB), so means and JSON stay finite. The
  raw MSEs are kept unclamped in ``mse``.
* ``mean_psnr`` = mean over shifts and images of the per-image, per-shift PSNR;
  ``pooled_psnr`` = PSNR of the MSE pooled over all images, shifts and compared pixels
  (sum of squared errors / element count), as StyleGAN3's EQ-T. The pooled figure is
  dominated by the worst pairs; the mean by the typical one. The pooled figure is the headline
  (a few exact shifts at the cap inflate the mean); the mean is a secondary figure.
* Optional, computed from the same forward passes (docs/DESIGN.md section 5b):
  ``lowpass`` gives an *equal-bandwidth* result (:attr:`StabilityResult.equal_bandwidth`): both
  compared outputs low-passed by one common filter at full resolution before the error. The crop
  protocol filters with reflect padding and then leaves the filter's radius r out of every
  border of the common region (margin m + r), so only pixels whose filter support lies inside
  both outputs are compared; the circular protocol filters with circular padding (the filter
  then commutes exactly with the roll).
  ``spectrum=True`` gives the *stability spectrum*: per radial octave band,
  10 log10(energy of the reference output y / energy of the inconsistency e) on the compared
  (Hann-windowed) region, energies pooled over images and shifts (:mod:`.bandwidth`).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, Optional, Union

import numpy as np
import torch

from pix2pix_aa.metrics._batching import Generator, check_batch_size, run_pairs, warn_if_training
from pix2pix_aa.metrics.bandwidth import NUM_BANDS, LowpassFn, band_edges, band_energy, resolve_lowpass, spectrum_db
from pix2pix_aa.metrics.psnr import DATA_RANGE, MAX_PSNR_DB, check_image_scale, check_images, psnr_from_mse
from pix2pix_aa.metrics.shifts import Shift, grid_size_for, validate_shifts

__all__ = ["StabilityResult", "stability_crop", "stability_circular", "nan_to_none"]


def nan_to_none(a: Any) -> Any:
    """Nested lists from an array / float with NaN replaced by None (strict JSON has no NaN)."""
    if isinstance(a, np.ndarray):
        a = a.tolist()
    if isinstance(a, list):
        return [nan_to_none(v) for v in a]
    if isinstance(a, float) and not math.isfinite(a):
        return None
    return a


@dataclass
class StabilityResult:
    """Stability PSNR over shifts.

    Attributes:
        protocol: ``"crop"`` or ``"circular"``.
        shifts: the K evaluated shifts (dy, dx), (0, 0) excluded.
        per_shift_psnr: (S, S) array, [dy, dx] = mean over images of the per-image PSNR for that
            shift; NaN where not evaluated (not sampled, or (0, 0)).
        mse: (N, K) per-image, per-shift MSE (float64, unclamped).
        counts: (K,) number of elements compared per image for each shift (the common region
            shrinks with the shift in the crop protocol).
        mean_psnr: mean over shifts and images of the per-image PSNR (dB, capped at max_db).
        pooled_psnr: PSNR of the MSE pooled over all images, shifts and pixels (dB, capped).
        data_range: 2.0 for images in [-1, 1].
        margin: border excluded from each side of the compared region (crop protocol).
        max_db: the PSNR cap.
        lowpass: name of the common filter when this is an equal-bandwidth result, else None.
        equal_bandwidth: the same protocol with both outputs low-passed first (or None).
        band_output, band_error: (N, B) windowed spectral energy of the reference output and of
            the inconsistency per radial octave band, summed over shifts (or None).
    """

    protocol: str
    shifts: list[Shift]
    per_shift_psnr: np.ndarray
    mse: np.ndarray
    counts: np.ndarray
    mean_psnr: float
    pooled_psnr: float
    data_range: float = DATA_RANGE
    margin: int = 0
    max_db: float = MAX_PSNR_DB
    extra: dict = field(default_factory=dict)
    lowpass: Optional[str] = None
    equal_bandwidth: Optional[StabilityResult] = None
    band_output: Optional[np.ndarray] = None
    band_error: Optional[np.ndarray] = None

    @property
    def band_edges(self) -> Optional[list[float]]:
        """Radial band edges (cycles/pixel) of the spectrum, low to high."""
        return None if self.band_output is None else band_edges(self.band_output.shape[1])

    @property
    def spectrum_db(self) -> Optional[np.ndarray]:
        """(B,) stability spectrum: 10 log10(sum y energy / sum e energy) per band, pooled over
        images and shifts, capped at ``max_db``; None if not computed."""
        if self.band_output is None or self.band_error is None:
            return None
        return spectrum_db(torch.from_numpy(self.band_output).sum(0), torch.from_numpy(self.band_error).sum(0),
                           self.max_db).numpy()

    @property
    def num_images(self) -> int:
        return int(self.mse.shape[0])

    @property
    def grid_size(self) -> int:
        return int(self.per_shift_psnr.shape[0])

    @property
    def per_image_psnr(self) -> np.ndarray:
        """(N, K) capped PSNR for every image and shift."""
        return psnr_from_mse(torch.from_numpy(self.mse), self.data_range, self.max_db).numpy()

    @property
    def worst_shift(self) -> Shift:
        """The shift with the lowest mean PSNR."""
        return self.shifts[int(np.argmin(self.per_image_psnr.mean(0)))]

    def to_dict(self, per_image: bool = False) -> dict:
        """JSON-friendly summary (NaN -> None). ``per_image=True`` adds the (N, K) MSE table."""
        d = {
            "protocol": self.protocol,
            "mean_psnr": self.mean_psnr,
            "pooled_psnr": self.pooled_psnr,
            "data_range": self.data_range,
            "margin": self.margin,
            "max_db": self.max_db,
            "num_images": self.num_images,
            "num_shifts": len(self.shifts),
            "grid_size": self.grid_size,
            "shifts": [list(s) for s in self.shifts],
            "worst_shift": list(self.worst_shift),
            "per_shift_psnr": nan_to_none(self.per_shift_psnr),
            **self.extra,
        }
        if self.lowpass is not None:
            d["lowpass"] = self.lowpass
        if self.equal_bandwidth is not None:
            d["equal_bandwidth"] = self.equal_bandwidth.to_dict()
        if self.band_output is not None:
            d["spectrum"] = {"band_edges_cycles_per_pixel": self.band_edges,
                             "stability_db": nan_to_none(self.spectrum_db),
                             "output_energy": self.band_output.sum(0).tolist(),
                             "error_energy": self.band_error.sum(0).tolist()}
        if per_image:
            d["mse"] = nan_to_none(self.mse)
        return d


def _drop_zero_shift(shifts: list[Shift]) -> list[Shift]:
    kept = [s for s in shifts if s != (0, 0)]
    if not kept:
        raise ValueError("only the shift (0, 0) was given; it compares an output with itself. "
                         "Give nonzero shifts, e.g. shift_grid(8)")
    return kept


def _summarise(protocol: str, shifts: list[Shift], mse: torch.Tensor, counts: torch.Tensor,
               grid_size: Optional[int], margin: int, data_range: float, max_db: float,
               extra: Optional[dict] = None, lowpass: Optional[str] = None,
               equal_bandwidth: Optional[StabilityResult] = None, band_output: Optional[np.ndarray] = None,
               band_error: Optional[np.ndarray] = None) -> StabilityResult:
    per_image = psnr_from_mse(mse, data_range, max_db)  # (N, K)
    side = grid_size_for(shifts, grid_size)
    grid = np.full((side, side), np.nan)
    for k, (dy, dx) in enumerate(shifts):
        grid[dy, dx] = float(per_image[:, k].mean())
    sse = mse * counts.to(torch.float64)  # (N, K): per-pair sums of squared errors
    pooled_count = counts.to(torch.float64).sum() * mse.shape[0]
    pooled = float(psnr_from_mse(sse.sum() / pooled_count, data_range, max_db))
    return StabilityResult(protocol=protocol, shifts=shifts, per_shift_psnr=grid, mse=mse.numpy(),
                           counts=counts.numpy(), mean_psnr=float(per_image.mean()), pooled_psnr=pooled,
                           data_range=data_range, margin=margin, max_db=max_db, extra=extra or {},
                           lowpass=lowpass, equal_bandwidth=equal_bandwidth, band_output=band_output,
                           band_error=band_error)


class _Extras:
    """The optional figures of one protocol run, filled pair by pair from the same outputs.

    ``regions(ref, out, k, trim)`` -> the two compared (C, h, w) regions of shift k with ``trim``
    extra pixels left out of every border (the low-pass radius in the crop protocol).
    """

    def __init__(self, num_images: int, num_shifts: int, lowpass_fn: Optional[LowpassFn], trim: int,
                 spectrum: bool, regions) -> None:
        self.lowpass_fn, self.trim, self.regions = lowpass_fn, trim, regions
        self.mse = torch.full((num_images, num_shifts), float("nan"), dtype=torch.float64) if lowpass_fn else None
        self.counts = torch.zeros(num_shifts, dtype=torch.int64)
        self.band_y = np.zeros((num_images, NUM_BANDS)) if spectrum else None
        self.band_e = np.zeros((num_images, NUM_BANDS)) if spectrum else None
        self._ref_key: Optional[tuple[int, int]] = None  # (image, id of its reference output)
        self._ref_lowpassed: Optional[torch.Tensor] = None

    def _lowpassed_ref(self, i: int, ref: torch.Tensor) -> torch.Tensor:
        """The low-passed reference output of image i, filtered once for all its shifts (the
        same call on the same tensor as per pair, so the same values)."""
        key = (i, id(ref))
        if self._ref_key != key:
            self._ref_key, self._ref_lowpassed = key, self.lowpass_fn(ref[None])[0]
        return self._ref_lowpassed

    def add(self, i: int, k: int, ref: torch.Tensor, out: torch.Tensor) -> None:
        if self.band_y is not None:
            a, b = self.regions(ref, out, k, 0)
            a64 = a.to(torch.float64)
            self.band_y[i] += band_energy(a64).numpy()
            self.band_e[i] += band_energy(b.to(torch.float64) - a64).numpy()
        if self.lowpass_fn is not None:
            a, b = self.regions(self._lowpassed_ref(i, ref), self.lowpass_fn(out[None])[0], k, self.trim)
            sse, n = _sse(a, b)
            self.mse[i, k] = sse / n
            self.counts[k] = n

    def equal_bandwidth(self, protocol: str, shifts: list[Shift], grid_size: Optional[int], margin: int,
                        data_range: float, max_db: float, name: Optional[str],
                        extra: Optional[dict] = None) -> Optional[StabilityResult]:
        if self.mse is None:
            return None
        return _summarise(protocol, shifts, self.mse, self.counts, grid_size, margin, data_range, max_db,
                          extra=extra, lowpass=name)


def _sse(a: torch.Tensor, b: torch.Tensor) -> tuple[torch.Tensor, int]:
    d = a.to(torch.float64) - b.to(torch.float64)
    return d.square().sum().cpu(), d.numel()


def _check_images(x: torch.Tensor, name: str, data_range: float) -> None:
    """:func:`~pix2pix_aa.metrics.psnr.check_images`, and no NaN (every PSNR would be NaN)."""
    check_images(x, name, data_range, stacklevel=4)  # warnings point at the caller of stability_*
    if torch.isnan(x).any():
        raise ValueError(f"{name} holds NaN values")


def _checking_outputs(compare: Callable, data_range: float) -> Callable:
    """``compare``, checking the scale of G's first output on the way: the PSNR is of G's outputs,
    and a generator with a [0, 1] (sigmoid) or 0..255 head is off like such inputs."""
    checked: list[bool] = []

    def wrapped(ref: torch.Tensor, out: torch.Tensor, k: int):
        if not checked:
            checked.append(True)
            check_image_scale(ref, "G's output", data_range, outputs=True, stacklevel=5)
        return compare(ref, out, k)

    return wrapped


def stability_crop(G: Generator, source: torch.Tensor, crop_size: Union[int, Sequence[int]],
                   shifts: Sequence[Sequence[int]], margin: int = 0, batch_size: Optional[int] = None,
                   grid_size: Optional[int] = None, data_range: float = DATA_RANGE,
                   max_db: float = MAX_PSNR_DB, lowpass: Union[str, LowpassFn, None] = None,
                   spectrum: bool = False) -> StabilityResult:
    """Crop-protocol stability PSNR (non-circular).

    Args:
        G: callable (N, C, H, W) -> (N, C', H, W), images in [-1, 1]; put it in eval mode and
            under no_grad/inference_mode yourself (this function never changes its state).
        source: (N, C, H + S, W + S); a larger original, or ``reflect_pad_source(x, S)``.
        crop_size: (H, W) (or an int for square crops) of the windows fed to G.
        shifts: (dy, dx) pairs with 0 <= dy <= S_h, 0 <= dx <= S_w (see ``shift_grid``).
        margin: m >= 0 pixels dropped from every border of the common region.
        batch_size: max images per forward pass; None -> from a 1 GiB activation budget.
        grid_size: side of ``per_shift_psnr``; default 1 + the largest shift component.
        lowpass: a filter name (``"bin5"``, see ``bandwidth.LOWPASS_CHOICES``), a callable or None:
            also compute the equal-bandwidth result (module docstring).
        spectrum: also accumulate the stability spectrum (module docstring).

    Shape:
        source (N, C, H + S, W + S); G maps (B, C, H, W) -> (B, C', H, W).

    Returns:
        :class:`StabilityResult` with protocol ``"crop"`` (PSNR in dB, data range ``data_range``).

    Raises:
        ValueError: shapes, shifts or margin that leave nothing to compare; an unknown low-pass.
    """
    _check_images(source, "source", data_range)
    h, w = (crop_size, crop_size) if isinstance(crop_size, int) else (int(crop_size[0]), int(crop_size[1]))
    sh, sw = source.shape[-2] - h, source.shape[-1] - w
    if h < 1 or w < 1 or sh < 0 or sw < 0:
        raise ValueError(f"crop_size {(h, w)} must be positive and fit the source {tuple(source.shape[-2:])} "
                         f"(the source is (H + S, W + S); pad it with reflect_pad_source(x, S))")
    if not isinstance(margin, int) or margin < 0:
        raise ValueError(f"margin must be an int >= 0, got {margin!r}")
    shift_list = _drop_zero_shift(validate_shifts(shifts, limit=(sh, sw)))
    max_dy, max_dx = max(s[0] for s in shift_list), max(s[1] for s in shift_list)
    if h - max_dy - 2 * margin < 1 or w - max_dx - 2 * margin < 1:
        raise ValueError(f"margin {margin} leaves no common region for shift {(max_dy, max_dx)} "
                         f"on {h}x{w} crops")
    lp_name, lp_crop, _, radius = resolve_lowpass(lowpass)
    if lp_crop is not None and (h - max_dy - 2 * (margin + radius) < 1 or w - max_dx - 2 * (margin + radius) < 1):
        raise ValueError(f"margin {margin} plus the low-pass radius {radius} leaves no common region for shift "
                         f"{(max_dy, max_dx)} on {h}x{w} crops")
    warn_if_training(G)
    bs = check_batch_size(batch_size, (source.shape[1], h, w), source.dtype)
    m = margin

    def make_input(i: int, k: Optional[int]) -> torch.Tensor:
        dy, dx = (0, 0) if k is None else shift_list[k]
        return source[i, :, dy:dy + h, dx:dx + w]

    def compare(ref: torch.Tensor, out: torch.Tensor, k: int) -> tuple[torch.Tensor, int]:
        dy, dx = shift_list[k]
        # The window at (dy, dx) shows source pixel (r + dy, c + dx) at (r, c): the common
        # region is ref[dy:, dx:] == out[:h - dy, :w - dx]; the margin trims all four sides.
        return _sse(*regions(ref, out, k, 0))

    def regions(ref: torch.Tensor, out: torch.Tensor, k: int, trim: int) -> tuple[torch.Tensor, torch.Tensor]:
        dy, dx = shift_list[k]
        t = m + trim
        return ref[:, dy + t:h - t, dx + t:w - t], out[:, t:h - dy - t, t:w - dx - t]

    extras = _Extras(source.shape[0], len(shift_list), lp_crop, radius, spectrum, regions)
    on_pair = extras.add if (lp_crop is not None or spectrum) else None
    mse, counts = run_pairs(G, source.shape[0], len(shift_list), make_input,
                            _checking_outputs(compare, data_range), bs, on_pair=on_pair)
    eb = extras.equal_bandwidth("crop", shift_list, grid_size, margin, data_range, max_db, lp_name,
                                extra={"crop_size": [h, w], "lowpass_radius": radius})
    return _summarise("crop", shift_list, mse, counts, grid_size, margin, data_range, max_db,
                      extra={"crop_size": [h, w]}, equal_bandwidth=eb,
                      band_output=extras.band_y, band_error=extras.band_e)


def stability_circular(G: Generator, x: torch.Tensor, shifts: Sequence[Sequence[int]],
                       batch_size: Optional[int] = None, grid_size: Optional[int] = None,
                       data_range: float = DATA_RANGE, max_db: float = MAX_PSNR_DB,
                       lowpass: Union[str, LowpassFn, None] = None, spectrum: bool = False) -> StabilityResult:
    """Circular-protocol stability PSNR: G(roll(x, s)) vs roll(G(x), s) on the whole image.

    Args:
        G: callable (N, C, H, W) -> (N, C', H, W), eval mode (not changed here).
        x: (N, C, H, W) images in [-1, 1].
        shifts: (dy, dx) pairs, 0 <= dy, dx (usually < S = 8).
        batch_size: max images per forward pass; None -> from a 1 GiB activation budget.
        lowpass: a filter name, a callable or None: also compute the equal-bandwidth result
            (named filters use circular padding here).
        spectrum: also accumulate the stability spectrum on the whole (windowed) image.

    Shape:
        x (N, C, H, W); G maps (B, C, H, W) -> (B, C', H, W).

    Returns:
        :class:`StabilityResult` with protocol ``"circular"``; exactly equivariant networks
        reach the 200 dB cap (float32 round-off alone gives >= ~130 dB).

    Raises:
        ValueError: bad shapes or shifts; an unknown low-pass.
    """
    _check_images(x, "x", data_range)
    shift_list = _drop_zero_shift(validate_shifts(shifts))
    h, w = x.shape[-2:]
    wrapped = next((s for s in shift_list if s[0] >= h or s[1] >= w), None)
    if wrapped is not None:  # a roll by the image's size is no shift, scored at the cap
        raise ValueError(f"circular shifts must be smaller than the image ({h}x{w}): {wrapped} is a roll by "
                         f"{(wrapped[0] % h, wrapped[1] % w)}")
    lp_name, _, lp_circular, _ = resolve_lowpass(lowpass)
    warn_if_training(G)
    bs = check_batch_size(batch_size, tuple(x.shape[1:]), x.dtype)

    def make_input(i: int, k: Optional[int]) -> torch.Tensor:
        return x[i] if k is None else torch.roll(x[i], shift_list[k], dims=(-2, -1))

    def compare(ref: torch.Tensor, out: torch.Tensor, k: int) -> tuple[torch.Tensor, int]:
        return _sse(*regions(ref, out, k, 0))

    def regions(ref: torch.Tensor, out: torch.Tensor, k: int, trim: int) -> tuple[torch.Tensor, torch.Tensor]:
        return torch.roll(ref, shift_list[k], dims=(-2, -1)), out  # nothing to trim: no border

    extras = _Extras(x.shape[0], len(shift_list), lp_circular, 0, spectrum, regions)
    on_pair = extras.add if (lp_circular is not None or spectrum) else None
    mse, counts = run_pairs(G, x.shape[0], len(shift_list), make_input, _checking_outputs(compare, data_range),
                            bs, on_pair=on_pair)
    eb = extras.equal_bandwidth("circular", shift_list, grid_size, 0, data_range, max_db, lp_name)
    return _summarise("circular", shift_list, mse, counts, grid_size, 0, data_range, max_db, equal_bandwidth=eb,
                      band_output=extras.band_y, band_error=extras.band_e)
