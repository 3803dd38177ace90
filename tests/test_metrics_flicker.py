"""Panning flicker: known answers for the identity, a column roll and a subsampling operator."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from pix2pix_aa.metrics import MAX_PSNR_DB, reflect_pad_source
from pix2pix_aa.metrics.flicker import merge_flicker, panning_flicker


def _scene(n: int = 2, size: int = 40, seed: int = 0) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    return torch.rand(n, 3, size, size, generator=g, dtype=torch.float64) * 2 - 1


def test_a_moving_crop_of_a_static_scene_through_the_identity_has_no_flicker():
    r = panning_flicker(lambda t: t, _scene(), 24, num_frames=16, keep_frames=True)
    assert r.pooled_psnr == MAX_PSNR_DB and np.all(r.mse == 0) and r.mse.shape == (2, 15)
    assert r.input_frames.shape == (16, 24, 24, 3) and r.input_frames.dtype == np.uint8
    assert np.array_equal(r.input_frames, r.output_frames)
    # The frames really move: consecutive input frames differ, but agree after the (1, 1) motion.
    assert not np.array_equal(r.input_frames[0], r.input_frames[1])
    assert np.array_equal(r.input_frames[0][1:, 1:], r.input_frames[1][:-1, :-1])


def test_a_generator_that_rolls_one_column_flickers_on_that_column_only():
    """G(x) = roll(x, 1 column): after motion compensation consecutive outputs agree except on
    the wrapped column 0 of the common region, where frame k+1 shows source column W + k and
    frame k shows source column k. The expected MSE is computed by hand."""
    src, h, w, frames = _scene(1, 30), 20, 20, 8
    r = panning_flicker(lambda t: torch.roll(t, 1, dims=-1), src, (h, w), num_frames=frames)
    for k in range(frames - 1):
        rows = slice(k + 1, k + h)  # source rows of the common region
        diff = src[0, :, rows, k] - src[0, :, rows, w + k]
        expected = diff.square().sum() / (3 * (h - 1) * (w - 1))
        assert r.mse[0, k] == pytest.approx(float(expected), rel=1e-12)
    assert r.pooled_psnr < 40


def test_subsampling_flickers_and_the_figure_merges_exactly_over_images():
    alias = lambda t: F.interpolate(t[..., ::2, ::2], scale_factor=2, mode="nearest")  # noqa: E731
    src = reflect_pad_source(_scene(3, 32), 7)
    whole = panning_flicker(alias, src, 32, num_frames=8)
    assert whole.pooled_psnr < 20  # every odd step re-samples the scene on the other phase
    merged = merge_flicker([panning_flicker(alias, src[:1], 32, num_frames=8),
                            panning_flicker(alias, src[1:], 32, num_frames=8, batch_size=3)])
    assert merged.to_dict() == whole.to_dict() and np.array_equal(merged.mse, whole.mse)


@pytest.mark.parametrize("kwargs, match", [
    ({"num_frames": 1}, "num_frames must be an int >= 2"),
    ({"num_frames": 20}, "needs a source of at least 43x43"),
])
def test_bad_paths_are_one_clear_error(kwargs, match):
    with pytest.raises(ValueError, match=match):
        panning_flicker(lambda t: t, _scene(1, 40), 24, **kwargs)


def test_images_off_the_psnr_scale_are_refused_as_by_the_stability_metrics():
    """0..255 images gave a negative figure and uint8 ones failed inside torch; [0, 1] ones read
    ~6 dB steadier without the warning the stability metrics give."""
    scene = _scene(1, 40)
    with pytest.raises(ValueError, match=r"source holds values in \[.*\], not images in \[-1, 1\]"):
        panning_flicker(lambda t: t, (scene + 1) * 127.5, 24, num_frames=4)
    with pytest.raises(ValueError, match="source must be a float tensor of images in"):
        panning_flicker(lambda t: t, ((scene + 1) * 127.5).to(torch.uint8), 24, num_frames=4)
    with pytest.warns(UserWarning, match="source"):
        panning_flicker(lambda t: t, (scene.clamp(-1, 1) + 1) / 2, 24, num_frames=4)
