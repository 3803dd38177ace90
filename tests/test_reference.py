"""Reference pix2pix / CycleGAN state_dicts: recognised from their keys, mapped onto our networks
exactly (outputs equal to a re-statement of the reference networks), one-line errors otherwise.

The re-statement below follows the published design of junyanz/pytorch-CycleGAN-and-pix2pix
``models/networks.py`` (UnetSkipConnectionBlock, ResnetBlock / ResnetGenerator,
NLayerDiscriminator, PixelDiscriminator): same module order (hence the same state_dict keys),
same in-place activations. It lives in this test only.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import torch
from torch import nn

from pix2pix_aa.networks import PatchGANDiscriminator, PixelDiscriminator, ResNetGenerator, UNetGenerator
from pix2pix_aa.reference import (
    detect_reference_layout,
    is_reference_state_dict,
    load_reference_generator,
    map_reference_state_dict,
)


# -- a re-statement of the reference networks ----------------------------------------------------
def _norm(kind: str, old_instance: bool = False):
    """The reference's norm layers: batch (affine, running stats), instance (no affine; running
    stats only in files from the versions that tracked them), none (identity)."""
    if kind == "batch":
        return lambda c: nn.BatchNorm2d(c, affine=True)
    if kind == "instance":
        return lambda c: nn.InstanceNorm2d(c, affine=False, track_running_stats=old_instance)
    return lambda c: nn.Identity()


class RefSkip(nn.Module):
    """One U-Net level: down (lrelu, conv, norm) -> inner -> up (relu, convT, norm), skip by concat."""

    def __init__(self, outer, inner, input_nc=None, sub=None, outermost=False, innermost=False,
                 norm="batch", dropout=False, old_instance=False):
        super().__init__()
        self.outermost = outermost
        bias = norm == "instance"  # the reference: a bias only with instance norm
        make = _norm(norm, old_instance)
        input_nc = outer if input_nc is None else input_nc
        down_conv = nn.Conv2d(input_nc, inner, 4, 2, 1, bias=bias)
        if outermost:
            layers = [down_conv, sub, nn.ReLU(True), nn.ConvTranspose2d(inner * 2, outer, 4, 2, 1), nn.Tanh()]
        elif innermost:
            layers = [nn.LeakyReLU(0.2, True), down_conv, nn.ReLU(True),
                      nn.ConvTranspose2d(inner, outer, 4, 2, 1, bias=bias), make(outer)]
        else:
            layers = [nn.LeakyReLU(0.2, True), down_conv, make(inner), sub, nn.ReLU(True),
                      nn.ConvTranspose2d(inner * 2, outer, 4, 2, 1, bias=bias), make(outer)]
            if dropout:
                layers.append(nn.Dropout(0.5))
        self.model = nn.Sequential(*layers)

    def forward(self, x):
        return self.model(x) if self.outermost else torch.cat([x, self.model(x)], 1)


class RefUnet(nn.Module):
    def __init__(self, input_nc, output_nc, num_downs, ngf, norm="batch", dropout=False, old_instance=False):
        super().__init__()
        kw = dict(norm=norm, old_instance=old_instance)
        block = RefSkip(ngf * 8, ngf * 8, innermost=True, **kw)
        for _ in range(num_downs - 5):
            block = RefSkip(ngf * 8, ngf * 8, sub=block, dropout=dropout, **kw)
        for outer, inner in ((4, 8), (2, 4), (1, 2)):
            block = RefSkip(ngf * outer, ngf * inner, sub=block, **kw)
        self.model = RefSkip(output_nc, ngf, input_nc=input_nc, sub=block, outermost=True, **kw)

    def forward(self, x):
        return self.model(x)


class RefResBlock(nn.Module):
    def __init__(self, dim, norm, dropout, bias, old_instance=False):
        super().__init__()
        make = _norm(norm, old_instance)
        layers = [nn.ReflectionPad2d(1), nn.Conv2d(dim, dim, 3, bias=bias), make(dim), nn.ReLU(True)]
        if dropout:
            layers.append(nn.Dropout(0.5))
        layers += [nn.ReflectionPad2d(1), nn.Conv2d(dim, dim, 3, bias=bias), make(dim)]
        self.conv_block = nn.Sequential(*layers)

    def forward(self, x):
        return x + self.conv_block(x)


class RefResnet(nn.Module):
    def __init__(self, input_nc, output_nc, ngf, norm="batch", dropout=False, n_blocks=9, old_instance=False):
        super().__init__()
        bias = norm == "instance"
        make = _norm(norm, old_instance)
        layers = [nn.ReflectionPad2d(3), nn.Conv2d(input_nc, ngf, 7, bias=bias), make(ngf), nn.ReLU(True)]
        for m in (1, 2):
            layers += [nn.Conv2d(ngf * m, ngf * m * 2, 3, 2, 1, bias=bias), make(ngf * m * 2), nn.ReLU(True)]
        layers += [RefResBlock(ngf * 4, norm, dropout, bias, old_instance) for _ in range(n_blocks)]
        for m in (4, 2):
            layers += [nn.ConvTranspose2d(ngf * m, ngf * m // 2, 3, 2, 1, output_padding=1, bias=bias),
                       make(ngf * m // 2), nn.ReLU(True)]
        layers += [nn.ReflectionPad2d(3), nn.Conv2d(ngf, output_nc, 7), nn.Tanh()]
        self.model = nn.Sequential(*layers)

    def forward(self, x):
        return self.model(x)


class RefNLayerD(nn.Module):
    def __init__(self, input_nc, ndf=64, n_layers=3, norm="batch"):
        super().__init__()
        bias = norm == "instance"
        make = _norm(norm)
        layers = [nn.Conv2d(input_nc, ndf, 4, 2, 1), nn.LeakyReLU(0.2, True)]
        mult = 1
        for n in range(1, n_layers):
            prev, mult = mult, min(2 ** n, 8)
            layers += [nn.Conv2d(ndf * prev, ndf * mult, 4, 2, 1, bias=bias), make(ndf * mult), nn.LeakyReLU(0.2, True)]
        prev, mult = mult, min(2 ** n_layers, 8)
        layers += [nn.Conv2d(ndf * prev, ndf * mult, 4, 1, 1, bias=bias), make(ndf * mult), nn.LeakyReLU(0.2, True),
                   nn.Conv2d(ndf * mult, 1, 4, 1, 1)]
        self.model = nn.Sequential(*layers)

    def forward(self, x):
        return self.model(x)


class RefPixelD(nn.Module):
    def __init__(self, input_nc, ndf=64, norm="batch"):
        super().__init__()
        bias = norm == "instance"
        self.net = nn.Sequential(nn.Conv2d(input_nc, ndf, 1), nn.LeakyReLU(0.2, True),
                                 nn.Conv2d(ndf, ndf * 2, 1, bias=bias), _norm(norm)(ndf * 2), nn.LeakyReLU(0.2, True),
                                 nn.Conv2d(ndf * 2, 1, 1, bias=bias))

    def forward(self, x):
        return self.net(x)


def randomise(net: nn.Module, seed: int = 0) -> nn.Module:
    """Random weights, biases and BatchNorm statistics (so every tensor's mapping is exercised)."""
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, t in net.state_dict().items():
            if name.endswith("num_batches_tracked"):
                t.fill_(7)
            elif name.endswith("running_var"):
                t.copy_(torch.rand(t.shape, generator=g) + 0.5)
            elif t.is_floating_point():
                scale = t[0].numel() ** -0.5 if t.dim() > 1 else 0.3  # ~unit activations, few saturated
                t.copy_(torch.randn(t.shape, generator=g) * scale)
    return net.eval()


def save(net: nn.Module, folder: Path, name: str = "latest_net_G.pth") -> Path:
    path = folder / name
    torch.save(net.state_dict(), path)
    return path


def image(size: int, channels: int = 3, seed: int = 1) -> torch.Tensor:
    return torch.rand(2, channels, size, size, generator=torch.Generator().manual_seed(seed)) * 2 - 1


def assert_same_outputs(ref: nn.Module, ours: nn.Module, x: torch.Tensor) -> None:
    with torch.no_grad():
        expected, got = ref(x.clone()), ours(x.clone())
    assert got.shape == expected.shape
    assert (got - expected).abs().max().item() <= 1e-5


# -- generators: recognised, mapped, same outputs ------------------------------------------------
@pytest.mark.parametrize("norm", ["batch", "instance", "none"])
@pytest.mark.parametrize("num_downs,netG", [(5, "unet_32"), (7, "unet_128")])
def test_unet_file_gives_the_reference_outputs(tmp_path, norm, num_downs, netG):
    ref = randomise(RefUnet(3, 2, num_downs, 2, norm=norm, dropout=True))
    gen, info = load_reference_generator(save(ref, tmp_path))
    assert isinstance(gen, UNetGenerator) and not gen.training
    assert (info["netG"], info["norm"], info["ngf"], info["input_nc"], info["output_nc"]) == (netG, norm, 2, 3, 2)
    assert info["dropout"] is True and info["dropout_from"] == "assumed"
    assert_same_outputs(ref, gen, image(2 ** num_downs))


def test_unet_256_is_recognised_by_name(tmp_path):
    ref = randomise(RefUnet(1, 3, 8, 1, norm="batch"))
    gen, info = load_reference_generator(save(ref, tmp_path), netG="unet_256", ngf=1, input_nc=1, output_nc=3)
    assert info["netG"] == "unet_256" and gen.num_downs == 8 and info["given"] == sorted(
        ["netG", "ngf", "input_nc", "output_nc"])
    assert_same_outputs(ref, gen, image(256, channels=1))


@pytest.mark.parametrize("norm", ["batch", "instance", "none"])
@pytest.mark.parametrize("dropout", [False, True])
def test_resnet_file_gives_the_reference_outputs(tmp_path, norm, dropout):
    ref = randomise(RefResnet(3, 3, 4, norm=norm, dropout=dropout, n_blocks=3))
    gen, info = load_reference_generator(save(ref, tmp_path))
    assert isinstance(gen, ResNetGenerator) and gen.n_blocks == 3
    assert (info["netG"], info["norm"], info["dropout"], info["dropout_from"]) == ("resnet_3blocks", norm, dropout,
                                                                                   "keys")
    assert any(isinstance(m, nn.Dropout) and m.p == 0.5 for m in gen.modules()) == dropout
    assert_same_outputs(ref, gen, image(32))


def test_resnet_9blocks_file_has_the_reference_parameter_count(tmp_path):
    ref = randomise(RefResnet(3, 3, 64, norm="batch", n_blocks=9))
    assert sum(p.numel() for p in ref.parameters()) == 11_383_427
    gen, info = load_reference_generator(save(ref, tmp_path), netG="resnet_9blocks", norm="batch")
    assert info["netG"] == "resnet_9blocks"
    assert sum(p.numel() for p in gen.parameters()) == 11_383_427
    assert_same_outputs(ref, gen, image(16)[:1])


def test_unet_dropout_is_read_from_train_opt_txt(tmp_path):
    ref = randomise(RefUnet(3, 3, 6, 2, norm="batch", dropout=False))
    (tmp_path / "train_opt.txt").write_text("----------------- Options ---------------\n"
                                            "               no_dropout: True          \t[default: False]\n"
                                            "                     netG: unet_64\n")
    gen, info = load_reference_generator(save(ref, tmp_path))
    assert (info["dropout"], info["dropout_from"]) == (False, "train_opt.txt")
    assert not any(isinstance(m, nn.Dropout) for m in gen.modules())
    _, info = load_reference_generator(tmp_path / "latest_net_G.pth", dropout=True)
    assert (info["dropout"], info["dropout_from"]) == (True, "given")


def test_old_instance_norm_statistics_are_dropped_as_the_reference_does(tmp_path):
    """Files from the versions whose instance norm tracked statistics: the reference's loader
    deletes them (its norm no longer tracks), so the function is instance norm without them."""
    old = randomise(RefResnet(3, 3, 4, norm="instance", n_blocks=2, old_instance=True))
    assert any(k.endswith("running_mean") for k in old.state_dict())
    current = RefResnet(3, 3, 4, norm="instance", n_blocks=2).eval()
    current.load_state_dict(old.state_dict(), strict=False)
    gen, info = load_reference_generator(save(old, tmp_path))
    assert info["norm"] == "instance" and any("dropped" in n for n in info["notes"])
    assert_same_outputs(current, gen, image(32))
    unet = randomise(RefUnet(3, 3, 5, 2, norm="instance", old_instance=True))
    assert detect_reference_layout(unet.state_dict()).norm == "instance"
    load_reference_generator(save(unet, tmp_path, "unet.pth"))


def test_dataparallel_prefix_is_stripped(tmp_path):
    ref = randomise(RefResnet(3, 3, 4, norm="batch", n_blocks=1))
    path = tmp_path / "dp.pth"
    torch.save({f"module.{k}": v for k, v in ref.state_dict().items()}, path)
    gen, _ = load_reference_generator(path)
    assert_same_outputs(ref, gen, image(16))


@pytest.mark.parametrize("antialias", ["bin5", "aps_bin5"])
@pytest.mark.parametrize("arch", ["unet", "resnet"])
def test_reference_weights_load_into_an_antialiased_generator(tmp_path, arch, antialias):
    ref = randomise(RefUnet(3, 3, 5, 2) if arch == "unet" else RefResnet(3, 3, 4, n_blocks=2))
    path = save(ref, tmp_path)
    base, _ = load_reference_generator(path)
    aa, info = load_reference_generator(path, antialias=antialias, options={"upsample_antialias": False})
    assert info["init_args"]["antialias"] == antialias and aa.is_aps == antialias.startswith("aps")
    base_params, aa_params = dict(base.named_parameters()), dict(aa.named_parameters())
    assert base_params.keys() == aa_params.keys()
    assert all(torch.equal(base_params[k], aa_params[k]) for k in base_params)
    with torch.no_grad():
        assert not torch.allclose(aa(image(32)), base(image(32)))


def test_loaded_generator_rebuilds_from_its_description(tmp_path):
    from pix2pix_aa.networks import __dict__ as networks

    ref = randomise(RefResnet(3, 3, 4, norm="instance", n_blocks=2))
    gen, info = load_reference_generator(save(ref, tmp_path), antialias="bin5")
    assert info["class_path"] == "pix2pix_aa.networks.ResNetGenerator"
    again = networks[info["class_path"].rsplit(".", 1)[1]](**info["init_args"])
    again.load_state_dict(gen.state_dict())


# -- one-line errors -----------------------------------------------------------------------------
def _one_line_error(fn, *args, **kwargs) -> str:
    with pytest.raises(ValueError) as err:
        fn(*args, **kwargs)
    message = str(err.value)
    assert "\n" not in message
    return message


def test_unknown_layouts_say_what_was_found_and_expected(tmp_path):
    path = tmp_path / "latest_net_G.pth"
    torch.save({"conv.weight": torch.zeros(2, 3, 3, 3)}, path)
    msg = _one_line_error(load_reference_generator, path)
    assert "found 1 entries ('conv.weight')" in msg and "expected a reference pix2pix state_dict" in msg
    assert str(path) in msg
    torch.save(UNetGenerator(num_downs=5, ngf=2).state_dict(), path)
    assert "looks like a pix2pix_aa state_dict" in _one_line_error(load_reference_generator, path)
    torch.save([1, 2], path)
    assert "not a state_dict of tensors" in _one_line_error(load_reference_generator, path)
    torch.save(RefNLayerD(6, 4).state_dict(), path)
    assert "discriminator, not a generator" in _one_line_error(load_reference_generator, path)
    assert not is_reference_state_dict({"conv.weight": torch.zeros(1)})


def test_given_options_that_contradict_the_file_are_refused(tmp_path):
    path = save(randomise(RefUnet(3, 3, 6, 2, norm="instance")), tmp_path)
    msg = _one_line_error(load_reference_generator, path, netG="unet_128", norm="batch")
    assert "--netG unet_128, --norm batch given, but the file holds a reference unet_64" in msg
    assert "norm=instance" in msg
    assert "unknown --netG 'unet'" in _one_line_error(load_reference_generator, path, netG="unet")
    assert "unknown --norm 'layer'" in _one_line_error(load_reference_generator, path, norm="layer")
    assert "--ngf 64 given" in _one_line_error(load_reference_generator, path, ngf=64)


@pytest.mark.parametrize("net,match", [
    (UNetGenerator(num_downs=5, ngf=4, dropout=0.0),
     r"'model.model.0.weight' \(encoder level 1 conv\) has shape \(2, 3, 4, 4\), the generator's "
     r"'encoder.0.0.weight' \(4, 3, 4, 4\)"),
    (UNetGenerator(num_downs=6, ngf=2), "has num_downs=6, the file's U-Net 5"),
    (UNetGenerator(num_downs=5, ngf=2, norm="instance"), "the file is unet_32, .*norm=batch"),
    (UNetGenerator(num_downs=5, ngf=2, upsample="nearest"), "reference weights need upsample='transpose'"),
    (UNetGenerator(num_downs=5, ngf=2, fullres_channels=2), "full-resolution path"),
    (ResNetGenerator(ngf=2), "is a ResNetGenerator, not a UNetGenerator"),
])
def test_a_network_of_other_options_is_refused_in_one_line(net, match):
    state = randomise(RefUnet(3, 3, 5, 2, norm="batch")).state_dict()
    msg = _one_line_error(map_reference_state_dict, state, net, "the generator")
    assert re.search(match, msg), msg


# -- discriminators and module.load_weights ------------------------------------------------------
@pytest.mark.parametrize("norm", ["batch", "instance", "none"])
@pytest.mark.parametrize("n_layers", [1, 3])
def test_nlayer_discriminator_maps_exactly(norm, n_layers):
    ref = randomise(RefNLayerD(6, 4, n_layers, norm))
    ours = PatchGANDiscriminator(6, 4, n_layers, norm).eval()
    layout = detect_reference_layout(ref.state_dict())
    assert (layout.kind, layout.depth, layout.width, layout.norm) == ("nlayers", n_layers, 4, norm)
    ours.load_state_dict(map_reference_state_dict(ref.state_dict(), ours))
    assert_same_outputs(ref, ours, image(32, channels=6))


def test_pixel_discriminator_maps_exactly():
    ref = randomise(RefPixelD(6, 4, "batch"))
    ours = PixelDiscriminator(6, 4, "batch").eval()
    ours.load_state_dict(map_reference_state_dict(ref.state_dict(), ours))
    assert_same_outputs(ref, ours, image(8, channels=6))


def test_module_weights_options_take_reference_files(tmp_path):
    """--model.generator_weights latest_net_G.pth into an anti-aliased generator,
    --model.discriminator_weights latest_net_D.pth into the PatchGAN: the same weights."""
    from pix2pix_aa.module import load_weights

    ref_g, ref_d = randomise(RefUnet(3, 3, 5, 2)), randomise(RefNLayerD(6, 2, 3))
    g = UNetGenerator(num_downs=5, ngf=2, antialias="bin5")
    d = PatchGANDiscriminator(6, 2, 3)
    load_weights(g, str(save(ref_g, tmp_path)), "generator")
    load_weights(d, str(save(ref_d, tmp_path, "latest_net_D.pth")), "discriminator")
    assert torch.equal(g.encoder[1][0].weight, ref_g.model.model[1].model[1].weight)
    assert_same_outputs(ref_d, d.eval(), image(64, channels=6))
    with pytest.raises(ValueError, match=r"model.generator_weights: .*has num_downs=6"):
        load_weights(UNetGenerator(num_downs=6, ngf=2), str(tmp_path / "latest_net_G.pth"), "generator")


# -- evaluate.py ---------------------------------------------------------------------------------
def test_evaluate_loads_a_reference_file_with_the_reference_flags(tmp_path):
    from pix2pix_aa.evaluation.checkpoints import CheckpointError, load_generator
    from pix2pix_aa.evaluation.cli import build_parser

    folder = tmp_path / "facades_pix2pix"
    folder.mkdir()
    ref = randomise(RefResnet(3, 3, 4, norm="instance", n_blocks=2))
    path = save(ref, folder, "latest_net_G.pth")
    args = build_parser().parse_args([str(path), "--netG", "resnet_2blocks", "--norm", "instance", "--ngf", "4",
                                      "--input-nc", "3", "--output-nc", "3"])
    reference = dict(netG=args.netG, norm=args.norm, ngf=args.ngf, input_nc=args.input_nc, output_nc=args.output_nc)
    loaded = load_generator(path, reference=reference)
    assert loaded.label == "facades_pix2pix/latest_net_G" and loaded.hparams["generator"]["n_blocks"] == 2
    assert loaded.antialias == "none" and loaded.datamodule_hparams == {}
    assert_same_outputs(ref, loaded.generator, image(16))
    torch.save(RefResnet(3, 3, 4, n_blocks=2).state_dict(), folder / "5_net_G.pth")
    assert load_generator(folder / "5_net_G.pth").epoch == 5
    with pytest.raises(CheckpointError, match="--ngf 8 given"):
        load_generator(path, reference={"ngf": 8})
