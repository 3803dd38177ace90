"""Classification consistency and PatchGAN patch-sign consistency under shifts."""

import pytest
import torch
import torch.nn.functional as F

from pix2pix_aa.metrics import consistency, patch_consistency
from pix2pix_aa.metrics.consistency import sample_offset_pairs


def test_offset_pairs_are_distinct_seeded_and_in_range():
    pairs = sample_offset_pairs(3, 4, 6, seed=1)
    assert len(pairs) == 3 and all(len(p) == 6 for p in pairs)
    for image_pairs in pairs:
        for a, b in image_pairs:
            assert a != b and all(0 <= v < 4 for v in (*a, *b))
    assert pairs == sample_offset_pairs(3, 4, 6, seed=1)
    assert pairs != sample_offset_pairs(3, 4, 6, seed=2)


def test_shift_invariant_classifier_is_fully_consistent_and_positional_one_is_not():
    g = torch.Generator().manual_seed(0)
    # Constant-colour images: any translation-invariant classifier sees the same crop.
    colours = torch.rand(10, 3, 1, 1, generator=g) * 2 - 1
    flat = colours.expand(10, 3, 20, 20).contiguous()
    mean_classifier = lambda x: x.mean((-2, -1))  # noqa: E731
    r = consistency(mean_classifier, flat, max_shift=4, num_pairs=3, seed=0)
    assert r.consistency == 1.0 and r.total == 30 and r.agree == 30
    # A classifier reading one pixel of noise images changes its mind with the shift.
    noise = torch.rand(40, 3, 20, 20, generator=g)
    corner_classifier = lambda x: x[..., 0, 0]  # noqa: E731
    r2 = consistency(corner_classifier, noise, max_shift=4, num_pairs=3, seed=0, batch_size=7)
    assert r2.consistency < 0.6  # chance is 1/3
    assert r2.to_dict()["total"] == 120
    # A single-logit (binary) classifier is judged by its sign.
    r3 = consistency(lambda x: x.mean((1, 2, 3)) - 10, noise, max_shift=4, num_pairs=2, seed=0)
    assert r3.consistency == 1.0
    r4 = consistency(lambda x: x[:, 0, :1, 0] - 0.5, noise, max_shift=4, num_pairs=3, seed=0)
    assert r4.consistency < 0.8  # chance is 1/2


def test_patch_consistency_aligns_patch_grids_by_the_shift():
    """A pixel discriminator (stride 1) sees exactly the same pixel at aligned positions, so
    every compared patch agrees -- only if the grids are aligned in the right direction."""
    g = torch.Generator().manual_seed(0)
    x = torch.randn(3, 6, 24, 24, generator=g)
    pixel_d = lambda t: t[:, :1]  # noqa: E731
    r = patch_consistency(pixel_d, x, max_shift=6, num_pairs=4, seed=0, stride=1)
    assert r.consistency == 1.0 and r.total > 0
    # Same D claimed to have stride 2: misaligned by the odd part of the shift -> near chance.
    r2 = patch_consistency(pixel_d, x, max_shift=6, num_pairs=4, seed=0, stride=2)
    assert r2.consistency < 0.9


def test_patch_consistency_of_a_strided_patch_discriminator():
    g = torch.Generator().manual_seed(0)
    # Smooth large-scale sign pattern: an 8-stride average-pool D agrees on most patches.
    coarse = torch.randn(2, 1, 5, 5, generator=g)
    smooth = F.interpolate(coarse, size=(40, 40), mode="bilinear", align_corners=False).expand(2, 6, 40, 40)
    pool_d = lambda t: F.avg_pool2d(t[:, :1], 8, stride=8)  # noqa: E731
    r_smooth = patch_consistency(pool_d, smooth, max_shift=8, num_pairs=5, seed=0, stride=8)
    noise = torch.randn(2, 6, 40, 40, generator=g)
    r_noise = patch_consistency(pool_d, noise, max_shift=8, num_pairs=5, seed=0, stride=8)
    assert r_smooth.consistency > 0.8
    assert r_noise.consistency < r_smooth.consistency


@pytest.mark.parametrize("call, match", [
    (lambda: consistency(lambda x: x.mean((-2, -1)), torch.zeros(2, 3, 8, 8), max_shift=1), ">= 2"),
    (lambda: consistency(lambda x: x.mean((-2, -1)), torch.zeros(2, 3, 8, 8), max_shift=4, crop_size=8), "fit"),
    (lambda: patch_consistency(lambda x: x.mean((-2, -1)), torch.zeros(2, 3, 8, 8), max_shift=2), "patch logits"),
    (lambda: patch_consistency(lambda x: x, torch.zeros(2, 3, 8, 8), max_shift=2, stride=0), "stride"),
])
def test_bad_input_errors(call, match):
    with pytest.raises(ValueError, match=match):
        call()
