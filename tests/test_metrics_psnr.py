"""PSNR against scikit-image; shift grids and shift operators."""

import math

import pytest
import torch
from skimage.metrics import peak_signal_noise_ratio

from pix2pix_aa.metrics import (
    fourier_shift,
    pooled_psnr,
    psnr,
    psnr_from_mse,
    reflect_pad_source,
    shift_features,
    shift_grid,
)


def test_psnr_agrees_with_skimage_per_image():
    g = torch.Generator().manual_seed(0)
    a = torch.rand(4, 3, 17, 23, generator=g) * 2 - 1
    b = (a + 0.05 * torch.randn(a.shape, generator=g)).clamp(-1, 1)
    b[2] = a[2] + 0.3 * torch.randn(a[2].shape, generator=g)  # a much worse pair
    ours = psnr(a, b, data_range=2.0, reduction="none")
    assert ours.shape == (4,)
    for i in range(4):
        ref = peak_signal_noise_ratio(a[i].numpy(), b[i].numpy(), data_range=2.0)
        assert abs(float(ours[i]) - ref) < 1e-4
    assert abs(float(psnr(a, b)) - float(ours.mean())) < 1e-12


def test_psnr_identical_is_inf_and_cap_applies():
    a = torch.zeros(2, 1, 4, 4)
    assert math.isinf(float(psnr(a, a)))
    assert float(psnr_from_mse(0.0, 2.0, max_db=200.0)) == 200.0
    # 10 log10(4 / 0.04) = 20 dB
    assert abs(float(psnr_from_mse(0.04)) - 20.0) < 1e-12


def test_psnr_of_integer_images_is_refused():
    """uint8 images against the default data range 2 gave a negative dB without a word."""
    a = torch.full((1, 3, 4, 4), 200, dtype=torch.uint8)
    with pytest.raises(ValueError, match=r"psnr needs float images in \[-1, 1\].*x.float\(\) / 127.5 - 1"):
        psnr(a, a // 2)


def test_pooled_psnr_is_psnr_of_summed_error():
    # Two pairs: MSE 0.01 over 100 elements and 0.09 over 300 -> pooled MSE 0.07.
    value = pooled_psnr(torch.tensor([1.0, 27.0]), torch.tensor([100, 300]))
    assert abs(value - 10 * math.log10(4 / 0.07)) < 1e-9


@pytest.mark.parametrize("bad", [
    dict(a=torch.zeros(2, 3, 4, 4), b=torch.zeros(2, 3, 4, 5)),
])
def test_psnr_shape_mismatch_is_clear(bad):
    with pytest.raises(ValueError, match="same shape"):
        psnr(bad["a"], bad["b"])


def test_shift_grid_full_and_sampled():
    grid = shift_grid(8)
    assert len(grid) == 64 and grid[0] == (0, 0) and grid[-1] == (7, 7)
    sample = shift_grid(8, num_shifts=10, seed=3)
    assert len(set(sample)) == 10 and set(sample) <= set(grid)
    assert sample == shift_grid(8, num_shifts=10, seed=3)
    assert sample != shift_grid(8, num_shifts=10, seed=4)
    with pytest.raises(ValueError, match="num_shifts"):
        shift_grid(2, num_shifts=5)


def test_reflect_pad_source_shape_and_values():
    x = torch.arange(2 * 3 * 6 * 5, dtype=torch.float32).reshape(2, 3, 6, 5)
    src = reflect_pad_source(x, 3)
    assert src.shape == (2, 3, 9, 8)
    assert torch.equal(src[..., :6, :5], x)
    assert torch.equal(src[..., 6, :5], x[..., 4, :])  # reflection without repeating the edge
    with pytest.raises(ValueError, match="S=6"):
        reflect_pad_source(x, 6)


def test_fourier_shift_integer_equals_roll_and_fractional_is_exact_for_band_limited():
    g = torch.Generator().manual_seed(1)
    f = torch.randn(2, 3, 8, 12, generator=g, dtype=torch.float64)
    assert torch.allclose(fourier_shift(f, 3, -5), torch.roll(f, (3, -5), (-2, -1)), atol=1e-12)
    assert torch.equal(shift_features(f, 2.0, 1.0), torch.roll(f, (2, 1), (-2, -1)))
    # A low-frequency cosine moves by exactly the fractional amount.
    n = 16
    r = torch.arange(n, dtype=torch.float64)
    wave = torch.cos(2 * torch.pi * 3 * r / n)[None, :].expand(4, n).clone()
    shifted = fourier_shift(wave, 0.0, 0.5)
    expected = torch.cos(2 * torch.pi * 3 * (r - 0.5) / n)[None, :].expand(4, n)
    assert torch.allclose(shifted, expected, atol=1e-12)
    assert torch.allclose(shift_features(wave, 0, 0.5), expected, atol=1e-12)
