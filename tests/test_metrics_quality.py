"""Noise robustness, quality (PSNR / SSIM / L1 / TV) and the heatmap plots."""

import math

import matplotlib
import pytest
import torch
import torch.nn.functional as F
from skimage import data

from pix2pix_aa.layers import Blur
from pix2pix_aa.metrics import (
    feature_distance,
    noise_robustness,
    quality,
    reflect_pad_source,
    shift_grid,
    stability_crop,
    total_variation,
)
from pix2pix_aa.metrics.plots import plot_feature_distance, plot_stability_heatmap

matplotlib.use("Agg")


def _images(size: int = 32) -> torch.Tensor:
    img = torch.from_numpy(data.coffee()).permute(2, 0, 1).float() / 127.5 - 1
    return F.interpolate(img[None], size=(size, size), mode="area").repeat(2, 1, 1, 1)


def test_noise_robustness_is_monotone_for_a_smooth_generator_and_seeded():
    G = Blur(3, 5, pad_type="reflect").eval()
    x = _images()
    r = noise_robustness(G, x, sigmas=(0.01, 0.02, 0.05, 0.1), seed=0)
    values = list(r.values())
    assert list(r) == [0.01, 0.02, 0.05, 0.1]
    assert all(a > b for a, b in zip(values, values[1:]))
    # A linear G: doubling sigma costs exactly 20 log10(2) dB (same noise draw, scaled).
    assert abs((values[0] - values[1]) - 20 * math.log10(2)) < 1e-3
    assert r == noise_robustness(G, x, sigmas=(0.01, 0.02, 0.05, 0.1), seed=0, batch_size=1)
    assert r != noise_robustness(G, x, sigmas=(0.01, 0.02, 0.05, 0.1), seed=1)
    with pytest.raises(ValueError, match="sigmas"):
        noise_robustness(G, x, sigmas=(-0.1,))


def test_quality_values():
    x = _images()
    q_same = quality(x, x)
    assert math.isinf(q_same["psnr"]) and q_same["l1"] == 0.0 and abs(q_same["ssim"] - 1) < 1e-4
    # L1 and PSNR of a constant offset are known exactly; TV is unchanged by it.
    q = quality((x + 0.1), x)
    assert abs(q["l1"] - 0.1) < 1e-6
    assert abs(q["psnr"] - 10 * math.log10(4 / 0.01)) < 1e-3
    assert abs(q["tv"] - q["tv_target"]) < 1e-5
    # A blurred prediction has lower TV than the target: the over-smoothing the TV exposes.
    blurred = Blur(3, 5)(x)
    assert quality(blurred, x)["tv"] < 0.8 * quality(blurred, x)["tv_target"]
    with pytest.raises(ValueError, match="same"):
        quality(x, x[:, :, :16])


def test_total_variation_normalisation():
    ramp = (0.1 * torch.arange(8.0)).expand(1, 3, 5, 8)  # horizontal step 0.1, vertical 0
    assert torch.allclose(total_variation(ramp), torch.tensor([0.1]))
    assert total_variation(torch.ones(2, 3, 4, 4)).tolist() == [0.0, 0.0]


def test_plots_write_pngs(tmp_path):
    x = _images(16)
    r = stability_crop(Blur(3, 3).eval(), reflect_pad_source(x, 3), 16, shift_grid(3))
    fig = plot_stability_heatmap(r, path=tmp_path / "stab.png")
    assert (tmp_path / "stab.png").stat().st_size > 1000 and len(fig.axes) == 2  # map + colour bar

    def feats(t):
        return {"in": (t, 1), "sub": (t[..., ::2, ::2], 2), "blur": (Blur(3, 3)(t), 1)}

    fd = feature_distance(feats, x, shift_grid(3), max_shift=3)
    fig2 = plot_feature_distance(fd, path=tmp_path / "sub" / "feat.png", ncols=2)
    assert (tmp_path / "sub" / "feat.png").exists() and len(fig2.axes) == 5  # 2x2 grid + colour bar
    with pytest.raises(ValueError, match="unknown layers"):
        plot_feature_distance(fd, layers=["nope"])


def test_ssim_is_the_gaussian_window_ssim_with_reflect_padded_borders():
    """Known answer, written out: Wang et al.'s SSIM (11x11 Gaussian window, sigma 1.5, C1 = 0.01^2,
    C2 = 0.03^2 on [0, 1] images) averaged over every pixel, border windows reflect-padded (the
    docs had said zero-padded: 0.045 apart on generated images)."""
    from pix2pix_aa.metrics.quality import quality

    g = torch.Generator().manual_seed(0)
    pred, target = (torch.rand(2, 3, 24, 20, generator=g) * 2 - 1 for _ in range(2))
    x = torch.arange(11, dtype=torch.float64) - 5
    w1 = torch.exp(-x ** 2 / (2 * 1.5 ** 2))
    w = (w1[:, None] * w1[None, :] / w1.sum() ** 2).expand(3, 1, 11, 11)

    def blur(img):
        return F.conv2d(F.pad(img, (5, 5, 5, 5), mode="reflect"), w, groups=3)

    a, b = ((t.double() + 1) / 2 for t in (pred, target))
    mu_a, mu_b = blur(a), blur(b)
    var_a, var_b, cov = blur(a * a) - mu_a ** 2, blur(b * b) - mu_b ** 2, blur(a * b) - mu_a * mu_b
    c1, c2 = 0.01 ** 2, 0.03 ** 2
    ssim = ((2 * mu_a * mu_b + c1) * (2 * cov + c2)) / ((mu_a ** 2 + mu_b ** 2 + c1) * (var_a + var_b + c2))
    assert quality(pred, target)["ssim"] == pytest.approx(float(ssim.mean()), abs=1e-5)
