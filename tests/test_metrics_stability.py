"""Crop and circular stability protocols: exact regions, margins, batching, aliasing order."""

import warnings

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from skimage import data
from torch import nn

from pix2pix_aa.layers import BlurPool
from pix2pix_aa.metrics import MAX_PSNR_DB, reflect_pad_source, shift_grid, stability_circular, stability_crop


def _images(size: int = 32) -> torch.Tensor:
    """Two small natural images (astronaut and its mirror) in [-1, 1]."""
    img = torch.from_numpy(data.astronaut()).permute(2, 0, 1).float() / 127.5 - 1
    x = F.interpolate(img[None], size=(size, size), mode="area")
    return torch.cat([x, x.flip(-1)])


class Aliasing(nn.Module):
    """Stride-2 subsample then nearest upsample; with ``blur`` a BlurPool does the subsampling."""

    def __init__(self, blur: nn.Module | None = None):
        super().__init__()
        self.blur = blur

    def forward(self, x):
        x = self.blur(x) if self.blur is not None else x[..., ::2, ::2]
        return F.interpolate(x, scale_factor=2, mode="nearest")


class Counting:
    """Wraps G and counts forward passes and batch sizes."""

    def __init__(self, G):
        self.G, self.sizes = G, []

    def __call__(self, x):
        self.sizes.append(x.shape[0])
        return self.G(x)


def _circular_convnet() -> nn.Module:
    torch.manual_seed(0)
    return nn.Sequential(nn.Conv2d(3, 8, 3, padding=1, padding_mode="circular"), nn.ReLU(),
                         nn.Conv2d(8, 8, 5, padding=2, padding_mode="circular"), nn.Tanh(),
                         nn.Conv2d(8, 3, 1)).eval()


def test_identity_and_circular_convnet_are_exact_under_circular_protocol():
    x = _images()
    for G in (lambda t: t, _circular_convnet()):
        r = stability_circular(G, x, shift_grid(4))
        assert r.mean_psnr >= 100 and r.pooled_psnr >= 100
        assert np.all(r.per_shift_psnr[np.isfinite(r.per_shift_psnr)] >= 100)
    assert r.protocol == "circular" and len(r.shifts) == 15  # (0, 0) skipped
    assert np.isnan(r.per_shift_psnr[0, 0])


def test_identity_is_exact_on_the_common_region_of_the_crop_protocol():
    # Any misalignment of the compared regions by one pixel would give a finite PSNR here.
    x = _images()
    r = stability_crop(lambda t: t, reflect_pad_source(x, 4), 32, shift_grid(4))
    assert r.pooled_psnr == MAX_PSNR_DB and np.all(r.mse == 0)
    assert r.counts[r.shifts.index((3, 1))] == 3 * (32 - 3) * (32 - 1)


def test_crop_protocol_known_shift_gives_known_error_and_margin_removes_it():
    """G rolls its input one column right: equivariant except the wrapped column 0, which the
    common region starts with when dx >= 1. The expected MSE is computed by hand."""
    g = torch.Generator().manual_seed(0)
    h = w = 10
    src = torch.rand(2, 3, h + 4, w + 4, generator=g) * 2 - 1
    G = lambda t: torch.roll(t, 1, dims=-1)  # noqa: E731
    shifts = [(0, 2), (3, 0), (2, 3)]
    r = stability_crop(G, src, (h, w), shifts)
    for k, (dy, dx) in enumerate(shifts):
        if dx == 0:  # the wrapped column is the same pixel in both outputs
            expected = torch.zeros(2, dtype=torch.float64)
        else:
            rows = slice(dy, h)
            diff = src[:, :, rows, dx - 1].double() - src[:, :, rows, dx + w - 1].double()
            expected = diff.square().sum((1, 2)) / (3 * (h - dy) * (w - dx))
        assert torch.allclose(torch.from_numpy(r.mse[:, k]), expected, rtol=1e-12, atol=0)
    r1 = stability_crop(G, src, (h, w), shifts, margin=1)
    assert np.all(r1.mse == 0) and r1.margin == 1
    assert r1.counts[0] == 3 * (h - 2) * (w - 2 - 2)


def test_margin_excludes_every_border():
    # G zeroes a 2-pixel frame: margin 2 removes it from both outputs, margin 1 does not.
    def G(t):
        out = t.clone()
        out[..., :2, :] = out[..., -2:, :] = out[..., :, :2] = out[..., :, -2:] = 0
        return out
    src = reflect_pad_source(_images(), 3)
    assert stability_crop(G, src, 32, shift_grid(3), margin=2).pooled_psnr == MAX_PSNR_DB
    assert stability_crop(G, src, 32, shift_grid(3), margin=1).pooled_psnr < 60
    with pytest.raises(ValueError, match="no common region"):
        stability_crop(G, src, 32, shift_grid(3), margin=16)


def _one_at_a_time_crop(G, src, size, shifts):
    mse = np.zeros((src.shape[0], len(shifts)))
    for i in range(src.shape[0]):
        ref = G(src[i:i + 1, :, :size, :size])
        for k, (dy, dx) in enumerate(shifts):
            out = G(src[i:i + 1, :, dy:dy + size, dx:dx + size])
            mse[i, k] = (ref[..., dy:, dx:].double() - out[..., :size - dy, :size - dx].double()).square().mean()
    return mse


def test_batched_equals_one_at_a_time_and_is_independent_of_batch_size():
    G = nn.Sequential(nn.Conv2d(3, 6, 3, padding=1), nn.LeakyReLU(0.2), nn.Conv2d(6, 3, 3, padding=1)).eval()
    src = reflect_pad_source(_images(24), 3)
    shifts = shift_grid(3)
    with torch.no_grad():
        ref = _one_at_a_time_crop(G, src, 24, shifts[1:])
    results = []
    for bs in (1, 4, 7, 1000):
        counted = Counting(G)
        results.append(stability_crop(counted, src, 24, shifts, batch_size=bs))
        assert max(counted.sizes) <= bs
    for r in results:
        assert np.allclose(r.mse, ref, rtol=1e-5, atol=1e-12)
        assert abs(r.pooled_psnr - results[0].pooled_psnr) < 1e-3
        assert abs(r.mean_psnr - results[0].mean_psnr) < 1e-3
    # Circular protocol too.
    circ = [stability_circular(G, _images(24), shifts, batch_size=bs).mse for bs in (1, 5, 64)]
    assert np.allclose(circ[0], circ[1], rtol=1e-5) and np.allclose(circ[0], circ[2], rtol=1e-5)


def test_shifts_are_batched_into_few_forward_passes():
    x = _images(16)
    counted = Counting(lambda t: t)
    stability_circular(counted, x, shift_grid(3), batch_size=18)  # 2 images x (1 ref + 8 shifts)
    assert counted.sizes == [18]
    counted = Counting(lambda t: t)
    stability_crop(counted, reflect_pad_source(x, 3), 16, shift_grid(3))  # default batch size
    assert len(counted.sizes) == 1


def test_aliasing_net_scores_low_and_lower_than_with_blurpool():
    x = _images(32)
    shifts = shift_grid(4)
    alias = Aliasing().eval()
    blurred = Aliasing(BlurPool(3, 5, stride=2, pad_type="circular")).eval()
    r_alias = stability_circular(alias, x, shifts)
    r_blur = stability_circular(blurred, x, shifts)
    assert r_alias.pooled_psnr < 25
    assert r_alias.pooled_psnr + 3 < r_blur.pooled_psnr
    # (No assertion on mean_psnr: a mean of dB values is dominated by the shifts that are exact
    # to the bit -- the even ones here -- and those depend on float round-off in the blur.)
    # Even shifts are exact for a stride-2 net; odd ones are where aliasing shows.
    assert r_alias.per_shift_psnr[2, 2] == MAX_PSNR_DB
    assert r_alias.per_shift_psnr[1, 1] + 3 < r_blur.per_shift_psnr[1, 1]
    # The crop protocol ranks them the same way on the pooled figure.
    src = reflect_pad_source(x, 4)
    assert stability_crop(alias, src, 32, shifts, margin=4).pooled_psnr + 3 < \
        stability_crop(blurred, src, 32, shifts, margin=4).pooled_psnr


def test_model_state_is_untouched_and_training_mode_warns():
    G = nn.Sequential(nn.Conv2d(3, 3, 3, padding=1), nn.BatchNorm2d(3), nn.Dropout(0.5)).eval()
    before = {k: v.clone() for k, v in G.state_dict().items()}
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        stability_circular(G, _images(8), shift_grid(2))
    assert not G.training
    assert all(torch.equal(before[k], v) for k, v in G.state_dict().items())
    G.train()
    with pytest.warns(UserWarning, match="training mode"):
        stability_circular(G, _images(8), shift_grid(2))
    assert G.training  # warned, not changed


def test_result_to_dict_is_strict_json():
    import json
    r = stability_crop(lambda t: t * 0.5, reflect_pad_source(_images(8), 2), 8, shift_grid(2), grid_size=3)
    d = r.to_dict(per_image=True)
    text = json.dumps(d, allow_nan=False)
    assert d["per_shift_psnr"][0][0] is None and len(d["per_shift_psnr"]) == 3
    assert d["num_shifts"] == 3 and d["data_range"] == 2.0 and "pooled_psnr" in text


@pytest.mark.parametrize("call, match", [
    (lambda: stability_crop(lambda t: t, torch.zeros(1, 3, 10, 10), 8, [(3, 0)]), "exceeds"),
    (lambda: stability_crop(lambda t: t, torch.zeros(1, 3, 10, 10), 12, [(1, 0)]), "fit the source"),
    (lambda: stability_crop(lambda t: t, torch.zeros(3, 10, 10), 8, [(1, 0)]), r"\(N, C, H, W\)"),
    (lambda: stability_circular(lambda t: t, torch.zeros(1, 3, 8, 8), [(0, 0)]), "only the shift"),
    (lambda: stability_circular(lambda t: t, torch.zeros(1, 3, 8, 8), [(-1, 0)]), "non-negative"),
    (lambda: stability_circular(lambda t: t[..., :4, :4], torch.zeros(1, 3, 8, 8), [(1, 0)]), "spatial size"),
    (lambda: stability_circular(lambda t: t, torch.zeros(1, 3, 8, 8), [(1, 0)], batch_size=0), "batch_size"),
    # Truncated to (0, 1) and scored as that; rolled by the image's size (no shift), scored at the cap.
    (lambda: stability_crop(lambda t: t, torch.zeros(1, 3, 10, 10), 8, [(0.5, 1.7)]), "whole pixels, got"),
    (lambda: stability_circular(lambda t: t, torch.zeros(1, 3, 8, 8), [(8, 8)]), r"\(8, 8\) is a roll by \(0, 0\)"),
    # 0..255 images: -27.9 dB; uint8: a torch.finfo TypeError.
    (lambda: stability_crop(lambda t: t, torch.full((1, 3, 10, 10), 255.0), 8, [(1, 0)]), r"values in \[255, 255\]"),
    (lambda: stability_crop(lambda t: t, torch.zeros(1, 3, 10, 10, dtype=torch.uint8), 8, [(1, 0)]), "float tensor"),
    (lambda: stability_crop(lambda t: t, torch.full((1, 3, 10, 10), float("nan")), 8, [(1, 0)]), "holds NaN"),
    (lambda: stability_crop(lambda t: t, torch.zeros(1, 3, 10, 10), 8, [(True, 0)]), "whole pixels, got"),
    (lambda: stability_crop(lambda t: t, torch.zeros(1, 3, 10, 10), 8, ["12"]), "whole pixels, got"),
    (lambda: stability_crop(lambda t: t, torch.rand(1, 3, 10, 10) * 255, 8, [(1, 0)], data_range=1.0),
     "more than twice data_range 1"),
])
def test_bad_input_errors_are_clear(call, match):
    with pytest.raises(ValueError, match=match):
        call()


def test_images_in_0_1_are_warned_about_and_another_data_range_is_taken_as_given():
    x = torch.rand(1, 3, 10, 10)  # [0, 1]: reads 6 dB too stable against data range 2
    with pytest.warns(UserWarning, match=r"no negative value: images in \[0, 1\]\?"):
        stability_crop(lambda t: t, x, 8, [(1, 0)])
    stability_crop(lambda t: t, x * 255, 8, [(1, 0)], data_range=255.0)  # the caller's scale: no check


@pytest.mark.parametrize("head, match", [(lambda y: (y + 1) / 2, r"G's output has no negative value"),
                                         (lambda y: (y + 1) * 127.5, r"G's output holds values in \[")])
def test_a_generator_on_another_scale_is_warned_about(head, match):
    """A sigmoid-style [0, 1] head read 6 dB more stable, a 0..255 one -28 dB, without a word: the
    PSNR is of G's outputs."""
    x = torch.rand(2, 3, 12, 12) * 2 - 1
    G = torch.nn.Sequential(torch.nn.Conv2d(3, 3, 3, stride=2, padding=1), torch.nn.Upsample(scale_factor=2),
                            torch.nn.Tanh()).eval()
    with torch.no_grad(), pytest.warns(UserWarning, match=match):
        stability_crop(lambda t: head(G(t)), reflect_pad_source(x, 2), 12, shift_grid(2))


def test_a_data_range_far_above_the_images_span_is_warned_about():
    x = torch.rand(1, 3, 10, 10) * 2 - 1
    with pytest.warns(UserWarning, match="under an eighth of data_range 255"):
        stability_crop(lambda t: t, x, 8, [(1, 0)], data_range=255.0)


def test_quality_and_noise_robustness_check_the_scale_too():
    """quality() scored [0, 1] images 6 dB closer (32.00 for 25.98) without a word; noise_robustness
    took 0..255 images (its sigma is in [-1, 1] units) and failed on uint8 with a TypeError."""
    from pix2pix_aa.metrics import noise_robustness, quality

    t = torch.rand(2, 3, 16, 16) * 2 - 1
    p = (t + 0.1 * torch.randn_like(t)).clamp(-1, 1)
    with pytest.warns(UserWarning, match=r"target has no negative value: images in \[0, 1\]\?"):
        quality((p + 1) / 2, (t + 1) / 2)
    with pytest.raises(ValueError, match=r"target holds values in \[[0-9.]+, 255\]"):
        quality(p, (t + 1) * 127.5)
    with pytest.warns(UserWarning, match=r"pred holds values in \["):
        quality((p + 1) * 127.5, t)  # a network's outputs: warned, not refused
    G = torch.nn.Identity()
    with pytest.raises(ValueError, match=r"x holds values in \[[0-9.]+, 255\]"):
        noise_robustness(G, (t + 1) * 127.5, [0.1])
    with pytest.raises(ValueError, match="x must be a float tensor"):
        noise_robustness(G, ((t + 1) * 127.5).to(torch.uint8), [0.1])


def test_a_bright_chunk_of_mapped_data_is_no_warning_and_scale_known_carries_into_pool_workers(recwarn):
    """evaluate.py warned "images in [0, 1]?" (as raw Python warnings) on every chunk of an edge
    -> photo set whose input had no edge (pure white, +1 everywhere), though it maps its data to
    [-1, 1] itself; validation did the same on such a batch. The whole-set check of the Python API
    stays, and ``scale_known`` (what evaluate.py and validation run in) reaches the pool's workers."""
    import warnings

    from pix2pix_aa.evaluation import parallel
    from pix2pix_aa.evaluation.runner import EvalOptions, evaluate_chunks
    from pix2pix_aa.metrics.psnr import scale_known

    g = torch.Generator().manual_seed(0)
    x = torch.rand(3, 3, 16, 16, generator=g) * 2 - 1
    x[1] = 1.0  # an edge map with no edge
    G = torch.nn.Conv2d(3, 3, 3, padding=1).eval()
    opts = EvalOptions(max_shift=2, layers=None, noise=(0.1,), chunk=1, flicker_frames=2, flicker_images=3, samples=0)
    bright = "no negative value"
    with torch.no_grad():
        evaluate_chunks(G, x, x, opts)  # the set has dark pixels: its white chunk is no [0, 1] set
        assert not [w for w in recwarn if bright in str(w.message)]
        with pytest.warns(UserWarning, match=r"inputs has no negative value: images in \[0, 1\]\?"):
            evaluate_chunks(G, (x + 1) / 2, x, opts)  # a whole set in [0, 1]: still said
        with scale_known(), warnings.catch_warnings():
            warnings.simplefilter("error")
            evaluate_chunks(G, x[1:2], x[1:2], opts)  # evaluate.py's own data, one white image
        # a spawned pool worker gets the parent's setting through its initializer
        for known in (True, False):
            recwarn.clear()
            parallel._init_worker([G], x[1:2], x[1:2], opts, "cpu", 1, known_scale=known)
            *_, error, _ = parallel._run_chunk((0, 0))
            assert error is None
            assert bool([w for w in recwarn if bright in str(w.message)]) is not known


def test_a_generator_with_a_0_1_head_is_still_warned_about_through_evaluate_generator():
    """scale_known (what evaluate_chunks runs its chunks in) switched the check of G's outputs off
    too: a sigmoid-style head's stability read 6 dB high through evaluate_generator, silently."""
    from pix2pix_aa.evaluation.runner import EvalOptions, evaluate_generator

    x = torch.rand(2, 3, 16, 16, generator=torch.Generator().manual_seed(0)) * 2 - 1
    class Sigmoid01(torch.nn.Module):  # a [0, 1] head
        def __init__(self):
            super().__init__()
            self.conv = torch.nn.Conv2d(3, 3, 3, padding=1)

        def forward(self, t):
            return torch.sigmoid(self.conv(t))

    opts = EvalOptions(max_shift=2, layers=None, noise=(), chunk=1, flicker_frames=0, samples=0)
    with torch.no_grad(), pytest.warns(UserWarning, match=r"has no negative value: images in \[0, 1\]\?"):
        evaluate_generator(Sigmoid01().eval(), x, x, opts)
