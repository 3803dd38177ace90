"""U-Net generator and PatchGAN discriminator: reference parity, shapes, errors, equivariance."""

import pytest
import torch
from torch import nn

from pix2pix_aa.networks import PatchGANDiscriminator, PixelDiscriminator, UNetGenerator, init_weights


def n_params(m: nn.Module) -> int:
    return sum(p.numel() for p in m.parameters())


# -- a compact re-statement of the reference recursive U-Net (pytorch-CycleGAN-and-pix2pix),
#    used only to check that our unrolled generator computes the same function ------------
class _RefBlock(nn.Module):
    def __init__(self, outer, inner, input_nc=None, sub=None, outermost=False, innermost=False, dropout=False):
        super().__init__()
        self.outermost = outermost
        input_nc = input_nc or outer
        downconv = nn.Conv2d(input_nc, inner, 4, 2, 1, bias=False)
        downrelu, uprelu = nn.LeakyReLU(0.2, True), nn.ReLU(True)
        if outermost:
            up = [uprelu, nn.ConvTranspose2d(inner * 2, outer, 4, 2, 1), nn.Tanh()]
            model = [downconv, sub] + up
        elif innermost:
            model = [downrelu, downconv, uprelu, nn.ConvTranspose2d(inner, outer, 4, 2, 1, bias=False),
                     nn.BatchNorm2d(outer)]
        else:
            model = [downrelu, downconv, nn.BatchNorm2d(inner), sub, uprelu,
                     nn.ConvTranspose2d(inner * 2, outer, 4, 2, 1, bias=False), nn.BatchNorm2d(outer)]
            model += [nn.Dropout(0.5)] if dropout else []
        self.model = nn.Sequential(*model)

    def forward(self, x):
        return self.model(x) if self.outermost else torch.cat([x, self.model(x)], 1)


def _ref_unet(num_downs, ngf):
    block = _RefBlock(ngf * 8, ngf * 8, innermost=True)
    for _ in range(num_downs - 5):
        block = _RefBlock(ngf * 8, ngf * 8, sub=block, dropout=True)
    block = _RefBlock(ngf * 4, ngf * 8, sub=block)
    block = _RefBlock(ngf * 2, ngf * 4, sub=block)
    block = _RefBlock(ngf, ngf * 2, sub=block)
    return _RefBlock(3, ngf, input_nc=3, sub=block, outermost=True)


@pytest.mark.parametrize("num_downs,expected", [(8, 54_413_955), (7, 41_828_995)])
def test_reference_parameter_counts(num_downs, expected):
    assert n_params(UNetGenerator(num_downs=num_downs)) == expected


@pytest.mark.parametrize("antialias", ["rect2", "tri3", "bin4", "bin5", 7])
@pytest.mark.parametrize("mode", ["conv_blur", "blur_conv"])
def test_antialiasing_adds_no_parameters(antialias, mode):
    assert n_params(UNetGenerator(antialias=antialias, antialias_mode=mode)) == 54_413_955
    assert n_params(PatchGANDiscriminator(antialias=antialias, antialias_mode=mode)) == 2_768_705


def test_discriminator_parameter_count_and_patch_shape():
    d = PatchGANDiscriminator()
    assert n_params(d) == 2_768_705
    assert d(torch.randn(1, 6, 256, 256)).shape == (1, 1, 30, 30)
    assert PatchGANDiscriminator(n_layers=2)(torch.randn(1, 6, 64, 64)).shape == (1, 1, 14, 14)
    assert PixelDiscriminator()(torch.randn(2, 6, 16, 16)).shape == (2, 1, 16, 16)


@pytest.mark.parametrize("num_downs", [6, 8])
def test_baseline_computes_the_reference_function(num_downs):
    """Same weights -> same output as the reference recursive U-Net (train mode, no dropout noise)."""
    torch.manual_seed(0)
    ref = _ref_unet(num_downs, ngf=8)
    ours = UNetGenerator(num_downs=num_downs, ngf=8, dropout=0.0)
    ref_tensors = list(ref.state_dict().values())
    ours_keys = [k for k in ours.state_dict() if k.startswith("encoder.")]
    for i in reversed(range(num_downs)):  # the reference nests: down params, inner block, up params
        ours_keys += [k for k in ours.state_dict() if k.startswith(f"decoder.{i}.")]
    assert len(ours_keys) == len(ref_tensors)
    ours.load_state_dict({k: v.clone() for k, v in zip(ours_keys, ref_tensors)})
    for m in ref.modules():  # the reference's dropout would make outputs random
        if isinstance(m, nn.Dropout):
            m.p = 0.0
    x = torch.randn(2, 3, 2 ** num_downs, 2 ** num_downs)
    torch.testing.assert_close(ours(x), ref(x), rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("shape,num_downs", [((1, 3, 256, 256), 8), ((1, 3, 128, 128), 7), ((1, 3, 256, 512), 8)])
@pytest.mark.parametrize("antialias", ["none", "bin5"])
def test_output_shape_and_range(shape, num_downs, antialias):
    g = UNetGenerator(num_downs=num_downs, ngf=4, antialias=antialias).eval()
    with torch.no_grad():
        y = g(torch.randn(shape) * 3)
    assert y.shape == shape
    assert y.abs().max() <= 1.0


def test_pad_input_option_pads_and_crops():
    g = UNetGenerator(num_downs=5, ngf=4, pad_input=True).eval()
    assert g(torch.randn(1, 3, 50, 70)).shape == (1, 3, 50, 70)


def test_bad_size_names_size_and_nearest_valid():
    g = UNetGenerator(num_downs=5, ngf=4)
    with pytest.raises(ValueError, match=r"\(50, 64\).*multiple of 2\*\*num_downs = 32.*50 -> 32 or 64"):
        g(torch.randn(1, 3, 50, 64))
    with pytest.raises(ValueError, match=r"expects \(N, 3, H, W\)"):
        g(torch.randn(1, 1, 64, 64))


@pytest.mark.parametrize("kwargs,match", [
    (dict(antialias="gauss9"), "unknown antialias filter 'gauss9'; valid: 'none', 'rect2'"),
    (dict(antialias=9), "size must be 1..7"),
    (dict(norm="layer"), "unknown norm 'layer'"),
    (dict(antialias_mode="fast"), "unknown antialias_mode 'fast'"),
    (dict(pad_type="mirror"), "unknown pad_type 'mirror'"),
    (dict(upsample="pixelshuffle"), "unknown upsample"),
    (dict(num_downs=1), "num_downs must be >= 2"),
    (dict(upsample_antialias=True), "needs an antialias filter"),
    # Accepted and ignored before: nothing reads them in these networks.
    (dict(aps_norm="l1"), r"aps_norm='l1' applies to APS only"),
    (dict(blur_pad_type="circular"), r"blur_pad_type='circular' pads the blurs, and this network has none"),
])
def test_unknown_options_raise_clear_errors(kwargs, match):
    with pytest.raises(ValueError, match=match):
        UNetGenerator(**kwargs)


@pytest.mark.parametrize("kwargs,match", [
    (dict(antialias=["bin5"] * 3), "the discriminator takes one antialias filter for all its strided convs"),
    (dict(antialias="aps"), "adaptive polyphase sampling is for the generators"),
    (dict(blur_pad_type="circular"), "pads the blurs, and this discriminator has none"),
])
def test_discriminator_options_it_cannot_use_are_named(kwargs, match):
    with pytest.raises(ValueError, match=match):
        PatchGANDiscriminator(**kwargs)


def test_features_are_named_with_strides_and_match_forward():
    g = UNetGenerator(num_downs=5, ngf=4, antialias="tri3").eval()
    x = torch.randn(1, 3, 64, 64)
    feats = g.features(x)
    assert [k for k in feats][:5] == ["enc1", "enc2", "enc3", "enc4", "enc5"]
    for name, (f, stride) in feats.items():
        assert f.shape[-1] * stride == 64, name
    torch.testing.assert_close(feats["out"][0], g(x))


def _circular_stability_db(g: nn.Module, x: torch.Tensor, shifts) -> float:
    with torch.no_grad():
        y = g(x)
        mse = [((g(torch.roll(x, s, (-2, -1))) - torch.roll(y, s, (-2, -1))) ** 2).mean() for s in shifts]
    return float(10 * torch.log10(4.0 / torch.stack(mse).mean()))


def test_untrained_bin5_more_shift_equivariant_than_baseline():
    """Measured on this config: baseline ~61 dB, bin5 ~93 dB (3 seeds); assert a 15 dB margin."""
    x = torch.nn.functional.avg_pool2d(torch.rand(2, 3, 64, 64, generator=torch.Generator().manual_seed(1)) * 2 - 1,
                                       5, 1, 2, count_include_pad=False)
    db = {}
    for aa in ("none", "bin5"):
        torch.manual_seed(0)
        g = init_weights(UNetGenerator(num_downs=5, ngf=8, antialias=aa, pad_type="circular")).eval()
        db[aa] = _circular_stability_db(g, x, [(0, 1), (1, 0), (1, 1)])
    assert db["bin5"] > db["none"] + 15, db


def test_gradcheck_float64_tiny():
    torch.manual_seed(0)
    g = UNetGenerator(num_downs=2, ngf=2, norm="none", dropout=0.0, antialias="tri3").double().eval()
    x = torch.randn(1, 3, 4, 4, dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradcheck(g, (x,), eps=1e-6, atol=1e-5)


@pytest.mark.filterwarnings("ignore::torch.jit.TracerWarning")
@pytest.mark.parametrize("antialias", ["none", "bin5"])
def test_trace_and_export(antialias):
    g = UNetGenerator(num_downs=4, ngf=4, antialias=antialias).eval()
    x = torch.randn(1, 3, 32, 32)
    traced = torch.jit.trace(g, x)
    torch.testing.assert_close(traced(x), g(x))
    exported = torch.export.export(g, (x,))
    torch.testing.assert_close(exported.module()(x), g(x))


@pytest.mark.parametrize("init_type", ["normal", "xavier", "kaiming", "orthogonal"])
def test_init_weights(init_type):
    torch.manual_seed(0)
    g = init_weights(UNetGenerator(num_downs=3, ngf=4), init_type)
    conv = g.encoder[1][0].weight
    assert torch.isfinite(conv).all() and conv.std() > 0
    if init_type == "normal":
        assert abs(conv.std().item() - 0.02) < 0.005
    with pytest.raises(ValueError, match="unknown init_type"):
        init_weights(g, "uniform")


@pytest.mark.parametrize("design", [{}, {"antialias": "bin5"}, {"antialias": "kaiser9_c0.17_w0.16"}])
def test_an_images_output_does_not_depend_on_its_batch(design):
    # Evaluation batches shifted copies of an image; with one blur route for every input size
    # the blurred generators are as batch-independent as the baseline: bit for bit (eval mode).
    torch.manual_seed(0)
    g = init_weights(UNetGenerator(num_downs=5, ngf=8, **design)).eval()
    x = torch.randn(5, 3, 64, 64)
    with torch.inference_mode():
        whole = g(x)
        assert all(torch.equal(g(x[i:i + 1]), whole[i:i + 1]) for i in range(5))
        assert torch.equal(g(x[1:4]), whole[1:4])


def test_a_wrong_input_size_names_each_size_once_with_only_valid_neighbours():
    g = UNetGenerator(num_downs=3, ngf=4)
    with pytest.raises(ValueError, match=r"nearest valid: 5 -> 8\. "):  # 0 is not a valid size
        g(torch.zeros(1, 3, 5, 5))
    with pytest.raises(ValueError, match=r"nearest valid: 12 -> 8 or 16; 20 -> 16 or 24\. "):
        g(torch.zeros(1, 3, 12, 20))
