"""fit's start-up data summary and its notices for data a model was not trained for: val/ and
test/ images of another shape than train/'s, files shared between splits, and A|B pair files
given to predict (pix2pix_aa.data.summary)."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from pix2pix_aa.data import Pix2PixDataModule
from pix2pix_aa.data.summary import describe_sizes, pair_files_notice, split_shape_notice


def _png(path: Path, w: int, h: int, seed: int) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(np.random.default_rng(seed).integers(0, 256, (h, w, 3), dtype=np.uint8)).save(path)
    return path


def _aligned(root: Path, counts: dict[str, int], w: int = 64, h: int = 32) -> Path:
    """A|B files of w x h (each half (w/2) x h), distinct random content."""
    seed = 0
    for split, n in counts.items():
        for i in range(n):
            seed += 1
            _png(root / split / f"{i}.png", w, h, seed)
    return root


def _fit_lines(root: Path, capsys, **kw) -> list[str]:
    capsys.readouterr()
    dm = Pix2PixDataModule(data_dir=str(root), dataset=kw.pop("dataset", "aligned"), load_size=32, crop_size=32,
                           num_workers=0, **kw)
    dm.setup("fit")
    return [ln for ln in capsys.readouterr().err.splitlines() if ln.startswith("[pix2pix_aa]")]


def test_fit_prints_what_data_it_found(tmp_path, capsys):
    root = _aligned(tmp_path / "d", {"train": 4, "val": 2, "test": 3})
    lines = _fit_lines(root, capsys, direction="BtoA")
    summary = [ln for ln in lines if "] data: " in ln]
    assert len(summary) == 1, lines
    assert (f"data: aligned (A|B files) at {root}, direction BtoA (input the right half (B) of each A|B file, target "
            "the left half (A)); images: train 4, val 2, test 3; sizes per side (WxH): train 32x32; val 32x32; "
            "test 32x32") in summary[0]
    assert len(lines) == 1  # clean data: no notice
    dm_lines = _fit_lines(root, capsys, direction="AtoB")
    assert "direction AtoB (input the left half (A) of each A|B file" in dm_lines[0]


def test_files_shared_between_train_and_val_or_test_are_noticed(tmp_path, capsys):
    root = _aligned(tmp_path / "d", {"train": 4, "val": 3, "test": 1})
    shutil.copy(root / "train" / "2.png", root / "val" / "copy_a.png")
    shutil.copy(root / "train" / "3.png", root / "val" / "copy_b.png")
    shutil.copy(root / "train" / "0.png", root / "test" / "copy.png")
    lines = _fit_lines(root, capsys)
    val = [ln for ln in lines if "val/: 2 of 5 files have the same content as training files" in ln]
    test = [ln for ln in lines if "test/: 1 of 2 files have the same content as training files" in ln]
    assert len(val) == 1 and len(test) == 1, lines
    assert "(e.g. " + str(root / "val" / "copy_a.png") + " = " + str(root / "train" / "2.png") + ")" in val[0]


def test_paired_files_are_shared_only_when_both_sides_are(tmp_path, capsys):
    root = tmp_path / "p"
    for split, n in (("train", 2), ("val", 2)):
        for i in range(n):
            _png(root / split / "A" / f"{i}.png", 32, 32, 10 * i + (split == "val"))
            _png(root / split / "B" / f"{i}.png", 32, 32, 100 + 10 * i + (split == "val"))
    shutil.copy(root / "train" / "A" / "0.png", root / "val" / "A" / "0.png")  # one side only: not a copy
    assert not [ln for ln in _fit_lines(root, capsys, dataset="paired") if "same content" in ln]
    shutil.copy(root / "train" / "B" / "0.png", root / "val" / "B" / "0.png")
    assert [ln for ln in _fit_lines(root, capsys, dataset="paired") if "val/: 1 of 2 files have the same" in ln]


def test_val_images_of_another_shape_than_training_are_noticed(tmp_path, capsys):
    """Single 32x32 images where 64x32 A|B pairs were expected: each half is 16x32, an aspect ratio
    no training image has; 128x64 pairs have the training aspect at another size."""
    root = _aligned(tmp_path / "d", {"train": 3, "val": 2, "test": 1})
    _png(root / "val" / "single.png", 32, 32, 99)
    _png(root / "test" / "big.png", 128, 64, 98)
    lines = _fit_lines(root, capsys)
    val = [ln for ln in lines if ln.startswith("[pix2pix_aa] val/: 1 of 3 images match no training image")]
    assert len(val) == 1, lines
    assert "1 in aspect ratio (e.g. single.png: 16x32)" in val[0] and "choose best-*.ckpt" in val[0]
    test = [ln for ln in lines if ln.startswith("[pix2pix_aa] test/: 1 of 2 images match no training image")]
    assert len(test) == 1 and "1 in size only (e.g. big.png: 64x64)" in test[0], lines


def test_shape_check_tolerates_a_few_pixels_and_names_sizes():
    train = [((Path("t.png"),), (256, 256))]
    assert split_shape_notice("val", [((Path("v.png"),), (256, 255))], train, 256) is not None  # size only
    assert "aspect" not in split_shape_notice("val", [((Path("v.png"),), (256, 255))], train, 256)
    assert split_shape_notice("val", [((Path("v.png"),), (256, 256))], train, 256) is None
    assert describe_sizes([(1, 2), (1, 2), (3, 4)]) == "2 sizes: 1x2 (2), 3x4 (1)"


def test_predict_on_pair_files_is_noticed(tmp_path, capsys):
    root = _aligned(tmp_path / "d", {"train": 2, "val": 1, "test": 1})
    inputs = tmp_path / "in"
    _png(inputs / "pair.png", 64, 32, 5)
    _png(inputs / "half.png", 32, 32, 6)
    capsys.readouterr()
    dm = Pix2PixDataModule(data_dir=str(root), dataset="aligned", direction="BtoA", load_size=32, crop_size=32,
                           num_workers=0, predict_dir=str(inputs))
    dm.setup("predict")
    err = capsys.readouterr().err
    assert ("predict: 1 of 2 inputs are twice as wide as high (e.g. pair.png: 64x32), like the A|B pair files the "
            "model was trained on: the generator reads each whole file, both halves") in err
    assert pair_files_notice([inputs / "half.png"], "aligned", "BtoA") is None
    _png(inputs / "dot.png", 1, 1, 7)  # 1 = 2 x 1 - 1: within the pixel's tolerance, but no pair file
    assert pair_files_notice([inputs / "dot.png"], "aligned", "BtoA") is None
    assert pair_files_notice([inputs / "pair.png"], "paired", "BtoA") is None  # trained on separate A/ B/ files
    for kind in ("facades", "photos", "colorize"):  # the generated kinds are A|B files too
        assert pair_files_notice([inputs / "pair.png"], kind, "BtoA") is not None, kind


@pytest.mark.parametrize("stage", ["validate", "test"])
def test_other_stages_print_no_fit_summary(tmp_path, capsys, stage):
    root = _aligned(tmp_path / "d", {"train": 2, "val": 1, "test": 1})
    capsys.readouterr()
    Pix2PixDataModule(data_dir=str(root), dataset="aligned", load_size=32, crop_size=32, num_workers=0).setup(stage)
    assert "] data: " not in capsys.readouterr().err


def test_train_py_fit_prints_the_summary_once(tmp_path, capsys, run_cli, write_tiny_config):
    """The shipped configs say direction BtoA (the data module's default is AtoB): fit says which."""
    cfg = write_tiny_config(tmp_path, data__generate_counts={"train": 2, "val": 1, "test": 1})
    run_cli(tmp_path, ["fit", "--config", str(cfg), "--trainer.max_steps", "1"])
    lines = [ln for ln in capsys.readouterr().err.splitlines() if ln.startswith("[pix2pix_aa] data: ")]
    assert len(lines) == 1
    assert "data: facades (A|B files) at data/tiny, direction BtoA (input the right half (B)" in lines[0]
    assert "images: train 2, val 1, test 1" in lines[0]
