"""Tiled inference: tile offsets on the generator's grid, blending weights, tiled == whole away from
seams (exactly, beyond the measured receptive field), and ``predict --data.tile``."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image
from torch import nn

from pix2pix_aa.callbacks import ImageWriter
from pix2pix_aa.data import Pix2PixDataModule
from pix2pix_aa.networks import UNetGenerator
from pix2pix_aa.tiling import ramp_weights, resolve_overlap, tile_starts, tiled_generate


# --- geometry ---------------------------------------------------------------------------------
@pytest.mark.parametrize("length, tile, overlap, expected", [
    (640, 256, 128, [0, 128, 256, 384]),
    (512, 256, 0, [0, 256]),
    (96, 32, 16, [0, 16, 32, 48, 64]),
    (80, 32, 16, [0, 16, 32, 48]),
    (72, 32, 8, [0, 24, 40]),  # the last tile ends at 72: its overlap with the previous is longer
    (24, 32, 16, [0]),  # one tile, as long as the axis
])
def test_tile_starts_cover_the_axis_on_the_grid(length, tile, overlap, expected):
    starts = tile_starts(length, tile, overlap)
    assert starts == expected
    covered = np.zeros(length, bool)
    for s in starts:
        covered[s:s + min(tile, length)] = True
    assert covered.all()


def test_ramps_sum_to_one_across_a_regular_overlap():
    a, b = ramp_weights(0, 32, 56, 8), ramp_weights(24, 32, 56, 8)
    assert torch.equal(a[:24], torch.ones(24)) and torch.equal(b[8:], torch.ones(24))  # image borders: weight 1
    torch.testing.assert_close(a[24:] + b[:8], torch.ones(8), rtol=0, atol=1e-7)
    assert (a > 0).all() and (b > 0).all()


def test_overlap_default_and_options_off_the_grid_are_refused():
    assert resolve_overlap(512, None, 256) == 256 and resolve_overlap(256, None, 256) == 0
    assert resolve_overlap(64, None, 8) == 32
    with pytest.raises(ValueError, match=r"data\.tile=300 is not a multiple of the generator's size multiple 256 "
                                         r"\(2\*\*num_downs: tile offsets must lie on its grid\); use 256 \(no "
                                         r"overlap: hard seams\) or 512$"):
        resolve_overlap(300, None, 256)
    # it advised "use 128" alone: a tile with no overlap (hard seams), said nowhere
    with pytest.raises(ValueError, match=r"data\.tile=100 .*; use 128 \(no overlap: hard seams\) or 256$"):
        resolve_overlap(100, None, 128)
    with pytest.raises(ValueError, match=r"data\.tile=600 .*; use 512 or 768$"):
        resolve_overlap(600, None, 256)
    with pytest.raises(ValueError, match=r"data\.tile_overlap=100 is not a multiple .* 256 .*; use 0 or 256"):
        resolve_overlap(512, 100, 256)
    with pytest.raises(ValueError, match=r"data\.tile_overlap=64 is not a multiple .* 128 .*; use 0$"):
        resolve_overlap(128, 64, 128)  # it advised "0 or 128", and 128 is no overlap of a 128 tile
    with pytest.raises(ValueError, match=r"data\.tile_overlap=512 must be smaller than data\.tile=512"):
        resolve_overlap(512, 512, 256)
    with pytest.raises(ValueError, match=r"input of size 20x24 \(HxW\) is not a multiple of 8; pad it first"):
        tiled_generate(nn.Identity(), torch.zeros(1, 3, 20, 24), 16, 8, multiple=8)
    # A negative overlap failed inside torch ("upper bound and lower bound inconsistent with step
    # sign"); tile 0 was advised "use 16 or 0".
    with pytest.raises(ValueError, match=r"data\.tile_overlap=-16 must be 0 or more"):
        tiled_generate(nn.Identity(), torch.zeros(1, 3, 64, 64), 32, -16, multiple=16)
    with pytest.raises(ValueError,
                       match=r"data\.tile=0 is not a multiple .* 16 .*; use 16 \(no overlap: hard seams\) or 32$"):
        resolve_overlap(0, None, 16)


# --- tiled against whole ----------------------------------------------------------------------
class _Conv(nn.Module):
    """A one-layer 'generator' of known receptive field (kernel k: radius k // 2), zero padding."""

    def __init__(self, k: int, seed: int = 0) -> None:
        super().__init__()
        torch.manual_seed(seed)
        self.conv = nn.Conv2d(3, 3, k, padding=k // 2)
        self.size_multiple = 8

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.conv(x)


def _seam_distance(h: int, w: int, tile: int, overlap: int) -> torch.Tensor:
    """(H, W): for each pixel, the smallest distance to an edge *inside the image* of any tile
    that covers it (tiles' edges on the image border are the whole image's edges too)."""
    far = float(h + w)
    dist = torch.full((h, w), far)
    th, tw = min(tile, h), min(tile, w)

    def axis(length: int, start: int, size: int) -> torch.Tensor:
        i = torch.arange(size, dtype=torch.float32)
        d = torch.full((size,), far)
        if start > 0:
            d = torch.minimum(d, i)
        if start + size < length:
            d = torch.minimum(d, size - 1 - i)
        return d

    for y0 in tile_starts(h, tile, overlap):
        for x0 in tile_starts(w, tile, overlap):
            d = torch.minimum(axis(h, y0, th)[:, None], axis(w, x0, tw)[None, :])
            dist[y0:y0 + th, x0:x0 + tw] = torch.minimum(dist[y0:y0 + th, x0:x0 + tw], d)
    return dist


def _receptive_radius(g: nn.Module, m: int, size: int = 160) -> int:
    """The largest distance from an output pixel to an input pixel it depends on, measured by
    autograd at every phase of the grid (the layers' padding included)."""
    radius = 0
    for p in range(m):
        x = torch.randn(1, g.in_channels if hasattr(g, "in_channels") else 3, size, size, requires_grad=True)
        c = size // 2 + p
        g(x)[0, :, c, c].sum().backward()
        rows = (x.grad[0].abs().sum(0).sum(1) > 0).nonzero().flatten()
        radius = max(radius, int(c - rows.min()), int(rows.max() - c))
    return radius


def test_a_pointwise_generator_tiles_exactly_everywhere():
    g = _Conv(1)
    x = torch.randn(2, 3, 40, 56)
    with torch.no_grad():
        torch.testing.assert_close(tiled_generate(g, x, 16, 8), g(x), rtol=0, atol=1e-6)


def test_a_3x3_conv_agrees_beyond_one_pixel_from_the_seams_and_differs_on_them():
    g = _Conv(3)
    x = torch.randn(1, 3, 48, 64)
    with torch.no_grad():
        diff = (tiled_generate(g, x, 24, 8) - g(x)).abs().amax(1)[0]
    dist = _seam_distance(48, 64, 24, 8)
    assert diff[dist >= 1].max() < 1e-6
    assert diff[dist < 1].max() > 1e-3, "the zero padding at tile edges must show on the seams"


@pytest.mark.parametrize("antialias", ["none", "bin5"])
def test_a_tiny_unet_agrees_exactly_beyond_its_receptive_field_from_the_seams(antialias):
    torch.manual_seed(0)
    g = UNetGenerator(num_downs=3, ngf=4, dropout=0.0, antialias=antialias).eval()
    with torch.no_grad():
        for p in g.parameters():  # no trained weights: make the outputs depend on the input visibly
            p.normal_(0, 0.3)
    radius = _receptive_radius(g, g.size_multiple)  # measured: 21 (none), 49 (bin5: the blurs widen it)
    assert g.size_multiple < radius < 64
    h, w = 384, 256
    x = torch.randn(1, 3, h, w)
    with torch.no_grad():
        whole = g(x)
        diff = (tiled_generate(g, x, 128, 64) - whole).abs().amax(1)[0]
    far = _seam_distance(h, w, 128, 64) > radius
    assert far.float().mean() > 0.1
    assert diff[far].max() < 1e-5
    assert diff.max() > 1e-4  # near the seams they do differ: the comparison is not vacuous


def test_tiles_off_the_grid_would_disagree_even_in_their_interior():
    torch.manual_seed(0)
    g = UNetGenerator(num_downs=3, ngf=4, dropout=0.0).eval()
    with torch.no_grad():
        for p in g.parameters():
            p.normal_(0, 0.3)
        x = torch.randn(1, 3, 160, 160)
        whole = g(x)
        inner = slice(32, 96)  # beyond the receptive field (16) from the 128-pixel crops' edges
        for offset, agrees in ((8, True), (4, False)):
            crop = g(x[..., offset:offset + 128, offset:offset + 128])
            d = (crop[..., inner, inner] - whole[..., offset:offset + 128, offset:offset + 128][..., inner, inner])
            assert (d.abs().max() < 1e-5) == agrees, (offset, d.abs().max())


# --- predict --data.tile ----------------------------------------------------------------------
@pytest.fixture
def predict(tiny_module, cpu_trainer):
    """predict(tmp_path, out, **data): the seeded tiny module's predictions of ``tmp_path/in``, read from ``out``."""

    def run(tmp_path: Path, out: Path, **data) -> dict[str, np.ndarray]:
        dm = Pix2PixDataModule(data_dir=str(tmp_path / "unused"), dataset="aligned", num_workers=0,
                               predict_dir=str(tmp_path / "in"), **data)
        trainer = cpu_trainer(default_root_dir=str(tmp_path), callbacks=[ImageWriter(str(out))])
        trainer.predict(tiny_module({"dropout": 0.0}, seed=0), datamodule=dm, return_predictions=False)
        return {p.name: np.asarray(Image.open(p), dtype=np.int16) for p in sorted(out.iterdir())}

    return run


def test_predict_with_tiles_writes_each_input_at_its_size_close_to_the_whole_image(tmp_path, predict):
    (tmp_path / "in").mkdir()
    Image.fromarray(np.random.default_rng(0).integers(0, 256, (100, 150, 3), dtype=np.uint8)).save(
        tmp_path / "in" / "big.png")
    whole = predict(tmp_path, tmp_path / "whole")
    tiled = predict(tmp_path, tmp_path / "tiled", tile=64, tile_overlap=32)
    one_tile = predict(tmp_path, tmp_path / "one", tile=256)
    assert whole["big_png.png"].shape == tiled["big_png.png"].shape == (100, 150, 3)
    assert np.array_equal(one_tile["big_png.png"], whole["big_png.png"])  # a tile the image's size: the same
    assert np.abs(tiled["big_png.png"] - whole["big_png.png"]).mean() < 2  # 8-bit levels


def test_predict_refuses_a_tile_off_the_generators_grid_at_start_up(tmp_path, predict):
    (tmp_path / "in").mkdir()
    Image.fromarray(np.zeros((16, 16, 3), np.uint8)).save(tmp_path / "in" / "x.png")
    with pytest.raises(ValueError, match=r"data\.tile=60 is not a multiple of the generator's size multiple 8"):
        predict(tmp_path, tmp_path / "out", tile=60)
    assert not (tmp_path / "out").exists()


def test_tile_options_are_checked_when_the_data_module_is_built():
    with pytest.raises(ValueError, match=r"tile_overlap=8 needs tile \(--data\.tile N\)"):
        Pix2PixDataModule(tile_overlap=8)
    with pytest.raises(ValueError, match=r"tile_overlap \(64\) must be smaller than tile \(64\)"):
        Pix2PixDataModule(tile=64, tile_overlap=64)
    with pytest.raises(ValueError, match=r"data\.tile must be an integer >= 1 \(or unset\), got 0"):
        Pix2PixDataModule(tile=0)


def test_predict_decodes_an_input_above_pillows_pixel_limit(tmp_path, tiny_module, cpu_trainer, monkeypatch):
    """A very large input (a 180-megapixel PNG met Pillow's DecompressionBombError) is what
    --data.tile is for: predict decodes the files it is given whatever their size. The limit is
    lowered here so that a 150x100 file stands for one (no 180 MP file written)."""
    from PIL import Image as PILImage

    from pix2pix_aa.data.image_io import decode_image

    (tmp_path / "in").mkdir()
    Image.fromarray(np.random.default_rng(0).integers(0, 256, (100, 150, 3), dtype=np.uint8)).save(
        tmp_path / "in" / "big.png")
    monkeypatch.setattr(PILImage, "MAX_IMAGE_PIXELS", 1000)  # 150 * 100 > 2 * 1000: a "bomb" to Pillow
    dm = Pix2PixDataModule(data_dir=str(tmp_path / "unused"), dataset="aligned", num_workers=0,
                           predict_dir=str(tmp_path / "in"), tile=64, tile_overlap=32)
    trainer = cpu_trainer(default_root_dir=str(tmp_path), callbacks=[ImageWriter(str(tmp_path / "out"))])
    trainer.predict(tiny_module({"dropout": 0.0}, seed=0), datamodule=dm, return_predictions=False)
    assert PILImage.MAX_IMAGE_PIXELS == 1000  # the limit is lifted only while a predict input is read
    assert decode_image(tmp_path / "out" / "big_png.png", any_size=True).shape == (3, 100, 150)
    # Elsewhere (training and evaluation sets) one line with the pixel count and the option.
    with pytest.raises(ValueError, match=r"big\.png: Image size \(15000 pixels\) exceeds limit of 2000 pixels.*"
                                         r"--data\.predict_dir, with --data\.tile N") as info:
        decode_image(tmp_path / "in" / "big.png")
    assert "\n" not in str(info.value)


def test_instance_norm_tiles_would_differ_everywhere_so_tiling_is_refused(tmp_path, tiny_module, cpu_trainer):
    """Instance norm normalises each input by its own statistics: tiles of such a generator are
    normalised by the tile's, and the output differed from the whole image everywhere (up to 24/255
    in a trained model), silently. Tiling it is refused, at predict's start-up before any image."""
    torch.manual_seed(0)
    g = UNetGenerator(num_downs=3, ngf=4, dropout=0.0, norm="instance").eval()
    x = torch.randn(1, 3, 384, 256) + torch.linspace(-2, 2, 256)  # statistics that change across the image
    with torch.no_grad():
        whole = g(x)
        pieces = [g(x[..., y:y + 128, :]) for y in (0, 128, 256)]  # what a tiled pass would compute
    # Rows 40-88 lie beyond the receptive field (21) from the seam at 128: a batch-norm U-Net's tiles
    # agree there exactly (test above); with instance norm almost every pixel differs.
    interior = (torch.cat(pieces, -2) - whole)[..., 40:88, :].abs()
    assert (interior > 1e-4).float().mean() > 0.9 and interior.mean() > 1e-3
    with pytest.raises(ValueError, match=r"data\.tile: the generator normalises with instance norm \(\d+ layers, "
                                         r"e\.g\. encoder\..*predict whole images \(without --data\.tile\)"):
        tiled_generate(g, x, 128, 64)
    assert tiled_generate(UNetGenerator(num_downs=3, ngf=4, norm="batch").eval(), x, 128, 64).shape == whole.shape
    (tmp_path / "in").mkdir()
    Image.fromarray(np.zeros((16, 16, 3), np.uint8)).save(tmp_path / "in" / "x.png")
    dm = Pix2PixDataModule(data_dir=str(tmp_path / "unused"), dataset="aligned", num_workers=0,
                           predict_dir=str(tmp_path / "in"), tile=16)
    trainer = cpu_trainer(default_root_dir=str(tmp_path), callbacks=[ImageWriter(str(tmp_path / "out"))])
    with pytest.raises(ValueError, match=r"data\.tile: the generator normalises with instance norm"):
        trainer.predict(tiny_module({"norm": "instance"}, seed=0), datamodule=dm, return_predictions=False)
    assert not (tmp_path / "out").exists()


def test_a_tile_of_one_grid_step_says_its_tiles_meet_at_hard_seams(tmp_path, predict, capsys):
    """A tile of one grid step (`--data.tile 128` on a 128-px grid, what the refusal of 100
    suggested) defaulted to no overlap, hard seams, without a word."""
    (tmp_path / "in").mkdir()
    Image.fromarray(np.zeros((20, 20, 3), np.uint8)).save(tmp_path / "in" / "x.png")
    capsys.readouterr()
    predict(tmp_path, tmp_path / "out", tile=8)
    assert ("[pix2pix_aa] data.tile=8: no overlap (half a tile, rounded down to the generator's grid of 8 px, is 0): "
            "neighbouring tiles meet at hard seams; --data.tile 16 or more blends them") in capsys.readouterr().err
    predict(tmp_path, tmp_path / "out16", tile=16)  # an overlap of 8: nothing to say
    predict(tmp_path, tmp_path / "out0", tile=8, tile_overlap=0)  # asked for: nothing to say
    assert "hard seams" not in capsys.readouterr().err
