"""Channel counts: input_nc / output_nc (1 = grayscale, 3 = RGB) on the datasets and the data module."""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from pix2pix_aa.data import AlignedDataset, ImageFolderDataset, PairedFolderDataset, Pix2PixDataModule, decode_image


def _gray(h: int = 32, w: int = 32, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, size=(h, w), dtype=np.uint8)


def _rgb(h: int = 32, w: int = 32, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, size=(h, w, 3), dtype=np.uint8)


def _unit(x: np.ndarray) -> torch.Tensor:
    """uint8 (H, W) -> what the datasets give for it: float (1, H, W) in [-1, 1]."""
    return torch.from_numpy(x.astype(np.float32) / 127.5 - 1)[None]


def _gray_aligned_set(root: Path, splits=("train", "val", "test"), n: int = 2) -> Path:
    for split in splits:
        (root / split).mkdir(parents=True)
        for i in range(n):
            Image.fromarray(np.concatenate([_gray(seed=i), 255 - _gray(seed=i)], axis=1)).save(
                root / split / f"{i}.png")
    return root


def test_grayscale_aligned_set_reads_as_one_channel_silently(tmp_path, capsys):
    root = _gray_aligned_set(tmp_path)
    ds = AlignedDataset(root, "test", "AtoB", load_size=32, crop_size=32, input_nc=1, output_nc=1)
    item = ds[0]
    assert item["input"].shape == item["target"].shape == (1, 32, 32)
    torch.testing.assert_close(item["input"], _unit(_gray(seed=0)), atol=1e-6, rtol=0)
    torch.testing.assert_close(item["target"], _unit(255 - _gray(seed=0)), atol=1e-6, rtol=0)
    assert capsys.readouterr().err == ""  # L files are what was asked for: nothing to report


def test_training_crop_and_flip_work_on_one_channel(tmp_path):
    root = _gray_aligned_set(tmp_path)
    ds = AlignedDataset(root, "train", "AtoB", load_size=36, crop_size=32, input_nc=1, output_nc=1)
    torch.manual_seed(0)
    for _ in range(4):
        item = ds[0]
        assert item["input"].shape == (1, 32, 32)
        assert (item["input"] + item["target"]).abs().max() < 0.05  # B = 255 - A: still aligned


def test_rgb_set_read_as_three_channels_by_default(tmp_path):
    (tmp_path / "test").mkdir()
    Image.fromarray(np.concatenate([_rgb(), _rgb(seed=1)], axis=1)).save(tmp_path / "test" / "x.png")
    item = AlignedDataset(tmp_path, "test", load_size=32, crop_size=32)[0]
    assert item["input"].shape == item["target"].shape == (3, 32, 32)


def test_colour_files_with_input_nc_1_are_converted_with_one_line_or_refused(tmp_path, capsys):
    (tmp_path / "test").mkdir()
    rgb = _rgb(32, 64)
    Image.fromarray(rgb).save(tmp_path / "test" / "c.png")
    ds = AlignedDataset(tmp_path, "test", load_size=32, crop_size=32, input_nc=1, output_nc=1)
    err = capsys.readouterr().err.strip()
    assert re.fullmatch(r"\[pix2pix_aa\] split 'test' of aligned data set .*: converting 1 image\(s\) "
                        r"\(1 is colour -> 1-channel grayscale\): .*c\.png", err), err
    item = ds[0]
    expected = np.asarray(Image.fromarray(rgb).convert("L"))[:, :32]  # ITU-R 601 luma
    torch.testing.assert_close(item["input"], _unit(expected), atol=1e-6, rtol=0)
    with pytest.raises(ValueError, match=r"c\.png: image is colour \(mode RGB\); expected 1-channel grayscale\. "
                                         r"Pass grayscale='convert' to convert such files, or input_nc/output_nc=3"):
        AlignedDataset(tmp_path, "test", load_size=32, crop_size=32, input_nc=1, output_nc=1, grayscale="error")


def test_aligned_grayscale_input_rgb_target(tmp_path, capsys):
    """Colourisation: an RGB A|B file, A read as 1 channel, B as 3 (no report: the file is RGB as asked)."""
    (tmp_path / "test").mkdir()
    b = _rgb()
    a = np.asarray(Image.fromarray(b).convert("L"))
    Image.fromarray(np.concatenate([np.stack([a] * 3, -1), b], axis=1)).save(tmp_path / "test" / "x.png")
    item = AlignedDataset(tmp_path, "test", "AtoB", load_size=32, crop_size=32, input_nc=1, output_nc=3)[0]
    assert item["input"].shape == (1, 32, 32) and item["target"].shape == (3, 32, 32)
    torch.testing.assert_close(item["input"], _unit(a), atol=1e-6, rtol=0)
    assert capsys.readouterr().err == ""
    # BtoA: the input is B (3 channels read as 1), the target A
    item = AlignedDataset(tmp_path, "test", "BtoA", load_size=32, crop_size=32, input_nc=3, output_nc=1)[0]
    assert item["input"].shape == (3, 32, 32) and item["target"].shape == (1, 32, 32)
    # grayscale="error": the gray half is read; a colour half on the 1-channel side is refused
    # (before: converted to luma without a word, the direction the wrong way round trained gray -> gray)
    item = AlignedDataset(tmp_path, "test", "AtoB", load_size=32, crop_size=32, input_nc=1, output_nc=3,
                          grayscale="error")[0]
    torch.testing.assert_close(item["input"], _unit(a), atol=1e-6, rtol=0)
    # at start-up, from the first file (it was found only when the file was read, mid-epoch)
    with pytest.raises(ValueError, match=r"x\.png: its B half is colour \(R, G and B differ by [\d.]+ levels on "
                                         r"average\); expected 1-channel grayscale \(the input side, direction "
                                         r"BtoA\)\. Check the direction \(--data\.direction\)"):
        AlignedDataset(tmp_path, "test", "BtoA", load_size=32, crop_size=32, input_nc=1, output_nc=3,
                       grayscale="error")
    # grayscale="convert" (the default): converted as asked, with one line from the first file
    # (before: trained colour -> colour-as-gray without a word)
    capsys.readouterr()
    wrong_way = AlignedDataset(tmp_path, "test", "BtoA", load_size=32, crop_size=32, input_nc=1, output_nc=3)
    assert wrong_way[0]["input"].shape == (1, 32, 32)
    assert re.fullmatch(r"\[pix2pix_aa\] split 'test' of aligned data set .*: x\.png's B half is colour \(R, G and B "
                        r"differ by [\d.]+ levels on average\) on the 1-channel input side \(direction BtoA\): "
                        r"converted to grayscale\. If the direction is the wrong way round, pass --data\.direction "
                        r"AtoB; --data\.grayscale error refuses such files\n", capsys.readouterr().err)
    # a later file's colour half, when that file is read
    Image.fromarray(np.concatenate([b, b], axis=1)).save(tmp_path / "test" / "y.png")
    mixed = AlignedDataset(tmp_path, "test", "AtoB", load_size=32, crop_size=32, input_nc=1, output_nc=3,
                           grayscale="error")
    with pytest.raises(ValueError, match=r"y\.png: its A half is colour"):
        mixed[1]
    (tmp_path / "test" / "y.png").unlink()
    # A JPEG of the same file: its colour half bleeds across the seam into the gray half's first
    # column (a spread of ~60 there), which is no colour half: read, not refused.
    (tmp_path / "test" / "x.png").unlink()
    Image.fromarray(np.concatenate([np.stack([a] * 3, -1), b], axis=1)).save(tmp_path / "test" / "x.jpg", quality=90)
    gray_half = np.asarray(Image.open(tmp_path / "test" / "x.jpg").convert("RGB"))[:, :32].astype(int)
    assert (gray_half.max(-1) - gray_half.min(-1)).max() > 16  # the bleed is there
    item = AlignedDataset(tmp_path, "test", "AtoB", load_size=32, crop_size=32, input_nc=1, output_nc=3,
                          grayscale="error")[0]
    assert item["input"].shape == (1, 32, 32)


def test_paired_sides_read_with_their_own_channels(tmp_path, capsys):
    for side in ("A", "B"):
        (tmp_path / "train" / side).mkdir(parents=True)
    Image.fromarray(_gray()).save(tmp_path / "train" / "A" / "x.png")
    Image.fromarray(_rgb()).save(tmp_path / "train" / "B" / "x.png")
    item = PairedFolderDataset(tmp_path, "train", "AtoB", load_size=32, crop_size=32, train=False,
                               input_nc=1, output_nc=3)[0]
    assert item["input"].shape == (1, 32, 32) and item["target"].shape == (3, 32, 32)
    assert capsys.readouterr().err == ""


def test_one_channel_prediction_inputs(tmp_path):
    Image.fromarray(_gray(20, 28)).save(tmp_path / "g.png")
    item = ImageFolderDataset(tmp_path, channels=1)[0]
    assert item["input"].shape == (1, 20, 28)
    assert decode_image(tmp_path / "g.png", channels=3).shape == (3, 20, 28)  # replicated when 3 are asked


def test_datamodule_exposes_input_nc_output_nc(tmp_path):
    root = _gray_aligned_set(tmp_path / "gray")
    dm = Pix2PixDataModule(data_dir=str(root), dataset="aligned", load_size=36, crop_size=32, batch_size=2,
                           num_workers=0, input_nc=1, output_nc=1)
    assert (dm.input_nc, dm.output_nc) == (1, 1) and dm.hparams["input_nc"] == 1
    assert (Pix2PixDataModule().input_nc, Pix2PixDataModule().output_nc) == (3, 3)
    dm.setup("fit")
    batch = next(iter(dm.train_dataloader()))
    assert batch["input"].shape == batch["target"].shape == (2, 1, 32, 32)


@pytest.mark.parametrize("kwargs, match", [
    ({"input_nc": 2}, r"input_nc must be 1 \(grayscale\) or 3 \(RGB\), got 2"),
    ({"output_nc": 4}, r"output_nc must be 1 \(grayscale\) or 3 \(RGB\), got 4"),
])
def test_bad_channel_counts_name_the_option(tmp_path, kwargs, match):
    with pytest.raises(ValueError, match=match):
        Pix2PixDataModule(data_dir=str(tmp_path / "x"), **kwargs)
    with pytest.raises(ValueError, match=match):
        AlignedDataset(tmp_path / "x", "train", **kwargs)


def test_a_colourisation_trains_validates_tests_and_is_evaluated_with_its_input_shown(tmp_path, run_cli,
                                                                                       write_tiny_config, capsys):
    """input_nc 1 and output_nc 3 (grayscale -> colour, the case data/README describes): the image
    grid of train.py stacked a 1-channel input with 3-channel images and failed at the first logged
    batch (at the first validation with the grid off), and evaluate.py's samples left the input out.
    The grayscale input is now shown in grey beside the output and the target."""
    from PIL import Image
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    from pix2pix_aa.evaluation.cli import main as evaluate_main

    root = tmp_path / "colour"
    for split, n in (("train", 4), ("val", 2), ("test", 2)):
        (root / split).mkdir(parents=True)
        for i in range(n):
            photo = _rgb(64, 64, seed=i)
            Image.fromarray(np.concatenate([photo, photo], axis=1)).save(root / split / f"{i}.png")
    config = write_tiny_config(tmp_path, trainer__max_epochs=1, data__dataset="aligned", data__data_dir=str(root),
                               data__direction="AtoB", data__input_nc=1, model__log_images_every_n_batches=1)
    flags = ["--model.generator.init_args.in_channels", "1", "--model.discriminator.init_args.in_channels", "4"]
    run_cli(tmp_path, ["fit", "--config", str(config), *flags])
    run = tmp_path / "runs" / "tiny" / "version_0"
    run_cli(tmp_path, ["test", "--config", str(config), *flags, "--ckpt_path", str(run / "checkpoints" / "last.ckpt")])
    events = EventAccumulator(str(run), size_guidance={"images": 0})
    events.Reload()
    for tag in ("train/images", "val/images"):
        grid = events.Images(tag)[-1]
        assert (grid.width, grid.height) == (2 + 3 * (64 + 2), 2 + 2 * (64 + 2))  # input | generated | target
    capsys.readouterr()
    out = tmp_path / "eval"
    assert evaluate_main([str(run), "--out", str(out), "--max-images", "2", "--shifts", "2", "--no-progress",
                          "--no-quality-metrics", "--flicker-frames", "0", "--noise", "0.1"]) == 0
    strip = np.asarray(Image.open(out / "samples_tiny_version_0_last.png"))
    assert strip.shape[1] == 3 * 64  # input | output | target
    gray = np.asarray(Image.fromarray(_rgb(64, 64, seed=0)).convert("L"))
    assert np.abs(strip[:64, :64].astype(int) - gray[..., None]).max() <= 1  # the input, in grey


def test_the_colour_half_notice_is_said_once_per_data_set_not_per_split(tmp_path, capsys):
    """The wrong-way-round colourisation notice came once for train/ and again for val/."""
    b = _rgb()
    a = np.asarray(Image.fromarray(b).convert("L"))
    for split in ("train", "val"):
        (tmp_path / split).mkdir()
        Image.fromarray(np.concatenate([np.stack([a] * 3, -1), b], axis=1)).save(tmp_path / split / "x.png")
    for split in ("train", "val"):
        AlignedDataset(tmp_path, split, "BtoA", load_size=32, crop_size=32, input_nc=1, output_nc=3)
    assert capsys.readouterr().err.count("B half is colour") == 1
