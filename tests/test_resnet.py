"""ResNetGenerator: the reference resnet_9blocks / resnet_6blocks parameter counts, anti-aliasing
without new parameters, exact alignment of ConvBlurPool and APS with the strided reference
layers, exact circular equivariance with APS, and Bin-5 more stable than none untrained.
(Equality with a re-statement of the reference network: tests/test_reference.py.)"""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from pix2pix_aa.layers.padding import safe_pad
from pix2pix_aa.layers.polyphase import aps_conv_transpose2d
from pix2pix_aa.metrics import shift_grid, stability_circular
from pix2pix_aa.networks import ResNetGenerator, init_weights


def n_params(m: nn.Module) -> int:
    return sum(p.numel() for p in m.parameters())


def smooth(n: int = 2, size: int = 32, seed: int = 1) -> torch.Tensor:
    x = torch.rand(n, 3, size, size, generator=torch.Generator().manual_seed(seed)) * 2 - 1
    return F.avg_pool2d(safe_pad(x, (2, 2, 2, 2), "circular"), 5, 1)


@pytest.mark.parametrize("n_blocks,norm,expected", [
    (9, "batch", 11_383_427), (9, "instance", 11_378_179),  # the reference's resnet_9blocks
    (6, "batch", 7_841_411), (6, "instance", 7_837_699),    # resnet_6blocks: 3 blocks of 1,180,672 / 1,180,160 fewer
])
def test_reference_parameter_counts(n_blocks, norm, expected):
    assert n_params(ResNetGenerator(n_blocks=n_blocks, norm=norm)) == expected


@pytest.mark.parametrize("kwargs", [
    dict(antialias="bin5"), dict(antialias="kaiser7"), dict(antialias="tri3", antialias_mode="blur_conv"),
    dict(antialias="aps"), dict(antialias="aps_bin5"), dict(antialias=["none", "bin5"], upsample_antialias=False),
])
def test_antialiasing_adds_no_parameters(kwargs):
    base = ResNetGenerator(n_blocks=2, ngf=8)
    g = ResNetGenerator(n_blocks=2, ngf=8, **kwargs)
    assert n_params(g) == n_params(base)
    if kwargs.get("antialias_mode") != "blur_conv":  # blur_conv puts its blur before the conv
        assert g.state_dict().keys() == base.state_dict().keys()


def test_one_tap_blur_is_exactly_the_strided_reference_layers():
    """A 1-tap filter makes ConvBlurPool conv(stride 1) -> norm -> relu -> subsample: the strided
    conv exactly when the stride-1 conv's even samples are the strided conv's (alignment)."""
    torch.manual_seed(0)
    base = init_weights(ResNetGenerator(n_blocks=2, ngf=4), "kaiming").eval()
    g = ResNetGenerator(n_blocks=2, ngf=4, antialias=1).eval()
    g.load_state_dict(base.state_dict())
    x = smooth(2, 32)
    with torch.no_grad():
        assert base(x).std() > 0.05
        torch.testing.assert_close(g(x), base(x), rtol=0, atol=1e-6)


def test_aps_upsampling_at_phase_0_is_the_reference_transposed_conv():
    """APS-U with the ResNet's 3x3, stride-2, padding-1 kernel (output_padding 1) and zero
    boundary, at phase 0, is nn.ConvTranspose2d(3, 2, 1, output_padding=1)."""
    conv = nn.ConvTranspose2d(4, 3, 3, 2, 1, output_padding=1)
    y = torch.randn(2, 4, 5, 6)
    out = aps_conv_transpose2d(y, torch.zeros(2, dtype=torch.long), conv.weight, conv.bias, 2, 1, "zero")
    torch.testing.assert_close(out, conv(y), rtol=0, atol=1e-6)


@pytest.mark.parametrize("antialias", ["aps", "aps_bin5"])
@pytest.mark.parametrize("norm", ["batch", "instance"])
def test_aps_is_exactly_circularly_equivariant_at_every_shift(antialias, norm):
    """g(roll(x, s)) == roll(g(x), s) for all 63 nonzero shifts of the 8x8 grid, to float
    rounding (relative to the output's spread; the PSNR protocol agrees: >= 80 dB)."""
    torch.manual_seed(0)
    g = init_weights(ResNetGenerator(n_blocks=2, ngf=4, norm=norm, antialias=antialias), "kaiming").eval()
    x = smooth(2, 32)
    with torch.no_grad():
        y = g(x)
        worst = max(float((g(torch.roll(x, s, (-2, -1))) - torch.roll(y, s, (-2, -1))).abs().max())
                    for s in shift_grid(8) if s != (0, 0))
        res = stability_circular(g, x, shift_grid(8), max_db=1000.0)
    assert worst <= 1e-4 * float(y.std()), (worst, float(y.std()))
    assert float(res.per_image_psnr.min()) >= 80.0
    phases = g.phases(x)
    assert len(phases) == 2 and phases[0].shape == (2,)


def _shift_snr_db(g: nn.Module, x: torch.Tensor, shifts) -> float:
    """Output variance over the mean squared difference between g(roll(x)) and roll(g(x))."""
    with torch.no_grad():
        y = g(x)
        mse = torch.stack([((g(torch.roll(x, s, (-2, -1))) - torch.roll(y, s, (-2, -1))) ** 2).mean() for s in shifts])
    return float(10 * torch.log10(y.var() / mse.mean()))


def test_untrained_bin5_more_shift_equivariant_than_baseline():
    """Circular padding, instance norm, kaiming init (outputs of std ~0.6), 1-pixel shifts.
    Measured over seeds 0..2: baseline -2.0 / -2.9 / -0.9 dB, bin5 10.9 / 10.5 / 12.2 dB."""
    x = F.avg_pool2d(torch.rand(2, 3, 64, 64, generator=torch.Generator().manual_seed(1)) * 2 - 1, 5, 1, 2,
                     count_include_pad=False)
    db = {}
    for aa in ("none", "bin5"):
        torch.manual_seed(0)
        g = init_weights(ResNetGenerator(n_blocks=2, ngf=8, norm="instance", antialias=aa, pad_type="circular"),
                         "kaiming").eval()
        db[aa] = _shift_snr_db(g, x, [(0, 1), (1, 0), (1, 1)])
    assert db["bin5"] > db["none"] + 8, db


@pytest.mark.parametrize("kwargs", [dict(), dict(antialias="bin5"), dict(antialias="aps"),
                                    dict(upsample="bilinear", antialias="tri3")])
def test_output_shape_range_and_attributes(kwargs):
    g = ResNetGenerator(in_channels=1, out_channels=2, n_blocks=1, ngf=4, **kwargs).eval()
    assert (g.in_channels, g.out_channels, g.size_multiple, g.num_downs) == (1, 2, 4, 2)
    with torch.no_grad():
        y = g(torch.randn(2, 1, 24, 40) * 3)
    assert y.shape == (2, 2, 24, 40) and y.abs().max() <= 1.0


def test_features_are_named_with_strides_and_match_forward():
    g = ResNetGenerator(n_blocks=2, ngf=4, antialias="bin5").eval()
    x = torch.randn(1, 3, 32, 32)
    feats = g.features(x)
    assert list(feats) == ["stem", "enc1", "enc2", "res", "dec2", "dec1", "out"]
    for name, (f, stride) in feats.items():
        assert f.shape[-1] * stride == 32, name
    torch.testing.assert_close(feats["out"][0], g(x))


def test_pad_input_and_size_errors():
    assert ResNetGenerator(n_blocks=1, ngf=4, pad_input=True).eval()(torch.randn(1, 3, 30, 37)).shape == (1, 3, 30, 37)
    g = ResNetGenerator(n_blocks=1, ngf=4)
    with pytest.raises(ValueError, match=r"\(30, 32\) is not a multiple of 4 .*30 -> 28 or 32"):
        g(torch.randn(1, 3, 30, 32))
    with pytest.raises(ValueError, match=r"expects \(N, 3, H, W\)"):
        g(torch.randn(1, 1, 32, 32))


@pytest.mark.parametrize("kwargs,match", [
    (dict(antialias="gauss9"), "unknown antialias filter 'gauss9'"),
    (dict(norm="layer"), "unknown norm 'layer'"),
    (dict(n_blocks=-1), "n_blocks must be >= 0"),
    (dict(antialias="aps", pad_type="reflect"), "needs pad_type='circular'"),
    (dict(antialias="aps", upsample="nearest"), "APS-U transposed convs"),
    (dict(antialias=["aps", "aps"]), "applies to both downsamplings"),
    (dict(antialias=["bin5"]), "one value per level"),
    (dict(upsample_antialias=True), "needs an antialias filter"),
    (dict(pad_type="mirror"), "unknown pad_type 'mirror'"),
])
def test_bad_options_raise_one_line(kwargs, match):
    with pytest.raises(ValueError, match=match):
        ResNetGenerator(**{"n_blocks": 1, "ngf": 4, **kwargs})


def test_trains_a_step_and_gradients_reach_every_parameter():
    torch.manual_seed(0)
    g = ResNetGenerator(n_blocks=2, ngf=4, antialias="aps_bin5", dropout=0.5)
    x = smooth(2, 16)
    F.l1_loss(g(x), -x).backward()
    assert all(p.grad is not None and p.grad.abs().sum() > 0 for p in g.parameters())


def test_train_py_fits_a_resnet_generator(tmp_path, run_cli, write_tiny_config):
    """One epoch of the tiny config through train.py with a Bin-5 ResNet: start-up checks (channels,
    size multiple), training, validation stability and last.ckpt."""
    generator = {"class_path": "pix2pix_aa.networks.ResNetGenerator",
                 "init_args": {"n_blocks": 1, "ngf": 4, "antialias": "bin5"}}
    cfg = write_tiny_config(tmp_path, trainer__max_epochs=1, model__generator=generator)
    run_cli(tmp_path, ["fit", "--config", str(cfg)])
    assert list((tmp_path / "runs" / "tiny" / "version_0" / "checkpoints").glob("last.ckpt"))


def test_a_per_level_list_of_the_wrong_length_counts_downsamplings_not_num_downs():
    """The ResNet has no num_downs; the message named it."""
    from pix2pix_aa.networks import ResNetGenerator

    with pytest.raises(ValueError, match=r"antialias lists one value per level, outermost first: 2 values \(one per "
                                         r"downsampling"):
        ResNetGenerator(n_blocks=2, ngf=8, antialias=["bin5"])
