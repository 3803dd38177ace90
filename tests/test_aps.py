"""Adaptive polyphase sampling (APS / APS-U): layers, the APS U-Net, exact circular equivariance."""

from __future__ import annotations

import importlib.util

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from pix2pix_aa.layers.blur_pool import Blur
from pix2pix_aa.layers.padding import safe_pad
from pix2pix_aa.layers.polyphase import (
    APS_VARIANTS,
    APSConvTranspose2d,
    APSDown,
    aps_conv_transpose2d,
    aps_down,
    aps_up,
    parse_antialias,
    polyphase_norms,
    select_phase,
)
from pix2pix_aa.metrics import feature_distance, reflect_pad_source, shift_grid, stability_circular, stability_crop
from pix2pix_aa.networks import UNetGenerator, init_weights

GRID = shift_grid(8)  # every shift on the 8x8 grid


def n_params(m: nn.Module) -> int:
    return sum(p.numel() for p in m.parameters())


def smooth_images(n: int, size: int, seed: int = 1, dtype=torch.float32) -> torch.Tensor:
    """Smooth random images in [-1, 1] (circularly box-filtered noise)."""
    x = torch.rand(n, 3, size, size, generator=torch.Generator().manual_seed(seed), dtype=torch.float64) * 2 - 1
    x = F.avg_pool2d(safe_pad(x, (2, 2, 2, 2), "circular"), 5, 1)
    return (x / x.abs().amax()).to(dtype)


def make_aps(antialias="aps", norm="batch", num_downs=5, ngf=4, seed=0, **kw) -> UNetGenerator:
    torch.manual_seed(seed)
    return init_weights(UNetGenerator(num_downs=num_downs, ngf=ngf, antialias=antialias, norm=norm, **kw))


def circular_psnr_min(g: nn.Module, x: torch.Tensor) -> float:
    """Worst (image, shift) circular-protocol PSNR over the 8x8 grid, uncapped (data range 2)."""
    with torch.no_grad():
        res = stability_circular(g, x, GRID, max_db=1000.0)
    return float(res.per_image_psnr.min())


def train_a_few_steps(g: UNetGenerator, steps: int = 4, size: int = 64, lr: float = 2e-2) -> UNetGenerator:
    """Plain L1 regression (target: a colour-inverted, rolled copy) with Adam, train mode. The
    high learning rate moves the weights (and BatchNorm running statistics) far in few steps."""
    opt = torch.optim.Adam(g.parameters(), lr=lr, betas=(0.5, 0.999))
    g.train()
    for step in range(steps):
        x = smooth_images(2, size, seed=10 + step)
        loss = F.l1_loss(g(x), -torch.roll(x, (3, 1), (-2, -1)))
        opt.zero_grad()
        loss.backward()
        opt.step()
    return g.eval()


# -- functional layers -------------------------------------------------------------------------

def test_aps_down_keeps_the_largest_norm_component_per_sample():
    x = torch.randn(3, 2, 6, 8)
    y, phase = aps_down(x)
    assert phase.dtype == torch.long and phase.shape == (3,) and y.shape == (3, 2, 3, 4)
    for n in range(3):
        norms = [x[n, :, i::2, j::2].pow(2).sum() for i in range(2) for j in range(2)]
        best = int(torch.stack(norms).argmax())
        assert int(phase[n]) == best
        assert torch.equal(y[n], x[n, :, best // 2::2, best % 2::2])
    # stride 3 and the l1 norm
    x3 = torch.randn(2, 1, 6, 9)
    y3, p3 = aps_down(x3, stride=3, norm="l1")
    for n in range(2):
        best = int(torch.stack([x3[n, :, i::3, j::3].abs().sum() for i in range(3) for j in range(3)]).argmax())
        assert int(p3[n]) == best and torch.equal(y3[n], x3[n, :, best // 3::3, best % 3::3])


def test_l1_and_l2_norms_can_pick_different_components():
    x = torch.zeros(1, 1, 2, 4)
    x[0, 0, 0, 0] = 3.0                      # phase 0: one big value  (l1 3, l2 9)
    x[0, 0, 1, 1], x[0, 0, 1, 3] = 2.0, 2.0  # phase 3: two medium     (l1 4, l2 8)
    assert int(aps_down(x, norm="l2")[1]) == 0
    assert int(aps_down(x, norm="l1")[1]) == 3


def test_ties_pick_the_lowest_index_whatever_the_summation_order():
    # Constant map: four identical components -> phase 0.
    assert aps_down(torch.full((2, 3, 4, 4), 0.7))[1].tolist() == [0, 0]
    # Phases 1 and 3 hold the same multiset of values in a different order (so their float
    # sums may round differently); phases 0 and 2 are smaller -> the tie goes to phase 1.
    torch.manual_seed(0)
    vals = torch.randn(64, 64, dtype=torch.float32) * 1e3
    x = torch.zeros(1, 1, 128, 128)
    x[0, 0, 0::2, 1::2] = vals
    x[0, 0, 1::2, 1::2] = vals.flip(0, 1).roll(7, 1)
    x[0, 0, 0::2, 0::2] = vals * 0.5
    norms = polyphase_norms(x)
    assert norms[0, 1] == pytest.approx(float(norms[0, 3]), rel=1e-12)
    assert int(aps_down(x)[1]) == 1
    # Deterministic: same answer every call and independent of the other samples in the batch.
    xb = torch.cat([torch.randn(3, 1, 128, 128), x])
    assert [int(aps_down(xb)[1][-1]) for _ in range(3)] == [1, 1, 1]
    # Without the tolerance, a strictly larger norm still wins.
    x[0, 0, 1, 1] += 1.0
    assert int(aps_down(x, rtol=0.0)[1]) == 3


@pytest.mark.parametrize("stride", [2, 3])
def test_aps_down_is_invariant_up_to_an_integer_roll(stride):
    """aps_down(roll(x, d)) == roll(aps_down(x), floor((p + d) / s)) exactly, per axis."""
    torch.manual_seed(1)
    x = torch.randn(4, 3, 4 * stride, 5 * stride)
    y, p = aps_down(x, stride)
    pi, pj = p // stride, p % stride
    for dy in range(2 * stride):
        for dx in range(stride):
            ys, ps = aps_down(torch.roll(x, (dy, dx), (-2, -1)), stride)
            assert torch.equal(ps, ((pi + dy) % stride) * stride + (pj + dx) % stride)
            for n in range(4):
                shift = (int(pi[n] + dy) // stride, int(pj[n] + dx) // stride)
                assert torch.equal(ys[n], torch.roll(y[n], shift, (-2, -1)))


def test_aps_up_places_values_at_the_phase_and_is_the_adjoint_of_selection():
    torch.manual_seed(2)
    y, phase = torch.randn(4, 2, 3, 5), torch.tensor([0, 1, 2, 3])
    x = aps_up(y, phase)
    assert x.shape == (4, 2, 6, 10)
    for n in range(4):
        i, j = divmod(int(phase[n]), 2)
        mask = torch.zeros(6, 10, dtype=torch.bool)
        mask[i::2, j::2] = True
        assert torch.equal(x[n][:, mask], y[n].flatten(1)) and not x[n][:, ~mask].any()
    assert torch.equal(select_phase(x, phase), y)
    z = torch.randn(4, 2, 6, 10)  # <aps_up(y), z> == <y, select(z)>
    torch.testing.assert_close((x * z).sum(), (y * select_phase(z, phase)).sum())


def test_aps_gradients_reach_only_the_kept_component():
    x = torch.randn(2, 3, 4, 4, requires_grad=True)
    y, phase = aps_down(x)
    y.sum().backward()
    for n in range(2):
        i, j = divmod(int(phase[n]), 2)
        expected = torch.zeros(3, 4, 4)
        expected[:, i::2, j::2] = 1
        assert torch.equal(x.grad[n], expected)


@pytest.mark.parametrize("pad_type", ["zero", "circular"])
@pytest.mark.parametrize("kernel,stride,padding", [(4, 2, 1), (3, 2, 1), (5, 3, 2), (8, 2, 3)])
def test_aps_conv_transpose_is_zero_insertion_then_stride1_transposed_conv(pad_type, kernel, stride, padding):
    """The fast path (strided conv, then shift/wrap) equals its definition, for every phase,
    on maps down to 1x1 (where the circular wrap overlaps itself)."""
    torch.manual_seed(3)
    conv = nn.ConvTranspose2d(5, 4, kernel, stride, padding).double()
    for h, w in [(1, 1), (2, 3), (4, 4)]:
        y = torch.randn(stride * stride, 5, h, w, dtype=torch.float64)
        phase = torch.arange(stride * stride)
        out = aps_conv_transpose2d(y, phase, conv.weight, conv.bias, stride, padding, pad_type)
        u = aps_up(y, phase, stride)  # zero insertion at the phase
        if pad_type == "circular":    # out[o] = sum_k w[k] u[(o + P - k) mod L]
            q = kernel - 1 - padding
            ref = F.conv_transpose2d(safe_pad(u, (q, padding, q, padding), "circular"), conv.weight, conv.bias,
                                     padding=kernel - 1)
        else:                         # same with u = 0 outside [0, L)
            ref = F.conv_transpose2d(u, conv.weight, conv.bias, padding=padding)[..., :stride * h, :stride * w]
        torch.testing.assert_close(out, ref, rtol=0, atol=1e-12)


def test_phase0_zero_padding_is_the_reference_convtranspose_and_weights_are_shared():
    torch.manual_seed(4)
    ref = nn.ConvTranspose2d(6, 3, 4, 2, 1)
    aps = APSConvTranspose2d.from_conv_transpose(ref, pad_type="zero")
    assert aps.weight is ref.weight and aps.bias is ref.bias
    y = torch.randn(2, 6, 5, 7)
    torch.testing.assert_close(aps(y, torch.zeros(2, dtype=torch.long)), ref(y), rtol=1e-5, atol=1e-6)
    assert n_params(APSConvTranspose2d(6, 3, filt_size=5)) == n_params(ref)
    with pytest.raises(ValueError, match="needs the phase"):
        aps(y)


def test_aps_down_up_pair_is_exactly_circularly_equivariant():
    """APSDown(bin5) -> APSConvTranspose2d(circular, bin5 blur) commutes with every roll."""
    torch.manual_seed(5)
    down, up = APSDown(4, "bin5").double(), APSConvTranspose2d(4, 2, filt_size="bin5").double()
    x = torch.randn(2, 4, 8, 8, dtype=torch.float64)
    z = up(*down(x))
    for s in [(1, 0), (0, 3), (5, 7)]:
        torch.testing.assert_close(up(*down(torch.roll(x, s, (-2, -1)))), torch.roll(z, s, (-2, -1)),
                                   rtol=0, atol=1e-12)


def test_circular_blur_handles_pads_wider_than_the_map():
    tiny = torch.randn(1, 2, 2, 2)
    out = Blur(2, 7, pad_type="circular")(tiny)  # F.pad(mode="circular") refuses pad 3 on a 2x2 map
    # On a 2-periodic map every blur is the mean of each parity class weighted by the filter;
    # a constant map stays constant, and the mean is preserved.
    torch.testing.assert_close(out.mean((-2, -1)), tiny.mean((-2, -1)))
    torch.testing.assert_close(Blur(2, 7, pad_type="circular")(torch.ones(1, 2, 1, 1)), torch.ones(1, 2, 1, 1))
    # APS's exactness needs every position computed alike: a roll of the input rolls the output bit for bit.
    x = torch.randn(1, 2, 9, 8)
    blur = Blur(2, 5, pad_type="circular")
    assert torch.equal(blur(torch.roll(x, (3, 5), (-2, -1))), torch.roll(blur(x), (3, 5), (-2, -1)))


# -- config values and errors ------------------------------------------------------------------

def test_parse_antialias():
    assert parse_antialias("aps") == (True, 0)
    assert parse_antialias("aps_bin5") == (True, 5)
    assert parse_antialias("APS_rect2") == (True, 2)
    assert parse_antialias("aps_tri3") == (True, 3)
    assert parse_antialias("bin5") == (False, 5) and parse_antialias(3) == (False, 3)
    assert parse_antialias(None) == (False, 0) and parse_antialias("none") == (False, 0)
    assert set(APS_VARIANTS) >= {"aps", "aps_rect2", "aps_tri3", "aps_bin4", "aps_bin5"}
    with pytest.raises(ValueError, match=r"unknown antialias filter 'aps_gauss'.*'none'.*'aps'.*'aps_bin5'"):
        parse_antialias("aps_gauss")
    with pytest.raises(ValueError, match="size must be 1..7"):
        parse_antialias(9)


@pytest.mark.parametrize("call,match", [
    (lambda: aps_down(torch.randn(1, 1, 5, 4)), r"spatial size \(5, 4\) must be divisible by stride 2"),
    (lambda: aps_down(torch.randn(4, 4)), r"expects a \(N, C, H, W\) tensor"),
    (lambda: aps_down(torch.randn(1, 1, 4, 4), norm="linf"), "unknown APS norm 'linf'"),
    (lambda: aps_down(torch.randn(1, 1, 4, 4), stride=0), "stride must be a positive int"),
    (lambda: aps_up(torch.randn(2, 1, 2, 2), torch.tensor([0, 4])), r"phase values must be in \[0, 4\)"),
    (lambda: aps_up(torch.randn(2, 1, 2, 2), torch.tensor([0])), r"phase must have shape \(2,\)"),
    (lambda: aps_up(torch.randn(1, 1, 2, 2), torch.tensor([0.0])), "integer tensor"),
    (lambda: APSDown(4, pad_type="reflect"), "needs pad_type='circular'"),
    (lambda: APSDown(4)(torch.randn(1, 3, 4, 4)), "built for 4 channels"),
    (lambda: APSConvTranspose2d(4, 2, pad_type="reflect"), "pad_type must be 'circular' or 'zero'"),
])
def test_layer_errors_are_clear(call, match):
    with pytest.raises(ValueError, match=match):
        call()


@pytest.mark.parametrize("kwargs,match", [
    (dict(antialias="aps", pad_type="zero"), "needs pad_type='circular'"),
    (dict(antialias="aps_bin5", blur_pad_type="reflect"), "blurs with circular padding"),
    (dict(antialias="aps", upsample="nearest"), "upsample='nearest'"),
    (dict(antialias="aps", antialias_mode="blur_conv"), "applies to BlurPool filters"),
    (dict(antialias="aps", aps_norm="l3"), "unknown aps_norm 'l3'"),
    (dict(antialias="aps", upsample_antialias=True), "needs an antialias filter"),
    (dict(antialias="aps_sinc"), "unknown antialias filter 'aps_sinc'"),
])
def test_generator_rejects_bad_aps_options(kwargs, match):
    with pytest.raises(ValueError, match=match):
        UNetGenerator(num_downs=3, ngf=2, **kwargs)


# -- the APS generator ---------------------------------------------------------------------------

@pytest.mark.parametrize("num_downs,expected", [(8, 54_413_955), (7, 41_828_995)])
def test_aps_generator_has_the_baseline_parameters_and_state_dict_keys(num_downs, expected):
    base = UNetGenerator(num_downs=num_downs)
    for aa in ("aps", "aps_bin5"):
        g = UNetGenerator(num_downs=num_downs, antialias=aa)
        assert g.encoder[0][0].padding_mode == "zeros" and g.encoder[0][0].pad_mode == "circular"
        assert n_params(g) == expected
        assert {k: v.shape for k, v in g.state_dict().items()} == {k: v.shape for k, v in base.state_dict().items()}


def test_baseline_checkpoint_loads_into_aps_generator():
    base = make_aps("none", num_downs=4)
    g = UNetGenerator(num_downs=4, ngf=4, antialias="aps_tri3")
    g.load_state_dict(base.state_dict())
    assert torch.equal(g.decoder[0][1][0].weight, base.decoder[0][1][0].weight)


@pytest.mark.parametrize("antialias", ["aps", "aps_bin5"])
@pytest.mark.parametrize("norm", ["batch", "instance"])
def test_untrained_circular_stability_every_shift_float32(antialias, norm):
    g = make_aps(antialias, norm, num_downs=5, ngf=4).eval()
    assert circular_psnr_min(g, smooth_images(2, 32)) >= 80.0


@pytest.fixture(scope="module")
def trained_aps():
    """num_downs=6 so that the dropout level exists (and is off in eval); 4 Adam steps."""
    g = make_aps("aps_bin5", "batch", num_downs=6, ngf=4, dropout=0.5)
    assert any(isinstance(m, nn.Dropout) for m in g.modules())
    before = g.decoder[0][1][0].weight.detach().clone()
    train_a_few_steps(g, steps=4, size=64)
    assert not torch.equal(before, g.decoder[0][1][0].weight)
    bn = next(m for m in g.modules() if isinstance(m, nn.BatchNorm2d))
    assert not torch.equal(bn.running_mean, torch.zeros_like(bn.running_mean))
    return g


def test_trained_circular_stability_every_shift_float32(trained_aps):
    x = smooth_images(1, 64, seed=3)
    with torch.no_grad():
        assert trained_aps(x).std() > 0.02  # a non-trivial output, not a constant
    assert circular_psnr_min(trained_aps, x) >= 80.0
    # The same weights in the BlurPool (bin5, circular padding) network are far from exact
    # (measured ~50 dB): the threshold separates the architectures.
    blur = UNetGenerator(num_downs=6, ngf=4, antialias="bin5", pad_type="circular", dropout=0.5)
    blur.load_state_dict(trained_aps.state_dict())
    assert circular_psnr_min(blur.eval(), x) < 70.0


def test_trained_and_untrained_circular_stability_float64():
    import copy
    trained = train_a_few_steps(make_aps("aps", "instance", num_downs=4, ngf=4), steps=2, size=16)
    for g in (make_aps("aps_bin5", "batch", num_downs=4, ngf=4), trained):
        g = copy.deepcopy(g).double().eval()
        assert circular_psnr_min(g, smooth_images(1, 16, dtype=torch.float64)) >= 200.0


def test_every_feature_is_an_exact_integer_roll_at_every_shift():
    """For input roll d, each tap at stride s is the unshifted tap rolled by (d + P - P') / s,
    P, P' = absolute sampling offsets from the phases: an integer for every d on the 8x8 grid."""
    g = make_aps("aps_bin5", "instance", num_downs=4, ngf=4).eval()
    x = smooth_images(1, 32)
    xs = torch.cat([torch.roll(x, s, (-2, -1)) for s in GRID])
    with torch.no_grad():
        f0, fs = g.features(x), g.features(xs)
        p0, ps = g.phases(x), g.phases(xs)

    def offsets(phases, level):  # absolute offset (rows, cols) of encoder level `level` (1-based)
        oy, ox = torch.zeros_like(phases[0]), torch.zeros_like(phases[0])
        for lvl, p in enumerate(phases[:level]):
            oy, ox = oy + (p // 2) * 2 ** lvl, ox + (p % 2) * 2 ** lvl
        return oy, ox

    non_multiple_shifts = 0
    for name, (f, stride) in f0.items():
        level = stride.bit_length() - 1  # stride 2**level
        (oy0, ox0), (oys, oxs) = offsets(p0, level), offsets(ps, level)
        for k, (dy, dx) in enumerate(GRID):
            ry, rx = dy + int(oy0[0]) - int(oys[k]), dx + int(ox0[0]) - int(oxs[k])
            assert ry % stride == 0 and rx % stride == 0
            assert ry // stride in (dy // stride, -(-dy // stride)) and rx // stride in (dx // stride, -(-dx // stride))
            non_multiple_shifts += (dy % stride or dx % stride) and (ry != dy or rx != dx)
            torch.testing.assert_close(fs[name][0][k], torch.roll(f[0], (ry // stride, rx // stride), (-2, -1)),
                                       rtol=1e-4, atol=1e-5, msg=f"{name} at shift {(dy, dx)}")
    assert non_multiple_shifts > 0  # the integer roll is not always dy / s rounded down


def test_feature_distance_is_zero_at_multiples_of_each_layer_stride():
    """The project metric (cosine distance to a roll by d / s; Fourier shift if fractional) is ~0
    for every layer at shifts that are multiples of its stride, and clearly not at 1-pixel
    shifts for the strided layers (APS aligns features to an integer grid, not by d / s)."""
    g = make_aps("aps", "batch", num_downs=4, ngf=4).eval()
    x = smooth_images(2, 32)
    shifts = [(0, 1), (1, 0), (2, 0), (0, 2), (2, 6), (4, 4), (8, 0), (0, 8), (8, 8), (16, 8)]
    res = feature_distance(g.features, x, shifts, max_shift=None)
    assert set(res.layers) == {"enc1", "enc2", "enc3", "enc4", "dec4", "dec3", "dec2", "out"}
    for name in res.layers:
        s = res.strides[name]
        for dy, dx in shifts:
            d = res.distance[name][dy, dx]
            if dy % s == 0 and dx % s == 0:
                assert d < 1e-9, (name, (dy, dx), d)
    assert res.distance["enc1"][0, 1] > 1e-3 and res.distance["enc2"][1, 0] > 1e-3


def test_gradients_reach_every_parameter():
    g = make_aps("aps_bin5", "instance", num_downs=4, ngf=4).train()
    x = smooth_images(2, 16)
    F.l1_loss(g(x), -x).backward()
    for name, p in g.named_parameters():
        assert p.grad is not None and torch.isfinite(p.grad).all() and p.grad.abs().sum() > 0, name


def test_phases_are_per_sample_and_deterministic():
    g = make_aps("aps", "instance", num_downs=4, ngf=4).eval()
    x = smooth_images(3, 16)
    with torch.no_grad():
        batched = g.phases(x)
        single = [g.phases(x[i:i + 1]) for i in range(3)]
        again = g.phases(x)
    assert len(batched) == 4 and all(p.shape == (3,) and p.dtype == torch.long for p in batched)
    for level, p in enumerate(batched):
        assert torch.equal(p, again[level])
        assert p.tolist() == [int(single[i][level]) for i in range(3)]
    with pytest.raises(ValueError, match="only defined for APS"):
        UNetGenerator(num_downs=3, ngf=2).phases(x)
    with torch.no_grad():  # an empty batch gives an empty batch, as the other generators (was an IndexError)
        assert g(x[:0]).shape == (0, 3, 16, 16)


def test_features_match_forward_and_output_range():
    g = make_aps("aps_bin5", "batch", num_downs=4, ngf=4).eval()
    x = smooth_images(1, 32) * 3
    with torch.no_grad():
        feats, y = g.features(x), g(x)
    torch.testing.assert_close(feats["out"][0], y)
    assert y.shape == x.shape and y.abs().max() <= 1.0
    for name, (f, stride) in feats.items():
        assert f.shape[-1] * stride == 32, name


def test_crop_protocol_is_measured_without_an_exactness_claim():
    """Non-circular crops change the content at the borders: APS gives no guarantee there.
    Only sanity is asserted (finite, and far below the circular protocol's ~exactness)."""
    g = make_aps("aps", "batch", num_downs=4, ngf=4).eval()
    x = smooth_images(1, 32)
    with torch.no_grad():
        crop = stability_crop(g, reflect_pad_source(x, 4), 32, shift_grid(4), max_db=1000.0)
    assert 0.0 < crop.mean_psnr < circular_psnr_min(g, x)


@pytest.mark.skipif(importlib.util.find_spec("pix2pix_aa.module") is None, reason="Pix2PixModule not present")
def test_lightning_module_trains_an_aps_generator(tmp_path, tiny_module, cpu_trainer):
    pytest.importorskip("pytorch_lightning")
    model = tiny_module({"num_downs": 4, "antialias": "aps_bin5"}, log_images_every_n_batches=0,
                        val_stability_images=0)
    g = model.generator
    before = g.decoder[0][1][0].weight.detach().clone()
    data = [{"input": smooth_images(1, 16, seed=i)[0], "target": smooth_images(1, 16, seed=9 + i)[0]}
            for i in range(4)]
    loader = torch.utils.data.DataLoader(data, batch_size=2)
    trainer = cpu_trainer(fast_dev_run=2, enable_checkpointing=False, default_root_dir=tmp_path)
    trainer.fit(model, train_dataloaders=loader)
    assert not torch.equal(before, model.generator.decoder[0][1][0].weight)
    assert circular_psnr_min(model.generator.eval(), smooth_images(1, 16)) >= 80.0
