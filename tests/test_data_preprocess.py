"""``preprocess`` (the reference pix2pix's choices) and ``no_flip``: sizes, exact pixels, A/B kept
aligned, evaluation deterministic, batching and generator checks, non-square fit/test/predict."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import pytorch_lightning as pl
import torch
from PIL import Image

from pix2pix_aa.callbacks import ImageWriter
from pix2pix_aa.data import AlignedDataset, Pix2PixDataModule
from pix2pix_aa.data.transforms import PREPROCESS, network_size
from pix2pix_aa.module import Pix2PixModule


def _noise(h: int, w: int, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, size=(h, w, 3), dtype=np.uint8)


def _write_pair(path: Path, h: int, w: int, seed: int = 0) -> np.ndarray:
    """An A|B file with B = 255 - A (each half w x h); returns A."""
    a = _noise(h, w, seed)
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(np.concatenate([a, 255 - a], axis=1)).save(path)
    return a


def _unit(a: np.ndarray) -> torch.Tensor:
    return torch.from_numpy(a).permute(2, 0, 1).float() / 127.5 - 1


def _u8(x: torch.Tensor) -> bytes:
    """Float [-1, 1] -> the uint8 bytes it came from (exact for unresized pixels)."""
    return ((x + 1) * 127.5).round().to(torch.uint8).numpy().tobytes()


def _ds(root: Path, split: str = "train", **kw) -> AlignedDataset:
    args = dict(direction="AtoB", load_size=64, crop_size=32)
    args.update(kw)
    return AlignedDataset(root, split, **args)


# --- sizes: the reference's formulas ----------------------------------------------------------
@pytest.mark.parametrize("preprocess, train, expected", [
    ("resize_and_crop", True, (32, 32)), ("resize_and_crop", False, (32, 32)),
    ("crop", True, (32, 32)), ("crop", False, (32, 32)),
    # width -> load_size (train) / crop_size (eval), height int(max(width * 60 / 100, crop_size))
    ("scale_width", True, (64, 38)), ("scale_width", False, (32, 32)),
    ("scale_width_and_crop", True, (32, 32)), ("scale_width_and_crop", False, (32, 32)),
    ("none", True, (100, 60)), ("none", False, (100, 60)),
])
def test_every_preprocess_gives_the_reference_size_on_a_wide_image(tmp_path, preprocess, train, expected):
    _write_pair(tmp_path / "train" / "p.png", h=60, w=100)
    ds = _ds(tmp_path, preprocess=preprocess, train=train)
    assert network_size(preprocess, 100, 60, 64, 32, train) == expected
    assert ds.network_sizes() == [expected]
    torch.manual_seed(0)
    for _ in range(4):
        item = ds[0]
        assert item["input"].shape[-2:] == (expected[1], expected[0])
        # B = 255 - A: any misalignment of the joint transform shows up pixel by pixel.
        assert (item["input"] + item["target"]).abs().max() <= 2.01 / 127.5


def test_scale_width_on_a_tall_image_keeps_the_aspect_ratio(tmp_path):
    _write_pair(tmp_path / "train" / "p.png", h=80, w=40)
    ds = _ds(tmp_path, preprocess="scale_width")
    assert ds.network_sizes() == [(64, 128)]  # 64 wide, 64 * 80 / 40 = 128 high
    assert ds[0]["input"].shape == (3, 128, 64)


def test_scale_width_leaves_an_image_already_that_wide_untouched(tmp_path):
    a = _write_pair(tmp_path / "val" / "p.png", h=48, w=32)  # width = crop_size, height >= crop_size
    ds = _ds(tmp_path, "val", preprocess="scale_width")
    torch.testing.assert_close(ds[0]["input"], _unit(a), rtol=0, atol=1e-6)


def test_crop_takes_exact_crops_and_no_flip_never_mirrors(tmp_path):
    a = _write_pair(tmp_path / "train" / "p.png", h=40, w=48)
    ds = _ds(tmp_path, preprocess="crop", flip=False)
    full = torch.from_numpy(a).permute(2, 0, 1)
    windows = {full[:, y:y + 32, x:x + 32].numpy().tobytes() for y in range(9) for x in range(17)}
    torch.manual_seed(0)
    outs = [_u8(ds[0]["input"]) for _ in range(12)]
    assert all(x in windows for x in outs), "every output is an unmirrored crop of A"
    assert len(set(outs)) > 2


def test_flip_mirrors_sometimes(tmp_path):
    a = _write_pair(tmp_path / "train" / "p.png", h=24, w=40)
    ds = _ds(tmp_path, preprocess="none")
    torch.manual_seed(0)
    outs = {_u8(ds[0]["input"]) for _ in range(16)}
    full = torch.from_numpy(a).permute(2, 0, 1)
    assert outs == {full.numpy().tobytes(), full.flip(-1).contiguous().numpy().tobytes()}


@pytest.mark.parametrize("preprocess", ["crop", "scale_width_and_crop"])
def test_evaluation_takes_the_centre_crop_deterministically(tmp_path, preprocess):
    a = _write_pair(tmp_path / "val" / "p.png", h=40, w=32)  # scale_width to 32 wide: no resize
    ds = _ds(tmp_path, "val", preprocess=preprocess)
    first = ds[0]["input"]
    torch.testing.assert_close(first, _unit(a)[:, 4:36, :], rtol=0, atol=1e-6)
    assert torch.equal(first, ds[0]["input"])


def test_none_keeps_each_image_exactly_in_evaluation(tmp_path):
    a = _write_pair(tmp_path / "test" / "p.png", h=20, w=36)
    item = _ds(tmp_path, "test", preprocess="none")[0]
    torch.testing.assert_close(item["input"], _unit(a), rtol=0, atol=1e-6)
    torch.testing.assert_close(item["target"], _unit(255 - a), rtol=0, atol=1e-6)


def test_resize_and_crop_is_still_the_default(tmp_path):
    _write_pair(tmp_path / "train" / "p.png", h=60, w=100)
    assert _ds(tmp_path).preprocess == "resize_and_crop" and _ds(tmp_path)[0]["input"].shape == (3, 32, 32)
    assert Pix2PixDataModule().preprocess == "resize_and_crop"


def test_small_images_are_fine_unless_the_preprocess_crops_without_resizing(tmp_path):
    _write_pair(tmp_path / "train" / "p.png", h=20, w=24)
    for p in ("scale_width", "scale_width_and_crop", "none"):
        _ds(tmp_path, preprocess=p)
    with pytest.raises(ValueError, match=r"p\.png: each half \(A or B\) is 24x20 \(WxH\), smaller than crop_size=32, "
                                         r"and preprocess=crop crops without resizing; set crop_size "
                                         r"\(--data\.crop_size\) to at most 20"):
        _ds(tmp_path, preprocess="crop")


def test_bad_preprocess_names_the_choices(tmp_path):
    with pytest.raises(ValueError, match=r"preprocess must be one of \('resize_and_crop', 'crop', 'scale_width', "
                                         r"'scale_width_and_crop', 'none'\).*got 'resize'"):
        Pix2PixDataModule(data_dir=str(tmp_path), preprocess="resize")
    assert PREPROCESS[0] == "resize_and_crop"


def test_paired_folders_follow_the_preprocess_too(tmp_path):
    from pix2pix_aa.data import PairedFolderDataset

    a = _noise(24, 40)
    for side, img in (("A", a), ("B", 255 - a)):
        (tmp_path / "test" / side).mkdir(parents=True)
        Image.fromarray(img).save(tmp_path / "test" / side / "x.png")
    ds = PairedFolderDataset(tmp_path, "test", load_size=64, crop_size=16, preprocess="none")
    assert ds.network_sizes() == [(40, 24)] and ds[0]["input"].shape == (3, 24, 40)


# --- batching of images of different sizes -----------------------------------------------------
def _mixed(root: Path) -> None:
    for split in ("train", "val", "test"):
        _write_pair(root / split / "a.png", h=24, w=40, seed=1)
        _write_pair(root / split / "b.png", h=32, w=32, seed=2)


def _dm(root: Path, **kw) -> Pix2PixDataModule:
    args = dict(data_dir=str(root), dataset="aligned", load_size=32, crop_size=16, batch_size=2, num_workers=0,
                preprocess="none")
    args.update(kw)
    return Pix2PixDataModule(**args)


def test_training_batches_of_mixed_sizes_are_refused_with_the_sizes_and_files(tmp_path):
    _mixed(tmp_path)
    with pytest.raises(ValueError, match=r"data\.preprocess=none keeps each image's own size, and a batch needs one "
                                         r"size: data\.batch_size=2 but train/ holds 2 sizes "
                                         r"\(WxH: 40x24 \(.*a\.png\), 32x32 \(.*b\.png\)\); use --data\.batch_size 1"):
        _dm(tmp_path).setup("fit")


def test_evaluation_of_mixed_sizes_runs_one_image_per_batch(tmp_path, capsys):
    _mixed(tmp_path)
    dm = _dm(tmp_path)
    dm.setup("test")
    assert "test: batch size 1, not 2: preprocess none keeps each image's size and test/ holds 2 sizes" \
        in capsys.readouterr().err
    shapes = [tuple(b["input"].shape) for b in dm.test_dataloader()]
    assert shapes == [(1, 3, 24, 40), (1, 3, 32, 32)]


def test_one_size_batches_normally_with_none_and_mixed_sizes_train_at_batch_1(tmp_path):
    for i in range(4):
        _write_pair(tmp_path / "train" / f"{i}.png", h=24, w=40, seed=i)
    dm = _dm(tmp_path, batch_size=2)
    dm.setup("fit")
    assert [tuple(b["input"].shape) for b in dm.train_dataloader()] == [(2, 3, 24, 40)] * 2
    _mixed(tmp_path / "mixed")
    dm = _dm(tmp_path / "mixed", batch_size=1)
    dm.setup("fit")
    assert sorted(tuple(b["input"].shape) for b in dm.train_dataloader()) == [(1, 3, 24, 40), (1, 3, 32, 32)]


def test_eval_dataset_follows_the_preprocess(tmp_path):
    _mixed(tmp_path)
    ds = _dm(tmp_path).eval_dataset("val")
    assert sorted(tuple(ds[i]["input"].shape) for i in range(len(ds))) == [(3, 24, 40), (3, 32, 32)]


# --- the generator: pad_input, and fit / test / predict on non-square images ---------------------
@pytest.fixture
def make_module(tiny_module):
    """make_module(pad_input): the tiny module without dropout, 1 epoch, quick validation stability."""

    def make(pad_input: bool) -> Pix2PixModule:
        return tiny_module({"dropout": 0.0, "pad_input": pad_input}, n_epochs=1, n_epochs_decay=0,
                           log_images_every_n_batches=0, val_stability_images=1, val_stability_shifts=1)

    return make


@pytest.fixture
def make_trainer(cpu_trainer):
    """make_trainer(tmp_path, **kw): a 1-epoch CPU trainer without checkpoints."""

    def make(tmp_path: Path, **kw) -> pl.Trainer:
        return cpu_trainer(max_epochs=1, enable_checkpointing=False, default_root_dir=str(tmp_path), **kw)

    return make


def test_sizes_off_the_generators_multiple_need_pad_input_at_start_up(tmp_path, make_module, make_trainer):
    _mixed(tmp_path)  # 40x24 is a multiple of 8; 32x32 too: fine without pad_input
    _write_pair(tmp_path / "train" / "c.png", h=20, w=36, seed=3)  # 36x20 is not
    with pytest.raises(ValueError, match=r"data\.preprocess=none: .*c\.png reaches the generator as 36x20 \(WxH\), "
                                         r"not a multiple of its size multiple 8 \(2\*\*num_downs\); set "
                                         r"--model\.generator\.init_args\.pad_input true"):
        make_trainer(tmp_path).fit(make_module(pad_input=False), datamodule=_dm(tmp_path, batch_size=1))


def test_scale_width_sizes_are_checked_against_the_generator_too(tmp_path, make_module, make_trainer):
    _mixed(tmp_path)  # scale_width to 36 wide: 36x21 and 36x36, not multiples of 8
    with pytest.raises(ValueError, match=r"data\.preprocess=scale_width: .*a\.png reaches the generator as 36x21"):
        make_trainer(tmp_path).fit(make_module(pad_input=False),
                                   datamodule=_dm(tmp_path, batch_size=1, preprocess="scale_width", load_size=36))


def test_non_square_images_fit_test_and_predict_end_to_end(tmp_path, make_module, make_trainer):
    for split in ("train", "val", "test"):
        _write_pair(tmp_path / split / "wide.png", h=20, w=36, seed=1)
        _write_pair(tmp_path / split / "tall.png", h=44, w=28, seed=2)
    dm = _dm(tmp_path, batch_size=1)
    module = make_module(pad_input=True)
    make_trainer(tmp_path, max_steps=2).fit(module, datamodule=dm)
    assert module.global_step > 0
    scores = make_trainer(tmp_path).test(module, datamodule=_dm(tmp_path, batch_size=1), verbose=False)[0]
    assert np.isfinite(scores["test/l1"])
    out = tmp_path / "out"
    make_trainer(tmp_path, callbacks=[ImageWriter(str(out))]).predict(
        module, datamodule=_dm(tmp_path, batch_size=1), return_predictions=False)
    assert {p.name: Image.open(p).size for p in out.iterdir()} == {"wide_png.png": (36, 20), "tall_png.png": (28, 44)}


def test_train_py_fit_test_predict_with_preprocess_none_on_non_square_images(write_tiny_config, tmp_path, capsys,
                                                                             run_cli):
    for split in ("train", "val", "test"):
        _write_pair(tmp_path / "data" / split / "wide.png", h=40, w=72, seed=1)
        _write_pair(tmp_path / "data" / split / "tall.png", h=80, w=48, seed=2)
    cfg = write_tiny_config(tmp_path, data__dataset="aligned", data__data_dir=str(tmp_path / "data"),
                            data__preprocess="none", data__batch_size=1, trainer__max_epochs=1,
                            model__generator__init_args__pad_input=True)
    run_cli(tmp_path, ["fit", "--config", str(cfg)])
    (ckpt,) = tmp_path.glob("runs/tiny/*/checkpoints/last.ckpt")
    run_cli(tmp_path, ["test", "--config", str(cfg), "--ckpt_path", str(ckpt)])
    run_cli(tmp_path, ["predict", "--config", str(cfg), "--ckpt_path", str(ckpt), "--predict_output_dir", "out",
                       "--data.tile", "64", "--data.tile_overlap", "0"])
    assert {p.name: Image.open(p).size for p in (tmp_path / "out").iterdir()} == \
        {"wide_png.png": (72, 40), "tall_png.png": (48, 80)}


def test_sizes_a_preprocess_never_reads_are_named(capsys):
    """`--data.preprocess crop --data.load_size 200` trained, and the summary printed load_size as
    if used; with `none`, crop_size too."""
    from pix2pix_aa.data import Pix2PixDataModule

    Pix2PixDataModule(data_dir="unused", preprocess="crop", load_size=300)
    Pix2PixDataModule(data_dir="unused", preprocess="none", load_size=64, crop_size=64)
    Pix2PixDataModule(data_dir="unused", preprocess="crop")  # at the defaults: nothing asked for, nothing said
    assert capsys.readouterr().err.splitlines() == [
        "[pix2pix_aa] data.preprocess=crop: data.load_size=300 not used (no resize: images are cropped at their own "
        "scale)",
        "[pix2pix_aa] data.preprocess=none: data.load_size=64, data.crop_size=64 not used (each image at its own "
        "size; crop_size still sizes predict_resize)"]


@pytest.mark.parametrize("preprocess", ["crop", "none", "scale_width"])
def test_a_load_size_below_the_crop_is_refused_only_where_the_crop_is_taken_from_the_resize(tmp_path, preprocess,
                                                                                           capsys):
    """`--data.preprocess crop --data.crop_size 64 --data.load_size 32` was refused ("the crop is
    taken from the resized image"), while the notice beside it said load_size is not used."""
    from pix2pix_aa.data import Pix2PixDataModule

    _write_pair(tmp_path / "train" / "x.png", 80, 96)
    Pix2PixDataModule(data_dir=str(tmp_path), dataset="aligned", preprocess=preprocess, crop_size=64, load_size=32)
    item = _ds(tmp_path, preprocess=preprocess, crop_size=64, load_size=32)[0]
    assert tuple(item["input"].shape[-2:]) == {"crop": (64, 64), "none": (80, 96), "scale_width": (64, 32)}[preprocess]
    for refused in ("resize_and_crop", "scale_width_and_crop"):
        with pytest.raises(ValueError, match=rf"crop_size \(64\) must not exceed load_size \(32\): the crop is taken "
                                             rf"from the image resized to load_size \(preprocess {refused}\)"):
            Pix2PixDataModule(data_dir=str(tmp_path), dataset="aligned", preprocess=refused, crop_size=64,
                              load_size=32)
