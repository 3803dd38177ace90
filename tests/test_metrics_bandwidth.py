"""Equal-bandwidth stability, the stability spectrum and the sharpness ratios, on operators whose
answers are known."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from torch import nn

from pix2pix_aa.metrics import MAX_PSNR_DB, reflect_pad_source, shift_grid, stability_circular, stability_crop
from pix2pix_aa.metrics.bandwidth import (
    band_edges,
    band_energy,
    band_index,
    high_frequency_energy,
    lowpass,
    resolve_lowpass,
    spectrum_db,
)
from pix2pix_aa.metrics.merge import merge_stability
from pix2pix_aa.metrics.quality import sharpness


def _noise(n: int = 2, size: int = 64, seed: int = 0) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    return torch.rand(n, 3, size, size, generator=g, dtype=torch.float64) * 2 - 1


def ideal_lowpass(cutoff: float):
    """Ideal radial low-pass (keeps rho <= cutoff cycles/pixel), circular, via the FFT. Two of them
    compose exactly: ideal(c1)(ideal(c2)(x)) == ideal(min(c1, c2))(x)."""
    def f(x: torch.Tensor) -> torch.Tensor:
        h, w = x.shape[-2:]
        fy, fx = torch.fft.fftfreq(h, dtype=torch.float64), torch.fft.fftfreq(w, dtype=torch.float64)
        keep = torch.sqrt(fy[:, None] ** 2 + fx[None, :] ** 2) <= cutoff
        return torch.fft.ifft2(torch.fft.fft2(x.to(torch.float64)) * keep).real.to(x.dtype)

    f.__name__ = f"ideal_{cutoff}"
    return f


def subsample_nearest(x: torch.Tensor) -> torch.Tensor:
    """Stride-2 subsampling, then nearest upsampling: the textbook aliasing operator (new Nyquist
    0.25 cycles/pixel); exact for even shifts, not for odd ones."""
    return F.interpolate(x[..., ::2, ::2], scale_factor=2, mode="nearest")


def _circular_convnet() -> nn.Module:
    torch.manual_seed(0)
    return nn.Sequential(nn.Conv2d(3, 8, 3, padding=1, padding_mode="circular"), nn.Tanh(),
                         nn.Conv2d(8, 3, 5, padding=2, padding_mode="circular")).double().eval()


# --- the stability spectrum and equal-bandwidth figure of exact operators ---------------------
def test_exactly_equivariant_circular_conv_scores_the_cap_in_every_band():
    with torch.no_grad():  # float64: round-off far below the cap
        r = stability_circular(_circular_convnet(), _noise(), shift_grid(4), lowpass="bin5", spectrum=True)
    assert r.pooled_psnr == MAX_PSNR_DB and r.equal_bandwidth.pooled_psnr == MAX_PSNR_DB
    assert r.spectrum_db.tolist() == [MAX_PSNR_DB] * 5
    assert r.to_dict()["spectrum"]["stability_db"] == [MAX_PSNR_DB] * 5


def test_identity_under_the_crop_protocol_is_exact_with_the_lowpass_and_in_every_band():
    # Any misalignment of the low-passed regions (e.g. keeping pixels whose filter support reaches
    # into the padding) would give a finite PSNR here.
    r = stability_crop(lambda t: t, reflect_pad_source(_noise(), 6), 64, shift_grid(7), lowpass="bin5",
                       spectrum=True)
    eb = r.equal_bandwidth
    assert eb.pooled_psnr == MAX_PSNR_DB and np.all(eb.mse == 0) and eb.lowpass == "bin5"
    k = r.shifts.index((6, 1))
    assert eb.counts[k] == 3 * (64 - 6 - 4) * (64 - 1 - 4)  # the common region less the radius 2 per side
    assert r.spectrum_db.tolist() == [MAX_PSNR_DB] * 5


def test_a_lowpass_of_an_unstable_operator_raises_raw_stability_but_not_the_equal_bandwidth_figure():
    x, shifts = _noise(), shift_grid(4)
    smooth = lambda t: ideal_lowpass(0.25)(subsample_nearest(t))  # noqa: E731
    raw = [stability_circular(G, x, shifts, lowpass=ideal_lowpass(0.125)) for G in (subsample_nearest, smooth)]
    assert raw[1].pooled_psnr > raw[0].pooled_psnr + 2  # the blur alone buys > 2 dB (2.4 here)
    # At a common bandwidth below the blur's cutoff the two operators are the same operator.
    assert raw[1].equal_bandwidth.pooled_psnr == pytest.approx(raw[0].equal_bandwidth.pooled_psnr, abs=1e-9)
    # With the default Bin-5 (not ideal) the gain left is what Bin-5's pass band lets through.
    bin5 = [stability_circular(G, x, shifts, lowpass="bin5").equal_bandwidth.pooled_psnr
            for G in (subsample_nearest, smooth)]
    assert abs(bin5[1] - bin5[0]) < 0.1 * (raw[1].pooled_psnr - raw[0].pooled_psnr)


def test_a_subsampling_operator_concentrates_its_inconsistency_above_its_nyquist():
    # Input band-limited to 0.1 cycles/pixel: stride-2 subsampling then aliases nothing, and the
    # only shift-dependent part of the output is the spectral image at 0.5 - f, above 0.4.
    x = ideal_lowpass(0.1)(_noise())
    r = stability_circular(subsample_nearest, x, shift_grid(4), spectrum=True)
    db = r.spectrum_db
    assert r.band_edges[-2] == 0.25 and len(db) == 5
    assert db[-1] < 0  # top band (0.25, 0.71]: the inconsistency outweighs the output
    assert np.all(db[:3] > 90)  # bands up to 0.125: only the window's leakage (-3, 96..100 dB here)
    assert db[3] > db[-1] + 30
    # Without band-limiting, aliasing folds the inconsistency into every band.
    assert np.all(stability_circular(subsample_nearest, _noise(), shift_grid(4), spectrum=True).spectrum_db < 0)


def test_spectrum_and_equal_bandwidth_merge_exactly_over_chunks():
    G = nn.Sequential(nn.Conv2d(3, 3, 3, padding=1), nn.Tanh()).double().eval()
    src = reflect_pad_source(_noise(5), 3)
    with torch.no_grad():
        whole = stability_crop(G, src, 64, shift_grid(3), lowpass="bin5", spectrum=True)
        parts = [stability_crop(G, src[a:b], 64, shift_grid(3), lowpass="bin5", spectrum=True)
                 for a, b in ((0, 2), (2, 3), (3, 5))]
    merged = merge_stability(parts)
    assert merged.to_dict(per_image=True) == whole.to_dict(per_image=True)
    assert merged.equal_bandwidth.pooled_psnr == whole.equal_bandwidth.pooled_psnr
    with pytest.raises(ValueError, match="equal-bandwidth"):
        merge_stability([parts[0], stability_crop(G, src[:2], 64, shift_grid(3))])


# --- building blocks -----------------------------------------------------------------------
def _cosine(freq_y: float, freq_x: float, size: int = 64, amplitude: float = 1.0) -> torch.Tensor:
    n = torch.arange(size, dtype=torch.float64)
    return amplitude * torch.cos(2 * math.pi * (freq_y * n[:, None] + freq_x * n[None, :]))[None, None]


def test_band_energy_follows_parseval_and_puts_a_cosine_in_its_band():
    x = _noise(1)
    unwindowed = band_energy(x, window=False)
    assert unwindowed.sum().item() == pytest.approx(x.square().sum().item(), rel=1e-12)
    edges = band_edges()
    assert edges == [0.0, 1 / 32, 1 / 16, 1 / 8, 1 / 4, math.sqrt(0.5)]
    e = band_energy(_cosine(0, 12 / 64), window=False)[0]  # 0.1875 cycles/pixel
    assert e[3] == pytest.approx(64 * 64 / 2) and e.sum() == pytest.approx(e[3])
    assert band_index(64, 64)[0, 16].item() == 3 and band_index(64, 64)[0, 17].item() == 4  # 0.25 is in band 3


def test_spectrum_db_caps_a_zero_error():
    db = spectrum_db(torch.tensor([1.0, 1.0, 0.0], dtype=torch.float64),
                     torch.tensor([0.0, 0.1, 0.0], dtype=torch.float64)).tolist()
    assert db == [MAX_PSNR_DB, pytest.approx(10.0, abs=1e-12), MAX_PSNR_DB]


def test_lowpass_keeps_constants_and_commutes_with_roll_when_circular():
    c = torch.full((1, 3, 16, 16), 0.3, dtype=torch.float64)
    assert torch.allclose(lowpass(c), c)
    x = _noise(1, 16)
    assert torch.allclose(lowpass(torch.roll(x, (3, 5), (-2, -1)), border="circular"),
                          torch.roll(lowpass(x, border="circular"), (3, 5), (-2, -1)), atol=1e-14)
    # Bin-5's frequency response at 0.25 cycles/pixel is cos^4(pi/4) = 1/4 in each direction.
    y = lowpass(_cosine(0, 0.25, amplitude=1.0), border="circular")
    assert torch.allclose(y, 0.25 * _cosine(0, 0.25), atol=1e-12)
    with pytest.raises(ValueError, match="unknown low-pass filter 'bin9'"):
        lowpass(x, "bin9")
    with pytest.raises(ValueError, match="unknown low-pass"):
        stability_circular(lambda t: t, x, [(1, 0)], lowpass="gauss")


def test_every_antialiasing_filter_is_an_equal_bandwidth_filter_kaiser9_passes_a_cosine_by_its_response():
    # kaiser9 is scipy.signal.firwin(9, 0.25, width=0.25, fs=1) (docs/DESIGN.md section 2); on a
    # circular cosine a symmetric 9-tap filter multiplies it by its real response
    # H(f) = sum_n h[n] cos(2 pi f (n - 4)), computed here from scipy's taps, not from ours.
    signal = pytest.importorskip("scipy.signal")
    taps = signal.firwin(9, 0.25, width=0.25, fs=1.0)
    for f in (0.0625, 0.125, 0.1875):
        gain = float(sum(h * math.cos(2 * math.pi * f * (n - 4)) for n, h in enumerate(taps)))
        y = lowpass(_cosine(0, f), "kaiser9", border="circular")
        assert torch.allclose(y, gain * _cosine(0, f), atol=1e-12), f
    name, _, _, radius = resolve_lowpass("kaiser9")
    assert (name, radius) == ("kaiser9", 4)
    # The crop protocol then leaves out the 4 pixels per side that the 9-tap support reaches.
    r = stability_crop(lambda t: t, reflect_pad_source(_noise(), 6), 64, shift_grid(7), lowpass="kaiser9")
    eb = r.equal_bandwidth
    assert eb.pooled_psnr == MAX_PSNR_DB and eb.lowpass == "kaiser9"
    assert eb.counts[r.shifts.index((6, 1))] == 3 * (64 - 6 - 8) * (64 - 1 - 8)
    with pytest.raises(ValueError, match=r"unknown low-pass filter 'kaiser99'; valid: .*'kaiser<N>"):
        resolve_lowpass("kaiser99")
    with pytest.raises(ValueError, match="unknown low-pass filter 'none'"):
        lowpass(_noise(), "none")


# --- sharpness ratios ------------------------------------------------------------------------
def test_high_frequency_ratio_of_two_cosines_is_their_power_ratio():
    target = _cosine(0.375, 0.0, amplitude=0.8).repeat(2, 3, 1, 1)
    out = _cosine(0.375, 0.0, amplitude=0.2).repeat(2, 3, 1, 1)
    s = sharpness(out, target)
    assert s["hf"] / s["hf_target"] == pytest.approx((0.2 / 0.8) ** 2, rel=1e-9)
    assert high_frequency_energy(_cosine(0.1, 0.1)).item() < 1e-6 * high_frequency_energy(_cosine(0.3, 0.1)).item()
    x = _noise()
    same = sharpness(x, x)
    assert same["hf"] == same["hf_target"] and same["tv"] == same["tv_target"]
    assert sharpness(ideal_lowpass(0.2)(x), x)["hf"] < 1e-3 * same["hf_target"]
    half = sharpness(0.5 * x, x)
    assert half["tv"] / half["tv_target"] == pytest.approx(0.5, rel=1e-6)
